//! Instances with networks of their own (Linux network namespaces joined to the host by
//! veth pairs), so that the HTTP instance metadata service can tell them apart by source
//! address, as EC2's does: each namespace holds one instance's private address and reaches
//! 169.254.169.254 on the host. Needs root (CI runs as root); elsewhere these tests say so
//! and pass nothing off as tested.

use std::{
    net::SocketAddr,
    process::Command,
    sync::atomic::{AtomicUsize, Ordering},
};

use crate::{botocore::Agent, common::*};

const IMDS_ADDRESS: &str = "169.254.169.254";

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

fn in_ns(ns: &str, args: &[&str]) {
    let mut all = vec!["netns", "exec", ns, "ip"];
    all.extend_from_slice(args);
    ip(&all);
}

/// Whether this machine lets us make network namespaces (root, iproute2).
fn namespaces_available() -> bool {
    let name = format!("rc-probe-{}", std::process::id());
    let made = Command::new("ip").args(["netns", "add", &name]).output().is_ok_and(|o| o.status.success());
    if made {
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
    } else {
        eprintln!("network namespaces unavailable (not root?): source-address tests not run");
    }
    made
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A unique short name (interface names are at most 15 bytes).
fn unique(kind: &str) -> String {
    format!("rc{kind}{}x{}", std::process::id() % 100_000, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Namespaces (and with them their veth pairs), deleted on drop.
#[derive(Default)]
struct Networks(Vec<String>);

impl Drop for Networks {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

impl Networks {
    fn namespace(&mut self) -> String {
        let ns = unique("n");
        ip(&["netns", "add", &ns]);
        in_ns(&ns, &["link", "set", "lo", "up"]);
        self.0.push(ns.clone());
        ns
    }

    /// A namespace with `address` on a veth whose host end holds 169.254.169.254: an
    /// instance directly on the host's metadata link.
    fn instance(&mut self, address: &str) -> String {
        let ns = self.namespace();
        let (host_end, ns_end) = (unique("h"), unique("i"));
        ip(&["link", "add", &host_end, "type", "veth", "peer", "name", &ns_end]);
        ip(&["link", "set", &ns_end, "netns", &ns]);
        ip(&["addr", "add", &format!("{IMDS_ADDRESS}/32"), "dev", &host_end]);
        ip(&["link", "set", &host_end, "up"]);
        ip(&["route", "add", &format!("{address}/32"), "dev", &host_end]);
        in_ns(&ns, &["addr", "add", &format!("{address}/32"), "dev", &ns_end]);
        in_ns(&ns, &["link", "set", &ns_end, "up"]);
        in_ns(&ns, &["route", "add", &format!("{IMDS_ADDRESS}/32"), "dev", &ns_end]);
        ns
    }

    /// A namespace with `address` one router away from the host (a container behind its
    /// instance's bridge): the token's IP TTL must allow one more hop.
    fn behind_a_router(&mut self, address: &str, link: &str) -> String {
        let router = self.namespace();
        let ns = self.namespace();
        let (host_end, router_up) = (unique("h"), unique("u"));
        let (router_down, ns_end) = (unique("d"), unique("i"));
        let (router_up_address, router_down_address) = (format!("{link}.1"), format!("{link}.2"));
        ip(&["link", "add", &host_end, "type", "veth", "peer", "name", &router_up]);
        ip(&["link", "set", &router_up, "netns", &router]);
        ip(&["link", "add", &router_down, "type", "veth", "peer", "name", &ns_end]);
        ip(&["link", "set", &router_down, "netns", &router]);
        ip(&["link", "set", &ns_end, "netns", &ns]);
        // The host: 169.254.169.254 on its end, the instance's address via the router.
        ip(&["addr", "add", &format!("{IMDS_ADDRESS}/32"), "dev", &host_end]);
        ip(&["link", "set", &host_end, "up"]);
        ip(&["route", "add", &format!("{router_up_address}/32"), "dev", &host_end]);
        ip(&["route", "add", &format!("{address}/32"), "via", &router_up_address, "dev", &host_end]);
        // The router forwards between the two.
        in_ns(&router, &["addr", "add", &format!("{router_up_address}/32"), "dev", &router_up]);
        in_ns(&router, &["addr", "add", &format!("{router_down_address}/32"), "dev", &router_down]);
        in_ns(&router, &["link", "set", &router_up, "up"]);
        in_ns(&router, &["link", "set", &router_down, "up"]);
        in_ns(&router, &["route", "add", &format!("{IMDS_ADDRESS}/32"), "dev", &router_up]);
        in_ns(&router, &["route", "add", &format!("{address}/32"), "dev", &router_down]);
        let out = Command::new("ip")
            .args(["netns", "exec", &router, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
            .output()
            .expect("sysctl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // The container: its address, the router as its gateway.
        in_ns(&ns, &["addr", "add", &format!("{address}/32"), "dev", &ns_end]);
        in_ns(&ns, &["link", "set", &ns_end, "up"]);
        in_ns(&ns, &["route", "add", &format!("{router_down_address}/32"), "dev", &ns_end]);
        in_ns(
            &ns,
            &["route", "add", &format!("{IMDS_ADDRESS}/32"), "via", &router_down_address, "dev", &ns_end],
        );
        ns
    }
}

/// A server whose HTTP IMDS identifies instances by source address, listening on every
/// address (169.254.169.254 included), with its fleet in `network`.
async fn server_on(network: &str) -> TestServer {
    let network = network.to_string();
    TestServer::start_with(move |c| {
        c.imds.instance_identity = "source_address".into();
        c.imds.listen = Some(SocketAddr::from(([0, 0, 0, 0], 0)));
        c.instances.private_network = network;
    })
    .await
}

fn endpoint(server: &TestServer) -> String {
    format!("http://{IMDS_ADDRESS}:{}/", server.imds_addr.port())
}

#[tokio::test]
async fn instances_in_their_own_networks_get_their_own_roles_by_source_address() {
    if !namespaces_available() {
        return;
    }
    let server = server_on("10.201.0.0/16").await;
    role_in_profile(&server, "Web").await;
    role_in_profile(&server, "Batch").await;
    let (web, web_key) = launch_with(&server, 1, Some("Web"), "required").await.remove(0);
    let (batch, batch_key) = launch_with(&server, 1, Some("Batch"), "optional").await.remove(0);
    let (bare, _) = launch(&server, 1, None).await.remove(0);
    assert_eq!(
        [&web, &batch, &bare].map(|i| i.private_ip_address.as_str()),
        ["10.201.0.4", "10.201.0.5", "10.201.0.6"]
    );
    let mut networks = Networks::default();
    let endpoint = endpoint(&server);
    let env = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint.as_str())];
    let mut seen = Vec::new();
    let web_ns = networks.instance(&web.private_ip_address);
    let batch_ns = networks.instance(&batch.private_ip_address);
    for (instance, ns) in [(&web, &web_ns), (&batch, &batch_ns)] {
        let mut agent = Agent::start_in(Some(ns), &instance.instance_id, &env);
        let found = agent.report().await;
        assert_eq!(found["method"], "iam-role", "{}: {found}", instance.instance_id);
        seen.push(found["access_key"].as_str().unwrap().to_string());
        agent.finish().await;
    }
    // Each got its own instance's credentials (what its metadata serves over gRPC).
    for (instance, key, role, found) in
        [(&web, &web_key, "Web", &seen[0]), (&batch, &batch_key, "Batch", &seen[1])]
    {
        let t = token(&server, &instance.instance_id, key).await;
        assert_eq!(&credentials(&server, &t, role).await.unwrap().access_key_id, found, "{role}");
    }
    // An instance without a role finds none; so does an address that is no instance's.
    let ns = networks.instance(&bare.private_ip_address);
    let mut agent = Agent::start_in(Some(&ns), &bare.instance_id, &env);
    assert_eq!(agent.report().await["error"], "Unable to locate credentials");
    agent.finish().await;
    let stranger = networks.instance("10.201.9.9");
    let mut agent = Agent::start_in(Some(&stranger), "stranger", &env);
    assert_eq!(agent.report().await["error"], "Unable to locate credentials");
    agent.finish().await;
    // A terminated instance's address answers for nobody.
    server
        .ec2()
        .terminate_instances(rolecall_api::TerminateInstancesRequest {
            instance_ids: vec![web.instance_id.clone()],
        })
        .await
        .unwrap();
    let mut agent = Agent::start_in(Some(&web_ns), &web.instance_id, &env);
    assert_eq!(agent.report().await["error"], "Unable to locate credentials");
    agent.finish().await;
}

#[tokio::test]
async fn the_token_answer_reaches_only_as_far_as_the_hop_limit() {
    if !namespaces_available() {
        return;
    }
    let server = server_on("10.202.0.0/16").await;
    role_in_profile(&server, "Web").await;
    let mut networks = Networks::default();
    let endpoint = endpoint(&server);
    let env = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint.as_str())];
    // Hop limit 1 (AWS's default): a container one router away gets no token, and with
    // IMDSv2 required no credentials either.
    let (near, _) = launch_with(&server, 1, Some("Web"), "required").await.remove(0);
    let ns = networks.behind_a_router(&near.private_ip_address, "192.168.201");
    let mut agent = Agent::start_in(Some(&ns), &near.instance_id, &env);
    assert_eq!(agent.report().await["error"], "Unable to locate credentials");
    agent.finish().await;
    // Hop limit 2: the same path works.
    server
        .ec2()
        .modify_instance_metadata_options(rolecall_api::ModifyInstanceMetadataOptionsRequest {
            instance_id: near.instance_id.clone(),
            http_put_response_hop_limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut agent = Agent::start_in(Some(&ns), &near.instance_id, &env);
    let found = agent.report().await;
    assert_eq!(found["method"], "iam-role", "{found}");
    assert_eq!(found["token"], true);
    agent.finish().await;
}
