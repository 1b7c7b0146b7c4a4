//! The top tier's watch of the version TXT record: its upstream (the official CDN)
//! never pushes, so it asks DNS often (one query every few seconds to minutes) and
//! syncs as soon as a version changes; its HTTP traffic to the CDN does not grow.

use std::sync::Arc;
use std::time::Duration;

use crate::hub::PushHub;

/// Starts the watch on the current tokio runtime: one DNS query every `secs`; a
/// version newer than published asks `hub` for a sync (reason `dns`). Stops when
/// `stop` turns true. Without DNS versions (`--no-dns`) it logs why and does nothing.
pub fn spawn(
    mirror: &mirror_core::settings::MirrorSettings,
    hub: &Arc<PushHub>,
    secs: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Some(dns) = mirror.dns() else {
        tracing::warn!("--dns-watch-secs needs DNS versions (not --no-dns): not watching");
        return;
    };
    let name = mirror.dns_name.clone();
    let databases = mirror.databases.clone();
    let hub = hub.clone();
    let dns = Arc::new(std::sync::Mutex::new(dns));
    tokio::spawn(async move {
        // The first check one period after the start (the start sync runs now).
        let period = Duration::from_secs(secs);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let d = dns.clone();
            let n = name.clone();
            let looked = tokio::task::spawn_blocking(move || {
                let mut d = d.lock().unwrap_or_else(|p| p.into_inner());
                mirror_core::DnsVersions::lookup(&mut *d, &n).map_err(|e| e.to_string())
            })
            .await;
            match looked {
                Ok(Ok(v)) => {
                    hub.dns_seen(&v, &databases);
                }
                Ok(Err(e)) => tracing::warn!(record = %name, "version record unusable: {e}"),
                Err(e) => tracing::warn!("DNS watch task failed: {e}"),
            }
        }
    });
}
