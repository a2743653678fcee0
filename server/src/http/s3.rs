//! A minimal S3 front (path-style, on the Query API's port): ListBuckets, CreateBucket,
//! DeleteBucket, HeadBucket, an always-empty object listing, and bucket policies (Put, Get,
//! DeleteBucketPolicy), behind the same SigV4 verification (S3's rules) and policy engine as
//! every other call, because `aws s3 ls` is how every IAM-role walkthrough checks that an
//! instance's role works. A bucket's policy is its resource policy: in the owner's account
//! it can grant on its own, across accounts both it and the caller's policies must allow, and
//! its explicit Deny stops everyone. rolecall stores no objects: object calls answer
//! NotImplemented.

use axum::{
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
};

use super::{
    error::http_status,
    form::Params,
    port::{Call, Origin, QueryApi},
    xml::Writer,
};
use crate::{
    catalog::BucketCreated,
    domain::principal::Principal,
    domain::{
        Error, ErrorCode,
        clock::iso8601,
        evaluation::Decision,
        ids,
        model::Bucket,
        policy::{PolicyDocument, PolicyType},
        sigv4::HttpRequest,
    },
};

const NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Whether a request on the Query port is meant for S3: signed for the `s3` service, or, if
/// unsigned, anything but a Query API call.
pub fn is_s3(method: &Method, query: &str, headers: &HeaderMap, has_action: bool) -> bool {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let scope = if authorization.is_empty() { query } else { authorization };
    if scope.contains("/s3/aws4_request") || scope.contains("%2Fs3%2Faws4_request") {
        return true;
    }
    authorization.is_empty() && !has_action && method != Method::POST
}

/// An error as S3 answers it. S3 names some of the authentication failures its own way.
pub fn error(e: &Error, resource: &str) -> Response {
    let (code, message) = match e.code {
        ErrorCode::InvalidClientTokenId => (
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.".to_string(),
        ),
        ErrorCode::MissingAuthenticationToken => ("AccessDenied", "Access Denied".to_string()),
        code => (code.as_str(), e.message.clone()),
    };
    let mut w = Writer::document("Error", "");
    w.leaf("Code", code).leaf("Message", &message);
    if matches!(
        e.code,
        ErrorCode::NoSuchBucket | ErrorCode::NoSuchBucketPolicy | ErrorCode::BucketAlreadyExists
    ) {
        w.leaf("BucketName", resource);
    } else {
        w.leaf("Resource", resource);
    }
    w.leaf("RequestId", ids::uuid()).close("Error");
    (http_status(e.code), [("content-type", "application/xml")], w.finish()).into_response()
}

fn xml(body: String) -> Response {
    (StatusCode::OK, [("content-type", "application/xml")], body).into_response()
}

fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// One S3 request, authenticated, authorized, carried out and audited.
pub async fn handle(api: &QueryApi, request: &HttpRequest<'_>, origin: &Origin) -> Response {
    let path = request.path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let policy = Params::parse(request.query, b"").get("policy").is_some();
    let name = match (request.method, bucket, policy) {
        ("GET", "", _) => "ListBuckets",
        ("PUT", _, true) => "PutBucketPolicy",
        ("GET", _, true) => "GetBucketPolicy",
        ("DELETE", _, true) => "DeleteBucketPolicy",
        ("PUT", _, false) => "CreateBucket",
        ("DELETE", _, false) => "DeleteBucket",
        ("HEAD", _, _) => "HeadBucket",
        _ => "ListObjects",
    };
    let params = Params::parse("", format!("bucketName={bucket}").as_bytes());
    let call = Call { service: "s3", action: name, origin, params: &params };
    let principal = match api.authn.authenticate(request, "s3", &crate::domain::sigv4::Rules::S3).await {
        Ok(p) => p,
        Err(e) => {
            api.refused(&call, request, &e).await;
            return error(&e, request.path);
        }
    };
    // A request that may change state is in the audit trail before anything is decided, or
    // not carried out.
    let committed = match matches!(request.method, "PUT" | "DELETE") {
        true => match api.commit(&call, &principal).await {
            Ok(committed) => Some(committed),
            Err(e) => return error(&e, request.path),
        },
        false => None,
    };
    let result = if policy && !bucket.is_empty() && key.is_empty() {
        bucket_policy(api, &principal, origin, request, bucket).await
    } else {
        serve(api, &principal, origin, request, bucket, key).await
    };
    api.audited(&call, committed, &principal, result.as_ref().err()).await;
    result.unwrap_or_else(|e| error(&e, request.path))
}

async fn serve(
    api: &QueryApi,
    principal: &Principal,
    origin: &Origin,
    request: &HttpRequest<'_>,
    bucket: &str,
    key: &str,
) -> Result<Response, Error> {
    let allow = |action: &str, resource: String| {
        let request = origin.request(action, resource);
        async move { api.authz.authorize(principal, &request).await }
    };
    let catalog = api.catalog_of(principal)?;
    if !key.is_empty() {
        return Err(Error::new(ErrorCode::NotImplemented, "rolecall's S3 stores no objects."));
    }
    match (request.method, bucket) {
        ("GET", "") => {
            allow("s3:ListAllMyBuckets", "*".to_string()).await?;
            Ok(list_buckets(principal, &catalog.list_buckets().await?))
        }
        (_, "") => Err(Error::new(ErrorCode::NotImplemented, "rolecall's S3 serves ListBuckets on /.")),
        ("PUT", bucket) => {
            allow("s3:CreateBucket", bucket_arn(bucket)).await?;
            crate::domain::validate::bucket_name(bucket)?;
            if let Some((owner, _)) = api.accounts.find_bucket(bucket).await?
                && owner.account_id() != principal.account_id
            {
                return Err(Error::new(
                    ErrorCode::BucketAlreadyExists,
                    "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
                ));
            }
            let region = location_constraint(request.body);
            match catalog.create_bucket(bucket, &region).await? {
                BucketCreated::New(b) | BucketCreated::AlreadyOwned(b) => {
                    Ok((StatusCode::OK, [("location", format!("/{}", b.name))]).into_response())
                }
            }
        }
        ("DELETE", bucket) => {
            let (owner, _) = existing_bucket(api, principal, origin, "s3:DeleteBucket", bucket).await?;
            owner.delete_bucket(bucket).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ("HEAD" | "GET", bucket) => {
            let (_, found) = existing_bucket(api, principal, origin, "s3:ListBucket", bucket).await?;
            if request.method == "HEAD" {
                return Ok((StatusCode::OK, [("x-amz-bucket-region", found.region)]).into_response());
            }
            Ok(empty_listing(bucket, request.query))
        }
        _ => Err(Error::new(ErrorCode::NotImplemented, "rolecall's S3 does not implement this request.")),
    }
}

/// A bucket, its owner's catalog, and `action` on it authorized with the bucket's policy.
/// A bucket that does not exist is NoSuchBucket to a caller whose own policies allow the
/// action, and AccessDenied to others, as S3 answers.
async fn existing_bucket(
    api: &QueryApi,
    principal: &Principal,
    origin: &Origin,
    action: &str,
    bucket: &str,
) -> Result<(std::sync::Arc<crate::catalog::Catalog>, Bucket), Error> {
    let request = origin.request(action, bucket_arn(bucket));
    let Some((owner, found)) = api.accounts.find_bucket(bucket).await? else {
        api.authz.authorize(principal, &request).await?;
        return Err(Error::new(ErrorCode::NoSuchBucket, "The specified bucket does not exist"));
    };
    let policy = match &found.policy {
        Some(text) => Some(PolicyDocument::parse(text, PolicyType::Resource)?),
        None => None,
    };
    match api.authz.decision_on(principal, &request, policy.as_ref(), owner.account_id()).await? {
        Decision::Allow => Ok((owner, found)),
        denied => Err(crate::authz::access_denied(principal, &request, denied)),
    }
}

/// PutBucketPolicy (only by the bucket's own account), GetBucketPolicy, DeleteBucketPolicy.
async fn bucket_policy(
    api: &QueryApi,
    principal: &Principal,
    origin: &Origin,
    request: &HttpRequest<'_>,
    bucket: &str,
) -> Result<Response, Error> {
    let action = match request.method {
        "PUT" => "s3:PutBucketPolicy",
        "GET" => "s3:GetBucketPolicy",
        "DELETE" => "s3:DeleteBucketPolicy",
        _ => {
            return Err(Error::new(
                ErrorCode::NotImplemented,
                "rolecall's S3 does not implement this request.",
            ));
        }
    };
    let (owner, found) = existing_bucket(api, principal, origin, action, bucket).await?;
    if owner.account_id() != principal.account_id && request.method != "GET" {
        // Only the bucket's own account may change its policy.
        return Err(crate::authz::access_denied(
            principal,
            &origin.request(action, bucket_arn(bucket)),
            Decision::ImplicitDeny,
        ));
    }
    match request.method {
        "PUT" => {
            let text = std::str::from_utf8(request.body).map_err(|_| {
                Error::new(
                    ErrorCode::MalformedPolicy,
                    "Policies must be valid JSON and the first byte must be '{'",
                )
            })?;
            owner.put_bucket_policy(bucket, Some(text)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "DELETE" => {
            owner.put_bucket_policy(bucket, None).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => match found.policy {
            Some(text) => Ok((StatusCode::OK, [("content-type", "application/json")], text).into_response()),
            None => Err(Error::new(ErrorCode::NoSuchBucketPolicy, "The bucket policy does not exist")),
        },
    }
}

/// CreateBucketConfiguration's LocationConstraint, if the body has one.
fn location_constraint(body: &[u8]) -> String {
    let body = String::from_utf8_lossy(body);
    let Some((_, rest)) = body.split_once("<LocationConstraint>") else { return String::new() };
    rest.split_once("</LocationConstraint>").map(|(v, _)| v.trim().to_string()).unwrap_or_default()
}

fn list_buckets(principal: &Principal, buckets: &[crate::domain::model::Bucket]) -> Response {
    let mut w = Writer::document("ListAllMyBucketsResult", NAMESPACE);
    w.open("Owner").leaf("ID", &principal.account_id).close("Owner").open("Buckets");
    for b in buckets {
        w.open("Bucket")
            .leaf("Name", &b.name)
            .leaf("CreationDate", iso8601(b.creation_date))
            .leaf("BucketRegion", &b.region)
            .close("Bucket");
    }
    w.close("Buckets").close("ListAllMyBucketsResult");
    xml(w.finish())
}

/// ListObjects (v1 or v2) of a bucket that holds no objects.
fn empty_listing(bucket: &str, query: &str) -> Response {
    let params = Params::parse(query, b"");
    let mut w = Writer::document("ListBucketResult", NAMESPACE);
    w.leaf("Name", bucket).leaf("Prefix", params.str("prefix"));
    if params.get("list-type") == Some("2") {
        w.leaf("KeyCount", 0);
    }
    w.leaf("MaxKeys", params.get("max-keys").unwrap_or("1000")).leaf("IsTruncated", "false");
    w.close("ListBucketResult");
    xml(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_requests_are_told_from_query_calls() {
        let signed = |scope: &str| {
            let mut h = HeaderMap::new();
            let value =
                format!("AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/{scope}/aws4_request, ...");
            h.insert("authorization", value.parse().unwrap());
            h
        };
        assert!(is_s3(&Method::GET, "", &signed("s3"), false));
        assert!(!is_s3(&Method::POST, "", &signed("iam"), true));
        assert!(is_s3(&Method::PUT, "", &HeaderMap::new(), false));
        assert!(!is_s3(&Method::POST, "", &HeaderMap::new(), false));
        assert!(is_s3(
            &Method::GET,
            "X-Amz-Credential=AKIA%2F20260101%2Fus-east-1%2Fs3%2Faws4_request",
            &HeaderMap::new(),
            false
        ));
    }

    #[test]
    fn location_constraint_is_read_from_the_configuration() {
        let body = b"<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>";
        assert_eq!(location_constraint(body), "eu-west-1");
        assert_eq!(location_constraint(b""), "");
    }
}
