//! "Linear time" checks that compare two sizes instead of timing one.
//!
//! A deterministic work count is better where the code exposes one; where it does
//! not, [`assert_linear`] runs the same work at two input sizes and compares the best
//! of several runs with a generous factor: for inputs 8× apart, linear work costs
//! about 8×, quadratic work 64×, and the bound is 40×. The minimum over runs removes
//! most noise of a loaded machine (a slow run only ever makes a time larger), and the
//! small input is repeated until it takes a few milliseconds so that timer resolution
//! does not matter. No absolute time is asserted.

use std::time::{Duration, Instant};

/// Runs per size; the best (smallest) time counts.
pub const RUNS: usize = 5;

/// How much more than the size ratio the large input may cost (8× size < 40× time).
pub const SLACK: u32 = 5;

/// Best time of [`RUNS`] runs of `reps` calls of `f`.
fn best_of(reps: u32, f: &mut dyn FnMut()) -> Duration {
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Asserts that `large`, the same work as `small` on an input `size_ratio` (at least 8)
/// times bigger, costs less than [`SLACK`] × `size_ratio` times as much. Returns the
/// measured ratio (for messages).
///
/// # Panics
/// When the work grows faster than that (super-linear), or when `size_ratio < 8`
/// (too close to tell linear from quadratic).
pub fn assert_linear(
    what: &str,
    size_ratio: u32,
    mut small: impl FnMut(),
    mut large: impl FnMut(),
) -> f64 {
    assert!(size_ratio >= 8, "compare sizes at least 8x apart");
    // Warm-up (allocator, page faults), then repeat the small input to ≥ 5 ms.
    small();
    large();
    let mut reps = 1u32;
    while best_of(reps, &mut small) < Duration::from_millis(5) && reps < 1 << 16 {
        reps *= 2;
    }
    let t_small = best_of(reps, &mut small).as_secs_f64();
    let t_large = best_of(reps, &mut large).as_secs_f64();
    let ratio = t_large / t_small.max(1e-9);
    assert!(
        ratio < f64::from(SLACK * size_ratio),
        "{what}: {size_ratio}x the input cost {ratio:.1}x the time (super-linear; \
         linear would be about {size_ratio}x)"
    );
    ratio
}
