//! The crate's integration tests, one test binary (see each module's docs).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod util;

mod check_chain;
mod generate_props;
mod official_chain;
mod threat_chain;
mod threat_worst_case;
