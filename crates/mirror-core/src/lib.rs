//! The sync engine: plan, download, verify, chain-check and publish a mirror atomically.
//!
//! See `ARCHITECTURE.md` at the workspace root for the mirror directory layout.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod status;
