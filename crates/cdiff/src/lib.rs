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
//! Where this crate is deliberately stricter than the reference (each would only make
//! a mirror refuse something a client might accept): database names must be ASCII
//! (`[A-Za-z0-9.]`, not only dots; the reference accepts any Unicode alphanumeric),
//! and a bare `ADD` without argument is a syntax error (the reference ignores it).
//! Spec §2 lists `_` as allowed in names; the reference (1.4.6) rejects it, and so do
//! we. Like the reference, the declared script length is not enforced (decompression
//! is bounded by [`Limits::max_script_len`] instead).
//!
//! # Example
//!
//! Bring `test-1.cvd` to version 6 with the official patches and check the result
//! against the signed `test-6.cvd`:
//!
//! ```
//! use cdiff::chain::{self, ChainOptions, Consistency, PatchInput};
//! let dir = std::path::Path::new(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/../../testdata/clamav-official"
//! ));
//! let opts = ChainOptions::new(); // official keys
//! let patches = (2..=6)
//!     .map(|v| PatchInput::read(&dir.join(format!("test-{v}.cdiff")), opts.limit_values()))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let base = std::fs::read(dir.join("test-1.cvd"))?;
//! let patched = chain::apply(base.as_slice(), &patches, &opts)?;
//! assert_eq!(patched.version, 6);
//!
//! let target = std::fs::read(dir.join("test-6.cvd"))?;
//! let verdict = chain::check(target.as_slice(), base.as_slice(), &patches, &opts)?;
//! assert_eq!(verdict, Consistency::Consistent { version: 6 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Dependencies and why
//!
//! - `cvd-format`: keys, versig2 (RSA-PSS via RustCrypto `rsa`), reading verified
//!   `.cvd`/`.cld` members, `.info` parsing/verification and writing `.cld` files.
//! - `nom` 8: the script and container-header grammars.
//! - `flate2`: the gzip stream (bounded with `Read::take`).
//! - `sha2`: the SHA-256 digests the signatures cover.
//! - `memchr`: fast newline search when streaming database files (already in the tree
//!   through `nom`); it makes applying patches to large files several times faster
//!   than a byte loop.
//! - `thiserror`: the error enum.
//!
//! # Features and dependency count
//!
//! | feature set | crates pulled in |
//! |---|---|
//! | minimal (`--no-default-features`) | 69 |
//! | default (the same: no optional I/O; `fuzzing` is for `fuzz/` only) | 69 |
//!
//! No async runtime, DNS or HTTP client in the minimal set. Counted, and kept current,
//! by `cargo xtask light-check` (run by CI, which fails when a row is stale or when a
//! minimal build pulls tokio, hickory, reqwest, ureq or hyper): the distinct crates,
//! by name and version, of `cargo tree -p cdiff -e normal --no-dedupe` (with
//! `--no-default-features` for the minimal row), the crate itself not counted; in
//! shell terms `... --prefix none --no-dedupe | sort -u | wc -l`, minus one. Build and
//! dev dependencies are not counted.
//!
//! # Worst cases
//!
//! | parser | worst input | limit that bounds it | worst | typical, same size | ratio |
//! |---|---|---|---|---|---|
//! | script parser | 699 050 one-word lines (`CLOSE`), 4 MiB | `Limits::max_script_len` (256 MiB), `max_script_lines` (10 M), `max_line_len` (10 MiB) | 308 ms | 53 ms (`ADD` lines of signature text, 4.3 MiB) | 6.1 |
//! | engine (apply) | 16 `OPEN`/`DEL`/`CLOSE` blocks on one 1 MiB file | `Limits::max_rewrites_per_file` (16): each such block copies the whole file | 68 ms | 5.7 ms (one `OPEN` with the same 16 `DEL`s) | 12 |
//! | `.cdiff` container | header, gzip, one RSA check: one pass over the bytes | `max_patch_len` (64 MiB), `max_script_len` | not benchmarked | | |
//! | chain | `max_chain_len` patches; the result's `.info` checked against every file with a set | `max_chain_len` (10 000) | not benchmarked | | |
//!
//! The parser's cost is per line (6× per byte for the shortest lines) and linear. The
//! engine streams each file once per `CLOSE`, so a script of `n` tiny blocks on one big
//! file used to cost `n` × its size (quadratic in the script); the rewrite limit makes
//! that factor a constant. Official scripts open each file once. The chain check used
//! to look every file up in the `.info` by a linear search (files × entries).
//!
//! Measured with `cargo bench --profile dev -p mirror-benches --bench worst_case`
//! (`benches/worst_case.rs`; workspace crates unoptimised, the crypto and compression
//! crates at `opt-level = 3` as in `Cargo.toml`) on the shared 2-core development VM,
//! best of several runs, 2026-12-06. "Ratio" is worst / typical per input byte (the
//! plain ratio when the sizes are equal); absolute times vary with the machine's load,
//! the ratios are what the benchmark is for. A second run under heavier load moved
//! them by up to 2× (cdiff apply 12 → 24, `.sign` 0.93 → 1.7, the others by less).
//!
//! Threat tests: `tests/threat_worst_case.rs` (the 17th rewrite of a file refused by
//! name whatever follows, `MOVE` counted for both files, and script parsing compared at
//! 1× and 8× the lines and the line length) and the unit test
//! `chain::tests::the_result_check_is_linear_in_files_and_entries` (2 000 and 32 000
//! files; the old per-file search measured 835× the time for 16× the files).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod apply;
pub mod chain;
mod error;
pub mod generate;
mod limits;
pub mod patch;
pub mod script;

pub use apply::{Database, apply_to_dir};
pub use error::{Error, Result};
pub use limits::Limits;
pub use patch::Patch;
pub use script::{Command, Script};

/// Entry points for the `cargo fuzz` targets in `fuzz/` (not a stable API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::{Database, Limits, Script};

    fn small_limits() -> Limits {
        Limits::default()
            .max_script_len(1 << 20)
            .max_line_len(64 << 10)
            .max_file_len(1 << 20)
    }

    /// Container: signature path with the official key, then (without trusting it) the
    /// header and bounded gzip path, then the script parser on what came out.
    pub fn container(data: &[u8]) {
        static KEY: std::sync::OnceLock<cvd_format::PublicKey> = std::sync::OnceLock::new();
        let limits = small_limits();
        let key = KEY.get_or_init(|| cvd_format::KeySet::official().cdiff);
        let _ = crate::Patch::verify_with_limits("fuzz", data.to_vec(), key, &limits);
        if let Ok((_, script)) = crate::patch::parse_unverified(data, &limits) {
            assert!(script.len() as u64 <= limits.max_script_len);
            let _ = Script::parse_with_limits(&script, &limits);
        }
    }

    /// Script parser: parse → serialize → parse must give the same commands; then run
    /// the script against a tiny database (must not panic; errors leave it unchanged).
    pub fn script(data: &[u8]) {
        let limits = small_limits();
        let Ok(script) = Script::parse_with_limits(data, &limits) else {
            return;
        };
        let bytes = match script.to_bytes() {
            Ok(b) => b,
            Err(e) => panic!("parsed script does not serialize: {e}"),
        };
        match Script::parse_with_limits(&bytes, &limits) {
            Ok(again) => assert_eq!(again, script, "script does not round-trip"),
            Err(e) => panic!("serialized script does not parse: {e}"),
        }
        let mut db = Database::new();
        db.insert("a.db", b"1 one\n2 two\n3 three\n".to_vec());
        db.insert("b.db", b"x\n".to_vec());
        let before = db.clone();
        if db.apply_with_limits(&script, &limits).is_err() {
            assert_eq!(db, before, "failed apply changed the database");
        }
    }
}
