//! Sealing at rest: a [`Store`] that seals every value under the master key before the
//! backend sees it, and opens it on the way back, so that what is on disk (or in etcd) holds
//! no secret in clear: users' secret access keys, the key ring, the identity signing key,
//! and everything else with them. A value that does not open (another master key, tampering)
//! is reported as corrupt, never returned.

use std::sync::Arc;

use super::{Store, StoreError, Txn, Versioned, Write};
use crate::domain::master_key::MasterKey;

pub struct SealedStore {
    inner: Arc<dyn Store>,
    key: MasterKey,
}

impl SealedStore {
    pub fn new(inner: Arc<dyn Store>, key: MasterKey) -> Self {
        Self { inner, key }
    }

    fn open(&self, v: Versioned) -> Result<Versioned, StoreError> {
        let value = self.key.open(&v.key, &v.value).ok_or_else(|| StoreError::Corrupt {
            key: v.key.clone(),
            reason: "does not open with this master key (another key, or tampered with)".into(),
        })?;
        Ok(Versioned { key: v.key, value: value.into(), revision: v.revision })
    }
}

#[async_trait::async_trait]
impl Store for SealedStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        self.inner.get(key).await?.map(|v| self.open(v)).transpose()
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned>, StoreError> {
        self.inner.list(prefix, after, limit).await?.into_iter().map(|v| self.open(v)).collect()
    }

    async fn commit(&self, txn: Txn) -> Result<u64, StoreError> {
        let mut writes = Vec::with_capacity(txn.writes.len());
        for w in txn.writes {
            writes.push(match w {
                Write::Put(key, value) => {
                    let sealed = self
                        .key
                        .seal(&key, &value)
                        .map_err(|e| StoreError::Unavailable(e.message.clone()))?;
                    Write::Put(key, sealed)
                }
                delete => delete,
            });
        }
        self.inner.commit(Txn { conditions: txn.conditions, writes }).await
    }

    fn max_writes_per_commit(&self) -> usize {
        self.inner.max_writes_per_commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn the_backend_sees_only_sealed_values() {
        let backend: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let key = || MasterKey::parse(&"11".repeat(32)).unwrap();
        let store = SealedStore::new(backend.clone(), key());
        store.commit(Txn::new().put("iam/user/alice", b"wJalrXUtnFEMI".to_vec())).await.unwrap();
        let raw = backend.get("iam/user/alice").await.unwrap().unwrap();
        assert!(!raw.value.windows(13).any(|w| w == b"wJalrXUtnFEMI"));
        assert_eq!(&*store.get("iam/user/alice").await.unwrap().unwrap().value, b"wJalrXUtnFEMI");
        assert_eq!(store.list("iam/", None, 10).await.unwrap().len(), 1);
        let wrong = SealedStore::new(backend, MasterKey::parse(&"22".repeat(32)).unwrap());
        assert!(matches!(wrong.get("iam/user/alice").await, Err(StoreError::Corrupt { .. })));
    }
}
