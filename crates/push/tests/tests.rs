//! The crate's integration tests, one test binary.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod cascade_proxy;
mod hub;
mod pair_keys;
mod threat_worst_case;
