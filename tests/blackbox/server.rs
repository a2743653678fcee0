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
    // What the store was asked: a new role is a commit, timed.
    let commits = rolecall_server::telemetry::counter_in(&text, "rolecall_store_commits_total");
    create_role(&server, "App", EC2_TRUST).await;
    let text = server.metrics_text().await;
    assert!(rolecall_server::telemetry::counter_in(&text, "rolecall_store_commits_total") > commits);
    assert!(rolecall_server::telemetry::counter_in(&text, "rolecall_store_reads_total") > 0);
    assert!(text.contains("rolecall_store_commit_seconds_bucket{le=\"0.00005\"}"), "{text}");
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

/// The services reflection lists.
async fn listed(server: &TestServer) -> Vec<String> {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut client = ServerReflectionClient::new(server.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers =
        client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let Some(Ok(answer)) = answers.next().await else { panic!("no reflection answer") };
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("{answer:?}")
    };
    list.service.into_iter().map(|s| s.name).collect()
}

#[tokio::test]
async fn reflection_lists_the_api_and_nothing_else() {
    let server = TestServer::start().await;
    let names = listed(&server).await;
    for expected in
        ["rolecall.v1.Iam", "rolecall.v1.Ec2", "rolecall.v1.InstanceMetadata", "grpc.health.v1.Health"]
    {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("loadtest")), "{names:?}");
    // The test clock is listed where it is served (here: the manual clock)...
    assert!(names.iter().any(|n| n == "rolecall.v1.TestControl"), "{names:?}");
    // ...and only there: a server without it neither lists nor serves it.
    let server = TestServer::start_with(|c| c.simulation.manual_clock = false).await;
    let names = listed(&server).await;
    assert!(!names.iter().any(|n| n.contains("TestControl")), "{names:?}");
    let advance = server.test_control().advance_clock(rolecall_api::AdvanceClockRequest { seconds: 1 }).await;
    assert_eq!(advance.unwrap_err().code(), tonic::Code::Unimplemented);
}
