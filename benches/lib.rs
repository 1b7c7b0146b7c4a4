//! Shared helpers for the benchmark binaries in this directory.
#![forbid(unsafe_code)]
