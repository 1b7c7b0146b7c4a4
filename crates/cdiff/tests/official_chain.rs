//! The official vectors: test-N.cvd + test-(N+1..6).cdiff == test-6.cvd, for every N.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use crate::util::{cdiff_input, fixture};
use cdiff::chain::{self, ChainOptions, Consistency};
use cdiff::{Database, Patch};
use cvd_format::KeySet;
use testkit::tools::require;

fn members(name: &str) -> Database {
    let (_, _, db) = chain::read_base(fixture(name).as_slice(), &ChainOptions::new()).unwrap();
    db
}

#[test]
fn official_patches_verify_and_parse() {
    for v in 2..=6 {
        let p = Patch::verify(
            &format!("test-{v}.cdiff"),
            fixture(&format!("test-{v}.cdiff")),
            &KeySet::official().cdiff,
        )
        .unwrap();
        assert_eq!(p.version(), v);
        let script = p.script_bytes().unwrap();
        assert_eq!(script.len() as u64, p.declared_script_len());
        assert!(!p.script().unwrap().lines().is_empty());
    }
}

#[test]
fn every_start_reaches_test_6_exactly() {
    let want = members("test-6.cvd");
    for start in 1..=5u32 {
        let patches: Vec<_> = (start + 1..=6).map(cdiff_input).collect();
        let base = fixture(&format!("test-{start}.cvd"));
        let patched = chain::apply(base.as_slice(), &patches, &ChainOptions::new()).unwrap();
        assert_eq!(patched.version, 6);
        assert_eq!(patched.base_version, start);
        assert_eq!(patched.name, "test");
        assert_eq!(
            chain::compare(&patched.database, &want),
            None,
            "from {start}"
        );
        // every member of test-6 (COPYING included) is byte-equal
        assert_eq!(patched.database, want, "from {start}");
        let verdict = chain::check(
            fixture("test-6.cvd").as_slice(),
            base.as_slice(),
            &patches,
            &ChainOptions::new(),
        )
        .unwrap();
        assert_eq!(verdict, Consistency::Consistent { version: 6 });
    }
}

#[test]
fn intermediate_versions_match_their_cvd() {
    let mut db = members("test-1.cvd");
    for v in 2..=6u32 {
        let patched =
            chain::apply_to_database("test", v - 1, db, &[cdiff_input(v)], &ChainOptions::new())
                .unwrap();
        assert_eq!(
            patched.database,
            members(&format!("test-{v}.cvd")),
            "version {v}"
        );
        db = patched.database;
    }
}

#[test]
fn check_reports_first_difference() {
    // test-1 + 2..5 is version 5: against test-6.cvd that is a version mismatch.
    let patches: Vec<_> = (2..=5).map(cdiff_input).collect();
    let verdict = chain::check(
        fixture("test-6.cvd").as_slice(),
        fixture("test-1.cvd").as_slice(),
        &patches,
        &ChainOptions::new(),
    )
    .unwrap();
    let Consistency::Differs(d) = verdict else {
        panic!("expected a difference, got {verdict:?}")
    };
    assert_eq!(d.file, "test.info");
    // same version, different content: compare test-5 chain against a mutated target
    let got = members("test-5.cvd");
    let mut want = got.clone();
    let mut ndb = want.get("test.ndb").unwrap().to_vec();
    let second_line = ndb.iter().position(|&b| b == b'\n').unwrap() + 1;
    ndb[second_line] ^= 0x20;
    want.insert("test.ndb", ndb);
    let d = chain::compare(&got, &want).unwrap();
    assert_eq!((d.file.as_str(), d.line), ("test.ndb", Some(2)), "{d}");
}

#[test]
fn written_cld_verifies_and_loads_in_clamav() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("test.cld");
    let patches: Vec<_> = (2..=6).map(cdiff_input).collect();
    let opts = ChainOptions::new();
    let patched = chain::apply(fixture("test-1.cvd").as_slice(), &patches, &opts).unwrap();
    let header = patched.write_cld(&out, &opts).unwrap();
    assert_eq!(header.version, 6);
    // only the .cld is left in the directory (staging cleaned up)
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
    let cld = cvd_format::read_members_file(&out, &cvd_format::VerifyOptions::new()).unwrap();
    assert_eq!(cld.report.header.version, 6);
    assert!(!cld.report.is_signed());
    let want = members("test-6.cvd");
    for m in &cld.members {
        assert_eq!(Some(m.data.as_slice()), want.get(&m.name), "{}", m.name);
    }
    assert_eq!(cld.members.len(), want.files().len());

    // The reference tools accept it, in both client versions (1.5.3 from CLAMAV15_BIN).
    let certs = testkit::tools::test_root_certs_dir(dir.path()).unwrap();
    for sigtool in testkit::tools::clamav_versions("sigtool", &certs) {
        let o = sigtool
            .command()
            .arg(format!("--info={}", out.display()))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "sigtool {}{}: {text}{}",
            sigtool.version,
            sigtool.note(),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(text.contains("Version: 6"), "{text}");
        println!(
            "checked: sigtool {} --info accepts our test.cld v6",
            sigtool.version
        );
    }
    // EICAR is in test.hdb from version 3 on: the .cld must load and detect it.
    let eicar = dir.path().join("eicar.txt");
    std::fs::write(
        &eicar,
        br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
    )
    .unwrap();
    for clamscan in testkit::tools::clamav_versions("clamscan", &certs) {
        let o = clamscan
            .command()
            .args(["--no-summary", "-d"])
            .arg(&out)
            .arg(&eicar)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(1),
            "clamscan {}{}: {text}{}",
            clamscan.version,
            clamscan.note(),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(text.contains("Eicar-Test-Signature FOUND"), "{text}");
        println!(
            "checked: clamscan {} loads our chain-applied test.cld and detects EICAR",
            clamscan.version
        );
    }
}

#[test]
fn apply_to_unpacked_directory_matches_next_version() {
    let dir = tempfile::tempdir().unwrap();
    crate::util::write_db(&members("test-2.cvd"), dir.path());
    let script = Patch::verify(
        "test-3.cdiff",
        fixture("test-3.cdiff"),
        &KeySet::official().cdiff,
    )
    .unwrap()
    .script()
    .unwrap();
    cdiff::apply_to_dir(dir.path(), &script, &cdiff::Limits::default()).unwrap();
    let got = Database::read_dir(dir.path(), &cdiff::Limits::default()).unwrap();
    assert_eq!(got, members("test-3.cvd"));
}

/// A publisher's own patch: generated from test-5 → test-6, signed with its key,
/// accepted by the chain with that key as the CDIFF key, and about as small as the
/// official one.
#[test]
fn generated_signed_patch_reproduces_next_version() {
    let key = cvd_format::SigningKey::generate(2048).unwrap();
    let (old, new) = (members("test-5.cvd"), members("test-6.cvd"));
    let bytes = cdiff::generate::cdiff(&old, &new, 6, &key).unwrap();
    let official = KeySet::official();
    let opts = ChainOptions::new().keys(KeySet::new(official.cvd, official.info, key.public_key()));
    let patched = chain::apply(
        fixture("test-5.cvd").as_slice(),
        &[cdiff::chain::PatchInput::new("test-6.cdiff", bytes.clone())],
        &opts,
    )
    .unwrap();
    assert_eq!(patched.database, new);
    let ours = Patch::verify("ours", bytes, &key.public_key())
        .unwrap()
        .script()
        .unwrap();
    let theirs = Patch::verify(
        "test-6.cdiff",
        fixture("test-6.cdiff"),
        &KeySet::official().cdiff,
    )
    .unwrap()
    .script()
    .unwrap();
    let commands = |s: &cdiff::Script| {
        s.lines()
            .iter()
            .filter(|l| !matches!(l.command, cdiff::Command::Comment(_)))
            .count()
    };
    assert!(commands(&ours) <= commands(&theirs), "{ours:?}");
    // the official patch is rejected when the chain trusts only the publisher's key
    let err = chain::apply(
        fixture("test-5.cvd").as_slice(),
        &[crate::util::cdiff_input(6)],
        &opts,
    )
    .unwrap_err();
    assert!(matches!(err, cdiff::Error::Signature { .. }), "{err}");
}

/// The reference applies the official signed patches to the same unpacked files with
/// the same result as ours.
#[test]
fn sigtool_run_cdiff_on_official_patches_agrees() {
    let Some(sigtool) = require("sigtool") else {
        return;
    };
    for v in 2..=6u32 {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("db");
        std::fs::create_dir(&dir).unwrap();
        crate::util::write_db(&members(&format!("test-{}.cvd", v - 1)), &dir);
        let patch = crate::util::fixtures().join(format!("test-{v}.cdiff"));
        let out = std::process::Command::new(&sigtool)
            .arg(format!("--run-cdiff={}", patch.display()))
            .current_dir(&dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!text.contains("LibClamAV Error"), "{text}");
        let got = Database::read_dir(&dir, &cdiff::Limits::default()).unwrap();
        let ours = chain::apply_to_database(
            "test",
            v - 1,
            members(&format!("test-{}.cvd", v - 1)),
            &[cdiff_input(v)],
            &ChainOptions::new(),
        )
        .unwrap();
        assert_eq!(got, ours.database, "version {v}");
    }
}
