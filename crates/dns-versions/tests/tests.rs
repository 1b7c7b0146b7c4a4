//! The crate's integration tests, one test binary (see each module's docs).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

// The lookup over DNS exists only with the `resolver` feature (on by default).
#[cfg(feature = "resolver")]
mod dns;
mod prop_record;
mod threat_worst_case;
