//! The seeds' workflow end to end, as an operator and then an instance would do it.

use rolecall_api as pb;
use tonic::Code;

use crate::common::*;

#[tokio::test]
async fn seed_workflow_from_no_credentials_to_replaced_role() {
    let server = TestServer::start().await;
    let (mut iam, mut ec2, mut imds) = (server.iam(), server.ec2(), server.imds());

    // An instance launched without a role: "Unable to locate credentials".
    let (instance, key) = launch(&server, 1, None).await.remove(0);
    let t = token(&server, &instance.instance_id, &key).await;
    expect_error(
        imds.list_security_credentials(pb::ListSecurityCredentialsRequest { caller: caller(&t) }).await,
        Code::NotFound,
        "NotFound",
    );
    expect_error(credentials(&server, &t, "EC2RoleForApp").await, Code::NotFound, "NotFound");

    // The operator creates the role, attaches S3 read-only, and wraps it in a profile.
    let role = create_role(&server, "EC2RoleForApp", EC2_TRUST).await;
    assert!(role.role_id.starts_with("AROA"));
    assert_eq!(role.arn, "arn:aws:iam::123456789012:role/EC2RoleForApp");
    iam.attach_role_policy(pb::AttachRolePolicyRequest {
        role_name: "EC2RoleForApp".into(),
        policy_arn: S3_READ_ONLY.into(),
    })
    .await
    .unwrap();
    iam.create_instance_profile(pb::CreateInstanceProfileRequest {
        instance_profile_name: "EC2RoleForAppProfile".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    iam.add_role_to_instance_profile(pb::AddRoleToInstanceProfileRequest {
        instance_profile_name: "EC2RoleForAppProfile".into(),
        role_name: "EC2RoleForApp".into(),
    })
    .await
    .unwrap();

    // Attach it to the running instance (Actions -> Security -> Modify IAM role).
    let assoc = associate(&server, &instance.instance_id, "EC2RoleForAppProfile").await;
    assert!(assoc.association_id.starts_with("iip-assoc-"));

    // From the instance: the role name, then its credentials.
    let names = role_names(&server, &t).await;
    assert_eq!(names, ["EC2RoleForApp"]);
    let creds = credentials(&server, &t, "EC2RoleForApp").await.unwrap();
    assert_eq!(creds.code, "Success");
    assert_eq!(creds.r#type, "AWS-HMAC");
    assert!(
        creds.access_key_id.starts_with("ASIA") && creds.access_key_id.len() == 20,
        "{}",
        creds.access_key_id
    );
    assert_eq!(creds.secret_access_key.len(), 40);
    assert!(!creds.token.is_empty());
    assert!(creds.expiration.ends_with('Z') && creds.expiration.len() == 20, "{}", creds.expiration);
    assert!(creds.last_updated.ends_with('Z'));
    assert_eq!(creds.account_id, "123456789012");

    let info = imds.get_iam_info(pb::GetIamInfoRequest { caller: caller(&t) }).await.unwrap().into_inner();
    assert_eq!(info.code, "Success");
    assert_eq!(info.instance_profile_arn, "arn:aws:iam::123456789012:instance-profile/EC2RoleForAppProfile");
    assert!(info.instance_profile_id.starts_with("AIPA"));

    // Replace the role with another profile: the very next fetch sees the new role.
    role_in_profile(&server, "DemoRoleForEC2").await;
    ec2.replace_iam_instance_profile_association(pb::ReplaceIamInstanceProfileAssociationRequest {
        iam_instance_profile: Some(pb::IamInstanceProfileSpecification {
            name: "DemoRoleForEC2".into(),
            ..Default::default()
        }),
        association_id: assoc.association_id.clone(),
    })
    .await
    .unwrap();
    let names = role_names(&server, &t).await;
    assert_eq!(names, ["DemoRoleForEC2"]);
    let new_creds = credentials(&server, &t, "DemoRoleForEC2").await.unwrap();
    assert_ne!(new_creds.access_key_id, creds.access_key_id);
    expect_error(credentials(&server, &t, "EC2RoleForApp").await, Code::NotFound, "NotFound");

    // Cleanup as in the seeds: terminate; the instance's metadata is gone with it.
    ec2.terminate_instances(pb::TerminateInstancesRequest {
        instance_ids: vec![instance.instance_id.clone()],
    })
    .await
    .unwrap();
    expect_error(credentials(&server, &t, "DemoRoleForEC2").await, Code::Unauthenticated, "Unauthorized");
}

#[tokio::test]
async fn access_keys_lifecycle_the_bad_practice() {
    let server = TestServer::start().await;
    let mut iam = server.iam();
    iam.create_user(pb::CreateUserRequest { user_name: "test-user".into(), ..Default::default() })
        .await
        .unwrap();
    let first = iam
        .create_access_key(pb::CreateAccessKeyRequest { user_name: "test-user".into() })
        .await
        .unwrap()
        .into_inner()
        .access_key
        .unwrap();
    assert!(first.access_key_id.starts_with("AKIA") && first.access_key_id.len() == 20);
    assert_eq!(first.secret_access_key.len(), 40);
    assert_eq!(first.status, "Active");
    // Rotation: a second key, then the old one deactivated and deleted.
    let second = iam
        .create_access_key(pb::CreateAccessKeyRequest { user_name: "test-user".into() })
        .await
        .unwrap()
        .into_inner()
        .access_key
        .unwrap();
    let msg = expect_error(
        iam.create_access_key(pb::CreateAccessKeyRequest { user_name: "test-user".into() }).await,
        Code::ResourceExhausted,
        "LimitExceeded",
    );
    assert_eq!(msg, "Cannot exceed quota for AccessKeysPerUser: 2");
    iam.update_access_key(pb::UpdateAccessKeyRequest {
        user_name: "test-user".into(),
        access_key_id: first.access_key_id.clone(),
        status: "Inactive".into(),
    })
    .await
    .unwrap();
    let listed = iam
        .list_access_keys(pb::ListAccessKeysRequest { user_name: "test-user".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let statuses: Vec<(String, String)> =
        listed.access_key_metadata.iter().map(|k| (k.access_key_id.clone(), k.status.clone())).collect();
    assert_eq!(
        statuses,
        [
            (first.access_key_id.clone(), "Inactive".to_string()),
            (second.access_key_id.clone(), "Active".to_string())
        ]
    );
    // The listing never shows a secret (the message has no such field) and is redacted in Debug.
    assert!(!format!("{listed:?}").contains(&first.secret_access_key));
    assert!(!format!("{first:?}").contains(&first.secret_access_key));
    // A user with keys cannot be deleted; delete the keys first.
    expect_error(
        iam.delete_user(pb::DeleteUserRequest { user_name: "test-user".into() }).await,
        Code::FailedPrecondition,
        "DeleteConflict",
    );
    for k in [&first, &second] {
        iam.delete_access_key(pb::DeleteAccessKeyRequest {
            user_name: "test-user".into(),
            access_key_id: k.access_key_id.clone(),
        })
        .await
        .unwrap();
    }
    expect_error(
        iam.delete_access_key(pb::DeleteAccessKeyRequest {
            user_name: "test-user".into(),
            access_key_id: first.access_key_id.clone(),
        })
        .await,
        Code::NotFound,
        "NoSuchEntity",
    );
    iam.delete_user(pb::DeleteUserRequest { user_name: "test-user".into() }).await.unwrap();
    expect_error(
        iam.get_user(pb::GetUserRequest { user_name: "test-user".into() }).await,
        Code::NotFound,
        "NoSuchEntity",
    );
}
