//! Paging as AWS does it: IAM's Marker/MaxItems/IsTruncated and EC2's NextToken/MaxResults,
//! with opaque markers.

use data_encoding::BASE64URL_NOPAD;
use serde::de::DeserializeOwned;

use super::{Catalog, decode, store_error};
use crate::domain::{Error, Result};

/// One page of a list and the marker of the next (None on the last page).
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

fn bad_marker() -> Error {
    Error::invalid_input("Invalid Marker.")
}

pub(super) fn encode_marker(position: &str) -> String {
    BASE64URL_NOPAD.encode(position.as_bytes())
}

pub(super) fn decode_marker(marker: &str) -> Result<Option<String>> {
    if marker.is_empty() {
        return Ok(None);
    }
    let raw = BASE64URL_NOPAD.decode(marker.as_bytes()).map_err(|_| bad_marker())?;
    String::from_utf8(raw).map(Some).map_err(|_| bad_marker())
}

/// Pages a list held in memory (a role's policies, tags, ...): the marker is an offset.
pub(super) fn page_vec<T>(items: Vec<T>, marker: &str, max: usize) -> Result<Page<T>> {
    let start = match decode_marker(marker)? {
        None => 0,
        Some(s) => s.parse::<usize>().map_err(|_| bad_marker())?,
    };
    let total = items.len();
    let items: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let end = start + items.len();
    Ok(Page { items, next_marker: (end < total).then(|| encode_marker(&end.to_string())) })
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_marker: self.next_marker }
    }
}

impl Catalog {
    /// Pages the records under `prefix` that `keep` accepts; the marker is the last key.
    pub(super) async fn page_records<T: DeserializeOwned>(
        &self,
        prefix: &str,
        marker: &str,
        max: usize,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Page<T>> {
        let mut after = decode_marker(marker)?;
        let mut items = Vec::new();
        let mut last_key = String::new();
        let chunk = (max + 1).max(64);
        loop {
            let batch = self.store.list(prefix, after.as_deref(), chunk).await.map_err(store_error)?;
            let exhausted = batch.len() < chunk;
            for entry in batch {
                let record: T = decode(&entry.key, &entry.value)?;
                if keep(&record) {
                    if items.len() == max {
                        // One more exists: this page ends at the last key taken.
                        return Ok(Page { items, next_marker: Some(encode_marker(&last_key)) });
                    }
                    items.push(record);
                    last_key.clone_from(&entry.key);
                }
                after = Some(entry.key);
            }
            if exhausted {
                return Ok(Page { items, next_marker: None });
            }
        }
    }
}
