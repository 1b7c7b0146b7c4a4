//! `sigserver`: the HTTP server of a ClamAV signature mirror.
//!
//! It serves the published snapshot of a mirror directory maintained by `mirror-core`
//! (`DIR/current`, an atomically switched symlink to an immutable generation) or a plain
//! directory of database files, to `freshclam` clients and downstream mirrors:
//!
//! * only names of the mirror's file grammar ([`names`]): `<db>.cvd`, `<db>.cld`,
//!   `<db>-<v>.cdiff`, `<db>-<v>.cvd.sign`, `<db>-<v>.cdiff.sign`, `dns.txt`;
//! * one snapshot per request: the file is opened once and headers and body come from
//!   that descriptor, so a publish or prune mid-transfer cannot mix content;
//! * HTTP/1.1 and 1.0 (our own loop, [`h1`](self#decisions)) and HTTP/2 (hyper), `GET`/`HEAD`, strong `ETag` and `Last-Modified`
//!   ([`validators`]), `304`, single `Range` → `206`/`416` ([`range`]),
//!   `Cache-Control` per file kind, streaming in bounded chunks; small files are kept in
//!   a bounded memory cache keyed by file identity (device, inode, size, mtime), so
//!   the snapshot guarantee holds for cached bytes too;
//! * limits: connection count, request head size, head/idle timeouts, optional
//!   per-client rate limit (the workspace's one limiter, `rate-limit`: a client is an
//!   IPv4 address or an IPv6 /64, for HTTP and DNS alike);
//! * `/health`, `/ready` ([`ready`]), `/metrics` ([`metrics`]), `/status` and
//!   `/status.json` ([`status_page`], [`status_html`], [`network_view`]), an access log line per
//!   request (target `sigserver::access`, logged when the body is finished, with the
//!   bytes actually sent), graceful shutdown, optional TLS (rustls with the `ring`
//!   provider);
//! * `Last-Modified` of a `.cvd`/`.cld` is its header's build time, so a client
//!   never gets an older database than it holds (no downgrade); no answer is a `403`;
//! * optionally (`--behind-redirect`) `302` for what a provably behind mirror lacks,
//!   with the DNS record announcing the newest known version meanwhile;
//! * optionally the mirror's sync loop in the same process ([`sync_loop`]);
//! * optionally the version TXT record over DNS, UDP and TCP, authoritative for a
//!   configured name, from the published snapshot only ([`dns`]).
//!
//! # Decisions
//!
//! * **Names**: see [`names`] for the exact grammar. Hostile paths (traversal, encoded
//!   separators, NUL, overlong) get `400`, other unknown names `404`, both decided on
//!   the string before any file system access. Entries of the served directory are
//!   trusted: a symlink an operator placed there is followed; directories, FIFOs and
//!   other non-regular files are never served.
//! * **ETag**: strong, from inode, size and mtime in ns ([`validators`]).
//! * **Ranges**: one range is honoured; several ranges get the full `200`; `HEAD`
//!   ignores `Range` (RFC 9110 §14.2) ([`range`]).
//! * **Cache-Control**: [`CACHE_IMMUTABLE`] for `<db>-<v>.cdiff` and both kinds of
//!   `.sign` (their content never changes under a name); [`CACHE_MUTABLE`] for
//!   `<db>.cvd`, `<db>.cld` and `dns.txt` (replaced by every publish); [`CACHE_NONE`]
//!   for errors and the operations endpoints.
//! * **Workers**: one single-threaded Tokio runtime per worker thread, all polling the
//!   same listening socket (like nginx worker processes); a request never hops threads.
//!   No `SO_REUSEPORT`, so a second instance on the same port fails to bind (exit 1).
//! * **Small-file cache**: see above; bounded in total and per file and split evenly
//!   between the workers (no lock shared between CPUs per request); large files are
//!   streamed in `chunk_bytes` pieces, so memory stays flat under load.
//! * **HTTP/1 without hyper**: HTTP/1.1 and 1.0 run in a request loop of our own
//!   (module `h1`): the head is parsed in place with `httparse` (the parser hyper
//!   uses), only the headers the handler needs are read, the response head is written
//!   into a reused buffer, small bodies leave in the same `writev`, and one lazily
//!   re-armed timer per connection enforces the head and idle timeouts. With hyper's
//!   HTTP/1 the general machinery (header maps, a body polled frame by frame, a timer
//!   armed per request head) was most of the CPU time per request and kept sigserver
//!   below nginx; see `benches/serve.rs` for the comparison. hyper still serves HTTP/2
//!   (prior knowledge on plain TCP, detected from the connection preface, and ALPN
//!   `h2` on TLS). The handler sees a protocol-neutral request head and returns a
//!   reply (module `request`), so both protocols share every rule.
//! * **`sendfile`**: on plain-TCP HTTP/1 connections (Linux) bodies of 16 KiB and more
//!   are sent with `sendfile(2)` from the request's own descriptor after the head
//!   (sent with `MSG_MORE`, so both share segments), never copied through user space;
//!   TLS and HTTP/2 copy in `chunk_bytes` reads. [`ConfigBuilder::sendfile`]
//!   (`--sendfile false`) turns it off.
//! * **Open-file cache**: each worker keeps the descriptors of files it served under
//!   `DIR/current`; a request reuses one only when a `statx` of the path shows the same
//!   inode, size and mtime (the descriptor keeps the inode alive, so the number cannot
//!   be reused), else the path is opened again. One syscall instead of `openat`, `fstat`
//!   and `close`, with the same one-snapshot-per-request guarantee.
//! * **Per-request hot path**: no atomic shared between worker threads is written per
//!   request: metrics counters are sharded per thread, each worker has its own cache
//!   shard and shutdown signal, and an HTTP/1 connection never leaves its worker.
//!
//! Dependencies: `tokio`; `hickory-proto` (DNS wire format, already in the tree
//! through `hickory-resolver`) and `dns-versions` (the record grammar) for [`dns`]; `httparse` (the request-head parser of the hyper project:
//! fast, zero-copy, fuzzed upstream) and `itoa` and `memchr` for the HTTP/1 loop; `hyper` 1 +
//! `hyper-util` for HTTP/2; `rustls`/`tokio-rustls` for TLS without OpenSSL;
//! `cli-config` (the layering shared with `sigupdate`) for the configuration;
//! `reqwest` through `fetch::http` (the workspace's one HTTP client stack, with the
//! operator's CA and proxy settings) for the network view's polls and `time` for
//! the status page's dates; `rustix` (Linux, already in the tree
//! through `tempfile`) for safe `sendfile`/`sendmsg(MSG_MORE)` wrappers; `thiserror` for [`Error`]; `mirror-core`
//! (status, sync engine) and `cvd-format` (`.sign` roots for the sync). Unix only
//! (inode-based file identity).
//!
//! ```no_run
//! # async fn demo() -> Result<(), sigserver::Error> {
//! let cfg = sigserver::Config::builder("/srv/mirror")
//!     .listen(["0.0.0.0:8080".parse().unwrap()])
//!     .rate_limit(20.0, 40)
//!     .build()?;
//! sigserver::Server::bind(cfg).await?.run(std::future::pending()).await
//! # }
//! ```
//!
//! # Worst cases
//!
//! | parser | worst input | limit that bounds it | worst | typical, same size | ratio |
//! |---|---|---|---|---|---|
//! | HTTP/1 request head | 99 one-word header fields, 917 B | `h1::MAX_HEADERS` (100), `max_header_bytes` (16 KiB default, at most 1 MiB) | 101 µs | 59 µs (one long `User-Agent`) | 1.7 |
//! | HTTP/1 head trickled one byte per read | a 1 MiB head of short fields | `max_header_bytes`, the header timeout | ≤ 3 bytes examined per byte | | |
//! | DNS query | 255-byte name (127 labels), 4 additional records named by compression pointers, EDNS (330 B) | names ≤ 255 bytes, backward pointers only (hickory-proto), `MAX_ADDITIONAL` (4, checked before decoding), 4 KiB per UDP query | 310 µs | 44 µs (EDNS TXT query for the version name, 52 B) | 1.1 |
//!
//! The HTTP/1 and DNS times are one whole exchange in the fuzzing harness (answer
//! written and decoded again, DNS over both transports). The end-of-head search used
//! to rescan the buffer from its start on every read: a head sent one byte per read
//! cost time quadratic in its size (about 10^11 byte visits for 1 MiB); it now looks
//! only at the new bytes (counted in the unit test
//! `h1::tests::trickled_head_is_scanned_in_linear_work`).
//!
//! Measured with `cargo bench --profile dev -p mirror-benches --bench worst_case`
//! (`benches/worst_case.rs`; workspace crates unoptimised, the crypto and compression
//! crates at `opt-level = 3` as in `Cargo.toml`) on the shared 2-core development VM,
//! best of several runs, 2026-12-06. "Ratio" is worst / typical per input byte (the
//! plain ratio when the sizes are equal); absolute times vary with the machine's load,
//! the ratios are what the benchmark is for. A second run under heavier load moved
//! them by up to 2× (cdiff apply 12 → 24, `.sign` 0.93 → 1.7, the others by less).
//!
//! Threat tests: `dns::answer::tests::worst_case_queries_are_answered_or_refused_cleanly`
//! (pointer loops, forward pointers and over-long names get FORMERR) and the `h1` unit
//! tests above; slow clients are `tests/threat_slow_clients.rs`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod behind;
mod body;
mod build_time;
mod cache;
pub mod config;
pub mod dns;
mod error;
mod h1;
mod http2;
mod idle;
pub mod metrics;
pub mod names;
pub mod network_view;
mod open_files;
pub mod range;
pub mod ready;
pub mod reload;
mod request;
mod sendfile;
mod serve;
mod server;
pub mod status_html;
pub mod status_page;
pub mod sync_loop;
pub mod validators;

pub use config::{Config, ConfigBuilder};
pub use error::Error;
pub use reload::{ReloadOutcome, Reloader};
pub use serve::{CACHE_IMMUTABLE, CACHE_MUTABLE, CACHE_NONE, CURRENT};
pub use server::Server;

/// Entry points for `cargo fuzz` targets (not a stable API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::dns::fuzzing::dns_packet;

    use std::time::{Duration, UNIX_EPOCH};

    /// Feeds arbitrary bytes to the request path, `Range` and conditional header
    /// parsers and checks their invariants.
    pub fn request_headers(data: &[u8]) {
        let mut parts = data.splitn(3, |&b| b == b'\n');
        let path = parts.next().unwrap_or_default();
        let range = parts.next().unwrap_or_default();
        let cond = parts.next().unwrap_or_default();
        if let Ok(p) = std::str::from_utf8(path)
            && let Ok(n) = crate::names::parse_request_path(p)
        {
            {
                assert!(!n.name().contains(['/', '\\', '\0']));
                assert!(!n.name().starts_with('.'));
                assert_eq!(crate::names::classify(n.name()), Some(n.kind()));
            }
        }
        let len = u64::from(data.first().copied().unwrap_or(0)) * 97;
        if let crate::range::RangeOutcome::Partial { start, end } =
            crate::range::evaluate(range, len)
        {
            assert!(start <= end && end < len);
        }
        let v = crate::validators::Validators::new(len, len, UNIX_EPOCH + Duration::from_secs(len));
        let _ = v.not_modified(&[cond], Some(cond));
        let _ = v.if_range_matches(cond);
        assert!(v.not_modified(&[v.etag().as_bytes()], None));
    }

    /// Runs one HTTP/1 connection on `data` (all a client sends, then it closes its
    /// side) against a small mirror in a temporary directory, and checks the answers:
    /// each is a well-formed response with its whole body, nothing follows one that
    /// says `Connection: close`, and there are no more answers than request heads.
    pub fn h1_connection(data: &[u8]) {
        use std::sync::OnceLock;
        static STATE: OnceLock<crate::serve::State> = OnceLock::new();
        let state = STATE.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("sigserver-fuzz-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let body: Vec<u8> = b"ClamAV-VDB:fuzz"
                .iter()
                .copied()
                .cycle()
                .take(3000)
                .collect();
            let _ = std::fs::write(dir.join("test.cvd"), body);
            let _ = std::fs::write(dir.join("test-2.cdiff"), b"ClamAV-Diff");
            let cfg = crate::Config::builder(&dir)
                .listen([std::net::SocketAddr::from(([127, 0, 0, 1], 0))])
                .access_log(false)
                .build()
                .expect("fuzz configuration");
            crate::serve::State::new(&cfg)
        });
        let p = crate::h1::Params {
            max_head: 1024,
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            h2c: data.first().is_some_and(|b| b & 1 == 1),
            admin: false,
            sendfile: false,
            chunk: 4096,
        };
        let out = crate::h1::exchange(state, &p, data).expect("in-memory exchange");
        let answers = crate::h1::split_responses(&out, None)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&out)));
        for (i, (_, headers, _)) in answers.iter().enumerate() {
            let close = headers
                .iter()
                .any(|(k, v)| k == "connection" && v == "close");
            assert!(
                !close || i + 1 == answers.len(),
                "an answer after Connection: close"
            );
        }
        let newlines = data.iter().filter(|&&b| b == b'\n').count();
        assert!(
            answers.len() <= newlines.max(1),
            "more answers than request heads"
        );
    }
}
