//! `sigupdate check-chain CVD BASE PATCH...`: the chain-consistency check a mirror runs
//! before publishing — do BASE + PATCHes give exactly the members of the signed CVD?
//!
//! Prints `consistent: <db> version <N>` (exit 0), or `DIFFERS: <file> line <n>:
//! <what>` for the first differing file and line (exit 1). A container, patch or chain
//! that does not verify also exits 1; usage or local I/O errors exit 2.

use std::path::PathBuf;

use anyhow::Result;
use cdiff::chain::{self, Consistency};

use crate::cmd::apply_cdiff::{KeyArgs, code_for, read_patches};
use crate::exit;

/// Arguments of `sigupdate check-chain`.
#[derive(Debug, clap::Args)]
pub struct CheckChainArgs {
    /// The signed .cvd of the newest version (what the mirror serves).
    #[arg(value_name = "CVD")]
    pub cvd: PathBuf,

    /// The base database (.cvd or .cld) the patches start from.
    #[arg(value_name = "BASE")]
    pub base: PathBuf,

    /// The patches, in version order.
    #[arg(required = true, value_name = "PATCH")]
    pub patches: Vec<PathBuf>,

    #[command(flatten)]
    pub keys: KeyArgs,
}

/// Runs the subcommand; returns the exit code.
pub fn run(args: &CheckChainArgs) -> Result<u8> {
    let opts = args.keys.options()?;
    let open = |path: &PathBuf| {
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .map_err(|e| cdiff::Error::Io {
                path: path.clone(),
                source: e,
            })
    };
    let result = (|| {
        let patches = read_patches(&args.patches, &opts)?;
        chain::check(open(&args.cvd)?, open(&args.base)?, &patches, &opts)
    })();
    match result {
        Ok(Consistency::Consistent { version }) => {
            println!(
                "consistent: {} + {} patch(es) == {} (version {version})",
                args.base.display(),
                args.patches.len(),
                args.cvd.display()
            );
            Ok(exit::SUCCESS)
        }
        Ok(Consistency::Differs(d)) => {
            println!("DIFFERS: {d}");
            Ok(exit::VERIFY_FAILED)
        }
        Ok(other) => {
            println!("DIFFERS: {other:?}");
            Ok(exit::VERIFY_FAILED)
        }
        Err(e) => {
            eprintln!("sigupdate check-chain: FAILED: {}", mirror_core::Chain(&e));
            Ok(code_for(&e))
        }
    }
}
