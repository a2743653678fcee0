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
