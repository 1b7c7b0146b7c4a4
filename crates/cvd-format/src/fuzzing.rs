//! Entry points for `cargo fuzz` targets (not part of the public API).
//!
//! Each function must never panic, whatever the input; parse → write → parse
//! round-trips are asserted where the format allows.

use crate::{Header, Info, KeySet, Limits, VerifyOptions};

/// Header parser; a parsed header must serialize back to the same 512 bytes.
pub fn header(data: &[u8]) {
    if let Ok(h) = Header::parse(data) {
        let again = h.to_bytes();
        assert!(
            matches!(again, Ok(raw) if raw[..] == data[..]),
            "header round trip"
        );
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(h) = Header::parse_line(text)
    {
        assert_eq!(
            h.to_line().ok().as_deref(),
            Some(text),
            "header line round trip"
        );
    }
}

/// `.info` parser; a parsed `.info` without DSIG rebuilds to the same bytes.
pub fn info(data: &[u8]) {
    if let Ok(info) = Info::parse("fuzz.info", data) {
        let _ = info.verify_signature("fuzz.info", &KeySet::official().info);
        if info.dsig.is_none() && data.ends_with(b"\n") {
            let rebuilt = Info::build(&info.header, &info.entries, None);
            // `build` writes MD5/signature as `X` and hashes in lowercase.
            if let Ok(rebuilt) = rebuilt
                && info.header.md5.is_none()
                && info.header.dsig.is_none()
            {
                assert_eq!(
                    data.to_ascii_lowercase(),
                    rebuilt.to_ascii_lowercase(),
                    "info round trip"
                );
            }
        }
    }
}

/// Whole-container verification with small limits (official keys: random inputs only
/// exercise parsing, so the legacy check is bypassed by also trying the `.cld` path).
pub fn container(data: &[u8]) {
    static OPTS: std::sync::OnceLock<VerifyOptions> = std::sync::OnceLock::new();
    let opts = OPTS.get_or_init(|| {
        VerifyOptions::new().limits(Limits {
            max_body_size: 1 << 20,
            max_unpacked_size: 4 << 20,
            max_member_size: 1 << 20,
            max_members: 64,
            max_info_size: 64 << 10,
        })
    });
    let _ = crate::verify_reader(data, opts);
    // Without the DSIG requirement, unsigned `.cld` inputs reach the `.info` checks.
    if let Ok(contents) = crate::read_members(data, &opts.clone().allow_unsigned_info(true)) {
        // Whatever verified must be internally consistent.
        assert_eq!(contents.members.len(), contents.report.members.len());
        assert!(!contents.report.header.is_signed() || contents.report.is_signed());
    }
}

/// `.sign` files: text parsing, then full verification of every line (CMS decoding,
/// attribute checks, signer lookup, chain search) against fixed content. Input that
/// does not start with `#clamsign` is also tried as the raw DER of one signature line.
pub fn sign(data: &[u8]) {
    crate::sign::fuzz(data);
}

pub mod pki;

/// RSA signature checks paid from a `.sign` verification budget on this thread so far
/// (tests compare two readings to see what one verification cost).
pub fn signature_checks() -> u64 {
    crate::sign::SIGNATURE_CHECKS.with(std::cell::Cell::get)
}

/// Structured generator for the `.sign` certificate path search: the input describes
/// up to 15 CA certificates (subject, issuer, key, issuer key, CA flag, path length,
/// expiry, over five names and six keys) and a leaf; the certificates are really made
/// and signed (so the input reaches the path builder), embedded in 1 to 3 signature
/// lines, and verified. Checked against a reference search over (certificate, depth)
/// states: a file verifies only when a valid path exists, and when one exists the
/// verification succeeds or stops at its budget; the budget is never exceeded.
pub fn sign_path(data: &[u8]) {
    use crate::sign::{
        MAX_CHAIN_DEPTH, MAX_SIGNATURE_CHECKS_PER_FILE, SignFile, SignRoots, SignVerifier,
    };
    use pki::{CertSpec, Kit, VERIFY_AT};
    use std::sync::OnceLock;

    const NAMES: [&str; 5] = ["A", "B", "C", "D", "Root"];
    const KEYS: usize = 6;
    const LEAF_KEY: usize = 5;
    static KIT: OnceLock<Option<(Kit, x509_cert::Certificate)>> = OnceLock::new();
    let Some((kit, root)) = KIT
        .get_or_init(|| {
            let kit = Kit::generate(KEYS, 1024).ok()?;
            let root = kit.cert(&CertSpec::ca(1, "Root", 0, "Root", 0)).ok()?;
            Some((kit, root))
        })
        .as_ref()
    else {
        panic!("the fuzz key pool could not be generated");
    };
    let (Some(&head0), Some(&head1)) = (data.first(), data.get(1)) else {
        return;
    };
    let lines = 1 + usize::from(head0 % 3);
    let leaf_spec = CertSpec::leaf(
        1000,
        "Leaf",
        LEAF_KEY,
        NAMES[usize::from(head0 >> 2) % NAMES.len()],
        usize::from(head1) % KEYS,
    );
    let mut specs = Vec::new();
    for (i, chunk) in data[2..].chunks_exact(4).take(15).enumerate() {
        let (b0, b1, b2, b3) = (chunk[0], chunk[1], chunk[2], chunk[3]);
        let mut spec = CertSpec::ca(
            u32::try_from(i).unwrap_or(0) + 2,
            NAMES[usize::from(b0) % NAMES.len()],
            usize::from(b2 & 0x3f) % KEYS,
            NAMES[usize::from(b1) % NAMES.len()],
            usize::from(b3 & 0x07) % KEYS,
        );
        spec.ca = b2 >> 6 != 3;
        if b3 & 0x08 != 0 {
            spec.path_len = Some((b3 >> 4) & 3);
        }
        if b3 >> 6 == 3 {
            spec.validity.1 = VERIFY_AT - 86_400; // expired before the verification time
        }
        specs.push(spec);
    }
    let mut certs = Vec::with_capacity(specs.len() + 1);
    // Signing is the slow part (an RSA private operation per certificate) and inputs
    // differ from their parents in a few bytes: certificates are made once per spec.
    static MADE: std::sync::Mutex<
        Option<std::collections::HashMap<CertSpec, x509_cert::Certificate>>,
    > = std::sync::Mutex::new(None);
    for spec in std::iter::once(&leaf_spec).chain(&specs) {
        let mut made = MADE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let made = made.get_or_insert_with(std::collections::HashMap::new);
        if made.len() > 100_000 {
            made.clear();
        }
        let cert = match made.get(spec) {
            Some(cert) => cert.clone(),
            None => match kit.cert(spec) {
                Ok(cert) => {
                    made.insert(spec.clone(), cert.clone());
                    cert
                }
                Err(e) => panic!("generating a certificate: {e}"),
            },
        };
        certs.push(cert);
    }
    let content = b"fuzzed content";
    let der = match kit.sign_cms(content, &certs[0], LEAF_KEY, &certs) {
        Ok(der) => der,
        Err(e) => panic!("generating the CMS: {e}"),
    };
    let text = pki::sign_file(&vec![der; lines]);
    let sign = match SignFile::parse(&text) {
        Ok(sign) => sign,
        Err(e) => panic!("a generated .sign file does not parse: {e}"),
    };
    let roots = match pki::pem(root).map(|pem| SignRoots::from_pem(&pem)) {
        Ok(Ok(roots)) => roots,
        other => panic!("root: {other:?}"),
    };
    let verifier = SignVerifier::new()
        .roots(roots)
        .at(time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(VERIFY_AT));
    let before = signature_checks();
    let verdict = verifier.verify(&sign, &content[..]);
    let spent = signature_checks() - before;
    assert!(
        spent <= u64::from(MAX_SIGNATURE_CHECKS_PER_FILE),
        "{spent} signature checks"
    );

    // Reference: a search over (certificate, CA certificates below its issuer) states;
    // a walk with a repeated certificate shortens to a simple path that also holds.
    let valid = |s: &CertSpec| s.validity.1 >= VERIFY_AT;
    let mut seen = vec![[false; MAX_CHAIN_DEPTH + 1]; specs.len() + 1];
    let mut queue = vec![(&leaf_spec, 0usize)];
    seen[0][0] = true;
    let mut reachable = false;
    while let Some((child, depth)) = queue.pop() {
        if child.issuer == "Root" && child.issuer_key == 0 {
            reachable = true;
            break;
        }
        if depth >= MAX_CHAIN_DEPTH {
            continue;
        }
        for (j, issuer) in specs.iter().enumerate() {
            let ok = issuer.subject == child.issuer
                && issuer.key == child.issuer_key
                && valid(issuer)
                && issuer.ca
                && issuer.path_len.is_none_or(|p| depth <= usize::from(p));
            if ok && !seen[j + 1][depth + 1] {
                seen[j + 1][depth + 1] = true;
                queue.push((issuer, depth + 1));
            }
        }
    }
    match verdict {
        Ok(_) => assert!(reachable, "verified without a valid path: {specs:?}"),
        Err(crate::Error::SignBudget { .. }) => {}
        Err(e) => assert!(!reachable, "a valid path exists, yet: {e}; {specs:?}"),
    }
}
