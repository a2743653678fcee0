//! Logs (tracing) and the counters the server keeps (Prometheus text format).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

/// Installs the tracing subscriber on stderr: `RUST_LOG` filters, default `info`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The AWS error code.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DoorLabels {
    /// The HTTP door: `imds` or `query`.
    pub door: String,
}

/// What the server counts. Cloning shares the counters.
#[derive(Clone, Default)]
pub struct Metrics {
    pub credentials_issued: Counter,
    pub credential_cache_hits: Counter,
    pub credential_cache_misses: Counter,
    pub credentials_prefetched: Counter,
    pub imds_tokens_issued: Counter,
    pub instances_launched: Counter,
    pub key_ring_rotations: Counter,
    /// Keys this process holds (active, staged, retired): a replica that heard of a staged
    /// key shows one more.
    pub key_ring_keys: prometheus_client::metrics::gauge::Gauge,
    /// 1 while this replica hears the store's changes (always, without etcd), 0 while cut off.
    pub store_in_sync: prometheus_client::metrics::gauge::Gauge,
    pub store: StoreMetrics,
    pub errors: Family<ErrorLabels, Counter>,
    /// Connections open on each HTTP door (at most `server.http_max_connections`).
    pub http_connections: Family<DoorLabels, prometheus_client::metrics::gauge::Gauge>,
    /// Connections closed at once because their address had `server.max_connections_per_address` open.
    pub connections_refused: Family<DoorLabels, Counter>,
}

/// What the catalog asks of the store (`store::MeasuredStore` counts it): reads that missed
/// every cache, and commits with their time and conflicts.
#[derive(Clone)]
pub struct StoreMetrics {
    pub reads: Counter,
    pub commits: Counter,
    pub conflicts: Counter,
    pub commit_seconds: prometheus_client::metrics::histogram::Histogram,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            reads: Counter::default(),
            commits: Counter::default(),
            conflicts: Counter::default(),
            // 50 µs (memory) to 3.3 s (etcd under trouble).
            commit_seconds: prometheus_client::metrics::histogram::Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.000_05, 2.0, 17),
            ),
        }
    }
}

impl Metrics {
    pub fn error(&self, code: &str) {
        self.errors.get_or_create(&ErrorLabels { code: code.to_string() }).inc();
    }

    /// The counters in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut registry = Registry::with_prefix("rolecall");
        registry.register(
            "credentials_issued",
            "Temporary credentials issued (sealed) for instances",
            self.credentials_issued.clone(),
        );
        registry.register(
            "credential_cache_hits",
            "Credential fetches served from the cache without issuing",
            self.credential_cache_hits.clone(),
        );
        registry.register(
            "credential_cache_misses",
            "Credential fetches that had to issue (absent or past rotation)",
            self.credential_cache_misses.clone(),
        );
        registry.register(
            "credentials_prefetched",
            "Credentials replaced in the background ahead of their rotation point",
            self.credentials_prefetched.clone(),
        );
        registry.register(
            "imds_tokens_issued",
            "IMDSv2 session tokens issued",
            self.imds_tokens_issued.clone(),
        );
        registry.register(
            "instances_launched",
            "Instances launched by RunInstances",
            self.instances_launched.clone(),
        );
        registry.register(
            "key_ring_rotations",
            "Times the key ring made a new active key",
            self.key_ring_rotations.clone(),
        );
        registry.register(
            "key_ring_keys",
            "Keys the key ring holds (active, staged for activation, retired until expiry)",
            self.key_ring_keys.clone(),
        );
        registry.register(
            "store_in_sync",
            "1 while this replica hears the store's changes (etcd's watch), 0 while cut off",
            self.store_in_sync.clone(),
        );
        registry.register(
            "store_reads",
            "Store reads (get or list) that no cache answered",
            self.store.reads.clone(),
        );
        registry.register("store_commits", "Store commits that applied", self.store.commits.clone());
        registry.register(
            "store_conflicts",
            "Store commits refused because what they read had changed (then retried)",
            self.store.conflicts.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Time a store commit took, to durability (redb) or etcd's answer",
            self.store.commit_seconds.clone(),
        );
        registry.register(
            "errors",
            "Requests answered with an error, by AWS error code",
            self.errors.clone(),
        );
        registry.register(
            "http_connections",
            "Connections open on each HTTP door (imds, query)",
            self.http_connections.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at once because their peer address had its maximum open, by listener",
            self.connections_refused.clone(),
        );
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// The body of `GET /metrics` from a rolecall at `addr` (for tests and the load tester).
pub async fn scrape(addr: std::net::SocketAddr) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default())
}

/// A counter's value in a scrape: 0 when it has not counted yet (absent).
pub fn counter_in(text: &str, name: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0)
}

/// A histogram's cumulative buckets in a scrape: (upper bound in the metric's unit, count),
/// in the order exposed, `+Inf` last; empty when absent.
pub fn histogram_in(text: &str, name: &str) -> Vec<(f64, u64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|line| {
            let (le, count) = line.strip_prefix(&prefix)?.split_once("\"}")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_text_format() {
        let m = Metrics::default();
        m.credentials_issued.inc();
        m.error("NoSuchEntity");
        let text = m.encode();
        assert!(text.contains("rolecall_credentials_issued_total 1"), "{text}");
        assert_eq!(counter_in(&text, "rolecall_credentials_issued_total"), 1);
        assert_eq!(counter_in(&text, "rolecall_credentials_issued"), 0, "a prefix is not a counter");
        m.store.commit_seconds.observe(0.003);
        let buckets = histogram_in(&m.encode(), "rolecall_store_commit_seconds");
        assert_eq!(buckets.len(), 18, "17 bounds and +Inf");
        assert_eq!(buckets.iter().find(|(le, _)| *le >= 0.003).map(|b| b.1), Some(1));
        assert_eq!(buckets.first().map(|b| b.1), Some(0));
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 1)));
        assert!(text.contains("rolecall_errors_total{code=\"NoSuchEntity\"} 1"), "{text}");
        for name in [
            "credentials_issued",
            "credential_cache_hits",
            "credential_cache_misses",
            "imds_tokens_issued",
            "instances_launched",
            "key_ring_rotations",
            "errors",
        ] {
            assert!(text.contains(&format!("# TYPE rolecall_{name} counter")), "{name} registered: {text}");
        }
    }
}
