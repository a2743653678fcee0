//! IMDSv2 session tokens: stateless, a MAC over (how the instance was identified, instance,
//! expiry, key id). Any replica holding the key ring verifies them; one instance's token is
//! useless to another, and a door that demands a stronger proof of identity than the one a
//! token was minted on refuses it.

use data_encoding::BASE64URL_NOPAD;

use super::{Result, keyring::KeyRing};

/// Tokens without a proof byte, minted before proofs were recorded: taken as [`Proof::Claimed`].
const V1: u8 = 1;
const VERSION: u8 = 2;
const MAC_LEN: usize = 32;
/// IMDSv2's TTL range (X-aws-ec2-metadata-token-ttl-seconds).
pub const TTL_RANGE: std::ops::RangeInclusive<i64> = 1..=21_600;

/// How the instance a token was minted for proved who it was, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proof {
    /// Only claimed: a simulation's path prefix or loopback address, or a gRPC instance id
    /// believed without its key (`simulation.trust_claimed_instance_id`).
    Claimed = 0,
    /// The connection came from the instance's own private address, on a network where
    /// only it holds that address (EC2's way).
    SourceAddress = 1,
    /// The instance presented its instance key.
    InstanceKey = 2,
}

impl Proof {
    fn from_byte(b: u8) -> Option<Self> {
        [Self::Claimed, Self::SourceAddress, Self::InstanceKey].into_iter().find(|p| *p as u8 == b)
    }
}

/// What a valid token says.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub instance_id: String,
    pub proof: Proof,
}

/// Makes a token for `instance_id`, identified by `proof`, valid until `expires_at`.
pub fn issue(ring: &KeyRing, instance_id: &str, proof: Proof, expires_at: i64) -> Result<String> {
    let (mut token, tag) = ring.sign_with(|key_id| {
        let mut body = Vec::with_capacity(2 + 4 + 8 + instance_id.len() + MAC_LEN);
        body.push(VERSION);
        body.push(proof as u8);
        body.extend_from_slice(&key_id.to_be_bytes());
        body.extend_from_slice(&expires_at.to_be_bytes());
        body.extend_from_slice(instance_id.as_bytes());
        body
    })?;
    token.extend_from_slice(tag.as_ref());
    Ok(BASE64URL_NOPAD.encode(&token))
}

/// The longest token verified, decoded: the header, the MAC and an instance id far longer
/// than any EC2 uses (`i-` and 17 hex digits). Anything longer is not a token of ours.
const MAX_DECODED: usize = 2 + 4 + 8 + 64 + MAC_LEN;

/// The instance a token was issued to and how it was identified, if the token is ours,
/// untampered and unexpired at `now`. Decoded on the stack: a token is verified on every
/// request that sends it.
pub fn verify(ring: &KeyRing, token: &str, now: i64) -> Result<Option<Verified>> {
    let mut buffer = [0u8; MAX_DECODED];
    let Ok(len) = BASE64URL_NOPAD.decode_len(token.len()) else { return Ok(None) };
    let Some(raw) = buffer.get_mut(..len) else { return Ok(None) };
    let Ok(len) = BASE64URL_NOPAD.decode_mut(token.as_bytes(), raw) else { return Ok(None) };
    let raw = &raw[..len];
    // The proof byte, and where the key id starts.
    let (proof, at) = match raw.first() {
        Some(&VERSION) if raw.len() >= 2 => match Proof::from_byte(raw[1]) {
            Some(proof) => (proof, 2),
            None => return Ok(None),
        },
        Some(&V1) => (Proof::Claimed, 1),
        _ => return Ok(None),
    };
    if raw.len() < at + 4 + 8 + MAC_LEN {
        return Ok(None);
    }
    let (body, tag) = raw.split_at(raw.len() - MAC_LEN);
    let key_id = u32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
    if !ring.verify(key_id, body, tag)? {
        return Ok(None);
    }
    let mut exp = [0u8; 8];
    exp.copy_from_slice(&body[at + 4..at + 12]);
    if now >= i64::from_be_bytes(exp) {
        return Ok(None);
    }
    Ok(std::str::from_utf8(&body[at + 12..]).ok().map(|id| Verified { instance_id: id.to_string(), proof }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keyring::KeyRingPolicy;

    const ID: &str = "i-0123456789abcdef0";

    fn id(v: Option<Verified>) -> Option<String> {
        v.map(|v| v.instance_id)
    }

    #[test]
    fn tokens_bind_instance_and_expire() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let t = issue(&ring, ID, Proof::InstanceKey, 100).unwrap();
        assert_eq!(
            verify(&ring, &t, 99).unwrap(),
            Some(Verified { instance_id: ID.into(), proof: Proof::InstanceKey })
        );
        assert_eq!(verify(&ring, &t, 100).unwrap(), None);
        // Change the instance id inside the token: the MAC no longer matches.
        let mut raw = BASE64URL_NOPAD.decode(t.as_bytes()).unwrap();
        raw[14] ^= 1;
        assert_eq!(verify(&ring, &BASE64URL_NOPAD.encode(&raw), 50).unwrap(), None);
        assert_eq!(verify(&ring, "garbage", 50).unwrap(), None);
        // Still valid after the ring rotates (old key retained).
        ring.rotate(10).unwrap();
        assert!(verify(&ring, &t, 50).unwrap().is_some());
    }

    #[test]
    fn only_tokens_of_a_bounded_length_are_decoded() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let longest = format!("i-{}", "a".repeat(62));
        let t = issue(&ring, &longest, Proof::Claimed, 100).unwrap();
        assert_eq!(id(verify(&ring, &t, 50).unwrap()), Some(longest.clone()));
        let longer = issue(&ring, &format!("{longest}b"), Proof::Claimed, 100).unwrap();
        assert_eq!(verify(&ring, &longer, 50).unwrap(), None);
        assert_eq!(verify(&ring, &"A".repeat(1 << 20), 50).unwrap(), None);
    }

    #[test]
    fn the_proof_is_signed_with_the_rest() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let claimed = issue(&ring, ID, Proof::Claimed, 100).unwrap();
        assert_eq!(verify(&ring, &claimed, 50).unwrap().map(|v| v.proof), Some(Proof::Claimed));
        // Raising a claimed token's proof breaks its MAC; an unknown proof is no token.
        for forged in [Proof::SourceAddress as u8, Proof::InstanceKey as u8, 7] {
            let mut raw = BASE64URL_NOPAD.decode(claimed.as_bytes()).unwrap();
            raw[1] = forged;
            assert_eq!(id(verify(&ring, &BASE64URL_NOPAD.encode(&raw), 50).unwrap()), None);
        }
    }

    #[test]
    fn tokens_minted_before_proofs_were_recorded_count_as_claims() {
        let ring = KeyRing::new(KeyRingPolicy::default(), 0);
        let (mut token, tag) = ring
            .sign_with(|key_id| {
                let mut body = vec![V1];
                body.extend_from_slice(&key_id.to_be_bytes());
                body.extend_from_slice(&100i64.to_be_bytes());
                body.extend_from_slice(ID.as_bytes());
                body
            })
            .unwrap();
        token.extend_from_slice(tag.as_ref());
        let v1 = BASE64URL_NOPAD.encode(&token);
        assert_eq!(
            verify(&ring, &v1, 50).unwrap(),
            Some(Verified { instance_id: ID.into(), proof: Proof::Claimed })
        );
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        fn proof() -> impl Strategy<Value = Proof> {
            prop_oneof![Just(Proof::Claimed), Just(Proof::SourceAddress), Just(Proof::InstanceKey)]
        }

        proptest! {
            /// Issue 14: any change to a token is refused, never opened to something else
            /// (another instance, another proof, another expiry).
            #[test]
            fn any_changed_byte_is_refused(
                id in "i-[0-9a-f]{8,17}",
                proof in proof(),
                at in any::<prop::sample::Index>(),
                mask in 1u8..,
            ) {
                let ring = KeyRing::new(KeyRingPolicy::default(), 0);
                let token = issue(&ring, &id, proof, 1_000).unwrap();
                prop_assert_eq!(
                    verify(&ring, &token, 500).unwrap(),
                    Some(Verified { instance_id: id.clone(), proof })
                );
                let mut raw = BASE64URL_NOPAD.decode(token.as_bytes()).unwrap();
                let i = at.index(raw.len());
                raw[i] ^= mask;
                prop_assert_eq!(verify(&ring, &BASE64URL_NOPAD.encode(&raw), 500).unwrap(), None);
                // Cut short or extended: refused too.
                raw[i] ^= mask;
                let short = BASE64URL_NOPAD.encode(&raw[..i]);
                prop_assert_eq!(verify(&ring, &short, 500).unwrap(), None);
                raw.push(mask);
                prop_assert_eq!(verify(&ring, &BASE64URL_NOPAD.encode(&raw), 500).unwrap(), None);
            }

            #[test]
            fn arbitrary_text_is_no_token(text in ".{0,200}") {
                let ring = KeyRing::new(KeyRingPolicy::default(), 0);
                prop_assert_eq!(verify(&ring, &text, 0).unwrap(), None);
            }
        }
    }
}
