//! Test support shared by the workspace's tests, benches and xtask (never published).
#![forbid(unsafe_code)]

pub mod config;
pub mod dns;
pub mod feeds;
pub mod http;
pub mod keys;
pub mod net;
pub mod s3;
pub mod scaling;
pub mod tools;
pub mod upstream;
pub mod wait;

/// The ways a mirror's `status.json` gets lost or damaged, for the tests that prove it
/// never decides trust: deleted, garbage, truncated, and valid JSON whose
/// `unproven_cdiffs` lists someone emptied.
pub const STATUS_DAMAGES: [&str; 4] = ["deleted", "garbage", "truncated", "emptied"];

/// Applies one of [`STATUS_DAMAGES`] to `DIR/status.json`.
///
/// # Panics
///
/// On an unknown `how`, or when the file cannot be read or written (a test failure).
#[allow(clippy::unwrap_used)] // test support: a panic is a failure report
pub fn damage_status(dir: &std::path::Path, how: &str) {
    let path = dir.join("status.json");
    match how {
        "deleted" => std::fs::remove_file(&path).unwrap(),
        "garbage" => std::fs::write(&path, b"\x00\xffnot json at all").unwrap(),
        "truncated" => {
            let good = std::fs::read(&path).unwrap();
            std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        }
        "emptied" => {
            let good = std::fs::read(&path).unwrap();
            let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
            if let Some(dbs) = v["databases"].as_object_mut() {
                for db in dbs.values_mut() {
                    db["unproven_cdiffs"] = serde_json::json!([]);
                }
            }
            std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        }
        _ => panic!("unknown status damage {how:?}"),
    }
}

use std::path::PathBuf;

/// The directory of the official ClamAV test vectors vendored in this repository,
/// `<workspace>/testdata/clamav-official` (see its `README.md` for their origin and
/// licence). Tests, benches and the demo read the vectors through this one function.
pub fn official_vectors() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/clamav-official"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use sha2::{Digest, Sha256};

    #[test]
    fn vendored_vectors_match_sha256sums() {
        let dir = super::official_vectors();
        let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
        let mut listed = Vec::new();
        for line in sums.lines().filter(|l| !l.trim().is_empty()) {
            let (hex, name) = line
                .split_once(char::is_whitespace)
                .unwrap_or_else(|| panic!("malformed SHA256SUMS line {line:?}"));
            // `sha256sum` marks binary mode with a `*` before the name.
            let name = name.trim_start().trim_start_matches('*');
            let bytes = std::fs::read(dir.join(name))
                .unwrap_or_else(|e| panic!("{name} listed in SHA256SUMS: {e}"));
            let got: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(got, hex.to_ascii_lowercase(), "SHA-256 of {name}");
            listed.push(name.to_owned());
        }
        // Every vector in the directory is covered (only the README and the list
        // itself are not).
        let mut present: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "SHA256SUMS" && n != "README.md")
            .collect();
        present.sort();
        listed.sort();
        assert_eq!(present, listed, "files in {} vs SHA256SUMS", dir.display());
        assert!(
            listed.len() >= 25,
            "expected the 25 official files: {listed:?}"
        );
        println!(
            "checked: {} vendored vectors match SHA256SUMS",
            listed.len()
        );
    }
}
