//! The crate's integration tests, one test binary (see each module's docs).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod util;

mod behind_redirect;
mod cli;
mod dashboards;
mod dns;
mod feed_serving;
mod http_semantics;
mod interop_freshclam;
mod interop_freshclam_behind;
mod interop_freshclam_dns;
mod ipv6;
mod ops;
mod push_head_parity;
mod reload;
mod sendfile;
mod service;
mod snapshot_switch;
mod status_page;
mod sync_in_process;
mod threat_client_poisoning;
mod threat_path_traversal;
mod threat_slow_clients;
