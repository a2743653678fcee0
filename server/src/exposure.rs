//! The exposure rule (docs/configuration.md, "Exposure"), in one place for every listener:
//! what proves nothing about the caller (an unsigned operator call, a simulation's claimed
//! instance) is answered only to peers on this host, decided per connection from the peer's
//! address; anything wider is an explicit setting (`config`), announced at start-up with
//! the rest of what each listener exposes and to whom (`announce`).

use std::net::IpAddr;

/// Whether a peer is on this host (IPv4-mapped IPv6 loopback included).
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Who may make unsigned Iam and Ec2 calls, which act as the account's operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsignedCalls {
    /// `auth.allow_unsigned = false`: every call is signed.
    Refused,
    /// The default: peers on this host only.
    FromLoopback,
    /// `auth.allow_unsigned_off_loopback`: any peer that reaches the listener.
    FromAnywhere,
}

impl UnsignedCalls {
    /// Whether an unsigned call from `peer` (unknown: not admitted) acts as the operator.
    pub fn admit(self, peer: Option<IpAddr>) -> bool {
        match self {
            Self::Refused => false,
            Self::FromLoopback => peer.is_some_and(is_loopback),
            Self::FromAnywhere => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_decided_on_the_canonical_address() {
        for ip in ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.1", "0.0.0.0", "::", "::ffff:10.0.0.1", "192.0.2.2"] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn unsigned_calls_need_a_loopback_peer_unless_widened() {
        let mut auth = crate::config::AuthSettings::default();
        let (here, there) = (Some("127.0.0.1".parse().unwrap()), Some("192.0.2.2".parse().unwrap()));
        let rule = auth.unsigned_calls();
        assert_eq!(rule, UnsignedCalls::FromLoopback);
        assert!(rule.admit(here));
        assert!(!rule.admit(there));
        assert!(!rule.admit(None), "a peer we cannot see is not on this host");
        auth.allow_unsigned_off_loopback = true;
        assert!(auth.unsigned_calls().admit(there));
        auth.allow_unsigned = false;
        assert!(!auth.unsigned_calls().admit(here));
    }
}
