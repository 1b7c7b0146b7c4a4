//! Entry points for the `cargo fuzz` targets in `fuzz/` (not a public API). Each one
//! asserts the round-trip or invariant it is named after; a panic is a finding.

use std::collections::BTreeMap;

use crate::layout::GenerationId;
use crate::model::{FileName, FileNameKind, HeldDatabase, MirrorFile};
use crate::plan::{PlanPolicy, plan};
use crate::status::MirrorStatus;

/// Mirror file names and generation names: whatever parses prints back identically,
/// and the published files are exactly the grammar's names other than `.cld`.
pub fn names(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let name = FileName::parse(line);
        if let Some(n) = name {
            assert_eq!(n.to_string(), line);
            assert_eq!(n.version().is_some(), n.kind().is_versioned());
        }
        let published = name.is_some_and(|n| n.kind() != FileNameKind::Cld);
        assert_eq!(MirrorFile::parse(line).is_some(), published);
        if let Some(f) = MirrorFile::parse(line) {
            assert_eq!(f.to_string(), line);
        }
        if let Some(g) = GenerationId::parse(line) {
            assert_eq!(GenerationId::parse(&g.dir_name()), Some(g));
        }
    }
}

/// The planner on arbitrary held state: never plans a file already held, never a
/// lower version, always an unbroken chain ending at the target, extended downwards
/// only by backfill.
pub fn plan_invariants(data: &[u8]) {
    let byte = |i: usize| u32::from(data.get(i).copied().unwrap_or(0));
    let version = (byte(0) > 0).then(|| byte(1) * 256 + byte(2));
    let advertised = byte(3) * 256 + byte(4);
    let policy = PlanPolicy {
        keep_cdiffs: byte(5) % 64,
        max_catch_up: byte(6) * 4,
        signs: byte(7) % 2 == 0,
        bootstrap_cdiffs: byte(7) & 2 == 0,
    };
    let mut cdiffs = BTreeMap::new();
    for pair in data.get(8..).unwrap_or(&[]).chunks(2) {
        let v = u32::from(pair[0]) * 256 + u32::from(pair.get(1).copied().unwrap_or(0));
        if version.is_some_and(|h| v <= h) {
            cdiffs.insert(v, v % 3 != 0);
        }
    }
    let held = HeldDatabase {
        version,
        cvd_sign: true,
        cdiffs,
    };
    let p = plan("fz", &held, advertised, &policy);
    if let (Some(t), Some(h)) = (p.target, version) {
        assert!(t >= h);
    }
    for f in &p.fetch {
        if let MirrorFile::Cdiff { version: v, .. } = f {
            assert!(!held.cdiffs.contains_key(v));
        }
    }
    if let (Some(&lo), Some(&hi)) = (p.publish_cdiffs.first(), p.publish_cdiffs.last()) {
        assert_eq!(Some(hi), p.target);
        assert_eq!(u64::from(hi - lo) + 1, p.publish_cdiffs.len() as u64);
    }
    // Backfill continues the published chain downwards, contiguously, never a held
    // or already published cdiff.
    if let (Some(&top), Some(t)) = (p.backfill.first(), p.target) {
        let below = p.publish_cdiffs.first().map_or(t, |lo| lo - 1);
        assert_eq!(top, below);
        for w in p.backfill.windows(2) {
            assert_eq!(w[0], w[1] + 1);
        }
        for v in &p.backfill {
            assert!(!p.publish_cdiffs.contains(v));
            assert!(p.chain_base.is_none() || !held.cdiffs.contains_key(v));
        }
    }
    assert!(policy.bootstrap_cdiffs || p.backfill.is_empty());
}

/// `status.json` as written by anyone: parsing never panics, and what parses
/// serializes and parses back to the same value.
pub fn status_json(data: &[u8]) {
    let Ok(s) = serde_json::from_slice::<MirrorStatus>(data) else {
        return;
    };
    if let Ok(again) = serde_json::to_vec(&s) {
        let back: Result<MirrorStatus, _> = serde_json::from_slice(&again);
        assert!(back.is_ok_and(|b| b == s));
    }
}
