//! STS over gRPC: who signed a request, proven by SigV4 with an access key or temporary
//! credentials; AWS's codes when the proof fails.

use rolecall_api as pb;
use rolecall_server::grpc::sigv4::ClientCredentials;
use tonic::Code;

use crate::common::*;

async fn whoami(
    server: &TestServer,
    creds: ClientCredentials,
) -> Result<pb::GetCallerIdentityResponse, tonic::Status> {
    server.sts(creds).get_caller_identity(pb::GetCallerIdentityRequest {}).await.map(|r| r.into_inner())
}

/// An instance of role Web and its current credentials.
async fn instance_credentials(server: &TestServer) -> (String, pb::GetSecurityCredentialsResponse) {
    role_in_profile(server, "Web").await;
    let (instance, key) = launch(server, 1, Some("Web")).await.remove(0);
    let t = token(server, &instance.instance_id, &key).await;
    (instance.instance_id, credentials(server, &t, "Web").await.unwrap())
}

#[tokio::test]
async fn a_users_access_key_signs_get_caller_identity() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "alice").await;
    let me = whoami(&server, long_term(&key)).await.unwrap();
    assert_eq!(me.arn, "arn:aws:iam::123456789012:user/alice");
    assert_eq!(me.account, "123456789012");
    assert!(me.user_id.starts_with("AIDA"), "{}", me.user_id);
    let info = server
        .sts(long_term(&key))
        .get_access_key_info(pb::GetAccessKeyInfoRequest { access_key_id: key.access_key_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.account, "123456789012");
    // "No permissions are required to perform this operation. If an administrator attaches a
    // policy to your identity that explicitly denies access to the sts:GetCallerIdentity
    // action, you can still perform this operation."
    // (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html)
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;
    put_inline(&server, "alice", deny).await;
    assert_eq!(whoami(&server, long_term(&key)).await.unwrap().arn, me.arn);
}

#[tokio::test]
async fn inactive_deleted_unknown_and_wrong_keys_are_refused_with_aws_codes() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "bob").await;
    let mut iam = server.iam();
    let set = |status: &str| pb::UpdateAccessKeyRequest {
        user_name: "bob".into(),
        access_key_id: key.access_key_id.clone(),
        status: status.into(),
    };
    iam.update_access_key(set("Inactive")).await.unwrap();
    let msg =
        expect_error(whoami(&server, long_term(&key)).await, Code::Unauthenticated, "InvalidClientTokenId");
    assert_eq!(msg, "The security token included in the request is invalid.");
    iam.update_access_key(set("Active")).await.unwrap();
    whoami(&server, long_term(&key)).await.unwrap();

    let wrong_secret = ClientCredentials { secret_access_key: "x".repeat(40), ..long_term(&key) };
    let msg =
        expect_error(whoami(&server, wrong_secret).await, Code::Unauthenticated, "SignatureDoesNotMatch");
    assert!(msg.starts_with("The request signature we calculated does not match"), "{msg}");
    let unknown = ClientCredentials { access_key_id: "AKIAAAAAAAAAAAAAAAAA".into(), ..long_term(&key) };
    expect_error(whoami(&server, unknown).await, Code::Unauthenticated, "InvalidClientTokenId");

    iam.delete_access_key(pb::DeleteAccessKeyRequest {
        user_name: "bob".into(),
        access_key_id: key.access_key_id.clone(),
    })
    .await
    .unwrap();
    expect_error(whoami(&server, long_term(&key)).await, Code::Unauthenticated, "InvalidClientTokenId");
    assert_eq!(server.counter("rolecall_errors_total{code=\"InvalidClientTokenId\"}").await, 3);
}

#[tokio::test]
async fn an_unsigned_request_is_missing_its_authentication_token() {
    let server = TestServer::start().await;
    let unsigned = rolecall_api::sts_client::StsClient::new(server.channel.clone())
        .get_caller_identity(pb::GetCallerIdentityRequest {})
        .await;
    let msg = expect_error(unsigned, Code::Unauthenticated, "MissingAuthenticationToken");
    assert_eq!(msg, "Request is missing Authentication Token");
}

#[tokio::test]
async fn instance_credentials_are_the_assumed_role_session_of_the_instance() {
    let server = TestServer::start().await;
    let (instance_id, creds) = instance_credentials(&server).await;
    let me = whoami(&server, temporary(&creds)).await.unwrap();
    assert_eq!(me.arn, format!("arn:aws:sts::123456789012:assumed-role/Web/{instance_id}"));
    assert!(
        me.user_id.starts_with("AROA") && me.user_id.ends_with(&format!(":{instance_id}")),
        "{}",
        me.user_id
    );
}

#[tokio::test]
async fn a_stolen_session_token_alone_is_not_enough() {
    let server = TestServer::start().await;
    let (_, creds) = instance_credentials(&server).await;
    // The token with a secret of the thief's choosing: the signature does not verify.
    let guessed = ClientCredentials { secret_access_key: "y".repeat(40), ..temporary(&creds) };
    expect_error(whoami(&server, guessed).await, Code::Unauthenticated, "SignatureDoesNotMatch");
    // The token under another temporary key id: not the key it was issued with.
    let other = ClientCredentials { access_key_id: "ASIAAAAAAAAAAAAAAAAA".into(), ..temporary(&creds) };
    expect_error(whoami(&server, other).await, Code::Unauthenticated, "InvalidClientTokenId");
    // Without the token, or with a tampered one.
    let tokenless = ClientCredentials { session_token: None, ..temporary(&creds) };
    expect_error(whoami(&server, tokenless).await, Code::Unauthenticated, "InvalidClientTokenId");
    let mut tampered = creds.token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered =
        ClientCredentials { session_token: Some(String::from_utf8(tampered).unwrap()), ..temporary(&creds) };
    expect_error(whoami(&server, tampered).await, Code::Unauthenticated, "InvalidClientTokenId");
}

#[tokio::test]
async fn expired_credentials_and_skewed_clocks_are_refused() {
    let server = TestServer::start().await;
    let (_, creds) = instance_credentials(&server).await;
    whoami(&server, temporary(&creds)).await.unwrap();
    // A client clock 6 minutes ahead of the server's: outside the 5 minutes allowed.
    server.client_clock.advance(time::Duration::minutes(6));
    let msg = expect_error(
        whoami(&server, temporary(&creds)).await,
        Code::Unauthenticated,
        "SignatureDoesNotMatch",
    );
    assert!(msg.starts_with("Signature not yet current:"), "{msg}");
    server.client_clock.advance(time::Duration::minutes(-6));
    // Six hours on, the credentials have expired.
    advance(&server, 6 * 3600 + 1).await;
    let msg = expect_error(whoami(&server, temporary(&creds)).await, Code::Unauthenticated, "ExpiredToken");
    assert_eq!(msg, "The security token included in the request is expired");
}

fn trust_of(principal: &str, condition: &str) -> String {
    let condition = if condition.is_empty() { String::new() } else { format!(r#","Condition":{condition}"#) };
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"{condition}}}]}}"#
    )
}

async fn role_with_max(server: &TestServer, name: &str, trust: &str, max: i32) -> pb::Role {
    server
        .iam()
        .create_role(pb::CreateRoleRequest {
            role_name: name.into(),
            assume_role_policy_document: trust.into(),
            max_session_duration: (max > 0).then_some(max),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap()
}

fn assume(arn: &str, session: &str) -> pb::AssumeRoleRequest {
    pb::AssumeRoleRequest { role_arn: arn.into(), role_session_name: session.into(), ..Default::default() }
}

async fn assume_as(
    server: &TestServer,
    creds: ClientCredentials,
    req: pb::AssumeRoleRequest,
) -> Result<pb::AssumeRoleResponse, tonic::Status> {
    server.sts(creds).assume_role(req).await.map(|r| r.into_inner())
}

fn session_creds(r: &pb::AssumeRoleResponse) -> ClientCredentials {
    let c = r.credentials.clone().unwrap();
    ClientCredentials {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: Some(c.session_token),
    }
}

#[tokio::test]
async fn a_trust_policy_naming_the_user_lets_it_assume_the_role() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "alice").await;
    let role =
        role_with_max(&server, "Deploy", &trust_of("arn:aws:iam::123456789012:user/alice", ""), 0).await;
    let r = assume_as(&server, long_term(&key), assume(&role.arn, "build-1")).await.unwrap();
    let user = r.assumed_role_user.clone().unwrap();
    assert_eq!(user.arn, "arn:aws:sts::123456789012:assumed-role/Deploy/build-1");
    assert_eq!(user.assumed_role_id, format!("{}:build-1", role.role_id));
    assert_eq!(r.packed_policy_size, 0);
    let c = r.credentials.clone().unwrap();
    assert!(c.access_key_id.starts_with("ASIA") && c.secret_access_key.len() == 40);
    assert!(!format!("{c:?}").contains(&c.secret_access_key), "Debug redacts the secret");
    let me = whoami(&server, session_creds(&r)).await.unwrap();
    assert_eq!(me.arn, user.arn);
    assert_eq!(me.user_id, user.assumed_role_id);
    // Someone the trust policy does not name cannot.
    let bob = user_with_key(&server, "bob").await;
    let msg = expect_error(
        assume_as(&server, long_term(&bob), assume(&role.arn, "x1")).await,
        Code::PermissionDenied,
        "AccessDenied",
    );
    assert_eq!(
        msg,
        format!(
            "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: sts:AssumeRole on resource: {}",
            role.arn
        )
    );
    // Nor a role that does not exist (answered alike).
    let missing =
        assume_as(&server, long_term(&key), assume("arn:aws:iam::123456789012:role/Nope", "x1")).await;
    expect_error(missing, Code::PermissionDenied, "AccessDenied");
}

#[tokio::test]
async fn trusting_the_account_delegates_to_the_callers_own_policies() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "alice").await;
    let role = role_with_max(&server, "Ops", &trust_of("arn:aws:iam::123456789012:root", ""), 0).await;
    let denied = assume_as(&server, long_term(&key), assume(&role.arn, "s1")).await;
    expect_error(denied, Code::PermissionDenied, "AccessDenied");
    let allow = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{}"}}]}}"#,
        role.arn
    );
    put_inline(&server, "alice", &allow).await;
    assume_as(&server, long_term(&key), assume(&role.arn, "s1")).await.unwrap();
    // An explicit Deny of the caller's wins even over a trust policy naming it.
    let named =
        role_with_max(&server, "Named", &trust_of("arn:aws:iam::123456789012:user/alice", ""), 0).await;
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"*"}]}"#;
    put_inline(&server, "alice", deny).await;
    expect_error(
        assume_as(&server, long_term(&key), assume(&named.arn, "s2")).await,
        Code::PermissionDenied,
        "AccessDenied",
    );
}

#[tokio::test]
async fn external_ids_durations_and_parameters_are_checked() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "alice").await;
    let trust = trust_of(
        "arn:aws:iam::123456789012:user/alice",
        r#"{"StringEquals":{"sts:ExternalId":"partner-7"}}"#,
    );
    let role = role_with_max(&server, "Partner", &trust, 7200).await;
    let creds = || long_term(&key);
    expect_error(
        assume_as(&server, creds(), assume(&role.arn, "s1")).await,
        Code::PermissionDenied,
        "AccessDenied",
    );
    let with_id = |duration: i32| pb::AssumeRoleRequest {
        external_id: "partner-7".into(),
        duration_seconds: duration,
        ..assume(&role.arn, "s1")
    };
    assume_as(&server, creds(), with_id(0)).await.unwrap();
    assume_as(&server, creds(), with_id(900)).await.unwrap();
    assume_as(&server, creds(), with_id(7200)).await.unwrap();
    let msg = expect_error(
        assume_as(&server, creds(), with_id(899)).await,
        Code::InvalidArgument,
        "ValidationError",
    );
    assert!(msg.contains("greater than or equal to 900"), "{msg}");
    let msg = expect_error(
        assume_as(&server, creds(), with_id(7201)).await,
        Code::InvalidArgument,
        "ValidationError",
    );
    assert_eq!(msg, "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.");
    let bad_name = pb::AssumeRoleRequest { role_session_name: "a".into(), ..with_id(0) };
    expect_error(assume_as(&server, creds(), bad_name).await, Code::InvalidArgument, "ValidationError");
    let bad_chars = pb::AssumeRoleRequest { role_session_name: "has space".into(), ..with_id(0) };
    expect_error(assume_as(&server, creds(), bad_chars).await, Code::InvalidArgument, "ValidationError");
    let bad_policy = pb::AssumeRoleRequest { policy: "{".into(), ..with_id(0) };
    expect_error(
        assume_as(&server, creds(), bad_policy).await,
        Code::InvalidArgument,
        "MalformedPolicyDocument",
    );
    let bad_arn = pb::AssumeRoleRequest {
        policy_arns: vec!["arn:aws:iam::aws:policy/NoSuchPolicy".into()],
        ..with_id(0)
    };
    expect_error(assume_as(&server, creds(), bad_arn).await, Code::InvalidArgument, "ValidationError");
}

#[tokio::test]
async fn role_chaining_is_capped_at_an_hour_and_session_policies_narrow_the_session() {
    let server = TestServer::start().await;
    // An instance's role session assumes a second role that trusts the account.
    let (_, instance) = instance_credentials(&server).await;
    let admin = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    server
        .iam()
        .put_role_policy(pb::PutRolePolicyRequest {
            role_name: "Web".into(),
            policy_name: "admin".into(),
            policy_document: admin.into(),
        })
        .await
        .unwrap();
    let target =
        role_with_max(&server, "Target", &trust_of("arn:aws:iam::123456789012:root", ""), 43_200).await;
    let long = pb::AssumeRoleRequest { duration_seconds: 7200, ..assume(&target.arn, "chain") };
    let msg = expect_error(
        assume_as(&server, temporary(&instance), long).await,
        Code::InvalidArgument,
        "ValidationError",
    );
    assert_eq!(
        msg,
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
    );
    let chained = assume_as(&server, temporary(&instance), assume(&target.arn, "chain")).await.unwrap();
    assert_eq!(chained.assumed_role_user.unwrap().arn, "arn:aws:sts::123456789012:assumed-role/Target/chain");

    // Web again, narrowed by a session policy that allows only listing: it can no longer
    // assume Target, though Web's own policies allow everything.
    let web_trust = trust_of("arn:aws:iam::123456789012:root", "");
    server
        .iam()
        .update_assume_role_policy(pb::UpdateAssumeRolePolicyRequest {
            role_name: "Web".into(),
            policy_document: web_trust,
        })
        .await
        .unwrap();
    let list_only =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:List*","Resource":"*"}]}"#;
    let web_arn = "arn:aws:iam::123456789012:role/Web";
    let narrowed = pb::AssumeRoleRequest { policy: list_only.into(), ..assume(web_arn, "narrow") };
    let narrowed = assume_as(&server, temporary(&instance), narrowed).await.unwrap();
    assert!(narrowed.packed_policy_size > 0 && narrowed.packed_policy_size <= 100);
    let denied = assume_as(&server, session_creds(&narrowed), assume(&target.arn, "again")).await;
    expect_error(denied, Code::PermissionDenied, "AccessDenied");
    // Without the session policy, the same chain is allowed.
    let plain = assume_as(&server, temporary(&instance), assume(web_arn, "plain")).await.unwrap();
    assume_as(&server, session_creds(&plain), assume(&target.arn, "again")).await.unwrap();
}

/// An Iam client signing with `creds`.
fn signed_iam(
    server: &TestServer,
    creds: ClientCredentials,
) -> rolecall_api::iam_client::IamClient<rolecall_server::grpc::sigv4::Signing<tonic::transport::Channel>> {
    rolecall_api::iam_client::IamClient::new(server.signing(creds, "iam"))
}

#[tokio::test]
async fn an_instance_with_iam_read_only_lists_but_cannot_create_until_the_policy_is_detached() {
    let server = TestServer::start().await;
    let (instance_id, creds) = instance_credentials(&server).await;
    let read_only = "arn:aws:iam::aws:policy/IAMReadOnlyAccess";
    let attach = pb::AttachRolePolicyRequest { role_name: "Web".into(), policy_arn: read_only.into() };
    server.iam().attach_role_policy(attach).await.unwrap();
    let mut iam = signed_iam(&server, temporary(&creds));
    iam.list_users(pb::ListUsersRequest::default()).await.unwrap();
    let roles = iam.list_roles(pb::ListRolesRequest::default()).await.unwrap().into_inner().roles;
    assert!(roles.iter().any(|r| r.role_name == "Web"));
    let create =
        iam.create_user(pb::CreateUserRequest { user_name: "mallory".into(), ..Default::default() }).await;
    let msg = expect_error(create, Code::PermissionDenied, "AccessDenied");
    // AWS's words, the action named again at the end (as IAM answers: "… because no
    // identity-based policy allows the wafv2:CreateWebACL action", github.com/aws/aws-pdk/pull/104).
    assert_eq!(
        msg,
        format!(
            "User: arn:aws:sts::123456789012:assumed-role/Web/{instance_id} is not authorized to perform: \
             iam:CreateUser on resource: arn:aws:iam::123456789012:user/mallory because no identity-based policy allows the iam:CreateUser action"
        )
    );
    // The operator detaches the policy: the very next request is denied.
    let detach = pb::DetachRolePolicyRequest { role_name: "Web".into(), policy_arn: read_only.into() };
    server.iam().detach_role_policy(detach).await.unwrap();
    let listed = iam.list_users(pb::ListUsersRequest::default()).await;
    expect_error(listed, Code::PermissionDenied, "AccessDenied");
    assert!(server.counter("rolecall_errors_total{code=\"AccessDenied\"}").await >= 2);
}

#[tokio::test]
async fn resource_arns_and_connection_keys_decide_signed_iam_calls() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "dev-lead").await;
    for name in ["dev-1", "prod-1"] {
        server
            .iam()
            .create_user(pb::CreateUserRequest { user_name: name.into(), ..Default::default() })
            .await
            .unwrap();
    }
    let scoped = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::123456789012:user/dev-*"},
        {"Effect":"Allow","Action":"iam:ListUsers","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}},
        {"Effect":"Allow","Action":"iam:ListRoles","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"},"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}"#;
    put_inline(&server, "dev-lead", scoped).await;
    let mut iam = signed_iam(&server, long_term(&key));
    let get = |name: &str| pb::GetUserRequest { user_name: name.into() };
    assert_eq!(iam.get_user(get("dev-1")).await.unwrap().into_inner().user.unwrap().user_name, "dev-1");
    let msg = expect_error(iam.get_user(get("prod-1")).await, Code::PermissionDenied, "AccessDenied");
    assert!(msg.contains("iam:GetUser on resource: arn:aws:iam::123456789012:user/prod-1"), "{msg}");
    // From 127.0.0.1 over plaintext: not from 10/8, but loopback and not secure.
    expect_error(
        iam.list_users(pb::ListUsersRequest::default()).await,
        Code::PermissionDenied,
        "AccessDenied",
    );
    iam.list_roles(pb::ListRolesRequest::default()).await.unwrap();
}

#[tokio::test]
async fn unsigned_control_plane_calls_can_be_refused() {
    let server = TestServer::start_with(|c| c.auth.allow_unsigned = false).await;
    let unsigned = server.iam().list_users(pb::ListUsersRequest::default()).await;
    expect_error(unsigned, Code::Unauthenticated, "MissingAuthenticationToken");
    // Ec2 too: launching with someone's profile is no back door around IAM.
    let unsigned = server.ec2().describe_instances(pb::DescribeInstancesRequest::default()).await;
    expect_error(unsigned, Code::Unauthenticated, "MissingAuthenticationToken");
}

#[tokio::test]
async fn signed_ec2_calls_need_ec2_permissions_and_pass_role_for_a_profile() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let key = user_with_key(&server, "dev").await;
    let ec2 = || rolecall_api::ec2_client::Ec2Client::new(server.signing(long_term(&key), "ec2"));
    let describe = || pb::DescribeInstancesRequest::default();
    let msg =
        expect_error(ec2().describe_instances(describe()).await, Code::PermissionDenied, "AccessDenied");
    assert!(
        msg.contains("ec2:DescribeInstances on resource: arn:aws:ec2:us-east-1:123456789012:instance/*"),
        "{msg}"
    );
    put_inline(
        &server,
        "dev",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:Describe*","ec2:RunInstances","ec2:TerminateInstances"],"Resource":"*"}]}"#,
    )
    .await;
    ec2().describe_instances(describe()).await.unwrap();
    let launch = |profile: Option<&str>| pb::RunInstancesRequest {
        image_id: "ami-0abcdef1234567890".into(),
        iam_instance_profile: profile
            .map(|p| pb::IamInstanceProfileSpecification { name: p.into(), ..Default::default() }),
        ..Default::default()
    };
    ec2().run_instances(launch(None)).await.unwrap();
    let msg =
        expect_error(ec2().run_instances(launch(Some("Web"))).await, Code::PermissionDenied, "AccessDenied");
    assert!(msg.contains("iam:PassRole on resource: arn:aws:iam::123456789012:role/Web"), "{msg}");
    // Termination is checked per instance: an instance ARN the policy does not cover is refused.
    let (other, _) = launch_with(&server, 1, None, "optional").await.remove(0);
    put_inline(
        &server,
        "dev",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:TerminateInstances","Resource":"arn:aws:ec2:us-east-1:123456789012:instance/i-0000000000000000f"}]}"#,
    )
    .await;
    let terminate = pb::TerminateInstancesRequest { instance_ids: vec![other.instance_id.clone()] };
    let msg =
        expect_error(ec2().terminate_instances(terminate).await, Code::PermissionDenied, "AccessDenied");
    assert!(msg.contains(&other.instance_id), "{msg}");
}

#[tokio::test]
async fn revoking_a_roles_sessions_cuts_off_stolen_credentials_and_instances_get_new_ones() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let read_only = pb::AttachRolePolicyRequest {
        role_name: "Web".into(),
        policy_arn: "arn:aws:iam::aws:policy/IAMReadOnlyAccess".into(),
    };
    server.iam().attach_role_policy(read_only).await.unwrap();
    let (instance, key) = launch(&server, 1, Some("Web")).await.remove(0);
    let t = token(&server, &instance.instance_id, &key).await;
    let stolen = credentials(&server, &t, "Web").await.unwrap();
    signed_iam(&server, temporary(&stolen)).list_users(pb::ListUsersRequest::default()).await.unwrap();

    advance(&server, 1).await;
    let revoked = server
        .iam()
        .revoke_role_sessions(pb::RevokeRoleSessionsRequest { role_name: "Web".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.revoked_before.ends_with('Z'));
    let denied = signed_iam(&server, temporary(&stolen)).list_users(pb::ListUsersRequest::default()).await;
    let msg = expect_error(denied, Code::PermissionDenied, "AccessDenied");
    assert!(msg.ends_with("with an explicit deny in an identity-based policy"), "{msg}");
    // Who am I is still answered.
    whoami(&server, temporary(&stolen)).await.unwrap();
    // The instance's next fetch gets credentials issued after the revocation, which work.
    let fresh = credentials(&server, &t, "Web").await.unwrap();
    assert_ne!(fresh.access_key_id, stolen.access_key_id);
    signed_iam(&server, temporary(&fresh)).list_users(pb::ListUsersRequest::default()).await.unwrap();
    // The revocation is an inline policy the operator can see.
    let policies = server
        .iam()
        .list_role_policies(pb::ListRolePoliciesRequest { role_name: "Web".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(policies.policy_names, ["AWSRevokeOlderSessions"]);
}

#[tokio::test]
async fn the_audit_trail_records_issuance_assume_role_changes_and_refusals_without_secrets() {
    let (path, output) = audit_file(line!());
    let server = TestServer::start_with(move |c| c.audit.output = output).await;
    let key = user_with_key(&server, "alice").await;
    let role =
        role_with_max(&server, "Deploy", &trust_of("arn:aws:iam::123456789012:user/alice", ""), 0).await;
    let (instance, instance_key) = {
        role_in_profile(&server, "Web").await;
        launch(&server, 1, Some("Web")).await.remove(0)
    };
    let t = token(&server, &instance.instance_id, &instance_key).await;
    let instance_creds = credentials(&server, &t, "Web").await.unwrap();
    let assumed = assume_as(&server, long_term(&key), assume(&role.arn, "audit-1")).await.unwrap();
    let session = assumed.credentials.clone().unwrap();
    let bob = user_with_key(&server, "bob").await;
    expect_error(
        assume_as(&server, long_term(&bob), assume(&role.arn, "x1")).await,
        Code::PermissionDenied,
        "AccessDenied",
    );
    let wrong = ClientCredentials { secret_access_key: "z".repeat(40), ..long_term(&key) };
    expect_error(whoami(&server, wrong).await, Code::Unauthenticated, "SignatureDoesNotMatch");
    let denied = signed_iam(&server, long_term(&key))
        .create_user(pb::CreateUserRequest { user_name: "eve".into(), ..Default::default() })
        .await;
    expect_error(denied, Code::PermissionDenied, "AccessDenied");

    let text = std::fs::read_to_string(&path).unwrap();
    let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let find = |name: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        events
            .iter()
            .find(|e| e["eventName"] == name && pred(e))
            .unwrap_or_else(|| panic!("no {name} event in {text}"))
            .clone()
    };
    let created = find("CreateUser", &|e| e["requestParameters"]["UserName"] == "alice");
    assert_eq!(created["eventSource"], "iam.amazonaws.com");
    assert_eq!(created["userIdentity"]["type"], "Root");
    assert!(
        created["eventTime"].as_str().unwrap().ends_with('Z')
            && created["eventID"].as_str().unwrap().len() == 36
    );
    find("CreateAccessKey", &|e| e["requestParameters"]["UserName"] == "bob");
    find("RunInstances", &|e| e["eventSource"] == "ec2.amazonaws.com");
    let issued = find("AssumeRole", &|e| e["userIdentity"]["invokedBy"] == "ec2.amazonaws.com");
    assert_eq!(
        issued["responseElements"]["credentials"]["accessKeyId"],
        instance_creds.access_key_id.as_str()
    );
    assert_eq!(issued["requestParameters"]["roleSessionName"], instance.instance_id.as_str());
    let by_alice =
        find("AssumeRole", &|e| e["userIdentity"]["arn"] == "arn:aws:iam::123456789012:user/alice");
    assert_eq!(by_alice["responseElements"]["credentials"]["accessKeyId"], session.access_key_id.as_str());
    assert_eq!(by_alice["userIdentity"]["accessKeyId"], key.access_key_id.as_str());
    find("AssumeRole", &|e| e["errorCode"] == "AccessDenied" && e["userIdentity"]["userName"] == "bob");
    find("GetCallerIdentity", &|e| {
        e["errorCode"] == "SignatureDoesNotMatch"
            && e["userIdentity"]["accessKeyId"] == key.access_key_id.as_str()
    });
    let refused = find("CreateUser", &|e| e["errorCode"] == "AccessDenied");
    assert_eq!(refused["sourceIPAddress"], "127.0.0.1");

    // No secret of any kind is in the trail.
    for secret in [
        key.secret_access_key.as_str(),
        bob.secret_access_key.as_str(),
        instance_creds.secret_access_key.as_str(),
        instance_creds.token.as_str(),
        session.secret_access_key.as_str(),
        session.session_token.as_str(),
        instance_key.as_str(),
        t.as_str(),
    ] {
        assert!(!text.contains(secret), "a secret leaked into the audit trail");
    }
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn sessions_of_a_deleted_role_do_not_carry_over_to_a_new_role_of_the_same_name() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "alice").await;
    let trust = trust_of("arn:aws:iam::123456789012:user/alice", "");
    let read_only = "arn:aws:iam::aws:policy/IAMReadOnlyAccess";
    let make = || async {
        let role = role_with_max(&server, "Tmp", &trust, 0).await;
        let attach = pb::AttachRolePolicyRequest { role_name: "Tmp".into(), policy_arn: read_only.into() };
        server.iam().attach_role_policy(attach).await.unwrap();
        role
    };
    let role = make().await;
    let old = assume_as(&server, long_term(&key), assume(&role.arn, "s1")).await.unwrap();
    signed_iam(&server, session_creds(&old)).list_users(pb::ListUsersRequest::default()).await.unwrap();
    let detach = pb::DetachRolePolicyRequest { role_name: "Tmp".into(), policy_arn: read_only.into() };
    server.iam().detach_role_policy(detach).await.unwrap();
    server.iam().delete_role(pb::DeleteRoleRequest { role_name: "Tmp".into() }).await.unwrap();
    let again = make().await;
    assert_ne!(again.role_id, role.role_id);
    let stale = signed_iam(&server, session_creds(&old)).list_users(pb::ListUsersRequest::default()).await;
    expect_error(stale, Code::PermissionDenied, "AccessDenied");
    // A session of the new role works.
    let new = assume_as(&server, long_term(&key), assume(&again.arn, "s2")).await.unwrap();
    signed_iam(&server, session_creds(&new)).list_users(pb::ListUsersRequest::default()).await.unwrap();
}

#[tokio::test]
async fn session_tags_need_sts_tag_session_and_meet_its_conditions() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "alice").await;
    let alice = "arn:aws:iam::123456789012:user/alice";
    let role = role_with_max(&server, "Deploy", &trust_of(alice, ""), 0).await;
    let tagged = |arn: &str, team: &str| pb::AssumeRoleRequest {
        tags: vec![pb::StsTag { key: "team".into(), value: team.into() }],
        ..assume(arn, "tagged")
    };
    // The trust policy allows sts:AssumeRole only: untagged sessions, yes; tagged, no.
    assume_as(&server, long_term(&key), assume(&role.arn, "plain")).await.unwrap();
    let msg = expect_error(
        assume_as(&server, long_term(&key), tagged(&role.arn, "blue")).await,
        Code::PermissionDenied,
        "AccessDenied",
    );
    assert_eq!(
        msg,
        format!("User: {alice} is not authorized to perform: sts:TagSession on resource: {}", role.arn)
    );
    // sts:TagSession with a condition on the tags requested.
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{alice}"}},"Action":"sts:AssumeRole"}},{{"Effect":"Allow","Principal":{{"AWS":"{alice}"}},"Action":"sts:TagSession","Condition":{{"StringEquals":{{"aws:RequestTag/team":"blue"}},"ForAllValues:StringEquals":{{"aws:TagKeys":["team"]}}}}}}]}}"#
    );
    let conditional = role_with_max(&server, "Tagged", &trust, 0).await;
    let blue = assume_as(&server, long_term(&key), tagged(&conditional.arn, "blue")).await.unwrap();
    assert_eq!(blue.assumed_role_user.unwrap().arn, "arn:aws:sts::123456789012:assumed-role/Tagged/tagged");
    expect_error(
        assume_as(&server, long_term(&key), tagged(&conditional.arn, "red")).await,
        Code::PermissionDenied,
        "AccessDenied",
    );
}

const ROOT_ID: &str = "AKIAROOTEXAMPLE23456";
const ROOT_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYROOTSECRET1";

#[tokio::test]
async fn the_root_key_from_the_environment_bootstraps_a_server_that_refuses_unsigned_calls() {
    let served = serve_binary(
        &["--storage", "memory", "--deny-unsigned", "--root-access-key-id", ROOT_ID],
        &[("ROLECALL_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)],
    )
    .await;
    let channel = served.channel().await;
    let signed = |creds: ClientCredentials, service: &'static str| {
        let clock = std::sync::Arc::new(rolecall_server::domain::clock::SystemClock::default());
        rolecall_server::grpc::sigv4::Signing::new(
            channel.clone(),
            creds,
            served.addr.clone(),
            "us-east-1",
            service,
            clock,
        )
    };
    let root = || ClientCredentials {
        access_key_id: ROOT_ID.into(),
        secret_access_key: ROOT_SECRET.into(),
        session_token: None,
    };
    let unsigned = rolecall_api::iam_client::IamClient::new(channel.clone())
        .create_user(pb::CreateUserRequest { user_name: "alice".into(), ..Default::default() })
        .await;
    expect_error(unsigned, Code::Unauthenticated, "MissingAuthenticationToken");

    // Root signs what the operator used to do unsigned: a user, her key, her policy.
    let mut iam = rolecall_api::iam_client::IamClient::new(signed(root(), "iam"));
    let key = user_with_key_via(signed(root(), "iam"), "alice").await;
    iam.attach_user_policy(pb::AttachUserPolicyRequest {
        user_name: "alice".into(),
        policy_arn: "arn:aws:iam::aws:policy/IAMReadOnlyAccess".into(),
    })
    .await
    .unwrap();
    let me = rolecall_api::sts_client::StsClient::new(signed(root(), "sts"))
        .get_caller_identity(pb::GetCallerIdentityRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((me.arn.as_str(), me.user_id.as_str()), ("arn:aws:iam::123456789012:root", "123456789012"));

    // Alice is held to her policy; root is not allowed to assume a role, as in AWS.
    let mut as_alice = rolecall_api::iam_client::IamClient::new(signed(long_term(&key), "iam"));
    assert_eq!(
        as_alice.list_users(pb::ListUsersRequest::default()).await.unwrap().into_inner().users.len(),
        1
    );
    let create =
        as_alice.create_user(pb::CreateUserRequest { user_name: "mallory".into(), ..Default::default() });
    expect_error(create.await, Code::PermissionDenied, "AccessDenied");
    iam.create_role(pb::CreateRoleRequest {
        role_name: "Ops".into(),
        assume_role_policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let assume = rolecall_api::sts_client::StsClient::new(signed(root(), "sts"))
        .assume_role(pb::AssumeRoleRequest {
            role_arn: "arn:aws:iam::123456789012:role/Ops".into(),
            role_session_name: "root".into(),
            ..Default::default()
        })
        .await;
    let msg = expect_error(assume, Code::PermissionDenied, "AccessDenied");
    assert!(msg.contains("Roles may not be assumed by root accounts."), "{msg}");

    // The wrong secret for root's key id is refused like any other.
    let forged = ClientCredentials { secret_access_key: "x".repeat(40), ..root() };
    let refused = rolecall_api::iam_client::IamClient::new(signed(forged, "iam"))
        .list_users(pb::ListUsersRequest::default())
        .await;
    expect_error(refused, Code::Unauthenticated, "SignatureDoesNotMatch");
    let (_, log) = served.stop("TERM").await;
    assert!(!log.contains(ROOT_SECRET), "the root secret is never logged");
}

#[tokio::test]
async fn a_root_key_without_its_secret_or_of_the_wrong_shape_is_refused_at_start() {
    let start = |args: &[&str], env: &[(&str, &str)]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rolecall"))
            .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "none", "--storage", "memory"])
            .args(args)
            .env_remove("ROLECALL_ROOT_SECRET_ACCESS_KEY")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let no_secret = start(&["--root-access-key-id", ROOT_ID], &[]);
    assert!(!no_secret.status.success());
    assert!(String::from_utf8_lossy(&no_secret.stderr).contains("ROLECALL_ROOT_SECRET_ACCESS_KEY"));
    let bad_id =
        start(&["--root-access-key-id", "root"], &[("ROLECALL_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)]);
    assert!(String::from_utf8_lossy(&bad_id.stderr).contains("auth.root_access_key_id must be AKIA"));
    let short = start(&["--root-access-key-id", ROOT_ID], &[("ROLECALL_ROOT_SECRET_ACCESS_KEY", "short")]);
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 40 printable characters"));
}
