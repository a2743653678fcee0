//! The issued-credentials cache (moka), keyed by (instance, association, role id).
//!
//! - A hit costs no crypto: the credentials are returned as issued.
//! - Freshness is decided against our injected clock (the rotation point stored in the
//!   value), not moka's, which cannot be injected; moka's time-to-live only frees memory.
//! - Concurrent misses, and concurrent callers of a stale entry, issue exactly once:
//!   `and_try_compute_with` serialises computations per key, and the second caller finds
//!   the first one's fresh value.
//! - A replaced association or role changes the key, so the next fetch sees the change.
//! - The cache is bounded (entries), with LRU eviction so that a fleet larger than the
//!   bound degrades to re-issuing rather than refusing new entries.

use std::{future::Future, sync::Arc, time::Duration};

use moka::{
    future::Cache,
    ops::compute::{CompResult, Op},
    policy::EvictionPolicy,
};

use crate::domain::{Error, Result, credentials::TemporaryCredentials};

/// The cache key: an instance's current association and the role behind it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CredentialKey {
    pub instance_id: Arc<str>,
    pub association_id: Arc<str>,
    pub role_id: Arc<str>,
}

/// Credentials as issued, and when they stop being handed out.
#[derive(Debug)]
pub struct IssuedCredentials {
    pub credentials: TemporaryCredentials,
    pub rotate_at: i64,
}

/// Whether a lookup was served from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    Issued,
}

#[derive(Clone)]
pub struct CredentialCache {
    inner: Cache<CredentialKey, Arc<IssuedCredentials>>,
}

impl CredentialCache {
    /// A cache of at most `capacity` entries, each dropped `time_to_live` after insertion.
    pub fn new(capacity: u64, time_to_live: Duration) -> Self {
        let inner = Cache::builder()
            .max_capacity(capacity)
            .eviction_policy(EvictionPolicy::lru())
            .time_to_live(time_to_live)
            .build();
        Self { inner }
    }

    /// The fresh credentials for `key`, issuing them with `issue` (once, however many
    /// callers wait) when absent or past their rotation point at `now`.
    pub async fn get_or_issue<F, Fut>(
        &self,
        key: CredentialKey,
        now: i64,
        issue: F,
    ) -> Result<(Arc<IssuedCredentials>, Lookup)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<IssuedCredentials>>,
    {
        if let Some(hit) = self.inner.get(&key).await
            && now < hit.rotate_at
        {
            return Ok((hit, Lookup::Hit));
        }
        let outcome = self
            .inner
            .entry(key)
            .and_try_compute_with(|existing| async move {
                if let Some(entry) = existing
                    && now < entry.value().rotate_at
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

    /// Entries currently held (approximate: moka counts lazily).
    pub fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::domain::{
        credentials::SessionClaims,
        keyring::{KeyRing, KeyRingPolicy},
        model::Secret,
    };

    fn key(assoc: &str) -> CredentialKey {
        CredentialKey { instance_id: "i-1".into(), association_id: assoc.into(), role_id: "AROA1".into() }
    }

    fn issue(ring: &KeyRing, now: i64) -> Result<IssuedCredentials> {
        let claims = SessionClaims {
            access_key_id: String::new(),
            secret_access_key: Secret(String::new()),
            account_id: "123456789012".into(),
            principal_arn: "p".into(),
            role_arn: "r".into(),
            role_id: "AROA1".into(),
            session_name: "i-1".into(),
            instance_id: Some("i-1".into()),
            issued_at: now,
            expires_at: now + 3600,
        };
        Ok(IssuedCredentials {
            credentials: TemporaryCredentials::issue(ring, claims)?,
            rotate_at: now + 100,
        })
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
                    .get_or_issue(key("a"), 0, || async {
                        issued.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        issue(&ring, 0)
                    })
                    .await
                    .map(|(c, _)| c.credentials.access_key_id.clone())
            }));
        }
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            ids.insert(t.await.unwrap().unwrap());
        }
        assert_eq!(issued.load(Ordering::SeqCst), 1);
        assert_eq!(ids.len(), 1, "every caller got the same credentials");
    }

    #[tokio::test]
    async fn stale_entries_reissue_and_new_keys_miss() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let cache = CredentialCache::new(1000, Duration::from_secs(3600));
        let (first, l1) = cache.get_or_issue(key("a"), 0, || async { issue(&ring, 0) }).await.unwrap();
        let (again, l2) = cache.get_or_issue(key("a"), 99, || async { issue(&ring, 99) }).await.unwrap();
        assert_eq!((l1, l2), (Lookup::Issued, Lookup::Hit));
        assert_eq!(first.credentials.access_key_id, again.credentials.access_key_id);
        let (rotated, l3) = cache.get_or_issue(key("a"), 100, || async { issue(&ring, 100) }).await.unwrap();
        assert_eq!(l3, Lookup::Issued);
        assert_ne!(rotated.credentials.access_key_id, first.credentials.access_key_id);
        let (_, l4) = cache.get_or_issue(key("b"), 100, || async { issue(&ring, 100) }).await.unwrap();
        assert_eq!(l4, Lookup::Issued);
    }
}
