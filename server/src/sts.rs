//! The security token service: who signed a request (SigV4 over the request, with a user's
//! access key or temporary credentials), and what STS answers about it.
//!
//! Transport-free: the gRPC layer (and later the HTTP front door) describes each request as
//! a [`sigv4::HttpRequest`] and gets back the [`Principal`] that signed it, or AWS's error.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::{
    catalog::Catalog,
    domain::{
        Error, ErrorCode, Result,
        clock::Clock,
        credentials::{SessionClaims, TokenRejection, open_session_token},
        keyring::KeyRing,
        model::AccessKeyStatus,
        sigv4::{self, Authorization, Expected, HttpRequest, Rules, SigningKeys},
    },
};

/// Who signed a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub account_id: String,
    /// `arn:aws:iam::ACCOUNT:user/NAME` or `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub arn: String,
    /// `AIDA…` for a user; `AROA…:SESSION` for an assumed role.
    pub user_id: String,
    /// The access key id the request was signed with.
    pub access_key_id: String,
    pub kind: PrincipalKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    User {
        user_name: String,
    },
    AssumedRole {
        role_arn: String,
        role_id: String,
        session_name: String,
        /// Instance credentials: the instance they were issued to (ec2:SourceInstanceARN).
        instance_id: Option<String>,
        /// aws:TokenIssueTime.
        issued_at: i64,
        expires_at: i64,
    },
}

/// AWS's answer to an access key it does not know, or no longer honours.
fn invalid_token() -> Error {
    Error::new(ErrorCode::InvalidClientTokenId, "The security token included in the request is invalid.")
}

fn expired_token() -> Error {
    Error::new(ErrorCode::ExpiredToken, "The security token included in the request is expired")
}

/// Verifies who signed a request.
pub struct Authenticator {
    catalog: Arc<Catalog>,
    ring: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    keys: SigningKeys,
}

// === impl Authenticator ===

impl Authenticator {
    pub fn new(catalog: Arc<Catalog>, ring: Arc<KeyRing>, clock: Arc<dyn Clock>) -> Self {
        Self { catalog, ring, clock, keys: SigningKeys::default() }
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
        let region = &self.catalog.settings().region;
        auth.check(Expected { region, service }, now, rules)?;
        let (secret, principal) = self.signer_of(&auth, now).await?;
        auth.verify(req, &secret, rules, &self.keys)?;
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
        let (user, key) = self.catalog.find_access_key(id).await?.ok_or_else(invalid_token)?;
        if key.status != AccessKeyStatus::Active {
            return Err(invalid_token());
        }
        let principal = Principal {
            account_id: self.catalog.account_id().to_string(),
            arn: user.arn.clone(),
            user_id: user.user_id.clone(),
            access_key_id: key.access_key_id.clone(),
            kind: PrincipalKind::User { user_name: user.user_name.clone() },
        };
        Ok((key.secret_access_key.0, principal))
    }

    /// GetAccessKeyInfo: the account of an access key id (rolecall serves one account, so
    /// any well-formed key id is answered with it, as AWS answers for any account's keys).
    pub fn access_key_account(&self, access_key_id: &str) -> Result<String> {
        let well_formed = (16..=128).contains(&access_key_id.len())
            && access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
            && (access_key_id.starts_with("AKIA") || access_key_id.starts_with("ASIA"));
        if !well_formed {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{access_key_id}' at 'accessKeyId' failed to satisfy constraint: \
                 Member must satisfy regular expression pattern: [\\w]+"
            )));
        }
        Ok(self.catalog.account_id().to_string())
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
        },
    }
}

/// The SigV4 rules of rolecall's gRPC services (AWS's, with the gRPC path as the URI).
pub const GRPC_RULES: Rules = sigv4::Rules::AWS;
