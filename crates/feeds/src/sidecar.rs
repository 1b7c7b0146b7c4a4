//! Digest sidecars: `<file>.sha256` / `<file>.md5` in `sha256sum` / `md5sum` format
//! (`<hex>  <name>`, `<hex> *<name>`, or a bare `<hex>`; a multi-line list is searched
//! for the line naming the file).

use std::io::Read;
use std::path::Path;

use md5::Md5;
use sha2::{Digest as _, Sha256};

use crate::Error;

/// The largest sidecar read.
pub const MAX_SIDECAR_SIZE: u64 = 64 * 1024;

/// The digest of a sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SidecarAlgorithm {
    /// `<file>.sha256`, SHA-256.
    Sha256,
    /// `<file>.md5`, MD5 (an integrity check against damage, not against forgery).
    Md5,
}

impl SidecarAlgorithm {
    /// `sha256` or `md5`: the name, and the sidecar's extension.
    pub fn name(self) -> &'static str {
        match self {
            SidecarAlgorithm::Sha256 => "sha256",
            SidecarAlgorithm::Md5 => "md5",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            SidecarAlgorithm::Sha256 => 64,
            SidecarAlgorithm::Md5 => 32,
        }
    }
}

/// Parses the sidecar `text` for the file named `file`: returns the digest as
/// lower-case hex.
///
/// A line is `<hex>`, `<hex>  <name>` or `<hex> *<name>` (a path before the name is
/// ignored: only its last component must equal `file`). With one line, a name is
/// optional; with several, the line naming `file` is taken and there must be exactly one.
///
/// ```
/// use feeds::{parse_sidecar, SidecarAlgorithm};
/// let h = "d41d8cd98f00b204e9800998ecf8427e";
/// assert_eq!(parse_sidecar(SidecarAlgorithm::Md5, "a.ndb", format!("{h}  a.ndb\n").as_bytes()).unwrap(), h);
/// assert!(parse_sidecar(SidecarAlgorithm::Md5, "a.ndb", format!("{h}  b.ndb\n").as_bytes()).is_err());
/// ```
///
/// # Errors
/// [`Error::MalformedSidecar`] naming what is wrong.
pub fn parse_sidecar(
    algorithm: SidecarAlgorithm,
    file: &str,
    text: &[u8],
) -> Result<String, Error> {
    let bad = |reason: &str| Error::MalformedSidecar {
        file: file.to_owned(),
        algorithm: algorithm.name(),
        reason: reason.to_owned(),
    };
    if text.len() as u64 > MAX_SIDECAR_SIZE {
        return Err(bad(&format!("larger than {MAX_SIDECAR_SIZE} bytes")));
    }
    let text = std::str::from_utf8(text).map_err(|_| bad("not UTF-8 text"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return Err(bad("empty"));
    }
    let mut found: Option<String> = None;
    for line in &lines {
        let (hex, name) = match line.split_once(char::is_whitespace) {
            Some((h, rest)) => (h, Some(rest.trim_start().trim_start_matches('*'))),
            None => (*line, None),
        };
        let hex = hex.to_ascii_lowercase();
        let valid_hex =
            hex.len() == algorithm.hex_len() && hex.bytes().all(|b| b.is_ascii_hexdigit());
        let names_file = match name {
            Some(n) => n.rsplit(['/', '\\']).next() == Some(file),
            None => lines.len() == 1,
        };
        if !names_file {
            continue;
        }
        if !valid_hex {
            return Err(bad(&format!(
                "not {} hex digits of {}",
                algorithm.hex_len(),
                algorithm.name()
            )));
        }
        if found.is_some() {
            return Err(bad("the file is listed more than once"));
        }
        found = Some(hex);
    }
    found.ok_or_else(|| bad("no line for this file"))
}

/// The SHA-256 and MD5 of a file (lower-case hex) and its size, in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileDigests {
    pub sha256: String,
    pub md5: String,
    pub size: u64,
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn digest_file(path: &Path) -> Result<FileDigests, Error> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut sha = Sha256::new();
    let mut md5 = Md5::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        sha.update(&buf[..n]);
        md5.update(&buf[..n]);
        size += n as u64;
    }
    Ok(FileDigests {
        sha256: hex(&sha.finalize()),
        md5: hex(&md5.finalize()),
        size,
    })
}

/// Checks `digests` (of the file `file`) against the sidecar bytes.
pub(crate) fn check(
    algorithm: SidecarAlgorithm,
    file: &str,
    digests: &FileDigests,
    sidecar: &[u8],
) -> Result<(), Error> {
    let expected = parse_sidecar(algorithm, file, sidecar)?;
    let actual = match algorithm {
        SidecarAlgorithm::Sha256 => &digests.sha256,
        SidecarAlgorithm::Md5 => &digests.md5,
    };
    if *actual != expected {
        return Err(Error::SidecarMismatch {
            file: file.to_owned(),
            algorithm: algorithm.name(),
            expected,
            actual: actual.clone(),
        });
    }
    Ok(())
}
