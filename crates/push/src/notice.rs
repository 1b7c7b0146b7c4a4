//! The push notice: what a mirror tells its downstreams right after it published.
//!
//! A notice is a small JSON document:
//!
//! ```json
//! {"format":1,"id":"9f0c…","origin":"origin","upstream":"http://tier1.example:8080",
//!  "sent_ms":1764490000123,"databases":{"daily":27801},
//!  "hops":[{"mirror":"origin","published_ms":1764490000001},
//!          {"mirror":"tier1","published_ms":1764490000100}]}
//! ```
//!
//! `databases` names the versions the sender has just published, `upstream` is the
//! sender's public base URL (used only when the receiver has it configured as an
//! upstream), `hops` the way those versions came (origin first, the sender last).
//! Everything in a notice is a hint: it changes when a mirror syncs, never what it
//! publishes.

use std::collections::BTreeMap;

use mirror_core::trace::{Hop, MAX_HOPS};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The format number written in [`Notice::format`].
pub const NOTICE_FORMAT: u32 = 1;
/// Largest notice body accepted (bytes).
pub const MAX_NOTICE_LEN: usize = 16 * 1024;
/// Most databases one notice may name.
pub const MAX_DATABASES: usize = 64;
/// Longest name (mirror, origin) accepted.
pub const MAX_NAME_LEN: usize = 64;
/// Longest `upstream` URL accepted.
pub const MAX_URL_LEN: usize = 512;

/// A push notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// [`NOTICE_FORMAT`].
    pub format: u32,
    /// Random identifier of this notice (hex), for logs.
    pub id: String,
    /// Name of the mirror that first published these versions.
    pub origin: String,
    /// The sender's public base URL, if it serves the versions itself.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Unix milliseconds at which the sender sent it.
    pub sent_ms: u64,
    /// Database name → version the sender has just published.
    pub databases: BTreeMap<String, u32>,
    /// The way the versions came: origin first, the sender last.
    pub hops: Vec<Hop>,
    /// Third-party feed name → fingerprint of what the sender now publishes of it
    /// (`mirror_core::feed_listing::FeedListing::fingerprints`): a receiver whose
    /// published feed differs syncs. Absent from notices without feed changes (so
    /// they read as before).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feeds: BTreeMap<String, String>,
}

impl Notice {
    /// A new notice from `sender` for `databases`, continuing `hops` (empty when the
    /// sender is the origin) with the sender's own hop published at `published_ms`.
    pub fn new(
        sender: &str,
        upstream: Option<&str>,
        databases: BTreeMap<String, u32>,
        mut hops: Vec<Hop>,
        published_ms: u64,
        sent_ms: u64,
    ) -> Self {
        hops.push(Hop {
            mirror: sender.to_owned(),
            published_ms,
        });
        let hops = mirror_core::trace::bounded_hops(hops);
        let origin = hops
            .first()
            .map_or_else(|| sender.to_owned(), |h| h.mirror.clone());
        let id: [u8; 12] = rand::random();
        Notice {
            format: NOTICE_FORMAT,
            id: cvd_format::hex(&id),
            origin,
            upstream: upstream.map(str::to_owned),
            sent_ms,
            databases,
            hops,
            feeds: BTreeMap::new(),
        }
    }

    /// The same notice naming these feed changes too.
    pub fn with_feeds(mut self, feeds: BTreeMap<String, String>) -> Self {
        self.feeds = feeds;
        self
    }

    /// Parses and checks a notice body (size, format, names, versions, hop count).
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        if body.len() > MAX_NOTICE_LEN {
            return Err(Error::TooLarge {
                len: body.len(),
                limit: MAX_NOTICE_LEN,
            });
        }
        let n: Notice = serde_json::from_slice(body).map_err(Error::Json)?;
        n.check()?;
        Ok(n)
    }

    /// The notice as sent (compact JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::Invalid(why));
        if self.format != NOTICE_FORMAT {
            return bad(format!("format {} (expected {NOTICE_FORMAT})", self.format));
        }
        if self.id.is_empty() || self.id.len() > MAX_NAME_LEN {
            return bad("id: 1 to 64 characters expected".into());
        }
        if !valid_name(&self.origin) {
            return bad(format!("origin {:?}: not a mirror name", self.origin));
        }
        if let Some(u) = &self.upstream
            && (u.len() > MAX_URL_LEN
                || !(u.starts_with("http://") || u.starts_with("https://"))
                || u.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return bad("upstream: not an http(s) URL".into());
        }
        if (self.databases.is_empty() && self.feeds.is_empty())
            || self.databases.len() > MAX_DATABASES
            || self.feeds.len() > MAX_DATABASES
        {
            return bad(format!(
                "1 to {MAX_DATABASES} databases (or feeds) expected"
            ));
        }
        if let Some((f, fp)) = self.feeds.iter().find(|(f, fp)| {
            !mirror_core::feed_listing::valid_component(f)
                || fp.is_empty()
                || fp.len() > 64
                || !fp.bytes().all(|b| b.is_ascii_hexdigit())
        }) {
            return bad(format!("feed {f:?}: fingerprint {fp:?}"));
        }
        if let Some(db) = self
            .databases
            .keys()
            .find(|d| !mirror_core::model::valid_db_name(d))
        {
            return bad(format!("database name {db:?}"));
        }
        if self.hops.is_empty() || self.hops.len() > MAX_HOPS {
            return bad(format!("1 to {MAX_HOPS} hops expected"));
        }
        if let Some(h) = self.hops.iter().find(|h| !valid_name(&h.mirror)) {
            return bad(format!("hop {:?}: not a mirror name", h.mirror));
        }
        Ok(())
    }
}

/// A mirror name: 1 to 64 ASCII letters, digits, `.`, `-` or `_`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    fn sample() -> Notice {
        Notice::new(
            "tier1",
            Some("http://127.0.0.1:8080"),
            BTreeMap::from([("daily".to_owned(), 7)]),
            vec![Hop {
                mirror: "origin".into(),
                published_ms: 10,
            }],
            20,
            21,
        )
    }

    #[test]
    fn round_trip() {
        let n = sample();
        assert_eq!(n.origin, "origin");
        assert_eq!(n.hops.len(), 2);
        assert_eq!(Notice::parse(&n.to_bytes()).unwrap(), n);
    }

    #[test]
    fn a_notice_may_name_only_feeds_and_reads_as_before_without_them() {
        let mut n = sample();
        n.databases.clear();
        let n = n.with_feeds(BTreeMap::from([("ss".to_owned(), "ab".repeat(16))]));
        assert_eq!(Notice::parse(&n.to_bytes()).unwrap(), n);
        let plain = sample();
        assert!(!String::from_utf8_lossy(&plain.to_bytes()).contains("feeds"));
    }

    #[test]
    fn rejects_what_it_should() {
        let good = sample();
        let mut cases: Vec<(Notice, &str)> = Vec::new();
        let mut n = good.clone();
        n.format = 2;
        cases.push((n, "format"));
        let mut n = good.clone();
        n.databases.clear();
        cases.push((n, "databases"));
        let mut n = good.clone();
        n.databases.insert("../etc".into(), 1);
        cases.push((n, "database name"));
        let mut n = good.clone();
        n.hops.clear();
        cases.push((n, "hops"));
        let mut n = good.clone();
        n.upstream = Some("file:///etc".into());
        cases.push((n, "upstream"));
        let mut n = good.clone();
        n.origin = "a b".into();
        cases.push((n, "origin"));
        let mut n = good.clone();
        n.feeds.insert("../x".into(), "00".into());
        cases.push((n, "feed"));
        let mut n = good.clone();
        n.feeds.insert("ss".into(), "not hex".into());
        cases.push((n, "fingerprint"));
        for (n, want) in cases {
            let e = Notice::parse(&n.to_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        }
        assert!(matches!(
            Notice::parse(&vec![b' '; MAX_NOTICE_LEN + 1]),
            Err(Error::TooLarge { .. })
        ));
        assert!(matches!(Notice::parse(b"{"), Err(Error::Json(_))));
        let mut v: serde_json::Value = serde_json::from_slice(&good.to_bytes()).unwrap();
        v["extra"] = serde_json::json!(1);
        assert!(Notice::parse(v.to_string().as_bytes()).is_err());
    }
}
