//! Test fixtures: a real server on 127.0.0.1:0 and clients connected to it over real sockets.

use std::{net::SocketAddr, sync::Arc};

use rolecall_api::{
    ec2_client::Ec2Client, iam_client::IamClient, instance_metadata_client::InstanceMetadataClient,
    sts_client::StsClient, test_control_client::TestControlClient,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::{Channel, Endpoint};

use crate::{
    Listeners, ServeError,
    config::Config,
    domain::clock::SystemClock,
    grpc::sigv4::{ClientCredentials, Signing},
};

/// A running server. Dropping it stops the server.
pub struct TestServer {
    pub grpc_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// The instance metadata service over HTTP: `http://{imds_addr}/INSTANCE-ID/latest/...`.
    pub imds_addr: SocketAddr,
    /// The AWS Query API: `aws --endpoint-url http://{query_addr}`.
    pub query_addr: SocketAddr,
    pub channel: Channel,
    /// The clients' clock: the system's, moved with the server's by [`advance`](Self::advance).
    pub client_clock: Arc<SystemClock>,
    region: String,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestServer {
    /// A server with the default configuration plus the manual clock.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server whose configuration `adjust` may change first.
    #[allow(clippy::expect_used)]
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        crate::install_crypto_provider();
        let mut config = Config { metrics_listen: None, ..Config::default() };
        // Each test server starts empty; a test that wants durability names a data dir.
        config.storage.backend = "memory".into();
        config.simulation.manual_clock = true;
        adjust(&mut config);
        let region = config.region.clone();
        // Bound before the server starts: connecting below cannot race its start-up.
        // On loopback, unless the test names an address of its own (a peer off this host).
        let grpc = TcpListener::bind(SocketAddr::new(config.listen.ip(), 0)).await.expect("bind grpc");
        let metrics = TcpListener::bind("127.0.0.1:0").await.expect("bind metrics");
        // Where the test asks for an address of its own (instances in network namespaces).
        let imds_at = config.imds.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let imds = TcpListener::bind(imds_at).await.expect("bind imds");
        let imds_addr = imds.local_addr().expect("imds addr");
        let query = TcpListener::bind("127.0.0.1:0").await.expect("bind query");
        let query_addr = query.local_addr().expect("query addr");
        let grpc_addr = grpc.local_addr().expect("grpc addr");
        let metrics_addr = metrics.local_addr().expect("metrics addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(crate::run(
            config,
            Listeners { grpc, metrics: Some(metrics), imds: Some(imds), query: Some(query) },
            async move {
                let _ = stopped.await;
            },
        ));
        let channel = Endpoint::from_shared(format!("http://{grpc_addr}"))
            .expect("endpoint")
            .tcp_nodelay(true)
            .connect_lazy();
        Self {
            grpc_addr,
            metrics_addr,
            imds_addr,
            query_addr,
            channel,
            client_clock: Arc::new(SystemClock::default()),
            region,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn iam(&self) -> IamClient<Channel> {
        IamClient::new(self.channel.clone())
    }

    pub fn ec2(&self) -> Ec2Client<Channel> {
        Ec2Client::new(self.channel.clone())
    }

    pub fn imds(&self) -> InstanceMetadataClient<Channel> {
        InstanceMetadataClient::new(self.channel.clone())
    }

    pub fn test_control(&self) -> TestControlClient<Channel> {
        TestControlClient::new(self.channel.clone())
    }

    /// An Sts client that signs with `credentials` (SigV4 over gRPC).
    pub fn sts(&self, credentials: ClientCredentials) -> StsClient<Signing<Channel>> {
        StsClient::new(self.signing(credentials, "sts"))
    }

    /// This server's channel, signing every request for `service` with `credentials`.
    pub fn signing(&self, credentials: ClientCredentials, service: &'static str) -> Signing<Channel> {
        let clock = self.client_clock.clone();
        Signing::new(
            self.channel.clone(),
            credentials,
            self.grpc_addr.to_string(),
            &self.region,
            service,
            clock,
        )
    }

    /// Moves the server's clock (TestControl.AdvanceClock) and the clients' with it.
    #[allow(clippy::expect_used)]
    pub async fn advance(&self, seconds: i64) {
        let request = rolecall_api::AdvanceClockRequest { seconds };
        self.test_control().advance_clock(request).await.expect("AdvanceClock");
        self.client_clock.advance(time::Duration::seconds(seconds));
    }

    /// GET /metrics over a plain HTTP/1.0 exchange.
    #[allow(clippy::expect_used)]
    pub async fn metrics_text(&self) -> String {
        crate::telemetry::scrape(self.metrics_addr).await.expect("scrape /metrics")
    }

    /// The value of a counter in the metrics text (0 when absent).
    pub async fn counter(&self, name: &str) -> u64 {
        crate::telemetry::counter_in(&self.metrics_text().await, name)
    }

    /// Stops the server and waits for it to drain.
    #[allow(clippy::expect_used)]
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.handle.take() {
            Some(h) => h.await.expect("server task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
