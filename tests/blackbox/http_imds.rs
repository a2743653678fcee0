//! The instance metadata service over HTTP, as the SDKs read it: status codes, headers and
//! JSON shapes of EC2's, under the simulation's per-instance path prefix.

use reqwest::{Client, Method, StatusCode};
use rolecall_api as pb;

use crate::common::*;

struct Imds {
    client: Client,
    base: String,
}

impl Imds {
    fn new(server: &TestServer, instance_id: &str) -> Self {
        Self { client: Client::new(), base: format!("http://{}/{instance_id}/latest", server.imds_addr) }
    }

    async fn token(&self, ttl: Option<&str>) -> reqwest::Response {
        let mut req = self.client.request(Method::PUT, format!("{}/api/token", self.base));
        if let Some(ttl) = ttl {
            req = req.header("X-aws-ec2-metadata-token-ttl-seconds", ttl);
        }
        req.send().await.unwrap()
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut req = self.client.get(format!("{}/{path}", self.base));
        if let Some(t) = token {
            req = req.header("X-aws-ec2-metadata-token", t);
        }
        let res = req.send().await.unwrap();
        (res.status(), res.text().await.unwrap())
    }
}

#[tokio::test]
async fn imdsv2_over_http_answers_as_ec2_does() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let (instance, _) = launch(&server, 1, Some("Web")).await.remove(0);
    let imds = Imds::new(&server, &instance.instance_id);

    // The token: TTL echoed; 400 without or outside 1-21600; 403 through a proxy.
    let res = imds.token(Some("21600")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-aws-ec2-metadata-token-ttl-seconds"], "21600");
    let token = res.text().await.unwrap();
    assert_eq!(imds.token(None).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(imds.token(Some("0")).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(imds.token(Some("21601")).await.status(), StatusCode::BAD_REQUEST);
    let proxied = imds
        .client
        .put(format!("{}/api/token", imds.base))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "60")
        .header("X-Forwarded-For", "10.0.0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), StatusCode::FORBIDDEN);

    let t = Some(token.as_str());
    assert_eq!(imds.get("meta-data/iam/security-credentials/", t).await, (StatusCode::OK, "Web".to_string()));
    let (status, body) = imds.get("meta-data/iam/security-credentials/Web", t).await;
    assert_eq!(status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["Code"], "Success");
    assert_eq!(doc["Type"], "AWS-HMAC");
    assert!(doc["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert!(doc["Expiration"].as_str().unwrap().ends_with('Z'));
    assert!(doc.get("AccountId").is_none());
    let (_, extended) = imds.get("meta-data/iam/security-credentials-extended/Web", t).await;
    let extended: serde_json::Value = serde_json::from_str(&extended).unwrap();
    assert_eq!(extended["AccountId"], "123456789012");
    assert_eq!(extended["AccessKeyId"], doc["AccessKeyId"], "the same cached credentials");
    let (_, info) = imds.get("meta-data/iam/info", t).await;
    assert!(info.contains("instance-profile/Web"));
    assert_eq!(imds.get("meta-data/instance-id", t).await.1, instance.instance_id);
    let (_, root) = imds.get("meta-data/", t).await;
    assert!(root.lines().any(|l| l == "iam/") && root.lines().any(|l| l == "placement/"), "{root}");
    assert_eq!(imds.get("meta-data/iam/security-credentials/Other", t).await.0, StatusCode::NOT_FOUND);
    let (_, identity) = imds.get("dynamic/instance-identity/document", t).await;
    let identity: serde_json::Value = serde_json::from_str(&identity).unwrap();
    assert_eq!(identity["instanceId"], instance.instance_id.as_str());
    assert_eq!(identity["accountId"], "123456789012");
    assert_eq!(identity["region"], "us-east-1");
    assert_eq!(imds.get("user-data", t).await.0, StatusCode::NOT_FOUND);

    // IMDSv1 (no token) works where HttpTokens is optional; a bad token is 401.
    assert_eq!(imds.get("meta-data/instance-id", None).await.0, StatusCode::OK);
    assert_eq!(imds.get("meta-data/instance-id", Some("not-a-token")).await.0, StatusCode::UNAUTHORIZED);
    // Another instance's token is refused.
    let (other, _) = launch(&server, 1, None).await.remove(0);
    let other_imds = Imds::new(&server, &other.instance_id);
    assert_eq!(other_imds.get("meta-data/instance-id", t).await.0, StatusCode::UNAUTHORIZED);
    // An instance with no role: 404 on the credentials listing.
    assert_eq!(other_imds.get("meta-data/iam/security-credentials/", None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_meta_data_tree_answers_methods_and_unknown_paths_as_a_router_does() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let (instance, _) = launch(&server, 1, Some("Web")).await.remove(0);
    let imds = Imds::new(&server, &instance.instance_id);
    let token = imds.token(Some("60")).await.text().await.unwrap();
    let credentials = format!("{}/meta-data/iam/security-credentials/Web", imds.base);
    // Another method than GET within the tree: 405, naming the ones allowed.
    for method in [Method::PUT, Method::POST, Method::DELETE] {
        let res =
            imds.client.request(method.clone(), &credentials).header("X-aws-ec2-metadata-token", &token);
        let res = res.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(res.headers()["allow"], "GET,HEAD");
    }
    // HEAD answers as GET does, without the body.
    let head =
        imds.client.head(&credentials).header("X-aws-ec2-metadata-token", &token).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let (status, body) = imds.get("meta-data/iam/security-credentials/Web", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(head.headers()["content-length"], body.len().to_string().as_str());
    // A query string does not change the path.
    let (status, _) = imds.get("meta-data/ami-id?x=1", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    // Outside the tree, or without an instance's segment: 404, whoever asks.
    let root = format!("http://{}", server.imds_addr);
    for path in
        ["/latest/meta-data/ami-id", "//latest/meta-data/ami-id", "/i-0123456789abcdef0/latest/nothing", "/"]
    {
        let res = imds.client.get(format!("{root}{path}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn imdsv2_required_refuses_tokenless_reads() {
    let server = TestServer::start().await;
    let (instance, _) = launch_with(&server, 1, None, "required").await.remove(0);
    let imds = Imds::new(&server, &instance.instance_id);
    assert_eq!(imds.get("meta-data/instance-id", None).await.0, StatusCode::UNAUTHORIZED);
    let token = imds.token(Some("60")).await.text().await.unwrap();
    assert_eq!(imds.get("meta-data/instance-id", Some(&token)).await.0, StatusCode::OK);
    // The token expires with its TTL.
    advance(&server, 61).await;
    assert_eq!(imds.get("meta-data/instance-id", Some(&token)).await.0, StatusCode::UNAUTHORIZED);
    // A terminated instance: nothing.
    server
        .ec2()
        .terminate_instances(pb::TerminateInstancesRequest {
            instance_ids: vec![instance.instance_id.clone()],
        })
        .await
        .unwrap();
    assert_eq!(imds.token(Some("60")).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn identity_documents_are_signed_with_the_published_key() {
    use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

    let server = TestServer::start().await;
    let (instance, _) = launch(&server, 1, None).await.remove(0);
    let imds = Imds::new(&server, &instance.instance_id);
    let token = imds.token(Some("60")).await.text().await.unwrap();
    let t = Some(token.as_str());
    assert_eq!(imds.get("dynamic/", t).await, (StatusCode::OK, "instance-identity/\n".to_string()));
    assert_eq!(imds.get("dynamic/instance-identity/", t).await.1, "document\nsignature\n");
    let (_, document) = imds.get("dynamic/instance-identity/document", t).await;
    let (status, signature) = imds.get("dynamic/instance-identity/signature", t).await;
    assert_eq!(status, StatusCode::OK);
    let signature = data_encoding::BASE64.decode(signature.as_bytes()).unwrap();
    // The key anyone can fetch (no instance, no token), as PEM SubjectPublicKeyInfo.
    let pem = reqwest::get(format!("http://{}/rolecall/instance-identity-public-key.pem", server.imds_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = data_encoding::BASE64.decode(der.as_bytes()).unwrap();
    // The uncompressed P-256 point is the last 65 bytes of the SubjectPublicKeyInfo.
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &der[der.len() - 65..]);
    assert!(key.verify(document.as_bytes(), &signature).is_ok());
    let forged = document.replace(&instance.instance_id, "i-0123456789abcdef0");
    assert!(key.verify(forged.as_bytes(), &signature).is_err());
    // Without the instance's identity (another instance's token), no signature.
    let (other, _) = launch(&server, 1, None).await.remove(0);
    let other_imds = Imds::new(&server, &other.instance_id);
    assert_eq!(other_imds.get("dynamic/instance-identity/signature", t).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_loopback_simulation_tells_instances_apart_by_their_127_addresses() {
    let server = TestServer::start_with(|c| {
        c.imds.instance_identity = "loopback".into();
        c.instances.private_network = "127.77.0.0/16".into();
    })
    .await;
    let fleet = launch(&server, 2, None).await;
    let from = |address: &str| {
        let local: std::net::IpAddr = address.parse().unwrap();
        Client::builder().local_address(local).build().unwrap()
    };
    let url = format!("http://{}/latest/meta-data/instance-id", server.imds_addr);
    for (instance, _) in &fleet {
        assert!(instance.private_ip_address.starts_with("127.77.0."), "{}", instance.private_ip_address);
        let res = from(&instance.private_ip_address).get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.text().await.unwrap(), instance.instance_id);
    }
    // An address that is no instance's gets nothing; nor does a path prefix in this mode.
    assert_eq!(from("127.0.0.1").get(&url).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let prefixed =
        format!("http://{}/{}/latest/meta-data/instance-id", server.imds_addr, fleet[0].0.instance_id);
    assert_eq!(from("127.0.0.1").get(&prefixed).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}
