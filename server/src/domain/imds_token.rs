//! IMDSv2 session tokens: stateless, a MAC over (instance, expiry, key id). Any replica
//! holding the key ring verifies them; one instance's token is useless to another.

use data_encoding::BASE64URL_NOPAD;

use super::{Result, keyring::KeyRing};

const VERSION: u8 = 1;
const MAC_LEN: usize = 32;
/// IMDSv2's TTL range (X-aws-ec2-metadata-token-ttl-seconds).
pub const TTL_RANGE: std::ops::RangeInclusive<i64> = 1..=21_600;

/// Makes a token for `instance_id` valid until `expires_at`.
pub fn issue(ring: &KeyRing, instance_id: &str, expires_at: i64) -> Result<String> {
    let (mut token, tag) = ring.sign_with(|key_id| {
        let mut body = Vec::with_capacity(1 + 4 + 8 + instance_id.len() + MAC_LEN);
        body.push(VERSION);
        body.extend_from_slice(&key_id.to_be_bytes());
        body.extend_from_slice(&expires_at.to_be_bytes());
        body.extend_from_slice(instance_id.as_bytes());
        body
    })?;
    token.extend_from_slice(tag.as_ref());
    Ok(BASE64URL_NOPAD.encode(&token))
}

/// The instance a token was issued to, if it is ours, untampered and unexpired at `now`.
pub fn verify(ring: &KeyRing, token: &str, now: i64) -> Result<Option<String>> {
    let Ok(raw) = BASE64URL_NOPAD.decode(token.as_bytes()) else { return Ok(None) };
    if raw.len() < 1 + 4 + 8 + MAC_LEN || raw[0] != VERSION {
        return Ok(None);
    }
    let (body, tag) = raw.split_at(raw.len() - MAC_LEN);
    let key_id = u32::from_be_bytes([body[1], body[2], body[3], body[4]]);
    if !ring.verify(key_id, body, tag)? {
        return Ok(None);
    }
    let mut exp = [0u8; 8];
    exp.copy_from_slice(&body[5..13]);
    if now >= i64::from_be_bytes(exp) {
        return Ok(None);
    }
    Ok(String::from_utf8(body[13..].to_vec()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keyring::KeyRingPolicy;

    #[test]
    fn tokens_bind_instance_and_expire() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let t = issue(&ring, "i-0123456789abcdef0", 100).unwrap();
        assert_eq!(verify(&ring, &t, 99).unwrap().as_deref(), Some("i-0123456789abcdef0"));
        assert_eq!(verify(&ring, &t, 100).unwrap(), None);
        // Change the instance id inside the token: the MAC no longer matches.
        let mut raw = BASE64URL_NOPAD.decode(t.as_bytes()).unwrap();
        raw[13] ^= 1;
        assert_eq!(verify(&ring, &BASE64URL_NOPAD.encode(&raw), 50).unwrap(), None);
        assert_eq!(verify(&ring, "garbage", 50).unwrap(), None);
        // Still valid after the ring rotates (old key retained).
        ring.rotate(10).unwrap();
        assert!(verify(&ring, &t, 50).unwrap().is_some());
    }
}
