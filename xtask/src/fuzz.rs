//! `cargo xtask fuzz [--seconds N]`: run every target under `fuzz/fuzz_targets/` with
//! `cargo fuzz run -s none <target> -- -max_total_time=N`, from the workspace root.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// What `cargo xtask fuzz` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuzzArgs {
    /// Seconds per target (libFuzzer's `-max_total_time`).
    pub seconds: u64,
    /// Targets run at the same time.
    pub jobs: usize,
    /// Only these targets (all when empty).
    pub only: Vec<String>,
}

/// Parses `[--seconds N] [--jobs J] [--only T1,T2]`.
pub fn parse_args(args: &[String]) -> Result<FuzzArgs> {
    let mut parsed = FuzzArgs {
        seconds: 30,
        jobs: 1,
        only: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            bail!("{flag} needs a value");
        };
        match flag.as_str() {
            "--seconds" => {
                parsed.seconds = value.parse().with_context(|| {
                    format!("--seconds wants a number of seconds, got {value:?}")
                })?
            }
            "--jobs" => {
                parsed.jobs = value
                    .parse::<usize>()
                    .with_context(|| format!("--jobs wants a number, got {value:?}"))?
                    .max(1)
            }
            "--only" => {
                parsed.only = value
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            _ => bail!("unexpected argument {flag:?}"),
        }
    }
    Ok(parsed)
}

/// What libFuzzer's log says about a finished run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Inputs executed.
    pub runs: u64,
    /// Wall seconds of the run.
    pub seconds: u64,
    /// Coverage counters hit (`cov:`).
    pub cov: u64,
    /// Features (`ft:`).
    pub ft: u64,
    /// Inputs in the corpus at the end (`corp:`).
    pub corpus: u64,
}

/// Reads the last `cov:`/`ft:`/`corp:` report and the `Done N runs in S second(s)`
/// line of a libFuzzer log.
pub fn parse_stats(log: &str) -> RunStats {
    let mut stats = RunStats::default();
    let field = |line: &str, key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split_whitespace()
            .next()?
            .split('/')
            .next()?
            .parse()
            .ok()
    };
    for line in log.lines() {
        if line.starts_with('#') && line.contains(" cov: ") {
            stats.cov = field(line, " cov: ").unwrap_or(stats.cov);
            stats.ft = field(line, " ft: ").unwrap_or(stats.ft);
            stats.corpus = field(line, " corp: ").unwrap_or(stats.corpus);
        }
        if let Some(rest) = line.strip_prefix("Done ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if let [runs, "runs", "in", secs, ..] = words.as_slice() {
                stats.runs = runs.parse().unwrap_or(0);
                stats.seconds = secs.parse().unwrap_or(0);
            }
        }
    }
    stats
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

/// Runs the targets for `args.seconds` seconds each, `args.jobs` at a time; prints a
/// Markdown table of executions and coverage; fails when any target crashed.
pub fn run(root: &Path, args: &FuzzArgs) -> Result<()> {
    ensure_cargo_fuzz()?;
    let mut targets = targets(root)?;
    if !args.only.is_empty() {
        for name in &args.only {
            if !targets.contains(name) {
                bail!("no fuzz target {name:?} (targets: {})", targets.join(", "));
            }
        }
        targets.retain(|t| args.only.contains(t));
    }
    let seconds = args.seconds;
    println!(
        "== fuzzing {} target(s) for {seconds} s each, {} at a time: {}",
        targets.len(),
        args.jobs,
        targets.join(", ")
    );
    // Build once, before the timed runs start.
    let status = fuzz_command()
        .args(["fuzz", "build", "-s", "none"])
        .current_dir(root)
        .status()
        .context("running cargo fuzz build")?;
    if !status.success() {
        bail!("cargo fuzz build failed ({status})");
    }
    let log_dir = root.join("target/fuzz-logs");
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for batch in targets.chunks(args.jobs) {
        let mut running = Vec::new();
        for target in batch {
            let log_path = log_dir.join(format!("{target}.log"));
            let child = start_target(root, target, seconds, &log_path)?;
            running.push((target, log_path, child));
        }
        for (target, log_path, mut child) in running {
            let status = child
                .wait()
                .with_context(|| format!("waiting for cargo fuzz run {target}"))?;
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if status.success() {
                let stats = parse_stats(&text);
                println!(
                    "   {target}: {} runs in {} s, cov {} ft {} corpus {}",
                    stats.runs, stats.seconds, stats.cov, stats.ft, stats.corpus
                );
                rows.push((target.clone(), stats));
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
    }
    println!("\n| target | seconds | executions | exec/s | cov | ft | corpus |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (target, s) in &rows {
        println!(
            "| `{target}` | {} | {} | {} | {} | {} | {} |",
            s.seconds,
            s.runs,
            s.runs / s.seconds.max(1),
            s.cov,
            s.ft,
            s.corpus
        );
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

/// `cargo`: `cargo fuzz -s none` works on the stable compiler. `XTASK_FUZZ_TOOLCHAIN`
/// (e.g. `nightly`) runs it with another rustup toolchain instead.
fn fuzz_command() -> Command {
    match std::env::var("XTASK_FUZZ_TOOLCHAIN") {
        Ok(toolchain) if !toolchain.is_empty() => {
            let mut c = Command::new("rustup");
            c.args(["run", &toolchain, "cargo"]);
            c
        }
        _ => Command::new(cargo()),
    }
}

/// Starts `cargo fuzz run -s none <target>` with its output in `log_path`. New inputs
/// go to a scratch corpus under `target/`; the committed seeds in `fuzz/corpus/<target>`
/// are read but never modified.
fn start_target(
    root: &Path,
    target: &str,
    seconds: u64,
    log_path: &Path,
) -> Result<std::process::Child> {
    let scratch = root.join("target/fuzz-corpus").join(target);
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
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
    // libFuzzer prints a line per new input: keep that in a log file and show only
    // the summary here (and the log's tail when the target fails).
    let log = std::fs::File::create(log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    fuzz_command()
        .args(&fuzz_args)
        .current_dir(root)
        .stdout(log.try_clone().context("duplicating the log handle")?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("running cargo fuzz for {target}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let parsed = parse_args(&[]).expect("defaults");
        assert_eq!((parsed.seconds, parsed.jobs), (30, 1));
        assert!(parsed.only.is_empty());
        let parsed = parse_args(&args(&[
            "--seconds",
            "5",
            "--jobs",
            "2",
            "--only",
            "sign,sign_path",
        ]))
        .expect("all flags");
        assert_eq!((parsed.seconds, parsed.jobs), (5, 2));
        assert_eq!(parsed.only, ["sign", "sign_path"]);
        assert!(parse_args(&args(&["--seconds", "x"])).is_err());
        assert!(parse_args(&args(&["--seconds"])).is_err());
        assert!(parse_args(&args(&["5"])).is_err());
    }

    #[test]
    fn stats_from_a_libfuzzer_log() {
        let log = "INFO: Seed: 1\n\
#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n\
#4096\tpulse  cov: 120 ft: 300 corp: 40/2Kb lim: 40 exec/s: 2048 rss: 31Mb\n\
#9000\tDONE   cov: 125 ft: 310 corp: 42/2Kb lim: 43 exec/s: 900 rss: 31Mb\n\
Done 9000 runs in 10 second(s)\n";
        assert_eq!(
            parse_stats(log),
            RunStats {
                runs: 9000,
                seconds: 10,
                cov: 125,
                ft: 310,
                corpus: 42
            }
        );
        assert_eq!(parse_stats(""), RunStats::default());
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
