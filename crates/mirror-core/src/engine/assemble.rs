//! Phase 3, assembling the new generation in `staging/` ([`SyncRun::assemble`]): every
//! database's files (phase 2's verified downloads moved in, unchanged files hard-linked
//! from the published generation), `dns.txt`, the trust record ([`crate::trust`]) and
//! the trace ([`crate::trace`]), and any [`ExtraContent`]. Making it durable and
//! switching `current` is phase 4 ([`crate::publish::NewGeneration::publish`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use tracing::warn;

use super::{SyncRun, now_ms};
use crate::error::{Chain, Error};
use crate::model::MirrorFile;
use crate::publish::NewGeneration;
use crate::trace::{DatabaseTrace, Hop, TRACE_FORMAT, TraceRecord, bounded_hops};
use crate::trust::TrustRecord;

/// Verified content of another kind than the signature databases, to include in the
/// generation as one file or one directory tree under [`name`](Self::name).
///
/// This is where a new kind of content (the third-party feeds of phase 2b) plugs in: a phase of
/// its own between phase 2 and this one downloads and verifies it into
/// `staging/downloads/` and passes the whole of it, new and unchanged, to
/// [`SyncRun::assemble`]. A generation is assembled when a database changed or any
/// extra content is [`ExtraSource::Verified`] (new); content passed as
/// [`ExtraSource::Published`] is carried over unchanged; content not passed is not in
/// the new generation. The names are checked by [`NewGeneration::move_in_extra`]: one path
/// component, never a database file's name or a dot file. What readers make of the
/// names (`sigserver`'s served-file grammar, `publish-target`'s list, the snapshot
/// reader, which ignore them today) is the new kind's to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExtraContent {
    /// Its name in the generation directory.
    pub(crate) name: String,
    /// Where it comes from.
    pub(crate) source: ExtraSource,
}

/// Where an [`ExtraContent`] comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExtraSource {
    /// New, verified content in `staging/` (a file or a directory), moved in.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    Verified(PathBuf),
    /// Unchanged: the published generation's entry of the same name, hard-linked.
    Published,
}

impl SyncRun<'_> {
    /// Phase 3: assembles one new generation holding every database, and `extra`, if
    /// anything changed; `None` when the published generation stays.
    pub(super) fn assemble(
        &mut self,
        extra: Vec<ExtraContent>,
    ) -> Result<Option<NewGeneration>, Error> {
        let published = &self.published;
        let cur_dir = published.dir.as_deref();
        let snapshot = &published.snapshot;
        let need_manifest = cur_dir.is_some() && !snapshot.has_manifest;
        // A generation without a valid trust record is superseded by one that has it
        // (the conservative reading in phase 0), so that the state that decides trust
        // is immutable.
        let need_record = cur_dir.is_some() && !published.trust.source.is_record();
        let new_extra = extra
            .iter()
            .any(|e| matches!(e.source, ExtraSource::Verified(_)));
        if self.updates.is_empty() && !need_manifest && !need_record && !new_extra {
            return Ok(None);
        }
        let config = self.config;
        let mut generation = NewGeneration::begin(&config.layout)?;
        let mut names: Vec<&String> = snapshot.databases.keys().collect();
        for spec in &config.databases {
            if !snapshot.databases.contains_key(&spec.name) {
                names.push(&spec.name);
            }
        }
        let mut versions = BTreeMap::new();
        let mut unproven = BTreeMap::new();
        let previous_trace = match cur_dir {
            Some(d) => TraceRecord::read(d).unwrap_or_else(|e| {
                warn!("previous trace unreadable, not carried over: {}", Chain(&e));
                None
            }),
            None => None,
        };
        let published_ms = now_ms();
        let mut trace = TraceRecord {
            format: TRACE_FORMAT,
            mirror: config.mirror_name.clone(),
            databases: BTreeMap::new(),
        };
        let carried_trace = |name: &str, version: Option<u32>| {
            previous_trace
                .as_ref()
                .and_then(|t| t.databases.get(name))
                .filter(|t| Some(t.version) == version)
                .cloned()
        };
        for name in names {
            if let Some(u) = self.updates.remove(name) {
                let entry = match &u.source_url {
                    Some(url) => {
                        let mut hops = self.hints.hops_for(name, u.version);
                        hops.push(Hop {
                            mirror: config.mirror_name.clone(),
                            published_ms,
                        });
                        Some(DatabaseTrace {
                            version: u.version,
                            fetched_from: Some(url.clone()),
                            published_ms,
                            hops: bounded_hops(hops),
                        })
                    }
                    None => carried_trace(name, Some(u.version)),
                };
                if let Some(e) = entry {
                    trace.databases.insert(name.clone(), e);
                }
                let o = self.report.databases.iter().find(|o| o.name == *name);
                unproven.insert(
                    name.clone(),
                    o.map(|o| o.unproven_cdiffs.clone()).unwrap_or_default(),
                );
                if let Some(cur) = cur_dir {
                    for f in &u.carry {
                        generation.link_from(cur, f)?;
                    }
                }
                for (f, path) in &u.new_files {
                    generation.move_in(path, f)?;
                }
                versions.insert(name.clone(), u.version);
            } else if let Some(cur) = cur_dir {
                for f in snapshot.files_of(name) {
                    generation.link_from(cur, &f)?;
                }
                if snapshot.databases.contains_key(name) {
                    unproven.insert(name.clone(), published.trust.unproven_of(name).to_vec());
                }
                if let Some(v) = snapshot.databases.get(name).and_then(|d| d.version) {
                    versions.insert(name.clone(), v);
                    if let Some(e) = carried_trace(name, Some(v)) {
                        trace.databases.insert(name.clone(), e);
                    }
                }
            }
        }
        for e in &extra {
            match (&e.source, cur_dir) {
                (ExtraSource::Verified(path), _) => generation.move_in_extra(path, &e.name)?,
                (ExtraSource::Published, Some(cur)) => generation.link_extra_from(cur, &e.name)?,
                (ExtraSource::Published, None) => {
                    return Err(Error::Layout {
                        path: config.layout.current().join(&e.name),
                        reason: "carried over, but nothing is published".into(),
                    });
                }
            }
        }
        generation.write(
            &MirrorFile::Manifest,
            crate::manifest::render(&versions, SystemTime::now()).as_bytes(),
        )?;
        // What this generation proves is recorded inside it, before it is made
        // durable and switched.
        generation.write_trust(&TrustRecord::new(unproven))?;
        generation.write_trace(&trace)?;
        Ok(Some(generation))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use std::time::SystemTime;

    use super::{ExtraContent, ExtraSource};
    use crate::engine::{DatabaseSpec, SyncConfig, SyncReport, VersionSource, sync_including};
    use crate::error::Error;
    use crate::trace::SyncHints;
    use crate::transport::{Downloaded, Transport};

    /// Every upstream unreachable: the database keeps its state, so whether a
    /// generation is published depends on the extra content alone.
    struct Unreachable;

    impl Transport for Unreachable {
        fn download(
            &mut self,
            _: &[String],
            f: &str,
            _: &Path,
            _: u64,
        ) -> Result<Downloaded, Error> {
            Err(Error::Upstream {
                what: f.into(),
                source: "unreachable".into(),
            })
        }
        fn read_head(
            &mut self,
            _: &[String],
            f: &str,
            _: usize,
            _: Option<SystemTime>,
        ) -> Result<Option<(Vec<u8>, String)>, Error> {
            Err(Error::Upstream {
                what: f.into(),
                source: "unreachable".into(),
            })
        }
        fn reject(&mut self, _: &str, _: &str) {}
    }

    fn sync(dir: &Path, extra: Vec<ExtraContent>) -> Result<SyncReport, Error> {
        let config = SyncConfig::builder(dir)
            .upstream("http://127.0.0.1:9")
            .database(DatabaseSpec::new("test").unwrap())
            .versions(VersionSource::NoDns)
            .build()
            .unwrap();
        sync_including(&config, &mut Unreachable, None, &SyncHints::none(), extra)
    }

    fn verified(name: &str, path: &Path) -> ExtraContent {
        ExtraContent {
            name: name.into(),
            source: ExtraSource::Verified(path.to_path_buf()),
        }
    }

    fn carried(name: &str) -> ExtraContent {
        ExtraContent {
            name: name.into(),
            source: ExtraSource::Published,
        }
    }

    #[test]
    fn extra_content_is_published_carried_over_and_dropped_as_passed() {
        let mirror = tempfile::tempdir().unwrap();
        let incoming = tempfile::tempdir_in(mirror.path()).unwrap();
        let tree = incoming.path().join("feed");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("sub/a.txt"), b"alpha").unwrap();
        std::fs::write(tree.join("b.txt"), b"beta").unwrap();
        let current = mirror.path().join("current");

        // New content alone makes a generation (the database failed: unreachable).
        let r = sync(mirror.path(), vec![verified("feed", &tree)]).unwrap();
        assert!(r.databases[0].result.is_err());
        let first = r.published.unwrap();
        assert_eq!(
            std::fs::read(current.join("feed/sub/a.txt")).unwrap(),
            b"alpha"
        );
        assert_eq!(std::fs::read(current.join("feed/b.txt")).unwrap(), b"beta");
        assert!(current.join("dns.txt").is_file());

        // Only carried over: nothing new, no generation.
        let r = sync(mirror.path(), vec![carried("feed")]).unwrap();
        assert_eq!(r.published, None);

        // Carried over beside something new: hard links to the same files.
        let file = incoming.path().join("list");
        std::fs::write(&file, b"gamma").unwrap();
        let r = sync(
            mirror.path(),
            vec![carried("feed"), verified("list", &file)],
        )
        .unwrap();
        let second = r.published.unwrap();
        assert!(second > first);
        assert_eq!(std::fs::read(current.join("list")).unwrap(), b"gamma");
        let ino = |g: crate::layout::GenerationId| {
            let p = mirror
                .path()
                .join("generations")
                .join(g.dir_name())
                .join("feed/sub/a.txt");
            std::fs::metadata(p).unwrap().ino()
        };
        assert_eq!(ino(first), ino(second));

        // Not passed: not in the next generation.
        let again = incoming.path().join("list2");
        std::fs::write(&again, b"delta").unwrap();
        sync(mirror.path(), vec![verified("list", &again)])
            .unwrap()
            .published
            .unwrap();
        assert!(!current.join("feed").exists());
        assert_eq!(std::fs::read(current.join("list")).unwrap(), b"delta");
    }

    #[test]
    fn extra_content_never_takes_a_database_file_name_or_a_dot_name() {
        let mirror = tempfile::tempdir().unwrap();
        let src = mirror.path().join("x");
        for name in [
            "test.cvd",
            "dns.txt",
            "daily-3.cdiff",
            ".trust.json",
            "",
            "a/b",
            "..",
        ] {
            std::fs::write(&src, b"x").unwrap();
            let e = sync(mirror.path(), vec![verified(name, &src)]).unwrap_err();
            assert!(matches!(e, Error::Layout { .. }), "{name:?}: {e:?}");
            assert!(!mirror.path().join("current").exists(), "{name:?}");
        }
        // A link inside a tree is refused too.
        let tree = mirror.path().join("t");
        std::fs::create_dir(&tree).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", tree.join("l")).unwrap();
        let e = sync(mirror.path(), vec![verified("t", &tree)]).unwrap_err();
        assert!(matches!(e, Error::Layout { .. }), "{e:?}");
        // Carrying over from an empty mirror is an error, not a silent skip.
        std::fs::write(&src, b"x").unwrap();
        let e = sync(mirror.path(), vec![verified("ok", &src), carried("feed")]).unwrap_err();
        assert!(matches!(e, Error::Layout { .. }), "{e:?}");
    }
}
