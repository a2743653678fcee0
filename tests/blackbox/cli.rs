//! The `rolecall` binary: `serve` as a process stopped by SIGTERM, and the operator
//! subcommands walking the README's workflow.

use std::process::Command;

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_rolecall");

/// Runs `rolecall ARGS --endpoint URL`: (success, stdout, stderr).
async fn rolecall(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    full.push("--endpoint".into());
    full.push(format!("http://{}", server.grpc_addr));
    // The operator's unsigned calls, whatever credentials the environment holds.
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&full)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn readme_walkthrough_with_the_cli() {
    let server = TestServer::start().await;
    let dir = std::env::temp_dir().join(format!("rolecall-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trust = dir.join("ec2-trust-policy.json");
    std::fs::write(&trust, EC2_TRUST).unwrap();
    let trust_arg = format!("file://{}", trust.display());

    let (ok, out, _) = rolecall(
        &server,
        &["iam", "create-role", "--role-name", "EC2RoleForApp", "--assume-role-policy-document", &trust_arg],
    )
    .await;
    assert!(ok);
    assert_eq!(json(&out)["Role"]["Arn"], "arn:aws:iam::123456789012:role/EC2RoleForApp");
    // The aws CLI's error line, and a failing exit status.
    let (ok, _, err) = rolecall(
        &server,
        &["iam", "create-role", "--role-name", "EC2RoleForApp", "--assume-role-policy-document", &trust_arg],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("An error occurred (EntityAlreadyExists) when calling the CreateRole operation: Role with name EC2RoleForApp already exists."),
        "{err}"
    );
    for args in [
        &["iam", "attach-role-policy", "--role-name", "EC2RoleForApp", "--policy-arn", S3_READ_ONLY][..],
        &["iam", "create-instance-profile", "--instance-profile-name", "EC2RoleForAppProfile"],
        &[
            "iam",
            "add-role-to-instance-profile",
            "--instance-profile-name",
            "EC2RoleForAppProfile",
            "--role-name",
            "EC2RoleForApp",
        ],
    ] {
        let (ok, _, err) = rolecall(&server, args).await;
        assert!(ok, "{args:?}: {err}");
    }
    let (ok, out, err) = rolecall(
        &server,
        &[
            "ec2",
            "run-instances",
            "--image-id",
            "ami-0abcdef1234567890",
            "--count",
            "1",
            "--instance-type",
            "t3.micro",
            "--iam-instance-profile",
            "Name=EC2RoleForAppProfile",
            "--key-name",
            "my-key",
            "--security-group-ids",
            "sg-0123",
            "--subnet-id",
            "subnet-0123",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let launched = json(&out);
    let instance_id = launched["Instances"][0]["Instance"]["InstanceId"].as_str().unwrap().to_string();
    let instance_key = launched["Instances"][0]["InstanceKey"].as_str().unwrap().to_string();
    assert_eq!(launched["Instances"][0]["Instance"]["KeyName"], "my-key");

    let (ok, token, err) = rolecall(
        &server,
        &["imds", "get-token", "--instance-id", &instance_id, "--instance-key", &instance_key],
    )
    .await;
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    let (ok, out, err) = rolecall(&server, &["imds", "get-credentials", "--token", &token]).await;
    assert!(ok, "{err}");
    let creds = json(&out);
    assert_eq!(creds["Code"], "Success");
    assert!(creds["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    let (ok, out, _) =
        rolecall(&server, &["imds", "get-metadata", "--token", &token, "--path", "instance-id"]).await;
    assert!(ok);
    assert_eq!(out.trim(), instance_id);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn serve_runs_until_sigterm_and_drains() {
    let served = serve_binary(&["--storage", "memory"], &[]).await;
    let mut iam = rolecall_api::iam_client::IamClient::new(served.channel().await);
    let roles = iam.list_roles(rolecall_api::ListRolesRequest::default()).await.unwrap().into_inner().roles;
    assert!(roles.is_empty());
    let (status, log) = served.stop("TERM").await;
    assert!(status.success(), "exit: {status:?}\n{log}");
    assert!(log.contains("draining"), "{log}");
}

#[tokio::test]
async fn sts_get_caller_identity_signs_with_the_aws_environment_variables() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "carol").await;
    let endpoint = format!("http://{}", server.grpc_addr);
    let run = move |env: Vec<(&'static str, String)>| {
        let endpoint = endpoint.clone();
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(BIN);
            cmd.args(["sts", "get-caller-identity", "--endpoint", &endpoint]);
            for name in [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
            ] {
                cmd.env_remove(name);
            }
            cmd.envs(env).output().unwrap()
        })
    };
    let out = run(vec![]).await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unable to locate credentials"));
    let out = run(vec![
        ("AWS_ACCESS_KEY_ID", key.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", key.secret_access_key.clone()),
    ])
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let me = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(me["Arn"], "arn:aws:iam::123456789012:user/carol");
    assert_eq!(me["Account"], "123456789012");
    // Signed for another region: the scope is refused.
    let out = run(vec![
        ("AWS_ACCESS_KEY_ID", key.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", key.secret_access_key.clone()),
        ("AWS_REGION", "eu-west-1".into()),
    ])
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("An error occurred (SignatureDoesNotMatch) when calling the GetCallerIdentity operation: Credential should be scoped to a valid region"), "{err}");
}

#[tokio::test]
async fn signed_cli_calls_assume_roles_and_are_authorized() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "dana").await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/dana"},"Action":"sts:AssumeRole"}]}"#;
    create_role(&server, "Deploy", trust).await;
    let endpoint = format!("http://{}", server.grpc_addr);
    let env = [
        ("AWS_ACCESS_KEY_ID", key.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", key.secret_access_key.clone()),
    ];
    let run = move |args: Vec<&'static str>| {
        let (endpoint, env) = (endpoint.clone(), env.clone());
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(BIN);
            cmd.args(&args).args(["--endpoint", &endpoint]);
            for name in ["AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"] {
                cmd.env_remove(name);
            }
            cmd.envs(env).output().unwrap()
        })
    };
    let out = run(vec![
        "sts",
        "assume-role",
        "--role-arn",
        "arn:aws:iam::123456789012:role/Deploy",
        "--role-session-name",
        "cli-1",
    ])
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let assumed = json(&String::from_utf8(out.stdout).unwrap());
    assert!(assumed["Credentials"]["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert_eq!(assumed["AssumedRoleUser"]["Arn"], "arn:aws:sts::123456789012:assumed-role/Deploy/cli-1");
    // Signed, dana's `iam list-users` is decided by her (empty) policies.
    let out = run(vec!["iam", "list-users"]).await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("An error occurred (AccessDenied) when calling the ListUsers operation: User: arn:aws:iam::123456789012:user/dana is not authorized to perform: iam:ListUsers"), "{err}");
}

#[tokio::test]
async fn keys_and_tokens_that_start_with_a_hyphen_are_values_not_flags() {
    // Instance keys and tokens are base64url: one in 64 starts with '-'.
    let server = TestServer::start().await;
    let (ok, _, err) = rolecall(
        &server,
        &["imds", "get-token", "--instance-id", "i-0123456789abcdef0", "--instance-key", "-yAbCdEf"],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("Unauthorized"), "the key was taken as a value and refused by the server: {err}");
    let (ok, _, err) = rolecall(&server, &["imds", "get-credentials", "--token", "-abc"]).await;
    assert!(!ok);
    assert!(err.contains("Unauthorized"), "{err}");
}

#[tokio::test]
async fn callers_mistakes_are_not_logged_as_the_servers_errors() {
    let served = serve_binary(&["--storage", "memory"], &[]).await;
    let channel = served.channel().await;
    let mut iam = rolecall_api::iam_client::IamClient::new(channel.clone());
    let mut imds = rolecall_api::instance_metadata_client::InstanceMetadataClient::new(channel.clone());
    let mut sts = rolecall_api::sts_client::StsClient::new(channel.clone());
    for _ in 0..5 {
        // NOT_FOUND, INVALID_ARGUMENT, UNAUTHENTICATED, a malformed frame (INTERNAL).
        let missing = iam.get_role(rolecall_api::GetRoleRequest { role_name: "Missing".into() }).await;
        assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);
        let bad = iam.get_role(rolecall_api::GetRoleRequest { role_name: "bad name!".into() }).await;
        assert_eq!(bad.unwrap_err().code(), tonic::Code::InvalidArgument);
        let token =
            rolecall_api::GetTokenRequest { instance_id: "i-0000000000000000".into(), ..Default::default() };
        assert!(imds.get_token(token).await.is_err());
        let unsigned = sts.get_caller_identity(rolecall_api::GetCallerIdentityRequest {}).await;
        assert_eq!(unsigned.unwrap_err().code(), tonic::Code::Unauthenticated);
        let (malformed, _) = raw_call(channel.clone(), "/rolecall.v1.Iam/GetRole", vec![0, 0, 0], &[]).await;
        assert_eq!(malformed.code(), tonic::Code::Internal);
    }
    let (status, log) = served.stop("TERM").await;
    assert!(status.success(), "exit: {status:?}\n{log}");
    assert!(!log.contains("ERROR"), "a caller's error logged as the server's:\n{log}");
    // What anyone can send must not grow the log at its default level: the refusals of
    // requests that proved no one (counted in the metrics, bounded in the audit trail).
    assert!(!log.contains("request refused"), "refusals of no one logged at INFO:\n{log}");
}

/// Issue 17: the operator CLI asks the simulator about policies given inline or as files.
#[tokio::test]
async fn the_cli_simulates_custom_policies() {
    let server = TestServer::start().await;
    let dir = std::env::temp_dir().join(format!("rolecall-cli-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let boundary = dir.join("boundary.json");
    std::fs::write(
        &boundary,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}]}"#,
    )
    .unwrap();
    let policy =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    let boundary_arg = format!("file://{}", boundary.display());
    let args = [
        "iam",
        "simulate-custom-policy",
        "--policy-input-list",
        policy,
        "--permissions-boundary-policy-input-list",
        &boundary_arg,
        "--action-names",
        "s3:GetObject",
        "s3:PutObject",
    ];
    let (ok, out, err) = rolecall(&server, &args).await;
    assert!(ok, "{err}");
    let results = json(&out)["EvaluationResults"].clone();
    assert_eq!(results[0]["EvalDecision"], "allowed", "{out}");
    assert_eq!(results[1]["EvalDecision"], "implicitDeny", "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `rolecall ARGS`, which must succeed: its answer (null when it prints none).
async fn ok(server: &TestServer, args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = rolecall(server, args).await;
    assert!(ok, "{args:?}: {err}");
    if out.trim().is_empty() { serde_json::Value::Null } else { json(&out) }
}

/// Issue 18: every IAM call is a subcommand, flagged as the aws CLI flags it, with its
/// shorthand (`Key=a,Value=b`), JSON, `file://`, bare boolean flags, and lists followed to
/// their last page as the aws CLI follows them
/// (https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-pagination.html).
#[tokio::test]
async fn the_cli_serves_every_iam_call_groups_account_views_and_key_evidence() {
    let server = TestServer::start().await;
    let dir = std::env::temp_dir().join(format!("rolecall-cli-iam-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("list-buckets.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#,
    )
    .unwrap();
    let policy_arg = format!("file://{}", policy.display());

    // Tags in the aws CLI's shorthand and as JSON; groups, membership, a group's policies.
    let user = ok(
        &server,
        &[
            "iam",
            "create-user",
            "--user-name",
            "bob",
            "--tags",
            "Key=team,Value=storage",
            r#"{"Key":"cost-center","Value":"42"}"#,
        ],
    )
    .await;
    assert_eq!(user["User"]["Tags"][0]["Key"], "team");
    assert_eq!(user["User"]["Tags"][1]["Value"], "42");
    ok(&server, &["iam", "create-group", "--group-name", "devs"]).await;
    ok(&server, &["iam", "add-user-to-group", "--group-name", "devs", "--user-name", "bob"]).await;
    ok(
        &server,
        &[
            "iam",
            "put-group-policy",
            "--group-name",
            "devs",
            "--policy-name",
            "buckets",
            "--policy-document",
            &policy_arg,
        ],
    )
    .await;
    ok(&server, &["iam", "attach-group-policy", "--group-name", "devs", "--policy-arn", S3_READ_ONLY]).await;
    let groups = ok(&server, &["iam", "list-groups-for-user", "--user-name", "bob"]).await;
    assert_eq!(groups["Groups"][0]["GroupName"], "devs");
    let groups = ok(&server, &["iam", "list-groups", "--path-prefix", "/"]).await;
    assert_eq!(groups["Groups"][0]["Arn"], "arn:aws:iam::123456789012:group/devs");
    let group = ok(&server, &["iam", "get-group", "--group-name", "devs"]).await;
    assert_eq!(group["Users"][0]["UserName"], "bob");
    let inline =
        ok(&server, &["iam", "get-group-policy", "--group-name", "devs", "--policy-name", "buckets"]).await;
    assert!(inline["PolicyDocument"].as_str().unwrap().contains("s3:ListAllMyBuckets"), "{inline}");
    // The group's policies are bob's, in the simulator.
    let simulated = ok(
        &server,
        &[
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            "arn:aws:iam::123456789012:user/bob",
            "--action-names",
            "s3:ListAllMyBuckets",
            "s3:GetObject",
            "s3:PutObject",
        ],
    )
    .await;
    let decisions = eval_decisions(&simulated);
    assert_eq!(decisions, ["allowed", "allowed", "implicitDeny"], "{simulated}");
    // A list of structures in shorthand, a member of it a list (ContextKeyValues).
    let conditional = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":["storage","data"]}}}]}"#;
    for (entry, decision) in [
        ("ContextKeyName=aws:PrincipalTag/team,ContextKeyValues=storage,ContextKeyType=string", "allowed"),
        ("ContextKeyName=aws:PrincipalTag/team,ContextKeyValues=web,ContextKeyType=string", "implicitDeny"),
    ] {
        let r = ok(
            &server,
            &[
                "iam",
                "simulate-custom-policy",
                "--policy-input-list",
                conditional,
                "--action-names",
                "s3:ListBucket",
                "--context-entries",
                entry,
            ],
        )
        .await;
        assert_eq!(r["EvaluationResults"][0]["EvalDecision"], decision, "{entry}: {r}");
    }

    // The account as a whole.
    let summary = ok(&server, &["iam", "get-account-summary"]).await;
    assert_eq!(summary["SummaryMap"]["Users"], 1);
    assert_eq!(summary["SummaryMap"]["Groups"], 1);
    let details =
        ok(&server, &["iam", "get-account-authorization-details", "--filter", "User", "Group"]).await;
    assert_eq!(details["UserDetailList"][0]["GroupList"][0], "devs", "{details}");
    assert_eq!(details["GroupDetailList"][0]["GroupPolicyList"][0]["PolicyName"], "buckets");
    assert!(details.get("RoleDetailList").is_none_or(|r| r.as_array().unwrap().is_empty()));
    let entities = ok(
        &server,
        &["iam", "list-entities-for-policy", "--policy-arn", S3_READ_ONLY, "--entity-filter", "Group"],
    )
    .await;
    assert_eq!(entities["PolicyGroups"][0]["GroupName"], "devs");
    ok(&server, &["iam", "create-account-alias", "--account-alias", "example-corp"]).await;
    let aliases = ok(&server, &["iam", "list-account-aliases"]).await;
    assert_eq!(aliases["AccountAliases"], serde_json::json!(["example-corp"]));

    // Every AWS managed policy: followed to the last page, or one page when --max-items is given.
    let all = ok(&server, &["iam", "list-policies", "--scope", "AWS"]).await;
    let count = all["Policies"].as_array().unwrap().len();
    assert!(count > 1000, "{count} AWS managed policies");
    assert!(all.get("IsTruncated").is_none(), "a followed list shows no marker");
    let page = ok(&server, &["iam", "list-policies", "--scope", "AWS", "--max-items", "2"]).await;
    assert_eq!(page["Policies"].as_array().unwrap().len(), 2);
    assert_eq!(page["IsTruncated"], true);
    // A bare boolean flag: only what is attached.
    let attached = ok(&server, &["iam", "list-policies", "--only-attached"]).await;
    let names: Vec<_> =
        attached["Policies"].as_array().unwrap().iter().map(|p| p["PolicyName"].clone()).collect();
    assert_eq!(names, ["AmazonS3ReadOnlyAccess"], "{attached}");
    let v1 =
        ok(&server, &["iam", "get-policy-version", "--policy-arn", S3_READ_ONLY, "--version-id", "v1"]).await;
    assert_eq!(v1["PolicyVersion"]["VersionId"], "v1");
    assert_eq!(v1["PolicyVersion"]["IsDefaultVersion"], false);

    // Evidence for key rotation.
    let key = ok(&server, &["iam", "create-access-key", "--user-name", "bob"]).await;
    let key_id = key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string();
    let last = ok(&server, &["iam", "get-access-key-last-used", "--access-key-id", &key_id]).await;
    assert_eq!(last["UserName"], "bob");
    assert!(last["AccessKeyLastUsed"].get("LastUsedDate").is_none(), "never used: {last}");
    ok(&server, &["iam", "generate-credential-report"]).await;
    let report = ok(&server, &["iam", "get-credential-report"]).await;
    let csv = report["Content"].as_str().unwrap();
    assert!(csv.starts_with("user,arn,user_creation_time,"), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("bob,") && l.contains(",true,")), "bob's active key: {csv}");

    // UpdateRole's empty answer, GetUser by name, and the aws CLI's error for a missing entity.
    create_role(&server, "App", EC2_TRUST).await;
    ok(
        &server,
        &[
            "iam",
            "update-role",
            "--role-name",
            "App",
            "--description",
            "the app",
            "--max-session-duration",
            "7200",
        ],
    )
    .await;
    let role = ok(&server, &["iam", "get-role", "--role-name", "App"]).await;
    assert_eq!(role["Role"]["Description"], "the app");
    assert_eq!(role["Role"]["MaxSessionDuration"], 7200);
    // GetUser with no name is the caller's user; the operator's unsigned call has none.
    let (fine, _, err) = rolecall(&server, &["iam", "get-user"]).await;
    assert!(!fine);
    assert!(
        err.contains("(ValidationError) when calling the GetUser operation: Must specify userName"),
        "{err}"
    );
    let (fine, _, err) =
        rolecall(&server, &["iam", "remove-user-from-group", "--group-name", "ops", "--user-name", "bob"])
            .await;
    assert!(!fine);
    assert!(
        err.contains("An error occurred (NoSuchEntity) when calling the RemoveUserFromGroup operation"),
        "{err}"
    );
    // A value the request cannot take is refused before any call, in the aws CLI's words.
    let (fine, _, err) = rolecall(&server, &["iam", "list-roles", "--max-items", "many"]).await;
    assert!(!fine);
    assert!(err.contains("when calling the ListRoles operation"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
