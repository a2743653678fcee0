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
//! and hands the handler the [`Principal`] in the request's extensions; [`Signing`] wraps
//! a client channel.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use tonic::{Status, body::Body, server::NamedService};
use tower::Service;

use super::error::to_status;
use crate::{
    domain::{
        clock::Clock,
        sigv4::{self, HttpRequest, SigningCredentials, SigningOptions},
    },
    sts::{Authenticator, GRPC_RULES, Principal},
    telemetry::Metrics,
};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A service whose every request must be signed; the handler finds the [`Principal`] in the
/// request's extensions.
#[derive(Clone)]
pub struct Verified<S> {
    inner: S,
    authn: Arc<Authenticator>,
    metrics: Metrics,
    /// The signing name of the service (`sts`).
    service: &'static str,
    max_body: usize,
}

impl<S> Verified<S> {
    pub fn new(
        inner: S,
        authn: Arc<Authenticator>,
        metrics: Metrics,
        service: &'static str,
        max_body: usize,
    ) -> Self {
        Self { inner, authn, metrics, service, max_body }
    }
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
        let (authn, metrics, service, max_body) =
            (self.authn.clone(), self.metrics.clone(), self.service, self.max_body);
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let body = match Limited::new(body, max_body).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    let status = Status::resource_exhausted("request body over the message size limit");
                    return Ok(status.into_http());
                }
            };
            let headers = signed_view(&parts);
            let request = HttpRequest {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers: &headers,
                body: &body,
            };
            match authn.authenticate(&request, service, &GRPC_RULES).await {
                Ok(principal) => {
                    tracing::debug!(principal = %principal.arn, "request signed");
                    parts.extensions.insert(principal);
                    inner.call(http::Request::from_parts(parts, Body::new(Full::new(body)))).await
                }
                Err(e) => {
                    tracing::info!(code = e.code.as_str(), access_key_id = ?access_key_of(&request), "request refused: {}", e.message);
                    metrics.error(e.code.as_str());
                    Ok(to_status(&e).into_http())
                }
            }
        })
    }
}

/// The access key id a request claims (for logs: never the secret or the token).
fn access_key_of(req: &HttpRequest<'_>) -> Option<String> {
    sigv4::Authorization::parse(req).ok().map(|a| a.access_key_id)
}

/// The principal a [`Verified`] service put in the request.
pub fn principal<T>(req: &tonic::Request<T>) -> Result<Principal, Status> {
    req.extensions().get::<Principal>().cloned().ok_or_else(|| Status::internal("request was not verified"))
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

/// A client channel that signs every request.
#[derive(Clone)]
pub struct Signing<S> {
    inner: S,
    credentials: Arc<ClientCredentials>,
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
        Self {
            inner,
            credentials: Arc::new(credentials),
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
                access_key_id: &this.credentials.access_key_id,
                secret_access_key: &this.credentials.secret_access_key,
                session_token: this.credentials.session_token.as_deref(),
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
