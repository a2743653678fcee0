//! Sealing at rest: a [`Store`] that seals every value under the master key before the
//! backend sees it, and opens it on the way back, so that what is on disk (or in etcd) holds
//! no secret in clear: users' secret access keys, the key ring, the identity signing key,
//! and everything else with them. A value that does not open (another master key, tampering)
//! is reported as corrupt, never returned.
//!
//! The master key rotates as Kubernetes' encryption at rest does: the new key seals, the
//! previous ones still open, [`SealedStore::reseal`] rewrites what they sealed under the new
//! one, and then they can be dropped.

use std::sync::Arc;

use super::{Store, StoreError, Txn, Versioned, Write, commit_batches};
use crate::domain::master_key::{MasterKeys, SealedUnder};

pub struct SealedStore {
    inner: Arc<dyn Store>,
    keys: MasterKeys,
}

/// What a [`SealedStore::reseal`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Values read.
    pub examined: u64,
    /// Of those, values a previous key had sealed, now under the current one.
    pub resealed: u64,
}

/// Values read per page, and rewritten per commit, by a reseal.
const RESEAL_BATCH: usize = 64;

impl SealedStore {
    pub fn new(inner: Arc<dyn Store>, keys: MasterKeys) -> Self {
        Self { inner, keys }
    }

    fn open_raw(&self, v: &Versioned) -> Result<(Vec<u8>, SealedUnder), StoreError> {
        self.keys.open(&v.key, &v.value).ok_or_else(|| StoreError::Corrupt {
            key: v.key.clone(),
            reason: "does not open with the configured master keys (another key, or tampered with)".into(),
        })
    }

    /// The backend, whose values are sealed (export and import move them as they are).
    pub(super) fn raw(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Whether a configured master key opens `sealed`, stored under `key`.
    pub(super) fn opens(&self, key: &str, sealed: &[u8]) -> bool {
        self.keys.open(key, sealed).is_some()
    }

    fn open(&self, v: Versioned) -> Result<Versioned, StoreError> {
        let (value, _) = self.open_raw(&v)?;
        Ok(Versioned { key: v.key, value: value.into(), revision: v.revision })
    }

    fn seal(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.keys.seal(key, value).map_err(|e| StoreError::Unavailable(e.message.clone()))
    }

    /// Rewrites every value that a previous master key sealed under the current one, each
    /// write conditioned on the revision it read: a value changed meanwhile was sealed anew
    /// by its writer and is read again. Safe beside running replicas (etcd); a value no key
    /// opens stops it with [`StoreError::Corrupt`], naming the key, before anything is lost.
    pub async fn reseal(&self) -> Result<Resealed, StoreError> {
        let mut done = Resealed::default();
        let mut after: Option<String> = None;
        let batch = RESEAL_BATCH.min(self.inner.max_writes_per_commit()).max(1);
        loop {
            let page = self.inner.list("", after.as_deref(), batch).await?;
            let Some(last) = page.last() else { return Ok(done) };
            after = Some(last.key.clone());
            done.examined += page.len() as u64;
            let mut stale = Vec::new();
            for v in page {
                if let (plain, SealedUnder::Previous) = self.open_raw(&v)? {
                    stale.push((v, plain));
                }
            }
            let size = |(v, _): &(Versioned, Vec<u8>)| v.key.len() + v.value.len();
            for run in commit_batches(self.inner.as_ref(), batch, stale, size) {
                let mut txn = Txn::new();
                for (v, plain) in &run {
                    txn = txn
                        .require_revision(v.key.clone(), v.revision)
                        .put(v.key.clone(), self.seal(&v.key, plain)?);
                }
                match self.inner.commit(txn).await {
                    Ok(_) => done.resealed += run.len() as u64,
                    // Someone wrote one of them meanwhile: one at a time, each read again.
                    Err(StoreError::Conflict) => {
                        for (v, _) in run {
                            done.resealed += u64::from(self.reseal_one(&v.key).await?);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Reseals one value if a previous key sealed it; whether it did.
    async fn reseal_one(&self, key: &str) -> Result<bool, StoreError> {
        loop {
            let Some(v) = self.inner.get(key).await? else { return Ok(false) };
            let (plain, SealedUnder::Previous) = self.open_raw(&v)? else { return Ok(false) };
            let txn = Txn::new().require_revision(key, v.revision).put(key, self.seal(key, &plain)?);
            match self.inner.commit(txn).await {
                Ok(_) => return Ok(true),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
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
                    let sealed = self.seal(&key, &value)?;
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

    fn max_bytes_per_commit(&self) -> usize {
        // Sealing adds a 4-byte magic, a nonce and a tag to each value.
        self.inner
            .max_bytes_per_commit()
            .saturating_sub(self.inner.max_writes_per_commit().saturating_mul(32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{domain::master_key::MasterKey, store::MemoryStore};

    fn key(hex: &str) -> MasterKey {
        MasterKey::parse(&hex.repeat(32)).unwrap()
    }

    #[tokio::test]
    async fn the_backend_sees_only_sealed_values() {
        let backend: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let store = SealedStore::new(backend.clone(), MasterKeys::new(key("11"), vec![]));
        store.commit(Txn::new().put("iam/user/alice", b"wJalrXUtnFEMI".to_vec())).await.unwrap();
        let raw = backend.get("iam/user/alice").await.unwrap().unwrap();
        assert!(!raw.value.windows(13).any(|w| w == b"wJalrXUtnFEMI"));
        assert_eq!(&*store.get("iam/user/alice").await.unwrap().unwrap().value, b"wJalrXUtnFEMI");
        assert_eq!(store.list("iam/", None, 10).await.unwrap().len(), 1);
        let wrong = SealedStore::new(backend, MasterKeys::new(key("22"), vec![]));
        assert!(matches!(wrong.get("iam/user/alice").await, Err(StoreError::Corrupt { .. })));
    }

    #[tokio::test]
    async fn a_reseal_moves_every_value_to_the_current_key_and_keeps_newer_writes() {
        let backend: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let old = SealedStore::new(backend.clone(), MasterKeys::new(key("11"), vec![]));
        for n in 0..150 {
            old.commit(Txn::new().put(format!("iam/user/u{n:03}"), format!("secret {n}").into_bytes()))
                .await
                .unwrap();
        }
        let rotated = SealedStore::new(backend.clone(), MasterKeys::new(key("22"), vec![key("11")]));
        // A write under the new key before the reseal: kept as written, not counted.
        rotated.commit(Txn::new().put("iam/user/u007", b"changed".to_vec())).await.unwrap();
        let done = rotated.reseal().await.unwrap();
        assert_eq!(done, Resealed { examined: 150, resealed: 149 });
        assert_eq!(rotated.reseal().await.unwrap().resealed, 0, "nothing left for a second pass");
        let new_only = SealedStore::new(backend.clone(), MasterKeys::new(key("22"), vec![]));
        assert_eq!(&*new_only.get("iam/user/u149").await.unwrap().unwrap().value, b"secret 149");
        assert_eq!(&*new_only.get("iam/user/u007").await.unwrap().unwrap().value, b"changed");
        assert_eq!(new_only.list("iam/", None, 1000).await.unwrap().len(), 150);
        // A value no configured key opens stops the reseal and names itself.
        SealedStore::new(backend.clone(), MasterKeys::new(key("33"), vec![]))
            .commit(Txn::new().put("iam/user/zed", b"x".to_vec()))
            .await
            .unwrap();
        match new_only.reseal().await {
            Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "iam/user/zed"),
            other => panic!("{other:?}"),
        }
    }
}
