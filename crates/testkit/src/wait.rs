//! Waiting for a condition, not for time: tests poll what they are about to read until
//! it holds, with a deadline, instead of sleeping a fixed time and hoping.
//!
//! ```no_run
//! use std::time::Duration;
//! # let dir = std::path::Path::new("/tmp");
//! testkit::wait::until("the state file", Duration::from_secs(10), || {
//!     dir.join("push.json").exists()
//! });
//! ```

use std::time::{Duration, Instant};

/// How often a condition is checked.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `cond` every [`POLL`] until it holds.
///
/// # Panics
///
/// When `cond` still does not hold after `limit`: the message names `what` was
/// awaited and for how long (a test failure, reported at the caller's line).
#[track_caller]
pub fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    until_some(what, limit, || cond().then_some(()));
}

/// Polls `f` every [`POLL`] until it returns `Some`, and returns that value.
///
/// # Panics
///
/// When `f` still returns `None` after `limit`, naming `what` was awaited.
#[track_caller]
pub fn until_some<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        let waited = t0.elapsed();
        if waited >= limit {
            panic!("timed out after {waited:.1?} waiting for {what}");
        }
        std::thread::sleep(POLL.min(limit - waited));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn returns_once_the_condition_holds() {
        let calls = Cell::new(0);
        until("the third call", Duration::from_secs(10), || {
            calls.set(calls.get() + 1);
            calls.get() == 3
        });
        assert_eq!(calls.get(), 3);
        let v = until_some("a value", Duration::from_secs(10), || {
            calls.set(calls.get() + 1);
            (calls.get() == 5).then_some("five")
        });
        assert_eq!((v, calls.get()), ("five", 5));
    }

    #[test]
    #[should_panic(expected = "waiting for a condition that never holds")]
    fn fails_naming_what_it_waited_for() {
        until(
            "a condition that never holds",
            Duration::from_millis(100),
            || false,
        );
    }
}
