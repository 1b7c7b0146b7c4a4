//! The crate's integration tests, one test binary (see each module's docs).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

#[path = "../../mirror-core/tests/dns_server/mod.rs"]
mod dns_server;
mod official_sync;
#[path = "../../mirror-core/tests/support/mod.rs"]
mod support;

mod cli_cdiff;
mod cli_config;
mod cli_feeds;
mod cli_logs;
mod cli_status_behind;
mod cli_sync;
mod cli_verify;
mod cli_watch;
mod crash_safety;
mod interop_freshclam;
mod net_proxy;
mod net_s3;
mod net_tls;
