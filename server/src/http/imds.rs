//! The instance metadata service over HTTP, as EC2 serves it at 169.254.169.254. Which
//! instance asks is the transport's to say (`imds.instance_identity`): the connection's
//! source address (AWS's way, and the loopback simulation), or a per-instance path prefix
//! (`/INSTANCE-ID/latest/...`: the simulation of one shared host). What each path answers is
//! decided by [`InstanceMetadata`], as for the gRPC service.

use std::{
    net::SocketAddr,
    os::fd::{AsFd, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    Router,
    extract::{ConnectInfo, FromRequestParts, OriginalUri, State},
    http::{HeaderMap, Method, StatusCode, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use tokio::net::TcpStream;

use super::error::imds_error;
use crate::{
    domain::{Error, ErrorCode, Result, imds_token::Proof},
    metadata::{Caller, InstanceMetadata},
};

const TOKEN: &str = "x-aws-ec2-metadata-token";
const TOKEN_TTL: &str = "x-aws-ec2-metadata-token-ttl-seconds";
/// Where the identity documents' public key is served (PEM).
pub const IDENTITY_PUBLIC_KEY: &str = "/rolecall/instance-identity-public-key.pem";
/// The largest request body IMDS takes: its requests have none (a PUT for a token, GETs).
pub const MAX_BODY_BYTES: usize = 1024;
/// Linux's default IP TTL, restored after a token answer lowered it.
const DEFAULT_TTL: u32 = 64;

/// How the HTTP IMDS knows which instance asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The connection's source address is the instance's private address.
    SourceAddress,
    /// Simulation: the same over 127.0.0.0/8, where any process on the host may bind any
    /// instance's address.
    Loopback,
    /// Simulation: the first path segment names the instance.
    PathPrefix,
}

impl Identity {
    /// `imds.instance_identity` (validated by the configuration).
    pub fn from_config(name: &str) -> Self {
        match name {
            "path_prefix" => Self::PathPrefix,
            "loopback" => Self::Loopback,
            _ => Self::SourceAddress,
        }
    }

    /// How much a request located this way proves (what its tokens are minted on).
    pub fn proof(self) -> Proof {
        match self {
            Self::SourceAddress => Proof::SourceAddress,
            Self::Loopback | Self::PathPrefix => Proof::Claimed,
        }
    }

    /// Whether the instance is only claimed, so that only clients on this host may ask
    /// (docs/configuration.md, the exposure rule).
    pub fn is_simulation(self) -> bool {
        self.proof() == Proof::Claimed
    }
}

#[derive(Clone)]
pub struct ImdsHttp {
    pub imds: Arc<InstanceMetadata>,
    pub identity: Identity,
}

/// The connection a request came on: its peer, and its socket, whose IP TTL the token
/// answer sets to the instance's hop limit (as EC2 does, so that a token does not reach
/// further than the hop limit allows: containers behind a bridge, a proxy on the host).
#[derive(Clone)]
pub struct Peer {
    addr: SocketAddr,
    socket: Option<Arc<OwnedFd>>,
    lowered: Arc<AtomicBool>,
}

impl Peer {
    /// The connection `stream` from `addr`.
    pub fn new(stream: &TcpStream, addr: SocketAddr) -> Self {
        Self {
            addr,
            socket: stream.as_fd().try_clone_to_owned().ok().map(Arc::new),
            lowered: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sends what follows on this connection with this IP TTL.
    fn set_ttl(&self, ttl: u32) {
        if let Some(socket) = &self.socket
            && let Err(e) = socket2::SockRef::from(socket.as_ref()).set_ttl_v4(ttl)
        {
            tracing::warn!(error = %e, "cannot set the IP TTL of an instance metadata answer");
        }
    }

    /// Before any answer but a token's: the default TTL again, if a token answer lowered it.
    fn restore_ttl(&self) {
        if self.lowered.swap(false, Ordering::Relaxed) {
            self.set_ttl(DEFAULT_TTL);
        }
    }
}

/// Which instance asks, as the transport says, and on which connection.
struct Asker(String, Option<Peer>);

/// The refusal of a simulation identity to a client off this host.
fn off_loopback() -> Response {
    imds_error(&Error::new(
        ErrorCode::Forbidden,
        "this instance metadata service identifies instances by a simulation (imds.instance_identity) and answers clients on this host only",
    ))
}

impl Asker {
    /// Who asks, as the transport says: the request's `method` and `path`, on the connection
    /// `peer`.
    async fn of(
        state: &ImdsHttp,
        method: &Method,
        path: &str,
        peer: Option<&Peer>,
    ) -> Result<Self, Response> {
        if let Some(peer) = peer
            && !(method == Method::PUT && path.ends_with("/api/token"))
        {
            peer.restore_ttl();
        }
        if state.identity.is_simulation() && !peer.is_some_and(|p| crate::exposure::is_loopback(p.addr.ip()))
        {
            return Err(off_loopback());
        }
        match state.identity {
            Identity::PathPrefix => Ok(Self(first_segment(path), peer.cloned())),
            Identity::SourceAddress | Identity::Loopback => {
                let Some(ip) = peer.map(|p| p.addr.ip().to_canonical()) else {
                    return Err(imds_error(&Error::service_failure("no connection info")));
                };
                match state.imds.instance_at(&ip.to_string()).await {
                    Ok(instance) => Ok(Self(instance, peer.cloned())),
                    Err(e) => Err(imds_error(&e)),
                }
            }
        }
    }
}

impl FromRequestParts<ImdsHttp> for Asker {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ImdsHttp) -> Result<Self, Response> {
        let peer = parts.extensions.get::<ConnectInfo<Peer>>().map(|c| &c.0);
        Self::of(state, &parts.method, parts.uri.path(), peer).await
    }
}

/// A path's first segment: the instance, with a path prefix (no route is nested, so the
/// request's path is the one sent).
fn first_segment(path: &str) -> String {
    path.trim_start_matches('/').split('/').next().unwrap_or_default().to_string()
}

/// The service of each connection: the meta-data tree (every credential fetch) answered
/// directly, everything else by [`router`].
pub fn connections(
    imds: Arc<InstanceMetadata>,
    identity: Identity,
) -> impl Fn(&TcpStream, SocketAddr) -> Connection {
    let state = ImdsHttp { imds, identity };
    let router = router(state.clone());
    move |stream, addr| Connection {
        state: state.clone(),
        peer: Peer::new(stream, addr),
        router: router.clone(),
    }
}

/// One connection's service. The meta-data tree lies below the routes (the router's fallback
/// would find it after a failed match), so it is looked for first, and answered without the
/// router's matching, its layers and the peer's extension (5,000 instructions of each
/// credential GET, callgrind: docs/benchmarks.md); every other path is routed.
#[derive(Clone)]
pub struct Connection {
    state: ImdsHttp,
    peer: Peer,
    router: Router,
}

impl tower::Service<axum::extract::Request<hyper::body::Incoming>> for Connection {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: axum::extract::Request<hyper::body::Incoming>) -> Self::Future {
        if let Some(at) = meta_data_start(request.uri().path(), self.state.identity) {
            let (state, peer) = (self.state.clone(), self.peer.clone());
            return Box::pin(async move { Ok(meta(&state, &peer, request.into_parts().0, at).await) });
        }
        request.extensions_mut().insert(ConnectInfo(self.peer.clone()));
        Box::pin(tower::ServiceExt::oneshot(self.router.clone(), request))
    }
}

/// The routes under `/latest/` (at the root, or under `/INSTANCE-ID/` with a path prefix),
/// and the container credentials endpoint at `/INSTANCE-ID/container-credentials`. With a
/// path prefix each route is written with it rather than nested under it: nesting rewrites
/// every request's URI, a cost on each credential fetch. The meta-data tree is the
/// [`Connection`]'s (405 for a method it does not take); the router's fallback answers 404
/// for what no route names.
fn router(state: ImdsHttp) -> Router {
    let identity = state.identity;
    let at = |path: &str| match identity {
        Identity::PathPrefix => format!("/{{instance}}{path}"),
        Identity::SourceAddress | Identity::Loopback => path.to_string(),
    };
    Router::new()
        .route(&at("/latest/api/token"), put(token))
        .route(&at("/latest/meta-data"), get(meta_root))
        .route(&at("/latest/meta-data/"), get(meta_root))
        .route(&at("/latest/dynamic"), get(dynamic_root))
        .route(&at("/latest/dynamic/"), get(dynamic_root))
        .route(&at("/latest/dynamic/instance-identity"), get(identity_root))
        .route(&at("/latest/dynamic/instance-identity/"), get(identity_root))
        .route(&at("/latest/dynamic/instance-identity/document"), get(identity_document))
        .route(&at("/latest/dynamic/instance-identity/signature"), get(identity_signature))
        .route(&at("/latest/user-data"), get(user_data))
        .route("/{instance}/container-credentials", get(container_credentials))
        .route(IDENTITY_PUBLIC_KEY, get(identity_public_key))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(state)
}

fn text(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "text/plain")], body).into_response()
}

fn answer(result: Result<String>) -> Response {
    match result {
        Ok(body) => text(StatusCode::OK, body),
        Err(e) => imds_error(&e),
    }
}

/// The session token a request sent (X-aws-ec2-metadata-token), if any: read alone, without
/// a copy of the other headers.
struct SentToken(Option<String>);

impl SentToken {
    fn of(headers: &HeaderMap) -> Self {
        Self(headers.get(TOKEN).and_then(|v| v.to_str().ok()).map(str::to_string))
    }
}

impl<S: Sync> FromRequestParts<S> for SentToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.headers))
    }
}

/// Who asks: the instance located, with the token it sent, if any.
fn caller(state: &ImdsHttp, Asker(instance, _): Asker, SentToken(token): SentToken) -> Caller {
    Caller::Located { instance_id: instance, proof: state.identity.proof(), token }
}

/// PUT /latest/api/token: 400 without a TTL in 1-21600, 403 through a proxy
/// (X-Forwarded-For), else the token, the TTL echoed.
async fn token(State(state): State<ImdsHttp>, Asker(instance, peer): Asker, headers: HeaderMap) -> Response {
    if headers.contains_key("x-forwarded-for") {
        return imds_error(&Error::new(ErrorCode::Forbidden, "a token request may not pass through a proxy"));
    }
    let ttl = headers.get(TOKEN_TTL).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let Some(ttl) = ttl else {
        return imds_error(&Error::new(
            ErrorCode::BadRequest,
            "missing or malformed X-aws-ec2-metadata-token-ttl-seconds",
        ));
    };
    match state.imds.get_token_at(&instance, state.identity.proof(), ttl).await {
        Ok((token, hop_limit)) => {
            if let Some(peer) = peer {
                peer.set_ttl(u32::try_from(hop_limit).unwrap_or(1));
                peer.lowered.store(true, Ordering::Relaxed);
            }
            (StatusCode::OK, [("content-type", "text/plain"), (TOKEN_TTL, &ttl.to_string())], token)
                .into_response()
        }
        Err(e) => imds_error(&e),
    }
}

async fn meta_root(State(state): State<ImdsHttp>, asker: Asker, sent: SentToken) -> Response {
    answer(state.imds.metadata(&caller(&state, asker, sent), "").await)
}

/// Where a request path's place in the meta-data tree starts (`PATH` of
/// `/latest/meta-data/PATH`, after the instance's segment with a path prefix), if the path
/// lies in the tree.
fn meta_data_start(path: &str, identity: Identity) -> Option<usize> {
    let below = match identity {
        Identity::PathPrefix => match path.strip_prefix('/')?.split_once('/')? {
            ("", _) => return None,
            (_, below) => below,
        },
        Identity::SourceAddress | Identity::Loopback => path.strip_prefix('/')?,
    };
    let tree = below.strip_prefix("latest/meta-data/").filter(|p| !p.is_empty())?;
    Some(path.len() - tree.len())
}

/// GET (or HEAD) `/latest/meta-data/PATH`, PATH starting at `at` in the request's path: 405
/// for another method, as a router answers, before anything about the asker is looked up.
async fn meta(state: &ImdsHttp, peer: &Peer, parts: Parts, at: usize) -> Response {
    let path = parts.uri.path().get(at..).unwrap_or_default();
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [("allow", "GET,HEAD")]).into_response();
    }
    let asker = match Asker::of(state, &parts.method, parts.uri.path(), Some(peer)).await {
        Ok(asker) => asker,
        Err(refusal) => return refusal,
    };
    answer(state.imds.metadata(&caller(state, asker, SentToken::of(&parts.headers)), path).await)
}

/// `/latest/dynamic/`: what is there, for the instance that asks.
async fn dynamic_root(State(state): State<ImdsHttp>, asker: Asker, sent: SentToken) -> Response {
    answer(
        state
            .imds
            .identity_document(&caller(&state, asker, sent))
            .await
            .map(|_| "instance-identity/\n".into()),
    )
}

async fn identity_root(State(state): State<ImdsHttp>, asker: Asker, sent: SentToken) -> Response {
    answer(
        state
            .imds
            .identity_document(&caller(&state, asker, sent))
            .await
            .map(|_| "document\nsignature\n".into()),
    )
}

async fn identity_signature(State(state): State<ImdsHttp>, asker: Asker, sent: SentToken) -> Response {
    answer(state.imds.identity_signature(&caller(&state, asker, sent)).await)
}

/// The public key that checks identity document signatures: anyone may read it.
async fn identity_public_key(State(state): State<ImdsHttp>) -> Response {
    text(StatusCode::OK, state.imds.identity_public_key())
}

async fn identity_document(State(state): State<ImdsHttp>, asker: Asker, sent: SentToken) -> Response {
    answer(state.imds.identity_document(&caller(&state, asker, sent)).await)
}

/// The container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI): the instance's
/// role credentials for a workload that presents the instance key as its bearer token
/// (AWS_CONTAINER_AUTHORIZATION_TOKEN), so that an unmodified SDK on a shared host gets its
/// own instance's credentials and no other's.
async fn container_credentials(
    State(state): State<ImdsHttp>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    let instance = first_segment(uri.0.path());
    let key = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let key = key.strip_prefix("Bearer ").unwrap_or(key).to_string();
    let caller = Caller::Workload { instance_id: instance, instance_key: key };
    match state.imds.role_credentials(&caller).await {
        Ok(doc @ crate::metadata::CredentialsDocument::Success { .. }) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            crate::metadata::container_credentials_json(&doc),
        )
            .into_response(),
        Ok(doc) => (
            StatusCode::FORBIDDEN,
            [("content-type", "application/json")],
            crate::metadata::container_credentials_json(&doc),
        )
            .into_response(),
        Err(e) => imds_error(&e),
    }
}

async fn user_data(State(state): State<ImdsHttp>, asker: Asker, sent: SentToken) -> Response {
    answer(state.imds.user_data(&caller(&state, asker, sent)).await)
}
