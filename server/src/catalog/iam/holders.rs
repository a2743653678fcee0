//! What roles and users have in common: inline and attached managed policies, a permissions
//! boundary and tags, generic over [`PolicyHolder`].

use super::*;

impl Catalog {
    pub(super) async fn holder<P: PolicyHolder>(&self, name: &str) -> Result<(P, u64)> {
        P::KIND.validate_name(name)?;
        self.load::<P>(&P::KIND.key(name)).await?.ok_or_else(|| P::KIND.not_found(name))
    }

    pub(super) async fn put_inline<P: PolicyHolder>(
        &self,
        name: &str,
        policy_name: &str,
        document: &str,
    ) -> Result<()> {
        validate::policy_name(policy_name)?;
        PolicyDocument::parse(document, PolicyType::Identity)?;
        retrying(|| async {
            let (mut holder, rev) = self.holder::<P>(name).await?;
            holder.inline().insert(policy_name.to_string(), document.to_string());
            let total: usize = holder.inline().values().map(|d| policy_size(d)).sum();
            let quota = P::KIND.inline_quota(&self.settings.limits);
            if total > quota {
                return Err(Error::limit_exceeded(format!(
                    "Maximum policy size of {quota} bytes exceeded for {} {name}",
                    P::KIND.noun()
                )));
            }
            let key = P::KIND.key(name);
            self.rewrite(&key, rev, &holder).await
        })
        .await
    }

    pub(super) async fn get_inline<P: PolicyHolder>(&self, name: &str, policy_name: &str) -> Result<String> {
        let (mut holder, _) = self.holder::<P>(name).await?;
        holder.inline().get(policy_name).cloned().ok_or_else(|| P::KIND.inline_policy_not_found(policy_name))
    }

    pub(super) async fn delete_inline<P: PolicyHolder>(&self, name: &str, policy_name: &str) -> Result<()> {
        retrying(|| async {
            let (mut holder, rev) = self.holder::<P>(name).await?;
            if holder.inline().remove(policy_name).is_none() {
                return Err(P::KIND.inline_policy_not_found(policy_name));
            }
            let key = P::KIND.key(name);
            self.rewrite(&key, rev, &holder).await
        })
        .await
    }

    pub(super) async fn attach<P: PolicyHolder>(&self, name: &str, policy_arn: &str) -> Result<()> {
        retrying(|| async {
            let (mut holder, rev) = self.holder::<P>(name).await?;
            self.require_policy(policy_arn).await?;
            if holder.attached().iter().any(|a| a == policy_arn) {
                return Ok(());
            }
            let (quota, quota_name) = P::KIND.attach_quota(&self.settings.limits);
            if holder.attached().len() >= quota {
                return Err(Error::limit_exceeded(format!("Cannot exceed quota for {quota_name}: {quota}")));
            }
            holder.attached().push(policy_arn.to_string());
            let key = P::KIND.key(name);
            let txn = Txn::new().require_revision(&key, rev).put(key, encode(&holder)?);
            let txn = self.count_use(txn, policy_arn, 1, 0).await?;
            self.commit(txn).await.map(drop)
        })
        .await
    }

    pub(super) async fn detach<P: PolicyHolder>(&self, name: &str, policy_arn: &str) -> Result<()> {
        retrying(|| async {
            let (mut holder, rev) = self.holder::<P>(name).await?;
            let before = holder.attached().len();
            holder.attached().retain(|a| a != policy_arn);
            if holder.attached().len() == before {
                return Err(Error::no_such_entity(format!("Policy {policy_arn} was not found.")));
            }
            let key = P::KIND.key(name);
            let txn = Txn::new().require_revision(&key, rev).put(key, encode(&holder)?);
            let txn = self.release_use(txn, policy_arn, -1, 0).await?;
            self.commit(txn).await.map(drop)
        })
        .await
    }

    pub(super) async fn set_boundary<P: PolicyHolder>(
        &self,
        name: &str,
        policy_arn: Option<&str>,
    ) -> Result<()> {
        retrying(|| async {
            let (mut holder, rev) = self.holder::<P>(name).await?;
            if let Some(a) = policy_arn {
                self.require_policy(a).await?;
            }
            let old = holder.boundary().clone();
            if old.as_deref() == policy_arn {
                return Ok(());
            }
            *holder.boundary() = policy_arn.map(str::to_string);
            let key = P::KIND.key(name);
            let mut txn = Txn::new().require_revision(&key, rev).put(key, encode(&holder)?);
            if let Some(old) = &old {
                txn = self.release_use(txn, old, 0, -1).await?;
            }
            if let Some(new) = policy_arn {
                txn = self.count_use(txn, new, 0, 1).await?;
            }
            self.commit(txn).await.map(drop)
        })
        .await
    }

    pub(super) async fn tag<P: PolicyHolder>(&self, name: &str, tags: &[Tag]) -> Result<()> {
        validate_tags(tags)?;
        retrying(|| async {
            let (mut holder, rev) = self.holder::<P>(name).await?;
            for t in tags {
                match holder.tags().iter_mut().find(|e| e.key == t.key) {
                    Some(existing) => existing.value.clone_from(&t.value),
                    None => holder.tags().push(t.clone()),
                }
            }
            let quota = self.settings.limits.tags_per_entity;
            if holder.tags().len() > quota {
                let noun = if P::KIND == HolderKind::Role { "TagsPerRole" } else { "TagsPerUser" };
                return Err(Error::limit_exceeded(format!("Cannot exceed quota for {noun}: {quota}")));
            }
            let key = P::KIND.key(name);
            self.rewrite(&key, rev, &holder).await
        })
        .await
    }

    pub(super) async fn untag<P: PolicyHolder>(&self, name: &str, tag_keys: &[String]) -> Result<()> {
        too_many("tagKeys", tag_keys.len())?;
        retrying(|| async {
            let (mut holder, rev) = self.holder::<P>(name).await?;
            holder.tags().retain(|t| !tag_keys.contains(&t.key));
            let key = P::KIND.key(name);
            self.rewrite(&key, rev, &holder).await
        })
        .await
    }

    // --- the public face of the shared operations ---

    pub async fn put_principal_policy(
        &self,
        kind: HolderKind,
        name: &str,
        policy: &str,
        doc: &str,
    ) -> Result<()> {
        match kind {
            HolderKind::Role => self.put_inline::<Role>(name, policy, doc).await,
            HolderKind::User => self.put_inline::<User>(name, policy, doc).await,
        }
    }

    pub async fn get_principal_policy(&self, kind: HolderKind, name: &str, policy: &str) -> Result<String> {
        match kind {
            HolderKind::Role => self.get_inline::<Role>(name, policy).await,
            HolderKind::User => self.get_inline::<User>(name, policy).await,
        }
    }

    pub async fn delete_principal_policy(&self, kind: HolderKind, name: &str, policy: &str) -> Result<()> {
        match kind {
            HolderKind::Role => self.delete_inline::<Role>(name, policy).await,
            HolderKind::User => self.delete_inline::<User>(name, policy).await,
        }
    }

    pub async fn list_principal_policies(
        &self,
        kind: HolderKind,
        name: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<String>> {
        let max = validate::max_items(max_items)?;
        let names: Vec<String> = match kind {
            HolderKind::Role => self.holder::<Role>(name).await?.0.inline_policies.into_keys().collect(),
            HolderKind::User => self.holder::<User>(name).await?.0.inline_policies.into_keys().collect(),
        };
        page_vec(names, marker, max)
    }

    pub async fn attach_principal_policy(
        &self,
        kind: HolderKind,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        match kind {
            HolderKind::Role => self.attach::<Role>(name, policy_arn).await,
            HolderKind::User => self.attach::<User>(name, policy_arn).await,
        }
    }

    pub async fn detach_principal_policy(
        &self,
        kind: HolderKind,
        name: &str,
        policy_arn: &str,
    ) -> Result<()> {
        match kind {
            HolderKind::Role => self.detach::<Role>(name, policy_arn).await,
            HolderKind::User => self.detach::<User>(name, policy_arn).await,
        }
    }

    /// (policy name, policy arn) of each attached managed policy under `path_prefix`.
    pub async fn list_attached_principal_policies(
        &self,
        kind: HolderKind,
        name: &str,
        path_prefix: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<(String, String)>> {
        let max = validate::max_items(max_items)?;
        let prefix = validate::path_prefix(path_prefix)?;
        let arns = match kind {
            HolderKind::Role => self.holder::<Role>(name).await?.0.attached_policies,
            HolderKind::User => self.holder::<User>(name).await?.0.attached_policies,
        };
        let listed = arns
            .into_iter()
            .filter_map(|a| {
                let (_, path, policy_name) = arn::parse_policy(&a)?;
                path.starts_with(prefix).then(|| (policy_name.to_string(), a.clone()))
            })
            .collect();
        page_vec(listed, marker, max)
    }

    pub async fn put_principal_boundary(
        &self,
        kind: HolderKind,
        name: &str,
        policy_arn: Option<&str>,
    ) -> Result<()> {
        match kind {
            HolderKind::Role => self.set_boundary::<Role>(name, policy_arn).await,
            HolderKind::User => self.set_boundary::<User>(name, policy_arn).await,
        }
    }

    pub async fn tag_principal(&self, kind: HolderKind, name: &str, tags: &[Tag]) -> Result<()> {
        match kind {
            HolderKind::Role => self.tag::<Role>(name, tags).await,
            HolderKind::User => self.tag::<User>(name, tags).await,
        }
    }

    pub async fn untag_principal(&self, kind: HolderKind, name: &str, tag_keys: &[String]) -> Result<()> {
        match kind {
            HolderKind::Role => self.untag::<Role>(name, tag_keys).await,
            HolderKind::User => self.untag::<User>(name, tag_keys).await,
        }
    }

    // --- roles ---
}
