//! The instance metadata service over HTTP, as EC2 serves it at 169.254.169.254, under a
//! per-instance path prefix (`/INSTANCE-ID/latest/...`: the simulation of a shared host,
//! see `imds.instance_identity`). What each path answers is decided by
//! [`InstanceMetadata`], as for the gRPC service.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, put},
};

use super::error::imds_error;
use crate::{
    domain::{Error, ErrorCode, Result},
    metadata::{Caller, InstanceMetadata},
};

const TOKEN: &str = "x-aws-ec2-metadata-token";
const TOKEN_TTL: &str = "x-aws-ec2-metadata-token-ttl-seconds";

/// The routes, under `/{instance_id}/latest/`.
pub fn router(imds: Arc<InstanceMetadata>) -> Router {
    Router::new()
        .route("/{instance}/latest/api/token", put(token))
        .route("/{instance}/latest/meta-data", get(meta_root))
        .route("/{instance}/latest/meta-data/", get(meta_root))
        .route("/{instance}/latest/meta-data/{*path}", get(meta))
        .route("/{instance}/latest/dynamic/instance-identity/document", get(identity_document))
        .route("/{instance}/latest/user-data", get(user_data))
        .route("/{instance}/container-credentials", get(container_credentials))
        .with_state(imds)
}

fn text(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "text/plain")], body).into_response()
}

fn answer(result: Result<String>) -> Response {
    match result {
        Ok(body) => text(StatusCode::OK, body),
        Err(e) => imds_error(&e),
    }
}

/// Who asks: the instance of the path, with the token it sent, if any.
fn caller(instance: String, headers: &HeaderMap) -> Caller {
    let token = headers.get(TOKEN).and_then(|v| v.to_str().ok()).map(str::to_string);
    Caller::Located { instance_id: instance, token }
}

/// PUT /latest/api/token: 400 without a TTL in 1-21600, 403 through a proxy
/// (X-Forwarded-For), else the token, the TTL echoed.
async fn token(
    State(imds): State<Arc<InstanceMetadata>>,
    Path(instance): Path<String>,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key("x-forwarded-for") {
        return imds_error(&Error::new(ErrorCode::Forbidden, "a token request may not pass through a proxy"));
    }
    let ttl = headers.get(TOKEN_TTL).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let Some(ttl) = ttl else {
        return imds_error(&Error::new(
            ErrorCode::BadRequest,
            "missing or malformed X-aws-ec2-metadata-token-ttl-seconds",
        ));
    };
    match imds.get_token_at(&instance, ttl).await {
        Ok(token) => (StatusCode::OK, [("content-type", "text/plain"), (TOKEN_TTL, &ttl.to_string())], token)
            .into_response(),
        Err(e) => imds_error(&e),
    }
}

async fn meta_root(
    State(imds): State<Arc<InstanceMetadata>>,
    Path(instance): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(imds.metadata(&caller(instance, &headers), "").await)
}

async fn meta(
    State(imds): State<Arc<InstanceMetadata>>,
    Path((instance, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    answer(imds.metadata(&caller(instance, &headers), &path).await)
}

async fn identity_document(
    State(imds): State<Arc<InstanceMetadata>>,
    Path(instance): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(imds.identity_document(&caller(instance, &headers)).await)
}

/// The container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI): the instance's
/// role credentials for a workload that presents the instance key as its bearer token
/// (AWS_CONTAINER_AUTHORIZATION_TOKEN), so that an unmodified SDK on a shared host gets its
/// own instance's credentials and no other's.
async fn container_credentials(
    State(imds): State<Arc<InstanceMetadata>>,
    Path(instance): Path<String>,
    headers: HeaderMap,
) -> Response {
    let key = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let key = key.strip_prefix("Bearer ").unwrap_or(key).to_string();
    let caller = Caller::Workload { instance_id: instance, instance_key: key };
    match imds.role_credentials(&caller).await {
        Ok(doc @ crate::metadata::CredentialsDocument::Success { .. }) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            crate::metadata::container_credentials_json(&doc),
        )
            .into_response(),
        Ok(doc) => (
            StatusCode::FORBIDDEN,
            [("content-type", "application/json")],
            crate::metadata::container_credentials_json(&doc),
        )
            .into_response(),
        Err(e) => imds_error(&e),
    }
}

async fn user_data(
    State(imds): State<Arc<InstanceMetadata>>,
    Path(instance): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(imds.user_data(&caller(instance, &headers)).await)
}
