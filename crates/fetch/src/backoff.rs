//! The workspace's one retry schedule: exponential backoff with jitter, capped.
//!
//! `fetch` (transient download failures), the push cascade (a downstream that does not
//! answer) and `publish-target` (a store pass that failed) all wait between attempts
//! by this schedule, so that many mirrors retrying after the same outage do not hit
//! an upstream in lockstep.

use std::time::Duration;

use rand::Rng as _;

/// Exponential backoff with jitter: before retry `attempt` (0 for the first retry)
/// wait a random 50–100 % of `first * 2^attempt`, capped at `max`.
///
/// ```
/// use std::time::Duration;
/// let b = fetch::Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
/// assert_eq!(b.ceiling(0), Duration::from_millis(250));
/// assert_eq!(b.ceiling(3), Duration::from_secs(2));
/// assert_eq!(b.ceiling(40), Duration::from_secs(30));
/// let d = b.delay(1);
/// assert!(d >= Duration::from_millis(250) && d <= Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
}

impl Backoff {
    /// A schedule starting at `first` and never above `max`.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { first, max }
    }

    /// The upper bound of the wait before retry `attempt`: `first * 2^attempt`, capped
    /// at `max` (no overflow: the exponent stops growing at 2^20).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.first
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.max)
    }

    /// The jittered wait before retry `attempt`: uniform in
    /// `[ceiling / 2, ceiling]` ([`Backoff::ceiling`]).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let room = ceiling - half;
        let r: f64 = rand::rng().random_range(0.0..=1.0);
        // `try_from`: no float overflow even for a `Duration::MAX` schedule.
        let extra = Duration::try_from_secs_f64(room.as_secs_f64() * r)
            .unwrap_or(room)
            .min(room);
        half + extra
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_half_and_whole_of_a_capped_doubling() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut previous = Duration::ZERO;
        for attempt in 0..40 {
            let ceiling = b.ceiling(attempt);
            assert!(ceiling >= previous, "the ceiling never goes down");
            assert!(ceiling <= Duration::from_secs(2));
            previous = ceiling;
            for _ in 0..50 {
                let d = b.delay(attempt);
                assert!(
                    d >= ceiling / 2 && d <= ceiling,
                    "attempt {attempt}: {d:?} vs {ceiling:?}"
                );
            }
        }
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(4), Duration::from_millis(1600));
        assert_eq!(b.ceiling(5), Duration::from_secs(2));
    }

    #[test]
    fn delays_are_jittered() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let seen: std::collections::BTreeSet<Duration> = (0..64).map(|_| b.delay(3)).collect();
        assert!(seen.len() > 1, "64 draws gave one value: no jitter");
    }

    #[test]
    fn huge_values_saturate() {
        let b = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(b.ceiling(u32::MAX), Duration::MAX);
        let z = Backoff::new(Duration::ZERO, Duration::from_secs(1));
        assert_eq!(z.delay(7), Duration::ZERO);
    }
}
