//! The AWS Query API (form-encoded POST, XML answers) for STS and IAM, as the aws CLI and the
//! SDKs call it with `--endpoint-url`. Every request is SigV4-verified by the same
//! [`Authenticator`] as the gRPC services, and an IAM action is authorized and carried out by
//! the same code as its gRPC call (the form parameters are the gRPC request's fields, in
//! AWS's PascalCase); the answers are AWS's `…Response/…Result` shapes and `ErrorResponse`
//! errors with request ids.

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::any,
};

use rolecall_api::{self as pb, iam_server::Iam};
use serde_json::Value;

use crate::{
    authz::{self, Authorizer},
    catalog::Accounts,
    domain::{Error, ErrorCode, ids, sigv4::HttpRequest},
    grpc::{iam::IamService, sigv4::Resources},
    sts::{AssumeRoleInput, Authenticator, GRPC_RULES, Principal, SecurityTokenService},
    telemetry::Metrics,
};

use super::{ec2, error::http_status, form::Params, s3, xml::escape as xml};

const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const IAM_VERSION: &str = "2010-05-08";

#[derive(Clone)]
pub struct QueryApi {
    pub authn: Arc<Authenticator>,
    pub accounts: Arc<Accounts>,
    pub authz: Arc<Authorizer>,
    pub sts: Arc<SecurityTokenService>,
    pub metrics: Metrics,
}

impl QueryApi {
    /// The catalog of the caller's account.
    pub(super) fn catalog_of(&self, principal: &Principal) -> Result<Arc<crate::catalog::Catalog>, Error> {
        let catalog = self.accounts.get(&principal.account_id).ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidClientTokenId,
                "The security token included in the request is invalid.",
            )
        })?;
        Ok(catalog.clone())
    }
}

/// POST / (and GET /, with the parameters in the query string).
pub fn router(api: QueryApi) -> Router {
    // S3's bucket paths (`/BUCKET`, `/BUCKET/KEY`) share the port.
    Router::new().route("/", any(handle)).fallback(handle).with_state(api)
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
        ids::uuid()
    );
    (status, [("content-type", "text/xml")], body).into_response()
}

fn result(action: &str, inner: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"{STS_NAMESPACE}\">\n  <{action}Result>\n{inner}  </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        ids::uuid()
    );
    (StatusCode::OK, [("content-type", "text/xml")], body).into_response()
}

async fn handle(
    State(api): State<QueryApi>,
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
    let params = Params::parse(uri.query().unwrap_or(""), &body);
    let param = |name: &str| params.get(name);
    let action = params.str("Action");
    if s3::is_s3(&method, uri.query().unwrap_or(""), &headers, param("Action").is_some()) {
        return s3::handle(&api, &request).await;
    }
    let iam = param("Version") == Some(IAM_VERSION);
    if param("Version") == Some(ec2::VERSION) {
        let answer = async {
            let principal = api.authn.authenticate(&request, "ec2", &GRPC_RULES).await?;
            let catalog = api.catalog_of(&principal)?;
            ec2::action(&api, &principal, &catalog, api.metrics.clone(), &action, &params).await
        };
        return answer.await.unwrap_or_else(|e| ec2::error(&e));
    }
    let principal = match api.authn.authenticate(&request, if iam { "iam" } else { "sts" }, &GRPC_RULES).await
    {
        Ok(p) => p,
        Err(e) => return error_in(if iam { IAM_NAMESPACE } else { STS_NAMESPACE }, &e),
    };
    if iam {
        return match iam_action(&api, &principal, &action, &params).await {
            Ok(response) => response,
            Err(e) => error_in(IAM_NAMESPACE, &e),
        };
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
            ErrorCode::InvalidInput,
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
    let a = api.sts.assume_role(caller, input).await?;
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

/// The form parameters as the gRPC request of `action`.
fn request_of<T: serde::de::DeserializeOwned>(params: &Params) -> Result<T, Error> {
    let form = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.input()).finish();
    serde_urlencoded::from_str(&form)
        .map_err(|e| Error::validation(format!("1 validation error detected: {e}")))
}

/// A response message as Query XML: fields as elements in PascalCase, lists as `member`s,
/// empty strings left out (proto3 cannot tell them from absent).
fn to_xml(value: &Value, indent: usize, out: &mut String) {
    let Value::Object(fields) = value else { return };
    for (name, v) in fields {
        let pad = " ".repeat(indent);
        match v {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
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

fn iam_result(action: &str, value: &Value) -> Response {
    let mut inner = String::new();
    to_xml(value, 4, &mut inner);
    let result = if inner.is_empty() {
        String::new()
    } else {
        format!("  <{action}Result>\n{inner}  </{action}Result>\n")
    };
    let body = format!(
        "<{action}Response xmlns=\"{IAM_NAMESPACE}\">\n{result}  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        ids::uuid()
    );
    (StatusCode::OK, [("content-type", "text/xml")], body).into_response()
}

/// One IAM action: authorized like its gRPC call (same action, same resource), then carried
/// out by the same handler.
async fn iam_action(
    api: &QueryApi,
    principal: &Principal,
    action: &str,
    params: &Params,
) -> Result<Response, Error> {
    let catalog = api.catalog_of(principal)?;
    let service = IamService::new(catalog, api.authz.clone(), api.metrics.clone());
    let resources = crate::grpc::iam::IamResources::new(api.accounts.clone());
    macro_rules! actions {
        ($($name:literal => $method:ident($req:ty)),* $(,)?) => {
            match action {
                $($name => {
                    let req: $req = request_of(params)?;
                    let resource = resources.resource(&principal.account_id, $name, &prost::Message::encode_to_vec(&req)).await?;
                    let request = authz::Request { action: format!("iam:{}", $name), resource, ..authz::Request::default() };
                    api.authz.authorize(principal, &request).await?;
                    let response = service.$method(tonic::Request::new(req)).await.map_err(|s| crate::grpc::error::from_status(&s))?;
                    let value = serde_json::to_value(response.into_inner()).map_err(|e| Error::service_failure(e.to_string()))?;
                    Ok(iam_result($name, &value))
                })*
                other => Err(Error::new(ErrorCode::InvalidInput, format!("Could not find operation {other} for version {IAM_VERSION}"))),
            }
        };
    }
    actions!(
        "CreateRole" => create_role(pb::CreateRoleRequest),
        "GetRole" => get_role(pb::GetRoleRequest),
        "ListRoles" => list_roles(pb::ListRolesRequest),
        "DeleteRole" => delete_role(pb::DeleteRoleRequest),
        "AttachRolePolicy" => attach_role_policy(pb::AttachRolePolicyRequest),
        "DetachRolePolicy" => detach_role_policy(pb::DetachRolePolicyRequest),
        "ListAttachedRolePolicies" => list_attached_role_policies(pb::ListAttachedRolePoliciesRequest),
        "PutRolePolicy" => put_role_policy(pb::PutRolePolicyRequest),
        "CreateInstanceProfile" => create_instance_profile(pb::CreateInstanceProfileRequest),
        "GetInstanceProfile" => get_instance_profile(pb::GetInstanceProfileRequest),
        "AddRoleToInstanceProfile" => add_role_to_instance_profile(pb::AddRoleToInstanceProfileRequest),
        "RemoveRoleFromInstanceProfile" => remove_role_from_instance_profile(pb::RemoveRoleFromInstanceProfileRequest),
        "ListInstanceProfiles" => list_instance_profiles(pb::ListInstanceProfilesRequest),
        "CreateUser" => create_user(pb::CreateUserRequest),
        "GetUser" => get_user(pb::GetUserRequest),
        "ListUsers" => list_users(pb::ListUsersRequest),
        "DeleteUser" => delete_user(pb::DeleteUserRequest),
        "CreateAccessKey" => create_access_key(pb::CreateAccessKeyRequest),
        "ListAccessKeys" => list_access_keys(pb::ListAccessKeysRequest),
        "UpdateAccessKey" => update_access_key(pb::UpdateAccessKeyRequest),
        "DeleteAccessKey" => delete_access_key(pb::DeleteAccessKeyRequest),
        "GetPolicy" => get_policy(pb::GetPolicyRequest),
        "ListPolicies" => list_policies(pb::ListPoliciesRequest),
    )
}
