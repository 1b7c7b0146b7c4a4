//! The in-process sync loop (`sigserver --sync`).
//!
//! [`run`] is the loop; [`SyncEngine`] is what it runs. [`MirrorCoreSync`] is the real
//! engine: one `mirror_core::sync` per run (HTTP transport with cool-downs, DNS or
//! manifest versions, verification, chain check, atomic publish, `status.json`), the
//! same engine `sigupdate sync` runs. Serving and syncing share nothing but the
//! directory: the server sees a new snapshot when `current` is switched.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mirror_core::settings::{MirrorSettings, SettingsError, engine_config};

/// The error a sync attempt reports (its `Display` is logged).
pub type SyncError = Box<dyn std::error::Error + Send + Sync>;

/// One complete sync of the served mirror directory.
pub trait SyncEngine: Send + Sync + 'static {
    /// Runs one sync to completion (blocking; it runs on a blocking thread). The engine
    /// publishes atomically and records the outcome in `status.json` itself, which is
    /// what `/ready` and `/metrics` read.
    fn sync_once(&self) -> Result<(), SyncError>;
}

impl<F> SyncEngine for F
where
    F: Fn() -> Result<(), SyncError> + Send + Sync + 'static,
{
    fn sync_once(&self) -> Result<(), SyncError> {
        self()
    }
}

/// The `mirror-core` sync engine over HTTP(S), built from the same
/// [`MirrorSettings`] and [`engine_config`] as `sigupdate sync`.
pub struct MirrorCoreSync {
    settings: MirrorSettings,
    config: mirror_core::SyncConfig,
}

impl std::fmt::Debug for MirrorCoreSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorCoreSync")
            .field("dir", &self.settings.dir)
            .field("dns", &self.settings.dns)
            .finish_non_exhaustive()
    }
}

impl MirrorCoreSync {
    /// An engine for `settings` (its root certificates and key files are read now).
    pub fn new(settings: MirrorSettings) -> Result<Self, SettingsError> {
        let config = engine_config(&settings)?;
        Ok(MirrorCoreSync { settings, config })
    }
}

impl SyncEngine for MirrorCoreSync {
    fn sync_once(&self) -> Result<(), SyncError> {
        let mut transport = self.settings.http_transport()?;
        let mut dns = self.settings.dns();
        let dns = dns.as_mut().map(|d| d as &mut dyn mirror_core::DnsVersions);
        let report = mirror_core::sync(&self.config, &mut transport, dns)?;
        for d in &report.databases {
            match &d.result {
                Ok(updated) => {
                    tracing::info!(db = %d.name, before = ?d.before, after = ?d.after, updated, "database synced")
                }
                Err(e) => {
                    tracing::warn!(db = %d.name, kind = e.kind().as_str(), error = %mirror_core::Chain(e), still_serving = ?d.after, "database sync failed")
                }
            }
        }
        match report.worst() {
            None => Ok(()),
            Some(k) => Err(format!("sync finished with {} failures", k.as_str()).into()),
        }
    }
}

/// Runs `engine` at once, then every `interval` after the previous run ended, until
/// `shutdown` completes. A sync in progress when `shutdown` completes is not waited
/// for (publishing is atomic, so abandoning it is safe). Returns the number of runs
/// that finished.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
/// let (tx, rx) = tokio::sync::oneshot::channel::<()>();
/// let tx = std::sync::Mutex::new(Some(tx));
/// let engine = Arc::new(move || -> Result<(), sigserver::sync_loop::SyncError> {
///     if let Some(tx) = tx.lock().unwrap().take() { let _ = tx.send(()); }
///     Ok(())
/// });
/// let runs = sigserver::sync_loop::run(engine, std::time::Duration::from_secs(3600), async {
///     let _ = rx.await;
/// }).await;
/// assert!(runs <= 1);
/// # }
/// ```
pub async fn run<E: SyncEngine>(
    engine: Arc<E>,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) -> u64 {
    tokio::pin!(shutdown);
    let mut runs = 0u64;
    loop {
        let e = engine.clone();
        let job = tokio::task::spawn_blocking(move || e.sync_once());
        tokio::select! {
            r = job => {
                runs += 1;
                match r {
                    Ok(Ok(())) => tracing::info!(run = runs, "sync finished"),
                    Ok(Err(e)) => tracing::warn!(run = runs, error = %mirror_core::Chain(&*e), "sync failed"),
                    Err(e) => tracing::error!(run = runs, error = %e, "sync task panicked"),
                }
            }
            _ = &mut shutdown => return runs,
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = &mut shutdown => return runs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn runs_repeatedly_reports_failures_and_stops_on_shutdown() {
        let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
        let n = Mutex::new(0u32);
        let engine = Arc::new(move || -> Result<(), SyncError> {
            let mut n = n.lock().map_err(|_| "poisoned")?;
            *n += 1;
            let _ = tx.send(*n);
            if *n % 2 == 0 {
                Err("upstream unreachable".into())
            } else {
                Ok(())
            }
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let loop_task = tokio::spawn(run(engine, Duration::from_millis(1), async move {
            let _ = stop_rx.await;
        }));
        // Three runs, including a failing one, then stop.
        for want in 1..=3 {
            assert_eq!(rx.recv().await, Some(want));
        }
        let _ = stop_tx.send(());
        let runs = loop_task.await.unwrap();
        assert!(runs >= 2, "{runs}");
    }
}
