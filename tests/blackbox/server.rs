//! The service around the API: health, reflection, metrics, shutdown.

use rolecall_api as pb;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::common::*;

#[tokio::test]
async fn health_reports_every_service_serving() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel.clone());
    for service in ["", "rolecall.v1.Iam", "rolecall.v1.Ec2", "rolecall.v1.InstanceMetadata"] {
        let status =
            health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service}");
    }
}

#[tokio::test]
async fn metrics_endpoint_counts_errors_by_aws_code() {
    let server = TestServer::start().await;
    let _ = server.iam().get_role(pb::GetRoleRequest { role_name: "Missing".into() }).await;
    let _ = server.iam().get_role(pb::GetRoleRequest { role_name: "Missing".into() }).await;
    let text = server.metrics_text().await;
    assert!(text.contains("rolecall_errors_total{code=\"NoSuchEntity\"} 2"), "{text}");
    assert!(text.contains("# TYPE rolecall_credentials_issued counter"), "{text}");
}

#[tokio::test]
async fn stop_drains_and_returns() {
    let server = TestServer::start().await;
    create_role(&server, "App", EC2_TRUST).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn test_control_is_absent_unless_configured() {
    let server = TestServer::start_with(|c| c.simulation.manual_clock = false).await;
    let err = server.test_control().advance_clock(pb::AdvanceClockRequest { seconds: 1 }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
}
