//! `cargo xtask tiers`: how fast a new version crosses a network of mirrors, with
//! push notices and with polling only, side by side.
//!
//! ```text
//!                      origin (this process + sigserver on 10.77.0.1:8000, pushing)
//!                                  │
//!                      t1          (sigserver --sync, one process)        10.77.0.11
//!                  ┌───┴───┐
//!                 t2a     t2b      (sigserver + sigupdate watch: two)     10.77.0.21-22
//!               ┌──┴─┐  ┌──┴─┐
//!             t3a t3b  t3c t3d     (sigserver --sync)                     10.77.0.31-34
//! ```
//!
//! Every mirror is a real process in its own network namespace, joined to the origin by
//! a bridge (`tiersbr0`, 10.77.0.0/24); no other address is used. The origin publishes
//! `--versions` successive versions of a synthetic database (`tiers`, signed with the
//! TEST key; `--size daily` makes its `.cvd` over 50 MB) and, along the way, the
//! official `test` vectors up to version 6. After each publish it notifies tier 1
//! (push mode only) and polls every mirror's `/dns.txt` every 50 ms, recording when
//! each serves the new version. Both modes poll upstream every `--poll-secs` (plus up
//! to `--jitter-secs`); only the push mode sends notices. At the end of the push run,
//! real freshclam clients (1.4 and strict 1.5.3, when installed; required in CI)
//! update `test` from a tier-3 mirror.
//!
//! The last line of the output:
//! `tiers: push tier3 p50=<s> p95=<s> max=<s>; poll tier3 p50=<s> max=<s>`.
//! Needs root (network namespaces). Stopped by `SIGINT`, `SIGTERM` or `SIGHUP`, it
//! stops its processes and removes its namespaces, links and work directories; a run
//! first removes what a killed one left (modules `interrupt` and `netns`;
//! `cargo xtask tiers-interrupt-check` proves both).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use e2e::{Binaries, Child, Freshclam};
use testkit::upstream::{History, PublisherKeys};

use crate::interrupt;
use crate::netns::Footprint;

const BRIDGE: &str = "tiersbr0";
const ORIGIN_IP: &str = "10.77.0.1";
/// `--ipv6`: every address of the harness is `fd77::<last octet>` (a unique local
/// address) instead of `10.77.0.<last octet>`.
static IPV6: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn ipv6() -> bool {
    IPV6.load(std::sync::atomic::Ordering::Relaxed)
}

/// A node's address as it appears in URLs and socket addresses (`[fd77::11]` with
/// `--ipv6`).
pub(crate) fn host(ip: &str) -> String {
    match (ipv6(), ip.rsplit('.').next()) {
        (true, Some(last)) => format!("[fd77::{last}]"),
        _ => ip.to_owned(),
    }
}

/// A node's address with its prefix length, for `ip addr add`.
fn cidr(ip: &str) -> String {
    match (ipv6(), ip.rsplit('.').next()) {
        (true, Some(last)) => format!("fd77::{last}/64"),
        _ => format!("{ip}/24"),
    }
}

/// `ip addr add ADDR dev DEV` (in namespace `ns`), without duplicate address detection
/// for IPv6 so that the address is usable at once.
fn add_addr(ns: Option<&str>, ip_addr: &str, dev: &str) -> Result<()> {
    let cidr = cidr(ip_addr);
    let mut args: Vec<&str> = Vec::new();
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    args.extend(["addr", "add", &cidr, "dev", dev]);
    if ipv6() {
        args.push("nodad");
    }
    ip(&args)
}
const NS_PREFIX: &str = "tiers-";
/// Prefix of the per-mode work directories in `std::env::temp_dir()`.
const WORK_PREFIX: &str = "xtask-tiers-";
/// Verify the official test certificates at a pinned time (they expire in 2027).
const VERIFY_TIME: &str = "1767225600";
/// The synthetic database.
const DB: &str = "tiers";

/// Options of `cargo xtask tiers`.
#[derive(Debug, Clone)]
pub struct Opts {
    daily: bool,
    versions: u32,
    poll_secs: u64,
    jitter_secs: u64,
    push: bool,
    poll: bool,
    release: bool,
    /// `--fault master-down` (see [`crate::tiers_fault`]).
    master_down: bool,
    /// `--ipv6`: the network is IPv6 only (`fd77::/64`).
    ipv6: bool,
}

impl Opts {
    /// Parses `[--size small|daily] [--versions N] [--poll-secs S] [--jitter-secs J]
    /// [--mode both|push|poll] [--release] [--fault master-down] [--ipv6]`.
    pub fn parse(args: &[String]) -> Result<Opts> {
        let mut o = Opts {
            daily: false,
            versions: 10,
            poll_secs: 60,
            jitter_secs: 10,
            push: true,
            poll: true,
            release: false,
            master_down: false,
            ipv6: false,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut val = || it.next().with_context(|| format!("{a} needs a value"));
            match a.as_str() {
                "--size" => match val()?.as_str() {
                    "small" => o.daily = false,
                    "daily" => o.daily = true,
                    v => bail!("--size {v}: small or daily"),
                },
                "--versions" => o.versions = val()?.parse().context("--versions")?,
                "--poll-secs" => o.poll_secs = val()?.parse().context("--poll-secs")?,
                "--jitter-secs" => o.jitter_secs = val()?.parse().context("--jitter-secs")?,
                "--mode" => match val()?.as_str() {
                    "both" => (o.push, o.poll) = (true, true),
                    "push" => (o.push, o.poll) = (true, false),
                    "poll" => (o.push, o.poll) = (false, true),
                    v => bail!("--mode {v}: both, push or poll"),
                },
                "--release" => o.release = true,
                "--ipv6" => o.ipv6 = true,
                "--fault" => match val()?.as_str() {
                    "master-down" => o.master_down = true,
                    v => bail!("--fault {v}: master-down"),
                },
                other => bail!("unknown option {other}"),
            }
        }
        if o.versions == 0 || o.versions > 100 {
            bail!("--versions: 1 to 100");
        }
        if o.poll_secs == 0 {
            bail!("--poll-secs: at least 1");
        }
        Ok(o)
    }
}

/// One mirror of the network.
#[derive(Debug, Clone)]
struct Node {
    name: &'static str,
    tier: u8,
    ip: &'static str,
    parent: Option<&'static str>,
    /// Two processes (sigserver serving, sigupdate watch syncing) instead of one.
    two_process: bool,
}

const NODES: &[Node] = &[
    Node {
        name: "t1",
        tier: 1,
        ip: "10.77.0.11",
        parent: None,
        two_process: false,
    },
    Node {
        name: "t2a",
        tier: 2,
        ip: "10.77.0.21",
        parent: Some("t1"),
        two_process: true,
    },
    Node {
        name: "t2b",
        tier: 2,
        ip: "10.77.0.22",
        parent: Some("t1"),
        two_process: true,
    },
    Node {
        name: "t3a",
        tier: 3,
        ip: "10.77.0.31",
        parent: Some("t2a"),
        two_process: false,
    },
    Node {
        name: "t3b",
        tier: 3,
        ip: "10.77.0.32",
        parent: Some("t2a"),
        two_process: false,
    },
    Node {
        name: "t3c",
        tier: 3,
        ip: "10.77.0.33",
        parent: Some("t2b"),
        two_process: false,
    },
    Node {
        name: "t3d",
        tier: 3,
        ip: "10.77.0.34",
        parent: Some("t2b"),
        two_process: false,
    },
];

fn node(name: &str) -> &'static Node {
    NODES.iter().find(|n| n.name == name).unwrap_or(&NODES[0])
}

/// The host end of node `i`'s veth.
fn veth(i: usize) -> String {
    format!("tiersv{i}")
}

/// Everything a run creates under fixed names: removed on a signal, and at the start
/// of a run when an earlier one was killed (module `netns`).
pub(crate) fn footprint() -> Footprint {
    Footprint {
        tool: "tiers",
        namespaces: NODES
            .iter()
            .map(|n| format!("{NS_PREFIX}{}", n.name))
            .collect(),
        links: std::iter::once(BRIDGE.to_owned())
            .chain((0..NODES.len()).map(veth))
            .collect(),
        state_prefix: WORK_PREFIX,
        programs: &["sigserver", "sigupdate", "freshclam"],
    }
}

fn serve_url(n: &Node) -> String {
    format!("http://{}:8080", host(n.ip))
}

/// Where a node takes notices: its own listener (one process) or `sigupdate watch`'s.
fn push_url(n: &Node) -> String {
    if n.two_process {
        format!("http://{}:8081/push", host(n.ip))
    } else {
        format!("http://{}:8080/push", host(n.ip))
    }
}

/// Runs the harness.
pub fn run(root: &Path, o: &Opts) -> Result<()> {
    if !is_root() {
        bail!("cargo xtask tiers needs root (network namespaces)");
    }
    if Command::new("ip").arg("-V").output().is_err() {
        bail!("cargo xtask tiers needs iproute2 (`ip`)");
    }
    let _ = root;
    IPV6.store(o.ipv6, std::sync::atomic::Ordering::Relaxed);
    // One run at a time: the bridge and namespace names are fixed, and a second run
    // would remove the first one's network (held until this process ends).
    let lock_path = std::env::temp_dir().join("xtask-tiers.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        bail!(
            "another `cargo xtask tiers` is running (lock {})",
            lock_path.display()
        );
    }
    // Ctrl-C or SIGTERM: children stopped, network and work directories removed.
    interrupt::install("xtask tiers")?;
    let footprint = footprint();
    footprint.clear_stale()?;
    interrupt::on_stop(move || footprint.remove());
    // Dev binaries (what the tests build) unless --release asks for what an installed
    // mirror runs.
    let bins = if o.release {
        Binaries::build_release()?
    } else {
        Binaries::build()?
    };
    println!(
        "tiers: building the histories ({} database, {} versions)",
        if o.daily { "daily-sized" } else { "small" },
        o.versions
    );
    let keys = PublisherKeys::test();
    let t = Instant::now();
    let tiers = if o.daily {
        History::synthetic_sized(DB, o.versions + 1, &keys, 110 << 20)?
    } else {
        History::synthetic(DB, o.versions + 1, &keys)?
    };
    let official = History::official(&testkit::official_vectors())?;
    let size = tiers.release(1).map_or(0, |r| r.cvd().len());
    println!(
        "tiers: {DB}.cvd is {:.1} MB ({:.1}s to build)",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let net = interrupt::step(Net::create)?;
    if o.master_down {
        let s = run_mode(&bins, o, true, &tiers, &official, &keys)?;
        drop(net);
        crate::tiers_fault::report(&s, o);
        return Ok(());
    }
    let mut summary = Vec::new();
    let mut push_stats = None;
    let mut poll_stats = None;
    if o.push {
        let s = run_mode(&bins, o, true, &tiers, &official, &keys)?;
        summary.push(("push", s.clone()));
        push_stats = Some(s);
    }
    if o.poll {
        let s = run_mode(&bins, o, false, &tiers, &official, &keys)?;
        summary.push(("poll", s.clone()));
        poll_stats = Some(s);
    }
    drop(net);
    println!();
    println!("seconds from the origin's publish to each mirror serving the new version");
    println!("mode  tier  mirrors  samples   p50     p95     max");
    for (mode, s) in &summary {
        for tier in 1..=3u8 {
            let v = s.get(&tier).cloned().unwrap_or_default();
            println!(
                "{mode:<5} {tier:>4}  {:>7}  {:>7}  {:>6.2}  {:>6.2}  {:>6.2}",
                NODES.iter().filter(|n| n.tier == tier).count(),
                v.len(),
                pct(&v, 50.0),
                pct(&v, 95.0),
                pct(&v, 100.0)
            );
        }
    }
    let f = |s: &Option<BTreeMap<u8, Vec<f64>>>, p: f64| {
        s.as_ref()
            .and_then(|s| s.get(&3))
            .map_or_else(|| "n/a".to_owned(), |v| format!("{:.2}", pct(v, p)))
    };
    println!(
        "tiers: push tier3 p50={} p95={} max={}; poll tier3 p50={} max={}",
        f(&push_stats, 50.0),
        f(&push_stats, 95.0),
        f(&push_stats, 100.0),
        f(&poll_stats, 50.0),
        f(&poll_stats, 100.0)
    );
    Ok(())
}

pub(crate) fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((p / 100.0) * (s.len() as f64 - 1.0)).round() as usize;
    s[i.min(s.len() - 1)]
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The bridge and the namespaces; removed on drop.
struct Net;

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Net {
    fn create() -> Result<Net> {
        Net::remove();
        ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        let net = Net;
        add_addr(None, ORIGIN_IP, BRIDGE)?;
        ip(&["link", "set", BRIDGE, "up"])?;
        for (i, n) in NODES.iter().enumerate() {
            let ns = format!("{NS_PREFIX}{}", n.name);
            let host_if = veth(i);
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &host_if, "master", BRIDGE, "up"])?;
            add_addr(Some(&ns), n.ip, "eth0")?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    fn remove() {
        footprint().remove();
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        Net::remove();
    }
}

/// Writes `db` at version `v` into the origin directory the way an upstream publishes:
/// the immutable files first (cdiffs, `.sign`s), then `<db>.cvd`, each by rename.
fn publish(dir: &Path, h: &History, v: u32) -> Result<()> {
    let db = h.name();
    let put = |name: &str, bytes: &[u8]| -> Result<()> {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join(name)).with_context(|| format!("renaming {name}"))
    };
    for k in h.first_version()..=v {
        let Some(r) = h.release(k) else { continue };
        if let Some(c) = r.cdiff()
            && !dir.join(format!("{db}-{k}.cdiff")).exists()
        {
            put(&format!("{db}-{k}.cdiff"), c)?;
            if let Some(s) = r.cdiff_sign() {
                put(&format!("{db}-{k}.cdiff.sign"), s)?;
            }
        }
    }
    let r = h
        .release(v)
        .with_context(|| format!("{db} has no version {v}"))?;
    if let Some(s) = r.cvd_sign() {
        put(&format!("{db}-{v}.cvd.sign"), s)?;
    }
    put(&format!("{db}.cvd"), r.cvd())
}

fn write_manifest(dir: &Path, versions: &BTreeMap<String, u32>) -> Result<()> {
    let text = mirror_core::manifest::render(versions, SystemTime::now());
    let tmp = dir.join(".dns.txt.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join("dns.txt"))?;
    Ok(())
}

/// The versions a mirror serves now (its `/dns.txt`), empty when it cannot say. (A
/// plain HTTP/1.0 GET: `e2e::http_get` only talks to loopback.)
fn served(ip: &str) -> BTreeMap<String, u32> {
    use std::io::{Read, Write};
    let Ok(addr) = format!("{}:8080", host(ip)).parse::<SocketAddr>() else {
        return BTreeMap::new();
    };
    let get = || -> std::io::Result<Vec<u8>> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /dns.txt HTTP/1.0\r\nHost: m\r\n\r\n")?;
        let mut raw = Vec::new();
        s.take(1 << 20).read_to_end(&mut raw)?;
        Ok(raw)
    };
    let Ok(raw) = get() else {
        return BTreeMap::new();
    };
    let text = String::from_utf8_lossy(&raw);
    match text.split_once("\r\n\r\n") {
        Some((head, body))
            if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") =>
        {
            mirror_core::manifest::parse(body, SystemTime::now()).unwrap_or_default()
        }
        _ => BTreeMap::new(),
    }
}

fn now_ms() -> u64 {
    push::hub::now_ms()
}

/// The processes of one mode's network.
struct Mirrors {
    _children: Vec<Child>,
}

fn run_mode(
    bins: &Binaries,
    o: &Opts,
    push_mode: bool,
    tiers: &History,
    official: &History,
    keys: &PublisherKeys,
) -> Result<BTreeMap<u8, Vec<f64>>> {
    let mode = if push_mode { "push" } else { "poll" };
    println!(
        "\ntiers: {mode} run: 7 mirrors, poll every {}s (+ up to {}s jitter){}",
        o.poll_secs,
        o.jitter_secs,
        if push_mode {
            ", push notices on"
        } else {
            ", no notices"
        }
    );
    // Kept when the run fails (the logs are there) until the next run, removed when
    // it succeeds or a signal stops it.
    let work = tempfile::Builder::new()
        .prefix(WORK_PREFIX)
        .tempdir()?
        .keep();
    interrupt::remove_on_stop(&work);
    let w = work.as_path();
    let origin_dir = w.join("origin");
    std::fs::create_dir_all(&origin_dir)?;
    // Secrets: one per sending level.
    for k in ["origin", "t1", "t2"] {
        std::fs::write(
            w.join(format!("{k}.key")),
            format!("{k} secret of the tiers harness\n"),
        )?;
    }
    let key_file = w.join("tiers-keys.pem");
    std::fs::write(&key_file, keys.public_pem()?)?;
    // Initial state: tiers 1, test 3.
    let mut test_v = 3u32;
    publish(&origin_dir, tiers, 1)?;
    publish(&origin_dir, official, test_v)?;
    write_manifest(
        &origin_dir,
        &BTreeMap::from([(DB.to_owned(), 1), ("test".to_owned(), test_v)]),
    )?;
    let mut children = Vec::new();
    let log = |name: &str| -> Result<std::fs::File> {
        Ok(std::fs::File::create(w.join(format!("{name}.log")))?)
    };
    let mut origin = Command::new(&bins.sigserver);
    origin
        .arg("--dir")
        .arg(&origin_dir)
        .args([
            "--listen",
            &format!("{}:8000", host(ORIGIN_IP)),
            "--access-log=false",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log("origin")?);
    if o.master_down {
        origin.args(crate::tiers_fault::origin_args(&host(ORIGIN_IP)));
    }
    children.push(interrupt::step(|| {
        Child::spawn("origin sigserver", &mut origin)
    })?);
    let root_cert = testkit::official_vectors().join("clamav-test-root.crt");
    let mut t1_child = 0;
    let poll = o.poll_secs.to_string();
    let jitter = o.jitter_secs.to_string();
    // Tier by tier, so that each starts from a published parent.
    for tier in 1..=3u8 {
        for n in NODES.iter().filter(|n| n.tier == tier) {
            let dir = w.join(n.name);
            std::fs::create_dir_all(&dir)?;
            let upstream = n.parent.map_or_else(
                || format!("http://{}:8000", host(ORIGIN_IP)),
                |p| serve_url(node(p)),
            );
            // The sender is the parent (by its mirror name); one secret per tier level.
            let sender = n.parent.unwrap_or("origin");
            let sender_key = n
                .parent
                .map_or("origin", |p| if node(p).tier == 1 { "t1" } else { "t2" });
            let key_of = |k: &str| w.join(format!("{k}.key"));
            let children_of: Vec<String> = NODES
                .iter()
                .filter(|c| c.parent == Some(n.name))
                .map(push_url)
                .collect();
            let mut push_args: Vec<String> = Vec::new();
            if push_mode {
                push_args.push("--push-sender".into());
                push_args.push(format!("{sender}={}", key_of(sender_key).display()));
                if !children_of.is_empty() {
                    push_args.push("--push-downstream".into());
                    push_args.push(children_of.join(","));
                    push_args.push("--push-key".into());
                    let own = if tier == 1 { "t1" } else { "t2" };
                    push_args.push(key_of(own).display().to_string());
                    push_args.push("--push-url".into());
                    push_args.push(serve_url(n));
                }
                if n.two_process {
                    push_args.push("--push-listen".into());
                    push_args.push(format!("{}:8081", host(n.ip)));
                }
            }
            let mut mirror_args: Vec<String> = [
                "--upstream",
                &upstream,
                "--db",
                "test,tiers",
                "--no-dns",
                "--sign-root",
                &root_cert.display().to_string(),
                "--verify-time",
                VERIFY_TIME,
                "--mirror-name",
                n.name,
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            if o.master_down && tier == 2 {
                crate::tiers_fault::tier2_args(&mut mirror_args, &host(ORIGIN_IP));
            }
            let ns = format!("{NS_PREFIX}{}", n.name);
            let in_ns = |program: &Path| {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns]).arg(program);
                c.stdin(Stdio::null()).stdout(Stdio::null());
                c
            };
            let listen = format!("{}:8080", host(n.ip));
            if n.two_process {
                let mut srv = in_ns(&bins.sigserver);
                srv.arg("--dir")
                    .arg(&dir)
                    .args(["--listen", &listen, "--access-log=false"]);
                srv.stderr(log(&format!("{}-sigserver", n.name))?);
                std::fs::create_dir_all(&dir)?;
                children.push(interrupt::step(|| Child::spawn(n.name, &mut srv))?);
                let mut watch = in_ns(&bins.sigupdate);
                watch
                    .arg("watch")
                    .arg("--dir")
                    .arg(&dir)
                    .args(&mirror_args)
                    .args(&push_args);
                watch.args(["--interval-secs", &poll, "--jitter-secs", &jitter]);
                watch.env("SIGUPDATE_CUSTOM__tiers__KEYS", &key_file);
                watch.env("SIGUPDATE_CUSTOM__tiers__SIGN", "false");
                watch.env("SIGUPDATE_LOG", "info");
                watch.stderr(log(&format!("{}-watch", n.name))?);
                children.push(interrupt::step(|| Child::spawn(n.name, &mut watch))?);
            } else {
                let mut srv = in_ns(&bins.sigserver);
                srv.arg("--dir")
                    .arg(&dir)
                    .args(["--listen", &listen, "--access-log=false"]);
                srv.args(["--sync", "--sync-interval", &poll, "--sync-jitter", &jitter]);
                srv.args(&mirror_args).args(&push_args);
                srv.env("SIGSERVER_CUSTOM__tiers__KEYS", &key_file);
                srv.env("SIGSERVER_CUSTOM__tiers__SIGN", "false");
                srv.stderr(log(n.name)?);
                children.push(interrupt::step(|| Child::spawn(n.name, &mut srv))?);
            }
            if n.tier == 1 {
                t1_child = children.len() - 1;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        for n in NODES.iter().filter(|n| n.tier == tier) {
            while served(n.ip).get(DB).copied() != Some(1) {
                if Instant::now() > deadline {
                    bail!(
                        "{} did not publish the initial version (logs in {})",
                        n.name,
                        w.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let mut t1 = Some(children.remove(t1_child));
    let _mirrors = Mirrors {
        _children: children,
    };
    println!("tiers: all 7 mirrors serve version 1");
    let origin_secret = push::auth::Secret::from_file(&w.join("origin.key"))?;
    let t1_push = push_url(node("t1"));
    let mut samples: BTreeMap<u8, Vec<f64>> = BTreeMap::new();
    let step_limit = if push_mode {
        Duration::from_secs(if o.daily { 180 } else { 60 })
    } else {
        Duration::from_secs(3 * (o.poll_secs + o.jitter_secs) + 120)
    };
    for v in 2..=o.versions + 1 {
        publish(&origin_dir, tiers, v)?;
        let mut versions = BTreeMap::from([(DB.to_owned(), v)]);
        if test_v < official.last_version() {
            test_v += 1;
            publish(&origin_dir, official, test_v)?;
        }
        versions.insert("test".to_owned(), test_v);
        write_manifest(&origin_dir, &versions)?;
        let t0 = Instant::now();
        let published_ms = now_ms();
        if push_mode {
            let notice = push::notice::Notice::new(
                "origin",
                Some(&format!("http://{}:8000", host(ORIGIN_IP))),
                versions.clone(),
                Vec::new(),
                published_ms,
                now_ms(),
            );
            let cascade = push::cascade::Cascade::new(
                vec![push::cascade::Downstream {
                    url: t1_push.clone(),
                    secret: origin_secret.clone(),
                }],
                "origin",
                push::cascade::CascadeConfig {
                    give_up_after: Duration::from_secs(10),
                    ..Default::default()
                },
                std::sync::Arc::new(|url: &str, a: &push::cascade::Attempt| {
                    if !matches!(a, push::cascade::Attempt::Delivered) {
                        eprintln!("tiers: notice to {url}: {a:?}");
                    }
                }),
            );
            // Sent in the background: its time is part of what is measured.
            drop(cascade.send(notice));
        }
        let alive: Vec<&Node> = NODES
            .iter()
            .filter(|n| t1.is_some() || n.tier != 1)
            .collect();
        let mut seen: BTreeMap<&str, f64> = BTreeMap::new();
        while seen.len() < alive.len() {
            for n in alive.iter().copied() {
                if !seen.contains_key(n.name) && served(n.ip).get(DB).copied() >= Some(v) {
                    seen.insert(n.name, t0.elapsed().as_secs_f64());
                }
            }
            if t0.elapsed() > step_limit {
                bail!(
                    "version {v}: only {:?} served it after {}s (logs in {})",
                    seen.keys().collect::<Vec<_>>(),
                    step_limit.as_secs(),
                    w.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let tier_max = |t: u8| {
            alive
                .iter()
                .filter(|n| n.tier == t)
                .map(|n| seen[n.name])
                .fold(0.0f64, f64::max)
        };
        println!(
            "tiers: {mode} version {v}: tier1 {:.2}s, tier2 {:.2}s, tier3 {:.2}s",
            tier_max(1),
            tier_max(2),
            tier_max(3)
        );
        if o.master_down && t1.is_some() {
            // the first version went through the whole network: now the master dies
            crate::tiers_fault::kill_master(t1.take());
            continue;
        }
        for n in alive {
            samples.entry(n.tier).or_default().push(seen[n.name]);
        }
    }
    drop(t1);
    if push_mode {
        interrupt::step(|| freshclam_at_tier3(w, official, test_v))?;
        trace_of_tier3(&w.join("t3a"))?;
    }
    drop(_mirrors);
    let _ = std::fs::remove_dir_all(w);
    Ok(samples)
}

/// Prints the way the last version took to `dir` (its published trace).
fn trace_of_tier3(dir: &Path) -> Result<()> {
    let layout = mirror_core::layout::MirrorLayout::new(dir);
    let g = layout
        .current_generation()?
        .context("t3a has nothing published")?;
    let t = mirror_core::trace::TraceRecord::read(&layout.generation(g))?
        .context("t3a's generation has no trace")?;
    if let Some(d) = t.databases.get(DB) {
        let first = d.hops.first().map_or(0, |h| h.published_ms);
        let way: Vec<String> = d
            .hops
            .iter()
            .map(|h| format!("{} +{}ms", h.mirror, h.published_ms.saturating_sub(first)))
            .collect();
        println!(
            "tiers: t3a's trace of {DB} {}: {}",
            d.version,
            way.join(" → ")
        );
    }
    Ok(())
}

/// Real freshclam clients update `test` from tier-3 mirror t3a: 1.4 from version 3
/// through cdiffs, strict 1.5.3 from empty. Skipped with a message when no client is
/// installed, except in CI.
fn freshclam_at_tier3(w: &Path, official: &History, want: u32) -> Result<()> {
    let certs = testkit::tools::test_root_certs_dir(w)?;
    let clients = testkit::tools::clamav_versions("freshclam", &certs);
    if clients.is_empty() {
        println!("tiers: freshclam step skipped: no freshclam installed");
        return Ok(());
    }
    let mirror = serve_url(node("t3a"));
    for c in &clients {
        let root: PathBuf = w.join(format!("freshclam-{}", c.version));
        let fc = Freshclam::for_client(c, &root, &mirror)?;
        let start = if fc.is_strict() {
            None
        } else {
            let r = official.release(3).context("test-3")?;
            fc.install("test.cvd", r.cvd())?;
            Some(3)
        };
        let out = fc.update("test")?;
        let got = fc.version("test");
        if got != Some(want) {
            bail!(
                "freshclam {} at tier 3 holds test {got:?}, not {want}:\n{}{}",
                c.version,
                out.stdout,
                out.stderr
            );
        }
        println!(
            "tiers: freshclam {} updated test {} -> {want} from tier-3 mirror {mirror}",
            c.version,
            start.map_or_else(|| "(empty)".to_owned(), |v: u32| v.to_string())
        );
    }
    Ok(())
}
