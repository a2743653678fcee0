//! The catalog: IAM and EC2 state and every rule about it, over a [`Store`].
//!
//! Each operation reads what it needs, decides with the domain's rules, and commits a
//! transaction conditioned on what it read; a concurrent change makes it start over.

mod accounts;
mod ec2;
mod iam;
mod pages;
mod s3;

use std::{
    any::Any,
    future::Future,
    sync::{Arc, Mutex},
};

use serde::{Serialize, de::DeserializeOwned};

pub use accounts::Accounts;
pub(crate) use ec2::instance_key_digest;
pub use ec2::{InstanceFilter, Launch, PrivateNetwork, ProfileRef};
pub use iam::{
    AuthorizationDetail, CredentialReport, EntityKind, GrantingPolicies, HolderKind, KeyUse, NewRole,
    PolicyEntities, PolicyHolder, PolicyScope, PolicyView,
};
pub use pages::Page;
pub use s3::Created as BucketCreated;

/// Pages a list held in memory with IAM's MaxItems rules.
pub fn page_of<T>(items: Vec<T>, marker: &str, max_items: Option<i32>) -> Result<Page<T>> {
    pages::page_vec(items, marker, crate::domain::validate::max_items(max_items)?)
}

use crate::{
    domain::{Error, ErrorCode, Result, clock::Clock},
    store::{Store, StoreError, Txn},
};

/// AWS's quotas, each a config value with AWS's default.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub managed_policies_per_role: usize,
    pub managed_policies_per_user: usize,
    pub managed_policies_per_group: usize,
    /// Groups one user may be a member of.
    pub groups_per_user: usize,
    pub roles_per_instance_profile: usize,
    pub access_keys_per_user: usize,
    pub policy_versions: usize,
    pub managed_policy_size: usize,
    pub role_inline_policy_size: usize,
    pub user_inline_policy_size: usize,
    pub group_inline_policy_size: usize,
    pub trust_policy_size: usize,
    pub tags_per_entity: usize,
    /// Instances one RunInstances call may launch.
    pub run_instances_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            managed_policies_per_role: 10,
            managed_policies_per_user: 10,
            managed_policies_per_group: 10,
            groups_per_user: 10,
            roles_per_instance_profile: 1,
            access_keys_per_user: 2,
            policy_versions: 5,
            managed_policy_size: 6144,
            role_inline_policy_size: 10_240,
            user_inline_policy_size: 2048,
            group_inline_policy_size: 5120,
            trust_policy_size: 2048,
            tags_per_entity: 50,
            run_instances_max: 100_000,
        }
    }
}

/// Where the catalog lives and whose it is.
#[derive(Clone, Debug)]
pub struct Settings {
    pub account_id: String,
    pub region: String,
    pub limits: Limits,
    /// AWS's default for new instances' HttpTokens is "optional"; Amazon Linux 2023 AMIs
    /// ask for "required".
    pub default_http_tokens_required: bool,
    pub default_hop_limit: i32,
    /// Where instances' private addresses come from.
    pub private_network: PrivateNetwork,
}

/// IAM and EC2 state.
pub struct Catalog {
    store: Arc<dyn Store>,
    /// The store of every account, and this account's prefix in it: for what must be
    /// unique across accounts (an account alias).
    shared: Arc<dyn Store>,
    prefix: String,
    clock: Arc<dyn Clock>,
    settings: Settings,
    records: RecordCache,
    /// The last signed use of each long-term access key this replica saw (iam/key_use.rs).
    key_uses: dashmap::DashMap<String, iam::KeyUseSeen>,
    /// The root user's access key id, where one is configured (the credential report's root row).
    root_access_key_id: std::sync::OnceLock<String>,
    /// Counts commits that wrote IAM records: what compiled policies are checked against.
    iam_generation: std::sync::atomic::AtomicU64,
}

/// Decoded records the credential path reads on every fetch (instance, profile, role), so
/// that a fetch decodes nothing. Every commit invalidates the keys it wrote; a record read
/// while any commit ran is not cached (the generation moved), so a stale value cannot be
/// cached after its invalidation. It holds at most one entry per stored record (deletes
/// invalidate too), so it needs no eviction, and a plain concurrent map spares the hot path
/// an LRU's bookkeeping.
struct RecordCache {
    /// foldhash, not SipHash: a fetch makes three lookups, and only stored records are
    /// inserted (a caller's keys are looked up, never added).
    records: dashmap::DashMap<String, Arc<dyn Any + Send + Sync>, foldhash::quality::RandomState>,
    generation: Mutex<u64>,
}

/// Tries a read-decide-commit cycle this many times before answering ConcurrentModification.
const MAX_ATTEMPTS: usize = 32;

// === impl Catalog ===

impl Catalog {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: Settings) -> Self {
        let records = RecordCache { records: dashmap::DashMap::default(), generation: Mutex::new(0) };
        Self {
            shared: store.clone(),
            prefix: String::new(),
            store,
            clock,
            settings,
            records,
            key_uses: dashmap::DashMap::default(),
            root_access_key_id: std::sync::OnceLock::new(),
            iam_generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// This account's catalog when its `store` is `shared`'s keys under `prefix`.
    pub fn scoped(self, shared: Arc<dyn Store>, prefix: String) -> Self {
        Self { shared, prefix, ..self }
    }

    /// The account's root user has this access key (configured, not stored): its uses are
    /// recorded and reported as a user's are.
    pub fn know_root_key(&self, access_key_id: &str) {
        let _ = self.root_access_key_id.set(access_key_id.to_string());
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Moves whenever an IAM record is written: anything derived from IAM state and stamped
    /// with an older value is stale.
    pub fn iam_generation(&self) -> u64 {
        self.iam_generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Another writer changed `key`: drop its cached record, and move the IAM generation if
    /// it is an IAM record (compiled policies are rebuilt).
    pub fn invalidate(&self, key: &str) {
        if key.starts_with("iam/") {
            self.iam_generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        if let Ok(mut generation) = self.records.generation.lock() {
            *generation += 1;
            self.records.records.remove(key);
        }
    }

    /// Drops every cached record and moves the IAM generation.
    pub fn invalidate_all(&self) {
        self.iam_generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut generation) = self.records.generation.lock() {
            *generation += 1;
            self.records.records.clear();
        }
    }

    pub fn account_id(&self) -> &str {
        &self.settings.account_id
    }

    fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// Reads and decodes one record with its revision.
    async fn load<T: DeserializeOwned>(&self, key: &str) -> Result<Option<(T, u64)>> {
        match self.store.get(key).await.map_err(store_error)? {
            None => Ok(None),
            Some(v) => Ok(Some((decode(&v.key, &v.value)?, v.revision))),
        }
    }

    /// Commits, turning a lost race into the error [`retrying`] starts over on, and drops
    /// the cached records of the keys it wrote (whatever the outcome: a failed commit to a
    /// remote store may still have applied).
    async fn commit(&self, txn: Txn) -> Result<u64> {
        let written: Vec<String> = txn
            .writes
            .iter()
            .map(|w| match w {
                crate::store::Write::Put(k, _) | crate::store::Write::Delete(k) => k.clone(),
            })
            .collect();
        let result = self.store.commit(txn).await.map_err(store_error);
        if written.iter().any(|k| k.starts_with("iam/")) {
            self.iam_generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        if let Ok(mut generation) = self.records.generation.lock() {
            *generation += 1;
            for key in &written {
                self.records.records.remove(key);
            }
        }
        result
    }

    /// Writes `record` over `key`, if `key` is still at `revision` (a read-modify-write).
    async fn rewrite<T: Serialize>(&self, key: &str, revision: u64, record: &T) -> Result<()> {
        self.commit(Txn::new().require_revision(key, revision).put(key, encode(record)?)).await.map(drop)
    }

    /// A record as the credential path reads it: decoded once, shared afterwards.
    async fn load_shared<T>(&self, key: &str) -> Result<Option<Arc<T>>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let hit = self.records.records.get(key).map(|r| r.value().clone());
        if let Some(hit) = hit
            && let Ok(record) = hit.downcast::<T>()
        {
            return Ok(Some(record));
        }
        let before = self.records.generation.lock().map(|g| *g).unwrap_or(u64::MAX);
        let Some((record, _)) = self.load::<T>(key).await? else { return Ok(None) };
        let record = Arc::new(record);
        if let Ok(generation) = self.records.generation.lock()
            && *generation == before
        {
            self.records.records.insert(key.to_string(), record.clone());
        }
        Ok(Some(record))
    }
}

/// Runs `attempt` until it commits without a conflict.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    for _ in 0..MAX_ATTEMPTS {
        match attempt().await {
            Err(e) if e.code == ErrorCode::ConcurrentModification => continue,
            other => return other,
        }
    }
    Err(Error::new(
        ErrorCode::ConcurrentModification,
        "The request was rejected because it conflicted with a concurrent change. Try again.",
    ))
}

fn store_error(e: StoreError) -> Error {
    match e {
        StoreError::Conflict => Error::new(ErrorCode::ConcurrentModification, "concurrent change"),
        other => {
            tracing::error!(error = %other, "store failure");
            Error::service_failure(
                "The request processing has failed because of an unknown error, exception or failure.",
            )
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::service_failure(format!("encode record: {e}")))
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        tracing::error!(key, error = %e, "corrupt record");
        Error::service_failure(
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    })
}

/// Store keys. IAM names are unique case-insensitively, so their keys are lower-cased.
mod keys {
    // Built without `format!`: the credential path builds three keys a fetch.

    /// `prefix` then `name` lower-cased, in one allocation.
    fn lowered(prefix: &str, name: &str) -> String {
        let mut key = [prefix, name].concat();
        key[prefix.len()..].make_ascii_lowercase();
        key
    }
    pub fn role(name: &str) -> String {
        lowered("iam/role/", name)
    }
    pub fn user(name: &str) -> String {
        lowered("iam/user/", name)
    }
    pub fn group(name: &str) -> String {
        lowered("iam/group/", name)
    }
    pub fn instance_profile(name: &str) -> String {
        lowered("iam/instance-profile/", name)
    }
    pub fn policy(name: &str) -> String {
        lowered("iam/policy/", name)
    }
    pub const AWS_POLICY_USES: &str = "iam/aws-policy-use/";
    pub fn aws_policy_use(name: &str) -> String {
        [AWS_POLICY_USES, name].concat()
    }
    pub fn access_key(id: &str) -> String {
        ["iam/access-key/", id].concat()
    }
    /// Outside `iam/`: recording a key's use changes no policy, so it must not make every
    /// compiled policy stale.
    pub fn key_use(id: &str) -> String {
        ["usage/access-key/", id].concat()
    }
    pub const CREDENTIAL_REPORT: &str = "usage/credential-report";
    pub fn instance(id: &str) -> String {
        ["ec2/instance/", id].concat()
    }
    pub fn association(id: &str) -> String {
        ["ec2/association/", id].concat()
    }
    pub fn address(ip: &str) -> String {
        ["ec2/address/", ip].concat()
    }
    pub fn bucket(name: &str) -> String {
        ["s3/bucket/", name].concat()
    }
    pub const BUCKETS: &str = "s3/bucket/";
    pub const ROLES: &str = "iam/role/";
    pub const USERS: &str = "iam/user/";
    pub const GROUPS: &str = "iam/group/";
    pub const INSTANCE_PROFILES: &str = "iam/instance-profile/";
    pub const POLICIES: &str = "iam/policy/";
    pub const INSTANCES: &str = "ec2/instance/";
    /// The count of private addresses handed out so far.
    pub const NEXT_ADDRESS: &str = "ec2/next-address";
    pub const ACCOUNT_ALIAS: &str = "iam/account-alias";
    /// An alias's account, in the store every account shares (aliases are unique across
    /// accounts).
    pub fn alias_owner(alias: &str) -> String {
        ["accounts/alias/", alias].concat()
    }
}

#[cfg(test)]
mod tests;
