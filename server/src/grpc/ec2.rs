//! The Ec2 service's gRPC adapter: each call's decoded request and the caller's context
//! handed to its operation (`operations::ec2`), its answer or error sent back;
//! RunInstances' answer in pages.

use std::pin::Pin;

use rolecall_api::{self as pb, ec2_server};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{Answer, call_context, error::to_status};
use crate::operations::ec2::Ec2;

/// Instances per RunInstances response message: ~0.5 MB, well under gRPC's 4 MiB default.
const LAUNCH_PAGE: usize = 1000;

/// The Ec2 service of one account.
pub struct Ec2Service(pub Ec2);

macro_rules! adapters {
    ($($method:ident($req:ident) -> $answer:ident;)*) => {
        #[tonic::async_trait]
        impl ec2_server::Ec2 for Ec2Service {
            type RunInstancesStream =
                Pin<Box<dyn Stream<Item = Result<pb::RunInstancesResponse, Status>> + Send>>;

            async fn run_instances(
                &self,
                req: Request<pb::RunInstancesRequest>,
            ) -> Answer<Self::RunInstancesStream> {
                let caller = call_context(&req)?;
                let launched = self.0.run_instances(&caller, req.into_inner()).await.map_err(|e| to_status(&e))?;
                Ok(Response::new(Box::pin(tokio_stream::iter(pages(launched)))))
            }

            $(async fn $method(&self, req: Request<pb::$req>) -> Answer<pb::$answer> {
                let caller = call_context(&req)?;
                self.0.$method(&caller, req.into_inner()).await.map(Response::new).map_err(|e| to_status(&e))
            })*
        }
    };
}

adapters! {
    describe_instances(DescribeInstancesRequest) -> DescribeInstancesResponse;
    terminate_instances(TerminateInstancesRequest) -> TerminateInstancesResponse;
    associate_iam_instance_profile(AssociateIamInstanceProfileRequest) -> AssociateIamInstanceProfileResponse;
    replace_iam_instance_profile_association(ReplaceIamInstanceProfileAssociationRequest) -> ReplaceIamInstanceProfileAssociationResponse;
    disassociate_iam_instance_profile(DisassociateIamInstanceProfileRequest) -> DisassociateIamInstanceProfileResponse;
    describe_iam_instance_profile_associations(DescribeIamInstanceProfileAssociationsRequest) -> DescribeIamInstanceProfileAssociationsResponse;
    modify_instance_metadata_options(ModifyInstanceMetadataOptionsRequest) -> ModifyInstanceMetadataOptionsResponse;
}

/// One RunInstances answer as messages of at most [`LAUNCH_PAGE`] instances (one, empty of
/// instances, where none were launched). Each page is an allocation of its own size: a page
/// split off the front of the launch keeps the whole launch's capacity, so that 100,000
/// instances in 100 pages held 2 GB until the last was sent.
fn pages(launched: pb::RunInstancesResponse) -> Vec<Result<pb::RunInstancesResponse, Status>> {
    let pb::RunInstancesResponse { reservation_id, instances } = launched;
    let count = instances.len().div_ceil(LAUNCH_PAGE).max(1);
    let mut rest = instances.into_iter();
    (0..count)
        .map(|_| {
            let instances: Vec<_> = rest.by_ref().take(LAUNCH_PAGE).collect();
            Ok(pb::RunInstancesResponse { reservation_id: reservation_id.clone(), instances })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_is_paged_without_holding_its_whole_capacity_per_page() {
        let launched = |n: usize| pb::RunInstancesResponse {
            reservation_id: "r-0123456789abcdef0".into(),
            instances: vec![pb::LaunchedInstance::default(); n],
        };
        let sent: Vec<pb::RunInstancesResponse> =
            pages(launched(2 * LAUNCH_PAGE + 7)).into_iter().map(Result::unwrap).collect();
        let sizes: Vec<usize> = sent.iter().map(|p| p.instances.len()).collect();
        assert_eq!(sizes, [LAUNCH_PAGE, LAUNCH_PAGE, 7]);
        for page in &sent {
            assert!(page.instances.capacity() <= LAUNCH_PAGE, "a page holds {}", page.instances.capacity());
            assert_eq!(page.reservation_id, "r-0123456789abcdef0");
        }
        let none = pages(launched(0));
        assert_eq!(none.len(), 1, "one answer, empty of instances");
    }
}
