//! The Principal (NotPrincipal) element: its forms, and which of them IAM accepts in a
//! trust policy and S3 in a bucket policy, with IAM's message for each refusal
//! (`Invalid principal in policy: "AWS":"…"`).
//!
//! The forms ("AWS JSON policy elements: Principal", IAM User Guide,
//! docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html, and
//! the Knowledge Center's "How do I resolve the IAM trust policy error 'Invalid principal in
//! policy'?", repost.aws/knowledge-center/iam-trust-policy-error): `"*"`; for AWS an
//! account id, the account's root ARN, the whole ARN of a user, a role, an assumed-role
//! session or a federated user, never with a wildcard in part of it; a service principal;
//! for Federated an identity provider's ARN or one of the web identity providers;
//! CanonicalUser only where S3 reads it.

use serde_json::Value;

use super::{Grammar, PARTITION, PolicyType, string_list, syntax_error};
use crate::domain::{Error, Result};

/// A Principal (or NotPrincipal) element: `"*"` or typed lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Principals {
    pub anyone: bool,
    pub aws: Vec<String>,
    pub service: Vec<String>,
    pub federated: Vec<String>,
    pub canonical_user: Vec<String>,
}

/// The web identity providers a Federated principal may name by host.
const WEB_IDENTITY_PROVIDERS: [&str; 5] = [
    "cognito-identity.amazonaws.com",
    "www.amazon.com",
    "graph.facebook.com",
    "accounts.google.com",
    "appleid.apple.com",
];

impl Principals {
    pub(super) fn parse(value: &Value, kind: PolicyType, grammar: Grammar) -> Result<Self> {
        match value {
            Value::String(s) if s == "*" => Ok(Self { anyone: true, ..Self::default() }),
            Value::Object(map) if !map.is_empty() => {
                let mut p = Self::default();
                for (type_name, ids) in map {
                    let ids = string_list(ids)?;
                    if grammar == Grammar::Written {
                        for id in &ids {
                            if !accepted(type_name, id, kind) {
                                return Err(invalid(type_name, id));
                            }
                        }
                    }
                    match type_name.as_str() {
                        "AWS" => {
                            p.anyone |= ids.iter().any(|i| i == "*");
                            p.aws.extend(ids);
                        }
                        "Service" => p.service.extend(ids),
                        "Federated" => p.federated.extend(ids),
                        "CanonicalUser" => p.canonical_user.extend(ids),
                        _ => return Err(Error::malformed_policy("Invalid principal in policy")),
                    }
                }
                Ok(p)
            }
            Value::String(_) => Err(Error::malformed_policy("Invalid principal in policy")),
            _ => Err(syntax_error()),
        }
    }
}

/// IAM's refusal, naming the principal's type in capitals as its messages do.
fn invalid(type_name: &str, id: &str) -> Error {
    Error::malformed_policy(format!(
        r#"Invalid principal in policy: "{}":"{id}""#,
        type_name.to_ascii_uppercase()
    ))
}

/// Whether `id`, named under `type_name`, is a principal a policy of `kind` may name.
fn accepted(type_name: &str, id: &str, kind: PolicyType) -> bool {
    match type_name {
        "AWS" => id == "*" || is_account_id(id) || aws_principal_arn(id),
        "Service" => service_principal(id),
        "Federated" => WEB_IDENTITY_PROVIDERS.contains(&id) || provider_arn(id),
        "CanonicalUser" => {
            kind == PolicyType::Resource && id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
        }
        _ => false,
    }
}

fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// `arn:aws:iam::ACCOUNT:root|user/…|role/…` or `arn:aws:sts::ACCOUNT:assumed-role/R/S|
/// federated-user/N`, whole: no wildcard anywhere in it.
fn aws_principal_arn(arn: &str) -> bool {
    if arn.contains(['*', '?']) {
        return false;
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", partition, service, "", account, resource] = parts[..] else { return false };
    if partition != PARTITION || !is_account_id(account) {
        return false;
    }
    let named = |prefix: &str| {
        resource.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty() && !rest.ends_with('/'))
    };
    match service {
        "iam" => resource == "root" || named("user/") || named("role/"),
        "sts" => {
            resource.strip_prefix("assumed-role/").is_some_and(|rest| {
                matches!(rest.split_once('/'), Some((role, session)) if !role.is_empty() && !session.is_empty())
            }) || named("federated-user/")
        }
        _ => false,
    }
}

/// `arn:aws:iam::ACCOUNT:saml-provider/NAME` or `…:oidc-provider/HOST`.
fn provider_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", PARTITION, "iam", "", account, resource] = parts[..] else { return false };
    is_account_id(account)
        && !arn.contains(['*', '?'])
        && ["saml-provider/", "oidc-provider/"]
            .iter()
            .any(|p| resource.strip_prefix(p).is_some_and(|r| !r.is_empty()))
}

/// A service's principal: a host name under amazonaws.com (or .com.cn), no wildcard.
fn service_principal(id: &str) -> bool {
    let host = id.strip_suffix(".amazonaws.com").or_else(|| id.strip_suffix(".amazonaws.com.cn"));
    host.is_some_and(|host| {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
    })
}
