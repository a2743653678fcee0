//! The catalog's storage: a small transactional key-value interface with revisions, so that
//! every backend (memory now; a durable embedded store and etcd later) can honour it and
//! the catalog's rules stay in one place above it.
//!
//! Writes are transactions guarded by conditions (a key is absent / a key is at a
//! revision): the catalog reads, decides, and commits only if nothing it read has changed,
//! retrying on [`StoreError::Conflict`]. Revisions are global and increase with each commit.

#[cfg(feature = "etcd")]
pub mod etcd;
mod measured;
mod memory;
mod prefixed;
mod redb;
mod sealed;
pub mod transfer;

use std::sync::Arc;

pub use measured::MeasuredStore;
pub use memory::MemoryStore;
pub use prefixed::PrefixedStore;
pub use redb::{FORMAT_VERSION, OpenError, RedbStore};
pub use sealed::{Resealed, SealedStore};

/// A stored value and the revision of the commit that last wrote it.
#[derive(Clone, Debug)]
pub struct Versioned {
    pub key: String,
    pub value: Arc<[u8]>,
    pub revision: u64,
}

/// A precondition of a transaction.
#[derive(Clone, Debug)]
pub enum Condition {
    /// The key does not exist.
    Absent(String),
    /// The key exists and was last written at this revision.
    AtRevision(String, u64),
}

#[derive(Clone, Debug)]
pub enum Write {
    Put(String, Vec<u8>),
    Delete(String),
}

/// Writes applied all together, or not at all, if every condition holds.
#[derive(Clone, Debug, Default)]
pub struct Txn {
    pub conditions: Vec<Condition>,
    pub writes: Vec<Write>,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition did not hold: someone else changed what the caller read.
    #[error("a concurrent change won")]
    Conflict,
    /// The backend cannot answer now (may be retried).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored record cannot be decoded.
    #[error("stored record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
}

/// A transactional, revisioned key-value store.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError>;

    /// Up to `limit` entries whose keys start with `prefix` and sort after `after`, in key order.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned>, StoreError>;

    /// Applies `txn` atomically; the revision of the commit.
    async fn commit(&self, txn: Txn) -> Result<u64, StoreError>;

    /// The most writes one commit may carry (etcd: 128 operations per transaction); bulk
    /// operations split into commits of at most this many.
    fn max_writes_per_commit(&self) -> usize {
        usize::MAX
    }

    /// The most bytes (keys and values) one commit may carry (etcd: 1.5 MiB per request).
    fn max_bytes_per_commit(&self) -> usize {
        usize::MAX
    }
}

/// Splits `items` into runs that each fit one commit of `store`: at most `max_writes` items
/// (and the store's own limit), and the store's byte limit, by `size` (an item larger than
/// the limit goes alone, for the store to refuse).
pub fn commit_batches<T>(
    store: &dyn Store,
    max_writes: usize,
    items: Vec<T>,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let (writes, bytes) =
        (max_writes.min(store.max_writes_per_commit()).max(1), store.max_bytes_per_commit());
    let mut batches: Vec<Vec<T>> = Vec::new();
    let mut used = 0usize;
    for item in items {
        let n = size(&item);
        match batches.last_mut() {
            Some(last) if last.len() < writes && used.saturating_add(n) <= bytes => {
                used += n;
                last.push(item);
            }
            _ => {
                used = n;
                batches.push(vec![item]);
            }
        }
    }
    batches
}

// === impl Txn ===

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn require_absent(mut self, key: impl Into<String>) -> Self {
        self.conditions.push(Condition::Absent(key.into()));
        self
    }

    pub fn require_revision(mut self, key: impl Into<String>, revision: u64) -> Self {
        self.conditions.push(Condition::AtRevision(key.into(), revision));
        self
    }

    pub fn put(mut self, key: impl Into<String>, value: Vec<u8>) -> Self {
        self.writes.push(Write::Put(key.into(), value));
        self
    }

    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.writes.push(Write::Delete(key.into()));
        self
    }
}

#[cfg(test)]
mod commit_batch_tests {
    use super::*;

    struct Limited;

    #[async_trait::async_trait]
    impl Store for Limited {
        async fn get(&self, _: &str) -> Result<Option<Versioned>, StoreError> {
            Ok(None)
        }
        async fn list(&self, _: &str, _: Option<&str>, _: usize) -> Result<Vec<Versioned>, StoreError> {
            Ok(Vec::new())
        }
        async fn commit(&self, _: Txn) -> Result<u64, StoreError> {
            Ok(0)
        }
        fn max_writes_per_commit(&self) -> usize {
            3
        }
        fn max_bytes_per_commit(&self) -> usize {
            100
        }
    }

    #[test]
    fn batches_keep_to_the_stores_count_and_byte_limits() {
        let sizes = vec![10, 10, 10, 10, 60, 50, 200, 1];
        let batches = commit_batches(&Limited, 64, sizes, |n| *n);
        assert_eq!(batches, vec![vec![10, 10, 10], vec![10, 60], vec![50], vec![200], vec![1]]);
        assert_eq!(commit_batches(&Limited, 2, vec![1, 1, 1], |n| *n), vec![vec![1, 1], vec![1]]);
    }
}
