//! AWS's own HTTP formats, on the same core as the gRPC services: the instance metadata
//! service (`imds`) and the AWS Query API (`query`), with the one table from domain errors
//! to IMDS statuses (`error`; the Query API's is in `query`, beside its XML).

pub mod door;
pub mod ec2;
pub mod error;
pub mod form;
pub mod imds;
pub mod port;
pub mod query;
pub mod s3;
pub mod xml;
