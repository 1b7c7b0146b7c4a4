//! Man pages and shell completions generated from a binary's own clap definition, so
//! they stay correct when flags change.
//!
//! Each binary calls [`generate_if_asked`] first thing in `main`: `BIN
//! --generate-assets DIR` (hidden, not part of the documented interface) writes
//! `DIR/man/BIN.1` (and `BIN-SUBCOMMAND.1` for each subcommand) and
//! `DIR/completions/{BIN.bash,_BIN,BIN.fish}`. `cargo xtask dist` runs it to build
//! the package.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// The hidden argument that asks a binary for its assets.
pub const FLAG: &str = "--generate-assets";

/// Writing an asset failed.
#[derive(Debug, thiserror::Error)]
#[error("writing {path}: {source}")]
pub struct Error {
    /// The file or directory being written.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

fn write(path: PathBuf, bytes: &[u8]) -> Result<PathBuf, Error> {
    match std::fs::write(&path, bytes) {
        Ok(()) => Ok(path),
        Err(source) => Err(Error { path, source }),
    }
}

fn mkdir(path: PathBuf) -> Result<PathBuf, Error> {
    match std::fs::create_dir_all(&path) {
        Ok(()) => Ok(path),
        Err(source) => Err(Error { path, source }),
    }
}

/// Writes the man pages and the bash, zsh and fish completions of `cmd` under `dir`
/// (`man/`, `completions/`) and returns the files written.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let cmd = clap::Command::new("demo")
///     .version("1.0")
///     .arg(clap::Arg::new("dir").long("dir").help("A directory"))
///     .subcommand(clap::Command::new("sync").about("Syncs"));
/// let files = cli_assets::generate(cmd, dir.path()).unwrap();
/// let page = std::fs::read_to_string(dir.path().join("man/demo.1")).unwrap();
/// assert!(page.contains("dir"));
/// assert!(dir.path().join("man/demo-sync.1").exists());
/// assert!(dir.path().join("completions/_demo").exists());
/// assert_eq!(files.len(), 5);
/// ```
pub fn generate(cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut cmd = cmd;
    cmd.build();
    let name = cmd.get_name().to_owned();
    let man_dir = mkdir(dir.join("man"))?;
    let comp_dir = mkdir(dir.join("completions"))?;
    let mut files = Vec::new();
    let page = |c: clap::Command, title: &str| -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        clap_mangen::Man::new(c)
            .title(title.to_uppercase())
            .render(&mut out)
            .map_err(|source| Error {
                path: man_dir.join(format!("{title}.1")),
                source,
            })?;
        Ok(out)
    };
    files.push(write(
        man_dir.join(format!("{name}.1")),
        &page(cmd.clone(), &name)?,
    )?);
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let title = format!("{name}-{}", sub.get_name());
        let sub = sub.clone();
        files.push(write(
            man_dir.join(format!("{title}.1")),
            &page(sub, &title)?,
        )?);
    }
    for (shell, file) in [
        (Shell::Bash, format!("{name}.bash")),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, name.clone(), &mut out);
        files.push(write(comp_dir.join(file), &out)?);
    }
    Ok(files)
}

/// When the process was started as `BIN --generate-assets DIR`, writes the assets of
/// `C` into `DIR` and returns the exit code (0, or 2 with a message on stderr);
/// otherwise `None` and the binary goes on as usual.
pub fn generate_if_asked<C: CommandFactory>() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != FLAG {
        return None;
    }
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: {FLAG} DIR");
        return Some(ExitCode::from(2));
    };
    match generate(C::command(), Path::new(&dir)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            Some(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Some(ExitCode::from(2))
        }
    }
}
