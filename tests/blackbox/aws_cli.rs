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
    let mut iam = server.iam();
    iam.create_user(rolecall_api::CreateUserRequest { user_name: "admin".into(), ..Default::default() })
        .await
        .unwrap();
    let admin_policy = "arn:aws:iam::aws:policy/AdministratorAccess";
    iam.attach_user_policy(rolecall_api::AttachUserPolicyRequest {
        user_name: "admin".into(),
        policy_arn: admin_policy.into(),
    })
    .await
    .unwrap();
    let key = iam
        .create_access_key(rolecall_api::CreateAccessKeyRequest { user_name: "admin".into() })
        .await
        .unwrap()
        .into_inner()
        .access_key
        .unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", key.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", key.secret_access_key.as_str()),
    ];
    let dir = std::env::temp_dir().join(format!("rolecall-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trust = dir.join("ec2-trust-policy.json");
    std::fs::write(&trust, EC2_TRUST).unwrap();
    let trust = format!("file://{}", trust.display());
    let run = |args: Vec<&str>| {
        let args: Vec<String> = args.into_iter().map(str::to_string).collect();
        let server = &server;
        let env = &env;
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            aws(server, None, env, &refs).await
        }
    };
    let role = stdout_json(
        &run(vec![
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
    let out =
        run(vec!["iam", "attach-role-policy", "--role-name", "EC2RoleForApp", "--policy-arn", S3_READ_ONLY])
            .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let profile = stdout_json(
        &run(vec!["iam", "create-instance-profile", "--instance-profile-name", "EC2RoleForAppProfile"]).await,
    );
    assert_eq!(profile["InstanceProfile"]["InstanceProfileName"], "EC2RoleForAppProfile");
    let out = run(vec![
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
        &run(vec!["iam", "get-instance-profile", "--instance-profile-name", "EC2RoleForAppProfile"]).await,
    );
    assert_eq!(got["InstanceProfile"]["Roles"][0]["RoleName"], "EC2RoleForApp");
    let user = stdout_json(&run(vec!["iam", "create-user", "--user-name", "test-user"]).await);
    assert_eq!(user["User"]["UserName"], "test-user");
    let created = stdout_json(&run(vec!["iam", "create-access-key", "--user-name", "test-user"]).await);
    let new_key = created["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string();
    assert!(
        new_key.starts_with("AKIA") && created["AccessKey"]["SecretAccessKey"].as_str().unwrap().len() == 40
    );
    let keys = stdout_json(&run(vec!["iam", "list-access-keys", "--user-name", "test-user"]).await);
    assert_eq!(keys["AccessKeyMetadata"][0]["AccessKeyId"], new_key.as_str(), "{keys}");
    let out =
        run(vec!["iam", "delete-access-key", "--user-name", "test-user", "--access-key-id", &new_key]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = run(vec![
        "iam",
        "create-role",
        "--role-name",
        "EC2RoleForApp",
        "--assume-role-policy-document",
        &trust,
    ])
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
