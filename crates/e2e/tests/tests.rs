//! The crate's integration tests, one test binary (see each module's docs).
#![allow(clippy::unwrap_used)] // tests: a panic is a failure report

mod bootstrap;
mod feeds_tiers;
mod net_push;
mod object_storage;
mod pipeline;
mod push_network;
