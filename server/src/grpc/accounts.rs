//! One service per account, and the routing of each call to its account: the signing
//! principal's, else the `x-rolecall-account-id` metadata (the operator's unsigned calls),
//! else the default account.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{body::Body, server::NamedService};
use tower::{Service, ServiceExt};

use super::error::to_status;
use crate::{
    authz::CallContext,
    domain::{Error, ErrorCode},
};

/// The metadata naming the account of an unsigned call.
pub const ACCOUNT_HEADER: &str = "x-rolecall-account-id";

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

#[derive(Clone)]
pub struct ByAccount<S> {
    services: Arc<BTreeMap<String, S>>,
    default: String,
}

impl<S> ByAccount<S> {
    pub fn new(services: BTreeMap<String, S>, default: impl Into<String>) -> Self {
        Self { services: Arc::new(services), default: default.into() }
    }
}

impl<S: NamedService> NamedService for ByAccount<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for ByAccount<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is the chosen account's service's, checked per call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let signer = req.extensions().get::<CallContext>().and_then(|c| c.principal.as_ref());
        let account = match signer {
            Some(p) => p.account_id.clone(),
            None => req
                .headers()
                .get(ACCOUNT_HEADER)
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| self.default.clone(), str::to_string),
        };
        match self.services.get(&account) {
            Some(service) => Box::pin(service.clone().oneshot(req)),
            None => {
                let e = Error::new(ErrorCode::InvalidInput, format!("rolecall serves no account {account}"));
                Box::pin(async move { Ok(to_status(&e).into_http()) })
            }
        }
    }
}
