//! `sigserver` against nginx on the same snapshot, driven by `wrk` over loopback.
//!
//! Cases: 512-byte range probes (`Range: bytes=0-511` on `test.cvd`, how clients read
//! versions) and full downloads of `bytecode.cvd` (60 KiB, the official vector) at 1, 64
//! and 1000 connections, each for `BENCH_SECS` seconds (default 5). Both servers serve
//! `DIR/current` of the same mirror directory, with access logs off, on the same two
//! cores as `wrk` (sigserver: one worker thread per CPU; nginx: `worker_processes auto`,
//! `sendfile on`, `tcp_nopush on`, keep-alive without a request cap). sigserver is the
//! real binary (built here with `cargo build --release -p sigserver`, a no-op after
//! `cargo bench`) in its own process, access log off. RSS is sigserver's process and
//! nginx's master + workers, the peak sampled every 50 ms during the case.
//!
//! Prints req/s, throughput, p99 latency, RSS and server CPU time per request side by
//! side, with ratios sigserver/nginx (req/s and MB/s: > 1 means sigserver is faster;
//! p99, RSS and CPU: < 1 means sigserver is better). Each case runs `BENCH_ROUNDS`
//! times (default 3), alternating which server goes first, and the median is shown:
//! the machine may be shared, and CPU time per request is the load-independent figure.
//! `nginx` and `wrk` are installed with apt-get if missing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

fn fixture(name: &str) -> PathBuf {
    testkit::official_vectors().join(name)
}

/// nginx and wrk, installed with apt-get when missing (the bench's documented
/// behaviour), then found through the workspace's one finder: `false` (skip, with its
/// message) when they are still missing outside CI.
fn ensure_tools() -> bool {
    let missing: Vec<&str> = ["nginx", "wrk"]
        .into_iter()
        .filter(|t| testkit::tools::find_on_path(t).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!("installing {missing:?} with apt-get");
        let pkgs: Vec<&str> = missing
            .iter()
            .map(|t| if *t == "nginx" { "nginx-light" } else { t })
            .collect();
        let _ = Command::new("apt-get")
            .args(["install", "-y"])
            .args(&pkgs)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    ["nginx", "wrk"]
        .iter()
        .all(|t| testkit::tools::require(t).is_some())
}

/// The mirror directory both servers serve: `DIR/current -> generations/g-000001`.
fn mirror_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let g = root.join("generations/g-000001");
    std::fs::create_dir_all(&g)?;
    std::fs::copy(fixture("test-6.cvd"), g.join("test.cvd")).context("test-6.cvd")?;
    std::fs::copy(fixture("bytecode.cvd"), g.join("bytecode.cvd")).context("bytecode.cvd")?;
    std::os::unix::fs::symlink("generations/g-000001", root.join("current"))?;
    Ok(root.join("current"))
}

/// A server process under test: stopped with `stop` (a `kill` signal name) on drop.
struct Proc {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    stop: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args([&format!("-{}", self.stop), &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Waits until the server accepts connections (or fails if it exits).
    fn listening(mut self) -> anyhow::Result<Proc> {
        for _ in 0..200 {
            if TcpStream::connect(self.addr).is_ok() {
                return Ok(self);
            }
            if let Some(st) = self.child.try_wait()? {
                bail!("{} exited: {st}", self.name);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        bail!("{} did not start listening on {}", self.name, self.addr)
    }
}

/// The real `sigserver` binary, release build (`cargo build --release -p sigserver`,
/// a no-op when `cargo bench` already built it), as its own process like nginx.
fn start_sigserver(dir: &Path) -> anyhow::Result<Proc> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "sigserver",
            "--bin",
            "sigserver",
        ])
        .status()
        .context("cargo build --release -p sigserver")?
        .success();
    anyhow::ensure!(ok, "building sigserver failed");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let bin = target.join("release/sigserver");
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let child = Command::new(&bin)
        .arg("--dir")
        .arg(dir)
        .args(["--listen", &addr.to_string(), "--access-log", "false"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start {}", bin.display()))?;
    Proc {
        name: "sigserver",
        child,
        addr,
        stop: "TERM",
    }
    .listening()
}

fn start_nginx(root: &Path, served: &Path) -> anyhow::Result<Proc> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let prefix = root.join("nginx");
    std::fs::create_dir_all(prefix.join("logs"))?;
    let conf = prefix.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process on;\nworker_processes auto;\nworker_rlimit_nofile 20000;\n\
             user root;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log warn;\n\
             events {{ worker_connections 8192; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  tcp_nodelay on;\n\
               keepalive_requests 100000000;\n  keepalive_timeout 65;\n  default_type application/octet-stream;\n\
               client_body_temp_path {p}/cb;\n  proxy_temp_path {p}/px;\n  fastcgi_temp_path {p}/fc;\n\
               uwsgi_temp_path {p}/uw;\n  scgi_temp_path {p}/sc;\n\
               server {{\n    listen 127.0.0.1:{port};\n    root {served};\n  }}\n}}\n",
            p = prefix.display(),
            served = served.display(),
        ),
    )?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .spawn()
        .context("start nginx")?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    Proc {
        name: "nginx",
        child,
        addr,
        stop: "QUIT",
    }
    .listening()
}

/// One raw request, for a sanity check before measuring.
fn probe(addr: SocketAddr, path: &str, range: Option<&str>) -> anyhow::Result<(u16, usize)> {
    let mut s = TcpStream::connect(addr)?;
    let range = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: b\r\n{range}Connection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no head")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let status = head.split(' ').nth(1).context("no status")?.parse()?;
    Ok((status, buf.len() - end - 4))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// RSS of a process and its direct children (nginx master + workers).
fn tree_rss_kib(pid: u32) -> u64 {
    let mut total = rss_kib(pid);
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let ppid = std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| {
                    let after = s.rsplit_once(')')?.1.to_owned();
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                });
            if ppid == Some(pid) {
                total += rss_kib(child);
            }
        }
    }
    total
}

#[derive(Debug, Clone, Copy, Default)]
struct Run {
    rps: f64,
    /// Server CPU time (user + system, all threads) per request, microseconds.
    cpu_us: f64,
    mbps: f64,
    p99_ms: f64,
    rss_mib: f64,
    errors: u64,
}

fn unit_value(s: &str, units: &[(&str, f64)]) -> Option<f64> {
    let s = s.trim();
    for (u, mult) in units {
        if let Some(n) = s.strip_suffix(u)
            && let Ok(v) = n.trim().parse::<f64>()
        {
            return Some(v * mult);
        }
    }
    None
}

/// CPU ticks (user + system) of these processes, all threads.
fn cpu_ticks(pids: &[u32]) -> u64 {
    let mut total = 0;
    for pid in pids {
        let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in rd.flatten() {
            let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
                continue;
            };
            let Some((_, after)) = stat.rsplit_once(')') else {
                continue;
            };
            let f: Vec<&str> = after.split_whitespace().collect();
            // Fields after the command: state is 0, utime is 11, stime is 12.
            total += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            total += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

/// The nginx master and its workers.
fn nginx_pids(master: u32) -> Vec<u32> {
    let mut pids = vec![master];
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                });
            if ppid == Some(master) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Clock ticks per second for /proc times (USER_HZ; 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

fn wrk(
    url: &str,
    conns: u32,
    secs: u64,
    range: bool,
    pids: &[u32],
    rss_of: impl Fn() -> u64 + Send + 'static,
) -> anyhow::Result<Run> {
    let threads = conns.min(2);
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t",
        &threads.to_string(),
        "-c",
        &conns.to_string(),
        "-d",
        &format!("{secs}s"),
        "--latency",
        "--timeout",
        "10s",
    ]);
    if range {
        cmd.args(["-H", "Range: bytes=0-511"]);
    }
    cmd.arg(url);
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_of(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let cpu_before = cpu_ticks(pids);
    let out = cmd.output().context("run wrk")?;
    let cpu = cpu_ticks(pids).saturating_sub(cpu_before);
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut run = Run {
        rss_mib: peak.load(Ordering::Relaxed) as f64 / 1024.0,
        ..Run::default()
    };
    let time = [("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)];
    let size = [
        ("GB", 1024.0),
        ("MB", 1.0),
        ("KB", 1.0 / 1024.0),
        ("B", 1.0 / 1048576.0),
    ];
    for line in text.lines() {
        let l = line.trim();
        if l.contains(" requests in ") {
            let n: f64 = l
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            if n > 0.0 {
                run.cpu_us = cpu as f64 / TICKS_PER_SEC * 1e6 / n;
            }
        } else if let Some(v) = l.strip_prefix("Requests/sec:") {
            run.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = l.strip_prefix("Transfer/sec:") {
            run.mbps = unit_value(v, &size).unwrap_or(0.0);
        } else if let Some(v) = l.strip_prefix("99%") {
            run.p99_ms = unit_value(v, &time).unwrap_or(0.0);
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            run.errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            run.errors += v
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    Ok(run)
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        println!("serve: bench");
        return Ok(());
    }
    if !ensure_tools() {
        return Ok(());
    }
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let tmp = tempfile::tempdir()?;
    let served = mirror_dir(tmp.path())?;
    let sigserver = start_sigserver(tmp.path())?;
    let (sig, sig_pid) = (sigserver.addr, sigserver.child.id());
    let ngx = start_nginx(tmp.path(), &served)?;
    let ngx_pid = ngx.child.id();

    for (name, addr) in [("sigserver", sig), ("nginx", ngx.addr)] {
        let (st, n) = probe(addr, "/test.cvd", Some("bytes=0-511"))?;
        anyhow::ensure!(
            st == 206 && n == 512,
            "{name}: range probe gave {st} with {n} bytes"
        );
        let (st, n) = probe(addr, "/bytecode.cvd", None)?;
        let want = std::fs::metadata(served.join("bytecode.cvd"))?.len() as usize;
        anyhow::ensure!(
            st == 200 && n == want,
            "{name}: full download gave {st} with {n} bytes"
        );
    }

    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let ngx_pids = nginx_pids(ngx_pid);
    println!(
        "sigserver vs nginx {} on loopback, wrk, {secs}s per run, median of {rounds} alternating runs, {} CPUs",
        nginx_version(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    print_header();
    let mut rps_ratios = Vec::new();
    for (case, path, range) in [
        ("range probe 512 B", "/test.cvd", true),
        ("full bytecode.cvd 60KiB", "/bytecode.cvd", false),
    ] {
        for conns in [1u32, 64, 1000] {
            let mut sig_runs = Vec::new();
            let mut ngx_runs = Vec::new();
            for round in 0..rounds {
                let run_sig = || {
                    wrk(
                        &format!("http://{sig}{path}"),
                        conns,
                        secs,
                        range,
                        &[sig_pid],
                        move || rss_kib(sig_pid),
                    )
                };
                let run_ngx = || {
                    wrk(
                        &format!("http://{}{path}", ngx.addr),
                        conns,
                        secs,
                        range,
                        &ngx_pids,
                        move || tree_rss_kib(ngx_pid),
                    )
                };
                if round % 2 == 0 {
                    sig_runs.push(run_sig()?);
                    ngx_runs.push(run_ngx()?);
                } else {
                    ngx_runs.push(run_ngx()?);
                    sig_runs.push(run_sig()?);
                }
            }
            let (s, n) = (median(&sig_runs), median(&ngx_runs));
            let r = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
            print_row(case, conns, &s, &n);
            if s.errors > 0 || n.errors > 0 {
                println!("    errors: sigserver {} nginx {}", s.errors, n.errors);
            }
            rps_ratios.push(r(s.rps, n.rps));
        }
    }
    let geo = rps_ratios.iter().map(|x| x.ln()).sum::<f64>() / rps_ratios.len() as f64;
    println!(
        "geometric mean req/s ratio sigserver/nginx: {:.2}",
        geo.exp()
    );
    let lowest = rps_ratios.iter().copied().fold(f64::INFINITY, f64::min);
    println!("lowest req/s ratio sigserver/nginx: {lowest:.2} (target: >= 1.00 in every case)");
    println!(
        "(ratio = sigserver/nginx. req/s, MB/s: > 1 = sigserver faster; p99, RSS, CPU/req = server CPU time per request: < 1 = sigserver better)"
    );
    Ok(())
}

/// Column groups: (title, unit, value of a run, decimals).
type Col = (&'static str, &'static str, fn(&Run) -> f64, usize);
const COLS: [Col; 5] = [
    ("req/s", "", |r| r.rps, 0),
    ("MB/s", "", |r| r.mbps, 0),
    ("p99", "ms", |r| r.p99_ms, 2),
    ("RSS", "MiB", |r| r.rss_mib, 1),
    ("CPU/req", "us", |r| r.cpu_us, 1),
];

/// Each metric as a group of three columns: sigserver, nginx, ratio sigserver/nginx.
fn print_header() {
    let mut l1 = format!("{:<24} {:>5}", "", "");
    let mut l2 = format!("{:<24} {:>5}", "case", "conns");
    for (title, unit, _, _) in COLS {
        let t = if unit.is_empty() {
            title.to_owned()
        } else {
            format!("{title} ({unit})")
        };
        l1.push_str(&format!(" | {t:^25}"));
        l2.push_str(&format!(
            " | {:>9} {:>9} {:>5}",
            "sigserver", "nginx", "ratio"
        ));
    }
    println!("{l1}");
    println!("{l2}");
    println!("{}", "-".repeat(l2.len()));
}

fn print_row(case: &str, conns: u32, s: &Run, n: &Run) {
    let mut line = format!("{case:<24} {conns:>5}");
    for (_, _, f, d) in COLS {
        let (a, b) = (f(s), f(n));
        let ratio = if b > 0.0 { a / b } else { f64::NAN };
        line.push_str(&format!(" | {a:>9.d$} {b:>9.d$} {ratio:>5.2}"));
    }
    println!("{line}");
}

fn nginx_version() -> String {
    Command::new("nginx")
        .arg("-v")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .replace("nginx version: ", "")
        })
        .unwrap_or_default()
}

/// Per-metric median of several runs.
fn median(runs: &[Run]) -> Run {
    let m = |f: fn(&Run) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    Run {
        rps: m(|r| r.rps),
        cpu_us: m(|r| r.cpu_us),
        mbps: m(|r| r.mbps),
        p99_ms: m(|r| r.p99_ms),
        rss_mib: m(|r| r.rss_mib),
        errors: runs.iter().map(|r| r.errors).sum(),
    }
}
