//! The domain error: an AWS error code and AWS's message.

use std::fmt;

/// AWS error codes rolecall answers with. Transport adapters map each to a gRPC code
/// (and later an HTTP status) in one table; see `grpc::error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // IAM
    NoSuchEntity,
    EntityAlreadyExists,
    LimitExceeded,
    DeleteConflict,
    MalformedPolicyDocument,
    InvalidInput,
    ValidationError,
    ConcurrentModification,
    ServiceFailure,
    // EC2
    InvalidParameterValue,
    InvalidParameterCombination,
    MissingParameter,
    IncorrectState,
    InvalidInstanceIdNotFound,
    InvalidInstanceIdMalformed,
    InvalidAssociationIdNotFound,
    InsufficientFreeAddressesInSubnet,
    /// EC2's AccessDenied.
    UnauthorizedOperation,
    /// EC2's answer to a DryRun request that would have been allowed.
    DryRunOperation,
    // S3
    NoSuchBucket,
    NoSuchBucketPolicy,
    /// S3's name for a bad bucket policy.
    MalformedPolicy,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    InvalidBucketName,
    /// S3's answer to what rolecall does not implement (objects).
    NotImplemented,
    // Instance metadata (AWS answers these as HTTP 401 / 403 / 404 / 400)
    /// The role does not trust ec2.amazonaws.com: a credentials document Code, not a failure
    /// of the request.
    AssumeRoleUnauthorizedAccess,
    Unauthorized,
    Forbidden,
    NotFound,
    BadRequest,
    // Authentication (SigV4, STS) and authorization
    MissingAuthenticationToken,
    IncompleteSignature,
    SignatureDoesNotMatch,
    AuthorizationQueryParametersError,
    InvalidClientTokenId,
    ExpiredToken,
    AccessDenied,
    PackedPolicyTooLarge,
    // gRPC framing (grpc.io's status-code guide names the status of each; no AWS code exists)
    /// A unary or server-streaming call whose body is not exactly one message.
    RequestCardinalityViolation,
    /// A message compressed with an encoding the server did not negotiate.
    UnsupportedMessageEncoding,
    /// A body that is not gRPC's length-prefixed framing.
    MalformedMessage,
}

/// A domain error: what went wrong, in AWS's words.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

// === impl ErrorCode ===

impl ErrorCode {
    /// The code as AWS spells it on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSuchEntity => "NoSuchEntity",
            Self::EntityAlreadyExists => "EntityAlreadyExists",
            Self::LimitExceeded => "LimitExceeded",
            Self::DeleteConflict => "DeleteConflict",
            Self::MalformedPolicyDocument => "MalformedPolicyDocument",
            Self::InvalidInput => "InvalidInput",
            Self::ValidationError => "ValidationError",
            Self::ConcurrentModification => "ConcurrentModification",
            Self::ServiceFailure => "ServiceFailure",
            Self::InvalidParameterValue => "InvalidParameterValue",
            Self::InvalidParameterCombination => "InvalidParameterCombination",
            Self::MissingParameter => "MissingParameter",
            Self::IncorrectState => "IncorrectState",
            Self::InvalidInstanceIdNotFound => "InvalidInstanceID.NotFound",
            Self::InvalidInstanceIdMalformed => "InvalidInstanceID.Malformed",
            Self::InvalidAssociationIdNotFound => "InvalidAssociationID.NotFound",
            Self::InsufficientFreeAddressesInSubnet => "InsufficientFreeAddressesInSubnet",
            Self::UnauthorizedOperation => "UnauthorizedOperation",
            Self::DryRunOperation => "DryRunOperation",
            Self::NoSuchBucket => "NoSuchBucket",
            Self::NoSuchBucketPolicy => "NoSuchBucketPolicy",
            Self::MalformedPolicy => "MalformedPolicy",
            Self::BucketAlreadyExists => "BucketAlreadyExists",
            Self::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            Self::InvalidBucketName => "InvalidBucketName",
            Self::NotImplemented => "NotImplemented",
            Self::AssumeRoleUnauthorizedAccess => "AssumeRoleUnauthorizedAccess",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "NotFound",
            Self::BadRequest => "BadRequest",
            Self::MissingAuthenticationToken => "MissingAuthenticationToken",
            Self::IncompleteSignature => "IncompleteSignature",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            Self::InvalidClientTokenId => "InvalidClientTokenId",
            Self::ExpiredToken => "ExpiredToken",
            Self::AccessDenied => "AccessDenied",
            Self::PackedPolicyTooLarge => "PackedPolicyTooLarge",
            Self::RequestCardinalityViolation => "RequestCardinalityViolation",
            Self::UnsupportedMessageEncoding => "UnsupportedMessageEncoding",
            Self::MalformedMessage => "MalformedMessage",
        }
    }

    /// Every code, for tests and metrics that enumerate them.
    pub const ALL: &'static [ErrorCode] = &[
        Self::NoSuchEntity,
        Self::EntityAlreadyExists,
        Self::LimitExceeded,
        Self::DeleteConflict,
        Self::MalformedPolicyDocument,
        Self::InvalidInput,
        Self::ValidationError,
        Self::ConcurrentModification,
        Self::ServiceFailure,
        Self::InvalidParameterValue,
        Self::InvalidParameterCombination,
        Self::MissingParameter,
        Self::IncorrectState,
        Self::InvalidInstanceIdNotFound,
        Self::InvalidInstanceIdMalformed,
        Self::InvalidAssociationIdNotFound,
        Self::InsufficientFreeAddressesInSubnet,
        Self::UnauthorizedOperation,
        Self::DryRunOperation,
        Self::NoSuchBucket,
        Self::NoSuchBucketPolicy,
        Self::MalformedPolicy,
        Self::BucketAlreadyExists,
        Self::BucketAlreadyOwnedByYou,
        Self::InvalidBucketName,
        Self::NotImplemented,
        Self::AssumeRoleUnauthorizedAccess,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::BadRequest,
        Self::MissingAuthenticationToken,
        Self::IncompleteSignature,
        Self::SignatureDoesNotMatch,
        Self::AuthorizationQueryParametersError,
        Self::InvalidClientTokenId,
        Self::ExpiredToken,
        Self::AccessDenied,
        Self::PackedPolicyTooLarge,
        Self::RequestCardinalityViolation,
        Self::UnsupportedMessageEncoding,
        Self::MalformedMessage,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Error ===

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn no_such_entity(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NoSuchEntity, message)
    }

    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::EntityAlreadyExists, message)
    }

    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::LimitExceeded, message)
    }

    pub fn delete_conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::DeleteConflict, message)
    }

    pub fn malformed_policy(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MalformedPolicyDocument, message)
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }

    pub fn service_failure(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServiceFailure, message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({}: {})", self.code, self.message)
    }
}
