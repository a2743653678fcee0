//! AWS error codes as HTTP statuses for rolecall's HTTP front doors (by the one table,
//! `ErrorCode::answer`), and IMDS's bare error answers.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::domain::{Error, ErrorCode};

/// The HTTP status AWS answers each error code with (the table is [`ErrorCode::answer`]).
pub fn http_status(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.answer().1).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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
