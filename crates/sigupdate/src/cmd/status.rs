//! `sigupdate status --dir DIR [--json]`: what the mirror publishes and why the last
//! sync failed, from `DIR/status.json` overlaid with the generation `DIR/current`
//! points at (its files, and its own record of chain-unproven cdiffs).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use mirror_core::status::{MirrorStatus, MirrorView};
use mirror_core::trust::TrustSource;

use crate::config::Invocation;

/// Arguments of `sigupdate status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Mirror directory (or SIGUPDATE_DIR, or `dir` in the config file).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print JSON (the `status.json` document, `published_dir` filled in).
    #[arg(long)]
    pub json: bool,
    /// A database is provably behind when a newer version is known (upstream, push
    /// notice) and not published this many seconds later: sigserver's --ready-lag.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub ready_lag: u64,
}

/// Runs the command; the exit code is 0 (a missing or damaged `status.json` is reported
/// on stderr and what the published generation holds is shown), or 2 when the mirror
/// directory itself cannot be read.
pub fn run(args: &StatusArgs, inv: Invocation<'_>) -> Result<u8> {
    let dir = inv.dir(args.config.as_deref())?;
    let status = load(&dir)?;
    let targets = load_targets(&dir);
    let push = match push::state::PushState::read(&dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sigupdate status: {e}");
            None
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let lag = std::time::Duration::from_secs(args.ready_lag);
    let behind = push::behind::databases(&status, push.as_ref(), lag, now);
    let redirect = match push::behind::RedirectState::read(&dir) {
        // a record left by a sigserver that is gone says nothing
        Ok(Some(r)) if std::path::Path::new(&format!("/proc/{}", r.pid)).exists() => Some(r),
        Ok(_) => None,
        Err(e) => {
            eprintln!("sigupdate status: {e}");
            None
        }
    };
    let redirected = |db: &str| {
        redirect
            .as_ref()
            .filter(|r| r.redirected.contains_key(db))
            .map(|r| r.target.as_str())
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut doc = serde_json::to_value(&status)?;
        if let (Some(t), Some(obj)) = (&targets, doc.as_object_mut()) {
            obj.insert(
                "targets".into(),
                targets_json(t, status.generation.as_deref()),
            );
        }
        if let (Some(p), Some(obj)) = (&push, doc.as_object_mut()) {
            obj.insert("push".into(), serde_json::to_value(p)?);
        }
        if let Some(obj) = doc.as_object_mut() {
            let per_db: serde_json::Map<String, serde_json::Value> = behind
                .iter()
                .map(|d| {
                    let v = serde_json::json!({
                        "served_version": d.serving,
                        "newest_known_version": d.newest,
                        "behind_since": d.behind_since,
                        "provably_behind": d.provably_behind,
                        "redirect_active": redirected(&d.db).is_some(),
                        "redirect_target": redirected(&d.db),
                    });
                    (d.db.clone(), v)
                })
                .collect();
            obj.insert("behind".into(), serde_json::Value::Object(per_db));
        }
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(0);
    }
    match (&status.published_dir, &status.generation) {
        (Some(d), Some(g)) => writeln!(out, "published_dir: {} ({g})", d.display())?,
        (Some(d), None) => writeln!(out, "published_dir: {}", d.display())?,
        _ => writeln!(out, "published_dir: none (nothing published yet)")?,
    }
    if let Some(e) = &status.last_error {
        writeln!(out, "last error: {e}")?;
    }
    for (feed, f) in &status.feeds {
        let unverified = if f.unverified { " UNVERIFIED" } else { "" };
        for (file, st) in &f.files {
            let held = if st.published {
                format!(
                    "published ({} bytes, {})",
                    st.size.unwrap_or(0),
                    st.verification.as_deref().unwrap_or("?")
                )
            } else {
                "not published".to_owned()
            };
            let state = match (&st.last_error_kind, &st.last_error) {
                (Some(kind), Some(err)) => format!("FAILED [{kind}]: {err}"),
                _ => "ok".to_owned(),
            };
            writeln!(out, "feed {feed}{unverified} {file}: {held}, {state}")?;
        }
    }
    for (name, db) in &status.databases {
        let version = db
            .published_version
            .map_or_else(|| "none".to_owned(), |v| v.to_string());
        let upstream = db
            .upstream_version
            .map_or_else(String::new, |v| format!(" (upstream {v})"));
        let state = match (&db.last_error_kind, &db.last_error) {
            (Some(kind), Some(err)) => format!("FAILED [{kind}]: {err}"),
            (None, Some(err)) => format!("FAILED: {err}"),
            _ => "ok".to_owned(),
        };
        let unproven = match db.unproven_cdiffs.as_slice() {
            [] => String::new(),
            [one] => format!(" ({one} signature-verified but chain-unproven)"),
            [lo, .., hi] => format!(
                " ({} signature-verified but chain-unproven: {lo}..{hi})",
                db.unproven_cdiffs.len()
            ),
        };
        writeln!(
            out,
            "{name}: version {version}{upstream}, {} cdiffs{unproven}, {state}",
            db.cdiffs.len()
        )?;
    }
    for d in &behind {
        let Some(since) = d.behind_since else {
            continue;
        };
        let served = d
            .serving
            .map_or_else(|| "nothing".to_owned(), |v| format!("version {v}"));
        let how = if d.provably_behind {
            "provably behind"
        } else {
            "behind, within the lag"
        };
        let redirects = match redirected(&d.db) {
            Some(t) => format!("redirects active to {t}"),
            None => "no redirects".to_owned(),
        };
        writeln!(
            out,
            "{}: BEHIND: serves {served}, newest known version {} since {since} ({}s ago), {how}; {redirects}",
            d.db,
            d.newest.unwrap_or_default(),
            now.saturating_sub(since)
        )?;
    }
    if let Some(p) = &push {
        write_push(&mut out, p)?;
    }
    for (url, t) in targets.iter().flat_map(|t| &t.targets) {
        let holds = t.published_generation.as_deref().unwrap_or("nothing");
        if t.lagging(status.generation.as_deref()) {
            let why = t.last_error.as_deref().unwrap_or("not published yet");
            writeln!(
                out,
                "target {url}: LAGGING, holds {holds} ({} failed publishes in a row): {why}",
                t.consecutive_failures
            )?;
        } else {
            writeln!(out, "target {url}: up to date ({holds})")?;
        }
    }
    Ok(0)
}

/// The push state (`DIR/push.json`): announced and unconfirmed versions, and each
/// downstream's last result.
fn write_push(out: &mut impl Write, p: &push::state::PushState) -> Result<()> {
    let ago = |t: i64| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        format!("{}s ago", now.saturating_sub(t))
    };
    for (db, a) in &p.announced {
        writeln!(
            out,
            "{db}: version {} announced by {} {}, not published yet",
            a.version,
            a.sender,
            ago(a.since)
        )?;
    }
    for (db, a) in &p.unconfirmed {
        writeln!(
            out,
            "{db}: version {} announced by {} was not found upstream (unconfirmed, {})",
            a.version,
            a.sender,
            ago(a.since)
        )?;
    }
    for (url, d) in &p.downstreams {
        let last = d.last_success.map_or_else(|| "never".to_owned(), ago);
        match (&d.last_error, d.last_failure) {
            (Some(e), Some(f)) if d.consecutive_failures > 0 => writeln!(
                out,
                "downstream {url}: FAILING, last attempt {} ({} failed in a row, {} notices given up; last success {last}): {e}",
                ago(f),
                d.consecutive_failures,
                d.given_up
            )?,
            _ => writeln!(
                out,
                "downstream {url}: ok, {} notices delivered, last {last}",
                d.delivered
            )?,
        }
    }
    Ok(())
}

/// `DIR/targets.json`, the publish targets' state; an unreadable one is reported on
/// stderr and shown as none.
fn load_targets(dir: &std::path::Path) -> Option<mirror_core::targets::TargetsRecord> {
    match mirror_core::targets::TargetsRecord::read(dir) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "sigupdate: error: {} unusable ({e})",
                dir.join(mirror_core::targets::TARGETS_FILE).display()
            );
            None
        }
    }
}

/// The targets for `--json`: per URL the generation it holds, whether it lags behind
/// `local`, its last error and counters (the per-object record is left out).
fn targets_json(t: &mirror_core::targets::TargetsRecord, local: Option<&str>) -> serde_json::Value {
    let map = t
        .targets
        .iter()
        .map(|(url, s)| {
            let v = serde_json::json!({
                "published_generation": s.published_generation,
                "wanted_generation": s.wanted_generation,
                "lagging": s.lagging(local),
                "versions": s.versions,
                "last_attempt_unix": s.last_attempt_unix,
                "last_success_unix": s.last_success_unix,
                "last_error": s.last_error,
                "consecutive_failures": s.consecutive_failures,
                "conflicts": s.conflicts,
                "pending_deletes": s.pending_deletes.len(),
                "last_run": s.last_run,
            });
            (url.clone(), v)
        })
        .collect();
    serde_json::Value::Object(map)
}

/// Loads the mirror's status: `DIR/status.json` overlaid with the published generation
/// (its name, files and its own record of unproven cdiffs), which is the truth when a
/// sync died before writing its status or the file was lost or edited. A missing or
/// unreadable `status.json`, or a generation without a valid trust record, is reported
/// on stderr.
pub fn load(dir: &std::path::Path) -> Result<MirrorStatus> {
    let view = MirrorView::read(dir).with_context(|| format!("reading {}", dir.display()))?;
    let path = dir.join(mirror_core::status::STATUS_FILE);
    if let Some(e) = &view.status_error {
        eprintln!(
            "sigupdate: error: {} unusable ({e}); showing what the published generation holds",
            path.display()
        );
    }
    match &view.trust {
        Some(TrustSource::Record) | None => {}
        Some(TrustSource::LegacyStatus) => eprintln!(
            "sigupdate: warning: the published generation has no trust record (an older release published it); unproven cdiffs are taken from {}",
            path.display()
        ),
        Some(TrustSource::Corrupt(e)) => eprintln!(
            "sigupdate: error: {}; every published cdiff counts as chain-unproven",
            mirror_core::Chain(e)
        ),
        Some(_) => eprintln!(
            "sigupdate: error: the published generation has no trust record; every published cdiff counts as chain-unproven"
        ),
    }
    Ok(view.status)
}
