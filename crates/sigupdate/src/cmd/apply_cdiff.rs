//! `sigupdate apply-cdiff BASE PATCH... -o OUT.cld`: apply a chain of `.cdiff` patches
//! to a `.cvd`/`.cld` and write the resulting `.cld`.
//!
//! The base is fully verified, every patch's signature is verified (CDIFF key) before it
//! is decompressed, patches must continue the version one by one (no gap, duplicate or
//! reordering), and the result's `.info` must verify and match its members. The output
//! is written to a temporary file next to `OUT`, verified, then renamed: on any failure
//! nothing is written.
//!
//! Exit code: 0 written; 1 a container, patch, signature or chain did not verify; 2
//! usage or local I/O error.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cdiff::chain::{self, ChainOptions, PatchInput};

use crate::exit;

/// Arguments of `sigupdate apply-cdiff`.
#[derive(Debug, clap::Args)]
pub struct ApplyCdiffArgs {
    /// The base database (.cvd or .cld).
    #[arg(value_name = "BASE")]
    pub base: PathBuf,

    /// The patches, in version order (`<db>-<N+1>.cdiff` ... `<db>-<M>.cdiff`).
    #[arg(required = true, value_name = "PATCH")]
    pub patches: Vec<PathBuf>,

    /// Where to write the resulting .cld.
    #[arg(short, long, value_name = "OUT.cld")]
    pub output: PathBuf,

    #[command(flatten)]
    pub keys: KeyArgs,
}

/// Trust anchors (default: the official ClamAV keys).
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// Public key (PEM) that verifies .cdiff signatures, instead of the official one.
    #[arg(long, value_name = "PEM")]
    pub cdiff_key: Option<PathBuf>,

    /// Public key (PEM) that verifies `.info` DSIG lines, instead of the official one.
    #[arg(long, value_name = "PEM")]
    pub info_key: Option<PathBuf>,

    /// Public key (PEM) that verifies legacy .cvd signatures, instead of the official one.
    #[arg(long, value_name = "PEM")]
    pub cvd_key: Option<PathBuf>,
}

impl KeyArgs {
    /// The chain options with the selected keys.
    pub fn options(&self) -> Result<ChainOptions> {
        let mut keys = cvd_format::KeySet::official();
        let load = |path: &PathBuf| -> Result<cvd_format::PublicKey> {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading key {}", path.display()))?;
            cvd_format::PublicKey::from_public_key_pem(&pem)
                .with_context(|| format!("parsing key {}", path.display()))
        };
        if let Some(p) = &self.cdiff_key {
            keys.cdiff = load(p)?;
        }
        if let Some(p) = &self.info_key {
            keys.info = load(p)?;
        }
        if let Some(p) = &self.cvd_key {
            keys.cvd = load(p)?;
        }
        Ok(ChainOptions::new().keys(keys))
    }
}

/// Reads the patch files (size-capped).
pub fn read_patches(
    paths: &[PathBuf],
    opts: &ChainOptions,
) -> Result<Vec<PatchInput>, cdiff::Error> {
    paths
        .iter()
        .map(|p| PatchInput::read(p, opts.limit_values()))
        .collect()
}

/// Exit code for a `cdiff` error.
pub fn code_for(err: &cdiff::Error) -> u8 {
    if err.is_verification_failure() {
        exit::VERIFY_FAILED
    } else {
        exit::USAGE_OR_IO
    }
}

/// Runs the subcommand; returns the exit code.
pub fn run(args: &ApplyCdiffArgs) -> Result<u8> {
    let opts = args.keys.options()?;
    let result = (|| {
        let patches = read_patches(&args.patches, &opts)?;
        let base = std::fs::File::open(&args.base).map_err(|e| cdiff::Error::Io {
            path: args.base.clone(),
            source: e,
        })?;
        let patched = chain::apply(std::io::BufReader::new(base), &patches, &opts)?;
        patched.write_cld(&args.output, &opts)?;
        Ok::<_, cdiff::Error>(patched)
    })();
    match result {
        Ok(p) => {
            println!(
                "{}: OK {} version {} (from version {}, {} patch{})",
                args.output.display(),
                p.name,
                p.version,
                p.base_version,
                args.patches.len(),
                if args.patches.len() == 1 { "" } else { "es" }
            );
            Ok(exit::SUCCESS)
        }
        Err(e) => {
            eprintln!("sigupdate apply-cdiff: FAILED: {}", mirror_core::Chain(&e));
            Ok(code_for(&e))
        }
    }
}
