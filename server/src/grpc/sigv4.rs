//! SigV4 over gRPC, both ends. A gRPC request is signed as an HTTP request:
//!
//! - method `POST`; canonical URI the gRPC path (`/rolecall.v1.Sts/GetCallerIdentity`); no query;
//! - `host` is the HTTP/2 `:authority`, and must be signed, with `x-amz-date`;
//! - the payload is the whole request body, gRPC's length-prefixed message(s) as sent;
//! - credential scope `DATE/REGION/SERVICE/aws4_request`, SERVICE `sts` for the Sts service;
//! - `X-Amz-Date`, `X-Amz-Security-Token` and `Authorization` travel as metadata.
//!
//! Interceptors see only metadata, so both ends are tower services that buffer the body
//! (bounded by the server's message size limit): [`Verified`] wraps a service on the server
//! and hands the handler the [`Principal`] in its [`CallContext`]; [`Signing`] wraps
//! a client channel.
//!
//! [`Verified`] hands the service a [`CallContext`] (who signed, from where) in the
//! request's extensions; the service authorizes each call on the request it decoded. A
//! service may let unsigned calls through (the operator's, where the config allows them):
//! those get an explicit operator context, with no principal.

use std::{
    convert::Infallible,
    future::Future,
    net::IpAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Status, body::Body, server::NamedService};
use tower::Service;

use super::error::to_status;
use crate::{
    audit::{Actor, AuditLog, Event},
    authz::CallContext,
    domain::principal::Principal,
    domain::{
        Result,
        clock::Clock,
        sigv4::{self, HttpRequest, SigningCredentials, SigningOptions},
    },
    exposure::UnsignedCalls,
    sts::{Authenticator, GRPC_RULES},
    telemetry::Metrics,
};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A service whose every request must be signed (or, where allowed, the operator's); the
/// handler finds who asks in the [`CallContext`] of the request's extensions.
#[derive(Clone)]
pub struct Verified<S> {
    inner: S,
    authn: Arc<Authenticator>,
    metrics: Metrics,
    /// The signing name of the service (`sts`).
    service: &'static str,
    max_body: usize,
    /// From whom unsigned calls pass, as the operator's.
    unsigned: UnsignedCalls,
    audit: Option<(AuditLog, Arc<dyn Clock>)>,
    /// The bytes that requests not yet authenticated may hold at once, shared by the
    /// services of a server.
    unauthenticated: Arc<Semaphore>,
}

impl<S> Verified<S> {
    pub fn new(
        inner: S,
        authn: Arc<Authenticator>,
        metrics: Metrics,
        service: &'static str,
        max_body: usize,
    ) -> Self {
        Self {
            inner,
            authn,
            metrics,
            service,
            max_body,
            unsigned: UnsignedCalls::Refused,
            audit: None,
            unauthenticated: Arc::new(Semaphore::new(max_body)),
        }
    }

    /// Writes every refusal of authentication into the audit trail (the services audit
    /// their authorization).
    pub fn audited(mut self, log: AuditLog, clock: Arc<dyn Clock>) -> Self {
        self.audit = Some((log, clock));
        self
    }

    /// Shares `budget` (bytes) among the requests that every service holding it is reading
    /// before they are authenticated (by default, one request's worth of its own).
    pub fn budgeting(mut self, budget: Arc<Semaphore>) -> Self {
        self.unauthenticated = budget;
        self
    }

    /// Lets unsigned calls from `unsigned`'s peers through as the operator's (the exposure
    /// rule: `auth.allow_unsigned`, from this host only unless widened).
    pub fn allowing_unsigned(mut self, unsigned: UnsignedCalls) -> Self {
        self.unsigned = unsigned;
        self
    }
}

/// Whether a request carries SigV4 authorization at all.
fn is_signed(parts: &http::request::Parts) -> bool {
    parts.headers.contains_key(http::header::AUTHORIZATION)
        || parts.uri.query().is_some_and(|q| q.contains("X-Amz-Algorithm="))
}

/// The whole body of a request not yet authenticated, up to `max` bytes, each held against
/// `budget` (the bytes all such requests may hold at once) until the returned permit is
/// dropped; past either, the RESOURCE_EXHAUSTED answer. A body that failed as it was read
/// (its framing, see [`super::framing`]) answers its own status.
pub(super) async fn buffered(
    body: Body,
    max: usize,
    budget: &Arc<Semaphore>,
) -> Result<(Bytes, OwnedSemaphorePermit), http::Response<Body>> {
    let exhausted = |what: &str| Status::resource_exhausted(what.to_string()).into_http();
    let mut body = Limited::new(body, max);
    let mut held = budget.clone().try_acquire_many_owned(0).map_err(|_| exhausted("server stopping"))?;
    let mut bytes = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(exhausted("request body over the message size limit"));
            }
            Err(e) => return Err(Status::from_error(e).into_http()),
        };
        let Ok(data) = frame.into_data() else { continue };
        // Limited has kept `data` under `max`, which is a u32 (max_message_bytes).
        let more = u32::try_from(data.len()).ok().and_then(|n| budget.clone().try_acquire_many_owned(n).ok());
        let Some(more) = more else {
            return Err(exhausted(
                "too many bytes of unauthenticated requests in flight (server.unauthenticated_buffer_bytes); retry",
            ));
        };
        held.merge(more);
        bytes.extend_from_slice(&data);
    }
    Ok((bytes.freeze(), held))
}

/// The peer's address (aws:SourceIp) and aws:SecureTransport, from the connection.
fn transport_keys(parts: &http::request::Parts) -> (Option<IpAddr>, bool) {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    if let Some(tls) = parts.extensions.get::<TlsConnectInfo<TcpConnectInfo>>() {
        return (tls.get_ref().remote_addr().map(|a| a.ip().to_canonical()), true);
    }
    let tcp = parts.extensions.get::<TcpConnectInfo>().and_then(|i| i.remote_addr());
    (tcp.map(|a| a.ip().to_canonical()), false)
}

/// An unsigned call from a peer the exposure rule does not let act as the operator.
fn unsigned_off_loopback() -> crate::domain::Error {
    crate::domain::Error::new(
        crate::domain::ErrorCode::MissingAuthenticationToken,
        "Request is missing Authentication Token: unsigned calls act as the operator only from this host (auth.allow_unsigned); sign the request",
    )
}

impl<S: NamedService> NamedService for Verified<S> {
    const NAME: &'static str = S::NAME;
}

/// The request's headers as SigV4 reads them, with `:authority` as `host`.
fn signed_view(parts: &http::request::Parts) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    if !parts.headers.contains_key(http::header::HOST)
        && let Some(authority) = parts.uri.authority()
    {
        headers.push(("host".to_string(), authority.as_str().to_string()));
    }
    headers
}

impl<S> Service<http::Request<Body>> for Verified<S>
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
        let (authn, metrics, service, max_body, unsigned, audit, unauthenticated) = (
            self.authn.clone(),
            self.metrics.clone(),
            self.service,
            self.max_body,
            self.unsigned,
            self.audit.clone(),
            self.unauthenticated.clone(),
        );
        // Every answer carries the id its audit event records.
        let request_id = crate::domain::ids::uuid();
        let header = http::HeaderValue::from_str(&request_id).ok();
        let verified = async move {
            let (mut parts, body) = req.into_parts();
            let (peer, secure_transport) = transport_keys(&parts);
            let source_ip = peer.map(|ip| ip.to_string());
            let signed = is_signed(&parts);
            if !signed && unsigned.admit(peer) {
                let operator = CallContext {
                    principal: None,
                    source_ip,
                    secure_transport,
                    dry_run: false,
                    request_id: request_id.clone(),
                };
                parts.extensions.insert(operator);
                return inner.call(http::Request::from_parts(parts, body)).await;
            }
            // Held until authentication is decided: what no one has proved yet is bounded.
            let (body, unproven) = match buffered(body, max_body, &unauthenticated).await {
                Ok(buffered) => buffered,
                Err(refused) => return Ok(refused),
            };
            let headers = signed_view(&parts);
            let request = HttpRequest {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers: &headers,
                body: &body,
            };
            let verdict = if !signed && unsigned != UnsignedCalls::Refused {
                Err(unsigned_off_loopback())
            } else {
                authn.authenticate(&request, service, &GRPC_RULES).await
            };
            drop(unproven);
            if let (Err(e), Some((log, clock))) = (&verdict, &audit) {
                let actor =
                    Actor::Unauthenticated { access_key_id: crate::audit::claimed_access_key(&request) };
                log.record(
                    clock.unix(),
                    Event {
                        source: crate::audit::event_source(service),
                        name: parts.uri.path().rsplit('/').next().unwrap_or_default(),
                        actor,
                        source_ip: source_ip.clone(),
                        read_only: false,
                        request: serde_json::Value::Null,
                        response: serde_json::Value::Null,
                        error: Some(e),
                        request_id: Some(request_id.clone()),
                    },
                )
                .await;
            }
            match verdict {
                Ok(principal) => {
                    tracing::debug!(principal = %principal.arn, "request signed");
                    let signed = CallContext {
                        principal: Some(principal),
                        source_ip,
                        secure_transport,
                        dry_run: false,
                        request_id: request_id.clone(),
                    };
                    parts.extensions.insert(signed);
                    inner.call(http::Request::from_parts(parts, Body::new(Full::new(body)))).await
                }
                Err(e) => {
                    tracing::debug!(code = e.code.as_str(), access_key_id = ?crate::audit::claimed_access_key(&request), "request refused: {}", e.message);
                    metrics.error(e.code.as_str());
                    Ok(to_status(&e).into_http())
                }
            }
        };
        Box::pin(async move {
            let mut response = verified.await?;
            if let Some(header) = header {
                response.headers_mut().insert(REQUEST_ID_HEADER, header);
            }
            Ok(response)
        })
    }
}

/// The header an answer's request id travels in, as AWS's services send it.
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// The principal a [`Verified`] service put in the request.
pub fn principal<T>(req: &tonic::Request<T>) -> Result<Principal, Status> {
    req.extensions()
        .get::<CallContext>()
        .and_then(|c| c.principal.clone())
        .ok_or_else(|| Status::internal("request was not verified"))
}

/// Credentials a client signs with.
#[derive(Clone)]
pub struct ClientCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A client channel that signs every request (or none, without credentials: the operator's
/// unsigned calls).
#[derive(Clone)]
pub struct Signing<S> {
    inner: S,
    credentials: Option<Arc<ClientCredentials>>,
    /// The `:authority` the channel sends (`host:port` of the endpoint).
    authority: String,
    region: String,
    service: &'static str,
    clock: Arc<dyn Clock>,
}

impl<S> Signing<S> {
    pub fn new(
        inner: S,
        credentials: ClientCredentials,
        authority: impl Into<String>,
        region: impl Into<String>,
        service: &'static str,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::maybe(inner, Some(credentials), authority, region, service, clock)
    }

    /// Signs with `credentials` if there are any; passes requests through unsigned if not.
    pub fn maybe(
        inner: S,
        credentials: Option<ClientCredentials>,
        authority: impl Into<String>,
        region: impl Into<String>,
        service: &'static str,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner,
            credentials: credentials.map(Arc::new),
            authority: authority.into(),
            region: region.into(),
            service,
            clock,
        }
    }
}

impl<S> Service<http::Request<Body>> for Signing<S>
where
    S: Service<http::Request<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let this = self.clone();
        let Some(credentials) = this.credentials.clone() else { return Box::pin(inner.call(req)) };
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            // A unary request's body is one message: buffering it is what signing it takes.
            // (A body that fails to read is sent empty, and the server refuses its signature.)
            let body: Bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            let headers = vec![
                ("host".to_string(), this.authority.clone()),
                ("content-type".to_string(), "application/grpc".to_string()),
            ];
            let request = HttpRequest {
                method: "POST",
                path: parts.uri.path(),
                query: "",
                headers: &headers,
                body: &body,
            };
            let creds = SigningCredentials {
                access_key_id: &credentials.access_key_id,
                secret_access_key: &credentials.secret_access_key,
                session_token: credentials.session_token.as_deref(),
            };
            let opts = SigningOptions {
                region: &this.region,
                service: this.service,
                timestamp: this.clock.unix(),
                rules: GRPC_RULES,
                sign_body: false,
                omit_session_token: false,
            };
            let signed = sigv4::sign_headers(&request, &creds, &opts);
            for (name, value) in signed.params {
                if let (Ok(name), Ok(value)) =
                    (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_str(&value))
                {
                    parts.headers.insert(name, value);
                }
            }
            parts
                .headers
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
            inner.call(http::Request::from_parts(parts, Body::new(Full::new(body)))).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(bytes: usize) -> Body {
        Body::new(Full::new(Bytes::from(vec![b'x'; bytes])))
    }

    /// Requests not yet authenticated share one budget of bytes: one over it while others
    /// hold their share is refused, and their share comes back once they are decided.
    #[tokio::test]
    async fn unauthenticated_bodies_share_a_bounded_budget() {
        let budget = Arc::new(Semaphore::new(64 * 1024));
        let (first, held) = buffered(body(48 * 1024), 64 * 1024, &budget).await.ok().unwrap();
        assert_eq!(first.len(), 48 * 1024);
        let refused = buffered(body(32 * 1024), 64 * 1024, &budget).await.err().unwrap();
        let status = Status::from_header_map(refused.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("unauthenticated"), "{}", status.message());
        drop(held);
        assert!(buffered(body(32 * 1024), 64 * 1024, &budget).await.is_ok());
        assert_eq!(budget.available_permits(), 64 * 1024, "everything given back");
        // Past the message limit, whatever the budget.
        let over = buffered(body(65 * 1024), 64 * 1024, &budget).await.err().unwrap();
        assert_eq!(Status::from_header_map(over.headers()).unwrap().code(), tonic::Code::ResourceExhausted);
    }
}
