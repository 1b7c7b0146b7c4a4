//! Phases 1 and 2 for one database ([`SyncRun::sync_database`]): learn upstream's
//! version ([`super::learn`]), then download the new `.cvd` and verify it fully, plan
//! ([`crate::plan`]) from what it really is, download and verify the cdiffs and
//! `.sign` files ([`super::download`]), check the chain (previous published base + new
//! cdiffs == new `.cvd`) and backfill older cdiffs ([`super::backfill`]). The result is
//! a verified [`Update`] for phase 3, or the reason the database keeps its last good
//! state; either way a [`DatabaseOutcome`] in the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tracing::{error, info, warn};

use super::config::DatabaseSpec;
use super::download::Downloads;
use super::learn::UpstreamVersions;
use super::report::DatabaseOutcome;
use super::{SyncRun, now_secs};
use crate::error::{Chain, Error, ErrorKind, io_err};
use crate::model::{HeldDatabase, MirrorFile};
use crate::plan::{PlanPolicy, plan};

/// Verified downloads to move into the new generation, with their names there.
pub(super) type NewFiles = Vec<(MirrorFile, PathBuf)>;

/// A verified update of one database, ready to assemble.
pub(super) struct Update {
    pub(super) version: u32,
    /// Downloaded files to publish.
    pub(super) new_files: NewFiles,
    /// Held files to carry over.
    pub(super) carry: Vec<MirrorFile>,
    pub(super) cdiffs: Vec<u32>,
    /// Backfilled (signature-verified, chain-unproven) cdiff versions among `cdiffs`.
    pub(super) unproven: Vec<u32>,
    /// The URL of the new `.cvd` (`None`: the `.cvd` is carried over).
    pub(super) source_url: Option<String>,
}

/// One database's pass through phases 1 and 2: what every step needs, and what the
/// pass has learned so far (kept when a later step fails).
pub(super) struct DatabasePass<'r> {
    /// Its verified downloads.
    pub(super) from: Downloads<'r>,
    /// What the published generation holds of it.
    held: HeldDatabase,
    /// The published generation's directory (`None`: nothing published yet).
    published: Option<&'r Path>,
    /// The plan policy, with the database's own `.sign` setting.
    policy: PlanPolicy,
    /// The cdiff version upstream no longer had at an earlier backfill (from
    /// `status.json`, while the record is in force): backfill stays above it.
    pub(super) known_missing: Option<u32>,
    /// Learned: the version upstream holds (advertised, then what its `.cvd` is).
    upstream: Option<u32>,
    /// Learned: the cdiff version upstream answered "not found" for in this pass's
    /// backfill walk.
    pub(super) missing: Option<u32>,
}

impl SyncRun<'_> {
    /// Phases 1 and 2 for `spec`: its outcome goes into the report, its verified
    /// update (if any) into `self.updates` for phase 3.
    pub(super) fn sync_database(&mut self, spec: &DatabaseSpec, versions: &mut UpstreamVersions) {
        let config = self.config;
        let name = &spec.name;
        let held = self
            .published
            .snapshot
            .databases
            .get(name)
            .cloned()
            .unwrap_or_default();
        let before = held.version;
        let held_cdiffs: Vec<u32> = held.cdiffs.keys().copied().collect();
        let mut pass = DatabasePass {
            from: Downloads {
                spec,
                bases: spec.upstreams.as_deref().unwrap_or(&config.upstreams),
                transport: &mut self.transport,
                verifier: &self.verifier,
                limits: config.limits,
                dir: self.downloads.join(name),
            },
            held,
            published: self.published.dir.as_deref(),
            policy: PlanPolicy {
                signs: spec.signs,
                ..config.policy
            },
            known_missing: self
                .status
                .databases
                .get(name)
                .and_then(|s| s.backfill_missing_in_force(now_secs())),
            upstream: None,
            missing: None,
        };
        let result = pass.run(versions);
        let (upstream, missing) = (pass.upstream, pass.missing);
        if let Some(m) = missing {
            self.backfill_missing.insert(name.clone(), m);
        }
        let old_unproven = self.published.trust.unproven_of(name);
        let unproven_in = |cdiffs: &[u32], new: &[u32]| -> Vec<u32> {
            cdiffs
                .iter()
                .copied()
                .filter(|v| old_unproven.contains(v) || new.contains(v))
                .collect()
        };
        // The outcome when the database stays at its last good state.
        let kept = |result| DatabaseOutcome {
            name: name.clone(),
            before,
            after: before,
            upstream,
            unproven_cdiffs: unproven_in(&held_cdiffs, &[]),
            cdiffs: held_cdiffs.clone(),
            fetched_from: None,
            result,
        };
        let outcome = match result {
            Ok(Some(u)) => {
                info!(db = %name, from = ?before, to = u.version, "verified update");
                let o = DatabaseOutcome {
                    name: name.clone(),
                    before,
                    after: Some(u.version),
                    upstream,
                    cdiffs: u.cdiffs.clone(),
                    unproven_cdiffs: unproven_in(&u.cdiffs, &u.unproven),
                    fetched_from: u.source_url.clone(),
                    result: Ok(true),
                };
                self.updates.insert(name.clone(), u);
                o
            }
            Ok(None) => kept(Ok(false)),
            Err(e) => {
                match e.kind() {
                    ErrorKind::Chain => {
                        error!(db = %name, "CHAIN INCONSISTENT, keeping the last good state: {}", Chain(&e))
                    }
                    _ => error!(db = %name, "keeping the last good state: {}", Chain(&e)),
                }
                kept(Err(e))
            }
        };
        self.report.databases.push(outcome);
    }
}

impl DatabasePass<'_> {
    /// Learns the version, then updates: `Ok(None)` when there is nothing new.
    fn run(&mut self, versions: &mut UpstreamVersions) -> Result<Option<Update>, Error> {
        let dir = &self.from.dir;
        std::fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
        let db = self.from.spec.name.clone();
        let advertised =
            versions.version_of(&mut self.from, &db, self.held.version, self.published)?;
        self.upstream = Some(advertised);
        self.update(advertised)
    }

    /// Phase 2 for a database upstream says holds version `advertised`.
    fn update(&mut self, advertised: u32) -> Result<Option<Update>, Error> {
        let db = self.from.spec.name.clone();
        if let Some(h) = self.held.version.filter(|&h| h >= advertised) {
            if h > advertised {
                warn!(db = %db, held = h, advertised, "upstream is behind us; keeping ours");
            }
            // Nothing new; a held chain short of the keep window (an older release kept
            // fewer cdiffs) is backfilled once.
            let p = plan(&db, &self.held, advertised, &self.policy);
            let b = self.backfill(&p.backfill, None)?;
            if b.versions.is_empty() {
                return Ok(None);
            }
            let mut cdiffs: Vec<u32> = p.publish_cdiffs.into_iter().collect();
            cdiffs.extend(&b.versions);
            cdiffs.sort_unstable();
            return Ok(Some(Update {
                version: h,
                new_files: b.files,
                carry: p.carry,
                cdiffs,
                unproven: b.versions,
                source_url: None,
            }));
        }
        let minimum = self
            .held
            .version
            .map_or(advertised, |h| advertised.max(h + 1));
        // 1. The new .cvd, fully verified; older than advertised → next upstream.
        let cvd_file = MirrorFile::Cvd { db: db.clone() };
        let (cvd, version) = self.from.cvd(minimum)?;
        self.upstream = Some(version);
        // 2. Plan against what it really is.
        let p = plan(&db, &self.held, version, &self.policy);
        let mut new_files = vec![(cvd_file.clone(), cvd.path.clone())];
        let mut cdiff_paths: BTreeMap<u32, PathBuf> = BTreeMap::new();
        let mut chain_broken = false;
        for f in p.fetch.iter().filter(|f| **f != cvd_file) {
            match f {
                MirrorFile::CvdSign { .. } => {
                    let d = self.from.sign(f, &cvd.path)?;
                    new_files.push((f.clone(), d.path));
                }
                MirrorFile::Cdiff { version: v, .. } => {
                    if chain_broken {
                        continue;
                    }
                    match self.from.cdiff(*v) {
                        Ok(d) => {
                            cdiff_paths.insert(*v, d.path);
                        }
                        Err(Error::NotFound { .. }) => {
                            warn!(db = %db, file = %f, "cdiff missing upstream: the chain restarts at version {version}");
                            chain_broken = true;
                        }
                        Err(e) => return Err(e),
                    }
                }
                MirrorFile::CdiffSign { version: v, .. } => {
                    if chain_broken {
                        continue;
                    }
                    let Some(content) = cdiff_paths.get(v).cloned() else {
                        continue;
                    };
                    let d = self.from.sign(f, &content)?;
                    new_files.push((f.clone(), d.path));
                }
                MirrorFile::Cvd { .. } | MirrorFile::Manifest => {}
            }
        }
        if chain_broken {
            new_files.retain(|(f, _)| !matches!(f, MirrorFile::CdiffSign { .. }));
            // The chain restarts at the new `.cvd`: what is older can only be backfilled.
            let restart = plan(&db, &HeldDatabase::default(), version, &self.policy);
            let b = self.backfill(&restart.backfill, Some(version))?;
            new_files.extend(b.files);
            return Ok(Some(Update {
                version,
                new_files,
                carry: Vec::new(),
                cdiffs: b.versions.clone(),
                unproven: b.versions,
                source_url: Some(cvd.url.clone()),
            }));
        }
        // 3. Chain check: previous published base + every new cdiff == the new .cvd.
        if let (Some(base), Some(cur)) = (p.chain_base, self.published) {
            let cdiffs: Vec<PathBuf> = (base + 1..=version)
                .filter_map(|v| cdiff_paths.get(&v).cloned())
                .collect();
            self.from
                .verifier
                .chain(
                    &cur.join(cvd_file.to_string()),
                    &cdiffs,
                    &cvd.path,
                    &self.from.spec.keys,
                )
                .map_err(|source| Error::Chain {
                    db: db.clone(),
                    detail: format!(
                        "{db}.cvd version {base} (published) + {db}-{}..{db}-{version}.cdiff do not reproduce {db}.cvd version {version} from {}",
                        base + 1,
                        cvd.url
                    ),
                    source,
                })?;
        }
        for v in &p.publish_cdiffs {
            if let Some(path) = cdiff_paths.remove(v) {
                new_files.push((
                    MirrorFile::Cdiff {
                        db: db.clone(),
                        version: *v,
                    },
                    path,
                ));
            }
        }
        // 4. Backfill below the proven chain (signature-verified, chain-unproven).
        let b = self.backfill(&p.backfill, Some(version))?;
        new_files.extend(b.files);
        let mut cdiffs: Vec<u32> = p.publish_cdiffs.into_iter().collect();
        cdiffs.extend(&b.versions);
        cdiffs.sort_unstable();
        Ok(Some(Update {
            version,
            new_files,
            carry: p.carry,
            cdiffs,
            unproven: b.versions,
            source_url: Some(cvd.url.clone()),
        }))
    }
}
