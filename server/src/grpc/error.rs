//! AWS error codes as gRPC statuses (by the one table, `ErrorCode::answer`). The AWS code itself travels as
//! `google.rpc.ErrorInfo.reason` (domain `rolecall.v1`) in the status details.

use tonic::{Code, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    domain::{Error, ErrorCode},
    telemetry::Metrics,
};

/// The ErrorInfo domain of every rolecall error.
pub const ERROR_DOMAIN: &str = "rolecall.v1";

/// The gRPC code that fits each AWS error code (the table is [`ErrorCode::answer`]).
pub fn grpc_code(code: ErrorCode) -> Code {
    Code::from_i32(code.answer().0 as i32)
}

/// A domain error as a gRPC status with its AWS code in the details.
pub fn to_status(err: &Error) -> Status {
    let details =
        ErrorDetails::with_error_info(err.code.as_str(), ERROR_DOMAIN, std::collections::HashMap::new());
    Status::with_error_details(grpc_code(err.code), err.message.clone(), details)
}

/// Answers a request that reached no operation (STS, the metadata service): the value, or
/// the error counted by code and mapped to a status. The operations count their own.
pub fn reply<T>(metrics: &Metrics, result: Result<T, Error>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(|e| {
        metrics.error(e.code.as_str());
        if e.code == ErrorCode::ServiceFailure {
            tracing::error!(code = e.code.as_str(), "the server failed a call: {}", e.message);
        }
        to_status(&e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_and_carries_its_reason() {
        for code in ErrorCode::ALL {
            let status = to_status(&Error::new(*code, "m"));
            assert_eq!(status.message(), "m");
            assert_eq!(status.code(), grpc_code(*code));
            let info = status.get_details_error_info().expect("error info");
            assert_eq!(info.reason, code.as_str());
            assert_eq!(info.domain, ERROR_DOMAIN);
        }
        assert_eq!(grpc_code(ErrorCode::NoSuchEntity), Code::NotFound);
        assert_eq!(grpc_code(ErrorCode::IncorrectState), Code::FailedPrecondition);
    }
}
