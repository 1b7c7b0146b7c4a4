//! The load check: ClamAV's own engine loads a new file before it is published.
//!
//! The file is linked (or copied) alone into a fresh temporary directory and
//! `clamscan --no-summary --database=<that dir> <an empty file>` runs, time-limited.
//! Exit code 0 (or 1: something matched) means the engine loaded it; anything else is a
//! refusal, reported with the engine's `ERROR`/`LibClamAV Error` lines. A file whose
//! name ClamAV does not load as a database ("No supported database files found") is
//! reported as skipped, not refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Error;

/// The default time limit of one load check.
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest engine message kept in a report.
const MAX_MESSAGE: usize = 2000;

/// The result of a load check that did not refuse the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum LoadCheck {
    /// The feed does not ask for a load check (or the file was not new).
    NotRequested,
    /// ClamAV's engine loaded the file.
    Passed,
    /// No check ran: the reason (no `clamscan`, or a file ClamAV does not load by
    /// its name).
    Skipped(String),
}

/// Runs load checks with one `clamscan`.
#[derive(Debug)]
pub struct LoadChecker {
    tool: Option<PathBuf>,
    timeout: Duration,
    warned: AtomicBool,
}

impl LoadChecker {
    /// `clamscan` from `PATH`, when there is one (else every check is skipped, with one
    /// warning in the log).
    pub fn discover() -> LoadChecker {
        let tool = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("clamscan"))
                .find(|p| p.is_file())
        });
        LoadChecker::with_tool(tool)
    }

    /// This `clamscan` (or `None`: checks are skipped).
    pub fn with_tool(tool: Option<PathBuf>) -> LoadChecker {
        LoadChecker {
            tool,
            timeout: DEFAULT_LOAD_TIMEOUT,
            warned: AtomicBool::new(false),
        }
    }

    /// The time limit of one check (default [`DEFAULT_LOAD_TIMEOUT`]).
    pub fn timeout(mut self, d: Duration) -> LoadChecker {
        self.timeout = d;
        self
    }

    /// The `clamscan` used, if any.
    pub fn tool(&self) -> Option<&Path> {
        self.tool.as_deref()
    }

    /// Loads the file at `path` (named `file` in the feed) with ClamAV's engine.
    ///
    /// # Errors
    /// [`Error::LoadCheck`] when the engine refuses the file or does not finish in
    /// time; [`Error::Io`] when the temporary directory cannot be made or the tool
    /// cannot be started.
    pub fn check(&self, file: &str, path: &Path) -> Result<LoadCheck, Error> {
        let Some(tool) = &self.tool else {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "clamscan not found: feed files are published without a load check (install ClamAV to enable it)"
                );
            }
            return Ok(LoadCheck::Skipped("clamscan not found".into()));
        };
        let tmp = tempfile::Builder::new()
            .prefix("feeds-load-check-")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let db = tmp.path().join("db");
        std::fs::create_dir(&db).map_err(|e| Error::io(&db, e))?;
        let copy = db.join(file);
        if std::fs::hard_link(path, &copy).is_err() {
            std::fs::copy(path, &copy).map_err(|e| Error::io(&copy, e))?;
        }
        let target = tmp.path().join("empty");
        let out = tmp.path().join("out.txt");
        let err = tmp.path().join("err.txt");
        std::fs::write(&target, b"").map_err(|e| Error::io(&target, e))?;
        let stdout = std::fs::File::create(&out).map_err(|e| Error::io(&out, e))?;
        let stderr = std::fs::File::create(&err).map_err(|e| Error::io(&err, e))?;
        let mut child = Command::new(tool)
            .arg("--no-summary")
            .arg(format!("--database={}", db.display()))
            .arg(&target)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| Error::io(tool, e))?;
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait().map_err(|e| Error::io(tool, e))? {
                Some(s) => break s,
                None if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::LoadCheck {
                        file: file.to_owned(),
                        message: format!("clamscan did not finish within {:?}", self.timeout),
                    });
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let text = format!(
            "{}\n{}",
            std::fs::read_to_string(&err).unwrap_or_default(),
            std::fs::read_to_string(&out).unwrap_or_default()
        );
        if matches!(status.code(), Some(0 | 1)) {
            return Ok(LoadCheck::Passed);
        }
        if text.contains("No supported database files found") {
            return Ok(LoadCheck::Skipped(format!(
                "ClamAV does not load {file:?} as a database (by its name)"
            )));
        }
        let mut message: String = text
            .lines()
            .map(str::trim)
            .filter(|l| l.contains("ERROR") || l.contains("Error"))
            .map(|l| l.replace(&*db.to_string_lossy(), "<db>"))
            .collect::<Vec<_>>()
            .join("; ");
        if message.is_empty() {
            message = format!("clamscan exited with {status}");
        }
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        Err(Error::LoadCheck {
            file: file.to_owned(),
            message,
        })
    }
}
