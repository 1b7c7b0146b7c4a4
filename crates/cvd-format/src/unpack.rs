//! Verified extraction: into memory or into a directory.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::verify::{MemberSink, Report, VerifyOptions, run};

/// One member's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberData {
    /// File name.
    pub name: String,
    /// Contents.
    pub data: Vec<u8>,
}

/// A verified container read into memory.
#[derive(Debug, Clone)]
pub struct Contents {
    /// The verification report.
    pub report: Report,
    /// Every member in archive order (including `COPYING` and `<name>.info`).
    pub members: Vec<MemberData>,
}

impl Contents {
    /// A member's contents by name.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.members
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.data.as_slice())
    }
}

struct MemorySink {
    members: Vec<MemberData>,
}

impl MemberSink for MemorySink {
    fn begin(&mut self, name: &str, size: u64) -> Result<()> {
        // Sizes were checked against the limits by the tar reader before this call.
        let cap = usize::try_from(size.min(1 << 24)).unwrap_or(0);
        self.members.push(MemberData {
            name: name.to_string(),
            data: Vec::with_capacity(cap),
        });
        Ok(())
    }
    fn data(&mut self, chunk: &[u8]) -> Result<()> {
        if let Some(m) = self.members.last_mut() {
            m.data.extend_from_slice(chunk);
        }
        Ok(())
    }
    fn end(&mut self) -> Result<()> {
        Ok(())
    }
    fn commit(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Verifies the container from `reader` and returns all members in memory.
///
/// Memory is bounded by [`crate::Limits::max_unpacked_size`]; use [`unpack_reader`] for
/// large databases.
pub fn read_members(reader: impl Read, opts: &VerifyOptions) -> Result<Contents> {
    let mut sink = MemorySink {
        members: Vec::new(),
    };
    let report = run(reader, opts, &mut sink)?;
    Ok(Contents {
        report,
        members: sink.members,
    })
}

/// [`read_members`] on the file at `path`. Errors name the file.
pub fn read_members_file(path: &Path, opts: &VerifyOptions) -> Result<Contents> {
    let file = File::open(path).map_err(|e| Error::io("opening the container", e).in_file(path))?;
    read_members(std::io::BufReader::new(file), opts).map_err(|e| e.in_file(path))
}

/// Writes members into a hidden staging directory inside the destination; on commit,
/// links each file into the destination without replacing anything.
struct DirSink {
    dest: PathBuf,
    staging: PathBuf,
    current: Option<BufWriter<File>>,
    names: Vec<String>,
    committed: bool,
}

static STAGING_COUNTER: AtomicU64 = AtomicU64::new(0);

impl DirSink {
    fn new(dest: &Path) -> Result<Self> {
        let meta = fs::metadata(dest)
            .map_err(|e| Error::io("reading the destination directory", e).in_file(dest))?;
        if !meta.is_dir() {
            return Err(Error::io(
                "checking the destination",
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            )
            .in_file(dest));
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        for _ in 0..100 {
            let n = STAGING_COUNTER.fetch_add(1, Ordering::Relaxed);
            let staging = dest.join(format!(".cvd-unpack-{}-{n}-{nanos}", std::process::id()));
            match fs::create_dir(&staging) {
                Ok(()) => {
                    return Ok(Self {
                        dest: dest.to_path_buf(),
                        staging,
                        current: None,
                        names: Vec::new(),
                        committed: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::io("creating a staging directory", e).in_file(&staging));
                }
            }
        }
        Err(Error::io(
            "creating a staging directory",
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "no free name"),
        )
        .in_file(dest))
    }

    fn cleanup(&mut self) {
        self.current = None;
        let _ = fs::remove_dir_all(&self.staging);
    }
}

impl Drop for DirSink {
    fn drop(&mut self) {
        if !self.committed {
            self.cleanup();
        }
    }
}

impl MemberSink for DirSink {
    fn begin(&mut self, name: &str, _size: u64) -> Result<()> {
        // `name` passed `check_member_name`: flat, no separators, no `..`.
        let path = self.staging.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io("creating a member file", e).in_file(&path))?;
        self.current = Some(BufWriter::with_capacity(64 * 1024, file));
        self.names.push(name.to_string());
        Ok(())
    }
    fn data(&mut self, chunk: &[u8]) -> Result<()> {
        if let Some(w) = &mut self.current {
            w.write_all(chunk)
                .map_err(|e| Error::io("writing a member file", e).in_file(&self.staging))?;
        }
        Ok(())
    }
    fn end(&mut self) -> Result<()> {
        if let Some(w) = self.current.take() {
            let file = w.into_inner().map_err(|e| {
                Error::io("writing a member file", e.into_error()).in_file(&self.staging)
            })?;
            file.sync_all()
                .map_err(|e| Error::io("syncing a member file", e).in_file(&self.staging))?;
        }
        Ok(())
    }
    fn commit(&mut self) -> Result<()> {
        let mut linked: Vec<PathBuf> = Vec::new();
        for name in &self.names {
            let from = self.staging.join(name);
            let to = self.dest.join(name);
            // hard_link never replaces an existing file: only fresh files appear.
            if let Err(e) = fs::hard_link(&from, &to) {
                for done in &linked {
                    let _ = fs::remove_file(done);
                }
                return Err(Error::io(
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        "creating a member file (it already exists)"
                    } else {
                        "linking a member file into place"
                    },
                    e,
                )
                .in_file(&to));
            }
            linked.push(to);
        }
        if let Ok(dir) = File::open(&self.dest) {
            let _ = dir.sync_all();
        }
        self.committed = true;
        self.cleanup();
        Ok(())
    }
}

/// Verifies the container from `reader` while extracting it into the existing directory
/// `dir`.
///
/// Members are written into a hidden staging directory inside `dir` and only linked into
/// `dir` itself once the whole container has verified; existing files are never
/// replaced (a name clash fails the call and removes what it added). On any error
/// nothing new is left in `dir`.
pub fn unpack_reader(reader: impl Read, dir: &Path, opts: &VerifyOptions) -> Result<Report> {
    let mut sink = DirSink::new(dir)?;
    run(reader, opts, &mut sink)
}

/// [`unpack_reader`] on the file at `path`. Errors name the container file.
///
/// ```no_run
/// use cvd_format::{unpack, VerifyOptions};
/// let report = unpack("daily.cvd".as_ref(), "daily-unpacked".as_ref(), &VerifyOptions::new())?;
/// assert!(report.members.iter().any(|m| m.name == "daily.info"));
/// # Ok::<(), cvd_format::Error>(())
/// ```
pub fn unpack(path: &Path, dir: &Path, opts: &VerifyOptions) -> Result<Report> {
    let file = File::open(path).map_err(|e| Error::io("opening the container", e).in_file(path))?;
    unpack_reader(
        std::io::BufReader::with_capacity(64 * 1024, file),
        dir,
        opts,
    )
    .map_err(|e| e.in_file(path))
}
