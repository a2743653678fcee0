//! EC2's own `ec2` protocol (Version 2016-11-15), as `aws ec2` and the SDKs speak it: the
//! Query API's form-encoded POST, but lists as `Name.N` (no `.member`), answers without a
//! Result wrapper in lowerCamelCase with `…Set`/`item` lists, and errors as
//! `<Response><Errors><Error>…</Errors><RequestID>`.
//!
//! Each action's parameters are decoded into its request, which its operation
//! (`operations::ec2`, the gRPC call's too) authorizes (`ec2:Action` on the instance's ARN, `iam:PassRole` on the role a
//! profile passes), audits and carries out, so that no rule is written twice.

use std::sync::Arc;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use rolecall_api as pb;

use super::{
    error::http_status,
    form::Params,
    port::{Failed, Origin, QueryApi},
    xml::Writer,
};
use crate::{
    catalog::Catalog,
    domain::principal::Principal,
    domain::{Error, ErrorCode},
    operations::ec2::Ec2,
};

pub const VERSION: &str = "2016-11-15";
const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// An error as EC2 answers it. Authorization failures are EC2's UnauthorizedOperation.
pub fn error(e: &Error) -> Response {
    let (code, message) = match e.code {
        ErrorCode::AccessDenied => (
            ErrorCode::UnauthorizedOperation,
            format!("You are not authorized to perform this operation. {}", e.message),
        ),
        code => (code, e.message.clone()),
    };
    let mut w = Writer::document("Response", "");
    w.open("Errors")
        .open("Error")
        .leaf("Code", code.as_str())
        .leaf("Message", &message)
        .close("Error")
        .close("Errors")
        .leaf("RequestID", super::port::request_id())
        .close("Response");
    (http_status(code), [("content-type", "text/xml;charset=UTF-8")], w.finish()).into_response()
}

/// `<ActionResponse>` with its request id, then `body`'s elements.
fn answer(action: &str, body: impl FnOnce(&mut Writer)) -> Response {
    let root = format!("{action}Response");
    let mut w = Writer::document(&root, NAMESPACE);
    w.leaf("requestId", super::port::request_id());
    body(&mut w);
    w.close(&root);
    (StatusCode::OK, [("content-type", "text/xml;charset=UTF-8")], w.finish()).into_response()
}

fn int(params: &Params, name: &str) -> Result<Option<i32>, Error> {
    params
        .get(name)
        .map(|v| {
            v.parse().map_err(|_| {
                Error::invalid_parameter(format!("Invalid value '{v}' for {name}. Must be an integer."))
            })
        })
        .transpose()
}

fn profile(params: &Params) -> Option<pb::IamInstanceProfileSpecification> {
    let arn = params.str("IamInstanceProfile.Arn");
    let name = params.str("IamInstanceProfile.Name");
    (!arn.is_empty() || !name.is_empty()).then_some(pb::IamInstanceProfileSpecification { arn, name })
}

fn filters(params: &Params) -> Vec<pb::Filter> {
    params.filters().into_iter().map(|(name, values)| pb::Filter { name, values }).collect()
}

/// One EC2 action, decoded, then authorized and carried out by its operation.
pub(super) async fn action(
    api: &QueryApi,
    principal: &Principal,
    catalog: &Arc<Catalog>,
    origin: &Origin,
    action: &str,
    params: &Params,
) -> Result<Response, Failed> {
    let operations = Ec2::new(catalog.clone(), api.gate("ec2.amazonaws.com"));
    let caller = origin.context(principal, params.get("DryRun") == Some("true"));
    match action {
        "RunInstances" => {
            let request = pb::RunInstancesRequest {
                image_id: params.str("ImageId"),
                instance_type: params.str("InstanceType"),
                min_count: int(params, "MinCount")?.unwrap_or(0),
                max_count: int(params, "MaxCount")?.unwrap_or(0),
                iam_instance_profile: profile(params),
                key_name: params.str("KeyName"),
                security_group_ids: [
                    params.indexed_values("SecurityGroupId"),
                    params.indexed_values("SecurityGroup"),
                ]
                .concat(),
                subnet_id: params.str("SubnetId"),
                metadata_options: Some(pb::InstanceMetadataOptionsRequest {
                    http_tokens: params.str("MetadataOptions.HttpTokens"),
                    http_put_response_hop_limit: int(params, "MetadataOptions.HttpPutResponseHopLimit")?,
                    http_endpoint: params.str("MetadataOptions.HttpEndpoint"),
                }),
                user_data: params.str("UserData"),
            };
            let launched = operations.run_instances(&caller, request).await.map_err(Failed::In)?;
            let instances: Vec<pb::Instance> =
                launched.instances.into_iter().filter_map(|l| l.instance).collect();
            Ok(answer(action, |w| {
                w.leaf("reservationId", &launched.reservation_id).leaf("ownerId", catalog.account_id());
                w.open("groupSet").close("groupSet");
                instances_set(w, catalog, &instances);
            }))
        }
        "DescribeInstances" => {
            let request = pb::DescribeInstancesRequest {
                instance_ids: params.indexed_values("InstanceId"),
                filters: filters(params),
                next_token: params.str("NextToken"),
                max_results: int(params, "MaxResults")?,
            };
            let r = operations.describe_instances(&caller, request).await.map_err(Failed::In)?;
            Ok(answer(action, |w| {
                w.open("reservationSet");
                for reservation in r.instances.chunk_by(|a, b| a.reservation_id == b.reservation_id) {
                    w.open("item")
                        .leaf("reservationId", &reservation[0].reservation_id)
                        .leaf("ownerId", catalog.account_id());
                    w.open("groupSet").close("groupSet");
                    instances_set(w, catalog, reservation);
                    w.close("item");
                }
                w.close("reservationSet").leaf("nextToken", &r.next_token);
            }))
        }
        "TerminateInstances" => {
            let instance_ids = params.indexed_values("InstanceId");
            let request = pb::TerminateInstancesRequest { instance_ids };
            let r = operations.terminate_instances(&caller, request).await.map_err(Failed::In)?;
            Ok(answer(action, |w| {
                w.open("instancesSet");
                for change in &r.terminating_instances {
                    w.open("item").leaf("instanceId", &change.instance_id);
                    state(w, "currentState", change.current_state.as_ref());
                    state(w, "previousState", change.previous_state.as_ref());
                    w.close("item");
                }
                w.close("instancesSet");
            }))
        }
        "AssociateIamInstanceProfile" => {
            let request = pb::AssociateIamInstanceProfileRequest {
                iam_instance_profile: profile(params),
                instance_id: params.str("InstanceId"),
            };
            let r = operations.associate_iam_instance_profile(&caller, request).await.map_err(Failed::In)?;
            Ok(association_answer(action, r.iam_instance_profile_association))
        }
        "ReplaceIamInstanceProfileAssociation" => {
            let request = pb::ReplaceIamInstanceProfileAssociationRequest {
                iam_instance_profile: profile(params),
                association_id: params.str("AssociationId"),
            };
            let r = operations
                .replace_iam_instance_profile_association(&caller, request)
                .await
                .map_err(Failed::In)?;
            Ok(association_answer(action, r.iam_instance_profile_association))
        }
        "DisassociateIamInstanceProfile" => {
            let request =
                pb::DisassociateIamInstanceProfileRequest { association_id: params.str("AssociationId") };
            let r =
                operations.disassociate_iam_instance_profile(&caller, request).await.map_err(Failed::In)?;
            Ok(association_answer(action, r.iam_instance_profile_association))
        }
        "DescribeIamInstanceProfileAssociations" => {
            let request = pb::DescribeIamInstanceProfileAssociationsRequest {
                association_ids: params.indexed_values("AssociationId"),
                filters: filters(params),
                next_token: params.str("NextToken"),
                max_results: int(params, "MaxResults")?,
            };
            let r = operations
                .describe_iam_instance_profile_associations(&caller, request)
                .await
                .map_err(Failed::In)?;
            Ok(answer(action, |w| {
                w.open("iamInstanceProfileAssociationSet");
                for a in &r.iam_instance_profile_associations {
                    association(w, "item", a);
                }
                w.close("iamInstanceProfileAssociationSet").leaf("nextToken", &r.next_token);
            }))
        }
        "ModifyInstanceMetadataOptions" => {
            let request = pb::ModifyInstanceMetadataOptionsRequest {
                instance_id: params.str("InstanceId"),
                http_tokens: params.str("HttpTokens"),
                http_put_response_hop_limit: int(params, "HttpPutResponseHopLimit")?,
                http_endpoint: params.str("HttpEndpoint"),
            };
            let r =
                operations.modify_instance_metadata_options(&caller, request).await.map_err(Failed::In)?;
            Ok(answer(action, |w| {
                w.leaf("instanceId", &r.instance_id);
                metadata_options(w, "instanceMetadataOptions", r.instance_metadata_options.as_ref());
            }))
        }
        "" => {
            Err(Error::new(ErrorCode::MissingParameter, "The request must contain the parameter Action")
                .into())
        }
        other => Err(Failed::Before(Error::new(
            ErrorCode::InvalidParameterValue,
            format!("The action {other} is not valid for this web service."),
        ))),
    }
}

fn association_answer(action: &str, a: Option<pb::IamInstanceProfileAssociation>) -> Response {
    answer(action, |w| {
        if let Some(a) = &a {
            association(w, "iamInstanceProfileAssociation", a);
        }
    })
}

fn association(w: &mut Writer, tag: &str, a: &pb::IamInstanceProfileAssociation) {
    w.open(tag).leaf("associationId", &a.association_id).leaf("instanceId", &a.instance_id);
    profile_of(w, a.iam_instance_profile.as_ref());
    w.leaf("state", &a.state).leaf("timestamp", &a.timestamp).close(tag);
}

fn profile_of(w: &mut Writer, p: Option<&pb::IamInstanceProfile>) {
    if let Some(p) = p {
        w.open("iamInstanceProfile").leaf("arn", &p.arn).leaf("id", &p.id).close("iamInstanceProfile");
    }
}

fn state(w: &mut Writer, tag: &str, s: Option<&pb::InstanceState>) {
    if let Some(s) = s {
        w.open(tag).leaf("code", s.code).leaf("name", &s.name).close(tag);
    }
}

fn metadata_options(w: &mut Writer, tag: &str, o: Option<&pb::InstanceMetadataOptions>) {
    if let Some(o) = o {
        w.open(tag)
            .leaf("state", &o.state)
            .leaf("httpTokens", &o.http_tokens)
            .leaf("httpPutResponseHopLimit", o.http_put_response_hop_limit)
            .leaf("httpEndpoint", &o.http_endpoint)
            .close(tag);
    }
}

/// EC2's private DNS name for a private address.
fn private_dns_name(region: &str, ip: &str) -> String {
    let host = format!("ip-{}", ip.replace('.', "-"));
    if region == "us-east-1" {
        format!("{host}.ec2.internal")
    } else {
        format!("{host}.{region}.compute.internal")
    }
}

fn instances_set(w: &mut Writer, catalog: &Catalog, instances: &[pb::Instance]) {
    w.open("instancesSet");
    for (launch_index, i) in instances.iter().enumerate() {
        w.open("item").leaf("instanceId", &i.instance_id).leaf("imageId", &i.image_id);
        state(w, "instanceState", i.state.as_ref());
        w.leaf("privateDnsName", private_dns_name(&catalog.settings().region, &i.private_ip_address))
            .leaf("keyName", &i.key_name)
            .leaf("amiLaunchIndex", launch_index)
            .leaf("instanceType", &i.instance_type)
            .leaf("launchTime", &i.launch_time);
        w.open("placement")
            .leaf("availabilityZone", &i.availability_zone)
            .leaf("tenancy", "default")
            .close("placement");
        w.leaf("subnetId", &i.subnet_id).leaf("privateIpAddress", &i.private_ip_address);
        w.open("groupSet");
        for group in &i.security_group_ids {
            w.open("item").leaf("groupId", group).close("item");
        }
        w.close("groupSet");
        profile_of(w, i.iam_instance_profile.as_ref());
        metadata_options(w, "metadataOptions", i.metadata_options.as_ref());
        w.close("item");
    }
    w.close("instancesSet");
}
