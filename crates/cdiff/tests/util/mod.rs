//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::{Path, PathBuf};
use std::process::Command;

use cdiff::Database;
use cdiff::chain::PatchInput;

/// The official signed vectors (vendored, `testkit::official_vectors()`).
pub fn fixtures() -> PathBuf {
    testkit::official_vectors()
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn cdiff_input(version: u32) -> PatchInput {
    let name = format!("test-{version}.cdiff");
    PatchInput::new(name.clone(), fixture(&name))
}

/// Writes every file of `db` into `dir`.
pub fn write_db(db: &Database, dir: &Path) {
    for (name, data) in db.files() {
        std::fs::write(dir.join(name), data).unwrap();
    }
}

/// Runs `sigtool --run-cdiff=<script>` in `dir` on a plain (unsigned) script file.
/// Returns true when sigtool reported no apply error. (sigtool 1.4 exits 1 even after
/// a successful apply, because its follow-up `verifydiff` wants a `.info` matching the
/// script name; so success is "no `LibClamAV Error`", and callers also compare files.)
pub fn sigtool_run_script(sigtool: &Path, dir: &Path, script: &[u8]) -> bool {
    let script_path = dir
        .parent()
        .unwrap()
        .join(format!("run-{}.script", std::process::id()));
    std::fs::write(&script_path, script).unwrap();
    let out = Command::new(sigtool)
        .arg(format!("--run-cdiff={}", script_path.display()))
        .current_dir(dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&script_path);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    // Exit 0 or 1 (see above); anything else (e.g. 134, an abort on some malformed
    // scripts) is a failure.
    matches!(out.status.code(), Some(0 | 1))
        && !text.contains("LibClamAV Error")
        && !text.contains("ERROR: rundiff")
        && !text.contains("panicked")
}
