//! A minimal S3 front (path-style, on the Query API's port): ListBuckets, CreateBucket,
//! DeleteBucket, HeadBucket, an always-empty object listing, and bucket policies (Put, Get,
//! DeleteBucketPolicy), behind the same SigV4 verification (S3's rules) and policy engine as
//! every other call, because `aws s3 ls` is how every IAM-role walkthrough checks that an
//! instance's role works. The operations (`operations::s3`) authorize and carry them out;
//! this door reads S3's REST requests and writes S3's answers. rolecall stores no objects:
//! object calls answer NotImplemented.

use axum::{
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
};

use super::{
    error::http_status,
    form::Params,
    port::{Call, Failed, Origin, QueryApi},
    xml::Writer,
};
use crate::{
    domain::principal::Principal,
    domain::{Error, ErrorCode, clock::iso8601, sigv4::HttpRequest},
    operations::s3::{
        CreateBucket, DeleteBucket, DeleteBucketPolicy, GetBucketPolicy, HeadBucket, ListBuckets,
        ListObjects, PutBucketPolicy, S3,
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
    w.leaf("RequestId", super::port::request_id()).close("Error");
    (http_status(e.code), [("content-type", "application/xml")], w.finish()).into_response()
}

fn xml(body: String) -> Response {
    (StatusCode::OK, [("content-type", "application/xml")], body).into_response()
}

/// An S3 request as this door reads it: decoded once, then named by that value (in the
/// audit trail) and carried out as it, so that what is recorded is what runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum S3Request<'a> {
    ListBuckets,
    PutBucketPolicy(&'a str),
    GetBucketPolicy(&'a str),
    DeleteBucketPolicy(&'a str),
    CreateBucket(&'a str),
    DeleteBucket(&'a str),
    HeadBucket(&'a str),
    ListObjects(&'a str),
    /// What this door does not serve: its operation's name, its bucket, and why not.
    NotImplemented(&'static str, &'a str, &'static str),
}

impl<'a> S3Request<'a> {
    /// The request of `method` on a path-style `path` with `query`.
    fn read(method: &str, path: &'a str, query: &str) -> Self {
        use S3Request::*;
        let path = path.trim_start_matches('/');
        let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
        if !key.is_empty() {
            let name = match method {
                "GET" => "GetObject",
                "PUT" => "PutObject",
                "DELETE" => "DeleteObject",
                "HEAD" => "HeadObject",
                _ => "ObjectRequest",
            };
            return NotImplemented(name, bucket, "rolecall's S3 stores no objects.");
        }
        let policy = Params::parse(query, b"").get("policy").is_some();
        match (method, bucket, policy) {
            ("GET", "", _) => ListBuckets,
            (_, "", _) => NotImplemented("ServiceRequest", "", "rolecall's S3 serves ListBuckets on /."),
            ("PUT", bucket, true) => PutBucketPolicy(bucket),
            ("GET", bucket, true) => GetBucketPolicy(bucket),
            ("DELETE", bucket, true) => DeleteBucketPolicy(bucket),
            ("PUT", bucket, false) => CreateBucket(bucket),
            ("DELETE", bucket, false) => DeleteBucket(bucket),
            ("HEAD", bucket, _) => HeadBucket(bucket),
            ("GET", bucket, false) => ListObjects(bucket),
            (_, bucket, _) => {
                NotImplemented("BucketRequest", bucket, "rolecall's S3 does not implement this request.")
            }
        }
    }

    /// Its operation's name, as the audit trail records it.
    fn name(self) -> &'static str {
        use S3Request::*;
        match self {
            ListBuckets => "ListBuckets",
            PutBucketPolicy(_) => "PutBucketPolicy",
            GetBucketPolicy(_) => "GetBucketPolicy",
            DeleteBucketPolicy(_) => "DeleteBucketPolicy",
            CreateBucket(_) => "CreateBucket",
            DeleteBucket(_) => "DeleteBucket",
            HeadBucket(_) => "HeadBucket",
            ListObjects(_) => "ListObjects",
            NotImplemented(name, _, _) => name,
        }
    }

    /// The bucket it names ("" for ListBuckets).
    fn bucket(self) -> &'a str {
        use S3Request::*;
        match self {
            ListBuckets => "",
            PutBucketPolicy(b)
            | GetBucketPolicy(b)
            | DeleteBucketPolicy(b)
            | CreateBucket(b)
            | DeleteBucket(b)
            | HeadBucket(b)
            | ListObjects(b)
            | NotImplemented(_, b, _) => b,
        }
    }
}

/// One S3 request: decoded, authenticated, then handed to its operation (which authorizes,
/// audits and carries it out), its answer in S3's shape.
pub async fn handle(api: &QueryApi, request: &HttpRequest<'_>, origin: &Origin) -> Response {
    let s3_request = S3Request::read(request.method, request.path, request.query);
    let params = Params::parse("", format!("bucketName={}", s3_request.bucket()).as_bytes());
    let call = Call { service: "s3", action: s3_request.name(), origin, params: &params };
    let principal = match api.authn.authenticate(request, "s3", &crate::domain::sigv4::Rules::S3).await {
        Ok(p) => p,
        Err(e) => {
            api.refused(&call, request, &e).await;
            return error(&e, request.path);
        }
    };
    let result = operation(api, &principal, origin, request, s3_request).await;
    api.settle(&call, &principal, result, |e| error(e, request.path)).await
}

/// The request, carried out.
async fn operation(
    api: &QueryApi,
    principal: &Principal,
    origin: &Origin,
    request: &HttpRequest<'_>,
    s3_request: S3Request<'_>,
) -> Result<Response, Failed> {
    let s3 = S3::new(api.accounts.clone(), api.gate("s3.amazonaws.com"));
    let caller = origin.context(principal, false);
    let no_content = || StatusCode::NO_CONTENT.into_response();
    let answer = match s3_request {
        S3Request::ListBuckets => {
            let buckets = s3.list_buckets(&caller, ListBuckets {}).await;
            buckets.map(|b| list_buckets(principal, &b))
        }
        S3Request::PutBucketPolicy(bucket) => {
            let put = PutBucketPolicy { bucket_name: bucket.to_string(), policy: request.body.to_vec() };
            s3.put_bucket_policy(&caller, put).await.map(|()| no_content())
        }
        S3Request::GetBucketPolicy(bucket) => s3
            .get_bucket_policy(&caller, GetBucketPolicy::new(bucket))
            .await
            .map(|text| (StatusCode::OK, [("content-type", "application/json")], text).into_response()),
        S3Request::DeleteBucketPolicy(bucket) => {
            s3.delete_bucket_policy(&caller, DeleteBucketPolicy::new(bucket)).await.map(|()| no_content())
        }
        S3Request::CreateBucket(bucket) => {
            let create = CreateBucket {
                bucket_name: bucket.to_string(),
                location_constraint: location_constraint(request.body),
            };
            let created = s3.create_bucket(&caller, create).await;
            created.map(|b| (StatusCode::OK, [("location", format!("/{}", b.name))]).into_response())
        }
        S3Request::DeleteBucket(bucket) => {
            s3.delete_bucket(&caller, DeleteBucket::new(bucket)).await.map(|()| no_content())
        }
        S3Request::HeadBucket(bucket) => s3
            .head_bucket(&caller, HeadBucket::new(bucket))
            .await
            .map(|found| (StatusCode::OK, [("x-amz-bucket-region", found.region)]).into_response()),
        S3Request::ListObjects(bucket) => {
            let listed = s3.list_objects(&caller, ListObjects::new(bucket)).await;
            listed.map(|()| empty_listing(bucket, request.query))
        }
        S3Request::NotImplemented(_, _, why) => {
            return Err(Failed::Before(Error::new(ErrorCode::NotImplemented, why)));
        }
    };
    answer.map_err(Failed::In)
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
    fn a_request_is_named_as_it_is_carried_out() {
        use S3Request::*;
        let read = |method, path, query| S3Request::read(method, path, query);
        assert_eq!(read("GET", "/", ""), ListBuckets);
        assert_eq!(read("PUT", "/b", "policy"), PutBucketPolicy("b"));
        assert_eq!(read("PUT", "/b", ""), CreateBucket("b"));
        assert_eq!(read("GET", "/b", "list-type=2"), ListObjects("b"));
        assert_eq!(read("HEAD", "/b", ""), HeadBucket("b"));
        // An object request was once recorded as the bucket call of its method (a PutObject
        // as CreateBucket) while it was refused as an object call.
        let put_object = read("PUT", "/b/key.txt", "");
        assert_eq!((put_object.name(), put_object.bucket()), ("PutObject", "b"));
        assert!(matches!(put_object, NotImplemented(..)));
        assert_eq!(read("PUT", "/", "").name(), "ServiceRequest");
        assert_eq!(read("POST", "/b", "").name(), "BucketRequest");
    }

    #[test]
    fn location_constraint_is_read_from_the_configuration() {
        let body = b"<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>";
        assert_eq!(location_constraint(body), "eu-west-1");
        assert_eq!(location_constraint(b""), "");
    }
}
