//! The EC2 operations: each authorized as EC2 authorizes it (`ec2:Action` on every instance
//! the decoded request names, `iam:PassRole` on the role of a profile it hands over),
//! audited, and carried out on its account's catalog.

use std::{future::Future, sync::Arc};

use rolecall_api as pb;
use serde_json::Value;

use super::{Gate, Operation, convert};
use crate::{
    authz::CallContext,
    catalog::{Catalog, InstanceFilter, Launch, ProfileRef},
    domain::{Error, ErrorCode, Result},
};

/// The EC2 operations of one account.
pub struct Ec2 {
    catalog: Arc<Catalog>,
    gate: Gate,
}

impl Ec2 {
    /// The EC2 operations of `catalog`'s account; `gate` authorizes, audits and answers.
    pub fn new(catalog: Arc<Catalog>, gate: Gate) -> Self {
        Self { catalog, gate }
    }

    /// Authorizes the decoded `request` as EC2 does (below), runs `act` on that same
    /// request, audits, answers.
    async fn run<Q, A, F, Fut>(&self, caller: &CallContext, request: Q, act: F) -> Result<A>
    where
        Q: Ec2Call,
        F: FnOnce(Q) -> Fut,
        Fut: Future<Output = Result<A>>,
    {
        let needed = match caller.principal {
            Some(_) => self.authorizations(&request).await,
            None => Ok(Vec::new()),
        };
        self.gate.run(caller, request, needed, act).await
    }

    /// What an Ec2 call must be allowed, as EC2 authorizes it: `ec2:Action` on every
    /// instance it names (`instance/*` where it names none yet), and iam:PassRole on the
    /// role of a profile it hands to an instance.
    async fn authorizations<Q: Ec2Call>(&self, request: &Q) -> Result<Vec<(String, String)>> {
        let action = format!("ec2:{}", Q::ACTION);
        let catalog = &self.catalog;
        let instances = match request.names() {
            Names::Instances(ids) => ids,
            // An association that does not exist names no instance: the call is decided on
            // `instance/*`, then answers InvalidAssociationID.NotFound. Any other failure to
            // read it is an error, never a default.
            Names::Association(id) => {
                match catalog.describe_iam_instance_profile_associations(&[id], &[], "", None).await {
                    Ok(page) => page.items.into_iter().map(|(instance, _)| instance).collect(),
                    Err(e) if e.code == ErrorCode::InvalidAssociationIdNotFound => Vec::new(),
                    Err(e) => return Err(e),
                }
            }
        };
        let mut needed: Vec<(String, String)> = if instances.is_empty() {
            vec![(action, instance_arn(catalog, "*"))]
        } else {
            instances.iter().map(|id| (action.clone(), instance_arn(catalog, id))).collect()
        };
        if let Some(profile) = request.passes()
            && let Some(role) = catalog.passed_role(&profile).await?
        {
            needed.push(("iam:PassRole".to_string(), role));
        }
        Ok(needed)
    }
}

fn instance_arn(catalog: &Catalog, id: &str) -> String {
    crate::domain::ids::arn::instance(&catalog.settings().region, catalog.account_id(), id)
}

/// The instances an Ec2 request names.
pub enum Names {
    Instances(Vec<String>),
    /// The instance an association id belongs to (none where there is no such association).
    Association(String),
}

/// An Ec2 request: its action, the instances it names and the profile it hands over.
pub trait Ec2Call: Operation {
    fn names(&self) -> Names {
        Names::Instances(Vec::new())
    }

    fn passes(&self) -> Option<ProfileRef> {
        None
    }
}

operations! {
    pb::DescribeInstancesRequest, "DescribeInstances" false;
    pb::TerminateInstancesRequest, "TerminateInstances" true;
    pb::AssociateIamInstanceProfileRequest, "AssociateIamInstanceProfile" true;
    pb::ReplaceIamInstanceProfileAssociationRequest, "ReplaceIamInstanceProfileAssociation" true;
    pb::DisassociateIamInstanceProfileRequest, "DisassociateIamInstanceProfile" true;
    pb::DescribeIamInstanceProfileAssociationsRequest, "DescribeIamInstanceProfileAssociations" false;
    pb::ModifyInstanceMetadataOptionsRequest, "ModifyInstanceMetadataOptions" true;
}

impl Operation for pb::RunInstancesRequest {
    const ACTION: &'static str = "RunInstances";
    const MUTATES: bool = true;

    /// User data is left out, as CloudTrail does.
    fn parameters(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(fields) = value.as_object_mut() {
            match fields.get("UserData").and_then(Value::as_str) {
                Some("") | None => fields.remove("UserData"),
                Some(_) => fields.insert("UserData".into(), "<sensitiveDataRemoved>".into()),
            };
        }
        value
    }
}

impl Ec2Call for pb::RunInstancesRequest {
    fn passes(&self) -> Option<ProfileRef> {
        profile_ref(self.iam_instance_profile.clone())
    }
}

impl Ec2Call for pb::DescribeInstancesRequest {}

impl Ec2Call for pb::DescribeIamInstanceProfileAssociationsRequest {}

impl Ec2Call for pb::TerminateInstancesRequest {
    fn names(&self) -> Names {
        Names::Instances(self.instance_ids.clone())
    }
}

impl Ec2Call for pb::AssociateIamInstanceProfileRequest {
    fn names(&self) -> Names {
        Names::Instances(vec![self.instance_id.clone()])
    }

    fn passes(&self) -> Option<ProfileRef> {
        profile_ref(self.iam_instance_profile.clone())
    }
}

impl Ec2Call for pb::ReplaceIamInstanceProfileAssociationRequest {
    fn names(&self) -> Names {
        Names::Association(self.association_id.clone())
    }

    fn passes(&self) -> Option<ProfileRef> {
        profile_ref(self.iam_instance_profile.clone())
    }
}

impl Ec2Call for pb::DisassociateIamInstanceProfileRequest {
    fn names(&self) -> Names {
        Names::Association(self.association_id.clone())
    }
}

impl Ec2Call for pb::ModifyInstanceMetadataOptionsRequest {
    fn names(&self) -> Names {
        Names::Instances(vec![self.instance_id.clone()])
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

impl Ec2 {
    /// RunInstances: every instance launched, in one answer (the gRPC door sends it in
    /// pages).
    pub async fn run_instances(
        &self,
        caller: &CallContext,
        req: pb::RunInstancesRequest,
    ) -> Result<pb::RunInstancesResponse> {
        self.run(caller, req, |r| async move {
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
                self.gate.metrics.instances_launched.inc_by(launched.len() as u64);
            }
            result.map(|(reservation_id, launched)| pb::RunInstancesResponse {
                reservation_id,
                instances: launched
                    .into_iter()
                    .map(|(i, instance_key)| pb::LaunchedInstance {
                        instance: Some(convert::instance(&i)),
                        instance_key,
                    })
                    .collect(),
            })
        })
        .await
    }

    pub async fn describe_instances(
        &self,
        caller: &CallContext,
        req: pb::DescribeInstancesRequest,
    ) -> Result<pb::DescribeInstancesResponse> {
        self.run(caller, req, |r| async move {
            let res = match instance_filter(r.instance_ids, r.filters) {
                Ok(f) => self.catalog.describe_instances(&f, &r.next_token, r.max_results).await,
                Err(e) => Err(e),
            };
            res.map(|page| pb::DescribeInstancesResponse {
                instances: page.items.iter().map(convert::instance).collect(),
                next_token: page.next_marker.unwrap_or_default(),
            })
        })
        .await
    }

    pub async fn terminate_instances(
        &self,
        caller: &CallContext,
        req: pb::TerminateInstancesRequest,
    ) -> Result<pb::TerminateInstancesResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.terminate_instances(&r.instance_ids).await;
            res.map(|changes| pb::TerminateInstancesResponse {
                terminating_instances: changes
                    .into_iter()
                    .map(|(instance_id, previous, current)| pb::InstanceStateChange {
                        instance_id,
                        current_state: Some(convert::state(current)),
                        previous_state: Some(convert::state(previous)),
                    })
                    .collect(),
            })
        })
        .await
    }

    pub async fn associate_iam_instance_profile(
        &self,
        caller: &CallContext,
        req: pb::AssociateIamInstanceProfileRequest,
    ) -> Result<pb::AssociateIamInstanceProfileResponse> {
        self.run(caller, req, |r| async move {
            let res = match required_profile(r.iam_instance_profile) {
                Ok(spec) => self.catalog.associate_iam_instance_profile(&r.instance_id, &spec).await,
                Err(e) => Err(e),
            };
            res.map(|(i, a)| pb::AssociateIamInstanceProfileResponse {
                iam_instance_profile_association: Some(convert::association(
                    &i.instance_id,
                    &a,
                    "associating",
                )),
            })
        })
        .await
    }

    pub async fn replace_iam_instance_profile_association(
        &self,
        caller: &CallContext,
        req: pb::ReplaceIamInstanceProfileAssociationRequest,
    ) -> Result<pb::ReplaceIamInstanceProfileAssociationResponse> {
        self.run(caller, req, |r| async move {
            let res = match required_profile(r.iam_instance_profile) {
                Ok(spec) => {
                    self.catalog.replace_iam_instance_profile_association(&r.association_id, &spec).await
                }
                Err(e) => Err(e),
            };
            res.map(|(i, a)| pb::ReplaceIamInstanceProfileAssociationResponse {
                iam_instance_profile_association: Some(convert::association(
                    &i.instance_id,
                    &a,
                    "associating",
                )),
            })
        })
        .await
    }

    pub async fn disassociate_iam_instance_profile(
        &self,
        caller: &CallContext,
        req: pb::DisassociateIamInstanceProfileRequest,
    ) -> Result<pb::DisassociateIamInstanceProfileResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.disassociate_iam_instance_profile(&r.association_id).await;
            res.map(|(i, a)| pb::DisassociateIamInstanceProfileResponse {
                iam_instance_profile_association: Some(convert::association(
                    &i.instance_id,
                    &a,
                    "disassociating",
                )),
            })
        })
        .await
    }

    pub async fn describe_iam_instance_profile_associations(
        &self,
        caller: &CallContext,
        req: pb::DescribeIamInstanceProfileAssociationsRequest,
    ) -> Result<pb::DescribeIamInstanceProfileAssociationsResponse> {
        self.run(caller, req, |r| async move {
            let mut instance_ids = Vec::new();
            // Every association rolecall keeps is applied at once, so "associated" is its only state.
            let mut only_other_states = false;
            let mut bad_filter = None;
            for f in r.filters {
                match f.name.as_str() {
                    "instance-id" => instance_ids.extend(f.values),
                    "state" => only_other_states |= !f.values.iter().any(|v| v == "associated"),
                    other => {
                        bad_filter =
                            Some(Error::invalid_parameter(format!("The filter '{other}' is invalid")))
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
            res.map(|page| pb::DescribeIamInstanceProfileAssociationsResponse {
                iam_instance_profile_associations: page
                    .items
                    .iter()
                    .map(|(instance_id, a)| convert::association(instance_id, a, "associated"))
                    .collect(),
                next_token: page.next_marker.unwrap_or_default(),
            })
        })
        .await
    }

    pub async fn modify_instance_metadata_options(
        &self,
        caller: &CallContext,
        req: pb::ModifyInstanceMetadataOptionsRequest,
    ) -> Result<pb::ModifyInstanceMetadataOptionsResponse> {
        self.run(caller, req, |r| async move {
            let res = self
                .catalog
                .modify_instance_metadata_options(
                    &r.instance_id,
                    &r.http_tokens,
                    r.http_put_response_hop_limit,
                    &r.http_endpoint,
                )
                .await;
            res.map(|o| pb::ModifyInstanceMetadataOptionsResponse {
                instance_id: r.instance_id,
                instance_metadata_options: Some(convert::metadata_options(&o)),
            })
        })
        .await
    }
}
