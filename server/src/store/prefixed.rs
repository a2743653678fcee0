//! One account's view of a shared store: every key under the account's prefix.

use std::sync::Arc;

use super::{Condition, Store, StoreError, Txn, Versioned, Write};

pub struct PrefixedStore {
    inner: Arc<dyn Store>,
    prefix: String,
}

impl PrefixedStore {
    pub fn new(inner: Arc<dyn Store>, prefix: impl Into<String>) -> Self {
        Self { inner, prefix: prefix.into() }
    }

    fn outer(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn inner_view(&self, mut v: Versioned) -> Versioned {
        v.key = v.key.strip_prefix(&self.prefix).unwrap_or(&v.key).to_string();
        v
    }
}

#[async_trait::async_trait]
impl Store for PrefixedStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(self.inner.get(&self.outer(key)).await?.map(|v| self.inner_view(v)))
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned>, StoreError> {
        let after = after.map(|a| self.outer(a));
        let found = self.inner.list(&self.outer(prefix), after.as_deref(), limit).await?;
        Ok(found.into_iter().map(|v| self.inner_view(v)).collect())
    }

    async fn commit(&self, txn: Txn) -> Result<u64, StoreError> {
        let conditions = txn
            .conditions
            .into_iter()
            .map(|c| match c {
                Condition::Absent(k) => Condition::Absent(self.outer(&k)),
                Condition::AtRevision(k, r) => Condition::AtRevision(self.outer(&k), r),
            })
            .collect();
        let writes = txn
            .writes
            .into_iter()
            .map(|w| match w {
                Write::Put(k, v) => Write::Put(self.outer(&k), v),
                Write::Delete(k) => Write::Delete(self.outer(&k)),
            })
            .collect();
        self.inner.commit(Txn { conditions, writes }).await
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
    async fn accounts_share_a_store_without_seeing_each_other() {
        let shared: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let a = PrefixedStore::new(shared.clone(), "");
        let b = PrefixedStore::new(shared.clone(), "acct/111122223333/");
        a.commit(Txn::new().require_absent("iam/role/x").put("iam/role/x", b"a".to_vec())).await.unwrap();
        b.commit(Txn::new().require_absent("iam/role/x").put("iam/role/x", b"b".to_vec())).await.unwrap();
        let got = b.get("iam/role/x").await.unwrap().unwrap();
        assert_eq!((got.key.as_str(), &*got.value), ("iam/role/x", &b"b"[..]));
        assert_eq!(&*a.get("iam/role/x").await.unwrap().unwrap().value, b"a");
        let listed = b.list("iam/role/", None, 10).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "iam/role/x");
        // The unprefixed account's listing does not reach into another account's keys.
        assert_eq!(a.list("iam/", None, 10).await.unwrap().len(), 1);
        let rev = got.revision;
        b.commit(Txn::new().require_revision("iam/role/x", rev).delete("iam/role/x")).await.unwrap();
        assert!(b.get("iam/role/x").await.unwrap().is_none());
        assert!(a.get("iam/role/x").await.unwrap().is_some());
    }
}
