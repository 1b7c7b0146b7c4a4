//! `.sign` text parsing: layout, limits, and robustness on arbitrary input.

use cvd_format::Error;
use cvd_format::sign::{MAX_SIGN_FILE_SIZE, MAX_SIGN_LINES, SignFile, SignVerifier};
use proptest::prelude::*;

fn syntax_line(err: &Error) -> Option<usize> {
    match err {
        Error::SignSyntax { line, .. } => Some(*line),
        _ => None,
    }
}

#[test]
fn accepted_layouts() {
    let one = SignFile::parse(b"#clamsign-1.0\n230::pkcs7-pem:AAEC\n").expect("one");
    assert_eq!(one.entries()[0].cms_der(), &[0, 1, 2]);
    let crlf = SignFile::parse(b"#clamsign-1.0\r\n1:2:pkcs7-pem:AAEC\r\n\r\n").expect("crlf");
    assert_eq!(crlf.entries()[0].min_flevel(), 1);
    assert_eq!(crlf.entries()[0].max_flevel(), Some(2));
    let no_final_newline = SignFile::parse(b"#clamsign-1.0\n5:5:pkcs7-pem:AA==").expect("eof");
    assert!(no_final_newline.entries()[0].covers(5));
    let two =
        SignFile::parse(b"#clamsign-1.0\n1::pkcs7-pem:AA==\n\n2::pkcs7-pem:AQ==\n").expect("two");
    assert_eq!(two.entries().len(), 2);
    assert_eq!(two.entries()[1].line(), 4);
}

#[test]
fn rejected_layouts_name_the_line() {
    let cases: &[(&[u8], usize)] = &[
        (b"", 1),
        (b"#clamsign-2.0\n230::pkcs7-pem:AA==\n", 1),
        (b" #clamsign-1.0\n230::pkcs7-pem:AA==\n", 1),
        (b"#clamsign-1.0\n", 2),
        (b"#clamsign-1.0\n\n\n", 2),
        (b"#clamsign-1.0\n230::pkcs7-der:AA==\n", 2),
        (b"#clamsign-1.0\n230:pkcs7-pem:AA==\n", 2),
        (b"#clamsign-1.0\nx::pkcs7-pem:AA==\n", 2),
        (b"#clamsign-1.0\n-1::pkcs7-pem:AA==\n", 2),
        (b"#clamsign-1.0\n99999999999::pkcs7-pem:AA==\n", 2),
        (b"#clamsign-1.0\n230:100:pkcs7-pem:AA==\n", 2),
        (b"#clamsign-1.0\n230::pkcs7-pem:A\n", 2),
        (b"#clamsign-1.0\n230::pkcs7-pem:\n", 2),
        (b"#clamsign-1.0\n230::pkcs7-pem:AA==:\n", 2),
        (b"#clamsign-1.0\n230::pkcs7-pem:AA== \n", 2),
        (b"#clamsign-1.0\n1::pkcs7-pem:AA==\n# comment\n", 3),
        (b"#clamsign-1.0\n1::pkcs7-pem:AA==\n\xff\n", 3),
    ];
    for (input, line) in cases {
        let err = SignFile::parse(input).expect_err(&String::from_utf8_lossy(input));
        assert_eq!(
            syntax_line(&err),
            Some(*line),
            "{:?}: {err}",
            String::from_utf8_lossy(input)
        );
        assert!(err.to_string().contains(&format!("line {line}")), "{err}");
    }
}

#[test]
fn limits() {
    let mut many = String::from("#clamsign-1.0\n");
    for _ in 0..=MAX_SIGN_LINES {
        many.push_str("1::pkcs7-pem:AA==\n");
    }
    let err = SignFile::parse(many.as_bytes()).expect_err("must be rejected");
    assert!(matches!(err, Error::Limit { .. }), "{err}");

    let mut huge = b"#clamsign-1.0\n1::pkcs7-pem:".to_vec();
    huge.resize(MAX_SIGN_FILE_SIZE + 1, b'A');
    let err = SignFile::parse(&huge).expect_err("must be rejected");
    assert!(matches!(err, Error::Limit { .. }), "{err}");
    // read_from stops reading after the limit.
    let err = SignFile::read_from(std::io::repeat(b'A')).expect_err("must be rejected");
    assert!(matches!(err, Error::Limit { .. }), "{err}");
}

#[test]
fn garbage_der_is_a_cms_error() {
    let sign = SignFile::parse(b"#clamsign-1.0\n230::pkcs7-pem:AAEC\n").expect("parse");
    let err = SignVerifier::new()
        .verify(&sign, &b"x"[..])
        .expect_err("must be rejected");
    assert!(matches!(err, Error::SignCms { line: 2, .. }), "{err}");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(sign) = SignFile::parse(&bytes) {
            let _ = SignVerifier::new().verify(&sign, &b""[..]);
        }
    }

    #[test]
    fn arbitrary_lines_never_panic(lines in proptest::collection::vec("[0-9:a-z+/=-]{0,40}", 0..6)) {
        let text = format!("#clamsign-1.0\n{}", lines.join("\n"));
        if let Ok(sign) = SignFile::parse(text.as_bytes()) {
            prop_assert!(!sign.entries().is_empty());
            let _ = SignVerifier::new().verify(&sign, &b""[..]);
        }
    }

    #[test]
    fn ranges_parse_back(min in 0u32..100_000, width in proptest::option::of(0u32..100_000)) {
        let max = width.map(|w| min.saturating_add(w));
        let text = format!(
            "#clamsign-1.0\n{min}:{}:pkcs7-pem:AA==\n",
            max.map(|m| m.to_string()).unwrap_or_default()
        );
        let sign = SignFile::parse(text.as_bytes()).expect("valid line");
        let e = &sign.entries()[0];
        prop_assert_eq!(e.min_flevel(), min);
        prop_assert_eq!(e.max_flevel(), max);
        prop_assert!(e.covers(min));
        prop_assert!(min == 0 || !e.covers(min - 1));
    }
}

/// Every single-byte change of the DER of an official signature is rejected (never a
/// panic): each byte is covered by a signature or a consistency check.
#[test]
fn every_der_byte_flip_of_an_official_signature_is_handled() {
    use cvd_format::sign::SignRoots;
    let dir = testkit::official_vectors();
    let dir = dir.display();
    let sign = SignFile::parse(&std::fs::read(format!("{dir}/test-2.cvd.sign")).expect("sign"))
        .expect("parse");
    let content = std::fs::read(format!("{dir}/test-2.cvd")).expect("content");
    let roots =
        SignRoots::from_pem(&std::fs::read(format!("{dir}/clamav-test-root.crt")).expect("root"))
            .expect("root");
    let verifier = SignVerifier::new()
        .roots(roots)
        .at(time::macros::datetime!(2026-01-01 0:00 UTC));
    let digests = cvd_format::sign::ContentDigests::of(&content);
    let der = sign.entries()[0].cms_der().to_vec();
    let mut accepted = Vec::new();
    for pos in 0..der.len() {
        let mut bad = der.clone();
        bad[pos] ^= 0x01;
        use base64::Engine as _;
        let text = format!(
            "#clamsign-1.0\n230::pkcs7-pem:{}\n",
            base64::engine::general_purpose::STANDARD.encode(&bad)
        );
        let sign = SignFile::parse(text.as_bytes()).expect("parse");
        if verifier.verify_digests(&sign, &digests).is_ok() {
            accepted.push(pos);
        }
    }
    assert!(
        accepted.is_empty(),
        "accepted flips at {accepted:?} of {} bytes",
        der.len()
    );
}
