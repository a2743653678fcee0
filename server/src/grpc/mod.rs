//! gRPC adapters: one per service (the Iam and Ec2 calls handed to their operations, STS
//! and the metadata service to theirs), the error table's gRPC side, and the routes with
//! health and reflection.

mod accounts;
pub mod ec2;
pub mod error;
pub mod framing;
pub mod iam;
mod imds;
pub mod incoming;
pub mod sigv4;
mod sts;
#[cfg(debug_assertions)]
mod test_control;

use rolecall_api::{
    ec2_server::Ec2Server, iam_server::IamServer, instance_metadata_server::InstanceMetadataServer,
    sts_server::StsServer,
};
use std::sync::Arc;

use tonic::{Request, Response, Status, service::Routes};

use crate::{
    audit::AuditLog,
    authz::{Authorizer, CallContext},
    catalog::Accounts,
    custody::KeyKeeper,
    domain::clock::SystemClock,
    exposure::UnsignedCalls,
    metadata::InstanceMetadata,
    operations::{Gate, ec2::Ec2, iam::Iam},
    sts::{Authenticator, SecurityTokenService},
    telemetry::Metrics,
};

/// What the gRPC services are built on: the assembled state and the settings they read.
pub struct Services {
    pub accounts: Arc<Accounts>,
    pub authn: Arc<Authenticator>,
    pub authz: Arc<Authorizer>,
    pub sts: Arc<SecurityTokenService>,
    pub imds: Arc<InstanceMetadata>,
    pub audit: AuditLog,
    pub clock: Arc<SystemClock>,
    pub metrics: Metrics,
    /// False while this replica has lost etcd's watch past its grace period.
    pub in_sync: tokio::sync::watch::Receiver<bool>,
    /// Rotates the key ring (TestControl moves the clock and rotates with it).
    pub key_keeper: Arc<KeyKeeper>,
    /// `server.max_message_bytes`.
    pub max_message_bytes: usize,
    /// `server.unauthenticated_buffer_bytes`.
    pub unauthenticated_buffer_bytes: usize,
    /// Whom unsigned Iam and Ec2 calls act for (the exposure rule).
    pub unsigned: UnsignedCalls,
    /// Whether TestControl is served (a debug build with the manual clock).
    pub test_control: bool,
}

/// A call's answer, or its error as a status.
type Answer<T> = Result<Response<T>, Status>;

/// The caller's context the signing layer (`sigv4`) put in the request: the signer, or an
/// explicit operator context for the unsigned calls the config lets through. A request
/// without one is refused, never treated as the operator's.
fn call_context<T>(req: &Request<T>) -> Result<CallContext, Status> {
    req.extensions()
        .get::<CallContext>()
        .cloned()
        .ok_or_else(|| Status::internal("the request reached the service without a caller"))
}

/// Every service rolecall serves over gRPC, plus grpc.health.v1 and server reflection so
/// that grpcurl and any gRPC client can discover the API.
pub async fn routes(app: &Services) -> Result<Routes, tonic_reflection::server::Error> {
    let limit = app.max_message_bytes;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<IamServer<iam::IamService>>().await;
    health.set_serving::<Ec2Server<ec2::Ec2Service>>().await;
    health.set_serving::<InstanceMetadataServer<imds::ImdsService>>().await;
    health.set_serving::<StsServer<sts::StsService>>().await;
    // A replica cut off from the others (etcd's watch lost past its grace) says so, for the
    // whole server and each service, until the watch is back.
    let mut in_sync = app.in_sync.clone();
    let metrics = app.metrics.clone();
    tokio::spawn(async move {
        loop {
            let synced = *in_sync.borrow_and_update();
            metrics.store_in_sync.set(i64::from(synced));
            let status = if synced {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            for service in [
                "",
                <IamServer<iam::IamService> as tonic::server::NamedService>::NAME,
                <Ec2Server<ec2::Ec2Service> as tonic::server::NamedService>::NAME,
                <InstanceMetadataServer<imds::ImdsService> as tonic::server::NamedService>::NAME,
                <StsServer<sts::StsService> as tonic::server::NamedService>::NAME,
            ] {
                health.set_service_status(service, status).await;
            }
            if in_sync.changed().await.is_err() {
                return;
            }
        }
    });
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(rolecall_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    // Reflection describes what is served: TestControl only where it is.
    if app.test_control {
        reflection =
            reflection.register_encoded_file_descriptor_set(rolecall_api::TEST_CONTROL_DESCRIPTOR_SET);
    }
    let reflection = reflection.build_v1()?;
    let clock: Arc<dyn crate::domain::clock::Clock> = app.clock.clone();
    let gate = |source| Gate {
        authz: app.authz.clone(),
        audit: app.audit.clone(),
        clock: clock.clone(),
        metrics: app.metrics.clone(),
        source,
    };
    // Every call is one well-framed message before anything else reads it (framing), then
    // signed or the operator's (sigv4), then routed to its account's service, which
    // hands the request it decoded to its operation, which authorizes and audits it.
    // What the signed services hold of requests no one has proved yet, together.
    let unauthenticated = Arc::new(tokio::sync::Semaphore::new(app.unauthenticated_buffer_bytes));
    // One Iam and one Ec2 service per account, each on its account's catalog.
    let iam = app
        .accounts
        .ids()
        .filter_map(|a| {
            let service = iam::IamService(Iam::new(app.accounts.get(a)?.clone(), gate("iam.amazonaws.com")));
            Some((a.clone(), IamServer::new(service).max_decoding_message_size(limit)))
        })
        .collect();
    let iam = accounts::ByAccount::new(iam, app.accounts.default_account());
    let iam = sigv4::Verified::new(iam, app.authn.clone(), app.metrics.clone(), "iam", limit)
        .allowing_unsigned(app.unsigned)
        .audited(app.audit.clone(), clock.clone())
        .budgeting(unauthenticated.clone());
    let ec2 = app
        .accounts
        .ids()
        .filter_map(|a| {
            let service = ec2::Ec2Service(Ec2::new(app.accounts.get(a)?.clone(), gate("ec2.amazonaws.com")));
            Some((a.clone(), Ec2Server::new(service).max_decoding_message_size(limit)))
        })
        .collect();
    let ec2 = accounts::ByAccount::new(ec2, app.accounts.default_account());
    let ec2 = sigv4::Verified::new(ec2, app.authn.clone(), app.metrics.clone(), "ec2", limit)
        .allowing_unsigned(app.unsigned)
        .audited(app.audit.clone(), clock.clone())
        .budgeting(unauthenticated.clone());
    let sts = StsServer::new(sts::StsService::new(app.authn.clone(), app.sts.clone(), app.metrics.clone()))
        .max_decoding_message_size(limit);
    let sts = sigv4::Verified::new(sts, app.authn.clone(), app.metrics.clone(), "sts", limit)
        .audited(app.audit.clone(), clock.clone())
        .budgeting(unauthenticated.clone());
    let imds = InstanceMetadataServer::new(imds::ImdsService::new(app.imds.clone(), app.metrics.clone()))
        .max_decoding_message_size(limit);
    let routes = Routes::new(health_service)
        .add_service(reflection)
        .add_service(framing::OneMessage::new(iam, app.metrics.clone()))
        .add_service(framing::OneMessage::new(ec2, app.metrics.clone()))
        .add_service(framing::OneMessage::new(imds, app.metrics.clone()))
        .add_service(framing::OneMessage::new(sts, app.metrics.clone()));
    Ok(with_test_control(app, routes))
}

#[cfg(debug_assertions)]
fn with_test_control(app: &Services, routes: Routes) -> Routes {
    if app.test_control {
        // Unsigned, so the exposure rule's: peers on this host only.
        routes.add_service(rolecall_api::test_control_server::TestControlServer::with_interceptor(
            test_control::TestControlService::new(app.clock.clone(), app.key_keeper.clone()),
            |req: tonic::Request<()>| match req.remote_addr() {
                Some(peer) if crate::exposure::is_loopback(peer.ip()) => Ok(req),
                _ => Err(tonic::Status::permission_denied("TestControl answers peers on this host only")),
            },
        ))
    } else {
        routes
    }
}

#[cfg(not(debug_assertions))]
fn with_test_control(_: &Services, routes: Routes) -> Routes {
    routes
}
