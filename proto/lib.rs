//! rolecall's gRPC API: the generated `rolecall.v1` messages, servers and clients, and the
//! encoded descriptor set that server reflection serves.
//!
//! Messages that carry secrets (access keys, session tokens, instance keys, IMDS tokens)
//! have a hand-written `Debug` that prints `** redacted **` in their place.

use std::fmt;

/// Generated code, nested by protobuf package so that cross-package references resolve.
#[allow(clippy::all, missing_docs, unreachable_pub)]
mod generated {
    pub mod rolecall {
        pub mod v1 {
            tonic::include_proto!("rolecall.v1");
        }
        pub mod loadtest {
            pub mod v1 {
                tonic::include_proto!("rolecall.loadtest.v1");
            }
        }
    }
}

/// Generated `rolecall.v1` protobuf types, servers and clients.
pub use generated::rolecall::v1 as pb;

/// `rolecall.loadtest.v1`: the load tester's baseline service (same messages as
/// InstanceMetadata.GetSecurityCredentials).
pub use generated::rolecall::loadtest::v1 as loadtest;

pub use pb::*;

/// The encoded `FileDescriptorSet` of rolecall's API, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rolecall_descriptor.bin"));

/// The encoded `FileDescriptorSet` of `TestControl`, which a server describes only where it
/// serves it (a debug build with the manual clock).
pub const TEST_CONTROL_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/test_control_descriptor.bin"));

/// What a secret prints as in `Debug` output.
pub const REDACTED: &str = "** redacted **";

/// Prints `** redacted **` for a present secret and `""` for an absent one.
fn secret(value: &str) -> &str {
    if value.is_empty() { "" } else { REDACTED }
}

// === impl Debug for the messages that carry secrets ===

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("user_name", &self.user_name)
            .field("access_key_id", &self.access_key_id)
            .field("status", &self.status)
            .field("secret_access_key", &secret(&self.secret_access_key))
            .field("create_date", &self.create_date)
            .finish()
    }
}

impl fmt::Debug for LaunchedInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchedInstance")
            .field("instance", &self.instance)
            .field("instance_key", &secret(&self.instance_key))
            .finish()
    }
}

impl fmt::Debug for InstanceCaller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let identity = match &self.identity {
            Some(instance_caller::Identity::Token(t)) => format!("Token({})", secret(t)),
            Some(instance_caller::Identity::Instance(k)) => format!("{k:?}"),
            None => "None".to_string(),
        };
        f.debug_struct("InstanceCaller").field("identity", &identity).finish()
    }
}

impl fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceKey")
            .field("instance_id", &self.instance_id)
            .field("instance_key", &secret(&self.instance_key))
            .finish()
    }
}

impl fmt::Debug for GetTokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetTokenRequest")
            .field("instance_id", &self.instance_id)
            .field("instance_key", &secret(&self.instance_key))
            .field("ttl_seconds", &self.ttl_seconds)
            .finish()
    }
}

impl fmt::Debug for GetTokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetTokenResponse")
            .field("token", &secret(&self.token))
            .field("ttl_seconds", &self.ttl_seconds)
            .finish()
    }
}

impl fmt::Debug for GetSecurityCredentialsResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetSecurityCredentialsResponse")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("last_updated", &self.last_updated)
            .field("type", &self.r#type)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &secret(&self.secret_access_key))
            .field("token", &secret(&self.token))
            .field("expiration", &self.expiration)
            .field("account_id", &self.account_id)
            .finish()
    }
}

impl fmt::Debug for StsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &secret(&self.secret_access_key))
            .field("session_token", &secret(&self.session_token))
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl InstanceCaller {
    /// An IMDSv2 caller: the session token from GetToken.
    pub fn token(token: impl Into<String>) -> Self {
        Self { identity: Some(instance_caller::Identity::Token(token.into())) }
    }

    /// An IMDSv1 caller: the instance id and key (accepted only where tokens are optional).
    pub fn instance(instance_id: impl Into<String>, instance_key: impl Into<String>) -> Self {
        Self {
            identity: Some(instance_caller::Identity::Instance(InstanceKey {
                instance_id: instance_id.into(),
                instance_key: instance_key.into(),
            })),
        }
    }
}

#[cfg(test)]
mod wire;

/// Every Iam RPC: its AWS action name, its client's and server's method, its request and its
/// response. The code that treats every call alike (the gRPC adapter, the Query API, the
/// operator's CLI) takes the list from here, so a new RPC is added in one place:
/// `rolecall_api::iam_rpcs!(callback)` expands to `callback! { Name => method(Request) -> Response; … }`.
#[macro_export]
macro_rules! iam_rpcs {
    ($callback:ident) => {
        $callback! {
            CreateRole => create_role(CreateRoleRequest) -> CreateRoleResponse;
            GetRole => get_role(GetRoleRequest) -> GetRoleResponse;
            ListRoles => list_roles(ListRolesRequest) -> ListRolesResponse;
            UpdateRole => update_role(UpdateRoleRequest) -> UpdateRoleResponse;
            DeleteRole => delete_role(DeleteRoleRequest) -> DeleteRoleResponse;
            UpdateAssumeRolePolicy => update_assume_role_policy(UpdateAssumeRolePolicyRequest) -> UpdateAssumeRolePolicyResponse;
            PutRolePolicy => put_role_policy(PutRolePolicyRequest) -> PutRolePolicyResponse;
            GetRolePolicy => get_role_policy(GetRolePolicyRequest) -> GetRolePolicyResponse;
            ListRolePolicies => list_role_policies(ListRolePoliciesRequest) -> ListRolePoliciesResponse;
            DeleteRolePolicy => delete_role_policy(DeleteRolePolicyRequest) -> DeleteRolePolicyResponse;
            AttachRolePolicy => attach_role_policy(AttachRolePolicyRequest) -> AttachRolePolicyResponse;
            DetachRolePolicy => detach_role_policy(DetachRolePolicyRequest) -> DetachRolePolicyResponse;
            ListAttachedRolePolicies => list_attached_role_policies(ListAttachedRolePoliciesRequest) -> ListAttachedRolePoliciesResponse;
            PutRolePermissionsBoundary => put_role_permissions_boundary(PutRolePermissionsBoundaryRequest) -> PutRolePermissionsBoundaryResponse;
            DeleteRolePermissionsBoundary => delete_role_permissions_boundary(DeleteRolePermissionsBoundaryRequest) -> DeleteRolePermissionsBoundaryResponse;
            TagRole => tag_role(TagRoleRequest) -> TagRoleResponse;
            UntagRole => untag_role(UntagRoleRequest) -> UntagRoleResponse;
            ListRoleTags => list_role_tags(ListRoleTagsRequest) -> ListRoleTagsResponse;
            CreatePolicy => create_policy(CreatePolicyRequest) -> CreatePolicyResponse;
            GetPolicy => get_policy(GetPolicyRequest) -> GetPolicyResponse;
            ListPolicies => list_policies(ListPoliciesRequest) -> ListPoliciesResponse;
            DeletePolicy => delete_policy(DeletePolicyRequest) -> DeletePolicyResponse;
            CreatePolicyVersion => create_policy_version(CreatePolicyVersionRequest) -> CreatePolicyVersionResponse;
            GetPolicyVersion => get_policy_version(GetPolicyVersionRequest) -> GetPolicyVersionResponse;
            ListPolicyVersions => list_policy_versions(ListPolicyVersionsRequest) -> ListPolicyVersionsResponse;
            SetDefaultPolicyVersion => set_default_policy_version(SetDefaultPolicyVersionRequest) -> SetDefaultPolicyVersionResponse;
            DeletePolicyVersion => delete_policy_version(DeletePolicyVersionRequest) -> DeletePolicyVersionResponse;
            CreateInstanceProfile => create_instance_profile(CreateInstanceProfileRequest) -> CreateInstanceProfileResponse;
            GetInstanceProfile => get_instance_profile(GetInstanceProfileRequest) -> GetInstanceProfileResponse;
            ListInstanceProfiles => list_instance_profiles(ListInstanceProfilesRequest) -> ListInstanceProfilesResponse;
            ListInstanceProfilesForRole => list_instance_profiles_for_role(ListInstanceProfilesForRoleRequest) -> ListInstanceProfilesForRoleResponse;
            DeleteInstanceProfile => delete_instance_profile(DeleteInstanceProfileRequest) -> DeleteInstanceProfileResponse;
            AddRoleToInstanceProfile => add_role_to_instance_profile(AddRoleToInstanceProfileRequest) -> AddRoleToInstanceProfileResponse;
            RemoveRoleFromInstanceProfile => remove_role_from_instance_profile(RemoveRoleFromInstanceProfileRequest) -> RemoveRoleFromInstanceProfileResponse;
            CreateUser => create_user(CreateUserRequest) -> CreateUserResponse;
            GetUser => get_user(GetUserRequest) -> GetUserResponse;
            ListUsers => list_users(ListUsersRequest) -> ListUsersResponse;
            DeleteUser => delete_user(DeleteUserRequest) -> DeleteUserResponse;
            TagUser => tag_user(TagUserRequest) -> TagUserResponse;
            UntagUser => untag_user(UntagUserRequest) -> UntagUserResponse;
            PutUserPolicy => put_user_policy(PutUserPolicyRequest) -> PutUserPolicyResponse;
            GetUserPolicy => get_user_policy(GetUserPolicyRequest) -> GetUserPolicyResponse;
            ListUserPolicies => list_user_policies(ListUserPoliciesRequest) -> ListUserPoliciesResponse;
            DeleteUserPolicy => delete_user_policy(DeleteUserPolicyRequest) -> DeleteUserPolicyResponse;
            AttachUserPolicy => attach_user_policy(AttachUserPolicyRequest) -> AttachUserPolicyResponse;
            DetachUserPolicy => detach_user_policy(DetachUserPolicyRequest) -> DetachUserPolicyResponse;
            ListAttachedUserPolicies => list_attached_user_policies(ListAttachedUserPoliciesRequest) -> ListAttachedUserPoliciesResponse;
            PutUserPermissionsBoundary => put_user_permissions_boundary(PutUserPermissionsBoundaryRequest) -> PutUserPermissionsBoundaryResponse;
            DeleteUserPermissionsBoundary => delete_user_permissions_boundary(DeleteUserPermissionsBoundaryRequest) -> DeleteUserPermissionsBoundaryResponse;
            CreateAccessKey => create_access_key(CreateAccessKeyRequest) -> CreateAccessKeyResponse;
            ListAccessKeys => list_access_keys(ListAccessKeysRequest) -> ListAccessKeysResponse;
            UpdateAccessKey => update_access_key(UpdateAccessKeyRequest) -> UpdateAccessKeyResponse;
            DeleteAccessKey => delete_access_key(DeleteAccessKeyRequest) -> DeleteAccessKeyResponse;
            RevokeRoleSessions => revoke_role_sessions(RevokeRoleSessionsRequest) -> RevokeRoleSessionsResponse;
            CreateGroup => create_group(CreateGroupRequest) -> CreateGroupResponse;
            GetGroup => get_group(GetGroupRequest) -> GetGroupResponse;
            ListGroups => list_groups(ListGroupsRequest) -> ListGroupsResponse;
            UpdateGroup => update_group(UpdateGroupRequest) -> UpdateGroupResponse;
            DeleteGroup => delete_group(DeleteGroupRequest) -> DeleteGroupResponse;
            AddUserToGroup => add_user_to_group(AddUserToGroupRequest) -> AddUserToGroupResponse;
            RemoveUserFromGroup => remove_user_from_group(RemoveUserFromGroupRequest) -> RemoveUserFromGroupResponse;
            ListGroupsForUser => list_groups_for_user(ListGroupsForUserRequest) -> ListGroupsResponse;
            PutGroupPolicy => put_group_policy(PutGroupPolicyRequest) -> PutGroupPolicyResponse;
            GetGroupPolicy => get_group_policy(GetGroupPolicyRequest) -> GetGroupPolicyResponse;
            ListGroupPolicies => list_group_policies(ListGroupPoliciesRequest) -> ListGroupPoliciesResponse;
            DeleteGroupPolicy => delete_group_policy(DeleteGroupPolicyRequest) -> DeleteGroupPolicyResponse;
            AttachGroupPolicy => attach_group_policy(AttachGroupPolicyRequest) -> AttachGroupPolicyResponse;
            DetachGroupPolicy => detach_group_policy(DetachGroupPolicyRequest) -> DetachGroupPolicyResponse;
            ListAttachedGroupPolicies => list_attached_group_policies(ListAttachedGroupPoliciesRequest) -> ListAttachedGroupPoliciesResponse;
            GetAccountSummary => get_account_summary(GetAccountSummaryRequest) -> GetAccountSummaryResponse;
            ListEntitiesForPolicy => list_entities_for_policy(ListEntitiesForPolicyRequest) -> ListEntitiesForPolicyResponse;
            CreateAccountAlias => create_account_alias(CreateAccountAliasRequest) -> CreateAccountAliasResponse;
            DeleteAccountAlias => delete_account_alias(DeleteAccountAliasRequest) -> DeleteAccountAliasResponse;
            ListAccountAliases => list_account_aliases(ListAccountAliasesRequest) -> ListAccountAliasesResponse;
            GetAccountAuthorizationDetails => get_account_authorization_details(GetAccountAuthorizationDetailsRequest) -> GetAccountAuthorizationDetailsResponse;
            GetAccessKeyLastUsed => get_access_key_last_used(GetAccessKeyLastUsedRequest) -> GetAccessKeyLastUsedResponse;
            GenerateCredentialReport => generate_credential_report(GenerateCredentialReportRequest) -> GenerateCredentialReportResponse;
            GetCredentialReport => get_credential_report(GetCredentialReportRequest) -> GetCredentialReportResponse;
            SimulatePrincipalPolicy => simulate_principal_policy(SimulatePrincipalPolicyRequest) -> SimulatePrincipalPolicyResponse;
            SimulateCustomPolicy => simulate_custom_policy(SimulateCustomPolicyRequest) -> SimulatePrincipalPolicyResponse;
            GetContextKeysForCustomPolicy => get_context_keys_for_custom_policy(GetContextKeysForCustomPolicyRequest) -> GetContextKeysResponse;
            GetContextKeysForPrincipalPolicy => get_context_keys_for_principal_policy(GetContextKeysForPrincipalPolicyRequest) -> GetContextKeysResponse;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let creds = GetSecurityCredentialsResponse {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI".into(),
            token: "sealed-session-token".into(),
            ..Default::default()
        };
        let shown = format!("{creds:?}");
        assert!(shown.contains("ASIAEXAMPLE"));
        assert!(!shown.contains("wJalrXUtnFEMI"));
        assert!(!shown.contains("sealed-session-token"));
        let caller = InstanceCaller::token("imds-token-value");
        assert!(!format!("{caller:?}").contains("imds-token-value"));
    }
}
