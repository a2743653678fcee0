//! gRPC's one-message rule, enforced before any other work on a call.
//!
//! Every rolecall RPC takes exactly one request message (unary, or RunInstances' server
//! stream). gRPC frames a message as a compressed flag (1 byte), a big-endian length
//! (4 bytes) and the message ([PROTOCOL-HTTP2]). tonic's unary handler decodes the first
//! message and discards what follows, so a body with a second frame would run a message
//! that any other reader of the body (SigV4, the audit trail) saw differently. [`OneMessage`]
//! refuses such a body, signed or not, as its bytes are read and before any handler runs:
//! it must be exactly one frame, uncompressed (rolecall negotiates no compression), whose
//! length is the rest of the body.
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
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Buf;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::{Status, body::Body, server::NamedService};
use tower::Service;

use super::error::to_status;
use crate::{
    domain::{Error, ErrorCode, Result},
    telemetry::Metrics,
};

/// The compressed flag and the length before each message.
const PREFIX: usize = 5;

/// gRPC's framing of a request body, checked as its bytes go by: exactly one message,
/// uncompressed, whose length prefix the body then matches exactly.
#[derive(Clone, Debug, Default)]
pub struct FrameCheck {
    /// The last message prefix, as far as it has come (`got` bytes of it).
    prefix: [u8; PREFIX],
    got: usize,
    /// Bytes still to come of the message being read (None between messages).
    remaining: Option<usize>,
    /// Whether a message's prefix has been read whole.
    seen_message: bool,
    /// The request's `grpc-encoding`, where one was sent and is not `identity`.
    encoding: Option<String>,
}

impl FrameCheck {
    /// A check for a request that sent `encoding` as its `grpc-encoding`.
    pub fn new(encoding: Option<&str>) -> Self {
        let encoding = encoding.filter(|e| !e.eq_ignore_ascii_case("identity")).map(str::to_string);
        Self { encoding, ..Self::default() }
    }

    /// The next bytes of the body: refused as soon as they break the rule (a second
    /// message's prefix is refused once it is whole).
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            if let Some(remaining) = self.remaining {
                let taken = remaining.min(bytes.len());
                bytes = &bytes[taken..];
                self.remaining = (remaining > taken).then_some(remaining - taken);
                continue;
            }
            let taken = (PREFIX - self.got).min(bytes.len());
            self.prefix[self.got..self.got + taken].copy_from_slice(&bytes[..taken]);
            self.got += taken;
            bytes = &bytes[taken..];
            if self.got == PREFIX {
                if self.seen_message {
                    return Err(cardinality(
                        "the call takes exactly one request message, and a second one follows it",
                    ));
                }
                self.seen_message = true;
                self.got = 0;
                self.check_flag()?;
                let declared = self.declared();
                self.remaining = (declared > 0).then_some(declared);
            }
        }
        Ok(())
    }

    /// The body has ended: it must have ended right after its one message.
    pub fn finish(&self) -> Result<()> {
        match (self.seen_message, self.got, self.remaining) {
            (_, _, Some(short)) => Err(malformed(format!(
                "the message prefix declares {} bytes, and the body ends {short} bytes short of them",
                self.declared()
            ))),
            (false, 0, None) => {
                Err(cardinality("the call takes exactly one request message, and the body holds none"))
            }
            (false, n, None) => {
                Err(malformed(format!("the body ends inside a message prefix ({n} of {PREFIX} bytes)")))
            }
            (true, 0, None) => Ok(()),
            (true, n, None) => Err(malformed(format!("{n} bytes follow the message, which are not a frame"))),
        }
    }

    fn declared(&self) -> usize {
        u32::from_be_bytes([self.prefix[1], self.prefix[2], self.prefix[3], self.prefix[4]]) as usize
    }

    fn check_flag(&self) -> Result<()> {
        match self.prefix[0] {
            0 => Ok(()),
            1 => Err(match &self.encoding {
                Some(e) => unsupported(e),
                None => malformed("the message is flagged compressed, but no grpc-encoding was sent"),
            }),
            flag => Err(malformed(format!("the compressed flag is {flag}, where gRPC allows 0 or 1"))),
        }
    }
}

fn cardinality(message: &str) -> Error {
    Error::new(ErrorCode::RequestCardinalityViolation, message)
}

fn malformed(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::MalformedMessage, message)
}

/// rolecall negotiates no compression ("Compression mechanism used by client not supported
/// at the server").
fn unsupported(encoding: &str) -> Error {
    Error::new(
        ErrorCode::UnsupportedMessageEncoding,
        format!("the message is compressed with {encoding}, which this server does not accept"),
    )
}

/// A refusal: logged at DEBUG (the caller's mistake, and anyone can send it), counted,
/// answered with its status.
fn refusal(metrics: &Metrics, e: &Error) -> Status {
    tracing::debug!(code = e.code.as_str(), "request refused: {}", e.message);
    metrics.error(e.code.as_str());
    to_status(e)
}

/// A request body checked frame by frame as it is read: the first byte that breaks the
/// one-message rule, or an end that comes too early, is an error in place of the data, so
/// that no reader (SigV4's buffer, tonic's decoder, which also reads to the end before the
/// handler runs) ever gets past it.
struct Checked {
    inner: Body,
    check: FrameCheck,
    metrics: Arc<Metrics>,
    failed: bool,
}

impl Checked {
    fn refuse(&mut self, e: &Error) -> Status {
        self.failed = true;
        refusal(&self.metrics, e)
    }
}

impl HttpBody for Checked {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let verdict = match frame.data_ref() {
                    Some(data) => this.check.feed(data.chunk()),
                    None => this.check.finish(),
                };
                Poll::Ready(Some(match verdict {
                    Ok(()) => Ok(frame),
                    Err(e) => Err(this.refuse(&e)),
                }))
            }
            Poll::Ready(None) => match this.check.finish() {
                Ok(()) => Poll::Ready(None),
                Err(e) => Poll::Ready(Some(Err(this.refuse(&e)))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        // The end is where the check has its last word.
        false
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A service whose every call must carry exactly one well-framed request message. The body
/// is not buffered here: it is checked as the service reads it.
#[derive(Clone)]
pub struct OneMessage<S> {
    inner: S,
    /// Shared by every call's body (one reference count, not one per counter).
    metrics: Arc<Metrics>,
}

impl<S> OneMessage<S> {
    pub fn new(inner: S, metrics: Metrics) -> Self {
        Self { inner, metrics: Arc::new(metrics) }
    }
}

impl<S: NamedService> NamedService for OneMessage<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for OneMessage<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let encoding = req.headers().get("grpc-encoding").map(|v| v.to_str().unwrap_or("(not text)"));
        let check = FrameCheck::new(encoding);
        // A request that declares a compression is refused before its body is read.
        if let Some(encoding) = &check.encoding {
            return Answer::Refused(Some(refusal(&self.metrics, &unsupported(encoding)).into_http()));
        }
        let metrics = self.metrics.clone();
        Answer::Served(
            self.inner.call(req.map(|inner| Body::new(Checked { inner, check, metrics, failed: false }))),
        )
    }
}

/// The inner service's answer, or a refusal made before it was called.
pub enum Answer<F> {
    Served(F),
    Refused(Option<http::Response<Body>>),
}

impl<F> Future for Answer<F>
where
    F: Future<Output = Result<http::Response<Body>, Infallible>> + Unpin,
{
    type Output = Result<http::Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Served(inner) => Pin::new(inner).poll(cx),
            Self::Refused(answer) => Poll::Ready(Ok(answer.take().unwrap_or_default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that a whole `body` is exactly one gRPC message frame. `encoding` is the
    /// request's `grpc-encoding` header, if any.
    fn one_message(encoding: Option<&str>, body: &[u8]) -> Result<()> {
        let mut check = FrameCheck::new(encoding);
        check.feed(body)?;
        check.finish()
    }

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

    proptest::proptest! {
        /// However the body arrives in pieces, the verdict is the whole body's.
        #[test]
        fn the_verdict_does_not_depend_on_how_the_body_is_split(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
            small_lengths in proptest::prelude::any::<bool>(),
            cuts in proptest::collection::vec(0usize..24, 0..6),
        ) {
            let mut body = body;
            if small_lengths && body.len() >= PREFIX {
                // Mostly plausible frames: flag 0, a length within the body.
                body[0] = 0;
                body[1..4].fill(0);
                body[4] %= 20;
            }
            let whole = one_message(None, &body).map_err(|e| e.code);
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|c| *c <= body.len()).collect();
            cuts.sort_unstable();
            let mut check = FrameCheck::new(None);
            let mut from = 0;
            let mut verdict = Ok(());
            for cut in cuts.into_iter().chain([body.len()]) {
                verdict = check.feed(&body[from..cut]);
                from = cut;
                if verdict.is_err() {
                    break;
                }
            }
            let pieces = verdict.and_then(|()| check.finish()).map_err(|e| e.code);
            proptest::prop_assert_eq!(whole, pieces);
        }
    }
}
