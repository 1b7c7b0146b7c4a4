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
/// * A plain directory (neither exists) is ready when it holds at least one `<db>.cvd`.
pub fn check(dir: &Path, current: &Path, max_age: Duration, now: i64) -> Result<String, String> {
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

    #[test]
    fn plain_directory_needs_a_cvd() {
        let d = tempfile::tempdir().unwrap();
        let cur = d.path().join("current");
        assert!(check(d.path(), &cur, DAY, 0).is_err());
        std::fs::write(d.path().join("dns.txt"), "x").unwrap();
        std::fs::create_dir(d.path().join("x.cvd")).unwrap();
        assert!(check(d.path(), &cur, DAY, 0).is_err());
        std::fs::write(d.path().join("main.cvd"), "x").unwrap();
        assert!(check(d.path(), &cur, DAY, 0).is_ok());
    }

    #[test]
    fn mirror_needs_a_recent_success() {
        let d = tempfile::tempdir().unwrap();
        let cur = d.path().join("current");
        let mut st = MirrorStatus::default();
        st.store(d.path()).unwrap();
        let e = check(d.path(), &cur, DAY, 1000).unwrap_err();
        assert!(e.contains("nothing published"), "{e}");
        std::fs::create_dir(d.path().join("g")).unwrap();
        std::os::unix::fs::symlink("g", &cur).unwrap();
        st.last_publish = Some(900);
        st.store(d.path()).unwrap();
        let e = check(d.path(), &cur, DAY, 1000).unwrap_err();
        assert!(e.contains("never synced"), "{e}");
        st.last_success = Some(900);
        st.store(d.path()).unwrap();
        let ok = check(d.path(), &cur, DAY, 1000).unwrap();
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
        let ok = check(d.path(), &cur, DAY, 1000).unwrap();
        assert!(
            ok.contains("degraded: daily: chain, serving version 7"),
            "{ok}"
        );
        let e = check(d.path(), &cur, Duration::from_secs(99), 1000).unwrap_err();
        assert!(e.contains("stale"), "{e}");
        std::fs::write(d.path().join(STATUS_FILE), "{not json").unwrap();
        let e = check(d.path(), &cur, DAY, 1000).unwrap_err();
        assert!(e.contains("unreadable"), "{e}");
    }
}
