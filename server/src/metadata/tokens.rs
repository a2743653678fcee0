//! IMDSv2 session tokens already verified, kept so that a token's MAC is checked once and not
//! on each of the thousands of requests an instance makes with it (the HMAC and the base64
//! were a fifth of an HTTP credential GET: docs/benchmarks.md, issue 16).
//!
//! - Only what [`imds_token::verify`] accepted goes in, under the whole token as sent: a
//!   token that differs in any character is another key, and is verified on its own.
//! - An entry answers only while its token is unexpired by our clock and the key ring is in
//!   the generation that verified it: once any key is added, retired or forgotten, each
//!   token is verified again on its next use (and refused if its key has gone).
//! - The cache is bounded (entries, moka's TinyLFU), and moka frees each entry when its
//!   token expires; a token that no longer fits is verified on each use, as without a cache.
//! - The keys are tokens that verified, so only the server mints what is inserted; lookups
//!   hash with a per-process random seed (foldhash), so that a guessed token cannot be
//!   steered onto a stored one's bucket to time the comparison.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use moka::{Expiry, sync::Cache};

use crate::domain::{
    Result,
    imds_token::{self, Verified},
    keyring::KeyRing,
};

/// A verified token, and how long it had left when it was verified.
struct Entry {
    verified: Arc<Verified>,
    lifetime: Duration,
}

/// Frees each entry when its token expires.
struct UntilExpiry;

impl Expiry<Box<str>, Arc<Entry>> for UntilExpiry {
    fn expire_after_create(&self, _: &Box<str>, entry: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(entry.lifetime)
    }
}

pub struct VerifiedTokens {
    inner: Cache<Box<str>, Arc<Entry>, foldhash::quality::RandomState>,
}

impl VerifiedTokens {
    /// At most `capacity` tokens (0: none kept, every use verified).
    pub fn new(capacity: u64) -> Self {
        let inner = Cache::builder()
            .max_capacity(capacity)
            .expire_after(UntilExpiry)
            .build_with_hasher(foldhash::quality::RandomState::default());
        Self { inner }
    }

    /// What `token` says if it is valid at `now`: as verified before, or verified now (and
    /// then kept).
    pub fn verify(&self, ring: &KeyRing, token: &str, now: i64) -> Result<Option<Arc<Verified>>> {
        if let Some(entry) = self.inner.get(token)
            && now < entry.verified.expires_at
            && entry.verified.generation == ring.generation()
        {
            return Ok(Some(entry.verified.clone()));
        }
        let Some(verified) = imds_token::verify(ring, token, now)? else { return Ok(None) };
        let verified = Arc::new(verified);
        let lifetime = Duration::from_secs(u64::try_from(verified.expires_at - now).unwrap_or(0));
        self.inner.insert(token.into(), Arc::new(Entry { verified: verified.clone(), lifetime }));
        Ok(Some(verified))
    }

    /// How many tokens are kept (moka's estimate, after its pending work).
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.inner.run_pending_tasks();
        self.inner.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use data_encoding::BASE64URL_NOPAD;

    use super::*;
    use crate::domain::{imds_token::Proof, keyring::KeyRingPolicy};

    const ID: &str = "i-0123456789abcdef0";

    fn ring() -> KeyRing {
        KeyRing::new(KeyRingPolicy { rotate_after_secs: 100, max_seals_per_key: 1 << 30, retain_secs: 50 }, 0)
    }

    fn id(v: Option<Arc<Verified>>) -> Option<String> {
        v.map(|v| v.instance_id.clone())
    }

    #[test]
    fn a_kept_token_answers_as_verification_does_until_it_expires() {
        let (ring, tokens) = (ring(), VerifiedTokens::new(100));
        let token = imds_token::issue(&ring, ID, Proof::SourceAddress, 100).unwrap();
        assert_eq!(id(tokens.verify(&ring, &token, 10).unwrap()), Some(ID.into()));
        assert_eq!(tokens.len(), 1);
        let kept = tokens.verify(&ring, &token, 99).unwrap().unwrap();
        assert_eq!((kept.proof, kept.expires_at), (Proof::SourceAddress, 100));
        assert_eq!(id(tokens.verify(&ring, &token, 100).unwrap()), None, "expired, though kept");
    }

    #[test]
    fn a_token_that_fails_verification_is_never_kept() {
        let (ring, tokens) = (ring(), VerifiedTokens::new(100));
        let token = imds_token::issue(&ring, ID, Proof::Claimed, 100).unwrap();
        let mut raw = BASE64URL_NOPAD.decode(token.as_bytes()).unwrap();
        raw[1] = Proof::InstanceKey as u8; // a raised proof: its MAC no longer matches
        let forged = BASE64URL_NOPAD.encode(&raw);
        let expired = imds_token::issue(&ring, ID, Proof::Claimed, 5).unwrap();
        for refused in [forged.as_str(), &expired, "garbage", "", &token[..token.len() - 1]] {
            assert_eq!(id(tokens.verify(&ring, refused, 10).unwrap()), None, "{refused}");
        }
        assert_eq!(tokens.len(), 0);
        // The genuine one is kept, and the forgery is still refused beside it.
        assert!(tokens.verify(&ring, &token, 10).unwrap().is_some());
        assert_eq!(id(tokens.verify(&ring, &forged, 10).unwrap()), None);
        assert_eq!(tokens.len(), 1);
    }

    #[test]
    fn a_token_whose_key_left_the_ring_is_refused_though_kept() {
        let (ring, tokens) = (ring(), VerifiedTokens::new(100));
        let token = imds_token::issue(&ring, ID, Proof::Claimed, 1_000).unwrap();
        assert!(tokens.verify(&ring, &token, 10).unwrap().is_some());
        // Rotated: the old key still verifies (retained), so the token is verified again.
        ring.rotate(20).unwrap();
        assert!(tokens.verify(&ring, &token, 30).unwrap().is_some());
        // Past retention the key is forgotten: the token is refused, kept or not.
        ring.maintain(71).unwrap();
        assert_eq!(id(tokens.verify(&ring, &token, 72).unwrap()), None);
    }

    #[test]
    fn a_ring_with_other_keys_under_the_same_ids_refuses_a_kept_token() {
        let (ring, tokens) = (ring(), VerifiedTokens::new(100));
        let token = imds_token::issue(&ring, ID, Proof::Claimed, 1_000).unwrap();
        assert!(tokens.verify(&ring, &token, 10).unwrap().is_some());
        let other = self::ring(); // key 1 too, other material
        ring.install(&other.snapshot().unwrap()).unwrap();
        assert_eq!(id(tokens.verify(&ring, &token, 11).unwrap()), None);
    }

    #[test]
    fn the_cache_keeps_at_most_its_capacity() {
        let (ring, tokens) = (ring(), VerifiedTokens::new(10));
        for n in 0..100 {
            let token = imds_token::issue(&ring, &format!("i-{n:017x}"), Proof::Claimed, 1_000).unwrap();
            assert_eq!(id(tokens.verify(&ring, &token, 10).unwrap()), Some(format!("i-{n:017x}")));
        }
        assert!(tokens.len() <= 10, "{} kept", tokens.len());
        let off = VerifiedTokens::new(0);
        let token = imds_token::issue(&ring, ID, Proof::Claimed, 1_000).unwrap();
        assert!(off.verify(&ring, &token, 10).unwrap().is_some());
        assert_eq!(off.len(), 0);
    }
}
