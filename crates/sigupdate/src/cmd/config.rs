//! `sigupdate config [--config FILE] [options of sync/watch]`: print the effective
//! configuration, each value followed by where it came from (`# default`,
//! `# file PATH`, `# env SIGUPDATE_KEY`, `# flag --key`). Without the comments the
//! output is a valid configuration file.

use std::io::Write;

use anyhow::Result;

use crate::cmd::watch::WatchArgs;
use crate::config::Invocation;

/// Shown after `sigupdate config --help`.
pub const CONFIG_HELP: &str = "\
Takes the options of `sync` and `watch` and resolves them as they would (flag >
environment > file > default), then prints every setting as TOML with its source:

  keep-cdiffs = 30    # default
  no-dns = true    # file /etc/sigupdate.toml
  upstream = [\"http://a\", \"http://b\"]    # env SIGUPDATE_UPSTREAM
  bootstrap-cdiffs = false    # flag --no-bootstrap-cdiffs

Exit codes: 0 printed; 2 the configuration is not usable (the message names the file,
key, variable or flag).";

/// Runs the command.
pub fn run(args: &WatchArgs, inv: Invocation<'_>) -> Result<u8> {
    let resolved = inv.resolve(args.opts.config.as_deref())?;
    let mut out = std::io::stdout().lock();
    out.write_all(resolved.text.as_bytes())?;
    Ok(crate::exit::SUCCESS)
}
