//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The official signed vectors (never copied into the project).
pub const OFFICIAL_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/clamav-official"
);

/// All official `.cvd` files.
pub const OFFICIAL_CVDS: &[&str] = &[
    "test-1.cvd",
    "test-2.cvd",
    "test-3.cvd",
    "test-4.cvd",
    "test-5.cvd",
    "test-6.cvd",
    "bytecode.cvd",
];

pub fn official(name: &str) -> PathBuf {
    PathBuf::from(OFFICIAL_DIR).join(name)
}

pub fn read_official(name: &str) -> Vec<u8> {
    std::fs::read(official(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}
