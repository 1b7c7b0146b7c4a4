//! `sigupdate status --dir DIR [--json]`: what the mirror publishes and why the last
//! sync failed, from `DIR/status.json` and `DIR/current`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use mirror_core::layout::MirrorLayout;
use mirror_core::status::MirrorStatus;

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
}

/// Runs the command; the exit code is 0, or 2 when the status cannot be read.
pub fn run(args: &StatusArgs, inv: Invocation<'_>) -> Result<u8> {
    let status = load(&inv.dir(args.config.as_deref())?)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &status)?;
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
    Ok(0)
}

/// Loads `DIR/status.json`; `published_dir` and `generation` are taken from
/// `DIR/current` itself, which is the truth when a sync died before writing its status.
pub fn load(dir: &std::path::Path) -> Result<MirrorStatus> {
    let mut status = MirrorStatus::load(dir).with_context(|| {
        format!(
            "reading {}",
            dir.join(mirror_core::status::STATUS_FILE).display()
        )
    })?;
    let layout = MirrorLayout::new(dir);
    let current = layout
        .current_generation()
        .with_context(|| format!("reading {}", layout.current().display()))?;
    status.generation = current.map(|g| g.dir_name());
    status.published_dir =
        current.map(|_| std::path::absolute(layout.current()).unwrap_or_else(|_| layout.current()));
    if current.is_some() {
        let snap = mirror_core::model::Snapshot::read(&layout.current())
            .with_context(|| format!("reading {}", layout.current().display()))?;
        for (name, held) in snap.databases {
            let s = status.databases.entry(name).or_default();
            s.published_version = held.version;
            s.cdiffs = held.cdiffs.into_keys().collect();
            // status.json may over-report after a crash; what is published decides
            let cdiffs = &s.cdiffs;
            s.unproven_cdiffs.retain(|v| cdiffs.contains(v));
        }
    }
    Ok(status)
}
