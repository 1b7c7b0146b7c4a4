//! Harness for the end-to-end tests and the `cargo xtask demo`: the real `sigupdate`
//! and `sigserver` binaries and a real `freshclam`, run as child processes against an
//! upstream simulator (`testkit::upstream`) on
//! `127.0.0.1`.
//!
//! * [`Binaries`] finds (building them once if needed, with `$CARGO build -p sigupdate
//!   -p sigserver`) the workspace's binaries.
//! * [`Child`] owns a child process and kills it when dropped, on every exit path
//!   (panics included), so a failing test never leaves a server behind.
//! * [`Sigserver`] runs `sigserver --dir DIR --listen 127.0.0.1:0 --log-format json`,
//!   learns its port from its log, and keeps its access log for the test to read.
//! * [`sync`] runs `sigupdate sync` once and returns its exit code and log.
//! * [`Freshclam`] gives a `freshclam` (Debian's 1.4, or a 1.5 client in strict mode)
//!   a private configuration, database and log directory pointed at a mirror, and
//!   reads back the version it holds. External programs are found with
//!   `testkit::tools` (one rule for a missing tool: skip outside CI, fail in CI).
//! * [`http_get`] is a minimal HTTP/1.0 client over `std::net` (loopback only).
//!
//! The tests are in `tests/`; they print what they checked.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

/// Why a harness step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// A file or directory operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A child process could not be started or misbehaved.
    #[error("{program}: {reason}")]
    Process {
        /// The program.
        program: String,
        /// What went wrong.
        reason: String,
    },
    /// An HTTP exchange with a local server failed.
    #[error("GET {url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError {
    let path = path.to_path_buf();
    move |source| HarnessError::Io { what, path, source }
}

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // crates/e2e -> workspace root
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The official vectors directory (`testkit::official_vectors()`, the vendored
/// `testdata/clamav-official`).
pub fn official_vectors() -> PathBuf {
    testkit::official_vectors()
}

/// Paths of the workspace's `sigupdate` and `sigserver` binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// `sigupdate`.
    pub sigupdate: PathBuf,
    /// `sigserver`.
    pub sigserver: PathBuf,
}

impl Binaries {
    /// Builds the binaries (once per process) with `$CARGO build -p sigupdate -p
    /// sigserver` (`cargo` when `CARGO` is unset) and returns their paths in the
    /// workspace target directory (`CARGO_TARGET_DIR` or `<root>/target`, profile
    /// `debug`). Cargo's output goes to this process's stderr.
    pub fn build() -> Result<Binaries, HarnessError> {
        static BUILT: OnceLock<Result<Binaries, String>> = OnceLock::new();
        BUILT
            .get_or_init(|| Self::build_now(false).map_err(|e| e.to_string()))
            .clone()
            .map_err(|reason| HarnessError::Process {
                program: "cargo build -p sigupdate -p sigserver".into(),
                reason,
            })
    }

    /// Like [`Binaries::build`] with the `release` profile (`target/release`): for
    /// measurements that stand for an installed mirror, not for tests.
    pub fn build_release() -> Result<Binaries, HarnessError> {
        Self::build_now(true)
    }

    fn build_now(release: bool) -> Result<Binaries, HarnessError> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let root = workspace_root();
        let status = Command::new(&cargo)
            .args(["build", "-p", "sigupdate", "-p", "sigserver"])
            .args(release.then_some("--release"))
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .map_err(|e| HarnessError::Process {
                program: format!("{}", Path::new(&cargo).display()),
                reason: format!("cannot start: {e}"),
            })?;
        if !status.success() {
            return Err(HarnessError::Process {
                program: "cargo build -p sigupdate -p sigserver".into(),
                reason: format!("failed: {status}"),
            });
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|t| if t.is_relative() { root.join(t) } else { t })
            .unwrap_or_else(|| root.join("target"));
        let profile = if release { "release" } else { "debug" };
        let bins = Binaries {
            sigupdate: target.join(profile).join("sigupdate"),
            sigserver: target.join(profile).join("sigserver"),
        };
        for b in [&bins.sigupdate, &bins.sigserver] {
            if !b.is_file() {
                return Err(HarnessError::Process {
                    program: b.display().to_string(),
                    reason: "not found after the build".into(),
                });
            }
        }
        Ok(bins)
    }
}

/// A child process that is killed (and reaped) when dropped.
#[derive(Debug)]
pub struct Child {
    name: String,
    inner: Option<std::process::Child>,
}

impl Child {
    /// Spawns `cmd`; `name` names it in errors.
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<Child, HarnessError> {
        let inner = cmd.spawn().map_err(|e| HarnessError::Process {
            program: name.into(),
            reason: format!("cannot start: {e}"),
        })?;
        Ok(Child {
            name: name.into(),
            inner: Some(inner),
        })
    }

    /// The process id.
    pub fn id(&self) -> Option<u32> {
        self.inner.as_ref().map(std::process::Child::id)
    }

    /// Whether the process has exited (and its status).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.inner
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Asks the process to stop with `SIGTERM` (graceful shutdown), waits up to
    /// `grace` for it, then kills it. Returns its exit status.
    pub fn stop(mut self, grace: Duration) -> Result<ExitStatus, HarnessError> {
        let Some(mut c) = self.inner.take() else {
            return Err(HarnessError::Process {
                program: self.name.clone(),
                reason: "already stopped".into(),
            });
        };
        // `kill -TERM <pid>`: std has no portable SIGTERM, and this crate has no unsafe.
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let step = Duration::from_millis(20);
        let mut waited = Duration::ZERO;
        while waited < grace {
            if let Ok(Some(st)) = c.try_wait() {
                return Ok(st);
            }
            std::thread::sleep(step);
            waited += step;
        }
        let _ = c.kill();
        c.wait().map_err(|e| HarnessError::Process {
            program: self.name.clone(),
            reason: format!("wait: {e}"),
        })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(mut c) = self.inner.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One `sigserver` access-log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Request method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Response status.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// The client's `User-Agent`.
    pub user_agent: String,
}

/// A running `sigserver`, killed when dropped.
#[derive(Debug)]
pub struct Sigserver {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

/// How long a server gets to print its listening address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

impl Sigserver {
    /// Starts `sigserver --dir DIR --listen 127.0.0.1:0 --log-format json` plus
    /// `extra` arguments, and waits until it listens.
    pub fn start(bins: &Binaries, dir: &Path, extra: &[&str]) -> Result<Sigserver, HarnessError> {
        let mut cmd = Command::new(&bins.sigserver);
        cmd.arg("--dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(extra)
            .env("SIGSERVER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = Child::spawn("sigserver", &mut cmd)?;
        let stderr = child
            .inner
            .as_mut()
            .and_then(|c| c.stderr.take())
            .ok_or_else(|| HarnessError::Process {
                program: "sigserver".into(),
                reason: "no stderr pipe".into(),
            })?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(addr);
                }
                log2.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(a) => a,
            Err(_) => {
                let status = child.try_wait();
                let lines = log.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                return Err(HarnessError::Process {
                    program: "sigserver".into(),
                    reason: format!(
                        "did not report a listening address (exit: {status:?}); log:\n{lines}"
                    ),
                });
            }
        };
        Ok(Sigserver { child, addr, log })
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET <path>`.
    pub fn get(&self, path: &str) -> Result<HttpResponse, HarnessError> {
        http_get(self.addr, path, &[])
    }

    /// `GET /metrics` and the value of the sample `name{labels}` (`labels` exactly as
    /// rendered, e.g. `db="test"`; empty for none), if present.
    pub fn metric(&self, name: &str, labels: &str) -> Result<Option<f64>, HarnessError> {
        let m = self.get("/metrics")?;
        Ok(metric_value(&m.text(), name, labels))
    }

    /// Every log line so far (JSON, one per line).
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The access-log records so far, in order.
    pub fn access_log(&self) -> Vec<Access> {
        self.log_lines()
            .iter()
            .filter_map(|l| parse_access(l))
            .collect()
    }

    /// Waits (up to `timeout`) until the access log holds at least `count` records
    /// (a record is logged when its response ends, slightly after the client has it),
    /// then returns the log.
    pub fn wait_access(&self, count: usize, timeout: Duration) -> Vec<Access> {
        let step = Duration::from_millis(10);
        let mut waited = Duration::ZERO;
        loop {
            let log = self.access_log();
            if log.len() >= count || waited >= timeout {
                return log;
            }
            std::thread::sleep(step);
            waited += step;
        }
    }

    /// Stops the server with `SIGTERM` (graceful shutdown).
    pub fn stop(self) -> Result<ExitStatus, HarnessError> {
        self.child.stop(Duration::from_secs(10))
    }
}

/// The event's fields: under `fields`, or at the top level when the JSON formatter
/// flattens events.
fn event_fields(v: &serde_json::Value) -> &serde_json::Value {
    v.get("fields").unwrap_or(v)
}

fn listening_addr(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let msg = event_fields(&v).get("message")?.as_str()?;
    msg.strip_prefix("listening on ")?.trim().parse().ok()
}

fn parse_access(line: &str) -> Option<Access> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("target")?.as_str()? != "sigserver::access" {
        return None;
    }
    let f = event_fields(&v);
    let num = |k: &str| {
        f.get(k).and_then(|x| {
            x.as_u64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        })
    };
    Some(Access {
        method: f.get("method")?.as_str()?.to_owned(),
        path: f.get("path")?.as_str()?.to_owned(),
        status: u16::try_from(num("status")?).ok()?,
        bytes: num("bytes").unwrap_or(0),
        user_agent: f
            .get("user_agent")
            .and_then(|u| u.as_str())
            .unwrap_or_default()
            .to_owned(),
    })
}

/// The value of the Prometheus sample `name{labels}` (or `name` when `labels` is
/// empty) in `text`.
///
/// ```
/// let text = "# TYPE x counter\nx{kind=\"cdiff\",status=\"200\"} 5\nup 1\n";
/// assert_eq!(e2e::metric_value(text, "x", "kind=\"cdiff\",status=\"200\""), Some(5.0));
/// assert_eq!(e2e::metric_value(text, "up", ""), Some(1.0));
/// assert_eq!(e2e::metric_value(text, "x", "kind=\"cvd\""), None);
/// ```
pub fn metric_value(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A response read by [`http_get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Largest response [`http_get`] reads.
pub const MAX_RESPONSE: u64 = 256 << 20;

/// `GET <path>` over HTTP/1.0 (the server closes after the body, no chunking) with
/// extra `headers`. Loopback addresses only.
pub fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<HttpResponse, HarnessError> {
    let url = format!("http://{addr}{path}");
    let err = |reason: String| HarnessError::Http {
        url: url.clone(),
        reason,
    };
    if !addr.ip().is_loopback() {
        return Err(err("only loopback addresses are used by the tests".into()));
    }
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| err(format!("connect: {e}")))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: e2e\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| err(format!("send: {e}")))?;
    let mut raw = Vec::new();
    s.take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .map_err(|e| err(format!("read: {e}")))?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| err("no complete response head".into()))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err(format!("bad status line in {head:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

/// The result of one `sigupdate` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr (its log).
    pub stderr: String,
}

/// Options of a `sigupdate sync` run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Upstream base URLs.
    pub upstreams: Vec<String>,
    /// Databases.
    pub dbs: Vec<String>,
    /// `--sign-root` files.
    pub sign_roots: Vec<PathBuf>,
    /// `--config` file.
    pub config: Option<PathBuf>,
    /// `--verify-time` (Unix seconds), to verify the official test certificates at a
    /// pinned time.
    pub verify_time: Option<i64>,
    /// `-v`: log what was downloaded, verified and published (info level).
    pub verbose: bool,
    /// Further arguments after the options above (e.g. `--publish s3://...`).
    pub extra_args: Vec<String>,
    /// Further environment variables (e.g. the `AWS_*` of a publish target).
    pub env: Vec<(String, String)>,
}

/// Runs `sigupdate sync --dir DIR --no-dns ...` once (stdin closed, output captured,
/// `SIGUPDATE_*` variables of this process removed so that they cannot leak in).
pub fn sync(bins: &Binaries, dir: &Path, opts: &SyncOptions) -> Result<RunOutput, HarnessError> {
    let mut cmd = Command::new(&bins.sigupdate);
    if opts.verbose {
        cmd.arg("-v");
    }
    cmd.arg("sync").arg("--dir").arg(dir).arg("--no-dns");
    for u in &opts.upstreams {
        cmd.args(["--upstream", u]);
    }
    for d in &opts.dbs {
        cmd.args(["--db", d]);
    }
    for r in &opts.sign_roots {
        cmd.arg("--sign-root").arg(r);
    }
    if let Some(c) = &opts.config {
        cmd.arg("--config").arg(c);
    }
    if let Some(t) = opts.verify_time {
        cmd.arg(format!("--verify-time={t}"));
    }
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SIGUPDATE_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(&opts.extra_args);
    cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
    run(cmd, "sigupdate sync")
}

fn run(mut cmd: Command, name: &str) -> Result<RunOutput, HarnessError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| HarnessError::Process {
            program: name.into(),
            reason: format!("cannot start: {e}"),
        })?;
    Ok(RunOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// What `sigupdate status --json` reports about one database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbStatus {
    /// The published version.
    pub published_version: Option<u32>,
    /// The version upstream advertised last.
    pub upstream_version: Option<u32>,
    /// The last error, if the last sync of this database failed.
    pub last_error: Option<String>,
    /// Its kind (`chain`, `verification`, `upstream`, ...).
    pub last_error_kind: Option<String>,
    /// The published cdiffs that are signature-verified but chain-unproven, ascending
    /// (`unproven_cdiffs`; empty when absent).
    pub unproven_cdiffs: Vec<u32>,
}

/// What `sigupdate status --json` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorStatus {
    /// The stable published path (`DIR/current`).
    pub published_dir: Option<String>,
    /// Per database.
    pub databases: std::collections::BTreeMap<String, DbStatus>,
    /// The raw JSON text.
    pub json: String,
}

/// Runs `sigupdate status --dir DIR --json` and reads its output.
pub fn status(bins: &Binaries, dir: &Path) -> Result<MirrorStatus, HarnessError> {
    let mut cmd = Command::new(&bins.sigupdate);
    cmd.args(["status", "--json", "--dir"]).arg(dir);
    let out = run(cmd, "sigupdate status")?;
    let bad = |reason: String| HarnessError::Process {
        program: "sigupdate status".into(),
        reason: format!("{reason}: {}{}", out.stdout, out.stderr),
    };
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).map_err(|e| bad(format!("output is not JSON ({e})")))?;
    let text =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let num = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let versions = |v: &serde_json::Value, k: &'static str| -> Result<Vec<u32>, &'static str> {
        match v.get(k) {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(list) => list
                .as_array()
                .ok_or(k)?
                .iter()
                .map(|x| x.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or(k))
                .collect(),
        }
    };
    let mut databases = std::collections::BTreeMap::new();
    if let Some(dbs) = v.get("databases").and_then(|d| d.as_object()) {
        for (name, d) in dbs {
            databases.insert(
                name.clone(),
                DbStatus {
                    published_version: num(d, "published_version"),
                    upstream_version: num(d, "upstream_version"),
                    last_error: text(d, "last_error"),
                    last_error_kind: text(d, "last_error_kind"),
                    unproven_cdiffs: versions(d, "unproven_cdiffs")
                        .map_err(|k| bad(format!("{name}.{k} is not a list of versions")))?,
                },
            );
        }
    }
    Ok(MirrorStatus {
        published_dir: text(&v, "published_dir"),
        databases,
        json: out.stdout.clone(),
    })
}

/// The version in the 512-byte header of a `.cvd`/`.cld` file (field 3).
pub fn file_version(path: &Path) -> Option<u32> {
    let mut head = [0u8; 512];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    file_version_bytes(&head)
}

/// The version in the 512-byte header at the start of `bytes` (field 3), read with
/// `cvd-format`'s header parser.
///
/// ```
/// let mut head = b"ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X:X:me:1".to_vec();
/// head.resize(512, b' ');
/// assert_eq!(e2e::file_version_bytes(&head), Some(6));
/// assert_eq!(e2e::file_version_bytes(b"short"), None);
/// ```
pub fn file_version_bytes(bytes: &[u8]) -> Option<u32> {
    let head = bytes.get(..cvd_format::header::HEADER_SIZE)?;
    cvd_format::Header::parse(head).ok().map(|h| h.version)
}

/// A `freshclam` with its own configuration, database directory and log.
#[derive(Debug, Clone)]
pub struct Freshclam {
    program: PathBuf,
    root: PathBuf,
    certs: Option<PathBuf>,
}

impl Freshclam {
    /// Prepares `root/freshclam.conf`, `root/db/` and `root/freshclam.log` for a
    /// freshclam that uses `mirror` (`http://127.0.0.1:PORT`) with `DNSDatabaseInfo no`.
    pub fn new(program: &Path, root: &Path, mirror: &str) -> Result<Freshclam, HarnessError> {
        Self::with_certs(program, root, mirror, None)
    }

    /// Like [`Freshclam::new`], for a ClamAV 1.5 client in strict mode: the
    /// configuration also sets `FIPSCryptoHashLimits yes` and `CVDCertsDirectory
    /// <certs>`, and [`Freshclam::update`] sets `CVD_CERTS_DIR=<certs>` (1.5.3 reads
    /// only the variable when it test-loads a download). Every `.cvd` and `.cdiff` it
    /// downloads then needs its `.sign`, chaining to a root in `certs`, and the `.cvd`
    /// it holds needs its `.sign` beside it for an incremental update.
    pub fn strict(
        program: &Path,
        root: &Path,
        mirror: &str,
        certs: &Path,
    ) -> Result<Freshclam, HarnessError> {
        Self::with_certs(program, root, mirror, Some(certs))
    }

    /// The freshclam of `client` (`testkit::tools::clamav_versions`): plain for 1.4,
    /// [`Freshclam::strict`] with the client's certificate directory for 1.5.
    pub fn for_client(
        client: &testkit::tools::ClamavTool,
        root: &Path,
        mirror: &str,
    ) -> Result<Freshclam, HarnessError> {
        Self::with_certs(&client.program, root, mirror, client.certs.as_deref())
    }

    fn with_certs(
        program: &Path,
        root: &Path,
        mirror: &str,
        certs: Option<&Path>,
    ) -> Result<Freshclam, HarnessError> {
        let db = root.join("db");
        std::fs::create_dir_all(&db).map_err(io_err("create", &db))?;
        let f = Freshclam {
            program: program.to_path_buf(),
            root: root.to_path_buf(),
            certs: certs.map(Path::to_path_buf),
        };
        f.set_mirror(mirror)?;
        Ok(f)
    }

    /// Whether this client runs in strict mode ([`Freshclam::strict`]).
    pub fn is_strict(&self) -> bool {
        self.certs.is_some()
    }

    /// Points the configuration at another mirror.
    pub fn set_mirror(&self, mirror: &str) -> Result<(), HarnessError> {
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "root".into());
        let mut conf = format!(
            "DatabaseDirectory {}\nDatabaseMirror {mirror}\nDNSDatabaseInfo no\nDatabaseOwner {user}\n\
             UpdateLogFile {}\nLogVerbose yes\nScriptedUpdates yes\nConnectTimeout 10\nReceiveTimeout 30\n",
            self.db_dir().display(),
            self.root.join("freshclam.log").display(),
        );
        if let Some(certs) = &self.certs {
            conf.push_str(&format!(
                "CVDCertsDirectory {}\nFIPSCryptoHashLimits yes\n",
                certs.display()
            ));
        }
        let path = self.root.join("freshclam.conf");
        std::fs::write(&path, conf).map_err(io_err("write", &path))
    }

    /// The database directory.
    pub fn db_dir(&self) -> PathBuf {
        self.root.join("db")
    }

    /// Places `bytes` in the database directory as `name` (e.g. `test.cvd`).
    pub fn install(&self, name: &str, bytes: &[u8]) -> Result<(), HarnessError> {
        let p = self.db_dir().join(name);
        std::fs::write(&p, bytes).map_err(io_err("write", &p))
    }

    /// Runs `freshclam --no-dns --config-file=F --update-db=DB`.
    pub fn update(&self, db: &str) -> Result<RunOutput, HarnessError> {
        let mut cmd = Command::new(&self.program);
        cmd.arg("--no-dns")
            .arg(format!(
                "--config-file={}",
                self.root.join("freshclam.conf").display()
            ))
            .arg(format!("--update-db={db}"));
        if let Some(certs) = &self.certs {
            cmd.env("CVD_CERTS_DIR", certs);
        }
        run(cmd, "freshclam")
    }

    /// The version of `db` the client holds (`<db>.cld` or `<db>.cvd`), if any.
    pub fn version(&self, db: &str) -> Option<u32> {
        ["cld", "cvd"]
            .iter()
            .find_map(|ext| file_version(&self.db_dir().join(format!("{db}.{ext}"))))
    }
}
