//! `cargo xtask light-check`: the libraries another tool may depend on stay light.
//!
//! For each library of [`LIBRARIES`], with its minimal feature set
//! (`--no-default-features`):
//!
//! 1. `cargo tree -p CRATE --no-default-features -e normal` must hold no async
//!    runtime, DNS client or HTTP client ([`banned`]: tokio, hickory, reqwest, ureq,
//!    hyper, ...) and none of the crate's own forbidden workspace crates
//!    ([`Library::also_banned`]: `fetch` for `mirror-core`, the engine for
//!    `cli-config`);
//! 2. `cargo build -p CRATE --no-default-features` must succeed;
//! 3. the dependency counts in the crate's docs (`src/lib.rs`, and `README.md` when the
//!    crate has one: the rows `| minimal ... | N |` and `| default ... | N |`) must be
//!    the measured ones (`count` below), so that they cannot go stale.
//!
//! A count is the number of distinct crates (name and version) in
//! `cargo tree -p CRATE -e normal --no-dedupe` (with `--no-default-features` for the
//! minimal set), the crate itself not counted: in shell terms
//! `cargo tree -p CRATE [--no-default-features] -e normal --prefix none --no-dedupe |
//! sort -u | wc -l`, minus one. Proc-macro crates count; build and dev dependencies
//! do not. (Without `--no-dedupe`, a crate seen twice is printed a second time with
//! ` (*)` and `sort -u` would count it twice.)

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A library whose minimal build is checked.
pub struct Library {
    /// Its package name.
    pub name: &'static str,
    /// Its directory under the workspace root.
    pub dir: &'static str,
    /// Workspace crates its minimal build must not pull in either.
    pub also_banned: &'static [&'static str],
}

/// The libraries checked, in dependency order.
pub const LIBRARIES: &[Library] = &[
    Library {
        name: "atomic-file",
        dir: "crates/atomic-file",
        also_banned: &[],
    },
    Library {
        name: "rate-limit",
        dir: "crates/rate-limit",
        also_banned: &[],
    },
    Library {
        name: "cvd-format",
        dir: "crates/cvd-format",
        also_banned: &[],
    },
    Library {
        name: "cdiff",
        dir: "crates/cdiff",
        also_banned: &[],
    },
    Library {
        name: "dns-versions",
        dir: "crates/dns-versions",
        also_banned: &[],
    },
    Library {
        name: "mirror-core",
        dir: "crates/mirror-core",
        also_banned: &["fetch"],
    },
    Library {
        name: "cli-config",
        dir: "crates/cli-config",
        also_banned: &["mirror-core", "push", "fetch", "dns-versions"],
    },
];

/// Why a crate has no place in a minimal build, or `None` when it may be there.
pub fn banned(name: &str) -> Option<&'static str> {
    const RUNTIMES: &[&str] = &["tokio", "mio", "async-std", "smol", "async-io"];
    const DNS: &[&str] = &["hickory-", "trust-dns-"];
    const HTTP: &[&str] = &[
        "reqwest",
        "ureq",
        "hyper",
        "h2",
        "curl",
        "isahc",
        "attohttpc",
        "object_store",
    ];
    const TLS: &[&str] = &["rustls", "native-tls", "openssl"];
    let is = |family: &[&str]| {
        family.iter().any(|f| match f.strip_suffix('-') {
            Some(prefix) => name.starts_with(prefix) && name[prefix.len()..].starts_with('-'),
            None => name == *f || name.starts_with(&format!("{f}-")),
        })
    };
    if is(RUNTIMES) {
        Some("an async runtime")
    } else if is(DNS) {
        Some("a DNS client")
    } else if is(HTTP) {
        Some("an HTTP client")
    } else if is(TLS) {
        Some("a TLS stack")
    } else {
        None
    }
}

/// The distinct crates (`name vVERSION`) of a `cargo tree --prefix none` listing,
/// without the first line (the crate itself).
pub fn crates_of(tree: &str) -> BTreeSet<String> {
    tree.lines()
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let version = words.next()?;
            Some(format!("{name} {version}"))
        })
        .collect()
}

/// The counts a crate's docs state: the last cell of the rows that start with
/// `| minimal` and `| default` (in `//!` comments or in a README).
pub fn documented_counts(text: &str) -> (Option<usize>, Option<usize>) {
    let mut minimal = None;
    let mut default = None;
    for line in text.lines() {
        let row = line.trim_start().trim_start_matches("//!").trim();
        let Some(cells) = row.strip_prefix('|') else {
            continue;
        };
        let cells: Vec<&str> = cells
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        let (Some(first), Some(last)) = (cells.first(), cells.last()) else {
            continue;
        };
        let n = last.trim_matches('*').parse::<usize>().ok();
        if first.starts_with("minimal") {
            minimal = minimal.or(n);
        } else if first.starts_with("default") {
            default = default.or(n);
        }
    }
    (minimal, default)
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The crates of `name`'s normal dependency tree, minimal or default features.
fn tree(root: &Path, name: &str, minimal: bool) -> Result<BTreeSet<String>> {
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["tree", "--locked", "-p", name, "-e", "normal"])
        .args(["--prefix", "none", "--no-dedupe"]);
    if minimal {
        cmd.arg("--no-default-features");
    }
    let out = cmd
        .output()
        .with_context(|| format!("running cargo tree -p {name}"))?;
    if !out.status.success() {
        bail!(
            "cargo tree -p {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(crates_of(&String::from_utf8_lossy(&out.stdout)))
}

/// Runs the check over [`LIBRARIES`]; prints a table of the counts.
pub fn run(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    println!("{:<14} {:>8} {:>8}", "crate", "minimal", "default");
    for lib in LIBRARIES {
        let minimal = tree(root, lib.name, true)?;
        let default = tree(root, lib.name, false)?;
        println!("{:<14} {:>8} {:>8}", lib.name, minimal.len(), default.len());
        for krate in &minimal {
            let name = krate.split(' ').next().unwrap_or_default();
            if let Some(why) = banned(name) {
                problems.push(format!(
                    "{}: the minimal build pulls {krate}, {why} \
                     (`cargo tree -p {} --no-default-features -e normal -i {name}`)",
                    lib.name, lib.name
                ));
            } else if lib.also_banned.contains(&name) {
                problems.push(format!(
                    "{}: the minimal build pulls the workspace crate {name}",
                    lib.name
                ));
            }
        }
        let dir = root.join(lib.dir);
        let mut docs = vec![dir.join("src/lib.rs")];
        if dir.join("README.md").exists() {
            docs.push(dir.join("README.md"));
        }
        for doc in docs {
            let text = std::fs::read_to_string(&doc)
                .with_context(|| format!("reading {}", doc.display()))?;
            let shown = doc.strip_prefix(root).unwrap_or(&doc).display();
            let (doc_min, doc_def) = documented_counts(&text);
            for (what, said, measured) in [
                ("minimal", doc_min, minimal.len()),
                ("default", doc_def, default.len()),
            ] {
                match said {
                    Some(n) if n == measured => {}
                    Some(n) => problems.push(format!(
                        "{shown}: the `| {what} ... | {n} |` row is stale: \
                         {measured} crates measured"
                    )),
                    None => problems.push(format!(
                        "{shown}: no `| {what} ... | N |` dependency-count row \
                         (measured: {measured})"
                    )),
                }
            }
        }
        let status = cargo()
            .current_dir(root)
            .args([
                "build",
                "--locked",
                "--quiet",
                "--no-default-features",
                "-p",
            ])
            .arg(lib.name)
            .status()
            .with_context(|| format!("running cargo build -p {}", lib.name))?;
        if !status.success() {
            problems.push(format!(
                "{}: `cargo build -p {} --no-default-features` failed",
                lib.name, lib.name
            ));
        }
    }
    if problems.is_empty() {
        println!(
            "light-check: {} libraries, no runtime, DNS or HTTP client in their minimal builds; \
             the documented counts are current",
            LIBRARIES.len()
        );
        Ok(())
    } else {
        for p in &problems {
            eprintln!("light-check: {p}");
        }
        bail!("{} problem(s) with the light libraries", problems.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banned_names_runtimes_and_clients_not_their_neighbours() {
        for (name, why) in [
            ("tokio", "an async runtime"),
            ("tokio-rustls", "an async runtime"),
            ("hickory-resolver", "a DNS client"),
            ("hickory-proto", "a DNS client"),
            ("reqwest", "an HTTP client"),
            ("ureq", "an HTTP client"),
            ("ureq-proto", "an HTTP client"),
            ("hyper", "an HTTP client"),
            ("hyper-util", "an HTTP client"),
            ("rustls", "a TLS stack"),
        ] {
            assert_eq!(banned(name), Some(why), "{name}");
        }
        for name in [
            "tokenizers",
            "hickory",
            "hyperloglog",
            "nom",
            "thiserror",
            "h2o",
        ] {
            assert_eq!(banned(name), None, "{name}");
        }
    }

    #[test]
    fn crates_are_counted_once_without_the_root() {
        let tree = "dns-versions v0.1.0 (/w/crates/dns-versions)\n\
                    nom v8.0.0\n\
                    memchr v2.8.3\n\
                    thiserror v2.0.21\n\
                    thiserror-impl v2.0.21 (proc-macro)\n\
                    proc-macro2 v1.0.107\n\
                    quote v1.0.47\n\
                    proc-macro2 v1.0.107\n\
                    memchr v2.7.0\n";
        let got = crates_of(tree);
        assert_eq!(got.len(), 7, "{got:?}");
        assert!(got.contains("memchr v2.8.3") && got.contains("memchr v2.7.0"));
        assert!(!got.iter().any(|c| c.starts_with("dns-versions")));
    }

    #[test]
    fn documented_counts_read_the_table_rows() {
        let docs = "//! # Dependencies\n\
                    //!\n\
                    //! | feature set | crates |\n\
                    //! |---|---|\n\
                    //! | minimal (`--no-default-features`): records | 7 |\n\
                    //! | default (`resolver`) | **88** |\n";
        assert_eq!(documented_counts(docs), (Some(7), Some(88)));
        assert_eq!(documented_counts("| minimal | x |\n"), (None, None));
        assert_eq!(documented_counts("no table here\n"), (None, None));
    }
}
