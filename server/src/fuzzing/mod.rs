//! The fuzz targets' entry points (issue 14): one function per parser that an attacker's
//! bytes reach, which runs those bytes through the parser as the server does and asserts
//! what must hold for every input. A panic is a finding.
//!
//! `server/fuzz/` (cargo-fuzz, on the nightly toolchain) calls these functions; on stable,
//! the corpus replay test below calls them with every input saved under
//! `server/fuzz/corpus/<target>/`, so that a parser change that fails on a known input
//! fails CI. `scripts/fuzz` runs every target for a time budget.

pub mod seeds;

use std::sync::{Arc, OnceLock};

use data_encoding::BASE64;

use crate::{
    domain::{
        clock::Clock,
        credentials::{SessionClaims, SessionScope, open_session_token},
        evaluation::{self, Caller as PolicyCaller, Decision, Policies, RequestContext},
        imds_token::{self, Proof},
        keyring::{KeyRing, KeyRingPolicy, KeySnapshot, RingSnapshot},
        master_key::{MasterKey, MasterKeys},
        model::Secret,
        policy::{Effect, PolicyDocument, PolicyType, wildcard_match},
        sigv4::{self, Authorization, Expected, HttpRequest, Rules, SigningKeys},
    },
    grpc::framing::FrameCheck,
    http::form::{MAX_LIST_INDEX, Params},
    metadata::Caller,
    store::{MemoryStore, SealedStore, Store, Txn, transfer},
};

/// A fuzz target: its name (the file name under `server/fuzz/fuzz_targets/`) and its entry.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order `scripts/fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target { name: "policy_document", run: policy_document },
    Target { name: "sigv4_request", run: sigv4_request },
    Target { name: "session_token", run: session_token },
    Target { name: "imds_token", run: imds_token },
    Target { name: "query_params", run: query_params },
    Target { name: "grpc_framing", run: grpc_framing },
    Target { name: "export_file", run: export_file },
    Target { name: "imds_path", run: imds_path },
];

// === policy documents ===

/// A policy document of each type (identity, trust, resource): parsed, and where it parses,
/// evaluated against a few requests. What a document says of a request and what the engine
/// decides with it agree: a document that denies never lets the engine allow, and the engine
/// allows on an identity policy alone only where the document allows.
pub fn policy_document(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = evaluation::substitute(&text, &requests()[0]);
    if let Some((pattern, value)) = text.split_once('\n') {
        let _ = wildcard_match(pattern, value, false);
        let _ = wildcard_match(pattern, value, true);
    }
    for kind in [PolicyType::Identity, PolicyType::Trust, PolicyType::Resource] {
        let Ok(doc) = PolicyDocument::parse(&text, kind) else { continue };
        let doc = Arc::new(doc);
        for ctx in requests() {
            let said = evaluation::verdict(&doc, ctx);
            let identity = std::slice::from_ref(&doc);
            let alone =
                evaluation::decide(&Policies { identity, same_account: true, ..Policies::default() }, ctx);
            assert_eq!(alone == Decision::Allow, said == Some(Effect::Allow), "{ctx:?}");
            if said == Some(Effect::Deny) {
                for same_account in [true, false] {
                    let with_resource =
                        Policies { identity, resource: Some(&doc), same_account, ..Policies::default() };
                    assert_ne!(evaluation::decide(&with_resource, ctx), Decision::Allow, "{ctx:?}");
                }
            }
        }
    }
}

/// Requests that documents are evaluated against: a user's, a role session's and EC2's, with
/// the condition keys the server sets. Built once.
fn requests() -> &'static [RequestContext] {
    static REQUESTS: OnceLock<Vec<RequestContext>> = OnceLock::new();
    REQUESTS.get_or_init(build_requests)
}

fn build_requests() -> Vec<RequestContext> {
    let user = PolicyCaller::Aws {
        arn: "arn:aws:iam::123456789012:user/alice".into(),
        account: "123456789012".into(),
        role_arn: None,
    };
    let session = PolicyCaller::Aws {
        arn: "arn:aws:sts::123456789012:assumed-role/Web/i-0123456789abcdef0".into(),
        account: "123456789012".into(),
        role_arn: Some("arn:aws:iam::123456789012:role/Web".into()),
    };
    let mut list = vec![
        RequestContext::new("s3:GetObject", "arn:aws:s3:::bucket/key.txt").with_caller(user),
        RequestContext::new("iam:CreateRole", "arn:aws:iam::123456789012:role/Web").with_caller(session),
        RequestContext::new("sts:AssumeRole", "arn:aws:iam::123456789012:role/Web")
            .with_caller(PolicyCaller::Service("ec2.amazonaws.com".into())),
    ];
    for ctx in &mut list {
        ctx.set("aws:SourceIp", "10.0.0.1")
            .set("aws:CurrentTime", "2026-12-01T12:00:00Z")
            .set("aws:EpochTime", "1796126400")
            .set("aws:SecureTransport", "false")
            .set("aws:PrincipalTag/team", "web")
            .set("ec2:SourceInstanceARN", "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0");
        ctx.set_all("aws:TagKeys", vec!["team".into(), "env".into()]);
    }
    list
}

// === SigV4 ===

/// The secret of the SigV4 test suite's key (AKIDEXAMPLE), which its requests are signed
/// with: a suite request mutated by the fuzzer is verified against the key it was signed with.
pub const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// A request as the SigV4 suite writes one: a request line, headers (a line that starts
/// with a space or tab continues the header before it), a blank line, the body.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The request `text` holds, if it has a request line and well-formed headers.
    pub fn parse(text: &str) -> Option<Self> {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let (method, rest) = lines.next()?.split_once(' ')?;
        let target = rest.strip_suffix(" HTTP/1.1").unwrap_or(rest);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut()?;
                last.1.push('\n');
                last.1.push_str(line);
            } else {
                let (n, v) = line.split_once(':')?;
                headers.push((n.to_string(), v.to_string()));
            }
        }
        Some(Self {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers,
            body: body.trim_end_matches('\n').as_bytes().to_vec(),
        })
    }

    pub fn request(&self) -> HttpRequest<'_> {
        HttpRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// A request's SigV4 authorization: parsed (header or presigned form), checked against the
/// suite's scope at the request's own time, and verified with the suite's secret under
/// every service's rules. What the server shows of it (its `Debug`, its errors) does not
/// depend on the signature or the session token presented, and never holds the secret.
pub fn sigv4_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Some(raw) = RawRequest::parse(&text) else { return };
    let parsed = Authorization::parse(&raw.request());
    let seen = shown(&raw, &parsed);
    if !text.contains(SUITE_SECRET) {
        assert!(seen.iter().flatten().all(|s| !s.contains(SUITE_SECRET)), "the secret shown: {seen:?}");
    }
    let Some(other) = with_other_credentials(&raw) else { return };
    // Compared where the change reached only the signature and the token: where both parse
    // to the same key, scope, signed headers and time.
    let other_parsed = Authorization::parse(&other.request());
    let (Ok(a), Ok(b)) = (&parsed, &other_parsed) else { return };
    let parts = |x: &Authorization| {
        (
            x.access_key_id.clone(),
            x.scope.clone(),
            x.signed_headers.clone(),
            x.amz_date.clone(),
            x.expires_secs,
        )
    };
    if parts(a) != parts(b) {
        return;
    }
    let other_seen = shown(&other, &other_parsed);
    // A verification that succeeded fails with another signature: only what both refused
    // is compared.
    let verified = |x: &Option<String>| x.as_deref() == Some(VERIFIED);
    for (x, y) in seen.iter().zip(&other_seen).filter(|(x, y)| !verified(x) && !verified(y)) {
        assert_eq!(x, y, "the signature or the session token shows");
    }
}

const VERIFIED: &str = "verified";

/// What the server shows of a request's authorization: its `Debug` (None where it does not
/// parse), then under each service's rules the check's and the verification's error (or
/// that it verified).
fn shown(raw: &RawRequest, parsed: &crate::domain::Result<Authorization>) -> Vec<Option<String>> {
    let request = raw.request();
    let auth = match parsed {
        Ok(auth) => auth,
        Err(e) => return vec![Some(e.to_string())],
    };
    let mut shown = vec![Some(format!("{auth:?}"))];
    let _ = sigv4::parse_amz_date(&auth.amz_date);
    let keys = SigningKeys::new(16);
    for rules in [Rules::AWS, Rules::S3] {
        let expected = Expected { region: "us-east-1", service: "service" };
        shown.push(auth.check(expected, auth.timestamp, &rules).err().map(|e| e.to_string()));
        let verified = auth.verify(&request, SUITE_SECRET, &rules, &keys);
        shown.push(Some(verified.map_or_else(|e| e.to_string(), |()| VERIFIED.to_string())));
    }
    shown
}

/// The request with every lower-case hex digit of its signature and session token changed
/// (header or query form; other characters stay, so a signature that decoded still does),
/// if it presents either.
fn with_other_credentials(raw: &RawRequest) -> Option<RawRequest> {
    let flip = |value: &str| -> String {
        value
            .chars()
            .map(|c| match c {
                '0' => '1',
                '0'..='9' | 'a'..='f' => '0',
                other => other,
            })
            .collect()
    };
    let mut other = raw.clone();
    let mut changed = false;
    for (name, value) in &mut other.headers {
        if name.eq_ignore_ascii_case("authorization")
            && let Some((before, after)) = value.split_once("Signature=")
        {
            let end = after.find([',', ' ']).unwrap_or(after.len());
            *value = format!("{before}Signature={}{}", flip(&after[..end]), &after[end..]);
            changed = true;
        } else if name.eq_ignore_ascii_case("x-amz-security-token") {
            *value = flip(value);
            changed = true;
        }
    }
    let query: Vec<String> = other
        .query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k @ ("X-Amz-Signature" | "X-Amz-Security-Token"), v)) => {
                changed = true;
                format!("{k}={}", flip(v))
            }
            _ => pair.to_string(),
        })
        .collect();
    other.query = query.join("&");
    changed.then_some(other)
}

// === session and IMDS tokens ===

/// The key ring the token targets seal and sign under: fixed, so that the seeds stay valid.
pub fn fixed_ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let material: Vec<u8> = (0u8..64).map(|b| b.wrapping_mul(37).wrapping_add(11)).collect();
        let snapshot = RingSnapshot {
            active: 7,
            keys: vec![KeySnapshot {
                id: 7,
                created_at: 0,
                retired_at: None,
                material: Secret(BASE64.encode(&material)),
            }],
        };
        #[allow(clippy::expect_used)] // fixed, valid material
        KeyRing::restore(KeyRingPolicy::default(), &snapshot).expect("fixed key ring")
    })
}

/// When the token targets check tokens: before every seed expires.
pub const TOKEN_NOW: i64 = 1_796_126_400;

/// The claims the session token seeds are sealed with: an instance's session and an
/// AssumeRole session with a session policy and tags.
pub fn seed_claims() -> Vec<SessionClaims> {
    let mut instance = SessionClaims::for_instance(
        "123456789012",
        "arn:aws:iam::123456789012:role/Web",
        "AROAFUZZEXAMPLE00001",
        "i-0123456789abcdef0",
        TOKEN_NOW - 60,
        TOKEN_NOW + 3600,
    );
    instance.access_key_id = "ASIAFUZZEXAMPLE00001".into();
    instance.secret_access_key = Secret("fuzzsecret0000000000000000000000000000001".into());
    let mut assumed = instance.clone();
    assumed.access_key_id = "ASIAFUZZEXAMPLE00002".into();
    assumed.secret_access_key = Secret("fuzzsecret0000000000000000000000000000002".into());
    assumed.instance_id = None;
    assumed.session_name = "build-42".into();
    assumed.session = SessionScope {
        policy: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
            .into(),
        policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
        tags: vec![("team".into(), "web".into())],
    };
    vec![instance, assumed]
}

/// What identifies claims, for comparing them (the secret included).
fn claims_key(c: &SessionClaims) -> impl PartialEq + std::fmt::Debug + use<> {
    (
        c.access_key_id.clone(),
        c.secret_access_key.0.clone(),
        (c.account_id.clone(), c.role_arn.clone(), c.role_id.clone(), c.session_name.clone()),
        (c.instance_id.clone(), c.issued_at, c.expires_at),
        (c.session.policy.clone(), c.session.policy_arns.clone(), c.session.tags.clone()),
    )
}

/// A session token: it opens only to claims that were sealed (the seeds'), never to
/// anything the fuzzer made.
pub fn session_token(data: &[u8]) {
    let token = String::from_utf8_lossy(data);
    let Ok(Ok(claims)) = open_session_token(fixed_ring(), &token, TOKEN_NOW) else { return };
    let sealed: Vec<_> = seed_claims().iter().map(claims_key).collect();
    assert!(sealed.contains(&claims_key(&claims)), "opened to claims never sealed: {claims:?}");
}

/// The IMDS tokens the seeds hold: one per proof, for two instances.
pub fn seed_imds_tokens() -> &'static [String] {
    static TOKENS: OnceLock<Vec<String>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let mut tokens = Vec::new();
        for id in ["i-0123456789abcdef0", "i-0fedcba9876543210"] {
            for proof in [Proof::Claimed, Proof::SourceAddress, Proof::InstanceKey] {
                #[allow(clippy::expect_used)] // the fixed ring signs
                tokens.push(imds_token::issue(fixed_ring(), id, proof, TOKEN_NOW + 21_600).expect("signs"));
            }
        }
        tokens
    })
}

/// An IMDS token: it verifies only if it is, byte for byte, a token that was issued.
pub fn imds_token(data: &[u8]) {
    let token = String::from_utf8_lossy(data);
    #[allow(clippy::expect_used)] // the fixed ring's lock is never poisoned
    let verified = imds_token::verify(fixed_ring(), &token, TOKEN_NOW).expect("ring readable");
    if let Some(v) = verified {
        assert!(seed_imds_tokens().iter().any(|t| *t == token), "verified a token never issued: {v:?}");
    }
}

// === Query parameters ===

/// A Query or EC2 request's parameters (the first line is the query string, the rest the
/// form body), read as the doors read them: once the list bound holds, no list read from
/// them is longer than the bound, and every IAM action's request decodes or is refused.
pub fn query_params(data: &[u8]) {
    let (query, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (String::from_utf8_lossy(&data[..at]), &data[at + 1..]),
        None => (String::from_utf8_lossy(data), &[][..]),
    };
    let params = Params::parse(&query, body);
    let bounded = params.check_list_lengths().is_ok();
    // Each list name once, however many of its members the request carries.
    let names: std::collections::BTreeSet<&str> =
        params.input().map(|(k, _)| k.split('.').next().unwrap_or_default()).collect();
    for name in names {
        let lists = [params.members(name, None), params.indexed(name, None)];
        for list in lists {
            assert!(!bounded || list.iter().all(|(n, _)| *n <= MAX_LIST_INDEX), "a list past the bound");
        }
        let _ = params.indexed_values(name);
        let _ = params.tag_members(name);
        let _ = params.groups(&format!("{name}.member."));
    }
    let filters = params.filters();
    assert!(!bounded || filters.len() <= MAX_LIST_INDEX, "filters past the bound");
    crate::http::query::decode_requests(&params);
}

// === gRPC framing ===

/// A gRPC request body, fed to the framing check in chunks (the first byte sets their
/// size): accepted exactly when it is one uncompressed frame whose length is the rest of the
/// body, however it is cut.
pub fn grpc_framing(data: &[u8]) {
    let Some((&cut, body)) = data.split_first() else { return };
    let chunk = usize::from(cut % 16) + 1;
    let mut check = FrameCheck::new(None);
    let accepted = body.chunks(chunk).try_for_each(|c| check.feed(c)).and_then(|()| check.finish()).is_ok();
    let one_frame = body.len() >= 5
        && body[0] == 0
        && u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize == body.len() - 5;
    assert_eq!(accepted, one_frame, "chunks of {chunk}");
}

// === export files ===

/// The master key the export seeds are sealed with.
pub const EXPORT_MASTER_KEY: &str = "5a";

pub fn export_keys() -> MasterKeys {
    #[allow(clippy::expect_used)] // fixed, valid hex
    MasterKeys::new(MasterKey::parse(&EXPORT_MASTER_KEY.repeat(32)).expect("hex key"), vec![])
}

/// An empty in-memory store sealed under the export seeds' key.
pub fn empty_store() -> SealedStore {
    SealedStore::new(Arc::new(MemoryStore::default()), export_keys())
}

/// The runtime the async targets block on.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    #[allow(clippy::expect_used)] // a current-thread runtime builds
    RUNTIME
        .get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
}

/// An export file, imported into an empty store: whole or not at all. Refused, the store
/// stays empty; imported, the store holds as many entries as the import said, and its own
/// export imports again to the same count.
pub fn export_file(data: &[u8]) {
    runtime().block_on(async {
        let store = empty_store();
        let count =
            async |store: &SealedStore| store.list("", None, 100_000).await.map_or(usize::MAX, |l| l.len());
        match transfer::import(&store, &mut &data[..]).await {
            Err(_) => assert_eq!(count(&store).await, 0, "a refused import wrote"),
            Ok(n) => {
                assert_eq!(count(&store).await as u64, n);
                let mut again = Vec::new();
                #[allow(clippy::expect_used)] // memory store and a Vec do not fail
                transfer::export(&store, &mut again).await.expect("exports");
                let copy = empty_store();
                assert_eq!(transfer::import(&copy, &mut again.as_slice()).await.ok(), Some(n));
            }
        }
    });
}

/// A store with a few sealed entries, for the export seeds.
pub async fn seed_store() -> SealedStore {
    let store = empty_store();
    for (key, value) in [
        ("iam/role/Web", &br#"{"role_name":"Web"}"#[..]),
        ("iam/user/alice", br#"{"user_name":"alice"}"#),
        ("ec2/instance/i-0123456789abcdef0", b"{}"),
    ] {
        let _ = store.commit(Txn::new().put(key.to_string(), value.to_vec())).await;
    }
    store
}

// === IMDS paths ===

/// Two running instances with the same role, on one server, and how each can ask.
struct Fleet {
    app: crate::App,
    /// Instance A: its id and every way it can be identified.
    a: String,
    callers: Vec<Caller>,
    /// Instance B, whose identity must never reach A's callers.
    b: String,
}

fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| runtime().block_on(launch_fleet()))
}

#[allow(clippy::expect_used)] // a fresh in-memory server accepts these
async fn launch_fleet() -> Fleet {
    let mut config = crate::config::Config::default();
    config.storage.backend = "memory".into();
    let app = crate::App::new(config).await.expect("app");
    let (app, launched) = app.with_web_instances(2, "optional").await.expect("two instances of Web");
    let [(a, a_key), (b, b_key)] = <[_; 2]>::try_from(launched).map_err(|_| ()).expect("two");
    let (a, b) = (a.instance_id, b.instance_id);
    let token_a = app.imds.get_token(&a, &a_key, 21_600).await.expect("token");
    let token_b = app.imds.get_token(&b, &b_key, 21_600).await.expect("token");
    let (located_b, _) = app.imds.get_token_at(&b, Proof::SourceAddress, 21_600).await.expect("token");
    let callers = vec![
        Caller::Token(token_a.clone()),
        Caller::InstanceKey { instance_id: a.clone(), instance_key: a_key.clone() },
        Caller::Workload { instance_id: a.clone(), instance_key: a_key.clone() },
        Caller::Located { instance_id: a.clone(), proof: Proof::SourceAddress, token: None },
        Caller::Located { instance_id: a.clone(), proof: Proof::SourceAddress, token: Some(token_a) },
        // A's location with B's tokens, and A's key with B's id: refused, never B's.
        Caller::Located { instance_id: a.clone(), proof: Proof::SourceAddress, token: Some(token_b) },
        Caller::Located { instance_id: a.clone(), proof: Proof::InstanceKey, token: Some(located_b) },
        Caller::InstanceKey { instance_id: b.clone(), instance_key: a_key },
    ];
    Fleet { app, a, callers, b }
}

/// A metadata path asked for by one of instance A's callers (the first byte picks which):
/// whatever the path, the answer is A's or an error, never B's. Credentials in an answer
/// open to a session of instance A.
pub fn imds_path(data: &[u8]) {
    let fleet = fleet();
    let Some((&pick, path)) = data.split_first() else { return };
    let caller = &fleet.callers[usize::from(pick) % fleet.callers.len()];
    let path = String::from_utf8_lossy(path);
    let imds = &fleet.app.imds;
    runtime().block_on(async {
        let answers = [
            imds.metadata(caller, &path).await,
            imds.user_data(caller).await,
            imds.identity_document(caller).await,
            imds.credentials(caller, &path).await.map(|doc| crate::metadata::credentials_json(&doc, false)),
        ];
        for answer in answers.into_iter().flatten() {
            assert!(!answer.contains(&fleet.b), "B's identity answered to A: {answer}");
            if let Some(token) = json_token(&answer) {
                let claims =
                    open_session_token(&fleet.app.key_ring, &token, fleet.app.clock.now().unix_timestamp());
                let instance = claims.ok().and_then(Result::ok).and_then(|c| c.instance_id);
                assert_eq!(instance.as_deref(), Some(fleet.a.as_str()), "credentials not A's");
            }
        }
    });
}

/// The `Token` of a credentials document.
fn json_token(answer: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(answer).ok()?;
    value.get("Token")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests;
