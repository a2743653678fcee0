//! The gRPC listener's connections, bounded as the HTTP doors' are: at most
//! `server.grpc_max_connections` open at once ([`Admission`]), and a connection whose first
//! bytes (HTTP/2's 24-byte preface, or as much of a TLS ClientHello) have not arrived within
//! `server.http_header_read_timeout_ms` is closed. hyper's HTTP/2 server waits for a preface
//! without a limit of its own, so silent connections would otherwise hold their places for
//! good. A connection that has begun is gRPC's to keep: clients hold channels open and idle
//! by design, and each request has its deadline (`server.request_timeout_ms`).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::{
    admission::{Admission, Held},
    telemetry::Metrics,
};

/// HTTP/2's client preface is 24 bytes; a TLS ClientHello is longer.
const FIRST_BYTES: usize = 24;

/// A connection that has sent its first bytes, which it gives back to the reader first.
pub struct Connection {
    first: [u8; FIRST_BYTES],
    replayed: usize,
    stream: TcpStream,
    _held: Held,
}

/// The connections of `listener` that begin in time, for tonic to serve, until `stop`.
pub fn incoming(
    listener: TcpListener,
    max_connections: usize,
    per_address: usize,
    first_bytes_within: Duration,
    metrics: &Metrics,
    mut stop: watch::Receiver<bool>,
) -> ReceiverStream<io::Result<Connection>> {
    let (begun, connections) = mpsc::channel(64);
    let mut admission = Admission::new("grpc", listener, max_connections, per_address, metrics);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = admission.next(&mut stop) => next,
                // tonic stopped taking connections.
                () = begun.closed() => None,
            };
            let Some((mut stream, peer, held)) = next else { break };
            let begun = begun.clone();
            tokio::spawn(async move {
                let mut first = [0u8; FIRST_BYTES];
                match tokio::time::timeout(first_bytes_within, stream.read_exact(&mut first)).await {
                    Ok(Ok(_)) => {
                        let connection = Connection { first, replayed: 0, stream, _held: held };
                        let _ = begun.send(Ok(connection)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "gRPC connection closed before it began")
                    }
                    Err(_) => tracing::debug!(%peer, "gRPC connection closed: it sent nothing in time"),
                }
            });
        }
    });
    ReceiverStream::new(connections)
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replayed < FIRST_BYTES {
            let n = (FIRST_BYTES - this.replayed).min(buf.remaining());
            buf.put_slice(&this.first[this.replayed..this.replayed + n]);
            this.replayed += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
