//! The account as a whole: GetAccountSummary's counts and quotas, ListEntitiesForPolicy,
//! and the account's alias (Create/Delete/ListAccountAliases).

use super::{policies::aws_policy_with_use, *};
use crate::catalog::{decode, store_error};

/// The roles, users and groups a managed policy is attached to or bounds (each by name and
/// unique id), one page of them in that order (ListEntitiesForPolicy).
#[derive(Clone, Debug, Default)]
pub struct PolicyEntities {
    pub roles: Vec<(String, String)>,
    pub users: Vec<(String, String)>,
    pub groups: Vec<(String, String)>,
    pub next_marker: Option<String>,
}

/// IAM's default quotas of an account's entities (IAM User Guide, "IAM and AWS STS quotas",
/// docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
const USERS_QUOTA: i64 = 5000;
const GROUPS_QUOTA: i64 = 300;
const ROLES_QUOTA: i64 = 1000;
const POLICIES_QUOTA: i64 = 1500;
const INSTANCE_PROFILES_QUOTA: i64 = 1000;
const SERVER_CERTIFICATES_QUOTA: i64 = 20;
const POLICY_VERSIONS_IN_USE_QUOTA: i64 = 10_000;
const SIGNING_CERTIFICATES_PER_USER_QUOTA: i64 = 2;

/// What ListEntitiesForPolicy's EntityFilter keeps.
fn kind_kept(filter: &str, kind: &str) -> Result<bool> {
    match filter {
        "" => Ok(true),
        "User" | "Role" | "Group" => Ok(filter == kind),
        "LocalManagedPolicy" | "AWSManagedPolicy" => Ok(false),
        other => Err(validate::not_in_enum(
            "entityFilter",
            other,
            &["User", "Role", "LocalManagedPolicy", "Group", "AWSManagedPolicy"],
        )),
    }
}

/// An account alias as IAM takes one: 3 to 63 lowercase letters, digits and single hyphens,
/// neither first nor last, and not 12 digits (IAM User Guide, "IAM and AWS STS quotas": "must
/// be lowercase, it must not start or end with a hyphen, it can't contain two consecutive
/// hyphens, and it can't be a 12 digit number").
fn validate_alias(alias: &str) -> Result<()> {
    let shaped = (3..=63).contains(&alias.len())
        && alias.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !alias.starts_with('-')
        && !alias.ends_with('-')
        && !alias.contains("--");
    let digits = alias.len() == 12 && alias.bytes().all(|b| b.is_ascii_digit());
    if !shaped || digits {
        return Err(Error::validation(format!(
            "1 validation error detected: Value '{alias}' at 'accountAlias' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-z0-9]([a-z0-9]|-(?!-)){{1,61}}[a-z0-9]$"
        )));
    }
    Ok(())
}

impl Catalog {
    /// GetAccountSummary's SummaryMap: what the account holds, and IAM's quotas.
    pub async fn account_summary(&self) -> Result<BTreeMap<String, i64>> {
        let limits = &self.settings.limits;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let policies = self.records::<ManagedPolicy>(keys::POLICIES).await?;
        let versions: usize = policies.iter().map(|(p, _)| p.versions.len()).sum();
        let entries = [
            ("Users", self.count(keys::USERS).await?),
            ("UsersQuota", USERS_QUOTA),
            ("Groups", self.count(keys::GROUPS).await?),
            ("GroupsQuota", GROUPS_QUOTA),
            ("Roles", self.count(keys::ROLES).await?),
            ("RolesQuota", ROLES_QUOTA),
            ("Policies", count(policies.len())),
            ("PoliciesQuota", POLICIES_QUOTA),
            ("InstanceProfiles", self.count(keys::INSTANCE_PROFILES).await?),
            ("InstanceProfilesQuota", INSTANCE_PROFILES_QUOTA),
            ("PolicyVersionsInUse", count(versions)),
            ("PolicyVersionsInUseQuota", POLICY_VERSIONS_IN_USE_QUOTA),
            ("VersionsPerPolicyQuota", count(limits.policy_versions)),
            ("PolicySizeQuota", count(limits.managed_policy_size)),
            ("UserPolicySizeQuota", count(limits.user_inline_policy_size)),
            ("GroupPolicySizeQuota", count(limits.group_inline_policy_size)),
            ("RolePolicySizeQuota", count(limits.role_inline_policy_size)),
            ("AssumeRolePolicySizeQuota", count(limits.trust_policy_size)),
            ("GroupsPerUserQuota", count(limits.groups_per_user)),
            ("AttachedPoliciesPerUserQuota", count(limits.managed_policies_per_user)),
            ("AttachedPoliciesPerRoleQuota", count(limits.managed_policies_per_role)),
            ("AttachedPoliciesPerGroupQuota", count(limits.managed_policies_per_group)),
            ("AccessKeysPerUserQuota", count(limits.access_keys_per_user)),
            ("SigningCertificatesPerUserQuota", SIGNING_CERTIFICATES_PER_USER_QUOTA),
            ("ServerCertificates", 0),
            ("ServerCertificatesQuota", SERVER_CERTIFICATES_QUOTA),
            ("MFADevices", 0),
            ("MFADevicesInUse", 0),
            ("Providers", 0),
            ("AccountMFAEnabled", 0),
            ("AccountAccessKeysPresent", 0),
            ("AccountSigningCertificatesPresent", 0),
            ("GlobalEndpointTokenVersion", 1),
        ];
        Ok(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// ListEntitiesForPolicy: the roles, users and groups under `path_prefix` that have the
    /// policy attached (usage `PermissionsPolicy`) or as their boundary
    /// (`PermissionsBoundary`), both when no usage is given.
    pub async fn list_entities_for_policy(
        &self,
        policy_arn: &str,
        entity_filter: &str,
        path_prefix: &str,
        usage: &str,
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<PolicyEntities> {
        let max = validate::max_items(max_items)?;
        let prefix = validate::path_prefix(path_prefix)?;
        let (permissions, boundary) = usage_filter(usage)?.unwrap_or((true, true));
        self.require_policy(policy_arn).await?;
        let uses = |attached: &[String], bound: &Option<String>| {
            (permissions && attached.iter().any(|a| a == policy_arn))
                || (boundary && bound.as_deref() == Some(policy_arn))
        };
        // (kind, name, id) of each entity, roles first, each kind in name order.
        let mut found: Vec<(&str, String, String)> = Vec::new();
        if kind_kept(entity_filter, "Role")? {
            for (r, _) in self.records::<Role>(keys::ROLES).await? {
                if r.path.starts_with(prefix) && uses(&r.attached_policies, &r.permissions_boundary) {
                    found.push(("Role", r.role_name, r.role_id));
                }
            }
        }
        if kind_kept(entity_filter, "User")? {
            for (u, _) in self.records::<User>(keys::USERS).await? {
                if u.path.starts_with(prefix) && uses(&u.attached_policies, &u.permissions_boundary) {
                    found.push(("User", u.user_name, u.user_id));
                }
            }
        }
        if kind_kept(entity_filter, "Group")? {
            for (g, _) in self.records::<Group>(keys::GROUPS).await? {
                if g.path.starts_with(prefix) && uses(&g.attached_policies, &None) {
                    found.push(("Group", g.group_name, g.group_id));
                }
            }
        }
        let page = page_vec(found, marker, max)?;
        let mut entities = PolicyEntities { next_marker: page.next_marker, ..PolicyEntities::default() };
        for (kind, name, id) in page.items {
            match kind {
                "Role" => entities.roles.push((name, id)),
                "User" => entities.users.push((name, id)),
                _ => entities.groups.push((name, id)),
            }
        }
        Ok(entities)
    }

    /// The account's alias (IAM keeps at most one), if it has one.
    pub async fn account_aliases(&self) -> Result<Vec<String>> {
        Ok(self.load::<String>(keys::ACCOUNT_ALIAS).await?.map(|(a, _)| a).into_iter().collect())
    }

    /// CreateAccountAlias: the account's one alias, in place of any it had. An alias is
    /// unique across the accounts of the store: its owner is kept beside the account's own
    /// record, and both are written in one transaction.
    pub async fn create_account_alias(&self, alias: &str) -> Result<()> {
        validate_alias(alias)?;
        let (own, claim) = ([self.prefix.as_str(), keys::ACCOUNT_ALIAS].concat(), keys::alias_owner(alias));
        retrying(|| async {
            let owner = self.shared.get(&claim).await.map_err(store_error)?;
            let mut txn = match &owner {
                Some(o) if decode::<String>(&o.key, &o.value)? != self.settings.account_id => {
                    return Err(Error::already_exists(format!("The account alias {alias} already exists.")));
                }
                Some(o) => Txn::new().require_revision(&claim, o.revision),
                None => Txn::new().require_absent(&claim),
            };
            txn = match self.load::<String>(keys::ACCOUNT_ALIAS).await? {
                Some((current, _)) if current == alias => return Ok(()),
                Some((current, rev)) => txn.require_revision(&own, rev).delete(keys::alias_owner(&current)),
                None => txn.require_absent(&own),
            };
            let txn = txn.put(&claim, encode(&self.settings.account_id)?).put(&own, encode(&alias)?);
            self.commit_shared(txn).await
        })
        .await
    }

    pub async fn delete_account_alias(&self, alias: &str) -> Result<()> {
        let own = [self.prefix.as_str(), keys::ACCOUNT_ALIAS].concat();
        retrying(|| async {
            match self.load::<String>(keys::ACCOUNT_ALIAS).await? {
                Some((current, rev)) if current == alias => {
                    let txn =
                        Txn::new().require_revision(&own, rev).delete(&own).delete(keys::alias_owner(alias));
                    self.commit_shared(txn).await
                }
                _ => Err(Error::no_such_entity(format!("The account alias {alias} cannot be found."))),
            }
        })
        .await
    }

    /// Commits `txn`, whose keys are the shared store's, and drops this account's cached alias.
    async fn commit_shared(&self, txn: Txn) -> Result<()> {
        let result = self.shared.commit(txn).await.map_err(store_error);
        self.invalidate(keys::ACCOUNT_ALIAS);
        result.map(drop)
    }
}

/// One entry of GetAccountAuthorizationDetails, in its order: users, groups, roles (each
/// with its instance profiles), then managed policies.
#[derive(Clone, Debug)]
pub enum AuthorizationDetail {
    User(User),
    Group(Group),
    Role(Role, Vec<InstanceProfile>),
    Policy(PolicyView),
}

impl Catalog {
    /// GetAccountAuthorizationDetails: every user, group and role with its policies, and
    /// every managed policy with all its versions: the account's customer managed policies,
    /// and the AWS managed policies it uses (attached, or a boundary). `filter` keeps the
    /// kinds named (User, Role, Group, LocalManagedPolicy, AWSManagedPolicy; all by default).
    pub async fn authorization_details(
        &self,
        filter: &[String],
        marker: &str,
        max_items: Option<i32>,
    ) -> Result<Page<AuthorizationDetail>> {
        let max = validate::max_items(max_items)?;
        const KINDS: [&str; 5] = ["User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"];
        if let Some(bad) = filter.iter().find(|f| !KINDS.contains(&f.as_str())) {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '[{bad}]' at 'filter' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [LocalManagedPolicy, Role, Group, AWSManagedPolicy, User]]"
            )));
        }
        let kept = |kind: &str| filter.is_empty() || filter.iter().any(|f| f == kind);
        let mut details = Vec::new();
        if kept("User") {
            details.extend(
                self.records::<User>(keys::USERS)
                    .await?
                    .into_iter()
                    .map(|(u, _)| AuthorizationDetail::User(u)),
            );
        }
        if kept("Group") {
            let groups = self.records::<Group>(keys::GROUPS).await?;
            details.extend(groups.into_iter().map(|(g, _)| AuthorizationDetail::Group(g)));
        }
        if kept("Role") {
            let profiles = self.records::<InstanceProfile>(keys::INSTANCE_PROFILES).await?;
            for (role, _) in self.records::<Role>(keys::ROLES).await? {
                let of_role = profiles
                    .iter()
                    .filter(|(p, _)| p.roles.iter().any(|r| r.eq_ignore_ascii_case(&role.role_name)))
                    .map(|(p, _)| p.clone())
                    .collect();
                details.push(AuthorizationDetail::Role(role, of_role));
            }
        }
        if kept("LocalManagedPolicy") {
            let local = self.records::<ManagedPolicy>(keys::POLICIES).await?;
            details.extend(
                local.into_iter().map(|(record, _)| {
                    AuthorizationDetail::Policy(PolicyView { record, aws_managed: false })
                }),
            );
        }
        if kept("AWSManagedPolicy") {
            let uses = self.aws_policy_uses().await?;
            for p in managed::all() {
                let view = aws_policy_with_use(p, uses.get(&p.policy_name));
                if view.record.attachment_count > 0 || view.record.permissions_boundary_usage_count > 0 {
                    details.push(AuthorizationDetail::Policy(view));
                }
            }
        }
        page_vec(details, marker, max)
    }
}
