//! Black-box tests: each starts the real server on 127.0.0.1:0 and drives it over real
//! sockets with the generated tonic clients. One binary for the whole suite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod audit;
mod aws_cli;
mod botocore;
mod cli;
mod common;
mod doors;
mod durability;
mod ec2;
#[cfg(feature = "etcd")]
mod etcd;
mod every_rpc;
mod exposure;
mod framing;
mod http_imds;
mod iam;
mod identity;
mod imds;
mod netns;
mod server;
mod sts;
mod tls;
mod walkthrough;
