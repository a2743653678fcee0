//! aws-sdk-rust, unmodified, against a real rolecall: aws-config's IMDS credentials provider
//! (IMDSv2 only: it always asks for a token) on an instance that requires tokens, then
//! aws-sdk-sts signing with what it found.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_config::{BehaviorVersion, Region, imds, provider_config::ProviderConfig};
use aws_sdk_sts::config::ProvideCredentials;
use rolecall_api as pb;
use rolecall_server::test_util::TestServer;

const EC2_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// A role trusting EC2 in a profile of the same name.
async fn role_in_profile(server: &TestServer, name: &str) {
    let mut iam = server.iam();
    let role = pb::CreateRoleRequest {
        role_name: name.into(),
        assume_role_policy_document: EC2_TRUST.into(),
        ..Default::default()
    };
    iam.create_role(role).await.unwrap();
    let profile =
        pb::CreateInstanceProfileRequest { instance_profile_name: name.into(), ..Default::default() };
    iam.create_instance_profile(profile).await.unwrap();
    let add =
        pb::AddRoleToInstanceProfileRequest { instance_profile_name: name.into(), role_name: name.into() };
    iam.add_role_to_instance_profile(add).await.unwrap();
}

/// One instance requiring IMDSv2, with `profile` if given.
async fn launch(server: &TestServer, profile: Option<&str>) -> String {
    let request = pb::RunInstancesRequest {
        image_id: "ami-0abcdef1234567890".into(),
        iam_instance_profile: profile
            .map(|name| pb::IamInstanceProfileSpecification { name: name.into(), ..Default::default() }),
        metadata_options: Some(pb::InstanceMetadataOptionsRequest {
            http_tokens: "required".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut pages = server.ec2().run_instances(request).await.unwrap().into_inner();
    let page = pages.message().await.unwrap().unwrap();
    page.instances[0].instance.as_ref().unwrap().instance_id.clone()
}

/// aws-config's IMDS credentials provider, with the instance's metadata endpoint (as
/// AWS_EC2_METADATA_SERVICE_ENDPOINT would set it) and a plain-HTTP client.
fn imds_provider(server: &TestServer, instance_id: &str) -> imds::credentials::ImdsCredentialsProvider {
    let provider_config = ProviderConfig::without_region().with_http_client(http_client());
    let client = imds::Client::builder()
        .configure(&provider_config)
        .endpoint(format!("http://{}/{instance_id}/", server.imds_addr))
        .unwrap()
        .build();
    imds::credentials::ImdsCredentialsProvider::builder()
        .configure(&provider_config)
        .imds_client(client)
        .build()
}

fn http_client() -> aws_sdk_sts::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_http()
}

#[tokio::test]
async fn aws_config_reads_instance_credentials_over_imdsv2_and_aws_sdk_sts_signs_with_them() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let instance_id = launch(&server, Some("Web")).await;
    let provider = imds_provider(&server, &instance_id);
    let credentials = provider.provide_credentials().await.unwrap();
    assert!(credentials.access_key_id().starts_with("ASIA"));
    assert!(credentials.session_token().is_some());
    assert!(credentials.expiry().is_some());

    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .credentials_provider(provider)
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", server.query_addr))
        .load()
        .await;
    let me = aws_sdk_sts::Client::new(&config).get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some(format!("arn:aws:sts::123456789012:assumed-role/Web/{instance_id}").as_str()));
    assert_eq!(me.account(), Some("123456789012"));
}

#[tokio::test]
async fn aws_config_finds_no_credentials_on_an_instance_without_a_role() {
    let server = TestServer::start().await;
    let instance_id = launch(&server, None).await;
    let error = imds_provider(&server, &instance_id).provide_credentials().await.unwrap_err();
    assert!(format!("{error:?}").starts_with("CredentialsNotLoaded"), "{error:?}");
}
