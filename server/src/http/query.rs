//! The AWS Query API (form-encoded POST, XML answers) for STS, as the aws CLI and the SDKs
//! call it with `--endpoint-url`. Every request is SigV4-verified by the same
//! [`Authenticator`] as the gRPC services; the answers are AWS's `…Response/…Result` shapes
//! and `ErrorResponse` errors with request ids.

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::any,
};

use crate::{
    domain::{Error, ErrorCode, ids, sigv4::HttpRequest},
    sts::{Authenticator, GRPC_RULES, Principal},
};

const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

#[derive(Clone)]
pub struct QueryApi {
    pub authn: Arc<Authenticator>,
}

/// POST / (and GET /, with the parameters in the query string).
pub fn router(api: QueryApi) -> Router {
    Router::new().route("/", any(handle)).with_state(api)
}

/// XML text, escaped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn request_id() -> String {
    let mut b = [0u8; 16];
    ids::random_bytes(&mut b);
    let h = data_encoding::HEXLOWER.encode(&b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The HTTP status AWS's Query API answers an error code with.
fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        MissingAuthenticationToken
        | IncompleteSignature
        | SignatureDoesNotMatch
        | InvalidClientTokenId
        | ExpiredToken
        | AccessDenied
        | AuthorizationQueryParametersError => StatusCode::FORBIDDEN,
        NoSuchEntity => StatusCode::NOT_FOUND,
        ServiceFailure => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn error_response(e: &Error) -> Response {
    let kind = if status_of(e.code).is_server_error() { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse xmlns=\"{STS_NAMESPACE}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        e.code.as_str(),
        xml(&e.message),
        request_id()
    );
    (status_of(e.code), [("content-type", "text/xml")], body).into_response()
}

fn result(action: &str, inner: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"{STS_NAMESPACE}\">\n  <{action}Result>\n{inner}  </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        request_id()
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
    let mut params: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .chain(form_urlencoded::parse(&body))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.dedup();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let action = param("Action").unwrap_or_default().to_string();
    let principal = match api.authn.authenticate(&request, "sts", &GRPC_RULES).await {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    match action.as_str() {
        "GetCallerIdentity" => get_caller_identity(&principal),
        "" => error_response(&Error::new(ErrorCode::InvalidInput, "Missing Action")),
        other => error_response(&Error::new(
            ErrorCode::InvalidInput,
            format!("Could not find operation {other} for version {}", param("Version").unwrap_or("")),
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(xml("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }

    #[test]
    fn auth_errors_are_403_and_validation_400() {
        assert_eq!(status_of(ErrorCode::SignatureDoesNotMatch), StatusCode::FORBIDDEN);
        assert_eq!(status_of(ErrorCode::AccessDenied), StatusCode::FORBIDDEN);
        assert_eq!(status_of(ErrorCode::ValidationError), StatusCode::BAD_REQUEST);
    }
}
