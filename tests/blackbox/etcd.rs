//! Several replicas on one etcd (feature `etcd`; scripts/setup-test-env installs Debian's
//! etcd-server and each test starts its own on loopback).

use std::{
    io::BufRead,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rolecall_api as pb;

use crate::common::*;

/// An etcd of the test's own, on free loopback ports, stopped on drop.
struct Etcd {
    child: Option<Child>,
    dir: std::path::PathBuf,
    client_url: String,
    peer_url: String,
    /// Serve clients over TLS with these certificates, and ask for theirs.
    tls: Option<std::path::PathBuf>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Etcd {
    async fn start(name: &str) -> Self {
        Self::start_with(name, None).await
    }

    /// With `tls` (a [`Pki`]'s directory): clients over TLS, with client certificates.
    async fn start_with(name: &str, tls: Option<&Pki>) -> Self {
        let dir = std::env::temp_dir().join(format!("rolecall-etcd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut etcd = Self {
            child: None,
            dir,
            client_url: format!("{scheme}://127.0.0.1:{}", free_port()),
            peer_url: format!("http://127.0.0.1:{}", free_port()),
            tls: tls.map(|p| p.dir.clone()),
        };
        etcd.run().await;
        etcd
    }

    /// Starts etcd on its directory and waits until it says it serves clients.
    async fn run(&mut self) {
        let mut child = Command::new("etcd")
            .args(["--name", "test", "--data-dir"])
            .arg(&self.dir)
            .args(["--listen-client-urls", &self.client_url, "--advertise-client-urls", &self.client_url])
            .args(["--listen-peer-urls", &self.peer_url, "--initial-advertise-peer-urls", &self.peer_url])
            .args(["--initial-cluster", &format!("test={}", self.peer_url)])
            .args(self.tls.iter().flat_map(|d| {
                [
                    "--client-cert-auth".into(),
                    format!("--trusted-ca-file={}", d.join("ca.pem").display()),
                    format!("--cert-file={}", d.join("server.pem").display()),
                    format!("--key-file={}", d.join("server.key").display()),
                ]
            }))
            .stderr(Stdio::piped())
            .spawn()
            .expect("etcd (scripts/setup-test-env installs etcd-server)");
        let stderr = child.stderr.take().unwrap();
        tokio::task::spawn_blocking(move || {
            let mut lines = std::io::BufReader::new(stderr).lines();
            for line in lines.by_ref() {
                if line.unwrap().contains("ready to serve client requests") {
                    // Keep draining, so that etcd never blocks on a full pipe.
                    std::thread::spawn(move || lines.for_each(drop));
                    return;
                }
            }
            panic!("etcd exited before serving");
        })
        .await
        .unwrap();
        self.child = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The master key every replica of these tests shares, in a file.
fn master_key_file() -> std::path::PathBuf {
    let key_file = std::env::temp_dir().join(format!("rolecall-master-{}.key", std::process::id()));
    if !key_file.exists() {
        std::fs::write(&key_file, "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=").unwrap();
    }
    key_file
}

/// A replica: an in-process server whose state is in `etcd`, under `prefix`.
async fn replica(etcd: &Etcd, prefix: &str) -> TestServer {
    replica_with(etcd, prefix, |_| {}).await
}

async fn replica_with(
    etcd: &Etcd,
    prefix: &str,
    adjust: impl FnOnce(&mut rolecall_server::config::Config) + Send + 'static,
) -> TestServer {
    let key_file = master_key_file();
    let (url, prefix) = (etcd.client_url.clone(), prefix.to_string());
    TestServer::start_with(move |c| {
        c.storage.backend = "etcd".into();
        c.storage.etcd_endpoints = vec![url];
        c.storage.etcd_prefix = prefix;
        c.storage.master_key_file = Some(key_file);
        adjust(c);
    })
    .await
}

/// Waits (yielding, polling every 5 ms, for at most 20 s) until `check` holds; how long it took.
async fn until<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    let mut poll = tokio::time::interval(Duration::from_millis(5));
    while start.elapsed() < Duration::from_secs(20) {
        poll.tick().await;
        if check().await {
            return start.elapsed();
        }
    }
    panic!("{what}: not within 20 s");
}

async fn role_names_on(server: &TestServer, instance_id: &str, key: &str) -> Vec<String> {
    let t = token(server, instance_id, key).await;
    role_names(server, &t).await
}

#[tokio::test]
async fn three_replicas_serve_one_fleet_and_see_each_others_changes() {
    let etcd = Etcd::start("three").await;
    let a = replica(&etcd, "three/").await;
    let b = replica(&etcd, "three/").await;
    let c = replica(&etcd, "three/").await;
    role_in_profile(&a, "Web").await;
    role_in_profile(&a, "Batch").await;
    // Launched through A (a 200-instance launch: more writes than one etcd transaction).
    let fleet = launch(&a, 200, Some("Web")).await;
    let (instance, key) = &fleet[0];
    // B and C know the instance and its role at once (reads go to etcd)...
    assert_eq!(role_names_on(&b, &instance.instance_id, key).await, ["Web"]);
    assert_eq!(role_names_on(&c, &instance.instance_id, key).await, ["Web"]);
    // ...and credentials any replica issues verify on every other.
    let t = token(&b, &instance.instance_id, key).await;
    let issued_by_b = credentials(&b, &t, "Web").await.unwrap();
    let me = c
        .sts(temporary(&issued_by_b))
        .get_caller_identity(pb::GetCallerIdentityRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.arn, format!("arn:aws:sts::123456789012:assumed-role/Web/{}", instance.instance_id));

    // The role moves through A; B and C, which have it cached, follow through the watch.
    let association = associations_of(&a, &instance.instance_id).await;
    a.ec2()
        .replace_iam_instance_profile_association(pb::ReplaceIamInstanceProfileAssociationRequest {
            association_id: association,
            iam_instance_profile: Some(pb::IamInstanceProfileSpecification {
                name: "Batch".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    assert_eq!(role_names_on(&a, &instance.instance_id, key).await, ["Batch"], "at once through A");
    for (name, replica) in [("B", &b), ("C", &c)] {
        let took = until(&format!("{name} sees the new role"), || async {
            role_names_on(replica, &instance.instance_id, key).await == ["Batch"]
        })
        .await;
        eprintln!("propagation to {name}: {took:?}");
    }
    // A policy change through B reaches A's compiled policies.
    let attach = pb::AttachRolePolicyRequest {
        role_name: "Batch".into(),
        policy_arn: "arn:aws:iam::aws:policy/IAMReadOnlyAccess".into(),
    };
    b.iam().attach_role_policy(attach).await.unwrap();
    let t = token(&a, &instance.instance_id, key).await;
    let creds = credentials(&a, &t, "Batch").await.unwrap();
    let session = temporary(&creds);
    let signed = rolecall_api::iam_client::IamClient::new(a.signing(session, "iam"));
    until("A allows what B attached", || {
        let mut signed = signed.clone();
        async move { signed.list_roles(pb::ListRolesRequest::default()).await.is_ok() }
    })
    .await;
}

async fn associations_of(server: &TestServer, instance_id: &str) -> String {
    let filter = pb::Filter { name: "instance-id".into(), values: vec![instance_id.into()] };
    let found = server
        .ec2()
        .describe_iam_instance_profile_associations(pb::DescribeIamInstanceProfileAssociationsRequest {
            filters: vec![filter],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    found.iam_instance_profile_associations[0].association_id.clone()
}

#[tokio::test]
async fn replicas_ride_out_an_etcd_restart_without_losing_acknowledged_writes() {
    let mut etcd = Etcd::start("restart").await;
    let a = replica(&etcd, "restart/").await;
    let b = replica(&etcd, "restart/").await;
    let mut acknowledged = Vec::new();
    for n in 0..10 {
        let name = format!("before-{n}");
        a.iam()
            .create_user(pb::CreateUserRequest { user_name: name.clone(), ..Default::default() })
            .await
            .unwrap();
        acknowledged.push(name);
    }
    etcd.stop();
    // While etcd is down, writes fail cleanly (an error, not a hang or a lie).
    let down =
        a.iam().create_user(pb::CreateUserRequest { user_name: "during".into(), ..Default::default() }).await;
    assert!(down.is_err());
    etcd.run().await;
    // Back: both replicas serve every acknowledged write, and take new ones.
    until("A writes again", || {
        let a = &a;
        async move {
            a.iam()
                .create_user(pb::CreateUserRequest { user_name: "after".into(), ..Default::default() })
                .await
                .is_ok()
        }
    })
    .await;
    let users = user_names(&mut b.iam()).await;
    for name in acknowledged.iter().chain([&"after".to_string()]) {
        assert!(users.contains(name), "{name} lost: {users:?}");
    }
}

/// The keys a replica's ring holds (its gauge).
async fn keys(server: &TestServer) -> u64 {
    rolecall_server::telemetry::counter_in(&server.metrics_text().await, "rolecall_key_ring_keys")
}

#[tokio::test]
async fn a_key_rotated_on_one_replica_verifies_on_the_others_at_once() {
    let etcd = Etcd::start("rotation").await;
    let a = replica_with(&etcd, "rotation/", |c| c.key_ring.rotate_after_secs = 60).await;
    let b = replica_with(&etcd, "rotation/", |c| c.key_ring.rotate_after_secs = 60).await;
    role_in_profile(&a, "Web").await;
    let (instance, key) = launch(&a, 1, Some("Web")).await.remove(0);
    // A stages a new key (and activates the one it staged at start)...
    a.advance(60).await;
    // ...B hears of it through the watch before anything is sealed with it...
    let staged = keys(&a).await;
    until("B holds A's staged key", || async { keys(&b).await >= staged }).await;
    // ...A activates it, and what A seals with it opens on B on the first try.
    a.advance(3).await;
    let rotations = a.counter("rolecall_key_ring_rotations_total").await;
    assert!(rotations >= 1, "A rotated");
    let t = token(&a, &instance.instance_id, &key).await;
    let creds = credentials(&a, &t, "Web").await.unwrap();
    let session = temporary(&creds);
    let me = b.sts(session).get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap().into_inner();
    assert!(me.arn.ends_with(&instance.instance_id));
    // B also takes A's IMDS token.
    assert_eq!(role_names(&b, &t).await, ["Web"]);
}

#[tokio::test]
async fn an_agent_carries_on_against_the_other_replicas_when_one_stops() {
    let etcd = Etcd::start("failover").await;
    let replicas = vec![
        replica(&etcd, "failover/").await,
        replica(&etcd, "failover/").await,
        replica(&etcd, "failover/").await,
    ];
    role_in_profile(&replicas[0], "Web").await;
    let (instance, key) = launch(&replicas[0], 1, Some("Web")).await.remove(0);
    // The agent: its own clients of every replica, round-robin, on to the next replica when
    // a call fails.
    let clients: Vec<_> = replicas.iter().map(|r| r.imds()).collect();
    let mut replicas: Vec<Option<TestServer>> = replicas.into_iter().map(Some).collect();
    let mut next = 0;
    let mut failovers = 0;
    for fetch in 0..60 {
        if fetch == 20 {
            // Stopped in the middle of the run; the agent does not know.
            replicas[1].take().unwrap().stop().await.unwrap();
        }
        let mut served = false;
        for attempt in 0..3 {
            let mut imds = clients[(next + attempt) % 3].clone();
            let result = async {
                let token = imds
                    .get_token(pb::GetTokenRequest {
                        instance_id: instance.instance_id.clone(),
                        instance_key: key.clone(),
                        ttl_seconds: 60,
                    })
                    .await?
                    .into_inner()
                    .token;
                let request =
                    pb::GetSecurityCredentialsRequest { caller: caller(&token), role_name: "Web".into() };
                imds.get_security_credentials(request).await
            }
            .await;
            if result.is_ok_and(|c| c.into_inner().code == "Success") {
                served = true;
                break;
            }
            failovers += 1;
        }
        assert!(served, "fetch {fetch} failed on every replica");
        next = (next + 1) % 3;
    }
    // Every third fetch after the stop started on the stopped replica and moved on.
    assert!(failovers >= 10, "{failovers} failovers");
}

#[tokio::test]
async fn two_replicas_racing_on_one_role_never_pass_its_quota() {
    let etcd = Etcd::start("race").await;
    let a = replica(&etcd, "race/").await;
    let b = replica(&etcd, "race/").await;
    create_role(&a, "Busy", EC2_TRUST).await;
    let document =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    let mut arns = Vec::new();
    for n in 0..16 {
        let created = a
            .iam()
            .create_policy(pb::CreatePolicyRequest {
                policy_name: format!("p{n}"),
                policy_document: document.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        arns.push(created.into_inner().policy.unwrap().arn);
    }
    // 16 attachments at once, half through each replica, against a quota of 10.
    let mut racing = Vec::new();
    for (n, arn) in arns.into_iter().enumerate() {
        let mut iam = if n % 2 == 0 { a.iam() } else { b.iam() };
        racing.push(tokio::spawn(async move {
            iam.attach_role_policy(pb::AttachRolePolicyRequest { role_name: "Busy".into(), policy_arn: arn })
                .await
        }));
    }
    let mut attached = 0;
    for task in racing {
        match task.await.unwrap() {
            Ok(_) => attached += 1,
            Err(status) => assert_eq!(reason(&status), "LimitExceeded", "{status:?}"),
        }
    }
    assert_eq!(attached, 10);
    let listed = b
        .iam()
        .list_attached_role_policies(pb::ListAttachedRolePoliciesRequest {
            role_name: "Busy".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .attached_policies;
    assert_eq!(listed.len(), 10);
}

#[tokio::test]
async fn replicas_reach_etcd_over_mutual_tls_and_without_a_certificate_are_refused() {
    let pki = pki("etcd");
    let etcd = Etcd::start_with("tls", Some(&pki)).await;
    let dir = pki.dir.clone();
    let with_tls = move |client_certificate: bool| {
        let dir = dir.clone();
        move |c: &mut rolecall_server::config::Config| {
            c.storage.etcd_ca_file = Some(dir.join("ca.pem"));
            if client_certificate {
                c.storage.etcd_cert_file = Some(dir.join("client.pem"));
                c.storage.etcd_key_file = Some(dir.join("client.key"));
            }
        }
    };
    let a = replica_with(&etcd, "tls/", with_tls(true)).await;
    let b = replica_with(&etcd, "tls/", with_tls(true)).await;
    create_role(&a, "OverTls", EC2_TRUST).await;
    let mut iam = b.iam();
    let got = iam.get_role(pb::GetRoleRequest { role_name: "OverTls".into() }).await.unwrap().into_inner();
    assert_eq!(got.role.unwrap().role_name, "OverTls", "written over TLS through a, read through b");

    // Without a client certificate etcd refuses the replica, which does not start.
    let mut config = rolecall_server::config::Config::default();
    config.storage.backend = "etcd".into();
    config.storage.etcd_endpoints = vec![etcd.client_url.clone()];
    config.storage.master_key_file = Some(master_key_file());
    with_tls(false)(&mut config);
    let refused = rolecall_server::custody::open_store(&config.storage.custody())
        .await
        .err()
        .expect("no client certificate");
    let no_answer = |e: &rolecall_server::custody::CustodyError| {
        matches!(
            e,
            rolecall_server::custody::CustodyError::Etcd(
                rolecall_server::store::etcd::EtcdError::NoAnswer { .. }
            )
        ) && e.to_string().contains("did not answer")
    };
    assert!(no_answer(&refused), "{refused}");
    // Nor does one that speaks plaintext to it.
    config.storage.etcd_endpoints = vec![etcd.client_url.replace("https://", "http://")];
    config.storage.etcd_ca_file = None;
    let plaintext = rolecall_server::custody::open_store(&config.storage.custody())
        .await
        .err()
        .expect("plaintext to a TLS etcd");
    assert!(no_answer(&plaintext), "{plaintext}");
    let _ = std::fs::remove_dir_all(&pki.dir);
}

#[tokio::test]
async fn the_master_key_is_resealed_online_while_replicas_write() {
    let etcd = Etcd::start("reseal").await;
    let new_key = std::env::temp_dir().join(format!("rolecall-master-new-{}.key", std::process::id()));
    std::fs::write(&new_key, "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk=").unwrap();
    let rotating = {
        let new_key = new_key.clone();
        move |c: &mut rolecall_server::config::Config| {
            c.storage.previous_master_key_files = vec![c.storage.master_key_file.take().unwrap()];
            c.storage.master_key_file = Some(new_key);
        }
    };
    // Under the old key: a role and a user's key.
    let old = replica(&etcd, "reseal/").await;
    create_role(&old, "Before", EC2_TRUST).await;
    let alice = user_with_key(&old, "alice").await;
    drop(old);

    // Replicas on the new key (the old one still opens) keep writing while the reseal runs.
    let a = replica_with(&etcd, "reseal/", rotating.clone()).await;
    let b = replica_with(&etcd, "reseal/", rotating.clone()).await;
    let writer = {
        let mut iam = b.iam();
        tokio::spawn(async move {
            for n in 0..40 {
                iam.create_role(pb::CreateRoleRequest {
                    role_name: format!("During{n}"),
                    assume_role_policy_document: EC2_TRUST.into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            }
        })
    };
    let mut config = rolecall_server::config::Config::default();
    config.storage.backend = "etcd".into();
    config.storage.etcd_endpoints = vec![etcd.client_url.clone()];
    config.storage.etcd_prefix = "reseal/".into();
    config.storage.master_key_file = Some(master_key_file());
    rotating(&mut config);
    let done = rolecall_server::custody::reseal(&config.storage.custody()).await.unwrap();
    assert!(done.resealed > 0, "{done:?}");
    writer.await.unwrap();
    assert_eq!(
        rolecall_server::custody::reseal(&config.storage.custody()).await.unwrap().resealed,
        0,
        "nothing left"
    );

    // A replica with the new key alone opens everything: what was there, what was written
    // during the reseal, and the user's key still signs.
    let fresh = replica_with(&etcd, "reseal/", move |c| c.storage.master_key_file = Some(new_key)).await;
    let roles = fresh.iam().list_roles(pb::ListRolesRequest::default()).await.unwrap().into_inner().roles;
    assert_eq!(roles.len(), 41, "{:?}", roles.iter().map(|r| &r.role_name).collect::<Vec<_>>());
    let me = fresh.sts(long_term(&alice)).get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap();
    assert!(me.into_inner().arn.ends_with("user/alice"));
    drop((a, b));
}

#[tokio::test]
async fn one_process_on_redb_moves_to_etcd_with_its_credentials_still_valid() {
    // One server on the default embedded store, with a user, a role on an instance, and
    // credentials handed out.
    let dir = std::env::temp_dir().join(format!("rolecall-move-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data").display().to_string();
    let key_env = [("ROLECALL_MASTER_KEY", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=")];
    let served = serve_binary(&["--data-dir", &data], &key_env).await;
    let alice = user_with_key_via(served.channel().await, "alice").await;
    let (instance_id, _, creds) = instance_with_role_via(served.channel().await, "Web").await;
    assert!(served.stop("TERM").await.0.success());

    // Export (the server stopped), import into an etcd no replica has started on.
    let etcd = Etcd::start("move").await;
    let file = dir.join("export.jsonl").display().to_string();
    let tool = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rolecall"))
            .args(["store"])
            .args(args)
            .envs(key_env)
            .output()
            .unwrap()
    };
    let out = tool(&["export", "--file", &file, "--data-dir", &data]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let into_etcd = ["--storage", "etcd", "--etcd-endpoint", &etcd.client_url];
    let import = |extra: &[&str]| tool(&[&["import", "--file", &file][..], &into_etcd, extra].concat());
    let out = import(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("imported "));
    let again = import(&[]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "a second import is refused");

    // A replica on etcd serves what the one process had: the role, and alice's key signs.
    let replica = replica_with(&etcd, "rolecall/", |_| {}).await;
    let roles = replica.iam().list_roles(pb::ListRolesRequest::default()).await.unwrap().into_inner().roles;
    assert_eq!(roles.iter().map(|r| r.role_name.as_str()).collect::<Vec<_>>(), ["Web"]);
    let me =
        replica.sts(long_term(&alice)).get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap();
    assert!(me.into_inner().arn.ends_with("user/alice"));
    // The key ring moved too: session credentials issued before the move still verify.
    let me =
        replica.sts(temporary(&creds)).get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap();
    assert_eq!(me.into_inner().arn, format!("arn:aws:sts::123456789012:assumed-role/Web/{instance_id}"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_replica_cut_off_from_etcd_says_not_serving_until_it_is_back() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let mut etcd = Etcd::start("health").await;
    let a = replica(&etcd, "health/").await;
    let status = |service: &'static str| {
        let channel = a.channel.clone();
        async move {
            let request = HealthCheckRequest { service: service.into() };
            HealthClient::new(channel).check(request).await.unwrap().into_inner().status()
        }
    };
    assert_eq!(status("").await, ServingStatus::Serving);
    etcd.stop();
    // Past the watch's grace period, the replica tells balancers to go elsewhere...
    until("NOT_SERVING", || async { status("").await == ServingStatus::NotServing }).await;
    assert_eq!(status("rolecall.v1.InstanceMetadata").await, ServingStatus::NotServing);
    assert_eq!(rolecall_server::telemetry::counter_in(&a.metrics_text().await, "rolecall_store_in_sync"), 0);
    // ...and serves again once the watch is back.
    etcd.run().await;
    until("SERVING again", || async { status("").await == ServingStatus::Serving }).await;
    assert_eq!(status("rolecall.v1.Iam").await, ServingStatus::Serving);
    assert_eq!(rolecall_server::telemetry::counter_in(&a.metrics_text().await, "rolecall_store_in_sync"), 1);
}

#[tokio::test]
async fn an_export_from_etcd_reads_one_revision_while_writes_go_on() {
    use rolecall_server::store::{Store, Txn, etcd::EtcdStore};
    let etcd = Etcd::start("asof").await;
    let settings = rolecall_server::store::etcd::EtcdSettings {
        endpoints: vec![etcd.client_url.clone()],
        prefix: "asof/".into(),
        ..Default::default()
    };
    let (live, _) = EtcdStore::connect(&settings).await.unwrap();
    for n in 0..100 {
        live.commit(Txn::new().put(format!("k/{n:03}"), b"before".to_vec())).await.unwrap();
    }
    let then = live.as_of(live.revision().await.unwrap());
    // Writes after the snapshot's revision: a new key, a changed one, a deleted one.
    live.commit(Txn::new().put("k/100", b"after".to_vec()).put("k/000", b"after".to_vec()).delete("k/050"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = then.list("k/", after.as_deref(), 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        seen.extend(page);
    }
    assert_eq!(seen.len(), 100, "every page as of the one revision");
    assert!(seen.iter().all(|v| &*v.value == b"before"));
    assert!(then.get("k/050").await.unwrap().is_some());
    assert!(then.commit(Txn::new().put("k/x", vec![])).await.is_err(), "a past revision takes no writes");
}

/// Issue 18: a key's last use, noted by whichever replica it signed on, is the latest use on
/// every replica: one that has seen no use reads the stored one, and a replica whose clock
/// is behind does not write its older use over a later one.
#[tokio::test]
async fn a_keys_last_use_is_the_latest_on_every_replica() {
    let etcd = Etcd::start("last-use").await;
    let a = replica(&etcd, "last-use/").await;
    let b = replica(&etcd, "last-use/").await;
    let c = replica(&etcd, "last-use/").await;
    let key = user_with_key(&a, "rotating").await;
    let last_used = |server: &TestServer| {
        let (mut iam, id) = (server.iam(), key.access_key_id.clone());
        async move {
            let r = iam.get_access_key_last_used(pb::GetAccessKeyLastUsedRequest { access_key_id: id });
            r.await.unwrap().into_inner().access_key_last_used.unwrap()
        }
    };
    // An IAM call (refused: the user has no policy, but its signature was good, so it is a
    // use), or an STS one.
    let use_on = |server: &TestServer, service: &'static str| {
        let (iam, mut sts) = (server.signing(long_term(&key), "iam"), server.sts(long_term(&key)));
        async move {
            match service {
                "iam" => drop(
                    pb::iam_client::IamClient::new(iam).list_roles(pb::ListRolesRequest::default()).await,
                ),
                _ => drop(sts.get_caller_identity(pb::GetCallerIdentityRequest {}).await.unwrap()),
            }
        }
    };
    assert_eq!(last_used(&c).await.service_name, "N/A", "never used");

    // Used on A: C, which saw no use, reads A's from the store.
    use_on(&a, "iam").await;
    let on_a = last_used(&a).await;
    assert_eq!(on_a.service_name, "iam");
    until("C reads A's use", || async { last_used(&c).await == on_a }).await;

    // Two minutes later on B: every replica then shows B's use.
    b.advance(120).await;
    use_on(&b, "sts").await;
    let on_b = last_used(&b).await;
    assert_eq!(on_b.service_name, "sts");
    assert!(on_b.last_used_date > on_a.last_used_date, "{on_b:?} after {on_a:?}");
    for (name, replica) in [("A", &a), ("C", &c)] {
        until(&format!("{name} shows B's later use"), || async { last_used(replica).await == on_b }).await;
    }

    // A's clock is a minute behind B's: its use, written after B's, is older, and stays under it.
    a.advance(60).await;
    use_on(&a, "iam").await;
    // A second key's first use on A is written after the first key's (A's writes go in order),
    // so once C sees it, A's write of the first key's older use has been tried.
    let marker = user_with_key(&a, "marker").await;
    let signing = a.signing(long_term(&marker), "iam");
    let _ = pb::iam_client::IamClient::new(signing).list_roles(pb::ListRolesRequest::default()).await;
    until("C reads the marker key's use", || async {
        let mut iam = c.iam();
        let request = pb::GetAccessKeyLastUsedRequest { access_key_id: marker.access_key_id.clone() };
        iam.get_access_key_last_used(request)
            .await
            .unwrap()
            .into_inner()
            .access_key_last_used
            .unwrap()
            .service_name
            == "iam"
    })
    .await;
    assert_eq!(last_used(&c).await, on_b, "the store kept the later use");
    assert_eq!(last_used(&a).await, on_b, "A shows the later of the stored use and its own");
}
