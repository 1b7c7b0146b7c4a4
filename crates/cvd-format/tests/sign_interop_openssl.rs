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
    testkit::official_vectors()
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
    if testkit::tools::require("openssl").is_none() {
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

/// Certificate extension profiles used by [`Pki`] (an `openssl x509 -extfile`).
const EXTENSIONS: &str = "\
[root]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[root_pathlen0]
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
[inter]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign
[inter_noca]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyCertSign
[inter_no_certsign]
basicConstraints=critical,CA:TRUE
keyUsage=critical,digitalSignature
[leaf]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
subjectKeyIdentifier=hash
[leaf_unknown_critical]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
1.3.6.1.4.1.99999.1=critical,DER:05:00
";

/// A scratch PKI built with the `openssl` command line.
struct Pki {
    dir: tempfile::TempDir,
    serial: u32,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ext.cnf"), EXTENSIONS).expect("ext");
        std::fs::write(dir.path().join("content"), b"signed content\n").expect("content");
        Pki { dir, serial: 1 }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates `<name>.key` and `<name>.pem` with subject CN=`cn` and extension
    /// profile `ext`, signed by `issuer` (or self-signed when `None`).
    fn cert(&mut self, name: &str, cn: &str, ext: &str, issuer: Option<&str>) {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ]);
        self.serial += 1;
        let serial = self.serial.to_string();
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-out",
            &pem,
            "-days",
            "3650",
            "-sha256",
            "-extfile",
            "ext.cnf",
            "-extensions",
            ext,
            "-set_serial",
            &serial,
        ];
        let (ca, ca_key);
        match issuer {
            Some(issuer) => {
                ca = format!("{issuer}.pem");
                ca_key = format!("{issuer}.key");
                args.extend(["-CA", &ca, "-CAkey", &ca_key]);
            }
            None => args.extend(["-signkey", &key]),
        }
        self.openssl(&args);
    }

    /// Signs `content` with `signer`, embedding `extra` certificates; returns the DER.
    fn sign(&self, signer: &str, extra: &[&str], options: &[&str]) -> Vec<u8> {
        let (pem, key) = (format!("{signer}.pem"), format!("{signer}.key"));
        let mut args = vec![
            "cms", "-sign", "-binary", "-in", "content", "-signer", &pem, "-inkey", &key,
            "-outform", "DER", "-out", "sig.der",
        ];
        let bundle;
        if !extra.is_empty() {
            let mut text = String::new();
            for name in extra {
                text.push_str(
                    &std::fs::read_to_string(self.path(&format!("{name}.pem"))).expect("pem"),
                );
            }
            std::fs::write(self.path("extra.pem"), text).expect("bundle");
            bundle = "extra.pem".to_string();
            args.extend(["-certfile", &bundle]);
        }
        args.extend(options);
        self.openssl(&args);
        std::fs::read(self.path("sig.der")).expect("sig")
    }
}

/// Chain rules on generated PKIs: every verdict must equal OpenSSL's and the expected
/// one (basicConstraints, keyUsage, path length, unknown critical extensions, impostor
/// roots, missing intermediates, digest algorithms, SKI signer ids, no signed attributes).
#[test]
fn chain_rules_match_openssl_on_generated_pkis() {
    if testkit::tools::require("openssl").is_none() {
        return;
    }
    let mut pki = Pki::new();
    pki.cert("root", "Test Root", "root", None);
    pki.cert("inter", "Test Inter", "inter", Some("root"));
    pki.cert("leaf", "Test Leaf", "leaf", Some("inter"));
    pki.cert("direct", "Test Direct Leaf", "leaf", Some("root"));
    pki.cert("noca", "Test NoCA Inter", "inter_noca", Some("root"));
    pki.cert("noca_leaf", "Test Leaf under NoCA", "leaf", Some("noca"));
    pki.cert(
        "nocs",
        "Test No-CertSign Inter",
        "inter_no_certsign",
        Some("root"),
    );
    pki.cert(
        "nocs_leaf",
        "Test Leaf under No-CertSign",
        "leaf",
        Some("nocs"),
    );
    pki.cert(
        "crit_leaf",
        "Test Critical Leaf",
        "leaf_unknown_critical",
        Some("inter"),
    );
    pki.cert("root0", "Test Root Pathlen0", "root_pathlen0", None);
    pki.cert(
        "inter0",
        "Test Inter under Pathlen0",
        "inter",
        Some("root0"),
    );
    pki.cert("leaf0", "Test Leaf under Pathlen0", "leaf", Some("inter0"));
    // An impostor root: same name as the real one, another key.
    pki.cert("fake_root", "Test Root", "root", None);
    pki.cert("fake_inter", "Test Inter", "inter", Some("fake_root"));
    pki.cert("fake_leaf", "Test Leaf", "leaf", Some("fake_inter"));

    let content = std::fs::read(pki.path("content")).expect("content");
    let at = OffsetDateTime::now_utc();
    let cases: Vec<(&str, Vec<u8>, &str, bool)> = vec![
        (
            "valid chain, SHA-256",
            pki.sign("leaf", &["inter"], &["-md", "sha256"]),
            "root",
            true,
        ),
        (
            "valid chain, SHA-384",
            pki.sign("leaf", &["inter"], &["-md", "sha384"]),
            "root",
            true,
        ),
        (
            "valid chain, SHA-512",
            pki.sign("leaf", &["inter"], &["-md", "sha512"]),
            "root",
            true,
        ),
        (
            "signer by subject key id",
            pki.sign("leaf", &["inter"], &["-keyid"]),
            "root",
            true,
        ),
        (
            "no signed attributes",
            pki.sign("leaf", &["inter"], &["-noattr"]),
            "root",
            true,
        ),
        (
            "leaf issued by the root",
            pki.sign("direct", &[], &[]),
            "root",
            true,
        ),
        (
            "missing intermediate",
            pki.sign("leaf", &[], &[]),
            "root",
            false,
        ),
        (
            "no certificates at all",
            pki.sign("leaf", &["inter"], &["-nocerts"]),
            "root",
            false,
        ),
        (
            "intermediate not a CA",
            pki.sign("noca_leaf", &["noca"], &[]),
            "root",
            false,
        ),
        (
            "intermediate without keyCertSign",
            pki.sign("nocs_leaf", &["nocs"], &[]),
            "root",
            false,
        ),
        (
            "unknown critical extension",
            pki.sign("crit_leaf", &["inter"], &[]),
            "root",
            false,
        ),
        (
            "root path length 0 exceeded",
            pki.sign("leaf0", &["inter0"], &[]),
            "root0",
            false,
        ),
        (
            "impostor chain",
            pki.sign("fake_leaf", &["fake_inter", "fake_root"], &[]),
            "root",
            false,
        ),
        (
            "wrong trust anchor",
            pki.sign("leaf", &["inter"], &[]),
            "root0",
            false,
        ),
    ];
    for (what, der, root, expected) in cases {
        let root_path = pki.path(&format!("{root}.pem"));
        let theirs = openssl_verifies(
            pki.dir.path(),
            &der,
            &content,
            &root_path,
            at.unix_timestamp(),
        );
        let ours = ours_verifies(&der, &content, &root_path, at);
        assert_eq!(theirs, expected, "{what}: openssl says {theirs}");
        assert_eq!(ours, expected, "{what}: we say {ours}");
    }
}
