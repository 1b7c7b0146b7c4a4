//! One test per threat against chain application: every bad input is rejected and
//! nothing is written.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::path::Path;

use crate::util::{cdiff_input, fixture};
use cdiff::chain::{self, ChainOptions, PatchInput};
use cdiff::{Error, Patch, Script};
use cvd_format::{KeySet, SigningKey};

/// What `sigupdate apply-cdiff` does: apply, then write the `.cld`.
fn apply_and_write(
    base: u32,
    patches: &[PatchInput],
    opts: &ChainOptions,
    out: &Path,
) -> cdiff::Result<()> {
    let patched = chain::apply(
        fixture(&format!("test-{base}.cvd")).as_slice(),
        patches,
        opts,
    )?;
    patched.write_cld(out, opts)?;
    Ok(())
}

fn assert_rejected(base: u32, patches: &[PatchInput], opts: &ChainOptions) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.cld");
    let err = apply_and_write(base, patches, opts, &out).unwrap_err();
    assert!(!out.exists(), "output written despite {err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "stray files after {err}"
    );
    assert!(err.is_verification_failure(), "{err}");
    err
}

#[test]
fn wrong_order_is_rejected() {
    let patches = vec![cdiff_input(3), cdiff_input(2)];
    let err = assert_rejected(1, &patches, &ChainOptions::new());
    assert!(matches!(err, Error::Chain { .. }), "{err}");
}

#[test]
fn skipped_version_is_rejected() {
    let patches = vec![cdiff_input(2), cdiff_input(4), cdiff_input(5)];
    let err = assert_rejected(1, &patches, &ChainOptions::new());
    assert!(err.to_string().contains("missing patch"), "{err}");
}

#[test]
fn duplicate_and_stale_patches_are_rejected() {
    let err = assert_rejected(1, &[cdiff_input(2), cdiff_input(2)], &ChainOptions::new());
    assert!(matches!(err, Error::Chain { .. }), "{err}");
    let err = assert_rejected(3, &[cdiff_input(3)], &ChainOptions::new());
    assert!(matches!(err, Error::Chain { .. }), "{err}");
}

#[test]
fn flipped_byte_anywhere_is_rejected() {
    let key = KeySet::official().cdiff;
    for v in [2u32, 4] {
        let good = fixture(&format!("test-{v}.cdiff"));
        for i in 0..good.len() {
            for mask in [0x01u8, 0x20, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= mask;
                assert!(
                    Patch::verify("bad", bad, &key).is_err(),
                    "test-{v}.cdiff with byte {i} ^ {mask:#x} accepted"
                );
            }
        }
    }
    // and through the whole chain, nothing written
    let mut bad = fixture("test-2.cdiff");
    bad[100] ^= 1;
    assert_rejected(
        1,
        &[PatchInput::new("test-2.cdiff", bad)],
        &ChainOptions::new(),
    );
}

#[test]
fn truncated_patch_is_rejected() {
    let key = KeySet::official().cdiff;
    let good = fixture("test-3.cdiff");
    for len in 0..good.len() {
        assert!(
            Patch::verify("cut", good[..len].to_vec(), &key).is_err(),
            "truncated to {len} accepted"
        );
    }
    assert_rejected(
        2,
        &[PatchInput::new(
            "test-3.cdiff",
            good[..good.len() - 1].to_vec(),
        )],
        &ChainOptions::new(),
    );
}

/// A patch signed by a trusted (test) key whose script no longer matches the base.
#[test]
fn prefix_mismatch_is_rejected_and_leaves_input_untouched() {
    let key = SigningKey::generate(2048).unwrap();
    let official = KeySet::official();
    let opts = ChainOptions::new().keys(KeySet::new(official.cvd, official.info, key.public_key()));
    let script = Patch::verify(
        "test-3.cdiff",
        fixture("test-3.cdiff"),
        &KeySet::official().cdiff,
    )
    .unwrap()
    .script_bytes()
    .unwrap();
    let text = String::from_utf8(script).unwrap();
    assert!(text.contains("XCHG 2 test.ndb:240:244 "));
    let bad_script = text.replace("XCHG 2 test.ndb:240:244 ", "XCHG 2 test.ndb:241:244 ");
    let bad = cdiff::patch::build(3, bad_script.as_bytes(), &key).unwrap();
    // the untouched script, re-signed with the test key, does apply
    let good = cdiff::patch::build(3, text.as_bytes(), &key).unwrap();
    chain::apply(
        fixture("test-2.cvd").as_slice(),
        &[PatchInput::new("test-3.cdiff", good)],
        &opts,
    )
    .unwrap();

    let err = assert_rejected(2, &[PatchInput::new("test-3.cdiff", bad.clone())], &opts);
    assert!(
        matches!(err, Error::Apply { line: 3, ref file, .. } if file == "test.info"),
        "{err}"
    );

    // on an unpacked directory: the error leaves every file as it was
    let dir = tempfile::tempdir().unwrap();
    let (_, _, base) = chain::read_base(fixture("test-2.cvd").as_slice(), &opts).unwrap();
    crate::util::write_db(&base, dir.path());
    let script = Patch::verify("bad", bad, &key.public_key())
        .unwrap()
        .script()
        .unwrap();
    let err = cdiff::apply_to_dir(dir.path(), &script, &cdiff::Limits::default()).unwrap_err();
    assert!(matches!(err, Error::Apply { line: 3, .. }), "{err}");
    let after = cdiff::Database::read_dir(dir.path(), &cdiff::Limits::default()).unwrap();
    assert_eq!(after, base);
}

#[test]
fn patch_signed_by_untrusted_key_is_rejected() {
    let key = SigningKey::generate(2048).unwrap();
    let script = b"OPEN test.info\nADD x\nCLOSE\n";
    let forged = cdiff::patch::build(2, script, &key).unwrap();
    let err = assert_rejected(
        1,
        &[PatchInput::new("test-2.cdiff", forged)],
        &ChainOptions::new(),
    );
    assert!(matches!(err, Error::Signature { .. }), "{err}");
}

#[test]
fn decompression_is_bounded() {
    let key = SigningKey::generate(2048).unwrap();
    let big = vec![b'#'; 1 << 20];
    let bytes = cdiff::patch::build(2, &big, &key).unwrap();
    let limits = cdiff::Limits::default().max_script_len(1000);
    let p = Patch::verify_with_limits("bomb", bytes, &key.public_key(), &limits).unwrap();
    assert!(matches!(p.script_bytes(), Err(Error::Limit { .. })));
}

#[test]
fn script_errors_name_the_line() {
    let err = Script::parse(b"OPEN a.db\nADD x\nXCHG 1\nCLOSE\n").unwrap_err();
    assert!(err.to_string().starts_with("script line 3:"), "{err}");
}

/// Many edits on a large file: linear work (a quadratic engine would not finish).
#[test]
fn large_scripts_apply_in_linear_time() {
    let n = 200_000u64;
    let mut data = Vec::new();
    for i in 1..=n {
        data.extend_from_slice(format!("sig{i}:0:*:{i:08x}\n").as_bytes());
    }
    let mut script = b"OPEN big.ndb\n".to_vec();
    // edits in reverse order, every other line
    for i in (1..=n).rev().step_by(2) {
        if i % 4 == 0 {
            script.extend_from_slice(format!("DEL {i} sig{i}:\n").as_bytes());
        } else {
            script.extend_from_slice(format!("XCHG {i} sig{i}: new{i}\n").as_bytes());
        }
    }
    for i in 0..50_000 {
        script.extend_from_slice(format!("ADD add{i}\n").as_bytes());
    }
    script.extend_from_slice(b"CLOSE\n");
    let mut db = cdiff::Database::new();
    db.insert("big.ndb", data);
    db.apply(&Script::parse(&script).unwrap()).unwrap();
    let out = db.get("big.ndb").unwrap();
    let lines = out.iter().filter(|&&b| b == b'\n').count() as u64;
    // n/2 untouched + n/4 exchanged + 50k added (n/4 deleted)
    assert_eq!(lines, n / 2 + n / 4 + 50_000);
    assert!(out.starts_with(b"sig1:0:*:00000001\nnew2\nsig3:0:*:00000003\nsig5:0:*:00000005\n"));
}

#[test]
fn build_refuses_patches_the_reference_cannot_read() {
    // 1024-bit key: a tiny patch is shorter than the 350 bytes the reference requires
    let small = SigningKey::generate(1024).unwrap();
    assert!(cdiff::patch::build(2, b"OPEN a.db\nADD x\nCLOSE\n", &small).is_err());
    // 4096-bit key: the signature does not fit in the last 350 bytes
    let big = SigningKey::generate(4096).unwrap();
    assert!(cdiff::patch::build(2, b"OPEN a.db\nADD x\nCLOSE\n", &big).is_err());
}
