//! Hostile certificate sets in `.sign` files: the path search costs a bounded number
//! of signature checks, whatever the embedded certificates are (issue 21: 15 CA
//! certificates with one subject and one key, each "issuing" every other one, made an
//! unbounded depth-first search run for hours).
//!
//! Work is measured by counting the RSA signature checks the verifier pays for
//! (`cvd_format::fuzzing::signature_checks`), not by timing.

use std::sync::OnceLock;

use cvd_format::Error;
use cvd_format::fuzzing::pki::{self, CertSpec, Kit, VERIFY_AT};
use cvd_format::fuzzing::signature_checks;
use cvd_format::sign::{
    MAX_SIGNATURE_CHECKS_PER_FILE, MAX_SIGNATURE_CHECKS_PER_LINE, SignFile, SignRoots, SignVerifier,
};

const CONTENT: &[u8] = b"daily.cvd stand-in\n";
const ROOT_KEY: usize = 0;
const LEAF_KEY: usize = 1;
const CA_KEY: usize = 2;
/// Keys 3.. are distinct CA keys for the ring below.
const RING: usize = 14;

/// One key pool for the whole module (key generation is the slow part).
fn kit() -> &'static Kit {
    static KIT: OnceLock<Kit> = OnceLock::new();
    KIT.get_or_init(|| Kit::generate(3 + RING, 1024).unwrap())
}

fn root() -> x509_cert::Certificate {
    kit()
        .cert(&CertSpec::ca(
            1,
            "Test Root",
            ROOT_KEY,
            "Test Root",
            ROOT_KEY,
        ))
        .unwrap()
}

fn verifier() -> SignVerifier {
    let roots = SignRoots::from_pem(&pki::pem(&root()).unwrap()).unwrap();
    SignVerifier::new()
        .roots(roots)
        .at(time::OffsetDateTime::from_unix_timestamp(VERIFY_AT).unwrap())
}

/// A `.sign` file of `lines` identical lines signed by the leaf, embedding `certs`.
fn sign_file(
    leaf: &x509_cert::Certificate,
    certs: &[x509_cert::Certificate],
    lines: usize,
) -> Vec<u8> {
    let mut embedded = vec![leaf.clone()];
    embedded.extend_from_slice(certs);
    let der = kit().sign_cms(CONTENT, leaf, LEAF_KEY, &embedded).unwrap();
    pki::sign_file(&vec![der; lines])
}

/// Verifies and returns the verdict with the number of signature checks it cost.
fn verify(text: &[u8]) -> (Result<cvd_format::sign::SignReport, Error>, u64) {
    let sign = SignFile::parse(text).unwrap();
    let before = signature_checks();
    let verdict = verifier().verify(&sign, CONTENT);
    (verdict, signature_checks() - before)
}

/// The attack of the issue: 15 CA certificates with one subject and one key, a leaf
/// below them, three lines, just under the 64 KiB download limit. Copies of one CA are
/// one issuer: each line costs the signer check and one check of the leaf.
#[test]
fn fifteen_same_key_cas_cost_two_checks_per_line() {
    let (leaf, loop_cas) = kit().looping_chain(15, CA_KEY, LEAF_KEY).unwrap();
    let text = sign_file(&leaf, &loop_cas, 3);
    assert!(
        text.len() > 30_000 && text.len() < 64 * 1024,
        "{}",
        text.len()
    );

    let (verdict, checks) = verify(&text);
    let err = verdict.expect_err("no path to the root");
    assert!(
        matches!(err, Error::SignChain { line: 2, .. }),
        "first line's chain error: {err}"
    );
    assert!(err.to_string().contains("Loop CA"), "{err}");
    assert_eq!(checks, 3 * 2, "signer + leaf per line: {checks}");
}

/// Distinct keys under one subject, so that every (certificate, key) pair is a new
/// signature check: the per-line budget stops the search with an error naming it, and
/// the whole file never costs more than the per-file budget.
#[test]
fn a_ring_of_distinct_keys_stops_at_the_budget_and_names_it() {
    let kit = kit();
    let key = |i: usize| 3 + (i % RING);
    // CA i has key i and is signed by key i+1; a second copy of CA 0 is signed by
    // key 7, so the search branches and reaches every certificate.
    let mut cas: Vec<_> = (0..RING)
        .map(|i| {
            kit.cert(&CertSpec::ca(
                10 + i as u32,
                "Ring CA",
                key(i),
                "Ring CA",
                key(i + 1),
            ))
            .unwrap()
        })
        .collect();
    cas.push(
        kit.cert(&CertSpec::ca(99, "Ring CA", key(0), "Ring CA", key(7)))
            .unwrap(),
    );
    let leaf = kit
        .cert(&CertSpec::leaf(100, "Signer", LEAF_KEY, "Ring CA", key(0)))
        .unwrap();
    let text = sign_file(&leaf, &cas, 3);

    let (verdict, checks) = verify(&text);
    let err = verdict.expect_err("no path to the root");
    assert!(
        matches!(
            err,
            Error::SignBudget { line: 2, limit, .. } if limit == MAX_SIGNATURE_CHECKS_PER_LINE
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!(
            "{MAX_SIGNATURE_CHECKS_PER_LINE} signature checks per .sign line"
        )),
        "{err}"
    );
    assert_eq!(
        err.failed_check(),
        Some(cvd_format::Check::Sign),
        "a verification verdict"
    );
    assert_eq!(checks, u64::from(MAX_SIGNATURE_CHECKS_PER_FILE), "{checks}");
}

/// A valid path still verifies when it hides among copies of its intermediate: same
/// subject and key, but looping, expired or not a CA.
#[test]
fn a_real_path_among_copies_of_its_intermediate_still_verifies() {
    let kit = kit();
    let mut certs = Vec::new();
    for i in 0..5 {
        certs.push(
            kit.cert(&CertSpec::ca(10 + i, "Inter", CA_KEY, "Inter", CA_KEY))
                .unwrap(),
        );
    }
    for i in 0..4 {
        let mut expired = CertSpec::ca(20 + i, "Inter", CA_KEY, "Test Root", ROOT_KEY);
        expired.validity.1 = VERIFY_AT - 1;
        certs.push(kit.cert(&expired).unwrap());
        let mut not_ca = CertSpec::ca(30 + i, "Inter", CA_KEY, "Test Root", ROOT_KEY);
        not_ca.ca = false;
        certs.push(kit.cert(&not_ca).unwrap());
    }
    certs.push(
        kit.cert(&CertSpec::ca(40, "Inter", CA_KEY, "Test Root", ROOT_KEY))
            .unwrap(),
    );
    assert_eq!(certs.len(), 14);
    let leaf = kit
        .cert(&CertSpec::leaf(100, "Signer", LEAF_KEY, "Inter", CA_KEY))
        .unwrap();
    let (verdict, checks) = verify(&sign_file(&leaf, &certs, 1));
    let report = verdict.expect("the real intermediate leads to the root");
    assert_eq!(report.chain, ["CN=Signer", "CN=Inter", "CN=Test Root"]);
    assert!(checks <= 6, "{checks}");
}

/// Without a budget, the depth-first search grew factorially with the number of
/// copies; now the cost does not depend on it: 4 and 15 copies cost the same.
#[test]
fn cost_does_not_grow_with_the_number_of_copies() {
    let cost = |copies: u32| {
        let (leaf, cas) = kit().looping_chain(copies, CA_KEY, LEAF_KEY).unwrap();
        let (verdict, checks) = verify(&sign_file(&leaf, &cas, 1));
        assert!(verdict.is_err());
        checks
    };
    assert_eq!(cost(4), cost(15));
}
