//! `sigupdate verify FILE... [--sign FILE] [--sign-root CERT]... [--at TIME]
//! [--flevel N] [--require-sign]`: full verification of each container.
//!
//! Containers (`.cvd`, `.cld`): header, body MD5, legacy RSA signature, `.info` (PSS
//! signature, header, members) and, when present, the ClamAV 1.5 `.sign` file
//! `<db>-<version>.cvd.sign` beside the container (or the one given with `--sign`).
//! Patches (`*.cdiff`): the PSS signature with the official CDIFF key, and the
//! `.sign` file `<file>.sign` (`test-3.cdiff` → `test-3.cdiff.sign`).
//! One line per file on stdout: `FILE: OK (...)` or `FILE: FAILED <check>: <reason>`.
//!
//! Exit code: 0 when every file passed, 1 when any failed verification, 2 when any
//! could not be read (I/O errors win over verification failures: the result is
//! incomplete) or the arguments are unusable.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cvd_format::sign::{SignFile, SignReport, SignRoots, SignVerifier};
use cvd_format::{Check, CheckStatus, Report, VerifyOptions};
use time::OffsetDateTime;

use crate::exit;

/// Arguments of `sigupdate verify`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Output: one line per FILE on stdout:
  FILE: OK (<db> v<version>, ...; checked: <checks>; .sign <file> line <n> by `<signer>`)
  FILE: FAILED <check>: <reason>      (check: header, md5, legacy signature, .info signature,
                                       .info header, .info entries, archive, limits,
                                       .sign signature, cdiff signature)
  FILE: ERROR <reason>                (the file could not be read)

Exit: 0 every FILE passed; 1 any FILE failed verification; 2 any FILE could not be read,
or bad arguments / unreadable --sign-root.

Examples:
  sigupdate verify /srv/mirror/current/daily.cvd          # + daily-<version>.cvd.sign if present
  sigupdate verify --require-sign main.cvd bytecode.cvd
  sigupdate verify --sign-root clamav-test-root.crt --at 2026-01-01T00:00:00Z test-6.cvd")]
pub struct VerifyArgs {
    /// Containers (.cvd, .cld) or patches (.cdiff) to verify.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// The .sign file to use (only with a single FILE). Default: `<db>-<version>.cvd.sign`
    /// in the FILE's directory, when it exists.
    #[arg(long, value_name = "FILE")]
    pub sign: Option<PathBuf>,

    /// Root certificate (PEM) that .sign signatures must chain to; repeat for several.
    /// Default: the official ClamAV production root (built in).
    #[arg(long = "sign-root", value_name = "CERT")]
    pub sign_roots: Vec<PathBuf>,

    /// Check certificate validity at this time (RFC 3339, e.g. 2026-01-01T00:00:00Z)
    /// instead of now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    pub at: Option<OffsetDateTime>,

    /// Only accept .sign lines whose f-level range includes N (default: any line).
    #[arg(long, value_name = "N")]
    pub flevel: Option<u32>,

    /// Fail a file that has no .sign file.
    #[arg(long)]
    pub require_sign: bool,
}

fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time ({e}); example: 2026-01-01T00:00:00Z"))
}

/// Where the `.sign` file of `container` (database version `version`) is expected:
/// `<dir>/<db>-<version>.cvd.sign`, where `<db>` is the file name without its
/// extension and without a `-<number>` suffix (`daily.cvd` → `daily-27000.cvd.sign`,
/// `test-6.cvd` → `test-6.cvd.sign`).
pub fn sign_path_for(container: &Path, version: u32) -> PathBuf {
    let stem = container
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let db = match stem.rsplit_once('-') {
        Some((db, n))
            if !db.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            db.to_string()
        }
        _ => stem,
    };
    container.with_file_name(format!("{db}-{version}.cvd.sign"))
}

/// The outcome for one file.
enum Outcome {
    Ok(String),
    Failed { check: String, reason: String },
    LocalError(String),
}

/// Runs the command; returns the exit code.
pub fn run(args: &VerifyArgs) -> Result<u8> {
    if args.sign.is_some() && args.files.len() != 1 {
        bail!("--sign names the .sign file of one container; give exactly one FILE");
    }
    let mut verifier = SignVerifier::new();
    if !args.sign_roots.is_empty() {
        let roots = SignRoots::from_files(&args.sign_roots).context("root certificate")?;
        verifier = verifier.roots(roots);
    }
    if let Some(at) = args.at {
        verifier = verifier.at(at);
    }
    if let Some(flevel) = args.flevel {
        verifier = verifier.flevel(flevel);
    }
    let opts = VerifyOptions::new();

    let mut code = exit::SUCCESS;
    for file in &args.files {
        let outcome = verify_one(file, args, &verifier, &opts);
        let line = match &outcome {
            Outcome::Ok(summary) => format!("{}: OK ({summary})", file.display()),
            Outcome::Failed { check, reason } => {
                format!("{}: FAILED {check}: {reason}", file.display())
            }
            Outcome::LocalError(reason) => format!("{}: ERROR {reason}", file.display()),
        };
        println!("{line}");
        code = code.max(match outcome {
            Outcome::Ok(_) => exit::SUCCESS,
            Outcome::Failed { .. } => exit::VERIFY_FAILED,
            Outcome::LocalError(_) => exit::USAGE_OR_IO,
        });
    }
    Ok(code)
}

fn verify_one(
    file: &Path,
    args: &VerifyArgs,
    verifier: &SignVerifier,
    opts: &VerifyOptions,
) -> Outcome {
    tracing::info!(file = %file.display(), "verifying container");
    if file.extension().is_some_and(|e| e == "cdiff") {
        return verify_cdiff(file, args, verifier);
    }
    let report = match cvd_format::verify_file(file, opts) {
        Ok(report) => report,
        Err(e) => return from_cvd_error(&e),
    };
    let sign_path = match &args.sign {
        Some(p) => Some(p.clone()),
        None => {
            let p = sign_path_for(file, report.header.version);
            tracing::debug!(sign = %p.display(), exists = p.is_file(), "looking for .sign");
            p.is_file().then_some(p)
        }
    };
    let sign = match &sign_path {
        Some(p) => match check_sign(file, p, verifier) {
            Ok(r) => Some((p, r)),
            Err(outcome) => return outcome,
        },
        None if args.require_sign => {
            return Outcome::Failed {
                check: Check::Sign.to_string(),
                reason: format!(
                    "no .sign file ({} does not exist) and --require-sign is set",
                    sign_path_for(file, report.header.version).display()
                ),
            };
        }
        None => None,
    };
    Outcome::Ok(summary(
        &report,
        sign.as_ref().map(|(p, r)| (p.as_path(), r)),
    ))
}

/// A `.cdiff`: its PSS signature with the official CDIFF key, then `<file>.sign`.
fn verify_cdiff(file: &Path, args: &VerifyArgs, verifier: &SignVerifier) -> Outcome {
    let limit = cdiff::Limits::default().max_patch_len;
    let bytes = match std::fs::File::open(file).and_then(|f| {
        let mut bytes = Vec::new();
        f.take(limit + 1).read_to_end(&mut bytes).map(|_| bytes)
    }) {
        Ok(bytes) => bytes,
        Err(e) => return Outcome::LocalError(format!("cannot read the patch: {e}")),
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let patch = match cdiff::Patch::verify(&name, bytes, &cvd_format::KeySet::official().cdiff) {
        Ok(patch) => patch,
        Err(e) if e.is_verification_failure() => {
            return Outcome::Failed {
                check: "cdiff signature".into(),
                reason: mirror_core::Chain(&e).to_string(),
            };
        }
        Err(e) => return Outcome::LocalError(mirror_core::Chain(&e).to_string()),
    };
    let sign_path = args.sign.clone().unwrap_or_else(|| {
        let mut p = file.as_os_str().to_owned();
        p.push(".sign");
        PathBuf::from(p)
    });
    let sign_text = if args.sign.is_some() || sign_path.is_file() {
        match check_sign(file, &sign_path, verifier) {
            Ok(r) => format!(
                "; .sign {} line {} by `{}`",
                sign_path
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                r.line,
                r.chain.first().map(String::as_str).unwrap_or("?")
            ),
            Err(outcome) => return outcome,
        }
    } else if args.require_sign {
        return Outcome::Failed {
            check: Check::Sign.to_string(),
            reason: format!(
                "no .sign file ({} does not exist) and --require-sign is set",
                sign_path.display()
            ),
        };
    } else {
        "; no .sign".to_string()
    };
    Outcome::Ok(format!(
        "cdiff to v{}; checked: cdiff signature{sign_text}",
        patch.version()
    ))
}

fn check_sign(
    file: &Path,
    sign_path: &Path,
    verifier: &SignVerifier,
) -> Result<SignReport, Outcome> {
    let bytes = std::fs::read(sign_path).map_err(|e| {
        Outcome::LocalError(format!(
            "cannot read .sign file {}: {e}",
            sign_path.display()
        ))
    })?;
    let in_sign = |e: cvd_format::Error| {
        let outcome = from_cvd_error(&e);
        match outcome {
            Outcome::Failed { check, reason } => Outcome::Failed {
                check,
                reason: format!("{}: {reason}", sign_path.display()),
            },
            other => other,
        }
    };
    let sign = SignFile::parse(&bytes).map_err(in_sign)?;
    let content = std::fs::File::open(file)
        .map_err(|e| Outcome::LocalError(format!("cannot reopen for .sign check: {e}")))?;
    verifier
        .verify(&sign, std::io::BufReader::with_capacity(64 * 1024, content))
        .map_err(in_sign)
}

fn from_cvd_error(e: &cvd_format::Error) -> Outcome {
    match e.failed_check() {
        Some(check) => Outcome::Failed {
            check: check.to_string(),
            reason: inner_message(e),
        },
        None => Outcome::LocalError(inner_message(e)),
    }
}

/// The message without the `path:` prefix of [`cvd_format::Error::File`] (the line
/// already starts with the file name).
fn inner_message(e: &cvd_format::Error) -> String {
    match e {
        cvd_format::Error::File { source, .. } => inner_message(source),
        other => mirror_core::Chain(other).to_string(),
    }
}

fn summary(report: &Report, sign: Option<(&Path, &SignReport)>) -> String {
    let h = &report.header;
    let mut checks = vec!["header"];
    let c = &report.checks;
    for (status, name) in [
        (c.md5, "md5"),
        (c.legacy_signature, "legacy signature"),
        (c.info_signature, ".info signature"),
        (c.info_header, ".info header"),
        (c.info_entries, ".info entries"),
    ] {
        if status == CheckStatus::Passed {
            checks.push(name);
        }
    }
    let sign_text = match sign {
        Some((path, r)) => format!(
            "; .sign {} line {} by `{}`",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            r.line,
            r.chain.first().map(String::as_str).unwrap_or("?")
        ),
        None => "; no .sign".to_string(),
    };
    format!(
        "{} v{}, {} signatures, f-level {}; checked: {}{sign_text}",
        report.name,
        h.version,
        h.signatures,
        h.flevel,
        checks.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_path_naming() {
        let p = |s: &str, v| sign_path_for(Path::new(s), v);
        assert_eq!(p("/m/test-6.cvd", 6), PathBuf::from("/m/test-6.cvd.sign"));
        assert_eq!(
            p("/m/daily.cvd", 27000),
            PathBuf::from("/m/daily-27000.cvd.sign")
        );
        assert_eq!(p("main.cld", 62), PathBuf::from("main-62.cvd.sign"));
        assert_eq!(p("my-db.cvd", 3), PathBuf::from("my-db-3.cvd.sign"));
    }
}
