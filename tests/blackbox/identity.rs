//! Issue 14: the identity of an instance never crosses. Whatever the path (dot segments,
//! doubled or encoded slashes, another instance's prefix) and whatever the headers, a request
//! that presents one instance's token or key is never answered with another instance's
//! identity or credentials, over HTTP or gRPC. Generated cases (proptest's deterministic
//! runner), each sent over a real socket to one server.

use proptest::{
    prelude::*,
    strategy::{Strategy, ValueTree},
    test_runner::TestRunner,
};
use reqwest::{Client, Method, StatusCode};
use rolecall_api as pb;
use tonic::Code;

use crate::common::*;

/// One instance as the test knows it: id, key, tokens (HTTP-minted on the path-prefix
/// claim, gRPC-minted on the key), and the access key id of its cached credentials.
struct Known {
    id: String,
    key: String,
    http_token: String,
    grpc_token: String,
    access_key_id: String,
}

/// Whose token (or key) a request presents.
#[derive(Clone, Copy, Debug)]
enum Presents {
    HttpToken,
    GrpcToken,
    /// The instance key as the container endpoint's bearer.
    Key,
}

#[derive(Clone, Debug)]
struct Case {
    /// The path prefix: A's, B's, or something else.
    prefix: usize,
    presents: Presents,
    method: Method,
    /// The path after the prefix.
    path: String,
    headers: Vec<(&'static str, usize)>,
}

const PREFIXES: usize = 6;

fn prefix(n: usize, a: &Known, b: &Known) -> String {
    match n {
        0 => a.id.clone(),
        1 => b.id.clone(),
        2 => format!("{}/..", b.id),
        3 => format!("{}%2F..%2F{}", a.id, b.id),
        4 => format!("{}/../{}", a.id, b.id),
        _ => String::new(),
    }
}

fn paths() -> impl Strategy<Value = String> {
    let tails = prop::sample::select(vec![
        "latest/meta-data/iam/security-credentials/Web",
        "latest/meta-data/iam/security-credentials-extended/Web",
        "latest/meta-data/iam/security-credentials/",
        "latest/meta-data/iam/info",
        "latest/meta-data/instance-id",
        "latest/meta-data/",
        "latest/dynamic/instance-identity/document",
        "latest/user-data",
        "container-credentials",
        "latest/api/token",
    ]);
    let twists = prop::sample::select(vec!["", "/", "//", "/./", "/../", "%2F", "?x=1", "#f"]);
    (tails, twists, any::<bool>()).prop_map(|(tail, twist, at_start)| {
        if at_start { format!("{twist}{tail}") } else { format!("{tail}{twist}") }
    })
}

fn cases() -> impl Strategy<Value = Case> {
    let presents = prop::sample::select(vec![Presents::HttpToken, Presents::GrpcToken, Presents::Key]);
    let method = prop_oneof![6 => Just(Method::GET), 1 => Just(Method::PUT), 1 => Just(Method::HEAD), 1 => Just(Method::POST)];
    // A's own prefix half the time: the doors must answer A, and only A.
    let prefix = prop_oneof![Just(0usize), 0..PREFIXES];
    // Headers that could sway a door, each with whose value: A's (0) or B's (1).
    let header = (
        prop::sample::select(vec![
            "x-aws-ec2-metadata-token",
            "authorization",
            "x-forwarded-for",
            "host",
            "x-aws-ec2-metadata-token-ttl-seconds",
        ]),
        0..2usize,
    );
    (prefix, presents, method, paths(), prop::collection::vec(header, 0..3)).prop_map(
        |(prefix, presents, method, path, headers)| Case { prefix, presents, method, path, headers },
    )
}

/// A header's value: what instance `who` would send (its token, key or address).
fn value(name: &str, who: &Known) -> String {
    match name {
        "x-aws-ec2-metadata-token" => who.http_token.clone(),
        "authorization" => who.key.clone(),
        "x-forwarded-for" => "10.0.0.9".into(),
        "host" => format!("{}.internal", who.id),
        _ => "60".into(),
    }
}

async fn know(server: &TestServer, id: &str, key: &str) -> Known {
    let http_token = token_over_http(server, id, 21_600).await;
    let grpc_token = token(server, id, key).await;
    let creds = credentials(server, &grpc_token, "Web").await.unwrap();
    Known { id: id.into(), key: key.into(), http_token, grpc_token, access_key_id: creds.access_key_id }
}

#[tokio::test]
async fn an_instances_token_or_key_never_yields_another_instances_identity() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let client = Client::new();
    let mut launched = launch_with(&server, 2, Some("Web"), "required").await;
    let (b, b_key) = launched.pop().unwrap();
    let (a, a_key) = launched.pop().unwrap();
    let a = know(&server, &a.instance_id, &a_key).await;
    let b = know(&server, &b.instance_id, &b_key).await;
    assert_ne!(a.access_key_id, b.access_key_id);

    let mut runner = TestRunner::deterministic();
    let strategy = cases();
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..200 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let url = format!("http://{}/{}/{}", server.imds_addr, prefix(case.prefix, &a, &b), case.path);
        let mut request = client.request(case.method.clone(), &url);
        request = match case.presents {
            Presents::HttpToken => request.header("x-aws-ec2-metadata-token", &a.http_token),
            Presents::GrpcToken => request.header("x-aws-ec2-metadata-token", &a.grpc_token),
            Presents::Key => request.header("authorization", &a.key),
        };
        for (name, who) in &case.headers {
            request = request.header(*name, value(name, if *who == 0 { &a } else { &b }));
        }
        let Ok(response) = request.send().await else {
            refused += 1;
            continue;
        };
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        // Nothing asked with A's token or key names B or carries B's keys, unless the request
        // also presented B's own token or key.
        let crossed = body.contains(&b.id) || body.contains(&b.access_key_id);
        let presents_b = case
            .headers
            .iter()
            .any(|(name, who)| *who == 1 && matches!(*name, "x-aws-ec2-metadata-token" | "authorization"));
        assert!(!crossed || presents_b, "{case:?} at {url} answered {status} with B's identity: {body}");
        if status == StatusCode::OK {
            answered += 1;
        } else {
            refused += 1;
        }
    }
    // The cases reach both sides of the doors.
    assert!(answered > 10 && refused > 10, "{answered} answered, {refused} refused");

    // gRPC: B's id with A's key or A's token is refused, never B's credentials.
    let imds = server.imds();
    let with_key = imds
        .clone()
        .get_security_credentials(pb::GetSecurityCredentialsRequest {
            caller: Some(pb::InstanceCaller::instance(&b.id, &a.key)),
            role_name: "Web".into(),
        })
        .await;
    assert!(with_key.is_err(), "{with_key:?}");
    let token_b = imds
        .clone()
        .get_token(pb::GetTokenRequest {
            instance_id: b.id.clone(),
            instance_key: a.key.clone(),
            ttl_seconds: 60,
        })
        .await;
    assert_eq!(token_b.map(|_| ()).unwrap_err().code(), Code::Unauthenticated);
    let mine = credentials(&server, &a.grpc_token, "Web").await.unwrap();
    assert_eq!(mine.access_key_id, a.access_key_id);
}
