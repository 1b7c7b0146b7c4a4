//! The engine behind the `Transport` trait, without sockets: which URLs it asks for,
//! which upstream it rejects, how a cdiff missing upstream restarts the chain, and that
//! a custom database uses its own upstreams.
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::*;
use mirror_core::transport::{Downloaded, Transport};
use mirror_core::{DatabaseSpec, Error, SyncConfig, VersionSource};

/// Upstreams as in-memory file maps, keyed by base URL.
#[derive(Default)]
struct FakeUpstreams {
    sites: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    rejected: Vec<String>,
    asked: Vec<String>,
}

impl FakeUpstreams {
    fn site(&mut self, base: &str, n: u32) {
        let dir = tempfile::tempdir().unwrap();
        arrange_official(dir.path(), n, true);
        self.sites.insert(base.to_owned(), read_tree(dir.path()));
    }
}

impl Transport for FakeUpstreams {
    fn download(
        &mut self,
        bases: &[String],
        file: &str,
        dest: &Path,
        max: u64,
    ) -> Result<Downloaded, Error> {
        for b in bases {
            let url = format!("{b}/{file}");
            if self.rejected.iter().any(|r| r.starts_with(b.as_str())) {
                continue; // a rejected upstream is not asked again
            }
            self.asked.push(url.clone());
            if let Some(bytes) = self.sites.get(b).and_then(|s| s.get(file)) {
                assert!(bytes.len() as u64 <= max);
                std::fs::write(dest.join(file), bytes).unwrap();
                return Ok(Downloaded {
                    path: dest.join(file),
                    url,
                    bytes: bytes.len() as u64,
                });
            }
        }
        Err(Error::NotFound {
            file: file.into(),
            source: bases.join(" ").into(),
        })
    }

    fn read_head(
        &mut self,
        bases: &[String],
        file: &str,
        len: usize,
        _if_modified_since: Option<std::time::SystemTime>,
    ) -> Result<Option<(Vec<u8>, String)>, Error> {
        for b in bases {
            if let Some(bytes) = self.sites.get(b).and_then(|s| s.get(file)) {
                return Ok(Some((
                    bytes[..len.min(bytes.len())].to_vec(),
                    format!("{b}/{file}"),
                )));
            }
        }
        Err(Error::NotFound {
            file: file.into(),
            source: bases.join(" ").into(),
        })
    }

    fn reject(&mut self, url: &str, _reason: &str) {
        self.rejected.push(url.to_owned());
    }
}

fn cfg(mirror: &Path, spec: DatabaseSpec, global: &str) -> SyncConfig {
    SyncConfig::builder(mirror)
        .versions(VersionSource::NoDns)
        .database(spec)
        .sign_roots(test_roots())
        .verify_time(pinned_time())
        .upstream(global)
        .build()
        .unwrap()
}

#[test]
fn a_cdiff_missing_upstream_restarts_the_chain_at_the_new_cvd() {
    let mirror = tempfile::tempdir().unwrap();
    let mut t = FakeUpstreams::default();
    t.site("http://a", 3);
    let c = cfg(
        mirror.path(),
        DatabaseSpec::new("test").unwrap(),
        "http://a",
    );
    mirror_core::sync(&c, &mut t, None).unwrap();
    t.site("http://a", 4);
    mirror_core::sync(&c, &mut t, None).unwrap();
    // 4 proven on top of 3; 2 and 3 backfilled when the mirror started at 3
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (4, vec![2, 3, 4])
    );

    t.site("http://a", 6);
    t.sites.get_mut("http://a").unwrap().remove("test-5.cdiff");
    let r = mirror_core::sync(&c, &mut t, None).unwrap();
    assert!(r.databases[0].result.as_ref().is_ok_and(|&u| u), "{r:?}");
    // 6 is published; no cdiff can be proven past the gap, so the chain restarts at 6
    // and is backfilled down to the missing test-5.cdiff: only test-6 (unproven)
    assert_eq!(check_snapshot(&tree(mirror.path())).unwrap(), (6, vec![6]));
    assert_eq!(r.databases[0].unproven_cdiffs, [6]);
}

#[test]
fn a_bad_file_rejects_its_upstream_and_the_next_one_serves_everything_after() {
    let mirror = tempfile::tempdir().unwrap();
    let mut t = FakeUpstreams::default();
    t.site("http://a", 4);
    t.site("http://b", 4);
    let c = SyncConfig::builder(mirror.path())
        .versions(VersionSource::NoDns)
        .database(DatabaseSpec::new("test").unwrap())
        .sign_roots(test_roots())
        .verify_time(pinned_time())
        .upstream("http://a")
        .upstream("http://b")
        .build()
        .unwrap();
    mirror_core::sync(&c, &mut t, None).unwrap();
    t.site("http://a", 6);
    t.site("http://b", 6);
    let bad = t
        .sites
        .get_mut("http://a")
        .unwrap()
        .get_mut("test-6.cdiff")
        .unwrap();
    bad[100] ^= 1;
    t.asked.clear();
    let r = mirror_core::sync(&c, &mut t, None).unwrap();
    assert_eq!(r.databases[0].after, Some(6), "{r:?}");
    assert_eq!(t.rejected, ["http://a/test-6.cdiff"]);
    // after the bad cdiff from a, everything came from b
    let after: Vec<&String> = t
        .asked
        .iter()
        .skip_while(|u| *u != "http://a/test-6.cdiff")
        .skip(1)
        .collect();
    assert!(
        !after.is_empty() && after.iter().all(|u| u.starts_with("http://b/")),
        "{after:?}"
    );
    assert_eq!(
        check_snapshot(&tree(mirror.path())).unwrap(),
        (6, vec![2, 3, 4, 5, 6])
    );
}

#[test]
fn a_database_with_its_own_upstreams_never_asks_the_global_ones() {
    let mirror = tempfile::tempdir().unwrap();
    let mut t = FakeUpstreams::default();
    t.site("http://own", 2);
    let spec = DatabaseSpec::new("test")
        .unwrap()
        .upstreams(vec!["http://own".into()]);
    let c = cfg(mirror.path(), spec, "http://global");
    let r = mirror_core::sync(&c, &mut t, None).unwrap();
    assert_eq!(r.databases[0].after, Some(2), "{r:?}");
    assert!(
        t.asked.iter().all(|u| u.starts_with("http://own/")),
        "{:?}",
        t.asked
    );
}

#[test]
fn builder_rejects_unusable_configurations() {
    let err = SyncConfig::builder("/m")
        .upstream("http://a")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no database"));
    let err = SyncConfig::builder("/m")
        .database(DatabaseSpec::new("x").unwrap())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no upstream"));
    let err = SyncConfig::builder("/m")
        .upstream("ftp://a")
        .database(DatabaseSpec::new("x").unwrap())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("ftp://a"));
    let err = SyncConfig::builder("/m")
        .upstream("http://a")
        .database(DatabaseSpec::new("x").unwrap())
        .database(DatabaseSpec::new("x").unwrap())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("twice"));
    assert!(DatabaseSpec::new("a/b").is_err());
}
