//! The operator's client: one subcommand per API call, named and flagged like the aws CLI,
//! printing the response as JSON in the aws CLI's PascalCase. IAM's calls are all served
//! alike, from the API's own list and descriptor (`iam`); EC2's, the metadata service's and
//! STS's are written out here.

use clap::{Args, Subcommand};
use rolecall_api::{self as pb, ec2_client::Ec2Client, instance_metadata_client::InstanceMetadataClient};
use serde::Serialize;
use tokio_stream::StreamExt;
use tonic::{Response, Status, transport::Channel};
use tonic_types::StatusExt;

mod iam;

pub use iam::{IamCommand, iam};

#[derive(Args)]
pub struct ClientArgs<C: Subcommand> {
    /// The rolecall gRPC endpoint.
    #[arg(long, env = "ROLECALL_ENDPOINT", default_value = "http://127.0.0.1:50051", global = true)]
    endpoint: String,
    #[command(subcommand)]
    command: C,
}

/// A policy document: inline JSON, or `file://PATH` as in the aws CLI.
fn document(arg: &str) -> Result<String, String> {
    match arg.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}")),
        None => Ok(arg.to_string()),
    }
}

/// `Name=X` or `Arn=Y`, as the aws CLI takes --iam-instance-profile.
fn profile_spec(arg: &str) -> Result<pb::IamInstanceProfileSpecification, String> {
    let mut spec = pb::IamInstanceProfileSpecification::default();
    for part in arg.split(',') {
        match part.split_once('=') {
            Some(("Name", v)) => spec.name = v.into(),
            Some(("Arn", v)) => spec.arn = v.into(),
            _ => spec.name = part.into(),
        }
    }
    Ok(spec)
}

async fn connect(endpoint: &str) -> Result<Channel, String> {
    tonic::transport::Endpoint::from_shared(endpoint.to_string())
        .map_err(|e| format!("{endpoint}: {e}"))?
        .connect()
        .await
        .map_err(|e| format!("cannot reach {endpoint}: {e}"))
}

/// The aws CLI's error line: "An error occurred (CODE) when calling the OP operation: MESSAGE".
fn failure(operation: &str, status: Status) -> String {
    let code =
        status.get_details_error_info().map(|i| i.reason).unwrap_or_else(|| format!("{:?}", status.code()));
    format!("An error occurred ({code}) when calling the {operation} operation: {}", status.message())
}

fn print<T: Serialize>(operation: &str, result: Result<Response<T>, Status>) -> Result<(), String> {
    let value = result.map_err(|s| failure(operation, s))?.into_inner();
    let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    if text != "{}" {
        println!("{text}");
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum Ec2Command {
    RunInstances {
        #[arg(long)]
        image_id: String,
        #[arg(long, default_value_t = 1)]
        count: i32,
        #[arg(long, default_value = "")]
        instance_type: String,
        /// Name=PROFILE or Arn=ARN.
        #[arg(long)]
        iam_instance_profile: Option<String>,
        #[arg(long, default_value = "")]
        key_name: String,
        #[arg(long, num_args = 1..)]
        security_group_ids: Vec<String>,
        #[arg(long, default_value = "")]
        subnet_id: String,
        /// optional or required.
        #[arg(long, default_value = "")]
        http_tokens: String,
    },
    DescribeInstances {
        #[arg(long, num_args = 1..)]
        instance_ids: Vec<String>,
    },
    TerminateInstances {
        #[arg(long, num_args = 1.., required = true)]
        instance_ids: Vec<String>,
    },
    AssociateIamInstanceProfile {
        #[arg(long)]
        instance_id: String,
        /// Name=PROFILE or Arn=ARN.
        #[arg(long)]
        iam_instance_profile: String,
    },
    ReplaceIamInstanceProfileAssociation {
        #[arg(long)]
        association_id: String,
        #[arg(long)]
        iam_instance_profile: String,
    },
    DisassociateIamInstanceProfile {
        #[arg(long)]
        association_id: String,
    },
    DescribeIamInstanceProfileAssociations {
        #[arg(long, num_args = 1..)]
        association_ids: Vec<String>,
    },
    ModifyInstanceMetadataOptions {
        #[arg(long)]
        instance_id: String,
        #[arg(long, default_value = "")]
        http_tokens: String,
        #[arg(long)]
        http_put_response_hop_limit: Option<i32>,
        #[arg(long, default_value = "")]
        http_endpoint: String,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Reservation {
    reservation_id: String,
    instances: Vec<pb::LaunchedInstance>,
}

pub async fn ec2(args: ClientArgs<Ec2Command>) -> Result<(), String> {
    let mut c = Ec2Client::new(connect(&args.endpoint).await?);
    use Ec2Command::*;
    match args.command {
        RunInstances {
            image_id,
            count,
            instance_type,
            iam_instance_profile,
            key_name,
            security_group_ids,
            subnet_id,
            http_tokens,
        } => {
            let req = pb::RunInstancesRequest {
                image_id,
                instance_type,
                min_count: count,
                max_count: count,
                iam_instance_profile: iam_instance_profile.as_deref().map(profile_spec).transpose()?,
                key_name,
                security_group_ids,
                subnet_id,
                metadata_options: Some(pb::InstanceMetadataOptionsRequest {
                    http_tokens,
                    ..Default::default()
                }),
                user_data: String::new(),
            };
            let mut stream = c.run_instances(req).await.map_err(|s| failure("RunInstances", s))?.into_inner();
            let mut out = Reservation { reservation_id: String::new(), instances: vec![] };
            while let Some(page) = stream.next().await {
                let page = page.map_err(|s| failure("RunInstances", s))?;
                out.reservation_id = page.reservation_id;
                out.instances.extend(page.instances);
            }
            println!("{}", serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?);
            Ok(())
        }
        DescribeInstances { instance_ids } => print(
            "DescribeInstances",
            c.describe_instances(pb::DescribeInstancesRequest { instance_ids, ..Default::default() }).await,
        ),
        TerminateInstances { instance_ids } => print(
            "TerminateInstances",
            c.terminate_instances(pb::TerminateInstancesRequest { instance_ids }).await,
        ),
        AssociateIamInstanceProfile { instance_id, iam_instance_profile } => print(
            "AssociateIamInstanceProfile",
            c.associate_iam_instance_profile(pb::AssociateIamInstanceProfileRequest {
                iam_instance_profile: Some(profile_spec(&iam_instance_profile)?),
                instance_id,
            })
            .await,
        ),
        ReplaceIamInstanceProfileAssociation { association_id, iam_instance_profile } => print(
            "ReplaceIamInstanceProfileAssociation",
            c.replace_iam_instance_profile_association(pb::ReplaceIamInstanceProfileAssociationRequest {
                iam_instance_profile: Some(profile_spec(&iam_instance_profile)?),
                association_id,
            })
            .await,
        ),
        DisassociateIamInstanceProfile { association_id } => print(
            "DisassociateIamInstanceProfile",
            c.disassociate_iam_instance_profile(pb::DisassociateIamInstanceProfileRequest { association_id })
                .await,
        ),
        DescribeIamInstanceProfileAssociations { association_ids } => print(
            "DescribeIamInstanceProfileAssociations",
            c.describe_iam_instance_profile_associations(pb::DescribeIamInstanceProfileAssociationsRequest {
                association_ids,
                ..Default::default()
            })
            .await,
        ),
        ModifyInstanceMetadataOptions {
            instance_id,
            http_tokens,
            http_put_response_hop_limit,
            http_endpoint,
        } => print(
            "ModifyInstanceMetadataOptions",
            c.modify_instance_metadata_options(pb::ModifyInstanceMetadataOptionsRequest {
                instance_id,
                http_tokens,
                http_put_response_hop_limit,
                http_endpoint,
            })
            .await,
        ),
    }
}

#[derive(Subcommand)]
pub enum ImdsCommand {
    /// An IMDSv2 session token for an instance (PUT /latest/api/token).
    GetToken {
        #[arg(long)]
        instance_id: String,
        /// The instance key RunInstances returned.
        #[arg(long, env = "ROLECALL_INSTANCE_KEY", allow_hyphen_values = true)]
        instance_key: String,
        #[arg(long, default_value_t = 21600)]
        ttl_seconds: i32,
    },
    /// iam/security-credentials/: the role name.
    ListRoles {
        #[arg(long, env = "ROLECALL_IMDS_TOKEN", allow_hyphen_values = true)]
        token: String,
    },
    /// iam/security-credentials/ROLE (the role attached, when --role-name is not given).
    GetCredentials {
        #[arg(long, env = "ROLECALL_IMDS_TOKEN", allow_hyphen_values = true)]
        token: String,
        #[arg(long)]
        role_name: Option<String>,
    },
    /// iam/info.
    GetIamInfo {
        #[arg(long, env = "ROLECALL_IMDS_TOKEN", allow_hyphen_values = true)]
        token: String,
    },
    /// Any meta-data path, e.g. instance-id or placement/region; "" lists the root.
    GetMetadata {
        #[arg(long, env = "ROLECALL_IMDS_TOKEN", allow_hyphen_values = true)]
        token: String,
        #[arg(long, default_value = "")]
        path: String,
    },
}

pub async fn imds(args: ClientArgs<ImdsCommand>) -> Result<(), String> {
    let mut c = InstanceMetadataClient::new(connect(&args.endpoint).await?);
    use ImdsCommand::*;
    match args.command {
        GetToken { instance_id, instance_key, ttl_seconds } => {
            let r = c
                .get_token(pb::GetTokenRequest { instance_id, instance_key, ttl_seconds })
                .await
                .map_err(|s| failure("GetToken", s))?;
            println!("{}", r.into_inner().token);
            Ok(())
        }
        ListRoles { token } => {
            let r = c
                .list_security_credentials(pb::ListSecurityCredentialsRequest {
                    caller: Some(pb::InstanceCaller::token(token)),
                })
                .await
                .map_err(|s| failure("ListSecurityCredentials", s))?;
            println!("{}", r.into_inner().role_names.join("\n"));
            Ok(())
        }
        GetCredentials { token, role_name } => {
            let caller = Some(pb::InstanceCaller::token(token));
            let role_name = match role_name {
                Some(r) => r,
                None => c
                    .list_security_credentials(pb::ListSecurityCredentialsRequest { caller: caller.clone() })
                    .await
                    .map_err(|s| failure("ListSecurityCredentials", s))?
                    .into_inner()
                    .role_names
                    .into_iter()
                    .next()
                    .unwrap_or_default(),
            };
            print(
                "GetSecurityCredentials",
                c.get_security_credentials(pb::GetSecurityCredentialsRequest { caller, role_name }).await,
            )
        }
        GetIamInfo { token } => print(
            "GetIamInfo",
            c.get_iam_info(pb::GetIamInfoRequest { caller: Some(pb::InstanceCaller::token(token)) }).await,
        ),
        GetMetadata { token, path } => {
            let r = c
                .get_metadata(pb::GetMetadataRequest { caller: Some(pb::InstanceCaller::token(token)), path })
                .await
                .map_err(|s| failure("GetMetadata", s))?;
            println!("{}", r.into_inner().value);
            Ok(())
        }
    }
}

#[derive(Subcommand)]
pub enum StsCommand {
    /// Who the credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN)
    /// belong to.
    GetCallerIdentity,
    /// The account an access key id belongs to.
    GetAccessKeyInfo {
        #[arg(long)]
        access_key_id: String,
    },
    /// Temporary credentials for a role (printed as the aws CLI prints them).
    AssumeRole {
        #[arg(long)]
        role_arn: String,
        #[arg(long)]
        role_session_name: String,
        #[arg(long, default_value_t = 0)]
        duration_seconds: i32,
        /// An inline session policy: JSON, or file://PATH.
        #[arg(long, default_value = "", value_parser = document)]
        policy: String,
        #[arg(long, num_args = 1..)]
        policy_arns: Vec<String>,
        #[arg(long, default_value = "")]
        external_id: String,
    },
}

/// The credentials the aws CLI would find in the environment, or its message when there are none.
fn environment_credentials() -> Result<rolecall_server::grpc::sigv4::ClientCredentials, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Ok(rolecall_server::grpc::sigv4::ClientCredentials {
                access_key_id,
                secret_access_key,
                session_token: var("AWS_SESSION_TOKEN"),
            })
        }
        _ => Err("Unable to locate credentials. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                  (and AWS_SESSION_TOKEN for temporary credentials)."
            .to_string()),
    }
}

/// A channel to `endpoint` signing for `service` with `credentials` (if any), in the region
/// of the aws CLI's environment (AWS_REGION or AWS_DEFAULT_REGION, else us-east-1).
async fn signing(
    endpoint: &str,
    credentials: Option<rolecall_server::grpc::sigv4::ClientCredentials>,
    service: &'static str,
) -> Result<rolecall_server::grpc::sigv4::Signing<Channel>, String> {
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()))
        .unwrap_or_else(|| "us-east-1".to_string());
    let authority = endpoint
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.as_str().to_string()))
        .ok_or_else(|| format!("{endpoint}: not an http(s)://HOST:PORT endpoint"))?;
    Ok(rolecall_server::grpc::sigv4::Signing::maybe(
        connect(endpoint).await?,
        credentials,
        authority,
        region,
        service,
        std::sync::Arc::new(rolecall_server::domain::clock::SystemClock::default()),
    ))
}

/// Signs with the credentials of the aws CLI's environment variables.
pub async fn sts(args: ClientArgs<StsCommand>) -> Result<(), String> {
    let credentials = environment_credentials()?;
    let mut c =
        rolecall_api::sts_client::StsClient::new(signing(&args.endpoint, Some(credentials), "sts").await?);
    match args.command {
        StsCommand::GetCallerIdentity => {
            print("GetCallerIdentity", c.get_caller_identity(pb::GetCallerIdentityRequest {}).await)
        }
        StsCommand::GetAccessKeyInfo { access_key_id } => print(
            "GetAccessKeyInfo",
            c.get_access_key_info(pb::GetAccessKeyInfoRequest { access_key_id }).await,
        ),
        StsCommand::AssumeRole {
            role_arn,
            role_session_name,
            duration_seconds,
            policy,
            policy_arns,
            external_id,
        } => print(
            "AssumeRole",
            c.assume_role(pb::AssumeRoleRequest {
                role_arn,
                role_session_name,
                duration_seconds,
                policy,
                policy_arns,
                external_id,
                tags: vec![],
            })
            .await,
        ),
    }
}
