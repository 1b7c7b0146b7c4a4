//! Stopping a long-running xtask (`cargo xtask demo`, `cargo xtask tiers`) from
//! outside (Ctrl-C, `kill`, a closed terminal) without leaving anything behind.
//!
//! The default action of `SIGINT`, `SIGTERM` and `SIGHUP` ends the process at once:
//! no destructor runs, so work directories (`/tmp/clamav-mirror-demo-<pid>`) and
//! network namespaces stay, and a `SIGTERM` sent to this process alone leaves its
//! children (`sigserver`, a running `sigupdate` or `freshclam`) running. [`install`]
//! replaces that action: a thread of its own waits for one of those signals, then
//!
//! 1. marks the task as stopping, so that no further [`step`] starts;
//! 2. sends `SIGTERM` to every live descendant of this process (found in `/proc`) and,
//!    after a grace period, `SIGKILL` to those still running;
//! 3. waits for the [`step`] in progress to return (its children are gone), so that
//!    no child can be started behind its back, and stops any descendant again;
//! 4. runs the clean-ups registered with [`on_stop`] (the tiers harness removes its
//!    network there), then removes the directories registered with
//!    [`remove_on_stop`];
//! 5. exits with `128 + signal number` (130 for Ctrl-C), as a shell would report it.
//!
//! `std` cannot send signals and this crate has no `unsafe`: signals are sent with
//! `kill(1)`, as the e2e harness does, and received through tokio.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

/// How long descendants get to exit after `SIGTERM` before `SIGKILL`.
const GRACE: Duration = Duration::from_secs(3);
/// How long the clean-up waits for the step in progress to return.
const STEP_WAIT: Duration = Duration::from_secs(5);

/// A clean-up run by the signal thread.
type Hook = Box<dyn FnOnce() + Send>;

/// What the signal thread and the task's thread share.
#[derive(Default)]
struct Shared {
    /// Held while the task's thread runs a [`step`] (a call that starts children).
    gate: Mutex<()>,
    /// Set once a signal arrived.
    stopping: AtomicBool,
    /// How messages name the task (`xtask demo`), set by [`install`].
    name: OnceLock<&'static str>,
    /// Clean-ups to run once the children are gone, in order.
    hooks: Mutex<Vec<Hook>>,
    /// The work directories to remove.
    work: Mutex<Vec<PathBuf>>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(Shared::default)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the thread that handles `SIGINT`, `SIGTERM` and `SIGHUP` (see the module
/// docs); `name` (`xtask demo`) names the task in its messages. The handlers are in
/// place when this returns.
pub fn install(name: &'static str) -> Result<()> {
    let _ = shared().name.set(name);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("creating the signal runtime")?;
    let (mut int, mut term, mut hup) = {
        let _in_runtime = rt.enter();
        (
            signal(SignalKind::interrupt()).context("handling SIGINT")?,
            signal(SignalKind::terminate()).context("handling SIGTERM")?,
            signal(SignalKind::hangup()).context("handling SIGHUP")?,
        )
    };
    std::thread::Builder::new()
        .name("xtask-signals".into())
        .spawn(move || {
            let (name, code) = rt.block_on(async {
                tokio::select! {
                    _ = int.recv() => ("SIGINT", 130),
                    _ = term.recv() => ("SIGTERM", 143),
                    _ = hup.recv() => ("SIGHUP", 129),
                }
            });
            clean_up_and_exit(name, code)
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// Registers a directory to remove when a signal stops the task (call it before
/// creating the directory).
pub fn remove_on_stop(dir: &Path) {
    lock(&shared().work).push(dir.to_path_buf());
}

/// Registers a clean-up to run when a signal stops the task, after its children are
/// gone and before the directories are removed.
pub fn on_stop(hook: impl FnOnce() + Send + 'static) {
    lock(&shared().hooks).push(Box::new(hook));
}

/// Runs `f`, a part of the task that starts child processes or builds state the
/// clean-up removes. Once a signal arrived no new step starts: the calling thread
/// waits for the process to exit instead.
pub fn step<T>(f: impl FnOnce() -> T) -> T {
    let gate = lock(&shared().gate);
    if shared().stopping.load(Ordering::SeqCst) {
        drop(gate);
        park_forever();
    }
    let out = f();
    drop(gate);
    out
}

/// When a signal is stopping the task, waits for the clean-up to end the process
/// (with the signal's exit code); otherwise returns at once. `main` calls it last,
/// so that an error caused by a child being stopped does not race the clean-up.
pub fn wait_if_stopping() {
    if shared().stopping.load(Ordering::SeqCst) {
        park_forever();
    }
}

/// Blocks the calling thread until the clean-up ends the process.
fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

fn clean_up_and_exit(signal: &str, code: i32) -> ! {
    let sh = shared();
    sh.stopping.store(true, Ordering::SeqCst);
    let name = sh.name.get().copied().unwrap_or("xtask");
    eprintln!("\n{name}: {signal}: stopping child processes");
    stop_descendants(GRACE);
    // The step in progress returns once its children are gone; after that none starts.
    let deadline = Instant::now() + STEP_WAIT;
    let _gate = loop {
        match sh.gate.try_lock() {
            Ok(g) => break Some(g),
            Err(TryLockError::Poisoned(p)) => break Some(p.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => break None,
        }
    };
    stop_descendants(Duration::from_secs(1));
    let hooks = std::mem::take(&mut *lock(&sh.hooks));
    for hook in hooks {
        hook();
    }
    let dirs = std::mem::take(&mut *lock(&sh.work));
    for dir in dirs {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => eprintln!("{name}: removed {}", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("{name}: cannot remove {}: {e}", dir.display()),
        }
    }
    std::process::exit(code)
}

/// Sends `SIGTERM` once to every live descendant, waits up to `grace` for them to
/// exit, then sends `SIGKILL` to those left.
fn stop_descendants(grace: Duration) {
    stop_processes(|| descendants(std::process::id()), grace);
}

/// Sends `SIGTERM` once to every process `live` lists (live processes only), waits
/// up to `grace` for the list to empty, then sends `SIGKILL` to those left.
pub(crate) fn stop_processes(live: impl Fn() -> Vec<u32>, grace: Duration) {
    let deadline = Instant::now() + grace;
    let mut termed = BTreeSet::new();
    loop {
        let live = live();
        if live.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for pid in live {
                send("-KILL", pid);
            }
            return;
        }
        for pid in live {
            if termed.insert(pid) {
                send("-TERM", pid);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send(signal: &str, pid: u32) {
    let _ = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// The live (not yet exited) descendants of `root`, from `/proc/<pid>/stat`; empty
/// where there is no `/proc`.
fn descendants(root: u32) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut live = BTreeSet::new();
    for entry in rd.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((state, ppid)) = parse_stat(&stat) {
            children.entry(ppid).or_default().push(pid);
            if !matches!(state, 'Z' | 'X' | 'x') {
                live.insert(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            if c != root && !out.contains(&c) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out.retain(|p| live.contains(p));
    out
}

/// Whether `pid` is a live process (not exited, not a zombie).
pub(crate) fn is_live(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat(&s))
        .is_some_and(|(state, _)| !matches!(state, 'Z' | 'X' | 'x'))
}

/// State and parent pid from the text of `/proc/<pid>/stat`: `pid (comm) S ppid ...`,
/// where `comm` may itself contain spaces and parentheses.
fn parse_stat(stat: &str) -> Option<(char, u32)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_odd_command_names() {
        assert_eq!(
            parse_stat("4242 (sigserver) S 4200 4242 4200 0 -1"),
            Some(('S', 4200))
        );
        assert_eq!(parse_stat("7 (a) b (c) Z 1 7 7 0 -1"), Some(('Z', 1)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn finds_a_live_child_and_forgets_it_once_reaped() {
        let Some(sleep) = testkit::tools::require("sleep") else {
            return; // outside CI only: without `sleep` there is no child to find
        };
        let mut child = std::process::Command::new(sleep)
            .arg("30")
            .spawn()
            .expect("starting sleep");
        let pid = child.id();
        let found = descendants(std::process::id()).contains(&pid);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found || std::fs::read_dir("/proc").is_err());
        assert!(!descendants(std::process::id()).contains(&pid));
    }
}
