//! Phase 2's building block: one database's verified downloads. A file is downloaded
//! from the first usable upstream, checked, and on a failed check rejected for the rest
//! of the run and fetched from the next upstream ([`fetch_checked`]).

use std::path::{Path, PathBuf};

use tracing::warn;

use super::config::{DatabaseSpec, Limits};
use crate::error::{Chain, CheckError, Error};
use crate::model::MirrorFile;
use crate::transport::{Downloaded, Transport};
use crate::verify::Verifier;

/// Verified downloads of one database, into its directory under `staging/downloads/`.
pub(super) struct Downloads<'r> {
    /// The database.
    pub(super) spec: &'r DatabaseSpec,
    /// Its upstreams, in order.
    pub(super) bases: &'r [String],
    /// The network.
    pub(super) transport: &'r mut dyn Transport,
    /// Checks signatures and certificates.
    pub(super) verifier: &'r Verifier,
    /// Size limits.
    pub(super) limits: Limits,
    /// Where its files are downloaded.
    pub(super) dir: PathBuf,
}

impl Downloads<'_> {
    /// Downloads and fully verifies `<db>.cvd`; returns it with its version. A version
    /// below `minimum` is a rollback: that upstream is rejected and the next one tried.
    pub(super) fn cvd(&mut self, minimum: u32) -> Result<(Downloaded, u32), Error> {
        let Self {
            spec,
            bases,
            transport,
            verifier,
            limits,
            dir,
        } = self;
        let db = &spec.name;
        let file = MirrorFile::Cvd { db: db.clone() };
        fetch_checked(*transport, bases, &file, dir, limits.cvd, |d| {
            let v =
                verifier
                    .cvd(&d.path, db, &spec.keys)
                    .map_err(|source| Error::Verification {
                        db: db.clone(),
                        file: file.to_string(),
                        url: d.url.clone(),
                        source,
                    })?;
            if v < minimum {
                return Err(Error::Rollback {
                    db: db.clone(),
                    url: d.url.clone(),
                    offered: v,
                    expected: minimum,
                });
            }
            Ok(v)
        })
    }

    /// Downloads and fully verifies `<db>-<v>.cdiff` (size limit, container signature
    /// with the database's CDIFF key, script, version equal to the name's).
    pub(super) fn cdiff(&mut self, v: u32) -> Result<Downloaded, Error> {
        let Self {
            spec,
            bases,
            transport,
            verifier,
            limits,
            dir,
        } = self;
        let db = &spec.name;
        let f = MirrorFile::Cdiff {
            db: db.clone(),
            version: v,
        };
        let (d, ()) = fetch_checked(*transport, bases, &f, dir, limits.cdiff, |d| {
            let bad = |source: CheckError| Error::Verification {
                db: db.clone(),
                file: f.to_string(),
                url: d.url.clone(),
                source,
            };
            let got = verifier.cdiff(&d.path, &spec.keys).map_err(bad)?;
            if got != v {
                return Err(bad(CheckError::CdiffVersion {
                    header: got,
                    name: v,
                }));
            }
            Ok(())
        })?;
        Ok(d)
    }

    /// Downloads the `.sign` file `f` and verifies it against the downloaded file at
    /// `content`. Upstream not having it is an error of its own ([`Error::NotFound`]):
    /// a backfill walk ends there.
    pub(super) fn sign_of(&mut self, f: &MirrorFile, content: &Path) -> Result<Downloaded, Error> {
        let Self {
            spec,
            bases,
            transport,
            verifier,
            limits,
            dir,
        } = self;
        let (d, ()) = fetch_checked(*transport, bases, f, dir, limits.sign, |d| {
            verifier
                .sign(&d.path, content)
                .map_err(|source| Error::Verification {
                    db: spec.name.clone(),
                    file: f.to_string(),
                    url: d.url.clone(),
                    source,
                })
        })?;
        Ok(d)
    }

    /// [`sign_of`](Self::sign_of) for a `.sign` the update needs: upstream not having
    /// it fails verification.
    pub(super) fn sign(&mut self, f: &MirrorFile, content: &Path) -> Result<Downloaded, Error> {
        self.sign_of(f, content).map_err(|e| match e {
            Error::NotFound { file, source } => Error::Verification {
                db: self.spec.name.clone(),
                file,
                url: self.bases.join(", "),
                source: CheckError::SignMissing(source),
            },
            e => e,
        })
    }
}

/// Downloads `file`, running `check` on it; a file failing the check is rejected and
/// the next upstream tried. Returns the download and the check's result, or the last
/// check failure when every upstream served a bad file.
fn fetch_checked<T>(
    t: &mut dyn Transport,
    bases: &[String],
    file: &MirrorFile,
    dest: &Path,
    max: u64,
    mut check: impl FnMut(&Downloaded) -> Result<T, Error>,
) -> Result<(Downloaded, T), Error> {
    let name = file.to_string();
    let mut last_bad: Option<Error> = None;
    for _ in 0..bases.len().max(1) {
        let d = match t.download(bases, &name, dest, max) {
            Ok(d) => d,
            Err(e) => return Err(last_bad.unwrap_or(e)),
        };
        match check(&d) {
            Ok(v) => return Ok((d, v)),
            Err(e) => {
                let why = Chain(&e).to_string();
                warn!(url = %d.url, "rejected, trying the next upstream: {why}");
                t.reject(&d.url, &why);
                let _ = std::fs::remove_file(&d.path);
                last_bad = Some(e);
            }
        }
    }
    Err(last_bad.unwrap_or_else(|| Error::Upstream {
        what: name,
        source: "no upstream left".into(),
    }))
}
