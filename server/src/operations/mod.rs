//! The operations: every IAM, EC2 and S3 action, transport-neutral. Each takes the caller's
//! context (who signed, from where, over what transport: [`CallContext`]) and the decoded
//! request, names the (action, resource) pairs it needs from that very request, asks the
//! policy engine, audits (through [`Gate`], once, whichever door the call came through), and
//! acts. The doors (gRPC in `grpc`; the Query, EC2 and S3 protocols in `http`) are adapters
//! beside each other above this layer: decode, call the operation, encode its answer or its
//! error. There is no other road from a caller to the catalog's IAM, EC2 and S3 state.
//!
//! IAM's and EC2's requests and answers are the API's messages (`rolecall_api`, prost
//! structs): the one decoded form both doors share. S3's, served on HTTP only, are small
//! structs of their own. Nothing here knows a transport.

/// Each listed request type's action and whether it changes state.
macro_rules! operations {
    ($($ty:path, $action:literal $mutates:literal;)*) => {
        $(impl $crate::operations::Operation for $ty {
            const ACTION: &'static str = $action;
            const MUTATES: bool = $mutates;
        })*
    };
}

pub mod convert;
pub mod ec2;
pub mod iam;
pub mod s3;

use std::{future::Future, sync::Arc};

use serde_json::Value;

use crate::{
    audit::{Actor, AuditLog, Event},
    authz::{Authorizer, CallContext},
    catalog::{Accounts, Catalog},
    domain::principal::Principal,
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

/// The catalog of the account `principal` signed for (a principal of an account this server
/// no longer holds is an invalid token).
pub fn caller_catalog(accounts: &Accounts, principal: &Principal) -> Result<Arc<Catalog>> {
    accounts.get(&principal.account_id).cloned().ok_or_else(|| {
        Error::new(ErrorCode::InvalidClientTokenId, "The security token included in the request is invalid.")
    })
}

/// What the operations need to authorize, audit and count their calls.
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
    /// itself), then runs `act` on it; audits the call; counts its error, if any.
    pub async fn run<Q, A, F, Fut>(
        &self,
        caller: &CallContext,
        request: Q,
        needed: Result<Vec<(String, String)>>,
        act: F,
    ) -> Result<A>
    where
        Q: Operation,
        F: FnOnce(Q) -> Fut,
        Fut: Future<Output = Result<A>>,
    {
        let admitted = match needed {
            Ok(needed) => self.authz.authorize_call(caller, &needed).await,
            Err(e) => Err(e),
        };
        self.admit(caller, request, admitted, |request, ()| act(request)).await
    }

    /// Runs `act` on `request` with what its authorization found (`admitted`: decided by the
    /// operation on that very request, as S3 decides with a bucket's policy), unless it was
    /// refused; audits the call; counts its error, if any.
    pub async fn admit<Q, T, A, F, Fut>(
        &self,
        caller: &CallContext,
        request: Q,
        admitted: Result<T>,
        act: F,
    ) -> Result<A>
    where
        Q: Operation,
        F: FnOnce(Q, T) -> Fut,
        Fut: Future<Output = Result<A>>,
    {
        let admitted = admitted.and_then(|found| match caller.dry_run {
            true => Err(Error::new(
                ErrorCode::DryRunOperation,
                "Request would have succeeded, but DryRun flag is set.",
            )),
            false => Ok(found),
        });
        // The audit trail takes every state change (its request before it commits: unless
        // that is written, the change is not made; its outcome after) and every refusal of
        // authorization, with the request that was decided on.
        let result = match admitted {
            Ok(found) if Q::MUTATES && self.audit.enabled() => {
                let parameters = request.parameters();
                let event = self.event(caller, Q::ACTION, Q::MUTATES, parameters.clone(), None);
                match self.audit.commit(self.clock.unix(), event).await {
                    Ok(committed) => {
                        let result = act(request, found).await;
                        let event =
                            self.event(caller, Q::ACTION, Q::MUTATES, parameters, result.as_ref().err());
                        self.audit.outcome(self.clock.unix(), event, committed).await;
                        result
                    }
                    Err(e) => Err(e),
                }
            }
            Ok(found) => act(request, found).await,
            Err(e) => {
                if self.audit.enabled() && (Q::MUTATES || e.code == ErrorCode::AccessDenied) {
                    let event = self.event(caller, Q::ACTION, Q::MUTATES, request.parameters(), Some(&e));
                    self.audit.record(self.clock.unix(), event).await;
                }
                Err(e)
            }
        };
        if let Err(e) = &result {
            self.metrics.error(e.code.as_str());
            if e.code == ErrorCode::ServiceFailure {
                tracing::error!(code = e.code.as_str(), "the server failed a call: {}", e.message);
            }
        }
        result
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
            request_id: Some(caller.request_id.clone()).filter(|id| !id.is_empty()),
        }
    }
}
