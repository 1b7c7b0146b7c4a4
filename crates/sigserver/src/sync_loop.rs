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
    /// Runs one sync for `req` to completion (blocking; it runs on a blocking thread).
    /// The engine publishes atomically and records the outcome in `status.json`
    /// itself, which is what `/ready` and `/metrics` read. Returns what the sync did
    /// (`None` when it could not run at all) and whether it failed.
    fn sync_once(
        &self,
        req: &push::SyncRequest,
    ) -> (Option<push::SyncResult>, Result<(), SyncError>);
}

impl<F> SyncEngine for F
where
    F: Fn(&push::SyncRequest) -> (Option<push::SyncResult>, Result<(), SyncError>)
        + Send
        + Sync
        + 'static,
{
    fn sync_once(
        &self,
        req: &push::SyncRequest,
    ) -> (Option<push::SyncResult>, Result<(), SyncError>) {
        self(req)
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
    /// An engine for `settings` (its root certificates and key files are read now),
    /// named `name` in traces.
    pub fn new(settings: MirrorSettings, name: &str) -> Result<Self, SettingsError> {
        let mut config = engine_config(&settings)?;
        config.set_mirror_name(name);
        Ok(MirrorCoreSync { settings, config })
    }

    /// The mirror settings.
    pub fn settings(&self) -> &MirrorSettings {
        &self.settings
    }
}

impl SyncEngine for MirrorCoreSync {
    fn sync_once(
        &self,
        req: &push::SyncRequest,
    ) -> (Option<push::SyncResult>, Result<(), SyncError>) {
        let preferred = req
            .prefer_upstream
            .as_deref()
            .and_then(|u| self.config.preferring_upstream(u));
        let config = preferred.as_ref().unwrap_or(&self.config);
        let mut transport = match self.settings.http_transport() {
            Ok(t) => t,
            Err(e) => return (None, Err(e.into())),
        };
        let mut dns = self.settings.dns();
        let dns = dns.as_mut().map(|d| d as &mut dyn mirror_core::DnsVersions);
        let report = match mirror_core::sync_with(config, &mut transport, dns, &req.hints) {
            Ok(r) => r,
            Err(e) => return (None, Err(e.into())),
        };
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
        let result = push::SyncResult::from_report(&self.settings.dir, &report);
        let outcome = match report.worst() {
            None => Ok(()),
            Some(k) => Err(format!("sync finished with {} failures", k.as_str()).into()),
        };
        (Some(result), outcome)
    }
}

/// How often the loop polls upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every {
    /// Time between the end of a sync and the next poll.
    pub interval: Duration,
    /// Up to this much random extra time per wait.
    pub jitter: Duration,
}

impl Every {
    /// `interval` without jitter.
    pub fn fixed(interval: Duration) -> Self {
        Every {
            interval,
            jitter: Duration::ZERO,
        }
    }

    fn next_wait(&self) -> Duration {
        let j = u64::try_from(self.jitter.as_millis()).unwrap_or(u64::MAX);
        let extra = if j == 0 { 0 } else { rand::random_range(0..=j) };
        self.interval + Duration::from_millis(extra)
    }
}

/// Runs `engine` at once, then whenever `hub` asks (an accepted push notice, a
/// changed version record) and every `interval` after the previous run ended, until
/// `shutdown` completes. Requests during a run are coalesced into one more run. A
/// sync in progress when `shutdown` completes is not waited for (publishing is
/// atomic, so abandoning it is safe). Returns the number of runs that finished.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::collections::BTreeMap;
/// let dir = tempfile::tempdir().unwrap();
/// let hub = push::PushSettings::new("m1").hub(dir.path()).unwrap();
/// let (tx, rx) = tokio::sync::oneshot::channel::<()>();
/// let tx = std::sync::Mutex::new(Some(tx));
/// let engine = std::sync::Arc::new(move |_: &push::SyncRequest| {
///     if let Some(tx) = tx.lock().unwrap().take() { let _ = tx.send(()); }
///     (None, Ok(()))
/// });
/// let runs = sigserver::sync_loop::run(engine, hub, sigserver::sync_loop::Every::fixed(std::time::Duration::from_secs(3600)), async {
///     let _ = rx.await;
/// }).await;
/// assert!(runs <= 1);
/// # }
/// ```
pub async fn run<E: SyncEngine>(
    engine: Arc<E>,
    hub: Arc<push::PushHub>,
    every: Every,
    shutdown: impl Future<Output = ()>,
) -> u64 {
    tokio::pin!(shutdown);
    let mut runs = 0u64;
    hub.spawn_flusher();
    hub.request("start");
    loop {
        tokio::select! {
            _ = hub.wait() => {}
            _ = tokio::time::sleep(every.next_wait()) => hub.request("poll"),
            _ = &mut shutdown => return runs,
        }
        let req = hub.begin();
        tracing::info!(reason = %req.reason, announced = ?req.announced, "sync starting");
        let e = engine.clone();
        let r = req.clone();
        let job = tokio::task::spawn_blocking(move || e.sync_once(&r));
        tokio::select! {
            r = job => {
                runs += 1;
                match r {
                    Ok((result, outcome)) => {
                        if let Some(result) = result {
                            hub.finish(&req, &result);
                        }
                        match outcome {
                            Ok(()) => tracing::info!(run = runs, "sync finished"),
                            Err(e) => tracing::warn!(run = runs, error = %mirror_core::Chain(&*e), "sync failed"),
                        }
                    }
                    Err(e) => tracing::error!(run = runs, error = %e, "sync task panicked"),
                }
            }
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
        let engine = Arc::new(move |_: &push::SyncRequest| {
            let mut n = n.lock().unwrap();
            *n += 1;
            let _ = tx.send(*n);
            let r: Result<(), SyncError> = if (*n).is_multiple_of(2) {
                Err("upstream unreachable".into())
            } else {
                Ok(())
            };
            (None, r)
        });
        let dir = tempfile::tempdir().unwrap();
        let hub = push::PushSettings::new("m1").hub(dir.path()).unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let loop_task = tokio::spawn(run(
            engine,
            hub,
            Every::fixed(Duration::from_millis(1)),
            async move {
                let _ = stop_rx.await;
            },
        ));
        // Three runs, including a failing one, then stop.
        for want in 1..=3 {
            assert_eq!(rx.recv().await, Some(want));
        }
        let _ = stop_tx.send(());
        let runs = loop_task.await.unwrap();
        assert!(runs >= 2, "{runs}");
    }
}
