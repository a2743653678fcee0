//! The role's credentials for an instance: served from the cache, issued when absent or past
//! their rotation point, replaced in the background inside the prefetch window
//! (docs/architecture.md, "Where a fetch decides").

use super::*;
use crate::domain::evaluation;

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

/// Credentials a fetch found within their prefetch window.
pub(super) struct Prefetch {
    key: CredentialKey,
    current: Arc<IssuedCredentials>,
    instance_id: String,
}

/// Prefetches waiting beyond this many are left to the rotation point's inline issuance.
const PREFETCH_QUEUE: usize = 1 << 20;

impl InstanceMetadata {
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

    pub(super) async fn credentials_for(
        &self,
        instance: &Placed,
        role: Option<(&Association, Arc<Role>)>,
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
                return evaluation::trusts_service(doc, EC2_SERVICE, &[]);
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
            evaluation::trusts_service(doc, EC2_SERVICE, &context)
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
                    request_id: None,
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let (app, mut launched) = app.with_web_instances(1, "").await.unwrap();
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
