//! Every Iam and Ec2 RPC that names a resource is decided on the resource its request
//! names. The RPCs come from the descriptors server reflection serves, so an RPC added
//! without a case here fails this test.
//!
//! For each RPC, a caller allowed everything but that action on one resource ("deny-me")
//! is refused for it, also when the request is followed by a second frame, and is served
//! for another ("allow-me").

use rolecall_api as pb;
use tonic::Code;

use crate::common::*;

const ACCOUNT: &str = "123456789012";

/// The RPCs of `service` (`rolecall.v1.Iam`), as reflection describes them.
async fn methods_of(server: &TestServer, service: &str) -> Vec<String> {
    use prost::Message;
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut client = ServerReflectionClient::new(server.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(service.into())),
    };
    let mut answers =
        client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let Some(Ok(answer)) = answers.next().await else { panic!("no reflection answer") };
    let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
        panic!("{answer:?}")
    };
    let (package, name) = service.rsplit_once('.').unwrap();
    files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
        .filter(|file| file.package() == package)
        .flat_map(|file| file.service)
        .filter(|s| s.name() == name)
        .flat_map(|s| s.method)
        .map(|m| m.name().to_string())
        .collect()
}

/// Any request whose first field is a string: the name, ARN, path prefix or id it names.
#[derive(Clone, PartialEq, prost::Message)]
struct FirstField {
    #[prost(string, tag = "1")]
    value: String,
}

/// What a case's first field names (field 1 of each of these requests, in the .proto).
#[derive(Clone, Copy)]
enum Named {
    Role,
    User,
    Group,
    Profile,
    Policy,
    /// The simulated principal (a user's ARN).
    UserArn,
    /// A List call's path prefix.
    Prefix(&'static str),
    Instance,
    Association,
    /// A user's access key (its user's ARN is the resource).
    AccessKey,
}

/// The fixture: two of everything, instances with their associations.
struct Fleet {
    instance: [String; 2],
    association: [String; 2],
    /// An access key of each side's user.
    key: [String; 2],
}

const SIDES: [&str; 2] = ["deny-me", "allow-me"];

impl Named {
    /// The field's value on side `i` (0 is refused, 1 is served).
    fn value(self, fleet: &Fleet, i: usize) -> String {
        match self {
            Self::UserArn => format!("arn:aws:iam::{ACCOUNT}:user/{}", SIDES[i]),
            Self::Policy => format!("arn:aws:iam::{ACCOUNT}:policy/{}", SIDES[i]),
            Self::Prefix(_) => format!("/{}/", SIDES[i]),
            Self::Instance => fleet.instance[i].clone(),
            Self::Association => fleet.association[i].clone(),
            Self::AccessKey => fleet.key[i].clone(),
            Self::Role | Self::User | Self::Group | Self::Profile => SIDES[i].to_string(),
        }
    }

    /// The resource the caller is refused: side 0's ARN.
    fn resource(self, fleet: &Fleet) -> String {
        let name = SIDES[0];
        match self {
            Self::Role => format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            Self::User | Self::UserArn | Self::AccessKey => format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
            Self::Group => format!("arn:aws:iam::{ACCOUNT}:group/{name}"),
            Self::Profile => format!("arn:aws:iam::{ACCOUNT}:instance-profile/{name}"),
            Self::Policy => format!("arn:aws:iam::{ACCOUNT}:policy/{name}"),
            Self::Prefix(kind) => format!("arn:aws:iam::{ACCOUNT}:{kind}/{name}/"),
            Self::Instance | Self::Association => {
                format!("arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{}", fleet.instance[0])
            }
        }
    }
}

/// A request per side (0 is refused, 1 is served), as one gRPC frame.
type Sides = Box<dyn Fn(usize) -> Vec<u8>>;

/// How an RPC is tested.
enum Case {
    /// Its first field names the resource.
    First(Named),
    /// A request of its own per side, and the (action, resource) refused on side 0.
    Own(Sides, &'static str, String),
    /// It names no resource: authorized on `*` (or `instance/*`), as AWS does.
    NoResource,
}

fn case(method: &str, fleet: &Fleet) -> Case {
    use Named::*;
    let profile =
        |name: &str| Some(pb::IamInstanceProfileSpecification { name: name.into(), ..Default::default() });
    let instance_arn = Named::Instance.resource(fleet);
    match method {
        "CreateRole"
        | "GetRole"
        | "UpdateRole"
        | "DeleteRole"
        | "UpdateAssumeRolePolicy"
        | "PutRolePolicy"
        | "GetRolePolicy"
        | "ListRolePolicies"
        | "DeleteRolePolicy"
        | "AttachRolePolicy"
        | "DetachRolePolicy"
        | "ListAttachedRolePolicies"
        | "PutRolePermissionsBoundary"
        | "DeleteRolePermissionsBoundary"
        | "TagRole"
        | "UntagRole"
        | "ListRoleTags"
        | "ListInstanceProfilesForRole"
        | "RevokeRoleSessions" => Case::First(Role),
        "CreateUser"
        | "GetUser"
        | "DeleteUser"
        | "TagUser"
        | "UntagUser"
        | "PutUserPolicy"
        | "GetUserPolicy"
        | "ListUserPolicies"
        | "DeleteUserPolicy"
        | "AttachUserPolicy"
        | "DetachUserPolicy"
        | "ListAttachedUserPolicies"
        | "PutUserPermissionsBoundary"
        | "DeleteUserPermissionsBoundary"
        | "CreateAccessKey"
        | "ListAccessKeys"
        | "UpdateAccessKey"
        | "DeleteAccessKey"
        | "ListGroupsForUser" => Case::First(User),
        "CreateGroup"
        | "GetGroup"
        | "UpdateGroup"
        | "DeleteGroup"
        | "AddUserToGroup"
        | "RemoveUserFromGroup"
        | "PutGroupPolicy"
        | "GetGroupPolicy"
        | "ListGroupPolicies"
        | "DeleteGroupPolicy"
        | "AttachGroupPolicy"
        | "DetachGroupPolicy"
        | "ListAttachedGroupPolicies" => Case::First(Group),
        "CreateInstanceProfile"
        | "GetInstanceProfile"
        | "DeleteInstanceProfile"
        | "AddRoleToInstanceProfile"
        | "RemoveRoleFromInstanceProfile" => Case::First(Profile),
        "GetPolicy"
        | "DeletePolicy"
        | "CreatePolicyVersion"
        | "GetPolicyVersion"
        | "ListPolicyVersions"
        | "SetDefaultPolicyVersion"
        | "DeletePolicyVersion"
        | "ListEntitiesForPolicy" => Case::First(Policy),
        "CreatePolicy" => Case::Own(
            Box::new(|i| {
                frame(&pb::CreatePolicyRequest { policy_name: SIDES[i].into(), ..Default::default() })
            }),
            "iam:CreatePolicy",
            format!("arn:aws:iam::{ACCOUNT}:policy/{}", SIDES[0]),
        ),
        "SimulatePrincipalPolicy" | "GetContextKeysForPrincipalPolicy" => Case::First(UserArn),
        "ListRoles" => Case::First(Prefix("role")),
        "ListUsers" => Case::First(Prefix("user")),
        "ListGroups" => Case::First(Prefix("group")),
        "GetAccessKeyLastUsed" => Case::First(AccessKey),
        "ListInstanceProfiles" => Case::First(Prefix("instance-profile")),
        "TerminateInstances" | "ModifyInstanceMetadataOptions" => Case::First(Instance),
        "DisassociateIamInstanceProfile" => Case::First(Association),
        "RunInstances" => Case::Own(
            Box::new(move |i| {
                frame(&pb::RunInstancesRequest {
                    min_count: 1,
                    max_count: 1,
                    iam_instance_profile: profile(SIDES[i]),
                    ..Default::default()
                })
            }),
            "iam:PassRole",
            format!("arn:aws:iam::{ACCOUNT}:role/{}", SIDES[0]),
        ),
        "AssociateIamInstanceProfile" => {
            let instances = fleet.instance.clone();
            Case::Own(
                Box::new(move |i| {
                    frame(&pb::AssociateIamInstanceProfileRequest {
                        instance_id: instances[i].clone(),
                        iam_instance_profile: profile(SIDES[1]),
                    })
                }),
                "ec2:AssociateIamInstanceProfile",
                instance_arn,
            )
        }
        "ReplaceIamInstanceProfileAssociation" => {
            let associations = fleet.association.clone();
            Case::Own(
                Box::new(move |i| {
                    frame(&pb::ReplaceIamInstanceProfileAssociationRequest {
                        association_id: associations[i].clone(),
                        iam_instance_profile: profile(SIDES[1]),
                    })
                }),
                "ec2:ReplaceIamInstanceProfileAssociation",
                instance_arn,
            )
        }
        "ListPolicies"
        | "DescribeInstances"
        | "DescribeIamInstanceProfileAssociations"
        | "SimulateCustomPolicy"
        | "GetContextKeysForCustomPolicy"
        | "GetAccountSummary"
        | "CreateAccountAlias"
        | "DeleteAccountAlias"
        | "ListAccountAliases"
        | "GetAccountAuthorizationDetails"
        | "GenerateCredentialReport"
        | "GetCredentialReport" => Case::NoResource,
        other => panic!("{other}: a new RPC needs a case here (what does it name?)"),
    }
}

/// Both sides of everything, made by the operator.
async fn fleet(server: &TestServer) -> Fleet {
    let mut iam = server.iam();
    let mut instance = [String::new(), String::new()];
    let mut association = [String::new(), String::new()];
    let mut key = [String::new(), String::new()];
    for (i, name) in SIDES.into_iter().enumerate() {
        role_in_profile(server, name).await;
        iam.create_user(pb::CreateUserRequest { user_name: name.into(), ..Default::default() })
            .await
            .unwrap();
        iam.create_group(pb::CreateGroupRequest { group_name: name.into(), ..Default::default() })
            .await
            .unwrap();
        let created =
            iam.create_access_key(pb::CreateAccessKeyRequest { user_name: name.into() }).await.unwrap();
        key[i] = created.into_inner().access_key.unwrap().access_key_id;
        let document = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        let policy = pb::CreatePolicyRequest {
            policy_name: name.into(),
            policy_document: document.into(),
            ..Default::default()
        };
        iam.create_policy(policy).await.unwrap();
        instance[i] = launch(server, 1, Some(name)).await[0].0.instance_id.clone();
        let described = server
            .ec2()
            .describe_iam_instance_profile_associations(pb::DescribeIamInstanceProfileAssociationsRequest {
                filters: vec![pb::Filter { name: "instance-id".into(), values: vec![instance[i].clone()] }],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        association[i] = described.iam_instance_profile_associations[0].association_id.clone();
    }
    Fleet { instance, association, key }
}

#[tokio::test]
async fn every_rpc_that_names_a_resource_is_decided_on_that_resource() {
    let server = TestServer::start().await;
    let fleet = fleet(&server).await;
    let key = user_with_key(&server, "tester").await;
    let mut tested = 0;
    for (service, signing_name) in [("rolecall.v1.Iam", "iam"), ("rolecall.v1.Ec2", "ec2")] {
        let methods = methods_of(&server, service).await;
        assert!(methods.len() > 5, "{service}: {methods:?}");
        let signed = server.signing(long_term(&key), signing_name);
        for method in methods {
            let (request, action, resource): (Sides, String, String) = match case(&method, &fleet) {
                Case::NoResource => continue,
                Case::First(named) => {
                    let values = [named.value(&fleet, 0), named.value(&fleet, 1)];
                    (
                        Box::new(move |i| frame(&FirstField { value: values[i].clone() })),
                        format!("{signing_name}:{method}"),
                        named.resource(&fleet),
                    )
                }
                Case::Own(request, action, resource) => (request, action.to_string(), resource),
            };
            let policy = format!(
                r#"{{"Version":"2012-10-17","Statement":[
                {{"Effect":"Allow","Action":"*","Resource":"*"}},
                {{"Effect":"Deny","Action":"{action}","Resource":"{resource}"}}]}}"#
            );
            put_inline(&server, "tester", &policy).await;
            let path = format!("/{service}/{method}");
            let (refused, _) = raw_call(signed.clone(), &path, request(0), &[]).await;
            assert_eq!(refused.code(), Code::PermissionDenied, "{method} on {resource}: {refused:?}");
            let words = format!("{action} on resource: {resource}");
            assert!(refused.message().contains(&words), "{method}: {refused:?}");
            let smuggled = [request(0), vec![0, 0, 0, 0, 0]].concat();
            let (refused, _) = raw_call(signed.clone(), &path, smuggled, &[]).await;
            assert_eq!(refused.code(), Code::Unimplemented, "{method}, two frames: {refused:?}");
            let (served, _) = raw_call(signed.clone(), &path, request(1), &[]).await;
            assert_ne!(served.code(), Code::PermissionDenied, "{method} on allow-me: {served:?}");
            tested += 1;
        }
    }
    assert!(tested >= 60, "{tested} RPCs tested");
}
