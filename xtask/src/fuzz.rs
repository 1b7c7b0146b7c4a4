//! `cargo xtask fuzz [--seconds N]`: run every target under `fuzz/fuzz_targets/` with
//! `cargo fuzz run -s none <target> -- -max_total_time=N`, from the workspace root.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Parses `[--seconds N]`.
pub fn parse_seconds(args: &[String]) -> Result<u64> {
    match args {
        [] => Ok(30),
        [flag, n] if flag == "--seconds" => n
            .parse()
            .with_context(|| format!("--seconds wants a number of seconds, got {n:?}")),
        _ => bail!("unexpected arguments {args:?}"),
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn ensure_cargo_fuzz() -> Result<()> {
    let present = Command::new(cargo())
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    println!("== cargo-fuzz not found: cargo install cargo-fuzz --locked");
    let status = Command::new(cargo())
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz failed ({status})");
    }
    Ok(())
}

/// Target names: the `.rs` files of `fuzz/fuzz_targets/`, sorted.
fn targets(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("fuzz/fuzz_targets");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry.context("listing fuzz targets")?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem()
        {
            names.push(stem.to_string_lossy().into_owned());
        }
    }
    names.sort();
    if names.is_empty() {
        bail!("no fuzz targets in {}", dir.display());
    }
    Ok(names)
}

/// Runs every target for `seconds` seconds; fails on the first crashing target.
pub fn run(root: &Path, seconds: u64) -> Result<()> {
    ensure_cargo_fuzz()?;
    let targets = targets(root)?;
    println!(
        "== fuzzing {} target(s) for {seconds} s each: {}",
        targets.len(),
        targets.join(", ")
    );
    let mut failed = Vec::new();
    for target in &targets {
        // New inputs go to a scratch corpus under target/; the committed seeds in
        // fuzz/corpus/<target> are read but never modified.
        let scratch = root.join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        let seeds = root.join("fuzz/corpus").join(target);
        let mut fuzz_args: Vec<std::ffi::OsString> = vec![
            "fuzz".into(),
            "run".into(),
            "-s".into(),
            "none".into(),
            target.into(),
            scratch.into_os_string(),
        ];
        if seeds.is_dir() {
            fuzz_args.push(seeds.into_os_string());
        }
        fuzz_args.push("--".into());
        fuzz_args.push(format!("-max_total_time={seconds}").into());
        println!("== cargo fuzz run -s none {target} -- -max_total_time={seconds}");
        // cargo-fuzz needs a nightly compiler: use rustup's when there is one.
        let nightly = Command::new("rustup")
            .args(["run", "nightly", "rustc", "--version"])
            .output()
            .is_ok_and(|o| o.status.success());
        let mut cmd = if nightly {
            let mut c = Command::new("rustup");
            c.args(["run", "nightly", "cargo"]);
            c
        } else {
            Command::new(cargo())
        };
        // libFuzzer prints a line per new input: keep that in a log file and show
        // only the final count here (and the log's tail when the target fails).
        let log_dir = root.join("target/fuzz-logs");
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        let log_path = log_dir.join(format!("{target}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let status = cmd
            .args(&fuzz_args)
            .current_dir(root)
            .stdout(log.try_clone().context("duplicating the log handle")?)
            .stderr(log)
            .status()
            .with_context(|| format!("running cargo fuzz for {target}"))?;
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if status.success() {
            let done = text
                .lines()
                .rev()
                .find(|l| l.starts_with("Done "))
                .unwrap_or("finished (no libFuzzer summary line)");
            println!("   {target}: {done}");
        } else {
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!("   {target} FAILED; last lines of {}:", log_path.display());
            for line in tail {
                eprintln!("   | {line}");
            }
            failed.push(target.clone());
        }
    }
    if !failed.is_empty() {
        bail!("fuzz target(s) failed: {}", failed.join(", "));
    }
    println!(
        "== all {} fuzz target(s) ran {seconds} s without a crash",
        targets.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_argument() {
        assert_eq!(parse_seconds(&[]).ok(), Some(30));
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_seconds(&args(&["--seconds", "5"])).ok(), Some(5));
        assert!(parse_seconds(&args(&["--seconds", "x"])).is_err());
        assert!(parse_seconds(&args(&["--seconds"])).is_err());
        assert!(parse_seconds(&args(&["5"])).is_err());
    }

    #[test]
    fn targets_are_the_fuzz_target_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let names = targets(&root).expect("fuzz targets");
        assert!(names.contains(&"sign".to_string()), "{names:?}");
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}
