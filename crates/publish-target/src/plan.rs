//! The pure part: what each object is, in which order objects move, and which headers
//! they carry.

use mirror_core::model::MirrorFile;

/// How an object behaves under its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Never changes under its name (`<db>-<v>.cdiff`, every `.sign`): uploaded first.
    Immutable,
    /// `<db>.cvd`: replaced by each update, after every immutable object.
    Cvd,
    /// A third-party feed's file or its `.sig`/sidecar (`<feed>/<file>`): replaced
    /// under its name, before the listing that names it.
    FeedFile,
    /// `dns.txt`: the version manifest, after the databases.
    Manifest,
    /// `feeds.json`: the feeds listing, last of all (after every file it names).
    FeedListing,
}

impl Kind {
    /// The kind of a mirror file.
    pub fn of(file: &MirrorFile) -> Kind {
        match file {
            MirrorFile::Cvd { .. } => Kind::Cvd,
            MirrorFile::Manifest => Kind::Manifest,
            MirrorFile::Cdiff { .. }
            | MirrorFile::CdiffSign { .. }
            | MirrorFile::CvdSign { .. } => Kind::Immutable,
        }
    }
}

/// `Cache-Control` of an object: immutable objects may be cached for a year, the
/// pointers (`<db>.cvd`, `dns.txt`) for a minute and revalidated (`mirror-core`'s
/// values, which `sigserver` sends too).
pub fn cache_control(kind: Kind) -> &'static str {
    match kind {
        Kind::Immutable => mirror_core::model::CACHE_IMMUTABLE,
        Kind::Cvd | Kind::Manifest | Kind::FeedFile | Kind::FeedListing => {
            mirror_core::model::CACHE_MUTABLE
        }
    }
}

/// `Content-Type` of an object (`mirror-core`'s, as `sigserver` serves it).
pub fn content_type(kind: Kind) -> &'static str {
    use mirror_core::model::FileNameKind;
    match kind {
        Kind::Manifest => FileNameKind::Manifest.content_type(),
        Kind::Cvd => FileNameKind::Cvd.content_type(),
        Kind::Immutable | Kind::FeedFile => FileNameKind::Cdiff.content_type(),
        Kind::FeedListing => "application/json",
    }
}

/// What to do with one local file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// The target holds it already.
    Keep,
    /// Absent on the target: create it (`If-None-Match: *`).
    Create,
    /// Different on the target: replace the version with this ETag (`If-Match`).
    Replace { etag: Option<String> },
}

/// Sorts uploads into the publish order: immutable objects, then each `<db>.cvd`, the
/// feed files, `dns.txt`, and `feeds.json`; by name within a kind.
pub(crate) fn order<T>(items: &mut [(Kind, String, T)]) {
    items.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pointers_move_last() {
        let mut v: Vec<(Kind, String, ())> = [
            "dns.txt",
            "daily.cvd",
            "daily-6.cdiff",
            "daily-6.cvd.sign",
            "bytecode.cvd",
            "daily-6.cdiff.sign",
        ]
        .iter()
        .map(|n| {
            let f = MirrorFile::parse(n).unwrap();
            (Kind::of(&f), (*n).to_owned(), ())
        })
        .collect();
        order(&mut v);
        let names: Vec<&str> = v.iter().map(|x| x.1.as_str()).collect();
        assert_eq!(
            names,
            [
                "daily-6.cdiff",
                "daily-6.cdiff.sign",
                "daily-6.cvd.sign",
                "bytecode.cvd",
                "daily.cvd",
                "dns.txt"
            ]
        );
        assert!(cache_control(Kind::Immutable).contains("immutable"));
        assert!(cache_control(Kind::Cvd).contains("must-revalidate"));
    }
}
