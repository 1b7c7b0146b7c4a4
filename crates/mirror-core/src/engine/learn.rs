//! Phase 1, learning versions: which version of each database upstream holds. DNS
//! once per sync ([`UpstreamVersions::ask_dns`]); per database DNS if it says
//! something newer than what is held, else the upstream's `dns.txt` manifest (fetched
//! once per list of upstreams), else the 512-byte header of `<db>.cvd`
//! ([`UpstreamVersions::version_of`]). A stale or lagging DNS record therefore never
//! means "nothing new".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tracing::warn;

use super::SyncConfig;
use super::config::VersionSource;
use super::download::Downloads;
use crate::error::{BoxError, Chain, CheckError, Error};
use crate::model::MirrorFile;
use crate::verify;

/// Source of DNS version records, injectable for tests. Returns the versions of the
/// databases the record covers, or why it could not be used (missing, stale, bad), as
/// an error value whose chain is logged.
pub trait DnsVersions {
    /// Looks the record up.
    fn lookup(&mut self, name: &str) -> Result<BTreeMap<String, u32>, BoxError>;
}

/// What this sync learned about upstream's versions so far.
pub(super) struct UpstreamVersions {
    /// The DNS record's versions (empty: no DNS, or the record was unusable).
    dns: BTreeMap<String, u32>,
    /// The `dns.txt` manifest per list of upstreams (`None`: unavailable or unusable).
    manifests: BTreeMap<Vec<String>, Option<BTreeMap<String, u32>>>,
    /// Where manifests are downloaded.
    manifest_dir: PathBuf,
    /// Largest manifest accepted.
    manifest_limit: u64,
}

impl UpstreamVersions {
    /// Asks DNS once, when the configuration says to and a resolver is given; an
    /// unusable record is logged and the sync falls back to manifests and header
    /// probes.
    pub(super) fn ask_dns(
        config: &SyncConfig,
        dns: Option<&mut dyn DnsVersions>,
        downloads: &Path,
    ) -> Self {
        let dns = match (&config.versions, dns) {
            (VersionSource::Dns { name }, Some(d)) => match d.lookup(name) {
                Ok(v) => v,
                Err(e) => {
                    warn!(record = %name, "DNS versions unusable, falling back to the manifest or header probe: {}", Chain(&*e));
                    BTreeMap::new()
                }
            },
            _ => BTreeMap::new(),
        };
        Self {
            dns,
            manifests: BTreeMap::new(),
            manifest_dir: downloads.join(".manifest"),
            manifest_limit: config.limits.manifest,
        }
    }

    /// The version upstream holds of database `db` (`held`: the version published,
    /// `published`: the published generation's directory, for a conditional header
    /// probe).
    pub(super) fn version_of(
        &mut self,
        from: &mut Downloads<'_>,
        db: &str,
        held: Option<u32>,
        published: Option<&Path>,
    ) -> Result<u32, Error> {
        if let Some(&v) = self.dns.get(db).filter(|&&v| held.is_none_or(|h| v > h)) {
            return Ok(v);
        }
        if let Some(v) = self.manifest(from).and_then(|m| m.get(db)) {
            return Ok(*v);
        }
        header_probe(from, db, held, published)
    }

    /// The manifest of `from`'s upstreams, downloaded at the first call for them.
    fn manifest(&mut self, from: &mut Downloads<'_>) -> Option<&BTreeMap<String, u32>> {
        let dir = &self.manifest_dir;
        let limit = self.manifest_limit;
        self.manifests
            .entry(from.bases.to_vec())
            .or_insert_with(|| {
                let _ = std::fs::create_dir_all(dir);
                match from.transport.download(
                    from.bases,
                    crate::model::MANIFEST_FILE,
                    dir,
                    limit,
                ) {
                    Ok(d) => match std::fs::read_to_string(&d.path)
                        .map_err(BoxError::from)
                        .and_then(|s| Ok(crate::manifest::parse(&s, SystemTime::now())?))
                    {
                        Ok(m) => Some(m),
                        Err(e) => {
                            warn!(url = %d.url, "manifest unusable, probing headers instead: {}", Chain(&*e));
                            None
                        }
                    },
                    Err(_) => None,
                }
            })
            .as_ref()
    }
}

/// The version in the header of upstream's `<db>.cvd`, read with a range request.
fn header_probe(
    from: &mut Downloads<'_>,
    db: &str,
    held: Option<u32>,
    published: Option<&Path>,
) -> Result<u32, Error> {
    let file = MirrorFile::Cvd { db: db.to_owned() }.to_string();
    // Conditional on the build time of the `.cvd` we publish: `304` when upstream has
    // nothing newer (what an upstream ignoring `Range` answers instead of a whole file).
    let held_built = match (held, published) {
        (Some(h), Some(dir)) => verify::cvd_file_build_time(&dir.join(&file))
            .inspect_err(|e| warn!(db = %db, "probing without If-Modified-Since: {e}"))
            .ok()
            .map(|t| (h, t)),
        _ => None,
    };
    let head = from.transport.read_head(
        from.bases,
        &file,
        cvd_format::header::HEADER_SIZE,
        held_built.map(|(_, t)| t),
    )?;
    let Some((head, url)) = head else {
        // Only asked conditionally when a version is held.
        return held_built.map(|(h, _)| h).ok_or_else(|| Error::Upstream {
            what: file,
            source: "304 Not Modified to an unconditional header probe".into(),
        });
    };
    verify::header_version(&head).map_err(|check| Error::Verification {
        db: db.to_owned(),
        file,
        url,
        source: CheckError::HeaderProbe(Box::new(check)),
    })
}
