//! The benchmark: for each scenario, a server configured for it, a fleet bootstrapped
//! through the API, and goose passes (closed loop for throughput, open loop for latency at
//! a rate), measured against the baseline of the same run.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use goose::prelude::*;
use rolecall_api::{self as pb, ec2_client::Ec2Client};
use rolecall_server::config::Config;
use tonic::transport::{Channel, Endpoint};

use crate::{
    fleet::{self, Fleet, ROLES},
    harness::{ChurnBook, Load, Run, Scenario},
    procfs::{self, Machine},
    report::{self, Latency, Pass, ReplicaFigures, Report},
    servers::{Kind, ServerUnderTest},
};

/// How a benchmark runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub scenarios: Vec<Scenario>,
    pub instances: usize,
    pub users: usize,
    pub duration_secs: usize,
    /// Open-loop passes run at this fraction of the baseline's closed-loop throughput.
    pub open_fraction: f64,
    /// A fixed open-loop rate instead (requests per second).
    pub rate: Option<f64>,
    pub channels: usize,
    pub out: PathBuf,
    /// Drive these servers (replicas of one deployment) instead of starting one; scenarios
    /// needing special server settings must then be configured there by hand.
    pub host: Vec<String>,
    /// Their metrics addresses, in the same order.
    pub metrics: Vec<SocketAddr>,
    /// Drive the gRPC baseline someone else runs (`rolecall-loadtest serve-baseline`, under
    /// callgrind for `scripts/callgrind-fetch`) instead of starting one.
    pub baseline_host: Option<String>,
    /// Pin the server to core 0 (the harness pins itself to core 1 before starting).
    pub pin: bool,
    /// Run servers in this process (tests): no CPU accounting of the server.
    pub in_process: bool,
    /// Rolecall replicas on one etcd (None: a single server on the in-memory store).
    pub replicas: Option<usize>,
    /// One server on redb (in `out`) rather than in memory.
    pub redb: bool,
    /// The storm's rotation period: the whole fleet must warm up within it.
    pub storm_period_secs: i64,
    /// Pause between two role replacements in churn.
    pub churn_interval: Duration,
    pub command: Vec<String>,
}

/// The rolecall configuration each scenario needs.
pub fn server_config(scenario: Scenario, instances: usize, storm_period: i64) -> Config {
    let mut c = Config { metrics_listen: None, ..Config::default() };
    // The figures are of the credential path, which reads no store; a bootstrap into a
    // durable store would only add fsyncs to the set-up.
    c.storage.backend = "memory".into();
    c.server.concurrency_limit = 100_000;
    c.credentials.cache_capacity = (instances as u64 * 2).max(1000);
    match scenario {
        Scenario::Refresh => {
            c.simulation.short_credentials = true;
            c.credentials.rotate_after_secs = 0;
            c.credentials.lifetime_secs = 900;
            c.credentials.rotation_jitter_secs = 0;
            c.credentials.min_remaining_secs = 0;
        }
        Scenario::Storm => {
            c.simulation.short_credentials = true;
            c.simulation.synchronized_rotation = true;
            c.credentials.rotate_after_secs = storm_period;
            c.credentials.lifetime_secs = storm_period * 10;
            c.credentials.rotation_jitter_secs = 0;
            c.credentials.min_remaining_secs = 0;
            c.credentials.prefetch_secs = storm_prefetch(storm_period);
        }
        Scenario::Baseline | Scenario::Fetch | Scenario::Churn | Scenario::ImdsBaseline | Scenario::Imds => {}
    }
    c
}

/// How long before the storm's rotation point the server starts replacing fetched
/// credentials in the background (a fifth of the period).
pub fn storm_prefetch(storm_period: i64) -> i64 {
    (storm_period / 5).max(1)
}

async fn start_server(opts: &Options, scenario: Scenario) -> Result<ServerUnderTest, String> {
    let kind = if scenario.is_baseline() { Kind::Baseline } else { Kind::Rolecall };
    if !opts.host.is_empty() && kind == Kind::Rolecall {
        return ServerUnderTest::remote(kind, &opts.host, &opts.metrics);
    }
    if let Some(url) = &opts.baseline_host
        && kind == Kind::Baseline
    {
        return ServerUnderTest::remote(kind, std::slice::from_ref(url), &[]);
    }
    let config = server_config(scenario, opts.instances, opts.storm_period_secs);
    if let Some(n) = opts.replicas
        && kind == Kind::Rolecall
    {
        return start_replicas(opts, config, n);
    }
    let mut config = config;
    if opts.redb && kind == Kind::Rolecall {
        let dir = opts.out.join("redb-data");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        config.storage.backend = "redb".into();
        config.storage.data_dir = dir.clone();
        let key = dir.join("master.key");
        std::fs::write(&key, rolecall_server::domain::master_key::MasterKey::generate())
            .map_err(|e| e.to_string())?;
        config.storage.master_key_file = Some(key);
    }
    if opts.in_process {
        ServerUnderTest::in_process(kind, config).await
    } else {
        let json = config_json(&config)?;
        ServerUnderTest::spawn_child(kind, &json, opts.pin.then_some(0))
    }
}

/// `opts.replicas` children on an etcd of their own, all pinned to the server core: on two
/// cores this shows what a replica costs, not scaling.
fn start_replicas(opts: &Options, mut config: Config, replicas: usize) -> Result<ServerUnderTest, String> {
    let etcd = crate::servers::Etcd::start(opts.out.join("etcd"), opts.pin.then_some(0))?;
    let key = opts.out.join("master.key");
    std::fs::write(&key, rolecall_server::domain::master_key::MasterKey::generate())
        .map_err(|e| e.to_string())?;
    config.storage.backend = "etcd".into();
    config.storage.etcd_endpoints = vec![etcd.client_url.clone()];
    config.storage.master_key_file = Some(key);
    let json = config_json(&config)?;
    let configs = vec![json; replicas.max(1)];
    ServerUnderTest::spawn_replicas(&configs, opts.pin.then_some(0), etcd)
}

fn config_json(config: &Config) -> Result<String, String> {
    // The child parses this back into a Config; its metrics are always on (the counters).
    let mut c = config.clone();
    c.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    serde_json::to_value(&c).map_err(|e| e.to_string()).map(|v| v.to_string())
}

async fn connect(url: &str, n: usize) -> Result<Vec<Channel>, String> {
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let ch = Endpoint::from_shared(url.to_string())
            .map_err(|e| e.to_string())?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| format!("connect {url}: {e}"))?;
        channels.push(ch);
    }
    Ok(channels)
}

/// Runs every selected scenario and returns the report (also written to `out`).
pub async fn run(opts: &Options) -> Result<Report, String> {
    std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let mut report = Report {
        date: now_iso(),
        command: opts.command.clone(),
        machine: Machine::describe(),
        pinned: opts.pin,
        passes: vec![],
        checks: vec![],
        warnings: vec![],
    };
    let mut scenarios = opts.scenarios.clone();
    // The baselines run first: the open-loop rate of every other scenario derives from its
    // transport's baseline (gRPC, HTTP).
    scenarios.sort_by_key(|s| !s.is_baseline());
    let mut open_rate = opts.rate;
    let mut http_open_rate = opts.rate;
    for scenario in scenarios {
        eprintln!("== {}", scenario.name());
        let server = start_server(opts, scenario).await?;
        // Client-side balancing: each user keeps one channel, and the channels are dealt
        // round the replicas (channel c on replica c % N), so that users spread evenly.
        let mut per_replica = Vec::new();
        for url in server.grpc_urls() {
            per_replica.push(connect(&url, opts.channels).await?);
        }
        let channels: Vec<Channel> = (0..opts.channels)
            .flat_map(|k| per_replica.iter().filter_map(move |c| c.get(k).cloned()))
            .collect();
        let passes = match scenario {
            Scenario::Baseline | Scenario::ImdsBaseline | Scenario::Fetch | Scenario::Imds => {
                let fleet = if scenario.is_baseline() {
                    fleet::synthetic(opts.instances)
                } else {
                    let mut fleet = fleet::bootstrap(&channels, opts.instances).await?;
                    fleet::warm(&channels, &mut fleet, opts.users).await?;
                    fleet
                };
                let mut closed =
                    pass(opts, &server, &channels, scenario, Load::Closed, &fleet, None, None).await?;
                if !scenario.is_baseline() {
                    record_memory(opts, &server, &mut closed, scenario == Scenario::Fetch)?;
                }
                // The open loop runs at a fraction of its transport's baseline (or its own).
                let rate_of = if scenario.is_http() { &mut http_open_rate } else { &mut open_rate };
                let rate = rate_of.unwrap_or(closed.requests_per_second * opts.open_fraction);
                if scenario.is_baseline() {
                    *rate_of = Some(rate);
                }
                let open =
                    pass(opts, &server, &channels, scenario, Load::Open { rate }, &fleet, None, None).await?;
                vec![closed, open]
            }
            Scenario::Refresh => {
                let fleet = fleet::bootstrap(&channels, opts.instances).await?;
                let mut closed =
                    pass(opts, &server, &channels, scenario, Load::Closed, &fleet, None, None).await?;
                if let Some(issued) = closed.credentials_issued {
                    closed.details = serde_json::json!({
                        "issued_per_request": issued as f64 / closed.requests.max(1) as f64,
                        "replicas": server.replicas(),
                    });
                }
                vec![closed]
            }
            Scenario::Storm => vec![storm(opts, &server, &channels, open_rate).await?],
            Scenario::Churn => vec![churn(opts, &server, &channels).await?],
        };
        report.passes.extend(passes);
        server.stop();
    }
    report.evaluate();
    report.write_json(&opts.out.join("report.json"))?;
    Ok(report)
}

/// The server's resident set after a closed pass over a warm fleet, into the pass's details;
/// with `per_credential`, also the bytes one cached credential costs (measured in a fresh
/// process of a fleet's size).
fn record_memory(
    opts: &Options,
    server: &ServerUnderTest,
    pass: &mut Pass,
    per_credential: bool,
) -> Result<(), String> {
    let rss = server.rss_bytes();
    pass.details["server_rss_bytes"] = rss.into();
    pass.details["server_rss_bytes_per_instance"] =
        rss.map(|r| r as f64 / opts.instances.max(1) as f64).into();
    pass.details["replicas"] = server.replicas().into();
    if per_credential && !opts.in_process {
        pass.details["memory_per_cached_credential_bytes"] =
            crate::memory::measure_in_child(opts.instances.max(100_000))?.into();
    }
    Ok(())
}

/// One goose execution over `fleet`.
#[allow(clippy::too_many_arguments)]
async fn pass(
    opts: &Options,
    server: &ServerUnderTest,
    channels: &[Channel],
    scenario: Scenario,
    load: Load,
    fleet: &Fleet,
    storm_window: Option<(Instant, Instant)>,
    churn: Option<Arc<ChurnBook>>,
) -> Result<Pass, String> {
    pass_for(opts, server, channels, scenario, load, fleet, storm_window, churn, opts.duration_secs).await
}

#[allow(clippy::too_many_arguments)]
async fn pass_for(
    opts: &Options,
    server: &ServerUnderTest,
    channels: &[Channel],
    scenario: Scenario,
    load: Load,
    fleet: &Fleet,
    storm_window: Option<(Instant, Instant)>,
    churn: Option<Arc<ChurnBook>>,
    duration_secs: usize,
) -> Result<Pass, String> {
    let run =
        Run::new(scenario, load, fleet.members.clone(), opts.users, channels.to_vec(), storm_window, churn);
    run.install();
    let users = run.users();
    let name = scenario.name();
    let host = if scenario.is_http() {
        server.imds_url.as_deref().ok_or("this server has no HTTP metadata service")?
    } else {
        server.grpc_url.as_str()
    };
    let html = opts
        .out
        .join(format!("{name}-{}.html", if matches!(load, Load::Closed) { "closed" } else { "open" }));
    let html_str = html.display().to_string();
    let me = std::process::id();
    let issued_before = server.counter("rolecall_credentials_issued_total").await;
    let reads_before = server.counter("rolecall_store_reads_total").await;
    let commits_before = commit_buckets(server).await;
    let server_cpu_before = server.cpu_time();
    let replica_cpu_before = server.replica_cpu_times();
    let etcd_cpu_before = server.etcd_cpu_time();
    let generator_cpu_before = procfs::cpu_time(me);
    let started = Instant::now();
    let goose = |e: GooseError| format!("goose: {e}");
    GooseAttack::initialize_with_config(goose::config::GooseConfiguration::default())
        .map_err(goose)?
        .register_scenario(crate::harness::scenario(name))
        .set_default(GooseDefault::Host, host)
        .map_err(goose)?
        .set_default(GooseDefault::Users, users)
        .map_err(goose)?
        .set_default(GooseDefault::IncreaseRate, users.to_string().as_str())
        .map_err(goose)?
        .set_default(GooseDefault::RunTime, duration_secs)
        .map_err(goose)?
        .set_default(GooseDefault::ReportFile, html_str.as_str())
        .map_err(goose)?
        .set_default(GooseDefault::NoTelnet, true)
        .map_err(goose)?
        .set_default(GooseDefault::NoPrintMetrics, true)
        .map_err(goose)?
        .set_default(GooseDefault::Quiet, 1usize)
        .map_err(goose)?
        .execute()
        .await
        .map_err(goose)?;
    let wall = started.elapsed().as_secs_f64();
    let server_cpu = match (server_cpu_before, server.cpu_time()) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b).as_secs_f64()),
        _ => None,
    };
    let etcd_cpu = match (etcd_cpu_before, server.etcd_cpu_time()) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b).as_secs_f64()),
        _ => None,
    };
    let generator_cpu = match (generator_cpu_before, procfs::cpu_time(me)) {
        (Some(b), Some(a)) => a.saturating_sub(b).as_secs_f64(),
        _ => 0.0,
    };
    let issued = match (issued_before, server.counter("rolecall_credentials_issued_total").await) {
        (Some(b), Some(a)) if server.kind == Kind::Rolecall => Some(a.saturating_sub(b)),
        _ => None,
    };
    let store_reads = match (reads_before, server.counter("rolecall_store_reads_total").await) {
        (Some(b), Some(a)) if server.kind == Kind::Rolecall => Some(a.saturating_sub(b)),
        _ => None,
    };
    let store_commits = report::CommitLatency::between(&commits_before, &commit_buckets(server).await);
    let requests = run.requests.load(Ordering::Relaxed);
    let busy = run.busy_seconds().max(1e-9);
    let per_replica = if server.replicas() > 1 {
        replica_figures(
            &run.requests_by_channel(),
            &replica_cpu_before,
            &server.replica_cpu_times(),
            busy.min(wall),
        )
    } else {
        Vec::new()
    };
    let latency = run.latencies.lock().map(|h| Latency::from(&*h)).unwrap_or_default();
    // Utilization over the busy window (goose's start-up and shutdown idle both sides).
    let window = busy.min(wall);
    let server_util = server_cpu.map(|c| c / window);
    let generator_util = generator_cpu / window;
    let mut warnings = Vec::new();
    let errors = run.errors.load(Ordering::Relaxed);
    if errors > 0 {
        warnings.push(format!("{errors} requests failed"));
    }
    if let Load::Open { rate } = load {
        let achieved = requests as f64 / busy;
        if achieved < 0.95 * rate {
            warnings.push(format!(
                "open loop fell behind: {achieved:.0}/s achieved of {rate:.0}/s scheduled (latency includes the lateness)"
            ));
        }
    }
    let storm_figures = storm_window.map(|_| {
        (
            run.steady.lock().map(|h| Latency::from(&*h)).unwrap_or_default(),
            run.storm.lock().map(|h| Latency::from(&*h)).unwrap_or_default(),
        )
    });
    let mut details = serde_json::json!({});
    if let Some((steady, storm)) = storm_figures {
        details = serde_json::json!({
            "steady": steady,
            "storm": storm,
            "rotated": run.rotated.load(Ordering::Relaxed),
            "rotated_before_window": run.rotated_early.load(Ordering::Relaxed),
        });
    }
    if scenario.is_http() {
        details = serde_json::json!({
            "token_puts": run.token_puts.load(Ordering::Relaxed),
            "role_name_gets": run.role_gets.load(Ordering::Relaxed),
        });
    }
    if let Some(book) = run.churn_book() {
        details = serde_json::json!({
            "replacements": book.replacements.load(Ordering::Relaxed),
            "violations": run.violations.load(Ordering::Relaxed),
            "raced": run.raced.load(Ordering::Relaxed),
            "list_requests": run.lists.load(Ordering::Relaxed),
        });
    }
    Ok(Pass {
        scenario,
        load,
        users,
        instances: fleet.members.len(),
        wall_seconds: wall,
        busy_seconds: busy,
        requests,
        errors,
        requests_per_second: requests as f64 / busy,
        latency,
        server_cpu_us_per_request: server_cpu.map(|c| c * 1e6 / requests.max(1) as f64),
        server_cpu_utilization: server_util,
        etcd_cpu_us_per_request: etcd_cpu.map(|c| c * 1e6 / requests.max(1) as f64),
        generator_cpu_utilization: generator_util,
        saturated: report::saturation(server_util, generator_util),
        credentials_issued: issued,
        store_reads,
        store_commits,
        per_replica,
        details,
        warnings,
        goose_report: html_str,
    })
}

/// The store-commit histogram's cumulative buckets, summed over the replicas.
async fn commit_buckets(server: &ServerUnderTest) -> Vec<(f64, u64)> {
    let mut sum: Vec<(f64, u64)> = Vec::new();
    for text in server.scrapes().await {
        for (n, (le, count)) in
            rolecall_server::telemetry::histogram_in(&text, "rolecall_store_commit_seconds")
                .into_iter()
                .enumerate()
        {
            match sum.get_mut(n) {
                Some(bucket) => bucket.1 += count,
                None => sum.push((le, count)),
            }
        }
    }
    sum
}

/// Each replica's requests (its channels' sum: channel c is on replica c % N) and CPU over a
/// pass of `window` busy seconds.
fn replica_figures(
    by_channel: &[u64],
    cpu_before: &[Option<Duration>],
    cpu_after: &[Option<Duration>],
    window: f64,
) -> Vec<ReplicaFigures> {
    let n = cpu_after.len().max(1);
    cpu_before
        .iter()
        .zip(cpu_after)
        .enumerate()
        .map(|(replica, (before, after))| {
            let requests: u64 = by_channel.iter().skip(replica).step_by(n).sum();
            let cpu = match (before, after) {
                (Some(b), Some(a)) => Some(a.saturating_sub(*b).as_secs_f64()),
                _ => None,
            };
            ReplicaFigures {
                requests,
                cpu_us_per_request: cpu.map(|c| c * 1e6 / requests.max(1) as f64),
                cpu_utilization: cpu.map(|c| c / window.max(1e-9)),
            }
        })
        .collect()
}

/// The whole fleet crosses one rotation point: every instance must get new credentials,
/// issued exactly once each, with no errors. The storm window starts where the server starts
/// prefetching (`storm_prefetch` before the rotation point) and ends one sweep of the fleet
/// after it.
async fn storm(
    opts: &Options,
    server: &ServerUnderTest,
    channels: &[Channel],
    rate: Option<f64>,
) -> Result<Pass, String> {
    let period = opts.storm_period_secs;
    let mut fleet = fleet::bootstrap(channels, opts.instances).await?;
    // Start warming just after a rotation point so the whole warm-up lands in one period.
    let to_boundary = |unix: f64| period as f64 - unix.rem_euclid(period as f64);
    tokio::time::sleep(Duration::from_secs_f64(to_boundary(unix_now()) + 0.2)).await;
    let warm_started = Instant::now();
    fleet::warm(channels, &mut fleet, opts.users).await?;
    let warm_time = warm_started.elapsed().as_secs_f64();
    let left = to_boundary(unix_now());
    let lead = storm_prefetch(period) as f64;
    if left < lead + 2.0 || warm_time > period as f64 * 0.75 {
        return Err(format!(
            "warming {} instances took {warm_time:.1} s of the {period} s storm period: raise --storm-period",
            fleet.members.len()
        ));
    }
    // After the rotation point the pass runs two sweeps of the fleet, but must end (goose's
    // up-to-one-second ramp included) before the next prefetch window.
    let sweep = warm_time.max(1.0);
    let after = (2.0 * sweep + 2.0).min(period as f64 - lead - 2.0);
    if after < sweep + 1.0 {
        return Err(format!(
            "a {period} s storm period leaves no room for a {sweep:.1} s sweep: raise --storm-period"
        ));
    }
    let boundary = Instant::now() + Duration::from_secs_f64(left);
    let window = (boundary - Duration::from_secs_f64(lead), boundary + Duration::from_secs_f64(sweep));
    let run_for = (left + after).floor() as usize;
    let load = rate.map_or(Load::Closed, |rate| Load::Open { rate });
    let mut pass =
        pass_for(opts, server, channels, Scenario::Storm, load, &fleet, Some(window), None, run_for).await?;
    let n = fleet.members.len() as u64;
    let rotated = pass.details["rotated"].as_u64().unwrap_or(0);
    let exact = rotated == n && pass.credentials_issued == Some(n) && pass.errors == 0;
    pass.details["instances"] = n.into();
    pass.details["one_issuance_per_instance"] = exact.into();
    pass.details["warm_seconds"] = warm_time.into();
    if !exact {
        pass.warnings.push(format!(
            "storm: {rotated} of {n} instances rotated, {:?} issued, {} errors",
            pass.credentials_issued, pass.errors
        ));
    }
    Ok(pass)
}

/// Roles replaced on running instances while the fleet fetches.
async fn churn(opts: &Options, server: &ServerUnderTest, channels: &[Channel]) -> Result<Pass, String> {
    let mut fleet = fleet::bootstrap(channels, opts.instances).await?;
    fleet::warm(channels, &mut fleet, opts.users).await?;
    let book = ChurnBook::new(fleet.members.len());
    let stop = Arc::new(AtomicBool::new(false));
    let controller = tokio::spawn(replace_roles(
        channels[0].clone(),
        fleet.members.iter().map(|m| m.association_id.clone()).collect(),
        book.clone(),
        stop.clone(),
        opts.churn_interval,
    ));
    let result =
        pass(opts, server, channels, Scenario::Churn, Load::Closed, &fleet, None, Some(book.clone())).await;
    stop.store(true, Ordering::Relaxed);
    let replaced = controller.await.map_err(|e| e.to_string())??;
    let mut pass = result?;
    pass.details["replacements"] = replaced.into();
    Ok(pass)
}

/// The operator's side of churn: replace one instance's profile after another.
async fn replace_roles(
    channel: Channel,
    mut associations: Vec<String>,
    book: Arc<ChurnBook>,
    stop: Arc<AtomicBool>,
    interval: Duration,
) -> Result<u64, String> {
    let mut ec2 = Ec2Client::new(channel);
    let mut n = 0usize;
    let mut replaced = 0u64;
    while !stop.load(Ordering::Relaxed) && !associations.is_empty() {
        let index = n % associations.len();
        n += 1;
        let role = 1 - book.current_role(index);
        book.replacing(index);
        let answer = ec2
            .replace_iam_instance_profile_association(pb::ReplaceIamInstanceProfileAssociationRequest {
                iam_instance_profile: Some(pb::IamInstanceProfileSpecification {
                    name: ROLES[usize::from(role)].into(),
                    ..Default::default()
                }),
                association_id: associations[index].clone(),
            })
            .await
            .map_err(|s| format!("ReplaceIamInstanceProfileAssociation: {}", s.message()))?;
        if let Some(a) = answer.into_inner().iam_instance_profile_association {
            associations[index] = a.association_id;
        }
        book.replaced(index, role);
        replaced += 1;
        // Pacing of the operator, not a wait for a server.
        tokio::time::sleep(interval).await;
    }
    Ok(replaced)
}

#[allow(clippy::disallowed_methods)] // the harness schedules against the same wall clock as the server
fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn now_iso() -> String {
    rolecall_server::domain::clock::iso8601(unix_now() as i64)
}

#[cfg(test)]
mod smoke {
    //! A short run of every scenario against in-process servers, so the harness cannot rot.
    //! It asserts that nothing failed and that the counts add up, never how fast.

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_scenario_runs_clean() {
        let out = std::env::temp_dir().join(format!("rolecall-loadtest-smoke-{}", std::process::id()));
        let options = Options {
            scenarios: vec![
                Scenario::Baseline,
                Scenario::Fetch,
                Scenario::Refresh,
                Scenario::Churn,
                Scenario::Storm,
                Scenario::ImdsBaseline,
                Scenario::Imds,
            ],
            instances: 40,
            users: 2,
            duration_secs: 1,
            open_fraction: 0.5,
            rate: Some(200.0),
            channels: 1,
            out: out.clone(),
            host: Vec::new(),
            metrics: Vec::new(),
            baseline_host: None,
            pin: false,
            in_process: true,
            replicas: None,
            redb: false,
            storm_period_secs: 6,
            churn_interval: Duration::from_millis(2),
            command: vec!["smoke".into()],
        };
        let report = run(&options).await.unwrap();
        let kinds: Vec<(Scenario, bool)> =
            report.passes.iter().map(|p| (p.scenario, matches!(p.load, Load::Open { .. }))).collect();
        assert_eq!(
            kinds,
            [
                (Scenario::Baseline, false),
                (Scenario::Baseline, true),
                (Scenario::ImdsBaseline, false),
                (Scenario::ImdsBaseline, true),
                (Scenario::Fetch, false),
                (Scenario::Fetch, true),
                (Scenario::Refresh, false),
                (Scenario::Churn, false),
                (Scenario::Storm, true),
                (Scenario::Imds, false),
                (Scenario::Imds, true),
            ]
        );
        for p in &report.passes {
            assert_eq!(p.errors, 0, "{:?} {:?}: {:?}", p.scenario, p.load, p.warnings);
            assert!(p.requests > 0, "{:?} sent nothing", p.scenario);
            assert_eq!(p.latency.count, p.requests - p.details["list_requests"].as_u64().unwrap_or(0));
            assert!(std::path::Path::new(&p.goose_report).exists(), "goose's HTML report");
        }
        let by = |s: Scenario| report.passes.iter().find(|p| p.scenario == s).unwrap();
        // Every refresh fetch issued; the warm fetch issued nothing more than once per instance.
        assert_eq!(by(Scenario::Refresh).credentials_issued, Some(by(Scenario::Refresh).requests));
        assert_eq!(by(Scenario::Fetch).credentials_issued, Some(0), "warm fetches hit the cache");
        let storm = by(Scenario::Storm);
        assert_eq!(storm.details["one_issuance_per_instance"], true, "{}", storm.details);
        // The HTTP agent took each instance through the SDK's sequence: one token each, then
        // a role-name GET before every credential GET.
        let imds = by(Scenario::Imds);
        let puts = imds.details["token_puts"].as_u64().unwrap();
        let roles = imds.details["role_name_gets"].as_u64().unwrap();
        assert!(puts > 0 && puts <= 40, "{}", imds.details);
        assert!(roles > 0 && imds.requests - puts - roles <= roles, "{}", imds.details);
        assert_eq!(imds.credentials_issued, Some(0), "HTTP fetches hit the cache the gRPC warm-up filled");
        let churn = by(Scenario::Churn);
        assert_eq!(churn.details["violations"], 0, "{}", churn.details);
        assert!(churn.details["replacements"].as_u64().unwrap() > 0);
        assert!(out.join("report.json").exists());
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_counts_the_channels_dealt_to_it() {
        let secs = |s: u64| Some(Duration::from_secs(s));
        // 6 channels over 3 replicas: channel c on replica c % 3.
        let figures = replica_figures(
            &[1, 2, 3, 4, 5, 6],
            &[secs(0), secs(0), None],
            &[secs(5), secs(7), secs(1)],
            10.0,
        );
        let requests: Vec<u64> = figures.iter().map(|f| f.requests).collect();
        assert_eq!(requests, [5, 7, 9]);
        assert_eq!(figures[0].cpu_us_per_request, Some(1e6));
        assert_eq!(figures[1].cpu_utilization, Some(0.7));
        assert_eq!(figures[2].cpu_us_per_request, None, "unknown CPU stays unknown");
        // The warm-up's route agrees with the pass's: member n to user n % users, on channel
        // user % channels.
        assert_eq!(crate::harness::channel_of(13, 32, 100, 12), 1);
        assert_eq!(crate::harness::channel_of(45, 32, 100, 12), 1, "member 45 is user 13's");
        assert_eq!(crate::harness::channel_of(5, 32, 4, 12), 1, "4 members: 4 users");
    }
}
