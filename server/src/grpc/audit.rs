//! Control-plane changes into the audit trail: a tower service around the Iam and Ec2
//! services that writes one event per mutating call (its request as requestParameters, its
//! outcome as errorCode/errorMessage), with the caller [`super::sigv4::Verified`] found.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http_body_util::Full;
use rolecall_api as pb;
use serde_json::Value;
use tonic::{Status, body::Body, server::NamedService};
use tower::Service;

use crate::{
    audit::{Actor, AuditLog, Event},
    domain::clock::Clock,
    sts::Principal,
};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Which calls of a service change state, and their parameters as JSON.
pub type Parameters = fn(method: &str, message: &[u8]) -> Option<Value>;

#[derive(Clone)]
pub struct Audited<S> {
    inner: S,
    log: AuditLog,
    clock: std::sync::Arc<dyn Clock>,
    source: &'static str,
    parameters: Parameters,
    max_body: usize,
}

impl<S> Audited<S> {
    pub fn new(
        inner: S,
        log: AuditLog,
        clock: std::sync::Arc<dyn Clock>,
        source: &'static str,
        parameters: Parameters,
        max_body: usize,
    ) -> Self {
        Self { inner, log, clock, source, parameters, max_body }
    }
}

impl<S: NamedService> NamedService for Audited<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Audited<S>
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
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let this = self.clone();
        let method = req.uri().path().rsplit('/').next().unwrap_or_default().to_string();
        if !this.log.enabled() || (this.parameters)(&method, &[]).is_none() {
            return Box::pin(inner.call(req));
        }
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match super::sigv4::buffered(body, this.max_body).await {
                Ok(body) => body,
                Err(refused) => return Ok(refused),
            };
            let request =
                (this.parameters)(&method, body.get(5..).unwrap_or_default()).unwrap_or(Value::Null);
            let principal = parts.extensions.get::<Principal>().cloned();
            let (source_ip, _) = super::sigv4::transport_keys(&parts);
            let response = inner.call(http::Request::from_parts(parts, Body::new(Full::new(body)))).await?;
            // A unary error is a trailers-only response: its status is in the headers.
            let error = Status::from_header_map(response.headers())
                .filter(|s| s.code() != tonic::Code::Ok)
                .map(|s| super::error::from_status(&s));
            let actor = principal.as_ref().map_or(Actor::Operator, Actor::Principal);
            this.log.record(
                this.clock.unix(),
                Event {
                    source: this.source,
                    name: &method,
                    actor,
                    source_ip,
                    read_only: false,
                    request,
                    response: Value::Null,
                    error: error.as_ref(),
                },
            );
            Ok(response)
        })
    }
}

/// A request message as JSON (the API's PascalCase).
fn json<T: prost::Message + Default + serde::Serialize>(message: &[u8]) -> Value {
    T::decode(message).ok().and_then(|m| serde_json::to_value(m).ok()).unwrap_or(Value::Null)
}

macro_rules! mutations {
    ($method:expr, $message:expr; $($name:literal => $ty:ty),* $(,)?) => {
        match $method {
            $($name => Some(json::<$ty>($message)),)*
            _ => None,
        }
    };
}

/// The Iam calls that change state.
pub fn iam_mutations(method: &str, message: &[u8]) -> Option<Value> {
    mutations!(method, message;
        "CreateRole" => pb::CreateRoleRequest,
        "UpdateRole" => pb::UpdateRoleRequest,
        "DeleteRole" => pb::DeleteRoleRequest,
        "UpdateAssumeRolePolicy" => pb::UpdateAssumeRolePolicyRequest,
        "PutRolePolicy" => pb::PutRolePolicyRequest,
        "DeleteRolePolicy" => pb::DeleteRolePolicyRequest,
        "AttachRolePolicy" => pb::AttachRolePolicyRequest,
        "DetachRolePolicy" => pb::DetachRolePolicyRequest,
        "PutRolePermissionsBoundary" => pb::PutRolePermissionsBoundaryRequest,
        "DeleteRolePermissionsBoundary" => pb::DeleteRolePermissionsBoundaryRequest,
        "TagRole" => pb::TagRoleRequest,
        "UntagRole" => pb::UntagRoleRequest,
        "CreatePolicy" => pb::CreatePolicyRequest,
        "DeletePolicy" => pb::DeletePolicyRequest,
        "CreatePolicyVersion" => pb::CreatePolicyVersionRequest,
        "SetDefaultPolicyVersion" => pb::SetDefaultPolicyVersionRequest,
        "DeletePolicyVersion" => pb::DeletePolicyVersionRequest,
        "CreateInstanceProfile" => pb::CreateInstanceProfileRequest,
        "DeleteInstanceProfile" => pb::DeleteInstanceProfileRequest,
        "AddRoleToInstanceProfile" => pb::AddRoleToInstanceProfileRequest,
        "RemoveRoleFromInstanceProfile" => pb::RemoveRoleFromInstanceProfileRequest,
        "CreateUser" => pb::CreateUserRequest,
        "DeleteUser" => pb::DeleteUserRequest,
        "TagUser" => pb::TagUserRequest,
        "UntagUser" => pb::UntagUserRequest,
        "PutUserPolicy" => pb::PutUserPolicyRequest,
        "DeleteUserPolicy" => pb::DeleteUserPolicyRequest,
        "AttachUserPolicy" => pb::AttachUserPolicyRequest,
        "DetachUserPolicy" => pb::DetachUserPolicyRequest,
        "PutUserPermissionsBoundary" => pb::PutUserPermissionsBoundaryRequest,
        "DeleteUserPermissionsBoundary" => pb::DeleteUserPermissionsBoundaryRequest,
        "CreateAccessKey" => pb::CreateAccessKeyRequest,
        "UpdateAccessKey" => pb::UpdateAccessKeyRequest,
        "DeleteAccessKey" => pb::DeleteAccessKeyRequest,
        "RevokeRoleSessions" => pb::RevokeRoleSessionsRequest,
    )
}

/// The Ec2 calls that change state. RunInstances' user data is left out, as CloudTrail does.
pub fn ec2_mutations(method: &str, message: &[u8]) -> Option<Value> {
    let mut value = mutations!(method, message;
        "RunInstances" => pb::RunInstancesRequest,
        "TerminateInstances" => pb::TerminateInstancesRequest,
        "AssociateIamInstanceProfile" => pb::AssociateIamInstanceProfileRequest,
        "ReplaceIamInstanceProfileAssociation" => pb::ReplaceIamInstanceProfileAssociationRequest,
        "DisassociateIamInstanceProfile" => pb::DisassociateIamInstanceProfileRequest,
        "ModifyInstanceMetadataOptions" => pb::ModifyInstanceMetadataOptionsRequest,
    )?;
    if let Some(data) = value.get_mut("UserData")
        && data.as_str().is_some_and(|d| !d.is_empty())
    {
        *data = "<sensitiveDataRemoved>".into();
    }
    Some(value)
}
