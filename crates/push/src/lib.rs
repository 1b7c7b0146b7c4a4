//! Push notices between ClamAV mirrors: an upstream that has just published tells its
//! downstreams at once, so an urgent update crosses a tier of mirrors in seconds
//! instead of one poll interval per tier.
//!
//! One rule above all: **a notice changes when a mirror syncs, never what it
//! publishes.** Every file still goes through the full verification, the chain check
//! and the atomic publish of `mirror-core`; a forged, replayed or lying notice can
//! cost at most one extra (coalesced, rate-limited) sync.
//!
//! The pieces, in the order a notice meets them:
//!
//! - [`notice`]: the JSON document (versions, origin, hops, sender's URL), with limits;
//! - [`auth`]: HMAC-SHA256 over sender, timestamp and body, one secret per pair of
//!   mirrors (a receiver may hold two or more for a sender while a key rotates);
//! - [`receiver`]: the checks of an incoming notice (size, MAC in constant time, replay
//!   window, replay cache, content, rate per sender through the workspace's one
//!   limiter, `rate-limit`) and the HTTP status of each refusal;
//! - [`hub`]: what a syncing process does with notices: decide whether one is worth a
//!   sync, coalesce requests ("update required": one more pass, however many arrive
//!   during a sync), record announced versions and the push state, start the cascade
//!   after a publish;
//! - [`cascade`]: sending notices to downstreams, each signed with that downstream's
//!   own secret (parallel, bounded, retried, then given up on);
//! - [`dns_watch`]: the top tier's check of the version TXT record;
//! - [`listener`]: a minimal `POST /push` HTTP listener (the admin listener);
//! - [`state`]: `DIR/push.json`, what `/ready`, `/metrics` and `status` read;
//! - [`settings`]: what an operator configures, and the hub built from it.
//!
//! Why `hmac`: the RustCrypto MAC of the same generation as `sha2`, with a
//! constant-time `verify_slice`; nothing is hand-rolled. Notices go out through
//! the workspace's one HTTP stack (`fetch::http`: reqwest on rustls, with the
//! operator's CA and proxy settings) and come in through `tokio` and
//! `httparse` (already `sigserver`'s).
//!
//! ```
//! use std::collections::BTreeMap;
//! use push::auth::Secret;
//! use push::notice::Notice;
//! use push::receiver::{NoticeHeaders, Receiver, ReceiverConfig};
//!
//! let secret = Secret::new(b"a secret of at least 16 bytes")?;
//! let notice = Notice::new("tier1", None, BTreeMap::from([("daily".to_owned(), 27001)]), vec![], 0, 0);
//! let body = notice.to_bytes();
//! let now = 1_764_500_000;
//! let headers = NoticeHeaders {
//!     sender: Some("tier1".into()),
//!     timestamp: Some(now.to_string()),
//!     signature: Some(secret.sign("tier1", now, &body)),
//! };
//! let receiver = Receiver::new(BTreeMap::from([("tier1".to_owned(), secret)]), ReceiverConfig::default());
//! let accepted = receiver.check(&headers, &body, now * 1000).expect("valid");
//! assert_eq!(accepted.notice.databases["daily"], 27001);
//! // The same notice again is a replay.
//! assert_eq!(receiver.check(&headers, &body, now * 1000).unwrap_err().status(), 401);
//! # Ok::<(), push::Error>(())
//! ```
//!
//! # Worst cases
//!
//! | parser | worst input | limit that bounds it | worst | typical | ratio |
//! |---|---|---|---|---|---|
//! | push notice (JSON) | 16 367 B of tiny hop objects, all parsed before the hop count is refused | `notice::MAX_NOTICE_LEN` (16 KiB, checked first), serde_json's nesting limit (128) | 322 µs | 117 µs (valid notice: 64 databases, 32 hops, 5.2 KiB) | 0.89 |
//!
//! The size limit makes the work per notice a constant; the HMAC check before it is
//! one pass over at most that many bytes.
//!
//! Measured with `cargo bench --profile dev -p mirror-benches --bench worst_case`
//! (`benches/worst_case.rs`; workspace crates unoptimised, the crypto and compression
//! crates at `opt-level = 3` as in `Cargo.toml`) on the shared 2-core development VM,
//! best of several runs, 2026-12-06. "Ratio" is worst / typical per input byte (the
//! plain ratio when the sizes are equal); absolute times vary with the machine's load,
//! the ratios are what the benchmark is for. A second run under heavier load moved
//! them by up to 2× (cdiff apply 12 → 24, `.sign` 0.93 → 1.7, the others by less).
//!
//! Threat tests: `tests/threat_worst_case.rs` (the longest hop list, 16 KiB of nesting,
//! one byte over the limit).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod behind;
pub mod cascade;
pub mod dns_watch;
mod error;
pub mod hub;
pub mod listener;
pub mod notice;
pub mod receiver;
pub mod settings;
pub mod state;

pub use error::Error;
pub use hub::{PushHub, Reply, SyncRequest, SyncResult};
pub use settings::PushSettings;
