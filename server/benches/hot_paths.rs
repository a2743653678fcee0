//! Micro-benchmarks of the functions on the credential path: `cargo bench -p rolecall-server`.
//!
//! - session token seal (issue) and open (verify);
//! - IMDS token MAC and verify;
//! - a credential cache hit;
//! - a whole credential issuance (seal + schedule), as a cache miss pays it.

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
        b.iter(|| imds_token::issue(&ring, black_box("i-0123456789abcdef0"), 21_600))
    });
    let token = imds_token::issue(&ring, "i-0123456789abcdef0", 21_600).unwrap();
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

criterion_group!(benches, session_tokens, imds_tokens, cache_hit);
criterion_main!(benches);
