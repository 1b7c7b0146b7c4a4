//! `cargo xtask tiers-interrupt-check`: proves that `cargo xtask tiers` leaves nothing
//! behind when it is stopped, and that a run killed outright does not break the next.
//!
//! Runs this same xtask binary as `tiers --size small --versions 1 --poll-secs 5
//! --mode push` four times:
//!
//! 1. `SIGINT` once its network and mirrors are up: it must exit with 130 and leave no
//!    namespace, link, process or work directory of its [`Footprint`];
//! 2. the same with `SIGTERM` (exit 143);
//! 3. `SIGKILL`: nothing can clean up, so the network and the mirrors must be left
//!    (the check proves that it looks in the right places);
//! 4. a whole run: it must say that it removes what run 3 left, succeed, and leave
//!    nothing.
//!
//! Needs root, like `tiers`.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::netns::Footprint;
use crate::tiers;

/// The arguments of every `tiers` run.
const TIERS_ARGS: [&str; 9] = [
    "tiers",
    "--size",
    "small",
    "--versions",
    "1",
    "--poll-secs",
    "5",
    "--mode",
    "push",
];
/// How long a run may take to bring its network up (the first one builds the
/// binaries).
const UP_LIMIT: Duration = Duration::from_secs(600);
/// How long a signalled run may take to clean up and exit.
const STOP_LIMIT: Duration = Duration::from_secs(30);
/// How long the whole run of step 4 may take.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Runs the check.
pub fn run() -> Result<()> {
    let t = Instant::now();
    let fp = tiers::footprint();
    let logs = tempfile::tempdir().context("creating the log directory")?;
    fp.clear_stale()?;
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let log = logs.path().join(format!("sig{signal}.log"));
        let mut child = start(&log)?;
        wait_up(&fp, &mut child, &log)?;
        send(signal, child.id())?;
        let st = wait_exit(&mut child, STOP_LIMIT, &log)?;
        ensure!(
            st.code() == Some(code),
            "after SIG{signal} tiers exited with {st}, not {code}\n{}",
            tail(&log)
        );
        let left = fp.leftovers();
        ensure!(
            left.is_empty(),
            "after SIG{signal} tiers left {left}\n{}",
            tail(&log)
        );
        println!(
            "tiers-interrupt-check: SIG{signal}: exit {code}, nothing left ({:.0?} so far)",
            t.elapsed()
        );
    }
    let log = logs.path().join("sigKILL.log");
    let mut child = start(&log)?;
    wait_up(&fp, &mut child, &log)?;
    send("KILL", child.id())?;
    wait_exit(&mut child, STOP_LIMIT, &log)?;
    let left = fp.leftovers();
    ensure!(
        !left.namespaces.is_empty() && !left.processes.is_empty(),
        "SIGKILL left no namespace or process: the check does not see them ({left})"
    );
    println!(
        "tiers-interrupt-check: SIGKILL left {} processes, {} namespaces, {} links",
        left.processes.len(),
        left.namespaces.len(),
        left.links.len()
    );
    let log = logs.path().join("rerun.log");
    let mut child = start(&log)?;
    let st = wait_exit(&mut child, RUN_LIMIT, &log)?;
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    ensure!(
        st.success(),
        "the run after SIGKILL failed: {st}\n{}",
        tail(&log)
    );
    ensure!(
        out.contains("removing what an earlier run left") && out.contains("tiers: push tier3"),
        "the run after SIGKILL did not report the clean-up and its result:\n{out}"
    );
    let left = fp.leftovers();
    ensure!(left.is_empty(), "a whole run left {left}");
    println!(
        "tiers-interrupt-check: the run after SIGKILL removed what it left and succeeded; \
         all checks passed in {:.0?}",
        t.elapsed()
    );
    Ok(())
}

/// Starts `tiers` (this binary), output to `log`, in its own process group, so that
/// the signals sent to it are the only ones it gets.
fn start(log: &Path) -> Result<Child> {
    use std::os::unix::process::CommandExt as _;
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    Command::new(exe)
        .args(TIERS_ARGS)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .context("starting xtask tiers")
}

/// Waits until all namespaces exist and at least one mirror per tier runs.
fn wait_up(fp: &Footprint, child: &mut Child, log: &Path) -> Result<()> {
    let deadline = Instant::now() + UP_LIMIT;
    loop {
        let left = fp.leftovers();
        if left.namespaces.len() == fp.namespaces.len() && left.processes.len() >= 4 {
            return Ok(());
        }
        if let Some(st) = child.try_wait()? {
            bail!(
                "tiers exited ({st}) before its network was up\n{}",
                tail(log)
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!(
                "tiers did not bring its network up within {UP_LIMIT:?} (has {left})\n{}",
                tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_exit(child: &mut Child, limit: Duration, log: &Path) -> Result<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("tiers did not exit within {limit:?}\n{}", tail(log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send(signal: &str, pid: u32) -> Result<()> {
    let st = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .context("running kill")?;
    ensure!(st.success(), "kill -{signal} {pid}: {st}");
    Ok(())
}

/// The last lines of a run's output, for error messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
