//! Instance profiles and the one role each holds.

use super::*;

impl Catalog {
    pub async fn create_instance_profile(
        &self,
        name: &str,
        path: &str,
        tags: &[Tag],
    ) -> Result<InstanceProfile> {
        validate::instance_profile_name(name)?;
        let path = validate::path(path)?;
        validate_tags(tags)?;
        let key = keys::instance_profile(name);
        retrying(|| async {
            if self.load::<InstanceProfile>(&key).await?.is_some() {
                return Err(Error::already_exists(format!("Instance Profile {name} already exists.")));
            }
            let profile = InstanceProfile {
                instance_profile_name: name.to_string(),
                instance_profile_id: ids::instance_profile_id(),
                path: path.clone(),
                arn: arn::instance_profile(&self.settings.account_id, &path, name),
                create_date: self.now(),
                roles: vec![],
                tags: tags.to_vec(),
            };
            self.commit(Txn::new().require_absent(&key).put(&key, encode(&profile)?)).await?;
            Ok(profile)
        })
        .await
    }

    pub(super) async fn profile(&self, name: &str) -> Result<(InstanceProfile, u64)> {
        validate::instance_profile_name(name)?;
        self.load::<InstanceProfile>(&keys::instance_profile(name))
            .await?
            .ok_or_else(|| Error::no_such_entity(format!("Instance Profile {name} cannot be found.")))
    }

    /// A profile and the roles it holds.
    pub async fn get_instance_profile(&self, name: &str) -> Result<(InstanceProfile, Vec<Role>)> {
        let (profile, _) = self.profile(name).await?;
        let roles = self.roles_of(&profile).await?;
        Ok((profile, roles))
    }

    pub(super) async fn roles_of(&self, profile: &InstanceProfile) -> Result<Vec<Role>> {
        let mut roles = Vec::with_capacity(profile.roles.len());
        for r in &profile.roles {
            if let Some((role, _)) = self.load::<Role>(&keys::role(r)).await? {
                roles.push(role);
            }
        }
        Ok(roles)
    }

    pub async fn list_instance_profiles(
        &self,
        path_prefix: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<(InstanceProfile, Vec<Role>)>> {
        let max = validate::max_items(max_items)?;
        let prefix = validate::path_prefix(path_prefix)?;
        let page = self
            .page_records(keys::INSTANCE_PROFILES, marker, max, |p: &InstanceProfile| {
                p.path.starts_with(prefix)
            })
            .await?;
        let mut items = Vec::with_capacity(page.items.len());
        for p in page.items {
            let roles = self.roles_of(&p).await?;
            items.push((p, roles));
        }
        Ok(Page { items, next_marker: page.next_marker })
    }

    pub async fn list_instance_profiles_for_role(
        &self,
        role_name: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<(InstanceProfile, Vec<Role>)>> {
        let max = validate::max_items(max_items)?;
        let (role, _) = self.holder::<Role>(role_name).await?;
        let mut items = Vec::new();
        for name in &role.instance_profiles {
            if let Some((p, _)) = self.load::<InstanceProfile>(&keys::instance_profile(name)).await? {
                let roles = self.roles_of(&p).await?;
                items.push((p, roles));
            }
        }
        page_vec(items, marker, max)
    }

    pub async fn delete_instance_profile(&self, name: &str) -> Result<()> {
        retrying(|| async {
            let (profile, rev) = self.profile(name).await?;
            if !profile.roles.is_empty() {
                return Err(Error::delete_conflict(
                    "Cannot delete entity, must remove roles from instance profile first.",
                ));
            }
            let key = keys::instance_profile(name);
            self.commit(Txn::new().require_revision(&key, rev).delete(key)).await.map(drop)
        })
        .await
    }

    pub async fn add_role_to_instance_profile(&self, profile_name: &str, role_name: &str) -> Result<()> {
        retrying(|| async {
            let (mut profile, prev) = self.profile(profile_name).await?;
            let (mut role, rrev) = self.holder::<Role>(role_name).await?;
            let quota = self.settings.limits.roles_per_instance_profile;
            if profile.roles.iter().any(|r| r.eq_ignore_ascii_case(role_name)) {
                return Err(Error::limit_exceeded(format!(
                    "Cannot exceed quota for InstanceSessionsPerInstanceProfile: {quota}"
                )));
            }
            if profile.roles.len() >= quota {
                return Err(Error::limit_exceeded(format!(
                    "Cannot exceed quota for InstanceSessionsPerInstanceProfile: {quota}"
                )));
            }
            profile.roles.push(role.role_name.clone());
            role.instance_profiles.push(profile.instance_profile_name.clone());
            let pkey = keys::instance_profile(profile_name);
            let rkey = keys::role(role_name);
            let txn = Txn::new()
                .require_revision(&pkey, prev)
                .require_revision(&rkey, rrev)
                .put(pkey, encode(&profile)?)
                .put(rkey, encode(&role)?);
            self.commit(txn).await.map(drop)
        })
        .await
    }

    pub async fn remove_role_from_instance_profile(&self, profile_name: &str, role_name: &str) -> Result<()> {
        retrying(|| async {
            let (mut profile, prev) = self.profile(profile_name).await?;
            let before = profile.roles.len();
            profile.roles.retain(|r| !r.eq_ignore_ascii_case(role_name));
            if profile.roles.len() == before {
                return Err(Error::no_such_entity(format!(
                    "The role with name {role_name} cannot be found in instance profile {profile_name}."
                )));
            }
            let pkey = keys::instance_profile(profile_name);
            let mut txn = Txn::new().require_revision(&pkey, prev).put(pkey, encode(&profile)?);
            if let Some((mut role, rrev)) = self.load::<Role>(&keys::role(role_name)).await? {
                role.instance_profiles.retain(|p| !p.eq_ignore_ascii_case(profile_name));
                let rkey = keys::role(role_name);
                txn = txn.require_revision(&rkey, rrev).put(rkey, encode(&role)?);
            }
            self.commit(txn).await.map(drop)
        })
        .await
    }

    // --- users and access keys ---
}
