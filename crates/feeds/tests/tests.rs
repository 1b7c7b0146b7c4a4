//! Integration tests of the `feeds` crate: one module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

mod config;
mod keys;
mod load_check;
mod sidecar;
mod support;
mod sync;
mod threat_feed;
mod token;
mod verify;
