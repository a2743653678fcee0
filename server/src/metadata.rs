//! The instance metadata service, seen from the instance: who is asking (a session token
//! or, where IMDSv1 is allowed, the instance key), and what it may read: its role's
//! current credentials, iam/info and the meta-data tree.

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

/// The credentials document: AWS answers 200 with a Code either way.
#[derive(Debug)]
pub enum CredentialsDocument {
    Success {
        credentials: Arc<IssuedCredentials>,
        account_id: String,
    },
    /// The role does not trust ec2.amazonaws.com (Code AssumeRoleUnauthorizedAccess).
    Unauthorized {
        message: String,
        last_updated: i64,
    },
}

/// iam/info.
#[derive(Clone, Debug)]
pub struct IamInfo {
    pub last_updated: i64,
    pub instance_profile_arn: String,
    pub instance_profile_id: String,
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

/// Credentials a fetch found within their prefetch window.
struct Prefetch {
    key: CredentialKey,
    current: Arc<IssuedCredentials>,
    instance_id: String,
}

/// Prefetches waiting beyond this many are left to the rotation point's inline issuance.
const PREFETCH_QUEUE: usize = 1 << 20;

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
                let (catalog, instance) = self.accounts.find_instance(&id).await?.ok_or_else(unauthorized)?;
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
                        if !bool::from(id.as_bytes().ct_eq(instance_id.as_bytes())) {
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

    /// The instance a token was minted for, if it is valid and was minted on at least
    /// `required` proof.
    fn token_of(&self, token: &str, required: Proof) -> Result<String> {
        match imds_token::verify(&self.ring, token, self.clock.unix())? {
            Some(v) if v.proof >= required => Ok(v.instance_id),
            _ => Err(unauthorized()),
        }
    }

    /// The association and role behind an instance, if it has a role.
    async fn role_of(&self, instance: &Placed) -> Result<Option<(Association, Arc<Role>)>> {
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
        Ok(instance.catalog.find_role(role_name).await?.map(|r| (association.clone(), r)))
    }

    /// iam/security-credentials/: the role's name (NotFound without one).
    pub async fn role_name(&self, caller: &Caller) -> Result<String> {
        let instance = self.instance(caller).await?;
        let (_, role) = self.role_of(&instance).await?.ok_or_else(not_found)?;
        Ok(role.role_name.clone())
    }

    /// The credentials of the instance's role, whatever its name (the container credentials
    /// endpoint's answer).
    pub async fn role_credentials(&self, caller: &Caller) -> Result<CredentialsDocument> {
        let instance = self.instance(caller).await?;
        let role = self.role_of(&instance).await?;
        let name = role.as_ref().map(|(_, r)| r.role_name.clone()).ok_or_else(not_found)?;
        self.credentials_for(&instance, role, &name).await
    }

    /// iam/security-credentials/ROLE: the current credentials, issued at most once per
    /// rotation however many callers ask together.
    pub async fn credentials(&self, caller: &Caller, role_name: &str) -> Result<CredentialsDocument> {
        let instance = self.instance(caller).await?;
        let role = self.role_of(&instance).await?;
        self.credentials_for(&instance, role, role_name).await
    }

    async fn credentials_for(
        &self,
        instance: &Placed,
        role: Option<(Association, Arc<Role>)>,
        role_name: &str,
    ) -> Result<CredentialsDocument> {
        let (association, role) = role.ok_or_else(not_found)?;
        if role.role_name != role_name {
            return Err(not_found());
        }
        let now = self.clock.unix();
        let key = CredentialKey::new(&instance.instance_id, &association.association_id, &role.role_id);
        // After "Revoke active sessions", credentials issued before it are replaced.
        let not_before = role.sessions_revoked_before().unwrap_or(i64::MIN);
        let fetched = self
            .cache
            .get_or_issue(&key, now, not_before, || self.issue(&instance.catalog, instance, &role, now))
            .await;
        let (credentials, lookup) = match fetched {
            Ok(found) => found,
            Err(e) if e.code == ErrorCode::AssumeRoleUnauthorizedAccess => {
                return Ok(CredentialsDocument::Unauthorized { message: e.message, last_updated: now });
            }
            Err(e) => return Err(e),
        };
        match lookup {
            Lookup::Hit => self.metrics.credential_cache_hits.inc(),
            Lookup::Issued => self.metrics.credential_cache_misses.inc(),
        };
        if credentials.claim_prefetch(now) {
            let instance_id = instance.instance_id.clone();
            self.prefetch(Prefetch { key, current: credentials.clone(), instance_id });
        }
        Ok(CredentialsDocument::Success {
            credentials,
            account_id: instance.catalog.account_id().to_string(),
        })
    }

    /// Mints credentials for the instance's role, if the role trusts EC2. The trust policy
    /// (parsed once per role record) is evaluated here, at issuance, as EC2 does when it
    /// assumes the role, with the keys EC2's request carries: the instance's account and ARN
    /// (aws:SourceAccount, aws:SourceArn, ec2:SourceInstanceARN) and the time.
    async fn issue(
        &self,
        catalog: &Catalog,
        instance: &Instance,
        role: &Role,
        now: i64,
    ) -> Result<IssuedCredentials> {
        let trusted = role.trust().is_some_and(|doc| {
            // The context costs allocations: built only for a policy with conditions.
            if doc.statements.iter().all(|s| s.condition.is_none()) {
                return doc.trusts_service(EC2_SERVICE, &[]);
            }
            let account = catalog.account_id();
            let region = &catalog.settings().region;
            let instance_arn = format!("arn:aws:ec2:{region}:{account}:instance/{}", instance.instance_id);
            let context = [
                ("aws:SourceAccount", account.to_string()),
                ("aws:SourceArn", instance_arn.clone()),
                ("ec2:SourceInstanceARN", instance_arn),
                ("aws:CurrentTime", iso8601(now)),
                ("aws:EpochTime", now.to_string()),
                ("aws:RequestedRegion", region.clone()),
            ];
            doc.trusts_service(EC2_SERVICE, &context)
        });
        if !trusted {
            let e = Error::new(
                ErrorCode::AssumeRoleUnauthorizedAccess,
                format!("EC2 cannot assume the role {}.", role.role_name),
            );
            self.audit_issuance(now, catalog.account_id(), role, instance, None, Some(&e)).await;
            return Err(e);
        }
        let schedule = self.settings.schedule;
        let expires_at = now + schedule.lifetime_secs;
        let account = catalog.account_id();
        let claims = SessionClaims::for_instance(
            account,
            &role.arn,
            &role.role_id,
            &instance.instance_id,
            now,
            expires_at,
        );
        self.maintain_key_ring(now)?;
        let credentials = TemporaryCredentials::issue(&self.ring, claims)?;
        self.metrics.credentials_issued.inc();
        self.audit_issuance(now, account, role, instance, Some(&credentials), None).await;
        tracing::debug!(instance_id = %instance.instance_id, role = %role.role_name, access_key_id = %credentials.access_key_id, "issued credentials");
        let rotate_at = schedule.rotate_at(now, expires_at, &instance.instance_id);
        Ok(IssuedCredentials::new(credentials, rotate_at).prefetched_from(schedule.prefetch_from(rotate_at)))
    }

    /// EC2's AssumeRole of an instance's role, into the audit trail: the key id and the
    /// expiration of what was issued, never the secret or the token.
    async fn audit_issuance(
        &self,
        now: i64,
        account: &str,
        role: &Role,
        instance: &Instance,
        issued: Option<&TemporaryCredentials>,
        error: Option<&Error>,
    ) {
        if !self.audit.enabled() {
            return;
        }
        let request = serde_json::json!({ "roleArn": role.arn, "roleSessionName": instance.instance_id });
        let response = issued.map_or(serde_json::Value::Null, |c| {
            serde_json::json!({
                "credentials": { "accessKeyId": c.access_key_id, "expiration": iso8601(c.expires_at) },
                "assumedRoleUser": {
                    "arn": crate::domain::ids::arn::assumed_role(account, &role.role_name, &instance.instance_id),
                },
            })
        });
        self.audit
            .record(
                now,
                Event {
                    source: "sts.amazonaws.com",
                    name: "AssumeRole",
                    actor: Actor::Ec2,
                    source_ip: Some("ec2.amazonaws.com".into()),
                    read_only: false,
                    request,
                    response,
                    error,
                },
            )
            .await;
    }

    /// Queues `job` for the background worker (started by the first job).
    fn prefetch(&self, job: Prefetch) {
        let queue = self.prefetches.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(PREFETCH_QUEUE);
            tokio::spawn(prefetch_worker(self.me.clone(), receiver));
            sender
        });
        if let Err(refused) = queue.try_send(job) {
            // The queue is full: the next fetch may try again, and the rotation point issues
            // inline in any case.
            refused.into_inner().current.release_prefetch();
        }
    }

    /// Replaces a prefetch's credentials if the instance still has the association and role
    /// they were issued for, and no fetch has replaced them since.
    async fn refresh(&self, job: Prefetch) -> Result<()> {
        let Some((catalog, instance)) = self.accounts.find_instance(&job.instance_id).await? else {
            return Ok(());
        };
        let Ok(instance) = usable(instance) else { return Ok(()) };
        let instance = Placed { catalog, instance };
        let Some((association, role)) = self.role_of(&instance).await? else { return Ok(()) };
        let key = CredentialKey::new(&instance.instance_id, &association.association_id, &role.role_id);
        if key != job.key {
            return Ok(());
        }
        let now = self.clock.unix();
        if self
            .cache
            .refresh(key, &job.current, || self.issue(&instance.catalog, &instance, &role, now))
            .await?
        {
            self.metrics.credentials_prefetched.inc();
        }
        Ok(())
    }

    /// Rotates the key ring when due (checked whenever something is sealed or signed).
    /// Forgets keys past retention (rotation is the key keeper's: see `custody`).
    fn maintain_key_ring(&self, now: i64) -> Result<()> {
        self.ring.maintain(now)
    }

    /// iam/info (NotFound without a role).
    pub async fn iam_info(&self, caller: &Caller) -> Result<IamInfo> {
        let instance = self.instance(caller).await?;
        iam_info_of(self.role_of(&instance).await?)
    }

    /// Any path of the meta-data tree: a value, or a directory listing (one entry a line,
    /// sub-directories ending in `/`).
    pub async fn metadata(&self, caller: &Caller, path: &str) -> Result<String> {
        let instance = self.instance(caller).await?;
        let role = self.role_of(&instance).await?;
        let path = path.trim_start_matches('/');
        if path == "iam/info" {
            return Ok(iam_info_json(&iam_info_of(role)?));
        }
        if let Some(name) = path.strip_prefix("iam/security-credentials/")
            && !name.is_empty()
        {
            let doc = self.credentials_for(&instance, role, name.trim_end_matches('/')).await?;
            return Ok(credentials_json(&doc, false));
        }
        // What newer SDKs ask first: the same, with AccountId.
        if let Some(name) = path.strip_prefix("iam/security-credentials-extended/") {
            if name.is_empty() {
                return role.map(|(_, r)| r.role_name.clone()).ok_or_else(not_found);
            }
            let doc = self.credentials_for(&instance, role, name.trim_end_matches('/')).await?;
            return Ok(credentials_json(&doc, true));
        }
        let tree = self.tree(&instance, role.as_ref().map(|(_, r)| r.role_name.as_str()));
        lookup(&tree, path).ok_or_else(not_found)
    }

    /// /latest/dynamic/instance-identity/document.
    pub async fn identity_document(&self, caller: &Caller) -> Result<String> {
        let instance = self.instance(caller).await?;
        let settings = instance.catalog.settings();
        Ok(serde_json::json!({
            "accountId": settings.account_id,
            "architecture": "x86_64",
            "availabilityZone": instance.availability_zone,
            "billingProducts": null,
            "devpayProductCodes": null,
            "marketplaceProductCodes": null,
            "imageId": instance.image_id,
            "instanceId": instance.instance_id,
            "instanceType": instance.instance_type,
            "kernelId": null,
            "pendingTime": iso8601(instance.launch_time),
            "privateIp": instance.private_ip_address,
            "ramdiskId": null,
            "region": settings.region,
            "version": "2017-09-30",
        })
        .to_string())
    }

    /// /latest/dynamic/instance-identity/signature: the document's, base64.
    pub async fn identity_signature(&self, caller: &Caller) -> Result<String> {
        let document = self.identity_document(caller).await?;
        self.identity.sign(document.as_bytes())
    }

    /// The public key that checks identity document signatures (PEM).
    pub fn identity_public_key(&self) -> String {
        self.identity.public_key_pem()
    }

    /// /latest/user-data (NotFound where the instance has none).
    pub async fn user_data(&self, caller: &Caller) -> Result<String> {
        let instance = self.instance(caller).await?;
        if instance.user_data.is_empty() {
            return Err(not_found());
        }
        // RunInstances takes it base64-encoded; IMDS serves it decoded.
        let decoded = data_encoding::BASE64.decode(instance.user_data.as_bytes()).ok();
        Ok(decoded.and_then(|d| String::from_utf8(d).ok()).unwrap_or_else(|| instance.user_data.clone()))
    }

    /// The leaves of an instance's meta-data tree.
    fn tree(&self, instance: &Instance, role_name: Option<&str>) -> BTreeMap<String, String> {
        let settings = self.accounts.default_catalog().settings();
        let hostname = format!("ip-{}.ec2.internal", instance.private_ip_address.replace('.', "-"));
        let mut t = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            t.insert(k.to_string(), v);
        };
        put("ami-id", instance.image_id.clone());
        put("ami-launch-index", "0".into());
        put("hostname", hostname.clone());
        put("instance-id", instance.instance_id.clone());
        put("instance-type", instance.instance_type.clone());
        put("local-hostname", hostname);
        put("local-ipv4", instance.private_ip_address.clone());
        put("placement/availability-zone", instance.availability_zone.clone());
        put("placement/region", settings.region.clone());
        put("reservation-id", instance.reservation_id.clone());
        put("security-groups", instance.security_group_ids.join("\n"));
        if let Some(role) = role_name {
            put("iam/info", String::new());
            put(&format!("iam/security-credentials/{role}"), String::new());
        }
        t
    }
}

/// Works through prefetches one at a time, yielding between them so that requests are not
/// queued behind a fleet's worth of issuance.
async fn prefetch_worker(metadata: Weak<InstanceMetadata>, mut queue: mpsc::Receiver<Prefetch>) {
    while let Some(job) = queue.recv().await {
        let Some(metadata) = metadata.upgrade() else { return };
        if let Err(e) = metadata.refresh(job).await {
            // The rotation point issues inline, and answers this error to the fetch then.
            tracing::debug!(code = e.code.as_str(), "prefetch did not issue: {}", e.message);
        }
        drop(metadata);
        tokio::task::yield_now().await;
    }
}

fn iam_info_of(role: Option<(Association, Arc<Role>)>) -> Result<IamInfo> {
    let (association, _) = role.ok_or_else(not_found)?;
    Ok(IamInfo {
        last_updated: association.timestamp,
        instance_profile_arn: association.instance_profile_arn,
        instance_profile_id: association.instance_profile_id,
    })
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

/// A leaf's value, or a directory's listing.
fn lookup(tree: &BTreeMap<String, String>, path: &str) -> Option<String> {
    let dir = path.trim_end_matches('/');
    if !path.ends_with('/')
        && let Some(v) = tree.get(dir)
    {
        return Some(v.clone());
    }
    let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
    let mut entries: Vec<String> = tree
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix))
        .map(|rest| match rest.split_once('/') {
            Some((d, _)) => format!("{d}/"),
            None => rest.to_string(),
        })
        .collect();
    entries.dedup();
    (!entries.is_empty()).then(|| entries.join("\n"))
}

/// iam/info as AWS formats it.
pub fn iam_info_json(info: &IamInfo) -> String {
    serde_json::json!({
        "Code": "Success",
        "LastUpdated": iso8601(info.last_updated),
        "InstanceProfileArn": info.instance_profile_arn,
        "InstanceProfileId": info.instance_profile_id,
    })
    .to_string()
}

/// The credentials document as AWS formats it.
/// The container credentials endpoint's document: the credentials and the account, or the
/// reason there are none.
pub fn container_credentials_json(doc: &CredentialsDocument) -> String {
    match doc {
        CredentialsDocument::Success { credentials: c, account_id } => serde_json::json!({
            "AccessKeyId": c.access_key_id(),
            "SecretAccessKey": c.secret_access_key(),
            "Token": c.session_token(),
            "Expiration": c.expiration(),
            "AccountId": account_id,
        })
        .to_string(),
        CredentialsDocument::Unauthorized { message, .. } => {
            serde_json::json!({ "code": "AssumeRoleUnauthorizedAccess", "message": message }).to_string()
        }
    }
}

/// The credentials document as AWS formats it (`extended`: with AccountId, as the
/// `security-credentials-extended` path answers).
pub fn credentials_json(doc: &CredentialsDocument, extended: bool) -> String {
    match doc {
        CredentialsDocument::Success { credentials: c, account_id } => {
            let mut v = serde_json::json!({
                "Code": "Success",
                "LastUpdated": c.last_updated(),
                "Type": "AWS-HMAC",
                "AccessKeyId": c.access_key_id(),
                "SecretAccessKey": c.secret_access_key(),
                "Token": c.session_token(),
                "Expiration": c.expiration(),
            });
            if extended {
                v["AccountId"] = account_id.clone().into();
            }
            v.to_string()
        }
        CredentialsDocument::Unauthorized { message, last_updated } => serde_json::json!({
            "Code": "AssumeRoleUnauthorizedAccess",
            "Message": message,
            "LastUpdated": iso8601(*last_updated),
        })
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_lookup_lists_directories_like_imds() {
        let mut t = BTreeMap::new();
        for (k, v) in [
            ("ami-id", "ami-1"),
            ("placement/region", "us-east-1"),
            ("placement/availability-zone", "us-east-1a"),
        ] {
            t.insert(k.to_string(), v.to_string());
        }
        assert_eq!(lookup(&t, "ami-id").as_deref(), Some("ami-1"));
        assert_eq!(lookup(&t, "").as_deref(), Some("ami-id\nplacement/"));
        assert_eq!(lookup(&t, "placement/").as_deref(), Some("availability-zone\nregion"));
        assert_eq!(lookup(&t, "placement").as_deref(), Some("availability-zone\nregion"));
        assert_eq!(lookup(&t, "nothing"), None);
    }

    /// An instance with a role, launched on a fresh [`App`] whose credentials rotate every
    /// 60 s and are prefetched in the last 10.
    async fn launched() -> (crate::App, Caller) {
        let mut config = crate::config::Config::default();
        config.simulation.short_credentials = true;
        config.credentials.lifetime_secs = 600;
        config.credentials.rotate_after_secs = 60;
        config.credentials.rotation_jitter_secs = 0;
        config.credentials.min_remaining_secs = 0;
        config.credentials.prefetch_secs = 10;
        config.storage.backend = "memory".into();
        let app = crate::App::new(config).await.unwrap();
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let role = crate::catalog::NewRole {
            role_name: "Web".into(),
            assume_role_policy_document: trust.into(),
            ..Default::default()
        };
        app.catalog.create_role(role).await.unwrap();
        let profile = app.catalog.create_instance_profile("Web", "/", &[]).await.unwrap();
        app.catalog.add_role_to_instance_profile("Web", "Web").await.unwrap();
        let launch = crate::catalog::Launch {
            image_id: "ami-1".into(),
            profile: Some(crate::catalog::ProfileRef { arn: profile.arn, name: String::new() }),
            ..Default::default()
        };
        let (_, mut launched) = app.catalog.run_instances(launch).await.unwrap();
        let (instance, key) = launched.remove(0);
        let caller = Caller::InstanceKey { instance_id: instance.instance_id, instance_key: key };
        (app, caller)
    }

    async fn access_key(app: &crate::App, caller: &Caller) -> String {
        match app.imds.credentials(caller, "Web").await.unwrap() {
            CredentialsDocument::Success { credentials, .. } => credentials.access_key_id().to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn credentials_fetched_near_rotation_are_replaced_in_the_background_once() {
        let (app, caller) = launched().await;
        let first = access_key(&app, &caller).await;
        app.clock.advance(time::Duration::seconds(45));
        assert_eq!(access_key(&app, &caller).await, first, "not yet in the prefetch window");
        app.clock.advance(time::Duration::seconds(6));
        // In the window: served the current credentials, and the replacement is queued once.
        assert_eq!(access_key(&app, &caller).await, first);
        assert_eq!(access_key(&app, &caller).await, first);
        // The worker runs when this (single-threaded) test yields.
        for _ in 0..1000 {
            if app.metrics.credentials_prefetched.get() > 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(app.metrics.credentials_prefetched.get(), 1);
        let replaced = access_key(&app, &caller).await;
        assert_ne!(replaced, first, "served before the rotation point");
        // The replacement rotates a full period after it was issued, not at the old point.
        app.clock.advance(time::Duration::seconds(10));
        assert_eq!(access_key(&app, &caller).await, replaced);
        assert_eq!(app.metrics.credentials_issued.get(), 2);
        assert_eq!(app.metrics.credentials_prefetched.get(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_prefetch_overtaken_by_the_rotation_point_issues_nothing_more() {
        let (app, caller) = launched().await;
        let first = access_key(&app, &caller).await;
        app.clock.advance(time::Duration::seconds(55));
        assert_eq!(access_key(&app, &caller).await, first);
        // The rotation point passes before the worker has run: the fetch issues inline, and
        // the queued prefetch finds its entry replaced.
        app.clock.advance(time::Duration::seconds(10));
        let rotated = access_key(&app, &caller).await;
        assert_ne!(rotated, first);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(access_key(&app, &caller).await, rotated);
        assert_eq!(app.metrics.credentials_issued.get(), 2);
        assert_eq!(app.metrics.credentials_prefetched.get(), 0);
    }
}
