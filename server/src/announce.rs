//! The start-up announcement: for each listener, where it is bound, whether it is reached
//! from this host or the network, its transport, and who may do what there
//! (docs/configuration.md, "Exposure"). Unsafe settings are announced as warnings.

use std::net::SocketAddr;

use crate::{
    config::Config,
    exposure::{UnsignedCalls, is_loopback},
};

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
    let unsigned = config.auth.unsigned_calls();
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
    let exposed = [Some(grpc), bound.imds, bound.query].into_iter().flatten().any(|a| !is_loopback(a.ip()));
    match config.server.max_connections_per_address {
        0 => say(
            exposed,
            "exposure: connections unbounded per peer address (server.max_connections_per_address = 0): one peer may hold all of a listener's".into(),
        ),
        n => say(
            false,
            format!("exposure: at most {n} connections per peer address on each listener (127.0.0.1 and ::1 excepted)"),
        ),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_announcement_warns_when_one_peer_may_hold_every_connection_of_an_exposed_listener() {
        let mut config = Config::default();
        let per_address = |config: &Config, grpc: &str| {
            let bound = Bound { grpc: grpc.parse().unwrap(), metrics: None, imds: None, query: None };
            announcements(config, &bound).into_iter().find(|l| l.line.contains("per peer address")).unwrap()
        };
        let line = per_address(&config, "0.0.0.0:50051");
        assert!(!line.warn && line.line.contains("at most 64"), "{}", line.line);
        config.server.max_connections_per_address = 0;
        assert!(per_address(&config, "0.0.0.0:50051").warn);
        assert!(!per_address(&config, "127.0.0.1:50051").warn, "not exposed");
    }
}
