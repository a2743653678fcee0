//! When each long-term access key was last used, for which service and in which region
//! (GetAccessKeyLastUsed, the credential report): the evidence an operator rotates keys on.
//!
//! Every request a user's (or the root user's) key signs notes its use in memory; the store is written at most
//! once a minute per key and replica, in the background, so that no request waits on a
//! write. Replicas merge by keeping the later use (a read-modify-write at the record's
//! revision), and a reader takes the later of the stored use and this replica's own. The
//! record lives outside `iam/`, so writing it makes no compiled policy stale.

use std::sync::Arc;

use super::*;

/// How long a replica lets a key's newer use go unwritten.
const WRITE_EVERY_SECONDS: i64 = 60;

/// One use of an access key: when (Unix seconds), for which service (the signing name:
/// `iam`, `sts`, `ec2`, `s3`) and in which region.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUse {
    pub at: i64,
    pub service: String,
    pub region: String,
}

/// This replica's latest use of a key, and when it last wrote one to the store.
#[derive(Clone, Debug)]
pub struct KeyUseSeen {
    latest: KeyUse,
    written_at: Option<i64>,
}

impl KeyUseSeen {
    /// Takes a use at `at`; true when it is due to be written (the first, or a minute after
    /// the last write), which it then counts as written.
    fn note(&mut self, at: i64, service: &str, region: &str) -> bool {
        let latest = &mut self.latest;
        latest.at = at;
        if latest.service != service {
            service.clone_into(&mut latest.service);
        }
        if latest.region != region {
            region.clone_into(&mut latest.region);
        }
        let due = self.written_at.is_none_or(|written| at - written >= WRITE_EVERY_SECONDS);
        if due {
            self.written_at = Some(at);
        }
        due
    }
}

impl Catalog {
    /// Notes a signed use of a key of this account's users (after its signature was
    /// checked); writes it in the background when the last write is a minute old. A key
    /// already seen costs no allocation unless its service or region changed.
    pub fn note_key_use(self: &Arc<Self>, access_key_id: &str, service: &str, region: &str) {
        let at = self.now();
        let write = match self.key_uses.get_mut(access_key_id) {
            Some(mut seen) => seen.note(at, service, region),
            None => self
                .key_uses
                .entry(access_key_id.to_string())
                .or_insert_with(|| KeyUseSeen { latest: KeyUse::default(), written_at: None })
                .note(at, service, region),
        };
        if write {
            let used = KeyUse { at, service: service.to_string(), region: region.to_string() };
            let (catalog, id) = (self.clone(), access_key_id.to_string());
            tokio::spawn(async move {
                if let Err(e) = catalog.store_key_use(&id, &used).await {
                    tracing::warn!(error = %e, "recording an access key's last use");
                }
            });
        }
    }

    /// Stores `used` unless a later use is stored already (another replica's).
    async fn store_key_use(&self, access_key_id: &str, used: &KeyUse) -> Result<()> {
        let key = keys::key_use(access_key_id);
        retrying(|| async {
            let txn = match self.load::<KeyUse>(&key).await? {
                Some((stored, _)) if stored.at >= used.at => return Ok(()),
                Some((_, rev)) => Txn::new().require_revision(&key, rev),
                None => Txn::new().require_absent(&key),
            };
            // A key deleted meanwhile keeps no record (the root user's is configured, not stored).
            let root = self.root_access_key_id.get().is_some_and(|r| r == access_key_id);
            if !root && self.load::<String>(&keys::access_key(access_key_id)).await?.is_none() {
                return Ok(());
            }
            self.commit(txn.put(&key, encode(used)?)).await.map(drop)
        })
        .await
    }

    /// The key's last use, the later of the stored one and this replica's (None: never used).
    pub async fn key_last_used(&self, access_key_id: &str) -> Result<Option<KeyUse>> {
        let stored = self.load::<KeyUse>(&keys::key_use(access_key_id)).await?.map(|(u, _)| u);
        let local = self.key_uses.get(access_key_id).map(|seen| seen.latest.clone());
        Ok(match (stored, local) {
            (Some(a), Some(b)) => Some(if b.at > a.at { b } else { a }),
            (a, b) => a.or(b),
        })
    }

    /// GetAccessKeyLastUsed: the key's user and its last use.
    pub async fn access_key_last_used(&self, access_key_id: &str) -> Result<(String, Option<KeyUse>)> {
        let (user, _) =
            self.find_access_key(access_key_id).await?.ok_or_else(|| access_key_not_found(access_key_id))?;
        Ok((user.user_name.clone(), self.key_last_used(access_key_id).await?))
    }

    /// Forgets a deleted key's use.
    pub(super) fn forget_key_use(&self, access_key_id: &str) {
        self.key_uses.remove(access_key_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_use_is_written_first_then_once_a_minute_and_the_latest_is_kept() {
        let mut seen = KeyUseSeen { latest: KeyUse::default(), written_at: None };
        assert!(seen.note(1_000, "iam", "us-east-1"), "the first use is written");
        assert!(!seen.note(1_030, "s3", "eu-west-1"), "30 s later: not yet");
        assert_eq!(seen.latest, KeyUse { at: 1_030, service: "s3".into(), region: "eu-west-1".into() });
        assert!(!seen.note(1_059, "s3", "eu-west-1"));
        assert!(seen.note(1_060, "sts", "eu-west-1"), "a minute after the last write");
        assert_eq!(seen.latest.service, "sts");
        assert!(!seen.note(1_061, "sts", "eu-west-1"));
    }
}
