//! Authorization: a principal's policies compiled once and cached (moka), the request context
//! with AWS's global condition keys, and the policy engine's decision in AWS's words.
//!
//! Compiled policies are stamped with the catalog's IAM generation: any IAM write (a
//! detached policy, a new default version, a changed boundary) makes every older entry
//! stale, so the next request after a change is decided against the new policies.

use std::{sync::Arc, time::Duration};

mod simulation;

pub use simulation::{Evaluation, MatchedStatement, Sides, Simulation, context_entry, custom_context_keys};

use crate::{
    catalog::{Accounts, Catalog, HolderKind},
    domain::principal::{Principal, PrincipalKind},
    domain::{
        Error, ErrorCode, Result,
        clock::{Clock, iso8601},
        evaluation::{Caller, Decision, Explained, Policies, PolicyKind, RequestContext, explain, verdict},
        model::Role,
        policy::{Effect, PolicyDocument, PolicyType},
    },
};

/// A principal's policies, parsed.
#[derive(Debug, Default)]
pub struct Compiled {
    pub identity: Vec<Arc<PolicyDocument>>,
    /// What each identity policy is called: an inline policy's name, a managed policy's ARN.
    pub names: Vec<String>,
    pub boundary: Option<Arc<PolicyDocument>>,
    /// The boundary's ARN.
    pub boundary_name: Option<String>,
    /// aws:PrincipalTag/*.
    pub tags: Vec<(String, String)>,
    /// The role's or user's unique id ("" where it does not exist).
    pub id: String,
    /// The catalog's IAM generation these were read at.
    generation: u64,
}

/// What a request asks, beyond who asks.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub action: String,
    pub resource: String,
    /// aws:SourceIp, when the transport knows it.
    pub source_ip: Option<String>,
    /// aws:SecureTransport.
    pub secure_transport: bool,
    /// Request-specific keys (sts:ExternalId, aws:RequestTag/…).
    pub keys: Vec<(String, String)>,
}

/// Who makes a call, and from where: what a door (gRPC, the Query port) hands to the code
/// that authorizes a call on its decoded request and then carries it out.
#[derive(Clone, Debug, Default)]
pub struct CallContext {
    /// Who signed. None only for the operator's unsigned calls, which a door lets through
    /// where `auth.allow_unsigned` says so: those are not authorized.
    pub principal: Option<Principal>,
    /// aws:SourceIp, when the transport knows it.
    pub source_ip: Option<String>,
    /// aws:SecureTransport.
    pub secure_transport: bool,
    /// EC2's DryRun: authorize, then answer DryRunOperation instead of acting.
    pub dry_run: bool,
    /// The id the answer carries (`x-amzn-RequestId`) and the audit event records
    /// (`requestID`), so that an operator can find a refusal's explanation.
    pub request_id: String,
}

impl CallContext {
    /// A request to the policy engine for `action` on `resource`, from this caller's side.
    pub fn request(&self, action: impl Into<String>, resource: impl Into<String>) -> Request {
        Request {
            action: action.into(),
            resource: resource.into(),
            source_ip: self.source_ip.clone(),
            secure_transport: self.secure_transport,
            keys: Vec::new(),
        }
    }
}

pub struct Authorizer {
    accounts: Arc<Accounts>,
    clock: Arc<dyn Clock>,
    compiled: moka::future::Cache<String, Arc<Compiled>>,
}

// === impl Authorizer ===

impl Authorizer {
    pub fn new(accounts: Arc<Accounts>, clock: Arc<dyn Clock>) -> Self {
        let compiled = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_idle(Duration::from_secs(3600))
            .build();
        Self { accounts, clock, compiled }
    }

    /// The default account's catalog (for what every account shares: the region).
    fn home(&self) -> &Catalog {
        self.accounts.default_catalog()
    }

    /// The role or user whose policies apply to `principal`: a role session is governed by
    /// its role's current policies.
    fn holder(principal: &Principal) -> (HolderKind, String) {
        match &principal.kind {
            PrincipalKind::User { user_name } => (HolderKind::User, user_name.clone()),
            // Root has no policies of its own (it is allowed everything before they count).
            PrincipalKind::Root => (HolderKind::User, String::new()),
            PrincipalKind::AssumedRole { role_arn, .. } => {
                (HolderKind::Role, role_arn.rsplit('/').next().unwrap_or_default().to_string())
            }
        }
    }

    /// The compiled policies of a role or user of `account` (empty where it is gone, or the
    /// account is not one rolecall serves: nothing allowed).
    pub async fn compiled(&self, account: &str, kind: HolderKind, name: &str) -> Result<Arc<Compiled>> {
        let Some(catalog) = self.accounts.get(account) else { return Ok(Arc::new(Compiled::default())) };
        let key = format!("{account}/{kind:?}/{}", name.to_ascii_lowercase());
        let generation = catalog.iam_generation();
        if let Some(hit) = self.compiled.get(&key).await
            && hit.generation == generation
        {
            return Ok(hit);
        }
        let compiled = Arc::new(Self::compile(catalog, kind, name, generation).await?);
        self.compiled.insert(key, compiled.clone()).await;
        Ok(compiled)
    }

    async fn compile(catalog: &Catalog, kind: HolderKind, name: &str, generation: u64) -> Result<Compiled> {
        let Some(policies) = catalog.granting_policies(kind, name).await? else {
            return Ok(Compiled { generation, ..Compiled::default() });
        };
        // Stored documents were validated when they were written, and are read back by their
        // structure only (a stricter grammar since does not drop them). One that cannot be
        // read at all denies everything: dropping it could drop a Deny. A boundary whose
        // policy is gone (an empty document) allows nothing.
        let parse = |name: &str, text: &str| {
            if text.is_empty() {
                return Arc::new(deny_all());
            }
            Arc::new(PolicyDocument::parse_stored(text, PolicyType::Identity).unwrap_or_else(|e| {
                tracing::warn!(policy = name, error = %e.message, "a stored policy cannot be read: it denies everything");
                deny_everything()
            }))
        };
        let every = || policies.inline.iter().chain(policies.managed.iter());
        let identity = every().map(|(name, text)| parse(name, text)).collect();
        let names = every().map(|(name, _)| name.clone()).collect();
        let boundary = policies.boundary.as_ref().map(|(name, text)| parse(name, text));
        let boundary_name = policies.boundary.as_ref().map(|(name, _)| name.clone());
        let tags = policies.tags.into_iter().map(|t| (t.key, t.value)).collect();
        Ok(Compiled { identity, names, boundary, boundary_name, tags, id: policies.id, generation })
    }

    /// The request context: the action and resource, and AWS's global condition keys.
    pub fn context(&self, principal: &Principal, compiled: &Compiled, request: &Request) -> RequestContext {
        let now = self.clock.unix();
        let role_arn = match &principal.kind {
            PrincipalKind::AssumedRole { role_arn, .. } => Some(role_arn.clone()),
            PrincipalKind::User { .. } | PrincipalKind::Root => None,
        };
        let caller =
            Caller::Aws { arn: principal.arn.clone(), account: principal.account_id.clone(), role_arn };
        let mut ctx = RequestContext::new(&request.action, &request.resource).with_caller(caller);
        ctx.set("aws:CurrentTime", iso8601(now))
            .set("aws:EpochTime", now.to_string())
            .set("aws:PrincipalArn", principal_arn(principal))
            .set("aws:PrincipalAccount", principal.account_id.clone())
            .set("aws:PrincipalType", principal_type(principal))
            .set("aws:userid", principal.user_id.clone())
            .set("aws:SecureTransport", request.secure_transport.to_string())
            .set("aws:RequestedRegion", self.home().settings().region.clone());
        if let Some(ip) = &request.source_ip {
            ctx.set("aws:SourceIp", ip.clone());
        }
        match &principal.kind {
            PrincipalKind::User { user_name } => {
                ctx.set("aws:username", user_name.clone());
            }
            PrincipalKind::Root => {}
            PrincipalKind::AssumedRole { issued_at, instance_id, .. } => {
                ctx.set("aws:TokenIssueTime", iso8601(*issued_at));
                if let Some(instance) = instance_id {
                    let settings = self.home().settings();
                    ctx.set(
                        "ec2:SourceInstanceARN",
                        format!(
                            "arn:aws:ec2:{}:{}:instance/{instance}",
                            settings.region, principal.account_id
                        ),
                    );
                }
            }
        }
        // Session tags win over the role's tags of the same key.
        let session_tags = match &principal.kind {
            PrincipalKind::AssumedRole { session, .. } => session.tags.as_slice(),
            PrincipalKind::User { .. } | PrincipalKind::Root => &[],
        };
        let mut tags: Vec<&(String, String)> = compiled
            .tags
            .iter()
            .filter(|(k, _)| !session_tags.iter().any(|(s, _)| s.eq_ignore_ascii_case(k)))
            .collect();
        tags.extend(session_tags);
        for (k, v) in &tags {
            ctx.set(&format!("aws:PrincipalTag/{k}"), v.clone());
        }
        let tag_keys: Vec<String> = tags.iter().map(|(k, _)| k.clone()).collect();
        if !tag_keys.is_empty() {
            ctx.set_all("aws:PrincipalTagKeys", tag_keys);
        }
        // A key given more than once (aws:TagKeys) is multi-valued.
        for (k, v) in &request.keys {
            let values: Vec<String> =
                request.keys.iter().filter(|(other, _)| other == k).map(|(_, v)| v.clone()).collect();
            if values.len() > 1 {
                ctx.set_all(k, values);
            } else {
                ctx.set(k, v.clone());
            }
        }
        ctx
    }

    /// Whether `principal` may do `request` on a resource of `resource_account`, with the
    /// resource's own policy (`evaluation::explain`): Ok, or AccessDenied with AWS's message,
    /// and for the audit trail the policy and statement that decided.
    pub async fn check_on(
        &self,
        principal: &Principal,
        request: &Request,
        resource_policy: Option<&PolicyDocument>,
        resource_account: &str,
    ) -> Result<()> {
        let same_account = resource_account == principal.account_id;
        if principal.kind == PrincipalKind::Root {
            // The account's root user may do anything in it; in another account only what
            // the resource's policy allows; an explicit deny in a resource policy stops it.
            let ctx = self.context(principal, &Compiled::default(), request);
            return match resource_policy.and_then(|p| verdict(p, &ctx)) {
                Some(Effect::Allow) => Ok(()),
                None if same_account => Ok(()),
                _ => {
                    // Why, for the audit trail: the resource policy weighed alone.
                    let alone = Policies { resource: resource_policy, ..Policies::default() };
                    Err(denied(principal, request, &explain(&alone, &ctx), &alone, &Names::default()))
                }
            };
        }
        let (kind, name) = Self::holder(principal);
        let compiled = self.compiled(&principal.account_id, kind, &name).await?;
        if outlived_its_role(principal, &compiled) {
            let gone =
                Explained { decision: Decision::ImplicitDeny, by: None, lacking: Some(PolicyKind::Identity) };
            return Err(denied(principal, request, &gone, &Policies::default(), &Names::default()));
        }
        let session = self.session_policies(principal).await?;
        let ctx = self.context(principal, &compiled, request);
        weigh(&compiled, &session, resource_policy, same_account, request, &ctx)
            .map_err(|(explained, why)| refusal(principal, request, &explained).explained(why))
    }

    /// The session policies a role session was assumed with (none: no limit), and what each
    /// is called. A session limited by policies none of which can be read any more is allowed
    /// nothing.
    async fn session_policies(&self, principal: &Principal) -> Result<SessionPolicies> {
        let PrincipalKind::AssumedRole { session, .. } = &principal.kind else {
            return Ok(Default::default());
        };
        if !session.limits() {
            return Ok(Default::default());
        }
        let parse = |text: &str| PolicyDocument::parse_stored(text, PolicyType::Identity).ok().map(Arc::new);
        let (mut docs, mut names) = (Vec::new(), Vec::new());
        if !session.policy.is_empty() {
            docs.push(parse(&session.policy).unwrap_or_else(|| Arc::new(deny_all())));
            names.push("the inline session policy".to_string());
        }
        for arn in &session.policy_arns {
            let Some(catalog) = self.accounts.get(&principal.account_id) else { continue };
            if let Some(doc) = catalog.default_document(arn).await?.as_deref().and_then(parse) {
                docs.push(doc);
                names.push(arn.clone());
            }
        }
        if docs.is_empty() {
            docs.push(Arc::new(deny_all()));
            names.push("no readable session policy".to_string());
        }
        Ok((docs, names))
    }

    /// sts:AssumeRole of `role` by `principal`: the role's trust policy must allow it, and
    /// no policy may deny it. Beyond that it is decided as any resource policy's grant is
    /// (`evaluation::decide`): in the role's own account a trust policy that names the caller
    /// (its ARN, or everyone) suffices, one that names the caller's role is limited by that
    /// role's boundary and session policies, and one that trusts the account delegates to the
    /// caller's identity policies, which must then allow sts:AssumeRole on the role.
    pub async fn authorize_assume_role(
        &self,
        principal: &Principal,
        role: &Role,
        action: &str,
        keys: Vec<(String, String)>,
    ) -> Result<()> {
        let request =
            Request { action: action.into(), resource: role.arn.clone(), keys, ..Request::default() };
        // AWS's message names no policy; the audit trail's explanation (`decidedBy`) does.
        let denied = |why: String| {
            Error::new(
                ErrorCode::AccessDenied,
                format!(
                    "User: {} is not authorized to perform: {action} on resource: {}",
                    principal.arn, role.arn
                ),
            )
            .explained(why)
        };
        if principal.kind == PrincipalKind::Root {
            return Err(Error::new(ErrorCode::AccessDenied, "Roles may not be assumed by root accounts."));
        }
        let trust = role.trust().ok_or_else(|| denied("the role's trust policy cannot be read".into()))?;
        let (kind, name) = Self::holder(principal);
        let compiled = self.compiled(&principal.account_id, kind, &name).await?;
        if outlived_its_role(principal, &compiled) {
            return Err(denied("the session outlived its role".into()));
        }
        let session = self.session_policies(principal).await?;
        let ctx = self.context(principal, &compiled, &request);
        // The trust policy must allow, whatever the identity policies say.
        match verdict(trust, &ctx) {
            Some(Effect::Allow) => {}
            Some(Effect::Deny) => {
                return Err(denied(format!("explicit deny: the trust policy of {}", role.arn)));
            }
            None => {
                return Err(denied(format!(
                    "implicit deny: the trust policy of {} does not trust the caller",
                    role.arn
                )));
            }
        }
        let role_account = role.arn.split(':').nth(4).unwrap_or_default();
        let same_account = role_account == principal.account_id;
        weigh(&compiled, &session, Some(trust), same_account, &request, &ctx).map_err(|(_, why)| denied(why))
    }

    /// Whether the caller may do every (action, resource) of `needed`: Ok, or the first
    /// AccessDenied. The operator's unsigned calls are not authorized.
    pub async fn authorize_call(&self, caller: &CallContext, needed: &[(String, String)]) -> Result<()> {
        let Some(principal) = &caller.principal else { return Ok(()) };
        for (action, resource) in needed {
            self.authorize(principal, &caller.request(action.as_str(), resource.as_str())).await?;
        }
        Ok(())
    }

    /// Ok, or AccessDenied in AWS's words.
    pub async fn authorize(&self, principal: &Principal, request: &Request) -> Result<()> {
        self.check_on(principal, request, None, &principal.account_id).await
    }
}

/// What the policies of a [`Policies`] are called, for the audit trail.
#[derive(Default)]
struct Names<'a> {
    identity: &'a [String],
    boundary: Option<&'a str>,
    session: &'a [String],
}

/// AccessDenied for `explained`: AWS's message, which names the kind of policy that decided
/// (IAM User Guide, "Troubleshoot access denied error messages"), and the explanation the
/// audit trail keeps, which also names the policy and the statement.
fn denied(
    principal: &Principal,
    request: &Request,
    explained: &Explained,
    policies: &Policies<'_>,
    names: &Names<'_>,
) -> Error {
    refusal(principal, request, explained).explained(explanation(request, explained, policies, names))
}

/// AccessDenied in AWS's words for `explained`, without the operator's explanation.
fn refusal(principal: &Principal, request: &Request, explained: &Explained) -> Error {
    let (action, resource) = (&request.action, &request.resource);
    let head =
        format!("User: {} is not authorized to perform: {action} on resource: {resource}", principal.arn);
    let message = match (explained.decision, explained.by) {
        (Decision::ExplicitDeny, Some(by)) => format!("{head} with an explicit deny in {}", by.kind.named()),
        _ => {
            let kind = explained.lacking.unwrap_or(PolicyKind::Identity);
            format!("{head} because no {} allows the {action} action", kind.name())
        }
    };
    Error::new(ErrorCode::AccessDenied, message)
}

/// The policies a session was assumed with, and what each is called.
type SessionPolicies = (Vec<Arc<PolicyDocument>>, Vec<String>);

/// What a principal's `compiled` policies, its session's and a resource's decide on `ctx`:
/// Ok, or the refusal's decision and the operator's explanation of it.
fn weigh(
    compiled: &Compiled,
    session: &SessionPolicies,
    resource: Option<&PolicyDocument>,
    same_account: bool,
    request: &Request,
    ctx: &RequestContext,
) -> std::result::Result<(), (Explained, String)> {
    let policies = Policies {
        identity: &compiled.identity,
        boundary: compiled.boundary.as_deref(),
        session: &session.0,
        resource,
        same_account,
    };
    let explained = explain(&policies, ctx);
    if explained.decision == Decision::Allow {
        return Ok(());
    }
    let names =
        Names { identity: &compiled.names, boundary: compiled.boundary_name.as_deref(), session: &session.1 };
    let why = explanation(request, &explained, &policies, &names);
    Err((explained, why))
}

/// The operator's explanation of a refusal (audit's `decidedBy`): the policy, statement and
/// Sid of an explicit deny, or the kind of policy that allowed nothing.
fn explanation(
    request: &Request,
    explained: &Explained,
    policies: &Policies<'_>,
    names: &Names<'_>,
) -> String {
    let (action, resource) = (&request.action, &request.resource);
    match (explained.decision, explained.by) {
        (Decision::ExplicitDeny, Some(by)) => {
            let (name, doc) = match by.kind {
                PolicyKind::Identity => (
                    names.identity.get(by.policy).map(String::as_str),
                    policies.identity.get(by.policy).map(|d| &**d),
                ),
                PolicyKind::Boundary => (names.boundary, policies.boundary),
                PolicyKind::Session => (
                    names.session.get(by.policy).map(String::as_str),
                    policies.session.get(by.policy).map(|d| &**d),
                ),
                PolicyKind::Resource => (Some(resource.as_str()), policies.resource),
            };
            let sid = doc.and_then(|d| d.statements.get(by.statement)).and_then(|s| s.sid.as_deref());
            let sid = sid.map(|sid| format!(" (Sid {sid})")).unwrap_or_default();
            let policy = match by.kind {
                PolicyKind::Resource => format!("the policy of {}", name.unwrap_or_default()),
                _ => name.unwrap_or("an unnamed policy").to_string(),
            };
            format!("explicit deny: {} {policy}, statement {}{sid}", by.kind.name(), by.statement + 1)
        }
        _ => {
            let kind = explained.lacking.unwrap_or(PolicyKind::Identity);
            format!("implicit deny: no {} allows {action} on {resource}", kind.name())
        }
    }
}

/// AccessDenied where no policy was weighed: the kind of policy that would have had to allow.
pub fn access_denied(principal: &Principal, request: &Request, lacking: PolicyKind) -> Error {
    let explained = Explained { decision: Decision::ImplicitDeny, by: None, lacking: Some(lacking) };
    denied(principal, request, &explained, &Policies::default(), &Names::default())
}

/// A session of a role that has since been deleted (and perhaps re-created under its name):
/// it is allowed nothing, as in AWS.
fn outlived_its_role(principal: &Principal, compiled: &Compiled) -> bool {
    matches!(&principal.kind, PrincipalKind::AssumedRole { role_id, .. } if !role_id.is_empty() && *role_id != compiled.id)
}

/// aws:PrincipalArn: a session's role ARN, a user's ARN.
fn principal_arn(principal: &Principal) -> String {
    match &principal.kind {
        PrincipalKind::AssumedRole { role_arn, .. } => role_arn.clone(),
        PrincipalKind::User { .. } | PrincipalKind::Root => principal.arn.clone(),
    }
}

fn principal_type(principal: &Principal) -> &'static str {
    match principal.kind {
        PrincipalKind::AssumedRole { .. } => "AssumedRole",
        PrincipalKind::User { .. } => "User",
        PrincipalKind::Root => "Account",
    }
}

fn deny_all() -> PolicyDocument {
    PolicyDocument { version: "2012-10-17".into(), statements: Vec::new() }
}

/// What a stored policy that cannot be read stands for: an explicit Deny of everything.
fn deny_everything() -> PolicyDocument {
    PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
        PolicyType::Identity,
    )
    .unwrap_or_else(|_| deny_all())
}
