//! Memory per cached credential, measured where nothing else moves: a fresh process fills
//! rolecall's own credential cache with credentials issued by rolecall's own code, and the
//! growth of its resident set is divided by the entries. (Measuring the server's RSS across
//! a warm-up hides the cost in memory the allocator freed during the fleet's bootstrap.)

use std::time::Duration;

use rolecall_server::{
    cache::{CredentialCache, CredentialKey, IssuedCredentials},
    domain::{
        credentials::{SessionClaims, TemporaryCredentials},
        keyring::{KeyRing, KeyRingPolicy},
    },
};

use crate::procfs;

/// Resident bytes per entry after `entries` credentials are cached.
pub async fn bytes_per_cached_credential(entries: usize) -> Result<f64, String> {
    let me = std::process::id();
    let ring = KeyRing::new(KeyRingPolicy::default(), 0);
    let cache = CredentialCache::new(entries as u64 * 2, Duration::from_secs(21_600));
    let before = procfs::rss_bytes(me).ok_or("no /proc RSS")?;
    for n in 0..entries {
        let instance = format!("i-{n:017x}");
        let key = CredentialKey::new(&instance, &format!("iip-assoc-{n:017x}"), "AROAABCDEFGHIJKLMNOPQ");
        let claims = SessionClaims::for_instance(
            "123456789012",
            "arn:aws:iam::123456789012:role/FleetRoleA",
            "AROAABCDEFGHIJKLMNOPQ",
            &instance,
            1_800_000_000,
            1_800_021_600,
        );
        cache
            .get_or_issue(&key, 1_800_000_000, i64::MIN, || async {
                Ok(IssuedCredentials::new(TemporaryCredentials::issue(&ring, claims)?, 1_800_003_600))
            })
            .await
            .map_err(|e| e.message)?;
    }
    cache.run_pending_tasks().await;
    let after = procfs::rss_bytes(me).ok_or("no /proc RSS")?;
    if cache.entry_count() < entries as u64 {
        return Err(format!("only {} of {entries} entries stayed cached", cache.entry_count()));
    }
    Ok(after.saturating_sub(before) as f64 / entries as f64)
}

/// Runs the measurement in a fresh child process of this executable.
pub fn measure_in_child(entries: usize) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .args(["measure-cache", "--entries", &entries.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|e| format!("measure-cache: {e}"))
}
