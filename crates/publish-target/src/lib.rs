//! Publishes the mirror's published generation (`DIR/current`) to object storage: S3
//! compatible buckets (`s3://BUCKET/PREFIX`) and directories (`file:///PATH`), through
//! the [`object_store`] crate, with the guarantees a CDN origin needs.
//!
//! * **Order.** Immutable objects first (`<db>-<v>.cdiff`, every `.sign`), each read back
//!   (ETag and size, plus the SHA-256 metadata on S3) before the mutable ones move:
//!   `<db>.cvd`, then `dns.txt`. Every state a client can see is the old set or the new
//!   one plus harmless extras.
//! * **Conditional writes.** On S3 a new object is written with `If-None-Match: *` and a
//!   replaced one with `If-Match` on the ETag of the view the publisher planned from,
//!   so two publishers racing on one bucket cannot interleave: the loser's write is
//!   refused (412), it reports the conflict and starts again from a fresh listing.
//!   A target never goes back: a `<db>.cvd` newer than the local one is left alone.
//! * **Only what changed.** Objects are compared by content: their SHA-256 travels in
//!   the object metadata (`x-amz-meta-sha256`), the ETag each write returned is kept in
//!   `DIR/targets.json` ([`mirror_core::targets`]), so an unchanged object costs nothing
//!   but its line in one listing, and a sync with nothing new makes no PUT.
//! * **Pruning with grace.** An object the generation no longer holds is deleted only
//!   after the pointers moved and [`PublishSettings::prune_grace`] passed since it left.
//! * **Faults.** Store errors are retried with exponential backoff within
//!   [`PublishSettings::retry_budget`] per target and sync; then the target is left
//!   lagging, which `DIR/targets.json` records for `sigupdate status` and `/metrics`.
//!   The local mirror is never held back by a target.
//!
//! [`publish_all`] is the blocking entry point `sigupdate` calls after each sync;
//! [`Publisher`] is the async engine for one target (tests wrap its store).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod local;
mod plan;
mod publisher;
mod target;

pub use error::PublishError;
pub use local::{LocalFile, LocalGeneration};
pub use object_store;
pub use plan::{Kind, cache_control, content_type};
pub use publisher::{Publisher, RunReport, publish_all};
pub use target::{PublishSettings, TargetSpec, TargetUrl};
