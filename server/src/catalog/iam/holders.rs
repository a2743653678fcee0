//! What roles, users and groups have in common: inline and attached managed policies (and,
//! for roles and users, a permissions boundary and tags), generic over [`PolicyHolder`]
//! (what holds policies, not what kind of principal: groups are none, and no call tags one
//! or gives it a boundary). Callers name the holder by its type:
//! `catalog.attach_policy::<Role>(name, arn)`.

use super::*;

impl Catalog {
    pub(super) async fn holder<P: PolicyHolder>(&self, name: &str) -> Result<(P, u64)> {
        P::KIND.validate_name(name)?;
        self.load::<P>(&P::KIND.key(name)).await?.ok_or_else(|| P::KIND.not_found(name))
    }

    pub async fn put_inline_policy<P: PolicyHolder>(
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

    pub async fn get_inline_policy<P: PolicyHolder>(&self, name: &str, policy_name: &str) -> Result<String> {
        let (mut holder, _) = self.holder::<P>(name).await?;
        holder.inline().get(policy_name).cloned().ok_or_else(|| P::KIND.inline_policy_not_found(policy_name))
    }

    pub async fn delete_inline_policy<P: PolicyHolder>(&self, name: &str, policy_name: &str) -> Result<()> {
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

    pub async fn attach_policy<P: PolicyHolder>(&self, name: &str, policy_arn: &str) -> Result<()> {
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

    pub async fn detach_policy<P: PolicyHolder>(&self, name: &str, policy_arn: &str) -> Result<()> {
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

    pub async fn set_permissions_boundary<P: PolicyHolder>(
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

    pub async fn tag_holder<P: PolicyHolder>(&self, name: &str, tags: &[Tag]) -> Result<()> {
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

    /// Deletes `name` once nothing is in the way: first what `in_the_way` finds of its own
    /// kind (a role's instance profiles, a user's access keys), then its inline and attached
    /// policies. Its boundary's usage count is released in the same commit.
    pub(super) async fn delete_holder<P: PolicyHolder>(
        &self,
        name: &str,
        in_the_way: impl Fn(&P) -> Option<Error>,
    ) -> Result<()> {
        retrying(|| async {
            let (mut holder, rev) = self.holder::<P>(name).await?;
            if let Some(e) = in_the_way(&holder) {
                return Err(e);
            }
            if !holder.inline().is_empty() {
                return Err(Error::delete_conflict("Cannot delete entity, must delete policies first."));
            }
            if !holder.attached().is_empty() {
                return Err(Error::delete_conflict("Cannot delete entity, must detach all policies first."));
            }
            let key = P::KIND.key(name);
            let mut txn = Txn::new().require_revision(&key, rev).delete(&key);
            if let Some(b) = holder.boundary().as_deref() {
                txn = self.release_use(txn, b, 0, -1).await?;
            }
            self.commit(txn).await.map(drop)
        })
        .await
    }

    pub async fn untag_holder<P: PolicyHolder>(&self, name: &str, tag_keys: &[String]) -> Result<()> {
        too_many("tagKeys", tag_keys.len())?;
        retrying(|| async {
            let (mut holder, rev) = self.holder::<P>(name).await?;
            holder.tags().retain(|t| !tag_keys.contains(&t.key));
            let key = P::KIND.key(name);
            self.rewrite(&key, rev, &holder).await
        })
        .await
    }

    /// The names of `name`'s inline policies.
    pub async fn list_inline_policies<P: PolicyHolder>(
        &self,
        name: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<String>> {
        let max = validate::max_items(max_items)?;
        let (mut holder, _) = self.holder::<P>(name).await?;
        let names = std::mem::take(holder.inline()).into_keys().collect();
        page_vec(names, marker, max)
    }

    /// (policy name, policy arn) of each managed policy attached to `name` under
    /// `path_prefix`.
    pub async fn list_attached_policies<P: PolicyHolder>(
        &self,
        name: &str,
        path_prefix: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<(String, String)>> {
        let max = validate::max_items(max_items)?;
        let prefix = validate::path_prefix(path_prefix)?;
        let (mut holder, _) = self.holder::<P>(name).await?;
        let listed = std::mem::take(holder.attached())
            .into_iter()
            .filter_map(|a| {
                let (_, path, policy_name) = arn::parse_policy(&a)?;
                path.starts_with(prefix).then(|| (policy_name.to_string(), a.clone()))
            })
            .collect();
        page_vec(listed, marker, max)
    }
}
