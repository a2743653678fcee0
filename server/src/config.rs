//! Configuration: AWS-faithful defaults, an optional TOML file, then environment variables
//! and flags (see `main.rs`), in that order of precedence.

use std::{net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::{
    catalog::Limits,
    domain::{credentials::RotationSchedule, keyring::KeyRingPolicy},
};

/// Everything `rolecall serve` can be told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The gRPC address.
    pub listen: SocketAddr,
    /// The Prometheus text endpoint (`GET /metrics`); none to turn it off.
    pub metrics_listen: Option<SocketAddr>,
    /// The default account: where unsigned operator calls and the fleet live.
    pub account_id: String,
    /// Further accounts served beside it, each with its own roles, users, policies and
    /// instances (cross-account trust, resource policies across accounts, sts:ExternalId).
    pub accounts: Vec<String>,
    pub region: String,
    pub tls: Option<TlsConfig>,
    /// Serve plaintext on a non-loopback address. IMDS over gRPC carries secrets: only
    /// behind something that encrypts for us.
    pub allow_insecure_plaintext: bool,
    pub server: ServerLimits,
    pub limits: Limits,
    pub credentials: CredentialSettings,
    pub key_ring: KeyRingSettings,
    pub instances: InstanceDefaults,
    pub auth: AuthSettings,
    pub audit: AuditSettings,
    pub imds: ImdsHttpSettings,
    /// The AWS Query API (STS) over HTTP, for the aws CLI and the SDKs' `--endpoint-url`;
    /// none: off.
    pub query_listen: Option<SocketAddr>,
    pub storage: StorageSettings,
    pub simulation: Simulation,
}

/// Where state lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// "redb" (durable, embedded: the default) or "memory" (gone at exit: tests, benchmarks).
    pub backend: String,
    /// redb's directory (created if absent).
    pub data_dir: PathBuf,
    /// redb's own page cache, in MiB (redb's default is 1 GiB). The credential path reads
    /// the decoded-record cache, never redb; what misses it (listings, a record's first
    /// read) is served by the kernel's page cache when redb's is small. A fleet of a million
    /// keeps about a gigabyte of records, which redb's default would hold twice.
    pub redb_cache_mib: u64,
    /// A file holding the master key (32 bytes, base64 or hex) that seals the store's
    /// contents at rest. ROLECALL_MASTER_KEY (the key itself) takes precedence. With
    /// neither, one is made in `data_dir/master.key` on first start, with a warning: the
    /// key then sits beside what it protects.
    pub master_key_file: Option<PathBuf>,
    /// Files of previous master keys, during a rotation: they open what they sealed, never
    /// seal. ROLECALL_PREVIOUS_MASTER_KEYS (the keys, comma-separated) adds to them. Drop
    /// them once `rolecall store reseal` has rewritten everything under the current key.
    pub previous_master_key_files: Vec<PathBuf>,
    /// backend = "etcd" (builds with the `etcd` feature): the cluster's client URLs.
    pub etcd_endpoints: Vec<String>,
    /// Every key of this deployment is under it in etcd.
    pub etcd_prefix: String,
    /// With https:// endpoints: the CA (PEM) that signed etcd's certificate.
    pub etcd_ca_file: Option<PathBuf>,
    /// A client certificate and its key (PEM), for an etcd started with --client-cert-auth.
    pub etcd_cert_file: Option<PathBuf>,
    pub etcd_key_file: Option<PathBuf>,
}

impl Config {
    /// The root users' keys as configured, for custody to read their secrets.
    pub fn root_keys(&self) -> crate::custody::RootKeySettings {
        crate::custody::RootKeySettings {
            default: self.auth.root_access_key_id.clone().map(|access_key_id| crate::custody::DefaultRoot {
                account_id: self.account_id.clone(),
                access_key_id,
                secret_access_key_file: self.auth.root_secret_access_key_file.clone(),
            }),
            accounts: self
                .auth
                .account_roots
                .iter()
                .map(|r| (r.account_id.clone(), r.access_key_id.clone(), r.secret_access_key_file.clone()))
                .collect(),
        }
    }
}

impl AuthSettings {
    /// Who may make unsigned Iam and Ec2 calls (the exposure rule).
    pub fn unsigned_calls(&self) -> crate::exposure::UnsignedCalls {
        use crate::exposure::UnsignedCalls;
        match (self.allow_unsigned, self.allow_unsigned_off_loopback) {
            (false, _) => UnsignedCalls::Refused,
            (true, false) => UnsignedCalls::FromLoopback,
            (true, true) => UnsignedCalls::FromAnywhere,
        }
    }
}

impl StorageSettings {
    /// What custody needs of these settings to open the store (the backend's name was
    /// checked by `Config::validate`; an unknown one is redb's, the default).
    pub fn custody(&self) -> crate::custody::StoreSettings {
        use crate::custody::Backend;
        crate::custody::StoreSettings {
            backend: match self.backend.as_str() {
                "memory" => Backend::Memory,
                "etcd" => Backend::Etcd,
                _ => Backend::Redb,
            },
            data_dir: self.data_dir.clone(),
            redb_cache_bytes: usize::try_from(self.redb_cache_mib.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            master_key_file: self.master_key_file.clone(),
            previous_master_key_files: self.previous_master_key_files.clone(),
            #[cfg(feature = "etcd")]
            etcd: self.etcd(),
        }
    }

    /// What the etcd backend needs of these settings.
    #[cfg(feature = "etcd")]
    pub fn etcd(&self) -> crate::store::etcd::EtcdSettings {
        crate::store::etcd::EtcdSettings {
            endpoints: self.etcd_endpoints.clone(),
            prefix: self.etcd_prefix.clone(),
            ca_file: self.etcd_ca_file.clone(),
            client_identity: self.etcd_cert_file.clone().zip(self.etcd_key_file.clone()),
        }
    }

    /// etcd's endpoints are all https:// (with the CA that signed etcd's certificate) or all
    /// http://. Plaintext is refused off loopback: the values are sealed, but anyone on the
    /// path could read the keys and replay old values (a detached policy, a deleted key).
    fn validate_etcd_transport(&self, allow_insecure_plaintext: bool) -> Result<(), String> {
        let https = self.etcd_endpoints.iter().filter(|e| e.starts_with("https://")).count();
        if let Some(other) =
            self.etcd_endpoints.iter().find(|e| !e.starts_with("https://") && !e.starts_with("http://"))
        {
            return Err(format!("storage.etcd_endpoints: {other:?} must start with http:// or https://"));
        }
        if https != 0 && https != self.etcd_endpoints.len() {
            return Err("storage.etcd_endpoints mixes http:// and https://".into());
        }
        if self.etcd_cert_file.is_some() != self.etcd_key_file.is_some() {
            return Err("storage.etcd_cert_file and storage.etcd_key_file go together".into());
        }
        let tls_files = self.etcd_ca_file.is_some() || self.etcd_cert_file.is_some();
        if https == 0 {
            if tls_files {
                return Err(
                    "storage.etcd_ca_file, etcd_cert_file and etcd_key_file need https:// endpoints".into()
                );
            }
            if let Some(remote) = self.etcd_endpoints.iter().find(|e| !loopback_url(e))
                && !allow_insecure_plaintext
            {
                return Err(format!(
                    "refusing plaintext etcd at {remote}: use https:// with storage.etcd_ca_file, or set allow_insecure_plaintext"
                ));
            }
        } else if self.etcd_ca_file.is_none() {
            return Err(
                "https:// etcd endpoints need storage.etcd_ca_file (the CA that signed etcd's certificate)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Whether a URL's host is a loopback address or `localhost`.
fn loopback_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else { return false };
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            backend: "redb".into(),
            data_dir: PathBuf::from("rolecall-data"),
            redb_cache_mib: 64,
            master_key_file: None,
            previous_master_key_files: Vec::new(),
            etcd_endpoints: Vec::new(),
            etcd_prefix: "rolecall/".into(),
            etcd_ca_file: None,
            etcd_cert_file: None,
            etcd_key_file: None,
        }
    }
}

/// The instance metadata service over HTTP, in AWS's own formats (what the SDKs and the
/// aws CLI read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImdsHttpSettings {
    /// Where to serve it; none: off.
    pub listen: Option<SocketAddr>,
    /// How it knows which instance asks:
    /// - "source_address", AWS's way: the connection's source address is the instance's
    ///   private address, which holds where each instance has its own network (a network
    ///   namespace, a VM) routed to this listener;
    /// - "loopback" (a simulation): the same, with `instances.private_network` inside
    ///   127.0.0.0/8, so that processes on one host can each bind an instance's address;
    /// - "path_prefix" (a simulation of one shared host):
    ///   `http://HOST:PORT/INSTANCE-ID/latest/...`, which AWS_EC2_METADATA_SERVICE_ENDPOINT
    ///   accepts, and which anyone on the host can claim.
    pub instance_identity: String,
}

impl Default for ImdsHttpSettings {
    fn default() -> Self {
        Self { listen: None, instance_identity: "path_prefix".into() }
    }
}

/// Where the audit trail (CloudTrail-shaped JSON lines) goes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// "" or "none" (off), "stdout", or a file path (appended to).
    pub output: String,
}

/// Who may call the control plane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Iam and Ec2 calls without a SigV4 signature act as the account's operator (how an
    /// administrator bootstraps users, roles and keys); false: every one must be signed and
    /// is authorized by the policy engine. Signed calls are always authorized.
    pub allow_unsigned: bool,
    /// Unsigned calls are the operator's only from peers on this host (decided per
    /// connection); true lets any peer that reaches the gRPC listener act as the operator
    /// unsigned, announced at start (docs/configuration.md, the exposure rule).
    pub allow_unsigned_off_loopback: bool,
    /// The default account's root user's access key id (AKIA…), so that an operator can sign
    /// from the start when allow_unsigned is false. Its secret comes from
    /// ROLECALL_ROOT_SECRET_ACCESS_KEY or `root_secret_access_key_file`, never from here.
    pub root_access_key_id: Option<String>,
    pub root_secret_access_key_file: Option<PathBuf>,
    /// The root users of the further `accounts`, each with its secret in a file.
    pub account_roots: Vec<AccountRoot>,
}

/// A further account's root user's key (`[[auth.account_roots]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRoot {
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key_file: PathBuf,
}

/// A root access key id's form: AKIA and 16 upper-case letters or digits.
fn valid_root_key_id(id: &str) -> bool {
    id.len() == 20
        && id.starts_with("AKIA")
        && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            allow_unsigned: true,
            allow_unsigned_off_loopback: false,
            root_access_key_id: None,
            root_secret_access_key_file: None,
            account_roots: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Require client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// What protects the server from its callers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerLimits {
    pub request_timeout_ms: u64,
    /// Requests in flight at once; past it, requests are shed (UNAVAILABLE), not queued.
    pub concurrency_limit: usize,
    pub max_message_bytes: usize,
    /// How long graceful shutdown waits for in-flight requests.
    pub shutdown_grace_ms: u64,
    /// The HTTP doors (instance metadata, the Query port): how long a client may take to
    /// send a request's headers, which is also how long a keep-alive connection may idle.
    pub http_header_read_timeout_ms: u64,
    /// The HTTP doors: connections open at once, per door; past it new ones wait.
    pub http_max_connections: usize,
    /// The Query port: the largest request body (413 past it, before it is read further).
    pub query_max_body_bytes: usize,
    /// gRPC: connections open at once; past it new ones wait. A connection must send its
    /// first bytes within `http_header_read_timeout_ms`.
    pub grpc_max_connections: usize,
    /// Every listener: connections open at once from one peer address (other than this
    /// host's 127.0.0.1 and ::1); past it, a new one is closed at once. 0: no such bound.
    pub max_connections_per_address: usize,
    /// gRPC: the bytes that signed requests not yet authenticated may hold at once (their
    /// bodies, read before the signature can be checked); past it, RESOURCE_EXHAUSTED.
    pub unauthenticated_buffer_bytes: usize,
}

impl ServerLimits {
    /// The bounds of an HTTP door whose requests have at most `max_body_bytes` of body.
    pub fn http_door_limits(&self, max_body_bytes: usize) -> crate::http::door::DoorLimits {
        crate::http::door::DoorLimits {
            header_read_timeout: std::time::Duration::from_millis(self.http_header_read_timeout_ms),
            max_connections: self.http_max_connections,
            max_connections_per_address: self.max_connections_per_address,
            max_body_bytes,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialSettings {
    /// Lifetime of instance credentials (AWS: about 6 hours).
    pub lifetime_secs: i64,
    /// Age at which new credentials are issued (AWS: about hourly).
    pub rotate_after_secs: i64,
    /// Spread of the rotation point across a fleet.
    pub rotation_jitter_secs: i64,
    /// Credentials are never handed out with less than this left (botocore: 15 min).
    pub min_remaining_secs: i64,
    /// Credentials fetched within this long of their rotation point are replaced in the
    /// background (0: off), so that coinciding rotation points do not make a storm.
    pub prefetch_secs: i64,
    /// Issued credentials kept in memory (entries).
    pub cache_capacity: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyRingSettings {
    pub rotate_after_secs: i64,
    pub max_seals_per_key: u64,
    /// How long a new key waits, stored but unused, before it seals anything: longer than
    /// the other replicas take to hear of it (with etcd, at least 2 s is used).
    pub activation_delay_secs: i64,
}

/// Defaults for new instances' metadata options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstanceDefaults {
    /// "optional" (AWS's default) or "required" (IMDSv2 only).
    pub http_tokens: String,
    pub http_put_response_hop_limit: i32,
    /// The IPv4 block instances' private addresses come from, in launch order (each account
    /// has its own; with `imds.instance_identity = "source_address"`, addresses must not
    /// repeat across accounts, so give each account's fleet its own host).
    pub private_network: String,
}

/// Settings that make rolecall less like AWS, for simulations and tests. The server
/// announces each one that is on when it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Simulation {
    /// Serve the TestControl service that moves the server's clock (debug builds only).
    pub manual_clock: bool,
    /// Allow credential lifetimes below the SDKs' refresh windows, `rotate_after_secs = 0`
    /// (every fetch issues) and `synchronized_rotation`.
    pub short_credentials: bool,
    /// Rotation points on multiples of `credentials.rotate_after_secs` for the whole fleet
    /// (a rotation storm); needs `short_credentials`.
    pub synchronized_rotation: bool,
    /// GetToken believes a claimed instance id without its instance key.
    pub trust_claimed_instance_id: bool,
}

// === impl Config ===

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            account_id: "123456789012".into(),
            accounts: Vec::new(),
            region: "us-east-1".into(),
            tls: None,
            allow_insecure_plaintext: false,
            server: ServerLimits::default(),
            limits: Limits::default(),
            credentials: CredentialSettings::default(),
            key_ring: KeyRingSettings::default(),
            instances: InstanceDefaults::default(),
            auth: AuthSettings::default(),
            audit: AuditSettings::default(),
            imds: ImdsHttpSettings::default(),
            query_listen: None,
            storage: StorageSettings::default(),
            simulation: Simulation::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        toml::from_str(&text)
            .map_err(|source| ConfigError::Parse { path: path.into(), source: Box::new(source) })
    }

    /// Checks what can be checked before binding anything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return invalid(format!("account_id must be 12 digits, got {:?}", self.account_id));
        }
        for (n, account) in self.accounts.iter().enumerate() {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return invalid(format!("accounts must be 12 digits each, got {account:?}"));
            }
            if *account == self.account_id || self.accounts[..n].contains(account) {
                return invalid(format!("account {account} is listed twice"));
            }
        }
        if self.tls.is_none() && !self.listen.ip().is_loopback() && !self.allow_insecure_plaintext {
            return invalid(format!(
                "refusing plaintext gRPC on non-loopback address {}: configure tls, or set allow_insecure_plaintext",
                self.listen
            ));
        }
        // The Query API answers with secrets (AssumeRole, CreateAccessKey) and has no TLS of
        // its own: only behind something that encrypts for us.
        if let Some(addr) = self.query_listen
            && !addr.ip().is_loopback()
            && !self.allow_insecure_plaintext
        {
            return invalid(format!(
                "refusing the plaintext Query API on non-loopback address {addr}: put TLS in front and set allow_insecure_plaintext"
            ));
        }
        self.rotation_schedule()
            .validate(self.simulation.short_credentials)
            .or_else(|e| invalid(e.message))?;
        if !["optional", "required"].contains(&self.instances.http_tokens.as_str()) {
            return invalid("instances.http_tokens must be optional or required".into());
        }
        if !(1..=64).contains(&self.instances.http_put_response_hop_limit) {
            return invalid("instances.http_put_response_hop_limit must be 1-64".into());
        }
        if self.server.unauthenticated_buffer_bytes < self.server.max_message_bytes {
            return invalid(
                "server.unauthenticated_buffer_bytes must hold at least one request of max_message_bytes"
                    .into(),
            );
        }
        if self.auth.allow_unsigned_off_loopback && !self.auth.allow_unsigned {
            return invalid("auth.allow_unsigned_off_loopback needs auth.allow_unsigned".into());
        }
        if self.simulation.manual_clock && !cfg!(debug_assertions) {
            return invalid("simulation.manual_clock is only available in debug builds".into());
        }
        let network = crate::catalog::PrivateNetwork::parse(&self.instances.private_network)
            .map_err(|e| ConfigError::Invalid(format!("instances.private_network: {e}")))?;
        match self.imds.instance_identity.as_str() {
            "path_prefix" => {}
            "source_address" if network.is_loopback() => {
                return invalid(
                    "imds.instance_identity = source_address needs a private_network outside 127.0.0.0/8 (or name the loopback simulation)".into(),
                );
            }
            "source_address" => {}
            "loopback" if !network.is_loopback() => {
                return invalid(
                    "imds.instance_identity = loopback needs instances.private_network inside 127.0.0.0/8"
                        .into(),
                );
            }
            "loopback" => {}
            other => {
                return invalid(format!(
                    "imds.instance_identity must be source_address, loopback or path_prefix, got {other:?}"
                ));
            }
        }
        if !(1..=1 << 20).contains(&self.storage.redb_cache_mib) {
            return invalid(format!(
                "storage.redb_cache_mib must be between 1 and 1048576, got {}",
                self.storage.redb_cache_mib
            ));
        }
        match self.storage.backend.as_str() {
            "redb" | "memory" => {}
            "etcd" if !cfg!(feature = "etcd") => {
                return invalid("storage.backend = etcd needs a build with `--features etcd`".into());
            }
            "etcd" if self.storage.etcd_endpoints.is_empty() => {
                return invalid("storage.backend = etcd needs storage.etcd_endpoints".into());
            }
            "etcd" => self
                .storage
                .validate_etcd_transport(self.allow_insecure_plaintext)
                .map_err(ConfigError::Invalid)?,
            other => return invalid(format!("storage.backend must be redb, etcd or memory, got {other:?}")),
        }
        if let Some(id) = &self.auth.root_access_key_id
            && !valid_root_key_id(id)
        {
            return invalid(format!(
                "auth.root_access_key_id must be AKIA and 16 more upper-case letters or digits, got {id:?}"
            ));
        }
        let mut root_ids: Vec<&str> = self.auth.root_access_key_id.iter().map(String::as_str).collect();
        for root in &self.auth.account_roots {
            if !self.accounts.contains(&root.account_id) {
                return invalid(format!(
                    "auth.account_roots: {} is not one of accounts (the default account's root is auth.root_access_key_id)",
                    root.account_id
                ));
            }
            if !valid_root_key_id(&root.access_key_id) {
                return invalid(format!(
                    "auth.account_roots: the access key id of {} must be AKIA and 16 more upper-case letters or digits",
                    root.account_id
                ));
            }
            if root_ids.contains(&root.access_key_id.as_str()) {
                return invalid(format!("auth.account_roots: {} is given twice", root.access_key_id));
            }
            root_ids.push(&root.access_key_id);
        }
        if self.auth.root_access_key_id.is_none() && self.auth.root_secret_access_key_file.is_some() {
            return invalid("auth.root_secret_access_key_file needs auth.root_access_key_id".into());
        }
        if self.server.concurrency_limit == 0
            || self.server.request_timeout_ms == 0
            || self.server.http_header_read_timeout_ms == 0
            || self.server.http_max_connections == 0
            || self.server.query_max_body_bytes == 0
            || self.server.grpc_max_connections == 0
        {
            return invalid(
                "server.concurrency_limit, request_timeout_ms, http_header_read_timeout_ms, \
                 http_max_connections, query_max_body_bytes and grpc_max_connections must be positive"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn rotation_schedule(&self) -> RotationSchedule {
        RotationSchedule {
            lifetime_secs: self.credentials.lifetime_secs,
            rotate_after_secs: self.credentials.rotate_after_secs,
            jitter_secs: self.credentials.rotation_jitter_secs,
            min_remaining_secs: self.credentials.min_remaining_secs,
            prefetch_secs: self.credentials.prefetch_secs,
            synchronized: self.simulation.synchronized_rotation,
        }
    }

    /// How long a staged key waits before it is used (replicas must all hold it first).
    pub fn key_activation_delay_secs(&self) -> i64 {
        let delay = self.key_ring.activation_delay_secs.max(0);
        if self.storage.backend == "etcd" { delay.max(2) } else { delay }
    }

    pub fn key_ring_policy(&self) -> KeyRingPolicy {
        KeyRingPolicy {
            rotate_after_secs: self.key_ring.rotate_after_secs,
            max_seals_per_key: self.key_ring.max_seals_per_key,
            // Keep a retired key until everything it sealed (credentials) or signed (IMDS
            // tokens, at most 6 h) has expired.
            retain_secs: self.credentials.lifetime_secs.max(21_600) + 300,
        }
    }

    /// The settings that are on, for the start-up announcement.
    pub fn simulation_settings(&self) -> Vec<&'static str> {
        let s = &self.simulation;
        [
            (s.manual_clock, "manual_clock (TestControl.AdvanceClock moves time)"),
            (s.short_credentials, "short_credentials (lifetimes below the SDKs' refresh windows allowed)"),
            (
                s.trust_claimed_instance_id,
                "trust_claimed_instance_id (GetToken does not check instance keys)",
            ),
            (
                self.imds.listen.is_some() && self.imds.instance_identity == "path_prefix",
                "imds.instance_identity = path_prefix (HTTP IMDS believes the instance id in the path)",
            ),
            (
                self.imds.listen.is_some() && self.imds.instance_identity == "loopback",
                "imds.instance_identity = loopback (any process on the host can bind an instance's address)",
            ),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            request_timeout_ms: 10_000,
            concurrency_limit: 4096,
            max_message_bytes: 4 << 20,
            shutdown_grace_ms: 10_000,
            http_header_read_timeout_ms: 10_000,
            http_max_connections: 256,
            query_max_body_bytes: 1 << 20,
            grpc_max_connections: 1024,
            max_connections_per_address: 64,
            unauthenticated_buffer_bytes: 64 << 20,
        }
    }
}

impl Default for CredentialSettings {
    fn default() -> Self {
        let s = RotationSchedule::default();
        Self {
            lifetime_secs: s.lifetime_secs,
            rotate_after_secs: s.rotate_after_secs,
            rotation_jitter_secs: s.jitter_secs,
            min_remaining_secs: s.min_remaining_secs,
            prefetch_secs: s.prefetch_secs,
            cache_capacity: 1_000_000,
        }
    }
}

impl Default for KeyRingSettings {
    fn default() -> Self {
        let p = KeyRingPolicy::default();
        Self {
            rotate_after_secs: p.rotate_after_secs,
            max_seals_per_key: p.max_seals_per_key,
            activation_delay_secs: 0,
        }
    }
}

impl Default for InstanceDefaults {
    fn default() -> Self {
        Self {
            http_tokens: "optional".into(),
            http_put_response_hop_limit: 1,
            private_network: "10.0.0.0/8".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_faithful() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.credentials.lifetime_secs, 6 * 3600);
        assert_eq!(c.limits.managed_policies_per_role, 10);
        assert!(c.simulation_settings().is_empty());
    }

    #[test]
    fn etcd_transport_is_tls_or_loopback() {
        let storage = |endpoints: &[&str], ca: bool, cert: bool, key: bool| StorageSettings {
            etcd_endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            etcd_ca_file: ca.then(|| "ca.pem".into()),
            etcd_cert_file: cert.then(|| "c.pem".into()),
            etcd_key_file: key.then(|| "k.pem".into()),
            ..StorageSettings::default()
        };
        // (endpoints, CA, client certificate, client key, allow_insecure_plaintext): the error, if any.
        type Case<'a> = (&'a [&'a str], bool, bool, bool, bool, Option<&'a str>);
        let cases: &[Case<'_>] = &[
            (
                &["http://127.0.0.1:2379", "http://localhost:2379", "http://[::1]:2379"],
                false,
                false,
                false,
                false,
                None,
            ),
            (
                &["http://10.0.0.5:2379"],
                false,
                false,
                false,
                false,
                Some("refusing plaintext etcd at http://10.0.0.5:2379"),
            ),
            (&["http://10.0.0.5:2379"], false, false, false, true, None),
            (&["https://etcd:2379"], true, true, true, false, None),
            (&["https://etcd:2379"], true, false, false, false, None),
            (&["https://etcd:2379"], false, false, false, false, Some("etcd_ca_file")),
            (&["https://etcd:2379"], true, true, false, false, Some("go together")),
            (&["https://a:2379", "http://127.0.0.1:2379"], true, false, false, false, Some("mixes")),
            (&["http://127.0.0.1:2379"], true, false, false, false, Some("need https://")),
            (&["127.0.0.1:2379"], false, false, false, false, Some("must start with")),
        ];
        for (endpoints, ca, cert, key, allow, expected) in cases {
            let result = storage(endpoints, *ca, *cert, *key).validate_etcd_transport(*allow);
            match (result, expected) {
                (Ok(()), None) => {}
                (Err(e), Some(part)) => assert!(e.contains(part), "{endpoints:?}: {e}"),
                (other, _) => panic!("{endpoints:?}: {other:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn account_roots_name_served_accounts_and_distinct_keys() {
        let root = |account: &str, id: &str| AccountRoot {
            account_id: account.into(),
            access_key_id: id.into(),
            secret_access_key_file: "s".into(),
        };
        let mut c = Config { accounts: vec!["111122223333".into()], ..Config::default() };
        c.auth.root_access_key_id = Some("AKIAROOTAAAAAAAAAAAA".into());
        c.auth.account_roots = vec![root("111122223333", "AKIAROOTBBBBBBBBBBBB")];
        assert!(c.validate().is_ok());
        let refused = |roots: Vec<AccountRoot>| {
            let mut c = c.clone();
            c.auth.account_roots = roots;
            c.validate().unwrap_err().to_string()
        };
        assert!(
            refused(vec![root("444455556666", "AKIAROOTBBBBBBBBBBBB")]).contains("is not one of accounts")
        );
        assert!(refused(vec![root("111122223333", "AKIAROOTAAAAAAAAAAAA")]).contains("given twice"));
        assert!(refused(vec![root("111122223333", "root")]).contains("must be AKIA"));
    }

    #[test]
    fn plaintext_off_loopback_is_refused() {
        let c = Config { listen: "0.0.0.0:50051".parse().unwrap(), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("plaintext"));
        let c = Config { allow_insecure_plaintext: true, ..c };
        c.validate().unwrap();
        let c = Config { query_listen: Some("0.0.0.0:8080".parse().unwrap()), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("Query API"));
    }

    #[test]
    fn imds_identity_modes_match_the_private_network() {
        let mut c = Config::default();
        for (mode, network, ok) in [
            ("source_address", "10.0.0.0/8", true),
            ("source_address", "127.16.0.0/12", false),
            ("loopback", "127.16.0.0/12", true),
            ("loopback", "10.0.0.0/8", false),
            ("path_prefix", "172.31.0.0/16", true),
            ("guess", "10.0.0.0/8", false),
            ("path_prefix", "10.0.0.0/33", false),
        ] {
            c.imds.instance_identity = mode.into();
            c.instances.private_network = network.into();
            assert_eq!(c.validate().is_ok(), ok, "{mode} {network}");
        }
        c.imds.listen = Some("127.0.0.1:1338".parse().unwrap());
        c.imds.instance_identity = "source_address".into();
        c.instances.private_network = "10.0.0.0/8".into();
        assert!(c.simulation_settings().is_empty(), "source addresses are AWS's way, not a simulation");
    }

    #[test]
    fn short_credentials_need_the_simulation_setting() {
        let mut c = Config::default();
        c.credentials.lifetime_secs = 120;
        c.credentials.rotate_after_secs = 60;
        assert!(c.validate().is_err());
        c.simulation.short_credentials = true;
        c.credentials.min_remaining_secs = 30;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("prefetch_secs (300) plus rotation_jitter_secs (600)"), "{e}");
        c.credentials.prefetch_secs = 0;
        c.validate().unwrap();
        assert_eq!(c.simulation_settings().len(), 1);
    }

    #[test]
    fn toml_overrides_defaults_and_rejects_unknown_keys() {
        let c: Config =
            toml::from_str("account_id = \"111122223333\"\n[limits]\nmanaged_policies_per_role = 20\n")
                .unwrap();
        assert_eq!(c.account_id, "111122223333");
        assert_eq!(c.limits.managed_policies_per_role, 20);
        assert_eq!(c.limits.access_keys_per_user, 2);
        assert!(toml::from_str::<Config>("no_such_knob = 1").is_err());
    }

    #[test]
    fn redb_cache_is_bounded_and_reaches_custody() {
        let mut c: Config = toml::from_str("[storage]\nredb_cache_mib = 16\n").unwrap();
        c.validate().unwrap();
        assert_eq!(c.storage.custody().redb_cache_bytes, 16 << 20);
        c.storage.redb_cache_mib = 0;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("storage.redb_cache_mib must be between 1 and 1048576, got 0"), "{e}");
    }
}
