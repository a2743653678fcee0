//! An audit trail that cannot be turned against the service: anyone can send refused
//! requests, so what they leave there is bounded; presigned authentication is not recorded
//! (it would let the URL be replayed); the file is its owner's alone.

use rolecall_api as pb;
use rolecall_server::{domain::clock::Clock, sts::GRPC_RULES};
use tonic::Code;

use crate::common::*;

/// The events written so far.
fn events(path: &std::path::Path) -> (String, Vec<serde_json::Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    let events = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (text, events)
}

#[tokio::test]
async fn unauthenticated_refusals_leave_no_body_and_at_most_100_events_a_second() {
    let (path, output) = audit_file(line!());
    let server = TestServer::start_with(move |c| c.audit.output = output).await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/", server.query_addr);
    let post = |body: String| {
        client.post(&url).header("content-type", "application/x-www-form-urlencoded").body(body).send()
    };
    // One large refused request: 900 KiB of parameters (under the body limit) from no one.
    let large = format!("Action=CreateUser&Version=2010-05-08&UserName={}", "a".repeat(900 * 1024));
    assert_eq!(post(large).await.unwrap().status(), 403);
    let (_, recorded) = events(&path);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["errorCode"], "MissingAuthenticationToken");
    let size = recorded[0].to_string().len();
    assert!(recorded[0]["requestParameters"].is_null() && size < 4096, "an event of {size} bytes");
    let sent = 300;
    for _ in 1..sent {
        assert_eq!(post("Action=ListUsers&Version=2010-05-08".into()).await.unwrap().status(), 403);
    }
    // In a second of its own, the next one carries the count of those dropped before it.
    server.advance(2).await;
    assert_eq!(post("Action=ListUsers&Version=2010-05-08".into()).await.unwrap().status(), 403);
    let (text, recorded) = events(&path);
    assert!(text.len() < 200 * 1024, "{} bytes for {} refusals", text.len(), sent + 1);
    let mut per_second = std::collections::BTreeMap::<String, u64>::new();
    let mut dropped = 0;
    for event in &recorded {
        assert_eq!(event["userIdentity"]["type"], "Unknown", "{event}");
        assert!(event["requestParameters"].is_null(), "parameters from no one: {}", event["eventName"]);
        *per_second.entry(event["eventTime"].as_str().unwrap().to_string()).or_default() += 1;
        dropped += event["additionalEventData"]["unauthenticatedRefusalsDropped"].as_u64().unwrap_or(0);
    }
    assert!(per_second.values().all(|n| *n <= 100), "{per_second:?}");
    assert_eq!(recorded.len() as u64 + dropped, sent + 1, "every refusal recorded or counted");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn presigned_authentication_is_not_recorded_and_the_file_is_private() {
    use rolecall_server::domain::sigv4::{self, HttpRequest, SigningCredentials, SigningOptions};
    let (path, output) = audit_file(line!());
    let server = TestServer::start_with(move |c| c.audit.output = output).await;
    role_in_profile(&server, "Web").await;
    let (instance, key) = launch(&server, 1, Some("Web")).await.remove(0);
    let token = token(&server, &instance.instance_id, &key).await;
    let creds = credentials(&server, &token, "Web").await.unwrap();
    // A presigned GET, signed for IAM with the instance's temporary credentials, of an
    // action IAM does not have: refused after authentication, with its parameters recorded.
    let host = server.query_addr.to_string();
    let headers = vec![("host".to_string(), host.clone())];
    let query = "Action=NoSuchAction&Version=2010-05-08&Marker=visible";
    let request = HttpRequest { method: "GET", path: "/", query, headers: &headers, body: b"" };
    let signing = SigningCredentials {
        access_key_id: &creds.access_key_id,
        secret_access_key: &creds.secret_access_key,
        session_token: Some(&creds.token),
    };
    let options = SigningOptions {
        region: "us-east-1",
        service: "iam",
        timestamp: server.client_clock.unix(),
        rules: rolecall_server::sts::GRPC_RULES,
        sign_body: false,
        omit_session_token: false,
    };
    let signed = sigv4::presign(&request, &signing, &options, 300);
    let url = format!("http://{host}/?{query}&{}", sigv4::encode_query(&signed.params));
    let answer = reqwest::get(&url).await.unwrap();
    assert_eq!(answer.status(), 400, "{}", answer.text().await.unwrap());
    let (text, recorded) = events(&path);
    let refused = recorded.iter().find(|e| e["eventName"] == "NoSuchAction").expect("the refusal");
    assert_eq!(refused["requestParameters"]["Marker"], "visible", "{refused}");
    for secret in [signed.signature.as_str(), creds.token.as_str(), creds.secret_access_key.as_str()] {
        assert!(!text.contains(secret), "a presigned credential is in the audit trail: {refused}");
    }
    assert!(!text.to_ascii_lowercase().contains("x-amz-signature"), "{refused}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the audit file is {mode:o}");
    }
    let _ = std::fs::remove_file(&path);
}

/// State changes are audited or not made (issue 13; Vault's audit devices fail closed the
/// same way): with an audit output that takes nothing, no door changes anything, each says
/// why, and reads still answer.
#[tokio::test]
async fn with_an_audit_trail_that_cannot_be_written_nothing_changes() {
    use rolecall_server::domain::sigv4::{self, HttpRequest, Rules, SigningCredentials, SigningOptions};
    let root = RootUser::new("audit-full", "AKIAROOTAUDITFULL000", &"f".repeat(40));
    let server = TestServer::start_with(|c| {
        c.audit.output = "/dev/full".into();
        root.configure(c);
    })
    .await;

    // gRPC, unsigned (the operator) and signed (the root user).
    let user = pb::CreateUserRequest { user_name: "unaudited".into(), ..Default::default() };
    let message =
        expect_error(server.iam().create_user(user.clone()).await, Code::Internal, "ServiceFailure");
    assert!(message.contains("audit trail"), "{message}");
    let mut as_root = pb::iam_client::IamClient::new(server.signing(root.credentials.clone(), "iam"));
    expect_error(as_root.create_user(user).await, Code::Internal, "ServiceFailure");
    let launch = pb::RunInstancesRequest {
        image_id: "ami-0abcdef1234567890".into(),
        min_count: 1,
        max_count: 1,
        ..Default::default()
    };
    expect_error(server.ec2().run_instances(launch).await, Code::Internal, "ServiceFailure");

    // The Query door's IAM and S3, signed by the root user.
    let host = server.query_addr.to_string();
    let headers = vec![("host".to_string(), host.clone())];
    let signing = SigningCredentials {
        access_key_id: &root.credentials.access_key_id,
        secret_access_key: &root.credentials.secret_access_key,
        session_token: None,
    };
    let presigned = |method: &'static str, path: &'static str, query: &'static str, service, rules| {
        let request = HttpRequest { method, path, query, headers: &headers, body: b"" };
        let options = SigningOptions {
            region: "us-east-1",
            service,
            timestamp: server.client_clock.unix(),
            rules,
            sign_body: false,
            omit_session_token: false,
        };
        let signed = sigv4::presign(&request, &signing, &options, 300);
        let separator = if query.is_empty() { "" } else { "&" };
        format!("http://{host}{path}?{query}{separator}{}", sigv4::encode_query(&signed.params))
    };
    let client = reqwest::Client::new();
    let url =
        presigned("GET", "/", "Action=CreateUser&UserName=unaudited&Version=2010-05-08", "iam", GRPC_RULES);
    let answer = client.get(url).send().await.unwrap();
    assert_eq!(answer.status(), 500);
    assert!(answer.text().await.unwrap().contains("<Code>ServiceFailure</Code>"));
    let url = presigned("PUT", "/unaudited-bucket", "", "s3", Rules::S3);
    let answer = client.put(url).send().await.unwrap();
    assert_eq!(answer.status(), 500, "{}", answer.text().await.unwrap());

    // Nothing was made; reads answer.
    assert!(user_names(&mut server.iam()).await.is_empty());
    let described = server.ec2().describe_instances(pb::DescribeInstancesRequest::default()).await.unwrap();
    assert!(described.into_inner().instances.is_empty());
    let url = presigned("GET", "/", "", "s3", Rules::S3);
    let listed = client.get(url).send().await.unwrap().text().await.unwrap();
    assert!(!listed.contains("unaudited-bucket"), "{listed}");
}

/// Issue 17: a refusal says which kind of policy decided it, as AWS's AccessDenied does, and
/// its audit event names the policy and the statement (an explicit Deny) or the kind of
/// policy none of which allowed it, so that an operator can look a refusal up.
#[tokio::test]
async fn a_refusal_names_the_policy_and_statement_that_decided_it() {
    let (path, output) = audit_file(line!());
    let server = TestServer::start_with(move |c| c.audit.output = output).await;
    let key = user_with_key(&server, "dana").await;
    let mut iam = server.iam();
    let allow_iam =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#;
    iam.put_user_policy(pb::PutUserPolicyRequest {
        user_name: "dana".into(),
        policy_name: "iam-admin".into(),
        policy_document: allow_iam.into(),
    })
    .await
    .unwrap();
    let guard = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"iam:List*","Resource":"*"},
        {"Sid":"NoNewUsers","Effect":"Deny","Action":"iam:CreateUser","Resource":"*"}]}"#;
    let create = pb::CreatePolicyRequest {
        policy_name: "guard".into(),
        policy_document: guard.into(),
        ..Default::default()
    };
    let guard_arn = iam.create_policy(create).await.unwrap().into_inner().policy.unwrap().arn;
    iam.attach_user_policy(pb::AttachUserPolicyRequest {
        user_name: "dana".into(),
        policy_arn: guard_arn.clone(),
    })
    .await
    .unwrap();
    let mut dana = rolecall_api::iam_client::IamClient::new(server.signing(long_term(&key), "iam"));

    // An explicit deny: the message names the kind of policy, the audit the policy and Sid,
    // under the request id the answer carried.
    let user = pb::CreateUserRequest { user_name: "eve".into(), ..Default::default() };
    let status = dana.create_user(user).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let msg = status.message().to_string();
    assert!(msg.ends_with("with an explicit deny in an identity-based policy"), "{msg}");
    let id = status.metadata().get("x-amzn-requestid").expect("a request id").to_str().unwrap().to_string();
    let (_, recorded) = events(&path);
    let refused = recorded.iter().find(|e| e["requestID"] == id.as_str()).expect("the refusal, by its id");
    assert_eq!(refused["eventName"], "CreateUser");
    assert_eq!(refused["errorMessage"], msg.as_str());
    assert_eq!(
        refused["additionalEventData"]["decidedBy"],
        format!("explicit deny: identity-based policy {guard_arn}, statement 2 (Sid NoNewUsers)"),
        "{refused}"
    );

    // A boundary that allows only listing: the identity policy's Allow runs into it.
    iam.put_user_permissions_boundary(pb::PutUserPermissionsBoundaryRequest {
        user_name: "dana".into(),
        permissions_boundary: guard_arn,
    })
    .await
    .unwrap();
    let role = pb::CreateRoleRequest {
        role_name: "R".into(),
        assume_role_policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into(),
        ..Default::default()
    };
    let msg = expect_error(dana.create_role(role).await, Code::PermissionDenied, "AccessDenied");
    assert!(msg.ends_with("because no permissions boundary allows the iam:CreateRole action"), "{msg}");
    let (text, recorded) = events(&path);
    let refused = recorded.iter().rev().find(|e| e["eventName"] == "CreateRole").expect("the refusal");
    assert_eq!(
        refused["additionalEventData"]["decidedBy"],
        "implicit deny: no permissions boundary allows iam:CreateRole on arn:aws:iam::123456789012:role/R",
        "{refused}"
    );
    assert!(!text.contains(&key.secret_access_key));
    dana.list_users(pb::ListUsersRequest::default()).await.unwrap();

    // The Query API answers with its request id in the body and the header alike, and the
    // audit event of the refusal records it.
    let url = format!("http://{}/?Action=GetCallerIdentity&Version=2011-06-15", server.query_addr);
    let answer = reqwest::get(&url).await.unwrap();
    assert_eq!(answer.status(), 403);
    let header = answer.headers()["x-amzn-requestid"].to_str().unwrap().to_string();
    let body = answer.text().await.unwrap();
    assert!(body.contains(&format!("<RequestId>{header}</RequestId>")), "{body}");
    let (_, recorded) = events(&path);
    assert!(recorded.iter().any(|e| e["requestID"] == header.as_str()), "no event of {header}");

    // A refused AssumeRole: AWS's message names no policy; its audit event says why, under
    // the request id of its answer.
    let ask = pb::AssumeRoleRequest {
        role_arn: "arn:aws:iam::123456789012:role/R2".into(),
        role_session_name: "dana-session".into(),
        ..Default::default()
    };
    let role = pb::CreateRoleRequest {
        role_name: "R2".into(),
        assume_role_policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into(),
        ..Default::default()
    };
    iam.create_role(role).await.unwrap();
    let status = server.sts(long_term(&key)).assume_role(ask).await.unwrap_err();
    assert!(status.message().ends_with("on resource: arn:aws:iam::123456789012:role/R2"), "{status:?}");
    let id = status.metadata().get("x-amzn-requestid").expect("a request id").to_str().unwrap().to_string();
    let (_, recorded) = events(&path);
    let refused =
        recorded.iter().find(|e| e["requestID"] == id.as_str()).expect("the AssumeRole refusal, by its id");
    assert_eq!(refused["eventName"], "AssumeRole");
    assert_eq!(
        refused["additionalEventData"]["decidedBy"],
        "implicit deny: the trust policy of arn:aws:iam::123456789012:role/R2 does not trust the caller",
        "{refused}"
    );
    let _ = std::fs::remove_file(&path);
}
