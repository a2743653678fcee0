//! gRPC's one-message rule: a unary call's body is exactly one message, and the request
//! that is authorized is the one that runs. The attacks below worked before rolecall
//! enforced it: a signed body holding the real request and then a second, empty frame
//! (`00 00000000`) was authorized as an empty request and run as the real one.
//!
//! Statuses: grpc.io's status codes guide (https://grpc.io/docs/guides/status-codes):
//! "Request cardinality violation" and "Compression mechanism used by client not supported
//! at the server" are UNIMPLEMENTED; "Error parsing request proto" is INTERNAL.

use rolecall_api as pb;
use tonic::Code;

use crate::common::*;

/// The empty frame that made the attack: flag 0, length 0.
const EMPTY_FRAME: [u8; 5] = [0, 0, 0, 0, 0];

/// `message` followed by an empty frame.
fn two_frames(message: &impl prost::Message) -> Vec<u8> {
    [frame(message), EMPTY_FRAME.to_vec()].concat()
}

/// An administrator role, in an instance profile of the same name.
async fn admin_profile(server: &TestServer) {
    create_role(server, "Admin", EC2_TRUST).await;
    let mut iam = server.iam();
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    iam.attach_role_policy(pb::AttachRolePolicyRequest {
        role_name: "Admin".into(),
        policy_arn: admin.into(),
    })
    .await
    .unwrap();
    let profile =
        pb::CreateInstanceProfileRequest { instance_profile_name: "Admin".into(), ..Default::default() };
    iam.create_instance_profile(profile).await.unwrap();
    let add = pb::AddRoleToInstanceProfileRequest {
        instance_profile_name: "Admin".into(),
        role_name: "Admin".into(),
    };
    iam.add_role_to_instance_profile(add).await.unwrap();
}

/// The instances the operator sees.
async fn instance_count(server: &TestServer) -> usize {
    let all = server.ec2().describe_instances(pb::DescribeInstancesRequest::default()).await.unwrap();
    all.into_inner().instances.len()
}

#[tokio::test]
async fn a_second_frame_does_not_launch_an_instance_with_someone_elses_role() {
    let server = TestServer::start().await;
    admin_profile(&server).await;
    let key = user_with_key(&server, "launcher").await;
    let launch_only = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["ec2:RunInstances","ec2:DescribeInstances"],"Resource":"*"}]}"#;
    put_inline(&server, "launcher", launch_only).await;
    let signed = server.signing(long_term(&key), "ec2");
    let request = pb::RunInstancesRequest {
        image_id: "ami-0abcdef1234567890".into(),
        min_count: 1,
        max_count: 1,
        iam_instance_profile: Some(pb::IamInstanceProfileSpecification {
            name: "Admin".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let path = "/rolecall.v1.Ec2/RunInstances";
    // One frame: refused, as it should be (no iam:PassRole on Admin).
    let (status, _) = raw_call(signed.clone(), path, frame(&request), &[]).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("iam:PassRole on resource: arn:aws:iam::123456789012:role/Admin"));
    // Two frames: refused before anything reads the message.
    let (status, _) = raw_call(signed, path, two_frames(&request), &[]).await;
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(reason(&status), "RequestCardinalityViolation");
    assert_eq!(instance_count(&server).await, 0, "no instance was launched");
}

#[tokio::test]
async fn a_second_frame_does_not_get_past_an_explicit_deny_and_the_refusal_is_audited() {
    let (path, output) = audit_file(line!());
    let server = TestServer::start_with(move |c| c.audit.output = output).await;
    create_role(&server, "Admin", EC2_TRUST).await;
    let key = user_with_key(&server, "almost-admin").await;
    let all_but_admin = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"iam:*","Resource":"*"},
        {"Effect":"Deny","Action":"iam:*","Resource":"arn:aws:iam::123456789012:role/Admin"}]}"#;
    put_inline(&server, "almost-admin", all_but_admin).await;
    let signed = server.signing(long_term(&key), "iam");
    let request = pb::PutRolePolicyRequest {
        role_name: "Admin".into(),
        policy_name: "mine".into(),
        policy_document:
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#.into(),
    };
    let path_of = "/rolecall.v1.Iam/PutRolePolicy";
    let (status, _) = raw_call(signed.clone(), path_of, frame(&request), &[]).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let (status, _) = raw_call(signed, path_of, two_frames(&request), &[]).await;
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    let names = server
        .iam()
        .list_role_policies(pb::ListRolePoliciesRequest { role_name: "Admin".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .policy_names;
    assert!(names.is_empty(), "{names:?}");
    // The refusal is in the audit trail with the request that was decided on.
    drop(server);
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let refused: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["eventName"] == "PutRolePolicy" && e["errorCode"] == "AccessDenied")
        .collect();
    assert_eq!(refused.len(), 1, "{text}");
    assert_eq!(refused[0]["requestParameters"]["RoleName"], "Admin", "{text}");
    assert_eq!(refused[0]["requestParameters"]["PolicyName"], "mine", "{text}");
    assert_eq!(refused[0]["userIdentity"]["userName"], "almost-admin", "{text}");
}

#[tokio::test]
async fn a_second_frame_does_not_terminate_an_instance_one_may_not_terminate() {
    let server = TestServer::start().await;
    let launched = launch(&server, 1, None).await;
    let id = launched[0].0.instance_id.clone();
    let key = user_with_key(&server, "operator-2").await;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Effect":"Allow","Action":"ec2:*","Resource":"*"}},
        {{"Effect":"Deny","Action":"ec2:TerminateInstances","Resource":"arn:aws:ec2:us-east-1:123456789012:instance/{id}"}}]}}"#
    );
    put_inline(&server, "operator-2", &policy).await;
    let signed = server.signing(long_term(&key), "ec2");
    let request = pb::TerminateInstancesRequest { instance_ids: vec![id.clone()] };
    let path = "/rolecall.v1.Ec2/TerminateInstances";
    let (status, _) = raw_call(signed.clone(), path, frame(&request), &[]).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let (status, _) = raw_call(signed, path, two_frames(&request), &[]).await;
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    let described = server
        .ec2()
        .describe_instances(pb::DescribeInstancesRequest { instance_ids: vec![id], ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.instances[0].state.as_ref().unwrap().name, "running");
}

#[tokio::test]
async fn every_malformed_framing_is_refused_with_its_status_signed_or_not() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "framer").await;
    put_inline(
        &server,
        "framer",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#,
    )
    .await;
    let message = frame(&pb::GetUserRequest { user_name: "framer".into() });
    let mut compressed = message.clone();
    compressed[0] = 1;
    let mut long = message.clone();
    long[4] += 9;
    /// What is wrong, the body, its headers, the status and AWS-style code, words of the message.
    type Malformed<'a> = (&'a str, Vec<u8>, &'a [(&'a str, &'a str)], Code, &'a str, &'a str);
    #[rustfmt::skip]
    let cases: Vec<Malformed<'_>> = vec![
        ("two messages", two_frames(&pb::GetUserRequest { user_name: "framer".into() }), &[],
            Code::Unimplemented, "RequestCardinalityViolation", "exactly one request message"),
        ("no message", vec![], &[], Code::Unimplemented, "RequestCardinalityViolation", "holds none"),
        ("a truncated length", vec![0, 0, 0], &[], Code::Internal, "MalformedMessage", "inside a message prefix"),
        ("trailing bytes", [message.clone(), vec![0, 0]].concat(), &[],
            Code::Internal, "MalformedMessage", "2 bytes follow the message"),
        ("the compressed flag, nothing negotiated", compressed.clone(), &[],
            Code::Internal, "MalformedMessage", "no grpc-encoding"),
        ("gzip, which the server does not accept", compressed, &[("grpc-encoding", "gzip")],
            Code::Unimplemented, "UnsupportedMessageEncoding", "compressed with gzip"),
        ("gzip declared, the message not compressed", message.clone(), &[("grpc-encoding", "gzip")],
            Code::Unimplemented, "UnsupportedMessageEncoding", "compressed with gzip"),
        ("a length larger than the body", long, &[], Code::Internal, "MalformedMessage", "declares"),
    ];
    let signed = server.signing(long_term(&key), "iam");
    for (what, body, headers, code, aws, words) in cases {
        for (who, status) in [
            (
                "unsigned",
                raw_call(server.channel.clone(), "/rolecall.v1.Iam/GetUser", body.clone(), headers).await.0,
            ),
            ("signed", raw_call(signed.clone(), "/rolecall.v1.Iam/GetUser", body.clone(), headers).await.0),
        ] {
            assert_eq!(status.code(), code, "{what}, {who}: {status:?}");
            assert_eq!(reason(&status), aws, "{what}, {who}: {status:?}");
            assert!(status.message().contains(words), "{what}, {who}: {status:?}");
        }
    }
    // The one well-framed message is served, both ways; Sts and InstanceMetadata keep the
    // rule too.
    for channel in [server.channel.clone()] {
        let (status, _) = raw_call(channel, "/rolecall.v1.Iam/GetUser", message.clone(), &[]).await;
        assert_eq!(status.code(), Code::Ok, "{status:?}");
    }
    let (status, _) = raw_call(signed, "/rolecall.v1.Iam/GetUser", message, &[]).await;
    assert_eq!(status.code(), Code::Ok, "{status:?}");
    let identity = two_frames(&pb::GetCallerIdentityRequest {});
    let sts = server.signing(long_term(&key), "sts");
    let (status, _) = raw_call(sts, "/rolecall.v1.Sts/GetCallerIdentity", identity, &[]).await;
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    let token = two_frames(&pb::GetTokenRequest::default());
    let (status, _) =
        raw_call(server.channel.clone(), "/rolecall.v1.InstanceMetadata/GetToken", token, &[]).await;
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}

#[tokio::test]
async fn with_every_call_signed_the_second_frame_is_refused_too_and_before_authentication() {
    let root = RootUser::new("framing", "AKIAROOTFRAMING00000", &"r".repeat(40));
    let server = TestServer::start_with(|c| {
        c.auth.allow_unsigned = false;
        root.configure(c);
    })
    .await;
    let root_channel = server.signing(root.credentials.clone(), "iam");
    let mut as_root = rolecall_api::iam_client::IamClient::new(root_channel.clone());
    let role = pb::CreateRoleRequest {
        role_name: "Admin".into(),
        assume_role_policy_document: EC2_TRUST.into(),
        ..Default::default()
    };
    as_root.create_role(role).await.unwrap();
    let key = user_with_key_via(root_channel, "almost-admin").await;
    let policy = pb::PutUserPolicyRequest {
        user_name: "almost-admin".into(),
        policy_name: "p".into(),
        policy_document: r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"iam:*","Resource":"*"},
            {"Effect":"Deny","Action":"iam:*","Resource":"arn:aws:iam::123456789012:role/Admin"}]}"#
            .into(),
    };
    as_root.put_user_policy(policy).await.unwrap();
    let request = pb::DeleteRoleRequest { role_name: "Admin".into() };
    let signed = server.signing(long_term(&key), "iam");
    let (status, _) = raw_call(signed.clone(), "/rolecall.v1.Iam/DeleteRole", frame(&request), &[]).await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let (status, _) = raw_call(signed, "/rolecall.v1.Iam/DeleteRole", two_frames(&request), &[]).await;
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    as_root.get_role(pb::GetRoleRequest { role_name: "Admin".into() }).await.unwrap();
    // Unsigned: the framing is refused first; one well-framed message is then unsigned.
    let unsigned = server.channel.clone();
    let (status, _) =
        raw_call(unsigned.clone(), "/rolecall.v1.Iam/DeleteRole", two_frames(&request), &[]).await;
    assert_eq!(reason(&status), "RequestCardinalityViolation", "{status:?}");
    let (status, _) = raw_call(unsigned, "/rolecall.v1.Iam/DeleteRole", frame(&request), &[]).await;
    assert_eq!(reason(&status), "MissingAuthenticationToken", "{status:?}");
}
