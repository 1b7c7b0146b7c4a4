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
//!   User-Agent naming the product and version, proxy from the environment or config.
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
//! The API is blocking (std threads), built on `ureq` 3 with rustls: a small, sync
//! HTTP client without a runtime, which lets us read raw bytes (no content decoding)
//! and control redirects, timeouts and the proxy. No `ureq` type appears in the API.
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
