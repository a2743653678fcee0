//! TLS and mutual TLS (rustls) with throwaway certificates.

use rolecall_api::{ListRolesRequest, iam_client::IamClient};
use rolecall_server::config::TlsConfig;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::common::*;

fn tls(pki: &Pki, mutual: bool) -> TlsConfig {
    TlsConfig {
        cert: pki.dir.join("server.pem"),
        key: pki.dir.join("server.key"),
        client_ca: mutual.then(|| pki.dir.join("ca.pem")),
    }
}

async fn list_roles(server: &TestServer, client: ClientTlsConfig) -> Result<usize, String> {
    let endpoint = Endpoint::from_shared(format!("https://{}", server.grpc_addr))
        .unwrap()
        .tls_config(client)
        .map_err(|e| e.to_string())?;
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    let roles =
        IamClient::new(channel).list_roles(ListRolesRequest::default()).await.map_err(|e| e.to_string())?;
    Ok(roles.into_inner().roles.len())
}

#[tokio::test]
async fn tls_serves_encrypted_and_refuses_plaintext() {
    let pki = pki("server");
    let config = tls(&pki, false);
    let server = TestServer::start_with(move |c| c.tls = Some(config)).await;
    let client =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca_pem)).domain_name("localhost");
    assert_eq!(list_roles(&server, client).await, Ok(0));
    // The plaintext channel of the fixture cannot talk to a TLS server.
    assert!(server.iam().list_roles(ListRolesRequest::default()).await.is_err());
    std::fs::remove_dir_all(&pki.dir).unwrap();
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate() {
    let pki = pki("mutual");
    let config = tls(&pki, true);
    let server = TestServer::start_with(move |c| c.tls = Some(config)).await;
    let anonymous =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca_pem)).domain_name("localhost");
    assert!(list_roles(&server, anonymous.clone()).await.is_err());
    let identified = anonymous.identity(Identity::from_pem(&pki.client_cert, &pki.client_key));
    assert_eq!(list_roles(&server, identified).await, Ok(0));
    std::fs::remove_dir_all(&pki.dir).unwrap();
}
