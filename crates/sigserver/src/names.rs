//! Which request paths name a servable file.
//!
//! This module owns only the URL-path part. What a file name is, and its kind, is
//! `mirror-core`'s file-name grammar ([`mirror_core::model::FileName`]: `<db>.cvd`,
//! `<db>.cld`, `<db>-<v>.cdiff`, `<db>-<v>.cvd.sign`, `<db>-<v>.cdiff.sign`,
//! `dns.txt`); [`Serving`] adds what serving needs (label, `Content-Type`, caching).
//!
//! A request path is accepted only if, after percent-decoding, it is `/` followed by
//! exactly one name of that grammar. Everything is decided on the string alone,
//! before the file system is touched:
//!
//! * malformed percent-encoding, a decoded NUL, `/` or `\` inside the name (including
//!   `%2f`, `%5c`), `.`/`..` segments, control characters, a path not starting with `/`,
//!   or a path longer than [`MAX_PATH_LEN`] bytes → [`PathError::BadRequest`] (400);
//! * any other name outside the grammar → [`PathError::NotFound`] (404).
//!
//! The query string is not part of the path and is ignored (clients add cache
//! busters). Because an accepted name never contains a separator, joining it to the
//! snapshot directory can only name an entry of that directory.

use std::fmt;

use mirror_core::model::FileName;

/// Longest raw request path accepted (bytes, before percent-decoding).
pub const MAX_PATH_LEN: usize = 256;

/// Longest database name accepted (`mirror-core`'s limit).
pub use mirror_core::model::MAX_DB_NAME;

/// The kind of a servable file: `mirror-core`'s grammar kind itself (one enum for the
/// grammar; what serving adds is the [`Serving`] trait).
pub use mirror_core::model::FileNameKind as FileKind;

/// What serving adds per kind of file: its metrics label (the `Content-Type` and
/// `Cache-Control` values are `mirror-core`'s `FileNameKind::content_type` and
/// `cache_control`, shared with the object-storage publisher).
/// Implemented for the grammar's kind so that a new kind cannot go unnoticed (the
/// matches are exhaustive).
pub trait Serving {
    /// The label used in metrics and access logs (`cvd`, `cdiff_sign`, `dns`, ...).
    fn label(&self) -> &'static str;
}

impl Serving for FileKind {
    fn label(&self) -> &'static str {
        match self {
            FileKind::Cvd => "cvd",
            FileKind::Cld => "cld",
            FileKind::Cdiff => "cdiff",
            FileKind::CvdSign => "cvd_sign",
            FileKind::CdiffSign => "cdiff_sign",
            FileKind::Manifest => "dns",
        }
    }
}

/// A request path that names a servable file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedName {
    name: String,
    kind: FileKind,
}

impl ServedName {
    /// The file name (no directory part; safe to join to the snapshot directory).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of the file.
    pub fn kind(&self) -> FileKind {
        self.kind
    }
}

impl fmt::Display for ServedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Why a request path does not name a servable file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// Malformed or hostile (traversal, encoded separator, NUL, overlong): answer 400.
    BadRequest(&'static str),
    /// Well-formed but not a name of the mirror's file grammar: answer 404.
    NotFound,
}

/// Maps a request path (the part of the request target before `?`) to a file name.
///
/// ```
/// use sigserver::names::{parse_request_path, FileKind, PathError};
/// let n = parse_request_path("/daily-27001.cdiff").unwrap();
/// assert_eq!((n.name(), n.kind()), ("daily-27001.cdiff", FileKind::Cdiff));
/// assert_eq!(parse_request_path("/main%2ecvd").unwrap().name(), "main.cvd");
/// assert!(matches!(parse_request_path("/..%2fetc%2fpasswd"), Err(PathError::BadRequest(_))));
/// assert_eq!(parse_request_path("/index.html"), Err(PathError::NotFound));
/// ```
pub fn parse_request_path(path: &str) -> Result<ServedName, PathError> {
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::BadRequest("path too long"));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PathError::BadRequest("path does not start with /"));
    };
    let decoded = percent_decode(rest.as_bytes())?;
    for &b in decoded.iter() {
        match b {
            0 => return Err(PathError::BadRequest("NUL in path")),
            b'/' | b'\\' => return Err(PathError::BadRequest("separator in file name")),
            0x01..=0x1f | 0x7f => return Err(PathError::BadRequest("control character in path")),
            _ => {}
        }
    }
    if *decoded == *b"." || *decoded == *b".." {
        return Err(PathError::BadRequest("dot segment"));
    }
    let name = std::str::from_utf8(&decoded).map_err(|_| PathError::NotFound)?;
    let kind = classify(name).ok_or(PathError::NotFound)?;
    Ok(ServedName {
        name: name.to_owned(),
        kind,
    })
}

/// A request path naming a third-party feed's file: `/<feed>/<file>` (the file or its
/// `.sig`/sidecar; whether the published generation lists it is the caller's to check
/// in its `feeds.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPath {
    /// The feed's name.
    pub feed: String,
    /// The file's name inside the feed.
    pub file: String,
}

/// Maps a request path of two segments, `/<feed>/<file>`, to a [`FeedPath`]; `None`
/// for any other shape (then [`parse_request_path`] decides). Each segment is decoded
/// on its own, so an encoded separator (`%2f`, `%5c`) inside one is refused, as are
/// NUL, control characters, empty and dot segments (400); names outside the feed
/// grammar (one component of `A-Z a-z 0-9 . _ -`, not starting with a dot) are 404.
/// Joining an accepted feed and file to a generation directory can only name an entry
/// of the feed's directory.
///
/// ```
/// use sigserver::names::{parse_feed_path, PathError};
/// let p = parse_feed_path("/sanesecurity/junk.ndb.sig").unwrap().unwrap();
/// assert_eq!((p.feed.as_str(), p.file.as_str()), ("sanesecurity", "junk.ndb.sig"));
/// assert!(parse_feed_path("/daily.cvd").is_none());
/// assert!(matches!(parse_feed_path("/ss/..%2fx"), Some(Err(PathError::BadRequest(_)))));
/// assert_eq!(parse_feed_path("/ss/.feed-state"), Some(Err(PathError::NotFound)));
/// assert_eq!(parse_feed_path("/ss/x/y"), None);
/// ```
pub fn parse_feed_path(path: &str) -> Option<Result<FeedPath, PathError>> {
    if path.len() > MAX_PATH_LEN {
        return None;
    }
    let rest = path.strip_prefix('/')?;
    let (feed, file) = rest.split_once('/')?;
    if file.contains('/') {
        return None;
    }
    let segment = |raw: &str| -> Result<String, PathError> {
        let decoded = percent_decode(raw.as_bytes())?;
        for &b in decoded.iter() {
            match b {
                0 => return Err(PathError::BadRequest("NUL in path")),
                b'/' | b'\\' => return Err(PathError::BadRequest("separator in file name")),
                0x01..=0x1f | 0x7f => {
                    return Err(PathError::BadRequest("control character in path"));
                }
                _ => {}
            }
        }
        match &*decoded {
            b"" => return Err(PathError::BadRequest("empty segment")),
            b"." | b".." => return Err(PathError::BadRequest("dot segment")),
            _ => {}
        }
        let name = std::str::from_utf8(&decoded).map_err(|_| PathError::NotFound)?;
        if !mirror_core::feed_listing::valid_component(name) {
            return Err(PathError::NotFound);
        }
        Ok(name.to_owned())
    };
    Some(segment(feed).and_then(|feed| {
        Ok(FeedPath {
            feed,
            file: segment(file)?,
        })
    }))
}

/// Classifies a bare file name by `mirror-core`'s file-name grammar
/// ([`FileName::parse`]).
///
/// ```
/// use sigserver::names::{classify, FileKind};
/// assert_eq!(classify("test-6.cvd.sign"), Some(FileKind::CvdSign));
/// assert_eq!(classify("test-06.cdiff"), None);
/// ```
pub fn classify(name: &str) -> Option<FileKind> {
    FileName::parse(name).map(|n| n.kind())
}

/// Decodes `%XX` escapes; borrows when there are none (the usual request).
fn percent_decode(input: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, PathError> {
    if !input.contains(&b'%') {
        return Ok(std::borrow::Cow::Borrowed(input));
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            let hi = input.get(i + 1).and_then(|&c| hex(c));
            let lo = input.get(i + 2).and_then(|&c| hex(c));
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(PathError::BadRequest("malformed percent-encoding")),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(std::borrow::Cow::Owned(out))
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_every_kind() {
        for (p, k) in [
            ("/daily.cvd", FileKind::Cvd),
            ("/daily.cld", FileKind::Cld),
            ("/daily-27001.cdiff", FileKind::Cdiff),
            ("/main-62.cvd.sign", FileKind::CvdSign),
            ("/daily-0.cdiff.sign", FileKind::CdiffSign),
            ("/dns.txt", FileKind::Manifest),
            ("/safe_browsing.cvd", FileKind::Cvd),
            ("/%74est.cvd", FileKind::Cvd),
        ] {
            assert_eq!(parse_request_path(p).map(|n| n.kind()), Ok(k), "{p}");
        }
    }

    #[test]
    fn rejects_hostile_paths_as_400() {
        for p in [
            "/../etc/passwd",
            "/..",
            "/.",
            "/%2e%2e",
            "/..%2fetc%2fpasswd",
            "/a%2fb.cvd",
            "/a%2Fb.cvd",
            "/a%5cb.cvd",
            "/a\\b.cvd",
            "/test.cvd%00",
            "/test%00.cvd",
            "/%zz.cvd",
            "/%4",
            "//test.cvd",
            "/sub/test.cvd",
            "test.cvd",
            "",
            "/a%0ab.cvd",
        ] {
            assert!(
                matches!(parse_request_path(p), Err(PathError::BadRequest(_))),
                "{p}: {:?}",
                parse_request_path(p)
            );
        }
        let long = format!("/{}.cvd", "a".repeat(MAX_PATH_LEN));
        assert!(matches!(
            parse_request_path(&long),
            Err(PathError::BadRequest(_))
        ));
    }

    #[test]
    fn rejects_names_outside_the_grammar_as_404() {
        for p in [
            "/",
            "/index.html",
            "/status.json",
            "/current",
            "/generations",
            "/a-b.cvd",
            "/.cvd",
            "/test-01.cdiff",
            "/test-4294967296.cdiff",
            "/test-1.cvd",
            "/test.cdiff",
            "/test-.cdiff",
            "/-1.cdiff",
            "/test-1.cld.sign",
            "/DNS.TXT",
            "/%ff.cvd",
        ] {
            assert_eq!(parse_request_path(p), Err(PathError::NotFound), "{p}");
        }
        let db = "a".repeat(MAX_DB_NAME + 1);
        assert_eq!(
            parse_request_path(&format!("/{db}.cvd")),
            Err(PathError::NotFound)
        );
    }

    #[test]
    fn every_kind_has_its_own_label() {
        let labels: std::collections::BTreeSet<_> = FileKind::ALL.map(|k| k.label()).into();
        assert_eq!(labels.len(), FileKind::ALL.len());
    }

    proptest! {
        #[test]
        fn accepted_names_are_plain_entries(path in "/[a-z0-9_.%/\\\\-]{0,40}") {
            if let Ok(n) = parse_request_path(&path) {
                prop_assert!(!n.name().contains('/'));
                prop_assert!(!n.name().contains('\\'));
                prop_assert!(!n.name().starts_with('.'));
                prop_assert_eq!(classify(n.name()), Some(n.kind()));
            }
        }

        #[test]
        fn generated_names_round_trip(db in "[A-Za-z0-9_]{1,64}", v: u32, k in 0usize..6) {
            let (name, kind) = match k {
                0 => (format!("{db}.cvd"), FileKind::Cvd),
                1 => (format!("{db}.cld"), FileKind::Cld),
                2 => (format!("{db}-{v}.cdiff"), FileKind::Cdiff),
                3 => (format!("{db}-{v}.cvd.sign"), FileKind::CvdSign),
                4 => (format!("{db}-{v}.cdiff.sign"), FileKind::CdiffSign),
                _ => ("dns.txt".to_owned(), FileKind::Manifest),
            };
            let n = parse_request_path(&format!("/{name}")).unwrap();
            prop_assert_eq!(n.name(), name.as_str());
            prop_assert_eq!(n.kind(), kind);
        }
    }
}
