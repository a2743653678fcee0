//! Customer managed policies and their versions, and the use counts of every managed policy.

use std::collections::HashMap;

use super::*;

/// An AWS managed policy with the use this account makes of it (none: unused).
pub(super) fn aws_policy_with_use(p: &AwsManagedPolicy, u: Option<&PolicyUse>) -> PolicyView {
    let mut view = PolicyView::from(p);
    if let Some(u) = u {
        view.record.attachment_count = u.attachment_count;
        view.record.permissions_boundary_usage_count = u.permissions_boundary_usage_count;
    }
    view
}

impl Catalog {
    /// Loads a customer managed policy by ARN, with its revision.
    pub(super) async fn customer_policy(&self, policy_arn: &str) -> Result<Option<(ManagedPolicy, u64)>> {
        let Some((account, _, name)) = arn::parse_policy(policy_arn) else {
            return Err(Error::invalid_input(format!("ARN {policy_arn} is not valid.")));
        };
        if account != self.settings.account_id {
            return Ok(None);
        }
        Ok(self.load::<ManagedPolicy>(&keys::policy(name)).await?.filter(|(p, _)| p.arn == policy_arn))
    }

    /// How often this account uses an AWS managed policy (kept apart from the static data).
    pub(super) async fn aws_policy_use(&self, p: &AwsManagedPolicy) -> Result<(PolicyUse, Option<u64>)> {
        Ok(match self.load::<PolicyUse>(&keys::aws_policy_use(&p.policy_name)).await? {
            Some((u, rev)) => (u, Some(rev)),
            None => (PolicyUse::default(), None),
        })
    }

    /// An AWS managed policy as this account sees it: with its attachment counts.
    pub(super) async fn aws_policy_view(&self, p: &AwsManagedPolicy) -> Result<PolicyView> {
        let (u, _) = self.aws_policy_use(p).await?;
        Ok(aws_policy_with_use(p, Some(&u)))
    }

    /// The use this account makes of each AWS managed policy it uses, by policy name: one
    /// scan, for the views that show them all.
    pub(super) async fn aws_policy_uses(&self) -> Result<HashMap<String, PolicyUse>> {
        Ok(self.keyed_records::<PolicyUse>(keys::AWS_POLICY_USES).await?.into_iter().collect())
    }

    /// Adds to a managed policy's attachment (or boundary) count inside `txn`.
    pub(super) async fn count_use(
        &self,
        txn: Txn,
        policy_arn: &str,
        attach: i32,
        boundary: i32,
    ) -> Result<Txn> {
        if let Some(p) = managed::by_arn(policy_arn) {
            let (mut u, rev) = self.aws_policy_use(p).await?;
            u.attachment_count += attach;
            u.permissions_boundary_usage_count += boundary;
            let key = keys::aws_policy_use(&p.policy_name);
            let txn = match rev {
                Some(rev) => txn.require_revision(&key, rev),
                None => txn.require_absent(&key),
            };
            return Ok(txn.put(key, encode(&u)?));
        }
        let (mut policy, rev) =
            self.customer_policy(policy_arn).await?.ok_or_else(|| policy_not_found(policy_arn))?;
        policy.attachment_count += attach;
        policy.permissions_boundary_usage_count += boundary;
        let key = keys::policy(&policy.policy_name);
        Ok(txn.require_revision(&key, rev).put(key, encode(&policy)?))
    }

    /// Like [`count_use`](Self::count_use) for a decrement: a policy deleted meanwhile has no
    /// count left to keep.
    pub(super) async fn release_use(
        &self,
        txn: Txn,
        policy_arn: &str,
        attach: i32,
        boundary: i32,
    ) -> Result<Txn> {
        match self.count_use(txn.clone(), policy_arn, attach, boundary).await {
            Err(e) if e.code == crate::domain::ErrorCode::NoSuchEntity => Ok(txn),
            other => other,
        }
    }

    /// Fails unless `policy_arn` names an existing managed policy.
    pub(super) async fn require_policy(&self, policy_arn: &str) -> Result<()> {
        if managed::by_arn(policy_arn).is_some() || self.customer_policy(policy_arn).await?.is_some() {
            Ok(())
        } else {
            Err(policy_not_found(policy_arn))
        }
    }

    pub async fn create_policy(
        &self,
        policy_name: &str,
        path: &str,
        document: &str,
        description: &str,
        tags: &[Tag],
    ) -> Result<ManagedPolicy> {
        validate::policy_name(policy_name)?;
        let path = validate::path(path)?;
        validate::description(description)?;
        validate_tags(tags)?;
        self.validate_managed_document(document)?;
        let key = keys::policy(policy_name);
        retrying(|| async {
            if self.load::<ManagedPolicy>(&key).await?.is_some() {
                return Err(Error::already_exists(format!(
                    "A policy called {policy_name} already exists. Duplicate names are not allowed."
                )));
            }
            let now = self.now();
            let policy = ManagedPolicy {
                policy_name: policy_name.to_string(),
                policy_id: ids::policy_id(),
                arn: arn::policy(&self.settings.account_id, &path, policy_name),
                path: path.clone(),
                description: description.to_string(),
                create_date: now,
                update_date: now,
                default_version_id: "v1".into(),
                versions: vec![PolicyVersion {
                    version_id: "v1".into(),
                    document: document.to_string(),
                    create_date: now,
                }],
                next_version: 2,
                attachment_count: 0,
                permissions_boundary_usage_count: 0,
                tags: tags.to_vec(),
            };
            self.commit(Txn::new().require_absent(&key).put(&key, encode(&policy)?)).await?;
            Ok(policy)
        })
        .await
    }

    pub(super) fn validate_managed_document(&self, document: &str) -> Result<()> {
        PolicyDocument::parse_managed(document)?;
        let quota = self.settings.limits.managed_policy_size;
        if policy_size(document) > quota {
            return Err(Error::limit_exceeded(format!("Cannot exceed quota for PolicySize: {quota}")));
        }
        Ok(())
    }

    pub async fn get_policy(&self, policy_arn: &str) -> Result<PolicyView> {
        if let Some(p) = managed::by_arn(policy_arn) {
            return self.aws_policy_view(p).await;
        }
        let (record, _) =
            self.customer_policy(policy_arn).await?.ok_or_else(|| policy_not_found(policy_arn))?;
        Ok(PolicyView { record, aws_managed: false })
    }

    /// ListPolicies. `usage` is PolicyUsageFilter: "PermissionsPolicy" keeps the policies
    /// attached to some entity, "PermissionsBoundary" those some entity has as its boundary.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_policies(
        &self,
        scope: PolicyScope,
        only_attached: bool,
        usage: &str,
        path_prefix: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<PolicyView>> {
        let max = validate::max_items(max_items)?;
        let prefix = validate::path_prefix(path_prefix)?;
        let (as_permissions, as_boundary) = usage_filter(usage)?.unwrap_or((false, false));
        let kept = |path: &str, attachments: i32, boundaries: i32| {
            path.starts_with(prefix)
                && (!(only_attached || as_permissions) || attachments > 0)
                && (!as_boundary || boundaries > 0)
        };
        // What is listed, made into views only once paged: an AWS managed policy's view
        // copies its document, and a page holds at most `max` of 1,594.
        enum Listed<'u> {
            Aws(&'static AwsManagedPolicy, Option<&'u PolicyUse>),
            Local(Box<ManagedPolicy>),
        }
        let uses = match scope {
            PolicyScope::Local => HashMap::new(),
            _ => self.aws_policy_uses().await?,
        };
        let mut all: Vec<Listed<'_>> = Vec::new();
        if scope != PolicyScope::Local {
            for p in managed::all() {
                let u = uses.get(&p.policy_name);
                let (attachments, boundaries) =
                    u.map_or((0, 0), |u| (u.attachment_count, u.permissions_boundary_usage_count));
                if kept(&p.path, attachments, boundaries) {
                    all.push(Listed::Aws(p, u));
                }
            }
        }
        if scope != PolicyScope::Aws {
            for (record, _) in self.records::<ManagedPolicy>(keys::POLICIES).await? {
                if kept(&record.path, record.attachment_count, record.permissions_boundary_usage_count) {
                    all.push(Listed::Local(Box::new(record)));
                }
            }
        }
        Ok(page_vec(all, marker, max)?.map(|listed| match listed {
            Listed::Aws(p, u) => aws_policy_with_use(p, u),
            Listed::Local(record) => PolicyView { record: *record, aws_managed: false },
        }))
    }

    pub async fn delete_policy(&self, policy_arn: &str) -> Result<()> {
        if managed::by_arn(policy_arn).is_some() {
            return Err(Error::invalid_input(format!(
                "{policy_arn} is an AWS managed policy and cannot be deleted."
            )));
        }
        retrying(|| async {
            let (policy, rev) = self.customer_policy(policy_arn).await?.ok_or_else(|| policy_not_found(policy_arn))?;
            if policy.attachment_count > 0 || policy.permissions_boundary_usage_count > 0 {
                return Err(Error::delete_conflict("Cannot delete a policy attached to entities."));
            }
            if policy.versions.len() > 1 {
                return Err(Error::delete_conflict(
                    "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.",
                ));
            }
            let key = keys::policy(&policy.policy_name);
            self.commit(Txn::new().require_revision(&key, rev).delete(key)).await.map(drop)
        })
        .await
    }

    pub async fn create_policy_version(
        &self,
        policy_arn: &str,
        document: &str,
        set_as_default: bool,
    ) -> Result<PolicyVersion> {
        self.validate_managed_document(document)?;
        self.customer_write(policy_arn, |policy, now, limits| {
            if policy.versions.len() >= limits.policy_versions {
                return Err(Error::limit_exceeded(format!(
                    "A managed policy can have up to {} versions. Before you create a new version, you must delete an existing version.",
                    limits.policy_versions
                )));
            }
            let version = PolicyVersion {
                version_id: format!("v{}", policy.next_version),
                document: document.to_string(),
                create_date: now,
            };
            policy.next_version += 1;
            policy.versions.push(version.clone());
            if set_as_default {
                policy.default_version_id.clone_from(&version.version_id);
            }
            policy.update_date = now;
            Ok(version)
        })
        .await
    }

    /// Every version of a managed policy, oldest first, each with whether it is the default:
    /// an AWS managed policy's from the shipped data, a customer's from its record. An AWS
    /// managed policy's versions carry their document only where `document_of` names them
    /// (its older ones are read from the versions' file).
    async fn versions_of(
        &self,
        policy_arn: &str,
        document_of: Option<&str>,
    ) -> Result<Vec<(PolicyVersion, bool)>> {
        if let Some(p) = managed::by_arn(policy_arn) {
            let version = |v: &managed::AwsPolicyVersion| PolicyVersion {
                version_id: v.version_id.clone(),
                document: if document_of == Some(v.version_id.as_str()) {
                    p.document_of(&v.version_id).unwrap_or_default().to_string()
                } else {
                    String::new()
                },
                create_date: parse_iso(&v.create_date),
            };
            return Ok(p
                .versions
                .iter()
                .map(|v| (version(v), v.version_id == p.default_version_id))
                .collect());
        }
        let view = self.get_policy(policy_arn).await?;
        let default = view.record.default_version_id;
        Ok(view
            .record
            .versions
            .into_iter()
            .map(|v| {
                let is_default = v.version_id == default;
                (v, is_default)
            })
            .collect())
    }

    pub async fn get_policy_version(
        &self,
        policy_arn: &str,
        version_id: &str,
    ) -> Result<(PolicyVersion, bool)> {
        let versions = self.versions_of(policy_arn, Some(version_id)).await?;
        versions.into_iter().find(|(v, _)| v.version_id == version_id).ok_or_else(|| {
            Error::no_such_entity(format!(
                "Policy {policy_arn} version {version_id} does not exist or is not attachable."
            ))
        })
    }

    pub async fn list_policy_versions(
        &self,
        policy_arn: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<(PolicyVersion, bool)>> {
        let max = validate::max_items(max_items)?;
        let mut versions = self.versions_of(policy_arn, None).await?;
        versions.reverse(); // newest first, as AWS lists them
        page_vec(versions, marker, max)
    }

    pub async fn set_default_policy_version(&self, policy_arn: &str, version_id: &str) -> Result<()> {
        self.customer_write(policy_arn, |policy, now, _| {
            if !policy.versions.iter().any(|v| v.version_id == version_id) {
                return Err(Error::no_such_entity(format!(
                    "Policy {policy_arn} version {version_id} does not exist or is not attachable."
                )));
            }
            policy.default_version_id = version_id.to_string();
            policy.update_date = now;
            Ok(())
        })
        .await
    }

    pub async fn delete_policy_version(&self, policy_arn: &str, version_id: &str) -> Result<()> {
        self.customer_write(policy_arn, |policy, _, _| {
            if policy.default_version_id == version_id {
                return Err(Error::delete_conflict("Cannot delete the default version of a policy."));
            }
            let before = policy.versions.len();
            policy.versions.retain(|v| v.version_id != version_id);
            if policy.versions.len() == before {
                return Err(Error::no_such_entity(format!(
                    "Policy {policy_arn} version {version_id} does not exist or is not attachable."
                )));
            }
            Ok(())
        })
        .await
    }

    /// Read-modify-write of a customer managed policy.
    pub(super) async fn customer_write<T>(
        &self,
        policy_arn: &str,
        change: impl Fn(&mut ManagedPolicy, i64, &Limits) -> Result<T>,
    ) -> Result<T> {
        if managed::by_arn(policy_arn).is_some() {
            return Err(Error::invalid_input(format!(
                "{policy_arn} is an AWS managed policy and cannot be changed."
            )));
        }
        retrying(|| async {
            let (mut policy, rev) =
                self.customer_policy(policy_arn).await?.ok_or_else(|| policy_not_found(policy_arn))?;
            let out = change(&mut policy, self.now(), &self.settings.limits)?;
            let key = keys::policy(&policy.policy_name);
            self.rewrite(&key, rev, &policy).await?;
            Ok(out)
        })
        .await
    }

    // --- instance profiles ---
}
