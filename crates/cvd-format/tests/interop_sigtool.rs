//! Interop with the reference implementation (Debian's `clamav` package, and ClamAV
//! 1.5.3 from `CLAMAV15_BIN` for `clamscan`): our header fields equal what `sigtool -i`
//! prints, our verdicts agree with its verdicts, and the `.cld` files we write load in
//! `clamscan` 1.4 and 1.5.3 (and the damaged or foreign-signed ones do not).
//!
//! Tools are found with `testkit::tools`: outside CI a missing tool skips the test with
//! a message; in CI it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use cvd_format::{CheckStatus, Compression, Header, VerifyOptions, verify_file};
use testkit::tools::{ClamavTool, require};

struct SigtoolInfo {
    fields: Vec<(String, String)>,
    ok: bool,
}

impl SigtoolInfo {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn sigtool_info(sigtool: &Path, file: &Path) -> SigtoolInfo {
    let out = Command::new(sigtool)
        .arg("-i")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("running sigtool: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let fields = text
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    SigtoolInfo {
        fields,
        ok: out.status.success() && text.contains("Verification OK"),
    }
}

/// sigtool prints the build time with `:` between hour and minute.
fn sigtool_time(h: &Header) -> String {
    let f = time::macros::format_description!(
        "[day] [month repr:short] [year] [hour]:[minute] [offset_hour sign:mandatory][offset_minute]"
    );
    h.build_time.format(f).unwrap_or_default()
}

#[test]
fn header_fields_equal_sigtool() {
    let Some(sigtool) = require("sigtool") else {
        return;
    };
    for name in OFFICIAL_CVDS {
        let path = official(name);
        let ours = verify_file(&path, &VerifyOptions::new()).unwrap_or_else(|e| panic!("{e}"));
        let theirs = sigtool_info(&sigtool, &path);
        assert!(theirs.ok, "{name}: sigtool does not verify it");
        let h = &ours.header;
        let md5 = h.md5_hex();
        let expect = [
            ("Build time", sigtool_time(h)),
            ("Version", h.version.to_string()),
            ("Signatures", h.signatures.to_string()),
            ("Functionality level", h.flevel.to_string()),
            ("Builder", h.builder.clone()),
            ("MD5", md5.unwrap_or_default()),
            ("Digital signature", h.dsig.clone().unwrap_or_default()),
        ];
        for (key, want) in expect {
            assert_eq!(theirs.get(key), Some(want.as_str()), "{name}: {key}");
        }
    }
}

#[test]
fn verdicts_agree_with_sigtool_on_damaged_copies() {
    let Some(sigtool) = require("sigtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let original = read_official("test-3.cvd");
    // A dsig byte, the gzip header, the middle and the end of the body.
    for pos in [100usize, 513, 600, original.len() / 2, original.len() - 3] {
        let mut bytes = original.clone();
        bytes[pos] ^= 0x04;
        let path = dir.path().join(format!("damaged-{pos}.cvd"));
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let ours = verify_file(&path, &VerifyOptions::new());
        let theirs = sigtool_info(&sigtool, &path);
        assert!(ours.is_err(), "byte {pos}: we accepted a damaged file");
        assert!(!theirs.ok, "byte {pos}: sigtool accepted a damaged file");
    }
}

#[test]
fn we_are_stricter_than_sigtool_on_the_build_time() {
    // The build time is covered by no signature; sigtool accepts any change to it. We
    // compare it with the signed `.info` first line, so a changed build time fails.
    let Some(sigtool) = require("sigtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut bytes = read_official("test-3.cvd");
    assert_eq!(&bytes[11..13], b"22");
    bytes[12] = b'3'; // "22 Jun 2021" -> "23 Jun 2021"
    let path = dir.path().join("redated.cvd");
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sigtool_info(&sigtool, &path).ok,
        "sigtool now checks the build time"
    );
    let err = verify_file(&path, &VerifyOptions::new()).err();
    assert!(
        matches!(
            err.as_ref().and_then(|e| match e {
                cvd_format::Error::File { source, .. } => Some(&**source),
                _ => None,
            }),
            Some(cvd_format::Error::InfoHeaderMismatch {
                field: cvd_format::HeaderField::BuildTime,
                ..
            })
        ),
        "{err:?}"
    );
}

fn unpack_official(name: &str, dir: &Path) -> cvd_format::Report {
    cvd_format::unpack(&official(name), dir, &VerifyOptions::new())
        .unwrap_or_else(|e| panic!("unpack {name}: {e}"))
}

/// `test-6.cvd` unpacked and its members written back as `test.cld` (unsigned
/// container, official `.info`) in a temporary directory: the directory, the `.cld`,
/// the unpack report and the written header.
fn cld_from_official() -> (tempfile::TempDir, PathBuf, cvd_format::Report, Header) {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let unpacked = tmp.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap_or_else(|e| panic!("{e}"));
    let original = unpack_official("test-6.cvd", &unpacked);
    let cld = tmp.path().join("test.cld");
    let file = std::fs::File::create(&cld).unwrap_or_else(|e| panic!("{e}"));
    let header = cvd_format::write_cld_from_dir(&unpacked, file, &cvd_format::Limits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    (tmp, cld, original, header)
}

/// Every `clamscan` available (1.4 and 1.5.3, see `testkit::tools::clamav_versions`),
/// 1.5.3 trusting the TEST root in a directory under `tmp`.
fn clamscans(tmp: &Path) -> Vec<ClamavTool> {
    let certs = testkit::tools::test_root_certs_dir(tmp).unwrap_or_else(|e| panic!("{e}"));
    testkit::tools::clamav_versions("clamscan", &certs)
}

/// `clamscan` with `cld` as its only database, scanning the file itself.
fn clamscan_with(clamscan: &ClamavTool, cld: &Path) -> std::process::Output {
    clamscan
        .command()
        .args(["--no-summary", "-d"])
        .arg(cld)
        .arg(cld)
        .output()
        .unwrap_or_else(|e| panic!("running clamscan {}: {e}", clamscan.version))
}

#[test]
fn cld_written_from_official_members_loads_in_clamscan_1_4_and_1_5() {
    let (tmp, cld, original, header) = cld_from_official();
    let clamscans = clamscans(tmp.path());

    // Our own verifier: unsigned container, official .info DSIG.
    let report = verify_file(&cld, &VerifyOptions::new()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.compression, Compression::None);
    assert_eq!(report.checks.legacy_signature, CheckStatus::NotPresent);
    assert_eq!(report.checks.md5, CheckStatus::NotPresent);
    assert_eq!(report.checks.info_signature, CheckStatus::Passed);
    assert_eq!(report.header, header);
    assert_eq!(report.header.version, original.header.version);
    let mut a = report.members.clone();
    let mut b = original.members.clone();
    a.sort_by(|x, y| x.name.cmp(&y.name));
    b.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(a, b);
    assert!(
        verify_file(&cld, &VerifyOptions::new().require_signed(true)).is_err(),
        "require_signed must refuse a .cld"
    );

    // The reference engine loads it (it checks the .info DSIG with the official key and
    // every member's size and SHA-256), in both client versions.
    for clamscan in &clamscans {
        let out = clamscan_with(clamscan, &cld);
        assert!(
            out.status.success(),
            "clamscan {} refused our .cld{}: {}{}",
            clamscan.version,
            clamscan.note(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("checked: clamscan {} loads our .cld", clamscan.version);
    }
}

#[test]
fn clamscan_rejects_a_cld_with_a_tampered_member_like_we_do() {
    let (tmp, cld, _, _) = cld_from_official();
    // Flip one byte of the test.hdb contents inside the plain tar.
    let mut bytes = std::fs::read(&cld).unwrap_or_else(|e| panic!("{e}"));
    let needle = b"44d88612fea8a8f36de82e1278abb02f";
    let pos = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("test.hdb signature not found"));
    bytes[pos] = b'5';
    std::fs::write(&cld, &bytes).unwrap_or_else(|e| panic!("{e}"));
    assert!(verify_file(&cld, &VerifyOptions::new()).is_err());
    for clamscan in &clamscans(tmp.path()) {
        let out = clamscan_with(clamscan, &cld);
        assert!(
            !out.status.success(),
            "clamscan {} loaded a tampered .cld",
            clamscan.version
        );
        println!(
            "checked: clamscan {} refuses a tampered .cld",
            clamscan.version
        );
    }
}

/// What is true for containers *we* sign: the reference engine checks the `.info`
/// `DSIG` with the official INFO key, so a `.cld` whose `.info` is signed with any
/// other key (here the TEST key) does not load, while our verifier accepts it when
/// given that key. Private publishers therefore need clients that trust their key.
#[test]
fn clamscan_refuses_a_cld_signed_with_a_non_official_key() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let clamscans = clamscans(tmp.path());
    let cld = tmp.path().join("private.cld");
    let mut bytes = Vec::new();
    cvd_format::CvdBuilder::new("private", 2)
        .flevel(90)
        .member("COPYING", b"licence\n".to_vec())
        .member(
            "private.hdb",
            b"44d88612fea8a8f36de82e1278abb02f:68:Private-Eicar\n".to_vec(),
        )
        .write_cld(&mut bytes, Some(&test_keys().info))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&cld, &bytes).unwrap_or_else(|e| panic!("{e}"));
    assert!(cvd_format::verify_reader(bytes.as_slice(), &test_opts()).is_ok());
    assert!(verify_file(&cld, &VerifyOptions::new()).is_err());
    for clamscan in &clamscans {
        let out = clamscan_with(clamscan, &cld);
        assert!(
            !out.status.success(),
            "clamscan {} loaded a .cld signed with a test key",
            clamscan.version
        );
        println!(
            "checked: clamscan {} refuses a .cld signed with a non-official key",
            clamscan.version
        );
    }
}
