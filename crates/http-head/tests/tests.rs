//! The crate's integration tests, one test binary: the strictness rules one by one
//! (`strict`) and properties over generated heads (`properties`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod properties;
mod strict;
