//! Domain records to protobuf messages.

use rolecall_api as pb;

use crate::{
    catalog::{Page, PolicyView},
    domain::{
        clock::iso8601,
        model::{
            AccessKey, Association, Group, Instance, InstanceProfile, MetadataOptions, PolicyVersion, Role,
            Tag, User,
        },
    },
};

/// (is_truncated, marker) of an IAM list page.
pub fn truncation<T>(page: &Page<T>) -> (bool, String) {
    (page.next_marker.is_some(), page.next_marker.clone().unwrap_or_default())
}

pub fn tags(tags: &[Tag]) -> Vec<pb::Tag> {
    tags.iter().map(|t| pb::Tag { key: t.key.clone(), value: t.value.clone() }).collect()
}

pub fn tags_in(tags: Vec<pb::Tag>) -> Vec<Tag> {
    tags.into_iter().map(|t| Tag { key: t.key, value: t.value }).collect()
}

fn boundary(arn: &Option<String>) -> Option<pb::AttachedPermissionsBoundary> {
    arn.as_ref().map(|a| pb::AttachedPermissionsBoundary {
        permissions_boundary_type: "PermissionsBoundaryPolicy".into(),
        permissions_boundary_arn: a.clone(),
    })
}

pub fn role(r: &Role) -> pb::Role {
    pb::Role {
        path: r.path.clone(),
        role_name: r.role_name.clone(),
        role_id: r.role_id.clone(),
        arn: r.arn.clone(),
        create_date: iso8601(r.create_date),
        assume_role_policy_document: r.assume_role_policy_document.clone(),
        description: r.description.clone(),
        max_session_duration: r.max_session_duration,
        permissions_boundary: boundary(&r.permissions_boundary),
        tags: tags(&r.tags),
        role_last_used: None,
    }
}

pub fn user(u: &User) -> pb::User {
    pb::User {
        path: u.path.clone(),
        user_name: u.user_name.clone(),
        user_id: u.user_id.clone(),
        arn: u.arn.clone(),
        create_date: iso8601(u.create_date),
        permissions_boundary: boundary(&u.permissions_boundary),
        tags: tags(&u.tags),
    }
}

pub fn group(g: &Group) -> pb::Group {
    pb::Group {
        path: g.path.clone(),
        group_name: g.group_name.clone(),
        group_id: g.group_id.clone(),
        arn: g.arn.clone(),
        create_date: iso8601(g.create_date),
    }
}

pub fn policy(p: &PolicyView) -> pb::Policy {
    let r = &p.record;
    pb::Policy {
        policy_name: r.policy_name.clone(),
        policy_id: r.policy_id.clone(),
        arn: r.arn.clone(),
        path: r.path.clone(),
        default_version_id: r.default_version_id.clone(),
        attachment_count: r.attachment_count,
        permissions_boundary_usage_count: r.permissions_boundary_usage_count,
        is_attachable: true,
        description: r.description.clone(),
        create_date: iso8601(r.create_date),
        update_date: iso8601(r.update_date),
        tags: tags(&r.tags),
    }
}

/// A version as CreatePolicyVersion and ListPolicyVersions answer it: without its document,
/// which IAM returns only from GetPolicyVersion and GetAccountAuthorizationDetails (IAM API
/// Reference, "PolicyVersion": docs.aws.amazon.com/IAM/latest/APIReference/API_PolicyVersion.html).
pub fn policy_version_summary(v: &PolicyVersion, is_default: bool) -> pb::PolicyVersion {
    pb::PolicyVersion {
        document: String::new(),
        version_id: v.version_id.clone(),
        is_default_version: is_default,
        create_date: iso8601(v.create_date),
    }
}

pub fn policy_version(v: &PolicyVersion, is_default: bool) -> pb::PolicyVersion {
    pb::PolicyVersion {
        document: v.document.clone(),
        version_id: v.version_id.clone(),
        is_default_version: is_default,
        create_date: iso8601(v.create_date),
    }
}

pub fn instance_profile(p: &InstanceProfile, roles: &[Role]) -> pb::InstanceProfile {
    pb::InstanceProfile {
        path: p.path.clone(),
        instance_profile_name: p.instance_profile_name.clone(),
        instance_profile_id: p.instance_profile_id.clone(),
        arn: p.arn.clone(),
        create_date: iso8601(p.create_date),
        roles: roles.iter().map(role).collect(),
        tags: tags(&p.tags),
    }
}

pub fn access_key_metadata(user_name: &str, k: &AccessKey) -> pb::AccessKeyMetadata {
    pb::AccessKeyMetadata {
        user_name: user_name.to_string(),
        access_key_id: k.access_key_id.clone(),
        status: k.status.as_str().into(),
        create_date: iso8601(k.create_date),
    }
}

pub fn state(s: crate::domain::model::InstanceState) -> pb::InstanceState {
    let (code, name) = s.code_and_name();
    pb::InstanceState { code, name: name.into() }
}

pub fn metadata_options(o: &MetadataOptions) -> pb::InstanceMetadataOptions {
    pb::InstanceMetadataOptions {
        state: "applied".into(),
        http_tokens: o.http_tokens.as_str().into(),
        http_put_response_hop_limit: o.http_put_response_hop_limit,
        http_endpoint: if o.http_endpoint_enabled { "enabled" } else { "disabled" }.into(),
    }
}

pub fn instance(i: &Instance) -> pb::Instance {
    pb::Instance {
        instance_id: i.instance_id.clone(),
        image_id: i.image_id.clone(),
        instance_type: i.instance_type.clone(),
        state: Some(state(i.state)),
        launch_time: iso8601(i.launch_time),
        private_ip_address: i.private_ip_address.clone(),
        availability_zone: i.availability_zone.clone(),
        iam_instance_profile: i.association.as_ref().map(|a| pb::IamInstanceProfile {
            arn: a.instance_profile_arn.clone(),
            id: a.instance_profile_id.clone(),
        }),
        metadata_options: Some(metadata_options(&i.metadata_options)),
        reservation_id: i.reservation_id.clone(),
        key_name: i.key_name.clone(),
        security_group_ids: i.security_group_ids.clone(),
        subnet_id: i.subnet_id.clone(),
    }
}

pub fn association(instance_id: &str, a: &Association, state: &str) -> pb::IamInstanceProfileAssociation {
    pb::IamInstanceProfileAssociation {
        association_id: a.association_id.clone(),
        instance_id: instance_id.to_string(),
        iam_instance_profile: Some(pb::IamInstanceProfile {
            arn: a.instance_profile_arn.clone(),
            id: a.instance_profile_id.clone(),
        }),
        state: state.into(),
        timestamp: iso8601(a.timestamp),
    }
}

/// Inline policies as AWS's PolicyDetail list.
fn policy_details(inline: &std::collections::BTreeMap<String, String>) -> Vec<pb::PolicyDetail> {
    inline
        .iter()
        .map(|(policy_name, policy_document)| pb::PolicyDetail {
            policy_name: policy_name.clone(),
            policy_document: policy_document.clone(),
        })
        .collect()
}

/// Attached managed policies (by ARN) as AWS's AttachedPolicy list.
fn attached_policies(arns: &[String]) -> Vec<pb::AttachedPolicy> {
    arns.iter()
        .map(|arn| pb::AttachedPolicy {
            policy_name: crate::domain::ids::arn::parse_policy(arn)
                .map(|(_, _, n)| n.to_string())
                .unwrap_or_default(),
            policy_arn: arn.clone(),
        })
        .collect()
}

/// The user as [`user`] gives it, with its policies and groups.
pub fn user_detail(u: &User) -> pb::UserDetail {
    let pb::User { path, user_name, user_id, arn, create_date, permissions_boundary, tags } = user(u);
    pb::UserDetail {
        path,
        user_name,
        user_id,
        arn,
        create_date,
        user_policy_list: policy_details(&u.inline_policies),
        group_list: u.groups.clone(),
        attached_managed_policies: attached_policies(&u.attached_policies),
        permissions_boundary,
        tags,
    }
}

/// The group as [`group`] gives it, with its policies.
pub fn group_detail(g: &Group) -> pb::GroupDetail {
    let pb::Group { path, group_name, group_id, arn, create_date } = group(g);
    pb::GroupDetail {
        path,
        group_name,
        group_id,
        arn,
        create_date,
        group_policy_list: policy_details(&g.inline_policies),
        attached_managed_policies: attached_policies(&g.attached_policies),
    }
}

/// The role as [`role`] gives it, with its policies and instance profiles.
pub fn role_detail(r: &Role, profiles: &[InstanceProfile]) -> pb::RoleDetail {
    let pb::Role {
        path,
        role_name,
        role_id,
        arn,
        create_date,
        assume_role_policy_document,
        permissions_boundary,
        tags,
        ..
    } = role(r);
    pb::RoleDetail {
        path,
        role_name,
        role_id,
        arn,
        create_date,
        assume_role_policy_document,
        instance_profile_list: profiles
            .iter()
            .map(|p| instance_profile(p, std::slice::from_ref(r)))
            .collect(),
        role_policy_list: policy_details(&r.inline_policies),
        attached_managed_policies: attached_policies(&r.attached_policies),
        permissions_boundary,
        tags,
    }
}

pub fn policy_detail(p: &PolicyView) -> pb::ManagedPolicyDetail {
    let summary = policy(p);
    let r = &p.record;
    pb::ManagedPolicyDetail {
        policy_name: summary.policy_name,
        policy_id: summary.policy_id,
        arn: summary.arn,
        path: summary.path,
        default_version_id: summary.default_version_id,
        attachment_count: summary.attachment_count,
        permissions_boundary_usage_count: summary.permissions_boundary_usage_count,
        is_attachable: summary.is_attachable,
        description: summary.description,
        create_date: summary.create_date,
        update_date: summary.update_date,
        policy_version_list: r
            .versions
            .iter()
            .map(|v| policy_version(v, v.version_id == r.default_version_id))
            .collect(),
    }
}
