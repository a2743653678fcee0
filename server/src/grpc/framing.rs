//! gRPC's one-message rule, enforced before any other work on a call.
//!
//! Every rolecall RPC takes exactly one request message (unary, or RunInstances' server
//! stream). gRPC frames a message as a compressed flag (1 byte), a big-endian length
//! (4 bytes) and the message ([PROTOCOL-HTTP2]). tonic's unary handler decodes the first
//! message and discards what follows, so a body with a second frame would run a message
//! that any other reader of the body (SigV4, the audit trail) saw differently. [`OneMessage`]
//! refuses such a body whole, signed or not: it must be exactly one frame, uncompressed
//! (rolecall negotiates no compression), whose length is the rest of the body.
//!
//! The statuses are the ones grpc.io's status codes guide gives
//! (<https://grpc.io/docs/guides/status-codes>): a request cardinality violation and an
//! unsupported compression are UNIMPLEMENTED, a body that cannot be parsed is INTERNAL.
//!
//! [PROTOCOL-HTTP2]: https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body_util::Full;
use tonic::{body::Body, server::NamedService};
use tower::Service;

use super::error::to_status;
use crate::{
    domain::{Error, ErrorCode, Result},
    telemetry::Metrics,
};

/// The compressed flag and the length before each message.
const PREFIX: usize = 5;

/// Checks that `body` is exactly one gRPC message frame. `encoding` is the request's
/// `grpc-encoding` header, if any.
pub fn one_message(encoding: Option<&str>, body: &[u8]) -> Result<()> {
    let cardinality = |message: String| Error::new(ErrorCode::RequestCardinalityViolation, message);
    let malformed = |message: String| Error::new(ErrorCode::MalformedMessage, message);
    if body.is_empty() {
        return Err(cardinality(
            "the call takes exactly one request message, and the body holds none".into(),
        ));
    }
    let Some((prefix, rest)) = body.split_first_chunk::<PREFIX>() else {
        return Err(malformed(format!(
            "the body ends inside a message prefix ({} of {PREFIX} bytes)",
            body.len()
        )));
    };
    match prefix[0] {
        0 => {}
        1 => {
            return Err(match encoding.filter(|e| !e.eq_ignore_ascii_case("identity")) {
                Some(e) => Error::new(
                    ErrorCode::UnsupportedMessageEncoding,
                    format!("the message is compressed with {e}, which this server does not accept"),
                ),
                None => malformed("the message is flagged compressed, but no grpc-encoding was sent".into()),
            });
        }
        flag => return Err(malformed(format!("the compressed flag is {flag}, where gRPC allows 0 or 1"))),
    }
    let declared = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    match rest.len().checked_sub(declared) {
        None => Err(malformed(format!(
            "the message prefix declares {declared} bytes, and the body holds {}",
            rest.len()
        ))),
        Some(0) => Ok(()),
        Some(extra) if extra >= PREFIX => Err(cardinality(format!(
            "the call takes exactly one request message, and {extra} more bytes of frames follow it"
        ))),
        Some(extra) => Err(malformed(format!("{extra} bytes follow the message, which are not a frame"))),
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A service whose every call must carry exactly one well-framed request message; the
/// body reaches the service buffered (at most `max_body` bytes).
#[derive(Clone)]
pub struct OneMessage<S> {
    inner: S,
    metrics: Metrics,
    max_body: usize,
}

impl<S> OneMessage<S> {
    pub fn new(inner: S, metrics: Metrics, max_body: usize) -> Self {
        Self { inner, metrics, max_body }
    }
}

impl<S: NamedService> NamedService for OneMessage<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for OneMessage<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // The clone is ready-polled by the caller's contract on `self`; swap it in.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (metrics, max_body) = (self.metrics.clone(), self.max_body);
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body: Bytes = match super::sigv4::buffered(body, max_body).await {
                Ok(body) => body,
                Err(refused) => return Ok(refused),
            };
            let encoding = parts.headers.get("grpc-encoding").and_then(|v| v.to_str().ok());
            if let Err(e) = one_message(encoding, &body) {
                tracing::info!(
                    code = e.code.as_str(),
                    path = parts.uri.path(),
                    "request refused: {}",
                    e.message
                );
                metrics.error(e.code.as_str());
                return Ok(to_status(&e).into_http());
            }
            inner.call(http::Request::from_parts(parts, Body::new(Full::new(body)))).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flag: u8, declared: u32, message: &[u8]) -> Vec<u8> {
        let mut body = vec![flag];
        body.extend_from_slice(&declared.to_be_bytes());
        body.extend_from_slice(message);
        body
    }

    #[test]
    fn exactly_one_uncompressed_frame_passes() {
        assert_eq!(one_message(None, &frame(0, 3, b"\x0a\x01a")), Ok(()));
        assert_eq!(one_message(None, &frame(0, 0, b"")), Ok(()));
        assert_eq!(one_message(Some("gzip"), &frame(0, 3, b"\x0a\x01a")), Ok(()));
    }

    #[test]
    fn every_other_framing_is_refused_with_its_code() {
        use ErrorCode::*;
        let one = frame(0, 3, b"\x0a\x01a");
        let two = [one.clone(), frame(0, 0, b"")].concat();
        let cases: Vec<(&str, Option<&str>, Vec<u8>, ErrorCode)> = vec![
            ("no message", None, vec![], RequestCardinalityViolation),
            ("two messages", None, two, RequestCardinalityViolation),
            ("truncated prefix", None, vec![0, 0, 0], MalformedMessage),
            ("length past the body", None, frame(0, 9, b"\x0a\x01a"), MalformedMessage),
            ("trailing bytes", None, [one.clone(), vec![0, 0]].concat(), MalformedMessage),
            ("compressed, no encoding", None, frame(1, 3, b"\x0a\x01a"), MalformedMessage),
            ("compressed, identity", Some("identity"), frame(1, 3, b"\x0a\x01a"), MalformedMessage),
            ("compressed, gzip", Some("gzip"), frame(1, 3, b"\x0a\x01a"), UnsupportedMessageEncoding),
            ("bad flag", None, frame(7, 3, b"\x0a\x01a"), MalformedMessage),
        ];
        for (what, encoding, body, code) in cases {
            let err = one_message(encoding, &body).expect_err(what);
            assert_eq!(err.code, code, "{what}: {err:?}");
        }
    }
}
