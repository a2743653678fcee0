//! Micro-benchmarks of the functions on the credential path: `cargo bench -p rolecall-server`.
//!
//! - session token seal (issue) and open (verify);
//! - IMDS token MAC and verify;
//! - a credential cache hit;
//! - a whole credential issuance (seal + schedule), as a cache miss pays it;
//! - a SigV4 verification (header form, signing key cached), and signing;
//! - a policy decision (an AWS managed policy and a boundary, with conditions), and one on
//!   the largest AWS managed policy (ReadOnlyAccess);
//! - the first use of the shipped AWS managed policies (decompress and read the policies and
//!   their default documents);
//! - the Query door's list parameters, which it reads before authorizing: 10,000 tags and
//!   1,000 filters of 10 values.

#![allow(clippy::unwrap_used)]

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use rolecall_server::{
    cache::{CredentialCache, CredentialKey, IssuedCredentials},
    domain::{
        credentials::{RotationSchedule, SessionClaims, TemporaryCredentials, open_session_token},
        imds_token,
        keyring::{KeyRing, KeyRingPolicy},
    },
};

fn claims(now: i64) -> SessionClaims {
    SessionClaims::for_instance(
        "123456789012",
        "arn:aws:iam::123456789012:role/FleetRoleA",
        "AROAABCDEFGHIJKLMNOPQ",
        "i-0123456789abcdef0",
        now,
        now + 21_600,
    )
}

fn session_tokens(c: &mut Criterion) {
    let ring = KeyRing::new(KeyRingPolicy::default(), 0);
    c.bench_function("session token seal (issue credentials)", |b| {
        b.iter(|| TemporaryCredentials::issue(&ring, black_box(claims(1_000))))
    });
    let creds = TemporaryCredentials::issue(&ring, claims(1_000)).unwrap();
    c.bench_function("session token open (verify credentials)", |b| {
        b.iter(|| open_session_token(&ring, black_box(&creds.session_token.0), 2_000))
    });
    let schedule = RotationSchedule::default();
    c.bench_function("credential issuance (seal + rotation point)", |b| {
        b.iter(|| {
            let creds = TemporaryCredentials::issue(&ring, claims(1_000)).unwrap();
            let rotate_at = schedule.rotate_at(creds.issued_at, creds.expires_at, "i-0123456789abcdef0");
            IssuedCredentials::new(creds, rotate_at)
        })
    });
}

fn imds_tokens(c: &mut Criterion) {
    let ring = KeyRing::new(KeyRingPolicy::default(), 0);
    c.bench_function("IMDS token MAC (issue)", |b| {
        b.iter(|| {
            imds_token::issue(&ring, black_box("i-0123456789abcdef0"), imds_token::Proof::InstanceKey, 21_600)
        })
    });
    let token =
        imds_token::issue(&ring, "i-0123456789abcdef0", imds_token::Proof::InstanceKey, 21_600).unwrap();
    c.bench_function("IMDS token verify", |b| b.iter(|| imds_token::verify(&ring, black_box(&token), 100)));
}

fn cache_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let ring = KeyRing::new(KeyRingPolicy::default(), 0);
    let cache = CredentialCache::new(100_000, Duration::from_secs(21_600));
    let key =
        CredentialKey::new("i-0123456789abcdef0", "iip-assoc-0123456789abcdef0", "AROAABCDEFGHIJKLMNOPQ");
    let issue = || async {
        let credentials = TemporaryCredentials::issue(&ring, claims(1_000))?;
        Ok(IssuedCredentials::new(credentials, 5_000))
    };
    rt.block_on(cache.get_or_issue(&key, 1_000, i64::MIN, issue)).unwrap();
    c.bench_function("credential cache hit", |b| {
        b.to_async(&rt).iter(|| cache.get_or_issue(black_box(&key), 2_000, i64::MIN, issue))
    });
    // Every call finds the entry past its rotation point and issues again (a refresh).
    let mut now = 10_000;
    let ring = &ring;
    c.bench_function("credential cache re-issue (stale entry)", |b| {
        b.to_async(&rt).iter(|| {
            now += 10_000;
            let at = now;
            cache.get_or_issue(black_box(&key), at, i64::MIN, move || async move {
                let credentials = TemporaryCredentials::issue(ring, claims(at))?;
                Ok(IssuedCredentials::new(credentials, at + 1))
            })
        })
    });
}

fn signed_requests(c: &mut Criterion) {
    use rolecall_server::domain::sigv4::{
        self, Authorization, Expected, HttpRequest, Rules, SigningCredentials, SigningKeys, SigningOptions,
    };
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let headers = vec![
        ("host".to_string(), "127.0.0.1:50051".to_string()),
        ("content-type".to_string(), "application/grpc".to_string()),
    ];
    let body = [0u8; 64];
    let req = HttpRequest {
        method: "POST",
        path: "/rolecall.v1.Iam/ListUsers",
        query: "",
        headers: &headers,
        body: &body,
    };
    let creds = SigningCredentials {
        access_key_id: "AKIAEXAMPLEEXAMPLE12",
        secret_access_key: secret,
        session_token: None,
    };
    let opts = SigningOptions {
        region: "us-east-1",
        service: "iam",
        timestamp: 1_795_000_000,
        rules: Rules::AWS,
        sign_body: false,
        omit_session_token: false,
    };
    c.bench_function("sigv4 sign (header form)", |b| {
        b.iter(|| sigv4::sign_headers(black_box(&req), &creds, &opts))
    });
    let mut signed_headers = headers.clone();
    signed_headers.extend(sigv4::sign_headers(&req, &creds, &opts).params);
    let signed = HttpRequest { headers: &signed_headers, ..req };
    let keys = SigningKeys::default();
    let expected = Expected { region: "us-east-1", service: "iam" };
    c.bench_function("sigv4 verify (header form, key cached)", |b| {
        b.iter(|| {
            let auth = Authorization::parse(black_box(&signed)).unwrap();
            auth.check(expected, 1_795_000_010, &Rules::AWS).unwrap();
            auth.verify(&signed, secret, &Rules::AWS, &keys).unwrap();
        })
    });
}

fn policy_decisions(c: &mut Criterion) {
    use std::sync::Arc;

    use rolecall_server::domain::{
        evaluation::{Decision, Policies, RequestContext, decide},
        managed,
        policy::{PolicyDocument, PolicyType},
    };
    let parse = |text: &str| Arc::new(PolicyDocument::parse(text, PolicyType::Identity).unwrap());
    let read_only = parse(managed::by_arn("arn:aws:iam::aws:policy/IAMReadOnlyAccess").unwrap().document);
    let guard = parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*",
        "Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-01-01T00:00:00Z"}}},
        {"Effect":"Deny","Action":"iam:*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","127.0.0.0/8"]}}}]}"#,
    );
    let identity = [read_only.clone(), guard];
    let mut ctx = RequestContext::new("iam:ListUsers", "arn:aws:iam::123456789012:user/");
    ctx.set("aws:TokenIssueTime", "2026-11-22T12:00:00Z").set("aws:SourceIp", "127.0.0.1");
    let policies = Policies {
        identity: &identity,
        boundary: Some(&read_only),
        same_account: true,
        ..Policies::default()
    };
    assert_eq!(decide(&policies, &ctx), Decision::Allow);
    c.bench_function("policy decision (managed policy, boundary, conditions)", |b| {
        b.iter(|| decide(black_box(&policies), black_box(&ctx)))
    });
    // The largest AWS managed policy: an action it holds, and one it does not (every
    // pattern weighed).
    let everything = [parse(managed::by_arn("arn:aws:iam::aws:policy/ReadOnlyAccess").unwrap().document)];
    let large = Policies { identity: &everything, same_account: true, ..Policies::default() };
    for (action, decision) in [("s3:ListBucket", Decision::Allow), ("iam:CreateUser", Decision::ImplicitDeny)]
    {
        let ctx = RequestContext::new(action, "arn:aws:s3:::bucket");
        assert_eq!(decide(&large, &ctx), decision);
        c.bench_function(&format!("policy decision (ReadOnlyAccess, {action})"), |b| {
            b.iter(|| decide(black_box(&large), black_box(&ctx)))
        });
    }
}

fn managed_policies(c: &mut Criterion) {
    let mut group = c.benchmark_group("AWS managed policies");
    group.sample_size(10);
    group.bench_function("first use: decompress and read 1,594 policies and their default documents", |b| {
        b.iter(rolecall_server::domain::managed::first_use_cost)
    });
    group.finish();
}

fn query_lists(c: &mut Criterion) {
    use rolecall_server::http::form::Params;
    let tags: String =
        (1..=10_000).map(|n| format!("Tags.member.{n}.Key=k{n}&Tags.member.{n}.Value=v{n}&")).collect();
    let filters: String = (1..=1_000)
        .map(|n| {
            let values: String = (1..=10).map(|m| format!("Filter.{n}.Value.{m}=v{m}&")).collect();
            format!("Filter.{n}.Name=instance-id&{values}")
        })
        .collect();
    c.bench_function("query lists: 10,000 tags", |b| {
        b.iter(|| Params::parse("", black_box(tags.as_bytes())).tag_members("Tags").len())
    });
    c.bench_function("query lists: 1,000 filters of 10 values", |b| {
        b.iter(|| Params::parse("", black_box(filters.as_bytes())).filters().len())
    });
}

criterion_group!(
    benches,
    session_tokens,
    imds_tokens,
    cache_hit,
    signed_requests,
    policy_decisions,
    managed_policies,
    query_lists
);
criterion_main!(benches);
