//! Validators (`ETag`, `Last-Modified`) and conditional requests (RFC 9110 §13).
//!
//! **ETag**: strong, `"<inode>-<size>-<mtime in ns>"` in hex, computed from the `fstat`
//! of the file descriptor that is served. A publish writes new files (new inode, new
//! mtime), so the tag changes whenever the content under a name changes; a file that
//! is hard-linked unchanged into the next generation keeps its tag, which is right
//! because its bytes are identical. Hashing the content would cost a full read per
//! new file for no gain on immutable generations. The tag depends on the inode, so
//! replicas behind one load balancer give different tags for the same bytes (clients
//! then simply get a `200` instead of a `304`).
//!
//! Evaluation order: `If-None-Match` (weak comparison, `*` matches) decides alone when
//! present; only without it is `If-Modified-Since` looked at (whole seconds). `If-Range`
//! matches a strong, identical ETag or a date equal to `Last-Modified`.
//! `If-Match` / `If-Unmodified-Since` are not evaluated: they protect writes, and this
//! server is read-only.

use std::time::{SystemTime, UNIX_EPOCH};

/// Longest conditional header value looked at (longer values never match).
pub const MAX_CONDITIONAL_HEADER: usize = 4096;

/// Longest ETag: two quotes, three 16-digit hex numbers, two dashes.
const ETAG_MAX: usize = 2 + 3 * 16 + 2;
/// Length of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
const DATE_LEN: usize = 29;

/// The validators of one opened file. Held inline (no allocation): they are built for
/// every file response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    etag: [u8; ETAG_MAX],
    etag_len: u8,
    mtime_secs: u64,
    last_modified: [u8; DATE_LEN],
}

impl Validators {
    /// Validators for a file with this inode, size and modification time.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// let v = sigserver::validators::Validators::new(0x10, 8394, UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    /// assert_eq!(v.etag(), "\"10-20ca-17979cfe362a0000\"");
    /// assert_eq!(v.last_modified(), "Tue, 14 Nov 2023 22:13:20 GMT");
    /// ```
    pub fn new(inode: u64, size: u64, mtime: SystemTime) -> Self {
        let since = mtime.duration_since(UNIX_EPOCH).unwrap_or_default();
        let nanos = since.as_nanos().min(u128::from(u64::MAX)) as u64;
        let mtime_secs = since.as_secs();
        let mut etag = [0u8; ETAG_MAX];
        let mut n = 0;
        let mut push = |b: u8| {
            etag[n] = b;
            n += 1;
        };
        push(b'"');
        for (i, v) in [inode, size, nanos].into_iter().enumerate() {
            if i > 0 {
                push(b'-');
            }
            let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
            for k in (0..digits).rev() {
                push(b"0123456789abcdef"[((v >> (4 * k)) & 0xf) as usize]);
            }
        }
        push(b'"');
        Validators {
            etag,
            etag_len: n as u8,
            mtime_secs,
            last_modified: http_date(mtime_secs),
        }
    }

    /// The same entity tag with `Last-Modified` (and the date `If-Modified-Since` and
    /// `If-Range` compare with) set to `secs` since the epoch: a `.cvd`/`.cld` is dated
    /// by its header's build time, whatever its file's modification time says.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// let v = sigserver::validators::Validators::new(1, 2, UNIX_EPOCH).dated(1_624_412_040);
    /// assert_eq!(v.last_modified(), "Wed, 23 Jun 2021 01:34:00 GMT");
    /// assert!(v.not_modified(&[], Some(b"Wed, 23 Jun 2021 01:34:00 GMT")));
    /// assert!(!v.not_modified(&[], Some(b"Wed, 23 Jun 2021 01:33:59 GMT")));
    /// assert_eq!(v.etag(), "\"1-2-0\"");
    /// ```
    pub fn dated(mut self, secs: u64) -> Self {
        self.mtime_secs = secs;
        self.last_modified = http_date(secs);
        self
    }

    /// The strong entity tag, with its quotes.
    pub fn etag(&self) -> &str {
        std::str::from_utf8(&self.etag[..usize::from(self.etag_len)]).unwrap_or_default()
    }

    /// The `Last-Modified` value (IMF-fixdate).
    pub fn last_modified(&self) -> &str {
        std::str::from_utf8(&self.last_modified).unwrap_or_default()
    }

    /// Whether a `GET`/`HEAD` with these conditional headers gets `304 Not Modified`.
    /// `if_none_match` holds every `If-None-Match` field value received.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// let v = sigserver::validators::Validators::new(1, 2, UNIX_EPOCH);
    /// assert!(v.not_modified(&[b"W/\"1-2-0\"".as_slice()], None));
    /// assert!(!v.not_modified(&[b"\"other\"".as_slice()], Some(b"Thu, 01 Jan 1970 00:00:00 GMT")));
    /// ```
    pub fn not_modified(&self, if_none_match: &[&[u8]], if_modified_since: Option<&[u8]>) -> bool {
        if !if_none_match.is_empty() {
            return if_none_match.iter().any(|v| self.none_match_hits(v));
        }
        match if_modified_since.and_then(parse_date) {
            Some(since) => self.mtime_secs <= since,
            None => false,
        }
    }

    /// Whether an `If-Range` value allows the range to be applied.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// let v = sigserver::validators::Validators::new(1, 2, UNIX_EPOCH);
    /// assert!(v.if_range_matches(b"\"1-2-0\""));
    /// assert!(!v.if_range_matches(b"W/\"1-2-0\""));
    /// ```
    pub fn if_range_matches(&self, value: &[u8]) -> bool {
        if value.len() > MAX_CONDITIONAL_HEADER {
            return false;
        }
        let value = trim(value);
        if value.first() == Some(&b'"') {
            return value == self.etag().as_bytes();
        }
        if value.starts_with(b"W/") {
            return false;
        }
        parse_date(value) == Some(self.mtime_secs)
    }

    fn none_match_hits(&self, value: &[u8]) -> bool {
        if value.len() > MAX_CONDITIONAL_HEADER {
            return false;
        }
        let tag = self.etag().as_bytes();
        let ours = tag.get(1..tag.len().saturating_sub(1)).unwrap_or_default();
        let mut rest = trim(value);
        if rest == b"*" {
            return true;
        }
        loop {
            rest = trim_list(rest);
            if rest.is_empty() {
                return false;
            }
            if let Some(r) = rest.strip_prefix(b"W/") {
                rest = r;
            }
            let Some(r) = rest.strip_prefix(b"\"") else {
                return false; // malformed list: no match
            };
            let Some(close) = r.iter().position(|&b| b == b'"') else {
                return false;
            };
            if &r[..close] == ours {
                return true;
            }
            rest = &r[close + 1..];
        }
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b" \t".contains(b))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b" \t".contains(b))
        .map_or(start, |e| e + 1);
    &v[start..end.max(start)]
}

fn trim_list(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b" \t,".contains(b))
        .unwrap_or(v.len());
    &v[start..]
}

/// 9999-12-31T23:59:59Z, the last instant an IMF-fixdate can show.
const LAST_DATE_SECS: u64 = 253_402_300_799;

/// `secs` as an IMF-fixdate; the last few results are remembered per thread (served
/// files share few modification times).
fn http_date(secs: u64) -> [u8; DATE_LEN] {
    use std::cell::RefCell;
    const MEMO: usize = 8;
    /// Recent (seconds, formatted) pairs and the next slot to replace.
    type Memo = ([(u64, [u8; DATE_LEN]); MEMO], usize);
    thread_local! {
        static LAST: RefCell<Memo> = const { RefCell::new(([(u64::MAX, [0; DATE_LEN]); MEMO], 0)) };
    }
    LAST.with(|memo| {
        let mut memo = memo.borrow_mut();
        if let Some((_, d)) = memo.0.iter().find(|(s, _)| *s == secs) {
            return *d;
        }
        // httpdate formats years up to 9999 only (and panics beyond): clamp.
        let shown = secs.min(LAST_DATE_SECS);
        let text = httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(shown));
        let mut d = [b' '; DATE_LEN];
        let n = text.len().min(DATE_LEN);
        d[..n].copy_from_slice(&text.as_bytes()[..n]);
        let slot = memo.1 % MEMO;
        memo.0[slot] = (secs, d);
        memo.1 = memo.1.wrapping_add(1);
        d
    })
}

fn parse_date(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(trim(v)).ok()?;
    let t = httpdate::parse_http_date(s).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn v() -> Validators {
        Validators::new(0xab, 100, UNIX_EPOCH + Duration::new(1_600_000_000, 5))
    }

    #[test]
    fn etag_changes_with_every_input() {
        let base = v();
        assert_ne!(
            base,
            Validators::new(0xac, 100, UNIX_EPOCH + Duration::new(1_600_000_000, 5))
        );
        assert_ne!(
            base,
            Validators::new(0xab, 101, UNIX_EPOCH + Duration::new(1_600_000_000, 5))
        );
        assert_ne!(
            base,
            Validators::new(0xab, 100, UNIX_EPOCH + Duration::new(1_600_000_000, 6))
        );
    }

    #[test]
    fn if_none_match_lists() {
        let v = v();
        let tag = v.etag().to_owned();
        assert!(v.not_modified(&[tag.as_bytes()], None));
        assert!(v.not_modified(&[b"*"], None));
        assert!(v.not_modified(&[format!("\"x\", W/{tag}").as_bytes()], None));
        assert!(v.not_modified(&[b"\"x\"", tag.as_bytes()], None));
        assert!(!v.not_modified(&[b"\"x\", \"y\""], None));
        assert!(!v.not_modified(&[b"garbage"], None));
        assert!(!v.not_modified(&[b"\"unterminated"], None));
        // If-None-Match takes precedence over If-Modified-Since.
        assert!(!v.not_modified(&[b"\"x\""], Some(b"Fri, 01 Jan 2100 00:00:00 GMT")));
    }

    #[test]
    fn if_modified_since_compares_seconds() {
        let v = v();
        let lm = v.last_modified().to_owned();
        assert!(v.not_modified(&[], Some(lm.as_bytes())));
        assert!(v.not_modified(&[], Some(b"Fri, 01 Jan 2100 00:00:00 GMT")));
        assert!(!v.not_modified(&[], Some(b"Thu, 01 Jan 1970 00:00:00 GMT")));
        assert!(!v.not_modified(&[], Some(b"not a date")));
        assert!(!v.not_modified(&[], None));
    }

    #[test]
    fn far_future_mtimes_do_not_panic() {
        let v = Validators::new(1, 2, UNIX_EPOCH + Duration::from_secs(300_000_000_000));
        assert_eq!(v.last_modified(), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert!(v.etag().starts_with("\"1-2-"));
    }

    #[test]
    fn if_range() {
        let v = v();
        let tag = v.etag().to_owned();
        let lm = v.last_modified().to_owned();
        assert!(v.if_range_matches(tag.as_bytes()));
        assert!(v.if_range_matches(lm.as_bytes()));
        assert!(!v.if_range_matches(b"\"other\""));
        assert!(!v.if_range_matches(format!("W/{tag}").as_bytes()));
        assert!(!v.if_range_matches(b"Fri, 01 Jan 2100 00:00:00 GMT"));
        assert!(!v.if_range_matches(b""));
    }
}
