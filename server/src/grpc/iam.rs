//! The Iam service's gRPC adapter: each call's decoded request and the caller's context
//! handed to its operation (`operations::iam`), its answer or error sent back.

use rolecall_api::{self as pb, iam_server};
use tonic::{Request, Response};

use super::{Answer, call_context, error::to_status};
use crate::operations::iam::Iam;

/// The Iam service of one account.
pub struct IamService(pub Iam);

macro_rules! adapters {
    ($($method:ident($req:ident) -> $answer:ident;)*) => {
        #[tonic::async_trait]
        impl iam_server::Iam for IamService {
            $(async fn $method(&self, req: Request<pb::$req>) -> Answer<pb::$answer> {
                let caller = call_context(&req)?;
                self.0.$method(&caller, req.into_inner()).await.map(Response::new).map_err(|e| to_status(&e))
            })*
        }
    };
}

adapters! {
    create_role(CreateRoleRequest) -> CreateRoleResponse;
    get_role(GetRoleRequest) -> GetRoleResponse;
    list_roles(ListRolesRequest) -> ListRolesResponse;
    update_role(UpdateRoleRequest) -> UpdateRoleResponse;
    delete_role(DeleteRoleRequest) -> DeleteRoleResponse;
    update_assume_role_policy(UpdateAssumeRolePolicyRequest) -> UpdateAssumeRolePolicyResponse;
    put_role_policy(PutRolePolicyRequest) -> PutRolePolicyResponse;
    get_role_policy(GetRolePolicyRequest) -> GetRolePolicyResponse;
    list_role_policies(ListRolePoliciesRequest) -> ListRolePoliciesResponse;
    delete_role_policy(DeleteRolePolicyRequest) -> DeleteRolePolicyResponse;
    attach_role_policy(AttachRolePolicyRequest) -> AttachRolePolicyResponse;
    detach_role_policy(DetachRolePolicyRequest) -> DetachRolePolicyResponse;
    list_attached_role_policies(ListAttachedRolePoliciesRequest) -> ListAttachedRolePoliciesResponse;
    put_role_permissions_boundary(PutRolePermissionsBoundaryRequest) -> PutRolePermissionsBoundaryResponse;
    delete_role_permissions_boundary(DeleteRolePermissionsBoundaryRequest) -> DeleteRolePermissionsBoundaryResponse;
    tag_role(TagRoleRequest) -> TagRoleResponse;
    untag_role(UntagRoleRequest) -> UntagRoleResponse;
    list_role_tags(ListRoleTagsRequest) -> ListRoleTagsResponse;
    create_policy(CreatePolicyRequest) -> CreatePolicyResponse;
    get_policy(GetPolicyRequest) -> GetPolicyResponse;
    list_policies(ListPoliciesRequest) -> ListPoliciesResponse;
    delete_policy(DeletePolicyRequest) -> DeletePolicyResponse;
    create_policy_version(CreatePolicyVersionRequest) -> CreatePolicyVersionResponse;
    get_policy_version(GetPolicyVersionRequest) -> GetPolicyVersionResponse;
    list_policy_versions(ListPolicyVersionsRequest) -> ListPolicyVersionsResponse;
    set_default_policy_version(SetDefaultPolicyVersionRequest) -> SetDefaultPolicyVersionResponse;
    delete_policy_version(DeletePolicyVersionRequest) -> DeletePolicyVersionResponse;
    create_instance_profile(CreateInstanceProfileRequest) -> CreateInstanceProfileResponse;
    get_instance_profile(GetInstanceProfileRequest) -> GetInstanceProfileResponse;
    list_instance_profiles(ListInstanceProfilesRequest) -> ListInstanceProfilesResponse;
    list_instance_profiles_for_role(ListInstanceProfilesForRoleRequest) -> ListInstanceProfilesForRoleResponse;
    delete_instance_profile(DeleteInstanceProfileRequest) -> DeleteInstanceProfileResponse;
    add_role_to_instance_profile(AddRoleToInstanceProfileRequest) -> AddRoleToInstanceProfileResponse;
    remove_role_from_instance_profile(RemoveRoleFromInstanceProfileRequest) -> RemoveRoleFromInstanceProfileResponse;
    create_user(CreateUserRequest) -> CreateUserResponse;
    get_user(GetUserRequest) -> GetUserResponse;
    list_users(ListUsersRequest) -> ListUsersResponse;
    delete_user(DeleteUserRequest) -> DeleteUserResponse;
    tag_user(TagUserRequest) -> TagUserResponse;
    untag_user(UntagUserRequest) -> UntagUserResponse;
    put_user_policy(PutUserPolicyRequest) -> PutUserPolicyResponse;
    get_user_policy(GetUserPolicyRequest) -> GetUserPolicyResponse;
    list_user_policies(ListUserPoliciesRequest) -> ListUserPoliciesResponse;
    delete_user_policy(DeleteUserPolicyRequest) -> DeleteUserPolicyResponse;
    attach_user_policy(AttachUserPolicyRequest) -> AttachUserPolicyResponse;
    detach_user_policy(DetachUserPolicyRequest) -> DetachUserPolicyResponse;
    list_attached_user_policies(ListAttachedUserPoliciesRequest) -> ListAttachedUserPoliciesResponse;
    put_user_permissions_boundary(PutUserPermissionsBoundaryRequest) -> PutUserPermissionsBoundaryResponse;
    delete_user_permissions_boundary(DeleteUserPermissionsBoundaryRequest) -> DeleteUserPermissionsBoundaryResponse;
    create_access_key(CreateAccessKeyRequest) -> CreateAccessKeyResponse;
    list_access_keys(ListAccessKeysRequest) -> ListAccessKeysResponse;
    update_access_key(UpdateAccessKeyRequest) -> UpdateAccessKeyResponse;
    delete_access_key(DeleteAccessKeyRequest) -> DeleteAccessKeyResponse;
    revoke_role_sessions(RevokeRoleSessionsRequest) -> RevokeRoleSessionsResponse;
    create_group(CreateGroupRequest) -> CreateGroupResponse;
    get_group(GetGroupRequest) -> GetGroupResponse;
    list_groups(ListGroupsRequest) -> ListGroupsResponse;
    update_group(UpdateGroupRequest) -> UpdateGroupResponse;
    delete_group(DeleteGroupRequest) -> DeleteGroupResponse;
    add_user_to_group(AddUserToGroupRequest) -> AddUserToGroupResponse;
    remove_user_from_group(RemoveUserFromGroupRequest) -> RemoveUserFromGroupResponse;
    list_groups_for_user(ListGroupsForUserRequest) -> ListGroupsResponse;
    put_group_policy(PutGroupPolicyRequest) -> PutGroupPolicyResponse;
    get_group_policy(GetGroupPolicyRequest) -> GetGroupPolicyResponse;
    list_group_policies(ListGroupPoliciesRequest) -> ListGroupPoliciesResponse;
    delete_group_policy(DeleteGroupPolicyRequest) -> DeleteGroupPolicyResponse;
    attach_group_policy(AttachGroupPolicyRequest) -> AttachGroupPolicyResponse;
    detach_group_policy(DetachGroupPolicyRequest) -> DetachGroupPolicyResponse;
    list_attached_group_policies(ListAttachedGroupPoliciesRequest) -> ListAttachedGroupPoliciesResponse;
    get_account_summary(GetAccountSummaryRequest) -> GetAccountSummaryResponse;
    list_entities_for_policy(ListEntitiesForPolicyRequest) -> ListEntitiesForPolicyResponse;
    create_account_alias(CreateAccountAliasRequest) -> CreateAccountAliasResponse;
    delete_account_alias(DeleteAccountAliasRequest) -> DeleteAccountAliasResponse;
    list_account_aliases(ListAccountAliasesRequest) -> ListAccountAliasesResponse;
    get_account_authorization_details(GetAccountAuthorizationDetailsRequest) -> GetAccountAuthorizationDetailsResponse;
    get_access_key_last_used(GetAccessKeyLastUsedRequest) -> GetAccessKeyLastUsedResponse;
    generate_credential_report(GenerateCredentialReportRequest) -> GenerateCredentialReportResponse;
    get_credential_report(GetCredentialReportRequest) -> GetCredentialReportResponse;
    simulate_principal_policy(SimulatePrincipalPolicyRequest) -> SimulatePrincipalPolicyResponse;
    simulate_custom_policy(SimulateCustomPolicyRequest) -> SimulatePrincipalPolicyResponse;
    get_context_keys_for_custom_policy(GetContextKeysForCustomPolicyRequest) -> GetContextKeysResponse;
    get_context_keys_for_principal_policy(GetContextKeysForPrincipalPolicyRequest) -> GetContextKeysResponse;
}
