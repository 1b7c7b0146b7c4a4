//! `sigupdate watch`: sync now, then again every interval (plus a random jitter so that
//! many mirrors do not hit upstream at the same second), or at once on `SIGHUP` or
//! `SIGUSR1`. `SIGINT`/`SIGTERM` stop it: at once while waiting, after the running sync
//! otherwise (a signal arriving mid-sync is acted on when the sync ends; `SIGKILL` is
//! always safe too: the published snapshot only changes by one atomic switch).
//!
//! Signals are received through tokio's signal support (`tokio::signal::unix`), which
//! the workspace already depends on for `sigserver`: no `unsafe` here and no extra
//! crate (a current-thread runtime only waits; syncs stay blocking). The jitter comes
//! from `rand`, also already a workspace dependency.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

use crate::cmd::sync::{MirrorOpts, sync_once};
use crate::config::Invocation;

/// Arguments of `sigupdate watch`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::cmd::sync::MIRROR_HELP)]
pub struct WatchArgs {
    /// Mirror options (as for `sync`).
    #[command(flatten)]
    pub opts: MirrorOpts,
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

/// Why a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    Timer,
    Signal(&'static str),
    Stop(&'static str),
}

/// Runs until stopped; the exit code is that of the last sync (0 when stopped by a
/// signal after a successful one).
pub fn run(args: &WatchArgs, inv: Invocation<'_>) -> Result<u8> {
    let settings = inv.resolve(args.opts.config.as_deref())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal runtime")?;
    let (mut hup, mut usr1, mut term, mut int) = rt
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::hangup())?,
                signal(SignalKind::user_defined1())?,
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            ))
        })
        .context("installing signal handlers")?;
    let mut syncs = 0u64;
    loop {
        let code = sync_once(&settings.mirror, &settings.publish);
        syncs += 1;
        if args.max_syncs.is_some_and(|m| syncs >= m) {
            return Ok(code);
        }
        let jitter = if settings.jitter_secs == 0 {
            0
        } else {
            rand::random_range(0..=settings.jitter_secs)
        };
        let wait = Duration::from_secs(settings.interval_secs.saturating_add(jitter));
        crate::notify::waiting(&settings.mirror.dir, code, wait);
        tracing::info!(
            next_in_secs = wait.as_secs(),
            "waiting (SIGHUP or SIGUSR1: sync now)"
        );
        let wake = rt.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(wait) => Wake::Timer,
                _ = hup.recv() => Wake::Signal("SIGHUP"),
                _ = usr1.recv() => Wake::Signal("SIGUSR1"),
                _ = term.recv() => Wake::Stop("SIGTERM"),
                _ = int.recv() => Wake::Stop("SIGINT"),
            }
        });
        match wake {
            Wake::Timer => {}
            Wake::Signal(s) => tracing::info!("{s}: syncing now"),
            Wake::Stop(s) => {
                tracing::info!("{s}: stopping");
                return Ok(code);
            }
        }
    }
}
