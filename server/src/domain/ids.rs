//! AWS-shaped identifiers (random) and ARNs.

use ring::rand::{SecureRandom, SystemRandom};

/// The AWS partition rolecall speaks for.
pub const PARTITION: &str = "aws";

const BASE32_UPPER: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HEX: &[u8; 16] = b"0123456789abcdef";
const SECRET_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    // SystemRandom fails only where the OS has no entropy source at all; there is nothing
    // to fall back to, and a predictable identifier would be worse than stopping.
    #[allow(clippy::expect_used)]
    SystemRandom::new().fill(buf).expect("the operating system's random source failed");
}

/// `len` characters drawn uniformly from `alphabet` (its size divides 256: no modulo bias).
fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut buf = vec![0u8; len];
    random_bytes(&mut buf);
    map_to(alphabet, buf)
}

/// Maps random bytes onto an ASCII alphabet whose size divides 256.
fn map_to(alphabet: &[u8], mut bytes: Vec<u8>) -> String {
    debug_assert!(256 % alphabet.len() == 0 && alphabet.is_ascii());
    for b in &mut bytes {
        *b = alphabet[usize::from(*b) % alphabet.len()];
    }
    // Every byte is now from an ASCII alphabet.
    String::from_utf8(bytes).unwrap_or_default()
}

/// A temporary access key id (`ASIA` + 16) and its secret (40), from one draw of the
/// random source: issuing credentials is on the refresh path.
pub fn temporary_key_pair() -> (String, String) {
    let mut buf = [0u8; 56];
    random_bytes(&mut buf);
    let (id, secret) = buf.split_at(16);
    (format!("ASIA{}", map_to(BASE32_UPPER, id.to_vec())), map_to(SECRET_ALPHABET, secret.to_vec()))
}

/// A unique id with an AWS prefix: 21 characters in all (`AROA` + 17).
fn unique_id(prefix: &str) -> String {
    format!("{prefix}{}", random_string(BASE32_UPPER, 21 - prefix.len()))
}

pub fn role_id() -> String {
    unique_id("AROA")
}

pub fn user_id() -> String {
    unique_id("AIDA")
}

pub fn group_id() -> String {
    unique_id("AGPA")
}

pub fn instance_profile_id() -> String {
    unique_id("AIPA")
}

pub fn policy_id() -> String {
    unique_id("ANPA")
}

/// A long-term access key id: `AKIA` + 16.
pub fn long_term_access_key_id() -> String {
    format!("AKIA{}", random_string(BASE32_UPPER, 16))
}

/// A temporary access key id: `ASIA` + 16.
pub fn temporary_access_key_id() -> String {
    format!("ASIA{}", random_string(BASE32_UPPER, 16))
}

/// A secret access key: 40 characters, as AWS's.
pub fn secret_access_key() -> String {
    random_string(SECRET_ALPHABET, 40)
}

/// `i-` + 17 hex digits.
pub fn instance_id() -> String {
    format!("i-{}", random_string(HEX, 17))
}

/// `iip-assoc-` + 17 hex digits.
pub fn association_id() -> String {
    format!("iip-assoc-{}", random_string(HEX, 17))
}

/// `r-` + 17 hex digits.
pub fn reservation_id() -> String {
    format!("r-{}", random_string(HEX, 17))
}

/// A secret for an instance to prove who it is (256 bits, URL-safe).
/// A random RFC 4122 version 4 UUID: request and event ids.
pub fn uuid() -> String {
    let mut b = [0u8; 16];
    random_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = data_encoding::HEXLOWER.encode(&b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

pub fn instance_key() -> String {
    let mut buf = [0u8; 32];
    random_bytes(&mut buf);
    data_encoding::BASE64URL_NOPAD.encode(&buf)
}

/// Whether `s` has the shape of an instance id.
pub fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-")
        .is_some_and(|h| (h.len() == 8 || h.len() == 17) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// ARNs of IAM and STS entities.
pub mod arn {
    use super::PARTITION;

    pub fn role(account: &str, path: &str, name: &str) -> String {
        format!("arn:{PARTITION}:iam::{account}:role{path}{name}")
    }

    pub fn user(account: &str, path: &str, name: &str) -> String {
        format!("arn:{PARTITION}:iam::{account}:user{path}{name}")
    }

    pub fn group(account: &str, path: &str, name: &str) -> String {
        format!("arn:{PARTITION}:iam::{account}:group{path}{name}")
    }

    pub fn instance_profile(account: &str, path: &str, name: &str) -> String {
        format!("arn:{PARTITION}:iam::{account}:instance-profile{path}{name}")
    }

    pub fn policy(account: &str, path: &str, name: &str) -> String {
        format!("arn:{PARTITION}:iam::{account}:policy{path}{name}")
    }

    pub fn aws_managed_policy(path: &str, name: &str) -> String {
        format!("arn:{PARTITION}:iam::aws:policy{path}{name}")
    }

    pub fn assumed_role(account: &str, role_name: &str, session: &str) -> String {
        format!("arn:{PARTITION}:sts::{account}:assumed-role/{role_name}/{session}")
    }

    pub fn instance(region: &str, account: &str, instance_id: &str) -> String {
        format!("arn:{PARTITION}:ec2:{region}:{account}:instance/{instance_id}")
    }

    /// A policy ARN split into (account or "aws", path, name).
    pub fn parse_policy(arn: &str) -> Option<(&str, &str, &str)> {
        let rest = arn.strip_prefix("arn:")?;
        let (partition, rest) = rest.split_once(':')?;
        if partition != PARTITION {
            return None;
        }
        let rest = rest.strip_prefix("iam::")?;
        let (account, resource) = rest.split_once(':')?;
        let resource = resource.strip_prefix("policy")?;
        if !resource.starts_with('/') {
            return None;
        }
        let slash = resource.rfind('/')?;
        let (path, name) = resource.split_at(slash + 1);
        if name.is_empty() {
            return None;
        }
        Some((account, path, name))
    }

    /// The name at the end of an instance-profile ARN.
    pub fn instance_profile_name(arn: &str) -> Option<&str> {
        let (_, resource) = arn.strip_prefix("arn:")?.rsplit_once(':')?;
        let resource = resource.strip_prefix("instance-profile/")?;
        Some(resource.rsplit('/').next().unwrap_or(resource))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_have_aws_shapes() {
        for id in [role_id(), user_id(), instance_profile_id(), policy_id()] {
            assert_eq!(id.len(), 21, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        }
        assert!(role_id().starts_with("AROA"));
        let akia = long_term_access_key_id();
        assert!(akia.starts_with("AKIA") && akia.len() == 20);
        let asia = temporary_access_key_id();
        assert!(asia.starts_with("ASIA") && asia.len() == 20);
        let (id, secret) = temporary_key_pair();
        assert!(
            id.starts_with("ASIA") && id.len() == 20 && id[4..].bytes().all(|b| BASE32_UPPER.contains(&b))
        );
        assert!(secret.len() == 40 && secret.bytes().all(|b| SECRET_ALPHABET.contains(&b)));
        assert_ne!(temporary_key_pair(), temporary_key_pair());
        assert_eq!(secret_access_key().len(), 40);
        let i = instance_id();
        assert!(is_instance_id(&i), "{i}");
        assert_eq!(association_id().len(), "iip-assoc-".len() + 17);
        assert_ne!(instance_key(), instance_key());
    }

    #[test]
    fn policy_arns_parse() {
        assert_eq!(
            arn::parse_policy("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"),
            Some(("aws", "/", "AmazonS3ReadOnlyAccess"))
        );
        assert_eq!(
            arn::parse_policy("arn:aws:iam::123456789012:policy/team/a/ReadStuff"),
            Some(("123456789012", "/team/a/", "ReadStuff"))
        );
        assert_eq!(arn::parse_policy("arn:aws:iam::123456789012:role/x"), None);
        assert_eq!(arn::parse_policy("not-an-arn"), None);
        assert_eq!(
            arn::instance_profile_name("arn:aws:iam::123456789012:instance-profile/a/b/Web"),
            Some("Web")
        );
    }
}
