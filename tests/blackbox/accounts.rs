//! Several accounts on one server: separate entities, cross-account AssumeRole with
//! sts:ExternalId, and instances of another account.

use rolecall_api as pb;
use rolecall_server::grpc::sigv4::ClientCredentials;
use tonic::Code;

use crate::common::*;

const A: &str = "123456789012";
const B: &str = "111122223333";

fn creds_of(c: &pb::StsCredentials) -> ClientCredentials {
    ClientCredentials {
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        session_token: Some(c.session_token.clone()),
    }
}

#[tokio::test]
async fn cross_account_roles_need_both_sides_and_the_external_id() {
    let server = TestServer::start_with(|c| c.accounts = vec![B.to_string()]).await;
    let mut iam = server.iam();
    // Account B's role trusts account A, with an external id.
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:root"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"ext-42"}}}}}}]}}"#
    );
    let role = iam
        .create_role(in_account(
            B,
            pb::CreateRoleRequest {
                role_name: "Partner".into(),
                assume_role_policy_document: trust,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_eq!(role.arn, format!("arn:aws:iam::{B}:role/Partner"));
    // Each account sees its own entities only.
    let missing = iam.get_role(pb::GetRoleRequest { role_name: "Partner".into() }).await;
    expect_error(missing, Code::NotFound, "NoSuchEntity");
    iam.get_role(in_account(B, pb::GetRoleRequest { role_name: "Partner".into() })).await.unwrap();
    let unknown = iam.list_roles(in_account("999999999999", pb::ListRolesRequest::default())).await;
    expect_error(unknown, Code::InvalidArgument, "InvalidInput");

    // alice, in account A.
    let key = user_with_key(&server, "alice").await;
    let alice = ClientCredentials {
        access_key_id: key.access_key_id.clone(),
        secret_access_key: key.secret_access_key.clone(),
        session_token: None,
    };
    let ask = |external_id: &str| pb::AssumeRoleRequest {
        role_arn: role.arn.clone(),
        role_session_name: "partner-sync".into(),
        external_id: external_id.into(),
        ..Default::default()
    };
    // B trusts A, but A has not allowed alice to assume it.
    let denied = server.sts(alice.clone()).assume_role(ask("ext-42")).await;
    expect_error(denied, Code::PermissionDenied, "AccessDenied");
    let allow = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{}"}}]}}"#,
        role.arn
    );
    iam.put_user_policy(pb::PutUserPolicyRequest {
        user_name: "alice".into(),
        policy_name: "partner".into(),
        policy_document: allow,
    })
    .await
    .unwrap();
    // Now both sides allow, but only with the external id.
    expect_error(
        server.sts(alice.clone()).assume_role(ask("")).await,
        Code::PermissionDenied,
        "AccessDenied",
    );
    expect_error(
        server.sts(alice.clone()).assume_role(ask("ext-41")).await,
        Code::PermissionDenied,
        "AccessDenied",
    );
    let assumed = server.sts(alice.clone()).assume_role(ask("ext-42")).await.unwrap().into_inner();
    let session = creds_of(assumed.credentials.as_ref().unwrap());
    let me = server
        .sts(session.clone())
        .get_caller_identity(pb::GetCallerIdentityRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.account, B);
    assert_eq!(me.arn, format!("arn:aws:sts::{B}:assumed-role/Partner/partner-sync"));
    // The session acts in account B: with B's policies, on B's entities.
    let signed = rolecall_api::iam_client::IamClient::new(server.signing(session.clone(), "iam"))
        .get_role(pb::GetRoleRequest { role_name: "Partner".into() })
        .await;
    expect_error(signed, Code::PermissionDenied, "AccessDenied");
    iam.put_role_policy(in_account(B, pb::PutRolePolicyRequest {
        role_name: "Partner".into(),
        policy_name: "read".into(),
        policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:Get*","Resource":"*"}]}"#.into(),
    }))
    .await
    .unwrap();
    let got = rolecall_api::iam_client::IamClient::new(server.signing(session, "iam"))
        .get_role(pb::GetRoleRequest { role_name: "Partner".into() })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_eq!(got.arn, role.arn);
}

#[tokio::test]
async fn instances_of_another_account_get_that_accounts_role() {
    let server = TestServer::start_with(|c| c.accounts = vec![B.to_string()]).await;
    let mut iam = server.iam();
    iam.create_role(in_account(
        B,
        pb::CreateRoleRequest {
            role_name: "Web".into(),
            assume_role_policy_document: EC2_TRUST.into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    let profile = iam
        .create_instance_profile(in_account(
            B,
            pb::CreateInstanceProfileRequest { instance_profile_name: "Web".into(), ..Default::default() },
        ))
        .await
        .unwrap()
        .into_inner()
        .instance_profile
        .unwrap();
    assert_eq!(profile.arn, format!("arn:aws:iam::{B}:instance-profile/Web"));
    iam.add_role_to_instance_profile(in_account(
        B,
        pb::AddRoleToInstanceProfileRequest { instance_profile_name: "Web".into(), role_name: "Web".into() },
    ))
    .await
    .unwrap();
    let mut stream = server
        .ec2()
        .run_instances(in_account(
            B,
            pb::RunInstancesRequest {
                image_id: "ami-1".into(),
                min_count: 1,
                max_count: 1,
                iam_instance_profile: Some(pb::IamInstanceProfileSpecification {
                    name: "Web".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let page = stream.message().await.unwrap().unwrap();
    let launched = page.instances[0].clone();
    // Account A does not see B's instance.
    let mut ec2 = server.ec2();
    let described = ec2.describe_instances(pb::DescribeInstancesRequest {
        instance_ids: vec![launched.instance.as_ref().unwrap().instance_id.clone()],
        ..Default::default()
    });
    expect_error(described.await, Code::NotFound, "InvalidInstanceID.NotFound");
    let instance = launched.instance.unwrap();
    let t = token(&server, &instance.instance_id, &launched.instance_key).await;
    let creds = credentials(&server, &t, "Web").await.unwrap();
    assert_eq!(creds.account_id, B);
    let me = server
        .sts(temporary(&creds))
        .get_caller_identity(pb::GetCallerIdentityRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.arn, format!("arn:aws:sts::{B}:assumed-role/Web/{}", instance.instance_id));
}

#[tokio::test]
async fn each_account_has_its_own_root_key_when_unsigned_calls_are_refused() {
    let dir = std::env::temp_dir().join(format!("rolecall-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (root_a, root_b) =
        (("AKIAROOTAAAAAAAAAAAA", "a".repeat(40)), ("AKIAROOTBBBBBBBBBBBB", "b".repeat(40)));
    std::fs::write(dir.join("a.secret"), &root_a.1).unwrap();
    std::fs::write(dir.join("b.secret"), &root_b.1).unwrap();
    let config_dir = dir.clone();
    let server = TestServer::start_with(move |c| {
        c.accounts = vec![B.to_string()];
        c.auth.allow_unsigned = false;
        c.auth.root_access_key_id = Some(root_a.0.into());
        c.auth.root_secret_access_key_file = Some(config_dir.join("a.secret"));
        c.auth.account_roots = vec![rolecall_server::config::AccountRoot {
            account_id: B.into(),
            access_key_id: root_b.0.into(),
            secret_access_key_file: config_dir.join("b.secret"),
        }];
    })
    .await;
    let root = |(id, secret): &(&str, String)| ClientCredentials {
        access_key_id: id.to_string(),
        secret_access_key: secret.clone(),
        session_token: None,
    };
    let me = server.sts(root(&root_b)).get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap();
    assert_eq!(me.into_inner().arn, format!("arn:aws:iam::{B}:root"));
    // B's root makes a user in B, which A's root does not see in A.
    let mut iam_b = rolecall_api::iam_client::IamClient::new(server.signing(root(&root_b), "iam"));
    iam_b.create_user(pb::CreateUserRequest { user_name: "bea".into(), ..Default::default() }).await.unwrap();
    let mut iam_a = rolecall_api::iam_client::IamClient::new(server.signing(root(&root_a), "iam"));
    let in_a = iam_a.list_users(pb::ListUsersRequest::default()).await.unwrap().into_inner().users;
    assert!(in_a.is_empty(), "{in_a:?}");
    let in_b = iam_b.list_users(pb::ListUsersRequest::default()).await.unwrap().into_inner().users;
    assert_eq!(in_b[0].arn, format!("arn:aws:iam::{B}:user/bea"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 18: an account alias belongs to one account at a time, as AWS's are unique
/// (CreateAccountAlias's EntityAlreadyExists,
/// https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateAccountAlias.html); an alias
/// given up is free for another account, and replacing one frees the old.
#[tokio::test]
async fn an_account_alias_belongs_to_one_account() {
    let server = TestServer::start_with(|c| c.accounts = vec![B.to_string()]).await;
    let mut iam = server.iam();
    let alias = |name: &str| pb::CreateAccountAliasRequest { account_alias: name.into() };
    let aliases_of = |account: &'static str| {
        let mut iam = server.iam();
        async move {
            let list =
                iam.list_account_aliases(in_account(account, pb::ListAccountAliasesRequest::default()));
            list.await.unwrap().into_inner().account_aliases
        }
    };
    iam.create_account_alias(alias("example-corp")).await.unwrap();
    // Again by its owner: nothing changes.
    iam.create_account_alias(alias("example-corp")).await.unwrap();
    let taken = iam.create_account_alias(in_account(B, alias("example-corp"))).await;
    let message = expect_error(taken, Code::AlreadyExists, "EntityAlreadyExists");
    assert_eq!(message, "The account alias example-corp already exists.");
    assert!(aliases_of(B).await.is_empty());
    // A takes another: example-corp is free, and B takes it.
    iam.create_account_alias(alias("example-corp-eu")).await.unwrap();
    assert_eq!(aliases_of(A).await, ["example-corp-eu"]);
    iam.create_account_alias(in_account(B, alias("example-corp"))).await.unwrap();
    assert_eq!(aliases_of(B).await, ["example-corp"]);
    let taken = iam.create_account_alias(alias("example-corp")).await;
    expect_error(taken, Code::AlreadyExists, "EntityAlreadyExists");
    // B gives it up; A may have it back.
    let delete = pb::DeleteAccountAliasRequest { account_alias: "example-corp".into() };
    iam.delete_account_alias(in_account(B, delete)).await.unwrap();
    iam.create_account_alias(alias("example-corp")).await.unwrap();
    assert_eq!(aliases_of(A).await, ["example-corp"]);
    assert!(aliases_of(B).await.is_empty());
}
