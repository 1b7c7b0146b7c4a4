//! Chains: a base `.cvd`/`.cld` plus patches N+1..M, and the chain-consistency check.
//!
//! [`apply`] verifies the base (through `cvd-format`), then each patch's signature and
//! version, applies the scripts in memory and finally checks the result the way a
//! client does before keeping it: the new `<name>.info` must verify with the INFO key,
//! name version M, and list every member with its size and SHA-256. [`Patched::write_cld`]
//! writes the `.cld` (header = first line of the new `.info`).
//!
//! [`check`] is the mirror's pre-publication proof: base + patches must reproduce the
//! members of the signed `.cvd` of version M byte for byte. [`check_verified`] is the
//! same proof against a `.cvd` that was already fully verified, from its [`Report`]: it
//! compares the SHA-256 of every patched member with the SHA-256 the verification
//! computed over the target's member bytes, so the target is not inflated a second
//! time. Neither writes anything: base, patches and result live in memory.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use cvd_format::info::Info;
use cvd_format::{Header, KeySet, MemberInfo, Report, VerifyOptions};
use sha2::{Digest, Sha256};

use crate::apply::Database;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::patch::Patch;

/// Trust anchors and limits for chain operations.
///
/// ```
/// let opts = cdiff::chain::ChainOptions::new()
///     .keys(cvd_format::KeySet::official())
///     .limits(cdiff::Limits::default().max_chain_len(100));
/// assert_eq!(opts.limit_values().max_chain_len, 100);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ChainOptions {
    keys: KeySet,
    limits: Limits,
    cvd_limits: cvd_format::Limits,
}

impl ChainOptions {
    /// Official keys, default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Use these keys (`cdiff` for patches, `cvd`/`info` for containers).
    pub fn keys(mut self, keys: KeySet) -> Self {
        self.keys = keys;
        self
    }

    /// Limits for patches and scripts.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Limits for reading the `.cvd`/`.cld` containers.
    pub fn container_limits(mut self, limits: cvd_format::Limits) -> Self {
        self.cvd_limits = limits;
        self
    }

    /// The keys in use.
    pub fn key_set(&self) -> &KeySet {
        &self.keys
    }

    /// The patch limits in use.
    pub fn limit_values(&self) -> &Limits {
        &self.limits
    }

    fn verify_options(&self) -> VerifyOptions {
        VerifyOptions::new()
            .keys(self.keys.clone())
            .limits(self.cvd_limits)
    }
}

/// A patch file to apply: a name for messages (usually the file name) and its bytes.
#[derive(Debug, Clone)]
pub struct PatchInput {
    /// Name used in messages.
    pub name: String,
    /// The `.cdiff` bytes.
    pub bytes: Vec<u8>,
}

impl PatchInput {
    /// A patch from a name and bytes.
    pub fn new(name: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            bytes,
        }
    }

    /// Reads a patch file (at most `limits.max_patch_len` bytes).
    pub fn read(path: &Path, limits: &Limits) -> Result<Self> {
        let file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut bytes = Vec::new();
        file.take(limits.max_patch_len.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(path, e))?;
        if bytes.len() as u64 > limits.max_patch_len {
            return Err(Error::Limit {
                what: format!("{}", path.display()),
                limit: limits.max_patch_len,
            });
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Ok(Self { name, bytes })
    }
}

/// The verified result of applying a chain.
#[derive(Debug, Clone)]
pub struct Patched {
    /// Database name (`daily`, `main`, ...).
    pub name: String,
    /// Version of the base.
    pub base_version: u32,
    /// Version after the patches.
    pub version: u32,
    /// Header of the result (first line of the new `.info`, MD5 and signature `X`).
    pub header: Header,
    /// The parsed, verified new `.info`.
    pub info: Info,
    /// All files of the result (database files, `COPYING`, `<name>.info`).
    pub database: Database,
}

/// Reads and verifies a base container (`.cvd` or `.cld`) into memory.
pub fn read_base(reader: impl Read, opts: &ChainOptions) -> Result<(String, u32, Database)> {
    let contents =
        cvd_format::read_members(reader, &opts.verify_options()).map_err(|e| Error::Format {
            context: "base database".into(),
            source: Box::new(e),
        })?;
    let mut db = Database::new();
    for m in contents.members {
        db.insert(m.name, m.data);
    }
    Ok((contents.report.name, contents.report.header.version, db))
}

/// Applies `patches` (in the given order) to a base container read from `base`.
///
/// Each patch's signature is verified with the CDIFF key before it is decompressed; its
/// version must be exactly one more than the current one (a gap, a duplicate or a
/// reordering is rejected). The result's `.info` must verify and match the members.
pub fn apply(base: impl Read, patches: &[PatchInput], opts: &ChainOptions) -> Result<Patched> {
    let (name, base_version, db) = read_base(base, opts)?;
    apply_to_database(&name, base_version, db, patches, opts)
}

/// [`apply`] starting from an already verified in-memory database of `name` at
/// `version`.
pub fn apply_to_database(
    name: &str,
    version: u32,
    mut db: Database,
    patches: &[PatchInput],
    opts: &ChainOptions,
) -> Result<Patched> {
    if patches.len() > opts.limits.max_chain_len {
        return Err(Error::Limit {
            what: "number of patches".into(),
            limit: opts.limits.max_chain_len as u64,
        });
    }
    let mut current = version;
    for input in patches {
        let patch = Patch::verify_with_limits(
            &input.name,
            input.bytes.clone(),
            &opts.keys.cdiff,
            &opts.limits,
        )?;
        let v = patch.version();
        let expected = current.checked_add(1).ok_or_else(|| Error::Chain {
            reason: format!("version {current} cannot be incremented"),
        })?;
        if v != expected {
            let reason = if v <= current {
                format!(
                    "{} produces version {v}, but the database is already at version {current} \
                     (duplicate or out-of-order patch)",
                    input.name
                )
            } else {
                let missing = if v - 1 == expected {
                    format!("version {expected}")
                } else {
                    format!("versions {expected}..={}", v - 1)
                };
                format!(
                    "{} produces version {v}, but the database is at version {current}: \
                     missing patch for {missing}",
                    input.name
                )
            };
            return Err(Error::Chain { reason });
        }
        let script = patch.script()?;
        db.apply_with_limits(&script, &opts.limits)
            .map_err(|e| match e {
                Error::Apply { line, file, reason } => Error::Apply {
                    line,
                    file,
                    reason: format!("{} (patch {})", reason, input.name),
                },
                other => other,
            })?;
        current = v;
    }
    let (header, info) = check_result(name, current, &db, &opts.keys)?;
    Ok(Patched {
        name: name.to_string(),
        base_version: version,
        version: current,
        header,
        info,
        database: db,
    })
}

/// The client's acceptance check of a patched database.
fn check_result(name: &str, version: u32, db: &Database, keys: &KeySet) -> Result<(Header, Info)> {
    let info_name = format!("{name}.info");
    let bad = |reason: String| Error::Result { reason };
    let bytes = db
        .get(&info_name)
        .ok_or_else(|| bad(format!("`{info_name}` is missing")))?;
    let info = Info::parse(&info_name, bytes).map_err(|e| bad(e.to_string()))?;
    info.verify_signature(&info_name, &keys.info)
        .map_err(|e| bad(e.to_string()))?;
    if info.header.version != version {
        return Err(bad(format!(
            "`{info_name}` says version {}, but the last patch produced version {version}",
            info.header.version
        )));
    }
    for entry in &info.entries {
        let data = db.get(&entry.name).ok_or_else(|| {
            bad(format!(
                "`{}` is listed in `{info_name}` but missing",
                entry.name
            ))
        })?;
        let sha: [u8; 32] = Sha256::digest(data).into();
        if data.len() as u64 != entry.size || sha != entry.sha256 {
            return Err(bad(format!(
                "`{}` does not match its size/SHA-256 in `{info_name}`",
                entry.name
            )));
        }
    }
    if let Some(file) = first_unlisted(&info, &info_name, db) {
        return Err(bad(format!("`{file}` is not listed in `{info_name}`")));
    }
    let mut header = info.header.clone();
    header.md5 = None;
    header.dsig = None;
    Ok((header, info))
}

/// The first file of `db` (other than `COPYING` and the `.info` itself) that `info`
/// does not list. One set of the entries, not `Info::entry` (a linear search) per
/// file: files × entries was quadratic for a script that creates many files next to a
/// long `.info`.
fn first_unlisted<'d>(info: &Info, info_name: &str, db: &'d Database) -> Option<&'d str> {
    let listed: std::collections::HashSet<&str> =
        info.entries.iter().map(|e| e.name.as_str()).collect();
    db.files()
        .keys()
        .map(String::as_str)
        .find(|&file| file != "COPYING" && file != info_name && !listed.contains(file))
}

impl Patched {
    /// Writes the result as a `.cld` at `out` (written to a temporary file next to it
    /// and renamed into place only when complete), then re-reads and verifies the written
    /// file with `opts`' keys.
    pub fn write_cld(&self, out: &Path, opts: &ChainOptions) -> Result<Header> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out.cld".into());
        let stage = parent.join(format!(".{file_name}.cdiff-stage-{}", std::process::id()));
        let tmp = parent.join(format!(".{file_name}.cdiff-tmp-{}", std::process::id()));
        fs::create_dir(&stage).map_err(|e| Error::io(&stage, e))?;
        let result = (|| -> Result<Header> {
            for (name, data) in self.database.files() {
                let path = stage.join(name);
                fs::write(&path, data).map_err(|e| Error::io(&path, e))?;
            }
            let file = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let mut writer = std::io::BufWriter::new(file);
            let header = cvd_format::write_cld_from_dir(&stage, &mut writer, &opts.cvd_limits)
                .map_err(|e| Error::Format {
                    context: format!("writing {}", out.display()),
                    source: Box::new(e),
                })?;
            let file = writer
                .into_inner()
                .map_err(|e| Error::io(&tmp, e.into_error()))?;
            // Verify what was written before it replaces anything.
            let written = fs::File::open(&tmp).map_err(|e| Error::io(&tmp, e))?;
            cvd_format::read_members(std::io::BufReader::new(written), &opts.verify_options())
                .map_err(|e| Error::Format {
                    context: format!("verifying the written {}", out.display()),
                    source: Box::new(e),
                })?;
            atomic_file::commit(file, &tmp, out).map_err(|e| Error::io(out, e))?;
            Ok(header)
        })();
        let _ = fs::remove_dir_all(&stage);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// Where base + patches and the target `.cvd` first disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The member (file) that differs.
    pub file: String,
    /// The first differing line (1-based), when the file exists on both sides.
    pub line: Option<u64>,
    /// What differs.
    pub reason: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}: {}", self.file, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

/// Outcome of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Consistency {
    /// Base + patches give exactly the members of the target (`COPYING` aside).
    Consistent {
        /// The common version.
        version: u32,
    },
    /// They differ; the first difference (files in name order).
    Differs(Difference),
}

/// The chain-consistency check: does applying `patches` to `base` give exactly the
/// members of the signed `.cvd` read from `target`?
///
/// The target must be a signed `.cvd` that verifies with `opts`' keys. Database files
/// and the `.info` must be byte-equal and the same set on both sides (`COPYING` is not
/// compared: clients keep the base's). A patch that fails to verify or apply is an
/// error (not a [`Consistency::Differs`]).
///
/// The target is read (and verified) on a second thread while the base is read and
/// patched on the calling one; both are held in memory.
pub fn check(
    target: impl Read + Send,
    base: impl Read,
    patches: &[PatchInput],
    opts: &ChainOptions,
) -> Result<Consistency> {
    let (target, patched) = std::thread::scope(|scope| {
        let target = scope.spawn(|| {
            cvd_format::read_members(target, &opts.verify_options().require_signed(true))
        });
        let patched = apply(base, patches, opts);
        let target = target
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (target, patched)
    });
    let target = target.map_err(|e| Error::Format {
        context: "target .cvd".into(),
        source: Box::new(e),
    })?;
    let patched = patched?;
    if let Some(d) = identity_difference(&target.report, &patched) {
        return Ok(Consistency::Differs(d));
    }
    let mut want = Database::new();
    for m in target.members {
        want.insert(m.name, m.data);
    }
    Ok(match compare(&patched.database, &want) {
        Some(d) => Consistency::Differs(d),
        None => Consistency::Consistent {
            version: patched.version,
        },
    })
}

/// [`check`] against a target `.cvd` that was already fully verified: `target` is the
/// [`Report`] of its verification (with the same keys as `opts`, signature required).
///
/// The report holds the size and SHA-256 of every target member, computed over the
/// member bytes while verifying, so the comparison is by SHA-256 of each member: the
/// same binding the signed `.info` already relies on, without reading the target
/// again. A [`Difference`] found this way names the member but no line (read the
/// target with [`check`] for the first differing line).
pub fn check_verified(
    target: &Report,
    base: impl Read,
    patches: &[PatchInput],
    opts: &ChainOptions,
) -> Result<Consistency> {
    if !target.is_signed() {
        return Err(Error::Format {
            context: "target .cvd".into(),
            source: Box::new(cvd_format::Error::Unsigned),
        });
    }
    let patched = apply(base, patches, opts)?;
    if let Some(d) = identity_difference(target, &patched) {
        return Ok(Consistency::Differs(d));
    }
    Ok(match compare_digests(&patched, &target.members) {
        Some(d) => Consistency::Differs(d),
        None => Consistency::Consistent {
            version: patched.version,
        },
    })
}

/// A difference of database name or version between the target and the chain.
fn identity_difference(target: &Report, patched: &Patched) -> Option<Difference> {
    if target.name != patched.name {
        return Some(Difference {
            file: format!("{}.info", target.name),
            line: None,
            reason: format!(
                "target is database `{}`, the chain gives `{}`",
                target.name, patched.name
            ),
        });
    }
    if target.header.version != patched.version {
        return Some(Difference {
            file: format!("{}.info", patched.name),
            line: Some(1),
            reason: format!(
                "target is version {}, the chain gives version {}",
                target.header.version, patched.version
            ),
        });
    }
    None
}

/// First difference between the patched files and the target's member list (names in
/// order, `COPYING` skipped), by size and SHA-256.
fn compare_digests(patched: &Patched, target: &[MemberInfo]) -> Option<Difference> {
    let want: std::collections::BTreeMap<&str, &MemberInfo> =
        target.iter().map(|m| (m.name.as_str(), m)).collect();
    let got = patched.database.files();
    let listed: std::collections::HashMap<&str, [u8; 32]> = patched
        .info
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.sha256))
        .collect();
    let mut names: Vec<&str> = got
        .keys()
        .map(String::as_str)
        .chain(want.keys().copied())
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        if name == "COPYING" {
            continue;
        }
        let difference = |reason: String| Difference {
            file: name.to_owned(),
            line: None,
            reason,
        };
        match (got.get(name), want.get(name)) {
            (Some(g), Some(w)) => {
                if g.len() as u64 != w.size {
                    return Some(difference(format!(
                        "patched file has {} bytes, the target {}",
                        g.len(),
                        w.size
                    )));
                }
                // Files listed in the patched `.info` were checked against it by
                // `check_result`; only the `.info` itself is hashed here.
                let sha: [u8; 32] = match listed.get(name) {
                    Some(sha) => *sha,
                    None => Sha256::digest(g).into(),
                };
                if sha != w.sha256 {
                    return Some(difference(format!(
                        "contents differ (SHA-256 patched {}, target {})",
                        cvd_format::hex(&sha),
                        w.sha256_hex()
                    )));
                }
            }
            (Some(_), None) => {
                return Some(difference(
                    "present after patching but not in the target".into(),
                ));
            }
            (None, Some(_)) => {
                return Some(difference(
                    "in the target but missing after patching".into(),
                ));
            }
            (None, None) => {}
        }
    }
    None
}

/// First difference between `got` and `want` (files in name order, `COPYING` skipped).
pub fn compare(got: &Database, want: &Database) -> Option<Difference> {
    let mut names: Vec<&String> = got.files().keys().chain(want.files().keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        if name == "COPYING" {
            continue;
        }
        match (got.get(name), want.get(name)) {
            (Some(g), Some(w)) if g == w => {}
            (Some(g), Some(w)) => {
                let (line, reason) = first_line_difference(g, w);
                return Some(Difference {
                    file: name.clone(),
                    line: Some(line),
                    reason,
                });
            }
            (Some(_), None) => {
                return Some(Difference {
                    file: name.clone(),
                    line: None,
                    reason: "present after patching but not in the target".into(),
                });
            }
            (None, Some(_)) => {
                return Some(Difference {
                    file: name.clone(),
                    line: None,
                    reason: "in the target but missing after patching".into(),
                });
            }
            (None, None) => {}
        }
    }
    None
}

fn first_line_difference(got: &[u8], want: &[u8]) -> (u64, String) {
    let mut g = got.split_inclusive(|&b| b == b'\n');
    let mut w = want.split_inclusive(|&b| b == b'\n');
    let mut n = 0u64;
    loop {
        n += 1;
        match (g.next(), w.next()) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                let show = |l: &[u8]| {
                    let s = String::from_utf8_lossy(l);
                    let s: String = s.chars().take(80).collect();
                    s.escape_debug().to_string()
                };
                return (n, format!("patched `{}` vs target `{}`", show(a), show(b)));
            }
            (Some(_), None) => return (n, "patched file has extra lines".into()),
            (None, Some(_)) => return (n, "patched file is missing lines".into()),
            (None, None) => return (n, "files differ".into()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;
    use cvd_format::InfoEntry;

    /// A patched database of `files` small files, all listed in a signed `t.info`.
    fn patched_db(files: usize) -> Database {
        let header =
            Header::parse_line("ClamAV-VDB:01 Feb 2024 10-20 +0000:5:2:90:X:X:tester:1706782800")
                .unwrap();
        let mut db = Database::new();
        let mut entries = Vec::with_capacity(files);
        for i in 0..files {
            let data = format!("sig {i}\n").into_bytes();
            // Long names with a common prefix: a linear search per file compares
            // them byte by byte.
            entries.push(InfoEntry {
                name: format!("{}{i}.db", "f".repeat(40)),
                size: data.len() as u64,
                sha256: Sha256::digest(&data).into(),
            });
            db.insert(format!("{}{i}.db", "f".repeat(40)), data);
        }
        let key = testkit::keys::test_signing_keys().info;
        db.insert(
            "t.info",
            Info::build(&header, &entries, Some(&key)).unwrap(),
        );
        db
    }

    /// Worst case of the result check: as many files as `.info` entries, long names
    /// with a common prefix. The check is right, and the lookup of every file is
    /// linear in their number (1× and 16× the files: 16× the time for a set, 256× for
    /// the linear search per file it replaced; the bound is 80×).
    #[test]
    fn the_result_check_is_linear_in_files_and_entries() {
        let keys = testkit::keys::test_key_set();
        let small = patched_db(2_000);
        assert!(check_result("t", 5, &small, &keys).is_ok());
        let mut extra = small.clone();
        extra.insert("unlisted.db", b"x\n".to_vec());
        let err = check_result("t", 5, &extra, &keys).unwrap_err();
        assert!(
            err.to_string().contains("`unlisted.db` is not listed"),
            "{err}"
        );

        let large = patched_db(32_000);
        let info = |db: &Database| Info::parse("t.info", db.get("t.info").unwrap()).unwrap();
        let (small_info, large_info) = (info(&small), info(&large));
        testkit::scaling::assert_linear(
            "chain result check: files against .info entries",
            16,
            || assert!(first_unlisted(&small_info, "t.info", &small).is_none()),
            || assert!(first_unlisted(&large_info, "t.info", &large).is_none()),
        );
    }
}
