//! Long-running programs a test starts beside itself (SeaweedFS in [`crate::s3`], squid
//! in [`crate::proxy`]): the one place that starts them so that nothing outlives the
//! test.
//!
//! The program runs under a small shell watchdog, in a process group of its own (the
//! watchdog leads it, so the program's helpers are in it too):
//! * dropping the [`Daemon`] kills the whole group;
//! * when the test process dies without dropping it, the watchdog notices (its parent
//!   pid, polled every 0.5 s) and kills the group;
//! * when the program exits by itself, the watchdog kills what is left of the group and
//!   exits, which [`Daemon::exited`] reports (a start that failed, e.g. a port taken).

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The watchdog: `sh -c SCRIPT NAME PROGRAM LOG PARENT ARGS...`.
const WATCHDOG: &str = r#"w="$1"; shift; log="$1"; shift; parent="$1"; shift
"$w" "$@" >>"$log" 2>&1 </dev/null &
pid=$!
( while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done; kill -9 0 ) &
wait $pid
kill -9 0"#;

/// A program running in its own process group, killed (with its helpers) on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
}

impl Daemon {
    /// Starts `program` with `args` in `dir`, its output appended to `log`.
    ///
    /// # Errors
    ///
    /// When the watchdog cannot be started.
    pub fn spawn(
        program: &Path,
        args: &[String],
        dir: &Path,
        log: &Path,
    ) -> std::io::Result<Daemon> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("testkit-watchdog")
            .arg(program)
            .arg(log)
            .arg(std::process::id().to_string())
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        Ok(Daemon {
            child: cmd.spawn()?,
        })
    }

    /// Whether the program has exited (its watchdog ends with it).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// The process group's id (the watchdog's pid).
    pub fn group(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // the group's id is the watchdog's pid (process_group(0) above)
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;
    use std::time::Duration;

    /// Whether a process with this pid exists (and is not a zombie).
    fn alive(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    #[test]
    fn drop_kills_the_program_and_its_children() {
        let dir = std::env::temp_dir().join(format!("testkit-daemon-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        // a program with a child of its own, both writing their pid
        let args = vec![
            "-c".to_owned(),
            "sleep 300 & echo $! > child.pid; echo $$ > main.pid; wait".to_owned(),
        ];
        let mut d = Daemon::spawn(Path::new("/bin/sh"), &args, &dir, &log).unwrap();
        let pids = crate::wait::until_some("both pids", Duration::from_secs(20), || {
            let a = std::fs::read_to_string(dir.join("main.pid")).ok()?;
            let b = std::fs::read_to_string(dir.join("child.pid")).ok()?;
            (!a.trim().is_empty() && !b.trim().is_empty())
                .then(|| [a.trim().to_owned(), b.trim().to_owned()])
        });
        assert!(!d.exited());
        assert!(pids.iter().all(|p| alive(p)));
        drop(d);
        crate::wait::until("the group to die", Duration::from_secs(20), || {
            pids.iter().all(|p| !alive(p))
        });
        // a program that ends by itself is reported as exited
        let args = vec!["-c".to_owned(), "exit 3".to_owned()];
        d = Daemon::spawn(Path::new("/bin/sh"), &args, &dir, &log).unwrap();
        crate::wait::until("the exit", Duration::from_secs(20), || d.exited());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
