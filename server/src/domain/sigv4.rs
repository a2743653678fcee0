//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`): the canonical request, the string to sign
//! and the signing key, with a verifier and a signer for both forms AWS accepts, the
//! `Authorization` header and the presigned query string.
//!
//! Transport-free: the HTTP front door and the gRPC signing layer each describe a request
//! as an [`HttpRequest`]. Who holds which secret is not decided here: the caller parses the
//! [`Authorization`], looks up the secret of its access key id, and asks [`Authorization::verify`].
//!
//! - Signatures are compared in constant time (`ring::hmac::verify`).
//! - Signing keys are derived once per (access key id, scope) and kept in a bounded cache.
//! - The payload is always hashed (S3 alone may say `UNSIGNED-PAYLOAD`).

use std::{fmt, sync::Arc, time::Duration};

use data_encoding::HEXLOWER;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};
use ring::{digest, hmac};
use time::{
    OffsetDateTime, PrimitiveDateTime, format_description::well_known::Rfc2822, macros::format_description,
};

use super::{Error, ErrorCode, Result};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// A presigned request lives at most a week (`X-Amz-Expires`).
pub const MAX_PRESIGNED_SECS: i64 = 604_800;

/// Everything but the unreserved characters (`A-Z a-z 0-9 - _ . ~`) is percent-encoded.
pub const QUERY_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// In a path, `/` separates segments and stays.
const PATH_SET: &AsciiSet = &QUERY_SET.remove(b'/');
/// A path encoded once: escapes as sent stay as they are.
const PATH_ONCE_SET: &AsciiSet = &PATH_SET.remove(b'%');

/// An HTTP request as SigV4 sees it.
#[derive(Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// The path as sent on the request line.
    pub path: &'a str,
    /// The query string as sent, without the `?`.
    pub query: &'a str,
    /// Headers as received, in order, names in any case. HTTP/2's `:authority` is `host`.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// How a service canonicalises what it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Remove `.`, `..` and empty path segments before encoding (every service but S3).
    pub normalize_path: bool,
    /// How the path as received is encoded for signing.
    pub path_encoding: PathEncoding,
    /// How far the request's time may be from ours, either way.
    pub max_skew_secs: i64,
    /// Whether `x-amz-content-sha256: UNSIGNED-PAYLOAD` (and presigned URLs without a payload
    /// hash) are accepted: S3 only.
    pub allow_unsigned_payload: bool,
}

impl Rules {
    /// IAM, STS, EC2 and rolecall's own gRPC services: 5 minutes of skew, as IAM documents.
    pub const AWS: Rules = Rules {
        normalize_path: true,
        path_encoding: PathEncoding::Double,
        max_skew_secs: 300,
        allow_unsigned_payload: false,
    };
    /// S3: the path as sent, 15 minutes of skew, unsigned payloads allowed.
    pub const S3: Rules = Rules {
        normalize_path: false,
        path_encoding: PathEncoding::Once,
        max_skew_secs: 900,
        allow_unsigned_payload: true,
    };
}

/// How a received path becomes the canonical URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathEncoding {
    /// Every byte but the unreserved ones and `/` is escaped, `%` included, so a path sent
    /// escaped is escaped twice: what the SDKs sign for every service but S3.
    Double,
    /// Escapes as sent are kept; anything sent unescaped is escaped (S3, and the known-answer
    /// suite's requests, whose paths are written half-decoded).
    Once,
}

/// Which of the two forms carried the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Header,
    Presigned,
}

/// `DATE/REGION/SERVICE/aws4_request`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    pub date: String,
    pub region: String,
    pub service: String,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}/{TERMINATOR}", self.date, self.region, self.service)
    }
}

/// A request's SigV4 authorization as presented, before it is verified.
#[derive(Clone)]
pub struct Authorization {
    pub form: Form,
    pub access_key_id: String,
    pub scope: Scope,
    /// Lower-case header names, in the order the signer listed them.
    pub signed_headers: Vec<String>,
    signature: Vec<u8>,
    /// `YYYYMMDDTHHMMSSZ`, as signed.
    pub amz_date: String,
    pub timestamp: i64,
    /// Presigned only: `X-Amz-Expires`.
    pub expires_secs: Option<i64>,
    /// `X-Amz-Security-Token`, for temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization")
            .field("form", &self.form)
            .field("access_key_id", &self.access_key_id)
            .field("scope", &self.scope)
            .field("signed_headers", &self.signed_headers)
            .field("amz_date", &self.amz_date)
            .field("session_token", &self.session_token.as_ref().map(|_| "** redacted **"))
            .finish_non_exhaustive()
    }
}

/// Where a request must be scoped.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

fn incomplete(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::IncompleteSignature, message)
}

fn mismatch(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::SignatureDoesNotMatch, message)
}

/// AWS's words for a signature that does not verify.
pub const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. \
     Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

// === impl Authorization ===

impl Authorization {
    /// The authorization a request carries: its `Authorization` header, else presigned query
    /// parameters. `MissingAuthenticationToken` when it has neither.
    pub fn parse(req: &HttpRequest<'_>) -> Result<Self> {
        if let Some(header) = header(req.headers, "authorization") {
            return Self::from_header(req, header);
        }
        let query = query_pairs(req.query);
        if query.iter().any(|(k, _)| k == "X-Amz-Algorithm") {
            return Self::from_query(&query);
        }
        Err(Error::new(ErrorCode::MissingAuthenticationToken, "Request is missing Authentication Token"))
    }

    fn from_header(req: &HttpRequest<'_>, value: &str) -> Result<Self> {
        let (algorithm, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        if algorithm != ALGORITHM {
            return Err(incomplete(format!("Unsupported AWS 'algorithm': '{algorithm}'")));
        }
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',').filter(|p| !p.trim().is_empty()) {
            let Some((name, v)) = part.trim().split_once('=') else {
                return Err(incomplete(format!(
                    "'{}' not a valid key=value pair (missing equal-sign) in Authorization header",
                    part.trim()
                )));
            };
            match name {
                "Credential" => credential = Some(v),
                "SignedHeaders" => signed = Some(v),
                "Signature" => signature = Some(v),
                _ => {}
            }
        }
        let mut missing = String::new();
        for (name, present) in [
            ("Credential", credential.is_some()),
            ("Signature", signature.is_some()),
            ("SignedHeaders", signed.is_some()),
        ] {
            if !present {
                missing.push_str(&format!("Authorization header requires '{name}' parameter. "));
            }
        }
        let amz_date = match header(req.headers, "x-amz-date") {
            Some(d) => Some(d.trim().to_string()),
            None => header(req.headers, "date").map(http_date_as_amz).transpose()?,
        };
        if amz_date.is_none() {
            missing.push_str(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
            );
        }
        let (Some(credential), Some(signed), Some(signature), Some(amz_date)) =
            (credential, signed, signature, amz_date)
        else {
            return Err(incomplete(missing.trim_end()));
        };
        let (access_key_id, scope) = parse_credential(credential)?;
        Ok(Self {
            form: Form::Header,
            access_key_id,
            scope,
            signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
            signature: decode_signature(signature)?,
            timestamp: parse_amz_date(&amz_date)?,
            amz_date,
            expires_secs: None,
            session_token: header(req.headers, "x-amz-security-token").map(|t| t.trim().to_string()),
        })
    }

    fn from_query(query: &[(String, String)]) -> Result<Self> {
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let algorithm = param("X-Amz-Algorithm").unwrap_or_default();
        if algorithm != ALGORITHM {
            return Err(query_error(format!(
                "X-Amz-Algorithm only supports \"{ALGORITHM}\", not \"{algorithm}\""
            )));
        }
        let mut missing = Vec::new();
        for name in
            ["X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date", "X-Amz-Expires"]
        {
            if param(name).is_none() {
                missing.push(name);
            }
        }
        if !missing.is_empty() {
            return Err(query_error(format!(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, \
                 X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters (missing {}).",
                missing.join(", ")
            )));
        }
        let get = |name: &str| param(name).unwrap_or_default();
        let expires: i64 = get("X-Amz-Expires")
            .parse()
            .map_err(|_| query_error("X-Amz-Expires should be a number".to_string()))?;
        if !(1..=MAX_PRESIGNED_SECS).contains(&expires) {
            return Err(query_error(format!(
                "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_SECS}, and at least 1"
            )));
        }
        let (access_key_id, scope) = parse_credential(get("X-Amz-Credential"))?;
        let amz_date = get("X-Amz-Date").to_string();
        Ok(Self {
            form: Form::Presigned,
            access_key_id,
            scope,
            signed_headers: get("X-Amz-SignedHeaders").split(';').map(str::to_ascii_lowercase).collect(),
            signature: decode_signature(get("X-Amz-Signature"))?,
            timestamp: parse_amz_date(&amz_date)?,
            amz_date,
            expires_secs: Some(expires),
            session_token: param("X-Amz-Security-Token").map(str::to_string),
        })
    }

    /// Checks what can be checked without the secret: the scope (date, region, service,
    /// terminator), that `host` is signed, and the time (skew either way, a presigned URL's
    /// expiry).
    pub fn check(&self, expected: Expected<'_>, now: i64, rules: &Rules) -> Result<()> {
        let date = self.amz_date.get(..8).unwrap_or_default();
        if self.scope.date != date {
            return Err(mismatch(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{date}', from '{}'.",
                self.scope.date, self.amz_date
            )));
        }
        if self.scope.service != expected.service {
            return Err(mismatch(format!(
                "Credential should be scoped to correct service: '{}'. ",
                expected.service
            )));
        }
        if self.scope.region != expected.region {
            return Err(mismatch(format!(
                "Credential should be scoped to a valid region. Expected '{}', not '{}'.",
                expected.region, self.scope.region
            )));
        }
        if !self.signed_headers.iter().any(|h| h == "host") {
            return Err(mismatch(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            ));
        }
        let skew = rules.max_skew_secs;
        let minutes = skew / 60;
        if self.timestamp > now + skew {
            return Err(mismatch(format!(
                "Signature not yet current: {} is still later than {} ({} + {minutes} min.)",
                self.amz_date,
                amz_date(now + skew),
                amz_date(now)
            )));
        }
        match self.expires_secs {
            Some(expires) if now > self.timestamp + expires => {
                Err(Error::new(ErrorCode::AccessDenied, "Request has expired"))
            }
            None if self.timestamp < now - skew => Err(mismatch(format!(
                "Signature expired: {} is now earlier than {} ({} - {minutes} min.)",
                self.amz_date,
                amz_date(now - skew),
                amz_date(now)
            ))),
            _ => Ok(()),
        }
    }

    /// Verifies the signature with the secret of [`access_key_id`](Self::access_key_id).
    pub fn verify(
        &self,
        req: &HttpRequest<'_>,
        secret: &str,
        rules: &Rules,
        keys: &SigningKeys,
    ) -> Result<()> {
        let key = keys.get(&self.access_key_id, secret, &self.scope);
        let payload = payload_hash(req, self.form, rules)?;
        let signs = |omit_token: bool| {
            let query = match self.form {
                Form::Header => query_pairs(req.query),
                Form::Presigned => query_pairs(req.query)
                    .into_iter()
                    .filter(|(k, _)| k != "X-Amz-Signature" && !(omit_token && k == "X-Amz-Security-Token"))
                    .collect(),
            };
            let canonical = canonical_request(req, &self.signed_headers, &query, &payload, rules);
            let to_sign = string_to_sign(&self.amz_date, &self.scope, &canonical);
            hmac::verify(&key, to_sign.as_bytes(), &self.signature).is_ok()
        };
        // A presigned URL may carry its session token signed, or added after signing (as
        // AWS IoT's are); either way the token is then checked on its own.
        let verified =
            signs(false) || (self.form == Form::Presigned && self.session_token.is_some() && signs(true));
        if verified { Ok(()) } else { Err(mismatch(SIGNATURE_MISMATCH)) }
    }
}

fn query_error(message: String) -> Error {
    Error::new(ErrorCode::AuthorizationQueryParametersError, message)
}

/// `AKID/DATE/REGION/SERVICE/aws4_request`.
fn parse_credential(value: &str) -> Result<(String, Scope)> {
    let parts: Vec<&str> = value.split('/').collect();
    let [key, date, region, service, terminator] = parts[..] else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{value}'"
        )));
    };
    if terminator != TERMINATOR {
        return Err(mismatch(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
        )));
    }
    if key.is_empty() {
        return Err(incomplete("Credential must contain an access key id"));
    }
    let scope = Scope { date: date.into(), region: region.into(), service: service.into() };
    Ok((key.to_string(), scope))
}

fn decode_signature(hex: &str) -> Result<Vec<u8>> {
    match HEXLOWER.decode(hex.trim().as_bytes()) {
        Ok(bytes) if bytes.len() == 32 => Ok(bytes),
        _ => Err(mismatch(SIGNATURE_MISMATCH)),
    }
}

/// `20150830T123600Z` as Unix time.
pub fn parse_amz_date(value: &str) -> Result<i64> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(value, format)
        .map(|t| t.assume_utc().unix_timestamp())
        .map_err(|_| incomplete(format!("Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601")))
}

/// Unix time as `20150830T123600Z`.
pub fn amz_date(unix: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// An HTTP `Date` header (`Sun, 30 Aug 2015 12:36:00 GMT`) in `X-Amz-Date` form.
fn http_date_as_amz(value: &str) -> Result<String> {
    OffsetDateTime::parse(value.trim(), &Rfc2822)
        .map(|t| amz_date(t.unix_timestamp()))
        .map_err(|_| incomplete(format!("Date header could not be parsed: '{}'", value.trim())))
}

/// The first value of a header, by case-insensitive name.
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The query's parameters, percent-decoded, in order.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The payload's SHA-256 in hex, or `UNSIGNED-PAYLOAD` where the rules allow it.
fn payload_hash(req: &HttpRequest<'_>, form: Form, rules: &Rules) -> Result<String> {
    let declared = header(req.headers, "x-amz-content-sha256").map(str::trim);
    if rules.allow_unsigned_payload
        && (declared == Some(UNSIGNED_PAYLOAD) || (form == Form::Presigned && declared.is_none()))
    {
        return Ok(UNSIGNED_PAYLOAD.to_string());
    }
    let computed = sha256_hex(req.body);
    match declared {
        Some(d) if d != computed => {
            Err(mismatch("The provided 'x-amz-content-sha256' header does not match what was computed."))
        }
        _ => Ok(computed),
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    HEXLOWER.encode(digest::digest(&digest::SHA256, data).as_ref())
}

/// The canonical request: method, canonical URI, canonical query, canonical headers, the
/// signed header list and the payload hash, one per line.
fn canonical_request(
    req: &HttpRequest<'_>,
    signed_headers: &[String],
    query: &[(String, String)],
    payload_hash: &str,
    rules: &Rules,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.path, rules));
    out.push('\n');
    out.push_str(&canonical_query(query));
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

fn canonical_uri(path: &str, rules: &Rules) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let normalized = if rules.normalize_path { normalize(path) } else { path.to_string() };
    let set = match rules.path_encoding {
        PathEncoding::Double => PATH_SET,
        PathEncoding::Once => PATH_ONCE_SET,
    };
    percent_encode(normalized.as_bytes(), set).to_string()
}

/// RFC 3986 dot-segment removal, with empty segments dropped; a trailing `/` is kept.
fn normalize(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    let directory = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    let mut out = format!("/{}", kept.join("/"));
    if directory && !kept.is_empty() {
        out.push('/');
    }
    out
}

fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| {
            (
                percent_encode(k.as_bytes(), QUERY_SET).to_string(),
                percent_encode(v.as_bytes(), QUERY_SET).to_string(),
            )
        })
        .collect();
    encoded.sort();
    encoded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn string_to_sign(amz_date: &str, scope: &Scope, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// Derived signing keys, cached per (access key id, secret, scope): deriving one is four HMACs.
#[derive(Clone)]
pub struct SigningKeys {
    cache: moka::sync::Cache<(String, Scope), Arc<hmac::Key>>,
}

impl Default for SigningKeys {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl SigningKeys {
    /// At most `capacity` keys, each kept a day at most (a scope names one date).
    pub fn new(capacity: u64) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .time_to_live(Duration::from_secs(2 * 86_400))
            .build();
        Self { cache }
    }

    /// The key for this secret and scope. The cache is keyed by the access key id, the scope
    /// and a digest of the secret, so a key is never used with a secret it was not derived from.
    fn get(&self, access_key_id: &str, secret: &str, scope: &Scope) -> Arc<hmac::Key> {
        let mut id = String::with_capacity(access_key_id.len() + 1 + 64);
        id.push_str(access_key_id);
        id.push('/');
        id.push_str(&sha256_hex(secret.as_bytes()));
        self.cache.get_with((id, scope.clone()), || Arc::new(signing_key(secret, scope)))
    }
}

/// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, scope: &Scope) -> hmac::Key {
    let mut key = hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{secret}").as_bytes());
    for part in [scope.date.as_str(), &scope.region, &scope.service, TERMINATOR] {
        key = hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&key, part.as_bytes()).as_ref());
    }
    key
}

/// What a signer needs: an access key and, for temporary credentials, the session token.
pub struct SigningCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// How to sign.
#[derive(Clone, Copy, Debug)]
pub struct SigningOptions<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub timestamp: i64,
    pub rules: Rules,
    /// Add and sign `x-amz-content-sha256`.
    pub sign_body: bool,
    /// Send the session token unsigned (added after signing).
    pub omit_session_token: bool,
}

/// A signature and the steps that made it, for tests and for debugging a client.
#[derive(Debug)]
pub struct Signed {
    /// Headers to add (header form), or query parameters to append (presigned form).
    pub params: Vec<(String, String)>,
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
}

/// Signs `req` in the `Authorization` header form: every header of the request is signed,
/// with `X-Amz-Date` (and the session token, and the payload hash, as the options say).
pub fn sign_headers(
    req: &HttpRequest<'_>,
    creds: &SigningCredentials<'_>,
    opts: &SigningOptions<'_>,
) -> Signed {
    let date = amz_date(opts.timestamp);
    let payload = sha256_hex(req.body);
    let mut added = vec![("X-Amz-Date".to_string(), date.clone())];
    if opts.sign_body {
        added.push(("x-amz-content-sha256".to_string(), payload.clone()));
    }
    let token = creds.session_token.map(|t| ("X-Amz-Security-Token".to_string(), t.to_string()));
    if let (Some(t), false) = (&token, opts.omit_session_token) {
        added.push(t.clone());
    }
    let headers: Vec<(String, String)> = req.headers.iter().cloned().chain(added.iter().cloned()).collect();
    let mut names: Vec<String> = headers.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    let scope =
        Scope { date: date[..8].to_string(), region: opts.region.into(), service: opts.service.into() };
    let signing = HttpRequest { headers: &headers, ..*req };
    let canonical = canonical_request(&signing, &names, &query_pairs(req.query), &payload, &opts.rules);
    let to_sign = string_to_sign(&date, &scope, &canonical);
    let signature = HEXLOWER
        .encode(hmac::sign(&signing_key(creds.secret_access_key, &scope), to_sign.as_bytes()).as_ref());
    if let (Some(t), true) = (token, opts.omit_session_token) {
        added.push(t);
    }
    added.push((
        "Authorization".to_string(),
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            creds.access_key_id,
            names.join(";")
        ),
    ));
    Signed { params: added, canonical_request: canonical, string_to_sign: to_sign, signature }
}

/// Presigns `req` for `expires_secs`: the query parameters to append (every header of the
/// request is signed; none is added).
pub fn presign(
    req: &HttpRequest<'_>,
    creds: &SigningCredentials<'_>,
    opts: &SigningOptions<'_>,
    expires_secs: i64,
) -> Signed {
    let date = amz_date(opts.timestamp);
    let scope =
        Scope { date: date[..8].to_string(), region: opts.region.into(), service: opts.service.into() };
    let mut names: Vec<String> = req.headers.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    let mut params = vec![
        ("X-Amz-Algorithm".to_string(), ALGORITHM.to_string()),
        ("X-Amz-Credential".to_string(), format!("{}/{scope}", creds.access_key_id)),
        ("X-Amz-Date".to_string(), date.clone()),
        ("X-Amz-SignedHeaders".to_string(), names.join(";")),
        ("X-Amz-Expires".to_string(), expires_secs.to_string()),
    ];
    let token = creds.session_token.map(|t| ("X-Amz-Security-Token".to_string(), t.to_string()));
    if let (Some(t), false) = (&token, opts.omit_session_token) {
        params.push(t.clone());
    }
    let mut query = query_pairs(req.query);
    query.extend(params.iter().cloned());
    let payload =
        if opts.rules.allow_unsigned_payload { UNSIGNED_PAYLOAD.to_string() } else { sha256_hex(req.body) };
    let canonical = canonical_request(req, &names, &query, &payload, &opts.rules);
    let to_sign = string_to_sign(&date, &scope, &canonical);
    let signature = HEXLOWER
        .encode(hmac::sign(&signing_key(creds.secret_access_key, &scope), to_sign.as_bytes()).as_ref());
    if let (Some(t), true) = (token, opts.omit_session_token) {
        params.push(t);
    }
    params.push(("X-Amz-Signature".to_string(), signature.clone()));
    Signed { params, canonical_request: canonical, string_to_sign: to_sign, signature }
}

/// Query parameters as a query string, encoded as SigV4 encodes them.
pub fn encode_query(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            format!("{}={}", percent_encode(k.as_bytes(), QUERY_SET), percent_encode(v.as_bytes(), QUERY_SET))
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests;
