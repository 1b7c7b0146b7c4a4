//! Property tests of the TXT record parser.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::collections::BTreeMap;

use dns_versions::{DatabaseRecord, VersionRecord};
use proptest::prelude::*;

fn record() -> impl Strategy<Value = VersionRecord> {
    (
        "[0-9]{1,3}(\\.[0-9]{1,3}){0,2}(-rc[0-9])?",
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::btree_map("[a-z0-9_-]{1,20}", any::<u32>(), 0..6),
    )
        .prop_map(|(engine, main, daily, time, w, flevel, sb, bc, extra)| {
            let extra: BTreeMap<String, u32> = extra
                .into_iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "main" | "daily" | "bytecode" | "safebrowsing")
                })
                .collect();
            VersionRecord {
                engine,
                main,
                daily,
                time,
                version_warning: w,
                flevel,
                safebrowsing: sb,
                bytecode: bc,
                extra,
            }
        })
}

proptest! {
    #[test]
    fn write_then_parse_is_identity(r in record()) {
        let s = r.to_string();
        prop_assert_eq!(VersionRecord::parse(&s).unwrap(), r.clone());
        prop_assert_eq!(VersionRecord::parse(&format!("{s}\n")).unwrap(), r);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,200}") {
        if let Ok(r) = VersionRecord::parse(&s) {
            prop_assert_eq!(VersionRecord::parse(&r.to_string()).unwrap(), r);
        }
    }

    #[test]
    fn record_like_strings_never_panic(fields in proptest::collection::vec("[0-9a-z=.:+-]{0,12}", 0..14)) {
        let s = fields.join(":");
        if let Ok(r) = VersionRecord::parse(&s) {
            prop_assert_eq!(VersionRecord::parse(&r.to_string()).unwrap(), r);
        }
    }

    #[test]
    fn a_removed_field_is_an_error(r in record(), drop in 1usize..8) {
        let s = r.to_string();
        let mut f: Vec<&str> = s.split(':').collect();
        // Later fields shift left: an extension lands in a numeric slot, or the
        // record has only seven standard fields. Either way: an error, never a zero.
        f.remove(drop);
        prop_assert!(VersionRecord::parse(&f.join(":")).is_err());
    }

    #[test]
    fn a_non_numeric_field_is_an_error(r in record(), at in 1usize..8, junk in "[a-zA-Z ]{1,5}") {
        let s = r.to_string();
        let mut f: Vec<String> = s.split(':').map(str::to_string).collect();
        f[at] = format!("{junk}{}", f[at]); // (a suffix on the last field could be trimmed whitespace)
        prop_assert!(VersionRecord::parse(&f.join(":")).is_err());
    }

    #[test]
    fn database_record_write_then_parse_is_identity(version in any::<u32>(), time in any::<u64>()) {
        let r = DatabaseRecord { version, time };
        let s = r.to_string();
        prop_assert_eq!(DatabaseRecord::parse(&s).unwrap(), r);
        // and the reference client's reading: field 0 and field 1 by position
        let f: Vec<&str> = s.split(':').collect();
        prop_assert_eq!(f[0].parse::<u32>().unwrap(), version);
        prop_assert_eq!(f[1].parse::<u64>().unwrap(), time);
    }

    #[test]
    fn database_record_arbitrary_strings_never_panic(s in "[0-9a-z:+ -]{0,30}") {
        if let Ok(r) = DatabaseRecord::parse(&s) {
            prop_assert_eq!(DatabaseRecord::parse(&r.to_string()).unwrap(), r);
        }
    }
}
