//! Project automation (`cargo xtask <command>`), in Rust instead of shell scripts.
//!
//! - `cargo xtask demo`: the self-contained local demo of the whole mirror (upstream
//!   simulator, `sigupdate`, `sigserver`, and `freshclam` when installed); needs
//!   nothing outside the repository.
//! - `cargo xtask demo-format`: the container-format demo (build, verify, inspect a
//!   demo-key `.cvd`; damaged copies rejected).
//! - `cargo xtask fuzz [--seconds N] [--jobs J] [--only T,..]`: runs every (or the
//!   named) `cargo fuzz` target under `fuzz/` for N seconds, J at a time, and prints a
//!   table of executions and coverage (installs `cargo-fuzz` when missing).
//!
//! - `cargo xtask s3-crash [--kills N] [--seed S]`: SIGKILLs the publisher while it
//!   publishes to a SeaweedFS bucket, checking the bucket after each kill (module
//!   `s3_crash`).
//! - `cargo xtask dist [--profile P] [--no-image]`: the Debian package and the OCI
//!   image in `target/dist/` (module `dist`).
//! - `cargo xtask tiers [...]`: the propagation harness of a network of mirrors
//!   (module `tiers`); needs root. Stopped by a signal, it removes its network
//!   (modules `interrupt`, `netns`); `cargo xtask tiers-interrupt-check` proves it
//!   (module `tiers_check`).
//! - `cargo xtask light-check`: the libraries' minimal builds (`--no-default-features`)
//!   hold no async runtime, DNS or HTTP client, build, and their docs state their
//!   current dependency counts (module `light`).
//! - `cargo xtask dist-check`, `cargo xtask image-check`: install, use and purge the
//!   package; run the image's entrypoint in its unpacked root file system (module
//!   `dist_check`). Both need root.
//!
//! Only `anyhow`, `tokio` (signals, for the demo's clean-up on Ctrl-C), `serde_json`
//! (the OCI image layout) and the workspace's own crates are used: argument parsing
//! is a few lines by hand.
#![forbid(unsafe_code)]

mod demo;
mod dist;
mod dist_check;
mod fuzz;
mod interrupt;
mod light;
mod mirror_demo;
mod netns;
mod s3_crash;
mod tiers;
mod tiers_check;
mod tiers_fault;

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
  fuzz [--seconds N] [--jobs J] [--only T1,T2]
                        run every (or the named) cargo-fuzz target under fuzz/ for
                        N seconds each (default 30), J at a time (default 1); prints
                        executions and coverage; installs cargo-fuzz when missing
  dist [--profile P] [--no-image]
                        build target/dist/clamav-mirror_<version>_<arch>.deb and
                        (with buildah) target/dist/clamav-mirror-<version>.oci.tar;
                        P is the cargo profile of the binaries (default release)
  s3-crash [--kills N] [--seed S]
                        SIGKILL sigupdate N times (default 100) at random moments
                        while it publishes versions to a SeaweedFS bucket (WEED_BIN);
                        check the bucket's client view after each kill, a real
                        freshclam every tenth, and that the next publish converges
  light-check           the libraries' minimal builds (--no-default-features): no
                        async runtime, DNS or HTTP client in `cargo tree`, they
                        build, and the dependency counts in their docs are current
  dist-check            (root) install the .deb, run the installed binaries (sync from
                        a local upstream, serve), remove and purge it, check that only
                        the state directory is left
  tiers [--size small|daily] [--versions N] [--poll-secs S] [--jitter-secs J]
        [--mode both|push|poll] [--release] [--fault master-down] [--ipv6]
                        (root) seven mirrors in three tiers (1 -> 2 -> 4), each in its
                        own network namespace, fed by an origin that publishes N
                        versions: seconds until each tier serves each version, with
                        push notices and with polling only; freshclam at tier 3.
                        --ipv6: the network is IPv6 only (fd77::/64).
                        Ctrl-C/SIGTERM remove its namespaces, links, processes and
                        work directories; a run removes what a killed run left
  tiers-interrupt-check (root) stop `tiers` with SIGINT, SIGTERM and SIGKILL once
                        its network is up; check that nothing is left (or, after
                        SIGKILL, that the next run removes it and succeeds)
  image-check           (root) unpack the OCI archive and run its entrypoint chrooted
                        into it in a new network namespace: sync, then serve
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
        Some("fuzz") => match fuzz::parse_args(&args[1..]) {
            Ok(fuzz_args) => fuzz::run(&workspace_root(), &fuzz_args),
            Err(e) => {
                eprintln!("xtask fuzz: {e}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        Some("dist") => match dist::Opts::parse(&args[1..]) {
            Ok(opts) => dist::dist(&workspace_root(), &opts),
            Err(e) => {
                eprintln!("xtask dist: {e}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        Some("tiers") => match tiers::Opts::parse(&args[1..]) {
            Ok(opts) => tiers::run(&workspace_root(), &opts),
            Err(e) => {
                eprintln!("xtask tiers: {e:#}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        Some("tiers-interrupt-check") if args.len() == 1 => tiers_check::run(),
        Some("s3-crash") => match s3_crash::parse(&args[1..]) {
            Ok((kills, seed)) => s3_crash::run(kills, seed),
            Err(e) => Err(e),
        },
        Some("light-check") if args.len() == 1 => light::run(&workspace_root()),
        Some("dist-check") if args.len() == 1 => dist_check::dist_check(&workspace_root()),
        Some("image-check") if args.len() == 1 => dist_check::image_check(&workspace_root()),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // A signal's clean-up (module `interrupt`) ends the process itself.
    interrupt::wait_if_stopping();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
