//! The one table from AWS error codes to HTTP statuses for rolecall's HTTP front doors.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::domain::{Error, ErrorCode};

/// The HTTP status AWS answers each error code with, in IMDS, the Query API (IAM, STS),
/// EC2's protocol and S3. EC2 answers every client error 400 but authorization (403) and
/// DryRun (412).
pub fn http_status(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        BadRequest
        | MalformedPolicyDocument
        | MalformedPolicy
        | InvalidInput
        | ValidationError
        | InvalidParameterValue
        | InvalidParameterCombination
        | MissingParameter
        | IncorrectState
        | InvalidInstanceIdNotFound
        | InvalidInstanceIdMalformed
        | InvalidAssociationIdNotFound
        | InsufficientFreeAddressesInSubnet
        | PackedPolicyTooLarge
        | InvalidBucketName
        | AuthorizationQueryParametersError
        | RequestCardinalityViolation
        | MalformedMessage => StatusCode::BAD_REQUEST,
        UnsupportedMessageEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Unauthorized => StatusCode::UNAUTHORIZED,
        Forbidden
        | MissingAuthenticationToken
        | IncompleteSignature
        | SignatureDoesNotMatch
        | InvalidClientTokenId
        | ExpiredToken
        | AccessDenied
        | UnauthorizedOperation
        | AssumeRoleUnauthorizedAccess => StatusCode::FORBIDDEN,
        NotFound | NoSuchEntity | NoSuchBucket | NoSuchBucketPolicy => StatusCode::NOT_FOUND,
        EntityAlreadyExists
        | LimitExceeded
        | DeleteConflict
        | ConcurrentModification
        | BucketAlreadyExists
        | BucketAlreadyOwnedByYou => StatusCode::CONFLICT,
        DryRunOperation => StatusCode::PRECONDITION_FAILED,
        ServiceFailure => StatusCode::INTERNAL_SERVER_ERROR,
        NotImplemented => StatusCode::NOT_IMPLEMENTED,
    }
}

/// IMDS answers errors with a bare status line, as EC2's does.
pub fn imds_error(e: &Error) -> Response {
    let status = http_status(e.code);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(code = e.code.as_str(), "instance metadata failed: {}", e.message);
    }
    let body = format!("{} - {}\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
    (status, [("content-type", "text/plain")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imds_codes_map_to_aws_statuses() {
        assert_eq!(http_status(ErrorCode::Unauthorized), StatusCode::UNAUTHORIZED);
        assert_eq!(http_status(ErrorCode::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(http_status(ErrorCode::BadRequest), StatusCode::BAD_REQUEST);
        assert_eq!(http_status(ErrorCode::Forbidden), StatusCode::FORBIDDEN);
        assert_eq!(http_status(ErrorCode::SignatureDoesNotMatch), StatusCode::FORBIDDEN);
        assert_eq!(http_status(ErrorCode::EntityAlreadyExists), StatusCode::CONFLICT);
        assert_eq!(http_status(ErrorCode::ValidationError), StatusCode::BAD_REQUEST);
        assert_eq!(http_status(ErrorCode::DryRunOperation), StatusCode::PRECONDITION_FAILED);
    }
}
