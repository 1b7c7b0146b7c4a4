//! Every single-byte change and every truncation of an official vector is rejected.
//!
//! Deterministic dense sweeps cover every region (header fields, signature, padding,
//! gzip header, deflate data, gzip trailer; and for a `.cld` written from official
//! members, every tar header, member and padding byte), and proptest adds random
//! positions and values on top.

use crate::common::*;
use cvd_format::{Limits, VerifyOptions};
use proptest::prelude::*;

fn rejected(bytes: &[u8], opts: &VerifyOptions) -> bool {
    match cvd_format::verify_reader(bytes, opts) {
        Ok(_) => false,
        Err(e) => {
            assert!(
                e.is_verification_failure(),
                "local error on in-memory input: {e}"
            );
            true
        }
    }
}

/// Positions to flip: all of the header, the first and last 64 body bytes (gzip header
/// and trailer), and every `stride`-th byte in between.
fn positions(len: usize, stride: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..512.min(len)).collect();
    p.extend((512..len).filter(|&i| i < 512 + 64 || i + 64 >= len || i % stride == 0));
    p
}

fn sweep(name: &str, stride: usize, truncation_stride: usize) -> usize {
    let original = read_official(name);
    let opts = VerifyOptions::new();
    assert!(!rejected(&original, &opts), "{name} itself must verify");
    let mut cases = 0;
    for pos in positions(original.len(), stride) {
        // Two different changes per position: low bit and ASCII case bit.
        for mask in [0x01u8, 0x20] {
            let mut bytes = original.clone();
            bytes[pos] ^= mask;
            assert!(
                rejected(&bytes, &opts),
                "{name}: byte {pos} ^ {mask:#x} accepted"
            );
            // As in the reference client, a changed body byte of a signed file is
            // reported as an MD5 mismatch, whatever else it breaks in the archive.
            if pos >= 512 {
                let err = cvd_format::verify_reader(&bytes[..], &opts).err();
                assert_eq!(
                    err.as_ref().and_then(|e| e.failed_check()),
                    Some(cvd_format::Check::Md5),
                    "{name}: byte {pos} ^ {mask:#x}: {err:?}"
                );
            }
            cases += 1;
        }
    }
    for len in (0..original.len())
        .filter(|&l| l <= 600 || l % truncation_stride == 0 || l + 16 >= original.len())
    {
        assert!(
            rejected(&original[..len], &opts),
            "{name}: truncation to {len} accepted"
        );
        cases += 1;
    }
    // Appending data is a change too.
    let mut longer = original.clone();
    longer.push(0);
    assert!(rejected(&longer, &opts), "{name}: appended byte accepted");
    cases + 1
}

#[test]
fn single_byte_changes_and_truncations_of_test6_are_rejected() {
    let cases = sweep("test-6.cvd", 5, 7);
    assert!(cases > 3000, "{cases}");
}

#[test]
fn single_byte_changes_and_truncations_of_bytecode_are_rejected() {
    let cases = sweep("bytecode.cvd", 89, 97);
    assert!(cases > 1500, "{cases}");
}

/// A `.cld` written from official test-6 members (plain tar, no MD5): every byte of
/// the tar structure and of every member except `COPYING` is protected by the tar
/// checksum, the zero-padding rule, `.info` sizes/SHA-256 or the `.info` DSIG.
/// `COPYING` is listed in no `.info` (as in every official database), so in an unsigned
/// `.cld` its text is covered by no check — exactly as in the reference client.
#[test]
fn every_structural_byte_of_a_cld_is_protected() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let opts = VerifyOptions::new();
    cvd_format::unpack(&official("test-6.cvd"), tmp.path(), &opts)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut cld = Vec::new();
    cvd_format::write_cld_from_dir(tmp.path(), &mut cld, &Limits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!rejected(&cld, &opts));
    // Walk the tar: the key fields of every header block and the whole `.info` are
    // swept byte by byte, everything else every third byte; COPYING data is skipped.
    let mut dense = vec![false; cld.len()];
    let mut skip = vec![false; cld.len()];
    dense[..512].fill(true);
    let mut off = 512;
    while off + 512 <= cld.len() && cld[off] != 0 {
        let name = String::from_utf8_lossy(&cld[off..off + 100])
            .trim_end_matches('\0')
            .to_string();
        let size_text = String::from_utf8_lossy(&cld[off + 124..off + 135]).to_string();
        let size = usize::from_str_radix(size_text.trim(), 8).unwrap_or_else(|e| panic!("{e}"));
        // Header blocks: name, size, type flag, checksum and magic densely.
        for r in [0..100, 124..136, 148..157, 257..265] {
            dense[off + r.start..off + r.end].fill(true);
        }
        let data = off + 512..off + 512 + size;
        if name == "COPYING" {
            skip[data.clone()].fill(true);
        } else if name.ends_with(".info") {
            dense[data.clone()].fill(true);
        }
        off = data.end.div_ceil(512) * 512;
    }
    let mut cases = 0;
    for pos in (0..cld.len()).filter(|&p| !skip[p] && (dense[p] || p % 3 == 0)) {
        let mut bytes = cld.clone();
        bytes[pos] ^= 0x01;
        assert!(rejected(&bytes, &opts), ".cld byte {pos} ^ 1 accepted");
        cases += 1;
    }
    assert!(cases > 6_000, "{cases}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_single_byte_changes_are_rejected(
        file in 0..OFFICIAL_CVDS.len(),
        pos in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let name = OFFICIAL_CVDS[file];
        let mut bytes = read_official(name);
        let pos = pos.index(bytes.len());
        prop_assume!(bytes[pos] != value);
        bytes[pos] = value;
        prop_assert!(rejected(&bytes, &VerifyOptions::new()), "{}: byte {} = {:#x} accepted", name, pos, value);
    }

    #[test]
    fn random_truncations_are_rejected(
        file in 0..OFFICIAL_CVDS.len(),
        len in any::<prop::sample::Index>(),
    ) {
        let name = OFFICIAL_CVDS[file];
        let bytes = read_official(name);
        let len = len.index(bytes.len());
        prop_assert!(rejected(&bytes[..len], &VerifyOptions::new()), "{}: truncation to {} accepted", name, len);
    }
}
