//! The JSON documents IMDS answers with, as AWS writes them.

use super::*;

/// iam/info as AWS formats it.
pub fn iam_info_json(info: &IamInfo) -> String {
    serde_json::json!({
        "Code": "Success",
        "LastUpdated": iso8601(info.last_updated),
        "InstanceProfileArn": info.instance_profile_arn,
        "InstanceProfileId": info.instance_profile_id,
    })
    .to_string()
}

/// The credentials document as AWS formats it.
/// The container credentials endpoint's document: the credentials and the account, or the
/// reason there are none.
pub fn container_credentials_json(doc: &CredentialsDocument) -> String {
    match doc {
        CredentialsDocument::Success { credentials: c, account_id } => serde_json::json!({
            "AccessKeyId": c.access_key_id(),
            "SecretAccessKey": c.secret_access_key(),
            "Token": c.session_token(),
            "Expiration": c.expiration(),
            "AccountId": account_id,
        })
        .to_string(),
        CredentialsDocument::Unauthorized { message, .. } => {
            serde_json::json!({ "code": "AssumeRoleUnauthorizedAccess", "message": message }).to_string()
        }
    }
}

/// The credentials document as AWS formats it (`extended`: with AccountId, as the
/// `security-credentials-extended` path answers).
pub fn credentials_json(doc: &CredentialsDocument, extended: bool) -> String {
    match doc {
        CredentialsDocument::Success { credentials: c, account_id } => {
            let mut v = serde_json::json!({
                "Code": "Success",
                "LastUpdated": c.last_updated(),
                "Type": "AWS-HMAC",
                "AccessKeyId": c.access_key_id(),
                "SecretAccessKey": c.secret_access_key(),
                "Token": c.session_token(),
                "Expiration": c.expiration(),
            });
            if extended {
                v["AccountId"] = account_id.clone().into();
            }
            v.to_string()
        }
        CredentialsDocument::Unauthorized { message, last_updated } => serde_json::json!({
            "Code": "AssumeRoleUnauthorizedAccess",
            "Message": message,
            "LastUpdated": iso8601(*last_updated),
        })
        .to_string(),
    }
}
