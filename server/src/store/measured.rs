//! Counts and times what the catalog asks of the store, for `/metrics`: reads that no cache
//! answered, commits (with their latency) and conflicts.

use std::{sync::Arc, time::Instant};

use super::{Store, StoreError, Txn, Versioned};
use crate::telemetry::StoreMetrics;

pub struct MeasuredStore {
    inner: Arc<dyn Store>,
    metrics: StoreMetrics,
}

impl MeasuredStore {
    pub fn new(inner: Arc<dyn Store>, metrics: StoreMetrics) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait::async_trait]
impl Store for MeasuredStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        self.metrics.reads.inc();
        self.inner.get(key).await
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned>, StoreError> {
        self.metrics.reads.inc();
        self.inner.list(prefix, after, limit).await
    }

    async fn commit(&self, txn: Txn) -> Result<u64, StoreError> {
        let started = Instant::now();
        let result = self.inner.commit(txn).await;
        match &result {
            Ok(_) => {
                self.metrics.commits.inc();
                self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
            }
            Err(StoreError::Conflict) => {
                self.metrics.conflicts.inc();
            }
            Err(_) => {}
        }
        result
    }

    fn max_writes_per_commit(&self) -> usize {
        self.inner.max_writes_per_commit()
    }

    fn max_bytes_per_commit(&self) -> usize {
        self.inner.max_bytes_per_commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn reads_commits_and_conflicts_are_counted() {
        let metrics = StoreMetrics::default();
        let store = MeasuredStore::new(Arc::new(MemoryStore::default()), metrics.clone());
        store.commit(Txn::new().put("k", b"v".to_vec())).await.unwrap();
        let lost = store.commit(Txn::new().require_absent("k").put("k", b"w".to_vec())).await;
        assert!(matches!(lost, Err(StoreError::Conflict)));
        store.get("k").await.unwrap();
        store.list("", None, 10).await.unwrap();
        assert_eq!((metrics.commits.get(), metrics.conflicts.get(), metrics.reads.get()), (1, 1, 2));
    }
}
