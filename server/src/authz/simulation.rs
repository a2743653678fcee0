//! The policy simulator (SimulatePrincipalPolicy, SimulateCustomPolicy and
//! GetContextKeysFor…): the decision enforcement would make, by the same engine
//! (`domain::evaluation`), with what decided it.
//!
//! Its answers follow IAM's EvaluationResult (IAM API Reference,
//! docs.aws.amazon.com/IAM/latest/APIReference/API_EvaluationResult.html and
//! API_ResourceSpecificResult.html): the statements that decided, the condition keys the
//! context lacked, a boundary's own answer, each account's answer across accounts. Where
//! IAM's answers differ from its reference, they follow the answers: recorded SimulateCustom-
//! and SimulatePrincipalPolicy responses name an identity policy's type "IAM Policy" and a
//! managed policy by its name (github.com/smoketurner iam tests' recorded response of
//! 2020-03-02; an aws CLI run of 2026-10-01 kept as an evidence report).

use std::sync::Arc;

use super::{Authorizer, Request};
use crate::{
    catalog::{GrantingPolicies, HolderKind},
    domain::{
        Error, Result,
        clock::iso8601,
        evaluation::{
            Caller, Decision, Policies, PolicyKind, RequestContext, StatementRef, decide, explain, verdict,
        },
        evaluation::{matched, missing_context_keys},
        policy::{Effect, PolicyDocument, PolicyType, Position, context_keys, statement_positions},
        principal::{Principal, PrincipalKind},
    },
};

/// One simulated answer (IAM's EvaluationResult).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub action: String,
    pub resource: String,
    pub decision: Decision,
    /// The statements that decided it.
    pub matched: Vec<MatchedStatement>,
    /// Condition keys the policies read that the context did not hold.
    pub missing: Vec<String>,
    /// Whether the permissions boundary allowed the action (None: no boundary weighed).
    pub allowed_by_boundary: Option<bool>,
    /// Across accounts, each side's decision (EvalDecisionDetails).
    pub sides: Option<Sides>,
}

/// A cross-account answer's two halves: both must allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sides {
    /// The caller's account: its identity policies, boundary and session policies.
    pub identity: Decision,
    /// The resource's account: the resource's policy.
    pub resource: Decision,
}

/// A statement that decided an answer (IAM's `Statement`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedStatement {
    /// The policy's name, or its place among the inputs (`PolicyInputList.2`).
    pub source_policy_id: String,
    /// "IAM Policy" or "resource".
    pub source_policy_type: &'static str,
    pub start: Position,
    pub end: Position,
}

/// What a simulation is given besides a principal: all of SimulateCustomPolicy's inputs,
/// and SimulatePrincipalPolicy's other ones.
#[derive(Clone, Copy, Debug, Default)]
pub struct Simulation<'a> {
    /// Identity policies (PolicyInputList): a custom simulation's, or more for a principal.
    pub identity: &'a [String],
    /// At most one permissions boundary, in place of the principal's own.
    pub boundaries: &'a [String],
    /// The resource's policy ("" for none).
    pub resource_policy: &'a str,
    /// The account that owns the resource ("" for the caller's).
    pub resource_owner: &'a str,
    /// The calling IAM user's ARN ("" for the default).
    pub caller_arn: &'a str,
    pub actions: &'a [String],
    pub resources: &'a [String],
    pub keys: &'a [(String, Vec<String>)],
}

/// IAM's type for identity policies and boundaries in its answers.
const IAM_POLICY: &str = "IAM Policy";
/// IAM's type for a resource's policy (PolicySourceType).
const RESOURCE: &str = "resource";
/// The one action no policy can deny (GetCallerIdentity is answered without authorization).
const GET_CALLER_IDENTITY: &str = "sts:GetCallerIdentity";

/// A policy a simulation weighs, and what names its statements.
struct Source<'t> {
    id: String,
    kind: &'static str,
    text: &'t str,
}

/// Every policy of one simulation, parsed, with its source.
#[derive(Default)]
struct Weighed<'t> {
    identity: Vec<Arc<PolicyDocument>>,
    identity_sources: Vec<Source<'t>>,
    boundary: Option<(Arc<PolicyDocument>, Source<'t>)>,
    resource: Option<(PolicyDocument, Source<'t>)>,
}

impl<'t> Weighed<'t> {
    /// The inputs' identity policies (after any the principal has), boundary and resource
    /// policy, held to the grammar IAM holds written policies to (InvalidInput otherwise).
    fn add_inputs(&mut self, input: &Simulation<'t>) -> Result<()> {
        if input.boundaries.len() > 1 {
            return Err(Error::invalid_input("You can input only one permissions boundary."));
        }
        for (n, text) in input.identity.iter().enumerate() {
            self.identity.push(Arc::new(parse_input(text, PolicyType::Identity)?));
            let id = format!("PolicyInputList.{}", n + 1);
            self.identity_sources.push(Source { id, kind: IAM_POLICY, text });
        }
        if let Some(text) = input.boundaries.first() {
            let source = Source { id: "PermissionsBoundaryPolicyInputList.1".into(), kind: IAM_POLICY, text };
            self.boundary = Some((Arc::new(parse_input(text, PolicyType::Identity)?), source));
        }
        if !input.resource_policy.is_empty() {
            let text = input.resource_policy;
            let source = Source { id: "ResourcePolicy".into(), kind: RESOURCE, text };
            self.resource = Some((parse_input(text, PolicyType::Resource)?, source));
        }
        Ok(())
    }

    /// The matched statement `by` points at, as IAM names it.
    fn describe(&self, by: &StatementRef) -> Option<MatchedStatement> {
        let source = match by.kind {
            PolicyKind::Identity => self.identity_sources.get(by.policy)?,
            PolicyKind::Boundary => &self.boundary.as_ref()?.1,
            PolicyKind::Resource => &self.resource.as_ref()?.1,
            PolicyKind::Session => return None,
        };
        let (start, end) = *statement_positions(source.text).get(by.statement)?;
        Some(MatchedStatement {
            source_policy_id: source.id.clone(),
            source_policy_type: source.kind,
            start,
            end,
        })
    }

    /// The answer for each action on each resource (default `*`), the context of each
    /// made by `context` and completed with the simulation's context entries.
    fn evaluate(
        &self,
        input: &Simulation<'_>,
        same_account: bool,
        context: impl Fn(&str, &str) -> RequestContext,
    ) -> Vec<Evaluation> {
        let policies = Policies {
            identity: &self.identity,
            boundary: self.boundary.as_ref().map(|(d, _)| &**d),
            session: &[],
            resource: self.resource.as_ref().map(|(d, _)| d),
            same_account,
        };
        let all = ["*".to_string()];
        let resources = if input.resources.is_empty() { &all[..] } else { input.resources };
        let mut out = Vec::new();
        for action in input.actions {
            for resource in resources {
                let mut ctx = context(action, resource);
                for (k, v) in input.keys {
                    ctx.set_all(k, v.clone());
                }
                out.push(self.answer(&policies, &ctx));
            }
        }
        out
    }

    /// One answer. sts:GetCallerIdentity needs no permission, and enforcement never denies
    /// it (STS API Reference: "you can still perform this operation" under an explicit
    /// deny): the simulator says what enforcement does.
    fn answer(&self, policies: &Policies<'_>, ctx: &RequestContext) -> Evaluation {
        let (decision, matched) = if ctx.action.eq_ignore_ascii_case(GET_CALLER_IDENTITY) {
            (Decision::Allow, Vec::new())
        } else {
            let explained = explain(policies, ctx);
            let by = matched(policies, ctx, &explained);
            (explained.decision, by.iter().filter_map(|s| self.describe(s)).collect())
        };
        let sides = (!policies.same_account).then(|| Sides {
            identity: decide(&Policies { resource: None, same_account: true, ..*policies }, ctx),
            resource: match policies.resource.and_then(|r| verdict(r, ctx)) {
                Some(Effect::Allow) => Decision::Allow,
                Some(Effect::Deny) => Decision::ExplicitDeny,
                None => Decision::ImplicitDeny,
            },
        });
        Evaluation {
            action: ctx.action.clone(),
            resource: ctx.resource.clone(),
            decision,
            matched,
            missing: missing_context_keys(policies, ctx),
            allowed_by_boundary: policies.boundary.map(|b| verdict(b, ctx) == Some(Effect::Allow)),
            sides,
        }
    }
}

fn parse_input(text: &str, kind: PolicyType) -> Result<PolicyDocument> {
    PolicyDocument::parse(text, kind).map_err(|e| Error::invalid_input(e.message))
}

/// IAM's answer to a request without a list it needs (ValidationError).
fn member_required(member: &str) -> Error {
    Error::validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    ))
}

/// A CallerArn: "You can specify only the ARN of an IAM user" (SimulatePrincipalPolicy,
/// IAM API Reference), as Principal elements see that user.
fn caller_named(arn: &str) -> Result<Caller> {
    let account = arn.strip_prefix("arn:aws:iam::").and_then(|r| r.split_once(":user/")).map(|(a, _)| a);
    match account {
        Some(account) if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Caller::Aws { arn: arn.to_string(), account: account.to_string(), role_arn: None })
        }
        _ => Err(Error::invalid_input(format!("CallerArn must be the ARN of an IAM user: {arn}"))),
    }
}

/// Whether the resource is in the caller's account: the ResourceOwner (an account id or its
/// root ARN; none: the caller's) is the account of the caller, or of `account` without one.
fn same_account(resource_owner: &str, caller: Option<&Caller>, account: &str) -> bool {
    let owner = resource_owner.strip_prefix("arn:aws:iam::").and_then(|r| r.strip_suffix(":root"));
    let owner = owner.unwrap_or(resource_owner);
    let caller_account = match caller {
        Some(Caller::Aws { account, .. }) => account.as_str(),
        _ => account,
    };
    owner.is_empty() || owner == caller_account
}

/// GetContextKeysForCustomPolicy: the condition keys `policies` read.
pub fn custom_context_keys(policies: &[String]) -> Result<Vec<String>> {
    if policies.is_empty() {
        return Err(member_required("policyInputList"));
    }
    let documents =
        policies.iter().map(|t| parse_input(t, PolicyType::Identity)).collect::<Result<Vec<_>>>()?;
    Ok(context_keys(documents.iter()))
}

impl Authorizer {
    /// SimulateCustomPolicy: the decision the given policies make, for each action on each
    /// resource (default `*`).
    pub fn simulate_custom(&self, account: &str, input: &Simulation<'_>) -> Result<Vec<Evaluation>> {
        if input.identity.is_empty() {
            return Err(member_required("policyInputList"));
        }
        if input.actions.is_empty() {
            return Err(member_required("actionNames"));
        }
        let mut weighed = Weighed::default();
        weighed.add_inputs(input)?;
        let caller = Some(input.caller_arn).filter(|a| !a.is_empty()).map(caller_named).transpose()?;
        let same = same_account(input.resource_owner, caller.as_ref(), account);
        let now = self.clock.unix();
        let context = |action: &str, resource: &str| {
            let mut ctx = RequestContext::new(action, resource);
            if let Some(caller) = &caller {
                ctx = ctx.with_caller(caller.clone());
            }
            ctx.set("aws:CurrentTime", iso8601(now)).set("aws:EpochTime", now.to_string());
            ctx
        };
        Ok(weighed.evaluate(input, same, context))
    }

    /// SimulatePrincipalPolicy: the decision for a role or user (by ARN) doing each action
    /// on each resource (default `*`), with its policies, its boundary (or the one given),
    /// and the inputs' policies.
    pub async fn simulate(&self, source_arn: &str, input: &Simulation<'_>) -> Result<Vec<Evaluation>> {
        let (account, kind, name, granting) = self.holder_named(source_arn).await?;
        if input.actions.is_empty() {
            return Err(member_required("actionNames"));
        }
        let caller = match (input.caller_arn, kind) {
            ("", HolderKind::User) => None,
            ("", _) if !input.resource_policy.is_empty() => {
                return Err(Error::invalid_input(
                    "CallerArn is required with a ResourcePolicy when PolicySourceArn is not a user.",
                ));
            }
            ("", _) => None,
            (arn, _) => Some(caller_named(arn)?),
        };
        let principal = simulated_principal(account, source_arn, kind, name, self.clock.unix());
        let compiled = self.compiled(account, kind, name).await?;
        let mut weighed = Weighed { identity: compiled.identity.clone(), ..Weighed::default() };
        weighed.identity_sources = principal_sources(&granting);
        if let Some(doc) = &compiled.boundary {
            let (id, text) =
                granting.boundary.as_ref().map(|(arn, t)| (policy_name(arn), t.as_str())).unwrap_or_default();
            weighed.boundary = Some((doc.clone(), Source { id, kind: IAM_POLICY, text }));
        }
        weighed.add_inputs(input)?;
        let same = same_account(input.resource_owner, caller.as_ref(), account);
        let context = |action: &str, resource: &str| {
            let request =
                Request { action: action.to_string(), resource: resource.to_string(), ..Request::default() };
            let ctx = self.context(&principal, &compiled, &request);
            match &caller {
                Some(caller) => ctx.with_caller(caller.clone()),
                None => ctx,
            }
        };
        Ok(weighed.evaluate(input, same, context))
    }

    /// The role or user an ARN names (its account, kind and name), which must exist, and its
    /// policies' texts.
    async fn holder_named<'a>(
        &self,
        source_arn: &'a str,
    ) -> Result<(&'a str, HolderKind, &'a str, GrantingPolicies)> {
        let invalid = || Error::invalid_input(format!("Invalid ARN: {source_arn}"));
        let (account, rest) =
            source_arn.strip_prefix("arn:aws:iam::").and_then(|r| r.split_once(':')).ok_or_else(invalid)?;
        let (kind, name) = match rest.split_once('/') {
            Some(("role", path)) => (HolderKind::Role, path.rsplit('/').next().unwrap_or_default()),
            Some(("user", path)) => (HolderKind::User, path.rsplit('/').next().unwrap_or_default()),
            Some(("group", path)) => (HolderKind::Group, path.rsplit('/').next().unwrap_or_default()),
            _ => return Err(invalid()),
        };
        let granting = match self.accounts.get(account) {
            Some(c) => c.granting_policies(kind, name).await?,
            None => None,
        };
        let Some(granting) = granting else { return Err(kind.not_found(name)) };
        Ok((account, kind, name, granting))
    }

    /// GetContextKeysForPrincipalPolicy: the condition keys a role's or user's policies (its
    /// boundary too) read, and those of `extra` policies.
    pub async fn principal_context_keys(&self, source_arn: &str, extra: &[String]) -> Result<Vec<String>> {
        let (account, kind, name, _) = self.holder_named(source_arn).await?;
        let compiled = self.compiled(account, kind, name).await?;
        let extra = extra.iter().map(|t| parse_input(t, PolicyType::Identity)).collect::<Result<Vec<_>>>()?;
        let documents =
            compiled.identity.iter().map(|d| &**d).chain(compiled.boundary.as_deref()).chain(extra.iter());
        Ok(context_keys(documents))
    }
}

/// The principal a SimulatePrincipalPolicy stands for: the user, or a session of the role.
fn simulated_principal(account: &str, source_arn: &str, kind: HolderKind, name: &str, now: i64) -> Principal {
    Principal {
        account_id: account.to_string(),
        arn: source_arn.to_string(),
        user_id: String::new(),
        access_key_id: String::new(),
        // A group's policies are simulated as a member's would be.
        kind: match kind {
            HolderKind::User | HolderKind::Group => PrincipalKind::User { user_name: name.to_string() },
            HolderKind::Role => PrincipalKind::AssumedRole {
                role_arn: source_arn.to_string(),
                role_id: String::new(),
                session_name: String::new(),
                instance_id: None,
                issued_at: now,
                expires_at: now + 3600,
                session: Default::default(),
            },
        },
    }
}

/// What names a principal's identity policies, in the compiled policies' order: inline
/// ones, then managed ones, each by its name.
fn principal_sources(granting: &GrantingPolicies) -> Vec<Source<'_>> {
    let inline = granting.inline.iter().map(|(n, t)| Source { id: n.clone(), kind: IAM_POLICY, text: t });
    let managed =
        granting.managed.iter().map(|(arn, t)| Source { id: policy_name(arn), kind: IAM_POLICY, text: t });
    inline.chain(managed).collect()
}

/// A managed policy's name, the last part of its ARN.
fn policy_name(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

/// The value types of ContextEntries (IAM's ContextKeyTypeEnum).
const CONTEXT_KEY_TYPES: [&str; 12] = [
    "string",
    "stringList",
    "numeric",
    "numericList",
    "boolean",
    "booleanList",
    "ip",
    "ipList",
    "binary",
    "binaryList",
    "date",
    "dateList",
];

/// One ContextEntry (the `n`th, from 1), checked against its type: a value of the wrong
/// type, or more than one value for a type that is not a list, is InvalidInput; a type IAM
/// does not know is its ValidationError. No type reads as `string`. The engine then compares
/// each value as its condition operator reads it (numbers, dates, addresses).
pub fn context_entry(
    n: usize,
    name: String,
    values: Vec<String>,
    key_type: &str,
) -> Result<(String, Vec<String>)> {
    let key_type = if key_type.is_empty() { "string" } else { key_type };
    if !CONTEXT_KEY_TYPES.contains(&key_type) {
        let field = format!("contextEntries.{n}.member.contextKeyType");
        return Err(crate::domain::validate::not_in_enum(&field, key_type, &CONTEXT_KEY_TYPES));
    }
    let base = key_type.strip_suffix("List").unwrap_or(key_type);
    if base == key_type && values.len() > 1 {
        return Err(Error::invalid_input(format!(
            "Context key {name} of type {key_type} takes one value; use {key_type}List for more."
        )));
    }
    let readable = |v: &str| match base {
        "numeric" => v.trim().parse::<f64>().is_ok_and(f64::is_finite),
        "boolean" => v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
        "ip" => {
            let (address, bits) = v.split_once('/').map_or((v, None), |(a, b)| (a, Some(b)));
            address.parse::<std::net::IpAddr>().is_ok()
                && bits.is_none_or(|b| b.parse::<u8>().is_ok_and(|b| b <= 128))
        }
        "binary" => data_encoding::BASE64.decode(v.as_bytes()).is_ok(),
        "date" => crate::domain::policy::date::parse(v).is_some(),
        _ => true,
    };
    if let Some(bad) = values.iter().find(|v| !readable(v)) {
        return Err(Error::invalid_input(format!(
            "Invalid value for context key {name} of type {key_type}: {bad}"
        )));
    }
    Ok((name, values))
}

#[cfg(test)]
mod tests {
    use super::context_entry;
    use crate::domain::ErrorCode;

    fn check(key_type: &str, values: &[&str]) -> Result<(), ErrorCode> {
        let values = values.iter().map(|v| v.to_string()).collect();
        context_entry(1, "k".into(), values, key_type).map(|_| ()).map_err(|e| e.code)
    }

    #[test]
    fn context_entries_are_checked_against_their_types() {
        for (key_type, values) in [
            ("", &["anything"][..]),
            ("string", &["x"]),
            ("stringList", &["a", "b"]),
            ("numeric", &["1.5"]),
            ("numericList", &["1", "-2"]),
            ("boolean", &["True"]),
            ("ip", &["10.0.0.1"]),
            ("ipList", &["10.0.0.0/8", "2001:db8::/32"]),
            ("binary", &["aGVsbG8="]),
            ("date", &["2020-01-01T00:00:00Z"]),
            ("dateList", &["2020-01-01", "1577836800"]),
        ] {
            assert_eq!(check(key_type, values), Ok(()), "{key_type} {values:?}");
        }
        for (key_type, values) in [
            ("numeric", &["ten"][..]),
            ("numeric", &["1", "2"]),
            ("boolean", &["yes"]),
            ("ip", &["10.0.0.256"]),
            ("binary", &["not base64!"]),
            ("date", &["tomorrow"]),
        ] {
            assert_eq!(check(key_type, values), Err(ErrorCode::InvalidInput), "{key_type} {values:?}");
        }
        assert_eq!(check("Numeric", &["1"]), Err(ErrorCode::ValidationError));
    }
}
