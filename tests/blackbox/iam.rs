//! IAM over gRPC: roles, policies, instance profiles, users, with AWS's errors.

use rolecall_api as pb;
use tonic::Code;

use crate::common::*;

fn role_req(name: &str, trust: &str) -> pb::CreateRoleRequest {
    pb::CreateRoleRequest {
        role_name: name.into(),
        assume_role_policy_document: trust.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn role_creation_validates_like_aws() {
    let server = TestServer::start().await;
    let mut iam = server.iam();
    create_role(&server, "App", EC2_TRUST).await;
    let msg = expect_error(
        iam.create_role(role_req("app", EC2_TRUST)).await,
        Code::AlreadyExists,
        "EntityAlreadyExists",
    );
    assert_eq!(msg, "Role with name app already exists.");
    expect_error(
        iam.create_role(role_req("bad name", EC2_TRUST)).await,
        Code::InvalidArgument,
        "ValidationError",
    );
    expect_error(
        iam.create_role(role_req(&"r".repeat(65), EC2_TRUST)).await,
        Code::InvalidArgument,
        "ValidationError",
    );
    let msg = expect_error(
        iam.create_role(role_req(
            "NoPrincipal",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#,
        ))
        .await,
        Code::InvalidArgument,
        "MalformedPolicyDocument",
    );
    assert_eq!(msg, "Missing required field Principal");
    let msg = expect_error(
        iam.create_role(role_req(
            "WithResource",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole","Resource":"*"}]}"#,
        ))
        .await,
        Code::InvalidArgument,
        "MalformedPolicyDocument",
    );
    assert_eq!(msg, "Has prohibited field Resource");
    expect_error(
        iam.create_role(role_req("NotJson", "{")).await,
        Code::InvalidArgument,
        "MalformedPolicyDocument",
    );
    let mut too_long = role_req("LongSession", EC2_TRUST);
    too_long.max_session_duration = Some(43_201);
    expect_error(iam.create_role(too_long).await, Code::InvalidArgument, "ValidationError");
    // Nothing of the refused calls was stored.
    let roles = iam.list_roles(pb::ListRolesRequest::default()).await.unwrap().into_inner().roles;
    assert_eq!(roles.iter().map(|r| r.role_name.as_str()).collect::<Vec<_>>(), ["App"]);
    let role = iam
        .get_role(pb::GetRoleRequest { role_name: "App".into() })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_eq!(role.max_session_duration, 3600);
    assert_eq!(role.assume_role_policy_document, EC2_TRUST);
}

#[tokio::test]
async fn update_role_and_trust_policy() {
    let server = TestServer::start().await;
    let mut iam = server.iam();
    create_role(&server, "App", EC2_TRUST).await;
    iam.update_role(pb::UpdateRoleRequest {
        role_name: "App".into(),
        description: Some("web tier".into()),
        max_session_duration: Some(43_200),
    })
    .await
    .unwrap();
    expect_error(
        iam.update_role(pb::UpdateRoleRequest {
            role_name: "App".into(),
            max_session_duration: Some(100),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "ValidationError",
    );
    iam.update_assume_role_policy(pb::UpdateAssumeRolePolicyRequest {
        role_name: "App".into(),
        policy_document: LAMBDA_TRUST.into(),
    })
    .await
    .unwrap();
    let role = iam
        .get_role(pb::GetRoleRequest { role_name: "App".into() })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_eq!((role.description.as_str(), role.max_session_duration), ("web tier", 43_200));
    assert_eq!(role.assume_role_policy_document, LAMBDA_TRUST);
    expect_error(
        iam.update_role(pb::UpdateRoleRequest { role_name: "Nope".into(), ..Default::default() }).await,
        Code::NotFound,
        "NoSuchEntity",
    );
}

#[tokio::test]
async fn managed_policies_attach_up_to_the_quota() {
    let server = TestServer::start().await;
    let mut iam = server.iam();
    create_role(&server, "App", EC2_TRUST).await;
    // Every AWS managed policy, a page of at most 1,000 at a time.
    let mut aws = Vec::new();
    let mut marker = String::new();
    loop {
        let request = pb::ListPoliciesRequest {
            scope: "AWS".into(),
            marker,
            max_items: Some(1000),
            ..Default::default()
        };
        let page = iam.list_policies(request).await.unwrap().into_inner();
        aws.extend(page.policies);
        if !page.is_truncated {
            break;
        }
        marker = page.marker;
    }
    assert!(aws.len() > 1500, "{}", aws.len());
    let names: Vec<&str> = aws.iter().map(|p| p.policy_name.as_str()).collect();
    for expected in [
        "AdministratorAccess",
        "AmazonDynamoDBFullAccess",
        "AmazonEC2ReadOnlyAccess",
        "AmazonS3ReadOnlyAccess",
        "AmazonSSMManagedInstanceCore",
        "CloudWatchAgentServerPolicy",
        "IAMReadOnlyAccess",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let doc = iam
        .get_policy_version(pb::GetPolicyVersionRequest {
            policy_arn: "arn:aws:iam::aws:policy/IAMReadOnlyAccess".into(),
            version_id: aws
                .iter()
                .find(|p| p.policy_name == "IAMReadOnlyAccess")
                .unwrap()
                .default_version_id
                .clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .policy_version
        .unwrap();
    assert!(doc.document.contains("iam:List*") && doc.is_default_version);

    // Ten customer policies fill the quota; the eleventh attachment is refused.
    for n in 0..10 {
        let p = iam
            .create_policy(pb::CreatePolicyRequest {
                policy_name: format!("P{n}"),
                policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .policy
            .unwrap();
        iam.attach_role_policy(pb::AttachRolePolicyRequest { role_name: "App".into(), policy_arn: p.arn })
            .await
            .unwrap();
    }
    let msg = expect_error(
        iam.attach_role_policy(pb::AttachRolePolicyRequest {
            role_name: "App".into(),
            policy_arn: S3_READ_ONLY.into(),
        })
        .await,
        Code::ResourceExhausted,
        "LimitExceeded",
    );
    assert_eq!(msg, "Cannot exceed quota for PoliciesPerRole: 10");
    let msg = expect_error(
        iam.attach_role_policy(pb::AttachRolePolicyRequest {
            role_name: "App".into(),
            policy_arn: "arn:aws:iam::aws:policy/NoSuchPolicy".into(),
        })
        .await,
        Code::NotFound,
        "NoSuchEntity",
    );
    assert!(msg.contains("does not exist or is not attachable"), "{msg}");

    // An attached customer policy counts its attachments and cannot be deleted.
    let p0 = "arn:aws:iam::123456789012:policy/P0".to_string();
    let got = policy(&server, &p0).await;
    assert_eq!(got.attachment_count, 1);
    expect_error(
        iam.delete_policy(pb::DeletePolicyRequest { policy_arn: p0.clone() }).await,
        Code::FailedPrecondition,
        "DeleteConflict",
    );
    iam.detach_role_policy(pb::DetachRolePolicyRequest { role_name: "App".into(), policy_arn: p0.clone() })
        .await
        .unwrap();
    expect_error(
        iam.detach_role_policy(pb::DetachRolePolicyRequest {
            role_name: "App".into(),
            policy_arn: p0.clone(),
        })
        .await,
        Code::NotFound,
        "NoSuchEntity",
    );
    iam.delete_policy(pb::DeletePolicyRequest { policy_arn: p0.clone() }).await.unwrap();
    let attached = iam
        .list_attached_role_policies(pb::ListAttachedRolePoliciesRequest {
            role_name: "App".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .attached_policies;
    assert_eq!(attached.len(), 9);
    assert!(attached.iter().all(|a| a.policy_arn != p0));
}

#[tokio::test]
async fn policy_versions_follow_aws_rules() {
    let server = TestServer::start().await;
    let mut iam = server.iam();
    let doc = |action: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"*"}}]}}"#
        )
    };
    let arn = iam
        .create_policy(pb::CreatePolicyRequest {
            policy_name: "Versions".into(),
            policy_document: doc("s3:GetObject"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap()
        .arn;
    let v2 = iam
        .create_policy_version(pb::CreatePolicyVersionRequest {
            policy_arn: arn.clone(),
            policy_document: doc("s3:PutObject"),
            set_as_default: true,
        })
        .await
        .unwrap()
        .into_inner()
        .policy_version
        .unwrap();
    assert_eq!((v2.version_id.as_str(), v2.is_default_version), ("v2", true));
    expect_error(
        iam.delete_policy_version(pb::DeletePolicyVersionRequest {
            policy_arn: arn.clone(),
            version_id: "v2".into(),
        })
        .await,
        Code::FailedPrecondition,
        "DeleteConflict",
    );
    for a in ["s3:A", "s3:B", "s3:C"] {
        iam.create_policy_version(pb::CreatePolicyVersionRequest {
            policy_arn: arn.clone(),
            policy_document: doc(a),
            set_as_default: false,
        })
        .await
        .unwrap();
    }
    expect_error(
        iam.create_policy_version(pb::CreatePolicyVersionRequest {
            policy_arn: arn.clone(),
            policy_document: doc("s3:D"),
            set_as_default: false,
        })
        .await,
        Code::ResourceExhausted,
        "LimitExceeded",
    );
    iam.set_default_policy_version(pb::SetDefaultPolicyVersionRequest {
        policy_arn: arn.clone(),
        version_id: "v1".into(),
    })
    .await
    .unwrap();
    iam.delete_policy_version(pb::DeletePolicyVersionRequest {
        policy_arn: arn.clone(),
        version_id: "v2".into(),
    })
    .await
    .unwrap();
    let versions = iam
        .list_policy_versions(pb::ListPolicyVersionsRequest { policy_arn: arn.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .versions;
    let ids: Vec<(&str, bool)> =
        versions.iter().map(|v| (v.version_id.as_str(), v.is_default_version)).collect();
    assert_eq!(ids, [("v5", false), ("v4", false), ("v3", false), ("v1", true)]);
    // A policy with several versions is not deleted whole.
    expect_error(
        iam.delete_policy(pb::DeletePolicyRequest { policy_arn: arn.clone() }).await,
        Code::FailedPrecondition,
        "DeleteConflict",
    );
    // AWS managed policies are not ours to change.
    expect_error(
        iam.create_policy_version(pb::CreatePolicyVersionRequest {
            policy_arn: S3_READ_ONLY.into(),
            policy_document: doc("s3:*"),
            set_as_default: true,
        })
        .await,
        Code::InvalidArgument,
        "InvalidInput",
    );
}

#[tokio::test]
async fn inline_policies_and_their_size_quota() {
    let server = TestServer::start().await;
    let mut iam = server.iam();
    create_role(&server, "App", EC2_TRUST).await;
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}]}"#;
    iam.put_role_policy(pb::PutRolePolicyRequest {
        role_name: "App".into(),
        policy_name: "ReadItems".into(),
        policy_document: doc.into(),
    })
    .await
    .unwrap();
    let got = iam
        .get_role_policy(pb::GetRolePolicyRequest {
            role_name: "App".into(),
            policy_name: "ReadItems".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.policy_document, doc);
    let with_principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#;
    let msg = expect_error(
        iam.put_role_policy(pb::PutRolePolicyRequest {
            role_name: "App".into(),
            policy_name: "Bad".into(),
            policy_document: with_principal.into(),
        })
        .await,
        Code::InvalidArgument,
        "MalformedPolicyDocument",
    );
    assert_eq!(msg, "Policy document should not specify a principal.");
    // Past 10,240 non-whitespace characters in all, the role's inline policies are full.
    let actions: Vec<String> = (0..600).map(|n| format!("\"s3:GetObjectVersion{n:04}\"")).collect();
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
        actions.join(",")
    );
    let msg = expect_error(
        iam.put_role_policy(pb::PutRolePolicyRequest {
            role_name: "App".into(),
            policy_name: "Big".into(),
            policy_document: big,
        })
        .await,
        Code::ResourceExhausted,
        "LimitExceeded",
    );
    assert!(msg.contains("10240"), "{msg}");
    let names = iam
        .list_role_policies(pb::ListRolePoliciesRequest { role_name: "App".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .policy_names;
    assert_eq!(names, ["ReadItems"]);
    expect_error(
        iam.delete_role(pb::DeleteRoleRequest { role_name: "App".into() }).await,
        Code::FailedPrecondition,
        "DeleteConflict",
    );
    iam.delete_role_policy(pb::DeleteRolePolicyRequest {
        role_name: "App".into(),
        policy_name: "ReadItems".into(),
    })
    .await
    .unwrap();
    expect_error(
        iam.get_role_policy(pb::GetRolePolicyRequest {
            role_name: "App".into(),
            policy_name: "ReadItems".into(),
        })
        .await,
        Code::NotFound,
        "NoSuchEntity",
    );
    iam.delete_role(pb::DeleteRoleRequest { role_name: "App".into() }).await.unwrap();
}

#[tokio::test]
async fn instance_profiles_hold_one_role() {
    let server = TestServer::start().await;
    let mut iam = server.iam();
    role_in_profile(&server, "Web").await;
    create_role(&server, "Other", EC2_TRUST).await;
    let msg = expect_error(
        iam.add_role_to_instance_profile(pb::AddRoleToInstanceProfileRequest {
            instance_profile_name: "Web".into(),
            role_name: "Other".into(),
        })
        .await,
        Code::ResourceExhausted,
        "LimitExceeded",
    );
    assert_eq!(msg, "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1");
    let profile = iam
        .get_instance_profile(pb::GetInstanceProfileRequest { instance_profile_name: "Web".into() })
        .await
        .unwrap()
        .into_inner()
        .instance_profile
        .unwrap();
    assert_eq!(profile.roles.iter().map(|r| r.role_name.as_str()).collect::<Vec<_>>(), ["Web"]);
    assert!(profile.instance_profile_id.starts_with("AIPA"));
    let for_role = iam
        .list_instance_profiles_for_role(pb::ListInstanceProfilesForRoleRequest {
            role_name: "Web".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .instance_profiles;
    assert_eq!(for_role.len(), 1);
    // The role cannot go while a profile holds it, nor the profile while it holds a role.
    iam.detach_role_policy(pb::DetachRolePolicyRequest {
        role_name: "Web".into(),
        policy_arn: S3_READ_ONLY.into(),
    })
    .await
    .unwrap();
    let msg = expect_error(
        iam.delete_role(pb::DeleteRoleRequest { role_name: "Web".into() }).await,
        Code::FailedPrecondition,
        "DeleteConflict",
    );
    assert!(msg.contains("instance profile"), "{msg}");
    expect_error(
        iam.delete_instance_profile(pb::DeleteInstanceProfileRequest { instance_profile_name: "Web".into() })
            .await,
        Code::FailedPrecondition,
        "DeleteConflict",
    );
    iam.remove_role_from_instance_profile(pb::RemoveRoleFromInstanceProfileRequest {
        instance_profile_name: "Web".into(),
        role_name: "Web".into(),
    })
    .await
    .unwrap();
    iam.delete_instance_profile(pb::DeleteInstanceProfileRequest { instance_profile_name: "Web".into() })
        .await
        .unwrap();
    iam.delete_role(pb::DeleteRoleRequest { role_name: "Web".into() }).await.unwrap();
    expect_error(
        iam.get_instance_profile(pb::GetInstanceProfileRequest { instance_profile_name: "Web".into() }).await,
        Code::NotFound,
        "NoSuchEntity",
    );
}

#[tokio::test]
async fn lists_paginate_with_markers() {
    let server = TestServer::start().await;
    let mut iam = server.iam();
    for n in 0..5 {
        create_role(&server, &format!("Role{n}"), EC2_TRUST).await;
    }
    let mut seen = Vec::new();
    let mut marker = String::new();
    let mut pages = 0;
    loop {
        let page = iam
            .list_roles(pb::ListRolesRequest {
                marker: marker.clone(),
                max_items: Some(2),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(page.roles.into_iter().map(|r| r.role_name));
        if !page.is_truncated {
            assert!(page.marker.is_empty());
            break;
        }
        marker = page.marker;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["Role0", "Role1", "Role2", "Role3", "Role4"]);
    expect_error(
        iam.list_roles(pb::ListRolesRequest { max_items: Some(0), ..Default::default() }).await,
        Code::InvalidArgument,
        "ValidationError",
    );
    expect_error(
        iam.list_roles(pb::ListRolesRequest { marker: "%%%".into(), ..Default::default() }).await,
        Code::InvalidArgument,
        "InvalidInput",
    );
}

#[tokio::test]
async fn user_policies_tags_and_boundaries() {
    let server = TestServer::start().await;
    let mut iam = server.iam();
    iam.create_user(pb::CreateUserRequest { user_name: "alice".into(), ..Default::default() }).await.unwrap();
    iam.attach_user_policy(pb::AttachUserPolicyRequest {
        user_name: "alice".into(),
        policy_arn: "arn:aws:iam::aws:policy/IAMReadOnlyAccess".into(),
    })
    .await
    .unwrap();
    iam.put_user_policy(pb::PutUserPolicyRequest {
        user_name: "alice".into(),
        policy_name: "Own".into(),
        policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ChangePassword","Resource":"arn:aws:iam::*:user/${aws:username}"}]}"#.into(),
    })
    .await
    .unwrap();
    iam.put_user_permissions_boundary(pb::PutUserPermissionsBoundaryRequest {
        user_name: "alice".into(),
        permissions_boundary: "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".into(),
    })
    .await
    .unwrap();
    iam.tag_user(pb::TagUserRequest {
        user_name: "alice".into(),
        tags: vec![pb::Tag { key: "team".into(), value: "payments".into() }],
    })
    .await
    .unwrap();
    let user = iam
        .get_user(pb::GetUserRequest { user_name: "alice".into() })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert!(user.user_id.starts_with("AIDA"));
    assert_eq!(user.tags.len(), 1);
    assert_eq!(
        user.permissions_boundary.unwrap().permissions_boundary_arn,
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
    );
    expect_error(
        iam.tag_user(pb::TagUserRequest {
            user_name: "alice".into(),
            tags: vec![pb::Tag { key: "aws:reserved".into(), value: "x".into() }],
        })
        .await,
        Code::InvalidArgument,
        "InvalidInput",
    );
    let attached = iam
        .list_attached_user_policies(pb::ListAttachedUserPoliciesRequest {
            user_name: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .attached_policies;
    assert_eq!(attached[0].policy_name, "IAMReadOnlyAccess");
    expect_error(
        iam.delete_user(pb::DeleteUserRequest { user_name: "alice".into() }).await,
        Code::FailedPrecondition,
        "DeleteConflict",
    );

    // Role tags and boundaries work the same way.
    create_role(&server, "Tagged", EC2_TRUST).await;
    iam.tag_role(pb::TagRoleRequest {
        role_name: "Tagged".into(),
        tags: vec![
            pb::Tag { key: "env".into(), value: "prod".into() },
            pb::Tag { key: "tier".into(), value: "web".into() },
        ],
    })
    .await
    .unwrap();
    iam.untag_role(pb::UntagRoleRequest { role_name: "Tagged".into(), tag_keys: vec!["env".into()] })
        .await
        .unwrap();
    let tags = iam
        .list_role_tags(pb::ListRoleTagsRequest { role_name: "Tagged".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .tags;
    assert_eq!(tags, [pb::Tag { key: "tier".into(), value: "web".into() }]);
    expect_error(
        iam.put_role_permissions_boundary(pb::PutRolePermissionsBoundaryRequest {
            role_name: "Tagged".into(),
            permissions_boundary: "arn:aws:iam::123456789012:policy/Missing".into(),
        })
        .await,
        Code::NotFound,
        "NoSuchEntity",
    );
}

#[tokio::test]
async fn aws_managed_policies_count_this_accounts_attachments() {
    let server = TestServer::start().await;
    let mut iam = server.iam();
    role_in_profile(&server, "Web").await;
    role_in_profile(&server, "Batch").await;
    let s3 = policy(&server, S3_READ_ONLY).await;
    assert_eq!(s3.attachment_count, 2);
    let attached = iam
        .list_policies(pb::ListPoliciesRequest { only_attached: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .policies;
    assert_eq!(
        attached.iter().map(|p| p.policy_name.as_str()).collect::<Vec<_>>(),
        ["AmazonS3ReadOnlyAccess"]
    );
    iam.detach_role_policy(pb::DetachRolePolicyRequest {
        role_name: "Web".into(),
        policy_arn: S3_READ_ONLY.into(),
    })
    .await
    .unwrap();
    let s3 = policy(&server, S3_READ_ONLY).await;
    assert_eq!(s3.attachment_count, 1);
    expect_error(
        iam.delete_policy(pb::DeletePolicyRequest { policy_arn: S3_READ_ONLY.into() }).await,
        Code::InvalidArgument,
        "InvalidInput",
    );
}

async fn simulate(
    server: &TestServer,
    source: &str,
    actions: &[&str],
    keys: Vec<pb::ContextEntry>,
) -> Vec<String> {
    server
        .iam()
        .simulate_principal_policy(pb::SimulatePrincipalPolicyRequest {
            policy_source_arn: source.into(),
            action_names: actions.iter().map(|a| a.to_string()).collect(),
            context_entries: keys,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .evaluation_results
        .into_iter()
        .map(|r| r.eval_decision)
        .collect()
}

#[tokio::test]
async fn read_only_roles_list_but_do_not_create_and_a_detach_takes_effect_at_once() {
    let server = TestServer::start().await;
    let role = create_role(&server, "Reader", EC2_TRUST).await;
    let attach = pb::AttachRolePolicyRequest {
        role_name: "Reader".into(),
        policy_arn: "arn:aws:iam::aws:policy/IAMReadOnlyAccess".into(),
    };
    server.iam().attach_role_policy(attach).await.unwrap();
    let asks = ["iam:ListUsers", "iam:ListRoles", "iam:CreateUser"];
    assert_eq!(simulate(&server, &role.arn, &asks, vec![]).await, ["allowed", "allowed", "implicitDeny"]);
    server
        .iam()
        .detach_role_policy(pb::DetachRolePolicyRequest {
            role_name: "Reader".into(),
            policy_arn: "arn:aws:iam::aws:policy/IAMReadOnlyAccess".into(),
        })
        .await
        .unwrap();
    assert_eq!(simulate(&server, &role.arn, &asks, vec![]).await, ["implicitDeny"; 3]);
    // An inline Deny beats an Allow; a condition decides with the context given.
    let admin = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
        {"Effect":"Deny","Action":"iam:Delete*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"eu-west-1"}}},
        {"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
    server
        .iam()
        .put_role_policy(pb::PutRolePolicyRequest {
            role_name: "Reader".into(),
            policy_name: "admin".into(),
            policy_document: admin.into(),
        })
        .await
        .unwrap();
    let outside = vec![pb::ContextEntry {
        context_key_name: "aws:SourceIp".into(),
        context_key_values: vec!["203.0.113.9".into()],
        context_key_type: "ip".into(),
    }];
    let inside = vec![pb::ContextEntry {
        context_key_name: "aws:SourceIp".into(),
        context_key_values: vec!["10.1.2.3".into()],
        context_key_type: "ip".into(),
    }];
    let asks = ["iam:CreateUser", "iam:DeleteUser", "s3:ListAllMyBuckets"];
    assert_eq!(
        simulate(&server, &role.arn, &asks, outside).await,
        ["allowed", "explicitDeny", "explicitDeny"]
    );
    assert_eq!(simulate(&server, &role.arn, &asks, inside).await, ["allowed", "explicitDeny", "allowed"]);
    // A permissions boundary caps it.
    server
        .iam()
        .put_role_permissions_boundary(pb::PutRolePermissionsBoundaryRequest {
            role_name: "Reader".into(),
            permissions_boundary: "arn:aws:iam::aws:policy/IAMReadOnlyAccess".into(),
        })
        .await
        .unwrap();
    let asks = ["iam:ListUsers", "iam:CreateUser"];
    assert_eq!(simulate(&server, &role.arn, &asks, vec![]).await, ["allowed", "implicitDeny"]);
    let missing = server
        .iam()
        .simulate_principal_policy(pb::SimulatePrincipalPolicyRequest {
            policy_source_arn: "arn:aws:iam::123456789012:role/Nobody".into(),
            action_names: vec!["iam:ListUsers".into()],
            ..Default::default()
        })
        .await;
    expect_error(missing, Code::NotFound, "NoSuchEntity");
}

#[tokio::test]
async fn creation_takes_at_most_50_tags_as_tagging_does() {
    // IAM's API reference: Tags, "Array Members: Maximum number of 50 items", at CreateUser
    // and CreateRole as at TagUser; and 50 tags per user or role in all (IAM quotas).
    let server = TestServer::start().await;
    let mut iam = server.iam();
    let tags = |n: usize| (0..n).map(|i| pb::Tag { key: format!("k{i}"), value: "v".into() }).collect();
    let create = pb::CreateUserRequest { user_name: "many".into(), tags: tags(10_000), ..Default::default() };
    let msg = expect_error(iam.create_user(create).await, Code::InvalidArgument, "ValidationError");
    assert!(msg.contains("less than or equal to 50"), "{msg}");
    let missing = iam.get_user(pb::GetUserRequest { user_name: "many".into() }).await;
    expect_error(missing, Code::NotFound, "NoSuchEntity");
    let role = pb::CreateRoleRequest {
        role_name: "many".into(),
        assume_role_policy_document: EC2_TRUST.into(),
        tags: tags(51),
        ..Default::default()
    };
    expect_error(iam.create_role(role).await, Code::InvalidArgument, "ValidationError");
    // 40 at creation, then 11 more: over the quota of 50 in all.
    let create = pb::CreateUserRequest { user_name: "some".into(), tags: tags(40), ..Default::default() };
    iam.create_user(create).await.unwrap();
    let more = (40..51).map(|i| pb::Tag { key: format!("k{i}"), value: "v".into() }).collect();
    let tag = iam.tag_user(pb::TagUserRequest { user_name: "some".into(), tags: more }).await;
    expect_error(tag, Code::ResourceExhausted, "LimitExceeded");
}
