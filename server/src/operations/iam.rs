//! The IAM operations: each authorized on its decoded request (iam:ACTION on the entity it
//! names, read from that request), audited, and carried out on its account's catalog.

use std::{future::Future, sync::Arc};

use rolecall_api as pb;

use super::{
    Gate, Operation,
    convert::{self, truncation},
};
use crate::{
    authz::{CallContext, Evaluation, MatchedStatement, Simulation},
    catalog::AuthorizationDetail,
    catalog::{Catalog, EntityKind, NewRole, PolicyScope},
    domain::evaluation::Decision,
    domain::principal::PrincipalKind,
    domain::{Error, Result, clock::iso8601, ids::arn},
};

/// The IAM operations of one account.
pub struct Iam {
    catalog: Arc<Catalog>,
    authz: Arc<crate::authz::Authorizer>,
    gate: Gate,
}

impl Iam {
    /// The IAM operations of `catalog`'s account; `gate` authorizes, audits and answers.
    pub fn new(catalog: Arc<Catalog>, gate: Gate) -> Self {
        Self { catalog, authz: gate.authz.clone(), gate }
    }

    /// Authorizes the decoded `request` (iam:ACTION on what it names), runs `act` on that
    /// same request, audits, answers.
    async fn run<Q, A, F, Fut>(&self, caller: &CallContext, request: Q, act: F) -> Result<A>
    where
        Q: IamCall,
        F: FnOnce(Q) -> Fut,
        Fut: Future<Output = Result<A>>,
    {
        let needed = match caller.principal {
            Some(_) => self.resource(request.target()).await.map(|r| vec![(format!("iam:{}", Q::ACTION), r)]),
            None => Ok(Vec::new()),
        };
        self.gate.run(caller, request, needed, act).await
    }
}

use crate::domain::model::{Group as G, Role as R, User as U};

fn scope(s: &str) -> Result<PolicyScope> {
    match s {
        "" | "All" => Ok(PolicyScope::All),
        "AWS" => Ok(PolicyScope::Aws),
        "Local" => Ok(PolicyScope::Local),
        other => Err(crate::domain::validate::not_in_enum("scope", other, &["All", "AWS", "Local"])),
    }
}

/// The inputs SimulatePrincipalPolicyRequest and SimulateCustomPolicyRequest share (by the
/// same field names), as one [`Simulation`].
macro_rules! simulation {
    ($r:ident, $keys:ident) => {
        Simulation {
            identity: &$r.policy_input_list,
            boundaries: &$r.permissions_boundary_policy_input_list,
            resource_policy: &$r.resource_policy,
            resource_owner: &$r.resource_owner,
            caller_arn: &$r.caller_arn,
            actions: &$r.action_names,
            resources: &$r.resource_arns,
            keys: &$keys,
        }
    };
}

impl Iam {
    pub async fn create_role(
        &self,
        caller: &CallContext,
        req: pb::CreateRoleRequest,
    ) -> Result<pb::CreateRoleResponse> {
        self.run(caller, req, |r| async move {
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
            res.map(|role| pb::CreateRoleResponse { role: Some(convert::role(&role)) })
        })
        .await
    }

    pub async fn get_role(
        &self,
        caller: &CallContext,
        req: pb::GetRoleRequest,
    ) -> Result<pb::GetRoleResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.get_role(&r.role_name).await;
            res.map(|role| pb::GetRoleResponse { role: Some(convert::role(&role)) })
        })
        .await
    }

    pub async fn list_roles(
        &self,
        caller: &CallContext,
        req: pb::ListRolesRequest,
    ) -> Result<pb::ListRolesResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.list_roles(&r.path_prefix, &r.marker, r.max_items).await;
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                pb::ListRolesResponse {
                    roles: page.items.iter().map(convert::role).collect(),
                    is_truncated,
                    marker,
                }
            })
        })
        .await
    }

    pub async fn update_role(
        &self,
        caller: &CallContext,
        req: pb::UpdateRoleRequest,
    ) -> Result<pb::UpdateRoleResponse> {
        self.run(caller, req, |r| async move {
            let res = self
                .catalog
                .update_role(&r.role_name, r.description.as_deref(), r.max_session_duration)
                .await;
            res.map(|()| pb::UpdateRoleResponse {})
        })
        .await
    }

    pub async fn delete_role(
        &self,
        caller: &CallContext,
        req: pb::DeleteRoleRequest,
    ) -> Result<pb::DeleteRoleResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.delete_role(&r.role_name).await;
            res.map(|()| pb::DeleteRoleResponse {})
        })
        .await
    }

    pub async fn update_assume_role_policy(
        &self,
        caller: &CallContext,
        req: pb::UpdateAssumeRolePolicyRequest,
    ) -> Result<pb::UpdateAssumeRolePolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.update_assume_role_policy(&r.role_name, &r.policy_document).await;
            res.map(|()| pb::UpdateAssumeRolePolicyResponse {})
        })
        .await
    }

    pub async fn put_role_policy(
        &self,
        caller: &CallContext,
        req: pb::PutRolePolicyRequest,
    ) -> Result<pb::PutRolePolicyResponse> {
        self.run(caller, req, |r| async move {
            let res =
                self.catalog.put_inline_policy::<R>(&r.role_name, &r.policy_name, &r.policy_document).await;
            res.map(|()| pb::PutRolePolicyResponse {})
        })
        .await
    }

    pub async fn get_role_policy(
        &self,
        caller: &CallContext,
        req: pb::GetRolePolicyRequest,
    ) -> Result<pb::GetRolePolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.get_inline_policy::<R>(&r.role_name, &r.policy_name).await;
            res.map(|policy_document| pb::GetRolePolicyResponse {
                role_name: r.role_name,
                policy_name: r.policy_name,
                policy_document,
            })
        })
        .await
    }

    pub async fn list_role_policies(
        &self,
        caller: &CallContext,
        req: pb::ListRolePoliciesRequest,
    ) -> Result<pb::ListRolePoliciesResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.list_inline_policies::<R>(&r.role_name, &r.marker, r.max_items).await;
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                pb::ListRolePoliciesResponse { policy_names: page.items, is_truncated, marker }
            })
        })
        .await
    }

    pub async fn delete_role_policy(
        &self,
        caller: &CallContext,
        req: pb::DeleteRolePolicyRequest,
    ) -> Result<pb::DeleteRolePolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.delete_inline_policy::<R>(&r.role_name, &r.policy_name).await;
            res.map(|()| pb::DeleteRolePolicyResponse {})
        })
        .await
    }

    pub async fn attach_role_policy(
        &self,
        caller: &CallContext,
        req: pb::AttachRolePolicyRequest,
    ) -> Result<pb::AttachRolePolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.attach_policy::<R>(&r.role_name, &r.policy_arn).await;
            res.map(|()| pb::AttachRolePolicyResponse {})
        })
        .await
    }

    pub async fn detach_role_policy(
        &self,
        caller: &CallContext,
        req: pb::DetachRolePolicyRequest,
    ) -> Result<pb::DetachRolePolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.detach_policy::<R>(&r.role_name, &r.policy_arn).await;
            res.map(|()| pb::DetachRolePolicyResponse {})
        })
        .await
    }

    pub async fn list_attached_role_policies(
        &self,
        caller: &CallContext,
        req: pb::ListAttachedRolePoliciesRequest,
    ) -> Result<pb::ListAttachedRolePoliciesResponse> {
        self.run(caller, req, |r| async move {
            let res = self
                .catalog
                .list_attached_policies::<R>(&r.role_name, &r.path_prefix, &r.marker, r.max_items)
                .await;
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                pb::ListAttachedRolePoliciesResponse {
                    attached_policies: attached(page.items),
                    is_truncated,
                    marker,
                }
            })
        })
        .await
    }

    pub async fn put_role_permissions_boundary(
        &self,
        caller: &CallContext,
        req: pb::PutRolePermissionsBoundaryRequest,
    ) -> Result<pb::PutRolePermissionsBoundaryResponse> {
        self.run(caller, req, |r| async move {
            let res =
                self.catalog.set_permissions_boundary::<R>(&r.role_name, Some(&r.permissions_boundary)).await;
            res.map(|()| pb::PutRolePermissionsBoundaryResponse {})
        })
        .await
    }

    pub async fn delete_role_permissions_boundary(
        &self,
        caller: &CallContext,
        req: pb::DeleteRolePermissionsBoundaryRequest,
    ) -> Result<pb::DeleteRolePermissionsBoundaryResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.set_permissions_boundary::<R>(&r.role_name, None).await;
            res.map(|()| pb::DeleteRolePermissionsBoundaryResponse {})
        })
        .await
    }

    pub async fn tag_role(
        &self,
        caller: &CallContext,
        req: pb::TagRoleRequest,
    ) -> Result<pb::TagRoleResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.tag_holder::<R>(&r.role_name, &convert::tags_in(r.tags)).await;
            res.map(|()| pb::TagRoleResponse {})
        })
        .await
    }

    pub async fn untag_role(
        &self,
        caller: &CallContext,
        req: pb::UntagRoleRequest,
    ) -> Result<pb::UntagRoleResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.untag_holder::<R>(&r.role_name, &r.tag_keys).await;
            res.map(|()| pb::UntagRoleResponse {})
        })
        .await
    }

    pub async fn list_role_tags(
        &self,
        caller: &CallContext,
        req: pb::ListRoleTagsRequest,
    ) -> Result<pb::ListRoleTagsResponse> {
        self.run(caller, req, |r| async move {
            let res = match self.catalog.get_role(&r.role_name).await {
                Ok(role) => crate::catalog::page_of(role.tags, &r.marker, r.max_items),
                Err(e) => Err(e),
            };
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                pb::ListRoleTagsResponse { tags: convert::tags(&page.items), is_truncated, marker }
            })
        })
        .await
    }

    pub async fn create_policy(
        &self,
        caller: &CallContext,
        req: pb::CreatePolicyRequest,
    ) -> Result<pb::CreatePolicyResponse> {
        self.run(caller, req, |r| async move {
            let tags = convert::tags_in(r.tags);
            let res = self
                .catalog
                .create_policy(&r.policy_name, &r.path, &r.policy_document, &r.description, &tags)
                .await;
            res.map(|record| pb::CreatePolicyResponse {
                policy: Some(convert::policy(&crate::catalog::PolicyView { record, aws_managed: false })),
            })
        })
        .await
    }

    pub async fn get_policy(
        &self,
        caller: &CallContext,
        req: pb::GetPolicyRequest,
    ) -> Result<pb::GetPolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.get_policy(&r.policy_arn).await;
            res.map(|p| pb::GetPolicyResponse { policy: Some(convert::policy(&p)) })
        })
        .await
    }

    pub async fn list_policies(
        &self,
        caller: &CallContext,
        req: pb::ListPoliciesRequest,
    ) -> Result<pb::ListPoliciesResponse> {
        self.run(caller, req, |r| async move {
            let res = match scope(&r.scope) {
                Ok(s) => {
                    self.catalog
                        .list_policies(
                            s,
                            r.only_attached,
                            &r.policy_usage_filter,
                            &r.path_prefix,
                            &r.marker,
                            r.max_items,
                        )
                        .await
                }
                Err(e) => Err(e),
            };
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                pb::ListPoliciesResponse {
                    policies: page.items.iter().map(convert::policy).collect(),
                    is_truncated,
                    marker,
                }
            })
        })
        .await
    }

    pub async fn delete_policy(
        &self,
        caller: &CallContext,
        req: pb::DeletePolicyRequest,
    ) -> Result<pb::DeletePolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.delete_policy(&r.policy_arn).await;
            res.map(|()| pb::DeletePolicyResponse {})
        })
        .await
    }

    pub async fn create_policy_version(
        &self,
        caller: &CallContext,
        req: pb::CreatePolicyVersionRequest,
    ) -> Result<pb::CreatePolicyVersionResponse> {
        self.run(caller, req, |r| async move {
            let res =
                self.catalog.create_policy_version(&r.policy_arn, &r.policy_document, r.set_as_default).await;
            res.map(|v| pb::CreatePolicyVersionResponse {
                policy_version: Some(convert::policy_version_summary(&v, r.set_as_default)),
            })
        })
        .await
    }

    pub async fn get_policy_version(
        &self,
        caller: &CallContext,
        req: pb::GetPolicyVersionRequest,
    ) -> Result<pb::GetPolicyVersionResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.get_policy_version(&r.policy_arn, &r.version_id).await;
            res.map(|(v, d)| pb::GetPolicyVersionResponse {
                policy_version: Some(convert::policy_version(&v, d)),
            })
        })
        .await
    }

    pub async fn list_policy_versions(
        &self,
        caller: &CallContext,
        req: pb::ListPolicyVersionsRequest,
    ) -> Result<pb::ListPolicyVersionsResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.list_policy_versions(&r.policy_arn, &r.marker, r.max_items).await;
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                pb::ListPolicyVersionsResponse {
                    versions: page
                        .items
                        .iter()
                        .map(|(v, d)| convert::policy_version_summary(v, *d))
                        .collect(),
                    is_truncated,
                    marker,
                }
            })
        })
        .await
    }

    pub async fn set_default_policy_version(
        &self,
        caller: &CallContext,
        req: pb::SetDefaultPolicyVersionRequest,
    ) -> Result<pb::SetDefaultPolicyVersionResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.set_default_policy_version(&r.policy_arn, &r.version_id).await;
            res.map(|()| pb::SetDefaultPolicyVersionResponse {})
        })
        .await
    }

    pub async fn delete_policy_version(
        &self,
        caller: &CallContext,
        req: pb::DeletePolicyVersionRequest,
    ) -> Result<pb::DeletePolicyVersionResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.delete_policy_version(&r.policy_arn, &r.version_id).await;
            res.map(|()| pb::DeletePolicyVersionResponse {})
        })
        .await
    }

    pub async fn create_instance_profile(
        &self,
        caller: &CallContext,
        req: pb::CreateInstanceProfileRequest,
    ) -> Result<pb::CreateInstanceProfileResponse> {
        self.run(caller, req, |r| async move {
            let res = self
                .catalog
                .create_instance_profile(&r.instance_profile_name, &r.path, &convert::tags_in(r.tags))
                .await;
            res.map(|p| pb::CreateInstanceProfileResponse {
                instance_profile: Some(convert::instance_profile(&p, &[])),
            })
        })
        .await
    }

    pub async fn get_instance_profile(
        &self,
        caller: &CallContext,
        req: pb::GetInstanceProfileRequest,
    ) -> Result<pb::GetInstanceProfileResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.get_instance_profile(&r.instance_profile_name).await;
            res.map(|(p, roles)| pb::GetInstanceProfileResponse {
                instance_profile: Some(convert::instance_profile(&p, &roles)),
            })
        })
        .await
    }

    pub async fn list_instance_profiles(
        &self,
        caller: &CallContext,
        req: pb::ListInstanceProfilesRequest,
    ) -> Result<pb::ListInstanceProfilesResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.list_instance_profiles(&r.path_prefix, &r.marker, r.max_items).await;
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                let instance_profiles =
                    page.items.iter().map(|(p, roles)| convert::instance_profile(p, roles)).collect();
                pb::ListInstanceProfilesResponse { instance_profiles, is_truncated, marker }
            })
        })
        .await
    }

    pub async fn list_instance_profiles_for_role(
        &self,
        caller: &CallContext,
        req: pb::ListInstanceProfilesForRoleRequest,
    ) -> Result<pb::ListInstanceProfilesForRoleResponse> {
        self.run(caller, req, |r| async move {
            let res =
                self.catalog.list_instance_profiles_for_role(&r.role_name, &r.marker, r.max_items).await;
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                let instance_profiles =
                    page.items.iter().map(|(p, roles)| convert::instance_profile(p, roles)).collect();
                pb::ListInstanceProfilesForRoleResponse { instance_profiles, is_truncated, marker }
            })
        })
        .await
    }

    pub async fn delete_instance_profile(
        &self,
        caller: &CallContext,
        req: pb::DeleteInstanceProfileRequest,
    ) -> Result<pb::DeleteInstanceProfileResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.delete_instance_profile(&r.instance_profile_name).await;
            res.map(|()| pb::DeleteInstanceProfileResponse {})
        })
        .await
    }

    pub async fn add_role_to_instance_profile(
        &self,
        caller: &CallContext,
        req: pb::AddRoleToInstanceProfileRequest,
    ) -> Result<pb::AddRoleToInstanceProfileResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.add_role_to_instance_profile(&r.instance_profile_name, &r.role_name).await;
            res.map(|()| pb::AddRoleToInstanceProfileResponse {})
        })
        .await
    }

    pub async fn remove_role_from_instance_profile(
        &self,
        caller: &CallContext,
        req: pb::RemoveRoleFromInstanceProfileRequest,
    ) -> Result<pb::RemoveRoleFromInstanceProfileResponse> {
        self.run(caller, req, |r| async move {
            let res =
                self.catalog.remove_role_from_instance_profile(&r.instance_profile_name, &r.role_name).await;
            res.map(|()| pb::RemoveRoleFromInstanceProfileResponse {})
        })
        .await
    }

    pub async fn create_user(
        &self,
        caller: &CallContext,
        req: pb::CreateUserRequest,
    ) -> Result<pb::CreateUserResponse> {
        self.run(caller, req, |r| async move {
            let tags = convert::tags_in(r.tags);
            let res = self.catalog.create_user(&r.user_name, &r.path, &r.permissions_boundary, &tags).await;
            res.map(|u| pb::CreateUserResponse { user: Some(convert::user(&u)) })
        })
        .await
    }

    pub async fn get_user(
        &self,
        caller: &CallContext,
        mut req: pb::GetUserRequest,
    ) -> Result<pb::GetUserResponse> {
        // Without a name, the calling user (GetUser, IAM API Reference: "If you do not
        // specify a user name, IAM determines the user name implicitly based on the Amazon
        // Web Services access key ID used to sign the request"); the name is set before the
        // request is authorized, so that the decision is on the user it reads.
        if req.user_name.is_empty() {
            match caller.principal.as_ref().map(|p| &p.kind) {
                Some(PrincipalKind::User { user_name }) => req.user_name = user_name.clone(),
                Some(PrincipalKind::Root) => {
                    let principal = caller.principal.as_ref().map(|p| (p.account_id.clone(), p.arn.clone()));
                    let (user_id, arn) = principal.unwrap_or_default();
                    let root = pb::User { user_id, arn, ..Default::default() };
                    return self
                        .run(caller, req, |_| async move { Ok(pb::GetUserResponse { user: Some(root) }) })
                        .await;
                }
                _ => {
                    return Err(Error::validation(
                        "Must specify userName when calling with non-User credentials",
                    ));
                }
            }
        }
        self.run(caller, req, |r| async move {
            let res = self.catalog.get_user(&r.user_name).await;
            res.map(|u| pb::GetUserResponse { user: Some(convert::user(&u)) })
        })
        .await
    }

    pub async fn list_users(
        &self,
        caller: &CallContext,
        req: pb::ListUsersRequest,
    ) -> Result<pb::ListUsersResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.list_users(&r.path_prefix, &r.marker, r.max_items).await;
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                pb::ListUsersResponse {
                    users: page.items.iter().map(convert::user).collect(),
                    is_truncated,
                    marker,
                }
            })
        })
        .await
    }

    pub async fn delete_user(
        &self,
        caller: &CallContext,
        req: pb::DeleteUserRequest,
    ) -> Result<pb::DeleteUserResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.delete_user(&r.user_name).await;
            res.map(|()| pb::DeleteUserResponse {})
        })
        .await
    }

    pub async fn tag_user(
        &self,
        caller: &CallContext,
        req: pb::TagUserRequest,
    ) -> Result<pb::TagUserResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.tag_holder::<U>(&r.user_name, &convert::tags_in(r.tags)).await;
            res.map(|()| pb::TagUserResponse {})
        })
        .await
    }

    pub async fn untag_user(
        &self,
        caller: &CallContext,
        req: pb::UntagUserRequest,
    ) -> Result<pb::UntagUserResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.untag_holder::<U>(&r.user_name, &r.tag_keys).await;
            res.map(|()| pb::UntagUserResponse {})
        })
        .await
    }

    pub async fn put_user_policy(
        &self,
        caller: &CallContext,
        req: pb::PutUserPolicyRequest,
    ) -> Result<pb::PutUserPolicyResponse> {
        self.run(caller, req, |r| async move {
            let res =
                self.catalog.put_inline_policy::<U>(&r.user_name, &r.policy_name, &r.policy_document).await;
            res.map(|()| pb::PutUserPolicyResponse {})
        })
        .await
    }

    pub async fn get_user_policy(
        &self,
        caller: &CallContext,
        req: pb::GetUserPolicyRequest,
    ) -> Result<pb::GetUserPolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.get_inline_policy::<U>(&r.user_name, &r.policy_name).await;
            res.map(|policy_document| pb::GetUserPolicyResponse {
                user_name: r.user_name,
                policy_name: r.policy_name,
                policy_document,
            })
        })
        .await
    }

    pub async fn list_user_policies(
        &self,
        caller: &CallContext,
        req: pb::ListUserPoliciesRequest,
    ) -> Result<pb::ListUserPoliciesResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.list_inline_policies::<U>(&r.user_name, &r.marker, r.max_items).await;
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                pb::ListUserPoliciesResponse { policy_names: page.items, is_truncated, marker }
            })
        })
        .await
    }

    pub async fn delete_user_policy(
        &self,
        caller: &CallContext,
        req: pb::DeleteUserPolicyRequest,
    ) -> Result<pb::DeleteUserPolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.delete_inline_policy::<U>(&r.user_name, &r.policy_name).await;
            res.map(|()| pb::DeleteUserPolicyResponse {})
        })
        .await
    }

    pub async fn attach_user_policy(
        &self,
        caller: &CallContext,
        req: pb::AttachUserPolicyRequest,
    ) -> Result<pb::AttachUserPolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.attach_policy::<U>(&r.user_name, &r.policy_arn).await;
            res.map(|()| pb::AttachUserPolicyResponse {})
        })
        .await
    }

    pub async fn detach_user_policy(
        &self,
        caller: &CallContext,
        req: pb::DetachUserPolicyRequest,
    ) -> Result<pb::DetachUserPolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.detach_policy::<U>(&r.user_name, &r.policy_arn).await;
            res.map(|()| pb::DetachUserPolicyResponse {})
        })
        .await
    }

    pub async fn list_attached_user_policies(
        &self,
        caller: &CallContext,
        req: pb::ListAttachedUserPoliciesRequest,
    ) -> Result<pb::ListAttachedUserPoliciesResponse> {
        self.run(caller, req, |r| async move {
            let res = self
                .catalog
                .list_attached_policies::<U>(&r.user_name, &r.path_prefix, &r.marker, r.max_items)
                .await;
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                pb::ListAttachedUserPoliciesResponse {
                    attached_policies: attached(page.items),
                    is_truncated,
                    marker,
                }
            })
        })
        .await
    }

    pub async fn put_user_permissions_boundary(
        &self,
        caller: &CallContext,
        req: pb::PutUserPermissionsBoundaryRequest,
    ) -> Result<pb::PutUserPermissionsBoundaryResponse> {
        self.run(caller, req, |r| async move {
            let res =
                self.catalog.set_permissions_boundary::<U>(&r.user_name, Some(&r.permissions_boundary)).await;
            res.map(|()| pb::PutUserPermissionsBoundaryResponse {})
        })
        .await
    }

    pub async fn delete_user_permissions_boundary(
        &self,
        caller: &CallContext,
        req: pb::DeleteUserPermissionsBoundaryRequest,
    ) -> Result<pb::DeleteUserPermissionsBoundaryResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.set_permissions_boundary::<U>(&r.user_name, None).await;
            res.map(|()| pb::DeleteUserPermissionsBoundaryResponse {})
        })
        .await
    }

    pub async fn create_access_key(
        &self,
        caller: &CallContext,
        req: pb::CreateAccessKeyRequest,
    ) -> Result<pb::CreateAccessKeyResponse> {
        self.run(caller, req, |r| async move {
            let user_name = r.user_name;
            let res = self.catalog.create_access_key(&user_name).await;
            res.map(|k| pb::CreateAccessKeyResponse {
                access_key: Some(pb::AccessKey {
                    user_name: user_name.clone(),
                    access_key_id: k.access_key_id,
                    status: k.status.as_str().into(),
                    secret_access_key: k.secret_access_key.0,
                    create_date: crate::domain::clock::iso8601(k.create_date),
                }),
            })
        })
        .await
    }

    pub async fn list_access_keys(
        &self,
        caller: &CallContext,
        req: pb::ListAccessKeysRequest,
    ) -> Result<pb::ListAccessKeysResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.list_access_keys(&r.user_name, &r.marker, r.max_items).await;
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                let access_key_metadata =
                    page.items.iter().map(|k| convert::access_key_metadata(&r.user_name, k)).collect();
                pb::ListAccessKeysResponse { access_key_metadata, is_truncated, marker }
            })
        })
        .await
    }

    pub async fn update_access_key(
        &self,
        caller: &CallContext,
        req: pb::UpdateAccessKeyRequest,
    ) -> Result<pb::UpdateAccessKeyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.update_access_key(&r.user_name, &r.access_key_id, &r.status).await;
            res.map(|()| pb::UpdateAccessKeyResponse {})
        })
        .await
    }

    pub async fn delete_access_key(
        &self,
        caller: &CallContext,
        req: pb::DeleteAccessKeyRequest,
    ) -> Result<pb::DeleteAccessKeyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.delete_access_key(&r.user_name, &r.access_key_id).await;
            res.map(|()| pb::DeleteAccessKeyResponse {})
        })
        .await
    }

    pub async fn revoke_role_sessions(
        &self,
        caller: &CallContext,
        req: pb::RevokeRoleSessionsRequest,
    ) -> Result<pb::RevokeRoleSessionsResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.revoke_role_sessions(&r.role_name).await;
            res.map(|at| pb::RevokeRoleSessionsResponse { revoked_before: iso8601(at) })
        })
        .await
    }

    pub async fn simulate_principal_policy(
        &self,
        caller: &CallContext,
        req: pb::SimulatePrincipalPolicyRequest,
    ) -> Result<pb::SimulatePrincipalPolicyResponse> {
        self.run(caller, req, |mut r| async move {
            let keys = context(std::mem::take(&mut r.context_entries))?;
            let input = simulation!(r, keys);
            self.authz.simulate(&r.policy_source_arn, &input).await.map(evaluation_results)
        })
        .await
    }

    pub async fn simulate_custom_policy(
        &self,
        caller: &CallContext,
        req: pb::SimulateCustomPolicyRequest,
    ) -> Result<pb::SimulatePrincipalPolicyResponse> {
        self.run(caller, req, |mut r| async move {
            let keys = context(std::mem::take(&mut r.context_entries))?;
            let input = simulation!(r, keys);
            self.authz.simulate_custom(self.catalog.account_id(), &input).map(evaluation_results)
        })
        .await
    }
}

impl Iam {
    pub async fn get_context_keys_for_custom_policy(
        &self,
        caller: &CallContext,
        req: pb::GetContextKeysForCustomPolicyRequest,
    ) -> Result<pb::GetContextKeysResponse> {
        self.run(caller, req, |r| async move {
            crate::authz::custom_context_keys(&r.policy_input_list)
                .map(|context_key_names| pb::GetContextKeysResponse { context_key_names })
        })
        .await
    }

    pub async fn get_context_keys_for_principal_policy(
        &self,
        caller: &CallContext,
        req: pb::GetContextKeysForPrincipalPolicyRequest,
    ) -> Result<pb::GetContextKeysResponse> {
        self.run(caller, req, |r| async move {
            let keys = self.authz.principal_context_keys(&r.policy_source_arn, &r.policy_input_list).await;
            keys.map(|context_key_names| pb::GetContextKeysResponse { context_key_names })
        })
        .await
    }
}

impl Iam {
    pub async fn create_group(
        &self,
        caller: &CallContext,
        req: pb::CreateGroupRequest,
    ) -> Result<pb::CreateGroupResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.create_group(&r.group_name, &r.path).await;
            res.map(|g| pb::CreateGroupResponse { group: Some(convert::group(&g)) })
        })
        .await
    }

    pub async fn get_group(
        &self,
        caller: &CallContext,
        req: pb::GetGroupRequest,
    ) -> Result<pb::GetGroupResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.get_group(&r.group_name, &r.marker, r.max_items).await;
            res.map(|g| {
                let (is_truncated, marker) = truncation(&g.users);
                pb::GetGroupResponse {
                    group: Some(convert::group(&g.group)),
                    users: g.users.items.iter().map(convert::user).collect(),
                    is_truncated,
                    marker,
                }
            })
        })
        .await
    }

    pub async fn list_groups(
        &self,
        caller: &CallContext,
        req: pb::ListGroupsRequest,
    ) -> Result<pb::ListGroupsResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.list_groups(&r.path_prefix, &r.marker, r.max_items).await;
            res.map(groups_page)
        })
        .await
    }

    pub async fn list_groups_for_user(
        &self,
        caller: &CallContext,
        req: pb::ListGroupsForUserRequest,
    ) -> Result<pb::ListGroupsResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.list_groups_for_user(&r.user_name, &r.marker, r.max_items).await;
            res.map(groups_page)
        })
        .await
    }

    pub async fn update_group(
        &self,
        caller: &CallContext,
        req: pb::UpdateGroupRequest,
    ) -> Result<pb::UpdateGroupResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.update_group(&r.group_name, &r.new_group_name, &r.new_path).await;
            res.map(|()| pb::UpdateGroupResponse {})
        })
        .await
    }

    pub async fn delete_group(
        &self,
        caller: &CallContext,
        req: pb::DeleteGroupRequest,
    ) -> Result<pb::DeleteGroupResponse> {
        self.run(caller, req, |r| async move {
            self.catalog.delete_group(&r.group_name).await.map(|()| pb::DeleteGroupResponse {})
        })
        .await
    }

    pub async fn add_user_to_group(
        &self,
        caller: &CallContext,
        req: pb::AddUserToGroupRequest,
    ) -> Result<pb::AddUserToGroupResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.add_user_to_group(&r.group_name, &r.user_name).await;
            res.map(|()| pb::AddUserToGroupResponse {})
        })
        .await
    }

    pub async fn remove_user_from_group(
        &self,
        caller: &CallContext,
        req: pb::RemoveUserFromGroupRequest,
    ) -> Result<pb::RemoveUserFromGroupResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.remove_user_from_group(&r.group_name, &r.user_name).await;
            res.map(|()| pb::RemoveUserFromGroupResponse {})
        })
        .await
    }

    pub async fn put_group_policy(
        &self,
        caller: &CallContext,
        req: pb::PutGroupPolicyRequest,
    ) -> Result<pb::PutGroupPolicyResponse> {
        self.run(caller, req, |r| async move {
            let res =
                self.catalog.put_inline_policy::<G>(&r.group_name, &r.policy_name, &r.policy_document).await;
            res.map(|()| pb::PutGroupPolicyResponse {})
        })
        .await
    }

    pub async fn get_group_policy(
        &self,
        caller: &CallContext,
        req: pb::GetGroupPolicyRequest,
    ) -> Result<pb::GetGroupPolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.get_inline_policy::<G>(&r.group_name, &r.policy_name).await;
            res.map(|policy_document| pb::GetGroupPolicyResponse {
                group_name: r.group_name,
                policy_name: r.policy_name,
                policy_document,
            })
        })
        .await
    }

    pub async fn list_group_policies(
        &self,
        caller: &CallContext,
        req: pb::ListGroupPoliciesRequest,
    ) -> Result<pb::ListGroupPoliciesResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.list_inline_policies::<G>(&r.group_name, &r.marker, r.max_items).await;
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                pb::ListGroupPoliciesResponse { policy_names: page.items, is_truncated, marker }
            })
        })
        .await
    }

    pub async fn delete_group_policy(
        &self,
        caller: &CallContext,
        req: pb::DeleteGroupPolicyRequest,
    ) -> Result<pb::DeleteGroupPolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.delete_inline_policy::<G>(&r.group_name, &r.policy_name).await;
            res.map(|()| pb::DeleteGroupPolicyResponse {})
        })
        .await
    }

    pub async fn attach_group_policy(
        &self,
        caller: &CallContext,
        req: pb::AttachGroupPolicyRequest,
    ) -> Result<pb::AttachGroupPolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.attach_policy::<G>(&r.group_name, &r.policy_arn).await;
            res.map(|()| pb::AttachGroupPolicyResponse {})
        })
        .await
    }

    pub async fn detach_group_policy(
        &self,
        caller: &CallContext,
        req: pb::DetachGroupPolicyRequest,
    ) -> Result<pb::DetachGroupPolicyResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.detach_policy::<G>(&r.group_name, &r.policy_arn).await;
            res.map(|()| pb::DetachGroupPolicyResponse {})
        })
        .await
    }

    pub async fn list_attached_group_policies(
        &self,
        caller: &CallContext,
        req: pb::ListAttachedGroupPoliciesRequest,
    ) -> Result<pb::ListAttachedGroupPoliciesResponse> {
        self.run(caller, req, |r| async move {
            let res = self
                .catalog
                .list_attached_policies::<G>(&r.group_name, &r.path_prefix, &r.marker, r.max_items)
                .await;
            res.map(|page| {
                let (is_truncated, marker) = truncation(&page);
                pb::ListAttachedGroupPoliciesResponse {
                    attached_policies: attached(page.items),
                    is_truncated,
                    marker,
                }
            })
        })
        .await
    }
}

impl Iam {
    pub async fn get_account_summary(
        &self,
        caller: &CallContext,
        req: pb::GetAccountSummaryRequest,
    ) -> Result<pb::GetAccountSummaryResponse> {
        self.run(caller, req, |_| async move {
            let summary = self.catalog.account_summary().await?;
            let summary_map =
                summary.into_iter().map(|(k, v)| (k, i32::try_from(v).unwrap_or(i32::MAX))).collect();
            Ok(pb::GetAccountSummaryResponse { summary_map })
        })
        .await
    }

    pub async fn list_entities_for_policy(
        &self,
        caller: &CallContext,
        req: pb::ListEntitiesForPolicyRequest,
    ) -> Result<pb::ListEntitiesForPolicyResponse> {
        self.run(caller, req, |r| async move {
            let found = self
                .catalog
                .list_entities_for_policy(
                    &r.policy_arn,
                    &r.entity_filter,
                    &r.path_prefix,
                    &r.policy_usage_filter,
                    &r.marker,
                    r.max_items,
                )
                .await?;
            Ok(pb::ListEntitiesForPolicyResponse {
                policy_groups: found
                    .groups
                    .into_iter()
                    .map(|(group_name, group_id)| pb::PolicyGroup { group_name, group_id })
                    .collect(),
                policy_users: found
                    .users
                    .into_iter()
                    .map(|(user_name, user_id)| pb::PolicyUser { user_name, user_id })
                    .collect(),
                policy_roles: found
                    .roles
                    .into_iter()
                    .map(|(role_name, role_id)| pb::PolicyRole { role_name, role_id })
                    .collect(),
                is_truncated: found.next_marker.is_some(),
                marker: found.next_marker.unwrap_or_default(),
            })
        })
        .await
    }

    pub async fn create_account_alias(
        &self,
        caller: &CallContext,
        req: pb::CreateAccountAliasRequest,
    ) -> Result<pb::CreateAccountAliasResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.create_account_alias(&r.account_alias).await;
            res.map(|()| pb::CreateAccountAliasResponse {})
        })
        .await
    }

    pub async fn delete_account_alias(
        &self,
        caller: &CallContext,
        req: pb::DeleteAccountAliasRequest,
    ) -> Result<pb::DeleteAccountAliasResponse> {
        self.run(caller, req, |r| async move {
            let res = self.catalog.delete_account_alias(&r.account_alias).await;
            res.map(|()| pb::DeleteAccountAliasResponse {})
        })
        .await
    }

    pub async fn list_account_aliases(
        &self,
        caller: &CallContext,
        req: pb::ListAccountAliasesRequest,
    ) -> Result<pb::ListAccountAliasesResponse> {
        self.run(caller, req, |_| async move {
            let account_aliases = self.catalog.account_aliases().await?;
            Ok(pb::ListAccountAliasesResponse { account_aliases, is_truncated: false, marker: String::new() })
        })
        .await
    }
}

impl Iam {
    pub async fn get_access_key_last_used(
        &self,
        caller: &CallContext,
        req: pb::GetAccessKeyLastUsedRequest,
    ) -> Result<pb::GetAccessKeyLastUsedResponse> {
        self.run(caller, req, |r| async move {
            let (user_name, used) = self.catalog.access_key_last_used(&r.access_key_id).await?;
            let last = match used {
                Some(u) => pb::AccessKeyLastUsed {
                    last_used_date: iso8601(u.at),
                    service_name: u.service,
                    region: u.region,
                },
                None => pb::AccessKeyLastUsed {
                    last_used_date: String::new(),
                    service_name: "N/A".into(),
                    region: "N/A".into(),
                },
            };
            Ok(pb::GetAccessKeyLastUsedResponse { user_name, access_key_last_used: Some(last) })
        })
        .await
    }

    pub async fn generate_credential_report(
        &self,
        caller: &CallContext,
        req: pb::GenerateCredentialReportRequest,
    ) -> Result<pb::GenerateCredentialReportResponse> {
        self.run(caller, req, |_| async move {
            let started = self.catalog.generate_credential_report().await?;
            Ok(if started {
                pb::GenerateCredentialReportResponse {
                    state: "STARTED".into(),
                    description: "No report exists. Starting a new report generation task".into(),
                }
            } else {
                pb::GenerateCredentialReportResponse { state: "COMPLETE".into(), description: String::new() }
            })
        })
        .await
    }

    pub async fn get_credential_report(
        &self,
        caller: &CallContext,
        req: pb::GetCredentialReportRequest,
    ) -> Result<pb::GetCredentialReportResponse> {
        self.run(caller, req, |_| async move {
            let report = self.catalog.credential_report().await?;
            Ok(pb::GetCredentialReportResponse {
                content: report.csv,
                report_format: "text/csv".into(),
                generated_time: iso8601(report.generated_at),
            })
        })
        .await
    }
}

impl Iam {
    pub async fn get_account_authorization_details(
        &self,
        caller: &CallContext,
        req: pb::GetAccountAuthorizationDetailsRequest,
    ) -> Result<pb::GetAccountAuthorizationDetailsResponse> {
        self.run(caller, req, |r| async move {
            let page = self.catalog.authorization_details(&r.filter, &r.marker, r.max_items).await?;
            let (is_truncated, marker) = truncation(&page);
            let mut answer =
                pb::GetAccountAuthorizationDetailsResponse { is_truncated, marker, ..Default::default() };
            for detail in page.items {
                match detail {
                    AuthorizationDetail::User(u) => answer.user_detail_list.push(convert::user_detail(&u)),
                    AuthorizationDetail::Group(g) => answer.group_detail_list.push(convert::group_detail(&g)),
                    AuthorizationDetail::Role(r, profiles) => {
                        answer.role_detail_list.push(convert::role_detail(&r, &profiles))
                    }
                    AuthorizationDetail::Policy(p) => answer.policies.push(convert::policy_detail(&p)),
                }
            }
            Ok(answer)
        })
        .await
    }
}

/// A page of groups as ListGroups and ListGroupsForUser answer it.
fn groups_page(page: crate::catalog::Page<crate::domain::model::Group>) -> pb::ListGroupsResponse {
    let (is_truncated, marker) = truncation(&page);
    pb::ListGroupsResponse { groups: page.items.iter().map(convert::group).collect(), is_truncated, marker }
}

/// A simulation's ContextEntries as the context keys it sets, with their values, each
/// checked against its type.
fn context(entries: Vec<pb::ContextEntry>) -> Result<Vec<(String, Vec<String>)>> {
    entries
        .into_iter()
        .enumerate()
        .map(|(n, e)| {
            crate::authz::context_entry(n + 1, e.context_key_name, e.context_key_values, &e.context_key_type)
        })
        .collect()
}

/// A decision in IAM's words.
fn decision_name(decision: Decision) -> String {
    match decision {
        Decision::Allow => "allowed",
        Decision::ExplicitDeny => "explicitDeny",
        Decision::ImplicitDeny => "implicitDeny",
    }
    .to_string()
}

/// SimulatePrincipalPolicy's and SimulateCustomPolicy's answers, as IAM's EvaluationResults.
/// For a resource named by ARN, the answer is also its ResourceSpecificResult, which holds
/// the missing context values in place of the result ("If you include a list of resources,
/// then any missing context values are instead included under the ResourceSpecificResults
/// section", EvaluationResult, IAM API Reference). Across accounts, EvalDecisionDetails
/// gives each side's decision, named as IAM names the policies' types.
fn evaluation_results(evaluations: Vec<Evaluation>) -> pb::SimulatePrincipalPolicyResponse {
    let result = |e: Evaluation| {
        let details: std::collections::HashMap<String, String> = e
            .sides
            .map(|s| {
                [
                    ("IAM Policy".to_string(), decision_name(s.identity)),
                    ("Resource Policy".to_string(), decision_name(s.resource)),
                ]
                .into()
            })
            .unwrap_or_default();
        let boundary = e.allowed_by_boundary.map(|allowed_by_permissions_boundary| {
            pb::PermissionsBoundaryDecisionDetail { allowed_by_permissions_boundary }
        });
        let matched: Vec<pb::Statement> = e.matched.into_iter().map(statement).collect();
        let decision = decision_name(e.decision);
        let (missing, specific) = if e.resource == "*" {
            (e.missing, Vec::new())
        } else {
            let specific = pb::ResourceSpecificResult {
                eval_resource_name: e.resource.clone(),
                eval_resource_decision: decision.clone(),
                matched_statements: matched.clone(),
                missing_context_values: e.missing,
                eval_decision_details: details.clone(),
                permissions_boundary_decision_detail: boundary,
            };
            (Vec::new(), vec![specific])
        };
        pb::EvaluationResult {
            eval_action_name: e.action,
            eval_resource_name: e.resource,
            eval_decision: decision,
            matched_statements: matched,
            missing_context_values: missing,
            eval_decision_details: details,
            permissions_boundary_decision_detail: boundary,
            resource_specific_results: specific,
        }
    };
    pb::SimulatePrincipalPolicyResponse {
        evaluation_results: evaluations.into_iter().map(result).collect(),
        is_truncated: false,
    }
}

/// A matched statement as IAM's `Statement`.
fn statement(m: MatchedStatement) -> pb::Statement {
    let position = |p: crate::domain::policy::Position| pb::Position {
        line: i32::try_from(p.line).unwrap_or(i32::MAX),
        column: i32::try_from(p.column).unwrap_or(i32::MAX),
    };
    pb::Statement {
        source_policy_id: m.source_policy_id,
        source_policy_type: m.source_policy_type.to_string(),
        start_position: Some(position(m.start)),
        end_position: Some(position(m.end)),
    }
}

fn attached(items: Vec<(String, String)>) -> Vec<pb::AttachedPolicy> {
    items
        .into_iter()
        .map(|(policy_name, policy_arn)| pb::AttachedPolicy { policy_name, policy_arn })
        .collect()
}

/// What an Iam request names, read from the decoded request itself.
pub enum Target<'a> {
    Role(&'a str),
    User(&'a str),
    Group(&'a str),
    InstanceProfile(&'a str),
    /// A long-term access key: its user's ARN (or `*`, for a key that does not exist).
    AccessKey(&'a str),
    /// An entity a Create call makes: its kind, path and name.
    New(NewKind, &'a str, &'a str),
    /// A List call's path prefix under `role/`, `user/` or `instance-profile/`.
    Prefix(&'static str, &'a str),
    /// An ARN the request gives (a policy's, or the simulated principal's).
    Arn(&'a str),
    /// No one resource (ListPolicies).
    Any,
}

#[derive(Clone, Copy)]
pub enum NewKind {
    Role,
    User,
    Group,
    InstanceProfile,
    Policy,
}

/// An Iam request: its action and what it acts on.
pub trait IamCall: Operation {
    fn target(&self) -> Target<'_>;
}

impl Iam {
    /// The ARN IAM authorizes a call on: the entity's (with its path), the ARN a Create call
    /// will make, a List call's path-prefix ARN.
    async fn resource(&self, target: Target<'_>) -> Result<String> {
        let account = self.catalog.account_id();
        let path = |p: &str| if p.is_empty() { "/".to_string() } else { p.to_string() };
        Ok(match target {
            Target::Role(name) => self.entity(EntityKind::Role, name).await?,
            Target::User(name) => self.entity(EntityKind::User, name).await?,
            Target::Group(name) => self.entity(EntityKind::Group, name).await?,
            Target::InstanceProfile(name) => self.entity(EntityKind::InstanceProfile, name).await?,
            Target::New(kind, p, name) => match kind {
                NewKind::Role => arn::role(account, &path(p), name),
                NewKind::User => arn::user(account, &path(p), name),
                NewKind::Group => arn::group(account, &path(p), name),
                NewKind::InstanceProfile => arn::instance_profile(account, &path(p), name),
                NewKind::Policy => arn::policy(account, &path(p), name),
            },
            Target::Prefix(kind, prefix) => {
                format!("arn:aws:iam::{account}:{kind}{}", prefix.trim_start_matches('/'))
            }
            Target::Arn(arn) => arn.to_string(),
            Target::AccessKey(id) => match self.catalog.find_access_key(id).await? {
                Some((user, _)) => user.arn.clone(),
                None => "*".to_string(),
            },
            Target::Any => "*".to_string(),
        })
    }

    async fn entity(&self, kind: EntityKind, name: &str) -> Result<String> {
        if let Some(arn) = self.catalog.entity_arn(kind, name).await? {
            return Ok(arn);
        }
        // Not there (yet): its ARN on the root path, so that the call answers NoSuchEntity
        // (or AccessDenied) as AWS would.
        let account = self.catalog.account_id();
        Ok(match kind {
            EntityKind::Role => arn::role(account, "/", name),
            EntityKind::User => arn::user(account, "/", name),
            EntityKind::Group => arn::group(account, "/", name),
            EntityKind::InstanceProfile => arn::instance_profile(account, "/", name),
        })
    }
}

/// Each Iam request's action, whether it changes state, and what it names.
macro_rules! iam_calls {
    ($($ty:ident $action:literal $mutates:literal |$r:ident| $target:expr;)*) => {
        $(
            impl Operation for pb::$ty {
                const ACTION: &'static str = $action;
                const MUTATES: bool = $mutates;
            }
            impl IamCall for pb::$ty {
                fn target(&self) -> Target<'_> {
                    let $r = self;
                    $target
                }
            }
        )*
    };
}

use Target::{
    Arn, Group as OfGroup, InstanceProfile as Profile, New, Prefix, Role as OfRole, User as OfUser,
};

iam_calls! {
    CreateRoleRequest "CreateRole" true |r| New(NewKind::Role, &r.path, &r.role_name);
    GetRoleRequest "GetRole" false |r| OfRole(&r.role_name);
    ListRolesRequest "ListRoles" false |r| Prefix("role/", &r.path_prefix);
    UpdateRoleRequest "UpdateRole" true |r| OfRole(&r.role_name);
    DeleteRoleRequest "DeleteRole" true |r| OfRole(&r.role_name);
    UpdateAssumeRolePolicyRequest "UpdateAssumeRolePolicy" true |r| OfRole(&r.role_name);
    PutRolePolicyRequest "PutRolePolicy" true |r| OfRole(&r.role_name);
    GetRolePolicyRequest "GetRolePolicy" false |r| OfRole(&r.role_name);
    ListRolePoliciesRequest "ListRolePolicies" false |r| OfRole(&r.role_name);
    DeleteRolePolicyRequest "DeleteRolePolicy" true |r| OfRole(&r.role_name);
    AttachRolePolicyRequest "AttachRolePolicy" true |r| OfRole(&r.role_name);
    DetachRolePolicyRequest "DetachRolePolicy" true |r| OfRole(&r.role_name);
    ListAttachedRolePoliciesRequest "ListAttachedRolePolicies" false |r| OfRole(&r.role_name);
    PutRolePermissionsBoundaryRequest "PutRolePermissionsBoundary" true |r| OfRole(&r.role_name);
    DeleteRolePermissionsBoundaryRequest "DeleteRolePermissionsBoundary" true |r| OfRole(&r.role_name);
    TagRoleRequest "TagRole" true |r| OfRole(&r.role_name);
    UntagRoleRequest "UntagRole" true |r| OfRole(&r.role_name);
    ListRoleTagsRequest "ListRoleTags" false |r| OfRole(&r.role_name);
    RevokeRoleSessionsRequest "RevokeRoleSessions" true |r| OfRole(&r.role_name);
    CreatePolicyRequest "CreatePolicy" true |r| New(NewKind::Policy, &r.path, &r.policy_name);
    GetPolicyRequest "GetPolicy" false |r| Arn(&r.policy_arn);
    ListPoliciesRequest "ListPolicies" false |_r| Target::Any;
    DeletePolicyRequest "DeletePolicy" true |r| Arn(&r.policy_arn);
    CreatePolicyVersionRequest "CreatePolicyVersion" true |r| Arn(&r.policy_arn);
    GetPolicyVersionRequest "GetPolicyVersion" false |r| Arn(&r.policy_arn);
    ListPolicyVersionsRequest "ListPolicyVersions" false |r| Arn(&r.policy_arn);
    SetDefaultPolicyVersionRequest "SetDefaultPolicyVersion" true |r| Arn(&r.policy_arn);
    DeletePolicyVersionRequest "DeletePolicyVersion" true |r| Arn(&r.policy_arn);
    CreateInstanceProfileRequest "CreateInstanceProfile" true
        |r| New(NewKind::InstanceProfile, &r.path, &r.instance_profile_name);
    GetInstanceProfileRequest "GetInstanceProfile" false |r| Profile(&r.instance_profile_name);
    ListInstanceProfilesRequest "ListInstanceProfiles" false |r| Prefix("instance-profile/", &r.path_prefix);
    ListInstanceProfilesForRoleRequest "ListInstanceProfilesForRole" false |r| OfRole(&r.role_name);
    DeleteInstanceProfileRequest "DeleteInstanceProfile" true |r| Profile(&r.instance_profile_name);
    AddRoleToInstanceProfileRequest "AddRoleToInstanceProfile" true |r| Profile(&r.instance_profile_name);
    RemoveRoleFromInstanceProfileRequest "RemoveRoleFromInstanceProfile" true
        |r| Profile(&r.instance_profile_name);
    CreateUserRequest "CreateUser" true |r| New(NewKind::User, &r.path, &r.user_name);
    GetUserRequest "GetUser" false |r| OfUser(&r.user_name);
    ListUsersRequest "ListUsers" false |r| Prefix("user/", &r.path_prefix);
    DeleteUserRequest "DeleteUser" true |r| OfUser(&r.user_name);
    TagUserRequest "TagUser" true |r| OfUser(&r.user_name);
    UntagUserRequest "UntagUser" true |r| OfUser(&r.user_name);
    PutUserPolicyRequest "PutUserPolicy" true |r| OfUser(&r.user_name);
    GetUserPolicyRequest "GetUserPolicy" false |r| OfUser(&r.user_name);
    ListUserPoliciesRequest "ListUserPolicies" false |r| OfUser(&r.user_name);
    DeleteUserPolicyRequest "DeleteUserPolicy" true |r| OfUser(&r.user_name);
    AttachUserPolicyRequest "AttachUserPolicy" true |r| OfUser(&r.user_name);
    DetachUserPolicyRequest "DetachUserPolicy" true |r| OfUser(&r.user_name);
    ListAttachedUserPoliciesRequest "ListAttachedUserPolicies" false |r| OfUser(&r.user_name);
    PutUserPermissionsBoundaryRequest "PutUserPermissionsBoundary" true |r| OfUser(&r.user_name);
    DeleteUserPermissionsBoundaryRequest "DeleteUserPermissionsBoundary" true |r| OfUser(&r.user_name);
    CreateAccessKeyRequest "CreateAccessKey" true |r| OfUser(&r.user_name);
    ListAccessKeysRequest "ListAccessKeys" false |r| OfUser(&r.user_name);
    UpdateAccessKeyRequest "UpdateAccessKey" true |r| OfUser(&r.user_name);
    DeleteAccessKeyRequest "DeleteAccessKey" true |r| OfUser(&r.user_name);
    CreateGroupRequest "CreateGroup" true |r| New(NewKind::Group, &r.path, &r.group_name);
    GetGroupRequest "GetGroup" false |r| OfGroup(&r.group_name);
    ListGroupsRequest "ListGroups" false |r| Prefix("group/", &r.path_prefix);
    UpdateGroupRequest "UpdateGroup" true |r| OfGroup(&r.group_name);
    DeleteGroupRequest "DeleteGroup" true |r| OfGroup(&r.group_name);
    AddUserToGroupRequest "AddUserToGroup" true |r| OfGroup(&r.group_name);
    RemoveUserFromGroupRequest "RemoveUserFromGroup" true |r| OfGroup(&r.group_name);
    ListGroupsForUserRequest "ListGroupsForUser" false |r| OfUser(&r.user_name);
    PutGroupPolicyRequest "PutGroupPolicy" true |r| OfGroup(&r.group_name);
    GetGroupPolicyRequest "GetGroupPolicy" false |r| OfGroup(&r.group_name);
    ListGroupPoliciesRequest "ListGroupPolicies" false |r| OfGroup(&r.group_name);
    DeleteGroupPolicyRequest "DeleteGroupPolicy" true |r| OfGroup(&r.group_name);
    AttachGroupPolicyRequest "AttachGroupPolicy" true |r| OfGroup(&r.group_name);
    DetachGroupPolicyRequest "DetachGroupPolicy" true |r| OfGroup(&r.group_name);
    ListAttachedGroupPoliciesRequest "ListAttachedGroupPolicies" false |r| OfGroup(&r.group_name);
    GetAccountSummaryRequest "GetAccountSummary" false |_r| Target::Any;
    ListEntitiesForPolicyRequest "ListEntitiesForPolicy" false |r| Arn(&r.policy_arn);
    CreateAccountAliasRequest "CreateAccountAlias" true |_r| Target::Any;
    DeleteAccountAliasRequest "DeleteAccountAlias" true |_r| Target::Any;
    ListAccountAliasesRequest "ListAccountAliases" false |_r| Target::Any;
    GetAccountAuthorizationDetailsRequest "GetAccountAuthorizationDetails" false |_r| Target::Any;
    GetAccessKeyLastUsedRequest "GetAccessKeyLastUsed" false |r| Target::AccessKey(&r.access_key_id);
    GenerateCredentialReportRequest "GenerateCredentialReport" true |_r| Target::Any;
    GetCredentialReportRequest "GetCredentialReport" false |_r| Target::Any;
    SimulatePrincipalPolicyRequest "SimulatePrincipalPolicy" false |r| Arn(&r.policy_source_arn);
    SimulateCustomPolicyRequest "SimulateCustomPolicy" false |_r| Target::Any;
    GetContextKeysForCustomPolicyRequest "GetContextKeysForCustomPolicy" false |_r| Target::Any;
    GetContextKeysForPrincipalPolicyRequest "GetContextKeysForPrincipalPolicy" false |r| Arn(&r.policy_source_arn);
}
