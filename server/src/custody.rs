//! Custody of state and of the server's own keys across restarts.
//!
//! - [`open_store`]: the configured backend (redb in a data directory, or memory), sealed
//!   at rest under the master key.
//! - The key ring and the identity signing key live in that store. A restart therefore does
//!   not invalidate credentials, IMDS tokens or identity signatures issued before it.
//! - The ring rotates by persist-then-install. A key seals nothing before the store holds it,
//!   so whatever was sealed can be opened after a crash.

use std::{path::Path, sync::Arc, time::Duration};

use crate::{
    config::Config,
    domain::{
        Error, Result,
        clock::Clock,
        identity::IdentitySigner,
        keyring::{KeyRing, KeyRingPolicy, RingSnapshot},
        master_key::MasterKey,
    },
    store::{MemoryStore, RedbStore, SealedStore, Store, StoreError, Txn},
    telemetry::Metrics,
};

/// Store keys of the server's own (outside every account's prefix).
pub const KEY_RING: &str = "system/key-ring";
pub const IDENTITY_KEY: &str = "system/identity-key";

/// How often the keeper checks whether the key ring is due to rotate.
const ROTATION_CHECK: Duration = Duration::from_secs(1);

fn store_failure(e: StoreError) -> Error {
    Error::service_failure(format!("store: {e}"))
}

/// The master key: ROLECALL_MASTER_KEY, else `storage.master_key_file`, else
/// `DATA_DIR/master.key` (made on first start, with a warning).
fn master_key(config: &Config) -> std::result::Result<MasterKey, String> {
    if let Ok(text) = std::env::var("ROLECALL_MASTER_KEY") {
        return MasterKey::parse(&text).map_err(|e| format!("ROLECALL_MASTER_KEY: {}", e.message));
    }
    let (path, configured) = match &config.storage.master_key_file {
        Some(path) => (path.clone(), true),
        None => (config.storage.data_dir.join("master.key"), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => MasterKey::parse(&text).map_err(|e| format!("{}: {}", path.display(), e.message)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !configured => {
            make_key_file(&path)?;
            tracing::warn!(
                path = %path.display(),
                "made a master key beside the data it seals; move it elsewhere (storage.master_key_file or ROLECALL_MASTER_KEY) for protection at rest"
            );
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            MasterKey::parse(&text).map_err(|e| format!("{}: {}", path.display(), e.message))
        }
        Err(e) => Err(format!("master key file {}: {e}", path.display())),
    }
}

/// Writes a new master key, readable by its owner only.
fn make_key_file(path: &Path) -> std::result::Result<(), String> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(file, "{}", MasterKey::generate()).map_err(|e| format!("{}: {e}", path.display()))
}

/// The configured store: memory, or redb sealed under the master key.
pub fn open_store(config: &Config) -> std::result::Result<Arc<dyn Store>, String> {
    match config.storage.backend.as_str() {
        "memory" => Ok(Arc::new(MemoryStore::default())),
        _ => {
            let key = master_key(config)?;
            let redb = RedbStore::open(&config.storage.data_dir).map_err(|e| e.to_string())?;
            tracing::info!(dir = %config.storage.data_dir.display(), "state in redb, sealed at rest");
            Ok(Arc::new(SealedStore::new(Arc::new(redb), key)))
        }
    }
}

/// The stored key ring, rotated now (so that every process seals with a key of its own,
/// and seal counts start from zero), or a new one. With the store revision it was written
/// at, for the keeper.
pub async fn load_key_ring(
    store: &Arc<dyn Store>,
    policy: KeyRingPolicy,
    now: i64,
) -> Result<(Arc<KeyRing>, u64)> {
    for _ in 0..8 {
        let (next, txn) = match store.get(KEY_RING).await.map_err(store_failure)? {
            Some(stored) => {
                let snapshot: RingSnapshot = serde_json::from_slice(&stored.value)
                    .map_err(|e| Error::service_failure(format!("stored key ring: {e}")))?;
                let ring = KeyRing::restore(policy, &snapshot)?;
                (ring.rotated(now)?, Txn::new().require_revision(KEY_RING, stored.revision))
            }
            None => (KeyRing::new(policy, now).snapshot()?, Txn::new().require_absent(KEY_RING)),
        };
        let bytes = serde_json::to_vec(&next).map_err(|e| Error::service_failure(e.to_string()))?;
        match store.commit(txn.put(KEY_RING, bytes)).await {
            Ok(revision) => return Ok((Arc::new(KeyRing::restore(policy, &next)?), revision)),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(store_failure(e)),
        }
    }
    Err(Error::service_failure("the stored key ring kept changing under us"))
}

/// Rotates the key ring on its schedule, persist-then-install. The rotated ring is written
/// first, conditional on the revision this process last saw, and only then installed. If
/// the write loses to another writer, the stored ring is installed instead.
pub struct KeyKeeper {
    store: Arc<dyn Store>,
    ring: Arc<KeyRing>,
    revision: tokio::sync::Mutex<u64>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
}

impl KeyKeeper {
    pub fn new(
        store: Arc<dyn Store>,
        ring: Arc<KeyRing>,
        revision: u64,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
    ) -> Arc<Self> {
        Arc::new(Self { store, ring, revision: tokio::sync::Mutex::new(revision), clock, metrics })
    }

    /// Rotates if due; whether it did.
    pub async fn tick(&self) -> Result<bool> {
        let mut revision = self.revision.lock().await;
        let now = self.clock.unix();
        if !self.ring.rotation_due_at(now)? {
            return Ok(false);
        }
        let next = self.ring.rotated(now)?;
        let bytes = serde_json::to_vec(&next).map_err(|e| Error::service_failure(e.to_string()))?;
        let txn = Txn::new().require_revision(KEY_RING, *revision).put(KEY_RING, bytes);
        match self.store.commit(txn).await {
            Ok(r) => {
                *revision = r;
                self.ring.install(&next)?;
                self.metrics.key_ring_rotations.inc();
                tracing::info!(key_id = next.active, "key ring rotated");
                Ok(true)
            }
            Err(StoreError::Conflict) => {
                let stored = self.store.get(KEY_RING).await.map_err(store_failure)?;
                let stored = stored.ok_or_else(|| Error::service_failure("the stored key ring is gone"))?;
                let snapshot: RingSnapshot = serde_json::from_slice(&stored.value)
                    .map_err(|e| Error::service_failure(format!("stored key ring: {e}")))?;
                *revision = stored.revision;
                self.ring.install(&snapshot)?;
                Ok(false)
            }
            Err(e) => Err(store_failure(e)),
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
