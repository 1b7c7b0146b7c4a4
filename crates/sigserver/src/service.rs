//! Running under a service manager: systemd readiness (`READY=1` once the listeners
//! are bound and a snapshot is there to serve), `STATUS=` lines with the published
//! versions, the watchdog when `WATCHDOG_USEC` is set, and `SIGHUP`, which re-reads
//! the configuration and applies what can change without dropping connections.
//!
//! Without `NOTIFY_SOCKET` (not started by systemd) every notification is a no-op;
//! `SIGHUP` works the same everywhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mirror_core::status::MirrorStatus;
use sd_notify::NotifyState;
use sigserver::{Config, Reloader};

/// How often readiness and the published versions are looked at.
const STATUS_EVERY: Duration = Duration::from_secs(5);

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// Starts the service tasks on the current runtime; call after the server is bound.
/// `sync` tells whether this process publishes the snapshot itself (then `READY=1`
/// waits for the first one); `reread` builds the configuration again from the same
/// flags, the environment and the configuration file as at start.
pub fn start(
    dir: PathBuf,
    sync: bool,
    reloader: Reloader,
    reread: impl Fn() -> anyhow::Result<Config> + Send + 'static,
) {
    // Installed now, before READY=1: SIGHUP's default action would end the process.
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    notify(&[NotifyState::Reloading]);
                    reload(&reloader, &reread);
                    notify(&[NotifyState::Ready]);
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot handle SIGHUP; reload needs a restart"),
    }
    if let Some(every) = sd_notify::watchdog_enabled() {
        tracing::info!(interval = ?every, "systemd watchdog enabled");
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every / 2);
            loop {
                tick.tick().await;
                notify(&[NotifyState::Watchdog]);
            }
        });
    }
    tokio::spawn(async move {
        let mut ready = false;
        let mut last = String::new();
        loop {
            if !ready && (!sync || std::fs::symlink_metadata(dir.join(sigserver::CURRENT)).is_ok())
            {
                ready = true;
                notify(&[NotifyState::Ready]);
            }
            let status = if ready {
                published(&dir)
            } else {
                "waiting for the first sync to publish a snapshot".to_owned()
            };
            if status != last {
                notify(&[NotifyState::Status(&status)]);
                last = status;
            }
            tokio::time::sleep(STATUS_EVERY).await;
        }
    });
}

/// Re-reads the configuration and applies it; logs what changed and what needs a
/// restart. A configuration that does not load or validate leaves everything as is.
fn reload(reloader: &Reloader, reread: &impl Fn() -> anyhow::Result<Config>) {
    tracing::info!("SIGHUP received: reloading the configuration");
    match reread() {
        Ok(cfg) => {
            let out = reloader.apply(&cfg);
            if out.applied.is_empty() {
                tracing::info!("configuration reloaded: nothing to change");
            } else {
                tracing::info!(applied = ?out.applied, "configuration reloaded");
            }
            if !out.need_restart.is_empty() {
                tracing::warn!(
                    settings = ?out.need_restart,
                    "changed settings that only take effect after a restart; running values kept"
                );
            }
        }
        Err(e) => tracing::error!("configuration reload failed, running configuration kept: {e:#}"),
    }
}

/// One line for `STATUS=`: the versions the snapshot serves.
fn published(dir: &Path) -> String {
    match MirrorStatus::load(dir) {
        Ok(st) if st.generation.is_some() => {
            format!(
                "serving {} ({})",
                st.versions_line(),
                st.generation.as_deref().unwrap_or("?")
            )
        }
        _ => format!("serving the plain directory {}", dir.display()),
    }
}
