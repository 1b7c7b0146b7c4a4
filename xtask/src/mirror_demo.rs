//! `cargo xtask demo`: the whole mirror, locally, in one command.
//!
//! 1. builds the real `sigupdate` and `sigserver` binaries (`$CARGO build -p sigupdate
//!    -p sigserver`);
//! 2. starts an upstream simulator on `127.0.0.1` (`testkit::upstream`) publishing a
//!    synthetic database `demo` signed with the DEMO/TEST key of `testkit::keys`
//!    and the official `test` database (the vectors vendored in
//!    `testdata/clamav-official`, `testkit::official_vectors()`), for the freshclam step;
//!    nothing outside the repository is needed;
//! 3. runs `sigupdate sync --no-dns` against it (the demo key is given to `sigupdate`
//!    as a custom database's key file), starts `sigserver` on the mirror directory;
//! 4. advances upstream a few versions and shows the mirror following: what was
//!    downloaded and verified, the published versions, what `sigserver` serves;
//! 5. shows the mirror refusing an inconsistent upstream (a hand-built `.cvd` that the
//!    published cdiff does not lead to: the 2013 incident) while it keeps serving;
//! 6. updates a real `freshclam` from the mirror when it is installed (freshclam trusts
//!    only the official keys, so this step needs the official vectors);
//! 7. stops everything: children are killed on every exit path (their guards' `Drop`),
//!    the work directory is removed; also when the demo is stopped by Ctrl-C, `SIGTERM`
//!    or `SIGHUP` ([`crate::interrupt`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use e2e::{Binaries, Freshclam, Sigserver, SyncOptions};

use crate::interrupt::{self, step as children};
use testkit::upstream::{History, Misbehaviour, PublisherKeys, Upstream};

/// Versions of the synthetic `demo` database the upstream will publish.
const DEMO_VERSIONS: u32 = 5;
/// The official test root expires in 2027: `.sign` files are verified at a pinned time.
const VERIFY_TIME: i64 = 1_767_225_600;

/// Removes the work directory when dropped (after the children's guards, declared
/// later, are dropped first).
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn step(n: u32, text: &str) {
    println!("\n== {n}. {text}");
}

/// Removes ANSI escape sequences (colours in a child's log).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, ended by a letter.
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Prints a child's log, indented.
fn show_log(text: &str) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        println!("   | {}", strip_ansi(line));
    }
}

fn sync(bins: &Binaries, dir: &Path, opts: &SyncOptions) -> Result<i32> {
    let out = children(|| e2e::sync(bins, dir, opts))?;
    show_log(&out.stderr);
    show_log(&out.stdout);
    let code = out.code.unwrap_or(-1);
    println!("   sigupdate sync exit code {code}");
    Ok(code)
}

fn show_status(bins: &Binaries, dir: &Path) -> Result<()> {
    let st = children(|| e2e::status(bins, dir))?;
    for (db, d) in &st.databases {
        let v = d
            .published_version
            .map_or_else(|| "none".to_owned(), |v| v.to_string());
        match &d.last_error {
            None => println!("   mirror: {db} version {v} published"),
            Some(e) => println!("   mirror: {db} version {v} still published; last error: {e}"),
        }
    }
    Ok(())
}

fn show_served(server: &Sigserver, db: &str) -> Result<()> {
    let r = server.get(&format!("/{db}.cvd"))?;
    let v = e2e::file_version_bytes(&r.body);
    println!(
        "   sigserver: GET /{db}.cvd -> {} ({} bytes, version {})",
        r.status,
        r.body.len(),
        v.map_or_else(|| "?".to_owned(), |v| v.to_string())
    );
    Ok(())
}

/// Runs the demo (the binaries are built in this workspace, the vectors are read from
/// `testkit::official_vectors()`).
pub fn run() -> Result<()> {
    println!("clamav-mirror demo: upstream simulator -> sigupdate -> sigserver -> clients");
    interrupt::install("xtask demo")?;
    let result = demo();
    interrupt::wait_if_stopping();
    result
}

fn demo() -> Result<()> {
    step(1, "building sigupdate and sigserver");
    let bins = children(Binaries::build).context("building the binaries")?;
    println!(
        "   {}\n   {}",
        bins.sigupdate.display(),
        bins.sigserver.display()
    );

    let work =
        WorkDir(std::env::temp_dir().join(format!("clamav-mirror-demo-{}", std::process::id())));
    interrupt::remove_on_stop(&work.0);
    std::fs::create_dir_all(&work.0).with_context(|| format!("creating {}", work.0.display()))?;
    let dir = work.0.join("mirror");

    step(2, "starting the upstream simulator");
    let keys = PublisherKeys::test();
    let demo = History::synthetic("demo", DEMO_VERSIONS, &keys)?;
    let vectors = testkit::official_vectors();
    let official = if vectors.join("test-1.cvd").is_file() {
        Some(History::official(&vectors)?)
    } else {
        None
    };
    let mut builder = Upstream::builder().database(demo, 1);
    if let Some(h) = &official {
        builder = builder.database(h.clone(), 1);
    }
    let mut upstream = builder.start()?;
    println!(
        "   {} publishes: {}",
        upstream.base_url(),
        upstream
            .databases()
            .iter()
            .map(|d| format!("{d} v{}", upstream.published(d).unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("   demo is signed with the DEMO/TEST key (testkit::keys); it protects nothing");

    // sigupdate learns the demo key from a config file: a custom database.
    let key_file = work.0.join("demo-keys.pem");
    std::fs::write(&key_file, keys.public_pem()?)?;
    let config = work.0.join("sigupdate.toml");
    std::fs::write(
        &config,
        format!(
            "[custom.demo]\nkeys = \"{}\"\nsign = false\n",
            key_file.display()
        ),
    )?;
    let mut opts = SyncOptions {
        upstreams: vec![upstream.base_url()],
        dbs: vec!["demo".into()],
        config: Some(config),
        // `sync` already logs at info: what was downloaded, verified and published.
        verbose: false,
        ..SyncOptions::default()
    };
    if official.is_some() {
        opts.dbs.push("test".into());
        opts.sign_roots.push(vectors.join("clamav-test-root.crt"));
        opts.verify_time = Some(VERIFY_TIME);
    }

    step(
        3,
        "first sync: sigupdate sync --no-dns (everything verified before publishing)",
    );
    println!("   each .cvd: header, MD5 of the body, legacy RSA signature, PSS-signed .info;");
    println!("   each .cdiff: PSS signature, then the chain check (published base + cdiffs");
    println!("   must reproduce the new .cvd byte for byte); .sign files: CMS chain to the root");
    let code = sync(&bins, &dir, &opts)?;
    if code != 0 {
        bail!("the first sync failed (exit code {code})");
    }
    show_status(&bins, &dir)?;

    step(4, "starting sigserver on the mirror directory");
    let server = children(|| Sigserver::start(&bins, &dir, &[]))?;
    println!("   sigserver listening on {}", server.url());
    let ready = server.get("/ready")?;
    println!("   GET /ready -> {} {}", ready.status, ready.text().trim());
    show_served(&server, "demo")?;

    step(5, "upstream publishes new versions; the mirror follows");
    for _ in 1..DEMO_VERSIONS - 1 {
        let moved = upstream.advance()?;
        for (db, v) in &moved {
            println!("   upstream: {db} version {v} (+ {db}-{v}.cdiff)");
        }
        sync(&bins, &dir, &opts)?;
        show_status(&bins, &dir)?;
        show_served(&server, "demo")?;
    }
    let manifest = server.get("/dns.txt")?;
    println!(
        "   GET /dns.txt -> {}",
        manifest.text().trim().replace('\n', " | ")
    );

    step(
        6,
        "upstream publishes an inconsistent set (the 2013 incident)",
    );
    upstream.advance()?;
    upstream.misbehave(Misbehaviour::InconsistentSet { db: "demo".into() })?;
    println!(
        "   upstream: demo.cvd version {} is hand-built; demo-{}.cdiff does not lead to it",
        upstream.published("demo").unwrap_or(0),
        upstream.published("demo").unwrap_or(0)
    );
    let code = sync(&bins, &dir, &opts)?;
    println!(
        "   -> the mirror refused it (exit code {code}) and keeps serving the last good state:"
    );
    show_status(&bins, &dir)?;
    show_served(&server, "demo")?;
    let metrics = server.get("/metrics")?.text();
    for line in metrics.lines().filter(|l| {
        l.starts_with("sigserver_mirror_sync_failures")
            || l.starts_with("sigserver_mirror_last_sync_failed")
    }) {
        println!("   /metrics: {line}");
    }
    upstream.behave()?;
    println!("   upstream repairs its set");
    sync(&bins, &dir, &opts)?;
    show_status(&bins, &dir)?;

    step(7, "a real freshclam updates from the mirror");
    freshclam_step(
        &bins,
        &dir,
        &server,
        &mut upstream,
        official.as_ref(),
        &opts,
        &work.0,
    )?;

    step(8, "stopping");
    let access = server.access_log();
    println!("   sigserver answered {} requests", access.len());
    let st = children(|| server.stop())?;
    println!(
        "   sigserver stopped ({st}); upstream simulator stopped; {} removed",
        work.0.display()
    );
    drop(upstream);
    println!("\ndone.");
    Ok(())
}

fn freshclam_step(
    bins: &Binaries,
    dir: &Path,
    server: &Sigserver,
    upstream: &mut Upstream,
    official: Option<&History>,
    opts: &SyncOptions,
    work: &Path,
) -> Result<()> {
    let Some(official) = official else {
        println!(
            "   skipped: freshclam trusts only the official ClamAV keys, and the official test vectors ({}) are not present",
            testkit::official_vectors().display()
        );
        return Ok(());
    };
    let Some(fc_bin) = testkit::tools::require("freshclam") else {
        return Ok(());
    };
    upstream.publish("test", official.last_version())?;
    println!(
        "   upstream: official test database at version {}",
        official.last_version()
    );
    sync(bins, dir, opts)?;
    let fc = Freshclam::new(&fc_bin, &work.join("freshclam"), &server.url())?;
    let Some(v1) = official.release(1) else {
        bail!("the official history has no version 1");
    };
    fc.install("test.cvd", v1.cvd())?;
    println!(
        "   freshclam holds test.cvd version 1; DatabaseMirror {}",
        server.url()
    );
    let before = server.access_log().len();
    let out = children(|| fc.update("test"))?;
    for line in out.stdout.lines().filter(|l| {
        l.contains("updated (version") || l.contains("up-to-date") || l.contains("ERROR")
    }) {
        println!("   | {line}");
    }
    // Access-log lines are written as responses end: wait for one per request
    // freshclam made (its verbose output shows each `> GET`).
    let requests = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("> GET "))
        .count();
    let log = server.wait_access(before + requests, std::time::Duration::from_secs(5));
    for a in log.iter().skip(before) {
        println!(
            "   sigserver: {} {} -> {} ({} bytes)",
            a.method, a.path, a.status, a.bytes
        );
    }
    match fc.version("test") {
        Some(v) => println!(
            "   freshclam now holds test version {v} (exit code {:?})",
            out.code
        ),
        None => println!(
            "   freshclam holds no test database (exit code {:?})",
            out.code
        ),
    }
    Ok(())
}
