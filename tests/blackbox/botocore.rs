//! boto3 (pinned, from PyPI: scripts/setup-test-env) reading instance credentials from
//! rolecall's HTTP instance metadata service, with no credentials on disk.

use std::process::Stdio;

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin, Command},
};

use crate::common::*;

/// botocore, as an agent on `instance_id` would run it.
pub struct Agent {
    pub child: Child,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Agent {
    fn start(server: &TestServer, instance_id: &str) -> Self {
        let imds = format!("http://{}/{instance_id}/", server.imds_addr);
        let sts = format!("http://{}", server.query_addr);
        Self::start_with(
            instance_id,
            &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds), ("ROLECALL_STS_ENDPOINT", &sts)],
        )
    }

    /// botocore with only `env` to find credentials in.
    fn start_with(instance_id: &str, env: &[(&str, &str)]) -> Self {
        Self::start_in(None, instance_id, env)
    }

    /// The same, run in the network namespace `netns` (as on an instance of its own).
    pub fn start_in(netns: Option<&str>, instance_id: &str, env: &[(&str, &str)]) -> Self {
        let home =
            std::env::temp_dir().join(format!("rolecall-botocore-{}-{instance_id}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(pyenv("python"));
                c
            }
            None => Command::new(pyenv("python")),
        };
        let mut child = command
            .arg(workspace().join("tests/python/imds_credentials.py"))
            .env_clear()
            .env("HOME", &home)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_CONFIG_FILE", home.join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, stdin, lines }
    }

    pub async fn report(&mut self) -> serde_json::Value {
        let Some(line) = self.lines.next_line().await.unwrap() else {
            let mut stderr = String::new();
            if let Some(mut err) = self.child.stderr.take() {
                let _ = tokio::io::AsyncReadExt::read_to_string(&mut err, &mut stderr).await;
            }
            panic!("boto3 printed nothing: {stderr}");
        };
        serde_json::from_str(&line).unwrap()
    }

    /// Moves botocore's clock as the server's was moved, and reads what it serves then.
    async fn after(&mut self, seconds: i64) -> serde_json::Value {
        self.stdin.write_all(format!("{seconds}\n").as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
        self.report().await
    }

    pub async fn finish(mut self) {
        drop(self.stdin);
        assert!(self.child.wait().await.unwrap().success());
    }
}

#[tokio::test]
async fn botocore_finds_instance_credentials_and_follows_their_rotation() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    // "required" last: its rotation moves the server's clock, which STS signatures then trail.
    for http_tokens in ["optional", "required"] {
        let (instance, key) = launch_with(&server, 1, Some("Web"), http_tokens).await.remove(0);
        let mut agent = Agent::start(&server, &instance.instance_id);
        let first = agent.report().await;
        assert_eq!(first["method"], "iam-role", "{http_tokens}: {first}");
        assert_eq!(first["token"], true);
        let arn = format!("arn:aws:sts::123456789012:assumed-role/Web/{}", instance.instance_id);
        assert_eq!(first["arn"], arn.as_str(), "boto3 signs STS with them");
        // What botocore holds is what the instance's metadata serves.
        let t = token(&server, &instance.instance_id, &key).await;
        let served = credentials(&server, &t, "Web").await.unwrap();
        assert_eq!(first["access_key"], served.access_key_id.as_str());
        if http_tokens == "required" {
            // 5 h 50 min on, botocore is inside its refresh window and fetches again; the
            // server has rotated the credentials meanwhile.
            server.advance(21_000).await;
            let later = agent.after(21_000).await;
            assert_eq!(later["method"], "iam-role");
            assert_ne!(later["access_key"], first["access_key"], "boto3 saw the rotation");
        }
        agent.finish().await;
    }
}

#[tokio::test]
async fn botocore_finds_no_credentials_on_an_instance_without_a_role() {
    let server = TestServer::start().await;
    let (instance, _) = launch(&server, 1, None).await.remove(0);
    let mut agent = Agent::start(&server, &instance.instance_id);
    assert_eq!(agent.report().await["error"], "Unable to locate credentials");
    agent.finish().await;
}

#[tokio::test]
async fn botocore_gets_its_own_instances_credentials_from_the_container_endpoint() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let (instance, key) = launch_with(&server, 1, Some("Web"), "required").await.remove(0);
    let uri = format!("http://{}/{}/container-credentials", server.imds_addr, instance.instance_id);
    // Instance metadata points nowhere: only the container endpoint can answer.
    let nowhere = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/")];
    let env = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", key.as_str()),
        nowhere[0],
    ];
    let mut agent = Agent::start_with(&instance.instance_id, &env);
    let found = agent.report().await;
    assert_eq!(found["method"], "container-role", "{found}");
    let t = token(&server, &instance.instance_id, &key).await;
    assert_eq!(found["access_key"], credentials(&server, &t, "Web").await.unwrap().access_key_id.as_str());
    agent.finish().await;
    // Another instance's key is not this instance's bearer token.
    let (other, other_key) = launch(&server, 1, Some("Web")).await.remove(0);
    assert_ne!(other.instance_id, instance.instance_id);
    let wrong = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", other_key.as_str()),
        nowhere[0],
    ];
    let agent = Agent::start_with(&instance.instance_id, &wrong);
    let out = agent.child.wait_with_output().await.unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Error retrieving metadata")
            || String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
