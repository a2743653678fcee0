//! EC2 over gRPC: launching, the one association of a running instance, metadata options.

use std::collections::HashSet;

use rolecall_api as pb;
use tonic::Code;

use crate::common::*;

fn by_name(name: &str) -> Option<pb::IamInstanceProfileSpecification> {
    Some(pb::IamInstanceProfileSpecification { name: name.into(), ..Default::default() })
}

#[tokio::test]
async fn associations_follow_ec2_rules() {
    let server = TestServer::start().await;
    let mut ec2 = server.ec2();
    role_in_profile(&server, "Web").await;
    role_in_profile(&server, "Batch").await;
    let (instance, _) = launch(&server, 1, None).await.remove(0);
    assert_eq!(instance.state.as_ref().unwrap().name, "running");
    assert!(instance.iam_instance_profile.is_none());

    expect_error(
        ec2.associate_iam_instance_profile(pb::AssociateIamInstanceProfileRequest {
            iam_instance_profile: by_name("Missing"),
            instance_id: instance.instance_id.clone(),
        })
        .await,
        Code::InvalidArgument,
        "InvalidParameterValue",
    );
    let first = associate(&server, &instance.instance_id, "Web").await;
    let msg = expect_error(
        ec2.associate_iam_instance_profile(pb::AssociateIamInstanceProfileRequest {
            iam_instance_profile: by_name("Batch"),
            instance_id: instance.instance_id.clone(),
        })
        .await,
        Code::FailedPrecondition,
        "IncorrectState",
    );
    assert!(msg.contains(&instance.instance_id), "{msg}");

    let listed = ec2
        .describe_iam_instance_profile_associations(pb::DescribeIamInstanceProfileAssociationsRequest {
            filters: vec![pb::Filter {
                name: "instance-id".into(),
                values: vec![instance.instance_id.clone()],
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .iam_instance_profile_associations;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].association_id, first.association_id);
    assert_eq!(listed[0].state, "associated");
    assert!(listed[0].iam_instance_profile.as_ref().unwrap().arn.ends_with("instance-profile/Web"));
    for (state, expected) in [("associated", 1), ("disassociated", 0)] {
        let n = ec2
            .describe_iam_instance_profile_associations(pb::DescribeIamInstanceProfileAssociationsRequest {
                filters: vec![pb::Filter { name: "state".into(), values: vec![state.into()] }],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .iam_instance_profile_associations
            .len();
        assert_eq!(n, expected, "{state}");
    }

    // Replace swaps the profile of the running instance under a new association id.
    let replaced = ec2
        .replace_iam_instance_profile_association(pb::ReplaceIamInstanceProfileAssociationRequest {
            iam_instance_profile: by_name("Batch"),
            association_id: first.association_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .iam_instance_profile_association
        .unwrap();
    assert_ne!(replaced.association_id, first.association_id);
    expect_error(
        ec2.disassociate_iam_instance_profile(pb::DisassociateIamInstanceProfileRequest {
            association_id: first.association_id.clone(),
        })
        .await,
        Code::NotFound,
        "InvalidAssociationID.NotFound",
    );
    let described = ec2
        .describe_instances(pb::DescribeInstancesRequest {
            instance_ids: vec![instance.instance_id.clone()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .instances;
    assert!(described[0].iam_instance_profile.as_ref().unwrap().arn.ends_with("instance-profile/Batch"));

    ec2.disassociate_iam_instance_profile(pb::DisassociateIamInstanceProfileRequest {
        association_id: replaced.association_id.clone(),
    })
    .await
    .unwrap();
    let listed = ec2
        .describe_iam_instance_profile_associations(
            pb::DescribeIamInstanceProfileAssociationsRequest::default(),
        )
        .await
        .unwrap()
        .into_inner()
        .iam_instance_profile_associations;
    assert!(listed.is_empty());

    // A terminated instance takes no profile.
    let change = ec2
        .terminate_instances(pb::TerminateInstancesRequest {
            instance_ids: vec![instance.instance_id.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .terminating_instances;
    assert_eq!(change[0].previous_state.as_ref().unwrap().name, "running");
    assert_eq!(change[0].current_state.as_ref().unwrap().code, 48);
    expect_error(
        ec2.associate_iam_instance_profile(pb::AssociateIamInstanceProfileRequest {
            iam_instance_profile: by_name("Web"),
            instance_id: instance.instance_id.clone(),
        })
        .await,
        Code::FailedPrecondition,
        "IncorrectState",
    );
}

#[tokio::test]
async fn unknown_instances_and_bad_options_are_refused() {
    let server = TestServer::start().await;
    let mut ec2 = server.ec2();
    expect_error(
        ec2.describe_instances(pb::DescribeInstancesRequest {
            instance_ids: vec!["i-0123456789abcdef0".into()],
            ..Default::default()
        })
        .await,
        Code::NotFound,
        "InvalidInstanceID.NotFound",
    );
    expect_error(
        ec2.terminate_instances(pb::TerminateInstancesRequest { instance_ids: vec!["nonsense".into()] })
            .await,
        Code::InvalidArgument,
        "InvalidInstanceID.Malformed",
    );
    let (instance, _) = launch(&server, 1, None).await.remove(0);
    expect_error(
        ec2.modify_instance_metadata_options(pb::ModifyInstanceMetadataOptionsRequest {
            instance_id: instance.instance_id.clone(),
            http_tokens: "sometimes".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "InvalidParameterValue",
    );
    expect_error(
        ec2.modify_instance_metadata_options(pb::ModifyInstanceMetadataOptionsRequest {
            instance_id: instance.instance_id.clone(),
            http_put_response_hop_limit: Some(65),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "InvalidParameterValue",
    );
    let options = ec2
        .modify_instance_metadata_options(pb::ModifyInstanceMetadataOptionsRequest {
            instance_id: instance.instance_id.clone(),
            http_tokens: "required".into(),
            http_put_response_hop_limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .instance_metadata_options
        .unwrap();
    assert_eq!((options.http_tokens.as_str(), options.http_put_response_hop_limit), ("required", 2));
    expect_error(
        ec2.run_instances(pb::RunInstancesRequest { min_count: 1, max_count: 1, ..Default::default() }).await,
        Code::InvalidArgument,
        "MissingParameter",
    );
    expect_error(
        ec2.run_instances(pb::RunInstancesRequest {
            image_id: "ami-1".into(),
            min_count: 1,
            max_count: 1,
            iam_instance_profile: by_name("Missing"),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "InvalidParameterValue",
    );
    // EC2's 16 KB limit is on the user data before base64: 16384 bytes pass, one more does not.
    let user_data = |raw: usize| pb::RunInstancesRequest {
        image_id: "ami-1".into(),
        user_data: data_encoding::BASE64.encode(&vec![b'#'; raw]),
        ..Default::default()
    };
    let msg = expect_error(
        ec2.run_instances(user_data(16_385)).await,
        Code::InvalidArgument,
        "InvalidParameterValue",
    );
    assert!(msg.contains("User data is limited to 16384 bytes"), "{msg}");
    ec2.run_instances(user_data(16_384)).await.unwrap();
    // The refused launches launched nothing.
    let all =
        ec2.describe_instances(pb::DescribeInstancesRequest::default()).await.unwrap().into_inner().instances;
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn a_fleet_of_100000_launches_in_one_call_and_pages() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Fleet").await;
    let fleet = launch(&server, 100_000, Some("Fleet")).await;
    assert_eq!(fleet.len(), 100_000);
    let ids: HashSet<&str> = fleet.iter().map(|(i, _)| i.instance_id.as_str()).collect();
    let addresses: HashSet<&str> = fleet.iter().map(|(i, _)| i.private_ip_address.as_str()).collect();
    let keys: HashSet<&str> = fleet.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!((ids.len(), addresses.len(), keys.len()), (100_000, 100_000, 100_000));
    assert!(fleet.iter().all(|(i, _)| i.iam_instance_profile.is_some()));

    // DescribeInstances pages at most 1,000 at a time and reaches every instance.
    let mut ec2 = server.ec2();
    let mut seen = 0;
    let mut next_token = String::new();
    let mut pages = 0;
    loop {
        let page = ec2
            .describe_instances(pb::DescribeInstancesRequest {
                next_token: next_token.clone(),
                max_results: Some(1000),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.instances.len() <= 1000);
        seen += page.instances.len();
        pages += 1;
        if page.next_token.is_empty() {
            break;
        }
        next_token = page.next_token;
    }
    assert_eq!((seen, pages), (100_000, 100));
    assert_eq!(server.counter("rolecall_instances_launched_total").await, 100_000);
}
