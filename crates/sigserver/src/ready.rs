//! `/ready`: whether a load balancer should send clients to this mirror.

use std::path::Path;
use std::time::Duration;

use mirror_core::status::{MirrorStatus, STATUS_FILE};

use crate::names::{FileKind, classify};

/// Most directory entries looked at when deciding whether a plain directory holds a
/// `.cvd`.
pub const MAX_SCAN: usize = 10_000;

/// Decides readiness at Unix time `now`. `Ok` and `Err` both carry a one-line reason
/// (the response body).
///
/// * A mirror directory (`DIR/current` or `DIR/status.json` exists) is ready when
///   `current` exists, `status.json` is readable, something was published, and the
///   last fully successful sync is at most `max_age` old.
/// * It is not ready either when it is provably behind: upstream (its manifest, DNS
///   record or header, recorded in `status.json`) or an accepted push notice
///   (`push.json`) announced a version of a database that is still not published
///   here `lag` later. Load balancers then send clients to mirrors that have it.
///   A notice that a sync found to be false does not count (`push.json`'s
///   `unconfirmed`), and a silent upstream falls under the `max_age` rule.
/// * A plain directory (neither exists) is ready when it holds at least one `<db>.cvd`.
pub fn check(
    dir: &Path,
    current: &Path,
    max_age: Duration,
    lag: Duration,
    now: i64,
) -> Result<String, String> {
    let has_current = std::fs::symlink_metadata(current).is_ok();
    let has_status = std::fs::symlink_metadata(dir.join(STATUS_FILE)).is_ok();
    if !has_current && !has_status {
        return plain_dir(dir);
    }
    let st =
        MirrorStatus::load(dir).map_err(|e| format!("not ready: {STATUS_FILE} unreadable: {e}"))?;
    if !has_current || st.last_publish.is_none() {
        return Err("not ready: nothing published yet".to_owned());
    }
    let Some(ok) = st.last_success else {
        return Err("not ready: never synced successfully".to_owned());
    };
    let age = now.saturating_sub(ok).max(0);
    let limit = max_age.as_secs();
    if age as u64 > limit {
        return Err(format!(
            "not ready: stale: last successful sync {age}s ago (limit {limit}s)"
        ));
    }
    let behind = behind(dir, &st, lag, now);
    if !behind.is_empty() {
        return Err(format!("not ready: behind: {}", behind.join("; ")));
    }
    let mut reason = format!(
        "ready: generation {}, last successful sync {age}s ago",
        st.generation.as_deref().unwrap_or("?")
    );
    // Still ready (the last good state is served), but say which databases upstream
    // could not update and why, so operators see it on the load balancer's probe too.
    let degraded: Vec<String> = st
        .databases
        .iter()
        .filter(|(_, d)| d.last_error.is_some())
        .map(|(name, d)| {
            let kind = d.last_error_kind.as_deref().unwrap_or("error");
            match d.published_version {
                Some(v) => format!("{name}: {kind}, serving version {v}"),
                None => format!("{name}: {kind}, nothing published"),
            }
        })
        .collect();
    if !degraded.is_empty() {
        reason.push_str("; degraded: ");
        reason.push_str(&degraded.join("; "));
    }
    Ok(reason)
}

/// The databases whose announced version is not published `lag` after it was
/// announced (the rule of [`push::behind`]), each with a one-line explanation.
fn behind(dir: &Path, st: &MirrorStatus, lag: Duration, now: i64) -> Vec<String> {
    // A damaged push state is not a reason to leave the pool (status.json still
    // covers what upstream announced); it is logged by its writer.
    let p = push::state::PushState::read(dir).ok().flatten();
    let says = |v: Option<u32>| v.map_or_else(|| "nothing".to_owned(), |v| format!("version {v}"));
    push::behind::provably_behind(st, p.as_ref(), lag, now)
        .into_iter()
        .map(|d| {
            let ago = now.saturating_sub(d.behind_since.unwrap_or(now));
            let newest = d.newest.unwrap_or_default();
            match &d.source {
                Some(push::behind::Source::Notice(sender)) => format!(
                    "{}: version {newest} announced by {sender} {ago}s ago, serving {}",
                    d.db,
                    says(d.serving)
                ),
                _ => format!(
                    "{}: upstream has version {newest} since {ago}s, serving {}",
                    d.db,
                    says(d.serving)
                ),
            }
        })
        .collect()
}

fn plain_dir(dir: &Path) -> Result<String, String> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| format!("not ready: cannot list {}: {e}", dir.display()))?;
    for entry in rd.take(MAX_SCAN).flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if classify(name) == Some(FileKind::Cvd)
            && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file())
        {
            return Ok(format!("ready: plain directory with {name}"));
        }
    }
    Err(format!("not ready: no .cvd file in {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);
    const LAG: Duration = Duration::from_secs(600);

    #[test]
    fn behind_after_the_lag_only() {
        let d = tempfile::tempdir().unwrap();
        let cur = d.path().join("current");
        std::fs::create_dir(d.path().join("g")).unwrap();
        std::os::unix::fs::symlink("g", &cur).unwrap();
        let mut st = MirrorStatus {
            last_publish: Some(1000),
            last_success: Some(1000),
            ..MirrorStatus::default()
        };
        st.databases.insert(
            "daily".into(),
            mirror_core::status::DatabaseStatus {
                published_version: Some(7),
                upstream_version: Some(8),
                upstream_seen_at: Some(1000),
                ..Default::default()
            },
        );
        st.store(d.path()).unwrap();
        assert!(check(d.path(), &cur, DAY, LAG, 1600).is_ok());
        let e = check(d.path(), &cur, DAY, LAG, 1601).unwrap_err();
        assert!(e.contains("behind: daily: upstream has version 8"), "{e}");
        assert!(e.contains("serving version 7"), "{e}");
        // Published: ready again.
        st.databases.get_mut("daily").unwrap().published_version = Some(8);
        st.store(d.path()).unwrap();
        assert!(check(d.path(), &cur, DAY, LAG, 5000).is_ok());
        // A notice's announcement counts the same way; an unconfirmed one does not.
        let mut p = push::state::PushState::default();
        p.unconfirmed.insert(
            "daily".into(),
            push::state::Announcement {
                version: 20,
                sender: "liar".into(),
                since: 1000,
            },
        );
        p.store(d.path()).unwrap();
        assert!(check(d.path(), &cur, DAY, LAG, 5000).is_ok());
        p.announced.insert(
            "daily".into(),
            push::state::Announcement {
                version: 9,
                sender: "tier1".into(),
                since: 4000,
            },
        );
        p.store(d.path()).unwrap();
        assert!(check(d.path(), &cur, DAY, LAG, 4600).is_ok());
        let e = check(d.path(), &cur, DAY, LAG, 4601).unwrap_err();
        assert!(
            e.contains("daily: version 9 announced by tier1 601s ago, serving version 8"),
            "{e}"
        );
    }

    #[test]
    fn plain_directory_needs_a_cvd() {
        let d = tempfile::tempdir().unwrap();
        let cur = d.path().join("current");
        assert!(check(d.path(), &cur, DAY, LAG, 0).is_err());
        std::fs::write(d.path().join("dns.txt"), "x").unwrap();
        std::fs::create_dir(d.path().join("x.cvd")).unwrap();
        assert!(check(d.path(), &cur, DAY, LAG, 0).is_err());
        std::fs::write(d.path().join("main.cvd"), "x").unwrap();
        assert!(check(d.path(), &cur, DAY, LAG, 0).is_ok());
    }

    #[test]
    fn mirror_needs_a_recent_success() {
        let d = tempfile::tempdir().unwrap();
        let cur = d.path().join("current");
        let mut st = MirrorStatus::default();
        st.store(d.path()).unwrap();
        let e = check(d.path(), &cur, DAY, LAG, 1000).unwrap_err();
        assert!(e.contains("nothing published"), "{e}");
        std::fs::create_dir(d.path().join("g")).unwrap();
        std::os::unix::fs::symlink("g", &cur).unwrap();
        st.last_publish = Some(900);
        st.store(d.path()).unwrap();
        let e = check(d.path(), &cur, DAY, LAG, 1000).unwrap_err();
        assert!(e.contains("never synced"), "{e}");
        st.last_success = Some(900);
        st.store(d.path()).unwrap();
        let ok = check(d.path(), &cur, DAY, LAG, 1000).unwrap();
        assert!(!ok.contains("degraded"), "{ok}");
        st.databases.insert(
            "daily".to_owned(),
            mirror_core::status::DatabaseStatus {
                published_version: Some(7),
                last_error: Some("chain check failed".to_owned()),
                last_error_kind: Some("chain".to_owned()),
                ..Default::default()
            },
        );
        st.store(d.path()).unwrap();
        let ok = check(d.path(), &cur, DAY, LAG, 1000).unwrap();
        assert!(
            ok.contains("degraded: daily: chain, serving version 7"),
            "{ok}"
        );
        let e = check(d.path(), &cur, Duration::from_secs(99), LAG, 1000).unwrap_err();
        assert!(e.contains("stale"), "{e}");
        std::fs::write(d.path().join(STATUS_FILE), "{not json").unwrap();
        let e = check(d.path(), &cur, DAY, LAG, 1000).unwrap_err();
        assert!(e.contains("unreadable"), "{e}");
    }
}
