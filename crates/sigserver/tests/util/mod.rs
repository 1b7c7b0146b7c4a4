//! Test support: start the real `sigserver` binary on a loopback port, talk raw HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_sigserver");

/// The official vectors (vendored in `testdata/clamav-official`).
pub fn fixture(name: &str) -> PathBuf {
    testkit::official_vectors().join(name)
}

/// Switches `DIR/current` to `generations/<gen_name>` atomically, the way mirror-core
/// does: a new symlink renamed over the old one.
pub fn switch_current(root: &Path, gen_name: &str) {
    let tmp = root.join(".current.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("generations/{gen_name}"), &tmp).unwrap();
    std::fs::rename(&tmp, root.join("current")).unwrap();
}

/// A directory an upstream serves: the official `test` database at version 6 with
/// its `.sign` and the cdiffs 2..=6 with theirs.
pub fn official_upstream_dir() -> tempfile::TempDir {
    let up_dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("test-6.cvd"), up_dir.path().join("test.cvd")).unwrap();
    std::fs::copy(
        fixture("test-6.cvd.sign"),
        up_dir.path().join("test-6.cvd.sign"),
    )
    .unwrap();
    for v in 2..=6 {
        for ext in ["cdiff", "cdiff.sign"] {
            let n = format!("test-{v}.{ext}");
            std::fs::copy(fixture(&n), up_dir.path().join(&n)).unwrap();
        }
    }
    up_dir
}

/// Collected stderr of a running server, with a way to wait for a line.
#[derive(Clone, Default)]
pub struct Log(Arc<(Mutex<String>, Condvar)>);

impl Log {
    pub fn text(&self) -> String {
        self.0.0.lock().unwrap().clone()
    }

    /// Blocks until the log contains `needle` (or the server's stderr closes). A guard
    /// of [`WAIT_GUARD`] turns a hang into a failure; it is not a timing assertion.
    pub fn wait_for(&self, needle: &str) -> Option<String> {
        let (m, cv) = &*self.0;
        let mut g = m.lock().unwrap();
        let deadline = std::time::Instant::now() + WAIT_GUARD;
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in the server log after {WAIT_GUARD:?}:\n{}",
                *g
            );
            if let Some(i) = g.find(needle) {
                let rest = &g[i + needle.len()..];
                let line = rest.lines().next().unwrap_or("").to_owned();
                return Some(line);
            }
            if g.ends_with("\u{0}EOF") {
                return None;
            }
            g = cv.wait_timeout(g, Duration::from_secs(1)).unwrap().0;
        }
    }
}

/// Upper bound on waiting for a log line before failing the test.
pub const WAIT_GUARD: Duration = Duration::from_secs(300);

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub addrs: Vec<SocketAddr>,
    pub log: Log,
}

impl Server {
    /// Sends the server `SIGHUP` (re-read the configuration).
    pub fn hup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP {}", self.child.id());
    }

    /// Starts `sigserver --dir DIR --listen 127.0.0.1:0 ARGS...` and waits for the
    /// "listening on" line.
    pub fn start(dir: &Path, args: &[&str]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.arg("--dir").arg(dir);
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        Self::spawn(cmd.args(args), 1)
    }

    /// Spawns a prepared command and waits for `n` listening lines.
    pub fn spawn(cmd: &mut Command, n: usize) -> Server {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        if std::env::var_os("SIGSERVER_LOG").is_none() {
            cmd.env("SIGSERVER_LOG", "info");
        }
        // A test-harness knob, not a setting: sigserver refuses unknown SIGSERVER_*.
        cmd.env_remove("SIGSERVER_TEST_ECHO");
        let mut child = cmd.spawn().expect("spawn sigserver");
        let stderr = child.stderr.take().unwrap();
        let log = Log::default();
        let l2 = log.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if std::env::var_os("SIGSERVER_TEST_ECHO").is_some() {
                            eprint!("{line}");
                        }
                        let (m, cv) = &*l2.0;
                        m.lock().unwrap().push_str(&line);
                        cv.notify_all();
                    }
                }
            }
            let (m, cv) = &*l2.0;
            m.lock().unwrap().push_str("\u{0}EOF");
            cv.notify_all();
        });
        let mut addrs = Vec::new();
        let mut seen = 0;
        while addrs.len() < n {
            let text = log.text();
            let found: Vec<SocketAddr> = text
                .match_indices("listening on ")
                .filter_map(|(i, _)| {
                    let rest = &text[i + "listening on ".len()..];
                    let end = rest
                        .find(|c: char| c.is_whitespace() || c == '"')
                        .unwrap_or(rest.len());
                    rest[..end].parse().ok()
                })
                .collect();
            if found.len() > seen {
                seen = found.len();
                addrs = found;
                continue;
            }
            if text.ends_with("\u{0}EOF") {
                panic!("sigserver exited before listening:\n{text}");
            }
            let (m, cv) = &*log.0;
            let g = m.lock().unwrap();
            if g.len() == text.len() {
                drop(cv.wait(g).unwrap());
            }
        }
        Server {
            child,
            addr: addrs[0],
            addrs,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok);
    }

    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("wait for sigserver")
    }

    /// Prometheus text from `/metrics`.
    pub fn metrics(&self) -> String {
        let r = request(
            self.addr,
            "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 200);
        String::from_utf8(r.body).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends raw bytes (should ask for `Connection: close`) and reads the whole answer.
pub fn request_bytes(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(raw).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse(&buf)
}

pub fn request(addr: SocketAddr, raw: &str) -> Response {
    request_bytes(addr, raw.as_bytes())
}

/// `GET path` with extra header lines (each ending in `\r\n`).
pub fn get(addr: SocketAddr, path: &str, headers: &str) -> Response {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n"),
    )
}

pub fn head(addr: SocketAddr, path: &str, headers: &str) -> Response {
    request(
        addr,
        &format!("HEAD {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n"),
    )
}

pub fn parse(buf: &[u8]) -> Response {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(buf)));
    let head = std::str::from_utf8(&buf[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Response {
        status,
        headers,
        body: buf[end + 4..].to_vec(),
    }
}

/// Reads one response head from a stream without consuming the body.
pub fn read_head(r: &mut impl Read) -> Response {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = r.read(&mut b).expect("read head");
        assert!(
            n == 1,
            "connection closed in head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(b[0]);
    }
    parse(&buf)
}

/// Value of a metric line `name{labels} value` (exact label text), if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

/// A temp dir holding the official `test` database files as a plain directory:
/// `test.cvd` (= test-6.cvd), `test-2..6.cdiff`, their `.sign` files, `dns.txt`.
pub fn plain_mirror() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("test-6.cvd"), d.path().join("test.cvd")).unwrap();
    std::fs::copy(fixture("test-6.cvd.sign"), d.path().join("test-6.cvd.sign")).unwrap();
    for v in 2..=6 {
        for ext in ["cdiff", "cdiff.sign"] {
            let n = format!("test-{v}.{ext}");
            std::fs::copy(fixture(&n), d.path().join(&n)).unwrap();
        }
    }
    std::fs::write(
        d.path().join("dns.txt"),
        "1.4.6:62:27000:1700000000:0:90:0:335\n",
    )
    .unwrap();
    d
}
