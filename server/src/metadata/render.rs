//! The JSON documents IMDS answers with, as AWS writes them: its keys in AWS's order
//! (Code, LastUpdated, Type, AccessKeyId, SecretAccessKey, Token, Expiration, as the EC2
//! User Guide's "Retrieve security credentials from instance metadata" shows them).
//!
//! Each document is a struct of borrowed fields written by serde straight into a buffer of
//! its final size: a credential fetch is the hot path, and building a `serde_json::Value`
//! map per answer cost a quarter of a warm HTTP credential GET (docs/benchmarks.md).
//! Credentials whose fields were found at issue to need no escaping (all that rolecall
//! issues: ids, base64 and timestamps) are copied instead, which is cheaper still.

use serde::Serialize;

use super::*;
use crate::cache::json_plain;

/// A document's JSON: `fields` are the lengths of the variable strings it holds, so the
/// buffer is allocated once.
fn json(document: &impl Serialize, fields: &[&str]) -> String {
    // The keys, quotes and punctuation of the longest document, plus the strings (escaping
    // may still grow it; the values are ids, base64 and timestamps, which it never does).
    let capacity = 192 + fields.iter().map(|f| f.len()).sum::<usize>();
    let mut out = Vec::with_capacity(capacity);
    // Serializing borrowed strings into a Vec cannot fail; an empty answer would be refused
    // by every client's parser rather than taken for credentials.
    if serde_json::to_writer(&mut out, document).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A document of string values that need no escaping (checked by the caller with
/// `cache::json_plain`), written by copying: the same bytes serde writes (the test below
/// holds the two together), without its per-byte escaping scan of the session token.
fn plain(fields: &[(&str, &str)]) -> String {
    let capacity = 2 + fields.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>();
    let mut out = String::with_capacity(capacity);
    out.push('{');
    for (n, (key, value)) in fields.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(key);
        out.push_str("\":\"");
        out.push_str(value);
        out.push('"');
    }
    out.push('}');
    out
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IamInfoDocument<'a> {
    code: &'static str,
    last_updated: &'a str,
    instance_profile_arn: &'a str,
    instance_profile_id: &'a str,
}

/// iam/info as AWS formats it.
pub fn iam_info_json(info: &IamInfo) -> String {
    let last_updated = iso8601(info.last_updated);
    let document = IamInfoDocument {
        code: "Success",
        last_updated: &last_updated,
        instance_profile_arn: &info.instance_profile_arn,
        instance_profile_id: &info.instance_profile_id,
    };
    json(&document, &[&info.instance_profile_arn, &info.instance_profile_id])
}

/// `iam/security-credentials/ROLE` (and `security-credentials-extended`, with AccountId).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsJson<'a> {
    code: &'static str,
    last_updated: &'a str,
    #[serde(rename = "Type")]
    kind: &'static str,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
}

impl<'a> CredentialsJson<'a> {
    fn of(c: &'a IssuedCredentials, account_id: &'a str, extended: bool) -> Self {
        Self {
            code: "Success",
            last_updated: c.last_updated(),
            kind: "AWS-HMAC",
            access_key_id: c.access_key_id(),
            secret_access_key: c.secret_access_key(),
            token: c.session_token(),
            expiration: c.expiration(),
            account_id: extended.then_some(account_id),
        }
    }
}

/// Why there are no credentials (the role does not trust EC2).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct UnauthorizedJson<'a> {
    code: &'static str,
    message: &'a str,
    last_updated: &'a str,
}

/// The container credentials endpoint's document: no Code or Type, and AccountId.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerCredentialsJson<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: &'a str,
    account_id: &'a str,
}

/// The container endpoint's refusal, in its own lower-case keys.
#[derive(Serialize)]
struct ContainerErrorJson<'a> {
    code: &'static str,
    message: &'a str,
}

/// The container credentials endpoint's document: the credentials and the account, or the
/// reason there are none.
pub fn container_credentials_json(doc: &CredentialsDocument) -> String {
    match doc {
        CredentialsDocument::Success { credentials: c, account_id }
            if c.json_plain() && json_plain(account_id) =>
        {
            plain(&[
                ("AccessKeyId", c.access_key_id()),
                ("SecretAccessKey", c.secret_access_key()),
                ("Token", c.session_token()),
                ("Expiration", c.expiration()),
                ("AccountId", account_id),
            ])
        }
        CredentialsDocument::Success { credentials: c, account_id } => {
            let document = ContainerCredentialsJson {
                access_key_id: c.access_key_id(),
                secret_access_key: c.secret_access_key(),
                token: c.session_token(),
                expiration: c.expiration(),
                account_id,
            };
            json(&document, &[c.session_token(), c.secret_access_key(), account_id])
        }
        CredentialsDocument::Unauthorized { message, .. } => {
            json(&ContainerErrorJson { code: "AssumeRoleUnauthorizedAccess", message }, &[message])
        }
    }
}

/// The credentials document as AWS formats it (`extended`: with AccountId, as the
/// `security-credentials-extended` path answers).
pub fn credentials_json(doc: &CredentialsDocument, extended: bool) -> String {
    match doc {
        CredentialsDocument::Success { credentials: c, account_id }
            if c.json_plain() && json_plain(account_id) =>
        {
            let fields = [
                ("Code", "Success"),
                ("LastUpdated", c.last_updated()),
                ("Type", "AWS-HMAC"),
                ("AccessKeyId", c.access_key_id()),
                ("SecretAccessKey", c.secret_access_key()),
                ("Token", c.session_token()),
                ("Expiration", c.expiration()),
                ("AccountId", account_id),
            ];
            plain(if extended { &fields } else { &fields[..7] })
        }
        CredentialsDocument::Success { credentials: c, account_id } => {
            let document = CredentialsJson::of(c, account_id, extended);
            json(&document, &[c.session_token(), c.secret_access_key(), account_id])
        }
        CredentialsDocument::Unauthorized { message, last_updated } => {
            let last_updated = iso8601(*last_updated);
            let document = UnauthorizedJson {
                code: "AssumeRoleUnauthorizedAccess",
                message,
                last_updated: &last_updated,
            };
            json(&document, &[message])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_json_with_awss_keys_in_awss_order() {
        let info = IamInfo {
            last_updated: 0,
            instance_profile_arn: "arn:aws:iam::123456789012:instance-profile/P".into(),
            instance_profile_id: "AIPAEXAMPLE".into(),
        };
        assert_eq!(
            iam_info_json(&info),
            r#"{"Code":"Success","LastUpdated":"1970-01-01T00:00:00Z","InstanceProfileArn":"arn:aws:iam::123456789012:instance-profile/P","InstanceProfileId":"AIPAEXAMPLE"}"#
        );
        let credentials = crate::domain::credentials::TemporaryCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: crate::domain::model::Secret("s/e+cret".into()),
            session_token: crate::domain::model::Secret("to/k+en=".into()),
            issued_at: 0,
            expires_at: 21_600,
        };
        let issued = CredentialsDocument::Success {
            credentials: Arc::new(IssuedCredentials::new(credentials, 3_600)),
            account_id: "123456789012".into(),
        };
        assert_eq!(
            credentials_json(&issued, false),
            r#"{"Code":"Success","LastUpdated":"1970-01-01T00:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s/e+cret","Token":"to/k+en=","Expiration":"1970-01-01T06:00:00Z"}"#
        );
        assert!(
            credentials_json(&issued, true)
                .ends_with(r#""Expiration":"1970-01-01T06:00:00Z","AccountId":"123456789012"}"#)
        );
        assert_eq!(
            container_credentials_json(&issued),
            r#"{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s/e+cret","Token":"to/k+en=","Expiration":"1970-01-01T06:00:00Z","AccountId":"123456789012"}"#
        );
        // The copying writer and serde's agree byte for byte.
        for extended in [false, true] {
            let CredentialsDocument::Success { credentials: c, account_id } = &issued else { unreachable!() };
            let document = CredentialsJson::of(c, account_id, extended);
            assert!(c.json_plain());
            assert_eq!(credentials_json(&issued, extended), json(&document, &[]));
        }
        // Fields that need escaping are escaped (serde's road).
        let odd = crate::domain::credentials::TemporaryCredentials {
            access_key_id: "ASIA\"quoted\\".into(),
            secret_access_key: crate::domain::model::Secret("s".into()),
            session_token: crate::domain::model::Secret("t".into()),
            issued_at: 0,
            expires_at: 1,
        };
        let odd = IssuedCredentials::new(odd, 1);
        assert!(!odd.json_plain());
        let odd =
            CredentialsDocument::Success { credentials: Arc::new(odd), account_id: "123456789012".into() };
        let parsed: serde_json::Value = serde_json::from_str(&credentials_json(&odd, false)).unwrap();
        assert_eq!(parsed["AccessKeyId"], "ASIA\"quoted\\");
        let parsed: serde_json::Value = serde_json::from_str(&container_credentials_json(&odd)).unwrap();
        assert_eq!(parsed["AccessKeyId"], "ASIA\"quoted\\");
        let refused = CredentialsDocument::Unauthorized { message: "no \"trust\"".into(), last_updated: 0 };
        let parsed: serde_json::Value = serde_json::from_str(&credentials_json(&refused, false)).unwrap();
        assert_eq!(parsed["Message"], "no \"trust\"", "escaped where it must be");
        assert_eq!(parsed["Code"], "AssumeRoleUnauthorizedAccess");
        let parsed: serde_json::Value = serde_json::from_str(&container_credentials_json(&refused)).unwrap();
        assert_eq!(parsed["code"], "AssumeRoleUnauthorizedAccess");
    }
}
