//! Conditional, resumable, rate-limit-aware HTTP downloads into a destination directory.
//!
//! Signature upstreams rate-limit hard (HTTP `429` with `Retry-After`, then hours of
//! cool-down, and blocking of abusive clients). This crate downloads politely:
//!
//! - **Streaming to a temp file**: the body goes to `<dest>/<name>.part`, never held
//!   in memory; only after a clean end is it fsynced and renamed to `<name>`
//!   (`atomic_file::commit`). A progress callback sees every chunk. Nothing is hashed
//!   here: the caller verifies the file it gets (signatures, MD5s, `.info` SHA-256s)
//!   in one pass of its own.
//! - **Conditional requests**: `If-None-Match` / `If-Modified-Since` from
//!   [`Conditional`]; a `304` costs no body bytes ([`Outcome::NotModified`]).
//! - **Resume**: an interrupted download keeps its `.part` file and a `.part.meta`
//!   sidecar holding the server's validator (`ETag`, else `Last-Modified`); the next
//!   attempt sends `Range` + `If-Range`, checks `Content-Range` and the validator, and
//!   starts over cleanly when the server ignores the range or the file changed.
//! - **Cool-downs**: `429`/`503` with `Retry-After` (seconds or HTTP-date) start a
//!   cool-down per upstream (`host:port`), persisted in a JSON file
//!   ([`ClientBuilder::cooldown_file`], e.g. `DIR/cooldown.json`) so a restarted
//!   process honours it; no request is ever sent into a cool-down
//!   ([`Error::RateLimited`]).
//! - **Retries**: transient errors (timeouts, connection errors, truncated bodies,
//!   `5xx`) are retried with jittered exponential backoff, capped.
//! - **Failover**: [`Upstreams`] tries an ordered list of base URLs, skipping those
//!   cooling down or [marked stale](Upstreams::mark_stale).
//! - **Limits**: connect/read timeouts, maximum body size, redirect limit, a
//!   User-Agent naming the product and version.
//! - **Corporate networks**: extra trusted CAs and a proxy (with `user:password@`)
//!   from [`HttpSettings`], else the standard `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`;
//!   certificate and proxy failures are errors in plain words ([`Error::Tls`]: "not
//!   trusted (unknown issuer) — add its CA with --ca-cert", name mismatch, expired;
//!   [`Error::ProxyAuth`] names the proxy, never its password).
//! - **Counted traffic**: [`Client::body_bytes`] counts every body byte received.
//!
//! # Cool-downs persist, stale marks do not
//!
//! A cool-down is the upstream's own instruction (`Retry-After`), addressed to this
//! client, with an end the upstream chose: a process restarted by cron, systemd or an
//! operator must keep honouring it, or the mirror gets blocked. So it is persisted.
//!
//! A [stale mark](Upstreams::mark_stale) is this client's judgement of one answer at
//! one moment: the upstream served an older (or a bad) file than was advertised,
//! typically a CDN edge or a downstream mirror that has not caught up yet, or a body
//! damaged in transit. Its job is failover within one run: ask the next upstream
//! instead of the same lagging one again. It is deliberately kept in memory only:
//!
//! - with a single upstream (the usual `https://database.clamav.net`), a persisted
//!   mark would stop every sync for the whole mark duration, across restarts, because
//!   of a lag or a damaged transfer that the next run would most likely not see;
//! - asking again costs one request, not safety: the next run learns the version
//!   afresh, and a rollback or a bad file is refused again before anything is
//!   published (versions never go down, everything is verified);
//! - politeness does not call for it: a lagging upstream did not ask us to back off,
//!   and one that does says so with `Retry-After`, which is persisted.
//!
//! A mark therefore lives as long as the [`Upstreams`] list that holds it; the mirror
//! engine (`mirror-core`'s `HttpTransport`) makes a new list for every sync run.
//!
//! # One HTTP stack: reqwest on rustls
//!
//! The API is blocking (std threads; the engine is synchronous), built on
//! `reqwest::blocking` 0.12 with rustls (ring). reqwest because `object_store` (S3
//! publishing) already brings it, with hyper, hyper-rustls and rustls: a second client
//! (ureq until issue 22) meant a second TLS stack with a second root store (bundled
//! webpki roots there, the system's here) and nowhere to add a private CA or a proxy
//! once for everything. The rule now: **one stack, one TLS configuration**. The
//! [`http`] module turns the operator's settings ([`HttpSettings`]: extra CA files,
//! proxy with basic authentication, `NO_PROXY`) into the rustls configuration and the
//! reqwest builders that every outgoing request of the workspace uses: this
//! [`Client`], the push cascade, sigserver's network view and `object_store`'s
//! connector in `publish-target`. Each binary has one `rustls` and one root-store
//! crate (`rustls-native-certs`) in its tree.
//!
//! What reqwest is configured for here: raw bytes (no decompression feature is
//! enabled, and `Accept-Encoding: identity` is sent), redirects limited, a time limit
//! until the response head and per body read, HTTP/1.1. A header probe that a server
//! answers with a whole file is dropped after its range: the connection is closed, not
//! pooled, so no more than hyper's read buffer is read beyond the range. No reqwest
//! type appears in the [`Client`] API; [`http`] hands out reqwest builders on purpose
//! (they are the shared stack).
//!
//! Retries everywhere use one schedule, [`Backoff`] (exponential, capped, jittered).
//!
//! ```no_run
//! use std::path::Path;
//! use fetch::{Client, Conditional, Outcome, Upstreams};
//!
//! let client = Client::builder()
//!     .cooldown_file("/srv/mirror/cooldown.json")
//!     .max_body(512 * 1024 * 1024)
//!     .build()?;
//! let ups = Upstreams::new(["https://database.clamav.net"])?;
//! let got = ups.download(&client, "daily.cvd", Path::new("/srv/mirror/staging"),
//!                        &Conditional::none(), None, &mut |_| {})?;
//! if let Outcome::Downloaded(d) = got.value {
//!     println!("{} bytes from {} into {}", d.size, got.url, d.path.display());
//! }
//! # Ok::<(), fetch::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backoff;
mod client;
mod cooldown;
mod error;
pub mod http;
mod upstreams;

pub use backoff::Backoff;
pub use client::{
    Client, ClientBuilder, Conditional, DEFAULT_USER_AGENT, Downloaded, MAX_RANGE_LEN, Outcome,
    Progress, upstream_key,
};
pub use cooldown::{parse_retry_after, read_cooldowns};
pub use error::Error;
pub use http::HttpSettings;
pub use upstreams::{Fetched, MAX_UPSTREAMS, UNREACHABLE_FOR, Upstreams};
