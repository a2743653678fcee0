//! Pure domain logic: no transport, no storage engine, no wall clock.
//!
//! - [`error`]: AWS error codes and the domain error type.
//! - [`clock`]: the injected clock.
//! - [`ids`]: random AWS-shaped identifiers and ARNs.
//! - [`validate`]: AWS's limits and messages for names, paths, tags and durations.
//! - [`policy`]: policy documents: parse, validate per policy type, match.
//! - [`evaluation`]: the policy engine: conditions, variables, and AWS's decision logic.
//! - [`managed`]: the AWS managed policies shipped with the service.
//! - [`model`]: the catalog's records (roles, policies, profiles, users, instances).
//! - [`master_key`]: what seals the store's contents at rest.
//! - [`keyring`]: the rotating key ring that seals credentials and MACs IMDS tokens.
//! - [`credentials`]: sealed temporary credentials and their rotation schedule.
//! - [`imds_token`]: stateless IMDSv2 session tokens.
//! - [`identity`]: the signature of instance identity documents.
//! - [`sigv4`]: AWS Signature Version 4, verified and signed.

pub mod clock;
pub mod credentials;
pub mod error;
pub mod evaluation;
pub mod identity;
pub mod ids;
pub mod imds_token;
pub mod keyring;
pub mod managed;
pub mod master_key;
pub mod model;
pub mod policy;
pub mod principal;
pub mod sigv4;
pub mod validate;

pub use error::{Error, ErrorCode, Result};
