//! The etcd backend (feature `etcd`), so that several rolecall replicas serve one fleet.
//!
//! - A revision is etcd's `mod_revision` of the key. Conditions are etcd compares (`version
//!   == 0` for absent, `mod_revision == r` for "unchanged"), and a commit is one etcd `Txn`:
//!   atomic and linearizable.
//! - etcd takes at most 128 operations per transaction (and 1.5 MiB per request) by default.
//!   [`Store::max_writes_per_commit`] says so, and callers split bulk writes to fit.
//! - [`EtcdStore::changes`] streams the keys other writers change, from a revision on. Replicas
//!   invalidate their caches with it.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, Txn as EtcdTxn, TxnOp, WatchOptions,
};
use tokio::sync::mpsc;

use super::{Condition, Store, StoreError, Txn, Versioned, Write};

const KEEPALIVE: Duration = Duration::from_secs(5);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a broken watch may take to come back (replaying what it missed from the last
/// revision seen) before the caches are dropped: a busy replica's watch can break and
/// resume within it, and dropping every cache each time would stall it.
const WATCH_GRACE: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// etcd's default `--max-txn-ops`, less room for the conditions that guard the writes.
pub const MAX_WRITES: usize = 96;

/// etcd's default `--max-request-bytes` is 1.5 MiB; a third of it is left for the compares
/// and the framing.
pub const MAX_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    /// Every key of this deployment is under it (several deployments can share an etcd).
    prefix: String,
    /// Revisions of this process's own recent commits: their echo in the watch changes
    /// nothing this process does not already know (its commits invalidate its caches).
    own: std::sync::Arc<std::sync::Mutex<OwnRevisions>>,
    /// Reads see the store as of this revision ([`EtcdStore::as_of`]): a consistent export.
    as_of: Option<i64>,
}

/// A bounded set of recent revisions.
#[derive(Default)]
struct OwnRevisions {
    order: std::collections::VecDeque<u64>,
    set: std::collections::HashSet<u64>,
}

impl OwnRevisions {
    const KEEP: usize = 65_536;

    fn insert(&mut self, revision: u64) {
        if self.set.insert(revision) {
            self.order.push_back(revision);
            if self.order.len() > Self::KEEP
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

fn unavailable(e: etcd_client::Error) -> StoreError {
    StoreError::Unavailable(format!("etcd: {e}"))
}

/// A KV request, given up after REQUEST_TIMEOUT.
async fn bounded<T>(
    request: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(result) => result.map_err(unavailable),
        Err(_) => Err(StoreError::Unavailable(format!("etcd: no answer within {REQUEST_TIMEOUT:?}"))),
    }
}

/// The key just after every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// What a replica hears from the watch.
#[derive(Debug)]
pub enum Change {
    /// These keys (without the deployment prefix) changed at this revision.
    Keys(Vec<String>, u64),
    /// The watch lost history (compaction, or a gap it cannot replay): forget every cache.
    Everything,
    /// The watch has been down past its grace period: this replica no longer hears the
    /// others, and should not be sent traffic.
    Down,
    /// The watch is back after [`Change::Down`].
    Up,
}

/// Where the cluster is and how to reach it (the configuration's `storage.etcd_*`, checked
/// there: endpoints all https:// with a CA, or all http://).
#[derive(Clone, Debug, Default)]
pub struct EtcdSettings {
    /// The cluster's client URLs.
    pub endpoints: Vec<String>,
    /// Every key of this deployment is under it.
    pub prefix: String,
    /// With https:// endpoints: the CA (PEM) that signed etcd's certificate.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key (PEM), for an etcd started with --client-cert-auth.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

/// Why the store could not reach etcd.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("{}: {source}", path.display())]
    File { path: PathBuf, source: std::io::Error },
    #[error("etcd {endpoints:?}: {source}")]
    Connect { endpoints: Vec<String>, source: etcd_client::Error },
    #[error(
        "etcd {endpoints:?} did not answer ({source}); check the endpoints and, with https://, storage.etcd_ca_file and the client certificate (etcd_cert_file, etcd_key_file)"
    )]
    NoAnswer { endpoints: Vec<String>, source: StoreError },
}

/// TLS to etcd (https:// endpoints): etcd's CA, and a client certificate where one is
/// configured.
fn tls_options(settings: &EtcdSettings) -> Result<Option<etcd_client::TlsOptions>, EtcdError> {
    let Some(ca) = &settings.ca_file else { return Ok(None) };
    let read =
        |path: &Path| std::fs::read(path).map_err(|source| EtcdError::File { path: path.into(), source });
    let mut tls =
        etcd_client::TlsOptions::new().ca_certificate(etcd_client::Certificate::from_pem(read(ca)?));
    if let Some((cert, key)) = &settings.client_identity {
        tls = tls.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(Some(tls))
}

impl EtcdStore {
    /// Connects, and reads the store's revision at once: connecting is lazy, so this first
    /// request is what finds a wrong endpoint, CA or certificate. The revision is what the
    /// caller's view starts from (a watch, a snapshot).
    pub async fn connect(settings: &EtcdSettings) -> Result<(Self, u64), EtcdError> {
        let (endpoints, prefix) = (&settings.endpoints, &settings.prefix);
        // HTTP/2 keepalives notice a silent partition within KEEPALIVE + KEEPALIVE_TIMEOUT;
        // a KV request waits at most REQUEST_TIMEOUT (not the channel's timeout, which
        // would also cut the long-lived watch): a replica cut off from etcd answers errors
        // soon, not stale data forever.
        let options = ConnectOptions::new()
            .with_keep_alive(KEEPALIVE, KEEPALIVE_TIMEOUT)
            .with_keep_alive_while_idle(true)
            .with_connect_timeout(REQUEST_TIMEOUT);
        let options = match tls_options(settings)? {
            Some(tls) => options.with_tls(tls),
            None => options,
        };
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|source| EtcdError::Connect { endpoints: endpoints.clone(), source })?;
        let store = Self { client, prefix: prefix.to_string(), own: Default::default(), as_of: None };
        let revision = store
            .revision()
            .await
            .map_err(|source| EtcdError::NoAnswer { endpoints: endpoints.clone(), source })?;
        Ok((store, revision))
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn versioned(&self, kv: &etcd_client::KeyValue) -> Result<Versioned, StoreError> {
        let key = String::from_utf8_lossy(kv.key());
        let key = key.strip_prefix(&self.prefix).unwrap_or(&key).to_string();
        Ok(Versioned {
            key,
            value: kv.value().into(),
            revision: u64::try_from(kv.mod_revision()).unwrap_or(0),
        })
    }

    /// This store as it was at `revision`, for reading: every page of a listing then comes
    /// from one point in time, whatever is written meanwhile (until etcd compacts it away,
    /// which fails the read rather than mixing times). Commits are refused.
    pub fn as_of(&self, revision: u64) -> Self {
        Self { as_of: Some(i64::try_from(revision).unwrap_or(i64::MAX)), ..self.clone() }
    }

    /// The store's current revision.
    pub async fn revision(&self) -> Result<u64, StoreError> {
        let mut kv = self.client.kv_client();
        let response =
            kv.get(self.full(""), Some(GetOptions::new().with_limit(1))).await.map_err(unavailable)?;
        Ok(response.header().map_or(0, |h| u64::try_from(h.revision()).unwrap_or(0)))
    }

    /// Every change under the prefix after revision `after`, for as long as the receiver
    /// lives. The watch is re-established after etcd restarts, from the last revision seen;
    /// where that history is gone, [`Change::Everything`] says so.
    pub fn changes(&self, after: u64) -> mpsc::Receiver<Change> {
        let (tx, rx) = mpsc::channel(1024);
        let store = self.clone();
        tokio::spawn(async move {
            let mut next = after + 1;
            let mut backoff = std::time::Duration::from_millis(50);
            // Since when the watch has been down, and whether the caches were told.
            let mut down: Option<(tokio::time::Instant, bool)> = None;
            loop {
                if tx.is_closed() {
                    return;
                }
                let options = WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(i64::try_from(next).unwrap_or(i64::MAX));
                let mut client = store.client.clone();
                match client.watch(store.prefix.clone(), Some(options)).await {
                    Ok(mut stream) => {
                        while let Ok(Some(response)) = stream.message().await {
                            {
                                backoff = std::time::Duration::from_millis(50);
                                if matches!(down.take(), Some((_, true))) {
                                    tracing::info!("etcd watch back");
                                    if tx.send(Change::Up).await.is_err() {
                                        return;
                                    }
                                }
                                if response.compact_revision() > 0 || response.canceled() {
                                    // History gone: start over from now, forgetting everything.
                                    if tx.send(Change::Everything).await.is_err() {
                                        return;
                                    }
                                    next = store.revision().await.unwrap_or(next) + 1;
                                    break;
                                }
                                let mut keys = Vec::new();
                                let mut revision = next;
                                let mut seen = false;
                                for event in response.events() {
                                    if let Some(kv) = event.kv() {
                                        let at = u64::try_from(kv.mod_revision()).unwrap_or(0);
                                        revision = revision.max(at);
                                        seen = true;
                                        if store.own.lock().is_ok_and(|own| own.set.contains(&at)) {
                                            continue;
                                        }
                                        let key = String::from_utf8_lossy(kv.key()).into_owned();
                                        keys.push(
                                            key.strip_prefix(&store.prefix).unwrap_or(&key).to_string(),
                                        );
                                    }
                                }
                                if seen {
                                    next = revision + 1;
                                }
                                if !keys.is_empty() && tx.send(Change::Keys(keys, revision)).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "etcd watch failed; retrying"),
                }
                // The watch resumes from the last revision seen, so nothing is missed if it
                // comes back; if it stays down past the grace period, what happens meanwhile
                // is unknown, and the caches must not serve it.
                let (since, told) = down.get_or_insert((tokio::time::Instant::now(), false));
                if !*told && since.elapsed() >= WATCH_GRACE {
                    tracing::warn!("etcd watch down for {WATCH_GRACE:?}: caches dropped until it is back");
                    *told = true;
                    if tx.send(Change::Everything).await.is_err() || tx.send(Change::Down).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
            }
        });
        rx
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let mut kv = self.client.kv_client();
        let options = self.as_of.map(|revision| GetOptions::new().with_revision(revision));
        let response = bounded(kv.get(self.full(key), options)).await?;
        response.kvs().first().map(|kv| self.versioned(kv)).transpose()
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Versioned>, StoreError> {
        let full_prefix = self.full(prefix);
        let start = match after {
            Some(after) if after >= prefix => {
                let mut start = self.full(after).into_bytes();
                start.push(0);
                start
            }
            _ => full_prefix.clone().into_bytes(),
        };
        let mut options = GetOptions::new()
            .with_range(prefix_end(full_prefix.as_bytes()))
            .with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        if let Some(revision) = self.as_of {
            options = options.with_revision(revision);
        }
        let mut kv = self.client.kv_client();
        let response = bounded(kv.get(start, Some(options))).await?;
        response.kvs().iter().map(|kv| self.versioned(kv)).collect()
    }

    async fn commit(&self, txn: Txn) -> Result<u64, StoreError> {
        if self.as_of.is_some() {
            return Err(StoreError::Unavailable("a store read as of a past revision takes no writes".into()));
        }
        let compares: Vec<Compare> = txn
            .conditions
            .iter()
            .map(|c| match c {
                Condition::Absent(key) => Compare::version(self.full(key), CompareOp::Equal, 0),
                Condition::AtRevision(key, revision) => Compare::mod_revision(
                    self.full(key),
                    CompareOp::Equal,
                    i64::try_from(*revision).unwrap_or(i64::MAX),
                ),
            })
            .collect();
        let bytes: usize = txn
            .writes
            .iter()
            .map(|w| match w {
                Write::Put(key, value) => key.len() + value.len(),
                Write::Delete(key) => key.len(),
            })
            .sum();
        if bytes > MAX_BYTES {
            return Err(StoreError::Unavailable(format!(
                "a commit of {bytes} bytes is over etcd's request limit ({MAX_BYTES} bytes allowed)"
            )));
        }
        let ops: Vec<TxnOp> = txn
            .writes
            .into_iter()
            .map(|w| match w {
                Write::Put(key, value) => TxnOp::put(self.full(&key), value, None),
                Write::Delete(key) => TxnOp::delete(self.full(&key), None),
            })
            .collect();
        let mut kv = self.client.kv_client();
        let response = bounded(kv.txn(EtcdTxn::new().when(compares).and_then(ops))).await?;
        if !response.succeeded() {
            return Err(StoreError::Conflict);
        }
        let revision = response.header().map_or(0, |h| u64::try_from(h.revision()).unwrap_or(0));
        if let Ok(mut own) = self.own.lock() {
            own.insert(revision);
        }
        Ok(revision)
    }

    fn max_writes_per_commit(&self) -> usize {
        MAX_WRITES
    }

    fn max_bytes_per_commit(&self) -> usize {
        MAX_BYTES
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefix_ends_bound_exactly_the_prefix() {
        assert_eq!(super::prefix_end(b"rolecall/"), b"rolecall0");
        assert_eq!(super::prefix_end(b"a\xff"), b"b");
    }
}
