//! Read, verify, unpack and build ClamAV CVD/CLD database containers.
//!
//! A container is a 512-byte ASCII [`Header`] followed by a tar body (gzip-compressed in a
//! signed `.cvd`, plain in a locally built `.cld`). This crate checks everything the
//! reference client checks, and a little more, in **one streaming pass** whose memory
//! use does not depend on the file size:
//!
//! 1. the header parses strictly ([`Header::parse`], typed errors naming the field);
//! 2. the legacy RSA signature (custom base64, textbook RSA with the CVD key) covers the
//!    header MD5 ([`legacy`]), and the MD5 of the body, computed while streaming,
//!    equals it;
//! 3. the body is gzip or plain tar, detected as the reference client does (a body
//!    starting with `COPYING` is plain); the tar is read with strict limits and safe-name
//!    rules: flat names only, no `/`, `..`, NUL, duplicates, links, directories or
//!    absurd sizes ([`Limits`], [`check_member_name`]);
//! 4. `<name>.info` parses ([`Info`]), its `DSIG` verifies ([`versig2`], RSA-PSS with the
//!    INFO key), its first line equals the container header (version, signatures,
//!    f-level and sign time as the reference loader checks, plus build time and builder,
//!    so that no header byte escapes every check), and its member list matches the
//!    archive exactly (sizes and SHA-256; members missing from `.info` and listed files
//!    missing from the archive are both errors; only `COPYING` and the `.info` itself
//!    are exempt);
//! 5. ClamAV 1.5 detached `.sign` files are verified by [`sign`].
//!
//! One call gives a [`Report`] (header, members, which checks passed):
//! [`verify_file`]/[`verify_reader`]. [`unpack`] extracts safely, [`read_members`]
//! reads everything into memory after verification, and [`CvdBuilder`] /
//! [`write_cld_from_dir`] write containers.
//!
//! Trust anchors are values: [`KeySet::official`] is the default, and callers (tests,
//! private publishers) pass their own [`KeySet`] in [`VerifyOptions`].
//!
//! # Where this crate is stricter than the reference client
//!
//! Every official vector passes all of these (tests prove it), and `sigtool`/`clamscan`
//! interop tests show where the reference is laxer:
//!
//! - the header must be canonical (no leading zeros, lowercase MD5, space padding only,
//!   builder without trailing space) so that [`Header::parse`] and
//!   [`Header::to_bytes`] round-trip;
//! - build time and builder must equal the signed `.info` first line too (the reference
//!   compares only version, signatures, f-level and sign time, so a re-dated file
//!   passes `sigtool -i`);
//! - a body that does not start with `COPYING` must be gzip (zlib would silently read
//!   it as plain data); nothing may follow the gzip stream; tar padding and the bytes
//!   after the end-of-archive block must be zero; tar header checksums are checked;
//! - the legacy signature integer must be smaller than the modulus and `m` must fit in
//!   16 bytes (the reference silently truncates);
//! - versig2 requires an all-zero PSS padding string (the reference only looks for the
//!   `0x01` separator); see [`versig2`] for the one place where we follow the
//!   reference *against* RFC 8017 (the encoded-message bit length).
//!
//! And where it follows the reference: an archive may end at end-of-stream on a block
//! boundary without end-of-archive blocks (sigtool writes none), and `COPYING` is not
//! listed in `.info`, so in an unsigned `.cld` its text is covered by no check.
//!
//! # Example
//!
//! Build a small signed database with a throw-away key, verify it, and see a damaged
//! copy rejected:
//!
//! ```
//! use cvd_format::{CvdBuilder, KeySet, SigningKey, SigningKeys, VerifyOptions, Check};
//!
//! let key = SigningKey::generate(2048)?;
//! let mut cvd = std::io::Cursor::new(Vec::new());
//! CvdBuilder::new("demo", 3)
//!     .flevel(120)
//!     .member("COPYING", b"demo licence\n".to_vec())
//!     .member("demo.hdb", b"44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n".to_vec())
//!     .write_cvd(&mut cvd, &SigningKeys::single(key.clone()))?;
//! let bytes = cvd.into_inner();
//!
//! let opts = VerifyOptions::new().keys(KeySet::single(key.public_key()));
//! let report = cvd_format::verify_reader(bytes.as_slice(), &opts)?;
//! assert_eq!(report.name, "demo");
//! assert_eq!(report.header.signatures, 1);
//! assert!(report.members.iter().any(|m| m.name == "demo.hdb"));
//!
//! let mut damaged = bytes.clone();
//! let last = damaged.len() - 1;
//! damaged[last] ^= 1;
//! let err = cvd_format::verify_reader(damaged.as_slice(), &opts).unwrap_err();
//! assert!(err.is_verification_failure());
//! # Ok::<(), cvd_format::Error>(())
//! ```
//!
//! # Dependencies and why
//!
//! - `rsa` 0.9 (RustCrypto): PSS verification/signing for versig2, and its `hazmat` raw
//!   RSA primitives for the legacy signature, which *is* unpadded textbook RSA; with its
//!   `getrandom` feature for the blinding/salt RNG (`OsRng`). `sha2`, `md-5`: the
//!   digests. One RustCrypto generation throughout (also `cms`/`x509-cert`/`der` in
//!   [`sign`]).
//! - `nom` 8: the header, `.info` and `.sign` grammars.
//! - `flate2` (miniz_oxide backend, pure Rust): gzip bodies. Its `bufread` decoder
//!   consumes exactly the gzip member, so trailing data can be detected.
//! - `time`: the build-time field is a real timestamp with a UTC offset.
//! - Full verification runs on two threads (`std::thread::scope`, no dependency): the
//!   calling thread reads, inflates and walks the tar; a helper computes the MD5 of
//!   the body and the SHA-256 of each member (see `benches/verify.rs` for the numbers).
//!   The reader and the sink never leave the calling thread.
//! - `thiserror`: the one error enum.
//! - The tar reader/writer is our own (a private module of ~300 lines):
//!   the subset accepted is tiny and strict (flat regular files; sigtool's v7-style
//!   headers), and the `tar` crate would add permissive behaviour (long names, links,
//!   PAX) that we would have to switch off and re-check anyway.
//! - ClamAV's signature text is a custom little-endian base64, implemented in
//!   [`clamb64`] (the `base64` crate cannot express it).
//! - `cms` 0.2, `x509-cert` 0.2, `der` 0.7, `spki`, `base64`: the `.sign` CMS/X.509
//!   structures. Pure-Rust RustCrypto was chosen over the `openssl` crate (no C
//!   library or FFI, `unsafe`-free and fuzzable end to end, no process-global trust
//!   store or clock, same build everywhere); the chain rules are therefore written out
//!   in [`sign`] and cross-checked against `openssl cms -verify` in the tests. The
//!   default `.sign` trust anchor is the official production root certificate,
//!   embedded from `src/roots/clamav.crt` ([`sign::CLAMAV_ROOT_PEM`]).
//!
//! # Features and dependency count
//!
//! | feature set | crates pulled in |
//! |---|---|
//! | minimal (`--no-default-features`) | 60 |
//! | default (the same: no optional I/O; `fuzzing` is for `fuzz/` only) | 60 |
//!
//! No async runtime, DNS or HTTP client in the minimal set. Counted, and kept current,
//! by `cargo xtask light-check` (run by CI, which fails when a row is stale or when a
//! minimal build pulls tokio, hickory, reqwest, ureq or hyper): the distinct crates,
//! by name and version, of `cargo tree -p cvd-format -e normal --no-dedupe` (with
//! `--no-default-features` for the minimal row), the crate itself not counted; in
//! shell terms `... --prefix none --no-dedupe | sort -u | wc -l`, minus one. Build and
//! dev dependencies are not counted.
//!
//! # Worst cases
//!
//! The input that maximises each parser's work within its limits, next to a typical
//! input of the same size. Nothing is super-linear in the input: every per-member or
//! per-line cost is constant (hash sets for names, one streaming pass), and the
//! `.sign` path search is bounded by a budget of signature checks.
//!
//! | parser | worst input | limit that bounds it | worst | typical, same size | ratio |
//! |---|---|---|---|---|---|
//! | `.cvd`/`.cld` container (header, gzip, tar, `.info` check) | 9 998 empty members, each listed in the `.info` (5.7 MiB unpacked) | `Limits::max_members` (10 000), `max_unpacked_size`: a member costs one 512-byte header and one `.info` line | 432 ms | 118 ms (one member of signature text) | 3.7 |
//! | header | fixed 512 bytes | `HEADER_SIZE` | constant | constant | — |
//! | `.info` | 100 000 entries with the shortest names (6.9 MiB) | `info::MAX_ENTRIES`, `max_info_size` (16 MiB) | 604 ms | 824 ms (59 845 entries with 45-byte names) | 0.73 |
//! | legacy signature | well-formed signature over another MD5 (342 B) | fixed size, one RSA operation | 182 µs | 180 µs (good signature) | 1.01 |
//! | PSS signature (versig2) | well-formed signature over another digest | fixed size, one RSA operation | 176 µs | 201 µs (good signature) | 0.87 |
//! | `.sign` (CMS, X.509 path) | 3 lines, each 15 CA certificates with one subject and one key plus the leaf (47 KiB; no path to a trusted root) | `sign::MAX_SIGN_FILE_SIZE`, `MAX_EMBEDDED_CERTS` (16), `MAX_CHAIN_DEPTH`, the path-search budget of signature checks | 62 ms (refused) | 67 ms (same file, one loop CA trusted) | 0.93 |
//!
//! Measured with `cargo bench --profile dev -p mirror-benches --bench worst_case`
//! (`benches/worst_case.rs`; workspace crates unoptimised, the crypto and compression
//! crates at `opt-level = 3` as in `Cargo.toml`) on the shared 2-core development VM,
//! best of several runs, 2026-12-06. "Ratio" is worst / typical per input byte (the
//! plain ratio when the sizes are equal); absolute times vary with the machine's load,
//! the ratios are what the benchmark is for. A second run under heavier load moved
//! them by up to 2× (cdiff apply 12 → 24, `.sign` 0.93 → 1.7, the others by less).
//!
//! Threat tests: `tests/threat_worst_case.rs` (the most empty members and the most
//! `.info` entries: verdict at the limit, refusal one above it, and linear time
//! compared at 1× and 8× the input) and `tests/threat_sign_path.rs` (the `.sign` path
//! search, counted in signature checks). Before the search budget the `.sign` row did
//! not finish in 60 s (issue 21: hours).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod build;
pub mod clamb64;
mod digests;
mod error;
pub mod header;
pub mod info;
pub mod keys;
pub mod legacy;
mod names;
pub mod sign;
mod tar;
mod unpack;
mod verify;
pub mod versig2;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use build::{CvdBuilder, write_cld_from_dir};
pub use error::{Check, Error, HeaderField, Result};
pub use header::Header;
pub use info::{Info, InfoEntry};
pub use keys::{KeySet, PublicKey, SigningKey, SigningKeys};
pub use names::{MAX_NAME_LEN, check_member_name};
pub use unpack::{Contents, MemberData, read_members, read_members_file, unpack, unpack_reader};
pub use verify::{
    CheckStatus, Checks, Compression, Limits, MemberInfo, Report, VerifyOptions, verify_file,
    verify_reader,
};

/// The `N` bytes written as `2 * N` hex digits (either case) in `text`; `None` for any
/// other length or a non-hex character. The decoding twin of [`hex`].
pub(crate) fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let nib = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *o = (nib(pair[0])? << 4) | nib(pair[1])?;
    }
    Some(out)
}

/// Lowercase hex of `bytes` (MD5s, SHA-256s): the workspace's one hex encoder.
///
/// ```
/// assert_eq!(cvd_format::hex(&[0x00, 0xab, 0x7f]), "00ab7f");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn unhex_reverses_hex_and_refuses_anything_else() {
        let bytes = [0x00, 0x9f, 0xa0, 0xff];
        assert_eq!(super::unhex::<4>(&super::hex(&bytes)), Some(bytes));
        assert_eq!(super::unhex::<4>("009FA0FF"), Some(bytes));
        for bad in ["009fa0f", "009fa0fff0", "009fa0fg", "+9fa0ff0"] {
            assert_eq!(super::unhex::<4>(bad), None, "{bad}");
        }
    }
}
