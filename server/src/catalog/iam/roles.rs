//! Roles: created with a trust policy, updated, deleted; their sessions revoked.

use super::*;

impl Catalog {
    pub async fn create_role(&self, new: NewRole) -> Result<Role> {
        validate::role_name(&new.role_name)?;
        let path = validate::path(&new.path)?;
        validate::description(&new.description)?;
        let max_session_duration = new.max_session_duration.unwrap_or(3600);
        validate::max_session_duration(max_session_duration)?;
        validate_tags(&new.tags)?;
        self.validate_trust_policy(&new.assume_role_policy_document).await?;
        let boundary = (!new.permissions_boundary.is_empty()).then(|| new.permissions_boundary.clone());
        let key = keys::role(&new.role_name);
        retrying(|| async {
            if self.load::<Role>(&key).await?.is_some() {
                return Err(Error::already_exists(format!(
                    "Role with name {} already exists.",
                    new.role_name
                )));
            }
            let role = Role {
                role_name: new.role_name.clone(),
                role_id: ids::role_id(),
                path: path.clone(),
                arn: arn::role(&self.settings.account_id, &path, &new.role_name),
                create_date: self.now(),
                assume_role_policy_document: new.assume_role_policy_document.clone(),
                description: new.description.clone(),
                max_session_duration,
                permissions_boundary: boundary.clone(),
                tags: new.tags.clone(),
                inline_policies: BTreeMap::new(),
                attached_policies: vec![],
                instance_profiles: vec![],
                trust_policy: std::sync::OnceLock::new(),
                sessions_revoked: std::sync::OnceLock::new(),
            };
            let mut txn = Txn::new().require_absent(&key).put(&key, encode(&role)?);
            if let Some(b) = &boundary {
                txn = self.count_use(txn, b, 0, 1).await?;
            }
            self.commit(txn).await?;
            Ok(role)
        })
        .await
    }

    /// A trust policy as IAM takes it: its grammar, its size, and every user and role of
    /// this account it names existing, with that ARN (IAM answers "Invalid principal in
    /// policy" for a principal that does not exist, or no longer does: Knowledge Center,
    /// "How do I resolve the IAM trust policy error 'Invalid principal in policy'?").
    pub(super) async fn validate_trust_policy(&self, document: &str) -> Result<()> {
        let trust = PolicyDocument::parse(document, PolicyType::Trust)?;
        let quota = self.settings.limits.trust_policy_size;
        if policy_size(document) > quota {
            return Err(Error::limit_exceeded(format!("Cannot exceed quota for ACLSizePerRole: {quota}")));
        }
        let own = format!("arn:aws:iam::{}:", self.account_id());
        let named = trust.statements.iter().filter_map(|s| s.principal.as_ref()).flat_map(|p| &p.aws);
        for arn in named {
            let Some(resource) = arn.strip_prefix(&own) else { continue };
            let (kind, name) = match resource.split_once('/') {
                Some(("user", path)) => (EntityKind::User, path.rsplit('/').next().unwrap_or_default()),
                Some(("role", path)) => (EntityKind::Role, path.rsplit('/').next().unwrap_or_default()),
                _ => continue,
            };
            if self.entity_arn(kind, name).await?.as_deref() != Some(arn.as_str()) {
                return Err(Error::malformed_policy(format!(
                    r#"Invalid principal in policy: "AWS":"{arn}""#
                )));
            }
        }
        Ok(())
    }

    pub async fn get_role(&self, name: &str) -> Result<Role> {
        Ok(self.holder::<Role>(name).await?.0)
    }

    pub async fn list_roles(
        &self,
        path_prefix: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<Role>> {
        let max = validate::max_items(max_items)?;
        let prefix = validate::path_prefix(path_prefix)?;
        self.page_records(keys::ROLES, marker, max, |r: &Role| r.path.starts_with(prefix)).await
    }

    pub async fn update_role(
        &self,
        name: &str,
        description: Option<&str>,
        max_session_duration: Option<i32>,
    ) -> Result<()> {
        if let Some(d) = description {
            validate::description(d)?;
        }
        if let Some(m) = max_session_duration {
            validate::max_session_duration(m)?;
        }
        retrying(|| async {
            let (mut role, rev) = self.holder::<Role>(name).await?;
            if let Some(d) = description {
                role.description = d.to_string();
            }
            if let Some(m) = max_session_duration {
                role.max_session_duration = m;
            }
            let key = keys::role(name);
            self.rewrite(&key, rev, &role).await
        })
        .await
    }

    pub async fn update_assume_role_policy(&self, name: &str, document: &str) -> Result<()> {
        self.validate_trust_policy(document).await?;
        retrying(|| async {
            let (mut role, rev) = self.holder::<Role>(name).await?;
            role.assume_role_policy_document = document.to_string();
            let key = keys::role(name);
            self.rewrite(&key, rev, &role).await
        })
        .await
    }

    pub async fn delete_role(&self, name: &str) -> Result<()> {
        self.delete_holder::<Role>(name, |role| {
            (!role.instance_profiles.is_empty()).then(|| {
                Error::delete_conflict("Cannot delete entity, must remove roles from instance profile first.")
            })
        })
        .await
    }

    // --- managed policies ---

    /// "Revoke active sessions": puts AWS's AWSRevokeOlderSessions inline policy on the role,
    /// denying everything to sessions issued before now. Returns that moment.
    pub async fn revoke_role_sessions(&self, role_name: &str) -> Result<i64> {
        let now = self.now();
        let document = policy::revoke_older_sessions(now);
        self.put_inline_policy::<Role>(role_name, policy::REVOKE_OLDER_SESSIONS, &document).await?;
        Ok(now)
    }
}
