//! Optional per-client request rate limit: one token bucket per client IP address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Most client addresses tracked at once; when full, buckets that have refilled
/// completely are dropped (they carry no state), then the oldest half if still full.
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

/// A token bucket per client IP: `rate` requests per second, bursts up to `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    /// `f64` bits; both change with [`RateLimiter::set`] (a configuration reload).
    rate: AtomicU64,
    burst: AtomicU64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// A limiter allowing `rate` requests per second per client with bursts of `burst`
    /// (at least 1).
    pub fn new(rate: f64, burst: u32) -> Self {
        RateLimiter {
            rate: AtomicU64::new(rate.max(f64::MIN_POSITIVE).to_bits()),
            burst: AtomicU64::new(f64::from(burst.max(1)).to_bits()),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Changes the rate and burst in place (a configuration reload). Clients keep their
    /// buckets; a bucket fuller than the new burst is clipped on its next request.
    ///
    /// ```
    /// use std::time::Instant;
    /// let rl = sigserver::ratelimit::RateLimiter::new(1.0, 1);
    /// let (ip, t) = ("127.0.0.1".parse().unwrap(), Instant::now());
    /// assert!(rl.check(ip, t).is_ok());
    /// assert!(rl.check(ip, t).is_err());
    /// rl.set(1.0, 3);
    /// assert_eq!(rl.limits(), (1.0, 3));
    /// ```
    pub fn set(&self, rate: f64, burst: u32) {
        self.rate
            .store(rate.max(f64::MIN_POSITIVE).to_bits(), Ordering::Relaxed);
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

    /// Takes one token for `ip` at time `now`. `Err(wait)` tells how long until a
    /// token is available (for `Retry-After`).
    ///
    /// ```
    /// use std::time::Instant;
    /// let rl = sigserver::ratelimit::RateLimiter::new(1.0, 2);
    /// let ip = "127.0.0.1".parse().unwrap();
    /// let t = Instant::now();
    /// assert!(rl.check(ip, t).is_ok());
    /// assert!(rl.check(ip, t).is_ok());
    /// assert!(rl.check(ip, t).is_err());
    /// ```
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut map = match self.buckets.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (rate, burst) = self.load();
        if map.len() >= MAX_TRACKED_CLIENTS && !map.contains_key(&ip) {
            Self::evict(&mut map, now, rate, burst);
        }
        let b = map.entry(ip).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                ((1.0 - b.tokens) / rate).min(86_400.0),
            ))
        }
    }

    fn evict(map: &mut HashMap<IpAddr, Bucket>, now: Instant, rate: f64, burst: f64) {
        map.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
        });
        if map.len() >= MAX_TRACKED_CLIENTS {
            let mut ages: Vec<Instant> = map.values().map(|b| b.at).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            map.retain(|_, b| b.at > cut);
        }
    }

    /// Number of client addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().map_or(0, |m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_and_isolates_clients() {
        let rl = RateLimiter::new(2.0, 1);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        assert!(rl.check(a, t0).is_ok());
        let wait = rl.check(a, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(rl.check(b, t0).is_ok());
        assert!(rl.check(a, t0 + Duration::from_millis(500)).is_ok());
        assert!(rl.check(a, t0 + Duration::from_millis(600)).is_err());
    }

    #[test]
    fn tracking_is_bounded() {
        let rl = RateLimiter::new(1000.0, 1);
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED_CLIENTS as u32 + 10) {
            let ip = IpAddr::from(i.to_be_bytes());
            let _ = rl.check(ip, t0 + Duration::from_micros(u64::from(i)));
        }
        assert!(rl.tracked() <= MAX_TRACKED_CLIENTS);
    }
}
