//! The instance metadata service, seen from the instance: who is asking (a session token
//! or, where IMDSv1 is allowed, the instance key), and what it may read: its role's
//! current credentials, iam/info and the meta-data tree.
//!
//! - this file: the service, and who is asking (tokens, instance keys, located callers);
//! - [`credentials`]: the role's credentials, cached, issued and rotated in the background;
//! - [`tree`]: the meta-data tree, iam/info, the identity document and user data;
//! - [`render`]: the JSON documents as IMDS writes them.

mod credentials;
mod render;
mod tree;

pub use credentials::CredentialsDocument;
use credentials::Prefetch;
pub use render::{container_credentials_json, credentials_json, iam_info_json};
pub use tree::IamInfo;

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock, Weak},
    time::Duration,
};

use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

use crate::{
    audit::{Actor, AuditLog, Event},
    cache::{CredentialCache, CredentialKey, IssuedCredentials, Lookup},
    catalog::{Accounts, Catalog},
    domain::{
        Error, ErrorCode, Result,
        clock::{Clock, iso8601},
        credentials::{RotationSchedule, SessionClaims, TemporaryCredentials},
        identity::IdentitySigner,
        imds_token::{self, Proof},
        keyring::KeyRing,
        model::{Association, HttpTokens, Instance, InstanceState, Role},
        policy::EC2_SERVICE,
    },
    telemetry::Metrics,
};

/// How an instance proves who it is.
#[derive(Clone)]
pub enum Caller {
    /// IMDSv2 over gRPC: a session token from [`InstanceMetadata::get_token`], so minted on
    /// the instance key (a token minted over HTTP on a weaker proof is refused, unless
    /// gRPC itself believes claims: `simulation.trust_claimed_instance_id`).
    Token(String),
    /// IMDSv1 (only where the instance's HttpTokens is optional): the instance key.
    InstanceKey {
        instance_id: String,
        instance_key: String,
    },
    /// The container credentials endpoint: a workload on the instance presents the
    /// instance key as its bearer token (AWS_CONTAINER_AUTHORIZATION_TOKEN). Not IMDSv1: it
    /// works whatever the instance's HttpTokens.
    Workload {
        instance_id: String,
        instance_key: String,
    },
    /// Over HTTP, where the transport established which instance is asking (its source
    /// address, or a simulation's path prefix), with that much `proof`: IMDSv1 without a
    /// token (only where HttpTokens is optional), or IMDSv2 with a token, which must be this
    /// instance's and minted on at least as strong a proof.
    Located {
        instance_id: String,
        proof: Proof,
        token: Option<String>,
    },
    Anonymous,
}

/// What the service needs to know beyond the catalog.
#[derive(Clone, Debug)]
pub struct MetadataSettings {
    pub schedule: RotationSchedule,
    pub cache_capacity: u64,
    /// Simulation only: GetToken believes the instance id without its key.
    pub trust_claimed_instance_id: bool,
}

pub struct InstanceMetadata {
    accounts: Arc<Accounts>,
    ring: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    cache: CredentialCache,
    metrics: Metrics,
    audit: AuditLog,
    settings: MetadataSettings,
    /// Fetched credentials to replace in the background, for one worker task started with
    /// the first (which holds only a weak reference, and stops when this is dropped).
    prefetches: OnceLock<mpsc::Sender<Prefetch>>,
    me: Weak<InstanceMetadata>,
    /// Signs instance identity documents.
    identity: IdentitySigner,
}

/// An instance and the account (catalog) that holds it.
#[derive(Clone)]
struct Placed {
    catalog: Arc<Catalog>,
    instance: Arc<Instance>,
}

impl std::ops::Deref for Placed {
    type Target = Instance;

    fn deref(&self) -> &Instance {
        &self.instance
    }
}

fn unauthorized() -> Error {
    Error::new(
        ErrorCode::Unauthorized,
        "Unauthorized: a valid IMDSv2 session token for this instance is required",
    )
}

/// A token TTL must be 1-21600 s (400 otherwise, as IMDS answers).
fn check_token_ttl(ttl_seconds: i64) -> Result<()> {
    if imds_token::TTL_RANGE.contains(&ttl_seconds) {
        return Ok(());
    }
    Err(Error::new(ErrorCode::BadRequest, "X-aws-ec2-metadata-token-ttl-seconds must be between 1 and 21600"))
}

fn not_found() -> Error {
    Error::new(ErrorCode::NotFound, "Not Found")
}

// === impl InstanceMetadata ===

// === impl InstanceMetadata ===

impl InstanceMetadata {
    pub fn new(
        accounts: Arc<Accounts>,
        ring: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
        audit: AuditLog,
        settings: MetadataSettings,
        identity: IdentitySigner,
    ) -> Arc<Self> {
        let ttl = Duration::from_secs(settings.schedule.lifetime_secs.max(1) as u64);
        let cache = CredentialCache::new(settings.cache_capacity, ttl);
        Arc::new_cyclic(|me| Self {
            accounts,
            ring,
            clock,
            cache,
            metrics,
            audit,
            settings,
            prefetches: OnceLock::new(),
            me: me.clone(),
            identity,
        })
    }

    pub fn cache(&self) -> &CredentialCache {
        &self.cache
    }

    /// PUT /latest/api/token: a session token bound to this instance for `ttl_seconds`.
    pub async fn get_token(&self, instance_id: &str, instance_key: &str, ttl_seconds: i64) -> Result<String> {
        check_token_ttl(ttl_seconds)?;
        let instance = self.authenticate(instance_id, instance_key).await?;
        self.token_for(&instance, self.key_proof(), ttl_seconds)
    }

    /// What gRPC's instance key proves: the key, or only a claim where the key is not checked.
    fn key_proof(&self) -> Proof {
        if self.settings.trust_claimed_instance_id { Proof::Claimed } else { Proof::InstanceKey }
    }

    /// PUT /latest/api/token over HTTP, for the instance the transport located with `proof`:
    /// the token and the instance's hop limit (the IP TTL the answer is sent with).
    pub async fn get_token_at(
        &self,
        instance_id: &str,
        proof: Proof,
        ttl_seconds: i64,
    ) -> Result<(String, i32)> {
        check_token_ttl(ttl_seconds)?;
        let (_, instance) = self.accounts.find_instance(instance_id).await?.ok_or_else(unauthorized)?;
        let instance = usable(instance)?;
        let hop_limit = instance.metadata_options.http_put_response_hop_limit;
        Ok((self.token_for(&instance, proof, ttl_seconds)?, hop_limit))
    }

    /// The running instance whose private address this is (the transport's word for who
    /// is asking, where each instance has its own network).
    pub async fn instance_at(&self, address: &str) -> Result<String> {
        self.accounts.find_instance_at(address).await?.ok_or_else(|| {
            Error::new(ErrorCode::NotFound, format!("no running instance has the address {address}"))
        })
    }

    /// A session token for an instance whose identity is established by `proof`.
    fn token_for(&self, instance: &Instance, proof: Proof, ttl_seconds: i64) -> Result<String> {
        let now = self.clock.unix();
        self.maintain_key_ring(now)?;
        let token = imds_token::issue(&self.ring, &instance.instance_id, proof, now + ttl_seconds)?;
        self.metrics.imds_tokens_issued.inc();
        Ok(token)
    }

    /// The running instance whose key this is, in whichever account holds it.
    async fn authenticate(&self, instance_id: &str, instance_key: &str) -> Result<Placed> {
        let (catalog, instance) = self.accounts.find_instance(instance_id).await?.ok_or_else(unauthorized)?;
        if !self.settings.trust_claimed_instance_id {
            let presented = crate::catalog::instance_key_digest(instance_key);
            if !bool::from(presented.as_bytes().ct_eq(instance.instance_key_sha256.as_bytes())) {
                return Err(unauthorized());
            }
        }
        Ok(Placed { catalog, instance: usable(instance)? })
    }

    /// The instance asking, checked against its metadata options.
    async fn instance(&self, caller: &Caller) -> Result<Placed> {
        match caller {
            Caller::Token(token) => {
                let id = self.token_of(token, self.key_proof())?;
                let (catalog, instance) =
                    self.accounts.find_instance(&id.instance_id).await?.ok_or_else(unauthorized)?;
                Ok(Placed { catalog, instance: usable(instance)? })
            }
            Caller::InstanceKey { instance_id, instance_key } => {
                let instance = self.authenticate(instance_id, instance_key).await?;
                if instance.metadata_options.http_tokens == HttpTokens::Required {
                    return Err(unauthorized());
                }
                Ok(instance)
            }
            Caller::Workload { instance_id, instance_key } => {
                self.authenticate(instance_id, instance_key).await
            }
            Caller::Located { instance_id, proof, token } => {
                let (catalog, instance) =
                    self.accounts.find_instance(instance_id).await?.ok_or_else(unauthorized)?;
                let instance = Placed { catalog, instance: usable(instance)? };
                match token {
                    Some(token) => {
                        let id = self.token_of(token, *proof)?;
                        // Another instance's token is no token.
                        if !bool::from(id.instance_id.as_bytes().ct_eq(instance_id.as_bytes())) {
                            return Err(unauthorized());
                        }
                    }
                    None if instance.metadata_options.http_tokens == HttpTokens::Required => {
                        return Err(unauthorized());
                    }
                    None => {}
                }
                Ok(instance)
            }
            Caller::Anonymous => Err(unauthorized()),
        }
    }

    /// What a token says (the instance it was minted for), if it is valid and was minted on
    /// at least `required` proof.
    fn token_of(&self, token: &str, required: Proof) -> Result<imds_token::Verified> {
        match imds_token::verify(&self.ring, token, self.clock.unix())? {
            Some(v) if v.proof >= required => Ok(v),
            _ => Err(unauthorized()),
        }
    }

    /// The association and role behind an instance, if it has a role (the association lent
    /// from the instance's record: a fetch copies none of its strings).
    async fn role_of<'a>(&self, instance: &'a Placed) -> Result<Option<(&'a Association, Arc<Role>)>> {
        let Some(association) = &instance.association else { return Ok(None) };
        let Some(profile) =
            instance.catalog.find_instance_profile(&association.instance_profile_name).await?
        else {
            return Ok(None);
        };
        if profile.instance_profile_id != association.instance_profile_id {
            return Ok(None); // deleted and re-created: not the profile that was associated
        }
        let Some(role_name) = profile.roles.first() else { return Ok(None) };
        Ok(instance.catalog.find_role(role_name).await?.map(|r| (association, r)))
    }

    /// Rotates the key ring when due (checked whenever something is sealed or signed).
    /// Forgets keys past retention (rotation is the key keeper's: see `custody`).
    fn maintain_key_ring(&self, now: i64) -> Result<()> {
        self.ring.maintain(now)
    }
}

/// An instance that can use IMDS now.
fn usable(instance: Arc<Instance>) -> Result<Arc<Instance>> {
    if instance.state != InstanceState::Running && instance.state != InstanceState::Pending {
        return Err(unauthorized());
    }
    if !instance.metadata_options.http_endpoint_enabled {
        return Err(Error::new(
            ErrorCode::Forbidden,
            "The instance metadata endpoint is disabled for this instance",
        ));
    }
    Ok(instance)
}
