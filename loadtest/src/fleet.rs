//! The fleet: roles, instance profiles and instances made through rolecall's real API
//! (RunInstances in batches of 10,000), each instance with its IMDSv2
//! token and association.

use std::collections::HashMap;

use rolecall_api::{
    self as pb, ec2_client::Ec2Client, iam_client::IamClient,
    instance_metadata_client::InstanceMetadataClient,
};
use tokio::task::JoinSet;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// The trust policy the seeds use.
const EC2_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// Instances per RunInstances call of the bootstrap.
const LAUNCH_BATCH: usize = 10_000;

/// The two roles (and profiles of the same names) a fleet switches between.
pub const ROLES: [&str; 2] = ["FleetRoleA", "FleetRoleB"];

/// One instance as its agent knows it.
#[derive(Clone, Debug)]
pub struct Member {
    pub index: usize,
    pub instance_id: String,
    pub token: String,
    pub association_id: String,
    /// The access key id the warm-up fetched (empty before warm-up).
    pub warm_key: String,
}

pub struct Fleet {
    pub members: Vec<Member>,
}

fn err(what: &str) -> impl Fn(tonic::Status) -> String + '_ {
    move |s| format!("{what}: {} ({:?})", s.message(), s.code())
}

/// Bootstraps `count` instances with profile FleetRoleA through the API.
pub async fn bootstrap(channels: &[Channel], count: usize) -> Result<Fleet, String> {
    let channel = channels.first().ok_or("no channel")?.clone();
    let mut iam = IamClient::new(channel.clone());
    for role in ROLES {
        iam.create_role(pb::CreateRoleRequest {
            role_name: role.into(),
            assume_role_policy_document: EC2_TRUST.into(),
            ..Default::default()
        })
        .await
        .map_err(err("CreateRole"))?;
        iam.attach_role_policy(pb::AttachRolePolicyRequest {
            role_name: role.into(),
            policy_arn: "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess".into(),
        })
        .await
        .map_err(err("AttachRolePolicy"))?;
        iam.create_instance_profile(pb::CreateInstanceProfileRequest {
            instance_profile_name: role.into(),
            ..Default::default()
        })
        .await
        .map_err(err("CreateInstanceProfile"))?;
        iam.add_role_to_instance_profile(pb::AddRoleToInstanceProfileRequest {
            instance_profile_name: role.into(),
            role_name: role.into(),
        })
        .await
        .map_err(err("AddRoleToInstanceProfile"))?;
    }
    // A fleet is launched in batches: the server launches at most 100,000 per call, and on
    // a durable store each call is one sealed, fsynced commit that must end within the
    // request timeout (10 s): 100,000 on redb did not, on this busy 2-vCPU machine.
    let batch = LAUNCH_BATCH.min(rolecall_server::catalog::Limits::default().run_instances_max);
    let mut launched = Vec::with_capacity(count);
    while launched.len() < count {
        let n = i32::try_from((count - launched.len()).min(batch)).map_err(|_| "fleet too large")?;
        let batch = run_instances(channel.clone(), n).await?;
        if batch.len() != n as usize {
            return Err(format!("RunInstances launched {} of {n}", batch.len()));
        }
        launched.extend(batch);
    }
    let associations = association_ids(channel).await?;
    let tokens = in_parallel(
        channels,
        |n| n % channels.len(),
        launched.clone(),
        |mut imds, (id, key)| async move {
            imds.get_token(pb::GetTokenRequest { instance_id: id, instance_key: key, ttl_seconds: 21_600 })
                .await
                .map(|r| r.into_inner().token)
                .map_err(err("GetToken"))
        },
    )
    .await?;
    let members = launched
        .into_iter()
        .zip(tokens)
        .enumerate()
        .map(|(index, ((instance_id, _), token))| Member {
            index,
            association_id: associations.get(&instance_id).cloned().unwrap_or_default(),
            instance_id,
            token,
            warm_key: String::new(),
        })
        .collect();
    Ok(Fleet { members })
}

/// Launches `count` instances with profile FleetRoleA: (instance id, instance key) each.
async fn run_instances(channel: Channel, count: i32) -> Result<Vec<(String, String)>, String> {
    let mut stream = Ec2Client::new(channel)
        .run_instances(pb::RunInstancesRequest {
            image_id: "ami-0abcdef1234567890".into(),
            instance_type: "t3.micro".into(),
            min_count: count,
            max_count: count,
            iam_instance_profile: Some(pb::IamInstanceProfileSpecification {
                name: ROLES[0].into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .map_err(err("RunInstances"))?
        .into_inner();
    let mut launched = Vec::with_capacity(count as usize);
    while let Some(page) = stream.next().await {
        for l in page.map_err(err("RunInstances"))?.instances {
            let id = l.instance.map(|i| i.instance_id).unwrap_or_default();
            launched.push((id, l.instance_key));
        }
    }
    Ok(launched)
}

/// instance id -> current association id.
async fn association_ids(channel: Channel) -> Result<HashMap<String, String>, String> {
    let mut ec2 = Ec2Client::new(channel);
    let mut out = HashMap::new();
    let mut next_token = String::new();
    loop {
        let page = ec2
            .describe_iam_instance_profile_associations(pb::DescribeIamInstanceProfileAssociationsRequest {
                next_token: next_token.clone(),
                max_results: Some(1000),
                ..Default::default()
            })
            .await
            .map_err(err("DescribeIamInstanceProfileAssociations"))?
            .into_inner();
        for a in page.iam_instance_profile_associations {
            out.insert(a.instance_id, a.association_id);
        }
        if page.next_token.is_empty() {
            return Ok(out);
        }
        next_token = page.next_token;
    }
}

/// Fetches every member's credentials once, through the channel (so the replica) that will
/// serve it in a pass of `users` users, filling that replica's cache; remembers the access
/// key each got.
pub async fn warm(channels: &[Channel], fleet: &mut Fleet, users: usize) -> Result<(), String> {
    let work: Vec<(String, String)> =
        fleet.members.iter().map(|m| (m.token.clone(), ROLES[0].to_string())).collect();
    let members = work.len();
    let route = |n| crate::harness::channel_of(n, users, members, channels.len());
    let keys = in_parallel(channels, route, work, |mut imds, (token, role)| async move {
        imds.get_security_credentials(pb::GetSecurityCredentialsRequest {
            caller: Some(pb::InstanceCaller::token(token)),
            role_name: role,
        })
        .await
        .map(|r| r.into_inner().access_key_id)
        .map_err(err("GetSecurityCredentials"))
    })
    .await?;
    for (m, k) in fleet.members.iter_mut().zip(keys) {
        m.warm_key = k;
    }
    Ok(())
}

/// A fleet for the baseline server: the same shapes (ids, tokens) with no server state.
pub fn synthetic(count: usize) -> Fleet {
    let members = (0..count)
        .map(|index| Member {
            index,
            instance_id: format!("i-{index:017x}"),
            // An IMDSv2 token is 64 bytes, base64url: 86 characters.
            token: "A".repeat(86),
            association_id: format!("iip-assoc-{index:017x}"),
            warm_key: String::new(),
        })
        .collect();
    Fleet { members }
}

/// Runs `call` over `items` with 8 concurrent workers per channel, item `n` on channel
/// `route(n)`; answers in item order.
async fn in_parallel<I, O, F, Fut>(
    channels: &[Channel],
    route: impl Fn(usize) -> usize,
    items: Vec<I>,
    call: F,
) -> Result<Vec<O>, String>
where
    I: Send + 'static,
    O: Send + 'static,
    F: Fn(InstanceMetadataClient<Channel>, I) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<O, String>> + Send,
{
    let workers = (channels.len() * 8).max(1);
    let mut queues: Vec<Vec<(usize, I)>> = (0..workers).map(|_| Vec::new()).collect();
    // Worker `w` uses channel `w % channels`: a channel's items go round its 8 workers.
    let mut dealt = vec![0usize; channels.len()];
    for (n, item) in items.into_iter().enumerate() {
        let channel = route(n) % channels.len().max(1);
        let turn = dealt.get_mut(channel).map_or(0, |d| std::mem::replace(d, *d + 1));
        queues[(channel + channels.len() * (turn % 8)) % workers].push((n, item));
    }
    let total: usize = queues.iter().map(Vec::len).sum();
    let mut set = JoinSet::new();
    for (w, queue) in queues.into_iter().enumerate() {
        let client = InstanceMetadataClient::new(channels[w % channels.len()].clone());
        let call = call.clone();
        set.spawn(async move {
            let mut out = Vec::with_capacity(queue.len());
            for (n, item) in queue {
                out.push((n, call(client.clone(), item).await?));
            }
            Ok::<_, String>(out)
        });
    }
    let mut results: Vec<Option<O>> = (0..total).map(|_| None).collect();
    while let Some(done) = set.join_next().await {
        for (n, o) in done.map_err(|e| e.to_string())?? {
            results[n] = Some(o);
        }
    }
    results.into_iter().map(|o| o.ok_or_else(|| "a worker lost an answer".to_string())).collect()
}
