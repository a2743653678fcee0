//! Custody of state and of the server's own keys across restarts.
//!
//! - [`open_store`]: the configured backend (redb in a data directory, or memory), sealed
//!   at rest under the master key.
//! - The key ring and the identity signing key live in that store. A restart therefore does
//!   not invalidate credentials, IMDS tokens or identity signatures issued before it.
//! - The ring rotates by persist-then-install. A key seals nothing before the store holds it,
//!   so whatever was sealed can be opened after a crash.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use crate::{
    domain::{
        Error, Result,
        clock::Clock,
        identity::IdentitySigner,
        keyring::{KeyRing, KeyRingPolicy, RingSnapshot},
        master_key::{MasterKey, MasterKeys},
    },
    store::{MemoryStore, RedbStore, Resealed, SealedStore, Store, StoreError, Txn},
    telemetry::Metrics,
};

/// Which store holds the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Gone at exit (tests, benchmarks).
    Memory,
    /// Durable, embedded, in the data directory.
    Redb,
    /// Shared by replicas (builds with the `etcd` feature).
    Etcd,
}

/// What custody needs to open the store: which backend, where, and the master keys that
/// seal it (`config::StorageSettings::custody` builds it from the configuration).
#[derive(Clone, Debug)]
pub struct StoreSettings {
    pub backend: Backend,
    /// redb's directory, and where a master key is made when none is given.
    pub data_dir: PathBuf,
    /// redb's page cache.
    pub redb_cache_bytes: usize,
    /// The master key's file (ROLECALL_MASTER_KEY takes precedence).
    pub master_key_file: Option<PathBuf>,
    /// Previous master keys' files, which open but never seal.
    pub previous_master_key_files: Vec<PathBuf>,
    #[cfg(feature = "etcd")]
    pub etcd: crate::store::etcd::EtcdSettings,
}

/// The root users' access keys as configured (`config::Config::root_keys` builds it); the
/// secrets are read from where these say, never held here.
#[derive(Clone, Debug, Default)]
pub struct RootKeySettings {
    /// The default account's root key id, and the file of its secret
    /// (ROLECALL_ROOT_SECRET_ACCESS_KEY takes precedence).
    pub default: Option<DefaultRoot>,
    /// Further accounts' root keys: (account id, access key id, the secret's file).
    pub accounts: Vec<(String, String, PathBuf)>,
}

#[derive(Clone, Debug)]
pub struct DefaultRoot {
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key_file: Option<PathBuf>,
}

/// Store keys of the server's own (outside every account's prefix).
pub const KEY_RING: &str = "system/key-ring";
pub const IDENTITY_KEY: &str = "system/identity-key";

/// How often the keeper checks whether the key ring is due to rotate.
const ROTATION_CHECK: Duration = Duration::from_secs(1);

fn store_failure(e: StoreError) -> Error {
    Error::service_failure(format!("store: {e}"))
}

/// Why the store or the server's own keys could not be had: each with where it came from.
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    /// A file that could not be read or written: `what` it is, and where.
    #[error("{}: {source}", named(what, path))]
    File { what: &'static str, path: PathBuf, source: std::io::Error },
    /// A master key that is not one (`place`: the variable or the file it came from).
    #[error("{place}: {}", source.message)]
    BadMasterKey { place: String, source: Error },
    #[error("no master key: give the one that sealed the data (ROLECALL_MASTER_KEY or --master-key-file)")]
    NoMasterKey,
    #[error("storage.backend = memory keeps nothing at rest")]
    NothingAtRest,
    #[cfg(not(feature = "etcd"))]
    #[error("storage.backend = etcd needs a build with `--features etcd`")]
    EtcdNotBuilt,
    #[error(
        "storage.backend = etcd needs the master key every replica shares: ROLECALL_MASTER_KEY or storage.master_key_file"
    )]
    EtcdNeedsMasterKey,
    #[error(
        "auth.root_access_key_id needs its secret: ROLECALL_ROOT_SECRET_ACCESS_KEY or auth.root_secret_access_key_file"
    )]
    NoRootSecret,
    #[error(
        "the root secret access key of {account_id} must be at least 40 printable characters (openssl rand -base64 30)"
    )]
    WeakRootSecret { account_id: String },
    #[error(transparent)]
    Open(#[from] crate::store::OpenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transfer(#[from] crate::store::transfer::TransferError),
    #[cfg(feature = "etcd")]
    #[error(transparent)]
    Etcd(#[from] crate::store::etcd::EtcdError),
}

/// A file as errors name it: what it is, then its path.
fn named(what: &str, path: &Path) -> String {
    if what.is_empty() { path.display().to_string() } else { format!("{what} {}", path.display()) }
}

fn file_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CustodyError {
    let path = path.to_path_buf();
    move |source| CustodyError::File { what, path, source }
}

fn bad_key(place: impl Into<String>) -> impl FnOnce(Error) -> CustodyError {
    let place = place.into();
    move |source| CustodyError::BadMasterKey { place, source }
}

/// The master key: ROLECALL_MASTER_KEY, else `storage.master_key_file`, else
/// `DATA_DIR/master.key` (made on first start, with a warning).
fn master_key(config: &StoreSettings) -> std::result::Result<MasterKey, CustodyError> {
    if let Ok(text) = std::env::var("ROLECALL_MASTER_KEY") {
        return MasterKey::parse(&text).map_err(bad_key("ROLECALL_MASTER_KEY"));
    }
    let (path, configured) = match &config.master_key_file {
        Some(path) => (path.clone(), true),
        None => (config.data_dir.join("master.key"), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => MasterKey::parse(&text).map_err(bad_key(path.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !configured => {
            make_key_file(&path)?;
            tracing::warn!(
                path = %path.display(),
                "made a master key beside the data it seals; move it elsewhere (storage.master_key_file or ROLECALL_MASTER_KEY) for protection at rest"
            );
            let text = std::fs::read_to_string(&path).map_err(file_error("", &path))?;
            MasterKey::parse(&text).map_err(bad_key(path.display().to_string()))
        }
        Err(e) => Err(file_error("master key file", &path)(e)),
    }
}

/// Whether the operator gave the master key (rather than leaving one to be found, or made, in
/// the data directory).
fn master_key_configured(config: &StoreSettings) -> bool {
    std::env::var_os("ROLECALL_MASTER_KEY").is_some() || config.master_key_file.is_some()
}

/// The master key and the previous ones (ROLECALL_PREVIOUS_MASTER_KEYS, comma-separated,
/// and `storage.previous_master_key_files`), which open but never seal.
fn master_keys(config: &StoreSettings) -> std::result::Result<MasterKeys, CustodyError> {
    let current = master_key(config)?;
    let mut previous = Vec::new();
    if let Ok(list) = std::env::var("ROLECALL_PREVIOUS_MASTER_KEYS") {
        for (n, text) in list.split(',').filter(|t| !t.trim().is_empty()).enumerate() {
            let place = format!("ROLECALL_PREVIOUS_MASTER_KEYS, key {}", n + 1);
            previous.push(MasterKey::parse(text).map_err(bad_key(place))?);
        }
    }
    for path in &config.previous_master_key_files {
        let text = std::fs::read_to_string(path).map_err(file_error("previous master key file", path))?;
        previous.push(MasterKey::parse(&text).map_err(bad_key(path.display().to_string()))?);
    }
    if !previous.is_empty() {
        tracing::info!(
            previous = previous.len(),
            "previous master keys open what they sealed; run `rolecall store reseal`, then remove them"
        );
    }
    Ok(MasterKeys::new(current, previous))
}

/// The configured durable store, for the `rolecall store` tools. On redb the server must be
/// stopped (it holds the directory); on etcd the replicas may keep serving. The tools never
/// make a master key: one they did not find could not open anything.
async fn tool_store(
    config: &StoreSettings,
    // Read etcd as of one revision (redb needs nothing: the tool is its one process).
    #[cfg_attr(not(feature = "etcd"), allow(unused_variables))] snapshot: bool,
) -> std::result::Result<SealedStore, CustodyError> {
    let given = master_key_configured(config);
    let beside = config.backend != Backend::Etcd && config.data_dir.join("master.key").exists();
    if !given && !beside {
        return Err(CustodyError::NoMasterKey);
    }
    Ok(match config.backend {
        Backend::Memory => return Err(CustodyError::NothingAtRest),
        #[cfg(feature = "etcd")]
        Backend::Etcd => {
            let (mut etcd, now) = crate::store::etcd::EtcdStore::connect(&config.etcd).await?;
            if snapshot {
                etcd = etcd.as_of(now);
            }
            SealedStore::new(Arc::new(etcd), master_keys(config)?)
        }
        #[cfg(not(feature = "etcd"))]
        Backend::Etcd => return Err(CustodyError::EtcdNotBuilt),
        // One process holds a redb directory: the tool's view of it cannot change.
        Backend::Redb => {
            let redb = RedbStore::open(&config.data_dir, config.redb_cache_bytes)?;
            SealedStore::new(Arc::new(redb), master_keys(config)?)
        }
    })
}

/// Rewrites under the current master key every value a previous one sealed
/// (`rolecall store reseal`).
pub async fn reseal(config: &StoreSettings) -> std::result::Result<Resealed, CustodyError> {
    Ok(tool_store(config, false).await?.reseal().await?)
}

/// Writes the whole store, sealed, to `path` (`rolecall store export`); how many entries.
pub async fn export(config: &StoreSettings, path: &Path) -> std::result::Result<u64, CustodyError> {
    // etcd: every page as of one revision, so the copy is consistent while replicas write.
    let store = tool_store(config, true).await?;
    let file = std::fs::File::create_new(path).map_err(file_error("", path))?;
    let mut out = std::io::BufWriter::new(file);
    Ok(crate::store::transfer::export(&store, &mut out).await?)
}

/// Reads an export into the configured store, which must be empty (`rolecall store import`).
pub async fn import(config: &StoreSettings, path: &Path) -> std::result::Result<u64, CustodyError> {
    let store = tool_store(config, false).await?;
    let file = std::fs::File::open(path).map_err(file_error("", path))?;
    Ok(crate::store::transfer::import(&store, &mut std::io::BufReader::new(file)).await?)
}

/// The root users' keys: the default account's (`auth.root_access_key_id`, its secret from
/// ROLECALL_ROOT_SECRET_ACCESS_KEY or `auth.root_secret_access_key_file`), and further
/// accounts' (`auth.account_roots`, secrets in files).
pub fn root_keys(config: &RootKeySettings) -> std::result::Result<Vec<crate::sts::RootKey>, CustodyError> {
    let mut roots = Vec::new();
    if let Some(root) = &config.default {
        let secret = match (std::env::var("ROLECALL_ROOT_SECRET_ACCESS_KEY"), &root.secret_access_key_file) {
            (Ok(secret), _) => secret,
            (Err(_), Some(path)) => read_secret(path)?,
            (Err(_), None) => return Err(CustodyError::NoRootSecret),
        };
        roots.push(root_key(&root.account_id, root.access_key_id.clone(), secret)?);
    }
    for (account_id, access_key_id, secret_file) in &config.accounts {
        let secret = read_secret(secret_file)?;
        roots.push(root_key(account_id, access_key_id.clone(), secret)?);
    }
    Ok(roots)
}

fn read_secret(path: &Path) -> std::result::Result<String, CustodyError> {
    std::fs::read_to_string(path).map_err(file_error("root secret access key file", path))
}

fn root_key(
    account_id: &str,
    access_key_id: String,
    secret: String,
) -> std::result::Result<crate::sts::RootKey, CustodyError> {
    let secret = secret.trim().to_string();
    if secret.len() < 40 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CustodyError::WeakRootSecret { account_id: account_id.to_string() });
    }
    tracing::info!(account = %account_id, access_key_id = %access_key_id, "a root user's access key is configured");
    Ok(crate::sts::RootKey {
        account_id: account_id.to_string(),
        access_key_id,
        secret_access_key: crate::domain::model::Secret(secret),
    })
}

/// Writes a new master key, readable by its owner only.
fn make_key_file(path: &Path) -> std::result::Result<(), CustodyError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(file_error("", dir))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(file_error("", path))?;
    writeln!(file, "{}", MasterKey::generate()).map_err(file_error("", path))
}

/// The opened store, and where other replicas' changes arrive (etcd).
pub struct Opened {
    pub store: Arc<dyn Store>,
    #[cfg(feature = "etcd")]
    pub changes: Option<tokio::sync::mpsc::Receiver<crate::store::etcd::Change>>,
}

/// The configured store: memory, redb or etcd, the durable ones sealed under the master key.
pub async fn open_store(config: &StoreSettings) -> std::result::Result<Opened, CustodyError> {
    let store: Arc<dyn Store> = match config.backend {
        Backend::Memory => Arc::new(MemoryStore::default()),
        #[cfg(feature = "etcd")]
        Backend::Etcd => {
            if !master_key_configured(config) {
                return Err(CustodyError::EtcdNeedsMasterKey);
            }
            let keys = master_keys(config)?;
            // Changes after the connection's revision invalidate this replica's caches
            // (which start empty).
            let (etcd, from) = crate::store::etcd::EtcdStore::connect(&config.etcd).await?;
            let changes = etcd.changes(from);
            tracing::info!(endpoints = ?config.etcd.endpoints, prefix = %config.etcd.prefix, "state in etcd, sealed at rest");
            return Ok(Opened {
                store: Arc::new(SealedStore::new(Arc::new(etcd), keys)),
                changes: Some(changes),
            });
        }
        #[cfg(not(feature = "etcd"))]
        Backend::Etcd => return Err(CustodyError::EtcdNotBuilt),
        Backend::Redb => {
            let keys = master_keys(config)?;
            let redb = RedbStore::open(&config.data_dir, config.redb_cache_bytes)?;
            tracing::info!(dir = %config.data_dir.display(), "state in redb, sealed at rest");
            Arc::new(SealedStore::new(Arc::new(redb), keys))
        }
    };
    Ok(Opened {
        store,
        #[cfg(feature = "etcd")]
        changes: None,
    })
}

/// Applies other replicas' changes to this one's caches: a changed record is forgotten
/// (and compiled policies rebuilt for IAM records); a changed key ring is installed.
#[cfg(feature = "etcd")]
pub fn follow(
    mut changes: tokio::sync::mpsc::Receiver<crate::store::etcd::Change>,
    accounts: Arc<crate::catalog::Accounts>,
    keeper: Arc<KeyKeeper>,
    in_sync: tokio::sync::watch::Sender<bool>,
) {
    use crate::store::etcd::Change;
    tokio::spawn(async move {
        while let Some(change) = changes.recv().await {
            let ring_changed = match change {
                Change::Keys(keys, _) => {
                    for key in &keys {
                        accounts.invalidate(key);
                    }
                    keys.iter().any(|k| k == KEY_RING)
                }
                Change::Everything => {
                    accounts.invalidate_all();
                    true
                }
                Change::Down | Change::Up => {
                    in_sync.send_replace(matches!(change, Change::Up));
                    false
                }
            };
            if ring_changed && let Err(e) = keeper.refresh().await {
                tracing::error!(error = %e, "cannot reload the key ring another replica changed");
            }
        }
    });
}

/// The stored key ring with a new key of this process's staged in it (to be activated by
/// the keeper, so that every process seals with a key of its own and seal counts start at
/// zero), or a new ring. With the store revision it was written at, for the keeper.
pub async fn load_key_ring(
    store: &Arc<dyn Store>,
    policy: KeyRingPolicy,
    now: i64,
) -> Result<(Arc<KeyRing>, u64)> {
    for _ in 0..8 {
        let (next, txn) = match store.get(KEY_RING).await.map_err(store_failure)? {
            Some(stored) => {
                let ring = KeyRing::restore(policy, &parse_ring(&stored.value)?)?;
                (ring.with_new_key(now)?, Txn::new().require_revision(KEY_RING, stored.revision))
            }
            None => (KeyRing::new(policy, now).snapshot()?, Txn::new().require_absent(KEY_RING)),
        };
        match store.commit(txn.put(KEY_RING, ring_bytes(&next)?)).await {
            Ok(revision) => return Ok((Arc::new(KeyRing::restore(policy, &next)?), revision)),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(store_failure(e)),
        }
    }
    Err(Error::service_failure("the stored key ring kept changing under us"))
}

fn parse_ring(bytes: &[u8]) -> Result<RingSnapshot> {
    serde_json::from_slice(bytes).map_err(|e| Error::service_failure(format!("stored key ring: {e}")))
}

fn ring_bytes(ring: &RingSnapshot) -> Result<Vec<u8>> {
    serde_json::to_vec(ring).map_err(|e| Error::service_failure(e.to_string()))
}

/// Rotates the key ring on its schedule, in two persisted steps: a new key is staged (written
/// to the store, known to every replica that reads it, used by none), then after
/// `activation_delay_secs` made active. Each step is a write conditional on the revision this
/// process last saw, installed only once written. A lost race installs the stored ring
/// instead. So a key never seals anything the store does not hold, and, with a delay longer
/// than the replicas' change feed takes, nothing any replica cannot open.
pub struct KeyKeeper {
    store: Arc<dyn Store>,
    ring: Arc<KeyRing>,
    revision: tokio::sync::Mutex<u64>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    activation_delay_secs: i64,
}

impl KeyKeeper {
    pub fn new(
        store: Arc<dyn Store>,
        ring: Arc<KeyRing>,
        revision: u64,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
        activation_delay_secs: i64,
    ) -> Arc<Self> {
        let keeper = Arc::new(Self {
            store,
            ring,
            revision: tokio::sync::Mutex::new(revision),
            clock,
            metrics,
            activation_delay_secs,
        });
        keeper.count_keys();
        keeper
    }

    /// Does what is due (stage a key, activate a staged one); whether a key was activated.
    pub async fn tick(&self) -> Result<bool> {
        let mut revision = self.revision.lock().await;
        let now = self.clock.unix();
        let mut activated = false;
        for _ in 0..2 {
            let next = match self.ring.pending()? {
                Some((id, made)) if now - made >= self.activation_delay_secs => {
                    self.ring.activated(id, now)?
                }
                Some(_) => break,
                None if self.ring.rotation_due_at(now)? => self.ring.with_new_key(now)?,
                None => break,
            };
            let txn = Txn::new().require_revision(KEY_RING, *revision).put(KEY_RING, ring_bytes(&next)?);
            match self.store.commit(txn).await {
                Ok(r) => {
                    *revision = r;
                    let activating = next.active != self.ring.active_key_id()?;
                    self.ring.install(&next)?;
                    self.count_keys();
                    if activating {
                        activated = true;
                        self.metrics.key_ring_rotations.inc();
                        tracing::info!(key_id = next.active, "key ring rotated");
                    }
                }
                Err(StoreError::Conflict) => {
                    self.reload(&mut revision).await?;
                    break;
                }
                Err(e) => return Err(store_failure(e)),
            }
        }
        Ok(activated)
    }

    /// Installs the ring as stored (another replica changed it).
    pub async fn refresh(&self) -> Result<()> {
        let mut revision = self.revision.lock().await;
        self.reload(&mut revision).await
    }

    async fn reload(&self, revision: &mut u64) -> Result<()> {
        let stored = self.store.get(KEY_RING).await.map_err(store_failure)?;
        let stored = stored.ok_or_else(|| Error::service_failure("the stored key ring is gone"))?;
        self.ring.install(&parse_ring(&stored.value)?)?;
        *revision = stored.revision;
        self.count_keys();
        Ok(())
    }

    fn count_keys(&self) {
        if let Ok(n) = self.ring.key_count() {
            self.metrics.key_ring_keys.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Checks every second, for as long as the ring is in use.
    pub fn spawn(self: &Arc<Self>) {
        let keeper = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ROTATION_CHECK);
            loop {
                tick.tick().await;
                let Some(keeper) = keeper.upgrade() else { return };
                if let Err(e) = keeper.tick().await {
                    tracing::error!(error = %e, "key ring rotation failed; retrying");
                }
            }
        });
    }
}

/// The stored identity signing key, or a new one (stored).
pub async fn load_identity_signer(store: &Arc<dyn Store>) -> Result<IdentitySigner> {
    if let Some(stored) = store.get(IDENTITY_KEY).await.map_err(store_failure)? {
        return IdentitySigner::from_pkcs8(&stored.value);
    }
    let pkcs8 = IdentitySigner::generate_pkcs8()?;
    match store.commit(Txn::new().require_absent(IDENTITY_KEY).put(IDENTITY_KEY, pkcs8.clone())).await {
        Ok(_) => IdentitySigner::from_pkcs8(&pkcs8),
        // Another process made one first: use it.
        Err(StoreError::Conflict) => {
            let stored = store.get(IDENTITY_KEY).await.map_err(store_failure)?;
            let stored = stored.ok_or_else(|| Error::service_failure("identity key vanished"))?;
            IdentitySigner::from_pkcs8(&stored.value)
        }
        Err(e) => Err(store_failure(e)),
    }
}
