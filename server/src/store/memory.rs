//! The in-memory backend: a B-tree behind a read-write lock.

use std::{
    collections::BTreeMap,
    ops::Bound,
    sync::{Arc, RwLock},
};

use super::{Condition, Store, StoreError, Txn, Versioned, Write};

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    revision: u64,
    entries: BTreeMap<String, (Arc<[u8]>, u64)>,
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("memory store lock poisoned by a panic".into())
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let inner = self.inner.read().map_err(|_| poisoned())?;
        Ok(inner.entries.get(key).map(|(value, revision)| Versioned {
            key: key.to_string(),
            value: value.clone(),
            revision: *revision,
        }))
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned>, StoreError> {
        let inner = self.inner.read().map_err(|_| poisoned())?;
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        Ok(inner
            .entries
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, (value, revision))| Versioned {
                key: k.clone(),
                value: value.clone(),
                revision: *revision,
            })
            .collect())
    }

    async fn commit(&self, txn: Txn) -> Result<u64, StoreError> {
        let mut inner = self.inner.write().map_err(|_| poisoned())?;
        for condition in &txn.conditions {
            let holds = match condition {
                Condition::Absent(key) => !inner.entries.contains_key(key),
                Condition::AtRevision(key, rev) => inner.entries.get(key).is_some_and(|(_, r)| r == rev),
            };
            if !holds {
                return Err(StoreError::Conflict);
            }
        }
        inner.revision += 1;
        let revision = inner.revision;
        for write in txn.writes {
            match write {
                Write::Put(key, value) => {
                    inner.entries.insert(key, (value.into(), revision));
                }
                Write::Delete(key) => {
                    inner.entries.remove(&key);
                }
            }
        }
        Ok(revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conditions_guard_commits() {
        let store = MemoryStore::default();
        let r1 = store.commit(Txn::new().require_absent("a").put("a", b"1".to_vec())).await.unwrap();
        assert!(matches!(
            store.commit(Txn::new().require_absent("a").put("a", b"2".to_vec())).await,
            Err(StoreError::Conflict)
        ));
        let got = store.get("a").await.unwrap().unwrap();
        assert_eq!(&*got.value, b"1");
        assert_eq!(got.revision, r1);
        // A stale revision loses; nothing of the losing transaction is applied.
        let r2 = store.commit(Txn::new().require_revision("a", r1).put("a", b"3".to_vec())).await.unwrap();
        assert!(matches!(
            store
                .commit(Txn::new().require_revision("a", r1).put("a", b"4".to_vec()).put("b", b"x".to_vec()))
                .await,
            Err(StoreError::Conflict)
        ));
        assert!(store.get("b").await.unwrap().is_none());
        assert_eq!(store.get("a").await.unwrap().unwrap().revision, r2);
    }

    #[tokio::test]
    async fn list_pages_by_prefix() {
        let store = MemoryStore::default();
        let mut txn = Txn::new();
        for k in ["role/a", "role/b", "role/c", "user/a"] {
            txn = txn.put(k, vec![]);
        }
        store.commit(txn).await.unwrap();
        let page = store.list("role/", None, 2).await.unwrap();
        assert_eq!(page.iter().map(|v| v.key.as_str()).collect::<Vec<_>>(), ["role/a", "role/b"]);
        let page = store.list("role/", Some("role/b"), 2).await.unwrap();
        assert_eq!(page.iter().map(|v| v.key.as_str()).collect::<Vec<_>>(), ["role/c"]);
    }
}
