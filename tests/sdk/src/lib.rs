//! Nothing but tests: aws-sdk-rust against a real rolecall (`tests/aws_sdk_rust.rs`), behind
//! the `aws-sdk` feature so that a plain `cargo test` does not build the SDK.
