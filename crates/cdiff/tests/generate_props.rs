//! Property tests: apply(A, generate(A, B)) == B, and the generated scripts do the same
//! under the reference implementation (`sigtool --run-cdiff`).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use cdiff::{Database, Script, generate};
use proptest::prelude::*;

/// A line from a small alphabet (so that old and new share lines), sometimes with
/// spaces, a leading space, a CR or non-UTF-8 bytes.
fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (0u8..12).prop_map(|n| format!("sig{n}:0:*:{n:02x}").into_bytes()),
        1 => "[a-z ]{0,6}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..5),
    ]
}

fn file() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(line(), 0..25).prop_map(|lines| {
        let mut out = Vec::new();
        for l in lines {
            out.extend_from_slice(&l);
            out.push(b'\n');
        }
        out
    })
}

fn database() -> impl Strategy<Value = Database> {
    proptest::collection::btree_map(
        prop_oneof![Just("a.db"), Just("b.ndb"), Just("c.info"), Just("d.ldb")],
        file(),
        0..4,
    )
    .prop_map(|files| {
        let mut db = Database::new();
        for (n, f) in files {
            db.insert(n, f);
        }
        db
    })
}

/// Makes `new` representable relative to `old`: a file that is new must not be empty.
fn representable(old: &Database, mut new: Database) -> Database {
    let empty_new: Vec<String> = new
        .files()
        .iter()
        .filter(|(n, d)| d.is_empty() && old.get(n).is_none())
        .map(|(n, _)| n.clone())
        .collect();
    for n in empty_new {
        new.insert(n, b"x\n".to_vec());
    }
    new
}

/// Derives B from A by realistic edits so that most lines are shared.
fn edited(a: Database) -> impl Strategy<Value = (Database, Database)> {
    let a2 = a.clone();
    (
        proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, line()), 0..12),
        database(),
        any::<bool>(),
    )
        .prop_map(move |(edits, other, mix)| {
            let mut b = a2.clone();
            for (name, data) in a2.files() {
                let mut lines: Vec<Vec<u8>> =
                    data.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                lines.pop();
                for (idx, kind, l) in &edits {
                    let at = if lines.is_empty() {
                        0
                    } else {
                        idx.index(lines.len() + 1)
                    };
                    match kind {
                        0 if at < lines.len() => {
                            lines.remove(at);
                        }
                        1 if at < lines.len() => lines[at] = l.clone(),
                        _ => lines.insert(at.min(lines.len()), l.clone()),
                    }
                }
                let mut out = Vec::new();
                for l in lines {
                    out.extend_from_slice(&l);
                    out.push(b'\n');
                }
                b.insert(name.clone(), out);
            }
            if mix {
                for (n, d) in other.files() {
                    if b.get(n).is_none() {
                        b.insert(n.clone(), d.clone());
                    }
                }
                if let Some(first) = a2.files().keys().next() {
                    b.remove(first);
                }
            }
            let b = representable(&a2, b);
            (a2.clone(), b)
        })
}

fn pairs() -> impl Strategy<Value = (Database, Database)> {
    prop_oneof![
        database().prop_flat_map(edited),
        (database(), database()).prop_map(|(a, b)| {
            let b = representable(&a, b);
            (a, b)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn apply_generate_is_identity((a, b) in pairs()) {
        let script = generate::script(&a, &b).unwrap();
        let bytes = script.to_bytes().unwrap();
        let reparsed = Script::parse(&bytes).unwrap();
        prop_assert_eq!(&reparsed, &script);
        let mut got = a.clone();
        got.apply(&reparsed).unwrap();
        prop_assert_eq!(got, b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The reference applies our generated scripts with the same result.
    #[test]
    fn sigtool_applies_generated_scripts((a, b) in pairs()) {
        let Some(sigtool) = testkit::tools::require("sigtool") else { return Ok(()); };
        let script = generate::script(&a, &b).unwrap().to_bytes().unwrap();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("db");
        std::fs::create_dir(&dir).unwrap();
        crate::util::write_db(&a, &dir);
        let ok = crate::util::sigtool_run_script(&sigtool, &dir, &script);
        prop_assert!(ok, "sigtool failed on:\n{}", String::from_utf8_lossy(&script));
        let got = Database::read_dir(&dir, &cdiff::Limits::default()).unwrap();
        prop_assert_eq!(got, b);
    }

    /// Differential test of the apply engine: random (mostly valid) scripts give the
    /// same files, or both fail, in our engine and in sigtool.
    #[test]
    fn engine_matches_sigtool_on_random_scripts(
        a in database(),
        blocks in proptest::collection::vec(block(), 1..5),
    ) {
        let cmds: Vec<Vec<u8>> = blocks.into_iter().flatten().collect();
        let Some(sigtool) = testkit::tools::require("sigtool") else { return Ok(()); };
        let mut a = a;
        for n in ["a.db", "b.ndb", "c.info"] {
            if a.get(n).is_none_or(|d| d.len() < 20) {
                a.insert(n, b"sig1:0:*:01\nsig2:0:*:02\nsig3 x\nsig4\n\nsig6\n".to_vec());
            }
        }
        let mut script = Vec::new();
        for c in &cmds {
            script.extend_from_slice(c);
            script.push(b'\n');
        }
        let ours = Script::parse(&script).and_then(|s| {
            let mut db = a.clone();
            db.apply(&s).map(|()| db)
        });
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("db");
        std::fs::create_dir(&dir).unwrap();
        crate::util::write_db(&a, &dir);
        let ok = crate::util::sigtool_run_script(&sigtool, &dir, &script);
        let theirs = Database::read_dir(&dir, &cdiff::Limits::default()).unwrap();
        match ours {
            Ok(db) => {
                prop_assert!(ok, "sigtool failed, we succeeded:\n{}", String::from_utf8_lossy(&script));
                prop_assert_eq!(db, theirs, "script:\n{}", String::from_utf8_lossy(&script));
            }
            Err(e) => prop_assert!(!ok, "we failed ({}), sigtool succeeded:\n{}", e, String::from_utf8_lossy(&script)),
        }
    }
}

/// An `OPEN` ... `CLOSE` block of edits, or a single other command.
fn block() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let name = prop_oneof![Just("a.db"), Just("b.ndb"), Just("c.info")];
    let edit = prop_oneof![
        2 => line().prop_map(|l| [b"ADD ".to_vec(), l].concat()),
        2 => (1u8..5, prop_oneof![Just(""), Just("sig")])
            .prop_map(|(n, p)| format!("DEL {n} {p}").into_bytes()),
        2 => (1u8..5, prop_oneof![Just(""), Just("sig")], "[a-z ]{0,4}")
            .prop_map(|(n, p, new)| format!("XCHG {n} {p} {new}").into_bytes()),
    ];
    prop_oneof![
        6 => (name, proptest::collection::vec(edit, 0..4)).prop_map(|(n, edits)| {
            let mut v = vec![format!("OPEN {n}").into_bytes()];
            v.extend(edits);
            v.push(b"CLOSE".to_vec());
            v
        }),
        2 => command().prop_map(|c| vec![c]),
    ]
}

/// A random script line biased towards commands that can apply.
fn command() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![Just("a.db"), Just("b.ndb"), Just("c.info")];
    let prefix = prop_oneof![Just(""), Just("sig"), Just("sig1"), Just("x")];
    prop_oneof![
        3 => name.clone().prop_map(|n| format!("OPEN {n}").into_bytes()),
        3 => Just(b"CLOSE".to_vec()),
        2 => line().prop_map(|l| [b"ADD ".to_vec(), l].concat()),
        2 => (1u8..8, prefix.clone()).prop_map(|(n, p)| format!("DEL {n} {p}").into_bytes()),
        2 => (1u8..8, prefix.clone(), "[a-z ]{0,4}")
            .prop_map(|(n, p, new)| format!("XCHG {n} {p} {new}").into_bytes()),
        1 => name.clone().prop_map(|n| format!("UNLINK {n}").into_bytes()),
        1 => (name.clone(), name, 1u8..4, 1u8..6, prefix.clone(), prefix)
            .prop_map(|(s, d, a, b, p, q)| format!("MOVE {s} {d} {a} {p} {} {q}", a + b).into_bytes()),
        1 => Just(b"# comment".to_vec()),
    ]
}
