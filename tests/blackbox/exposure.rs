//! The exposure rule (docs/configuration.md): what proves nothing about the caller (an
//! unsigned operator call, a simulation's claimed instance, TestControl) is answered only to
//! peers on this host, decided per connection from the peer's address; a wider setting is
//! explicit and announced; an IMDS token minted on a weaker proof of identity is refused by
//! a door that requires a stronger one.
//!
//! A peer "off this host" is this machine reached through one of its non-loopback addresses
//! (the connection's source address is then that address, as another host's would be).

use std::net::{IpAddr, SocketAddr};

use reqwest::StatusCode;
use rolecall_api as pb;
use rolecall_server::grpc::sigv4::Signing;
use tonic::Code;

use crate::common::*;

/// One of this machine's addresses off loopback, if it has one.
fn host_address() -> Option<IpAddr> {
    let out = std::process::Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]).output();
    let out = String::from_utf8(out.ok()?.stdout).ok()?;
    let address = out.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
    address.split('/').next()?.parse().ok()
}

/// `addr`'s port at this machine's non-loopback `host`.
fn via(host: IpAddr, addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(host, addr.port())
}

async fn channel_to(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

/// One of this machine's non-loopback addresses (None, said, where it has none).
fn off_loopback() -> Option<IpAddr> {
    let host = host_address();
    if host.is_none() {
        eprintln!("no non-loopback address: the exposure rule's peer test not run");
    }
    host
}

/// A server whose gRPC and IMDS listeners take connections on every address, and this
/// machine's address off loopback to reach it as another host would.
async fn exposed() -> Option<(TestServer, IpAddr)> {
    let host = off_loopback()?;
    let server = TestServer::start_with(|c| {
        c.listen = "0.0.0.0:0".parse().unwrap();
        c.allow_insecure_plaintext = true;
        c.imds.listen = Some("0.0.0.0:0".parse().unwrap());
    })
    .await;
    Some((server, host))
}

fn create_user(name: &str) -> pb::CreateUserRequest {
    pb::CreateUserRequest { user_name: name.into(), ..Default::default() }
}

/// Issue 13's first finding: off loopback, an unsigned client became the operator.
#[tokio::test]
async fn unsigned_calls_from_another_host_do_not_act_as_the_operator() {
    let Some((server, host)) = exposed().await else { return };
    let remote = channel_to(via(host, server.grpc_addr)).await;
    let mut iam = pb::iam_client::IamClient::new(remote.clone());
    let refused = iam.create_user(create_user("mallory")).await;
    let message = expect_error(refused, Code::Unauthenticated, "MissingAuthenticationToken");
    assert!(message.contains("only from this host"), "{message}");
    let mut ec2 = pb::ec2_client::Ec2Client::new(remote.clone());
    expect_error(
        ec2.describe_instances(pb::DescribeInstancesRequest::default()).await,
        Code::Unauthenticated,
        "MissingAuthenticationToken",
    );
    assert!(user_names(&mut server.iam()).await.is_empty(), "nothing was created");

    // The same unsigned call from this host is the operator's; a signed call from the
    // other address is authenticated and authorized as always.
    server.iam().create_user(create_user("admin")).await.unwrap();
    let key = user_with_key(&server, "alice").await;
    let signing = Signing::new(
        remote,
        long_term(&key),
        via(host, server.grpc_addr).to_string(),
        "us-east-1",
        "iam",
        server.client_clock.clone(),
    );
    let mut signed = pb::iam_client::IamClient::new(signing);
    expect_error(signed.create_user(create_user("bob")).await, Code::PermissionDenied, "AccessDenied");

    // TestControl is unsigned too: this host only.
    let mut control =
        pb::test_control_client::TestControlClient::new(channel_to(via(host, server.grpc_addr)).await);
    let moved = control.advance_clock(pb::AdvanceClockRequest { seconds: 1 }).await;
    assert_eq!(moved.unwrap_err().code(), Code::PermissionDenied);
    server.test_control().advance_clock(pb::AdvanceClockRequest { seconds: 1 }).await.unwrap();
}

/// The wider setting works, and the start-up log says so, where the default's log says
/// that only this host's peers are the operator.
#[tokio::test]
async fn widening_unsigned_calls_is_explicit_and_announced() {
    let Some(host) = off_loopback() else { return };
    let memory = ["--storage", "memory", "--listen", "0.0.0.0:0", "--allow-insecure-plaintext"];
    let default = serve_binary(&memory, &[]).await;
    let default_log = default.started.clone();
    default.stop("KILL").await;
    assert!(default_log.contains("peers on this host only"), "{default_log}");
    assert!(!default_log.contains("ANY peer"), "{default_log}");

    let wide = serve_binary(&[&memory[..], &["--allow-unsigned-off-loopback"]].concat(), &[]).await;
    let port: u16 = wide.addr.rsplit(':').next().unwrap().parse().unwrap();
    let mut iam = pb::iam_client::IamClient::new(channel_to(SocketAddr::new(host, port)).await);
    let created = iam.create_user(create_user("ops")).await;
    let wide_log = wide.started.clone();
    wide.stop("KILL").await;
    created.unwrap();
    let warning = wide_log.lines().find(|l| l.contains("ANY peer")).unwrap_or_default();
    assert!(warning.contains("WARN"), "{wide_log}");
}

/// The simulation identities believe whatever instance a client claims: only this host's
/// clients are answered; the container endpoint (which checks the instance key) and the
/// public key are not simulations.
#[tokio::test]
async fn simulated_instance_identities_answer_this_host_only() {
    let Some((server, host)) = exposed().await else { return };
    role_in_profile(&server, "Web").await;
    let (instance, key) = launch(&server, 1, Some("Web")).await.remove(0);
    let client = reqwest::Client::new();
    let token_at = |addr: SocketAddr| {
        client
            .put(format!("http://{addr}/{}/latest/api/token", instance.instance_id))
            .header("X-aws-ec2-metadata-token-ttl-seconds", "60")
            .send()
    };
    let remote = via(host, server.imds_addr);
    let refused = token_at(remote).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let local = SocketAddr::from(([127, 0, 0, 1], server.imds_addr.port()));
    assert_eq!(token_at(local).await.unwrap().status(), StatusCode::OK);
    let v1 = client
        .get(format!(
            "http://{remote}/{}/latest/meta-data/iam/security-credentials/Web",
            instance.instance_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(v1.status(), StatusCode::FORBIDDEN);

    let container = client
        .get(format!("http://{remote}/{}/container-credentials", instance.instance_id))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(container.status(), StatusCode::OK);
    let public_key = client.get(format!("http://{remote}/rolecall/instance-identity-public-key.pem")).send();
    assert_eq!(public_key.await.unwrap().status(), StatusCode::OK);
}

/// A token minted over HTTP on a path-prefix claim proved nothing: gRPC, which demands the
/// instance key, refuses it. A gRPC token (minted on the key) is good over HTTP.
#[tokio::test]
async fn a_token_minted_on_a_claim_is_refused_where_the_instance_key_is_required() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let (instance, key) = launch(&server, 1, Some("Web")).await.remove(0);
    let base = format!("http://{}/{}/latest", server.imds_addr, instance.instance_id);
    let client = reqwest::Client::new();
    let claimed = token_over_http(&server, &instance.instance_id, 60).await;
    expect_error(credentials(&server, &claimed, "Web").await, Code::Unauthenticated, "Unauthorized");
    let listed = server
        .imds()
        .list_security_credentials(pb::ListSecurityCredentialsRequest { caller: caller(&claimed) })
        .await;
    assert_eq!(listed.unwrap_err().code(), Code::Unauthenticated);

    let proven = token(&server, &instance.instance_id, &key).await;
    assert_eq!(credentials(&server, &proven, "Web").await.unwrap().code, "Success");
    let over_http = client
        .get(format!("{base}/meta-data/iam/security-credentials/Web"))
        .header("X-aws-ec2-metadata-token", &proven)
        .send()
        .await
        .unwrap();
    assert_eq!(over_http.status(), StatusCode::OK);
}

/// Where gRPC itself believes claimed instance ids (a simulation setting), it takes the
/// HTTP door's claimed tokens too: it demands no more than it checks.
#[tokio::test]
async fn claimed_tokens_are_good_where_grpc_believes_claims() {
    let server = TestServer::start_with(|c| c.simulation.trust_claimed_instance_id = true).await;
    role_in_profile(&server, "Web").await;
    let (instance, _) = launch(&server, 1, Some("Web")).await.remove(0);
    let claimed = token_over_http(&server, &instance.instance_id, 60).await;
    assert_eq!(credentials(&server, &claimed, "Web").await.unwrap().code, "Success");
}
