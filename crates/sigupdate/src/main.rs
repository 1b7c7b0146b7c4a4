//! `sigupdate`: verify, inspect, unpack, patch and mirror ClamAV signature databases.
//!
//! This file only parses arguments and maps results to exit codes; each subcommand
//! lives in its own module under `cmd/`. Exit codes are listed in [`exit`] and in
//! `ARCHITECTURE.md`.
#![forbid(unsafe_code)]

mod cmd;
mod config;
mod exit;
mod notify;
mod progress;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Verify, inspect, patch and mirror ClamAV signature databases (.cvd/.cld/.cdiff
/// and their ClamAV 1.5 .sign files).
///
/// Exit codes: 0 success; 1 a file, signature or chain did not verify; 2 usage,
/// configuration or local I/O error; 3 upstream unreachable; 4 rate-limited;
/// 5 another sync holds the lock.
#[derive(Debug, Parser)]
#[command(name = "sigupdate", version, propagate_version = true)]
struct Cli {
    /// More log output on stderr, one level per -v (warn, info, debug, debug with the
    /// HTTP/TLS/DNS libraries); sync and watch start one level up. RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fully verify databases: header, MD5, legacy RSA signature, .info (PSS) and a
    /// ClamAV 1.5 .sign file when one is found.
    Verify(cmd::verify::VerifyArgs),
    /// Show a database's header fields and members (name, size, SHA-256).
    Inspect(cmd::inspect::InspectArgs),
    /// Verify a database and extract its members into a directory.
    Unpack(cmd::unpack::UnpackArgs),
    /// Apply .cdiff patches to a .cvd/.cld and write the resulting .cld (signatures,
    /// versions and the result's .info are verified; nothing is written on failure).
    ApplyCdiff(cmd::apply_cdiff::ApplyCdiffArgs),
    /// Check that BASE + PATCHes give exactly the members of the signed CVD (exit 1
    /// with the first differing file and line when not).
    CheckChain(cmd::check_chain::CheckChainArgs),
    /// Bring a mirror directory up to date once: learn versions, download, verify
    /// everything, check the cdiff chain, publish atomically (DIR/current), prune.
    Sync(cmd::sync::SyncArgs),
    /// Sync now, then every interval (with jitter), or at once on SIGHUP/SIGUSR1, an
    /// accepted push notice (--push-listen) or a changed version record
    /// (--dns-watch-secs); notify downstreams after a publish (--push-downstream).
    Watch(cmd::watch::WatchArgs),
    /// Show the published snapshot (published_dir), versions and last errors.
    Status(cmd::status::StatusArgs),
    /// Print the effective configuration of sync/watch (same options) with the source
    /// of every value: default, file, environment variable or flag.
    #[command(after_help = cmd::config::CONFIG_HELP)]
    Config(cmd::watch::WatchArgs),
    /// Send a push notice now (a publisher announcing new versions to mirrors).
    Notify(cmd::notify::NotifyArgs),
}

fn init_logging(verbose: u8) {
    // At debug level the HTTP/TLS/DNS libraries' own internals drown what the mirror
    // does; they join in only at the next level.
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => {
            "debug,reqwest=info,hyper_util=info,rustls=info,hickory_proto=info,hickory_resolver=info"
        }
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Plain text without colours unless stderr is a terminal (journald, container
    // logs); JSON lines with SIGUPDATE_LOG_FORMAT=json.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    // A second initialisation can only fail in tests; logging is best effort.
    let _ = if notify::json_logs() {
        b.json().flatten_event(true).try_init()
    } else {
        b.try_init()
    };
}

fn run(cli: &Cli, cmd: &clap::Command, matches: &clap::ArgMatches) -> anyhow::Result<u8> {
    let inv = |sub| config::Invocation { cmd, matches, sub };
    match &cli.command {
        Command::Verify(args) => cmd::verify::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Unpack(args) => cmd::unpack::run(args),
        Command::ApplyCdiff(args) => cmd::apply_cdiff::run(args),
        Command::CheckChain(args) => cmd::check_chain::run(args),
        Command::Sync(args) => cmd::sync::run(args, inv("sync")),
        Command::Watch(args) => cmd::watch::run(args, inv("watch")),
        Command::Status(args) => cmd::status::run(args, inv("status")),
        Command::Config(args) => cmd::config::run(args, inv("config")),
        Command::Notify(args) => cmd::notify::run(args),
    }
}

fn main() -> ExitCode {
    if let Some(code) = cli_assets::generate_if_asked::<Cli>() {
        return code; // hidden `--generate-assets DIR`: man pages and completions
    }
    // The subcommands that read the configuration get their SIGUPDATE_* variables
    // attached before parsing (see `config`).
    let cmd = config::command(Cli::command());
    let parsed = cmd
        .clone()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)))
        .map_err(|e| {
            cli_config::name_env_in_error(&config::SPEC, e, std::env::args(), std::env::vars())
        });
    let (cli, matches) = match parsed {
        Ok(x) => x,
        Err(e) => {
            // `--help`/`--version` print to stdout and succeed; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE_OR_IO
            } else {
                exit::SUCCESS
            });
        }
    };
    // `sync` and `watch` report what they did at info level by default (one line per
    // database); the one-shot file commands stay quiet unless asked.
    let mirror_cmd = matches!(cli.command, Command::Sync(_) | Command::Watch(_));
    init_logging(cli.verbose.saturating_add(u8::from(mirror_cmd)));
    // A panic would be a bug; it must still not surface as Rust's exit code 101, which
    // scripts could not tell apart from the documented codes.
    // `AssertUnwindSafe`: nothing is used after a panic but the exit code.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&cli, &cmd, &matches))) {
        Ok(Ok(code)) => ExitCode::from(code),
        Ok(Err(e)) => {
            eprintln!("sigupdate: error: {e:#}");
            ExitCode::from(exit::USAGE_OR_IO)
        }
        Err(_) => {
            eprintln!("sigupdate: internal error (a bug: please report it)");
            ExitCode::from(exit::USAGE_OR_IO)
        }
    }
}
