//! The Iam service's gRPC adapter: each call's decoded request and the caller's context
//! handed to its operation (`operations::iam`), its answer or error sent back.

use rolecall_api::{self as pb, iam_server};
use tonic::{Request, Response};

use super::{Answer, call_context, error::to_status};
use crate::operations::iam::Iam;

/// The Iam service of one account.
pub struct IamService(pub Iam);

macro_rules! adapters {
    ($($name:ident => $method:ident($req:ident) -> $answer:ident;)*) => {
        #[tonic::async_trait]
        impl iam_server::Iam for IamService {
            $(async fn $method(&self, req: Request<pb::$req>) -> Answer<pb::$answer> {
                let caller = call_context(&req)?;
                self.0.$method(&caller, req.into_inner()).await.map(Response::new).map_err(|e| to_status(&e))
            })*
        }
    };
}

rolecall_api::iam_rpcs!(adapters);
