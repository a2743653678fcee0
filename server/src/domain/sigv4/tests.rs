//! The SigV4 known-answer suite (tests/conformance/sigv4, AWS's own cases), signed and
//! verified in both forms, and the negative cases derived from each.

use std::path::{Path, PathBuf};

use super::*;

/// The suite as vendored in this repository (CI has nothing else).
fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/sigv4/v4")
}

struct Case {
    name: String,
    dir: PathBuf,
    secret: String,
    access_key_id: String,
    token: Option<String>,
    region: String,
    service: String,
    timestamp: i64,
    expires: i64,
    rules: Rules,
    sign_body: bool,
    omit_session_token: bool,
}

impl Case {
    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_else(|e| panic!("{}/{name}: {e}", self.name))
    }

    fn opts(&self) -> SigningOptions<'_> {
        SigningOptions {
            region: &self.region,
            service: &self.service,
            timestamp: self.timestamp,
            rules: self.rules,
            sign_body: self.sign_body,
            omit_session_token: self.omit_session_token,
        }
    }

    fn creds(&self) -> SigningCredentials<'_> {
        SigningCredentials {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret,
            session_token: self.token.as_deref(),
        }
    }

    fn expected(&self) -> Expected<'_> {
        Expected { region: &self.region, service: &self.service }
    }
}

/// Every case that has a context.json (two older ones have none and are not in the suite's
/// contract).
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(suite())
        .expect("the vendored SigV4 suite at tests/conformance/sigv4/v4")
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let Ok(context) = std::fs::read_to_string(dir.join("context.json")) else { continue };
        let c: serde_json::Value = serde_json::from_str(&context).unwrap();
        let timestamp = time::OffsetDateTime::parse(
            c["timestamp"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
        .unix_timestamp();
        out.push(Case {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            secret: c["credentials"]["secret_access_key"].as_str().unwrap().into(),
            access_key_id: c["credentials"]["access_key_id"].as_str().unwrap().into(),
            token: c["credentials"]["token"].as_str().map(str::to_string),
            region: c["region"].as_str().unwrap().into(),
            service: c["service"].as_str().unwrap().into(),
            timestamp,
            expires: c["expiration_in_seconds"].as_i64().unwrap_or(3600),
            // The suite writes paths half-decoded (a raw space, raw UTF-8, or %20), and its
            // answers escape each once.
            rules: Rules {
                normalize_path: c["normalize"].as_bool().unwrap_or(true),
                path_encoding: PathEncoding::Once,
                ..Rules::AWS
            },
            sign_body: c["sign_body"].as_bool().unwrap_or(false),
            omit_session_token: c["omit_session_token"].as_bool().unwrap_or(false),
            dir,
        });
    }
    assert!(out.len() >= 38, "the suite has 38 cases with a context, found {}", out.len());
    out
}

/// A raw request as the suite writes it (the SigV4 fuzz target reads its seeds the same way).
type Raw = crate::fuzzing::RawRequest;

fn trimmed(s: String) -> String {
    s.trim_end_matches('\n').to_string()
}

#[test]
fn the_vendored_suite_is_the_shared_one() {
    // Where the shared conformance tree sits beside the repository, the copy must not drift.
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/sigv4/v4");
    let Ok(entries) = std::fs::read_dir(&shared) else { return };
    for entry in entries {
        let dir = entry.unwrap().path();
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let ours = suite().join(dir.file_name().unwrap()).join(file.file_name().unwrap());
            assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(&ours).unwrap(), "{}", ours.display());
        }
    }
}

#[test]
fn signer_matches_every_known_answer() {
    for case in cases() {
        let raw = Raw::parse(&case.file("request.txt")).unwrap();
        let signed = sign_headers(&raw.request(), &case.creds(), &case.opts());
        assert_eq!(
            signed.canonical_request,
            trimmed(case.file("header-canonical-request.txt")),
            "{}",
            case.name
        );
        assert_eq!(signed.string_to_sign, trimmed(case.file("header-string-to-sign.txt")), "{}", case.name);
        assert_eq!(signed.signature, trimmed(case.file("header-signature.txt")), "{}", case.name);
        let presigned = presign(&raw.request(), &case.creds(), &case.opts(), case.expires);
        assert_eq!(
            presigned.canonical_request,
            trimmed(case.file("query-canonical-request.txt")),
            "{}",
            case.name
        );
        assert_eq!(presigned.string_to_sign, trimmed(case.file("query-string-to-sign.txt")), "{}", case.name);
        assert_eq!(presigned.signature, trimmed(case.file("query-signature.txt")), "{}", case.name);
    }
}

/// Parses, checks and verifies `raw` as the server would at `now`.
fn verify_at(case: &Case, raw: &Raw, now: i64) -> Result<Authorization> {
    let req = raw.request();
    let auth = Authorization::parse(&req)?;
    auth.check(case.expected(), now, &case.rules)?;
    auth.verify(&req, &case.secret, &case.rules, &SigningKeys::default())?;
    Ok(auth)
}

fn signed_requests(case: &Case) -> [(Form, Raw); 2] {
    [
        (Form::Header, Raw::parse(&case.file("header-signed-request.txt")).unwrap()),
        (Form::Presigned, Raw::parse(&case.file("query-signed-request.txt")).unwrap()),
    ]
}

#[test]
fn verifier_accepts_every_signed_request() {
    for case in cases() {
        for (form, raw) in signed_requests(&case) {
            let auth = verify_at(&case, &raw, case.timestamp)
                .unwrap_or_else(|e| panic!("{} {form:?}: {e}", case.name));
            assert_eq!(auth.form, form);
            assert_eq!(auth.access_key_id, case.access_key_id);
            assert_eq!(auth.session_token, case.token, "{}", case.name);
        }
    }
}

fn assert_refused(result: Result<Authorization>, code: ErrorCode, what: &str) {
    match result {
        Err(e) => assert_eq!(e.code, code, "{what}: {e}"),
        Ok(_) => panic!("{what}: accepted"),
    }
}

#[test]
fn any_byte_of_the_signature_changed_is_refused() {
    let keys = SigningKeys::default();
    for case in cases() {
        for (form, raw) in signed_requests(&case) {
            let req = raw.request();
            let auth = Authorization::parse(&req).unwrap();
            for i in 0..auth.signature.len() {
                let mut bad = auth.clone();
                bad.signature[i] ^= 0x01;
                let e = bad.verify(&req, &case.secret, &case.rules, &keys).unwrap_err();
                assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch, "{} {form:?} byte {i}", case.name);
            }
            // The wrong secret, too.
            let e = auth.verify(&req, "not-the-secret", &case.rules, &keys).unwrap_err();
            assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch);
        }
    }
}

#[test]
fn a_changed_signed_header_or_body_is_refused() {
    for case in cases() {
        for (form, raw) in signed_requests(&case) {
            let auth = Authorization::parse(&raw.request()).unwrap();
            for name in &auth.signed_headers {
                let mut bad = Raw::parse(&case.file(file_of(form))).unwrap();
                for (n, v) in bad.headers.iter_mut().filter(|(n, _)| n.eq_ignore_ascii_case(name)).take(1) {
                    *v = if n.eq_ignore_ascii_case("x-amz-date") {
                        amz_date(case.timestamp + 1)
                    } else {
                        format!("{v}x")
                    };
                }
                let what = format!("{} {form:?} header {name}", case.name);
                assert!(verify_at(&case, &bad, case.timestamp).is_err(), "{what}: accepted");
            }
            let mut bad = Raw::parse(&case.file(file_of(form))).unwrap();
            bad.body.push(b'x');
            let what = format!("{} {form:?} body", case.name);
            assert_refused(verify_at(&case, &bad, case.timestamp), ErrorCode::SignatureDoesNotMatch, &what);
        }
    }
}

fn file_of(form: Form) -> &'static str {
    match form {
        Form::Header => "header-signed-request.txt",
        Form::Presigned => "query-signed-request.txt",
    }
}

#[test]
fn a_changed_scope_is_refused_by_the_check_and_by_the_signature() {
    let keys = SigningKeys::default();
    for case in cases() {
        for (form, raw) in signed_requests(&case) {
            let req = raw.request();
            let auth = Authorization::parse(&req).unwrap();
            let changes: [fn(&mut Scope); 3] = [
                |s| s.region = "us-west-2".into(),
                |s| s.service = "sts".into(),
                |s| s.date = "20150831".into(),
            ];
            for change in changes {
                let mut bad = auth.clone();
                change(&mut bad.scope);
                let what = format!("{} {form:?} scope {}", case.name, bad.scope);
                let e = bad.check(case.expected(), case.timestamp, &case.rules).unwrap_err();
                assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch, "{what}");
                // Even where the scope is what the server expects, the signature does not cover it.
                let e = bad.verify(&req, &case.secret, &case.rules, &keys).unwrap_err();
                assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch, "{what}");
            }
        }
    }
}

#[test]
fn the_date_is_checked_both_ways() {
    for case in cases() {
        let skew = case.rules.max_skew_secs;
        for (form, raw) in signed_requests(&case) {
            let what = format!("{} {form:?}", case.name);
            // Signed up to the skew in our future is accepted; beyond it is not.
            verify_at(&case, &raw, case.timestamp - skew).unwrap();
            let e = verify_at(&case, &raw, case.timestamp - skew - 1).unwrap_err();
            assert!(e.message.starts_with("Signature not yet current"), "{what}: {e}");
            match form {
                Form::Header => {
                    verify_at(&case, &raw, case.timestamp + skew).unwrap();
                    let e = verify_at(&case, &raw, case.timestamp + skew + 1).unwrap_err();
                    assert_eq!(e.code, ErrorCode::SignatureDoesNotMatch, "{what}");
                    assert!(
                        e.message.starts_with("Signature expired: 20150830T123600Z is now earlier than"),
                        "{e}"
                    );
                }
                Form::Presigned => {
                    verify_at(&case, &raw, case.timestamp + case.expires).unwrap();
                    let e = verify_at(&case, &raw, case.timestamp + case.expires + 1).unwrap_err();
                    assert_eq!(
                        (e.code, e.message.as_str()),
                        (ErrorCode::AccessDenied, "Request has expired")
                    );
                }
            }
        }
    }
}

#[test]
fn malformed_authorizations_get_aws_codes() {
    let headers = |auth: &str| {
        vec![
            ("Host".to_string(), "example.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
            ("Authorization".to_string(), auth.to_string()),
        ]
    };
    let parse = |headers: &[(String, String)], query: &str| {
        Authorization::parse(&HttpRequest { method: "GET", path: "/", query, headers, body: b"" })
    };
    let code = |r: Result<Authorization>| r.unwrap_err().code;
    assert_eq!(code(parse(&[], "")), ErrorCode::MissingAuthenticationToken);
    let e = parse(&headers("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request"), "")
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::IncompleteSignature);
    assert!(
        e.message.contains("requires 'Signature'") && e.message.contains("requires 'SignedHeaders'"),
        "{e}"
    );
    assert_eq!(code(parse(&headers("AWS4-HMAC-SHA512 Credential=x"), "")), ErrorCode::IncompleteSignature);
    let short = "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1, SignedHeaders=host, Signature=00";
    assert_eq!(code(parse(&headers(short), "")), ErrorCode::IncompleteSignature);
    let odd = "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=host, Signature=zz";
    assert_eq!(code(parse(&headers(odd), "")), ErrorCode::SignatureDoesNotMatch);
    let long = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fservice%2Faws4_request\
                &X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=604801&X-Amz-Signature=00";
    assert_eq!(code(parse(&[], long)), ErrorCode::AuthorizationQueryParametersError);
    let missing = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20150830T123600Z";
    let e = parse(&[], missing).unwrap_err();
    assert!(
        e.message.contains("missing X-Amz-Credential, X-Amz-Signature, X-Amz-SignedHeaders, X-Amz-Expires"),
        "{e}"
    );
    // An HTTP Date header stands in for X-Amz-Date.
    let dated = vec![
        ("Host".to_string(), "h".to_string()),
        ("Date".to_string(), "Sun, 30 Aug 2015 12:36:00 GMT".to_string()),
        (
            "Authorization".to_string(),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=date;host, Signature={}",
                "0".repeat(64)
            ),
        ),
    ];
    assert_eq!(parse(&dated, "").unwrap().amz_date, "20150830T123600Z");
}

#[test]
fn unsigned_payloads_are_for_s3_only() {
    let creds = SigningCredentials {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: crate::fuzzing::SUITE_SECRET,
        session_token: None,
    };
    let headers = vec![
        ("Host".to_string(), "s3.amazonaws.com".to_string()),
        ("x-amz-content-sha256".to_string(), UNSIGNED_PAYLOAD.to_string()),
    ];
    let req = HttpRequest { method: "PUT", path: "/bucket", query: "", headers: &headers, body: b"data" };
    for rules in [Rules::S3, Rules::AWS] {
        let opts = SigningOptions {
            region: "us-east-1",
            service: "s3",
            timestamp: 1_440_938_160,
            rules,
            sign_body: false,
            omit_session_token: false,
        };
        // Sign as S3 clients do: the literal UNSIGNED-PAYLOAD as the payload hash.
        let mut signed_headers = headers.clone();
        let date = amz_date(opts.timestamp);
        signed_headers.push(("X-Amz-Date".into(), date.clone()));
        let mut names: Vec<String> = signed_headers.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
        names.sort();
        let scope = Scope { date: date[..8].into(), region: "us-east-1".into(), service: "s3".into() };
        let signing = HttpRequest { headers: &signed_headers, ..req };
        let canonical = canonical_request(&signing, &names, &[], UNSIGNED_PAYLOAD, &rules);
        let sig = HEXLOWER.encode(
            hmac::sign(
                &signing_key(creds.secret_access_key, &scope),
                string_to_sign(&date, &scope, &canonical).as_bytes(),
            )
            .as_ref(),
        );
        signed_headers.push((
            "Authorization".into(),
            format!(
                "{ALGORITHM} Credential=AKIDEXAMPLE/{scope}, SignedHeaders={}, Signature={sig}",
                names.join(";")
            ),
        ));
        let req = HttpRequest { headers: &signed_headers, ..req };
        let auth = Authorization::parse(&req).unwrap();
        let result = auth.verify(&req, creds.secret_access_key, &rules, &SigningKeys::default());
        assert_eq!(result.is_ok(), rules.allow_unsigned_payload, "{rules:?}");
    }
}

#[test]
fn non_s3_services_escape_an_escaped_path_twice() {
    let double = canonical_uri("/a%20b/./c", &Rules::AWS);
    assert_eq!(double, "/a%2520b/c");
    assert_eq!(canonical_uri("/a%20b/./c", &Rules::S3), "/a%20b/./c");
    assert_eq!(canonical_uri("", &Rules::AWS), "/");
    assert_eq!(normalize("/a/b/.."), "/a/");
    assert_eq!(normalize("/a/b/."), "/a/b/");
    assert_eq!(normalize("/../.."), "/");
}

#[test]
fn signing_keys_are_cached_per_key_and_scope() {
    let keys = SigningKeys::new(10);
    let scope = Scope { date: "20150830".into(), region: "us-east-1".into(), service: "iam".into() };
    let a = keys.get("AKID", "secret", &scope);
    let b = keys.get("AKID", "secret", &scope);
    assert!(Arc::ptr_eq(&a, &b));
    assert!(!Arc::ptr_eq(&a, &keys.get("AKID", "another secret", &scope)));
    let other = Scope { date: "20150831".into(), ..scope };
    assert!(!Arc::ptr_eq(&a, &keys.get("AKID", "secret", &other)));
}

#[test]
fn debug_output_hides_the_session_token() {
    let case = cases().into_iter().find(|c| c.name == "get-vanilla-with-session-token").unwrap();
    let raw = Raw::parse(&case.file("header-signed-request.txt")).unwrap();
    let auth = Authorization::parse(&raw.request()).unwrap();
    let shown = format!("{auth:?}");
    assert!(!shown.contains(case.token.as_deref().unwrap()), "{shown}");
}

/// Issue 14: sign-then-verify round-trips for arbitrary requests, and any change to a signed
/// part (method, path, query, a signed header, the body, the date) is refused.
mod props {
    use proptest::prelude::*;

    use super::*;

    use crate::fuzzing::SUITE_SECRET as SECRET;
    const NOW: i64 = 1_440_938_160;

    fn parts() -> impl Strategy<Value = Raw> {
        (
            prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE")],
            proptest::collection::vec("[a-zA-Z0-9._~-]{1,8}", 0..4),
            proptest::collection::vec(("[a-zA-Z0-9]{1,6}", "[a-zA-Z0-9]{0,6}"), 0..4),
            proptest::collection::vec("[a-zA-Z0-9 ]{1,12}", 0..3),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(method, segments, query, extra, body)| {
                let mut headers = vec![("Host".to_string(), "example.amazonaws.com".to_string())];
                for (n, value) in extra.into_iter().enumerate() {
                    headers.push((format!("X-Custom-{n}"), value.trim().to_string()));
                }
                Raw {
                    method: method.to_string(),
                    path: format!("/{}", segments.join("/")),
                    query: query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"),
                    headers,
                    body,
                }
            })
    }

    /// `parts` signed in the header form (the payload hash signed too).
    fn signed(parts: &Raw) -> Raw {
        let creds = SigningCredentials {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: SECRET,
            session_token: None,
        };
        let opts = SigningOptions {
            region: "us-east-1",
            service: "iam",
            timestamp: NOW,
            rules: Rules::AWS,
            sign_body: true,
            omit_session_token: false,
        };
        let signature = sign_headers(&parts.request(), &creds, &opts);
        let mut out = parts.clone();
        out.headers.extend(signature.params);
        out
    }

    fn verified(parts: &Raw) -> Result<()> {
        verified_in(parts, "us-east-1")
    }

    /// Checked as a server in `region` checks it, then verified.
    fn verified_in(parts: &Raw, region: &str) -> Result<()> {
        let req = parts.request();
        let auth = Authorization::parse(&req)?;
        auth.check(Expected { region, service: "iam" }, NOW, &Rules::AWS)?;
        auth.verify(&req, SECRET, &Rules::AWS, &SigningKeys::default())
    }

    proptest! {
        #[test]
        fn what_is_signed_verifies_and_any_change_to_it_is_refused(parts in parts(), change in 0..8usize) {
            let good = signed(&parts);
            prop_assert!(verified(&good).is_ok(), "{:?}", verified(&good).err().map(|e| e.message));
            let mut bad = good.clone();
            match change {
                0 => bad.method = if bad.method == "GET" { "POST".into() } else { "GET".into() },
                1 => bad.path.push_str(if bad.path.ends_with('/') { "x" } else { "/x" }),
                2 => bad.query = if bad.query.is_empty() { "z=1".into() } else { format!("{}&z=1", bad.query) },
                3 => bad.headers[0].1.push('x'),
                4 => bad.body.push(b'x'),
                // The scope, moved to another region, and checked by a server in that region:
                // only the signature can refuse it.
                5 => {
                    let auth = bad.headers.iter_mut().find(|(n, _)| n == "Authorization").unwrap();
                    auth.1 = auth.1.replace("/us-east-1/iam/", "/us-west-2/iam/");
                    let refused = verified_in(&bad, "us-west-2");
                    prop_assert!(refused.is_err(), "a changed scope accepted: {:?}", bad);
                }
                // A signed header left out of SignedHeaders.
                6 if good.headers.iter().any(|(n, _)| n == "X-Custom-0") => {
                    let auth = bad.headers.iter_mut().find(|(n, _)| n == "Authorization").unwrap();
                    auth.1 = auth.1.replace(";x-custom-0", "");
                }
                6 => bad.body.push(b'y'),
                _ => {
                    let date = bad.headers.iter_mut().find(|(n, _)| n == "X-Amz-Date").unwrap();
                    date.1 = amz_date(NOW + 1);
                }
            }
            let refused = verified(&bad);
            prop_assert!(refused.is_err(), "change {} accepted: {:?}", change, bad);
        }
    }
}
