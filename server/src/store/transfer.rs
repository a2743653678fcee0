//! A whole store as a file of sealed values: a backup of the embedded store, and the way from
//! one backend to another (redb to etcd, when one process becomes several).
//!
//! The file is JSON lines: a header naming its format and the store format, one line per
//! entry (the store key and the sealed value, base64), and an end line with the count, so a
//! truncated file is refused. Values stay sealed: the file is as safe at rest as the store,
//! and importing needs the master key that sealed them.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use super::{FORMAT_VERSION, SealedStore, StoreError, Txn, commit_batches};

/// Why an export could not be written or an import was refused (nothing was written then).
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("writing the export: {0}")]
    Write(std::io::Error),
    #[error("reading the export: {0}")]
    Read(std::io::Error),
    #[error("line {line}: {source}")]
    Syntax { line: usize, source: serde_json::Error },
    #[error("line {line}: a header inside the export")]
    HeaderInside { line: usize },
    #[error("line {line}: after the end line")]
    AfterEnd { line: usize },
    #[error(
        "an export in {format:?} of store format {store_format:?}; this rolecall reads {EXPORT_FORMAT:?} of {FORMAT_VERSION:?}"
    )]
    Format { format: String, store_format: String },
    #[error("not a rolecall export: no header line")]
    NoHeader,
    #[error("line {line}: the value of {key}: {source}")]
    Value { line: usize, key: String, source: data_encoding::DecodeError },
    #[error(
        "{key} does not open with the configured master keys: import with the master key that sealed the export"
    )]
    DoesNotOpen { key: String },
    #[error("the export says {says} entries and holds {holds}")]
    Count { says: u64, holds: u64 },
    #[error("the export is truncated: no end line")]
    Truncated,
    #[error("the destination store is not empty: import into a store no server has started on")]
    NotEmpty,
    #[error("{context}: {source}")]
    Store { context: &'static str, source: StoreError },
}

/// What an export file says it is.
pub const EXPORT_FORMAT: &str = "rolecall-export/1";

/// Entries read per page, and written per commit.
const BATCH: usize = 64;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Header { format: String, store_format: String },
    Entry { key: String, value: String },
    End { entries: u64 },
}

/// Writes every entry of `store` to `out`; how many.
pub async fn export(store: &SealedStore, out: &mut dyn Write) -> Result<u64, TransferError> {
    let write = |out: &mut dyn Write, line: &Line| -> Result<(), TransferError> {
        let text = serde_json::to_string(line).map_err(|e| TransferError::Write(e.into()))?;
        writeln!(out, "{text}").map_err(TransferError::Write)
    };
    write(out, &Line::Header { format: EXPORT_FORMAT.into(), store_format: FORMAT_VERSION.into() })?;
    let mut entries = 0u64;
    let mut after: Option<String> = None;
    loop {
        let page = store
            .raw()
            .list("", after.as_deref(), BATCH)
            .await
            .map_err(|source| TransferError::Store { context: "reading the store", source })?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for v in &page {
            write(out, &Line::Entry { key: v.key.clone(), value: data_encoding::BASE64.encode(&v.value) })?;
        }
        entries += page.len() as u64;
    }
    write(out, &Line::End { entries })?;
    out.flush().map_err(TransferError::Write)?;
    Ok(entries)
}

/// Reads an export into `store`, which must be empty; how many entries. Nothing is written
/// unless the whole file is well-formed, complete, and opens with the configured master keys.
pub async fn import(store: &SealedStore, input: &mut dyn BufRead) -> Result<u64, TransferError> {
    let mut entries = Vec::new();
    let mut header = false;
    let mut end = None;
    for (n, line) in input.lines().enumerate() {
        let line_no = n + 1;
        let line = line.map_err(TransferError::Read)?;
        if end.is_some() {
            return Err(TransferError::AfterEnd { line: line_no });
        }
        match serde_json::from_str::<Line>(&line)
            .map_err(|source| TransferError::Syntax { line: line_no, source })?
        {
            Line::Header { format, store_format } => {
                if header || n != 0 {
                    return Err(TransferError::HeaderInside { line: line_no });
                }
                if format != EXPORT_FORMAT || store_format != FORMAT_VERSION {
                    return Err(TransferError::Format { format, store_format });
                }
                header = true;
            }
            Line::Entry { .. } | Line::End { .. } if !header => return Err(TransferError::NoHeader),
            Line::Entry { key, value } => {
                let value = match data_encoding::BASE64.decode(value.as_bytes()) {
                    Ok(value) => value,
                    Err(source) => return Err(TransferError::Value { line: line_no, key, source }),
                };
                if !store.opens(&key, &value) {
                    return Err(TransferError::DoesNotOpen { key });
                }
                entries.push((key, value));
            }
            Line::End { entries: count } => end = Some(count),
        }
    }
    match end {
        Some(count) if count == entries.len() as u64 => {}
        Some(says) => return Err(TransferError::Count { says, holds: entries.len() as u64 }),
        None => return Err(TransferError::Truncated),
    }
    let existing = store
        .raw()
        .list("", None, 1)
        .await
        .map_err(|source| TransferError::Store { context: "reading the destination", source })?;
    if !existing.is_empty() {
        return Err(TransferError::NotEmpty);
    }
    let count = entries.len() as u64;
    for chunk in commit_batches(store.raw().as_ref(), BATCH, entries, |(k, v)| k.len() + v.len()) {
        let mut txn = Txn::new();
        for (key, value) in chunk {
            txn = txn.require_absent(key.clone()).put(key, value);
        }
        store
            .raw()
            .commit(txn)
            .await
            .map_err(|source| TransferError::Store { context: "importing", source })?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        domain::master_key::{MasterKey, MasterKeys},
        store::{MemoryStore, Store},
    };

    fn sealed(backend: Arc<dyn Store>, hex: &str) -> SealedStore {
        SealedStore::new(backend, MasterKeys::new(MasterKey::parse(&hex.repeat(32)).unwrap(), vec![]))
    }

    #[tokio::test]
    async fn an_export_imports_whole_or_not_at_all() {
        let source = sealed(Arc::new(MemoryStore::default()), "11");
        for n in 0..150 {
            source.commit(Txn::new().put(format!("iam/user/u{n:03}"), vec![n as u8; 8])).await.unwrap();
        }
        let mut file = Vec::new();
        assert_eq!(export(&source, &mut file).await.unwrap(), 150);
        let text = String::from_utf8(file.clone()).unwrap();
        let plain = data_encoding::BASE64.encode(&[7u8; 8]);
        assert!(text.contains("iam/user/u007") && !text.contains(&plain), "values stay sealed");

        let destination = sealed(Arc::new(MemoryStore::default()), "11");
        assert_eq!(import(&destination, &mut file.as_slice()).await.unwrap(), 150);
        assert_eq!(&*destination.get("iam/user/u149").await.unwrap().unwrap().value, &[149u8; 8]);
        let again = import(&destination, &mut file.as_slice()).await.unwrap_err().to_string();
        assert!(again.contains("not empty"), "{again}");

        let refuse = |bytes: Vec<u8>, hex: &'static str| async move {
            let empty = sealed(Arc::new(MemoryStore::default()), hex);
            let err = import(&empty, &mut bytes.as_slice()).await.unwrap_err();
            assert!(empty.raw().list("", None, 1).await.unwrap().is_empty(), "nothing written");
            err.to_string()
        };
        let truncated: Vec<u8> = text.lines().take(100).flat_map(|l| format!("{l}\n").into_bytes()).collect();
        assert!(refuse(truncated, "11").await.contains("truncated"));
        assert!(refuse(file.clone(), "22").await.contains("does not open with the configured master keys"));
        assert!(refuse(b"{\"end\":{\"entries\":0}}\n".to_vec(), "11").await.contains("no header"));
        let other = text.replacen(EXPORT_FORMAT, "rolecall-export/9", 1).into_bytes();
        assert!(refuse(other, "11").await.contains("this rolecall reads"));
    }
}
