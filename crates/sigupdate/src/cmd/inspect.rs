//! `sigupdate inspect FILE [--json]`: header fields and members (name, size, SHA-256).
//!
//! The container is fully verified first (the listing comes from the same streaming
//! pass); a container that does not verify is reported like `verify` does (exit 1).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use cvd_format::{CheckStatus, Compression, Report, VerifyOptions};
use serde::Serialize;

use crate::exit;

/// Arguments of `sigupdate inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The container (.cvd or .cld).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The JSON document printed by `inspect --json`.
#[derive(Debug, Serialize)]
struct Inspection {
    file: String,
    name: String,
    header: HeaderJson,
    compression: &'static str,
    body_size: u64,
    body_md5: String,
    checks: ChecksJson,
    members: Vec<MemberJson>,
}

#[derive(Debug, Serialize)]
struct HeaderJson {
    build_time: String,
    version: u32,
    signatures: u32,
    flevel: u32,
    md5: Option<String>,
    dsig: Option<String>,
    builder: String,
    sign_time: Option<i64>,
}

#[derive(Debug, Serialize)]
struct ChecksJson {
    md5: &'static str,
    legacy_signature: &'static str,
    info_signature: &'static str,
    info_header: &'static str,
    info_entries: &'static str,
}

#[derive(Debug, Serialize)]
struct MemberJson {
    name: String,
    size: u64,
    sha256: String,
}

use cvd_format::hex;

fn status(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Passed => "passed",
        CheckStatus::NotPresent => "not present",
        _ => "unknown",
    }
}

fn inspection(args: &InspectArgs, r: &Report) -> Inspection {
    let h = &r.header;
    Inspection {
        file: args.file.display().to_string(),
        name: r.name.clone(),
        header: HeaderJson {
            build_time: h
                .build_time
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| h.build_time.to_string()),
            version: h.version,
            signatures: h.signatures,
            flevel: h.flevel,
            md5: h.md5.map(|m| hex(&m)),
            dsig: h.dsig.clone(),
            builder: h.builder.clone(),
            sign_time: h.sign_time,
        },
        compression: match r.compression {
            Compression::Gzip => "gzip",
            Compression::None => "none",
        },
        body_size: r.body_size,
        body_md5: hex(&r.body_md5),
        checks: ChecksJson {
            md5: status(r.checks.md5),
            legacy_signature: status(r.checks.legacy_signature),
            info_signature: status(r.checks.info_signature),
            info_header: status(r.checks.info_header),
            info_entries: status(r.checks.info_entries),
        },
        members: r
            .members
            .iter()
            .map(|m| MemberJson {
                name: m.name.clone(),
                size: m.size,
                sha256: hex(&m.sha256),
            })
            .collect(),
    }
}

/// Runs the command; returns the exit code.
pub fn run(args: &InspectArgs) -> Result<u8> {
    let report = match cvd_format::verify_file(&args.file, &VerifyOptions::new()) {
        Ok(r) => r,
        Err(e) => {
            let code = exit::for_cvd_error(&e);
            match e.failed_check() {
                Some(check) => println!(
                    "{}: FAILED {check}: {}",
                    args.file.display(),
                    mirror_core::Chain(&e)
                ),
                None => eprintln!("sigupdate: error: {}", mirror_core::Chain(&e)),
            }
            return Ok(code);
        }
    };
    let doc = inspection(args, &report);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &doc).context("writing JSON")?;
        writeln!(out).context("writing to stdout")?;
    } else {
        let h = &doc.header;
        let mut text = format!(
            "File:         {}\nDatabase:     {}\nBuild time:   {}\nVersion:      {}\n\
             Signatures:   {}\nF-level:      {}\nMD5:          {}\nBuilder:      {}\n\
             Sign time:    {}\nCompression:  {}\nBody size:    {}\n\
             Checks:       md5 {}, legacy signature {}, .info signature {}, .info header {}, .info entries {}\n\
             Members:      {}\n",
            doc.file,
            doc.name,
            h.build_time,
            h.version,
            h.signatures,
            h.flevel,
            h.md5.as_deref().unwrap_or("X"),
            h.builder,
            h.sign_time
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
            doc.compression,
            doc.body_size,
            doc.checks.md5,
            doc.checks.legacy_signature,
            doc.checks.info_signature,
            doc.checks.info_header,
            doc.checks.info_entries,
            doc.members.len(),
        );
        for m in &doc.members {
            text.push_str(&format!("  {:<24} {:>10}  {}\n", m.name, m.size, m.sha256));
        }
        out.write_all(text.as_bytes())
            .context("writing to stdout")?;
    }
    Ok(exit::SUCCESS)
}
