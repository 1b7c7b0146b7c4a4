//! `Retry-After` parsing and the per-upstream cool-down state, persisted in a small
//! JSON file (`DIR/cooldown.json`) so that a restarted process still honours it.
//!
//! File format (written atomically: temp file + rename):
//!
//! ```json
//! {"version":1,"cooldowns":{"database.clamav.net:443":1767225600}}
//! ```
//!
//! Values are Unix seconds until which no request may be sent to that upstream.
//! Expired entries are dropped on write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::Error;

/// Parses a `Retry-After` header value (delta-seconds or an HTTP-date) into the
/// instant it designates, relative to `now`. Returns `None` for a malformed value.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
/// assert_eq!(fetch::parse_retry_after("120", now), Some(now + Duration::from_secs(120)));
/// assert_eq!(
///     fetch::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
///     Some(UNIX_EPOCH + Duration::from_secs(784_111_777)),
/// );
/// assert_eq!(fetch::parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<SystemTime> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = v.parse().ok()?;
        return now.checked_add(Duration::from_secs(secs));
    }
    httpdate::parse_http_date(v).ok()
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    cooldowns: BTreeMap<String, u64>,
}

/// In-memory cool-downs, optionally backed by a file.
#[derive(Debug)]
pub(crate) struct Cooldowns {
    path: Option<PathBuf>,
    map: BTreeMap<String, u64>,
}

/// The largest state file we read (it holds a handful of entries).
const MAX_STATE_FILE: u64 = 1024 * 1024;

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn read_file(path: &Path) -> Result<BTreeMap<String, u64>, Error> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io(path, e)),
        Ok(m) if m.len() > MAX_STATE_FILE => {
            return Err(Error::io(
                path,
                std::io::Error::other("cool-down state file is unreasonably large"),
            ));
        }
        Ok(_) => {}
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    // A corrupt state file must not lock us out (or in) forever: start afresh, loudly.
    match serde_json::from_slice::<FileFormat>(&bytes) {
        Ok(f) => Ok(f.cooldowns),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable cool-down state");
            Ok(BTreeMap::new())
        }
    }
}

/// The cool-downs recorded in a cool-down state file (upstream `host:port`, as
/// [`crate::upstream_key`] makes it, → Unix seconds until which it is left alone),
/// for readers that show them (`sigserver`'s status page). Expired entries may be
/// included; a missing or corrupt file reads as none.
pub fn read_cooldowns(path: &Path) -> Result<BTreeMap<String, u64>, Error> {
    read_file(path)
}

impl Cooldowns {
    pub(crate) fn load(path: Option<PathBuf>) -> Result<Cooldowns, Error> {
        let map = match &path {
            Some(p) => read_file(p)?,
            None => BTreeMap::new(),
        };
        Ok(Cooldowns { path, map })
    }

    /// The end of `upstream`'s cool-down if it is still in the future.
    pub(crate) fn until(&self, upstream: &str, now: SystemTime) -> Option<SystemTime> {
        let t = UNIX_EPOCH + Duration::from_secs(*self.map.get(upstream)?);
        (t > now).then_some(t)
    }

    /// Records a cool-down (keeping the later of an existing one and `until`) and
    /// persists the state.
    pub(crate) fn set(
        &mut self,
        upstream: &str,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<(), Error> {
        // Round up so that a sub-second Retry-After is not lost.
        let secs = until
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .unwrap_or(0);
        let e = self.map.entry(upstream.to_string()).or_insert(0);
        *e = (*e).max(secs);
        self.persist(now)
    }

    fn persist(&mut self, now: SystemTime) -> Result<(), Error> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        // Merge with what another process may have written meanwhile.
        for (k, v) in read_file(&path)? {
            let e = self.map.entry(k).or_insert(0);
            *e = (*e).max(v);
        }
        let now_s = unix(now);
        self.map.retain(|_, v| *v > now_s);
        let data = FileFormat {
            version: 1,
            cooldowns: self.map.clone(),
        };
        let json = serde_json::to_vec_pretty(&data)
            .map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
        atomic_file::write(&path, &json).map_err(|e| Error::io(&path, e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;

    #[test]
    fn persists_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cooldown.json");
        let now = SystemTime::now();
        let mut c = Cooldowns::load(Some(path.clone())).unwrap();
        c.set("a:80", now + Duration::from_secs(3600), now).unwrap();
        c.set("old:80", now - Duration::from_secs(10), now).unwrap();
        let c2 = Cooldowns::load(Some(path.clone())).unwrap();
        assert!(c2.until("a:80", now).is_some());
        assert!(c2.until("old:80", now).is_none());
        assert!(c2.until("b:80", now).is_none());
        std::fs::write(&path, b"{not json").unwrap();
        assert!(
            Cooldowns::load(Some(path))
                .unwrap()
                .until("a:80", now)
                .is_none()
        );
    }
}
