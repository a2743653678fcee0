//! How every listener admits connections (the HTTP doors and gRPC alike): at most `max`
//! open at once, past which it stops accepting, so that new connections wait in the
//! kernel's backlog while established clients keep being served (said once, as a warning,
//! each time it fills); accept errors (out of descriptors, among others) logged, with a
//! short pause instead of a busy loop; the connections open shown as
//! `rolecall_http_connections{door}`.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use prometheus_client::metrics::gauge::Gauge;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
};

use crate::telemetry::{DoorLabels, Metrics};

/// A listener and the bound on its connections.
pub struct Admission {
    door: &'static str,
    listener: TcpListener,
    permits: Arc<Semaphore>,
    max: usize,
    open: Gauge,
    full: bool,
}

/// What an admitted connection holds for as long as it lives: its place among the open
/// ones, and its count in the gauge.
pub struct Held {
    _permit: OwnedSemaphorePermit,
    open: Gauge,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl Admission {
    pub fn new(door: &'static str, listener: TcpListener, max: usize, metrics: &Metrics) -> Self {
        let open = metrics.http_connections.get_or_create(&DoorLabels { door: door.into() }).clone();
        Self { door, listener, permits: Arc::new(Semaphore::new(max)), max, open, full: false }
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
            // Small RPCs must not wait on Nagle's algorithm (~40 ms).
            let _ = stream.set_nodelay(true);
            self.open.inc();
            return Some((stream, peer, Held { _permit: permit, open: self.open.clone() }));
        }
    }
}

/// Resolves once the listener is told to stop (holding no lock of the watch across awaits).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
