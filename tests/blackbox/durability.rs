//! State that survives: the real binary on its default embedded store (redb), killed with
//! SIGKILL in the middle of a stream of writes, then restarted on the same directory.

use std::sync::{Arc, Mutex};

use rolecall_api::{self as pb, ec2_client::Ec2Client, iam_client::IamClient};
use rolecall_server::grpc::sigv4::ClientCredentials;

use crate::common::*;

const MASTER_KEY: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=";

fn data_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rolecall-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn serve_on(dir: &std::path::Path, master_key: &str) -> Served {
    serve_binary(&["--data-dir", &dir.display().to_string()], &[("ROLECALL_MASTER_KEY", master_key)]).await
}

/// Who STS says signed with `creds`.
async fn caller_arn(served: &Served, creds: ClientCredentials) -> Result<String, tonic::Status> {
    let clock = Arc::new(rolecall_server::domain::clock::SystemClock::default());
    let signing = rolecall_server::grpc::sigv4::Signing::new(
        served.channel().await,
        creds,
        served.addr.clone(),
        "us-east-1",
        "sts",
        clock,
    );
    let mut sts = rolecall_api::sts_client::StsClient::new(signing);
    Ok(sts.get_caller_identity(pb::GetCallerIdentityRequest {}).await?.into_inner().arn)
}

/// What the stream of writes had acknowledged when the server died.
#[derive(Default)]
struct Acknowledged {
    users: Vec<String>,
    /// Reservation id and instance count of each acknowledged launch.
    launches: Vec<(String, usize)>,
}

#[tokio::test]
async fn a_killed_server_keeps_every_acknowledged_write_and_every_credential_it_issued() {
    let dir = data_dir("sigkill");
    let served = serve_on(&dir, MASTER_KEY).await;
    let channel = served.channel().await;
    let iam = IamClient::new(channel.clone());
    let ec2 = Ec2Client::new(channel.clone());

    // Before the crash: a role on an instance, its credentials, a user's long-term key.
    let (instance_id, token, creds) = instance_with_role_via(channel.clone(), "Web").await;
    let launch = |count: i32, profile: Option<&str>| pb::RunInstancesRequest {
        image_id: "ami-0abcdef1234567890".into(),
        max_count: count,
        iam_instance_profile: profile
            .map(|p| pb::IamInstanceProfileSpecification { name: p.into(), ..Default::default() }),
        ..Default::default()
    };
    let session = temporary(&creds);
    let key = user_with_key_via(served.channel().await, "alice").await;

    // A stream of writes (users, and 20-instance launches: one commit of 40 keys each),
    // killed once 40 have been acknowledged, with the next one in flight.
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let writer = {
        let acknowledged = acknowledged.clone();
        let (mut iam, mut ec2) = (iam.clone(), ec2.clone());
        tokio::spawn(async move {
            for n in 0.. {
                if n % 2 == 0 {
                    let name = format!("user-{n}");
                    let request = pb::CreateUserRequest { user_name: name.clone(), ..Default::default() };
                    if iam.create_user(request).await.is_err() {
                        return;
                    }
                    acknowledged.lock().unwrap().users.push(name);
                } else {
                    let Ok(response) = ec2.run_instances(launch(20, None)).await else { return };
                    let mut pages = response.into_inner();
                    let (mut reservation, mut count) = (String::new(), 0);
                    loop {
                        match pages.message().await {
                            Ok(Some(page)) => {
                                reservation = page.reservation_id;
                                count += page.instances.len();
                            }
                            Ok(None) => break,
                            Err(_) => return,
                        }
                    }
                    acknowledged.lock().unwrap().launches.push((reservation, count));
                }
            }
        })
    };
    let mut watched = tokio::time::interval(std::time::Duration::from_millis(1));
    loop {
        watched.tick().await;
        let done = {
            let a = acknowledged.lock().unwrap();
            a.users.len() + a.launches.len()
        };
        if done >= 40 {
            break;
        }
    }
    let (status, _) = served.stop("KILL").await;
    assert!(!status.success(), "killed, not exited");
    writer.await.unwrap();
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());

    // The same directory, a new process.
    let served = serve_on(&dir, MASTER_KEY).await;
    let channel = served.channel().await;
    let mut iam = IamClient::new(channel.clone());
    let mut ec2 = Ec2Client::new(channel.clone());
    let users = user_names(&mut iam).await;
    for name in &acknowledged.users {
        assert!(users.contains(name), "acknowledged {name} was lost");
    }
    // At most the one write in flight may have landed without its acknowledgement.
    let unacknowledged =
        users.iter().filter(|u| u.starts_with("user-") && !acknowledged.users.contains(u)).count();
    assert!(unacknowledged <= 1, "{unacknowledged} users appeared that were never acknowledged");
    // Every launch is whole or absent: no reservation with some of its instances.
    let instances = ec2
        .describe_instances(pb::DescribeInstancesRequest { max_results: Some(1000), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .instances;
    let mut per_reservation = std::collections::BTreeMap::<String, usize>::new();
    for i in &instances {
        *per_reservation.entry(i.reservation_id.clone()).or_default() += 1;
    }
    for (reservation, count) in &acknowledged.launches {
        assert_eq!(per_reservation.get(reservation), Some(count), "acknowledged launch {reservation}");
    }
    for (reservation, count) in &per_reservation {
        assert!(*count == 20 || *count == 1, "reservation {reservation} is half there: {count} instances");
    }

    // Credentials issued before the crash still verify (the key ring survived), the IMDS
    // token still names its instance, and the user's key still signs.
    assert_eq!(
        caller_arn(&served, session).await.unwrap(),
        format!("arn:aws:sts::123456789012:assumed-role/Web/{instance_id}")
    );
    assert_eq!(caller_arn(&served, long_term(&key)).await.unwrap(), "arn:aws:iam::123456789012:user/alice");
    let mut imds = rolecall_api::instance_metadata_client::InstanceMetadataClient::new(channel.clone());
    let again = imds
        .get_security_credentials(pb::GetSecurityCredentialsRequest {
            caller: caller(&token),
            role_name: "Web".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.code, "Success");
    let (status, _) = served.stop("TERM").await;
    assert!(status.success());

    // At rest, nothing is in clear: not the user's secret, not the role's name.
    let file = std::fs::read(dir.join("rolecall.redb")).unwrap();
    for secret in [key.secret_access_key.as_bytes(), b"arn:aws:iam::123456789012:role/Web".as_slice()] {
        assert!(!file.windows(secret.len()).any(|w| w == secret), "found in clear on disk");
    }
    // Another master key cannot read the directory, and says so.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rolecall"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "none", "--data-dir"])
        .arg(&dir)
        .env("ROLECALL_MASTER_KEY", "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk=")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(!status.success(), "a wrong master key must not start");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_master_key_rotates_and_a_reseal_retires_the_old_one() {
    let dir = data_dir("rekey");
    std::fs::create_dir_all(&dir).unwrap();
    let (old, new) = (dir.join("old.key"), dir.join("new.key"));
    std::fs::write(&old, MASTER_KEY).unwrap();
    std::fs::write(&new, "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk=").unwrap();
    let data = dir.join("data").display().to_string();
    let (old, new) = (old.display().to_string(), new.display().to_string());
    let args = |current: &str, previous: Option<&str>| {
        let mut a =
            vec!["--data-dir".to_string(), data.clone(), "--master-key-file".into(), current.to_string()];
        if let Some(p) = previous {
            a.extend(["--previous-master-key-file".to_string(), p.to_string()]);
        }
        a
    };
    let serve = |a: Vec<String>| async move {
        serve_binary(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]).await
    };

    // Under the old key: alice and her long-term key.
    let served = serve(args(&old, None)).await;
    let alice = user_with_key_via(served.channel().await, "alice").await;
    assert!(served.stop("TERM").await.0.success());

    // The new key seals, the old one still opens: alice's key signs, bob is sealed anew.
    let served = serve(args(&new, Some(&old))).await;
    assert_eq!(caller_arn(&served, long_term(&alice)).await.unwrap(), "arn:aws:iam::123456789012:user/alice");
    let bob = user_with_key_via(served.channel().await, "bob").await;
    assert!(served.stop("TERM").await.0.success());

    // The reseal, with the server stopped, rewrites what the old key sealed.
    let reseal = |a: Vec<String>| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rolecall"))
            .args(["store", "reseal"])
            .args(a)
            .output()
            .unwrap()
    };
    let out = reseal(args(&new, Some(&old)));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{said} {}", String::from_utf8_lossy(&out.stderr));
    let resealed: u64 = said.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect(&said);
    assert!(resealed > 0, "{said}");
    assert!(
        reseal(args(&new, Some(&old))).stdout.starts_with(b"resealed 0 of"),
        "a second pass finds nothing"
    );

    // The new key alone opens everything; the old one alone opens nothing.
    let served = serve(args(&new, None)).await;
    assert_eq!(caller_arn(&served, long_term(&alice)).await.unwrap(), "arn:aws:iam::123456789012:user/alice");
    assert_eq!(caller_arn(&served, long_term(&bob)).await.unwrap(), "arn:aws:iam::123456789012:user/bob");
    assert!(served.stop("TERM").await.0.success());
    let refused = reseal(args(&old, None));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("does not open with the configured master keys")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
