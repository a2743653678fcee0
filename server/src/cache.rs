//! The issued-credentials cache (moka), keyed by (instance, association, role id).
//!
//! - A hit costs no crypto: the credentials are returned as issued.
//! - Freshness is decided against our injected clock (the rotation point stored in the
//!   value), not moka's, which cannot be injected; moka's time-to-live only frees memory.
//! - Concurrent misses, and concurrent callers of a stale entry, issue exactly once:
//!   `and_try_compute_with` serialises computations per key, and the second caller finds
//!   the first one's fresh value.
//! - A replaced association or role changes the key, so the next fetch sees the change.
//! - An entry fetched after its prefetch point is claimed once for a background refresh,
//!   which replaces it only if it is still the entry that was claimed.
//! - The cache is bounded (entries), with LRU eviction so that a fleet larger than the
//!   bound degrades to re-issuing rather than refusing new entries.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use moka::{
    future::Cache,
    ops::compute::{CompResult, Op},
    policy::EvictionPolicy,
};

use crate::domain::{Error, Result, credentials::TemporaryCredentials};

/// The cache key: an instance's current association and the role behind it, as one string
/// (`instance/association/role-id`: none of the three holds a `/`; the association id's
/// constant `iip-assoc-` prefix is left out), one small allocation a lookup.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CredentialKey(String);

impl CredentialKey {
    pub fn new(instance_id: &str, association_id: &str, role_id: &str) -> Self {
        let association = association_id.strip_prefix("iip-assoc-").unwrap_or(association_id);
        Self([instance_id, "/", association, "/", role_id].concat())
    }
}

/// Credentials as issued, and when they stop being handed out: what the cache keeps for
/// each instance. Every string of the answer (key id, secret, session token, and the two
/// timestamps, formatted once at issue) lives in one allocation, so that an entry costs
/// well under 1 KiB.
pub struct IssuedCredentials {
    /// access key id | secret | LastUpdated | Expiration | session token.
    packed: Box<str>,
    /// Where each of the first four fields ends in `packed`.
    ends: [u16; 4],
    pub issued_at: i64,
    pub expires_at: i64,
    pub rotate_at: i64,
    /// From when a fetch should have these replaced in the background.
    prefetch_at: i64,
    /// Set by the one fetch that asked for the background replacement.
    prefetch_claimed: AtomicBool,
    /// Whether every field is JSON-safe as it is (nothing to escape), checked once at issue
    /// so that each answer can copy the fields instead of escaping them.
    json_plain: bool,
}

/// Whether a string stands in a JSON string as it is: no control character, quote or
/// backslash (the characters JSON, and serde_json, escape).
pub fn json_plain(s: &str) -> bool {
    s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

impl IssuedCredentials {
    pub fn new(credentials: TemporaryCredentials, rotate_at: i64) -> Self {
        let fields = [
            credentials.access_key_id.as_str(),
            credentials.secret_access_key.0.as_str(),
            &crate::domain::clock::iso8601(credentials.issued_at),
            &crate::domain::clock::iso8601(credentials.expires_at),
            credentials.session_token.0.as_str(),
        ];
        let mut packed = String::with_capacity(fields.iter().map(|f| f.len()).sum());
        let mut ends = [0u16; 4];
        for (n, field) in fields.iter().enumerate() {
            packed.push_str(field);
            if let Some(end) = ends.get_mut(n) {
                // The first four fields are short ids and timestamps.
                *end = u16::try_from(packed.len()).unwrap_or(u16::MAX);
            }
        }
        Self {
            ends,
            issued_at: credentials.issued_at,
            expires_at: credentials.expires_at,
            rotate_at,
            prefetch_at: i64::MAX,
            prefetch_claimed: AtomicBool::new(false),
            json_plain: json_plain(&packed),
            packed: packed.into_boxed_str(),
        }
    }

    /// Whether every field stands in JSON as it is (see [`json_plain`]).
    pub fn json_plain(&self) -> bool {
        self.json_plain
    }

    /// To be replaced in the background when fetched from `prefetch_at` on.
    pub fn prefetched_from(mut self, prefetch_at: i64) -> Self {
        self.prefetch_at = prefetch_at;
        self
    }

    /// True for the first caller at `now` in the prefetch window, who is to have these
    /// credentials replaced in the background; false for everyone else.
    pub fn claim_prefetch(&self, now: i64) -> bool {
        (self.prefetch_at..self.rotate_at).contains(&now)
            && !self.prefetch_claimed.swap(true, Ordering::Relaxed)
    }

    /// Lets another fetch claim the prefetch (the claimed one could not be queued).
    pub fn release_prefetch(&self) {
        self.prefetch_claimed.store(false, Ordering::Relaxed);
    }

    fn field(&self, n: usize) -> &str {
        let start = if n == 0 { 0 } else { usize::from(self.ends[n - 1]) };
        let end = self.ends.get(n).map_or(self.packed.len(), |e| usize::from(*e));
        self.packed.get(start..end).unwrap_or_default()
    }

    pub fn access_key_id(&self) -> &str {
        self.field(0)
    }

    pub fn secret_access_key(&self) -> &str {
        self.field(1)
    }

    /// LastUpdated, ISO 8601.
    pub fn last_updated(&self) -> &str {
        self.field(2)
    }

    /// Expiration, ISO 8601.
    pub fn expiration(&self) -> &str {
        self.field(3)
    }

    pub fn session_token(&self) -> &str {
        self.field(4)
    }
}

impl std::fmt::Debug for IssuedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCredentials")
            .field("access_key_id", &self.access_key_id())
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &"** redacted **")
            .field("expiration", &self.expiration())
            .field("rotate_at", &self.rotate_at)
            .finish()
    }
}

/// Whether a lookup was served from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    Issued,
}

#[derive(Clone)]
pub struct CredentialCache {
    /// foldhash, not SipHash, for the lookup every fetch makes (keys are the server's own
    /// ids).
    inner: Cache<CredentialKey, Arc<IssuedCredentials>, foldhash::quality::RandomState>,
}

impl CredentialCache {
    /// A cache of at most `capacity` entries, each dropped `time_to_live` after insertion.
    pub fn new(capacity: u64, time_to_live: Duration) -> Self {
        let inner = Cache::builder()
            .max_capacity(capacity)
            .eviction_policy(EvictionPolicy::lru())
            .time_to_live(time_to_live)
            .build_with_hasher(foldhash::quality::RandomState::default());
        Self { inner }
    }

    /// The fresh credentials for `key`, issuing them with `issue` (once, however many
    /// callers wait) when absent, past their rotation point at `now`, or issued before
    /// `not_before` (the role's sessions were revoked since).
    pub async fn get_or_issue<F, Fut>(
        &self,
        key: &CredentialKey,
        now: i64,
        not_before: i64,
        issue: F,
    ) -> Result<(Arc<IssuedCredentials>, Lookup)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<IssuedCredentials>>,
    {
        let fresh = |c: &IssuedCredentials| now < c.rotate_at && c.issued_at >= not_before;
        if let Some(hit) = self.inner.get(key).await
            && fresh(&hit)
        {
            return Ok((hit, Lookup::Hit));
        }
        let outcome = self
            .inner
            .entry(key.clone())
            .and_try_compute_with(|existing| async move {
                if let Some(entry) = existing
                    && fresh(entry.value())
                {
                    return Ok::<_, Error>(Op::Nop);
                }
                Ok(Op::Put(Arc::new(issue().await?)))
            })
            .await?;
        match outcome {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) => Ok((e.into_value(), Lookup::Issued)),
            CompResult::Unchanged(e) => Ok((e.into_value(), Lookup::Hit)),
            CompResult::StillNone(_) | CompResult::Removed(_) => {
                Err(Error::service_failure("credential cache lost an entry it just computed"))
            }
        }
    }

    /// Replaces `current` (the entry under `key` when a fetch claimed its prefetch) with
    /// `issue`'s credentials, unless it has been replaced or dropped since. Returns whether it
    /// issued.
    pub async fn refresh<F, Fut>(
        &self,
        key: CredentialKey,
        current: &Arc<IssuedCredentials>,
        issue: F,
    ) -> Result<bool>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<IssuedCredentials>>,
    {
        let outcome = self
            .inner
            .entry(key)
            .and_try_compute_with(|existing| async move {
                match existing {
                    Some(entry) if Arc::ptr_eq(entry.value(), current) => {
                        Ok::<_, Error>(Op::Put(Arc::new(issue().await?)))
                    }
                    _ => Ok(Op::Nop),
                }
            })
            .await?;
        Ok(matches!(outcome, CompResult::ReplacedWith(_)))
    }

    /// Entries currently held (approximate until [`run_pending_tasks`](Self::run_pending_tasks)).
    pub fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }

    /// Lets moka finish its deferred bookkeeping (eviction, counts).
    pub async fn run_pending_tasks(&self) {
        self.inner.run_pending_tasks().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::domain::{
        credentials::SessionClaims,
        keyring::{KeyRing, KeyRingPolicy},
    };

    fn key(assoc: &str) -> CredentialKey {
        CredentialKey::new("i-1", assoc, "AROA1")
    }

    fn issue(ring: &KeyRing, now: i64) -> Result<IssuedCredentials> {
        let claims = SessionClaims::for_instance("123456789012", "r", "AROA1", "i-1", now, now + 3600);
        Ok(IssuedCredentials::new(TemporaryCredentials::issue(ring, claims)?, now + 100))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_misses_issue_once() {
        let ring = Arc::new(KeyRing::new(KeyRingPolicy::default(), 0));
        let cache = CredentialCache::new(1000, Duration::from_secs(3600));
        let issued = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (cache, ring, issued) = (cache.clone(), ring.clone(), issued.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_issue(&key("a"), 0, i64::MIN, || async {
                        issued.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        issue(&ring, 0)
                    })
                    .await
                    .map(|(c, _)| c.access_key_id().to_string())
            }));
        }
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            ids.insert(t.await.unwrap().unwrap());
        }
        assert_eq!(issued.load(Ordering::SeqCst), 1);
        assert_eq!(ids.len(), 1, "every caller got the same credentials");
    }

    #[test]
    fn packed_fields_read_back() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let issued = issue(&ring, 1_800_000_000).unwrap();
        assert!(issued.access_key_id().starts_with("ASIA") && issued.access_key_id().len() == 20);
        assert_eq!(issued.secret_access_key().len(), 40);
        assert_eq!(issued.last_updated(), "2027-01-15T08:00:00Z");
        assert_eq!(issued.expiration(), "2027-01-15T09:00:00Z");
        assert!(issued.session_token().len() > 100);
        let shown = format!("{issued:?}");
        assert!(!shown.contains(issued.secret_access_key()) && !shown.contains(issued.session_token()));
    }

    #[tokio::test]
    async fn stale_entries_reissue_and_new_keys_miss() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let cache = CredentialCache::new(1000, Duration::from_secs(3600));
        let (first, l1) =
            cache.get_or_issue(&key("a"), 0, i64::MIN, || async { issue(&ring, 0) }).await.unwrap();
        let (again, l2) =
            cache.get_or_issue(&key("a"), 99, i64::MIN, || async { issue(&ring, 99) }).await.unwrap();
        assert_eq!((l1, l2), (Lookup::Issued, Lookup::Hit));
        assert_eq!(first.access_key_id(), again.access_key_id());
        let (rotated, l3) =
            cache.get_or_issue(&key("a"), 100, i64::MIN, || async { issue(&ring, 100) }).await.unwrap();
        assert_eq!(l3, Lookup::Issued);
        assert_ne!(rotated.access_key_id(), first.access_key_id());
        let (_, l4) =
            cache.get_or_issue(&key("b"), 100, i64::MIN, || async { issue(&ring, 100) }).await.unwrap();
        assert_eq!(l4, Lookup::Issued);
    }

    #[tokio::test]
    async fn a_prefetch_is_claimed_once_and_replaces_only_what_it_claimed() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let cache = CredentialCache::new(1000, Duration::from_secs(3600));
        let fresh = |now| issue(&ring, now).map(|c| c.prefetched_from(now + 90));
        let (first, _) = cache.get_or_issue(&key("a"), 0, i64::MIN, || async { fresh(0) }).await.unwrap();
        assert!(!first.claim_prefetch(89), "before the prefetch point");
        assert!(first.claim_prefetch(90));
        assert!(!first.claim_prefetch(91), "claimed once");
        assert!(cache.refresh(key("a"), &first, || async { fresh(91) }).await.unwrap());
        let (now_cached, lookup) =
            cache.get_or_issue(&key("a"), 92, i64::MIN, || async { fresh(92) }).await.unwrap();
        assert_eq!(lookup, Lookup::Hit, "the prefetched credentials are served before the rotation point");
        assert_ne!(now_cached.access_key_id(), first.access_key_id());
        // A second refresh of the replaced entry does nothing.
        assert!(!cache.refresh(key("a"), &first, || async { fresh(93) }).await.unwrap());
        let (same, _) = cache.get_or_issue(&key("a"), 93, i64::MIN, || async { fresh(93) }).await.unwrap();
        assert_eq!(same.access_key_id(), now_cached.access_key_id());
        // Past the rotation point nothing is claimed: the fetch issues inline.
        let (_, l) = cache.get_or_issue(&key("b"), 0, i64::MIN, || async { fresh(0) }).await.unwrap();
        assert_eq!(l, Lookup::Issued);
        let (b, _) = cache.get_or_issue(&key("b"), 50, i64::MIN, || async { fresh(50) }).await.unwrap();
        assert!(!b.claim_prefetch(100));
        b.release_prefetch();
    }
}
