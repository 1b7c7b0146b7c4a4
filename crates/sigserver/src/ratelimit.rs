//! Optional per-client request rate limit: one token bucket per client IP address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most client addresses tracked at once; when full, buckets that have refilled
/// completely are dropped (they carry no state), then the oldest half if still full.
pub const MAX_TRACKED_CLIENTS: usize = 100_000;

/// A token bucket per client IP: `rate` requests per second, bursts up to `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
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
            rate: rate.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
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
        if map.len() >= MAX_TRACKED_CLIENTS && !map.contains_key(&ip) {
            self.evict(&mut map, now);
        }
        let b = map.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                ((1.0 - b.tokens) / self.rate).min(86_400.0),
            ))
        }
    }

    fn evict(&self, map: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
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
