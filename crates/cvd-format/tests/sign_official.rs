//! `.sign` verification against the official ClamAV test vectors.

use std::path::PathBuf;

use cvd_format::sign::{DigestAlgorithm, SignFile, SignRoots, SignVerifier};
use cvd_format::{Check, Error};
use time::OffsetDateTime;
use time::macros::datetime;

fn fixtures() -> PathBuf {
    testkit::official_vectors()
}

fn read(name: &str) -> Vec<u8> {
    let path = fixtures().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The ten signed files that have a `.sign` next to them.
fn signed_files() -> Vec<String> {
    let mut names: Vec<String> = (1..=6).map(|n| format!("test-{n}.cvd")).collect();
    names.extend((2..=6).map(|n| format!("test-{n}.cdiff")));
    names
}

const PINNED: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

fn test_verifier() -> SignVerifier {
    SignVerifier::new()
        .roots(SignRoots::from_pem(&read("clamav-test-root.crt")).expect("test root"))
        .at(PINNED)
}

fn verify(verifier: &SignVerifier, sign: &[u8], content: &[u8]) -> Result<(), Error> {
    let sign = SignFile::parse(sign)?;
    verifier.verify(&sign, content).map(|_| ())
}

#[test]
fn all_official_sign_files_verify_with_the_test_root() {
    let files = signed_files();
    assert_eq!(files.len(), 11);
    for name in files {
        let sign = SignFile::parse(&read(&format!("{name}.sign"))).expect(&name);
        assert_eq!(sign.entries().len(), 1);
        assert_eq!(sign.entries()[0].min_flevel(), 230);
        assert_eq!(sign.entries()[0].max_flevel(), None);
        let report = test_verifier()
            .flevel(230)
            .verify(&sign, read(&name).as_slice())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.line, 2);
        assert_eq!(report.digest_algorithm, DigestAlgorithm::Sha256);
        assert_eq!(report.chain.len(), 3, "{name}: {:?}", report.chain);
        assert!(report.chain[0].contains("ClamAV TEST CVD Signing Cert"));
        assert!(report.chain[1].contains("ClamAV TEST Intermediate Signing CA"));
        assert!(report.chain[2].contains("ClamAV TEST Root CA"));
        assert!(report.signing_time.is_some());
    }
}

#[test]
fn streaming_digests_give_the_same_verdict() {
    let sign = SignFile::parse(&read("test-6.cvd.sign")).expect("parse");
    let content = read("test-6.cvd");
    let mut hasher = sign.hasher();
    for chunk in content.chunks(7) {
        hasher.update(chunk);
    }
    let digests = hasher.finish();
    assert_eq!(digests.len(), content.len() as u64);
    test_verifier()
        .verify_digests(&sign, &digests)
        .expect("verifies");
}

#[test]
fn production_root_does_not_trust_test_signatures() {
    for name in signed_files() {
        // Default trust set: the embedded production root.
        let err = verify(
            &SignVerifier::new().at(PINNED),
            &read(&format!("{name}.sign")),
            &read(&name),
        )
        .expect_err(&name);
        assert!(
            matches!(err, Error::SignChain { line: 2, .. }),
            "{name}: {err}"
        );
        assert_eq!(err.failed_check(), Some(Check::Sign));
        // The same root from the fixture file.
        let verifier = SignVerifier::new()
            .roots(SignRoots::from_pem(&read("clamav.crt")).expect("clamav.crt"))
            .at(PINNED);
        let err = verify(&verifier, &read(&format!("{name}.sign")), &read(&name)).expect_err(&name);
        assert!(err.to_string().contains("trusted root"), "{err}");
    }
}

#[test]
fn expiry_of_the_root_is_enforced() {
    let verifier = test_verifier().at(datetime!(2028-01-01 0:00 UTC));
    let err = verify(&verifier, &read("test-3.cvd.sign"), &read("test-3.cvd"))
        .expect_err("must be rejected");
    match &err {
        Error::SignCertificateTime {
            subject, not_after, ..
        } => {
            assert!(subject.contains("ClamAV TEST Root CA"), "{err}");
            assert!(not_after.starts_with("2027-03-26"), "{err}");
        }
        other => panic!("expected an expiry error, got {other}"),
    }
    // Just before and just after the root's notAfter (2027-03-26 17:56:32 UTC).
    let before = test_verifier().at(datetime!(2027-03-26 17:56:32 UTC));
    verify(&before, &read("test-3.cvd.sign"), &read("test-3.cvd")).expect("still valid");
    let after = test_verifier().at(datetime!(2027-03-26 17:56:33 UTC));
    verify(&after, &read("test-3.cvd.sign"), &read("test-3.cvd")).expect_err("expired");
}

#[test]
fn not_yet_valid_certificates_are_rejected() {
    let verifier = test_verifier().at(datetime!(2024-01-01 0:00 UTC));
    let err = verify(&verifier, &read("test-1.cvd.sign"), &read("test-1.cvd"))
        .expect_err("must be rejected");
    assert!(matches!(err, Error::SignCertificateTime { .. }), "{err}");
}

#[test]
fn flipped_content_byte_is_rejected() {
    let sign = read("test-6.cvd.sign");
    let content = read("test-6.cvd");
    for pos in [0, 511, 512, content.len() / 2, content.len() - 1] {
        let mut bad = content.clone();
        bad[pos] ^= 0x01;
        let err = verify(&test_verifier(), &sign, &bad).expect_err("must be rejected");
        assert!(
            matches!(
                err,
                Error::SignDigestMismatch {
                    line: 2,
                    algorithm: DigestAlgorithm::Sha256
                }
            ),
            "byte {pos}: {err}"
        );
    }
    // Truncated and extended content.
    let err = verify(&test_verifier(), &sign, &content[..content.len() - 1])
        .expect_err("must be rejected");
    assert!(matches!(err, Error::SignDigestMismatch { .. }), "{err}");
    let mut longer = content.clone();
    longer.push(0);
    let err = verify(&test_verifier(), &sign, &longer).expect_err("must be rejected");
    assert!(matches!(err, Error::SignDigestMismatch { .. }), "{err}");
}

#[test]
fn wrong_file_is_rejected() {
    // test-5's signature over test-6, and a .cdiff signature over the .cvd.
    let err = verify(
        &test_verifier(),
        &read("test-5.cvd.sign"),
        &read("test-6.cvd"),
    )
    .expect_err("must be rejected");
    assert!(matches!(err, Error::SignDigestMismatch { .. }), "{err}");
    let err = verify(
        &test_verifier(),
        &read("test-6.cdiff.sign"),
        &read("test-6.cvd"),
    )
    .expect_err("must be rejected");
    assert!(matches!(err, Error::SignDigestMismatch { .. }), "{err}");
}

#[test]
fn flevel_outside_the_range_is_rejected() {
    let sign = read("test-2.cvd.sign");
    let content = read("test-2.cvd");
    let err = verify(&test_verifier().flevel(229), &sign, &content).expect_err("must be rejected");
    assert!(
        matches!(err, Error::SignFlevel { flevel: 229, ref ranges } if ranges == "230.."),
        "{err}"
    );
    assert_eq!(err.failed_check(), Some(Check::Sign));
    verify(&test_verifier().flevel(230), &sign, &content).expect("230 is in range");
    verify(&test_verifier().flevel(10_000), &sign, &content).expect("no upper bound");
}

/// Re-encodes a `.sign` file with its DER replaced.
fn with_der(min_max: &str, der: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    format!(
        "#clamsign-1.0\n{min_max}:pkcs7-pem:{}\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
    .into_bytes()
}

fn der_of(name: &str) -> Vec<u8> {
    SignFile::parse(&read(name)).expect("parse").entries()[0]
        .cms_der()
        .to_vec()
}

/// Offset of the last occurrence of `needle` in `hay`.
fn rfind(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .rposition(|w| w == needle)
        .expect("needle present")
}

#[test]
fn flipped_signature_byte_is_rejected() {
    let der = der_of("test-4.cvd.sign");
    let content = read("test-4.cvd");
    // The signer's signature is the last element of the structure: flip bytes in it.
    for back in [1, 100, 511] {
        let mut bad = der.clone();
        let pos = bad.len() - back;
        bad[pos] ^= 0x80;
        let err = verify(&test_verifier(), &with_der("230:", &bad), &content)
            .expect_err("must be rejected");
        assert!(matches!(err, Error::SignSignature { line: 2, .. }), "{err}");
    }
}

#[test]
fn tampered_signed_attributes_are_rejected() {
    // Change the signingTime (inside the signed attributes, not covered by the digest
    // of the content): only the signature over the re-encoded attributes catches it.
    let der = der_of("test-4.cvd.sign");
    let content = read("test-4.cvd");
    let pos = rfind(&der, b"250329") + 5; // UTCTime 2503291734..Z
    let mut bad = der.clone();
    bad[pos] = if bad[pos] == b'9' { b'8' } else { b'9' };
    let err =
        verify(&test_verifier(), &with_der("230:", &bad), &content).expect_err("must be rejected");
    assert!(matches!(err, Error::SignSignature { .. }), "{err}");
}

#[test]
fn tampered_certificate_is_rejected() {
    // Flip a byte inside the signer certificate's subject (CN "ClamAV TEST CVD Signing
    // Cert"): the signer is still found by issuer + serial, its key is unchanged, so
    // only the chain check (the intermediate's signature on it) can catch it.
    let der = der_of("test-4.cvd.sign");
    let content = read("test-4.cvd");
    let pos = rfind(&der, b"CVD Signing Cert");
    let mut bad = der.clone();
    bad[pos] = b'X';
    let err =
        verify(&test_verifier(), &with_der("230:", &bad), &content).expect_err("must be rejected");
    assert!(
        matches!(err, Error::SignChain { ref reason, .. } if reason.contains("does not verify")),
        "{err}"
    );
}

#[test]
fn second_line_can_carry_the_valid_signature() {
    let der = der_of("test-5.cvd.sign");
    let content = read("test-5.cvd");
    let mut bad = der.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    use base64::Engine as _;
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    // line 2: broken; line 3: good.
    let two = format!(
        "#clamsign-1.0\n230::pkcs7-pem:{}\n230::pkcs7-pem:{}\n",
        b64(&bad),
        b64(&der)
    );
    let sign = SignFile::parse(two.as_bytes()).expect("parse");
    let report = test_verifier()
        .verify(&sign, content.as_slice())
        .expect("line 3");
    assert_eq!(report.line, 3);
    // A good line outside the f-level range does not count: the error names line 2.
    let ranged = format!(
        "#clamsign-1.0\n230::pkcs7-pem:{}\n100:200:pkcs7-pem:{}\n",
        b64(&bad),
        b64(&der)
    );
    let sign = SignFile::parse(ranged.as_bytes()).expect("parse");
    let err = test_verifier()
        .flevel(230)
        .verify(&sign, content.as_slice())
        .expect_err("must be rejected");
    assert!(matches!(err, Error::SignSignature { line: 2, .. }), "{err}");
    let report = test_verifier()
        .flevel(150)
        .verify(&sign, content.as_slice())
        .expect("line 3 covers 150");
    assert_eq!(report.line, 3);
    assert_eq!(report.max_flevel, Some(200));
}

#[test]
fn empty_root_set_trusts_nothing() {
    let verifier = SignVerifier::new().roots(SignRoots::empty()).at(PINNED);
    let err = verify(&verifier, &read("test-1.cvd.sign"), &read("test-1.cvd"))
        .expect_err("must be rejected");
    assert!(matches!(err, Error::SignChain { .. }), "{err}");
}

#[test]
fn an_intermediate_can_be_the_trust_anchor_but_the_signer_cannot() {
    // Trusting the embedded intermediate directly gives a two-certificate path.
    let der = der_of("test-1.cvd.sign");
    let certs = embedded_certs(&der);
    let intermediate = certs
        .iter()
        .find(|(subject, _)| subject.contains("Intermediate"))
        .expect("intermediate")
        .1
        .clone();
    let mut roots = SignRoots::empty();
    roots.add_der(&intermediate).expect("add");
    let verifier = SignVerifier::new().roots(roots).at(PINNED);
    let sign = SignFile::parse(&read("test-1.cvd.sign")).expect("parse");
    let report = verifier
        .verify(&sign, read("test-1.cvd").as_slice())
        .expect("verifies");
    assert_eq!(report.chain.len(), 2);

    // The signer certificate itself is no trust anchor for its own signature: it is not
    // a CA and did not issue itself.
    let signer = certs
        .iter()
        .find(|(subject, _)| subject.contains("CVD Signing Cert"))
        .expect("signer")
        .1
        .clone();
    let mut roots = SignRoots::empty();
    roots.add_der(&signer).expect("add");
    let err = SignVerifier::new()
        .roots(roots)
        .at(PINNED)
        .verify(&sign, read("test-1.cvd").as_slice())
        .expect_err("must be rejected");
    assert!(matches!(err, Error::SignChain { .. }), "{err}");
}

/// (subject, DER) of the certificates embedded in a CMS structure.
fn embedded_certs(cms_der: &[u8]) -> Vec<(String, Vec<u8>)> {
    use cms::cert::CertificateChoices;
    use cms::content_info::ContentInfo;
    use cms::signed_data::SignedData;
    use der::{Decode, Encode};
    let info = ContentInfo::from_der(cms_der).expect("cms");
    let sd: SignedData = info.content.decode_as().expect("signed data");
    sd.certificates
        .expect("certs")
        .0
        .iter()
        .filter_map(|c| match c {
            CertificateChoices::Certificate(c) => Some((
                c.tbs_certificate.subject.to_string(),
                c.to_der().expect("der"),
            )),
            _ => None,
        })
        .collect()
}
