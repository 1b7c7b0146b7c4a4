//! Build → verify → unpack gives back exactly the members, for arbitrary member sets,
//! as `.cvd` (signed) and `.cld` (plain tar); plus builder edge cases.

use std::collections::BTreeMap;
use std::io::Cursor;

use crate::common::*;
use cvd_format::{CheckStatus, Compression, CvdBuilder, Error, Limits};
use proptest::prelude::*;

fn member_sets() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    prop::collection::btree_map(
        "[a-z0-9][a-z0-9_+-]{0,12}\\.(hdb|ndb|ldb|cbc|fp|ign2)",
        prop::collection::vec(any::<u8>(), 0..3000),
        0..8,
    )
}

fn build_cvd(name: &str, members: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut b = CvdBuilder::new(name, 42).flevel(200).builder("proptest");
    for (n, d) in members {
        b = b.member(n, d.clone());
    }
    let mut out = Cursor::new(Vec::new());
    b.write_cvd(&mut out, &test_keys())
        .unwrap_or_else(|e| panic!("build: {e}"));
    out.into_inner()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn cvd_round_trips(members in member_sets()) {
        let bytes = build_cvd("prop", &members);
        let opts = test_opts();
        let contents = cvd_format::read_members(bytes.as_slice(), &opts)
            .unwrap_or_else(|e| panic!("verify: {e}"));
        let r = &contents.report;
        prop_assert_eq!(r.compression, Compression::Gzip);
        prop_assert_eq!(r.checks.legacy_signature, CheckStatus::Passed);
        prop_assert_eq!(r.checks.info_signature, CheckStatus::Passed);
        prop_assert_eq!(r.header.version, 42);
        prop_assert_eq!(r.header.flevel, 200);
        let got: BTreeMap<String, Vec<u8>> = contents
            .members
            .iter()
            .filter(|m| m.name != "prop.info")
            .map(|m| (m.name.clone(), m.data.clone()))
            .collect();
        prop_assert_eq!(&got, &members);

        // Unpack gives the same files, and nothing else.
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        cvd_format::unpack_reader(bytes.as_slice(), dir.path(), &opts)
            .unwrap_or_else(|e| panic!("unpack: {e}"));
        let mut on_disk = BTreeMap::new();
        for entry in std::fs::read_dir(dir.path()).unwrap_or_else(|e| panic!("{e}")) {
            let entry = entry.unwrap_or_else(|e| panic!("{e}"));
            let name = entry.file_name().to_string_lossy().into_owned();
            let data = std::fs::read(entry.path()).unwrap_or_else(|e| panic!("{e}"));
            on_disk.insert(name, data);
        }
        prop_assert!(on_disk.remove("prop.info").is_some());
        prop_assert_eq!(&on_disk, &members);

        // And the unpacked directory (plus a COPYING) becomes a .cld that verifies.
        std::fs::write(dir.path().join("COPYING"), b"licence\n").unwrap_or_else(|e| panic!("{e}"));
        let mut cld = Vec::new();
        let header = cvd_format::write_cld_from_dir(dir.path(), &mut cld, &Limits::default())
            .unwrap_or_else(|e| panic!("cld: {e}"));
        prop_assert_eq!(header.version, 42);
        let again = cvd_format::read_members(cld.as_slice(), &opts)
            .unwrap_or_else(|e| panic!("verify cld: {e}"));
        prop_assert_eq!(again.report.compression, Compression::None);
        prop_assert_eq!(again.report.checks.legacy_signature, CheckStatus::NotPresent);
        prop_assert_eq!(&again.report.info, &r.info);
        for (n, d) in &members {
            prop_assert_eq!(again.get(n), Some(d.as_slice()));
        }
    }

    #[test]
    fn cld_builder_round_trips(members in member_sets()) {
        let mut b = CvdBuilder::new("local", 3).member("COPYING", b"licence\n".to_vec());
        for (n, d) in &members {
            b = b.member(n, d.clone());
        }
        let mut cld = Vec::new();
        b.write_cld(&mut cld, Some(&test_keys().info)).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(&cld[512..519], b"COPYING");
        let contents = cvd_format::read_members(cld.as_slice(), &test_opts())
            .unwrap_or_else(|e| panic!("verify: {e}"));
        for (n, d) in &members {
            prop_assert_eq!(contents.get(n), Some(d.as_slice()));
        }
    }
}

#[test]
fn builder_header_fields_and_member_order() {
    let when = time::macros::datetime!(2024-02-01 10:20:59 +01:00);
    let mut out = Cursor::new(Vec::new());
    let header = CvdBuilder::new("daily", 27000)
        .flevel(210)
        .builder("tester")
        .build_time(when)
        .sign_time(Some(1706779259))
        .member("daily.ndb", b"A:0:*:41\nB:0:*:42\n# comment\n\n".to_vec())
        .member("daily.cbc", b"bytecode\nmore\n".to_vec())
        .member("daily.cfg", b"DOCONF:0x0:0:0\n".to_vec())
        .member("COPYING", b"licence\n".to_vec())
        .write_cvd(&mut out, &test_keys())
        .unwrap_or_else(|e| panic!("{e}"));
    // 2 signature lines in .ndb + 1 per .cbc, .cfg not counted.
    assert_eq!(header.signatures, 3);
    assert_eq!(
        header.build_time,
        time::macros::datetime!(2024-02-01 10:20 +01:00)
    );
    assert_eq!(header.sign_time, Some(1706779259));
    let report = cvd_format::verify_reader(out.get_ref().as_slice(), &test_opts())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.header, header);
    let names: Vec<_> = report.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "COPYING",
            "daily.info",
            "daily.ndb",
            "daily.cbc",
            "daily.cfg"
        ]
    );
    let listed: Vec<_> = report
        .info
        .entries
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(listed, ["daily.ndb", "daily.cbc", "daily.cfg"]);
}

#[test]
fn builder_refuses_bad_input() {
    let keys = test_keys();
    let build = |b: CvdBuilder| b.write_cvd(Cursor::new(Vec::new()), &keys).err();
    let cases = [
        CvdBuilder::new("x", 1).member("../x.hdb", vec![]),
        CvdBuilder::new("x", 1)
            .member("a.hdb", vec![])
            .member("a.hdb", vec![]),
        CvdBuilder::new("x", 1).member("x.info", vec![]),
        CvdBuilder::new("bad/name", 1),
        CvdBuilder::new("x", 1).builder("a:b"),
        CvdBuilder::new("x", 1).builder(""),
    ];
    for b in cases {
        let dbg = format!("{b:?}");
        assert!(build(b).is_some(), "accepted: {dbg}");
    }
    // A .cld needs COPYING.
    let err = CvdBuilder::new("x", 1)
        .member("a.hdb", vec![])
        .write_cld(Vec::new(), None)
        .err();
    assert!(matches!(err, Some(Error::Build { .. })), "{err:?}");
}

#[test]
fn verify_with_the_wrong_keys_fails() {
    let bytes = build_cvd(
        "k",
        &BTreeMap::from([("k.hdb".to_string(), b"x\n".to_vec())]),
    );
    // Official keys do not trust the test key.
    let err = cvd_format::verify_reader(bytes.as_slice(), &cvd_format::VerifyOptions::new()).err();
    assert!(
        matches!(err, Some(Error::LegacySignature { .. })),
        "{err:?}"
    );
}

#[test]
fn members_from_dir_and_write_cld_from_dir_agree() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (n, d) in [
        ("COPYING", "l\n"),
        ("d.hdb", "a:1:b\n"),
        ("d.ndb", "x:0:*:41\n"),
    ] {
        std::fs::write(dir.path().join(n), d).unwrap_or_else(|e| panic!("{e}"));
    }
    let mut cld = Vec::new();
    CvdBuilder::new("d", 9)
        .members_from_dir(dir.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .write_cld(&mut cld, Some(&test_keys().info))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    cvd_format::unpack_reader(cld.as_slice(), out.path(), &test_opts())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut again = Vec::new();
    cvd_format::write_cld_from_dir(out.path(), &mut again, &Limits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cld, again,
        "unpack + write_cld_from_dir reproduces the .cld byte for byte"
    );

    // A stray file or a modified file in the directory is refused.
    std::fs::write(out.path().join("stray.hdb"), "x").unwrap_or_else(|e| panic!("{e}"));
    let err = cvd_format::write_cld_from_dir(out.path(), Vec::new(), &Limits::default()).err();
    assert!(
        matches!(err, Some(Error::MemberNotInInfo { .. })),
        "{err:?}"
    );
    std::fs::remove_file(out.path().join("stray.hdb")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(out.path().join("d.hdb"), "changed\n").unwrap_or_else(|e| panic!("{e}"));
    let err = cvd_format::write_cld_from_dir(out.path(), Vec::new(), &Limits::default()).err();
    assert!(matches!(err, Some(Error::MemberMismatch { .. })), "{err:?}");
}
