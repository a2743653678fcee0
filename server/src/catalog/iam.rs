//! IAM: roles, managed policies, instance profiles, users and access keys.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{Catalog, Limits, Page, encode, keys, pages::page_vec, retrying};
use crate::{
    domain::{
        Error, Result, ids,
        ids::arn,
        managed::{self, AwsManagedPolicy},
        model::{
            AccessKey, AccessKeyStatus, InstanceProfile, ManagedPolicy, PolicyVersion, Role, Secret, Tag,
            User,
        },
        policy::{self, PolicyDocument, PolicyType, policy_size},
        validate,
    },
    store::Txn,
};

/// What holds permission policies (inline and attached managed ones): roles and users,
/// both principals. Groups, which are not principals, will be the third.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HolderKind {
    Role,
    User,
}

/// IAM entities that have an ARN by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityKind {
    Role,
    User,
    InstanceProfile,
}

/// A principal's policy documents, as [`Catalog::granting_policies`] reads them.
#[derive(Clone, Debug, Default)]
pub struct GrantingPolicies {
    /// (name, document).
    pub inline: Vec<(String, String)>,
    /// (ARN, default version's document).
    pub managed: Vec<(String, String)>,
    /// (ARN, document): a boundary whose policy is gone has an empty document, which
    /// allows nothing.
    pub boundary: Option<(String, String)>,
    pub tags: Vec<Tag>,
    /// The role's or user's unique id.
    pub id: String,
}

/// ListPolicies' Scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyScope {
    All,
    Aws,
    Local,
}

/// What roles and users have in common: inline and managed policies, a permissions
/// boundary and tags.
trait PolicyHolder: Serialize + DeserializeOwned + Send + Sync {
    const KIND: HolderKind;
    /// The unique id (AROA…/AIDA…): a same-named entity created later has another.
    fn id(&self) -> &str;
    fn inline(&mut self) -> &mut BTreeMap<String, String>;
    fn attached(&mut self) -> &mut Vec<String>;
    fn boundary(&mut self) -> &mut Option<String>;
    fn tags(&mut self) -> &mut Vec<Tag>;
}

impl PolicyHolder for Role {
    const KIND: HolderKind = HolderKind::Role;
    fn id(&self) -> &str {
        &self.role_id
    }
    fn inline(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.inline_policies
    }
    fn attached(&mut self) -> &mut Vec<String> {
        &mut self.attached_policies
    }
    fn boundary(&mut self) -> &mut Option<String> {
        &mut self.permissions_boundary
    }
    fn tags(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

impl PolicyHolder for User {
    const KIND: HolderKind = HolderKind::User;
    fn id(&self) -> &str {
        &self.user_id
    }
    fn inline(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.inline_policies
    }
    fn attached(&mut self) -> &mut Vec<String> {
        &mut self.attached_policies
    }
    fn boundary(&mut self) -> &mut Option<String> {
        &mut self.permissions_boundary
    }
    fn tags(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

// === impl HolderKind ===

impl HolderKind {
    fn noun(self) -> &'static str {
        match self {
            Self::Role => "role",
            Self::User => "user",
        }
    }

    fn key(self, name: &str) -> String {
        match self {
            Self::Role => keys::role(name),
            Self::User => keys::user(name),
        }
    }

    fn validate_name(self, name: &str) -> Result<()> {
        match self {
            Self::Role => validate::role_name(name),
            Self::User => validate::user_name(name),
        }
    }

    fn not_found(self, name: &str) -> Error {
        Error::no_such_entity(format!("The {} with name {name} cannot be found.", self.noun()))
    }

    fn inline_policy_not_found(self, policy_name: &str) -> Error {
        Error::no_such_entity(format!("The {} policy with name {policy_name} cannot be found.", self.noun()))
    }

    fn inline_quota(self, limits: &Limits) -> usize {
        match self {
            Self::Role => limits.role_inline_policy_size,
            Self::User => limits.user_inline_policy_size,
        }
    }

    fn attach_quota(self, limits: &Limits) -> (usize, &'static str) {
        match self {
            Self::Role => (limits.managed_policies_per_role, "PoliciesPerRole"),
            Self::User => (limits.managed_policies_per_user, "PoliciesPerUser"),
        }
    }
}

/// A managed policy as the API shows it: AWS's (static) or the account's (stored).
#[derive(Clone, Debug)]
pub struct PolicyView {
    pub record: ManagedPolicy,
    pub aws_managed: bool,
}

fn parse_iso(s: &str) -> i64 {
    OffsetDateTime::parse(s, &Rfc3339).map(|t| t.unix_timestamp()).unwrap_or(0)
}

impl From<&AwsManagedPolicy> for PolicyView {
    fn from(p: &AwsManagedPolicy) -> Self {
        let created = parse_iso(&p.create_date);
        Self {
            record: ManagedPolicy {
                policy_name: p.policy_name.clone(),
                policy_id: p.policy_id.clone(),
                arn: p.arn.clone(),
                path: p.path.clone(),
                description: p.description.clone(),
                create_date: created,
                update_date: parse_iso(&p.update_date),
                default_version_id: p.default_version_id.clone(),
                versions: vec![PolicyVersion {
                    version_id: p.default_version_id.clone(),
                    document: p.document.clone(),
                    create_date: parse_iso(&p.update_date),
                }],
                next_version: 0,
                attachment_count: 0,
                permissions_boundary_usage_count: 0,
                tags: vec![],
            },
            aws_managed: true,
        }
    }
}

/// The account's use of one AWS managed policy.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct PolicyUse {
    attachment_count: i32,
    permissions_boundary_usage_count: i32,
}

/// The parameters of CreateRole.
#[derive(Clone, Debug, Default)]
pub struct NewRole {
    pub role_name: String,
    pub path: String,
    pub assume_role_policy_document: String,
    pub description: String,
    pub max_session_duration: Option<i32>,
    pub permissions_boundary: String,
    pub tags: Vec<Tag>,
}

/// The most tags (or tag keys) one IAM request may carry: every Tags and TagKeys parameter
/// of the IAM API reference says "Array Members: Maximum number of 50 items", at creation
/// as in TagUser/TagRole/UntagUser/UntagRole.
const TAGS_PER_REQUEST: usize = 50;

fn validate_tags(tags: &[Tag]) -> Result<()> {
    too_many("tags", tags.len())?;
    tags.iter().try_for_each(|t| validate::tag(&t.key, &t.value))
}

fn too_many(field: &str, count: usize) -> Result<()> {
    if count > TAGS_PER_REQUEST {
        return Err(Error::validation(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {TAGS_PER_REQUEST}"
        )));
    }
    Ok(())
}

fn policy_not_found(policy_arn: &str) -> Error {
    Error::no_such_entity(format!("Policy {policy_arn} does not exist or is not attachable."))
}

impl Catalog {
    // --- shared by roles and users ---

    async fn holder<P: PolicyHolder>(&self, name: &str) -> Result<(P, u64)> {
        P::KIND.validate_name(name)?;
        self.load::<P>(&P::KIND.key(name)).await?.ok_or_else(|| P::KIND.not_found(name))
    }

    /// Loads a customer managed policy by ARN, with its revision.
    async fn customer_policy(&self, policy_arn: &str) -> Result<Option<(ManagedPolicy, u64)>> {
        let Some((account, _, name)) = arn::parse_policy(policy_arn) else {
            return Err(Error::invalid_input(format!("ARN {policy_arn} is not valid.")));
        };
        if account != self.settings.account_id {
            return Ok(None);
        }
        Ok(self.load::<ManagedPolicy>(&keys::policy(name)).await?.filter(|(p, _)| p.arn == policy_arn))
    }

    /// How often this account uses an AWS managed policy (kept apart from the static data).
    async fn aws_policy_use(&self, p: &AwsManagedPolicy) -> Result<(PolicyUse, Option<u64>)> {
        Ok(match self.load::<PolicyUse>(&keys::aws_policy_use(&p.policy_name)).await? {
            Some((u, rev)) => (u, Some(rev)),
            None => (PolicyUse::default(), None),
        })
    }

    /// An AWS managed policy as this account sees it: with its attachment counts.
    async fn aws_policy_view(&self, p: &AwsManagedPolicy) -> Result<PolicyView> {
        let mut view = PolicyView::from(p);
        let (u, _) = self.aws_policy_use(p).await?;
        view.record.attachment_count = u.attachment_count;
        view.record.permissions_boundary_usage_count = u.permissions_boundary_usage_count;
        Ok(view)
    }

    /// Adds to a managed policy's attachment (or boundary) count inside `txn`.
    async fn count_use(&self, txn: Txn, policy_arn: &str, attach: i32, boundary: i32) -> Result<Txn> {
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
    async fn release_use(&self, txn: Txn, policy_arn: &str, attach: i32, boundary: i32) -> Result<Txn> {
        match self.count_use(txn.clone(), policy_arn, attach, boundary).await {
            Err(e) if e.code == crate::domain::ErrorCode::NoSuchEntity => Ok(txn),
            other => other,
        }
    }

    /// Fails unless `policy_arn` names an existing managed policy.
    async fn require_policy(&self, policy_arn: &str) -> Result<()> {
        if managed::by_arn(policy_arn).is_some() || self.customer_policy(policy_arn).await?.is_some() {
            Ok(())
        } else {
            Err(policy_not_found(policy_arn))
        }
    }

    async fn put_inline<P: PolicyHolder>(&self, name: &str, policy_name: &str, document: &str) -> Result<()> {
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

    async fn get_inline<P: PolicyHolder>(&self, name: &str, policy_name: &str) -> Result<String> {
        let (mut holder, _) = self.holder::<P>(name).await?;
        holder.inline().get(policy_name).cloned().ok_or_else(|| P::KIND.inline_policy_not_found(policy_name))
    }

    async fn delete_inline<P: PolicyHolder>(&self, name: &str, policy_name: &str) -> Result<()> {
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

    async fn attach<P: PolicyHolder>(&self, name: &str, policy_arn: &str) -> Result<()> {
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

    async fn detach<P: PolicyHolder>(&self, name: &str, policy_arn: &str) -> Result<()> {
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

    async fn set_boundary<P: PolicyHolder>(&self, name: &str, policy_arn: Option<&str>) -> Result<()> {
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

    async fn tag<P: PolicyHolder>(&self, name: &str, tags: &[Tag]) -> Result<()> {
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

    async fn untag<P: PolicyHolder>(&self, name: &str, tag_keys: &[String]) -> Result<()> {
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

    pub async fn create_role(&self, new: NewRole) -> Result<Role> {
        validate::role_name(&new.role_name)?;
        let path = validate::path(&new.path)?;
        validate::description(&new.description)?;
        let max_session_duration = new.max_session_duration.unwrap_or(3600);
        validate::max_session_duration(max_session_duration)?;
        validate_tags(&new.tags)?;
        self.validate_trust_policy(&new.assume_role_policy_document)?;
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

    fn validate_trust_policy(&self, document: &str) -> Result<()> {
        PolicyDocument::parse(document, PolicyType::Trust)?;
        let quota = self.settings.limits.trust_policy_size;
        if policy_size(document) > quota {
            return Err(Error::limit_exceeded(format!("Cannot exceed quota for ACLSizePerRole: {quota}")));
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
        self.validate_trust_policy(document)?;
        retrying(|| async {
            let (mut role, rev) = self.holder::<Role>(name).await?;
            role.assume_role_policy_document = document.to_string();
            let key = keys::role(name);
            self.rewrite(&key, rev, &role).await
        })
        .await
    }

    pub async fn delete_role(&self, name: &str) -> Result<()> {
        retrying(|| async {
            let (role, rev) = self.holder::<Role>(name).await?;
            if !role.instance_profiles.is_empty() {
                return Err(Error::delete_conflict(
                    "Cannot delete entity, must remove roles from instance profile first.",
                ));
            }
            if !role.inline_policies.is_empty() {
                return Err(Error::delete_conflict("Cannot delete entity, must delete policies first."));
            }
            if !role.attached_policies.is_empty() {
                return Err(Error::delete_conflict("Cannot delete entity, must detach all policies first."));
            }
            let key = keys::role(name);
            let mut txn = Txn::new().require_revision(&key, rev).delete(&key);
            if let Some(b) = &role.permissions_boundary {
                txn = self.release_use(txn, b, 0, -1).await?;
            }
            self.commit(txn).await.map(drop)
        })
        .await
    }

    // --- managed policies ---

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

    fn validate_managed_document(&self, document: &str) -> Result<()> {
        PolicyDocument::parse(document, PolicyType::Identity)?;
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

    pub async fn list_policies(
        &self,
        scope: PolicyScope,
        only_attached: bool,
        path_prefix: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<PolicyView>> {
        let max = validate::max_items(max_items)?;
        let prefix = validate::path_prefix(path_prefix)?;
        let mut all: Vec<PolicyView> = Vec::new();
        if scope != PolicyScope::Local {
            for p in managed::all() {
                all.push(self.aws_policy_view(p).await?);
            }
        }
        if scope != PolicyScope::Aws {
            let mut marker = String::new();
            loop {
                let page =
                    self.page_records::<ManagedPolicy>(keys::POLICIES, &marker, 1000, |_| true).await?;
                all.extend(page.items.into_iter().map(|record| PolicyView { record, aws_managed: false }));
                match page.next_marker {
                    Some(m) => marker = m,
                    None => break,
                }
            }
        }
        all.retain(|p| {
            p.record.path.starts_with(prefix) && (!only_attached || p.record.attachment_count > 0)
        });
        page_vec(all, marker, max)
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

    pub async fn get_policy_version(
        &self,
        policy_arn: &str,
        version_id: &str,
    ) -> Result<(PolicyVersion, bool)> {
        let view = self.get_policy(policy_arn).await?;
        let default = view.record.default_version_id.clone();
        view.record
            .versions
            .into_iter()
            .find(|v| v.version_id == version_id)
            .map(|v| {
                let is_default = v.version_id == default;
                (v, is_default)
            })
            .ok_or_else(|| {
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
        let view = self.get_policy(policy_arn).await?;
        let default = view.record.default_version_id.clone();
        let mut versions: Vec<(PolicyVersion, bool)> = view
            .record
            .versions
            .into_iter()
            .map(|v| {
                let d = v.version_id == default;
                (v, d)
            })
            .collect();
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
    async fn customer_write<T>(
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

    async fn profile(&self, name: &str) -> Result<(InstanceProfile, u64)> {
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

    async fn roles_of(&self, profile: &InstanceProfile) -> Result<Vec<Role>> {
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
        retrying(|| async {
            let (user, rev) = self.holder::<User>(name).await?;
            if !user.access_keys.is_empty() {
                return Err(Error::delete_conflict("Cannot delete entity, must delete access keys first."));
            }
            if !user.inline_policies.is_empty() {
                return Err(Error::delete_conflict("Cannot delete entity, must delete policies first."));
            }
            if !user.attached_policies.is_empty() {
                return Err(Error::delete_conflict("Cannot delete entity, must detach all policies first."));
            }
            let key = keys::user(name);
            let mut txn = Txn::new().require_revision(&key, rev).delete(&key);
            if let Some(b) = &user.permissions_boundary {
                txn = self.release_use(txn, b, 0, -1).await?;
            }
            self.commit(txn).await.map(drop)
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
            other => {
                return Err(Error::validation(format!(
                    "1 validation error detected: Value '{other}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
                )));
            }
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
                .delete(keys::access_key(access_key_id));
            self.commit(txn).await.map(drop)
        })
        .await
    }

    /// "Revoke active sessions": puts AWS's AWSRevokeOlderSessions inline policy on the role,
    /// denying everything to sessions issued before now. Returns that moment.
    pub async fn revoke_role_sessions(&self, role_name: &str) -> Result<i64> {
        let now = self.now();
        let document = policy::revoke_older_sessions(now);
        self.put_principal_policy(HolderKind::Role, role_name, policy::REVOKE_OLDER_SESSIONS, &document)
            .await?;
        Ok(now)
    }

    /// The documents that decide what a role or user may do (None where it does not exist):
    /// its inline policies, the default versions of its managed policies, its permissions
    /// boundary, and its tags (aws:PrincipalTag).
    pub async fn granting_policies(&self, kind: HolderKind, name: &str) -> Result<Option<GrantingPolicies>> {
        match kind {
            HolderKind::Role => self.granting::<Role>(name).await,
            HolderKind::User => self.granting::<User>(name).await,
        }
    }

    async fn granting<P: PolicyHolder>(&self, name: &str) -> Result<Option<GrantingPolicies>> {
        let Some((mut holder, _)) = self.load::<P>(&P::KIND.key(name)).await? else { return Ok(None) };
        let mut managed = Vec::new();
        for policy_arn in holder.attached().clone() {
            if let Some(document) = self.default_document(&policy_arn).await? {
                managed.push((policy_arn, document));
            }
        }
        let boundary = match holder.boundary().clone() {
            Some(b) => Some((b.clone(), self.default_document(&b).await?.unwrap_or_default())),
            None => None,
        };
        Ok(Some(GrantingPolicies {
            inline: holder.inline().clone().into_iter().collect(),
            managed,
            boundary,
            tags: holder.tags().clone(),
            id: holder.id().to_string(),
        }))
    }

    /// The default version's document of a managed policy (AWS's or the account's).
    pub async fn default_document(&self, policy_arn: &str) -> Result<Option<String>> {
        if let Some(p) = managed::by_arn(policy_arn) {
            return Ok(Some(p.document.clone()));
        }
        let Some((policy, _)) = self.customer_policy(policy_arn).await? else { return Ok(None) };
        Ok(policy
            .versions
            .into_iter()
            .find(|v| v.version_id == policy.default_version_id)
            .map(|v| v.document))
    }

    /// The ARN of a role, user or instance profile, as stored (with its path), if it exists.
    pub async fn entity_arn(&self, kind: EntityKind, name: &str) -> Result<Option<String>> {
        Ok(match kind {
            EntityKind::Role => self.load_shared::<Role>(&keys::role(name)).await?.map(|r| r.arn.clone()),
            EntityKind::User => self.load_shared::<User>(&keys::user(name)).await?.map(|u| u.arn.clone()),
            EntityKind::InstanceProfile => self
                .load_shared::<InstanceProfile>(&keys::instance_profile(name))
                .await?
                .map(|p| p.arn.clone()),
        })
    }

    /// The user holding this access key, and the key (None where either is gone): who signed
    /// a request.
    pub async fn find_access_key(&self, access_key_id: &str) -> Result<Option<(Arc<User>, AccessKey)>> {
        let Some(user_name) = self.load_shared::<String>(&keys::access_key(access_key_id)).await? else {
            return Ok(None);
        };
        let Some(user) = self.load_shared::<User>(&keys::user(&user_name)).await? else { return Ok(None) };
        let key = user.access_keys.iter().find(|k| k.access_key_id == access_key_id).cloned();
        Ok(key.map(|k| (user, k)))
    }

    /// The role with this name, for credential issuance (None where it is gone).
    pub async fn find_role(&self, name: &str) -> Result<Option<Arc<Role>>> {
        self.load_shared::<Role>(&keys::role(name)).await
    }

    /// The profile with this name (None where it is gone).
    pub async fn find_instance_profile(&self, name: &str) -> Result<Option<Arc<InstanceProfile>>> {
        self.load_shared::<InstanceProfile>(&keys::instance_profile(name)).await
    }
}

fn access_key_not_found(id: &str) -> Error {
    Error::no_such_entity(format!("The Access Key with id {id} cannot be found."))
}
