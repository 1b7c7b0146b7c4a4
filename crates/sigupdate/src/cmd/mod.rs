//! One module per subcommand. Each exposes an `Args` struct (clap derive) and
//! `run(&Args) -> anyhow::Result<u8>` returning the exit code (see [`crate::exit`]);
//! an `Err` is a local error and exits with [`crate::exit::USAGE_OR_IO`]. The
//! subcommands that read the configuration (`sync`, `watch`, `status`, `config`) also
//! take the [`crate::config::Invocation`] their settings are resolved from.

pub mod apply_cdiff;
pub mod check_chain;
pub mod config;
pub mod inspect;
pub mod notify;
pub mod status;
pub mod sync;
pub mod unpack;
pub mod verify;
pub mod watch;
