//! The Sts service: STS over gRPC, every call SigV4-signed (see [`super::sigv4`]).

use std::sync::Arc;

use rolecall_api::{self as pb, sts_server};
use tonic::{Request, Response, Status};

use super::{error::reply, sigv4::principal};
use crate::{
    domain::clock::iso8601,
    sts::{AssumeRoleInput, Authenticator, SecurityTokenService},
    telemetry::Metrics,
};

pub struct StsService {
    authn: Arc<Authenticator>,
    sts: Arc<SecurityTokenService>,
    metrics: Metrics,
}

impl StsService {
    pub fn new(authn: Arc<Authenticator>, sts: Arc<SecurityTokenService>, metrics: Metrics) -> Self {
        Self { authn, sts, metrics }
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl sts_server::Sts for StsService {
    async fn get_caller_identity(
        &self,
        req: Request<pb::GetCallerIdentityRequest>,
    ) -> Answer<pb::GetCallerIdentityResponse> {
        let p = principal(&req)?;
        Ok(Response::new(pb::GetCallerIdentityResponse {
            user_id: p.user_id,
            account: p.account_id,
            arn: p.arn,
        }))
    }

    async fn get_access_key_info(
        &self,
        req: Request<pb::GetAccessKeyInfoRequest>,
    ) -> Answer<pb::GetAccessKeyInfoResponse> {
        let account = self.authn.access_key_account(&req.get_ref().access_key_id).await;
        reply(&self.metrics, account.map(|account| pb::GetAccessKeyInfoResponse { account }))
    }

    async fn assume_role(&self, req: Request<pb::AssumeRoleRequest>) -> Answer<pb::AssumeRoleResponse> {
        let caller = principal(&req)?;
        let request_id = req.extensions().get::<crate::authz::CallContext>().map(|c| c.request_id.clone());
        let r = req.into_inner();
        let input = AssumeRoleInput {
            role_arn: r.role_arn,
            role_session_name: r.role_session_name,
            duration_seconds: (r.duration_seconds != 0).then_some(i64::from(r.duration_seconds)),
            policy: r.policy,
            policy_arns: r.policy_arns,
            external_id: Some(r.external_id).filter(|e| !e.is_empty()),
            tags: r.tags.into_iter().map(|t| (t.key, t.value)).collect(),
        };
        let res = self.sts.assume_role(&caller, input, request_id).await.map(|a| pb::AssumeRoleResponse {
            credentials: Some(pb::StsCredentials {
                access_key_id: a.credentials.access_key_id,
                secret_access_key: a.credentials.secret_access_key.0,
                session_token: a.credentials.session_token.0,
                expiration: iso8601(a.credentials.expires_at),
            }),
            assumed_role_user: Some(pb::AssumedRoleUser { assumed_role_id: a.assumed_role_id, arn: a.arn }),
            packed_policy_size: a.packed_policy_size,
        });
        reply(&self.metrics, res)
    }
}
