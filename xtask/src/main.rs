//! Project automation (`cargo xtask <command>`), in Rust instead of shell scripts.
//!
//! - `cargo xtask demo`: the self-contained local demo of the whole mirror (upstream
//!   simulator, `sigupdate`, `sigserver`, and `freshclam` when installed); needs
//!   nothing outside the repository.
//! - `cargo xtask demo-format`: the container-format demo (build, verify, inspect a
//!   demo-key `.cvd`; damaged copies rejected).
//! - `cargo xtask fuzz [--seconds N]`: runs every `cargo fuzz` target under `fuzz/`
//!   briefly (installs `cargo-fuzz` when missing).
//!
//! Only `anyhow`, `tokio` (signals, for the demo's clean-up on Ctrl-C) and the
//! workspace's own crates are used: argument parsing is a few lines by hand.
#![forbid(unsafe_code)]

mod demo;
mod fuzz;
mod interrupt;
mod mirror_demo;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  demo                  the whole mirror, locally: an upstream simulator publishing a
                        demo-key database, sigupdate syncing it, sigserver serving
                        it, the mirror following new versions and refusing an
                        inconsistent one, and a real freshclam updating (if installed)
  demo-format           build a small database signed with a demo key, verify and
                        inspect it, and show a damaged copy being rejected
  fuzz [--seconds N]    run every cargo-fuzz target under fuzz/ for N seconds each
                        (default 30); installs cargo-fuzz when missing
";

/// The workspace root (the parent of this crate's directory).
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") if args.len() == 1 => mirror_demo::run(),
        Some("demo-format") if args.len() == 1 => demo::run(&workspace_root()),
        Some("fuzz") => match fuzz::parse_seconds(&args[1..]) {
            Ok(seconds) => fuzz::run(&workspace_root(), seconds),
            Err(e) => {
                eprintln!("xtask fuzz: {e}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
