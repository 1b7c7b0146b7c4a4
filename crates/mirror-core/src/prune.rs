//! Pruning old generations that no reader can still be using.
//!
//! A reader (the server, rsync, a CDN origin) resolves `DIR/current` once and then reads
//! from that generation, so a generation stays in use for a while after it stopped
//! being current. Kept: the current generation, the `keep_previous` generations before
//! it, and any generation that was current less than `grace` ago (its successor was
//! published within `grace`). Generations numbered above `current` were never
//! published (a sync died before the switch) and are removed. Removal first renames a
//! generation into `staging/` so that `generations/` only ever holds complete snapshots.
//!
//! Old cdiffs and their `.sign` files are pruned by not carrying them into the next
//! generation (see [`crate::plan`]).

use std::time::{Duration, SystemTime};

use crate::error::{Error, io_err};
use crate::layout::{GenerationId, MirrorLayout, sync_dir};

/// Which old generations to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Generations kept before the current one, whatever their age.
    pub keep_previous: usize,
    /// A superseded generation is kept at least this long after its successor appeared.
    pub grace: Duration,
}

impl Default for PrunePolicy {
    fn default() -> Self {
        Self {
            keep_previous: 2,
            grace: Duration::from_secs(15 * 60),
        }
    }
}

/// Removes the generations that `policy` does not keep; returns the removed ones.
/// Call only while holding the sync lock. `now` is injectable for tests.
pub fn prune_generations(
    layout: &MirrorLayout,
    policy: &PrunePolicy,
    now: SystemTime,
) -> Result<Vec<GenerationId>, Error> {
    let all = layout.list_generations()?;
    let current = layout.current_generation()?;
    let mut removed = Vec::new();
    for (i, &id) in all.iter().enumerate() {
        let keep = match current {
            None => false,
            Some(cur) if id > cur => false,
            Some(cur) if id == cur => true,
            Some(_) => {
                let newer_published = all[i + 1..].iter().filter(|&&g| Some(g) <= current).count();
                newer_published <= policy.keep_previous
                    || successor_age(layout, &all[i + 1..], now)
                        .is_none_or(|age| age < policy.grace)
            }
        };
        if !keep {
            remove_generation(layout, id)?;
            removed.push(id);
        }
    }
    if !removed.is_empty() {
        sync_dir(&layout.generations())?;
    }
    Ok(removed)
}

/// Age of the next generation directory (the one that superseded this one).
/// `None` when unknown: then the generation is kept.
fn successor_age(
    layout: &MirrorLayout,
    newer: &[GenerationId],
    now: SystemTime,
) -> Option<Duration> {
    let next = *newer.first()?;
    let modified = std::fs::metadata(layout.generation(next))
        .ok()?
        .modified()
        .ok()?;
    Some(now.duration_since(modified).unwrap_or(Duration::ZERO))
}

fn remove_generation(layout: &MirrorLayout, id: GenerationId) -> Result<(), Error> {
    let src = layout.generation(id);
    let trash = layout.staging().join(format!("trash-{id}"));
    std::fs::create_dir_all(layout.staging())
        .map_err(io_err(&layout.staging(), "create directory"))?;
    let _ = std::fs::remove_dir_all(&trash);
    std::fs::rename(&src, &trash).map_err(io_err(&src, "move generation to trash"))?;
    std::fs::remove_dir_all(&trash).map_err(io_err(&trash, "remove"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Whatever the generations, their ages and the policy: the current generation
        /// and the `keep_previous` before it always stay, unpublished ones (above
        /// current) always go, and an older one goes exactly when its successor is
        /// older than the grace period.
        #[test]
        fn prune_keeps_what_readers_may_use(
            ages in proptest::collection::vec(0u64..7200, 1..10),
            current_at in 0usize..10,
            orphans in 0usize..3,
            keep_previous in 0usize..4,
            grace in 0u64..7200,
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let l = MirrorLayout::new(tmp.path());
            l.create().unwrap();
            let now = SystemTime::now();
            let n = ages.len();
            let current_at = current_at % n;
            // generation i was made `ages[i]` seconds ago (made in order: ages decrease)
            let mut sorted = ages.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            let ids: Vec<GenerationId> = (1..=n as u64 + orphans as u64).map(GenerationId).collect();
            for (i, id) in ids.iter().enumerate() {
                let d = l.generation(*id);
                std::fs::create_dir(&d).unwrap();
                let age = sorted.get(i).copied().unwrap_or(0);
                let f = std::fs::File::open(&d).unwrap();
                f.set_modified(now - Duration::from_secs(age)).unwrap();
            }
            crate::publish::switch_current(&l, ids[current_at]).unwrap();
            let policy = PrunePolicy { keep_previous, grace: Duration::from_secs(grace) };
            prune_generations(&l, &policy, now).unwrap();
            let left = l.list_generations().unwrap();
            for (i, id) in ids.iter().enumerate() {
                let kept = left.contains(id);
                if i == current_at {
                    prop_assert!(kept, "current removed");
                } else if i > current_at {
                    prop_assert!(!kept, "unpublished {id} kept");
                } else if current_at - i <= keep_previous {
                    prop_assert!(kept, "{id} within keep_previous removed");
                } else {
                    let successor_age = sorted[i + 1];
                    prop_assert_eq!(kept, successor_age < grace, "{} successor age {}", id, successor_age);
                }
            }
            prop_assert_eq!(l.current_generation().unwrap(), Some(ids[current_at]));
        }
    }
}
