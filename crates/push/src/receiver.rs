//! Checking incoming notices: size, authentication, replay window, replay cache,
//! content, rate. Pure (no I/O): the listener or the HTTP server hands it the three
//! headers and the body.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use crate::auth::Secret;
use crate::notice::{MAX_NOTICE_LEN, Notice};

/// Limits of a receiver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiverConfig {
    /// Notices signed more than this far from the receiver's clock (either way) are
    /// refused as stale.
    pub window: Duration,
    /// Accepted notices per second, sustained (all senders together).
    pub rate_per_sec: f64,
    /// Accepted notices in a burst.
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
    /// Picks the three headers out of `(name, value)` pairs (names case-insensitive).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut h = NoticeHeaders::default();
        for (name, value) in pairs {
            let v = || std::str::from_utf8(value).ok().map(|s| s.trim().to_owned());
            if name.eq_ignore_ascii_case(crate::auth::SENDER_HEADER) {
                h.sender = v();
            } else if name.eq_ignore_ascii_case(crate::auth::TIMESTAMP_HEADER) {
                h.timestamp = v();
            } else if name.eq_ignore_ascii_case(crate::auth::SIGNATURE_HEADER) {
                h.signature = v();
            }
        }
        h
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

/// Checks notices against the configured senders' secrets.
#[derive(Debug)]
pub struct Receiver {
    senders: BTreeMap<String, Secret>,
    config: ReceiverConfig,
    state: Mutex<ReceiverState>,
}

#[derive(Debug)]
struct ReceiverState {
    /// MAC → Unix second after which it can be forgotten.
    seen: HashMap<[u8; 32], u64>,
    tokens: f64,
    last_refill_ms: u64,
}

impl Receiver {
    /// A receiver accepting notices from `senders` (name → secret).
    pub fn new(senders: BTreeMap<String, Secret>, config: ReceiverConfig) -> Self {
        Receiver {
            senders,
            config,
            state: Mutex::new(ReceiverState {
                seen: HashMap::new(),
                tokens: f64::from(config.burst),
                last_refill_ms: 0,
            }),
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
        let Some(secret) = self.senders.get(sender) else {
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
        let mac = secret
            .verify(sender, ts, body, sig)
            .map_err(|_| Refusal::Unauthenticated("signature does not match".into()))?;
        let notice = Notice::parse(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.seen.contains_key(&mac) {
            return Err(Refusal::Replayed);
        }
        // Tokens.
        let elapsed = now_ms.saturating_sub(st.last_refill_ms) as f64 / 1000.0;
        st.last_refill_ms = now_ms;
        st.tokens =
            (st.tokens + elapsed * self.config.rate_per_sec).min(f64::from(self.config.burst));
        if st.tokens < 1.0 {
            return Err(Refusal::RateLimited);
        }
        if st.seen.len() >= self.config.max_remembered {
            st.seen.retain(|_, until| *until >= now);
            if st.seen.len() >= self.config.max_remembered {
                return Err(Refusal::RateLimited);
            }
        }
        st.tokens -= 1.0;
        // Remembered while a copy could still pass the window check.
        st.seen
            .insert(mac, ts.saturating_add(self.config.window.as_secs()));
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
}
