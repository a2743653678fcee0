//! The catalog's records, as the store keeps them (serde, JSON). Times are Unix seconds.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

/// A secret string: kept whole in memory and the store, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("** redacted **")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Role {
    pub role_name: String,
    pub role_id: String,
    pub path: String,
    pub arn: String,
    pub create_date: i64,
    pub assume_role_policy_document: String,
    pub description: String,
    pub max_session_duration: i32,
    pub permissions_boundary: Option<String>,
    pub tags: Vec<Tag>,
    /// Inline policies by name.
    pub inline_policies: BTreeMap<String, String>,
    /// Attached managed policies' ARNs, in attachment order.
    pub attached_policies: Vec<String>,
    /// Names of the instance profiles that hold this role.
    pub instance_profiles: Vec<String>,
    /// The trust policy, parsed once per decoded record (a record never changes once
    /// decoded: a change is a new record). None where it no longer parses.
    #[serde(skip)]
    pub trust_policy: std::sync::OnceLock<Option<std::sync::Arc<super::policy::PolicyDocument>>>,
    /// When "Revoke active sessions" last ran on it (its AWSRevokeOlderSessions policy),
    /// worked out once per decoded record.
    #[serde(skip)]
    pub sessions_revoked: std::sync::OnceLock<Option<i64>>,
}

impl Role {
    /// The parsed trust policy.
    pub fn trust(&self) -> Option<&super::policy::PolicyDocument> {
        self.trust_policy
            .get_or_init(|| {
                super::policy::PolicyDocument::parse_stored(
                    &self.assume_role_policy_document,
                    super::policy::PolicyType::Trust,
                )
                .ok()
                .map(std::sync::Arc::new)
            })
            .as_deref()
    }

    /// Sessions issued before this are denied everything (AWSRevokeOlderSessions).
    pub fn sessions_revoked_before(&self) -> Option<i64> {
        *self.sessions_revoked.get_or_init(|| {
            self.inline_policies
                .get(super::policy::REVOKE_OLDER_SESSIONS)
                .and_then(|doc| super::policy::revoked_before(doc))
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub version_id: String,
    pub document: String,
    pub create_date: i64,
}

/// A customer managed policy (AWS managed ones are static: see `managed`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ManagedPolicy {
    pub policy_name: String,
    pub policy_id: String,
    pub arn: String,
    pub path: String,
    pub description: String,
    pub create_date: i64,
    pub update_date: i64,
    pub default_version_id: String,
    pub versions: Vec<PolicyVersion>,
    pub next_version: u32,
    pub attachment_count: i32,
    pub permissions_boundary_usage_count: i32,
    pub tags: Vec<Tag>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceProfile {
    pub instance_profile_name: String,
    pub instance_profile_id: String,
    pub path: String,
    pub arn: String,
    pub create_date: i64,
    /// Names of the roles in this profile (at most one, as in AWS).
    pub roles: Vec<String>,
    pub tags: Vec<Tag>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessKeyStatus {
    Active,
    Inactive,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub status: AccessKeyStatus,
    pub create_date: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub user_name: String,
    pub user_id: String,
    pub path: String,
    pub arn: String,
    pub create_date: i64,
    pub permissions_boundary: Option<String>,
    pub tags: Vec<Tag>,
    pub inline_policies: BTreeMap<String, String>,
    pub attached_policies: Vec<String>,
    pub access_keys: Vec<AccessKey>,
    /// The groups the user is a member of (their names, as created).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// An IAM group: a set of users and the policies they all hold. Not a principal: it is
/// named in no Principal element, has no tags, no boundary and no keys (IAM User Guide, "IAM
/// user groups"). The two fields the catalog's `PolicyHolder` reads of every holder
/// are kept empty and never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub group_name: String,
    pub group_id: String,
    pub path: String,
    pub arn: String,
    pub create_date: i64,
    pub inline_policies: BTreeMap<String, String>,
    pub attached_policies: Vec<String>,
    /// How many users are members: every change of membership rewrites the group, so that
    /// a DeleteGroup racing an AddUserToGroup cannot leave a member of a group that is gone.
    #[serde(default)]
    pub member_count: usize,
    #[serde(skip)]
    pub permissions_boundary: Option<String>,
    #[serde(skip)]
    pub tags: Vec<Tag>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpTokens {
    Optional,
    Required,
}

/// Per-instance metadata options (ModifyInstanceMetadataOptions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataOptions {
    pub http_tokens: HttpTokens,
    pub http_put_response_hop_limit: i32,
    pub http_endpoint_enabled: bool,
}

/// The one instance profile association of an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Association {
    pub association_id: String,
    pub instance_profile_name: String,
    pub instance_profile_arn: String,
    pub instance_profile_id: String,
    /// When this association was made (iam/info's LastUpdated).
    pub timestamp: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Instance {
    pub instance_id: String,
    pub image_id: String,
    pub instance_type: String,
    pub state: InstanceState,
    pub launch_time: i64,
    pub private_ip_address: String,
    pub availability_zone: String,
    pub reservation_id: String,
    pub key_name: String,
    pub security_group_ids: Vec<String>,
    pub subnet_id: String,
    pub user_data: String,
    pub metadata_options: MetadataOptions,
    /// SHA-256 of the instance key, hex: the key itself is shown once and never stored.
    pub instance_key_sha256: String,
    pub association: Option<Association>,
}

// === impl InstanceState ===

impl InstanceState {
    /// AWS's numeric code and name.
    pub fn code_and_name(self) -> (i32, &'static str) {
        match self {
            Self::Pending => (0, "pending"),
            Self::Running => (16, "running"),
            Self::ShuttingDown => (32, "shutting-down"),
            Self::Terminated => (48, "terminated"),
        }
    }
}

// === impl HttpTokens ===

impl HttpTokens {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

impl AccessKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Inactive => "Inactive",
        }
    }
}

/// An S3 bucket: a name and where it lives (rolecall stores no objects).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub name: String,
    pub region: String,
    pub creation_date: i64,
    /// Its bucket policy (a resource policy), as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}
