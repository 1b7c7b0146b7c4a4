//! `sigupdate apply-cdiff` and `sigupdate check-chain` as processes: outputs and exit
//! codes on the official vectors.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    testkit::official_vectors().join(name)
}

fn sigupdate(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sigupdate"))
        .args(args)
        .output()
        .unwrap()
}

fn os(p: &std::path::Path) -> &std::ffi::OsStr {
    p.as_os_str()
}

#[test]
fn apply_cdiff_writes_a_verified_cld() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("test.cld");
    let patches: Vec<PathBuf> = (3..=6)
        .map(|v| fixture(&format!("test-{v}.cdiff")))
        .collect();
    let base = fixture("test-2.cvd");
    let mut args = vec![std::ffi::OsStr::new("apply-cdiff"), os(&base)];
    args.extend(patches.iter().map(|p| p.as_os_str()));
    args.extend([std::ffi::OsStr::new("-o"), out.as_os_str()]);
    let o = sigupdate(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("version 6"));
    // the output verifies as a .cld of version 6
    let v = sigupdate(&[std::ffi::OsStr::new("verify"), out.as_os_str()]);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
}

#[test]
fn apply_cdiff_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("test.cld");
    // a gap: exit 1, nothing written
    let (base, p2, p4) = (
        fixture("test-1.cvd"),
        fixture("test-2.cdiff"),
        fixture("test-4.cdiff"),
    );
    let o = sigupdate(&[
        "apply-cdiff".as_ref(),
        os(&base),
        os(&p2),
        os(&p4),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing patch for version 3"));
    assert!(!out.exists());
    // a corrupted patch: exit 1
    let bad = dir.path().join("test-2.cdiff");
    let mut bytes = std::fs::read(&p2).unwrap();
    bytes[50] ^= 0x40;
    std::fs::write(&bad, bytes).unwrap();
    let o = sigupdate(&[
        "apply-cdiff".as_ref(),
        os(&base),
        os(&bad),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!out.exists());
    // a missing input file: exit 2; missing arguments: exit 2
    let missing = dir.path().join("nope.cvd");
    let o = sigupdate(&[
        "apply-cdiff".as_ref(),
        os(&missing),
        os(&p2),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = sigupdate(&["apply-cdiff".as_ref(), os(&base)]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn check_chain_consistent_and_differing() {
    let cvd6 = fixture("test-6.cvd");
    let base = fixture("test-4.cvd");
    let (p5, p6) = (fixture("test-5.cdiff"), fixture("test-6.cdiff"));
    let o = sigupdate(&[
        "check-chain".as_ref(),
        os(&cvd6),
        os(&base),
        os(&p5),
        os(&p6),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("consistent"));

    // base + patch 5 is version 5, not the served version 6: exit 1 with file and line
    let o = sigupdate(&["check-chain".as_ref(), os(&cvd6), os(&base), os(&p5)]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("DIFFERS: test.info line 1"), "{text}");

    // a .cld instead of the signed .cvd as target: verification failure, exit 1
    let dir = tempfile::tempdir().unwrap();
    let cld = dir.path().join("test.cld");
    let o = sigupdate(&[
        "apply-cdiff".as_ref(),
        os(&base),
        os(&p5),
        os(&p6),
        "-o".as_ref(),
        cld.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = sigupdate(&[
        "check-chain".as_ref(),
        cld.as_os_str(),
        os(&base),
        os(&p5),
        os(&p6),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
