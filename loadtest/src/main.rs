//! `rolecall-loadtest`: runs the benchmark (`run`), compares two reports (`compare`), and,
//! as its own child processes, serves rolecall or the baseline for it.

#![forbid(unsafe_code)]

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use rolecall_loadtest::{
    bench::{self, Options},
    harness::Scenario,
    report::{self, Report},
    servers,
};

/// The allocator the `rolecall` binary uses, so that the served children measure as it does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "rolecall-loadtest",
    about = "Measure rolecall's credential fetch latency and refresh throughput"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the benchmark: start servers, bootstrap a fleet, drive it, report.
    Run(RunArgs),
    /// Compare two report.json files (new / old ratios).
    Compare { old: PathBuf, new: PathBuf },
    /// (internal) Serve rolecall for the harness.
    #[command(hide = true)]
    ServeRolecall(ChildArgs),
    /// (internal) Serve the baseline for the harness.
    #[command(hide = true)]
    ServeBaseline(ChildArgs),
    /// (internal) Print the bytes one cached credential costs, measured in a fresh process.
    #[command(hide = true)]
    MeasureCache {
        #[arg(long, default_value_t = 100_000)]
        entries: usize,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Scenarios, comma-separated: baseline, fetch, refresh, storm, churn (gRPC);
    /// imds-baseline, imds (IMDSv2 over HTTP).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "baseline,fetch,refresh,storm,churn,imds-baseline,imds"
    )]
    scenarios: Vec<String>,
    /// Instances in the fleet.
    #[arg(long, default_value_t = 10_000)]
    instances: usize,
    /// goose users (each the agent of a slice of the fleet).
    #[arg(long, default_value_t = 32)]
    users: usize,
    /// Seconds each pass runs.
    #[arg(long, default_value_t = 15)]
    duration: usize,
    /// Open-loop passes run at this fraction of the baseline's closed-loop throughput.
    #[arg(long, default_value_t = 0.6)]
    open_fraction: f64,
    /// A fixed open-loop rate (requests/s) instead of the fraction.
    #[arg(long)]
    rate: Option<f64>,
    /// HTTP/2 connections to the server (one connection serialises much of its work).
    #[arg(long, default_value_t = 4)]
    channels: usize,
    /// Where reports go.
    #[arg(long, default_value = "target/loadtest")]
    out: PathBuf,
    /// Drive a running rolecall at this URL instead of starting one; several (repeated, or
    /// comma-separated) are replicas, balanced by connection.
    #[arg(long, value_delimiter = ',')]
    host: Vec<String>,
    /// Those servers' metrics addresses (host:port), in the same order, for their counters.
    #[arg(long, value_delimiter = ',')]
    metrics: Vec<std::net::SocketAddr>,
    /// Drive a running gRPC baseline (`serve-baseline`) at this URL instead of starting one.
    #[arg(long, hide = true)]
    baseline_host: Option<String>,
    /// Do not pin the server and the harness to separate cores.
    #[arg(long)]
    no_pin: bool,
    /// Rolecall replicas on one etcd of the load test's own (build with --features etcd;
    /// etcd from PATH).
    #[arg(long)]
    replicas: Option<usize>,
    /// One server on the embedded durable store (redb, fsync per commit) instead of memory.
    #[arg(long, conflicts_with = "replicas")]
    redb: bool,
    /// The storm's rotation period in seconds (the fleet must warm up within it).
    #[arg(long, default_value_t = 30)]
    storm_period: i64,
    /// Milliseconds between two role replacements in churn.
    #[arg(long, default_value_t = 5)]
    churn_interval_ms: u64,
}

#[derive(clap::Args)]
struct ChildArgs {
    /// The server's configuration (JSON of rolecall's Config).
    #[arg(long)]
    config_json: Option<String>,
    /// Pin to this core.
    #[arg(long)]
    core: Option<usize>,
}

fn scenario(name: &str) -> Result<Scenario, String> {
    let name = name.trim();
    Scenario::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
        let known: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        format!("unknown scenario {name:?}: {}", known.join(", "))
    })
}

/// Pins the calling thread (and the threads it starts afterwards) to one core. The core is
/// named directly: a child started by a pinned parent inherits its mask, in which
/// `get_core_ids` would list only the parent's core.
fn pin(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

fn runtime(workers: usize) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn run(args: RunArgs) -> Result<(), String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = !args.no_pin && cpus >= 2 && pin(1);
    let options = Options {
        scenarios: args.scenarios.iter().map(|s| scenario(s)).collect::<Result<_, _>>()?,
        instances: args.instances,
        users: args.users,
        duration_secs: args.duration,
        open_fraction: args.open_fraction,
        rate: args.rate,
        channels: args.channels,
        out: args.out,
        host: args.host,
        metrics: args.metrics,
        baseline_host: args.baseline_host,
        pin: pinned,
        replicas: args.replicas,
        redb: args.redb,
        in_process: false,
        storm_period_secs: args.storm_period,
        churn_interval: Duration::from_millis(args.churn_interval_ms),
        command: std::env::args().collect(),
    };
    // Pinned to one core, one worker thread: more would only contend for it.
    let workers = if pinned { 1 } else { cpus };
    let report = runtime(workers)?.block_on(bench::run(&options))?;
    print!("{}", report.summary());
    println!("\nreport: {}", options.out.join("report.json").display());
    Ok(())
}

fn serve_child(args: ChildArgs, kind: servers::Kind) -> Result<(), String> {
    if let Some(core) = args.core
        && !pin(core)
    {
        return Err(format!("cannot pin the server to core {core}"));
    }
    let config: rolecall_server::config::Config = match &args.config_json {
        Some(json) => serde_json::from_str(json).map_err(|e| format!("--config-json: {e}"))?,
        None => rolecall_server::config::Config::default(),
    };
    let workers =
        if args.core.is_some() { 1 } else { std::thread::available_parallelism().map_or(1, |n| n.get()) };
    runtime(workers)?.block_on(async move {
        let (listeners, ready) = servers::Bound::new(kind).await?;
        println!("{}", ready.line());
        listeners.serve(config, servers::stdin_closed()).await
    })
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Run(args) => run(args),
        Command::Compare { old, new } => Report::read_json(&old)
            .and_then(|o| Report::read_json(&new).map(|n| print!("{}", report::compare(&o, &n)))),
        Command::ServeRolecall(args) => serve_child(args, servers::Kind::Rolecall),
        Command::ServeBaseline(args) => serve_child(args, servers::Kind::Baseline),
        Command::MeasureCache { entries } => runtime(1)
            .and_then(|rt| rt.block_on(rolecall_loadtest::memory::bytes_per_cached_credential(entries)))
            .map(|bytes| println!("{bytes:.1}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rolecall-loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}
