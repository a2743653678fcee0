//! The baselines: the ceilings every scenario is stated against, driven by the same harness
//! in the same run.
//! - gRPC: a minimal tonic server answering the same request and response messages as
//!   InstanceMetadata.GetSecurityCredentials from memory, with no work.
//! - HTTP: bare hyper answering IMDSv2's three requests (PUT the token, GET the role name,
//!   GET the credentials) with bytes of rolecall's own making, the same headers, no router.

use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode, body::Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use rolecall_api::{
    GetSecurityCredentialsRequest, GetSecurityCredentialsResponse,
    loadtest::baseline_server::{Baseline, BaselineServer},
};
use rolecall_server::{
    cache::IssuedCredentials,
    domain::{
        clock::iso8601,
        credentials::{SessionClaims, TemporaryCredentials},
        keyring::{KeyRing, KeyRingPolicy},
    },
    metadata::{CredentialsDocument, credentials_json},
};
use tokio::net::TcpListener;
use tonic::{Response, Status};

use crate::fleet::ROLES;

/// Credentials of exactly the size rolecall's are: sealed by rolecall's own code.
fn sample_credentials() -> Result<TemporaryCredentials, String> {
    let ring = KeyRing::new(KeyRingPolicy::default(), 0);
    let claims = SessionClaims::for_instance(
        "123456789012",
        "arn:aws:iam::123456789012:role/FleetRoleA",
        "AROAABCDEFGHIJKLMNOPQ",
        "i-0123456789abcdef0",
        1_800_000_000,
        1_800_021_600,
    );
    TemporaryCredentials::issue(&ring, claims).map_err(|e| e.message)
}

/// A credentials answer of exactly the size rolecall's are.
pub fn sample_response() -> Result<GetSecurityCredentialsResponse, String> {
    let creds = sample_credentials()?;
    Ok(GetSecurityCredentialsResponse {
        code: "Success".into(),
        message: String::new(),
        last_updated: iso8601(creds.issued_at),
        r#type: "AWS-HMAC".into(),
        access_key_id: creds.access_key_id,
        secret_access_key: creds.secret_access_key.0,
        token: creds.session_token.0,
        expiration: iso8601(creds.expires_at),
        account_id: "123456789012".into(),
    })
}

struct Canned(GetSecurityCredentialsResponse);

#[tonic::async_trait]
impl Baseline for Canned {
    async fn get_security_credentials(
        &self,
        _: tonic::Request<GetSecurityCredentialsRequest>,
    ) -> Result<Response<GetSecurityCredentialsResponse>, Status> {
        Ok(Response::new(self.0.clone()))
    }
}

/// Serves the baseline on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(BaselineServer::new(Canned(sample_response()?)))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| e.to_string())
}

/// What the HTTP baseline answers: IMDSv2's token (the length of rolecall's), the role name,
/// and the credentials document as rolecall renders it.
#[derive(Clone)]
pub struct ImdsAnswers {
    token: Bytes,
    role: Bytes,
    credentials: Bytes,
}

/// IMDSv2 token lengths: rolecall's tokens are 87 characters of base64url.
const TOKEN_CHARS: usize = 87;

impl ImdsAnswers {
    pub fn new() -> Result<Self, String> {
        let issued = IssuedCredentials::new(sample_credentials()?, 1_800_003_600);
        let document =
            CredentialsDocument::Success { credentials: Arc::new(issued), account_id: "123456789012".into() };
        Ok(Self {
            token: Bytes::from("A".repeat(TOKEN_CHARS)),
            role: Bytes::from_static(ROLES[0].as_bytes()),
            credentials: Bytes::from(credentials_json(&document, false)),
        })
    }

    /// The answer to one request: routed by method and path suffix, the token header
    /// required on GETs, as IMDSv2 requires it.
    fn answer(&self, req: &Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let path = req.uri().path();
        let has_token = req.headers().contains_key("x-aws-ec2-metadata-token");
        let (status, body) = match *req.method() {
            Method::PUT if path.ends_with("/latest/api/token") => (StatusCode::OK, self.token.clone()),
            Method::GET if !has_token => (StatusCode::UNAUTHORIZED, Bytes::new()),
            Method::GET if path.ends_with("/iam/security-credentials/") => {
                (StatusCode::OK, self.role.clone())
            }
            Method::GET
                if path.strip_suffix(ROLES[0]).is_some_and(|p| p.ends_with("/iam/security-credentials/")) =>
            {
                (StatusCode::OK, self.credentials.clone())
            }
            _ => (StatusCode::NOT_FOUND, Bytes::new()),
        };
        let mut response = hyper::Response::new(Full::new(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
        if *req.method() == Method::PUT {
            headers.insert(
                "x-aws-ec2-metadata-token-ttl-seconds",
                hyper::header::HeaderValue::from_static("21600"),
            );
        }
        response
    }
}

/// Serves the HTTP baseline on `listener` until `shutdown` resolves: one hyper HTTP/1.1
/// connection task per client, with the header-read timeout rolecall's doors keep.
pub async fn serve_imds(
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let answers = ImdsAnswers::new()?;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            () = &mut shutdown => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let answers = answers.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let response = answers.answer(&req);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
