//! The security token service: who signed a request (SigV4 over the request, with a user's
//! access key or temporary credentials), and what STS answers about it.
//!
//! Transport-free: the gRPC layer (and later the HTTP front door) describes each request as
//! a [`sigv4::HttpRequest`] and gets back the [`Principal`] that signed it, or AWS's error.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::{
    audit::{Actor, AuditLog, Event},
    authz::Authorizer,
    catalog::Accounts,
    domain::{
        Error, ErrorCode, Result,
        clock::Clock,
        credentials::{
            SessionClaims, SessionScope, TemporaryCredentials, TokenRejection, open_session_token,
        },
        keyring::KeyRing,
        model::{AccessKeyStatus, Secret},
        policy::{PolicyDocument, PolicyType, policy_size},
        principal::{Principal, PrincipalKind},
        sigv4::{self, Authorization, Expected, HttpRequest, Rules, SigningKeys},
    },
};

/// AWS's answer to an access key it does not know, or no longer honours.
fn invalid_token() -> Error {
    Error::new(ErrorCode::InvalidClientTokenId, "The security token included in the request is invalid.")
}

fn expired_token() -> Error {
    Error::new(ErrorCode::ExpiredToken, "The security token included in the request is expired")
}

/// An account's root user's access key, from the operator's config.
#[derive(Clone, Debug)]
pub struct RootKey {
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

/// Verifies who signed a request.
pub struct Authenticator {
    accounts: Arc<Accounts>,
    ring: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    keys: SigningKeys,
    roots: Vec<RootKey>,
}

// === impl Authenticator ===

impl Authenticator {
    pub fn new(accounts: Arc<Accounts>, ring: Arc<KeyRing>, clock: Arc<dyn Clock>) -> Self {
        Self { accounts, ring, clock, keys: SigningKeys::default(), roots: Vec::new() }
    }

    /// Also accepts these root users' keys.
    pub fn with_roots(mut self, roots: Vec<RootKey>) -> Self {
        self.roots = roots;
        self
    }

    /// The principal whose credentials signed `req` for `service` in this region, checked in
    /// AWS's order: the authorization's form, its scope and time, the access key (and session
    /// token), then the signature.
    pub async fn authenticate(
        &self,
        req: &HttpRequest<'_>,
        service: &str,
        rules: &Rules,
    ) -> Result<Principal> {
        let auth = Authorization::parse(req)?;
        let now = self.clock.unix();
        let region = &self.accounts.default_catalog().settings().region;
        auth.check(Expected { region, service }, now, rules)?;
        let (secret, principal) = self.signer_of(&auth, now).await?;
        auth.verify(req, &secret, rules, &self.keys)?;
        // A user's (or the root user's) key proved itself: its last use is the rotation
        // evidence (GetAccessKeyLastUsed, the credential report), noted without a store
        // write on this request.
        if let PrincipalKind::User { .. } | PrincipalKind::Root = principal.kind
            && let Some(catalog) = self.accounts.get(&principal.account_id)
        {
            catalog.note_key_use(&principal.access_key_id, service, &auth.scope.region);
        }
        Ok(principal)
    }

    /// The secret of the access key that claims to have signed, and whose it is.
    async fn signer_of(&self, auth: &Authorization, now: i64) -> Result<(String, Principal)> {
        let id = auth.access_key_id.as_str();
        if id.starts_with("ASIA") {
            // Temporary credentials: the session token seals the secret and the session.
            let token = auth.session_token.as_deref().ok_or_else(invalid_token)?;
            let claims = match open_session_token(&self.ring, token, now)? {
                Ok(claims) => claims,
                Err(TokenRejection::Expired) => return Err(expired_token()),
                Err(TokenRejection::Invalid) => return Err(invalid_token()),
            };
            // A token is good only with the key it was issued with.
            if !bool::from(claims.access_key_id.as_bytes().ct_eq(id.as_bytes())) {
                return Err(invalid_token());
            }
            let secret = claims.secret_access_key.0.clone();
            return Ok((secret, assumed_role(&claims)));
        }
        if auth.session_token.is_some() {
            // Long-term keys have no session token.
            return Err(invalid_token());
        }
        if let Some(root) =
            self.roots.iter().find(|r| bool::from(r.access_key_id.as_bytes().ct_eq(id.as_bytes())))
        {
            let account = root.account_id.clone();
            let principal = Principal {
                arn: format!("arn:aws:iam::{account}:root"),
                user_id: account.clone(),
                account_id: account,
                access_key_id: root.access_key_id.clone(),
                kind: PrincipalKind::Root,
            };
            return Ok((root.secret_access_key.0.clone(), principal));
        }
        let (catalog, user, key) = self.accounts.find_access_key(id).await?.ok_or_else(invalid_token)?;
        if key.status != AccessKeyStatus::Active {
            return Err(invalid_token());
        }
        let principal = Principal {
            account_id: catalog.account_id().to_string(),
            arn: user.arn.clone(),
            user_id: user.user_id.clone(),
            access_key_id: key.access_key_id.clone(),
            kind: PrincipalKind::User { user_name: user.user_name.clone() },
        };
        Ok((key.secret_access_key.0, principal))
    }

    /// GetAccessKeyInfo: the account of an access key id: a user's key's account, else (a
    /// temporary key id, which names no account by itself here) the default account.
    pub async fn access_key_account(&self, access_key_id: &str) -> Result<String> {
        let well_formed = (16..=128).contains(&access_key_id.len())
            && access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
            && (access_key_id.starts_with("AKIA") || access_key_id.starts_with("ASIA"));
        if !well_formed {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{access_key_id}' at 'accessKeyId' failed to satisfy constraint: \
                 Member must satisfy regular expression pattern: [\\w]+"
            )));
        }
        let owner = self.accounts.find_access_key(access_key_id).await?;
        Ok(owner.map_or_else(
            || self.accounts.default_account().to_string(),
            |(c, _, _)| c.account_id().to_string(),
        ))
    }
}

fn assumed_role(claims: &SessionClaims) -> Principal {
    Principal {
        account_id: claims.account_id.clone(),
        arn: claims.principal_arn(),
        user_id: format!("{}:{}", claims.role_id, claims.session_name),
        access_key_id: claims.access_key_id.clone(),
        kind: PrincipalKind::AssumedRole {
            role_arn: claims.role_arn.clone(),
            role_id: claims.role_id.clone(),
            session_name: claims.session_name.clone(),
            instance_id: claims.instance_id.clone(),
            issued_at: claims.issued_at,
            expires_at: claims.expires_at,
            session: claims.session.clone(),
        },
    }
}

/// The SigV4 rules of rolecall's gRPC services (AWS's, with the gRPC path as the URI).
pub const GRPC_RULES: Rules = sigv4::Rules::AWS;

/// AssumeRole's parameters.
#[derive(Clone, Debug, Default)]
pub struct AssumeRoleInput {
    pub role_arn: String,
    pub role_session_name: String,
    /// None: 3600.
    pub duration_seconds: Option<i64>,
    pub policy: String,
    pub policy_arns: Vec<String>,
    pub external_id: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// AssumeRole's answer.
#[derive(Debug)]
pub struct AssumedRole {
    pub credentials: TemporaryCredentials,
    pub arn: String,
    pub assumed_role_id: String,
    pub packed_policy_size: i32,
}

/// What session policies and tags may weigh, packed (AWS's limit, in rolecall's measure:
/// policy characters other than whitespace, ARN and tag characters).
const PACKED_LIMIT: usize = 2048;

/// The security token service's actions beyond authentication.
pub struct SecurityTokenService {
    accounts: Arc<Accounts>,
    ring: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    authz: Arc<Authorizer>,
    audit: AuditLog,
}

fn validation(message: String) -> Error {
    Error::validation(format!("1 validation error detected: {message}"))
}

/// AWS's length and pattern checks of one parameter.
fn check_param(name: &str, value: &str, min: usize, max: usize, extra: &str) -> Result<()> {
    let len = value.chars().count();
    if len < min {
        return Err(validation(format!(
            "Value '{value}' at '{name}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
        )));
    }
    if len > max {
        return Err(validation(format!(
            "Value '{value}' at '{name}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        )));
    }
    if !value.chars().all(|c| c.is_alphanumeric() || c == '_' || "+=,.@-".contains(c) || extra.contains(c)) {
        return Err(validation(format!(
            "Value '{value}' at '{name}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@{extra}-]*"
        )));
    }
    Ok(())
}

impl SecurityTokenService {
    pub fn new(
        accounts: Arc<Accounts>,
        ring: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
        authz: Arc<Authorizer>,
        audit: AuditLog,
    ) -> Self {
        Self { accounts, ring, clock, authz, audit }
    }

    /// AssumeRole, recorded in the audit trail (parameters as given, the new key id and
    /// expiration, or the refusal and what decided it) under the id its caller's answer
    /// carries.
    pub async fn assume_role(
        &self,
        caller: &Principal,
        input: AssumeRoleInput,
        request_id: Option<String>,
    ) -> Result<AssumedRole> {
        let request = self.audit.enabled().then(|| {
            serde_json::json!({
                "roleArn": input.role_arn,
                "roleSessionName": input.role_session_name,
                "durationSeconds": input.duration_seconds,
                "externalId": input.external_id,
                "policy": (!input.policy.is_empty()).then_some(&input.policy),
                "policyArns": input.policy_arns,
                "tags": input.tags.iter().map(|(k, v)| serde_json::json!({"key": k, "value": v})).collect::<Vec<_>>(),
            })
        });
        let result = self.assume_role_checked(caller, input).await;
        if let Some(request) = request {
            let response = result.as_ref().ok().map_or(serde_json::Value::Null, |a| {
                serde_json::json!({
                    "credentials": {
                        "accessKeyId": a.credentials.access_key_id,
                        "expiration": crate::domain::clock::iso8601(a.credentials.expires_at),
                    },
                    "assumedRoleUser": { "assumedRoleId": a.assumed_role_id, "arn": a.arn },
                    "packedPolicySize": a.packed_policy_size,
                })
            });
            self.audit
                .record(
                    self.clock.unix(),
                    Event {
                        source: "sts.amazonaws.com",
                        name: "AssumeRole",
                        actor: Actor::Principal(caller),
                        source_ip: None,
                        read_only: false,
                        request,
                        response,
                        error: result.as_ref().err(),
                        request_id,
                    },
                )
                .await;
        }
        result
    }

    /// AssumeRole, checked in AWS's order: the parameters, then whether the caller may
    /// assume the role, then the duration against the role's maximum (1 hour for role
    /// chaining).
    async fn assume_role_checked(&self, caller: &Principal, input: AssumeRoleInput) -> Result<AssumedRole> {
        check_param("roleSessionName", &input.role_session_name, 2, 64, "")?;
        check_param("roleArn", &input.role_arn, 20, 2048, ":/")?;
        let duration = input.duration_seconds.unwrap_or(3600);
        if duration < 900 {
            return Err(validation(format!(
                "Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
            )));
        }
        if duration > 43_200 {
            return Err(validation(format!(
                "Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"
            )));
        }
        if let Some(external_id) = &input.external_id {
            check_param("externalId", external_id, 2, 1224, ":/")?;
        }
        if input.policy_arns.len() > 10 {
            return Err(validation(
                "Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10".into(),
            ));
        }
        if input.tags.len() > 50 {
            return Err(validation(
                "Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50".into(),
            ));
        }
        for (k, v) in &input.tags {
            check_param("tags.member.key", k, 1, 128, ":/ ")?;
            check_param("tags.member.value", v, 0, 256, ":/ ")?;
        }
        if !input.policy.is_empty() {
            PolicyDocument::parse(&input.policy, PolicyType::Identity)?;
        }
        // The role's account (as the ARN names it; one rolecall does not serve is refused
        // below like any role the caller may not assume).
        let role_account = input.role_arn.split(':').nth(4).unwrap_or_default().to_string();
        let catalog =
            self.accounts.get(&role_account).unwrap_or_else(|| self.accounts.default_catalog()).clone();
        for arn in &input.policy_arns {
            if catalog.default_document(arn).await?.is_none() {
                return Err(Error::validation(format!("Policy {arn} does not exist or is not attachable.")));
            }
        }
        let packed = policy_size(&input.policy)
            + input.policy_arns.iter().map(String::len).sum::<usize>()
            + input.tags.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        let packed_policy_size = (packed * 100).div_ceil(PACKED_LIMIT);
        if packed_policy_size > 100 {
            return Err(Error::new(
                ErrorCode::PackedPolicyTooLarge,
                format!("Packed size of policy exceeds maximum by {}%", packed_policy_size - 100),
            ));
        }

        let denied = || {
            Error::new(
                ErrorCode::AccessDenied,
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
                    caller.arn, input.role_arn
                ),
            )
        };
        let account = catalog.account_id();
        let name = input.role_arn.rsplit('/').next().unwrap_or_default();
        let role = match catalog.find_role(name).await? {
            // An account rolecall does not serve, a path that is not the role's, a role that
            // is gone: AWS answers them all alike, so as not to tell what exists.
            Some(role) if role.arn == input.role_arn && role_account == account => role,
            _ => return Err(denied()),
        };
        let mut keys = vec![("sts:RoleSessionName".to_string(), input.role_session_name.clone())];
        if let Some(external_id) = &input.external_id {
            keys.push(("sts:ExternalId".to_string(), external_id.clone()));
        }
        self.authz.authorize_assume_role(caller, &role, "sts:AssumeRole", keys.clone()).await?;
        if !input.tags.is_empty() {
            // Session tags need sts:TagSession from the trust policy (and the caller).
            let mut keys = keys;
            for (k, v) in &input.tags {
                keys.push((format!("aws:RequestTag/{k}"), v.clone()));
                keys.push(("aws:TagKeys".to_string(), k.clone()));
            }
            self.authz.authorize_assume_role(caller, &role, "sts:TagSession", keys).await?;
        }
        if caller.is_role_session() && duration > 3600 {
            return Err(Error::validation(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
            ));
        }
        if duration > i64::from(role.max_session_duration) {
            return Err(Error::validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            ));
        }

        let now = self.clock.unix();
        self.ring.maintain(now)?;
        let claims = SessionClaims {
            access_key_id: String::new(),
            secret_access_key: Secret(String::new()),
            account_id: account.to_string(),
            role_arn: role.arn.clone(),
            role_id: role.role_id.clone(),
            session_name: input.role_session_name.clone(),
            instance_id: None,
            issued_at: now,
            expires_at: now + duration,
            session: SessionScope { policy: input.policy, policy_arns: input.policy_arns, tags: input.tags },
        };
        let arn = claims.principal_arn();
        let assumed_role_id = format!("{}:{}", role.role_id, input.role_session_name);
        let credentials = TemporaryCredentials::issue(&self.ring, claims)?;
        tracing::info!(caller = %caller.arn, role = %role.arn, session = %arn, access_key_id = %credentials.access_key_id, "AssumeRole");
        Ok(AssumedRole { credentials, arn, assumed_role_id, packed_policy_size: packed_policy_size as i32 })
    }
}
