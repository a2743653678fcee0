//! rolecall's load tester: a fleet of instance agents as goose users, against a rolecall
//! server and, in the same run, a bare tonic baseline serving the same messages.
//!
//! # Layout
//! - [`bench`]: the scenarios' procedures and the passes (goose executions) they run.
//! - [`harness`]: goose users as instance agents; closed and open loop; hdrhistogram.
//! - [`imds`]: the HTTP agent, acting as the AWS SDKs' IMDSv2 credential provider.
//! - [`fleet`]: roles, profiles and instances made through the real API.
//! - [`servers`]: the server under test (child process, in-process, or remote).
//! - [`baseline`]: the minimal baseline servers (tonic; bare hyper for HTTP).
//! - [`report`]: figures, ratios, targets, JSON and the console summary.
//! - [`procfs`]: CPU time and memory from /proc, and the machine's description.

#![forbid(unsafe_code)]

pub mod baseline;
pub mod bench;
pub mod fleet;
pub mod harness;
pub mod imds;
pub mod memory;
pub mod procfs;
pub mod report;
pub mod servers;
