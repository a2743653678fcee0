//! The instance's side: tokens, credentials, rotation, isolation, metadata.

use std::collections::HashSet;

use rolecall_api as pb;
use tonic::Code;

use crate::common::*;

#[tokio::test]
async fn tokens_prove_which_instance_is_asking() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let mut fleet = launch(&server, 2, Some("Web")).await;
    let (b, b_key) = fleet.pop().unwrap();
    let (a, a_key) = fleet.pop().unwrap();
    let mut imds = server.imds();

    for ttl in [0, 21_601, -5] {
        expect_error(
            imds.get_token(pb::GetTokenRequest {
                instance_id: a.instance_id.clone(),
                instance_key: a_key.clone(),
                ttl_seconds: ttl,
            })
            .await,
            Code::InvalidArgument,
            "BadRequest",
        );
    }
    // A's key does not open B's metadata; nor does a made-up token.
    expect_error(
        imds.get_token(pb::GetTokenRequest {
            instance_id: b.instance_id.clone(),
            instance_key: a_key.clone(),
            ttl_seconds: 60,
        })
        .await,
        Code::Unauthenticated,
        "Unauthorized",
    );
    expect_error(credentials(&server, "not-a-token", "Web").await, Code::Unauthenticated, "Unauthorized");
    expect_error(
        imds.get_iam_info(pb::GetIamInfoRequest { caller: None }).await,
        Code::Unauthenticated,
        "Unauthorized",
    );

    // Each token yields its own instance's credentials and nobody else's.
    let ta = token(&server, &a.instance_id, &a_key).await;
    let tb = token(&server, &b.instance_id, &b_key).await;
    let ca = credentials(&server, &ta, "Web").await.unwrap();
    let cb = credentials(&server, &tb, "Web").await.unwrap();
    assert_ne!(ca.access_key_id, cb.access_key_id);
    let id_a = imds
        .get_metadata(pb::GetMetadataRequest { caller: caller(&ta), path: "instance-id".into() })
        .await
        .unwrap()
        .into_inner()
        .value;
    assert_eq!(id_a, a.instance_id);
    // A token with one byte changed is refused.
    let mut forged = ta.clone().into_bytes();
    let last = forged.len() - 3;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    expect_error(credentials(&server, &forged, "Web").await, Code::Unauthenticated, "Unauthorized");
}

#[tokio::test]
async fn imdsv1_only_where_tokens_are_optional_and_endpoint_can_be_disabled() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let (optional, optional_key) = launch_with(&server, 1, Some("Web"), "optional").await.remove(0);
    let (required, required_key) = launch_with(&server, 1, Some("Web"), "required").await.remove(0);
    let mut imds = server.imds();
    let v1 = |id: &str, key: &str| Some(pb::InstanceCaller::instance(id, key));

    let names = imds
        .list_security_credentials(pb::ListSecurityCredentialsRequest {
            caller: v1(&optional.instance_id, &optional_key),
        })
        .await
        .unwrap()
        .into_inner()
        .role_names;
    assert_eq!(names, ["Web"]);
    expect_error(
        imds.list_security_credentials(pb::ListSecurityCredentialsRequest {
            caller: v1(&required.instance_id, &required_key),
        })
        .await,
        Code::Unauthenticated,
        "Unauthorized",
    );
    // IMDSv2 works for both.
    let t = token(&server, &required.instance_id, &required_key).await;
    assert_eq!(credentials(&server, &t, "Web").await.unwrap().code, "Success");

    server
        .ec2()
        .modify_instance_metadata_options(pb::ModifyInstanceMetadataOptionsRequest {
            instance_id: required.instance_id.clone(),
            http_endpoint: "disabled".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    expect_error(credentials(&server, &t, "Web").await, Code::PermissionDenied, "Forbidden");
    expect_error(
        imds.get_token(pb::GetTokenRequest {
            instance_id: required.instance_id.clone(),
            instance_key: required_key.clone(),
            ttl_seconds: 60,
        })
        .await,
        Code::PermissionDenied,
        "Forbidden",
    );
}

#[tokio::test]
async fn a_role_that_does_not_trust_ec2_answers_assume_role_unauthorized_access() {
    let server = TestServer::start().await;
    let mut iam = server.iam();
    create_role(&server, "LambdaOnly", LAMBDA_TRUST).await;
    iam.create_instance_profile(pb::CreateInstanceProfileRequest {
        instance_profile_name: "LambdaOnly".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    iam.add_role_to_instance_profile(pb::AddRoleToInstanceProfileRequest {
        instance_profile_name: "LambdaOnly".into(),
        role_name: "LambdaOnly".into(),
    })
    .await
    .unwrap();
    let (i, key) = launch(&server, 1, Some("LambdaOnly")).await.remove(0);
    let t = token(&server, &i.instance_id, &key).await;
    let doc = credentials(&server, &t, "LambdaOnly").await.unwrap();
    assert_eq!(doc.code, "AssumeRoleUnauthorizedAccess");
    assert!(doc.message.contains("LambdaOnly"));
    assert!(doc.access_key_id.is_empty() && doc.secret_access_key.is_empty() && doc.token.is_empty());
    assert_eq!(server.counter("rolecall_credentials_issued_total").await, 0);

    // Fix the trust policy: the next fetch succeeds.
    iam.update_assume_role_policy(pb::UpdateAssumeRolePolicyRequest {
        role_name: "LambdaOnly".into(),
        policy_document: EC2_TRUST.into(),
    })
    .await
    .unwrap();
    assert_eq!(credentials(&server, &t, "LambdaOnly").await.unwrap().code, "Success");
}

#[tokio::test]
async fn credentials_rotate_on_schedule_and_never_run_short() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let (i, key) = launch(&server, 1, Some("Web")).await.remove(0);
    let t = token(&server, &i.instance_id, &key).await;

    let first = credentials(&server, &t, "Web").await.unwrap();
    let again = credentials(&server, &t, "Web").await.unwrap();
    assert_eq!(first.access_key_id, again.access_key_id, "a cache hit returns the same credentials");
    assert_eq!(first.expiration, again.expiration);
    assert_eq!(server.counter("rolecall_credentials_issued_total").await, 1);
    assert_eq!(server.counter("rolecall_credential_cache_hits_total").await, 1);

    // Before the earliest rotation point (1 h less at most 10 min of jitter): unchanged.
    advance(&server, 49 * 60).await;
    assert_eq!(credentials(&server, &t, "Web").await.unwrap().access_key_id, first.access_key_id);
    // Past one hour: new credentials, expiring 6 h from now.
    advance(&server, 12 * 60).await;
    let rotated = credentials(&server, &t, "Web").await.unwrap();
    assert_ne!(rotated.access_key_id, first.access_key_id);
    assert!(rotated.expiration > first.expiration);
    assert_eq!(server.counter("rolecall_credentials_issued_total").await, 2);

    // The IMDS token itself (6 h) expires: the instance needs a new one.
    advance(&server, 6 * 3600).await;
    expect_error(credentials(&server, &t, "Web").await, Code::Unauthenticated, "Unauthorized");
    let t2 = token(&server, &i.instance_id, &key).await;
    let later = credentials(&server, &t2, "Web").await.unwrap();
    assert_ne!(later.access_key_id, rotated.access_key_id);
}

#[tokio::test]
async fn short_token_ttl_expires() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let (i, key) = launch(&server, 1, Some("Web")).await.remove(0);
    let t = server
        .imds()
        .get_token(pb::GetTokenRequest {
            instance_id: i.instance_id.clone(),
            instance_key: key.clone(),
            ttl_seconds: 60,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.ttl_seconds, 60);
    assert!(credentials(&server, &t.token, "Web").await.is_ok());
    advance(&server, 61).await;
    expect_error(credentials(&server, &t.token, "Web").await, Code::Unauthenticated, "Unauthorized");
}

#[tokio::test]
async fn concurrent_fetches_issue_exactly_once() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let (i, key) = launch(&server, 1, Some("Web")).await.remove(0);
    let t = token(&server, &i.instance_id, &key).await;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let mut imds = server.imds();
        let caller = caller(&t);
        tasks.push(tokio::spawn(async move {
            imds.get_security_credentials(pb::GetSecurityCredentialsRequest {
                caller,
                role_name: "Web".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .access_key_id
        }));
    }
    let mut keys = HashSet::new();
    for task in tasks {
        keys.insert(task.await.unwrap());
    }
    assert_eq!(keys.len(), 1, "every caller got the same credentials");
    assert_eq!(server.counter("rolecall_credentials_issued_total").await, 1);
    assert_eq!(
        server.counter("rolecall_credential_cache_hits_total").await
            + server.counter("rolecall_credential_cache_misses_total").await,
        200
    );
}

#[tokio::test]
async fn a_recreated_role_does_not_inherit_old_credentials() {
    let server = TestServer::start().await;
    let mut iam = server.iam();
    role_in_profile(&server, "Web").await;
    let (i, key) = launch(&server, 1, Some("Web")).await.remove(0);
    let t = token(&server, &i.instance_id, &key).await;
    let before = credentials(&server, &t, "Web").await.unwrap();

    iam.remove_role_from_instance_profile(pb::RemoveRoleFromInstanceProfileRequest {
        instance_profile_name: "Web".into(),
        role_name: "Web".into(),
    })
    .await
    .unwrap();
    expect_error(credentials(&server, &t, "Web").await, Code::NotFound, "NotFound");
    iam.detach_role_policy(pb::DetachRolePolicyRequest {
        role_name: "Web".into(),
        policy_arn: S3_READ_ONLY.into(),
    })
    .await
    .unwrap();
    iam.delete_role(pb::DeleteRoleRequest { role_name: "Web".into() }).await.unwrap();
    create_role(&server, "Web", EC2_TRUST).await;
    iam.add_role_to_instance_profile(pb::AddRoleToInstanceProfileRequest {
        instance_profile_name: "Web".into(),
        role_name: "Web".into(),
    })
    .await
    .unwrap();
    let after = credentials(&server, &t, "Web").await.unwrap();
    assert_ne!(after.access_key_id, before.access_key_id);
}

#[tokio::test]
async fn generic_metadata_reads_like_imds() {
    let server = TestServer::start_with(|c| c.region = "eu-west-1".into()).await;
    role_in_profile(&server, "Web").await;
    let (i, key) = launch(&server, 1, Some("Web")).await.remove(0);
    let t = token(&server, &i.instance_id, &key).await;
    let mut imds = server.imds();
    let get = |path: &str| {
        let mut imds = imds.clone();
        let req = pb::GetMetadataRequest { caller: caller(&t), path: path.into() };
        async move { imds.get_metadata(req).await.map(|r| r.into_inner().value) }
    };
    assert_eq!(get("instance-id").await.unwrap(), i.instance_id);
    assert_eq!(get("instance-type").await.unwrap(), "t3.micro");
    assert_eq!(get("ami-id").await.unwrap(), "ami-0abcdef1234567890");
    assert_eq!(get("local-ipv4").await.unwrap(), i.private_ip_address);
    assert_eq!(get("placement/region").await.unwrap(), "eu-west-1");
    assert_eq!(get("placement/availability-zone").await.unwrap(), "eu-west-1a");
    let root = get("").await.unwrap();
    for entry in ["ami-id", "iam/", "instance-id", "local-ipv4", "placement/"] {
        assert!(root.lines().any(|l| l == entry), "{entry} in {root}");
    }
    assert_eq!(get("iam/security-credentials/").await.unwrap(), "Web");
    let doc: serde_json::Value =
        serde_json::from_str(&get("iam/security-credentials/Web").await.unwrap()).unwrap();
    assert_eq!(doc["Code"], "Success");
    assert!(doc["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    let info: serde_json::Value = serde_json::from_str(&get("iam/info").await.unwrap()).unwrap();
    assert!(info["InstanceProfileArn"].as_str().unwrap().ends_with("instance-profile/Web"));
    expect_error(get("no-such-thing").await, Code::NotFound, "NotFound");
    drop(imds.get_iam_info(pb::GetIamInfoRequest { caller: caller(&t) }).await.unwrap());
}

#[tokio::test]
async fn key_ring_rotation_keeps_outstanding_tokens_valid() {
    let server = TestServer::start_with(|c| c.key_ring.rotate_after_secs = 60).await;
    role_in_profile(&server, "Web").await;
    let (i, key) = launch(&server, 1, Some("Web")).await.remove(0);
    let old = token(&server, &i.instance_id, &key).await;
    advance(&server, 120).await;
    let new = token(&server, &i.instance_id, &key).await;
    assert_eq!(server.counter("rolecall_key_ring_rotations_total").await, 1);
    assert_ne!(old, new);
    // Both the token signed by the retired key and the one signed by the new key work.
    assert_eq!(credentials(&server, &old, "Web").await.unwrap().code, "Success");
    assert_eq!(credentials(&server, &new, "Web").await.unwrap().code, "Success");
}

#[tokio::test]
async fn short_credentials_simulation_rotates_within_minutes() {
    let server = TestServer::start_with(|c| {
        c.simulation.short_credentials = true;
        c.credentials.lifetime_secs = 120;
        c.credentials.rotate_after_secs = 60;
        c.credentials.rotation_jitter_secs = 0;
        c.credentials.min_remaining_secs = 30;
        c.credentials.prefetch_secs = 10;
    })
    .await;
    role_in_profile(&server, "Web").await;
    let (i, key) = launch(&server, 1, Some("Web")).await.remove(0);
    let t = token(&server, &i.instance_id, &key).await;
    let first = credentials(&server, &t, "Web").await.unwrap();
    advance(&server, 59).await;
    assert_eq!(credentials(&server, &t, "Web").await.unwrap().access_key_id, first.access_key_id);
    advance(&server, 2).await;
    assert_ne!(credentials(&server, &t, "Web").await.unwrap().access_key_id, first.access_key_id);
    // Whether the fetch at 59 s had them replaced in the background or the one at 61 s
    // issued them, they were issued once.
    assert_eq!(server.counter("rolecall_credentials_issued_total").await, 2);
}

#[tokio::test]
async fn trusting_claimed_instance_ids_is_a_named_simulation_switch() {
    let trusting = TestServer::start_with(|c| c.simulation.trust_claimed_instance_id = true).await;
    let (i, _) = launch(&trusting, 1, None).await.remove(0);
    let t = token(&trusting, &i.instance_id, "").await;
    assert!(!t.is_empty());
    // Off (the default), the same claim is refused.
    let strict = TestServer::start().await;
    let (i, _) = launch(&strict, 1, None).await.remove(0);
    expect_error(
        strict
            .imds()
            .get_token(pb::GetTokenRequest {
                instance_id: i.instance_id.clone(),
                instance_key: String::new(),
                ttl_seconds: 60,
            })
            .await,
        Code::Unauthenticated,
        "Unauthorized",
    );
}

#[tokio::test]
async fn trust_policy_conditions_are_evaluated_with_the_instance_as_source() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let launched = launch(&server, 2, Some("Web")).await;
    let only_first = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"ec2.amazonaws.com"}},"Action":"sts:AssumeRole",
            "Condition":{{"StringEquals":{{"aws:SourceAccount":"123456789012"}},"ArnLike":{{"aws:SourceArn":"arn:aws:ec2:*:123456789012:instance/{}"}}}}}}]}}"#,
        launched[0].0.instance_id
    );
    server
        .iam()
        .update_assume_role_policy(pb::UpdateAssumeRolePolicyRequest {
            role_name: "Web".into(),
            policy_document: only_first,
        })
        .await
        .unwrap();
    let fetch = |n: usize| {
        let (i, key) = launched[n].clone();
        let server = &server;
        async move {
            let t = token(server, &i.instance_id, &key).await;
            credentials(server, &t, "Web").await.unwrap()
        }
    };
    assert_eq!(fetch(0).await.code, "Success");
    let refused = fetch(1).await;
    assert_eq!(refused.code, "AssumeRoleUnauthorizedAccess");
    assert!(refused.access_key_id.is_empty());
}
