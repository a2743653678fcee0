//! The policy engine: whether a request is allowed, by AWS's rules.
//!
//! - An explicit Deny in any policy wins; else an Allow is needed; else the request is
//!   implicitly denied.
//! - Identity policies and a same-account resource policy are a union; a permissions
//!   boundary and session policies intersect with the identity policies.
//! - A statement applies when its Action (NotAction), Resource (NotResource), Principal
//!   (NotPrincipal) and every condition match. Action names are case-insensitive, ARNs
//!   case-sensitive; `*` and `?` are wildcards.
//! - Conditions: every operator family (String, Numeric, Date, Bool, Binary, IpAddress, Arn,
//!   Null), each with `…IfExists`, and the set prefixes `ForAllValues:` and `ForAnyValue:`.
//!   Operators AND, keys under one operator AND, the values of one key OR (NOR when negated).
//! - Policy variables (`${aws:username}`, `${aws:PrincipalTag/team}`, `${*}`, defaults as in
//!   `${aws:username, 'nobody'}`) in Resource and in string and ARN condition values, in
//!   documents of version 2012-10-17; one that cannot be resolved makes its pattern or value
//!   match nothing.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use serde_json::Value;

use super::policy::{
    Effect, Patterns, PolicyDocument, Principals, Statement, date, distinct_keys,
    operator::{Base, Operator, SetOperator},
    scalar_text, wildcard_match,
};

/// Who is asking, as Principal elements see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// An IAM user or a role session: its ARN, its account, and for a session the role's ARN.
    Aws { arn: String, account: String, role_arn: Option<String> },
    /// An AWS service (ec2.amazonaws.com assuming an instance profile's role).
    Service(String),
}

/// What is being asked, and every condition key known about it.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub action: String,
    pub resource: String,
    pub caller: Option<Caller>,
    /// Condition keys by lower-case name (AWS compares key names case-insensitively).
    keys: BTreeMap<String, Vec<String>>,
}

impl RequestContext {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self { action: action.into(), resource: resource.into(), caller: None, keys: BTreeMap::new() }
    }

    pub fn with_caller(mut self, caller: Caller) -> Self {
        self.caller = Some(caller);
        self
    }

    /// Sets a single-valued key.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.keys.insert(key.to_ascii_lowercase(), vec![value.into()]);
        self
    }

    /// Sets a multi-valued key (e.g. aws:TagKeys).
    pub fn set_all(&mut self, key: &str, values: Vec<String>) -> &mut Self {
        self.keys.insert(key.to_ascii_lowercase(), values);
        self
    }

    pub fn values(&self, key: &str) -> Option<&[String]> {
        self.keys.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }
}

/// The outcome of an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A Deny statement matched.
    ExplicitDeny,
    /// Nothing allowed it.
    ImplicitDeny,
}

/// Every policy that bears on one request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Policies<'a> {
    /// The principal's inline and managed policies.
    pub identity: &'a [Arc<PolicyDocument>],
    /// Its permissions boundary, if it has one.
    pub boundary: Option<&'a PolicyDocument>,
    /// The session policies it was assumed with (none: no limit).
    pub session: &'a [Arc<PolicyDocument>],
    /// The resource's own policy (a role's trust policy, for sts:AssumeRole).
    pub resource: Option<&'a PolicyDocument>,
    /// Whether the resource is in the caller's account (then a resource policy's Allow
    /// suffices; across accounts both sides must allow).
    pub same_account: bool,
}

impl<'a> Policies<'a> {
    /// Every policy, in AWS's order of policy types (identity, session, boundary, resource),
    /// with its kind and its place in its list.
    fn documents(&self) -> impl Iterator<Item = (PolicyKind, usize, &'a PolicyDocument)> {
        let (identity, session) = (self.identity, self.session);
        (identity.iter().enumerate().map(|(n, d)| (PolicyKind::Identity, n, &**d)))
            .chain(session.iter().enumerate().map(|(n, d)| (PolicyKind::Session, n, &**d)))
            .chain(self.boundary.map(|d| (PolicyKind::Boundary, 0, d)))
            .chain(self.resource.map(|d| (PolicyKind::Resource, 0, d)))
    }
}

/// What one document says: a matching Deny, else a matching Allow, else nothing.
pub fn verdict(doc: &PolicyDocument, ctx: &RequestContext) -> Option<Effect> {
    match judge(doc, ctx, false) {
        Judgement::Deny(_) => Some(Effect::Deny),
        Judgement::Allow(..) => Some(Effect::Allow),
        Judgement::Silent => None,
    }
}

/// Whom a resource policy's Allow names, weakest first: what the grant is worth in the
/// resource's own account (IAM User Guide, "Policy evaluation for requests within a single
/// account", "Permissions boundaries", "Session policies").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grantee {
    /// The caller's account (`arn:aws:iam::ACCOUNT:root` or the bare id): a delegation to
    /// the account's identity policies, which grants nothing by itself.
    Account,
    /// The role a session belongs to (its role ARN): limited, as the role's own policies
    /// are, by the role's permissions boundary and the session's policies.
    Role,
    /// The caller itself (an IAM user's ARN, a session's own ARN, a service) or everyone
    /// (`*`, or all but a NotPrincipal list): limited by no boundary and no session policy.
    Caller,
}

/// What one document says about a request: the statement (its index) of a matching Deny,
/// else the strongest grant among the matching Allows and its statement, else nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Judgement {
    Deny(usize),
    Allow(Grantee, usize),
    Silent,
}

impl Judgement {
    fn allows(self) -> bool {
        matches!(self, Self::Allow(..))
    }
}

/// One document's judgement: a matching Deny, else the strongest grant among the matching
/// Allows. `bounded`: the caller has a permissions boundary, so that a Deny with NotPrincipal
/// applies to it whatever the list names, as AWS's does ("Permissions boundaries": it "will
/// always deny any IAM principal that has a permissions boundary policy attached, regardless
/// of the values specified in the NotPrincipal element").
fn judge(doc: &PolicyDocument, ctx: &RequestContext, bounded: bool) -> Judgement {
    let variables = doc.reads_variables();
    let mut granted: Option<(Grantee, usize)> = None;
    for (n, s) in doc.statements.iter().enumerate() {
        let Some(grantee) = statement_applies(s, ctx, variables, bounded) else { continue };
        match s.effect {
            Effect::Deny => return Judgement::Deny(n),
            // The first statement of the strongest grant.
            Effect::Allow if granted.is_none_or(|(g, _)| grantee > g) => granted = Some((grantee, n)),
            Effect::Allow => {}
        }
    }
    granted.map_or(Judgement::Silent, |(grantee, n)| Judgement::Allow(grantee, n))
}

/// Whether trust policy `doc` lets `service` (e.g. ec2.amazonaws.com) call sts:AssumeRole in
/// `context`'s circumstances (its condition keys): the engine's verdict is Allow.
pub fn trusts_service(doc: &PolicyDocument, service: &str, context: &[(&str, String)]) -> bool {
    let mut ctx =
        RequestContext::new("sts:AssumeRole", "*").with_caller(Caller::Service(service.to_string()));
    for (key, value) in context {
        ctx.set(key, value.clone());
    }
    verdict(doc, &ctx) == Some(Effect::Allow)
}

/// The kinds of policy a decision weighs, as AWS's AccessDenied messages name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    Identity,
    Boundary,
    Session,
    Resource,
}

impl PolicyKind {
    /// AWS's name for it, with its article ("an identity-based policy").
    pub fn named(self) -> &'static str {
        match self {
            Self::Identity => "an identity-based policy",
            Self::Boundary => "a permissions boundary",
            Self::Session => "a session policy",
            Self::Resource => "a resource-based policy",
        }
    }

    /// AWS's name for it, without an article.
    pub fn name(self) -> &'static str {
        self.named().split_once(' ').map_or("", |(_, name)| name)
    }
}

/// One statement of one of the policies of a [`Policies`]: its kind, the policy's place in
/// its list (0 for the boundary and the resource policy), the statement's place in the
/// document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatementRef {
    pub kind: PolicyKind,
    pub policy: usize,
    pub statement: usize,
}

/// A decision, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Explained {
    pub decision: Decision,
    /// The statement that decided: the Deny of an explicit deny, the Allow of an allow.
    pub by: Option<StatementRef>,
    /// For an implicit deny: the kind of policy none of which allowed the request.
    pub lacking: Option<PolicyKind>,
}

/// AWS's evaluation logic over every policy that applies (see [`explain`]).
pub fn decide(policies: &Policies<'_>, ctx: &RequestContext) -> Decision {
    explain(policies, ctx).decision
}

/// AWS's evaluation logic over every policy that applies, and the statement that decided.
///
/// - An explicit Deny in any of them wins.
/// - The identity policies allow when one of them does, the boundary (if any) does, and one
///   of the session policies (if any) does.
/// - In the resource's own account the resource policy's Allow is enough by itself when it
///   names the caller (a user's ARN, a session's ARN, everyone); when it names the role of a
///   session, the role's boundary and the session's policies limit it as they limit the
///   identity policies; when it names the account, it hands the decision to the identity
///   policies.
/// - Across accounts both sides must allow (naming the account is then the resource side's
///   Allow).
pub fn explain(policies: &Policies<'_>, ctx: &RequestContext) -> Explained {
    let bounded = policies.boundary.is_some();
    let judged: Vec<(PolicyKind, usize, Judgement)> = policies
        .documents()
        .map(|(kind, n, doc)| (kind, n, judge(doc, ctx, bounded && kind == PolicyKind::Resource)))
        .collect();
    let at = |kind, policy, statement| Some(StatementRef { kind, policy, statement });
    // The first Deny, in AWS's order of policy types, decides.
    let deny = judged.iter().find_map(|(kind, n, j)| match j {
        Judgement::Deny(statement) => Some((*kind, *n, *statement)),
        _ => None,
    });
    if let Some((kind, policy, statement)) = deny {
        return Explained {
            decision: Decision::ExplicitDeny,
            by: at(kind, policy, statement),
            lacking: None,
        };
    }
    let of = |kind| judged.iter().filter(move |(k, ..)| *k == kind).map(|(_, n, j)| (*n, *j));
    let boundary_allows = of(PolicyKind::Boundary).all(|(_, j)| j.allows());
    let session_allows =
        of(PolicyKind::Session).next().is_none() || of(PolicyKind::Session).any(|(_, j)| j.allows());
    let within_limits = boundary_allows && session_allows;
    let identity_allow = of(PolicyKind::Identity).find_map(|(n, j)| match j {
        Judgement::Allow(_, statement) => Some((n, statement)),
        _ => None,
    });
    let by_identity =
        identity_allow.filter(|_| within_limits).and_then(|(n, s)| at(PolicyKind::Identity, n, s));
    let by_resource = of(PolicyKind::Resource).find_map(|(_, j)| match j {
        Judgement::Allow(grantee, statement) => Some((grantee, at(PolicyKind::Resource, 0, statement))),
        _ => None,
    });
    let allowed_by = match by_resource {
        Some((_, by)) if !policies.same_account => by_identity.and(by),
        _ if !policies.same_account => None,
        Some((Grantee::Caller, by)) => by,
        Some((Grantee::Role, by)) if within_limits => by,
        _ => by_identity,
    };
    if allowed_by.is_some() {
        return Explained { decision: Decision::Allow, by: allowed_by, lacking: None };
    }
    // Which kind of policy stood in the way: the resource side across accounts when the
    // identity side allowed, else the first limit that an Allow ran into, else the identity
    // policies themselves.
    let granted_somewhere = identity_allow.is_some() || matches!(by_resource, Some((Grantee::Role, _)));
    let lacking = if !policies.same_account && by_identity.is_some() {
        PolicyKind::Resource
    } else if granted_somewhere && !boundary_allows {
        PolicyKind::Boundary
    } else if granted_somewhere && !session_allows {
        PolicyKind::Session
    } else {
        PolicyKind::Identity
    };
    Explained { decision: Decision::ImplicitDeny, by: None, lacking: Some(lacking) }
}

/// Every statement that decided `explained`: the matching Deny statements of an explicit
/// deny; of an allow, the matching Allow statements of the kind of policy that granted it
/// (the identity policies, or the resource's); none of an implicit deny.
pub fn matched(policies: &Policies<'_>, ctx: &RequestContext, explained: &Explained) -> Vec<StatementRef> {
    let (effect, kinds): (Effect, &[PolicyKind]) = match (explained.decision, explained.by) {
        (Decision::ExplicitDeny, _) => (
            Effect::Deny,
            &[PolicyKind::Identity, PolicyKind::Session, PolicyKind::Boundary, PolicyKind::Resource],
        ),
        (Decision::Allow, Some(by)) if by.kind == PolicyKind::Resource => {
            (Effect::Allow, &[PolicyKind::Resource])
        }
        (Decision::Allow, _) => (Effect::Allow, &[PolicyKind::Identity]),
        (Decision::ImplicitDeny, _) => return Vec::new(),
    };
    let bounded = policies.boundary.is_some();
    let mut out = Vec::new();
    for (kind, policy, doc) in policies.documents().filter(|(kind, ..)| kinds.contains(kind)) {
        let variables = doc.reads_variables();
        for (statement, s) in doc.statements.iter().enumerate() {
            if s.effect == effect && statement_applies(s, ctx, variables, bounded).is_some() {
                out.push(StatementRef { kind, policy, statement });
            }
        }
    }
    out
}

/// The condition keys that statements bearing on the request (their action and resource
/// match) read and the request's context does not hold, each once (IAM's
/// MissingContextValues: what a simulation would need to decide those conditions).
pub fn missing_context_keys(policies: &Policies<'_>, ctx: &RequestContext) -> Vec<String> {
    let bearing = policies.documents().flat_map(|(_, _, doc)| {
        let variables = doc.reads_variables();
        doc.statements.iter().filter(move |s| {
            s.matches_action(&ctx.action)
                && s.resource.as_ref().is_none_or(|r| resource_matches(r, ctx, variables))
        })
    });
    let keys = bearing.flat_map(Statement::condition_keys).filter(|key| ctx.values(key).is_none());
    distinct_keys(keys)
}

/// Whether a statement applies to the request, and if it does, whom it names.
fn statement_applies(s: &Statement, ctx: &RequestContext, variables: bool, bounded: bool) -> Option<Grantee> {
    if !s.matches_action(&ctx.action) {
        return None;
    }
    if let Some(resource) = &s.resource
        && !resource_matches(resource, ctx, variables)
    {
        return None;
    }
    let grantee = match (&s.principal, &s.not_principal) {
        (Some(p), _) => grantee(p, ctx.caller.as_ref())?,
        (None, Some(_)) if bounded && s.effect == Effect::Deny => Grantee::Caller,
        (None, Some(np)) if grantee(np, ctx.caller.as_ref()).is_some() => return None,
        // Identity policies name no principal: theirs is the caller.
        _ => Grantee::Caller,
    };
    s.condition.as_ref().is_none_or(|c| conditions_hold(c, ctx, variables)).then_some(grantee)
}

fn resource_matches(patterns: &Patterns, ctx: &RequestContext, variables: bool) -> bool {
    let mut any = false;
    for pattern in patterns.patterns() {
        let pattern = if variables { substitute(pattern, ctx) } else { Some(pattern.clone()) };
        match pattern {
            Some(p) => any |= wildcard_match(&p, &ctx.resource, false),
            // An unresolved variable: this pattern matches nothing, and a NotResource list
            // holding it cannot be trusted to exclude, so its statement does not apply.
            None if matches!(patterns, Patterns::AllBut(_)) => return false,
            None => {}
        }
    }
    match patterns {
        Patterns::Only(_) => any,
        Patterns::AllBut(_) => !any,
    }
}

/// How a Principal element names the caller, if it does: the strongest of the ways.
fn grantee(p: &Principals, caller: Option<&Caller>) -> Option<Grantee> {
    if p.anyone {
        return Some(Grantee::Caller);
    }
    match caller {
        Some(Caller::Service(service)) => p.service.iter().any(|s| s == service).then_some(Grantee::Caller),
        Some(Caller::Aws { arn, account, role_arn }) => p
            .aws
            .iter()
            .filter_map(|v| {
                if v == arn {
                    Some(Grantee::Caller)
                } else if role_arn.as_deref() == Some(v.as_str()) {
                    Some(Grantee::Role)
                } else if v == account
                    || v.strip_prefix("arn:aws:iam::").and_then(|r| r.strip_suffix(":root")) == Some(account)
                {
                    Some(Grantee::Account)
                } else {
                    None
                }
            })
            .max(),
        None => None,
    }
}

// === Policy variables ===

/// `text` with every `${…}` replaced, or None if one cannot be resolved.
pub fn substitute(text: &str, ctx: &RequestContext) -> Option<String> {
    if !text.contains("${") {
        return Some(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        out.push_str(&resolve(&after[..end], ctx)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// One variable: a key (single-valued in the context), with an optional `, 'default'`, or
/// one of the escapes `*`, `?`, `$`.
fn resolve(variable: &str, ctx: &RequestContext) -> Option<String> {
    match variable.trim() {
        "*" => return Some("*".into()),
        "?" => return Some("?".into()),
        "$" => return Some("$".into()),
        _ => {}
    }
    let (key, default) = match variable.split_once(',') {
        Some((k, d)) => (k.trim(), Some(d.trim().trim_matches('\'').to_string())),
        None => (variable.trim(), None),
    };
    match ctx.values(key) {
        Some([one]) => Some(one.clone()),
        _ => default,
    }
}

// === Conditions ===

fn conditions_hold(block: &serde_json::Map<String, Value>, ctx: &RequestContext, variables: bool) -> bool {
    block.iter().all(|(operator, keys)| {
        let Value::Object(keys) = keys else { return false };
        // An operator with no keys tests nothing (IAM accepts it, known or not).
        if keys.is_empty() {
            return true;
        }
        // Validated when the document was parsed; an unknown operator never holds.
        let Some(op) = Operator::parse(operator) else { return false };
        keys.iter().all(|(key, values)| {
            let values = policy_values(values);
            let values: Vec<Option<String>> = values
                .into_iter()
                .map(|v| if variables && op.takes_variables() { substitute(&v, ctx) } else { Some(v) })
                .collect();
            condition_holds(op, ctx.values(key), &values)
        })
    })
}

fn policy_values(value: &Value) -> Vec<String> {
    match value {
        Value::Array(list) => list.iter().map(scalar_text).collect(),
        other => vec![scalar_text(other)],
    }
}

/// One key's condition: `request` are the context's values for it (None: absent),
/// `policy` the policy's values (None where a variable did not resolve).
fn condition_holds(op: Operator, request: Option<&[String]>, policy: &[Option<String>]) -> bool {
    if op.base == Base::Null {
        let absent = request.is_none_or(<[String]>::is_empty);
        return policy.iter().flatten().any(|v| v.eq_ignore_ascii_case(&absent.to_string()));
    }
    // One request value against the policy's values: any matches (OR), or, negated, none
    // does (NOR).
    let single = |value: &str| {
        let any = policy.iter().flatten().any(|p| compare(op.base, value, p));
        any != op.negated
    };
    match (op.set, request) {
        (SetOperator::ForAllValues, None) => true,
        (SetOperator::ForAllValues, Some(values)) => values.iter().all(|v| single(v)),
        (_, None) => op.if_exists || (op.negated && op.set == SetOperator::Single),
        (SetOperator::ForAnyValue, Some(values)) => values.iter().any(|v| single(v)),
        (SetOperator::Single, Some(values)) => {
            if op.negated {
                values.iter().all(|v| single(v))
            } else {
                values.iter().any(|v| single(v))
            }
        }
    }
}

/// The positive form of `base`: does request value `value` match policy value `policy`?
/// A value of the wrong type matches nothing.
fn compare(base: Base, value: &str, policy: &str) -> bool {
    use Base::*;
    match base {
        StringEquals => value == policy,
        StringEqualsIgnoreCase => value.to_lowercase() == policy.to_lowercase(),
        StringLike => wildcard_match(policy, value, false),
        NumericEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => {
            let (Ok(a), Ok(b)) = (value.trim().parse::<f64>(), policy.trim().parse::<f64>()) else {
                return false;
            };
            match base {
                NumericEquals => a == b,
                NumericLessThan => a < b,
                NumericLessThanEquals => a <= b,
                NumericGreaterThan => a > b,
                _ => a >= b,
            }
        }
        DateEquals | DateLessThan | DateLessThanEquals | DateGreaterThan | DateGreaterThanEquals => {
            let (Some(a), Some(b)) = (date::parse(value.trim()), date::parse(policy.trim())) else {
                return false;
            };
            match base {
                DateEquals => a == b,
                DateLessThan => a < b,
                DateLessThanEquals => a <= b,
                DateGreaterThan => a > b,
                _ => a >= b,
            }
        }
        Bool => value.eq_ignore_ascii_case(policy),
        BinaryEquals => value == policy,
        IpAddress => ip_in(value, policy),
        ArnLike => arn_like(policy, value),
        Null => false,
    }
}

/// Whether `ip` is in `cidr` (an address alone is a /32 or /128).
fn ip_in(ip: &str, cidr: &str) -> bool {
    let Ok(ip) = ip.trim().parse::<IpAddr>() else { return false };
    let (net, bits) = match cidr.trim().split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (cidr.trim(), None),
    };
    let Ok(net) = net.parse::<IpAddr>() else { return false };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            (u32::from(a) & mask) == (u32::from(n) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            (u128::from(a) & mask) == (u128::from(n) & mask)
        }
        _ => false,
    }
}

/// ArnLike: both split into their six `:`-separated parts (the last may hold `:`), each
/// part matched with wildcards, case-sensitively.
fn arn_like(pattern: &str, arn: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| wildcard_match(p, a, false))
}

#[cfg(test)]
mod tests;
