//! The `sigupdate sync` command line that mirrors the official `test` database from a
//! local upstream (shared by the process-level tests of this crate).

use std::path::Path;
use std::process::Command;

use super::support::fixtures;

/// `sigupdate sync --dir MIRROR --db test --no-dns --retries 0 --upstream UPSTREAM`,
/// with the test `.sign` root and a verification time inside its validity, and no
/// `SIGUPDATE_*` variable from the caller's environment leaking in.
pub fn official_sync(mirror: &Path, upstream: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sigupdate"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SIGUPDATE_") {
            c.env_remove(k);
        }
    }
    c.arg("sync")
        .arg("--dir")
        .arg(mirror)
        .args([
            "--db",
            "test",
            "--no-dns",
            "--retries",
            "0",
            "--upstream",
            upstream,
        ])
        .arg("--sign-root")
        .arg(fixtures().join("clamav-test-root.crt"))
        .args(["--verify-time", "1767225600"]);
    c
}
