//! rolecall: what AWS gives an EC2 instance with an IAM role, for a fleet of instances.
//!
//! # Layout
//! - [`domain`]: pure logic (no transport): ids and ARNs, validation, the policy language,
//!   the key ring, sealed credentials, IMDS tokens, the clock.
//! - [`store`]: the `Store` trait (transactional, revisioned key-value) and its backends.
//! - [`catalog`]: IAM and EC2 state and their rules, over a `Store`.
//! - [`cache`]: the issued-credentials cache (moka) with single-flight issuance.
//! - [`metadata`]: the instance metadata service: who is asking, and their credentials.
//! - [`sts`]: who signed a request (SigV4), and what STS answers about them.
//! - [`authz`]: principals' policies compiled and cached, and the engine's decision.
//! - [`audit`]: the CloudTrail-shaped audit trail.
//! - [`operations`]: every IAM and EC2 action, transport-neutral: authorized on its decoded
//!   request, audited, carried out.
//! - [`grpc`], [`http`]: the doors, adapters side by side over the operations (and STS and
//!   the metadata service): decode, call, encode.
//! - [`config`], [`telemetry`]: configuration, logging and counters.
//! - [`run`]: serves everything on the given listeners until `shutdown` resolves.

#![forbid(unsafe_code)]

pub mod admission;
pub mod announce;
pub mod audit;
pub mod authz;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod custody;
pub mod domain;
pub mod exposure;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod grpc;
pub mod http;
#[cfg(test)]
mod layers;
pub mod metadata;
pub mod operations;
pub mod store;
pub mod sts;
pub mod telemetry;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;

use std::{future::Future, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::{
    classify::{GrpcCode, GrpcErrorsAsFailures, SharedClassifier},
    trace::TraceLayer,
};

use crate::{
    catalog::{Catalog, Settings},
    config::Config,
    domain::{
        clock::{Clock, SystemClock},
        keyring::KeyRing,
    },
    metadata::{InstanceMetadata, MetadataSettings},
    telemetry::Metrics,
};

/// The sockets the server answers on, bound by the caller (so tests can bind port 0).
pub struct Listeners {
    pub grpc: TcpListener,
    pub metrics: Option<TcpListener>,
    /// The instance metadata service over HTTP.
    pub imds: Option<TcpListener>,
    /// The AWS Query API over HTTP.
    pub query: Option<TcpListener>,
}

/// The assembled service: state, keys, caches and counters.
pub struct App {
    pub config: Config,
    pub clock: Arc<SystemClock>,
    /// Every account's catalog.
    pub accounts: Arc<catalog::Accounts>,
    /// The default account's.
    pub catalog: Arc<Catalog>,
    pub imds: Arc<InstanceMetadata>,
    pub authn: Arc<sts::Authenticator>,
    pub authz: Arc<authz::Authorizer>,
    pub sts: Arc<sts::SecurityTokenService>,
    pub audit: audit::AuditLog,
    pub key_ring: Arc<KeyRing>,
    /// Rotates the key ring (persist, then install).
    pub key_keeper: Arc<custody::KeyKeeper>,
    pub metrics: Metrics,
    /// False while this replica has lost etcd's watch past its grace period: grpc.health.v1
    /// then answers NOT_SERVING, so that clients and balancers go to the other replicas.
    pub in_sync: tokio::sync::watch::Receiver<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("tls: {}: {source}", path.display())]
    Tls { path: std::path::PathBuf, source: std::io::Error },
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("metrics server: {0}")]
    Metrics(std::io::Error),
    #[error("audit.output: {0}")]
    Audit(std::io::Error),
    #[error("keys: {0}")]
    Keys(domain::Error),
    #[error("storage: {0}")]
    Store(custody::CustodyError),
    #[error("auth: {0}")]
    Auth(custody::CustodyError),
}

// === impl App ===

impl App {
    /// What the gRPC services are built on.
    pub fn grpc_services(&self) -> grpc::Services {
        grpc::Services {
            accounts: self.accounts.clone(),
            authn: self.authn.clone(),
            authz: self.authz.clone(),
            sts: self.sts.clone(),
            imds: self.imds.clone(),
            audit: self.audit.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
            in_sync: self.in_sync.clone(),
            key_keeper: self.key_keeper.clone(),
            max_message_bytes: self.config.server.max_message_bytes,
            unauthenticated_buffer_bytes: self.config.server.unauthenticated_buffer_bytes,
            unsigned: self.config.auth.unsigned_calls(),
            test_control: cfg!(debug_assertions) && self.config.simulation.manual_clock,
        }
    }

    /// Builds the service from a validated configuration: opens the store, and loads (or
    /// makes) the key ring and the identity signing key from it.
    pub async fn new(config: Config) -> Result<Self, ServeError> {
        config.validate()?;
        let clock = Arc::new(SystemClock::default());
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let metrics = Metrics::default();
        let settings = Settings {
            account_id: config.account_id.clone(),
            region: config.region.clone(),
            limits: config.limits.clone(),
            default_http_tokens_required: config.instances.http_tokens == "required",
            default_hop_limit: config.instances.http_put_response_hop_limit,
            private_network: catalog::PrivateNetwork::parse(&config.instances.private_network)
                .map_err(|e| config::ConfigError::Invalid(format!("instances.private_network: {e}")))?,
        };
        let audit = audit::AuditLog::open(
            &audit::Sink::parse(&config.audit.output),
            &config.account_id,
            &config.region,
        )
        .map_err(ServeError::Audit)?;
        let opened = custody::open_store(&config.storage.custody()).await.map_err(ServeError::Store)?;
        let store: Arc<dyn store::Store> =
            Arc::new(store::MeasuredStore::new(opened.store, metrics.store.clone()));
        let (key_ring, ring_revision) =
            custody::load_key_ring(&store, config.key_ring_policy(), clock.unix())
                .await
                .map_err(ServeError::Keys)?;
        let key_keeper = custody::KeyKeeper::new(
            store.clone(),
            key_ring.clone(),
            ring_revision,
            dyn_clock.clone(),
            metrics.clone(),
            config.key_activation_delay_secs(),
        );
        key_keeper.spawn();
        let identity = custody::load_identity_signer(&store).await.map_err(ServeError::Keys)?;
        let accounts = Arc::new(catalog::Accounts::new(store, dyn_clock.clone(), settings, &config.accounts));
        let (in_sync_tx, in_sync) = tokio::sync::watch::channel(true);
        #[cfg(feature = "etcd")]
        if let Some(changes) = opened.changes {
            custody::follow(changes, accounts.clone(), key_keeper.clone(), in_sync_tx);
        }
        #[cfg(not(feature = "etcd"))]
        drop(in_sync_tx);
        let catalog = accounts.default_catalog().clone();
        let imds = InstanceMetadata::new(
            accounts.clone(),
            key_ring.clone(),
            dyn_clock.clone(),
            metrics.clone(),
            audit.clone(),
            MetadataSettings {
                schedule: config.rotation_schedule(),
                cache_capacity: config.credentials.cache_capacity,
                trust_claimed_instance_id: config.simulation.trust_claimed_instance_id,
            },
            identity,
        );
        let roots = custody::root_keys(&config.root_keys()).map_err(ServeError::Auth)?;
        for root in &roots {
            if let Some(catalog) = accounts.get(&root.account_id) {
                catalog.know_root_key(&root.access_key_id);
            }
        }
        let authn = Arc::new(
            sts::Authenticator::new(accounts.clone(), key_ring.clone(), dyn_clock.clone()).with_roots(roots),
        );
        let authz = Arc::new(authz::Authorizer::new(accounts.clone(), dyn_clock.clone()));
        let sts = Arc::new(sts::SecurityTokenService::new(
            accounts.clone(),
            key_ring.clone(),
            dyn_clock.clone(),
            authz.clone(),
            audit.clone(),
        ));
        Ok(Self {
            config,
            clock,
            accounts,
            catalog,
            imds,
            authn,
            authz,
            sts,
            audit,
            key_ring,
            key_keeper,
            metrics,
            in_sync,
        })
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl App {
    /// The fixture of the metadata tests and fuzz targets: role "Web" (trusting EC2) in
    /// instance profile "Web", and `count` instances launched with it (`http_tokens` as
    /// RunInstances takes it), each with its instance key.
    pub async fn with_web_instances(
        self,
        count: usize,
        http_tokens: &str,
    ) -> domain::Result<(Self, Vec<(domain::model::Instance, String)>)> {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let role = catalog::NewRole {
            role_name: "Web".into(),
            assume_role_policy_document: trust.into(),
            ..Default::default()
        };
        self.catalog.create_role(role).await?;
        let profile = self.catalog.create_instance_profile("Web", "/", &[]).await?;
        self.catalog.add_role_to_instance_profile("Web", "Web").await?;
        let mut launched = Vec::with_capacity(count);
        for _ in 0..count {
            let launch = catalog::Launch {
                image_id: "ami-1".into(),
                http_tokens: http_tokens.into(),
                profile: Some(catalog::ProfileRef { arn: profile.arn.clone(), name: String::new() }),
                ..Default::default()
            };
            launched.append(&mut self.catalog.run_instances(launch).await?.1);
        }
        Ok((self, launched))
    }
}

/// Makes ring rustls's process-wide crypto provider. rustls picks one by itself only when
/// exactly one is compiled in; a workspace that also builds aws-lc-rs (reqwest, in the load
/// tester) would otherwise leave TLS without one.
pub fn install_crypto_provider() {
    // An error means a provider is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Serves gRPC (and the metrics endpoint) until `shutdown` resolves, then drains in-flight
/// requests for up to the configured grace period.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let app = App::new(config).await?;
    serve(app, listeners, shutdown).await
}

/// Like [`run`] for an already assembled [`App`].
pub async fn serve(
    app: App,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = app.config.clone();
    install_crypto_provider();
    for setting in config.simulation_settings() {
        tracing::warn!("SIMULATION setting on: {setting}");
    }
    let routes = grpc::routes(&app.grpc_services()).await?;
    announce_exposure(&config, &listeners);

    let mut builder = tonic::transport::Server::builder()
        // Each request has a deadline: a stuck call must not hold a concurrency slot forever
        // (answers CANCELLED; a shorter grpc-timeout from the client wins).
        .timeout(Duration::from_millis(config.server.request_timeout_ms));
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(tls_config(tls)?)?;
    }
    let layers = ServiceBuilder::new()
        // One span per request, so every log line names the RPC it belongs to; failures
        // (ERROR) are the server's faults only, see `client_errors_are_not_failures`.
        .layer(TraceLayer::new(client_errors_are_not_failures()))
        // Past the concurrency limit, answer at once (RESOURCE_EXHAUSTED) rather than queue
        // without bound: callers retry with backoff, latency of admitted requests holds.
        .load_shed()
        // Bounds the requests in flight across all connections (memory and latency).
        .concurrency_limit(config.server.concurrency_limit)
        .into_inner();
    let router = builder.layer(layers).add_routes(routes);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    if let Some(listener) = listeners.metrics {
        let metrics = app.metrics.clone();
        let addr = listener.local_addr().map_err(ServeError::Metrics)?;
        tracing::info!(%addr, "metrics endpoint listening (GET /metrics)");
        let router = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                        metrics.encode(),
                    )
                }
            }),
        );
        // Bounded as the other doors are; its requests have no body.
        tokio::spawn(http::door::serve(
            "metrics",
            app.metrics.clone(),
            listener,
            config.server.http_door_limits(http::imds::MAX_BODY_BYTES),
            http::door::routed(router, |_: &tokio::net::TcpStream, peer| peer),
            stop_rx.clone(),
        ));
    }

    if let Some(listener) = listeners.imds {
        let addr = listener.local_addr().map_err(ServeError::Metrics)?;
        let identity = http::imds::Identity::from_config(&config.imds.instance_identity);
        if identity == http::imds::Identity::PathPrefix {
            tracing::info!(%addr, "instance metadata (HTTP) listening: AWS_EC2_METADATA_SERVICE_ENDPOINT=http://{addr}/INSTANCE-ID/")
        } else {
            tracing::info!(%addr, "instance metadata (HTTP) listening; instances are known by source address")
        }
        tokio::spawn(http::door::serve(
            "imds",
            app.metrics.clone(),
            listener,
            config.server.http_door_limits(http::imds::MAX_BODY_BYTES),
            http::imds::connections(app.imds.clone(), identity),
            stop_rx.clone(),
        ));
    }

    if let Some(listener) = listeners.query {
        let addr = listener.local_addr().map_err(ServeError::Metrics)?;
        tracing::info!(%addr, "AWS APIs (STS, IAM, EC2, S3) listening: AWS_ENDPOINT_URL=http://{addr}");
        let router = http::query::router(
            http::port::QueryApi {
                authn: app.authn.clone(),
                accounts: app.accounts.clone(),
                authz: app.authz.clone(),
                sts: app.sts.clone(),
                metrics: app.metrics.clone(),
                audit: app.audit.clone(),
                clock: app.clock.clone(),
            },
            config.server.query_max_body_bytes,
        );
        tokio::spawn(http::door::serve(
            "query",
            app.metrics.clone(),
            listener,
            config.server.http_door_limits(config.server.query_max_body_bytes),
            http::door::routed(router, |_: &tokio::net::TcpStream, peer| peer),
            stop_rx.clone(),
        ));
    }

    let addr = listeners.grpc.local_addr().map_err(ServeError::Metrics)?;
    tracing::info!(%addr, tls = config.tls.is_some(), "rolecall gRPC listening");
    let incoming = grpc::incoming::incoming(
        listeners.grpc,
        config.server.grpc_max_connections,
        config.server.max_connections_per_address,
        Duration::from_millis(config.server.http_header_read_timeout_ms),
        &app.metrics,
        stop_rx.clone(),
    );
    let mut drain = stop_rx.clone();
    let serving = router.serve_with_incoming_shutdown(incoming, async move {
        let _ = drain.wait_for(|s| *s).await;
    });
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let mut stopped = stop_rx;
    tokio::select! {
        result = serving => result?,
        () = async move {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("shutdown grace period over; in-flight requests abandoned"),
    }
    tracing::info!("rolecall stopped");
    Ok(())
}

/// Says at start what each listener exposes and to whom (the exposure rule).
fn announce_exposure(config: &Config, listeners: &Listeners) {
    let local = |l: &TcpListener| l.local_addr().ok();
    let Some(grpc) = local(&listeners.grpc) else { return };
    let bound = announce::Bound {
        grpc,
        metrics: listeners.metrics.as_ref().and_then(local),
        imds: listeners.imds.as_ref().and_then(local),
        query: listeners.query.as_ref().and_then(local),
    };
    for announce::Announcement { warn, line } in announce::announcements(config, &bound) {
        if warn {
            tracing::warn!("{line}");
        } else {
            tracing::info!("{line}");
        }
    }
}

fn tls_config(tls: &config::TlsConfig) -> Result<tonic::transport::ServerTlsConfig, ServeError> {
    let read =
        |p: &std::path::Path| std::fs::read(p).map_err(|source| ServeError::Tls { path: p.into(), source });
    let identity = tonic::transport::Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
    let mut cfg = tonic::transport::ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &tls.client_ca {
        cfg = cfg.client_ca_root(tonic::transport::Certificate::from_pem(read(ca)?));
    }
    Ok(cfg)
}

/// The trace layer's idea of a failure, which it logs at ERROR: a fault of the server, not
/// of its caller. A fleet polling IMDS for a role it lacks (NOT_FOUND), a caller without
/// credentials or permission, a bad argument or a malformed frame would otherwise fill the
/// log at ERROR; they are answered with their status and logged at DEBUG with the response
/// (as are the refusals of requests that proved no one). INTERNAL is also a
/// caller's malformed message (grpc.io's status codes guide), so the server's internal
/// faults (ServiceFailure) are logged at ERROR where they are answered (`grpc::error::reply`,
/// `operations::Gate::run`).
fn client_errors_are_not_failures() -> SharedClassifier<GrpcErrorsAsFailures> {
    let client = [
        GrpcCode::Cancelled,
        GrpcCode::InvalidArgument,
        GrpcCode::NotFound,
        GrpcCode::AlreadyExists,
        GrpcCode::PermissionDenied,
        GrpcCode::ResourceExhausted,
        GrpcCode::FailedPrecondition,
        GrpcCode::Aborted,
        GrpcCode::OutOfRange,
        GrpcCode::Unimplemented,
        GrpcCode::Internal,
        GrpcCode::Unauthenticated,
    ];
    SharedClassifier::new(
        client.into_iter().fold(GrpcErrorsAsFailures::new(), GrpcErrorsAsFailures::with_success),
    )
}
