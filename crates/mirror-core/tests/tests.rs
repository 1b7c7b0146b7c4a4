//! The crate's integration tests, one test binary (see each module's docs).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod dns_server;
mod support;

mod bootstrap_backfill;
mod dns_versions;
mod engine_fake_transport;
mod lock;
mod publish;
mod reader_consistency;
mod sync_official;
mod threat_chain;
mod threat_oversized;
mod threat_rollback;
mod threat_tampered;
mod threat_truncated;
mod threat_upstream;
mod threat_worst_case;
