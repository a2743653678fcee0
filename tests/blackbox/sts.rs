//! STS over gRPC: who signed a request, proven by SigV4 with an access key or temporary
//! credentials; AWS's codes when the proof fails.

use rolecall_api as pb;
use rolecall_server::grpc::sigv4::ClientCredentials;
use tonic::Code;

use crate::common::*;

async fn user_with_key(server: &TestServer, name: &str) -> pb::AccessKey {
    let mut iam = server.iam();
    iam.create_user(pb::CreateUserRequest { user_name: name.into(), ..Default::default() }).await.unwrap();
    iam.create_access_key(pb::CreateAccessKeyRequest { user_name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .access_key
        .unwrap()
}

fn long_term(key: &pb::AccessKey) -> ClientCredentials {
    ClientCredentials {
        access_key_id: key.access_key_id.clone(),
        secret_access_key: key.secret_access_key.clone(),
        session_token: None,
    }
}

fn temporary(c: &pb::GetSecurityCredentialsResponse) -> ClientCredentials {
    ClientCredentials {
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        session_token: Some(c.token.clone()),
    }
}

async fn whoami(
    server: &TestServer,
    creds: ClientCredentials,
) -> Result<pb::GetCallerIdentityResponse, tonic::Status> {
    server.sts(creds).get_caller_identity(pb::GetCallerIdentityRequest {}).await.map(|r| r.into_inner())
}

/// An instance of role Web and its current credentials.
async fn instance_credentials(server: &TestServer) -> (String, pb::GetSecurityCredentialsResponse) {
    role_in_profile(server, "Web").await;
    let (instance, key) = launch(server, 1, Some("Web")).await.remove(0);
    let t = token(server, &instance.instance_id, &key).await;
    (instance.instance_id, credentials(server, &t, "Web").await.unwrap())
}

#[tokio::test]
async fn a_users_access_key_signs_get_caller_identity() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "alice").await;
    let me = whoami(&server, long_term(&key)).await.unwrap();
    assert_eq!(me.arn, "arn:aws:iam::123456789012:user/alice");
    assert_eq!(me.account, "123456789012");
    assert!(me.user_id.starts_with("AIDA"), "{}", me.user_id);
    let info = server
        .sts(long_term(&key))
        .get_access_key_info(pb::GetAccessKeyInfoRequest { access_key_id: key.access_key_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.account, "123456789012");
}

#[tokio::test]
async fn inactive_deleted_unknown_and_wrong_keys_are_refused_with_aws_codes() {
    let server = TestServer::start().await;
    let key = user_with_key(&server, "bob").await;
    let mut iam = server.iam();
    let set = |status: &str| pb::UpdateAccessKeyRequest {
        user_name: "bob".into(),
        access_key_id: key.access_key_id.clone(),
        status: status.into(),
    };
    iam.update_access_key(set("Inactive")).await.unwrap();
    let msg =
        expect_error(whoami(&server, long_term(&key)).await, Code::Unauthenticated, "InvalidClientTokenId");
    assert_eq!(msg, "The security token included in the request is invalid.");
    iam.update_access_key(set("Active")).await.unwrap();
    whoami(&server, long_term(&key)).await.unwrap();

    let wrong_secret = ClientCredentials { secret_access_key: "x".repeat(40), ..long_term(&key) };
    let msg =
        expect_error(whoami(&server, wrong_secret).await, Code::Unauthenticated, "SignatureDoesNotMatch");
    assert!(msg.starts_with("The request signature we calculated does not match"), "{msg}");
    let unknown = ClientCredentials { access_key_id: "AKIAAAAAAAAAAAAAAAAA".into(), ..long_term(&key) };
    expect_error(whoami(&server, unknown).await, Code::Unauthenticated, "InvalidClientTokenId");

    iam.delete_access_key(pb::DeleteAccessKeyRequest {
        user_name: "bob".into(),
        access_key_id: key.access_key_id.clone(),
    })
    .await
    .unwrap();
    expect_error(whoami(&server, long_term(&key)).await, Code::Unauthenticated, "InvalidClientTokenId");
    assert_eq!(server.counter("rolecall_errors_total{code=\"InvalidClientTokenId\"}").await, 3);
}

#[tokio::test]
async fn an_unsigned_request_is_missing_its_authentication_token() {
    let server = TestServer::start().await;
    let unsigned = rolecall_api::sts_client::StsClient::new(server.channel.clone())
        .get_caller_identity(pb::GetCallerIdentityRequest {})
        .await;
    let msg = expect_error(unsigned, Code::Unauthenticated, "MissingAuthenticationToken");
    assert_eq!(msg, "Request is missing Authentication Token");
}

#[tokio::test]
async fn instance_credentials_are_the_assumed_role_session_of_the_instance() {
    let server = TestServer::start().await;
    let (instance_id, creds) = instance_credentials(&server).await;
    let me = whoami(&server, temporary(&creds)).await.unwrap();
    assert_eq!(me.arn, format!("arn:aws:sts::123456789012:assumed-role/Web/{instance_id}"));
    assert!(
        me.user_id.starts_with("AROA") && me.user_id.ends_with(&format!(":{instance_id}")),
        "{}",
        me.user_id
    );
}

#[tokio::test]
async fn a_stolen_session_token_alone_is_not_enough() {
    let server = TestServer::start().await;
    let (_, creds) = instance_credentials(&server).await;
    // The token with a secret of the thief's choosing: the signature does not verify.
    let guessed = ClientCredentials { secret_access_key: "y".repeat(40), ..temporary(&creds) };
    expect_error(whoami(&server, guessed).await, Code::Unauthenticated, "SignatureDoesNotMatch");
    // The token under another temporary key id: not the key it was issued with.
    let other = ClientCredentials { access_key_id: "ASIAAAAAAAAAAAAAAAAA".into(), ..temporary(&creds) };
    expect_error(whoami(&server, other).await, Code::Unauthenticated, "InvalidClientTokenId");
    // Without the token, or with a tampered one.
    let tokenless = ClientCredentials { session_token: None, ..temporary(&creds) };
    expect_error(whoami(&server, tokenless).await, Code::Unauthenticated, "InvalidClientTokenId");
    let mut tampered = creds.token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered =
        ClientCredentials { session_token: Some(String::from_utf8(tampered).unwrap()), ..temporary(&creds) };
    expect_error(whoami(&server, tampered).await, Code::Unauthenticated, "InvalidClientTokenId");
}

#[tokio::test]
async fn expired_credentials_and_skewed_clocks_are_refused() {
    let server = TestServer::start().await;
    let (_, creds) = instance_credentials(&server).await;
    whoami(&server, temporary(&creds)).await.unwrap();
    // A client clock 6 minutes ahead of the server's: outside the 5 minutes allowed.
    server.client_clock.advance(time::Duration::minutes(6));
    let msg = expect_error(
        whoami(&server, temporary(&creds)).await,
        Code::Unauthenticated,
        "SignatureDoesNotMatch",
    );
    assert!(msg.starts_with("Signature not yet current:"), "{msg}");
    server.client_clock.advance(time::Duration::minutes(-6));
    // Six hours on, the credentials have expired.
    advance(&server, 6 * 3600 + 1).await;
    let msg = expect_error(whoami(&server, temporary(&creds)).await, Code::Unauthenticated, "ExpiredToken");
    assert_eq!(msg, "The security token included in the request is expired");
}
