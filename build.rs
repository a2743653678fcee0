//! Generates the rolecall.v1 code from proto/ with protox, a pure-Rust protobuf compiler,
//! so that a fresh machine needs no protoc binary.

use std::{env, path::PathBuf};

use prost::Message;

/// The service's own API: what server reflection describes.
const SERVED: &[&str] =
    &["rolecall/v1/sts.proto", "rolecall/v1/iam.proto", "rolecall/v1/ec2.proto", "rolecall/v1/imds.proto"];

/// The test clock's service, described only by a server that serves it.
const TEST_CONTROL: &[&str] = &["rolecall/v1/test_control.proto"];

/// Everything generated: the API and the load tester's baseline service.
const PROTOS: &[&str] = &[
    "rolecall/v1/sts.proto",
    "rolecall/v1/iam.proto",
    "rolecall/v1/ec2.proto",
    "rolecall/v1/imds.proto",
    "rolecall/v1/test_control.proto",
    "rolecall/loadtest/v1/baseline.proto",
];

/// Messages that carry secrets: their Debug is written by hand (redacted) in proto/lib.rs.
const SECRET_MESSAGES: &[&str] = &[
    ".rolecall.v1.AccessKey",
    ".rolecall.v1.LaunchedInstance",
    ".rolecall.v1.InstanceCaller",
    ".rolecall.v1.InstanceKey",
    ".rolecall.v1.GetTokenRequest",
    ".rolecall.v1.GetTokenResponse",
    ".rolecall.v1.GetSecurityCredentialsResponse",
    ".rolecall.v1.StsCredentials",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed=proto/{proto}");
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Served by gRPC server reflection, so grpcurl can discover the API (and only it).
    let served = protox::compile(SERVED, ["proto"])?;
    std::fs::write(out_dir.join("rolecall_descriptor.bin"), served.encode_to_vec())?;
    let test_control = protox::compile(TEST_CONTROL, ["proto"])?;
    std::fs::write(out_dir.join("test_control_descriptor.bin"), test_control.encode_to_vec())?;
    let fds = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .type_attribute(".rolecall.v1", "#[derive(serde::Serialize, serde::Deserialize)]")
        .type_attribute(".rolecall.v1", "#[serde(rename_all = \"PascalCase\")]")
        // The AWS Query API reads requests from form parameters: absent ones take defaults.
        .message_attribute(".rolecall.v1", "#[serde(default)]")
        .skip_debug(SECRET_MESSAGES.iter().copied())
        .compile_fds(fds)?;
    Ok(())
}
