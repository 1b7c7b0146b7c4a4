//! Running as a service: systemd notifications for `watch` (`READY=1` once the first
//! sync has run, a `STATUS=` line after each one) and the log format switch. Without
//! `NOTIFY_SOCKET` (not started by systemd) the notifications do nothing.

use std::path::Path;
use std::time::Duration;

use sd_notify::NotifyState;

/// Whether `SIGUPDATE_LOG_FORMAT=json` asks for JSON log lines (anything else: text).
pub fn json_logs() -> bool {
    std::env::var("SIGUPDATE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
}

/// After a sync of `watch` of the mirror `dir` that ended with exit code `code`,
/// waiting `wait` for the next one.
pub fn waiting(dir: &Path, code: u8, wait: Duration) {
    let outcome = match code {
        0 => "ok".to_owned(),
        c => format!("failed (exit code {c})"),
    };
    let status = format!(
        "{}; last sync {outcome}; next in {}s (SIGHUP: now)",
        published(dir),
        wait.as_secs()
    );
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&status)]) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// The published versions, e.g. `publishing daily 27000, main 62`.
fn published(dir: &Path) -> String {
    match mirror_core::status::MirrorStatus::load(dir) {
        Ok(st) if st.generation.is_some() => format!("publishing {}", st.versions_line()),
        _ => "nothing published yet".to_owned(),
    }
}
