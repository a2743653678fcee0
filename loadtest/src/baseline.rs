//! The baseline: a minimal tonic server answering the same request and response messages as
//! InstanceMetadata.GetSecurityCredentials from memory, with no work. Driven by the same
//! harness in the same run, it is the ceiling every scenario is stated against.

use rolecall_api::{
    GetSecurityCredentialsRequest, GetSecurityCredentialsResponse,
    loadtest::baseline_server::{Baseline, BaselineServer},
};
use rolecall_server::domain::{
    clock::iso8601,
    credentials::{SessionClaims, TemporaryCredentials},
    keyring::{KeyRing, KeyRingPolicy},
};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

/// A credentials answer of exactly the size rolecall's are: sealed by rolecall's own code.
pub fn sample_response() -> Result<GetSecurityCredentialsResponse, String> {
    let ring = KeyRing::new(KeyRingPolicy::default(), 0);
    let claims = SessionClaims::for_instance(
        "123456789012",
        "arn:aws:iam::123456789012:role/FleetRole0",
        "AROAABCDEFGHIJKLMNOPQ",
        "i-0123456789abcdef0",
        1_800_000_000,
        1_800_021_600,
    );
    let creds = TemporaryCredentials::issue(&ring, claims).map_err(|e| e.message)?;
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
        _: Request<GetSecurityCredentialsRequest>,
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
