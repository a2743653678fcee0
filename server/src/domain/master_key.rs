//! The master key: what seals the store's contents at rest (AES-256-GCM, a random nonce per
//! value, the value's store key as associated data so that a sealed value cannot be moved
//! to another key). It comes from the operator (a file, or the environment) and is never
//! stored beside what it seals, unless the operator lets the server make one.

use std::fmt;

use ring::aead;

use super::{Error, Result, ids::random_bytes};

const MAGIC: &[u8; 4] = b"RCS1";

pub struct MasterKey {
    key: aead::LessSafeKey,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(** redacted **)")
    }
}

impl MasterKey {
    /// A key from its text form: 32 bytes, base64 (standard, padded) or hex.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = data_encoding::BASE64
            .decode(text.as_bytes())
            .ok()
            .filter(|b| b.len() == 32)
            .or_else(|| data_encoding::HEXLOWER_PERMISSIVE.decode(text.as_bytes()).ok())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| Error::validation("the master key must be 32 bytes, base64 or hex"))?;
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, bytes)
            .map_err(|_| Error::validation("the master key must be 32 bytes"))?;
        Ok(Self { key: aead::LessSafeKey::new(unbound) })
    }

    /// A new random key, in its text form (base64).
    pub fn generate() -> String {
        let mut bytes = [0u8; 32];
        random_bytes(&mut bytes);
        data_encoding::BASE64.encode(&bytes)
    }

    /// `MAGIC || nonce || ciphertext || tag`, bound to `label`.
    pub fn seal(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; aead::NONCE_LEN];
        random_bytes(&mut nonce);
        let mut out = Vec::with_capacity(MAGIC.len() + nonce.len() + plaintext.len() + 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(label.as_bytes()),
                &mut out[start..],
            )
            .map_err(|_| Error::service_failure("sealing at rest failed"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// What [`seal`](Self::seal) sealed under `label`; None if this key did not seal it for
    /// that label (another key, another label, tampering).
    pub fn open(&self, label: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        let rest = sealed.strip_prefix(MAGIC.as_slice())?;
        if rest.len() < aead::NONCE_LEN + 16 {
            return None;
        }
        let (nonce, body) = rest.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self.key.open_in_place(nonce, aead::Aad::from(label.as_bytes()), &mut body).ok()?;
        Some(plain.to_vec())
    }
}

/// The key that seals, and the previous ones that only open: how a master key is rotated.
/// Values sealed under a previous key open until they are rewritten under the current one
/// (`rolecall store reseal`); then the previous key can go.
#[derive(Debug)]
pub struct MasterKeys {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

/// Which key opened a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedUnder {
    Current,
    Previous,
}

impl MasterKeys {
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Self {
        Self { current, previous }
    }

    /// How many previous keys still open values.
    pub fn previous_count(&self) -> usize {
        self.previous.len()
    }

    /// Seals under the current key.
    pub fn seal(&self, label: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.current.seal(label, plaintext)
    }

    /// Opens with the current key, else with each previous one in turn.
    pub fn open(&self, label: &str, sealed: &[u8]) -> Option<(Vec<u8>, SealedUnder)> {
        if let Some(plain) = self.current.open(label, sealed) {
            return Some((plain, SealedUnder::Current));
        }
        self.previous.iter().find_map(|k| k.open(label, sealed)).map(|plain| (plain, SealedUnder::Previous))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_label() {
        let key = MasterKey::parse(&MasterKey::generate()).unwrap();
        let other = MasterKey::parse(&MasterKey::generate()).unwrap();
        let sealed = key.seal("iam/user/alice", b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open("iam/user/alice", &sealed).unwrap(), b"secret");
        assert!(key.open("iam/user/bob", &sealed).is_none(), "bound to its store key");
        assert!(other.open("iam/user/alice", &sealed).is_none());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(key.open("iam/user/alice", &tampered).is_none());
        assert!(MasterKey::parse("too short").is_err());
        assert!(MasterKey::parse(&"ab".repeat(32)).is_ok(), "hex");
        assert!(!format!("{key:?}").contains('='));
    }

    #[test]
    fn previous_keys_open_and_only_the_current_one_seals() {
        let old = MasterKey::parse(&"11".repeat(32)).unwrap();
        let sealed_before = old.seal("k", b"v").unwrap();
        let keys = MasterKeys::new(MasterKey::parse(&"22".repeat(32)).unwrap(), vec![old]);
        assert_eq!(keys.open("k", &sealed_before), Some((b"v".to_vec(), SealedUnder::Previous)));
        let sealed_now = keys.seal("k", b"w").unwrap();
        assert_eq!(keys.open("k", &sealed_now), Some((b"w".to_vec(), SealedUnder::Current)));
        let without_old = MasterKeys::new(MasterKey::parse(&"22".repeat(32)).unwrap(), vec![]);
        assert!(without_old.open("k", &sealed_before).is_none());
        assert!(without_old.open("k", &sealed_now).is_some());
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Issue 14: any change to a sealed store value is refused, never opened to
            /// something else, and a value sealed under one key does not open under another
            /// (the key is the AEAD's associated data).
            #[test]
            fn any_changed_byte_of_a_sealed_value_is_refused(
                value in proptest::collection::vec(any::<u8>(), 0..256),
                at in any::<prop::sample::Index>(),
                mask in 1u8..,
            ) {
                let keys = MasterKeys::new(MasterKey::parse(&"11".repeat(32)).unwrap(), vec![]);
                let sealed = keys.seal("users/alice", &value).unwrap();
                prop_assert_eq!(keys.open("users/alice", &sealed).map(|(v, _)| v), Some(value));
                prop_assert!(keys.open("users/bob", &sealed).is_none());
                let mut changed = sealed.clone();
                let i = at.index(changed.len());
                changed[i] ^= mask;
                prop_assert!(keys.open("users/alice", &changed).is_none());
                prop_assert!(keys.open("users/alice", &sealed[..i]).is_none());
            }
        }
    }
}
