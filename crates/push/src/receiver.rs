//! Checking incoming notices: size, authentication, replay window, replay cache,
//! content, rate. Pure (no I/O): the listener or the HTTP server hands it the three
//! headers and the body.
//!
//! A sender may have more than one key at a time (at most [`MAX_KEYS_PER_SENDER`]):
//! a notice is authentic when any of them verifies it. That is how a key is rotated
//! without a gap: add the new key here, switch the sender to it, remove the old one.
//!
//! The rate limit is the workspace's one token bucket (`rate-limit`), one bucket per
//! authenticated sender: a flood from one upstream does not starve another's notices,
//! and the table holds only configured names.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use rate_limit::RateLimiter;

use crate::auth::Secret;
use crate::notice::{MAX_NOTICE_LEN, Notice};

/// Limits of a receiver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiverConfig {
    /// Notices signed more than this far from the receiver's clock (either way) are
    /// refused as stale.
    pub window: Duration,
    /// Accepted notices per second, sustained, from one sender.
    pub rate_per_sec: f64,
    /// Accepted notices in a burst, from one sender.
    pub burst: u32,
    /// Most MACs remembered for replay detection (more is refused as too many).
    pub max_remembered: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            window: Duration::from_secs(300),
            rate_per_sec: 10.0,
            burst: 50,
            max_remembered: 100_000,
        }
    }
}

/// The authentication headers of a notice, as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoticeHeaders {
    /// `X-Push-Sender`.
    pub sender: Option<String>,
    /// `X-Push-Timestamp`.
    pub timestamp: Option<String>,
    /// `X-Push-Signature`.
    pub signature: Option<String>,
}

impl NoticeHeaders {
    /// Takes one header field (name case-insensitive) if it is one of the three; a
    /// later field of the same name replaces an earlier one.
    pub fn add(&mut self, name: &str, value: &[u8]) {
        let v = || std::str::from_utf8(value).ok().map(|s| s.trim().to_owned());
        if name.eq_ignore_ascii_case(crate::auth::SENDER_HEADER) {
            self.sender = v();
        } else if name.eq_ignore_ascii_case(crate::auth::TIMESTAMP_HEADER) {
            self.timestamp = v();
        } else if name.eq_ignore_ascii_case(crate::auth::SIGNATURE_HEADER) {
            self.signature = v();
        }
    }
}

/// Why a notice was refused. [`status`](Refusal::status) is the HTTP answer,
/// [`outcome`](Refusal::outcome) the metrics label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Body over [`MAX_NOTICE_LEN`] (413).
    TooLarge,
    /// Missing headers, unknown sender or a MAC that does not match (401).
    Unauthenticated(String),
    /// Signed outside the replay window (401).
    Stale {
        /// Seconds between the signing time and now.
        skew_secs: u64,
    },
    /// Already accepted once (401).
    Replayed,
    /// Authenticated, but not a valid notice (400).
    Malformed(String),
    /// Over the rate limit (429).
    RateLimited,
}

impl Refusal {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::TooLarge => 413,
            Refusal::Unauthenticated(_) | Refusal::Stale { .. } | Refusal::Replayed => 401,
            Refusal::Malformed(_) => 400,
            Refusal::RateLimited => 429,
        }
    }

    /// The metrics label.
    pub fn outcome(&self) -> &'static str {
        match self {
            Refusal::TooLarge => "too_large",
            Refusal::Unauthenticated(_) => "unauthenticated",
            Refusal::Stale { .. } => "stale",
            Refusal::Replayed => "replayed",
            Refusal::Malformed(_) => "malformed",
            Refusal::RateLimited => "rate_limited",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooLarge => write!(f, "notice larger than {MAX_NOTICE_LEN} bytes"),
            Refusal::Unauthenticated(why) => write!(f, "not authenticated: {why}"),
            Refusal::Stale { skew_secs } => {
                write!(f, "stale: signed {skew_secs}s away from this clock")
            }
            Refusal::Replayed => f.write_str("replayed: this notice was already accepted"),
            Refusal::Malformed(why) => write!(f, "malformed: {why}"),
            Refusal::RateLimited => f.write_str("too many notices"),
        }
    }
}

/// An authenticated, valid notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The sender it was authenticated as.
    pub sender: String,
    /// The notice.
    pub notice: Notice,
}

/// Most keys accepted for one sender at a time (two during a rotation).
pub const MAX_KEYS_PER_SENDER: usize = 4;

/// Checks notices against the configured senders' secrets.
#[derive(Debug)]
pub struct Receiver {
    senders: BTreeMap<String, Vec<Secret>>,
    config: ReceiverConfig,
    /// MAC → Unix second after which it can be forgotten.
    seen: Mutex<HashMap<[u8; 32], u64>>,
    /// Keyed by sender name, on the Unix-time line of `check`'s `now_ms`.
    rate: RateLimiter<String>,
}

impl Receiver {
    /// A receiver accepting notices from `senders` (name and secret; a name given
    /// more than once has each of its secrets accepted, the first
    /// [`MAX_KEYS_PER_SENDER`] of them).
    pub fn new(
        senders: impl IntoIterator<Item = (String, Secret)>,
        config: ReceiverConfig,
    ) -> Self {
        let mut by_name: BTreeMap<String, Vec<Secret>> = BTreeMap::new();
        for (name, secret) in senders {
            let keys = by_name.entry(name).or_default();
            if keys.len() < MAX_KEYS_PER_SENDER {
                keys.push(secret);
            }
        }
        Receiver {
            senders: by_name,
            config,
            seen: Mutex::new(HashMap::new()),
            rate: RateLimiter::new(config.rate_per_sec, config.burst),
        }
    }

    /// Whether any sender is configured (a receiver without is not offered: 404).
    pub fn has_senders(&self) -> bool {
        !self.senders.is_empty()
    }

    /// Checks one notice received at Unix milliseconds `now_ms`. The order of checks
    /// is cheapest first: size, headers, sender, window, MAC (constant time), replay,
    /// content, rate.
    pub fn check(
        &self,
        headers: &NoticeHeaders,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Accepted, Refusal> {
        if body.len() > MAX_NOTICE_LEN {
            return Err(Refusal::TooLarge);
        }
        let missing = |h: &str| Refusal::Unauthenticated(format!("{h} header missing"));
        let sender = headers
            .sender
            .as_deref()
            .ok_or_else(|| missing(crate::auth::SENDER_HEADER))?;
        let ts = headers
            .timestamp
            .as_deref()
            .ok_or_else(|| missing(crate::auth::TIMESTAMP_HEADER))?;
        let sig = headers
            .signature
            .as_deref()
            .ok_or_else(|| missing(crate::auth::SIGNATURE_HEADER))?;
        let Some(keys) = self.senders.get(sender) else {
            return Err(Refusal::Unauthenticated(format!(
                "unknown sender {:?}",
                sender.chars().take(64).collect::<String>()
            )));
        };
        let ts: u64 = ts
            .parse()
            .map_err(|_| Refusal::Unauthenticated("timestamp is not a number".into()))?;
        let now = now_ms / 1000;
        let skew = now.abs_diff(ts);
        if skew > self.config.window.as_secs() {
            return Err(Refusal::Stale { skew_secs: skew });
        }
        let mac = keys
            .iter()
            .find_map(|k| k.verify(sender, ts, body, sig).ok())
            .ok_or_else(|| Refusal::Unauthenticated("signature does not match".into()))?;
        let notice = Notice::parse(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains_key(&mac) {
            return Err(Refusal::Replayed);
        }
        if seen.len() >= self.config.max_remembered {
            seen.retain(|_, until| *until >= now);
            if seen.len() >= self.config.max_remembered {
                return Err(Refusal::RateLimited);
            }
        }
        // Under the `seen` lock: a refused notice takes no token, a copy racing this one
        // finds it remembered.
        self.rate
            .check_at(sender.to_owned(), Duration::from_millis(now_ms))
            .map_err(|_| Refusal::RateLimited)?;
        // Remembered while a copy could still pass the window check.
        seen.insert(mac, ts.saturating_add(self.config.window.as_secs()));
        Ok(Accepted {
            sender: sender.to_owned(),
            notice,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::auth::Secret;
    use std::collections::BTreeMap;

    fn setup() -> (Receiver, Secret, Vec<u8>) {
        let k = Secret::new(b"tier1 secret 0123456789").unwrap();
        let r = Receiver::new(
            BTreeMap::from([("tier1".to_owned(), k.clone())]),
            ReceiverConfig {
                burst: 3,
                rate_per_sec: 1.0,
                ..ReceiverConfig::default()
            },
        );
        let n = Notice::new(
            "tier1",
            None,
            BTreeMap::from([("daily".to_owned(), 5)]),
            Vec::new(),
            1,
            1,
        );
        (r, k, n.to_bytes())
    }

    fn headers(k: &Secret, sender: &str, ts: u64, body: &[u8]) -> NoticeHeaders {
        NoticeHeaders {
            sender: Some(sender.into()),
            timestamp: Some(ts.to_string()),
            signature: Some(k.sign(sender, ts, body)),
        }
    }

    #[test]
    fn accepts_once_then_refuses_the_replay() {
        let (r, k, body) = setup();
        let now = 1_000_000u64;
        let h = headers(&k, "tier1", now, &body);
        let a = r.check(&h, &body, now * 1000).unwrap();
        assert_eq!(a.sender, "tier1");
        assert_eq!(r.check(&h, &body, now * 1000 + 5), Err(Refusal::Replayed));
    }

    #[test]
    fn refusals_and_their_statuses() {
        let (r, k, body) = setup();
        let now = 1_000_000u64;
        let ms = now * 1000;
        let mut no_sig = headers(&k, "tier1", now, &body);
        no_sig.signature = None;
        let e = r.check(&no_sig, &body, ms).unwrap_err();
        assert_eq!((e.status(), e.outcome()), (401, "unauthenticated"));
        let forged = headers(
            &Secret::new(b"guessed secret 0123456").unwrap(),
            "tier1",
            now,
            &body,
        );
        assert_eq!(r.check(&forged, &body, ms).unwrap_err().status(), 401);
        let unknown = headers(&k, "tier9", now, &body);
        assert!(
            r.check(&unknown, &body, ms)
                .unwrap_err()
                .to_string()
                .contains("unknown sender")
        );
        let old = headers(&k, "tier1", now - 301, &body);
        assert_eq!(r.check(&old, &body, ms).unwrap_err().outcome(), "stale");
        let future = headers(&k, "tier1", now + 301, &body);
        assert_eq!(r.check(&future, &body, ms).unwrap_err().outcome(), "stale");
        let junk = b"{\"format\":1}".to_vec();
        let e = r
            .check(&headers(&k, "tier1", now, &junk), &junk, ms)
            .unwrap_err();
        assert_eq!((e.status(), e.outcome()), (400, "malformed"));
        let big = vec![b' '; MAX_NOTICE_LEN + 1];
        let e = r
            .check(&headers(&k, "tier1", now, &big), &big, ms)
            .unwrap_err();
        assert_eq!((e.status(), e.outcome()), (413, "too_large"));
        // A body changed after signing.
        let mut changed = body.clone();
        let h = headers(&k, "tier1", now, &body);
        let at = changed.len() - 2;
        changed[at] = b' ';
        assert_eq!(r.check(&h, &changed, ms).unwrap_err().status(), 401);
    }

    #[test]
    fn rate_limit_refills() {
        let (r, k, body) = setup();
        let now = 2_000_000u64;
        let mut outcomes = Vec::new();
        for i in 0..5 {
            let h = headers(&k, "tier1", now - i, &body);
            outcomes.push(r.check(&h, &body, now * 1000).map(|_| ()));
        }
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 3);
        assert_eq!(outcomes[4], Err(Refusal::RateLimited));
        // Two seconds later two more tokens.
        let h = headers(&k, "tier1", now + 1, &body);
        assert!(r.check(&h, &body, (now + 2) * 1000).is_ok());
    }

    #[test]
    fn one_bucket_per_sender_and_either_key_of_a_rotation() {
        let (old, new, other) = (
            Secret::new(b"tier1 old secret 0123456789").unwrap(),
            Secret::new(b"tier1 new secret 0123456789").unwrap(),
            Secret::new(b"tier9 secret 0123456789").unwrap(),
        );
        let r = Receiver::new(
            [
                ("tier1".to_owned(), old.clone()),
                ("tier1".to_owned(), new.clone()),
                ("tier9".to_owned(), other.clone()),
            ],
            ReceiverConfig {
                burst: 2,
                rate_per_sec: 1.0,
                ..ReceiverConfig::default()
            },
        );
        let (_, _, body) = setup();
        let now = 3_000_000u64;
        // Either key of tier1 verifies; tier9's does not pass as tier1.
        assert!(
            r.check(&headers(&old, "tier1", now, &body), &body, now * 1000)
                .is_ok()
        );
        assert!(
            r.check(&headers(&new, "tier1", now - 1, &body), &body, now * 1000)
                .is_ok()
        );
        let e = r
            .check(&headers(&other, "tier1", now - 2, &body), &body, now * 1000)
            .unwrap_err();
        assert_eq!(e.status(), 401);
        // tier1's burst is spent; tier9 has a bucket of its own.
        let e = r
            .check(&headers(&new, "tier1", now - 3, &body), &body, now * 1000)
            .unwrap_err();
        assert_eq!(e, Refusal::RateLimited);
        assert!(
            r.check(&headers(&other, "tier9", now, &body), &body, now * 1000)
                .is_ok()
        );
        // A refused notice was not remembered: it passes once tokens are back.
        assert!(
            r.check(
                &headers(&new, "tier1", now - 3, &body),
                &body,
                (now + 2) * 1000
            )
            .is_ok()
        );
    }
}
