//! The Sts service: STS over gRPC, every call SigV4-signed (see [`super::sigv4`]).

use std::sync::Arc;

use rolecall_api::{self as pb, sts_server};
use tonic::{Request, Response, Status};

use super::{error::reply, sigv4::principal};
use crate::{sts::Authenticator, telemetry::Metrics};

pub struct StsService {
    authn: Arc<Authenticator>,
    metrics: Metrics,
}

impl StsService {
    pub fn new(authn: Arc<Authenticator>, metrics: Metrics) -> Self {
        Self { authn, metrics }
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
        let account = self.authn.access_key_account(&req.get_ref().access_key_id);
        reply(&self.metrics, account.map(|account| pb::GetAccessKeyInfoResponse { account }))
    }
}
