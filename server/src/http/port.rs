//! What the Query port's doors share: its state ([`QueryApi`]), where a call came from
//! ([`Origin`]), how the audit trail names a call that reached no operation ([`Call`]), and
//! how a call that failed before its operation is told from one that failed in it
//! ([`Failed`]): the operations audit every call that reaches them, the door the others. The Query API
//! (query.rs), EC2's protocol (ec2.rs) and the S3 front (s3.rs) all build on it.

use std::sync::Arc;

use axum::response::Response;
use serde_json::Value;

use super::form::Params;
use crate::{
    audit::{Actor, AuditLog, Event},
    authz::{Authorizer, CallContext},
    catalog::Accounts,
    domain::{Error, clock::Clock, principal::Principal, sigv4::HttpRequest},
    operations::Gate,
    sts::{Authenticator, SecurityTokenService},
    telemetry::Metrics,
};

#[derive(Clone)]
pub struct QueryApi {
    pub authn: Arc<Authenticator>,
    pub accounts: Arc<Accounts>,
    pub authz: Arc<Authorizer>,
    pub sts: Arc<SecurityTokenService>,
    pub metrics: Metrics,
    pub audit: AuditLog,
    pub clock: Arc<dyn Clock>,
}

/// One call, as the audit trail names it.
pub(super) struct Call<'a> {
    pub service: &'a str,
    pub action: &'a str,
    pub origin: &'a Origin,
    pub params: &'a Params,
}

tokio::task_local! {
    /// The id of the request a door is answering (see `CallContext::request_id`).
    static REQUEST_ID: String;
}

/// Runs `answer` as the answer to the request `id`: what it writes as its RequestId is `id`.
pub(super) async fn answering<F: std::future::Future>(id: String, answer: F) -> F::Output {
    REQUEST_ID.scope(id, answer).await
}

/// The id of the request being answered (a fresh one outside [`answering`]).
pub(super) fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_else(|_| crate::domain::ids::uuid())
}

/// Where a request came from: aws:SourceIp for the policy engine, sourceIPAddress for the
/// audit trail. The Query port is plaintext, so aws:SecureTransport is false.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub source_ip: Option<String>,
    /// The id this request is answered with (see `CallContext::request_id`).
    pub request_id: String,
}

impl Origin {
    /// The context an operation authorizes `principal`'s call from here in.
    pub(super) fn context(&self, principal: &Principal, dry_run: bool) -> CallContext {
        CallContext {
            principal: Some(principal.clone()),
            source_ip: self.source_ip.clone(),
            secure_transport: false,
            dry_run,
            request_id: self.request_id.clone(),
        }
    }
}

/// Why a call failed: before it reached its operation (the door audits it: its parameters
/// did not decode, or name no action), or in it (the operation audited it).
pub(super) enum Failed {
    Before(Error),
    In(Error),
}

impl From<Error> for Failed {
    fn from(e: Error) -> Self {
        Self::Before(e)
    }
}

impl QueryApi {
    /// The gate an operation of `source` (`iam.amazonaws.com`) authorizes, audits and
    /// answers through, as on gRPC.
    pub(super) fn gate(&self, source: &'static str) -> Gate {
        Gate {
            authz: self.authz.clone(),
            audit: self.audit.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
            source,
        }
    }

    /// A call's outcome: the answer, or its error, audited here if no operation did.
    pub(super) async fn settle(
        &self,
        call: &Call<'_>,
        principal: &Principal,
        result: Result<Response, Failed>,
        error: impl Fn(&Error) -> Response,
    ) -> Response {
        match result {
            Ok(response) => response,
            Err(Failed::In(e)) => error(&e),
            Err(Failed::Before(e)) => {
                self.record(call, Actor::Principal(principal), Some(&e)).await;
                error(&e)
            }
        }
    }

    /// A call that reached no operation, as an audit event: refusals, with the form
    /// parameters (but UserData and the presigned authentication) as requestParameters
    /// (none where the request proved no one: see `AuditLog::record`).
    fn event<'a>(&self, call: &'a Call<'_>, actor: Actor<'a>, error: Option<&'a Error>) -> Event<'a> {
        // A presigned request's authentication (X-Amz-Signature, X-Amz-Security-Token, …) is
        // not a parameter of the call: recorded, it would let the URL be replayed.
        let request: serde_json::Map<String, Value> = call
            .params
            .input()
            .filter(|(k, _)| k != "UserData" && !k.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("x-amz-")))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        Event {
            source: crate::audit::event_source(call.service),
            name: call.action,
            actor,
            source_ip: call.origin.source_ip.clone(),
            read_only: false,
            request: Value::Object(request),
            response: Value::Null,
            error,
            request_id: Some(call.origin.request_id.clone()),
        }
    }

    async fn record(&self, call: &Call<'_>, actor: Actor<'_>, error: Option<&Error>) {
        if self.audit.enabled() {
            self.audit.record(self.clock.unix(), self.event(call, actor, error)).await;
        }
    }

    /// Audits a request whose signature proved no one.
    pub(super) async fn refused(&self, call: &Call<'_>, request: &HttpRequest<'_>, e: &Error) {
        let actor = Actor::Unauthenticated { access_key_id: crate::audit::claimed_access_key(request) };
        self.record(call, actor, Some(e)).await;
    }

    /// The catalog of the caller's account.
    pub(super) fn catalog_of(&self, principal: &Principal) -> Result<Arc<crate::catalog::Catalog>, Error> {
        crate::operations::caller_catalog(&self.accounts, principal)
    }
}
