//! Modules import downward only: the layers of the server, bottom first, and a test that
//! reads every source file's `crate::` imports and fails on one that points up or sideways
//! within a layer. docs/architecture.md ("Layers") says the same in prose.

use std::{collections::BTreeSet, path::Path};

/// The server's top-level modules, bottom layer first. A module may import modules of lower
/// layers only.
const LAYERS: &[&[&str]] = &[
    // Pure logic, and the counters everything reports to.
    &["domain", "telemetry"],
    // State and the machinery every door shares.
    &["store", "cache", "audit", "admission", "exposure"],
    &["catalog"],
    &["authz", "metadata"],
    &["sts"],
    // Every IAM and EC2 action, transport-neutral: authorized, audited, carried out.
    &["operations"],
    // The store and the server's own keys, opened and kept.
    &["custody"],
    // The doors, side by side.
    &["grpc", "http"],
    // The configuration file's shape, which builds each module's own settings.
    &["config"],
    // What the configuration exposes, said at start-up.
    &["announce"],
    &["lib"],
];

/// Imports that point the wrong way today, each with what removes it. The test fails when
/// one of them is gone (so the list shrinks) and when a new one appears.
const KNOWN: &[(&str, &str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level modules a file imports through `crate::`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    // Test code may reach anywhere (it assembles whole servers).
    let text = text.split("#[cfg(test)]").next().unwrap_or(text);
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(rest) = rest.strip_prefix('{') {
            // `use crate::{a::{..}, b, c::d}`: the first segment of each item.
            let mut depth = 0;
            let mut item = String::new();
            for c in rest.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            found.insert(first_segment(&item));
        } else {
            found.insert(first_segment(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

fn first_segment(item: &str) -> String {
    item.trim()
        .split([':', ' ', ',', ';', '}', '(', ')', '<', '>', '\n'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Every `.rs` file under `src`, with the top-level module it belongs to.
fn files(src: &Path) -> Vec<(String, std::path::PathBuf)> {
    let files = crate::fuzzing::seeds::sources(&[src.to_path_buf()]).unwrap();
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(src).unwrap();
            let top = relative.components().next().unwrap().as_os_str().to_string_lossy();
            (top.trim_end_matches(".rs").to_string(), path.clone())
        })
        .collect()
}

#[test]
fn modules_import_downward_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = BTreeSet::new();
    for (module, path) in files(&src) {
        // The binary, test fixtures and fuzz entry points sit above everything.
        if ["main", "cli", "test_util", "fuzzing", "layers"].contains(&module.as_str()) {
            continue;
        }
        // Test modules in files of their own.
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let Some(own) = layer_of(&module) else { panic!("{module} is in no layer: add it to LAYERS") };
        for imported in imports(&std::fs::read_to_string(&path).unwrap()) {
            // What is not a module is an item of the crate root (the App, `run`).
            let imported = if layer_of(&imported).is_some() { imported } else { "lib".to_string() };
            let theirs = layer_of(&imported).unwrap_or(LAYERS.len());
            if imported != module && theirs >= own {
                wrong.insert((module.clone(), imported));
            }
        }
    }
    let known: BTreeSet<(String, String)> =
        KNOWN.iter().map(|(a, b, _)| (a.to_string(), b.to_string())).collect();
    let new: Vec<_> = wrong.difference(&known).collect();
    assert!(new.is_empty(), "imports that point up or sideways (importer, imported): {new:?}");
    let gone: Vec<_> = known.difference(&wrong).collect();
    assert!(gone.is_empty(), "fixed, so remove from KNOWN: {gone:?}");
}

#[test]
fn imports_are_read_from_use_blocks_and_paths() {
    let text = "use crate::{\n    audit::{Actor, Event},\n    domain::Error,\n    App,\n};\nfn f() { crate::grpc::x(); }";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["App", "audit", "domain", "grpc"]);
}
