//! Learn which database versions upstream holds: the DNS TXT record, and a mirror's
//! own `dns.txt` manifest in the same format.
//!
//! - [`DatabaseRecord`]: the per-database record `<db>.cvd.clamav.net` (`version:time`)
//!   that libfreshclam reads for databases the main record does not list.
//! - [`VersionRecord`]: the TXT record `current.cvd.clamav.net` (spec §4), parsed
//!   field by field (a missing or non-numeric field is an error, never a zero), with
//!   its age and [staleness](VersionRecord::is_stale) (default 12 h), and a documented
//!   extension for custom databases (`name=version` fields after the eight standard
//!   ones, which the reference client ignores).
//! - [`lookup`] (feature `resolver`, on by default; [`DnsConfig`] with it): the record
//!   over DNS with `hickory-resolver` (timeouts, configurable name and name servers;
//!   explicit name servers work with an empty `/etc/resolv.conf`). The resolver runs
//!   on a private current-thread tokio runtime, so the API is blocking like the rest
//!   of the sync engine.
//! - [`parse_manifest`] / [`render_manifest`]: the `dns.txt` file a mirror publishes
//!   for the next tier (the one reader and writer of that format; `mirror-core`
//!   downloads and publishes it).
//!
//! Without DNS or a manifest, `mirror-core` probes the first 512 bytes of `<db>.cvd`
//! through its transport and parses them with `cvd-format`'s one header parser.
//!
//! DNS answers are untrusted input: every field is validated here, and lengths and
//! counts are bounded ([`MAX_RECORD_LEN`], [`MAX_EXTRA`]).
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use dns_versions::{VersionRecord, DEFAULT_MAX_AGE};
//!
//! let now = SystemTime::now();
//! let mut mine = VersionRecord::new(now, 62, 27466, 335);
//! mine.set_version("mycustom", 7)?;
//! let line = mine.to_string();            // what `dns.txt` holds
//! let back = VersionRecord::parse(&line)?;
//! assert_eq!(back, mine);
//! assert!(!back.is_stale(now, DEFAULT_MAX_AGE));
//! assert!(back.is_stale(now + Duration::from_secs(13 * 3600), DEFAULT_MAX_AGE));
//! # Ok::<(), dns_versions::Error>(())
//! ```
//!
//! # Worst cases
//!
//! | parser | worst input | limit that bounds it | worst | typical | ratio |
//! |---|---|---|---|---|---|
//! | TXT record / `dns.txt` | 3 719 bytes with 127 extension fields | `MAX_RECORD_LEN` (4096, checked before splitting), `MAX_EXTRA` (128) | 212 µs | 3.2 µs (the official 36-byte record) | 0.65 |
//!
//! The limits make the work per record a constant; per byte the worst record costs
//! less than the official one.
//!
//! Measured with `cargo bench --profile dev -p mirror-benches --bench worst_case`
//! (`benches/worst_case.rs`; workspace crates unoptimised, the crypto and compression
//! crates at `opt-level = 3` as in `Cargo.toml`) on the shared 2-core development VM,
//! best of several runs, 2026-12-06. "Ratio" is worst / typical per input byte (the
//! plain ratio when the sizes are equal); absolute times vary with the machine's load,
//! the ratios are what the benchmark is for. A second run under heavier load moved
//! them by up to 2× (cdiff apply 12 → 24, `.sign` 0.93 → 1.7, the others by less).
//!
//! Threat tests: `tests/threat_worst_case.rs` (the most extension fields, 4096 colons,
//! one byte over the limit, a two-line manifest).
//!
//! # Features and dependency count
//!
//! | feature set | crates pulled in |
//! |---|---|
//! | minimal (`--no-default-features`): records and `dns.txt` manifests, parse and write | 8 |
//! | default (`resolver`: [`lookup`] through hickory-resolver on tokio) | 87 |
//!
//! No async runtime, DNS or HTTP client in the minimal set. Counted, and kept current,
//! by `cargo xtask light-check` (run by CI, which fails when a row is stale or when a
//! minimal build pulls tokio, hickory, reqwest, ureq or hyper): the distinct crates,
//! by name and version, of `cargo tree -p dns-versions -e normal --no-dedupe` (with
//! `--no-default-features` for the minimal row), the crate itself not counted; in
//! shell terms `... --prefix none --no-dedupe | sort -u | wc -l`, minus one. Build and
//! dev dependencies are not counted.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "resolver")]
mod dns;
mod error;
mod manifest;
mod record;

#[cfg(feature = "resolver")]
pub use dns::{DnsConfig, lookup};
pub use error::Error;
pub use manifest::{MANIFEST_NAME, parse_manifest, render_manifest};
pub use record::{
    DEFAULT_MAX_AGE, DEFAULT_NAME, DatabaseRecord, MAX_EXTRA, MAX_RECORD_LEN, VersionRecord,
};

/// Entry points for `cargo fuzz` (not a stable API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::VersionRecord;

    /// Parses arbitrary bytes as a record; whatever parses must survive a
    /// write → parse round trip unchanged.
    pub fn txt_record(data: &[u8]) {
        let Ok(s) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(r) = VersionRecord::parse(s) {
            let again = VersionRecord::parse(&r.to_string());
            assert_eq!(again.ok().as_ref(), Some(&r), "round trip changed {s:?}");
        }
        if let Ok(r) = crate::DatabaseRecord::parse(s) {
            let again = crate::DatabaseRecord::parse(&r.to_string());
            assert_eq!(again.ok(), Some(r), "round trip changed {s:?}");
        }
        let _ = crate::parse_manifest(data);
    }
}
