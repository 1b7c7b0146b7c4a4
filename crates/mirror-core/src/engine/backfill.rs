//! Phase 2, bootstrap backfill: the older cdiffs no published base precedes (an empty
//! mirror, a restarted chain, a chain an older release kept short), fetched and
//! signature-verified but chain-unproven ([`crate::trust`]).

use tracing::{info, warn};

use super::database::{DatabasePass, NewFiles};
use crate::error::{Chain, Error, ErrorKind};
use crate::model::MirrorFile;

/// What a backfill walk got.
pub(super) struct Backfilled {
    /// Verified downloads to publish (cdiffs and their `.sign`).
    pub(super) files: NewFiles,
    /// Their versions, ascending.
    pub(super) versions: Vec<u32>,
}

impl DatabasePass<'_> {
    /// Walks `versions` (newest first, contiguous, continuing the published chain
    /// downwards), downloading and fully verifying each cdiff and, when the database
    /// wants them, its `.sign`. The walk ends at the first cdiff (or `.sign`) upstream
    /// no longer has, or at an unreachable or rate-limited upstream (what was fetched so
    /// far is kept; a later sync resumes below it); a file that fails verification
    /// fails the database. Versions at or below the one upstream already lacked at an
    /// earlier walk are not asked for again; a 404 for the version this sync publishes
    /// (`fresh`: its `.sign` may lag behind upstream) is not remembered. Otherwise the
    /// version the walk ended at for a 404 becomes [`DatabasePass::missing`].
    pub(super) fn backfill(
        &mut self,
        versions: &[u32],
        fresh: Option<u32>,
    ) -> Result<Backfilled, Error> {
        let db = self.from.spec.name.clone();
        let mut files = Vec::new();
        let mut got = Vec::new();
        let mut missing = None;
        let known_missing = self.known_missing;
        let wanted = versions
            .iter()
            .copied()
            .filter(|&v| known_missing.is_none_or(|m| v > m));
        for v in wanted {
            let stop = |e: &Error| {
                matches!(e.kind(), ErrorKind::Upstream | ErrorKind::RateLimited)
                    || matches!(e, Error::NotFound { .. })
            };
            let cdiff = match self.from.cdiff(v) {
                Ok(d) => d,
                Err(e) if stop(&e) => {
                    info!(db = %db, "backfill of older cdiffs ends below version {}: {}", v + 1, Chain(&e));
                    missing =
                        (matches!(e, Error::NotFound { .. }) && fresh != Some(v)).then_some(v);
                    break;
                }
                Err(e) => return Err(e),
            };
            let cdiff_file = MirrorFile::Cdiff {
                db: db.clone(),
                version: v,
            };
            if self.from.spec.signs {
                let sign_file = MirrorFile::CdiffSign {
                    db: db.clone(),
                    version: v,
                };
                match self.from.sign_of(&sign_file, &cdiff.path) {
                    Ok(d) => files.push((sign_file, d.path)),
                    Err(e) if stop(&e) => {
                        info!(db = %db, "backfill of older cdiffs ends below version {}: {}", v + 1, Chain(&e));
                        missing =
                            (matches!(e, Error::NotFound { .. }) && fresh != Some(v)).then_some(v);
                        let _ = std::fs::remove_file(&cdiff.path);
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            files.push((cdiff_file, cdiff.path));
            got.push(v);
        }
        got.reverse();
        if let (Some(lo), Some(hi)) = (got.first(), got.last()) {
            warn!(
                db = %db,
                "publishing {db}-{lo}..{db}-{hi}.cdiff signature-verified but CHAIN-UNPROVEN: no published base precedes them (bootstrap backfill; bootstrap_cdiffs = false turns this off)"
            );
        }
        self.missing = missing;
        Ok(Backfilled {
            files,
            versions: got,
        })
    }
}
