//! Parse, verify, apply and generate ClamAV `.cdiff` incremental patches.
//!
//! A `.cdiff` turns version N-1 of a database (`daily`, `main`, ...) into version N. It
//! is a signed container (`ClamAV-Diff:<version>:<script length>:` + gzip + `:<sig>`)
//! around a line-oriented edit script (spec §2). This crate:
//!
//! - parses and verifies the container ([`Patch`]) — the RSA-PSS signature is checked
//!   before a single byte is decompressed, and decompression is bounded ([`Limits`]);
//! - parses the script with `nom` into typed [`Command`]s ([`Script`]), with the line
//!   number in every error;
//! - applies a script to an in-memory [`Database`] or a directory ([`apply_to_dir`])
//!   with the reference client's exact semantics, all-or-nothing, in linear time;
//! - applies a chain of patches to a `.cvd`/`.cld` and writes the resulting `.cld`
//!   ([`chain`]), and checks that base + patches reproduce a signed `.cvd` byte for byte
//!   ([`chain::check`]);
//! - generates a script from two database versions and signs it ([`generate`]).
//!
//! The reference semantics were measured against `sigtool --run-cdiff` of ClamAV 1.4.6;
//! the details are documented in [`script`] and [`apply`].
//!
//! Dependencies: `nom` (script grammar), `flate2` (gzip), `sha2` (digests),
//! `cvd-format` (keys, versig2 PSS, CVD/CLD containers, `.info`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod apply;
mod error;
mod limits;
pub mod script;

pub use apply::{Database, apply_to_dir};
pub use error::{Error, Result};
pub use limits::Limits;
pub use script::{Command, Script};
