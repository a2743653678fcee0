//! `rolecall`: `rolecall serve` runs the service; the other subcommands are an operator's
//! client for it, named like the aws CLI (`rolecall iam create-role ...`).

#![forbid(unsafe_code)]

mod cli;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use rolecall_server::{Listeners, config::Config, telemetry};
use tokio::net::TcpListener;

/// mimalloc, not the system's malloc: a fleet's records, decoded records and cached
/// credentials are millions of small allocations; what a bulk launch freed stayed resident
/// in glibc's per-thread arenas, and mimalloc returns it and costs fewer instructions per
/// request (docs/architecture.md, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "rolecall",
    version,
    about = "IAM roles, instance profiles and instance metadata for a fleet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve(Box<ServeArgs>),
    /// IAM operations, every one (roles, policies, instance profiles, users, groups, access
    /// keys, the account), flagged as the aws CLI flags them.
    Iam(cli::ClientArgs<cli::IamCommand>),
    /// EC2 operations (instances and their instance profile).
    Ec2(cli::ClientArgs<cli::Ec2Command>),
    /// The instance metadata service, as an agent on an instance sees it.
    Imds(cli::ClientArgs<cli::ImdsCommand>),
    /// STS, signed with the credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.
    Sts(cli::ClientArgs<cli::StsCommand>),
    /// The state at rest, chosen by serve's flags and config file.
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Rewrite under the current master key every value a previous master key sealed, so the
    /// previous keys can be removed (redb: with the server stopped; etcd: beside running
    /// replicas).
    Reseal(Box<ServeArgs>),
    /// Write the whole store, still sealed, to a new file: a backup (redb: with the server
    /// stopped), or the first half of a move to another backend.
    Export(Box<StoreFileArgs>),
    /// Read an export into an empty store (one no server has started on), with the master
    /// key that sealed it.
    Import(Box<StoreFileArgs>),
}

#[derive(Args)]
struct StoreFileArgs {
    /// The export file.
    #[arg(long)]
    file: PathBuf,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Flags override the config file; each also reads its ROLECALL_* environment variable.
#[derive(Args)]
struct ServeArgs {
    /// A TOML file of settings (see docs/configuration.md).
    #[arg(long, env = "ROLECALL_CONFIG")]
    config: Option<PathBuf>,
    /// gRPC address [default: 127.0.0.1:50051].
    #[arg(long, env = "ROLECALL_LISTEN")]
    listen: Option<SocketAddr>,
    /// Prometheus text endpoint address, or "none" [default: 127.0.0.1:9464].
    #[arg(long, env = "ROLECALL_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    #[arg(long, env = "ROLECALL_ACCOUNT_ID")]
    account_id: Option<String>,
    #[arg(long, env = "ROLECALL_REGION")]
    region: Option<String>,
    /// TLS certificate chain (PEM); with --tls-key.
    #[arg(long, env = "ROLECALL_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, env = "ROLECALL_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates from this CA (mutual TLS).
    #[arg(long, env = "ROLECALL_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Allow plaintext on a non-loopback address.
    #[arg(long, env = "ROLECALL_ALLOW_INSECURE_PLAINTEXT")]
    allow_insecure_plaintext: bool,
    /// Lifetime of instance credentials in seconds [default: 21600].
    #[arg(long, env = "ROLECALL_CREDENTIAL_LIFETIME_SECS")]
    credential_lifetime_secs: Option<i64>,
    /// Age in seconds at which instance credentials rotate [default: 3600].
    #[arg(long, env = "ROLECALL_CREDENTIAL_ROTATE_AFTER_SECS")]
    credential_rotate_after_secs: Option<i64>,
    /// Where state lives: redb (durable, the default) or memory.
    #[arg(long, env = "ROLECALL_STORAGE")]
    storage: Option<String>,
    /// redb's data directory [default: rolecall-data].
    #[arg(long, env = "ROLECALL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// etcd client URLs (repeat the flag for several), with --storage etcd.
    #[arg(long = "etcd-endpoint", env = "ROLECALL_ETCD_ENDPOINTS", value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    /// With https:// etcd endpoints: the CA that signed etcd's certificate (PEM).
    #[arg(long, env = "ROLECALL_ETCD_CA_FILE")]
    etcd_ca_file: Option<PathBuf>,
    /// A client certificate for etcd (PEM), with --etcd-key-file.
    #[arg(long, env = "ROLECALL_ETCD_CERT_FILE", requires = "etcd_key_file")]
    etcd_cert_file: Option<PathBuf>,
    #[arg(long, env = "ROLECALL_ETCD_KEY_FILE", requires = "etcd_cert_file")]
    etcd_key_file: Option<PathBuf>,
    /// A file holding the master key that seals state at rest (ROLECALL_MASTER_KEY, the key
    /// itself, takes precedence).
    #[arg(long, env = "ROLECALL_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// A previous master key's file, while rotating it (repeat for several): it opens what
    /// it sealed, never seals.
    #[arg(
        long = "previous-master-key-file",
        env = "ROLECALL_PREVIOUS_MASTER_KEY_FILES",
        value_delimiter = ','
    )]
    previous_master_key_files: Vec<PathBuf>,
    /// The AWS Query API (STS, IAM, EC2, S3) for `aws --endpoint-url` and the SDKs.
    #[arg(long, env = "ROLECALL_QUERY_LISTEN")]
    query_listen: Option<SocketAddr>,
    /// The instance metadata service over HTTP.
    #[arg(long, env = "ROLECALL_IMDS_LISTEN")]
    imds_listen: Option<SocketAddr>,
    /// How HTTP IMDS knows the instance: source_address, loopback or path_prefix.
    #[arg(long, env = "ROLECALL_IMDS_INSTANCE_IDENTITY")]
    imds_instance_identity: Option<String>,
    /// The IPv4 block instances' private addresses come from [default: 10.0.0.0/8].
    #[arg(long, env = "ROLECALL_PRIVATE_NETWORK")]
    private_network: Option<String>,
    /// Simulation: allow credential lifetimes below the SDKs' refresh windows.
    #[arg(long, env = "ROLECALL_SIMULATION_SHORT_CREDENTIALS")]
    simulation_short_credentials: bool,
    /// Simulation: GetToken trusts a claimed instance id without its instance key.
    #[arg(long, env = "ROLECALL_SIMULATION_TRUST_CLAIMED_INSTANCE_ID")]
    simulation_trust_claimed_instance_id: bool,
    /// Simulation (debug builds): serve TestControl.AdvanceClock.
    #[arg(long, env = "ROLECALL_SIMULATION_MANUAL_CLOCK")]
    simulation_manual_clock: bool,
    /// Refuse unsigned Iam and Ec2 calls (auth.allow_unsigned = false).
    #[arg(long, env = "ROLECALL_DENY_UNSIGNED")]
    deny_unsigned: bool,
    /// Let unsigned Iam and Ec2 calls act as the operator from any peer, not only from this
    /// host (auth.allow_unsigned_off_loopback): anyone who reaches the listener is the operator.
    #[arg(long, env = "ROLECALL_ALLOW_UNSIGNED_OFF_LOOPBACK")]
    allow_unsigned_off_loopback: bool,
    /// The root user's access key id (AKIA…); its secret is read from
    /// ROLECALL_ROOT_SECRET_ACCESS_KEY or auth.root_secret_access_key_file.
    #[arg(long, env = "ROLECALL_ROOT_ACCESS_KEY_ID")]
    root_access_key_id: Option<String>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

impl ServeArgs {
    fn config(self) -> Result<Config, String> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path).map_err(|e| e.to_string())?,
            None => Config::default(),
        };
        if let Some(v) = self.listen {
            c.listen = v;
        }
        match self.metrics_listen.as_deref() {
            None => {}
            Some("none") => c.metrics_listen = None,
            Some(a) => c.metrics_listen = Some(a.parse().map_err(|e| format!("--metrics-listen {a}: {e}"))?),
        }
        if let Some(v) = self.account_id {
            c.account_id = v;
        }
        if let Some(v) = self.region {
            c.region = v;
        }
        if let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) {
            c.tls = Some(rolecall_server::config::TlsConfig { cert, key, client_ca: self.tls_client_ca });
        }
        c.allow_insecure_plaintext |= self.allow_insecure_plaintext;
        if let Some(v) = self.credential_lifetime_secs {
            c.credentials.lifetime_secs = v;
        }
        if let Some(v) = self.credential_rotate_after_secs {
            c.credentials.rotate_after_secs = v;
        }
        if let Some(v) = self.storage {
            c.storage.backend = v;
        }
        if let Some(v) = self.data_dir {
            c.storage.data_dir = v;
        }
        if !self.etcd_endpoints.is_empty() {
            c.storage.etcd_endpoints = self.etcd_endpoints;
        }
        if let Some(v) = self.etcd_ca_file {
            c.storage.etcd_ca_file = Some(v);
        }
        if let (Some(cert), Some(key)) = (self.etcd_cert_file, self.etcd_key_file) {
            c.storage.etcd_cert_file = Some(cert);
            c.storage.etcd_key_file = Some(key);
        }
        if let Some(v) = self.master_key_file {
            c.storage.master_key_file = Some(v);
        }
        if !self.previous_master_key_files.is_empty() {
            c.storage.previous_master_key_files = self.previous_master_key_files;
        }
        if let Some(v) = self.query_listen {
            c.query_listen = Some(v);
        }
        if let Some(v) = self.imds_listen {
            c.imds.listen = Some(v);
        }
        if let Some(v) = self.imds_instance_identity {
            c.imds.instance_identity = v;
        }
        if let Some(v) = self.private_network {
            c.instances.private_network = v;
        }
        if self.deny_unsigned {
            c.auth.allow_unsigned = false;
        }
        c.auth.allow_unsigned_off_loopback |= self.allow_unsigned_off_loopback;
        if let Some(v) = self.root_access_key_id {
            c.auth.root_access_key_id = Some(v);
        }
        c.simulation.short_credentials |= self.simulation_short_credentials;
        c.simulation.trust_claimed_instance_id |= self.simulation_trust_claimed_instance_id;
        c.simulation.manual_clock |= self.simulation_manual_clock;
        Ok(c)
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let print = args.print_config;
    let config = args.config()?;
    config.validate().map_err(|e| e.to_string())?;
    if print {
        print!("{}", toml::to_string_pretty(&config).map_err(|e| e.to_string())?);
        return Ok(());
    }
    let grpc = TcpListener::bind(config.listen).await.map_err(|e| format!("bind {}: {e}", config.listen))?;
    let metrics = match config.metrics_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| format!("bind {addr}: {e}"))?),
        None => None,
    };
    let imds = match config.imds.listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| format!("bind {addr}: {e}"))?),
        None => None,
    };
    let query = match config.query_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| format!("bind {addr}: {e}"))?),
        None => None,
    };
    rolecall_server::run(config, Listeners { grpc, metrics, imds, query }, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn store(command: StoreCommand) -> Result<(), String> {
    let config = |args: ServeArgs| {
        let config = args.config()?;
        config.validate().map_err(|e| e.to_string())?;
        Ok::<_, String>(config)
    };
    match command {
        StoreCommand::Reseal(args) => {
            let done = rolecall_server::custody::reseal(&config(*args)?.storage.custody())
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "resealed {} of {} values under the current master key; the previous keys can be removed",
                done.resealed, done.examined
            );
        }
        StoreCommand::Export(args) => {
            let StoreFileArgs { file, serve } = *args;
            let entries = rolecall_server::custody::export(&config(serve)?.storage.custody(), &file)
                .await
                .map_err(|e| e.to_string())?;
            println!("exported {entries} entries, sealed, to {}", file.display());
        }
        StoreCommand::Import(args) => {
            let StoreFileArgs { file, serve } = *args;
            let entries = rolecall_server::custody::import(&config(serve)?.storage.custody(), &file)
                .await
                .map_err(|e| e.to_string())?;
            println!("imported {entries} entries from {}", file.display());
        }
    }
    Ok(())
}

/// SIGTERM or ctrl-c.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining");
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            telemetry::init_logging();
            serve(*args).await
        }
        Command::Iam(args) => cli::iam(args).await,
        Command::Ec2(args) => cli::ec2(args).await,
        Command::Imds(args) => cli::imds(args).await,
        Command::Sts(args) => cli::sts(args).await,
        Command::Store(command) => {
            telemetry::init_logging();
            store(command).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rolecall: {message}");
            ExitCode::FAILURE
        }
    }
}
