//! The crate's integration tests, one test binary (see each module's docs).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod dns;
mod prop_record;
mod threat_worst_case;
