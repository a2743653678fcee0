//! AWS's own HTTP formats, on the same core as the gRPC services: the instance metadata
//! service (`imds`), with the one table from domain errors to HTTP statuses (`error`).

pub mod error;
pub mod imds;
