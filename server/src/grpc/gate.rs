//! The gate every Iam and Ec2 call passes, whichever door it came through: authorization
//! decided on the very request the handler then runs (decoded once, by tonic or by the
//! Query door), the audit trail fed with that request, and the answer.
//!
//! A door hands the handler a [`CallContext`] in the request's extensions: the signer, or
//! an explicit operator context for the unsigned calls the config lets through. A request
//! without one is refused, never treated as the operator's.

use std::{future::Future, sync::Arc};

use serde_json::Value;
use tonic::{Request, Response, Status};

use super::error::reply;
use crate::{
    audit::{Actor, AuditLog, Event},
    authz::{Authorizer, CallContext},
    domain::{Error, ErrorCode, Result, clock::Clock},
    telemetry::Metrics,
};

/// One AWS action, as its decoded request.
pub trait Operation: serde::Serialize {
    /// The action's name (the gRPC method, and the AWS action).
    const ACTION: &'static str;
    /// Whether it changes state: audited whatever its outcome; a read only when refused.
    const MUTATES: bool;

    /// The request as the audit trail's requestParameters (the API's requests carry no
    /// secrets; RunInstances leaves its user data out).
    fn parameters(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The context a door put in the request.
pub fn call_context<T>(req: &Request<T>) -> Result<CallContext, Status> {
    req.extensions()
        .get::<CallContext>()
        .cloned()
        .ok_or_else(|| Status::internal("the request reached the service without a caller"))
}

/// What a service needs to authorize, audit and answer its calls.
#[derive(Clone)]
pub struct Gate {
    pub authz: Arc<Authorizer>,
    pub audit: AuditLog,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// CloudTrail's eventSource (`iam.amazonaws.com`).
    pub source: &'static str,
}

impl Gate {
    /// Authorizes `request` for `caller` (every pair of `needed`, worked out from `request`
    /// itself), then runs `act` on it; audits the call; answers.
    pub async fn run<Q, A, F, Fut>(
        &self,
        caller: &CallContext,
        request: Q,
        needed: Result<Vec<(String, String)>>,
        act: F,
    ) -> Result<Response<A>, Status>
    where
        Q: Operation,
        F: FnOnce(Q) -> Fut,
        Fut: Future<Output = Result<A>>,
    {
        let admitted = match needed {
            Ok(needed) => self.authz.authorize_call(caller, &needed).await,
            Err(e) => Err(e),
        };
        let admitted = admitted.and_then(|()| match caller.dry_run {
            true => Err(Error::new(
                ErrorCode::DryRunOperation,
                "Request would have succeeded, but DryRun flag is set.",
            )),
            false => Ok(()),
        });
        // The audit trail takes every state change (its request before it commits: unless
        // that is written, the change is not made; its outcome after) and every refusal of
        // authorization, with the request that was decided on.
        let result = match admitted {
            Ok(()) if Q::MUTATES && self.audit.enabled() => {
                let parameters = request.parameters();
                let event = self.event(caller, Q::ACTION, Q::MUTATES, parameters.clone(), None);
                match self.audit.commit(self.clock.unix(), event).await {
                    Ok(committed) => {
                        let result = act(request).await;
                        let event =
                            self.event(caller, Q::ACTION, Q::MUTATES, parameters, result.as_ref().err());
                        self.audit.outcome(self.clock.unix(), event, committed).await;
                        result
                    }
                    Err(e) => Err(e),
                }
            }
            Ok(()) => act(request).await,
            Err(e) => {
                if self.audit.enabled() && (Q::MUTATES || e.code == ErrorCode::AccessDenied) {
                    let event = self.event(caller, Q::ACTION, Q::MUTATES, request.parameters(), Some(&e));
                    self.audit.record(self.clock.unix(), event).await;
                }
                Err(e)
            }
        };
        reply(&self.metrics, result)
    }

    fn event<'a>(
        &self,
        caller: &'a CallContext,
        action: &'a str,
        mutates: bool,
        request: Value,
        error: Option<&'a Error>,
    ) -> Event<'a> {
        Event {
            source: self.source,
            name: action,
            actor: caller.principal.as_ref().map_or(Actor::Operator, Actor::Principal),
            source_ip: caller.source_ip.clone(),
            read_only: !mutates,
            request,
            response: Value::Null,
            error,
        }
    }
}
