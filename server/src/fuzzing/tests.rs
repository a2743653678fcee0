//! The corpus replay (every input saved for a target, through its entry point, on stable)
//! and the seeds checked against the invariants they are written for.

use std::path::{Path, PathBuf};

use super::*;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every input saved in a target's corpus, and every regression input, runs through the
/// target's entry point without a finding. Each target has a corpus.
#[test]
fn every_saved_input_replays() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for target in TARGETS {
        let mut inputs = 0;
        for dir in [fuzz.join("corpus").join(target.name), fuzz.join("regressions").join(target.name)] {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| (target.run)(&bytes));
                assert!(outcome.is_ok(), "{} fails on {}", target.name, path.display());
                inputs += 1;
            }
        }
        assert!(inputs > 0, "{} has no saved corpus under {}", target.name, fuzz.display());
    }
}

/// The seeds are what they say: valid tokens open, the export imports, the suite parses.
#[test]
fn the_seeds_are_valid_inputs() {
    let seeds = seeds::all(&repository()).unwrap();
    let of = |name: &str| seeds.iter().find(|(n, _)| *n == name).map(|(_, s)| s.clone()).unwrap();
    for token in of("session_token") {
        let token = String::from_utf8(token).unwrap();
        assert!(matches!(open_session_token(fixed_ring(), &token, TOKEN_NOW), Ok(Ok(_))));
    }
    for token in of("imds_token") {
        let token = String::from_utf8(token).unwrap();
        assert!(imds_token::verify(fixed_ring(), &token, TOKEN_NOW).unwrap().is_some());
    }
    let export = &of("export_file")[0];
    let store = empty_store();
    assert_eq!(runtime().block_on(transfer::import(&store, &mut export.as_slice())).ok(), Some(3));
    let suite = of("sigv4_request");
    assert!(suite.len() > 50, "{}", suite.len());
    assert!(suite.iter().all(|r| RawRequest::parse(&String::from_utf8_lossy(r)).is_some()));
    let policies = of("policy_document");
    let parsed = policies
        .iter()
        .filter(|p| {
            let text = String::from_utf8_lossy(p);
            [PolicyType::Identity, PolicyType::Trust, PolicyType::Resource]
                .into_iter()
                .any(|kind| PolicyDocument::parse(&text, kind).is_ok())
        })
        .count();
    assert!(parsed > 20, "{parsed} of {} policies parse", policies.len());
    for target in TARGETS {
        for input in of(target.name) {
            (target.run)(&input);
        }
    }
}

/// The invariants catch what they are there for: a frame check that accepted two frames, a
/// token that verified unissued, a store written by a refused import would each fail.
#[test]
fn the_targets_refuse_what_they_should() {
    // Two frames: refused, as the model says.
    grpc_framing(&[1, 0, 0, 0, 0, 1, b'a', 0, 0, 0, 0, 0]);
    // An issued token's changed byte: not verified.
    let mut token = seed_imds_tokens()[0].clone().into_bytes();
    token[10] ^= 1;
    imds_token(&token);
    // The credentials answered to A are A's.
    imds_path(b"\x00iam/security-credentials/Web");
    imds_path(b"\x05iam/security-credentials/Web");
}

/// Writes the seeds into each target's corpus: `scripts/fuzz --seed` runs it.
#[test]
#[ignore = "writes into server/fuzz/corpus: scripts/fuzz --seed runs it"]
fn write_seeds() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (target, files) in seeds::write(&repository(), &corpus).unwrap() {
        println!("{target}: {files} inputs");
    }
}
