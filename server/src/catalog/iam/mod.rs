//! IAM: roles, managed policies, instance profiles, users and access keys, groups, a file each:
//!
//! - this file: the shared types, what roles and users have in common ([`PolicyHolder`]),
//!   and the lookups other modules make (policies that grant, ARNs, access keys);
//! - [`holders`]: inline and managed policies of roles, users and groups, boundaries and tags;
//! - [`roles`], [`policies`], [`instance_profiles`], [`users`] (with their access keys),
//!   [`groups`] (with their members);
//! - [`account`]: the account-wide views (summary, a policy's entities) and the alias;
//! - [`key_use`] and [`credential_report`]: when each access key was last used, and the
//!   credential report.

mod account;
mod credential_report;
mod groups;
mod holders;
mod instance_profiles;
mod key_use;
mod policies;
mod roles;
mod users;

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
            AccessKey, AccessKeyStatus, Group, InstanceProfile, ManagedPolicy, PolicyVersion, Role, Secret,
            Tag, User,
        },
        policy::{self, PolicyDocument, PolicyType, policy_size},
        validate,
    },
    store::Txn,
};

/// What holds permission policies (inline and attached managed ones): roles and users,
/// both principals, and groups, which are not (their users hold their policies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HolderKind {
    Role,
    User,
    Group,
}

/// IAM entities that have an ARN by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityKind {
    Role,
    User,
    Group,
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

pub use account::{AuthorizationDetail, PolicyEntities};
pub use credential_report::CredentialReport;
pub use key_use::{KeyUse, KeyUseSeen};

/// What roles, users and groups have in common: inline and managed policies, and (roles and
/// users only: a group's are always empty) a permissions boundary and tags.
pub trait PolicyHolder: Serialize + DeserializeOwned + Send + Sync {
    const KIND: HolderKind;
    /// The unique id (AROA…/AIDA…): a same-named entity created later has another.
    fn id(&self) -> &str;
    fn inline(&mut self) -> &mut BTreeMap<String, String>;
    fn attached(&mut self) -> &mut Vec<String>;
    fn boundary(&mut self) -> &mut Option<String>;
    fn tags(&mut self) -> &mut Vec<Tag>;
}

/// Each holder's fields, which roles and users name alike but for the id.
macro_rules! policy_holders {
    ($($ty:ident $kind:ident $id:ident;)*) => {
        $(impl PolicyHolder for $ty {
            const KIND: HolderKind = HolderKind::$kind;
            fn id(&self) -> &str {
                &self.$id
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
        })*
    };
}

policy_holders! {
    Role Role role_id;
    User User user_id;
    Group Group group_id;
}

// === impl HolderKind ===

impl HolderKind {
    fn noun(self) -> &'static str {
        match self {
            Self::Role => "role",
            Self::User => "user",
            Self::Group => "group",
        }
    }

    fn key(self, name: &str) -> String {
        match self {
            Self::Role => keys::role(name),
            Self::User => keys::user(name),
            Self::Group => keys::group(name),
        }
    }

    fn validate_name(self, name: &str) -> Result<()> {
        match self {
            Self::Role => validate::role_name(name),
            Self::User => validate::user_name(name),
            Self::Group => validate::group_name(name),
        }
    }

    /// IAM's NoSuchEntity for a role, user or group of this name.
    pub fn not_found(self, name: &str) -> Error {
        Error::no_such_entity(format!("The {} with name {name} cannot be found.", self.noun()))
    }

    fn inline_policy_not_found(self, policy_name: &str) -> Error {
        Error::no_such_entity(format!("The {} policy with name {policy_name} cannot be found.", self.noun()))
    }

    fn inline_quota(self, limits: &Limits) -> usize {
        match self {
            Self::Role => limits.role_inline_policy_size,
            Self::User => limits.user_inline_policy_size,
            Self::Group => limits.group_inline_policy_size,
        }
    }

    fn attach_quota(self, limits: &Limits) -> (usize, &'static str) {
        match self {
            Self::Role => (limits.managed_policies_per_role, "PoliciesPerRole"),
            Self::User => (limits.managed_policies_per_user, "PoliciesPerUser"),
            Self::Group => (limits.managed_policies_per_group, "PoliciesPerGroup"),
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
                    document: p.document.to_string(),
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

/// PolicyUsageFilter (ListPolicies, ListEntitiesForPolicy): whether permissions policies and
/// whether boundaries are asked for; None when neither is singled out.
fn usage_filter(usage: &str) -> Result<Option<(bool, bool)>> {
    match usage {
        "" => Ok(None),
        "PermissionsPolicy" => Ok(Some((true, false))),
        "PermissionsBoundary" => Ok(Some((false, true))),
        other => Err(validate::not_in_enum(
            "policyUsageFilter",
            other,
            &["PermissionsPolicy", "PermissionsBoundary"],
        )),
    }
}

fn policy_not_found(policy_arn: &str) -> Error {
    Error::no_such_entity(format!("Policy {policy_arn} does not exist or is not attachable."))
}

impl Catalog {
    /// The documents that decide what a role or user may do (None where it does not exist):
    /// its inline policies, the default versions of its managed policies, its permissions
    /// boundary, and its tags (aws:PrincipalTag).
    /// A user's groups' inline and managed policies count as the user's own (an inline
    /// policy of a group is named `GROUP/POLICY`). A group's own are read for the simulator:
    /// a group is no principal, and nothing is ever authorized as one.
    pub async fn granting_policies(&self, kind: HolderKind, name: &str) -> Result<Option<GrantingPolicies>> {
        match kind {
            HolderKind::Role => self.granting::<Role>(name).await,
            HolderKind::User => {
                let Some((user, _)) = self.load::<User>(&keys::user(name)).await? else { return Ok(None) };
                let groups = user.groups.clone();
                let mut granting = self.granting_of(user).await?;
                for group in groups {
                    let Some(of_group) = self.granting::<Group>(&group).await? else { continue };
                    let named =
                        of_group.inline.into_iter().map(|(policy, text)| (format!("{group}/{policy}"), text));
                    granting.inline.extend(named);
                    granting.managed.extend(of_group.managed);
                }
                Ok(Some(granting))
            }
            HolderKind::Group => self.granting::<Group>(name).await,
        }
    }

    async fn granting<P: PolicyHolder>(&self, name: &str) -> Result<Option<GrantingPolicies>> {
        match self.load::<P>(&P::KIND.key(name)).await? {
            Some((holder, _)) => Ok(Some(self.granting_of(holder).await?)),
            None => Ok(None),
        }
    }

    /// The documents of a holder already read (see [`granting_policies`](Self::granting_policies)).
    async fn granting_of<P: PolicyHolder>(&self, mut holder: P) -> Result<GrantingPolicies> {
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
        Ok(GrantingPolicies {
            inline: holder.inline().clone().into_iter().collect(),
            managed,
            boundary,
            tags: holder.tags().clone(),
            id: holder.id().to_string(),
        })
    }

    /// The default version's document of a managed policy (AWS's or the account's).
    pub async fn default_document(&self, policy_arn: &str) -> Result<Option<String>> {
        if let Some(p) = managed::by_arn(policy_arn) {
            return Ok(Some(p.document.to_string()));
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
            EntityKind::Group => self.load_shared::<Group>(&keys::group(name)).await?.map(|g| g.arn.clone()),
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

impl Catalog {
    /// Every record under `prefix`, with its revision (account-wide views and scans).
    pub(super) async fn records<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(T, u64)>> {
        let mut records = Vec::new();
        self.scan(prefix, |entry| {
            records.push((super::decode(&entry.key, &entry.value)?, entry.revision));
            Ok(())
        })
        .await?;
        Ok(records)
    }

    /// Every record under `prefix`, by the rest of its key.
    pub(super) async fn keyed_records<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>> {
        let mut records = Vec::new();
        self.scan(prefix, |entry| {
            let record = super::decode(&entry.key, &entry.value)?;
            records.push((entry.key.strip_prefix(prefix).unwrap_or(&entry.key).to_string(), record));
            Ok(())
        })
        .await?;
        Ok(records)
    }

    /// How many records are under `prefix`, none of them decoded.
    pub(super) async fn count(&self, prefix: &str) -> Result<i64> {
        let mut n = 0;
        self.scan(prefix, |_| {
            n += 1;
            Ok(())
        })
        .await?;
        Ok(n)
    }

    /// Every entry under `prefix`, in key order, a chunk at a time.
    async fn scan(
        &self,
        prefix: &str,
        mut each: impl FnMut(crate::store::Versioned) -> Result<()>,
    ) -> Result<()> {
        const CHUNK: usize = 256;
        let mut after: Option<String> = None;
        loop {
            let batch = self.store.list(prefix, after.as_deref(), CHUNK).await.map_err(super::store_error)?;
            let exhausted = batch.len() < CHUNK;
            for entry in batch {
                after = Some(entry.key.clone());
                each(entry)?;
            }
            if exhausted {
                return Ok(());
            }
        }
    }
}

fn access_key_not_found(id: &str) -> Error {
    Error::no_such_entity(format!("The Access Key with id {id} cannot be found."))
}
