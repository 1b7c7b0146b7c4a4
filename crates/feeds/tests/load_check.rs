//! The load check with the real `clamscan` (found through `testkit::tools`).

use feeds::{Error, LoadCheck, LoadChecker};

use crate::support::ndb;

fn checker() -> Option<LoadChecker> {
    testkit::tools::require("clamscan").map(|p| LoadChecker::with_tool(Some(p)))
}

#[test]
fn clamav_loads_a_valid_ndb_and_refuses_a_broken_one_with_its_message() {
    let Some(c) = checker() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.ndb");
    std::fs::write(&good, ndb("Good", "6665656473")).unwrap();
    assert_eq!(c.check("good.ndb", &good).unwrap(), LoadCheck::Passed);
    let bad = tmp.path().join("bad.ndb");
    std::fs::write(&bad, b"Broken.Sig:0:*:zz66\n").unwrap();
    let e = c.check("bad.ndb", &bad).unwrap_err();
    let Error::LoadCheck { file, message } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(file, "bad.ndb");
    assert!(message.contains("Malformed database"), "{message}");
    // The temporary directory is not in the message.
    assert!(!message.contains("feeds-load-check-"), "{message}");
}

#[test]
fn a_file_clamav_does_not_load_by_name_is_skipped_not_refused() {
    let Some(c) = checker() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("notes.txt");
    std::fs::write(&f, b"hello\n").unwrap();
    assert!(matches!(
        c.check("notes.txt", &f).unwrap(),
        LoadCheck::Skipped(_)
    ));
}

#[test]
fn without_clamscan_the_check_is_skipped_and_said_so() {
    let c = LoadChecker::with_tool(None);
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("a.ndb");
    std::fs::write(&f, b"anything").unwrap();
    for _ in 0..2 {
        let r = c.check("a.ndb", &f).unwrap();
        assert_eq!(r, LoadCheck::Skipped("clamscan not found".into()));
    }
}
