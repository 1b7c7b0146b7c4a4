//! The published local generation: what a target must hold.

use std::io::Read;
use std::path::{Path, PathBuf};

use mirror_core::layout::MirrorLayout as Layout;
use mirror_core::model::MirrorFile;
use sha2::{Digest, Sha256};

use crate::error::PublishError;

/// One file of the generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Its name (the object name under the prefix).
    pub name: String,
    /// What it is in the database grammar (`None`: a feed file or the feeds listing).
    pub file: Option<MirrorFile>,
    /// How it moves (order, headers).
    pub kind: crate::plan::Kind,
    /// Where it is.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// The version in a `<db>.cvd` header (`None` for other kinds).
    pub cvd_version: Option<u32>,
    /// The build time (Unix seconds) in a `<db>.cvd` header (`None` for other kinds).
    pub cvd_build_time: Option<i64>,
}

/// The files of the generation `DIR/current` points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalGeneration {
    /// Its name (`g-<n>`).
    pub name: String,
    /// Its files in the [`MirrorFile`] grammar, then its feed files (`<feed>/<file>`,
    /// as its `feeds.json` lists them) and `feeds.json`, by name.
    pub files: Vec<LocalFile>,
}

impl LocalGeneration {
    /// Reads the generation `DIR/current` points at (names, sizes, SHA-256, `.cvd`
    /// versions); `Ok(None)` when nothing is published yet.
    pub fn read(dir: &Path) -> Result<Option<Self>, PublishError> {
        let layout = Layout::new(dir);
        let id = match layout.current_generation() {
            Ok(Some(id)) => id,
            Ok(None) => return Ok(None),
            Err(e) => {
                return Err(PublishError::Local {
                    path: layout.current(),
                    source: std::io::Error::other(e.to_string()),
                });
            }
        };
        let gdir = layout.generation(id);
        Self::read_dir(&gdir, id.dir_name()).map(Some)
    }

    /// Reads the files of a generation directory `gdir` named `name`.
    pub fn read_dir(gdir: &Path, name: String) -> Result<Self, PublishError> {
        let local = |path: &Path| {
            let path = path.to_owned();
            move |source| PublishError::Local { path, source }
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(gdir).map_err(local(gdir))? {
            let entry = entry.map_err(local(gdir))?;
            let Some(fname) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some(file) = MirrorFile::parse(&fname) else {
                continue;
            };
            let path = entry.path();
            let (size, sha256, head) = hash_file(&path).map_err(local(&path))?;
            let header = match file {
                MirrorFile::Cvd { .. } => cvd_format::Header::parse(&head).ok(),
                _ => None,
            };
            let cvd_version = header.as_ref().map(|h| h.version);
            let cvd_build_time = header.map(|h| h.build_time.unix_timestamp());
            files.push(LocalFile {
                name: fname,
                kind: crate::plan::Kind::of(&file),
                file: Some(file),
                path,
                size,
                sha256,
                cvd_version,
                cvd_build_time,
            });
        }
        // The feeds: exactly what the listing names, then the listing.
        let listing = mirror_core::feed_listing::FeedListing::read(gdir).map_err(local(gdir))?;
        if let Some(l) = listing {
            let names = l
                .paths()
                .into_iter()
                .map(|p| (p, crate::plan::Kind::FeedFile))
                .chain(std::iter::once((
                    mirror_core::feed_listing::FEEDS_FILE.to_owned(),
                    crate::plan::Kind::FeedListing,
                )));
            for (fname, kind) in names {
                let path = gdir.join(&fname);
                let (size, sha256, _) = hash_file(&path).map_err(local(&path))?;
                files.push(LocalFile {
                    name: fname,
                    file: None,
                    kind,
                    path,
                    size,
                    sha256,
                    cvd_version: None,
                    cvd_build_time: None,
                });
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(LocalGeneration { name, files })
    }
}

/// Size, SHA-256 (hex) and the first 512 bytes (a `.cvd` header) of a file.
fn hash_file(path: &Path) -> std::io::Result<(u64, String, Vec<u8>)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    let mut head = Vec::with_capacity(512);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 512 {
            let take = (512 - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex(&h.finalize()), head))
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
