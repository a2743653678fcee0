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
    let mut iam = server.iam();
    iam.create_user(rolecall_api::CreateUserRequest { user_name: "test-user".into(), ..Default::default() })
        .await
        .unwrap();
    let key = iam
        .create_access_key(rolecall_api::CreateAccessKeyRequest { user_name: "test-user".into() })
        .await
        .unwrap()
        .into_inner()
        .access_key
        .unwrap();
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
