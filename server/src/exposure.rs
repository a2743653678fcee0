//! The exposure rule (docs/configuration.md, "Exposure"), in one place for every listener:
//! what proves nothing about the caller (an unsigned operator call, a simulation's claimed
//! instance) is answered only to peers on this host, decided per connection from the peer's
//! address; anything wider is an explicit setting, announced at start-up with the rest of
//! what each listener exposes and to whom.

use std::net::{IpAddr, SocketAddr};

use crate::config::{AuthSettings, Config};

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
    pub fn of(auth: &AuthSettings) -> Self {
        match (auth.allow_unsigned, auth.allow_unsigned_off_loopback) {
            (false, _) => Self::Refused,
            (true, false) => Self::FromLoopback,
            (true, true) => Self::FromAnywhere,
        }
    }

    /// Whether an unsigned call from `peer` (unknown: not admitted) acts as the operator.
    pub fn admit(self, peer: Option<IpAddr>) -> bool {
        match self {
            Self::Refused => false,
            Self::FromLoopback => peer.is_some_and(is_loopback),
            Self::FromAnywhere => true,
        }
    }
}

/// Where each listener is bound (after binding, so port 0 shows as the port it got).
pub struct Bound {
    pub grpc: SocketAddr,
    pub metrics: Option<SocketAddr>,
    pub imds: Option<SocketAddr>,
    pub query: Option<SocketAddr>,
}

/// One line of the start-up announcement; `warn` where the setting is unsafe when exposed.
#[derive(Debug, PartialEq, Eq)]
pub struct Announcement {
    pub warn: bool,
    pub line: String,
}

/// Who reaches a listener bound to `addr`.
fn reach(addr: SocketAddr) -> &'static str {
    if is_loopback(addr.ip()) { "this host only" } else { "the network" }
}

/// What each listener exposes and to whom, for the start-up log.
pub fn announcements(config: &Config, bound: &Bound) -> Vec<Announcement> {
    let mut out = Vec::new();
    let mut say = |warn: bool, line: String| out.push(Announcement { warn, line });

    let transport = match &config.tls {
        Some(tls) if tls.client_ca.is_some() => "mutual TLS",
        Some(_) => "TLS",
        None => "plaintext",
    };
    let grpc = bound.grpc;
    let unsigned = UnsignedCalls::of(&config.auth);
    say(
        unsigned == UnsignedCalls::FromAnywhere && !is_loopback(grpc.ip()),
        format!(
            "exposure: gRPC on {grpc} ({transport}), reached from {}: {}; STS signed; InstanceMetadata by instance key or its token",
            reach(grpc),
            match unsigned {
                UnsignedCalls::Refused => "Iam and Ec2 calls signed, every one (auth.allow_unsigned = false)",
                UnsignedCalls::FromLoopback =>
                    "unsigned Iam and Ec2 calls act as the operator for peers on this host only, others must sign",
                UnsignedCalls::FromAnywhere =>
                    "unsigned Iam and Ec2 calls act as the operator for ANY peer (auth.allow_unsigned_off_loopback)",
            }
        ),
    );
    if let Some(addr) = bound.metrics {
        say(
            false,
            format!(
                "exposure: metrics on {addr}, reached from {}: GET /metrics, unauthenticated, counters only (no identities, no secrets)",
                reach(addr)
            ),
        );
    }
    if let Some(addr) = bound.imds {
        let how = if config.imds.instance_identity != "source_address" {
            format!(
                "instances claimed by {} (simulation): answered to peers on this host only",
                config.imds.instance_identity
            )
        } else {
            "instances known by their source address".to_string()
        };
        say(
            false,
            format!("exposure: instance metadata (HTTP) on {addr}, reached from {}: {how}", reach(addr)),
        );
    }
    if let Some(addr) = bound.query {
        say(
            !is_loopback(addr.ip()),
            format!(
                "exposure: AWS APIs (STS, IAM, EC2, S3) over plaintext HTTP on {addr}, reached from {}: every call signed",
                reach(addr)
            ),
        );
    }
    out
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
        let mut auth = AuthSettings::default();
        let (here, there) = (Some("127.0.0.1".parse().unwrap()), Some("192.0.2.2".parse().unwrap()));
        let rule = UnsignedCalls::of(&auth);
        assert_eq!(rule, UnsignedCalls::FromLoopback);
        assert!(rule.admit(here));
        assert!(!rule.admit(there));
        assert!(!rule.admit(None), "a peer we cannot see is not on this host");
        auth.allow_unsigned_off_loopback = true;
        assert!(UnsignedCalls::of(&auth).admit(there));
        auth.allow_unsigned = false;
        assert!(!UnsignedCalls::of(&auth).admit(here));
    }

    #[test]
    fn the_announcement_warns_where_an_operator_is_reachable_from_the_network() {
        let mut config = Config::default();
        let bound = Bound { grpc: "0.0.0.0:50051".parse().unwrap(), metrics: None, imds: None, query: None };
        let lines = announcements(&config, &bound);
        assert!(!lines[0].warn);
        assert!(lines[0].line.contains("reached from the network"), "{}", lines[0].line);
        assert!(lines[0].line.contains("peers on this host only"), "{}", lines[0].line);
        config.auth.allow_unsigned_off_loopback = true;
        let lines = announcements(&config, &bound);
        assert!(lines[0].warn && lines[0].line.contains("ANY peer"), "{}", lines[0].line);
    }
}
