//! The AWS Query API (form-encoded POST, XML answers) for STS and IAM, as the aws CLI and the
//! SDKs call it with `--endpoint-url`. Every request is SigV4-verified by the same
//! [`Authenticator`] as the gRPC services, and an IAM action is authorized and carried out by
//! the same operation as its gRPC call (`operations::iam`; the form parameters are the API
//! request's fields, in AWS's PascalCase); the answers are AWS's `…Response/…Result` shapes and `ErrorResponse`
//! errors with request ids.

use std::net::SocketAddr;

use axum::{
    Router,
    body::Bytes,
    extract::{ConnectInfo, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::any,
};

use rolecall_api as pb;
use serde_json::Value;

use crate::{
    domain::{Error, ErrorCode, ids, principal::Principal, sigv4::HttpRequest},
    operations::iam::Iam,
    sts::{AssumeRoleInput, GRPC_RULES},
};

use super::{
    ec2,
    error::http_status,
    form::{self, Params},
    port::{Call, Failed, Origin, QueryApi, answering, request_id},
    s3,
    xml::escape as xml,
};

const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const IAM_VERSION: &str = "2010-05-08";

/// POST / (and GET /, with the parameters in the query string), reading bodies of at most
/// `max_body_bytes` (413 past it, whether their length was declared or not).
pub fn router(api: QueryApi, max_body_bytes: usize) -> Router {
    // S3's bucket paths (`/BUCKET`, `/BUCKET/KEY`) share the port.
    Router::new()
        .route("/", any(handle))
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .with_state(api)
}

fn iam_error(e: &Error) -> Response {
    error_in(IAM_NAMESPACE, e)
}

fn error_response(e: &Error) -> Response {
    error_in(STS_NAMESPACE, e)
}

fn error_in(namespace: &str, e: &Error) -> Response {
    let status = http_status(e.code);
    let kind = if status.is_server_error() { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        e.code.as_str(),
        xml(&e.message),
        request_id()
    );
    (status, [("content-type", "text/xml")], body).into_response()
}

fn result(action: &str, inner: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"{STS_NAMESPACE}\">\n  <{action}Result>\n{inner}  </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        request_id()
    );
    (StatusCode::OK, [("content-type", "text/xml")], body).into_response()
}

/// Every answer of the port carries its request id, in its body (`RequestId`) and in the
/// `x-amzn-RequestId` header, as AWS's do; the audit event records the same id.
async fn handle(
    State(api): State<QueryApi>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = ids::uuid();
    let header = axum::http::HeaderValue::from_str(&id).ok();
    let mut response = answering(id, answer(api, peer, method, uri, headers, body)).await;
    if let Some(header) = header {
        response.headers_mut().insert("x-amzn-requestid", header);
    }
    response
}

async fn answer(
    api: QueryApi,
    peer: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let view: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let request = HttpRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &view,
        body: &body,
    };
    let origin = Origin { source_ip: Some(peer.ip().to_canonical().to_string()), request_id: request_id() };
    let params = Params::parse(uri.query().unwrap_or(""), &body);
    let param = |name: &str| params.get(name);
    let action = params.str("Action");
    if s3::is_s3(&method, uri.query().unwrap_or(""), &headers, param("Action").is_some()) {
        return s3::handle(&api, &request, &origin).await;
    }
    let service = match param("Version") {
        Some(IAM_VERSION) => "iam",
        Some(ec2::VERSION) => "ec2",
        _ => "sts",
    };
    // Errors before an action runs, in the service's own shape.
    let refusal = match service {
        "ec2" => ec2::error,
        "iam" => iam_error,
        _ => error_response,
    };
    // The Query protocols' lists are bounded before any work on them (S3's bodies are not
    // form parameters).
    if let Err(e) = params.check_list_lengths() {
        return refusal(&e);
    }
    let principal = match api.authn.authenticate(&request, service, &GRPC_RULES).await {
        Ok(p) => p,
        Err(e) => {
            api.refused(&Call { service, action: &action, origin: &origin, params: &params }, &request, &e)
                .await;
            return refusal(&e);
        }
    };
    let call = Call { service, action: &action, origin: &origin, params: &params };
    if service == "ec2" {
        let result = match api.catalog_of(&principal) {
            Ok(catalog) => ec2::action(&api, &principal, &catalog, &origin, &action, &params).await,
            Err(e) => Err(Failed::Before(e)),
        };
        return api.settle(&call, &principal, result, ec2::error).await;
    }
    if service == "iam" {
        let result = iam_action(&api, &principal, &action, &params, &origin).await;
        return api.settle(&call, &principal, result, iam_error).await;
    }
    match action.as_str() {
        "GetCallerIdentity" => get_caller_identity(&principal),
        "GetAccessKeyInfo" => {
            match api.authn.access_key_account(param("AccessKeyId").unwrap_or_default()).await {
                Ok(account) => {
                    result("GetAccessKeyInfo", &format!("    <Account>{}</Account>\n", xml(&account)))
                }
                Err(e) => error_response(&e),
            }
        }
        "AssumeRole" => match assume_role(&api, &principal, &params).await {
            Ok(response) => response,
            Err(e) => error_response(&e),
        },
        "" => error_response(&Error::new(ErrorCode::InvalidInput, "Missing Action")),
        other => error_response(&Error::new(
            ErrorCode::InvalidAction,
            format!("Could not find operation {other} for version {}", param("Version").unwrap_or("")),
        )),
    }
}

async fn assume_role(api: &QueryApi, caller: &Principal, params: &Params) -> Result<Response, Error> {
    let param = |name: &str| params.get(name).map(str::to_string);
    let duration = match param("DurationSeconds") {
        Some(d) => Some(d.parse::<i64>().map_err(|_| {
            Error::validation(format!("1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must be a number"))
        })?),
        None => None,
    };
    let tags = params.tag_members("Tags");
    let input = AssumeRoleInput {
        role_arn: param("RoleArn").unwrap_or_default(),
        role_session_name: param("RoleSessionName").unwrap_or_default(),
        duration_seconds: duration,
        policy: param("Policy").unwrap_or_default(),
        policy_arns: params
            .members("PolicyArns", Some("arn"))
            .into_iter()
            .map(|(_, v)| v.to_string())
            .collect(),
        external_id: param("ExternalId"),
        tags,
    };
    let a = api.sts.assume_role(caller, input, Some(super::port::request_id())).await?;
    Ok(result(
        "AssumeRole",
        &format!(
            "    <Credentials>\n      <AccessKeyId>{}</AccessKeyId>\n      <SecretAccessKey>{}</SecretAccessKey>\n      <SessionToken>{}</SessionToken>\n      <Expiration>{}</Expiration>\n    </Credentials>\n    <AssumedRoleUser>\n      <AssumedRoleId>{}</AssumedRoleId>\n      <Arn>{}</Arn>\n    </AssumedRoleUser>\n    <PackedPolicySize>{}</PackedPolicySize>\n",
            xml(&a.credentials.access_key_id),
            xml(&a.credentials.secret_access_key.0),
            xml(&a.credentials.session_token.0),
            crate::domain::clock::iso8601(a.credentials.expires_at),
            xml(&a.assumed_role_id),
            xml(&a.arn),
            a.packed_policy_size
        ),
    ))
}

fn get_caller_identity(p: &Principal) -> Response {
    result(
        "GetCallerIdentity",
        &format!(
            "    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n",
            xml(&p.arn),
            xml(&p.user_id),
            xml(&p.account_id)
        ),
    )
}

/// An IAM action's gRPC request read from form parameters: its scalar fields by name (in
/// AWS's PascalCase), then the lists it takes as `Name.member.N`, which plain form
/// deserialization cannot read.
pub trait QueryInput: serde::de::DeserializeOwned {
    fn member_lists(&mut self, _params: &Params) {}
}

fn tags(params: &Params) -> Vec<pb::Tag> {
    params.tag_members("Tags").into_iter().map(|(key, value)| pb::Tag { key, value }).collect()
}

fn strings(params: &Params, name: &str) -> Vec<String> {
    params.members(name, None).into_iter().map(|(_, v)| v.to_string()).collect()
}

macro_rules! tagged {
    ($($t:ty),*) => { $(impl QueryInput for $t { fn member_lists(&mut self, p: &Params) { self.tags = tags(p); } })* };
}
macro_rules! untagged {
    ($($t:ty),*) => { $(impl QueryInput for $t { fn member_lists(&mut self, p: &Params) { self.tag_keys = strings(p, "TagKeys"); } })* };
}
macro_rules! scalar_only {
    ($($t:ty),* $(,)?) => { $(impl QueryInput for $t {})* };
}

tagged!(
    pb::CreateRoleRequest,
    pb::TagRoleRequest,
    pb::CreatePolicyRequest,
    pb::CreateInstanceProfileRequest,
    pb::CreateUserRequest,
    pb::TagUserRequest
);
untagged!(pb::UntagRoleRequest, pb::UntagUserRequest);
scalar_only!(
    pb::GetRoleRequest,
    pb::ListRolesRequest,
    pb::UpdateRoleRequest,
    pb::DeleteRoleRequest,
    pb::UpdateAssumeRolePolicyRequest,
    pb::PutRolePolicyRequest,
    pb::GetRolePolicyRequest,
    pb::ListRolePoliciesRequest,
    pb::DeleteRolePolicyRequest,
    pb::AttachRolePolicyRequest,
    pb::DetachRolePolicyRequest,
    pb::ListAttachedRolePoliciesRequest,
    pb::PutRolePermissionsBoundaryRequest,
    pb::DeleteRolePermissionsBoundaryRequest,
    pb::ListRoleTagsRequest,
    pb::GetPolicyRequest,
    pb::ListPoliciesRequest,
    pb::DeletePolicyRequest,
    pb::CreatePolicyVersionRequest,
    pb::GetPolicyVersionRequest,
    pb::ListPolicyVersionsRequest,
    pb::SetDefaultPolicyVersionRequest,
    pb::DeletePolicyVersionRequest,
    pb::GetInstanceProfileRequest,
    pb::ListInstanceProfilesRequest,
    pb::ListInstanceProfilesForRoleRequest,
    pb::DeleteInstanceProfileRequest,
    pb::AddRoleToInstanceProfileRequest,
    pb::RemoveRoleFromInstanceProfileRequest,
    pb::GetUserRequest,
    pb::ListUsersRequest,
    pb::DeleteUserRequest,
    pb::PutUserPolicyRequest,
    pb::GetUserPolicyRequest,
    pb::ListUserPoliciesRequest,
    pb::DeleteUserPolicyRequest,
    pb::AttachUserPolicyRequest,
    pb::DetachUserPolicyRequest,
    pb::ListAttachedUserPoliciesRequest,
    pb::PutUserPermissionsBoundaryRequest,
    pb::DeleteUserPermissionsBoundaryRequest,
    pb::CreateAccessKeyRequest,
    pb::ListAccessKeysRequest,
    pb::UpdateAccessKeyRequest,
    pb::DeleteAccessKeyRequest,
    pb::RevokeRoleSessionsRequest,
    pb::CreateGroupRequest,
    pb::GetGroupRequest,
    pb::ListGroupsRequest,
    pb::UpdateGroupRequest,
    pb::DeleteGroupRequest,
    pb::AddUserToGroupRequest,
    pb::RemoveUserFromGroupRequest,
    pb::ListGroupsForUserRequest,
    pb::PutGroupPolicyRequest,
    pb::GetGroupPolicyRequest,
    pb::ListGroupPoliciesRequest,
    pb::DeleteGroupPolicyRequest,
    pb::AttachGroupPolicyRequest,
    pb::DetachGroupPolicyRequest,
    pb::ListAttachedGroupPoliciesRequest,
    pb::GetAccountSummaryRequest,
    pb::ListEntitiesForPolicyRequest,
    pb::CreateAccountAliasRequest,
    pb::DeleteAccountAliasRequest,
    pb::ListAccountAliasesRequest,
    pb::GetAccessKeyLastUsedRequest,
    pb::GenerateCredentialReportRequest,
    pb::GetCredentialReportRequest,
);

impl QueryInput for pb::GetAccountAuthorizationDetailsRequest {
    fn member_lists(&mut self, p: &Params) {
        self.filter = strings(p, "Filter");
    }
}

/// GetContextKeysFor…Policy: their PolicyInputList.
macro_rules! policy_inputs {
    ($($t:ty),*) => {
        $(impl QueryInput for $t {
            fn member_lists(&mut self, p: &Params) {
                self.policy_input_list = strings(p, "PolicyInputList");
            }
        })*
    };
}
policy_inputs!(pb::GetContextKeysForCustomPolicyRequest, pb::GetContextKeysForPrincipalPolicyRequest);

/// Both simulations: the lists their requests share (by the same field names).
macro_rules! simulations {
    ($($t:ty),*) => {
        $(impl QueryInput for $t {
            fn member_lists(&mut self, p: &Params) {
                self.policy_input_list = strings(p, "PolicyInputList");
                self.permissions_boundary_policy_input_list = strings(p, "PermissionsBoundaryPolicyInputList");
                self.action_names = strings(p, "ActionNames");
                self.resource_arns = strings(p, "ResourceArns");
                self.context_entries = context_entries(p);
            }
        })*
    };
}
simulations!(pb::SimulateCustomPolicyRequest, pb::SimulatePrincipalPolicyRequest);

/// ContextEntries.member.N: each key, its values and its type.
fn context_entries(p: &Params) -> Vec<pb::ContextEntry> {
    p.groups("ContextEntries.member.")
        .into_values()
        .filter_map(|fields| {
            Some(pb::ContextEntry {
                context_key_name: form::field(&fields, "ContextKeyName")?.to_string(),
                context_key_values: form::numbered_tails(&fields, "ContextKeyValues.member."),
                context_key_type: form::field(&fields, "ContextKeyType").unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// The form parameters as the gRPC request of an action: the Query API's reading, which the
/// operator's CLI shares.
pub fn request_of<T: QueryInput>(params: &Params) -> Result<T, Error> {
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.input().filter(|(k, _)| !k.contains(".member.")))
        .finish();
    let mut request: T = serde_urlencoded::from_str(&form)
        .map_err(|e| Error::validation(format!("1 validation error detected: {e}")))?;
    request.member_lists(params);
    Ok(request)
}

/// The form parameters decoded as the requests of actions of each shape (tags, tag keys,
/// scalars of every type, SimulatePrincipalPolicy's nested lists): the fuzz target's road
/// into [`request_of`].
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode_requests(params: &Params) {
    let _ = request_of::<pb::CreateRoleRequest>(params);
    let _ = request_of::<pb::UntagRoleRequest>(params);
    let _ = request_of::<pb::ListRolesRequest>(params);
    let _ = request_of::<pb::UpdateRoleRequest>(params);
    let _ = request_of::<pb::UpdateAccessKeyRequest>(params);
    let _ = request_of::<pb::SimulatePrincipalPolicyRequest>(params);
}

/// The fields IAM's answers carry policy documents in.
const POLICY_DOCUMENTS: &[&str] = &["AssumeRolePolicyDocument", "PolicyDocument", "Document"];

/// The fields of IAM's answers that are blobs, which the Query API sends in base64.
const BLOBS: &[&str] = &["Content"];

/// The fields of IAM's answers that are maps (string to string).
const MAPS: &[&str] = &["EvalDecisionDetails", "SummaryMap"];

/// A response message as Query XML: fields as elements in PascalCase, lists as `member`s,
/// maps as `entry`s of `key` and `value`, empty strings and maps left out (proto3 cannot
/// tell them from absent).
fn to_xml(value: &Value, indent: usize, out: &mut String) {
    let Value::Object(fields) = value else { return };
    for (name, v) in fields {
        let pad = " ".repeat(indent);
        match v {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            Value::String(s) if BLOBS.contains(&name.as_str()) => {
                out.push_str(&format!(
                    "{pad}<{name}>{}</{name}>\n",
                    data_encoding::BASE64.encode(s.as_bytes())
                ));
            }
            // IAM leaves out an entity's Tags when it has none (GetRole, CreateUser…).
            Value::Array(items) if items.is_empty() && name == "Tags" && indent > 4 => {}
            // IAM sends policy documents URL-encoded (the SDKs decode them).
            Value::String(s) if POLICY_DOCUMENTS.contains(&name.as_str()) => {
                let encoded = percent_encoding::utf8_percent_encode(s, crate::domain::sigv4::QUERY_SET);
                out.push_str(&format!("{pad}<{name}>{encoded}</{name}>\n"));
            }
            // An empty list is still a list: `"Users": []`, not a missing key.
            Value::Array(items) if items.is_empty() => out.push_str(&format!("{pad}<{name}/>\n")),
            Value::Array(items) => {
                out.push_str(&format!("{pad}<{name}>\n"));
                for item in items {
                    match item {
                        Value::Object(_) => {
                            out.push_str(&format!("{pad}  <member>\n"));
                            to_xml(item, indent + 4, out);
                            out.push_str(&format!("{pad}  </member>\n"));
                        }
                        Value::String(s) => out.push_str(&format!("{pad}  <member>{}</member>\n", xml(s))),
                        other => out.push_str(&format!("{pad}  <member>{other}</member>\n")),
                    }
                }
                out.push_str(&format!("{pad}</{name}>\n"));
            }
            Value::Object(entries) if MAPS.contains(&name.as_str()) => {
                if entries.is_empty() {
                    continue;
                }
                out.push_str(&format!("{pad}<{name}>\n"));
                for (key, value) in entries {
                    let value = value.as_str().map_or_else(|| value.to_string(), str::to_string);
                    out.push_str(&format!(
                        "{pad}  <entry><key>{}</key><value>{}</value></entry>\n",
                        xml(key),
                        xml(&value)
                    ));
                }
                out.push_str(&format!("{pad}</{name}>\n"));
            }
            Value::Object(_) => {
                out.push_str(&format!("{pad}<{name}>\n"));
                to_xml(v, indent + 2, out);
                out.push_str(&format!("{pad}</{name}>\n"));
            }
            Value::String(s) => out.push_str(&format!("{pad}<{name}>{}</{name}>\n", xml(s))),
            other => out.push_str(&format!("{pad}<{name}>{other}</{name}>\n")),
        }
    }
}

/// The actions whose answer holds an empty Result element, which the SDKs require
/// (botocore's model gives them an output with a result wrapper and no members).
const EMPTY_RESULTS: &[&str] = &["UpdateRole"];

fn iam_result(action: &str, value: &Value) -> Response {
    let mut inner = String::new();
    to_xml(value, 4, &mut inner);
    let result = if inner.is_empty() && !EMPTY_RESULTS.contains(&action) {
        String::new()
    } else if inner.is_empty() {
        format!("  <{action}Result/>\n")
    } else {
        format!("  <{action}Result>\n{inner}  </{action}Result>\n")
    };
    let body = format!(
        "<{action}Response xmlns=\"{IAM_NAMESPACE}\">\n{result}  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        request_id()
    );
    (StatusCode::OK, [("content-type", "text/xml")], body).into_response()
}

/// One IAM action: its form parameters decoded into its request, which its operation (the
/// gRPC call's too) authorizes, audits and carries out.
async fn iam_action(
    api: &QueryApi,
    principal: &Principal,
    action: &str,
    params: &Params,
    origin: &Origin,
) -> Result<Response, Failed> {
    let catalog = api.catalog_of(principal)?;
    let operations = Iam::new(catalog, api.gate("iam.amazonaws.com"));
    let caller = origin.context(principal, false);
    macro_rules! actions {
        ($($name:ident => $method:ident($req:ident) -> $answer:ident;)*) => {
            match action {
                $(stringify!($name) => {
                    let req: pb::$req = request_of(params)?;
                    let response = operations.$method(&caller, req).await.map_err(Failed::In)?;
                    let value = serde_json::to_value(response).map_err(|e| Failed::In(Error::service_failure(e.to_string())))?;
                    Ok(iam_result(stringify!($name), &value))
                })*
                other => Err(Failed::Before(Error::new(ErrorCode::InvalidAction, format!("Could not find operation {other} for version {IAM_VERSION}")))),
            }
        };
    }
    rolecall_api::iam_rpcs!(actions)
}
