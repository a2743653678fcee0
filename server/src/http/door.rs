//! How an HTTP door (instance metadata, the Query port) accepts and holds connections: what
//! `axum::serve` does, with the bounds a door on a network needs, which it does not give
//! (it hands hyper no timer, so no timeout ever fires, and it caps nothing):
//!
//! - a header read timeout, which in HTTP/1.1 also closes a keep-alive connection idle for
//!   as long (hyper starts it whenever the connection waits for a request's head);
//! - at most `max_connections` open at once, accept errors logged ([`Admission`], as for
//!   gRPC);
//! - a request body of at most `max_body_bytes` declared: past it, 413 before the router
//!   sees the request (a door whose handlers read bodies bounds their reading too: the
//!   Query port's router, with axum's `DefaultBodyLimit`). A layer around the whole router
//!   would cost every request a boxed service more (2,300 instructions per IMDS GET).
//!
//! HTTP/1.1 only: the AWS SDKs and CLIs speak it to these doors.

use std::{convert::Infallible, net::SocketAddr, time::Duration};

use axum::{Extension, Router, extract::ConnectInfo, middleware::AddExtension};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tower::{Layer, Service};

use crate::{
    admission::{Admission, Held, stopped},
    telemetry::Metrics,
};

/// The bounds of one door.
#[derive(Clone, Copy, Debug)]
pub struct DoorLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// From one peer address (0: no such bound); see `admission`.
    pub max_connections_per_address: usize,
    pub max_body_bytes: usize,
}

/// Serves `listener` until `stop` turns true, then lets the connections finish their
/// requests: each connection with the service `service_for` makes for it (see [`routed`]).
/// The connections open are `rolecall_http_connections{door}`.
pub async fn serve<S, F>(
    door: &'static str,
    metrics: Metrics,
    listener: TcpListener,
    limits: DoorLimits,
    service_for: F,
    mut stop: watch::Receiver<bool>,
) where
    S: Service<http::Request<Incoming>, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    F: Fn(&TcpStream, SocketAddr) -> S,
{
    let mut admission =
        Admission::new(door, listener, limits.max_connections, limits.max_connections_per_address, &metrics);
    while let Some((stream, peer, held)) = admission.next(&mut stop).await {
        let service = service_for(&stream, peer);
        tokio::spawn(connection(stream, service, limits, stop.clone(), held));
    }
}

/// Each connection served by `router`, its handlers finding what `connect_info` makes as
/// `ConnectInfo<C>`, as axum::serve puts it there: one extension around the router, not a
/// router rebuilt per connection.
pub fn routed<C, F>(
    router: Router,
    connect_info: F,
) -> impl Fn(&TcpStream, SocketAddr) -> AddExtension<Router, ConnectInfo<C>>
where
    C: Clone + Send + Sync + 'static,
    F: Fn(&TcpStream, SocketAddr) -> C,
{
    move |stream, peer| Extension(ConnectInfo(connect_info(stream, peer))).layer(router.clone())
}

/// The body length a request declares (Content-Length), if it does.
fn declared_length<B>(req: &http::Request<B>) -> Option<u64> {
    req.headers().get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// One connection, until it closes, times out, or the door stops (then gracefully).
async fn connection<S>(
    stream: TcpStream,
    service: S,
    limits: DoorLimits,
    mut stop: watch::Receiver<bool>,
    _held: Held,
) where
    S: Service<http::Request<Incoming>, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    // A body declared over the limit is refused before the router sees the request.
    let max_body = limits.max_body_bytes;
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let service = service.clone();
        async move {
            if declared_length(&req).is_some_and(|n| n > max_body as u64) {
                let refusal = (http::StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
                return Ok::<_, Infallible>(axum::response::IntoResponse::into_response(refusal));
            }
            tower::ServiceExt::oneshot(service, req).await
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => Some(ended),
        () = stopped(&mut stop) => None,
    };
    let ended = match ended {
        Some(ended) => ended,
        None => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = ended {
        // A client's disconnect or timeout: not the server's fault.
        tracing::debug!(error = %e, "connection ended");
    }
}
