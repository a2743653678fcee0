//! The domain error: an AWS error code and AWS's message.

use std::fmt;

/// AWS error codes rolecall answers with. [`ErrorCode::answer`] is the one table of what each
/// transport answers with: the gRPC status code and the HTTP status, side by side.
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
    /// An action the Query API does not know (AWS's common error).
    InvalidAction,
    /// GetCredentialReport before any GenerateCredentialReport.
    ReportNotPresent,
    /// GetCredentialReport of a report over 4 hours old.
    ReportExpired,
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
    /// Why, for the operator and never for the caller: for a refusal of authorization, the
    /// policy and statement that decided (the audit trail's `additionalEventData`).
    pub explanation: Option<std::sync::Arc<str>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

// === impl ErrorCode ===

/// gRPC's status codes (<https://grpc.io/docs/guides/status-codes>), by their numbers: the
/// ones rolecall answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrpcCode {
    InvalidArgument = 3,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    Unimplemented = 12,
    Internal = 13,
    Unauthenticated = 16,
}

impl ErrorCode {
    /// How each door answers this code: the gRPC status code that fits it, and the HTTP
    /// status AWS answers it with (IMDS, the Query API, EC2's protocol, S3; EC2 answers
    /// every client error 400 but authorization, 403, and DryRun, 412). For the framing
    /// codes, which have no AWS counterpart, grpc.io's status codes guide names the status:
    /// "Error parsing request proto" is INTERNAL; "Request cardinality violation" and
    /// "Compression mechanism used by client not supported at the server" are UNIMPLEMENTED.
    pub const fn answer(self) -> (GrpcCode, u16) {
        use ErrorCode::*;
        use GrpcCode as G;
        match self {
            NoSuchEntity => (G::NotFound, 404),
            EntityAlreadyExists => (G::AlreadyExists, 409),
            LimitExceeded => (G::ResourceExhausted, 409),
            DeleteConflict => (G::FailedPrecondition, 409),
            MalformedPolicyDocument => (G::InvalidArgument, 400),
            InvalidInput => (G::InvalidArgument, 400),
            ValidationError => (G::InvalidArgument, 400),
            InvalidAction => (G::Unimplemented, 400),
            ReportNotPresent => (G::FailedPrecondition, 410),
            ReportExpired => (G::FailedPrecondition, 410),
            ConcurrentModification => (G::Aborted, 409),
            ServiceFailure => (G::Internal, 500),
            InvalidParameterValue => (G::InvalidArgument, 400),
            InvalidParameterCombination => (G::InvalidArgument, 400),
            MissingParameter => (G::InvalidArgument, 400),
            IncorrectState => (G::FailedPrecondition, 400),
            InvalidInstanceIdNotFound => (G::NotFound, 400),
            InvalidInstanceIdMalformed => (G::InvalidArgument, 400),
            InvalidAssociationIdNotFound => (G::NotFound, 400),
            InsufficientFreeAddressesInSubnet => (G::ResourceExhausted, 400),
            UnauthorizedOperation => (G::PermissionDenied, 403),
            DryRunOperation => (G::FailedPrecondition, 412),
            NoSuchBucket => (G::NotFound, 404),
            NoSuchBucketPolicy => (G::NotFound, 404),
            MalformedPolicy => (G::InvalidArgument, 400),
            BucketAlreadyExists => (G::AlreadyExists, 409),
            BucketAlreadyOwnedByYou => (G::AlreadyExists, 409),
            InvalidBucketName => (G::InvalidArgument, 400),
            NotImplemented => (G::Unimplemented, 501),
            AssumeRoleUnauthorizedAccess => (G::PermissionDenied, 403),
            Unauthorized => (G::Unauthenticated, 401),
            Forbidden => (G::PermissionDenied, 403),
            NotFound => (G::NotFound, 404),
            BadRequest => (G::InvalidArgument, 400),
            MissingAuthenticationToken => (G::Unauthenticated, 403),
            IncompleteSignature => (G::Unauthenticated, 403),
            SignatureDoesNotMatch => (G::Unauthenticated, 403),
            AuthorizationQueryParametersError => (G::Unauthenticated, 400),
            InvalidClientTokenId => (G::Unauthenticated, 403),
            ExpiredToken => (G::Unauthenticated, 403),
            AccessDenied => (G::PermissionDenied, 403),
            PackedPolicyTooLarge => (G::InvalidArgument, 400),
            RequestCardinalityViolation => (G::Unimplemented, 400),
            UnsupportedMessageEncoding => (G::Unimplemented, 415),
            MalformedMessage => (G::Internal, 400),
        }
    }

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
            Self::InvalidAction => "InvalidAction",
            Self::ReportNotPresent => "ReportNotPresent",
            Self::ReportExpired => "ReportExpired",
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
        Self::InvalidAction,
        Self::ReportNotPresent,
        Self::ReportExpired,
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
        Self { code, message: message.into(), explanation: None }
    }

    /// With `why` for the operator (see [`explanation`](Self::explanation)).
    pub fn explained(mut self, why: impl Into<std::sync::Arc<str>>) -> Self {
        self.explanation = Some(why.into());
        self
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code answers with an error status on HTTP, and the ones a caller can fix with a
    /// 4xx; the server's own failures with a 5xx.
    #[test]
    fn every_code_has_an_answer_on_each_door() {
        for code in ErrorCode::ALL {
            let (_, http) = code.answer();
            assert!((400..=599).contains(&http), "{code:?}: {http}");
        }
        assert_eq!(ErrorCode::ServiceFailure.answer(), (GrpcCode::Internal, 500));
        assert_eq!(ErrorCode::AccessDenied.answer(), (GrpcCode::PermissionDenied, 403));
        assert_eq!(ErrorCode::DryRunOperation.answer(), (GrpcCode::FailedPrecondition, 412));
        assert_eq!(ErrorCode::InvalidClientTokenId.answer(), (GrpcCode::Unauthenticated, 403));
    }
}
