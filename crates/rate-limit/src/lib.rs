//! The one token-bucket rate limiter of the workspace: `sigserver`'s HTTP requests and
//! DNS queries (keyed by [`ClientKey`]) and `push`'s notices (keyed by sender) all go
//! through [`RateLimiter`].
//!
//! **Keys.** A client is an IPv4 address (/32) or an IPv6 /64: one host normally gets
//! a whole /64, so keying by the full IPv6 address would hand each client 2^64 buckets.
//! An IPv4-mapped IPv6 address (`::ffff:192.0.2.7`, what a dual-stack socket reports
//! for an IPv4 peer) is that IPv4 address.
//!
//! **Bounded table, no global lock.** Buckets live in [`SHARDS`] maps, each behind its
//! own mutex and chosen by the key's hash (SipHash with a random key per limiter, so a
//! client cannot aim at one shard). A shard holds at most `capacity / SHARDS` keys
//! (rounded up). A new key in a full shard first drops that shard's full buckets (they
//! carry no state: a new bucket starts full); if that frees less than a quarter of it,
//! the least recently seen half goes, chosen with a linear-time selection
//! (`select_nth_unstable`), not a sort. So an insertion costs amortised O(1), the worst
//! single one O(capacity / SHARDS) under that one shard's lock, and other shards stay
//! free meanwhile.
//!
//! **Memory bound.** At most `capacity` keys (plus fewer than [`SHARDS`] for rounding)
//! are held, each a key, a 24-byte bucket and the `HashMap` overhead: for [`ClientKey`]
//! (16 bytes) 40 bytes an entry, at most about twice that with the map's spare room,
//! so the default [`DEFAULT_CAPACITY`] of 100 000 clients takes 4–8 MiB at worst.
//!
//! **What eviction means.** A key dropped while its bucket was not full gets a full
//! bucket when it comes back. A flood of new keys (many /64s) can do that to other
//! clients' buckets, which only ever gives them more room, never less; each new key
//! itself gets at most one burst.
//!
//! **Why our own.** `governor`'s keyed limiter grows its table until the caller sweeps
//! it (`retain_recent`) and brings `dashmap` and `quanta`; what the three users need
//! (a bound, a `Retry-After` wait, a rate changed on reload, a clock the tests set) is
//! this file, with no dependency.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use rate_limit::{ClientKey, RateLimiter};
//!
//! let rl = RateLimiter::new(1.0, 2);
//! let t = Instant::now();
//! let a = ClientKey::from("2001:db8:1:2::10".parse::<std::net::IpAddr>().unwrap());
//! let b = ClientKey::from("2001:db8:1:2::20".parse::<std::net::IpAddr>().unwrap());
//! assert!(rl.check(a, t).is_ok());
//! assert!(rl.check(b, t).is_ok()); // same /64: the same bucket
//! assert_eq!(rl.check(a, t), Err(Duration::from_secs(1)));
//! ```
//!
//! # Features and dependency count
//!
//! | feature set | crates pulled in |
//! |---|---|
//! | minimal (`--no-default-features`) | 0 |
//! | default (the same: the crate has no features) | 0 |
//!
//! No async runtime, DNS or HTTP client in the minimal set. Counted, and kept current,
//! by `cargo xtask light-check` (run by CI, which fails when a row is stale or when a
//! minimal build pulls tokio, hickory, reqwest, ureq or hyper): the distinct crates,
//! by name and version, of `cargo tree -p rate-limit -e normal --no-dedupe` (with
//! `--no-default-features` for the minimal row), the crate itself not counted; in
//! shell terms `... --prefix none --no-dedupe | sort -u | wc -l`, minus one. Build and
//! dev dependencies are not counted.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Keys tracked at once by default.
pub const DEFAULT_CAPACITY: usize = 100_000;
/// Independent locks of one limiter.
pub const SHARDS: usize = 64;
/// Longest wait reported (a rate near zero would otherwise ask for centuries).
const MAX_WAIT_SECS: f64 = 86_400.0;

/// A client as rate limits see it: an IPv4 address, or the /64 of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    /// An IPv4 address (also from an IPv4-mapped IPv6 address).
    V4(Ipv4Addr),
    /// The upper 64 bits of an IPv6 address.
    V6Prefix64(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4),
                None => ClientKey::V6Prefix64((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

impl std::fmt::Display for ClientKey {
    /// `192.0.2.7`, or `2001:db8:1:2::/64`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientKey::V4(v4) => write!(f, "{v4}"),
            ClientKey::V6Prefix64(p) => {
                write!(f, "{}/64", Ipv6Addr::from(u128::from(*p) << 64))
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// Last refill, as time since the limiter's origin.
    at: Duration,
}

/// A token bucket per key: `rate` tokens per second, bursts up to `burst`.
#[derive(Debug)]
pub struct RateLimiter<K = ClientKey> {
    /// `f64` bits; both change with [`RateLimiter::set`] (a configuration reload).
    rate: AtomicU64,
    burst: AtomicU64,
    shard_capacity: usize,
    hasher: RandomState,
    origin: Instant,
    shards: Box<[Mutex<HashMap<K, Bucket>>]>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// A limiter allowing `rate` tokens per second per key with bursts of `burst` (at
    /// least 1), tracking up to [`DEFAULT_CAPACITY`] keys.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self::with_capacity(rate, burst, DEFAULT_CAPACITY)
    }

    /// Like [`new`](Self::new), tracking up to about `capacity` keys (rounded up to a
    /// multiple of [`SHARDS`]; at least one per shard).
    pub fn with_capacity(rate: f64, burst: u32, capacity: usize) -> Self {
        let rl = RateLimiter {
            rate: AtomicU64::new(0),
            burst: AtomicU64::new(0),
            shard_capacity: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
            origin: Instant::now(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        };
        rl.set(rate, burst);
        rl
    }

    /// Changes the rate and burst in place (a configuration reload). Keys keep their
    /// buckets; a bucket fuller than the new burst is clipped on its next use.
    ///
    /// ```
    /// use std::time::Instant;
    /// let rl = rate_limit::RateLimiter::<u8>::new(1.0, 1);
    /// let t = Instant::now();
    /// assert!(rl.check(7, t).is_ok());
    /// assert!(rl.check(7, t).is_err());
    /// rl.set(1.0, 3);
    /// assert_eq!(rl.limits(), (1.0, 3));
    /// ```
    pub fn set(&self, rate: f64, burst: u32) {
        let rate = if rate.is_finite() {
            rate.max(f64::MIN_POSITIVE)
        } else {
            f64::MIN_POSITIVE
        };
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
        self.burst
            .store(f64::from(burst.max(1)).to_bits(), Ordering::Relaxed);
    }

    /// The current `(rate, burst)`.
    pub fn limits(&self) -> (f64, u32) {
        let (rate, burst) = self.load();
        (rate, burst as u32)
    }

    fn load(&self) -> (f64, f64) {
        (
            f64::from_bits(self.rate.load(Ordering::Relaxed)),
            f64::from_bits(self.burst.load(Ordering::Relaxed)),
        )
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, HashMap<K, Bucket>> {
        let i = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        // A panic while holding a shard leaves consistent buckets: keep using them.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one token for `key` at `now`. `Err(wait)` tells how long until a token is
    /// there (for `Retry-After`).
    ///
    /// ```
    /// use std::time::Instant;
    /// let rl = rate_limit::RateLimiter::<&str>::new(1.0, 2);
    /// let t = Instant::now();
    /// assert!(rl.check("tier1", t).is_ok());
    /// assert!(rl.check("tier1", t).is_ok());
    /// assert!(rl.check("tier1", t).is_err());
    /// assert!(rl.check("tier2", t).is_ok());
    /// ```
    pub fn check(&self, key: K, now: Instant) -> Result<(), Duration> {
        self.check_at(key, now.saturating_duration_since(self.origin))
    }

    /// [`check`](Self::check) on a timeline of the caller's own: `now` is the time
    /// since any fixed origin (`push` uses Unix time, which its tests set). Time that
    /// goes backwards refills nothing.
    pub fn check_at(&self, key: K, now: Duration) -> Result<(), Duration> {
        let (rate, burst) = self.load();
        let mut map = self.shard(&key);
        if map.len() >= self.shard_capacity && !map.contains_key(&key) {
            evict(&mut map, now, rate, burst, self.shard_capacity);
        }
        let b = map.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_sub(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = b.at.max(now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                ((1.0 - b.tokens) / rate).min(MAX_WAIT_SECS),
            ))
        }
    }

    /// Keys currently tracked (all shards; each locked in turn, not together).
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }
}

/// Makes room in a full shard: drops the full buckets, then, if that freed less than
/// a quarter (at least one key), keeps only the most recently seen half (a linear-time
/// selection, not a sort).
fn evict<K: Hash + Eq>(
    map: &mut HashMap<K, Bucket>,
    now: Duration,
    rate: f64,
    burst: f64,
    capacity: usize,
) {
    map.retain(|_, b| b.tokens + now.saturating_sub(b.at).as_secs_f64() * rate < burst);
    if map.len() + (capacity / 4).max(1) <= capacity {
        return;
    }
    let keep = map.len() / 2;
    if keep == 0 {
        map.clear();
        return;
    }
    let mut ages: Vec<Duration> = map.values().map(|b| b.at).collect();
    let idx = ages.len() - keep;
    let (_, &mut cut, _) = ages.select_nth_unstable(idx);
    // Everything seen after `cut`, and as many seen at `cut` as make up `keep`.
    let newer = map.values().filter(|b| b.at > cut).count();
    let mut ties = keep - newer;
    map.retain(|_, b| {
        if b.at > cut {
            true
        } else if b.at == cut && ties > 0 {
            ties -= 1;
            true
        } else {
            false
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    fn key(s: &str) -> ClientKey {
        ClientKey::from(s.parse::<IpAddr>().unwrap())
    }

    #[test]
    fn refills_at_the_rate_and_isolates_keys() {
        let rl = RateLimiter::new(2.0, 1);
        let (a, b) = (key("10.0.0.1"), key("10.0.0.2"));
        let t0 = Instant::now();
        assert!(rl.check(a, t0).is_ok());
        assert_eq!(rl.check(a, t0), Err(Duration::from_millis(500)));
        assert!(rl.check(b, t0).is_ok());
        assert!(rl.check(a, t0 + Duration::from_millis(500)).is_ok());
        assert!(rl.check(a, t0 + Duration::from_millis(600)).is_err());
    }

    #[test]
    fn a_slash_64_is_one_client_and_ipv4_is_per_address() {
        // Two addresses in one /64 share a bucket.
        assert_eq!(
            key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            key("2001:db8:1:2::1")
        );
        // Neighbouring /64s do not.
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db9:1:2::1"));
        // IPv4: every address its own client; mapped IPv6 is IPv4.
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("::ffff:192.0.2.7"), key("::ffff:192.0.2.8"));
        // Not IPv4-compatible (deprecated ::a.b.c.d): that is the /64 of ::.
        assert_eq!(key("::192.0.2.7"), key("::1"));
        assert_eq!(key("2001:db8:1:2:aaaa::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(key("::ffff:192.0.2.7").to_string(), "192.0.2.7");

        // And through the limiter: one burst for the /64, a fresh one next door.
        let rl = RateLimiter::new(1.0, 2);
        let t = Instant::now();
        let ip = |s: &str| key(s);
        assert!(rl.check(ip("2001:db8:1:2::10"), t).is_ok());
        assert!(rl.check(ip("2001:db8:1:2:ffff::99"), t).is_ok());
        assert!(rl.check(ip("2001:db8:1:2::77"), t).is_err());
        assert!(rl.check(ip("2001:db8:1:3::10"), t).is_ok());
        assert!(rl.check(ip("192.0.2.7"), t).is_ok());
        assert!(rl.check(ip("::ffff:192.0.2.7"), t).is_ok());
        assert!(rl.check(ip("192.0.2.7"), t).is_err());
        assert!(rl.check(ip("192.0.2.8"), t).is_ok());
        assert_eq!(rl.tracked(), 4);
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let rl = RateLimiter::<u8>::new(1.0, 1);
        let t = Duration::from_secs(1_000);
        assert!(rl.check_at(1, t).is_ok());
        assert!(rl.check_at(1, t - Duration::from_secs(500)).is_err());
        assert!(rl.check_at(1, t + Duration::from_millis(999)).is_err());
        assert!(rl.check_at(1, t + Duration::from_secs(2)).is_ok());
    }

    #[test]
    fn tracking_is_bounded() {
        let cap = 4 * SHARDS;
        let rl = RateLimiter::<u32>::with_capacity(1.0, 2, cap);
        // Half-empty buckets for many more keys than fit.
        for i in 0..(cap as u32 * 10) {
            let _ = rl.check_at(i, Duration::from_micros(u64::from(i)));
            assert!(rl.tracked() <= cap, "{} > {cap}", rl.tracked());
        }
        assert!(
            rl.tracked() >= cap / 4,
            "eviction keeps about half of each shard"
        );
    }

    fn bucket(tokens: f64, secs: u64) -> Bucket {
        Bucket {
            tokens,
            at: Duration::from_secs(secs),
        }
    }

    #[test]
    fn eviction_drops_full_buckets_first_then_the_least_recently_seen_half() {
        let now = Duration::from_secs(100);
        // Four full (or refilled by now) buckets and four that are not.
        let mut m: HashMap<u32, Bucket> = HashMap::new();
        for i in 0..4 {
            m.insert(i, bucket(if i % 2 == 0 { 2.0 } else { 0.5 }, i.into()));
            m.insert(10 + i, bucket(0.0, 99));
        }
        evict(&mut m, now, 1.0, 2.0, 8);
        let mut left: Vec<u32> = m.keys().copied().collect();
        left.sort_unstable();
        assert_eq!(left, [10, 11, 12, 13]);

        // Nothing full: the newest half stays, ties at the cut counted exactly.
        let mut m: HashMap<u32, Bucket> = (0..8)
            .map(|i| (i, bucket(0.0, [5, 1, 7, 3, 3, 3, 9, 0][i as usize])))
            .collect();
        evict(&mut m, now, 0.001, 2.0, 8);
        assert_eq!(m.len(), 4);
        assert!(m.contains_key(&2) && m.contains_key(&6) && m.contains_key(&0));
        assert!([3, 4, 5].iter().filter(|k| m.contains_key(k)).count() == 1);

        // A shard of one: the old key goes.
        let mut m = HashMap::from([(1u32, bucket(0.0, 1))]);
        evict(&mut m, now, 0.001, 2.0, 1);
        assert!(m.is_empty());
    }

    #[test]
    fn eviction_keeps_the_recently_seen() {
        // One shard's worth of keys, seen long ago and never refilled (rate ~0).
        let rl = RateLimiter::<u32>::with_capacity(f64::MIN_POSITIVE, 1, SHARDS);
        for i in 0..(SHARDS as u32 * 8) {
            let _ = rl.check_at(i, Duration::from_secs(u64::from(i)));
        }
        // Every shard holds one key (capacity 1 each): the newest that landed there.
        assert!(rl.tracked() <= SHARDS);
        let last = SHARDS as u32 * 8 - 1;
        assert!(
            rl.check_at(last, Duration::from_secs(u64::from(last)))
                .is_err(),
            "the most recent key keeps its empty bucket"
        );
    }

    #[test]
    fn nonsense_rates_are_clamped() {
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let rl = RateLimiter::<u8>::new(r, 0);
            let t = Instant::now();
            assert!(rl.check(0, t).is_ok());
            let wait = rl.check(0, t).unwrap_err();
            assert_eq!(wait, Duration::from_secs_f64(MAX_WAIT_SECS));
        }
    }
}
