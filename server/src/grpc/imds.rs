//! The InstanceMetadata service: IMDS over gRPC.

use std::sync::Arc;

use rolecall_api::{self as pb, instance_caller::Identity, instance_metadata_server};
use tonic::{Request, Response, Status};

use super::error::reply;
use crate::{
    domain::{Result, clock::iso8601},
    metadata::{Caller, CredentialsDocument, InstanceMetadata},
    telemetry::Metrics,
};

pub struct ImdsService {
    imds: Arc<InstanceMetadata>,
    metrics: Metrics,
}

impl ImdsService {
    pub fn new(imds: Arc<InstanceMetadata>, metrics: Metrics) -> Self {
        Self { imds, metrics }
    }

    fn done<T>(&self, result: Result<T>) -> Result<Response<T>, Status> {
        reply(&self.metrics, result)
    }
}

type Answer<T> = Result<Response<T>, Status>;

fn caller(c: Option<pb::InstanceCaller>) -> Caller {
    match c.and_then(|c| c.identity) {
        Some(Identity::Token(t)) => Caller::Token(t),
        Some(Identity::Instance(k)) => {
            Caller::InstanceKey { instance_id: k.instance_id, instance_key: k.instance_key }
        }
        None => Caller::Anonymous,
    }
}

#[tonic::async_trait]
impl instance_metadata_server::InstanceMetadata for ImdsService {
    async fn get_token(&self, req: Request<pb::GetTokenRequest>) -> Answer<pb::GetTokenResponse> {
        let r = req.into_inner();
        let res = self.imds.get_token(&r.instance_id, &r.instance_key, i64::from(r.ttl_seconds)).await;
        self.done(res.map(|token| pb::GetTokenResponse { token, ttl_seconds: r.ttl_seconds }))
    }

    async fn list_security_credentials(
        &self,
        req: Request<pb::ListSecurityCredentialsRequest>,
    ) -> Answer<pb::ListSecurityCredentialsResponse> {
        let res = self.imds.role_name(&caller(req.into_inner().caller)).await;
        self.done(res.map(|name| pb::ListSecurityCredentialsResponse { role_names: vec![name] }))
    }

    async fn get_security_credentials(
        &self,
        req: Request<pb::GetSecurityCredentialsRequest>,
    ) -> Answer<pb::GetSecurityCredentialsResponse> {
        let r = req.into_inner();
        let res = self.imds.credentials(&caller(r.caller), &r.role_name).await;
        self.done(res.map(|doc| match doc {
            CredentialsDocument::Success { credentials: c, account_id } => {
                pb::GetSecurityCredentialsResponse {
                    code: "Success".into(),
                    message: String::new(),
                    last_updated: c.last_updated().into(),
                    r#type: "AWS-HMAC".into(),
                    access_key_id: c.access_key_id().into(),
                    secret_access_key: c.secret_access_key().into(),
                    token: c.session_token().into(),
                    expiration: c.expiration().into(),
                    account_id,
                }
            }
            CredentialsDocument::Unauthorized { message, last_updated } => {
                pb::GetSecurityCredentialsResponse {
                    code: "AssumeRoleUnauthorizedAccess".into(),
                    message,
                    last_updated: iso8601(last_updated),
                    ..Default::default()
                }
            }
        }))
    }

    async fn get_iam_info(&self, req: Request<pb::GetIamInfoRequest>) -> Answer<pb::GetIamInfoResponse> {
        let res = self.imds.iam_info(&caller(req.into_inner().caller)).await;
        self.done(res.map(|info| pb::GetIamInfoResponse {
            code: "Success".into(),
            last_updated: iso8601(info.last_updated),
            instance_profile_arn: info.instance_profile_arn,
            instance_profile_id: info.instance_profile_id,
        }))
    }

    async fn get_metadata(&self, req: Request<pb::GetMetadataRequest>) -> Answer<pb::GetMetadataResponse> {
        let r = req.into_inner();
        let res = self.imds.metadata(&caller(r.caller), &r.path).await;
        self.done(res.map(|value| pb::GetMetadataResponse { value }))
    }
}
