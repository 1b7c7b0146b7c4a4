//! `sigupdate unpack FILE DIR`: verify a container and extract its members.
//!
//! Extraction is all-or-nothing: members are written only after the whole container
//! verified (see `cvd_format::unpack`); names are checked to be flat, safe file names.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cvd_format::VerifyOptions;

use crate::exit;

/// Arguments of `sigupdate unpack`.
#[derive(Debug, clap::Args)]
pub struct UnpackArgs {
    /// The container (.cvd or .cld).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Destination directory (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Runs the command; returns the exit code.
pub fn run(args: &UnpackArgs) -> Result<u8> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating the destination directory {}", args.dir.display()))?;
    match cvd_format::unpack(&args.file, &args.dir, &VerifyOptions::new()) {
        Ok(report) => {
            println!(
                "{}: unpacked {} members of {} v{} into {}",
                args.file.display(),
                report.members.len(),
                report.name,
                report.header.version,
                args.dir.display()
            );
            Ok(exit::SUCCESS)
        }
        Err(e) => {
            match e.failed_check() {
                Some(check) => println!(
                    "{}: FAILED {check}: {}",
                    args.file.display(),
                    mirror_core::Chain(&e)
                ),
                None => eprintln!("sigupdate: error: {}", mirror_core::Chain(&e)),
            }
            Ok(exit::for_cvd_error(&e))
        }
    }
}
