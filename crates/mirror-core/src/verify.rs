//! Verification glue: full checks of downloaded files through `cvd-format` and `cdiff`.
//! Every failure is returned as the failed check ([`CheckError`], with its cause); the
//! engine adds the file name and URL.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use cvd_format::sign::{SignFile, SignRoots, SignVerifier};
use cvd_format::{Header, KeySet};

use crate::error::{CheckError, Error, io_err};

/// Verifies files with fixed trust anchors and a fixed verification time.
#[derive(Debug)]
pub(crate) struct Verifier {
    sign: SignVerifier,
    /// Reports of the `.cvd` files fully verified by [`Verifier::cvd`] (staged files the
    /// engine downloaded and does not change), by path and keys: the chain check
    /// compares against them instead of inflating the `.cvd` a second time.
    verified: Mutex<HashMap<PathBuf, (KeySet, cvd_format::Report)>>,
}

impl Verifier {
    pub(crate) fn new(roots: Option<&SignRoots>, at: SystemTime) -> Result<Self, Error> {
        let mut sign = SignVerifier::new().at(time::OffsetDateTime::from(at));
        if let Some(r) = roots {
            sign = sign.roots(r.clone());
        }
        Ok(Self {
            sign,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Full verification of a signed `.cvd` of database `db` (header, MD5, legacy RSA
    /// signature, `.info` signature, header and member list); returns its version.
    pub(crate) fn cvd(&self, path: &Path, db: &str, keys: &KeySet) -> Result<u32, CheckError> {
        // A report stands only for the file it was made from: forget any earlier one
        // for this path before the file is verified again (it may have been replaced).
        if let Ok(mut verified) = self.verified.lock() {
            verified.remove(path);
        }
        let opts = cvd_format::VerifyOptions::new()
            .keys(keys.clone())
            .require_signed(true);
        let report = cvd_format::verify_file(path, &opts)?;
        if report.name != db {
            return Err(CheckError::WrongDatabase {
                found: report.name,
                expected: db.to_owned(),
            });
        }
        let version = report.header.version;
        if let Ok(mut verified) = self.verified.lock() {
            verified.insert(path.to_path_buf(), (keys.clone(), report));
        }
        Ok(version)
    }

    /// Verifies a `.cdiff`: size limit, signature, header, and that its script
    /// decompresses and parses; returns the version it produces.
    pub(crate) fn cdiff(&self, path: &Path, keys: &KeySet) -> Result<u32, CheckError> {
        let limits = cdiff::Limits::default();
        let input = cdiff::chain::PatchInput::read(path, &limits)?;
        let patch =
            cdiff::Patch::verify_with_limits(&input.name, input.bytes, &keys.cdiff, &limits)?;
        patch.script()?;
        Ok(patch.version())
    }

    /// Verifies a `.sign` file against the file it signs.
    pub(crate) fn sign(&self, sign_path: &Path, content: &Path) -> Result<(), CheckError> {
        let sign = SignFile::read_from(open(sign_path)?)?;
        self.sign
            .verify(&sign, std::io::BufReader::new(open(content)?))?;
        Ok(())
    }

    /// Chain check: `base` + `cdiffs` (in order) must reproduce the members of `new`
    /// byte for byte. Everything happens in memory; nothing is written.
    ///
    /// When [`Self::cvd`] verified `new` with the same keys, its report (every member's
    /// size and SHA-256, computed over the member bytes) stands in for the file, which
    /// is then not read again; the file is re-read only to locate a difference found
    /// that way (first differing line).
    pub(crate) fn chain(
        &self,
        base: &Path,
        cdiffs: &[PathBuf],
        new: &Path,
        keys: &KeySet,
    ) -> Result<(), CheckError> {
        let limits = cdiff::Limits::default();
        let mut patches = Vec::with_capacity(cdiffs.len());
        for p in cdiffs {
            patches.push(cdiff::chain::PatchInput::read(p, &limits)?);
        }
        let opts = cdiff::chain::ChainOptions::new()
            .keys(keys.clone())
            .limits(limits);
        let verified = self
            .verified
            .lock()
            .ok()
            .and_then(|mut v| v.remove(new))
            .filter(|(k, _)| k == keys);
        if let Some((_, report)) = verified {
            let base_file = std::io::BufReader::new(open(base)?);
            match cdiff::chain::check_verified(&report, base_file, &patches, &opts)? {
                cdiff::chain::Consistency::Consistent { .. } => return Ok(()),
                // Re-read both files below for the first differing line.
                cdiff::chain::Consistency::Differs(_) => {}
                other => return Err(CheckError::Inconsistent(format!("{other:?}"))),
            }
        }
        let target = std::io::BufReader::new(open(new)?);
        let base = std::io::BufReader::new(open(base)?);
        match cdiff::chain::check(target, base, &patches, &opts)? {
            cdiff::chain::Consistency::Consistent { .. } => Ok(()),
            cdiff::chain::Consistency::Differs(d) => Err(CheckError::Differs(d.to_string())),
            other => Err(CheckError::Inconsistent(format!("{other:?}"))),
        }
    }
}

fn open(path: &Path) -> Result<std::fs::File, CheckError> {
    std::fs::File::open(path).map_err(|source| CheckError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the version from a `.cvd` header (the first 512 bytes).
pub(crate) fn header_version(head: &[u8]) -> Result<u32, CheckError> {
    let head = head
        .get(..cvd_format::header::HEADER_SIZE)
        .ok_or(CheckError::ShortHeader { len: head.len() })?;
    Ok(Header::parse(head)?.version)
}

/// The header of a `.cvd` file.
fn cvd_file_header(path: &Path) -> Result<Header, Error> {
    let mut f = std::fs::File::open(path).map_err(io_err(path, "open"))?;
    let mut head = [0u8; cvd_format::header::HEADER_SIZE];
    f.read_exact(&mut head)
        .map_err(io_err(path, "read header of"))?;
    Header::parse(&head).map_err(|e| Error::Published {
        path: path.to_path_buf(),
        source: CheckError::from(e),
    })
}

/// Reads the version from the header of a `.cvd` file.
pub(crate) fn cvd_file_version(path: &Path) -> Result<u32, Error> {
    cvd_file_header(path).map(|h| h.version)
}

/// The build time in the header of a `.cvd` file (what a header probe sends as
/// `If-Modified-Since`).
pub(crate) fn cvd_file_build_time(path: &Path) -> Result<SystemTime, Error> {
    cvd_file_header(path).map(|h| h.build_time.into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;
    use testkit::upstream::{History, PublisherKeys};

    #[test]
    fn chain_check_uses_the_report_of_the_verified_cvd_once() {
        let keys = PublisherKeys::test();
        let key_set = keys.key_set();
        let history = History::synthetic("demo", 2, &keys).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let r1 = history.release(1).unwrap();
        let r2 = history.release(2).unwrap();
        let base = write("base.cvd", r1.cvd());
        let cdiff = write("demo-2.cdiff", r2.cdiff().unwrap());
        let new = write("demo.cvd", r2.cvd());

        let verifier = Verifier::new(None, SystemTime::now()).unwrap();
        assert_eq!(verifier.cvd(&new, "demo", &key_set).unwrap(), 2);
        // The verified file is damaged afterwards: the chain check does not read it
        // again, it compares with what the verification saw.
        let good = std::fs::read(&new).unwrap();
        std::fs::write(&new, &good[..good.len() / 2]).unwrap();
        let cdiffs = [cdiff];
        verifier.chain(&base, &cdiffs, &new, &key_set).unwrap();
        // The report is used once: a second check reads the (now damaged) file.
        let err = verifier.chain(&base, &cdiffs, &new, &key_set).unwrap_err();
        assert!(matches!(err, CheckError::Cdiff(_)), "{err:?}");
        // Verifying the path again forgets the earlier report even when it fails.
        std::fs::write(&new, &good).unwrap();
        verifier.cvd(&new, "demo", &key_set).unwrap();
        std::fs::write(&new, &good[..good.len() / 2]).unwrap();
        assert!(verifier.cvd(&new, "demo", &key_set).is_err());
        assert!(verifier.chain(&base, &cdiffs, &new, &key_set).is_err());
    }
}
