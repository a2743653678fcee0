//! Who signed a request: the principal an authenticated call acts as, whichever door it came
//! through (gRPC, the Query API, EC2's protocol, S3).

use super::credentials::SessionScope;

/// Who signed a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub account_id: String,
    /// `arn:aws:iam::ACCOUNT:user/NAME`, `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, or
    /// `arn:aws:iam::ACCOUNT:root`.
    pub arn: String,
    /// `AIDA…` for a user; `AROA…:SESSION` for an assumed role; the account id for root.
    pub user_id: String,
    /// The access key id the request was signed with.
    pub access_key_id: String,
    pub kind: PrincipalKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account's root user (`auth.root_access_key_id`): allowed everything in its
    /// account, and, as in AWS, not allowed to assume roles.
    Root,
    User {
        user_name: String,
    },
    AssumedRole {
        role_arn: String,
        role_id: String,
        session_name: String,
        /// Instance credentials: the instance they were issued to (ec2:SourceInstanceARN).
        instance_id: Option<String>,
        /// aws:TokenIssueTime.
        issued_at: i64,
        expires_at: i64,
        /// Session policies and tags it was assumed with.
        session: SessionScope,
    },
}

impl Principal {
    /// Whether this is a role session (whose AssumeRole is role chaining).
    pub fn is_role_session(&self) -> bool {
        matches!(self.kind, PrincipalKind::AssumedRole { .. })
    }
}
