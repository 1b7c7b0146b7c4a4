//! Conditional, resumable, rate-limit-aware HTTP downloads into a destination directory.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
