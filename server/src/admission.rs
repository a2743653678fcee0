//! How every listener admits connections (the HTTP doors and gRPC alike): at most `max`
//! open at once, past which it stops accepting, so that new connections wait in the
//! kernel's backlog while established clients keep being served (said once, as a warning,
//! each time it fills); at most `per_address` of them from one peer address, past which a
//! new one from that address is closed at once (counted in
//! `rolecall_connections_refused_total{door}`, logged at debug only), so that one peer cannot
//! take every place (an IPv6 peer counts by its /64); accept errors (out of descriptors, among others) logged, with a short
//! pause instead of a busy loop; the connections open shown as
//! `rolecall_http_connections{door}`.
//!
//! This host's own address (127.0.0.1, ::1) has no per-address bound: it is the operator's
//! tools and load tests. Other loopback addresses do: they are simulated instances.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::metrics::gauge::Gauge;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
};

use crate::telemetry::{DoorLabels, Metrics};

/// The connections open from each peer address (only those with any).
type ByAddress = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// A listener and the bounds on its connections.
pub struct Admission {
    door: &'static str,
    listener: TcpListener,
    permits: Arc<Semaphore>,
    max: usize,
    per_address: usize,
    by_address: ByAddress,
    open: Gauge,
    refused: prometheus_client::metrics::counter::Counter,
    full: bool,
}

/// What an admitted connection holds for as long as it lives: its place among the open
/// ones, its count in the gauge, and its count under its address.
pub struct Held {
    _permit: OwnedSemaphorePermit,
    open: Gauge,
    address: Option<(ByAddress, IpAddr)>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.open.dec();
        if let Some((by_address, ip)) = &self.address
            && let Ok(mut counts) = by_address.lock()
            && let Some(n) = counts.get_mut(ip)
        {
            *n -= 1;
            if *n == 0 {
                counts.remove(ip);
            }
        }
    }
}

/// This host's own address, which the per-address bound leaves out.
fn this_host(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped() == Some(std::net::Ipv4Addr::LOCALHOST),
    }
}

/// The address a peer's connections count under: an IPv4 address (mapped into IPv6 or
/// not) as itself, an IPv6 one as its /64, the least a site is given (one host may hold a
/// whole /64 of addresses).
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
        v4 => v4,
    }
}

impl Admission {
    /// At most `max` connections open, and `per_address` from one address (0: no such bound).
    pub fn new(
        door: &'static str,
        listener: TcpListener,
        max: usize,
        per_address: usize,
        metrics: &Metrics,
    ) -> Self {
        let labels = DoorLabels { door: door.into() };
        let open = metrics.http_connections.get_or_create(&labels).clone();
        let refused = metrics.connections_refused.get_or_create(&labels).clone();
        Self {
            door,
            listener,
            permits: Arc::new(Semaphore::new(max)),
            max,
            per_address,
            by_address: Arc::default(),
            open,
            refused,
            full: false,
        }
    }

    /// Counts a new connection from `ip` under its address (an IPv6 one under its /64);
    /// None (refused) when that address has its `per_address` open already.
    fn take_address(&self, ip: IpAddr) -> Option<Option<(ByAddress, IpAddr)>> {
        if self.per_address == 0 || this_host(ip) {
            return Some(None);
        }
        let ip = counted_as(ip);
        let mut counts = self.by_address.lock().ok()?;
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.per_address {
            return None;
        }
        *n += 1;
        Some(Some((self.by_address.clone(), ip)))
    }

    /// The next connection (TCP_NODELAY set), once one more may be open; None once `stop`
    /// turns true.
    pub async fn next(&mut self, stop: &mut watch::Receiver<bool>) -> Option<(TcpStream, SocketAddr, Held)> {
        let door = self.door;
        loop {
            let permit = match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    self.full = false;
                    permit
                }
                Err(_) => {
                    if !self.full {
                        tracing::warn!(
                            door,
                            max = self.max,
                            "connections at their maximum: new ones wait until one closes"
                        );
                        self.full = true;
                    }
                    tokio::select! {
                        permit = self.permits.clone().acquire_owned() => permit.ok()?,
                        () = stopped(stop) => return None,
                    }
                }
            };
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(door, error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = stopped(stop) => return None,
            };
            let Some(address) = self.take_address(peer.ip()) else {
                // Closed at once (dropped): its address holds its share of the places.
                self.refused.inc();
                tracing::debug!(door, %peer, "connection refused: its address has its maximum open");
                continue;
            };
            // Small RPCs must not wait on Nagle's algorithm (~40 ms).
            let _ = stream.set_nodelay(true);
            self.open.inc();
            return Some((stream, peer, Held { _permit: permit, open: self.open.clone(), address }));
        }
    }
}

/// Resolves once the listener is told to stop (holding no lock of the watch across awaits).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_host_is_127_0_0_1_and_the_ipv6_loopback_only() {
        for host in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(this_host(host.parse().unwrap()), "{host}");
        }
        for peer in ["127.0.0.2", "10.0.0.1", "::ffff:127.0.0.2", "2001:db8::1"] {
            assert!(!this_host(peer.parse().unwrap()), "{peer}");
        }
    }

    #[test]
    fn an_ipv6_peer_counts_by_its_64_and_an_ipv4_one_by_itself() {
        let counted = |ip: &str| counted_as(ip.parse().unwrap()).to_string();
        assert_eq!(counted("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(counted("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::");
        assert_eq!(counted("2001:db8:1:3::1"), "2001:db8:1:3::");
        assert_eq!(counted("::ffff:10.0.0.7"), "10.0.0.7");
        assert_eq!(counted("10.0.0.7"), "10.0.0.7");
    }
}
