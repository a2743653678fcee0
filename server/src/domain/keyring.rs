//! The key ring: AES-256-GCM keys that seal session tokens and HMAC-SHA256 keys that sign
//! IMDS tokens, each pair under a key id. The active key rotates on a schedule and after a
//! bounded number of seals (random 96-bit nonces stay far from their 2^32 limit); retired
//! keys stay for verification until everything they sealed or signed has expired.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use ring::{aead, hmac};

use serde::{Deserialize, Serialize};

use super::{Error, Result, ids::random_bytes, model::Secret};

/// When the active key is replaced, and how long retired keys are kept.
#[derive(Clone, Copy, Debug)]
pub struct KeyRingPolicy {
    /// Age after which a new active key is made (seconds).
    pub rotate_after_secs: i64,
    /// Seals after which a new active key is made, whatever its age.
    pub max_seals_per_key: u64,
    /// How long a retired key stays for verification: at least the longest lifetime of
    /// anything it sealed (seconds).
    pub retain_secs: i64,
}

impl Default for KeyRingPolicy {
    fn default() -> Self {
        Self { rotate_after_secs: 24 * 3600, max_seals_per_key: 1 << 30, retain_secs: 13 * 3600 }
    }
}

struct RingKey {
    created_at: i64,
    retired_at: Option<i64>,
    seal: aead::LessSafeKey,
    mac: hmac::Key,
    seals: AtomicU64,
    /// The key material, for [`KeyRing::snapshot`] (the store seals it at rest).
    material: Secret,
}

/// The ring as the store keeps it: every key with its material (base64). `Debug` is
/// redacted.
#[derive(Clone, Serialize, Deserialize)]
pub struct RingSnapshot {
    pub active: u32,
    pub keys: Vec<KeySnapshot>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct KeySnapshot {
    pub id: u32,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    /// The AES-256-GCM key then the HMAC-SHA256 key, 64 bytes, base64.
    pub material: Secret,
}

impl fmt::Debug for RingSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<u32> = self.keys.iter().map(|k| k.id).collect();
        f.debug_struct("RingSnapshot").field("active", &self.active).field("key_ids", &ids).finish()
    }
}

struct RingState {
    active: u32,
    keys: BTreeMap<u32, RingKey>,
}

/// The server's keys. `Debug` shows key ids only.
pub struct KeyRing {
    policy: KeyRingPolicy,
    state: RwLock<RingState>,
}

/// Where a sealed payload's key is found again.
pub const NONCE_LEN: usize = aead::NONCE_LEN;

// === impl KeyRing ===

impl KeyRing {
    /// A ring with one fresh active key.
    pub fn new(policy: KeyRingPolicy, now: i64) -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(1, RingKey::generate(now));
        Self { policy, state: RwLock::new(RingState { active: 1, keys }) }
    }

    /// The ring a snapshot describes.
    pub fn restore(policy: KeyRingPolicy, snapshot: &RingSnapshot) -> Result<Self> {
        let ring = Self::new(policy, 0);
        ring.install(snapshot)?;
        Ok(ring)
    }

    /// Replaces the ring's keys with the snapshot's.
    pub fn install(&self, snapshot: &RingSnapshot) -> Result<()> {
        let mut keys = BTreeMap::new();
        for k in &snapshot.keys {
            keys.insert(k.id, RingKey::from_snapshot(k)?);
        }
        if !keys.contains_key(&snapshot.active) {
            return Err(Error::service_failure("stored key ring has no active key"));
        }
        *self.write()? = RingState { active: snapshot.active, keys };
        Ok(())
    }

    /// The ring as it is.
    pub fn snapshot(&self) -> Result<RingSnapshot> {
        let state = self.read()?;
        Ok(RingSnapshot {
            active: state.active,
            keys: state
                .keys
                .iter()
                .map(|(id, k)| KeySnapshot {
                    id: *id,
                    created_at: k.created_at,
                    retired_at: k.retired_at,
                    material: k.material.clone(),
                })
                .collect(),
        })
    }

    /// The first half of a rotation: the ring with a fresh key that is not active yet (so
    /// that every replica holds it before anyone seals with it), keys past retention gone.
    pub fn with_new_key(&self, now: i64) -> Result<RingSnapshot> {
        let mut next = self.snapshot()?;
        let retain = self.policy.retain_secs;
        next.keys.retain(|k| k.retired_at.is_none_or(|r| now - r <= retain));
        let id = next.keys.iter().map(|k| k.id).max().unwrap_or(0).wrapping_add(1).max(1);
        next.keys.push(KeySnapshot {
            id,
            created_at: now,
            retired_at: None,
            material: RingKey::fresh_material(),
        });
        Ok(next)
    }

    /// The key made by [`with_new_key`](Self::with_new_key) and not active yet, if any:
    /// (id, made at).
    pub fn pending(&self) -> Result<Option<(u32, i64)>> {
        let state = self.read()?;
        let active = state.active;
        Ok(state
            .keys
            .iter()
            .filter(|(id, k)| **id > active && k.retired_at.is_none())
            .map(|(id, k)| (*id, k.created_at))
            .max())
    }

    /// The second half: `id` active, the old active key retired now.
    pub fn activated(&self, id: u32, now: i64) -> Result<RingSnapshot> {
        let mut next = self.snapshot()?;
        let old = next.active;
        for k in &mut next.keys {
            if k.id == old {
                k.retired_at = Some(now);
            }
        }
        next.active = id;
        Ok(next)
    }

    /// Whether the active key has lived or sealed enough to be replaced.
    pub fn rotation_due_at(&self, now: i64) -> Result<bool> {
        let state = self.read()?;
        Ok(self.rotation_due(&state, now))
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, RingState>> {
        self.state.read().map_err(|_| Error::service_failure("key ring lock poisoned"))
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, RingState>> {
        self.state.write().map_err(|_| Error::service_failure("key ring lock poisoned"))
    }

    /// Whether the active key has lived or sealed enough to be replaced.
    fn rotation_due(&self, state: &RingState, now: i64) -> bool {
        state.keys.get(&state.active).is_none_or(|k| {
            now - k.created_at >= self.policy.rotate_after_secs
                || k.seals.load(Ordering::Relaxed) >= self.policy.max_seals_per_key
        })
    }

    /// Forgets retired keys past retention. Rotation is the keeper's (`custody::KeyKeeper`):
    /// it persists a rotated ring before installing it.
    pub fn maintain(&self, now: i64) -> Result<()> {
        let retain = self.policy.retain_secs;
        let expired = |k: &RingKey| k.retired_at.is_some_and(|r| now - r > retain);
        if self.read()?.keys.values().any(expired) {
            self.write()?.keys.retain(|_, k| !expired(k));
        }
        Ok(())
    }

    /// Forces a rotation now (operators, tests).
    pub fn rotate(&self, now: i64) -> Result<u32> {
        Ok(self.write()?.rotate(now))
    }

    /// How many keys the ring holds.
    pub fn key_count(&self) -> Result<usize> {
        Ok(self.read()?.keys.len())
    }

    /// The active key id.
    pub fn active_key_id(&self) -> Result<u32> {
        Ok(self.read()?.active)
    }

    /// Seals `plaintext` under the active key with a random nonce; `aad` is authenticated
    /// but not encrypted. Returns (key id, nonce || ciphertext || tag).
    pub fn seal(&self, aad_prefix: &[u8], plaintext: &[u8]) -> Result<(u32, Vec<u8>)> {
        let state = self.read()?;
        let id = state.active;
        let key = state.keys.get(&id).ok_or_else(|| Error::service_failure("no active key"))?;
        key.seals.fetch_add(1, Ordering::Relaxed);
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce);
        let aad = aad(aad_prefix, id);
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + aead::AES_256_GCM.tag_len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let (_, body) = out.split_at_mut(NONCE_LEN);
        let tag = key
            .seal
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(&aad),
                body,
            )
            .map_err(|_| Error::service_failure("seal failed"))?;
        out.extend_from_slice(tag.as_ref());
        Ok((id, out))
    }

    /// Opens what [`seal`](Self::seal) made; `None` when the key is unknown (rotated out)
    /// or the payload was tampered with.
    pub fn open(&self, aad_prefix: &[u8], key_id: u32, sealed: &[u8]) -> Result<Option<Vec<u8>>> {
        let state = self.read()?;
        let Some(key) = state.keys.get(&key_id) else { return Ok(None) };
        if sealed.len() < NONCE_LEN + aead::AES_256_GCM.tag_len() {
            return Ok(None);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let Ok(nonce) = aead::Nonce::try_assume_unique_for_key(nonce) else { return Ok(None) };
        let mut body = body.to_vec();
        let aad = aad(aad_prefix, key_id);
        match key.seal.open_in_place(nonce, aead::Aad::from(&aad), &mut body) {
            Ok(plain) => Ok(Some(plain.to_vec())),
            Err(_) => Ok(None),
        }
    }

    /// Builds a message for the active key's id (so the id is covered by the MAC) and
    /// signs it with HMAC-SHA256: (message, tag).
    pub fn sign_with(&self, build: impl FnOnce(u32) -> Vec<u8>) -> Result<(Vec<u8>, hmac::Tag)> {
        let state = self.read()?;
        let id = state.active;
        let key = state.keys.get(&id).ok_or_else(|| Error::service_failure("no active key"))?;
        let data = build(id);
        let tag = hmac::sign(&key.mac, &data);
        Ok((data, tag))
    }

    /// Verifies a tag from [`sign`](Self::sign) in constant time.
    pub fn verify(&self, key_id: u32, data: &[u8], tag: &[u8]) -> Result<bool> {
        let state = self.read()?;
        Ok(state.keys.get(&key_id).is_some_and(|k| hmac::verify(&k.mac, data, tag).is_ok()))
    }
}

fn aad(prefix: &[u8], key_id: u32) -> Vec<u8> {
    let mut aad = prefix.to_vec();
    aad.extend_from_slice(&key_id.to_be_bytes());
    aad
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state.read() {
            Ok(s) => f
                .debug_struct("KeyRing")
                .field("active", &s.active)
                .field("key_ids", &s.keys.keys().collect::<Vec<_>>())
                .finish_non_exhaustive(),
            Err(_) => f.write_str("KeyRing(poisoned)"),
        }
    }
}

// === impl RingState ===

impl RingState {
    /// Retires the active key and makes a fresh one active; its id.
    fn rotate(&mut self, now: i64) -> u32 {
        let old = self.active;
        if let Some(k) = self.keys.get_mut(&old) {
            k.retired_at = Some(now);
        }
        let next = old.wrapping_add(1).max(1);
        self.keys.insert(next, RingKey::generate(now));
        self.active = next;
        tracing::info!(key_id = next, retired = old, "key ring rotated");
        next
    }
}

// === impl RingKey ===

impl RingKey {
    fn fresh_material() -> Secret {
        let mut material = [0u8; 64];
        random_bytes(&mut material);
        Secret(data_encoding::BASE64.encode(&material))
    }

    fn generate(now: i64) -> Self {
        let snapshot =
            KeySnapshot { id: 0, created_at: now, retired_at: None, material: Self::fresh_material() };
        // Fresh material is always 64 bytes.
        #[allow(clippy::expect_used)]
        Self::from_snapshot(&snapshot).expect("fresh key material")
    }

    fn from_snapshot(k: &KeySnapshot) -> Result<Self> {
        let bytes = data_encoding::BASE64
            .decode(k.material.0.as_bytes())
            .ok()
            .filter(|b| b.len() == 64)
            .ok_or_else(|| Error::service_failure("stored key ring material is malformed"))?;
        let (seal, mac) = bytes.split_at(32);
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, seal)
            .map_err(|_| Error::service_failure("stored key ring material is malformed"))?;
        Ok(Self {
            created_at: k.created_at,
            retired_at: k.retired_at,
            seal: aead::LessSafeKey::new(unbound),
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac),
            seals: AtomicU64::new(0),
            material: k.material.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_tamper() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let (id, mut sealed) = ring.seal(b"t", b"hello").unwrap();
        assert_eq!(ring.open(b"t", id, &sealed).unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(ring.open(b"other", id, &sealed).unwrap(), None);
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(ring.open(b"t", id, &sealed).unwrap(), None);
        assert_eq!(ring.open(b"t", id + 7, &sealed).unwrap(), None);
    }

    #[test]
    fn rotation_keeps_old_keys_until_retention() {
        let policy = KeyRingPolicy { rotate_after_secs: 100, max_seals_per_key: 3, retain_secs: 50 };
        let ring = KeyRing::new(policy, 0);
        let (id1, sealed) = ring.seal(b"", b"x").unwrap();
        assert!(!ring.rotation_due_at(99).unwrap());
        assert!(ring.rotation_due_at(100).unwrap(), "due by age");
        ring.rotate(100).unwrap();
        let id2 = ring.active_key_id().unwrap();
        assert_ne!(id1, id2);
        ring.maintain(150).unwrap();
        assert!(ring.open(b"", id1, &sealed).unwrap().is_some(), "retired key still opens");
        ring.maintain(151).unwrap();
        assert!(ring.open(b"", id1, &sealed).unwrap().is_none(), "past retention it is gone");
        // The seal count also makes rotation due.
        for _ in 0..3 {
            ring.seal(b"", b"y").unwrap();
        }
        assert!(ring.rotation_due_at(152).unwrap(), "due by seal count");
    }

    #[test]
    fn macs_verify_in_constant_time_api() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let mut signed_id = 0;
        let (data, tag) = ring
            .sign_with(|id| {
                signed_id = id;
                b"data".to_vec()
            })
            .unwrap();
        assert!(ring.verify(signed_id, &data, tag.as_ref()).unwrap());
        assert!(!ring.verify(signed_id, b"datb", tag.as_ref()).unwrap());
    }

    #[test]
    fn a_restored_ring_opens_what_the_old_one_sealed_and_rotates_only_when_told() {
        let policy = KeyRingPolicy { rotate_after_secs: 100, max_seals_per_key: 1 << 30, retain_secs: 50 };
        let ring = KeyRing::new(policy, 0);
        let (id, sealed) = ring.seal(b"t", b"hello").unwrap();
        let snapshot = ring.snapshot().unwrap();
        let json = serde_json::to_string(&snapshot).unwrap();
        let restored = KeyRing::restore(policy, &serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(restored.open(b"t", id, &sealed).unwrap().as_deref(), Some(&b"hello"[..]));
        // Rings do not rotate by themselves, even when due: the keeper does.
        assert!(restored.rotation_due_at(100).unwrap());
        restored.maintain(100).unwrap();
        assert_eq!(restored.active_key_id().unwrap(), id);
        let staged = restored.with_new_key(100).unwrap();
        restored.install(&staged).unwrap();
        assert_eq!(restored.active_key_id().unwrap(), id, "a new key is not used before it is activated");
        let (pending, _) = restored.pending().unwrap().unwrap();
        let next = restored.activated(pending, 101).unwrap();
        restored.install(&next).unwrap();
        assert_eq!(restored.active_key_id().unwrap(), pending);
        assert_eq!(restored.pending().unwrap(), None);
        assert!(restored.open(b"t", id, &sealed).unwrap().is_some(), "the retired key stays");
        assert!(!format!("{next:?}").contains(&next.keys[0].material.0));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let shown = format!("{ring:?}");
        assert!(shown.contains("active"));
        assert!(shown.len() < 80, "{shown}");
    }
}
