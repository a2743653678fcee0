//! The Iam service: protobuf in, catalog, protobuf out.

use std::sync::Arc;

use rolecall_api::{self as pb, iam_server};
use tonic::{Request, Response, Status};

use super::{
    convert::{self, truncation},
    error::reply,
};
use crate::{
    authz::Authorizer,
    catalog::{Accounts, Catalog, EntityKind, NewRole, PolicyScope, PrincipalKind},
    domain::evaluation::Decision,
    domain::{Error, Result, clock::iso8601, ids::arn},
    telemetry::Metrics,
};

pub struct IamService {
    catalog: Arc<Catalog>,
    authz: Arc<Authorizer>,
    metrics: Metrics,
}

impl IamService {
    pub fn new(catalog: Arc<Catalog>, authz: Arc<Authorizer>, metrics: Metrics) -> Self {
        Self { catalog, authz, metrics }
    }

    fn done<T>(&self, result: Result<T>) -> Result<Response<T>, Status> {
        reply(&self.metrics, result)
    }
}

use PrincipalKind::{Role as R, User as U};

type Answer<T> = Result<Response<T>, Status>;

fn scope(s: &str) -> Result<PolicyScope> {
    match s {
        "" | "All" => Ok(PolicyScope::All),
        "AWS" => Ok(PolicyScope::Aws),
        "Local" => Ok(PolicyScope::Local),
        other => Err(Error::validation(format!(
            "1 validation error detected: Value '{other}' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"
        ))),
    }
}

#[tonic::async_trait]
impl iam_server::Iam for IamService {
    async fn create_role(&self, req: Request<pb::CreateRoleRequest>) -> Answer<pb::CreateRoleResponse> {
        let r = req.into_inner();
        let new = NewRole {
            role_name: r.role_name,
            path: r.path,
            assume_role_policy_document: r.assume_role_policy_document,
            description: r.description,
            max_session_duration: r.max_session_duration,
            permissions_boundary: r.permissions_boundary,
            tags: convert::tags_in(r.tags),
        };
        let res = self.catalog.create_role(new).await;
        self.done(res.map(|role| pb::CreateRoleResponse { role: Some(convert::role(&role)) }))
    }

    async fn get_role(&self, req: Request<pb::GetRoleRequest>) -> Answer<pb::GetRoleResponse> {
        let res = self.catalog.get_role(&req.into_inner().role_name).await;
        self.done(res.map(|role| pb::GetRoleResponse { role: Some(convert::role(&role)) }))
    }

    async fn list_roles(&self, req: Request<pb::ListRolesRequest>) -> Answer<pb::ListRolesResponse> {
        let r = req.into_inner();
        let res = self.catalog.list_roles(&r.path_prefix, &r.marker, r.max_items).await;
        self.done(res.map(|page| {
            let (is_truncated, marker) = truncation(&page);
            pb::ListRolesResponse {
                roles: page.items.iter().map(convert::role).collect(),
                is_truncated,
                marker,
            }
        }))
    }

    async fn update_role(&self, req: Request<pb::UpdateRoleRequest>) -> Answer<pb::UpdateRoleResponse> {
        let r = req.into_inner();
        let res =
            self.catalog.update_role(&r.role_name, r.description.as_deref(), r.max_session_duration).await;
        self.done(res.map(|()| pb::UpdateRoleResponse {}))
    }

    async fn delete_role(&self, req: Request<pb::DeleteRoleRequest>) -> Answer<pb::DeleteRoleResponse> {
        let res = self.catalog.delete_role(&req.into_inner().role_name).await;
        self.done(res.map(|()| pb::DeleteRoleResponse {}))
    }

    async fn update_assume_role_policy(
        &self,
        req: Request<pb::UpdateAssumeRolePolicyRequest>,
    ) -> Answer<pb::UpdateAssumeRolePolicyResponse> {
        let r = req.into_inner();
        let res = self.catalog.update_assume_role_policy(&r.role_name, &r.policy_document).await;
        self.done(res.map(|()| pb::UpdateAssumeRolePolicyResponse {}))
    }

    async fn put_role_policy(
        &self,
        req: Request<pb::PutRolePolicyRequest>,
    ) -> Answer<pb::PutRolePolicyResponse> {
        let r = req.into_inner();
        let res =
            self.catalog.put_principal_policy(R, &r.role_name, &r.policy_name, &r.policy_document).await;
        self.done(res.map(|()| pb::PutRolePolicyResponse {}))
    }

    async fn get_role_policy(
        &self,
        req: Request<pb::GetRolePolicyRequest>,
    ) -> Answer<pb::GetRolePolicyResponse> {
        let r = req.into_inner();
        let res = self.catalog.get_principal_policy(R, &r.role_name, &r.policy_name).await;
        self.done(res.map(|policy_document| pb::GetRolePolicyResponse {
            role_name: r.role_name,
            policy_name: r.policy_name,
            policy_document,
        }))
    }

    async fn list_role_policies(
        &self,
        req: Request<pb::ListRolePoliciesRequest>,
    ) -> Answer<pb::ListRolePoliciesResponse> {
        let r = req.into_inner();
        let res = self.catalog.list_principal_policies(R, &r.role_name, &r.marker, r.max_items).await;
        self.done(res.map(|page| {
            let (is_truncated, marker) = truncation(&page);
            pb::ListRolePoliciesResponse { policy_names: page.items, is_truncated, marker }
        }))
    }

    async fn delete_role_policy(
        &self,
        req: Request<pb::DeleteRolePolicyRequest>,
    ) -> Answer<pb::DeleteRolePolicyResponse> {
        let r = req.into_inner();
        let res = self.catalog.delete_principal_policy(R, &r.role_name, &r.policy_name).await;
        self.done(res.map(|()| pb::DeleteRolePolicyResponse {}))
    }

    async fn attach_role_policy(
        &self,
        req: Request<pb::AttachRolePolicyRequest>,
    ) -> Answer<pb::AttachRolePolicyResponse> {
        let r = req.into_inner();
        let res = self.catalog.attach_principal_policy(R, &r.role_name, &r.policy_arn).await;
        self.done(res.map(|()| pb::AttachRolePolicyResponse {}))
    }

    async fn detach_role_policy(
        &self,
        req: Request<pb::DetachRolePolicyRequest>,
    ) -> Answer<pb::DetachRolePolicyResponse> {
        let r = req.into_inner();
        let res = self.catalog.detach_principal_policy(R, &r.role_name, &r.policy_arn).await;
        self.done(res.map(|()| pb::DetachRolePolicyResponse {}))
    }

    async fn list_attached_role_policies(
        &self,
        req: Request<pb::ListAttachedRolePoliciesRequest>,
    ) -> Answer<pb::ListAttachedRolePoliciesResponse> {
        let r = req.into_inner();
        let res = self
            .catalog
            .list_attached_principal_policies(R, &r.role_name, &r.path_prefix, &r.marker, r.max_items)
            .await;
        self.done(res.map(|page| {
            let (is_truncated, marker) = truncation(&page);
            pb::ListAttachedRolePoliciesResponse {
                attached_policies: attached(page.items),
                is_truncated,
                marker,
            }
        }))
    }

    async fn put_role_permissions_boundary(
        &self,
        req: Request<pb::PutRolePermissionsBoundaryRequest>,
    ) -> Answer<pb::PutRolePermissionsBoundaryResponse> {
        let r = req.into_inner();
        let res = self.catalog.put_principal_boundary(R, &r.role_name, Some(&r.permissions_boundary)).await;
        self.done(res.map(|()| pb::PutRolePermissionsBoundaryResponse {}))
    }

    async fn delete_role_permissions_boundary(
        &self,
        req: Request<pb::DeleteRolePermissionsBoundaryRequest>,
    ) -> Answer<pb::DeleteRolePermissionsBoundaryResponse> {
        let res = self.catalog.put_principal_boundary(R, &req.into_inner().role_name, None).await;
        self.done(res.map(|()| pb::DeleteRolePermissionsBoundaryResponse {}))
    }

    async fn tag_role(&self, req: Request<pb::TagRoleRequest>) -> Answer<pb::TagRoleResponse> {
        let r = req.into_inner();
        let res = self.catalog.tag_principal(R, &r.role_name, &convert::tags_in(r.tags)).await;
        self.done(res.map(|()| pb::TagRoleResponse {}))
    }

    async fn untag_role(&self, req: Request<pb::UntagRoleRequest>) -> Answer<pb::UntagRoleResponse> {
        let r = req.into_inner();
        let res = self.catalog.untag_principal(R, &r.role_name, &r.tag_keys).await;
        self.done(res.map(|()| pb::UntagRoleResponse {}))
    }

    async fn list_role_tags(
        &self,
        req: Request<pb::ListRoleTagsRequest>,
    ) -> Answer<pb::ListRoleTagsResponse> {
        let r = req.into_inner();
        let res = match self.catalog.get_role(&r.role_name).await {
            Ok(role) => crate::catalog::page_of(role.tags, &r.marker, r.max_items),
            Err(e) => Err(e),
        };
        self.done(res.map(|page| {
            let (is_truncated, marker) = truncation(&page);
            pb::ListRoleTagsResponse { tags: convert::tags(&page.items), is_truncated, marker }
        }))
    }

    async fn create_policy(&self, req: Request<pb::CreatePolicyRequest>) -> Answer<pb::CreatePolicyResponse> {
        let r = req.into_inner();
        let tags = convert::tags_in(r.tags);
        let res = self
            .catalog
            .create_policy(&r.policy_name, &r.path, &r.policy_document, &r.description, &tags)
            .await;
        self.done(res.map(|record| pb::CreatePolicyResponse {
            policy: Some(convert::policy(&crate::catalog::PolicyView { record, aws_managed: false })),
        }))
    }

    async fn get_policy(&self, req: Request<pb::GetPolicyRequest>) -> Answer<pb::GetPolicyResponse> {
        let res = self.catalog.get_policy(&req.into_inner().policy_arn).await;
        self.done(res.map(|p| pb::GetPolicyResponse { policy: Some(convert::policy(&p)) }))
    }

    async fn list_policies(&self, req: Request<pb::ListPoliciesRequest>) -> Answer<pb::ListPoliciesResponse> {
        let r = req.into_inner();
        let res = match scope(&r.scope) {
            Ok(s) => {
                self.catalog.list_policies(s, r.only_attached, &r.path_prefix, &r.marker, r.max_items).await
            }
            Err(e) => Err(e),
        };
        self.done(res.map(|page| {
            let (is_truncated, marker) = truncation(&page);
            pb::ListPoliciesResponse {
                policies: page.items.iter().map(convert::policy).collect(),
                is_truncated,
                marker,
            }
        }))
    }

    async fn delete_policy(&self, req: Request<pb::DeletePolicyRequest>) -> Answer<pb::DeletePolicyResponse> {
        let res = self.catalog.delete_policy(&req.into_inner().policy_arn).await;
        self.done(res.map(|()| pb::DeletePolicyResponse {}))
    }

    async fn create_policy_version(
        &self,
        req: Request<pb::CreatePolicyVersionRequest>,
    ) -> Answer<pb::CreatePolicyVersionResponse> {
        let r = req.into_inner();
        let res =
            self.catalog.create_policy_version(&r.policy_arn, &r.policy_document, r.set_as_default).await;
        self.done(res.map(|v| pb::CreatePolicyVersionResponse {
            policy_version: Some(convert::policy_version(&v, r.set_as_default)),
        }))
    }

    async fn get_policy_version(
        &self,
        req: Request<pb::GetPolicyVersionRequest>,
    ) -> Answer<pb::GetPolicyVersionResponse> {
        let r = req.into_inner();
        let res = self.catalog.get_policy_version(&r.policy_arn, &r.version_id).await;
        self.done(res.map(|(v, d)| pb::GetPolicyVersionResponse {
            policy_version: Some(convert::policy_version(&v, d)),
        }))
    }

    async fn list_policy_versions(
        &self,
        req: Request<pb::ListPolicyVersionsRequest>,
    ) -> Answer<pb::ListPolicyVersionsResponse> {
        let r = req.into_inner();
        let res = self.catalog.list_policy_versions(&r.policy_arn, &r.marker, r.max_items).await;
        self.done(res.map(|page| {
            let (is_truncated, marker) = truncation(&page);
            pb::ListPolicyVersionsResponse {
                versions: page.items.iter().map(|(v, d)| convert::policy_version(v, *d)).collect(),
                is_truncated,
                marker,
            }
        }))
    }

    async fn set_default_policy_version(
        &self,
        req: Request<pb::SetDefaultPolicyVersionRequest>,
    ) -> Answer<pb::SetDefaultPolicyVersionResponse> {
        let r = req.into_inner();
        let res = self.catalog.set_default_policy_version(&r.policy_arn, &r.version_id).await;
        self.done(res.map(|()| pb::SetDefaultPolicyVersionResponse {}))
    }

    async fn delete_policy_version(
        &self,
        req: Request<pb::DeletePolicyVersionRequest>,
    ) -> Answer<pb::DeletePolicyVersionResponse> {
        let r = req.into_inner();
        let res = self.catalog.delete_policy_version(&r.policy_arn, &r.version_id).await;
        self.done(res.map(|()| pb::DeletePolicyVersionResponse {}))
    }

    async fn create_instance_profile(
        &self,
        req: Request<pb::CreateInstanceProfileRequest>,
    ) -> Answer<pb::CreateInstanceProfileResponse> {
        let r = req.into_inner();
        let res = self
            .catalog
            .create_instance_profile(&r.instance_profile_name, &r.path, &convert::tags_in(r.tags))
            .await;
        self.done(res.map(|p| pb::CreateInstanceProfileResponse {
            instance_profile: Some(convert::instance_profile(&p, &[])),
        }))
    }

    async fn get_instance_profile(
        &self,
        req: Request<pb::GetInstanceProfileRequest>,
    ) -> Answer<pb::GetInstanceProfileResponse> {
        let res = self.catalog.get_instance_profile(&req.into_inner().instance_profile_name).await;
        self.done(res.map(|(p, roles)| pb::GetInstanceProfileResponse {
            instance_profile: Some(convert::instance_profile(&p, &roles)),
        }))
    }

    async fn list_instance_profiles(
        &self,
        req: Request<pb::ListInstanceProfilesRequest>,
    ) -> Answer<pb::ListInstanceProfilesResponse> {
        let r = req.into_inner();
        let res = self.catalog.list_instance_profiles(&r.path_prefix, &r.marker, r.max_items).await;
        self.done(res.map(|page| {
            let (is_truncated, marker) = truncation(&page);
            let instance_profiles =
                page.items.iter().map(|(p, roles)| convert::instance_profile(p, roles)).collect();
            pb::ListInstanceProfilesResponse { instance_profiles, is_truncated, marker }
        }))
    }

    async fn list_instance_profiles_for_role(
        &self,
        req: Request<pb::ListInstanceProfilesForRoleRequest>,
    ) -> Answer<pb::ListInstanceProfilesForRoleResponse> {
        let r = req.into_inner();
        let res = self.catalog.list_instance_profiles_for_role(&r.role_name, &r.marker, r.max_items).await;
        self.done(res.map(|page| {
            let (is_truncated, marker) = truncation(&page);
            let instance_profiles =
                page.items.iter().map(|(p, roles)| convert::instance_profile(p, roles)).collect();
            pb::ListInstanceProfilesForRoleResponse { instance_profiles, is_truncated, marker }
        }))
    }

    async fn delete_instance_profile(
        &self,
        req: Request<pb::DeleteInstanceProfileRequest>,
    ) -> Answer<pb::DeleteInstanceProfileResponse> {
        let res = self.catalog.delete_instance_profile(&req.into_inner().instance_profile_name).await;
        self.done(res.map(|()| pb::DeleteInstanceProfileResponse {}))
    }

    async fn add_role_to_instance_profile(
        &self,
        req: Request<pb::AddRoleToInstanceProfileRequest>,
    ) -> Answer<pb::AddRoleToInstanceProfileResponse> {
        let r = req.into_inner();
        let res = self.catalog.add_role_to_instance_profile(&r.instance_profile_name, &r.role_name).await;
        self.done(res.map(|()| pb::AddRoleToInstanceProfileResponse {}))
    }

    async fn remove_role_from_instance_profile(
        &self,
        req: Request<pb::RemoveRoleFromInstanceProfileRequest>,
    ) -> Answer<pb::RemoveRoleFromInstanceProfileResponse> {
        let r = req.into_inner();
        let res =
            self.catalog.remove_role_from_instance_profile(&r.instance_profile_name, &r.role_name).await;
        self.done(res.map(|()| pb::RemoveRoleFromInstanceProfileResponse {}))
    }

    async fn create_user(&self, req: Request<pb::CreateUserRequest>) -> Answer<pb::CreateUserResponse> {
        let r = req.into_inner();
        let tags = convert::tags_in(r.tags);
        let res = self.catalog.create_user(&r.user_name, &r.path, &r.permissions_boundary, &tags).await;
        self.done(res.map(|u| pb::CreateUserResponse { user: Some(convert::user(&u)) }))
    }

    async fn get_user(&self, req: Request<pb::GetUserRequest>) -> Answer<pb::GetUserResponse> {
        let res = self.catalog.get_user(&req.into_inner().user_name).await;
        self.done(res.map(|u| pb::GetUserResponse { user: Some(convert::user(&u)) }))
    }

    async fn list_users(&self, req: Request<pb::ListUsersRequest>) -> Answer<pb::ListUsersResponse> {
        let r = req.into_inner();
        let res = self.catalog.list_users(&r.path_prefix, &r.marker, r.max_items).await;
        self.done(res.map(|page| {
            let (is_truncated, marker) = truncation(&page);
            pb::ListUsersResponse {
                users: page.items.iter().map(convert::user).collect(),
                is_truncated,
                marker,
            }
        }))
    }

    async fn delete_user(&self, req: Request<pb::DeleteUserRequest>) -> Answer<pb::DeleteUserResponse> {
        let res = self.catalog.delete_user(&req.into_inner().user_name).await;
        self.done(res.map(|()| pb::DeleteUserResponse {}))
    }

    async fn tag_user(&self, req: Request<pb::TagUserRequest>) -> Answer<pb::TagUserResponse> {
        let r = req.into_inner();
        let res = self.catalog.tag_principal(U, &r.user_name, &convert::tags_in(r.tags)).await;
        self.done(res.map(|()| pb::TagUserResponse {}))
    }

    async fn untag_user(&self, req: Request<pb::UntagUserRequest>) -> Answer<pb::UntagUserResponse> {
        let r = req.into_inner();
        let res = self.catalog.untag_principal(U, &r.user_name, &r.tag_keys).await;
        self.done(res.map(|()| pb::UntagUserResponse {}))
    }

    async fn put_user_policy(
        &self,
        req: Request<pb::PutUserPolicyRequest>,
    ) -> Answer<pb::PutUserPolicyResponse> {
        let r = req.into_inner();
        let res =
            self.catalog.put_principal_policy(U, &r.user_name, &r.policy_name, &r.policy_document).await;
        self.done(res.map(|()| pb::PutUserPolicyResponse {}))
    }

    async fn get_user_policy(
        &self,
        req: Request<pb::GetUserPolicyRequest>,
    ) -> Answer<pb::GetUserPolicyResponse> {
        let r = req.into_inner();
        let res = self.catalog.get_principal_policy(U, &r.user_name, &r.policy_name).await;
        self.done(res.map(|policy_document| pb::GetUserPolicyResponse {
            user_name: r.user_name,
            policy_name: r.policy_name,
            policy_document,
        }))
    }

    async fn list_user_policies(
        &self,
        req: Request<pb::ListUserPoliciesRequest>,
    ) -> Answer<pb::ListUserPoliciesResponse> {
        let r = req.into_inner();
        let res = self.catalog.list_principal_policies(U, &r.user_name, &r.marker, r.max_items).await;
        self.done(res.map(|page| {
            let (is_truncated, marker) = truncation(&page);
            pb::ListUserPoliciesResponse { policy_names: page.items, is_truncated, marker }
        }))
    }

    async fn delete_user_policy(
        &self,
        req: Request<pb::DeleteUserPolicyRequest>,
    ) -> Answer<pb::DeleteUserPolicyResponse> {
        let r = req.into_inner();
        let res = self.catalog.delete_principal_policy(U, &r.user_name, &r.policy_name).await;
        self.done(res.map(|()| pb::DeleteUserPolicyResponse {}))
    }

    async fn attach_user_policy(
        &self,
        req: Request<pb::AttachUserPolicyRequest>,
    ) -> Answer<pb::AttachUserPolicyResponse> {
        let r = req.into_inner();
        let res = self.catalog.attach_principal_policy(U, &r.user_name, &r.policy_arn).await;
        self.done(res.map(|()| pb::AttachUserPolicyResponse {}))
    }

    async fn detach_user_policy(
        &self,
        req: Request<pb::DetachUserPolicyRequest>,
    ) -> Answer<pb::DetachUserPolicyResponse> {
        let r = req.into_inner();
        let res = self.catalog.detach_principal_policy(U, &r.user_name, &r.policy_arn).await;
        self.done(res.map(|()| pb::DetachUserPolicyResponse {}))
    }

    async fn list_attached_user_policies(
        &self,
        req: Request<pb::ListAttachedUserPoliciesRequest>,
    ) -> Answer<pb::ListAttachedUserPoliciesResponse> {
        let r = req.into_inner();
        let res = self
            .catalog
            .list_attached_principal_policies(U, &r.user_name, &r.path_prefix, &r.marker, r.max_items)
            .await;
        self.done(res.map(|page| {
            let (is_truncated, marker) = truncation(&page);
            pb::ListAttachedUserPoliciesResponse {
                attached_policies: attached(page.items),
                is_truncated,
                marker,
            }
        }))
    }

    async fn put_user_permissions_boundary(
        &self,
        req: Request<pb::PutUserPermissionsBoundaryRequest>,
    ) -> Answer<pb::PutUserPermissionsBoundaryResponse> {
        let r = req.into_inner();
        let res = self.catalog.put_principal_boundary(U, &r.user_name, Some(&r.permissions_boundary)).await;
        self.done(res.map(|()| pb::PutUserPermissionsBoundaryResponse {}))
    }

    async fn delete_user_permissions_boundary(
        &self,
        req: Request<pb::DeleteUserPermissionsBoundaryRequest>,
    ) -> Answer<pb::DeleteUserPermissionsBoundaryResponse> {
        let res = self.catalog.put_principal_boundary(U, &req.into_inner().user_name, None).await;
        self.done(res.map(|()| pb::DeleteUserPermissionsBoundaryResponse {}))
    }

    async fn create_access_key(
        &self,
        req: Request<pb::CreateAccessKeyRequest>,
    ) -> Answer<pb::CreateAccessKeyResponse> {
        let user_name = req.into_inner().user_name;
        let res = self.catalog.create_access_key(&user_name).await;
        self.done(res.map(|k| pb::CreateAccessKeyResponse {
            access_key: Some(pb::AccessKey {
                user_name: user_name.clone(),
                access_key_id: k.access_key_id,
                status: k.status.as_str().into(),
                secret_access_key: k.secret_access_key.0,
                create_date: crate::domain::clock::iso8601(k.create_date),
            }),
        }))
    }

    async fn list_access_keys(
        &self,
        req: Request<pb::ListAccessKeysRequest>,
    ) -> Answer<pb::ListAccessKeysResponse> {
        let r = req.into_inner();
        let res = self.catalog.list_access_keys(&r.user_name, &r.marker, r.max_items).await;
        self.done(res.map(|page| {
            let (is_truncated, marker) = truncation(&page);
            let access_key_metadata =
                page.items.iter().map(|k| convert::access_key_metadata(&r.user_name, k)).collect();
            pb::ListAccessKeysResponse { access_key_metadata, is_truncated, marker }
        }))
    }

    async fn update_access_key(
        &self,
        req: Request<pb::UpdateAccessKeyRequest>,
    ) -> Answer<pb::UpdateAccessKeyResponse> {
        let r = req.into_inner();
        let res = self.catalog.update_access_key(&r.user_name, &r.access_key_id, &r.status).await;
        self.done(res.map(|()| pb::UpdateAccessKeyResponse {}))
    }

    async fn delete_access_key(
        &self,
        req: Request<pb::DeleteAccessKeyRequest>,
    ) -> Answer<pb::DeleteAccessKeyResponse> {
        let r = req.into_inner();
        let res = self.catalog.delete_access_key(&r.user_name, &r.access_key_id).await;
        self.done(res.map(|()| pb::DeleteAccessKeyResponse {}))
    }

    async fn revoke_role_sessions(
        &self,
        req: Request<pb::RevokeRoleSessionsRequest>,
    ) -> Answer<pb::RevokeRoleSessionsResponse> {
        let res = self.catalog.revoke_role_sessions(&req.get_ref().role_name).await;
        self.done(res.map(|at| pb::RevokeRoleSessionsResponse { revoked_before: iso8601(at) }))
    }

    async fn simulate_principal_policy(
        &self,
        req: Request<pb::SimulatePrincipalPolicyRequest>,
    ) -> Answer<pb::SimulatePrincipalPolicyResponse> {
        let r = req.into_inner();
        let keys: Vec<(String, Vec<String>)> =
            r.context_entries.into_iter().map(|e| (e.context_key_name, e.context_key_values)).collect();
        let res = self.authz.simulate(&r.policy_source_arn, &r.action_names, &r.resource_arns, &keys).await;
        self.done(res.map(|evaluations| {
            pb::SimulatePrincipalPolicyResponse {
                evaluation_results: evaluations
                    .into_iter()
                    .map(|e| pb::EvaluationResult {
                        eval_action_name: e.action,
                        eval_resource_name: e.resource,
                        eval_decision: match e.decision {
                            Decision::Allow => "allowed",
                            Decision::ExplicitDeny => "explicitDeny",
                            Decision::ImplicitDeny => "implicitDeny",
                        }
                        .to_string(),
                    })
                    .collect(),
                is_truncated: false,
            }
        }))
    }
}

fn attached(items: Vec<(String, String)>) -> Vec<pb::AttachedPolicy> {
    items
        .into_iter()
        .map(|(policy_name, policy_arn)| pb::AttachedPolicy { policy_name, policy_arn })
        .collect()
}

/// The first field of every IAM request: the entity's name (or a policy's ARN).
#[derive(Clone, PartialEq, prost::Message)]
struct Named {
    #[prost(string, tag = "1")]
    name: String,
}

/// The first two fields of a Create call: the new entity's name and path.
#[derive(Clone, PartialEq, prost::Message)]
struct NamedWithPath {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    path: String,
}

/// The resource each Iam call acts on, as IAM authorizes it: the role, user, instance
/// profile or policy's ARN (with its path), a path-prefix ARN for the List calls.
pub struct IamResources {
    accounts: Arc<Accounts>,
}

impl IamResources {
    pub fn new(accounts: Arc<Accounts>) -> Self {
        Self { accounts }
    }

    async fn entity(&self, catalog: &Catalog, kind: EntityKind, name: &str) -> Result<String> {
        if let Some(arn) = catalog.entity_arn(kind, name).await? {
            return Ok(arn);
        }
        // Not there (yet): its ARN on the root path, so that the call answers NoSuchEntity
        // (or AccessDenied) as AWS would.
        let account = catalog.account_id();
        Ok(match kind {
            EntityKind::Role => arn::role(account, "/", name),
            EntityKind::User => arn::user(account, "/", name),
            EntityKind::InstanceProfile => arn::instance_profile(account, "/", name),
        })
    }
}

#[tonic::async_trait]
impl super::sigv4::Resources for IamResources {
    async fn authorizations(
        &self,
        account: &str,
        service: &str,
        method: &str,
        message: &[u8],
    ) -> Result<Vec<(String, String)>> {
        Ok(vec![(format!("{service}:{method}"), self.resource(account, method, message).await?)])
    }
}

impl IamResources {
    /// The entity's ARN a call acts on (for a Create call, the ARN it will have; for the
    /// List calls, the path-prefix ARN).
    async fn resource(&self, account: &str, method: &str, message: &[u8]) -> Result<String> {
        use prost::Message;
        let Some(catalog) = self.accounts.get(account) else { return Ok("*".to_string()) };
        let account = account.to_string();
        let path = |p: &str| if p.is_empty() { "/".to_string() } else { p.to_string() };
        if let Some(kind) = method.strip_prefix("Create").and_then(created_kind) {
            let m = NamedWithPath::decode(message).unwrap_or_default();
            return Ok(match kind {
                Created::Role => arn::role(&account, &path(&m.path), &m.name),
                Created::User => arn::user(&account, &path(&m.path), &m.name),
                Created::InstanceProfile => arn::instance_profile(&account, &path(&m.path), &m.name),
                Created::Policy => arn::policy(&account, &path(&m.path), &m.name),
            });
        }
        let first = Named::decode(message).unwrap_or_default().name;
        let prefix = |kind: &str| format!("arn:aws:iam::{account}:{kind}{}", first.trim_start_matches('/'));
        Ok(match method {
            "ListRoles" => prefix("role/"),
            "ListUsers" => prefix("user/"),
            "ListInstanceProfiles" => prefix("instance-profile/"),
            "ListPolicies" => "*".to_string(),
            "AddRoleToInstanceProfile"
            | "RemoveRoleFromInstanceProfile"
            | "GetInstanceProfile"
            | "DeleteInstanceProfile" => self.entity(catalog, EntityKind::InstanceProfile, &first).await?,
            m if m.contains("Polic")
                && m != "SimulatePrincipalPolicy"
                && !m.contains("Role")
                && !m.contains("User") =>
            {
                first
            }
            "SimulatePrincipalPolicy" => first,
            m if m.contains("Role") => self.entity(catalog, EntityKind::Role, &first).await?,
            _ => self.entity(catalog, EntityKind::User, &first).await?,
        })
    }
}

enum Created {
    Role,
    User,
    InstanceProfile,
    Policy,
}

fn created_kind(rest: &str) -> Option<Created> {
    match rest {
        "Role" => Some(Created::Role),
        "User" => Some(Created::User),
        "InstanceProfile" => Some(Created::InstanceProfile),
        "Policy" => Some(Created::Policy),
        _ => None,
    }
}
