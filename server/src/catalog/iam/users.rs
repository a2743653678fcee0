//! Users and their long-lived access keys.

use super::*;

impl Catalog {
    pub async fn create_user(&self, name: &str, path: &str, boundary: &str, tags: &[Tag]) -> Result<User> {
        validate::user_name(name)?;
        let path = validate::path(path)?;
        validate_tags(tags)?;
        let boundary = (!boundary.is_empty()).then(|| boundary.to_string());
        let key = keys::user(name);
        retrying(|| async {
            if self.load::<User>(&key).await?.is_some() {
                return Err(Error::already_exists(format!("User with name {name} already exists.")));
            }
            let user = User {
                user_name: name.to_string(),
                user_id: ids::user_id(),
                path: path.clone(),
                arn: arn::user(&self.settings.account_id, &path, name),
                create_date: self.now(),
                permissions_boundary: boundary.clone(),
                tags: tags.to_vec(),
                inline_policies: BTreeMap::new(),
                attached_policies: vec![],
                access_keys: vec![],
                groups: vec![],
            };
            let mut txn = Txn::new().require_absent(&key).put(&key, encode(&user)?);
            if let Some(b) = &boundary {
                txn = self.count_use(txn, b, 0, 1).await?;
            }
            self.commit(txn).await?;
            Ok(user)
        })
        .await
    }

    pub async fn get_user(&self, name: &str) -> Result<User> {
        Ok(self.holder::<User>(name).await?.0)
    }

    pub async fn list_users(
        &self,
        path_prefix: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<User>> {
        let max = validate::max_items(max_items)?;
        let prefix = validate::path_prefix(path_prefix)?;
        self.page_records(keys::USERS, marker, max, |u: &User| u.path.starts_with(prefix)).await
    }

    pub async fn delete_user(&self, name: &str) -> Result<()> {
        self.delete_holder::<User>(name, |user| {
            if !user.groups.is_empty() {
                return Some(Error::delete_conflict(
                    "Cannot delete entity, must remove user from all groups first.",
                ));
            }
            (!user.access_keys.is_empty())
                .then(|| Error::delete_conflict("Cannot delete entity, must delete access keys first."))
        })
        .await
    }

    /// A new long-term access key: the one time its secret is returned.
    pub async fn create_access_key(&self, user_name: &str) -> Result<AccessKey> {
        retrying(|| async {
            let (mut user, rev) = self.holder::<User>(user_name).await?;
            let quota = self.settings.limits.access_keys_per_user;
            if user.access_keys.len() >= quota {
                return Err(Error::limit_exceeded(format!(
                    "Cannot exceed quota for AccessKeysPerUser: {quota}"
                )));
            }
            let key = AccessKey {
                access_key_id: ids::long_term_access_key_id(),
                secret_access_key: Secret(ids::secret_access_key()),
                status: AccessKeyStatus::Active,
                create_date: self.now(),
            };
            user.access_keys.push(key.clone());
            let ukey = keys::user(user_name);
            let akey = keys::access_key(&key.access_key_id);
            let txn = Txn::new()
                .require_revision(&ukey, rev)
                .require_absent(&akey)
                .put(ukey, encode(&user)?)
                .put(akey, encode(&user.user_name)?);
            self.commit(txn).await?;
            Ok(key)
        })
        .await
    }

    pub async fn list_access_keys(
        &self,
        user_name: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<AccessKey>> {
        let max = validate::max_items(max_items)?;
        let (user, _) = self.holder::<User>(user_name).await?;
        page_vec(user.access_keys, marker, max)
    }

    pub async fn update_access_key(&self, user_name: &str, access_key_id: &str, status: &str) -> Result<()> {
        let status = match status {
            "Active" => AccessKeyStatus::Active,
            "Inactive" => AccessKeyStatus::Inactive,
            other => return Err(validate::not_in_enum("status", other, &["Active", "Inactive"])),
        };
        retrying(|| async {
            let (mut user, rev) = self.holder::<User>(user_name).await?;
            let key = user
                .access_keys
                .iter_mut()
                .find(|k| k.access_key_id == access_key_id)
                .ok_or_else(|| access_key_not_found(access_key_id))?;
            key.status = status;
            let ukey = keys::user(user_name);
            self.rewrite(&ukey, rev, &user).await
        })
        .await
    }

    pub async fn delete_access_key(&self, user_name: &str, access_key_id: &str) -> Result<()> {
        retrying(|| async {
            let (mut user, rev) = self.holder::<User>(user_name).await?;
            let before = user.access_keys.len();
            user.access_keys.retain(|k| k.access_key_id != access_key_id);
            if user.access_keys.len() == before {
                return Err(access_key_not_found(access_key_id));
            }
            let ukey = keys::user(user_name);
            let txn = Txn::new()
                .require_revision(&ukey, rev)
                .put(ukey, encode(&user)?)
                .delete(keys::access_key(access_key_id))
                .delete(keys::key_use(access_key_id));
            self.forget_key_use(access_key_id);
            self.commit(txn).await.map(drop)
        })
        .await
    }
}
