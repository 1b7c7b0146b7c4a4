//! Process exit codes, as documented in `ARCHITECTURE.md`.

/// Success: verified / up to date / updated.
pub const SUCCESS: u8 = 0;
/// Verification failed (a file, signature or chain did not verify).
pub const VERIFY_FAILED: u8 = 1;
/// Usage, configuration or local I/O error.
pub const USAGE_OR_IO: u8 = 2;
/// Upstream unreachable (all upstreams failed).
#[allow(dead_code)] // used by `sync`/`watch`
pub const UPSTREAM_UNREACHABLE: u8 = 3;
/// Rate-limited (every upstream is in a `Retry-After` cool-down).
#[allow(dead_code)] // used by `sync`/`watch`
pub const RATE_LIMITED: u8 = 4;
/// Another sync holds the lock.
#[allow(dead_code)] // used by `sync`/`watch`
pub const LOCKED: u8 = 5;

/// The exit code for a `cvd-format` error: [`VERIFY_FAILED`] when the input was judged
/// invalid, [`USAGE_OR_IO`] for local failures (unreadable file, bad root certificate).
pub fn for_cvd_error(err: &cvd_format::Error) -> u8 {
    if err.is_verification_failure() {
        VERIFY_FAILED
    } else {
        USAGE_OR_IO
    }
}
