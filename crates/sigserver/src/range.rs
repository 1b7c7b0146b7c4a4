//! `Range` request header evaluation (RFC 9110 §14) for one representation.
//!
//! Decisions (documented behaviour, tested):
//! * only the `bytes` unit is understood; anything else is ignored (full `200`);
//! * a single range is honoured: `a-b`, `a-` (open) and `-n` (suffix) → `206`;
//! * a syntactically invalid header is ignored (full `200`), as RFC 9110 allows;
//! * several ranges (`bytes=0-1,5-6`) are answered with the full representation
//!   (`200`) instead of `multipart/byteranges`: clients of a mirror only ever ask for
//!   one range (the 512-byte header probe, or resuming a download), and a full answer
//!   is always a correct answer to a range request;
//! * a single range whose first byte is at or beyond the end (or a `-0` suffix, or any
//!   range on an empty file) is unsatisfiable → `416` with `Content-Range: bytes */len`.

/// Longest `Range` header value looked at (longer values are ignored).
pub const MAX_RANGE_HEADER: usize = 256;

/// What to send for a `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Send the whole representation (`200`).
    Full,
    /// Send bytes `start..=end` (`206`); `end < len` is guaranteed.
    Partial {
        /// First byte offset.
        start: u64,
        /// Last byte offset, inclusive.
        end: u64,
    },
    /// Nothing can be sent (`416`).
    Unsatisfiable,
}

/// Evaluates a `Range` header value against a representation of `len` bytes.
///
/// ```
/// use sigserver::range::{evaluate, RangeOutcome};
/// assert_eq!(evaluate(b"bytes=0-511", 10_000), RangeOutcome::Partial { start: 0, end: 511 });
/// assert_eq!(evaluate(b"bytes=-100", 1000), RangeOutcome::Partial { start: 900, end: 999 });
/// assert_eq!(evaluate(b"bytes=2000-", 1000), RangeOutcome::Unsatisfiable);
/// assert_eq!(evaluate(b"bytes=0-1,5-6", 1000), RangeOutcome::Full);
/// ```
pub fn evaluate(value: &[u8], len: u64) -> RangeOutcome {
    if value.len() > MAX_RANGE_HEADER {
        return RangeOutcome::Full;
    }
    let Ok(value) = std::str::from_utf8(value) else {
        return RangeOutcome::Full;
    };
    let value = value.trim_matches([' ', '\t']);
    let Some((unit, set)) = value.split_once('=') else {
        return RangeOutcome::Full;
    };
    if !unit
        .trim_end_matches([' ', '\t'])
        .eq_ignore_ascii_case("bytes")
    {
        return RangeOutcome::Full;
    }
    if set.contains(',') {
        return RangeOutcome::Full;
    }
    let spec = set.trim_matches([' ', '\t']);
    let Some((first, last)) = spec.split_once('-') else {
        return RangeOutcome::Full;
    };
    if first.is_empty() {
        let Some(n) = number(last) else {
            return RangeOutcome::Full;
        };
        if n == 0 || len == 0 {
            return RangeOutcome::Unsatisfiable;
        }
        return RangeOutcome::Partial {
            start: len - n.min(len),
            end: len - 1,
        };
    }
    let Some(start) = number(first) else {
        return RangeOutcome::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(e) if e >= start => e,
            _ => return RangeOutcome::Full,
        }
    };
    if start >= len {
        return RangeOutcome::Unsatisfiable;
    }
    RangeOutcome::Partial {
        start,
        end: end.min(len - 1),
    }
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeOutcome::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let len = 1000;
        for (h, want) in [
            ("bytes=0-511", Partial { start: 0, end: 511 }),
            ("bytes=0-0", Partial { start: 0, end: 0 }),
            ("bytes=0-99999", Partial { start: 0, end: 999 }),
            (
                "bytes=999-",
                Partial {
                    start: 999,
                    end: 999,
                },
            ),
            (
                "bytes=500-",
                Partial {
                    start: 500,
                    end: 999,
                },
            ),
            (
                "bytes=-1",
                Partial {
                    start: 999,
                    end: 999,
                },
            ),
            ("bytes=-5000", Partial { start: 0, end: 999 }),
            ("BYTES = 1-2", Partial { start: 1, end: 2 }),
            (" bytes=1-2 ", Partial { start: 1, end: 2 }),
            ("bytes=1000-", Unsatisfiable),
            ("bytes=1000-2000", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=5-1", Full),
            ("bytes=0-1,3-4", Full),
            ("bytes=a-b", Full),
            ("bytes=-", Full),
            ("bytes=+1-2", Full),
            ("bytes=1", Full),
            ("items=0-1", Full),
            ("", Full),
            ("bytes=99999999999999999999-", Full),
        ] {
            assert_eq!(evaluate(h.as_bytes(), len), want, "{h}");
        }
        assert_eq!(evaluate(b"bytes=0-", 0), Unsatisfiable);
        assert_eq!(evaluate(b"bytes=-1", 0), Unsatisfiable);
    }

    proptest! {
        #[test]
        fn partial_is_always_inside(value in "\\PC{0,40}", len in 0u64..5000) {
            if let Partial { start, end } = evaluate(value.as_bytes(), len) {
                prop_assert!(start <= end && end < len);
            }
        }

        #[test]
        fn explicit_ranges_are_clamped(start in 0u64..3000, extra in 0u64..3000, len in 1u64..2000) {
            let h = format!("bytes={start}-{}", start + extra);
            let got = evaluate(h.as_bytes(), len);
            if start >= len {
                prop_assert_eq!(got, Unsatisfiable);
            } else {
                prop_assert_eq!(got, Partial { start, end: (start + extra).min(len - 1) });
            }
        }
    }
}
