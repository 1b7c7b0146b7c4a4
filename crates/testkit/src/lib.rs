//! Test support shared by the workspace's tests, benches and xtask (never published).
#![forbid(unsafe_code)]

pub mod config;
pub mod dns;
pub mod http;
pub mod keys;
pub mod upstream;
