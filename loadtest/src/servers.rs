//! The server under test: a child process (the default: its CPU time is its own, and it can
//! be pinned to a core), an in-process task (the smoke test), or a remote address.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::Duration,
};

use tokio::{io::AsyncReadExt, net::TcpListener, sync::oneshot};

use crate::procfs;

/// Which server a pass drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rolecall,
    Baseline,
}

/// The line a child server prints once it listens.
const READY: &str = "LISTENING";

pub struct ServerUnderTest {
    pub kind: Kind,
    /// `http://ADDR` of the gRPC endpoint.
    pub grpc_url: String,
    /// `http://ADDR` of the instance metadata service over HTTP (path-prefix identity), or
    /// of the HTTP baseline.
    pub imds_url: Option<String>,
    pub metrics: Option<SocketAddr>,
    child: Option<Child>,
    stop: Option<oneshot::Sender<()>>,
    /// Further replicas on one etcd (`--replicas`): CPU, memory and counters are summed.
    others: Vec<ServerUnderTest>,
    etcd: Option<Etcd>,
}

/// An etcd of the load test's own (for `--replicas`), on free loopback ports.
pub struct Etcd {
    child: Child,
    dir: std::path::PathBuf,
    pub client_url: String,
}

impl Etcd {
    /// Starts `etcd` (from PATH: Debian's etcd-server) and waits until it serves clients;
    /// on `core` where given (with taskset), beside the servers and away from the harness.
    pub fn start(dir: std::path::PathBuf, core: Option<usize>) -> Result<Self, String> {
        let port = || -> Result<u16, String> {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            Ok(l.local_addr().map_err(|e| e.to_string())?.port())
        };
        let (client_url, peer_url) =
            (format!("http://127.0.0.1:{}", port()?), format!("http://127.0.0.1:{}", port()?));
        let _ = std::fs::remove_dir_all(&dir);
        let mut command = match core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &core.to_string(), "etcd"]);
                c
            }
            None => Command::new("etcd"),
        };
        let mut child = command
            .args(["--name", "loadtest", "--data-dir"])
            .arg(&dir)
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("loadtest={peer_url}")])
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("etcd (apt-get install etcd-server): {e}"))?;
        let stderr = child.stderr.take().ok_or("no etcd stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("ready to serve client requests") => break,
                Some(Ok(_)) => {}
                _ => return Err("etcd exited before serving".into()),
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self { child, dir, client_url })
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl ServerUnderTest {
    /// Starts this executable again as a server (`rolecall-loadtest serve-rolecall` or
    /// `serve-baseline`), pinned to `core` where given, and waits for it to listen. The
    /// child stops when its standard input closes, so it cannot outlive the harness.
    pub fn spawn_child(kind: Kind, config_json: &str, core: Option<usize>) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.arg(match kind {
            Kind::Rolecall => "serve-rolecall",
            Kind::Baseline => "serve-baseline",
        });
        cmd.arg("--config-json").arg(config_json);
        if let Some(core) = core {
            cmd.arg("--core").arg(core.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map_err(|e| format!("read child: {e}"))?;
        let ready = parse_ready(&line).ok_or_else(|| format!("server did not start: {line:?}"))?;
        let mut server = Self::listening(kind, ready);
        server.child = Some(child);
        Ok(server)
    }

    /// A server listening where `ready` says, with nothing yet to stop it.
    fn listening(kind: Kind, ready: Ready) -> Self {
        Self {
            kind,
            grpc_url: format!("http://{}", ready.grpc),
            imds_url: ready.imds.map(|a| format!("http://{a}")),
            metrics: ready.metrics,
            child: None,
            stop: None,
            others: Vec::new(),
            etcd: None,
        }
    }

    /// `configs.len()` rolecall replicas as children, sharing `etcd` (kept alive with them).
    pub fn spawn_replicas(configs: &[String], core: Option<usize>, etcd: Etcd) -> Result<Self, String> {
        let mut replicas = configs.iter().map(|c| Self::spawn_child(Kind::Rolecall, c, core));
        let mut first = replicas.next().ok_or("no replicas")??;
        first.others = replicas.collect::<Result<_, _>>()?;
        first.etcd = Some(etcd);
        Ok(first)
    }

    /// Every replica's gRPC URL (one without `--replicas`).
    pub fn grpc_urls(&self) -> Vec<String> {
        std::iter::once(self.grpc_url.clone()).chain(self.others.iter().map(|o| o.grpc_url.clone())).collect()
    }

    /// Runs the server inside this process (no separate CPU accounting).
    pub async fn in_process(kind: Kind, config: rolecall_server::config::Config) -> Result<Self, String> {
        let (listeners, ready) = Bound::new(kind).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        tokio::spawn(listeners.serve(config, shutdown));
        let mut server = Self::listening(kind, ready);
        server.stop = Some(stop);
        Ok(server)
    }

    /// Servers someone else runs: the replicas at `grpc_urls`, with the metrics addresses
    /// given (in the same order; counters are summed only if every replica has one).
    pub fn remote(kind: Kind, grpc_urls: &[String], metrics: &[SocketAddr]) -> Result<Self, String> {
        let mut all = grpc_urls.iter().enumerate().map(|(n, url)| Self {
            kind,
            grpc_url: url.clone(),
            imds_url: None,
            metrics: metrics.get(n).copied(),
            child: None,
            stop: None,
            others: Vec::new(),
            etcd: None,
        });
        let mut first = all.next().ok_or("no --host given")?;
        first.others = all.collect();
        Ok(first)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// CPU time the server (every replica) has used (child processes only).
    pub fn cpu_time(&self) -> Option<Duration> {
        let mine = self.pid().and_then(procfs::cpu_time)?;
        self.others.iter().try_fold(mine, |sum, o| Some(sum + o.cpu_time()?))
    }

    /// Each replica's CPU time, in `grpc_urls` order.
    pub fn replica_cpu_times(&self) -> Vec<Option<Duration>> {
        std::iter::once(self.pid().and_then(procfs::cpu_time))
            .chain(self.others.iter().map(|o| o.pid().and_then(procfs::cpu_time)))
            .collect()
    }

    pub fn rss_bytes(&self) -> Option<u64> {
        let mine = self.pid().and_then(procfs::rss_bytes)?;
        self.others.iter().try_fold(mine, |sum, o| Some(sum + o.rss_bytes()?))
    }

    /// A counter from the server's /metrics (summed over the replicas).
    pub async fn counter(&self, name: &str) -> Option<u64> {
        let text = rolecall_server::telemetry::scrape(self.metrics?).await.ok()?;
        let mut sum = rolecall_server::telemetry::counter_in(&text, name);
        for other in &self.others {
            sum += Box::pin(other.counter(name)).await?;
        }
        Some(sum)
    }

    /// Every replica's /metrics text (none where one has no metrics address).
    pub async fn scrapes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for server in std::iter::once(self).chain(self.others.iter()) {
            if let Some(addr) = server.metrics
                && let Ok(text) = rolecall_server::telemetry::scrape(addr).await
            {
                out.push(text);
            }
        }
        out
    }

    /// CPU time etcd has used (with `--replicas`).
    pub fn etcd_cpu_time(&self) -> Option<Duration> {
        self.etcd.as_ref().and_then(|e| procfs::cpu_time(e.child.id()))
    }

    /// How many replicas serve.
    pub fn replicas(&self) -> usize {
        1 + self.others.len()
    }

    /// Stops the server (every replica) and waits for it.
    pub fn stop(mut self) {
        for other in std::mem::take(&mut self.others) {
            other.stop();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

impl Drop for ServerUnderTest {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where a server listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready {
    pub grpc: SocketAddr,
    pub metrics: Option<SocketAddr>,
    pub imds: Option<SocketAddr>,
}

impl Ready {
    /// The announcement a child prints once listening:
    /// `LISTENING grpc=ADDR metrics=ADDR|none imds=ADDR|none`.
    pub fn line(&self) -> String {
        let or_none = |a: Option<SocketAddr>| a.map_or("none".to_string(), |a| a.to_string());
        format!("{READY} grpc={} metrics={} imds={}", self.grpc, or_none(self.metrics), or_none(self.imds))
    }
}

fn parse_ready(line: &str) -> Option<Ready> {
    let mut words = line.split_whitespace();
    if words.next()? != READY {
        return None;
    }
    let grpc = words.next()?.strip_prefix("grpc=")?.parse().ok()?;
    let metrics = words.next()?.strip_prefix("metrics=")?.parse().ok();
    let imds = words.next()?.strip_prefix("imds=")?.parse().ok();
    Some(Ready { grpc, metrics, imds })
}

/// A server's listeners, bound on loopback before it serves: gRPC and HTTP IMDS for both
/// kinds, and metrics for rolecall.
pub struct Bound {
    kind: Kind,
    grpc: TcpListener,
    imds: TcpListener,
    metrics: Option<TcpListener>,
}

impl Bound {
    pub async fn new(kind: Kind) -> Result<(Self, Ready), String> {
        let bind = || async { TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string()) };
        let addr = |l: &TcpListener| l.local_addr().map_err(|e| e.to_string());
        let (grpc, imds) = (bind().await?, bind().await?);
        let metrics = if kind == Kind::Rolecall { Some(bind().await?) } else { None };
        let ready = Ready {
            grpc: addr(&grpc)?,
            imds: Some(addr(&imds)?),
            metrics: metrics.as_ref().map(addr).transpose()?,
        };
        Ok((Self { kind, grpc, imds, metrics }, ready))
    }

    /// Serves until `shutdown` resolves. rolecall's IMDS identifies instances by path prefix
    /// (its default), so one loopback listener serves the whole fleet.
    pub async fn serve(
        self,
        config: rolecall_server::config::Config,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        match self.kind {
            Kind::Rolecall => {
                let listeners = rolecall_server::Listeners {
                    grpc: self.grpc,
                    metrics: self.metrics,
                    imds: Some(self.imds),
                    query: None,
                };
                rolecall_server::run(config, listeners, shutdown).await.map_err(|e| e.to_string())
            }
            Kind::Baseline => {
                // One shutdown for both: the HTTP baseline stops when the gRPC one does.
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let http = tokio::spawn(crate::baseline::serve_imds(self.imds, async move {
                    let mut stopped = stopped;
                    let _ = stopped.wait_for(|s| *s).await;
                }));
                let grpc = crate::baseline::serve(self.grpc, shutdown).await;
                let _ = stop.send(true);
                let _ = http.await;
                grpc
            }
        }
    }
}

/// Resolves when standard input closes: the parent harness has gone.
pub async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_roundtrips() {
        let g: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let m: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        let both = Ready { grpc: g, metrics: Some(m), imds: Some(m) };
        assert_eq!(parse_ready(&both.line()), Some(both));
        let bare = Ready { grpc: g, metrics: None, imds: None };
        assert_eq!(parse_ready(&bare.line()), Some(bare));
        assert_eq!(parse_ready("garbage"), None);
    }
}
