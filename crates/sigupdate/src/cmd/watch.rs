//! `sigupdate watch`: sync now, then again every interval (plus a random jitter so that
//! many mirrors do not hit upstream at the same second), or at once on `SIGHUP` or
//! `SIGUSR1`, on an accepted push notice (`--push-listen` with `--push-sender`), or
//! when the version TXT record changes (`--dns-watch-secs`, the top tier). Requests
//! arriving during a sync are coalesced into one more pass (`push::PushHub`); after a
//! publish the configured downstreams are notified (`--push-downstream`). `SIGINT`/`SIGTERM` stop it: at once while waiting, after the running sync
//! otherwise (a signal arriving mid-sync is acted on when the sync ends; `SIGKILL` is
//! always safe too: the published snapshot only changes by one atomic switch).
//!
//! Signals are received through tokio's signal support (`tokio::signal::unix`), which
//! the workspace already depends on for `sigserver`: no `unsafe` here and no extra
//! crate (a current-thread runtime only waits; syncs stay blocking). The jitter comes
//! from `rand`, also already a workspace dependency.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

use crate::cmd::sync::{MirrorOpts, sync_for};
use crate::config::Invocation;

/// Arguments of `sigupdate watch`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::cmd::sync::MIRROR_HELP)]
pub struct WatchArgs {
    /// Mirror options (as for `sync`).
    #[command(flatten)]
    pub opts: MirrorOpts,
    /// Push notices: senders, listener, downstreams, name.
    #[command(flatten, next_help_heading = "Push (a network of mirrors)")]
    pub push: cli_config::PushArgs,
    /// Seconds between syncs [default: 3600].
    #[arg(long, value_name = "SECS")]
    pub interval_secs: Option<u64>,
    /// Up to this many random extra seconds per wait [default: 300].
    #[arg(long, value_name = "SECS")]
    pub jitter_secs: Option<u64>,
    /// Stop after this many syncs (tests; default: run until stopped).
    #[arg(long, value_name = "N", hide = true)]
    pub max_syncs: Option<u64>,
}

/// Runs until stopped; the exit code is that of the last sync (0 when stopped by a
/// signal after a successful one).
pub fn run(args: &WatchArgs, inv: Invocation<'_>) -> Result<u8> {
    let settings = inv.resolve(args.opts.config.as_deref())?;
    let push = settings
        .push
        .clone()
        .context("watch resolves the push settings")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(watch(args, settings, push))
}

async fn watch(
    args: &WatchArgs,
    settings: crate::config::Resolved,
    push: push::PushSettings,
) -> Result<u8> {
    let mut hup = signal(SignalKind::hangup()).context("installing signal handlers")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("installing signal handlers")?;
    let mut term = signal(SignalKind::terminate()).context("installing signal handlers")?;
    let mut int = signal(SignalKind::interrupt()).context("installing signal handlers")?;
    let dir = settings.mirror.dir.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let hub = push.hub(&dir)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(addr) = push.listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the push listener {addr}"))?;
        tracing::info!(addr = %l.local_addr()?, senders = push.senders.len(), "push listener ready");
        let mut rx = stop_rx.clone();
        tokio::spawn(push::listener::serve(l, hub.clone(), async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
    } else if hub.receives() {
        tracing::warn!("push senders are configured but no --push-listen: notices cannot arrive");
    }
    if push.dns_watch_secs > 0 {
        push::dns_watch::spawn(&settings.mirror, &hub, push.dns_watch_secs, stop_rx.clone());
    }
    hub.spawn_flusher();
    hub.request("start");
    let mirror = Arc::new(settings.mirror);
    let publish = Arc::new(settings.publish);
    let mut syncs = 0u64;
    let mut code = crate::exit::SUCCESS;
    let mut stopping: Option<&'static str> = None;
    let mut next_poll = tokio::time::Instant::now();
    loop {
        // Wait for a request: timer, signal, notice, DNS change.
        let wake = tokio::select! {
            _ = hub.wait() => None,
            _ = tokio::time::sleep_until(next_poll) => { hub.request("poll"); None }
            _ = hup.recv() => { tracing::info!("SIGHUP: syncing now"); hub.request("signal"); None }
            _ = usr1.recv() => { tracing::info!("SIGUSR1: syncing now"); hub.request("signal"); None }
            _ = term.recv() => Some("SIGTERM"),
            _ = int.recv() => Some("SIGINT"),
        };
        if let Some(s) = wake {
            tracing::info!("{s}: stopping");
            break;
        }
        let req = hub.begin();
        tracing::info!(reason = %req.reason, announced = ?req.announced, "sync starting");
        let m = mirror.clone();
        let name = push.name.clone();
        let r = req.clone();
        let mut job = tokio::task::spawn_blocking(move || sync_for(&m, Some(&name), &r));
        // A stop signal during a sync is acted on when it ends.
        let (c, report) = loop {
            tokio::select! {
                r = &mut job => break r.context("the sync task failed")?,
                _ = term.recv() => stopping = Some("SIGTERM"),
                _ = int.recv() => stopping = Some("SIGINT"),
            }
        };
        code = c;
        syncs += 1;
        if let Some(report) = &report {
            let result = push::SyncResult::from_report(&mirror.dir, report);
            // Downstreams first (they fetch from this mirror), then the object stores.
            hub.finish(&req, &result);
        }
        let (m, p) = (mirror.clone(), publish.clone());
        tokio::task::spawn_blocking(move || crate::cmd::sync::publish_targets(&m, &p, c))
            .await
            .context("the publish task failed")?;
        if args.max_syncs.is_some_and(|m| syncs >= m) {
            break;
        }
        if let Some(s) = stopping {
            tracing::info!("{s}: stopping");
            break;
        }
        let jitter = if settings.jitter_secs == 0 {
            0
        } else {
            rand::random_range(0..=settings.jitter_secs)
        };
        let wait = Duration::from_secs(settings.interval_secs.saturating_add(jitter));
        next_poll = tokio::time::Instant::now() + wait;
        crate::notify::waiting(&mirror.dir, code, wait);
        tracing::info!(
            next_in_secs = wait.as_secs(),
            "waiting (a push notice, SIGHUP or SIGUSR1: sync now)"
        );
    }
    let _ = stop_tx.send(true);
    hub.flush();
    Ok(code)
}
