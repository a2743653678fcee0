//! The embedded durable backend: redb (a pure-Rust, ACID, copy-on-write B-tree in one file).
//! A commit returns only once redb has made it durable (fsync), so an acknowledged write
//! survives a crash, and a crash mid-commit leaves the previous state: nothing half-applied.
//!
//! Each entry is stored as its revision (8 bytes, big-endian) followed by the value. The
//! store's format version is recorded beside the entries; a directory written by another
//! format is refused with a message that says so, rather than misread.

use std::{path::Path, sync::Arc};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Condition, Store, StoreError, Txn, Versioned, Write};

const ENTRIES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");
/// META keys.
const FORMAT: &str = "format";
const REVISION: &str = "revision";

/// What this build writes, and the only format it reads.
pub const FORMAT_VERSION: &str = "rolecall-store/1";
/// The database file in the data directory.
const FILE: &str = "rolecall.redb";

pub struct RedbStore {
    db: Arc<Database>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Why a data directory cannot be opened, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("data directory {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
    #[error("data directory {dir} is in use by another rolecall process")]
    InUse { dir: String },
    #[error(
        "data directory {dir} was written in store format {found:?}; this rolecall reads {FORMAT_VERSION:?} only (use the rolecall version that wrote it, or a new directory)"
    )]
    Format { dir: String, found: String },
    #[error("data directory {dir}: {message}")]
    Database { dir: String, message: String },
}

impl RedbStore {
    /// Opens (or creates) the store in `dir`, with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Self, OpenError> {
        let shown = dir.display().to_string();
        std::fs::create_dir_all(dir).map_err(|source| OpenError::Io { dir: shown.clone(), source })?;
        let database = |message: String| OpenError::Database { dir: shown.clone(), message };
        let db =
            Database::builder().set_cache_size(cache_bytes).create(dir.join(FILE)).map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse { dir: shown.clone() },
                redb::DatabaseError::UpgradeRequired(v) => OpenError::Format {
                    dir: shown.clone(),
                    found: format!("an older redb file format ({v})"),
                },
                other => database(other.to_string()),
            })?;
        let txn = db.begin_write().map_err(|e| database(e.to_string()))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| database(e.to_string()))?;
            let found = meta
                .get(FORMAT)
                .map_err(|e| database(e.to_string()))?
                .map(|v| String::from_utf8_lossy(v.value()).into_owned());
            match found {
                Some(found) if found != FORMAT_VERSION => {
                    return Err(OpenError::Format { dir: shown, found });
                }
                Some(_) => {}
                None => {
                    meta.insert(FORMAT, FORMAT_VERSION.as_bytes()).map_err(|e| database(e.to_string()))?;
                }
            }
            txn.open_table(ENTRIES).map_err(|e| database(e.to_string()))?;
        }
        txn.commit().map_err(|e| database(e.to_string()))?;
        Ok(Self { db: Arc::new(db) })
    }
}

fn split(key: &str, stored: &[u8]) -> Result<Versioned, StoreError> {
    if stored.len() < 8 {
        return Err(StoreError::Corrupt {
            key: key.to_string(),
            reason: "entry shorter than its revision".into(),
        });
    }
    let (revision, value) = stored.split_at(8);
    let mut r = [0u8; 8];
    r.copy_from_slice(revision);
    Ok(Versioned { key: key.to_string(), value: value.into(), revision: u64::from_be_bytes(r) })
}

fn commit_blocking(db: &Database, txn: Txn) -> Result<u64, StoreError> {
    let write = db.begin_write().map_err(unavailable)?;
    let revision = {
        let mut entries = write.open_table(ENTRIES).map_err(unavailable)?;
        for condition in &txn.conditions {
            let holds = match condition {
                Condition::Absent(key) => entries.get(key.as_str()).map_err(unavailable)?.is_none(),
                Condition::AtRevision(key, revision) => {
                    match entries.get(key.as_str()).map_err(unavailable)? {
                        Some(v) => split(key, v.value())?.revision == *revision,
                        None => false,
                    }
                }
            };
            if !holds {
                // Dropping the transaction aborts it: nothing is written.
                return Err(StoreError::Conflict);
            }
        }
        let mut meta = write.open_table(META).map_err(unavailable)?;
        let last = match meta.get(REVISION).map_err(unavailable)? {
            Some(v) => {
                let mut r = [0u8; 8];
                r.copy_from_slice(v.value().get(..8).unwrap_or(&[0; 8]));
                u64::from_be_bytes(r)
            }
            None => 0,
        };
        let revision = last + 1;
        meta.insert(REVISION, revision.to_be_bytes().as_slice()).map_err(unavailable)?;
        for w in &txn.writes {
            match w {
                Write::Put(key, value) => {
                    let mut stored = Vec::with_capacity(8 + value.len());
                    stored.extend_from_slice(&revision.to_be_bytes());
                    stored.extend_from_slice(value);
                    entries.insert(key.as_str(), stored.as_slice()).map_err(unavailable)?;
                }
                Write::Delete(key) => {
                    entries.remove(key.as_str()).map_err(unavailable)?;
                }
            }
        }
        revision
    };
    // Durability::Immediate (redb's default): fsynced before commit returns.
    write.commit().map_err(unavailable)?;
    Ok(revision)
}

#[async_trait::async_trait]
impl Store for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let read = self.db.begin_read().map_err(unavailable)?;
        let entries = read.open_table(ENTRIES).map_err(unavailable)?;
        match entries.get(key).map_err(unavailable)? {
            Some(v) => Ok(Some(split(key, v.value())?)),
            None => Ok(None),
        }
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned>, StoreError> {
        let read = self.db.begin_read().map_err(unavailable)?;
        let entries = read.open_table(ENTRIES).map_err(unavailable)?;
        let mut out = Vec::new();
        let range = match after {
            Some(after) if after >= prefix => {
                entries.range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            }
            _ => entries.range::<&str>(prefix..),
        }
        .map_err(unavailable)?;
        for item in range {
            let (k, v) = item.map_err(unavailable)?;
            let key = k.value();
            if !key.starts_with(prefix) || out.len() == limit {
                break;
            }
            out.push(split(key, v.value())?);
        }
        Ok(out)
    }

    async fn commit(&self, txn: Txn) -> Result<u64, StoreError> {
        // An fsync takes milliseconds: off the async workers.
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || commit_blocking(&db, txn))
            .await
            .map_err(|e| StoreError::Unavailable(format!("commit task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("rolecall-redb-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[tokio::test]
    async fn commits_are_conditional_ordered_and_survive_reopening() {
        let d = dir("reopen");
        let r1;
        {
            let store = RedbStore::open(&d, 1 << 20).unwrap();
            r1 = store.commit(Txn::new().require_absent("a").put("a", b"1".to_vec())).await.unwrap();
            assert!(matches!(
                store.commit(Txn::new().require_absent("a").put("a", b"2".to_vec())).await,
                Err(StoreError::Conflict)
            ));
            // A losing transaction applies nothing, not even its other writes.
            assert!(matches!(
                store.commit(Txn::new().require_revision("a", r1 + 7).put("b", b"x".to_vec())).await,
                Err(StoreError::Conflict)
            ));
            let mut txn = Txn::new();
            for k in ["role/a", "role/b", "role/c", "user/a"] {
                txn = txn.put(k, k.as_bytes().to_vec());
            }
            store.commit(txn).await.unwrap();
        }
        let store = RedbStore::open(&d, 1 << 20).unwrap();
        let a = store.get("a").await.unwrap().unwrap();
        assert_eq!((&*a.value, a.revision), (&b"1"[..], r1));
        assert!(store.get("b").await.unwrap().is_none());
        let page = store.list("role/", None, 2).await.unwrap();
        assert_eq!(page.iter().map(|v| v.key.as_str()).collect::<Vec<_>>(), ["role/a", "role/b"]);
        let page = store.list("role/", Some("role/b"), 2).await.unwrap();
        assert_eq!(page.iter().map(|v| v.key.as_str()).collect::<Vec<_>>(), ["role/c"]);
        // Revisions go on from where they were.
        let r3 = store.commit(Txn::new().require_revision("a", r1).delete("a")).await.unwrap();
        assert!(r3 > r1 + 1);
        assert!(store.get("a").await.unwrap().is_none());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[tokio::test]
    async fn a_directory_of_another_format_or_in_use_is_refused_clearly() {
        let d = dir("format");
        let store = RedbStore::open(&d, 1 << 20).unwrap();
        let in_use = RedbStore::open(&d, 1 << 20).err().expect("refused while open");
        assert!(in_use.to_string().contains("in use by another rolecall process"), "{in_use}");
        drop(store);
        {
            let db = Database::create(d.join(FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert(FORMAT, b"rolecall-store/99".as_slice()).unwrap();
            txn.commit().unwrap();
        }
        let refused = RedbStore::open(&d, 1 << 20).err().expect("another format");
        let message = refused.to_string();
        assert!(message.contains("rolecall-store/99") && message.contains("rolecall-store/1"), "{message}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
