//! The Ec2 service.

use std::{pin::Pin, sync::Arc};

use rolecall_api::{self as pb, ec2_server};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{convert, error::reply};
use crate::{
    catalog::{Catalog, InstanceFilter, Launch, ProfileRef},
    domain::{Error, Result},
    telemetry::Metrics,
};

/// Instances per RunInstances response message: ~0.5 MB, well under gRPC's 4 MiB default.
const LAUNCH_PAGE: usize = 1000;

pub struct Ec2Service {
    catalog: Arc<Catalog>,
    metrics: Metrics,
}

impl Ec2Service {
    pub fn new(catalog: Arc<Catalog>, metrics: Metrics) -> Self {
        Self { catalog, metrics }
    }

    fn done<T>(&self, result: Result<T>) -> Result<Response<T>, Status> {
        reply(&self.metrics, result)
    }
}

type Answer<T> = Result<Response<T>, Status>;

/// What each Ec2 call acts on, as EC2 authorizes it: `ec2:Method` on every instance it names
/// (`instance/*` where it names none yet), and iam:PassRole on the role of a profile it hands
/// to an instance. The gRPC and the HTTP (ec2 protocol) paths both use it.
pub struct Ec2Resources {
    accounts: Arc<crate::catalog::Accounts>,
}

impl Ec2Resources {
    pub fn new(accounts: Arc<crate::catalog::Accounts>) -> Self {
        Self { accounts }
    }

    /// The instances a call names and the profile it hands over.
    async fn named(
        &self,
        catalog: &Catalog,
        method: &str,
        message: &[u8],
    ) -> Result<(Vec<String>, Option<ProfileRef>)> {
        use prost::Message;
        let association_instance = |id: String| async move {
            let page = catalog.describe_iam_instance_profile_associations(&[id], &[], "", None).await;
            Ok::<_, Error>(page.map(|p| p.items.into_iter().map(|(i, _)| i).collect()).unwrap_or_default())
        };
        Ok(match method {
            "RunInstances" => {
                let r = pb::RunInstancesRequest::decode(message).unwrap_or_default();
                (Vec::new(), profile_ref(r.iam_instance_profile))
            }
            "TerminateInstances" => {
                (pb::TerminateInstancesRequest::decode(message).unwrap_or_default().instance_ids, None)
            }
            "AssociateIamInstanceProfile" => {
                let r = pb::AssociateIamInstanceProfileRequest::decode(message).unwrap_or_default();
                (vec![r.instance_id], profile_ref(r.iam_instance_profile))
            }
            "ReplaceIamInstanceProfileAssociation" => {
                let r = pb::ReplaceIamInstanceProfileAssociationRequest::decode(message).unwrap_or_default();
                (association_instance(r.association_id).await?, profile_ref(r.iam_instance_profile))
            }
            "DisassociateIamInstanceProfile" => {
                let r = pb::DisassociateIamInstanceProfileRequest::decode(message).unwrap_or_default();
                (association_instance(r.association_id).await?, None)
            }
            "ModifyInstanceMetadataOptions" => (
                vec![
                    pb::ModifyInstanceMetadataOptionsRequest::decode(message).unwrap_or_default().instance_id,
                ],
                None,
            ),
            _ => (Vec::new(), None),
        })
    }

    fn instance_arn(catalog: &Catalog, id: &str) -> String {
        crate::domain::ids::arn::instance(&catalog.settings().region, catalog.account_id(), id)
    }
}

#[tonic::async_trait]
impl super::sigv4::Resources for Ec2Resources {
    async fn authorizations(
        &self,
        account: &str,
        service: &str,
        method: &str,
        message: &[u8],
    ) -> Result<Vec<(String, String)>> {
        let action = format!("{service}:{method}");
        let Some(catalog) = self.accounts.get(account) else { return Ok(vec![(action, "*".to_string())]) };
        let (instances, profile) = self.named(catalog, method, message).await?;
        let mut needed: Vec<(String, String)> = if instances.is_empty() {
            vec![(action, Self::instance_arn(catalog, "*"))]
        } else {
            instances.iter().map(|id| (action.clone(), Self::instance_arn(catalog, id))).collect()
        };
        if let Some(profile) = profile
            && let Some(role) = catalog.passed_role(&profile).await?
        {
            needed.push(("iam:PassRole".to_string(), role));
        }
        Ok(needed)
    }
}

fn profile_ref(spec: Option<pb::IamInstanceProfileSpecification>) -> Option<ProfileRef> {
    spec.map(|s| ProfileRef { arn: s.arn, name: s.name })
}

fn required_profile(spec: Option<pb::IamInstanceProfileSpecification>) -> Result<ProfileRef> {
    profile_ref(spec).ok_or_else(|| {
        Error::new(
            crate::domain::ErrorCode::MissingParameter,
            "The request must contain the parameter IamInstanceProfile",
        )
    })
}

/// DescribeInstances' filters rolecall understands.
fn instance_filter(ids: Vec<String>, filters: Vec<pb::Filter>) -> Result<InstanceFilter> {
    let mut f = InstanceFilter { instance_ids: ids, ..InstanceFilter::default() };
    for filter in filters {
        match filter.name.as_str() {
            "instance-id" => f.instance_ids.extend(filter.values),
            "instance-state-name" => f.states.extend(filter.values),
            "iam-instance-profile.arn" => f.profile_arns.extend(filter.values),
            other => {
                return Err(Error::invalid_parameter(format!("The filter '{other}' is invalid")));
            }
        }
    }
    Ok(f)
}

#[tonic::async_trait]
impl ec2_server::Ec2 for Ec2Service {
    type RunInstancesStream = Pin<Box<dyn Stream<Item = Result<pb::RunInstancesResponse, Status>> + Send>>;

    async fn run_instances(&self, req: Request<pb::RunInstancesRequest>) -> Answer<Self::RunInstancesStream> {
        let r = req.into_inner();
        let options = r.metadata_options.unwrap_or_default();
        let launch = Launch {
            image_id: r.image_id,
            instance_type: r.instance_type,
            min_count: r.min_count,
            max_count: r.max_count,
            profile: profile_ref(r.iam_instance_profile),
            key_name: r.key_name,
            security_group_ids: r.security_group_ids,
            subnet_id: r.subnet_id,
            user_data: r.user_data,
            http_tokens: options.http_tokens,
            hop_limit: options.http_put_response_hop_limit,
            http_endpoint: options.http_endpoint,
        };
        let result = self.catalog.run_instances(launch).await;
        if let Ok((_, launched)) = &result {
            self.metrics.instances_launched.inc_by(launched.len() as u64);
        }
        self.done(result.map(|(reservation_id, launched)| {
            let pages: Vec<Result<pb::RunInstancesResponse, Status>> = launched
                .chunks(LAUNCH_PAGE)
                .map(|chunk| {
                    Ok(pb::RunInstancesResponse {
                        reservation_id: reservation_id.clone(),
                        instances: chunk
                            .iter()
                            .map(|(i, key)| pb::LaunchedInstance {
                                instance: Some(convert::instance(i)),
                                instance_key: key.clone(),
                            })
                            .collect(),
                    })
                })
                .collect();
            Box::pin(tokio_stream::iter(pages)) as Self::RunInstancesStream
        }))
    }

    async fn describe_instances(
        &self,
        req: Request<pb::DescribeInstancesRequest>,
    ) -> Answer<pb::DescribeInstancesResponse> {
        let r = req.into_inner();
        let res = match instance_filter(r.instance_ids, r.filters) {
            Ok(f) => self.catalog.describe_instances(&f, &r.next_token, r.max_results).await,
            Err(e) => Err(e),
        };
        self.done(res.map(|page| pb::DescribeInstancesResponse {
            instances: page.items.iter().map(convert::instance).collect(),
            next_token: page.next_marker.unwrap_or_default(),
        }))
    }

    async fn terminate_instances(
        &self,
        req: Request<pb::TerminateInstancesRequest>,
    ) -> Answer<pb::TerminateInstancesResponse> {
        let res = self.catalog.terminate_instances(&req.into_inner().instance_ids).await;
        self.done(res.map(|changes| {
            pb::TerminateInstancesResponse {
                terminating_instances: changes
                    .into_iter()
                    .map(|(instance_id, previous, current)| pb::InstanceStateChange {
                        instance_id,
                        current_state: Some(convert::state(current)),
                        previous_state: Some(convert::state(previous)),
                    })
                    .collect(),
            }
        }))
    }

    async fn associate_iam_instance_profile(
        &self,
        req: Request<pb::AssociateIamInstanceProfileRequest>,
    ) -> Answer<pb::AssociateIamInstanceProfileResponse> {
        let r = req.into_inner();
        let res = match required_profile(r.iam_instance_profile) {
            Ok(spec) => self.catalog.associate_iam_instance_profile(&r.instance_id, &spec).await,
            Err(e) => Err(e),
        };
        self.done(res.map(|(i, a)| pb::AssociateIamInstanceProfileResponse {
            iam_instance_profile_association: Some(convert::association(&i.instance_id, &a, "associating")),
        }))
    }

    async fn replace_iam_instance_profile_association(
        &self,
        req: Request<pb::ReplaceIamInstanceProfileAssociationRequest>,
    ) -> Answer<pb::ReplaceIamInstanceProfileAssociationResponse> {
        let r = req.into_inner();
        let res = match required_profile(r.iam_instance_profile) {
            Ok(spec) => self.catalog.replace_iam_instance_profile_association(&r.association_id, &spec).await,
            Err(e) => Err(e),
        };
        self.done(res.map(|(i, a)| pb::ReplaceIamInstanceProfileAssociationResponse {
            iam_instance_profile_association: Some(convert::association(&i.instance_id, &a, "associating")),
        }))
    }

    async fn disassociate_iam_instance_profile(
        &self,
        req: Request<pb::DisassociateIamInstanceProfileRequest>,
    ) -> Answer<pb::DisassociateIamInstanceProfileResponse> {
        let res = self.catalog.disassociate_iam_instance_profile(&req.into_inner().association_id).await;
        self.done(res.map(|(i, a)| pb::DisassociateIamInstanceProfileResponse {
            iam_instance_profile_association: Some(convert::association(
                &i.instance_id,
                &a,
                "disassociating",
            )),
        }))
    }

    async fn describe_iam_instance_profile_associations(
        &self,
        req: Request<pb::DescribeIamInstanceProfileAssociationsRequest>,
    ) -> Answer<pb::DescribeIamInstanceProfileAssociationsResponse> {
        let r = req.into_inner();
        let mut instance_ids = Vec::new();
        // Every association rolecall keeps is applied at once, so "associated" is its only state.
        let mut only_other_states = false;
        let mut bad_filter = None;
        for f in r.filters {
            match f.name.as_str() {
                "instance-id" => instance_ids.extend(f.values),
                "state" => only_other_states |= !f.values.iter().any(|v| v == "associated"),
                other => {
                    bad_filter = Some(Error::invalid_parameter(format!("The filter '{other}' is invalid")))
                }
            }
        }
        let res = match bad_filter {
            Some(e) => Err(e),
            None if only_other_states => Ok(crate::catalog::Page { items: vec![], next_marker: None }),
            None => {
                self.catalog
                    .describe_iam_instance_profile_associations(
                        &r.association_ids,
                        &instance_ids,
                        &r.next_token,
                        r.max_results,
                    )
                    .await
            }
        };
        self.done(res.map(|page| {
            pb::DescribeIamInstanceProfileAssociationsResponse {
                iam_instance_profile_associations: page
                    .items
                    .iter()
                    .map(|(instance_id, a)| convert::association(instance_id, a, "associated"))
                    .collect(),
                next_token: page.next_marker.unwrap_or_default(),
            }
        }))
    }

    async fn modify_instance_metadata_options(
        &self,
        req: Request<pb::ModifyInstanceMetadataOptionsRequest>,
    ) -> Answer<pb::ModifyInstanceMetadataOptionsResponse> {
        let r = req.into_inner();
        let res = self
            .catalog
            .modify_instance_metadata_options(
                &r.instance_id,
                &r.http_tokens,
                r.http_put_response_hop_limit,
                &r.http_endpoint,
            )
            .await;
        self.done(res.map(|o| pb::ModifyInstanceMetadataOptionsResponse {
            instance_id: r.instance_id,
            instance_metadata_options: Some(convert::metadata_options(&o)),
        }))
    }
}
