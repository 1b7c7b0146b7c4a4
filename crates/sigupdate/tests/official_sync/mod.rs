//! The `sigupdate sync` command line that mirrors the official `test` database from a
//! local upstream, and `sigupdate` itself with a clean environment (shared by the
//! process-level tests of this crate).
#![allow(dead_code)] // not every test binary uses every helper

use std::path::Path;
use std::process::Command;

use super::support::fixtures;

/// `sigupdate`, with no `SIGUPDATE_*` variable from the caller's environment leaking in.
pub fn sigupdate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sigupdate"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SIGUPDATE_") {
            c.env_remove(k);
        }
    }
    c
}

/// `sigupdate sync --dir MIRROR --db test --no-dns --retries 0 --upstream UPSTREAM`,
/// with the test `.sign` root and a verification time inside its validity.
pub fn official_sync(mirror: &Path, upstream: &str) -> Command {
    official_sync_from(mirror, &[upstream.to_owned()])
}

/// [`official_sync`] with every upstream in `upstreams`, tried in order.
pub fn official_sync_from(mirror: &Path, upstreams: &[String]) -> Command {
    let mut c = sigupdate();
    c.arg("sync")
        .arg("--dir")
        .arg(mirror)
        .args(["--db", "test", "--no-dns", "--retries", "0"]);
    for u in upstreams {
        c.args(["--upstream", u]);
    }
    c.arg("--sign-root")
        .arg(fixtures().join("clamav-test-root.crt"))
        .args(["--verify-time", "1767225600"]);
    c
}
