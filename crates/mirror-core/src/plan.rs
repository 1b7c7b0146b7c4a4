//! The pure sync planner: from what a snapshot holds and what upstream advertises, the
//! files to download and the held files to carry over. No I/O.
//!
//! Rules:
//! - nothing already held is downloaded;
//! - a version lower than or equal to the held one is never planned (rollback
//!   protection starts here);
//! - every cdiff published must be *provable*: the chain check needs the previously
//!   published base, so the cdiffs from the held version + 1 up to the advertised
//!   version are fetched (all of them, even those older than the keep window, which
//!   are used for the check only), and the newest `keep_cdiffs` of the resulting
//!   unbroken chain are published;
//! - **bootstrap backfill** ([`PlanPolicy::bootstrap_cdiffs`], on by default): when the
//!   published chain would not reach down to the keep window — from an empty mirror,
//!   when the chain restarts, or when an earlier run kept fewer cdiffs — the missing
//!   older cdiffs are listed in [`Plan::backfill`], newest first. Upstream never serves
//!   the base they start from, so they cannot be chain-proven: they are published
//!   *signature-verified, chain-unproven* (a client one version behind a freshly
//!   deployed mirror would otherwise get a 404 for its cdiff, which freshclam may treat
//!   as "mirror not synchronized" instead of downloading the full `.cvd`). The engine stops the walk at the first one
//!   upstream no longer has;
//! - every published file's `.sign` is fetched too when signatures are wanted.

use std::collections::BTreeSet;

use crate::model::{HeldDatabase, MirrorFile};

/// Default number of cdiffs kept per database (as the official tool).
pub const DEFAULT_KEEP_CDIFFS: u32 = 30;
/// Default upper bound on cdiffs fetched to catch up; further behind, the chain restarts
/// at the new `.cvd`.
pub const DEFAULT_MAX_CATCH_UP: u32 = 1_000;

/// Knobs of the planner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanPolicy {
    /// How many of the newest cdiffs to publish (0: none).
    pub keep_cdiffs: u32,
    /// Most cdiffs to download to prove the chain from the held version.
    pub max_catch_up: u32,
    /// Whether to fetch `.sign` files for the published `.cvd` and cdiffs.
    pub signs: bool,
    /// Whether an update also backfills older cdiffs that cannot be chain-proven (see
    /// the module docs); `false` publishes proven cdiffs only.
    pub bootstrap_cdiffs: bool,
}

impl Default for PlanPolicy {
    fn default() -> Self {
        Self {
            keep_cdiffs: DEFAULT_KEEP_CDIFFS,
            max_catch_up: DEFAULT_MAX_CATCH_UP,
            signs: true,
            bootstrap_cdiffs: true,
        }
    }
}

/// What to do for one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Database name.
    pub db: String,
    /// The version to publish (the held one when up to date).
    pub target: Option<u32>,
    /// Files to download, in order: the `.cvd`, its `.sign`, then cdiffs ascending each
    /// followed by its `.sign`.
    pub fetch: Vec<MirrorFile>,
    /// Held files to carry into the new snapshot unchanged.
    pub carry: Vec<MirrorFile>,
    /// The version of the previously published `.cvd` the chain check starts from, if
    /// cdiffs are fetched.
    pub chain_base: Option<u32>,
    /// Versions of the cdiffs the new snapshot publishes (held or fetched), ascending.
    /// Does not include [`backfill`](Self::backfill).
    pub publish_cdiffs: BTreeSet<u32>,
    /// Older cdiff versions to try to add below the published chain, newest first,
    /// contiguous and within the keep window (each with its `.sign` when signatures are
    /// wanted). They cannot be chain-proven; the walk stops at the first one upstream
    /// no longer has. Empty unless [`PlanPolicy::bootstrap_cdiffs`] is set.
    pub backfill: Vec<u32>,
}

impl Plan {
    /// True when nothing needs downloading (neither an update nor a backfill).
    pub fn is_noop(&self) -> bool {
        self.fetch.is_empty() && self.backfill.is_empty()
    }
}

/// Plans one database's update.
///
/// ```
/// use mirror_core::model::{HeldDatabase, MirrorFile};
/// use mirror_core::plan::{plan, PlanPolicy};
/// let held = HeldDatabase { version: Some(4), cvd_sign: true, ..Default::default() };
/// let p = plan("test", &held, 6, &PlanPolicy::default());
/// let names: Vec<String> = p.fetch.iter().map(|f| f.to_string()).collect();
/// assert_eq!(names, ["test.cvd", "test-6.cvd.sign", "test-5.cdiff", "test-5.cdiff.sign",
///                    "test-6.cdiff", "test-6.cdiff.sign"]);
/// // test-5 and test-6 are proven against the held version 4; the older ones can only
/// // be backfilled (signature-verified, chain-unproven).
/// assert_eq!(p.backfill, [4, 3, 2, 1]);
///
/// // From empty: the .cvd, and everything older down to the keep window as backfill.
/// let p = plan("test", &HeldDatabase::default(), 6, &PlanPolicy::default());
/// assert_eq!(p.fetch.len(), 2);
/// assert_eq!(p.backfill, [6, 5, 4, 3, 2, 1]);
/// ```
pub fn plan(db: &str, held: &HeldDatabase, advertised: u32, policy: &PlanPolicy) -> Plan {
    let mut p = Plan {
        db: db.to_owned(),
        target: held.version,
        fetch: Vec::new(),
        carry: Vec::new(),
        chain_base: None,
        publish_cdiffs: BTreeSet::new(),
        backfill: Vec::new(),
    };
    let held_version = held.version;
    if held_version.is_some_and(|h| h >= advertised) {
        // Up to date (or upstream behind us: never go down). Keep what we hold; a chain
        // short of the keep window (e.g. kept by an older release) may be backfilled.
        p.carry = held_files(db, held);
        p.publish_cdiffs = held_chain(held, 0);
        if let Some(h) = held_version.filter(|_| policy.bootstrap_cdiffs && policy.keep_cdiffs > 0)
        {
            p.backfill = backfill_below(held, keep_window_start(h, policy.keep_cdiffs));
        }
        return p;
    }
    p.target = Some(advertised);
    p.fetch.push(MirrorFile::Cvd { db: db.to_owned() });
    if policy.signs {
        p.fetch.push(MirrorFile::CvdSign {
            db: db.to_owned(),
            version: advertised,
        });
    }
    let keep_from = keep_window_start(advertised, policy.keep_cdiffs);
    let catching_up = held_version.filter(|&h| advertised - h <= policy.max_catch_up);
    if policy.keep_cdiffs == 0 {
        return p;
    }
    let Some(base) = catching_up else {
        // From empty or too far behind: the chain restarts at the new `.cvd`; older
        // cdiffs can only be backfilled.
        if policy.bootstrap_cdiffs {
            p.backfill = (keep_from..=advertised).rev().collect();
        }
        return p;
    };
    p.chain_base = Some(base);
    for v in base + 1..=advertised {
        p.fetch.push(MirrorFile::Cdiff {
            db: db.to_owned(),
            version: v,
        });
        if v >= keep_from {
            p.publish_cdiffs.insert(v);
            if policy.signs {
                p.fetch.push(MirrorFile::CdiffSign {
                    db: db.to_owned(),
                    version: v,
                });
            }
        }
    }
    // Held cdiffs continue the chain downwards from the base.
    let held_part = held_chain(held, keep_from);
    p.carry = held
        .cdiffs
        .iter()
        .filter(|(v, _)| held_part.contains(v))
        .flat_map(|(&version, &sign)| {
            let cdiff = MirrorFile::Cdiff {
                db: db.to_owned(),
                version,
            };
            let s = sign.then(|| MirrorFile::CdiffSign {
                db: db.to_owned(),
                version,
            });
            std::iter::once(cdiff).chain(s)
        })
        .collect();
    p.publish_cdiffs.extend(held_part);
    if policy.bootstrap_cdiffs {
        p.backfill = backfill_below(held, keep_from);
    }
    p
}

/// The oldest cdiff version inside the keep window of `top` (at least 1).
fn keep_window_start(top: u32, keep: u32) -> u32 {
    top.saturating_sub(keep).saturating_add(1).max(1)
}

/// The cdiff versions missing below the held chain, newest first, down to `keep_from`
/// or to just above a held cdiff (one left below a gap; nothing held is downloaded).
fn backfill_below(held: &HeldDatabase, keep_from: u32) -> Vec<u32> {
    let Some(floor) = held.chain_floor() else {
        return Vec::new();
    };
    let stop = held
        .cdiffs
        .range(..floor)
        .next_back()
        .map_or(keep_from, |(&v, _)| keep_from.max(v + 1));
    (stop..=floor).rev().collect()
}

/// The held cdiff versions forming an unbroken chain down from the held `.cvd`, not
/// below `from`.
fn held_chain(held: &HeldDatabase, from: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    if let Some(mut v) = held.version {
        while v >= from.max(1) && held.cdiffs.contains_key(&v) {
            out.insert(v);
            v -= 1;
        }
    }
    out
}

fn held_files(db: &str, held: &HeldDatabase) -> Vec<MirrorFile> {
    let chain = held_chain(held, 0);
    held.files(db, |v| chain.contains(&v))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn held(version: Option<u32>, cdiffs: &[u32]) -> HeldDatabase {
        HeldDatabase {
            version,
            cvd_sign: version.is_some(),
            cdiffs: cdiffs.iter().map(|&v| (v, true)).collect(),
        }
    }

    fn names(v: &[MirrorFile]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn from_empty_fetches_only_the_cvd_and_its_sign() {
        let p = plan("test", &held(None, &[]), 6, &PlanPolicy::default());
        assert_eq!(names(&p.fetch), ["test.cvd", "test-6.cvd.sign"]);
        assert_eq!(p.target, Some(6));
        assert_eq!(p.chain_base, None);
        assert!(p.carry.is_empty() && p.publish_cdiffs.is_empty());
        assert_eq!(p.backfill, [6, 5, 4, 3, 2, 1]);
        let strict = PlanPolicy {
            bootstrap_cdiffs: false,
            ..Default::default()
        };
        assert!(
            plan("test", &held(None, &[]), 6, &strict)
                .backfill
                .is_empty()
        );
        let short = PlanPolicy {
            keep_cdiffs: 3,
            ..Default::default()
        };
        assert_eq!(
            plan("test", &held(None, &[]), 6, &short).backfill,
            [6, 5, 4]
        );
    }

    #[test]
    fn a_short_held_chain_is_backfilled_below_its_floor_on_update() {
        let policy = PlanPolicy {
            keep_cdiffs: 5,
            ..Default::default()
        };
        // held 6 with only cdiff 6: 7 and 8 are proven, 5 and 4 backfilled
        let p = plan("d", &held(Some(6), &[6]), 8, &policy);
        assert_eq!(p.publish_cdiffs, BTreeSet::from([6, 7, 8]));
        assert_eq!(p.backfill, [5, 4]);
        // the held chain already fills the window: nothing to backfill
        let p = plan("d", &held(Some(6), &[3, 4, 5, 6]), 8, &policy);
        assert!(p.backfill.is_empty());
        // up to date with a short chain: no update, but the chain may be backfilled
        let p = plan("d", &held(Some(6), &[6]), 6, &policy);
        assert!(p.fetch.is_empty());
        assert_eq!(p.backfill, [5, 4, 3, 2]);
        assert!(!p.is_noop());
        let full = plan("d", &held(Some(6), &[2, 3, 4, 5, 6]), 6, &policy);
        assert!(full.is_noop());
    }

    #[test]
    fn up_to_date_fetches_nothing_and_carries_everything() {
        let h = held(Some(6), &[4, 5, 6]);
        let p = plan("test", &h, 6, &PlanPolicy::default());
        assert!(p.fetch.is_empty());
        assert_eq!(
            p.backfill,
            [3, 2, 1],
            "only the backfill below the held chain"
        );
        assert_eq!(p.target, Some(6));
        assert_eq!(
            names(&p.carry),
            [
                "test.cvd",
                "test-6.cvd.sign",
                "test-4.cdiff",
                "test-4.cdiff.sign",
                "test-5.cdiff",
                "test-5.cdiff.sign",
                "test-6.cdiff",
                "test-6.cdiff.sign"
            ]
        );
    }

    #[test]
    fn upstream_behind_is_never_planned() {
        let p = plan("test", &held(Some(6), &[]), 5, &PlanPolicy::default());
        assert!(p.fetch.is_empty());
        assert_eq!(p.target, Some(6));
    }

    #[test]
    fn keep_window_trims_old_cdiffs_but_still_fetches_them_for_the_check() {
        let policy = PlanPolicy {
            keep_cdiffs: 3,
            ..Default::default()
        };
        let p = plan("d", &held(Some(10), &[8, 9, 10]), 12, &policy);
        assert_eq!(
            names(&p.fetch),
            [
                "d.cvd",
                "d-12.cvd.sign",
                "d-11.cdiff",
                "d-11.cdiff.sign",
                "d-12.cdiff",
                "d-12.cdiff.sign"
            ]
        );
        assert_eq!(names(&p.carry), ["d-10.cdiff", "d-10.cdiff.sign"]);
        assert_eq!(p.publish_cdiffs, BTreeSet::from([10, 11, 12]));

        let p = plan("d", &held(Some(2), &[]), 12, &policy);
        assert_eq!(
            p.fetch
                .iter()
                .filter(|f| matches!(f, MirrorFile::Cdiff { .. }))
                .count(),
            10
        );
        assert_eq!(
            p.fetch
                .iter()
                .filter(|f| matches!(f, MirrorFile::CdiffSign { .. }))
                .count(),
            3
        );
        assert_eq!(p.chain_base, Some(2));
    }

    #[test]
    fn too_far_behind_restarts_the_chain() {
        let policy = PlanPolicy {
            max_catch_up: 5,
            ..Default::default()
        };
        let p = plan("d", &held(Some(1), &[1]), 100, &policy);
        assert_eq!(names(&p.fetch), ["d.cvd", "d-100.cvd.sign"]);
        assert!(p.carry.is_empty());
    }

    proptest! {
        /// Whatever is held, the plan never fetches a file already held, never targets a
        /// lower version, and publishes an unbroken chain ending at the target within
        /// the keep window.
        #[test]
        fn plan_invariants(
            version in proptest::option::of(1u32..60),
            cdiffs in proptest::collection::btree_set(1u32..60, 0..20),
            advertised in 1u32..80,
            keep in 0u32..40,
            signs: bool,
            bootstrap: bool,
        ) {
            let cdiffs: Vec<u32> = cdiffs.into_iter().filter(|&c| Some(c) <= version).collect();
            let h = held(version, &cdiffs);
            let policy = PlanPolicy { keep_cdiffs: keep, max_catch_up: 1000, signs, bootstrap_cdiffs: bootstrap };
            let p = plan("x", &h, advertised, &policy);
            let target = p.target.unwrap();
            prop_assert!(version.is_none_or(|v| target >= v));
            for f in &p.fetch {
                match f {
                    MirrorFile::Cdiff { version: v, .. } => prop_assert!(!h.cdiffs.contains_key(v)),
                    MirrorFile::CdiffSign { version: v, .. } => prop_assert!(!h.cdiffs.contains_key(v) && signs),
                    MirrorFile::Cvd { .. } => prop_assert!(version.is_none_or(|v| v < advertised)),
                    MirrorFile::CvdSign { version: v, .. } => prop_assert!(*v == advertised && signs),
                    MirrorFile::Manifest => prop_assert!(false),
                }
            }
            // unbroken chain ending at the target
            if let (Some(&lo), Some(&hi)) = (p.publish_cdiffs.first(), p.publish_cdiffs.last()) {
                prop_assert_eq!(hi, target);
                prop_assert_eq!((hi - lo + 1) as usize, p.publish_cdiffs.len());
                if !p.fetch.is_empty() {
                    prop_assert!(p.publish_cdiffs.len() <= keep as usize);
                }
            }
            // every fetched cdiff lies between the base and the target, contiguously
            if let Some(base) = p.chain_base {
                let fetched: Vec<u32> = p.fetch.iter().filter_map(|f| match f {
                    MirrorFile::Cdiff { version, .. } => Some(*version), _ => None }).collect();
                prop_assert_eq!(fetched, (base + 1..=target).collect::<Vec<_>>());
            }
            // backfill: only with bootstrap, newest first, contiguous, nothing held,
            // extending the published chain downwards within the keep window
            if !bootstrap || keep == 0 {
                prop_assert!(p.backfill.is_empty());
            }
            if let Some(&top) = p.backfill.first() {
                let below = p.publish_cdiffs.first().map_or(target, |lo| lo - 1);
                prop_assert_eq!(top, below);
                prop_assert!(top <= target);
                for w in p.backfill.windows(2) {
                    prop_assert_eq!(w[0], w[1] + 1);
                }
                for v in &p.backfill {
                    prop_assert!(!p.publish_cdiffs.contains(v));
                    prop_assert!(p.chain_base.is_none() || !h.cdiffs.contains_key(v));
                    prop_assert!(*v >= 1 && *v + keep > target);
                }
                prop_assert!(p.publish_cdiffs.len() + p.backfill.len() <= keep as usize);
            }
        }
    }
}
