//! The crate's integration tests, one test binary (see each module's docs).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod common;

mod fuzz_regressions;
mod interop_sigtool;
mod official;
mod prop_tamper;
mod roundtrip;
mod sign_interop_openssl;
mod sign_official;
mod sign_syntax;
mod threat_downgrade_and_trailing_data;
mod threat_duplicate_members;
mod threat_missing_extra_members;
mod threat_non_regular;
mod threat_oversized;
mod threat_path_traversal;
mod threat_sign_path;
mod threat_tampered_info;
mod threat_worst_case;
mod unpack_safety;
