//! Shared helpers: a fleet set up through the real API, and error inspection.

use rolecall_api as pb;
pub use rolecall_server::test_util::TestServer;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The trust policy the seeds save as ec2-trust-policy.json.
pub const EC2_TRUST: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": { "Service": "ec2.amazonaws.com" },
      "Action": "sts:AssumeRole"
    }
  ]
}"#;

pub const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

pub const S3_READ_ONLY: &str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";

/// The AWS error code carried in a status (google.rpc.ErrorInfo.reason).
pub fn reason(status: &Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

/// Asserts a call failed with this gRPC code and AWS error code; returns the message.
#[track_caller]
pub fn expect_error<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, aws: &str) -> String {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(&status), aws, "{status:?}");
    status.message().to_string()
}

pub async fn create_role(server: &TestServer, name: &str, trust: &str) -> pb::Role {
    server
        .iam()
        .create_role(pb::CreateRoleRequest {
            role_name: name.into(),
            assume_role_policy_document: trust.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap()
}

/// A role trusting EC2 with AmazonS3ReadOnlyAccess, in a profile of the same name.
pub async fn role_in_profile(server: &TestServer, name: &str) -> pb::InstanceProfile {
    create_role(server, name, EC2_TRUST).await;
    let mut iam = server.iam();
    iam.attach_role_policy(pb::AttachRolePolicyRequest {
        role_name: name.into(),
        policy_arn: S3_READ_ONLY.into(),
    })
    .await
    .unwrap();
    let profile = iam
        .create_instance_profile(pb::CreateInstanceProfileRequest {
            instance_profile_name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .instance_profile
        .unwrap();
    iam.add_role_to_instance_profile(pb::AddRoleToInstanceProfileRequest {
        instance_profile_name: name.into(),
        role_name: name.into(),
    })
    .await
    .unwrap();
    profile
}

/// Launches `count` instances (with the named profile, if any): (instance, key) pairs.
pub async fn launch(server: &TestServer, count: i32, profile: Option<&str>) -> Vec<(pb::Instance, String)> {
    launch_with(server, count, profile, "").await
}

pub async fn launch_with(
    server: &TestServer,
    count: i32,
    profile: Option<&str>,
    http_tokens: &str,
) -> Vec<(pb::Instance, String)> {
    use tokio_stream::StreamExt;
    let mut stream = server
        .ec2()
        .run_instances(pb::RunInstancesRequest {
            image_id: "ami-0abcdef1234567890".into(),
            instance_type: "t3.micro".into(),
            min_count: count,
            max_count: count,
            iam_instance_profile: profile
                .map(|p| pb::IamInstanceProfileSpecification { name: p.into(), ..Default::default() }),
            metadata_options: Some(pb::InstanceMetadataOptionsRequest {
                http_tokens: http_tokens.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(page) = stream.next().await {
        for l in page.unwrap().instances {
            out.push((l.instance.unwrap(), l.instance_key));
        }
    }
    out
}

/// An IMDSv2 token for an instance.
pub async fn token(server: &TestServer, instance_id: &str, key: &str) -> String {
    server
        .imds()
        .get_token(pb::GetTokenRequest {
            instance_id: instance_id.into(),
            instance_key: key.into(),
            ttl_seconds: 21_600,
        })
        .await
        .unwrap()
        .into_inner()
        .token
}

/// An IMDSv2 token minted over HTTP (PUT /INSTANCE/latest/api/token) on the simulation's
/// path-prefix claim, valid `ttl_seconds`.
pub async fn token_over_http(server: &TestServer, instance_id: &str, ttl_seconds: u32) -> String {
    let url = format!("http://{}/{instance_id}/latest/api/token", server.imds_addr);
    let minted =
        reqwest::Client::new().put(url).header("X-aws-ec2-metadata-token-ttl-seconds", ttl_seconds).send();
    minted.await.unwrap().text().await.unwrap()
}

pub fn caller(token: &str) -> Option<pb::InstanceCaller> {
    Some(pb::InstanceCaller::token(token))
}

pub async fn credentials(
    server: &TestServer,
    token: &str,
    role: &str,
) -> Result<pb::GetSecurityCredentialsResponse, Status> {
    server
        .imds()
        .get_security_credentials(pb::GetSecurityCredentialsRequest {
            caller: caller(token),
            role_name: role.into(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn advance(server: &TestServer, seconds: i64) {
    server.advance(seconds).await;
}

/// GetPolicy's answer.
pub async fn policy(server: &TestServer, policy_arn: &str) -> pb::Policy {
    server
        .iam()
        .get_policy(pb::GetPolicyRequest { policy_arn: policy_arn.into() })
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap()
}

/// iam/security-credentials/ as the instance holding `token` sees it.
pub async fn role_names(server: &TestServer, token: &str) -> Vec<String> {
    server
        .imds()
        .list_security_credentials(pb::ListSecurityCredentialsRequest { caller: caller(token) })
        .await
        .unwrap()
        .into_inner()
        .role_names
}

/// Associates the named profile with a running instance.
pub async fn associate(
    server: &TestServer,
    instance_id: &str,
    profile: &str,
) -> pb::IamInstanceProfileAssociation {
    server
        .ec2()
        .associate_iam_instance_profile(pb::AssociateIamInstanceProfileRequest {
            iam_instance_profile: Some(pb::IamInstanceProfileSpecification {
                name: profile.into(),
                ..Default::default()
            }),
            instance_id: instance_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .iam_instance_profile_association
        .unwrap()
}

/// The repository's root.
pub fn workspace() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A program of the project's Python environment (the aws CLI, python), which the test
/// command installs.
pub fn pyenv(program: &str) -> std::path::PathBuf {
    let path = workspace().join("target/pyenv/bin").join(program);
    assert!(path.exists(), "{} is missing: run scripts/test (or scripts/setup-test-env)", path.display());
    path
}

/// A user's long-term key, to sign with.
pub fn long_term(key: &pb::AccessKey) -> rolecall_server::grpc::sigv4::ClientCredentials {
    rolecall_server::grpc::sigv4::ClientCredentials {
        access_key_id: key.access_key_id.clone(),
        secret_access_key: key.secret_access_key.clone(),
        session_token: None,
    }
}

/// An instance's temporary credentials, to sign with.
pub fn temporary(c: &pb::GetSecurityCredentialsResponse) -> rolecall_server::grpc::sigv4::ClientCredentials {
    rolecall_server::grpc::sigv4::ClientCredentials {
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        session_token: Some(c.token.clone()),
    }
}

/// A new user and its access key (the secret shown this once).
pub async fn user_with_key(server: &TestServer, name: &str) -> pb::AccessKey {
    user_with_key_via(server.channel.clone(), name).await
}

/// A fresh file for a test server's audit trail, unique to the test (its `line`): the path,
/// and the path as `audit.output` takes it.
pub fn audit_file(line: u32) -> (std::path::PathBuf, String) {
    let path = std::env::temp_dir().join(format!("rolecall-audit-{}-{line}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let output = path.display().to_string();
    (path, output)
}

/// The operator puts `doc` as `user`'s inline policy `p` (replacing the one before).
pub async fn put_inline(server: &TestServer, user: &str, doc: &str) {
    server
        .iam()
        .put_user_policy(pb::PutUserPolicyRequest {
            user_name: user.into(),
            policy_name: "p".into(),
            policy_document: doc.into(),
        })
        .await
        .unwrap();
}

/// A gRPC call as raw bytes: `body` is sent exactly as given (through `channel`, which may
/// sign it), and the answer is its status (OK on success) and its body.
pub async fn raw_call<S>(channel: S, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (Status, Vec<u8>)
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>>,
    S::Error: std::fmt::Debug,
{
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut request =
        http::Request::post(path).header("content-type", "application/grpc").header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request =
        request.body(tonic::body::Body::new(http_body_util::Full::new(bytes::Bytes::from(body)))).unwrap();
    let response = channel.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let body = collected.to_bytes().to_vec();
    let status = Status::from_header_map(&parts.headers)
        .or_else(|| Status::from_header_map(&trailers))
        .unwrap_or_else(|| Status::unknown("no grpc-status"));
    (status, body)
}

/// A message as one gRPC frame (uncompressed).
pub fn frame(message: &impl prost::Message) -> Vec<u8> {
    let message = message.encode_to_vec();
    let mut body = vec![0];
    body.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&message);
    body
}

/// A user with a long-term access key, made through `channel` (plain, or signing).
pub async fn user_with_key_via<T>(channel: T, name: &str) -> pb::AccessKey
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut iam = rolecall_api::iam_client::IamClient::new(channel);
    iam.create_user(pb::CreateUserRequest { user_name: name.into(), ..Default::default() }).await.unwrap();
    iam.create_access_key(pb::CreateAccessKeyRequest { user_name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .access_key
        .unwrap()
}

/// The real `rolecall serve` as a child process, up and listening.
pub struct Served {
    pub child: std::process::Child,
    /// The gRPC address it logged.
    pub addr: String,
    /// Its log up to and with the line that said so (the start-up announcements).
    pub started: String,
    /// The rest of its log.
    pub log: std::io::BufReader<std::process::ChildStderr>,
}

/// Starts `rolecall serve --listen 127.0.0.1:0 --metrics-listen none ARGS` (ARGS's own
/// `--listen` instead, if it has one) with `env`, and
/// reads its log until it says where it listens (no sleeping).
pub async fn serve_binary(args: &[&str], env: &[(&str, &str)]) -> Served {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rolecall"))
        .arg("serve")
        .args(if args.contains(&"--listen") { &[][..] } else { &["--listen", "127.0.0.1:0"][..] })
        .args(["--metrics-listen", "none"])
        .args(args)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (addr, started, log) = tokio::task::spawn_blocking(move || {
        let mut reader = std::io::BufReader::new(stderr);
        let mut line = String::new();
        let mut seen = String::new();
        loop {
            line.clear();
            assert!(reader.read_line(&mut line).unwrap() > 0, "server exited before listening:\n{seen}");
            seen.push_str(&line);
            if line.contains("rolecall gRPC listening") {
                let addr = line.split("addr=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
                return (addr, seen, reader);
            }
        }
    })
    .await
    .unwrap();
    Served { child, addr, started, log }
}

impl Served {
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Sends `signal` (TERM, KILL) and waits for the exit: (status, the rest of the log).
    pub async fn stop(self, signal: &str) -> (std::process::ExitStatus, String) {
        let Served { mut child, log, .. } = self;
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status();
        assert!(sent.unwrap().success());
        tokio::task::spawn_blocking(move || {
            let mut rest = String::new();
            let mut log = log;
            let _ = std::io::Read::read_to_string(&mut log, &mut rest);
            (child.wait().unwrap(), rest)
        })
        .await
        .unwrap()
    }
}

/// Throwaway certificates: a CA, a server certificate for localhost and 127.0.0.1, and a
/// client certificate, in memory and as PEM files in `dir` (ca.pem, server.pem, server.key,
/// client.pem, client.key).
pub struct Pki {
    pub dir: std::path::PathBuf,
    pub ca_pem: String,
    pub client_cert: String,
    pub client_key: String,
}

pub fn pki(name: &str) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let dir = std::env::temp_dir().join(format!("rolecall-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_cert =
        CertificateParams::new(vec!["agent".to_string()]).unwrap().signed_by(&client_key, &ca).unwrap();
    for (file, pem) in [
        ("server.pem", server_cert.pem()),
        ("server.key", server_key.serialize_pem()),
        ("ca.pem", ca.pem()),
        ("client.pem", client_cert.pem()),
        ("client.key", client_key.serialize_pem()),
    ] {
        std::fs::write(dir.join(file), pem).unwrap();
    }
    Pki { dir, ca_pem: ca.pem(), client_cert: client_cert.pem(), client_key: client_key.serialize_pem() }
}

/// Through `channel` (the operator's, unsigned): a role `name` that EC2 may assume, in a
/// profile `name`, and one instance launched with it: its id, its IMDS token and its first
/// credentials.
pub async fn instance_with_role_via(
    channel: tonic::transport::Channel,
    name: &str,
) -> (String, String, pb::GetSecurityCredentialsResponse) {
    let mut iam = rolecall_api::iam_client::IamClient::new(channel.clone());
    iam.create_role(pb::CreateRoleRequest {
        role_name: name.into(),
        assume_role_policy_document: EC2_TRUST.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    iam.create_instance_profile(pb::CreateInstanceProfileRequest {
        instance_profile_name: name.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let add =
        pb::AddRoleToInstanceProfileRequest { instance_profile_name: name.into(), role_name: name.into() };
    iam.add_role_to_instance_profile(add).await.unwrap();
    let launch = pb::RunInstancesRequest {
        image_id: "ami-0abcdef1234567890".into(),
        max_count: 1,
        iam_instance_profile: Some(pb::IamInstanceProfileSpecification {
            name: name.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut ec2 = rolecall_api::ec2_client::Ec2Client::new(channel.clone());
    let mut pages = ec2.run_instances(launch).await.unwrap().into_inner();
    let launched = pages.message().await.unwrap().unwrap().instances.remove(0);
    let instance_id = launched.instance.unwrap().instance_id;
    let mut imds = rolecall_api::instance_metadata_client::InstanceMetadataClient::new(channel);
    let get_token = pb::GetTokenRequest {
        instance_id: instance_id.clone(),
        instance_key: launched.instance_key,
        ttl_seconds: 21_600,
    };
    let token = imds.get_token(get_token).await.unwrap().into_inner().token;
    let fetch = pb::GetSecurityCredentialsRequest { caller: caller(&token), role_name: name.into() };
    let creds = imds.get_security_credentials(fetch).await.unwrap().into_inner();
    (instance_id, token, creds)
}

/// An operator call made in account `account`.
pub fn in_account<T>(account: &str, message: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert("x-rolecall-account-id", account.parse().unwrap());
    req
}

/// The account's user names (up to 1,000), through `iam`.
pub async fn user_names(
    iam: &mut rolecall_api::iam_client::IamClient<tonic::transport::Channel>,
) -> Vec<String> {
    let request = pb::ListUsersRequest { max_items: Some(1000), ..Default::default() };
    iam.list_users(request).await.unwrap().into_inner().users.into_iter().map(|u| u.user_name).collect()
}

/// The default account's root user, for a server that names its key: the credentials to sign
/// with, and the secret in a file of the test's own (removed on drop).
pub struct RootUser {
    pub credentials: rolecall_server::grpc::sigv4::ClientCredentials,
    dir: std::path::PathBuf,
}

impl RootUser {
    /// The key `access_key_id` with `secret`, its file under a directory named for `test`.
    pub fn new(test: &str, access_key_id: &str, secret: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rolecall-root-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("root.secret"), secret).unwrap();
        let credentials = rolecall_server::grpc::sigv4::ClientCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret.into(),
            session_token: None,
        };
        Self { credentials, dir }
    }

    /// Names the key in a server's configuration (auth.root_access_key_id and its file).
    pub fn configure(&self, c: &mut rolecall_server::config::Config) {
        c.auth.root_access_key_id = Some(self.credentials.access_key_id.clone());
        c.auth.root_secret_access_key_file = Some(self.dir.join("root.secret"));
    }
}

impl Drop for RootUser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The EvalDecision of each of a simulation's EvaluationResults (as the aws CLI prints it),
/// in order.
pub fn eval_decisions(simulated: &serde_json::Value) -> Vec<&str> {
    let results = simulated["EvaluationResults"].as_array().map(Vec::as_slice).unwrap_or_default();
    results.iter().map(|r| r["EvalDecision"].as_str().unwrap_or_default()).collect()
}
