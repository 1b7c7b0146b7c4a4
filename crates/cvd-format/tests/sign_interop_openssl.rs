//! Cross-check of `.sign` verification with the real `openssl cms -verify`.
//!
//! For the official vectors and for tampered copies, our verdict must equal OpenSSL's
//! (`openssl cms -verify -binary -inform DER -purpose any -attime T`). When `CI=true` a
//! missing `openssl` fails the test; elsewhere the test is skipped with a message.

use std::path::{Path, PathBuf};
use std::process::Command;

use cvd_format::sign::{SignFile, SignRoots, SignVerifier};
use time::OffsetDateTime;
use time::macros::datetime;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/clamav-official"
    ))
}

fn openssl_available() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("`openssl` is required for this test in CI (apt-get install -y openssl)");
        }
        eprintln!("skipping: `openssl` not found (install it to run this interop test)");
    }
    found
}

/// OpenSSL's verdict on `cms_der` over `content` with `root`, at `at`.
fn openssl_verifies(dir: &Path, cms_der: &[u8], content: &[u8], root: &Path, at: i64) -> bool {
    let sig = dir.join("sig.der");
    let data = dir.join("content");
    std::fs::write(&sig, cms_der).expect("write sig");
    std::fs::write(&data, content).expect("write content");
    let out = Command::new("openssl")
        .args(["cms", "-verify", "-binary", "-inform", "DER", "-in"])
        .arg(&sig)
        .arg("-content")
        .arg(&data)
        .arg("-CAfile")
        .arg(root)
        .args(["-purpose", "any", "-attime", &at.to_string(), "-out"])
        .arg(dir.join("out"))
        .output()
        .expect("run openssl");
    out.status.success()
}

fn ours_verifies(cms_der: &[u8], content: &[u8], root: &Path, at: OffsetDateTime) -> bool {
    use base64::Engine as _;
    let text = format!(
        "#clamsign-1.0\n230::pkcs7-pem:{}\n",
        base64::engine::general_purpose::STANDARD.encode(cms_der)
    );
    let sign = SignFile::parse(text.as_bytes()).expect("parse");
    let roots = SignRoots::from_pem(&std::fs::read(root).expect("root")).expect("root pem");
    SignVerifier::new()
        .roots(roots)
        .at(at)
        .verify(&sign, content)
        .is_ok()
}

/// (what, CMS DER, content, root file, verification time)
type Case<'a> = (&'a str, &'a [u8], &'a [u8], &'a Path, OffsetDateTime);

#[test]
fn verdicts_match_openssl_cms_verify() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let test_root = fixtures().join("clamav-test-root.crt");
    let prod_root = fixtures().join("clamav.crt");
    let ok_time = datetime!(2026-01-01 0:00 UTC);
    let expired = datetime!(2028-01-01 0:00 UTC);

    let mut cases = 0;
    let mut accepted = 0;
    for name in ["test-1.cvd", "test-6.cvd", "test-3.cdiff", "test-6.cdiff"] {
        let content = std::fs::read(fixtures().join(name)).expect("content");
        let sign =
            SignFile::parse(&std::fs::read(fixtures().join(format!("{name}.sign"))).expect("sign"))
                .expect("parse");
        let der = sign.entries()[0].cms_der().to_vec();

        let mut flipped_content = content.clone();
        flipped_content[content.len() / 3] ^= 0x04;
        let mut flipped_sig = der.clone();
        let last = flipped_sig.len() - 17;
        flipped_sig[last] ^= 0x10;
        let mut flipped_cert = der.clone();
        // A byte in the middle of the first embedded certificate's public key.
        flipped_cert[600] ^= 0x01;

        let variants: Vec<Case<'_>> = vec![
            ("genuine", &der, &content, &test_root, ok_time),
            ("expired root", &der, &content, &test_root, expired),
            ("production root", &der, &content, &prod_root, ok_time),
            (
                "flipped content",
                &der,
                &flipped_content,
                &test_root,
                ok_time,
            ),
            (
                "flipped signature",
                &flipped_sig,
                &content,
                &test_root,
                ok_time,
            ),
            (
                "flipped certificate",
                &flipped_cert,
                &content,
                &test_root,
                ok_time,
            ),
        ];
        for (what, cms, data, root, at) in variants {
            let theirs = openssl_verifies(dir.path(), cms, data, root, at.unix_timestamp());
            let ours = ours_verifies(cms, data, root, at);
            assert_eq!(
                ours, theirs,
                "{name} ({what}): ours={ours} openssl={theirs}"
            );
            cases += 1;
            accepted += usize::from(ours);
        }
    }
    assert_eq!(cases, 24);
    // Only the four genuine cases are accepted.
    assert_eq!(accepted, 4);
}
