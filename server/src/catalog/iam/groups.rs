//! Groups: created, renamed, deleted; users added and removed. A group's policies are held
//! as a role's or a user's are (holders.rs); its members hold them in every decision
//! ([`Catalog::granting_policies`]). Membership lives on the user (`User::groups`), the side
//! every decision reads; each change of it also rewrites the group, so that the group's
//! revision guards against a concurrent delete or rename.

use super::*;

/// A group and one page of its users (GetGroup).
#[derive(Clone, Debug)]
pub struct GroupWithUsers {
    pub group: Group,
    pub users: Page<User>,
}

fn member_of(user: &User, group: &str) -> bool {
    user.groups.iter().any(|g| g.eq_ignore_ascii_case(group))
}

impl Catalog {
    pub async fn create_group(&self, name: &str, path: &str) -> Result<Group> {
        validate::group_name(name)?;
        let path = validate::path(path)?;
        let key = keys::group(name);
        retrying(|| async {
            if self.load::<Group>(&key).await?.is_some() {
                return Err(Error::already_exists(format!("Group with name {name} already exists.")));
            }
            let group = Group {
                group_name: name.to_string(),
                group_id: ids::group_id(),
                path: path.clone(),
                arn: arn::group(&self.settings.account_id, &path, name),
                create_date: self.now(),
                inline_policies: BTreeMap::new(),
                attached_policies: vec![],
                member_count: 0,
                permissions_boundary: None,
                tags: vec![],
            };
            self.commit(Txn::new().require_absent(&key).put(&key, encode(&group)?)).await?;
            Ok(group)
        })
        .await
    }

    /// A group and a page of its users.
    pub async fn get_group(
        &self,
        name: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<GroupWithUsers> {
        let max = validate::max_items(max_items)?;
        let (group, _) = self.holder::<Group>(name).await?;
        let users =
            self.page_records(keys::USERS, marker, max, |u: &User| member_of(u, &group.group_name)).await?;
        Ok(GroupWithUsers { group, users })
    }

    pub async fn list_groups(
        &self,
        path_prefix: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<Group>> {
        let max = validate::max_items(max_items)?;
        let prefix = validate::path_prefix(path_prefix)?;
        self.page_records(keys::GROUPS, marker, max, |g: &Group| g.path.starts_with(prefix)).await
    }

    /// The groups a user is a member of.
    pub async fn list_groups_for_user(
        &self,
        user_name: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<Group>> {
        let max = validate::max_items(max_items)?;
        let (user, _) = self.holder::<User>(user_name).await?;
        let mut groups = Vec::new();
        for name in &user.groups {
            if let Some((group, _)) = self.load::<Group>(&keys::group(name)).await? {
                groups.push(group);
            }
        }
        page_vec(groups, marker, max)
    }

    /// UpdateGroup: a new name (its members follow) and/or a new path.
    pub async fn update_group(&self, name: &str, new_name: &str, new_path: &str) -> Result<()> {
        if !new_name.is_empty() {
            validate::group_name(new_name)?;
        }
        let new_path = (!new_path.is_empty()).then(|| validate::path(new_path)).transpose()?;
        retrying(|| async {
            let (mut group, rev) = self.holder::<Group>(name).await?;
            let old_key = keys::group(name);
            let renamed = !new_name.is_empty() && new_name != group.group_name;
            if let Some(path) = &new_path {
                group.path.clone_from(path);
            }
            if renamed {
                group.group_name = new_name.to_string();
            }
            group.arn = arn::group(&self.settings.account_id, &group.path, &group.group_name);
            let new_key = keys::group(&group.group_name);
            let mut txn = Txn::new().require_revision(&old_key, rev);
            if new_key != old_key {
                txn = txn.require_absent(&new_key).delete(&old_key);
                if self.load::<Group>(&new_key).await?.is_some() {
                    return Err(Error::already_exists(format!("Group with name {new_name} already exists.")));
                }
            }
            txn = txn.put(&new_key, encode(&group)?);
            if renamed {
                for (mut user, urev) in self.members(name).await? {
                    user.groups.retain(|g| !g.eq_ignore_ascii_case(name));
                    user.groups.push(group.group_name.clone());
                    let ukey = keys::user(&user.user_name);
                    txn = txn.require_revision(&ukey, urev).put(ukey, encode(&user)?);
                }
            }
            self.commit(txn).await.map(drop)
        })
        .await
    }

    /// Every member of a group, with its record's revision.
    async fn members(&self, group: &str) -> Result<Vec<(User, u64)>> {
        let users = self.records::<User>(keys::USERS).await?;
        Ok(users.into_iter().filter(|(u, _)| member_of(u, group)).collect())
    }

    pub async fn delete_group(&self, name: &str) -> Result<()> {
        self.delete_holder::<Group>(name, |group| {
            (group.member_count > 0)
                .then(|| Error::delete_conflict("Cannot delete entity, must remove users from group first."))
        })
        .await
    }

    pub async fn add_user_to_group(&self, group_name: &str, user_name: &str) -> Result<()> {
        retrying(|| async {
            let (mut group, grev) = self.holder::<Group>(group_name).await?;
            let (mut user, urev) = self.holder::<User>(user_name).await?;
            if member_of(&user, &group.group_name) {
                return Ok(());
            }
            let quota = self.settings.limits.groups_per_user;
            if user.groups.len() >= quota {
                return Err(Error::limit_exceeded(format!("Cannot exceed quota for GroupsPerUser: {quota}")));
            }
            user.groups.push(group.group_name.clone());
            group.member_count += 1;
            self.commit_membership(&group, grev, &user, urev).await
        })
        .await
    }

    pub async fn remove_user_from_group(&self, group_name: &str, user_name: &str) -> Result<()> {
        retrying(|| async {
            let (mut group, grev) = self.holder::<Group>(group_name).await?;
            let (mut user, urev) = self.holder::<User>(user_name).await?;
            if !member_of(&user, &group.group_name) {
                return Err(Error::no_such_entity(format!(
                    "The user with name {user_name} cannot be found in group {group_name}."
                )));
            }
            user.groups.retain(|g| !g.eq_ignore_ascii_case(&group.group_name));
            group.member_count = group.member_count.saturating_sub(1);
            self.commit_membership(&group, grev, &user, urev).await
        })
        .await
    }

    /// A change of membership: the user and the group, each at the revision it was read at.
    async fn commit_membership(&self, group: &Group, grev: u64, user: &User, urev: u64) -> Result<()> {
        let gkey = keys::group(&group.group_name);
        let ukey = keys::user(&user.user_name);
        let txn = Txn::new()
            .require_revision(&gkey, grev)
            .require_revision(&ukey, urev)
            .put(gkey, encode(group)?)
            .put(ukey, encode(user)?);
        self.commit(txn).await.map(drop)
    }
}
