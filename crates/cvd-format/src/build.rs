//! Building containers: signed `.cvd` and unsigned `.cld`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::header::{HEADER_SIZE, Header};
use crate::info::{Info, InfoEntry};
use crate::keys::{SigningKey, SigningKeys};
use crate::verify::Limits;
use crate::{legacy, names, tar};

/// Where a member's bytes come from.
#[derive(Debug, Clone)]
enum Source {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl Source {
    fn open(&self) -> Result<Box<dyn Read + '_>> {
        Ok(match self {
            Source::Bytes(b) => Box::new(b.as_slice()),
            Source::File(p) => Box::new(std::io::BufReader::new(
                File::open(p).map_err(|e| Error::io("opening a member file", e).in_file(p))?,
            )),
        })
    }
}

/// Builds a `.cvd` or `.cld` from members.
///
/// The `.info` member (`<name>.info`) is generated: header line from the builder's
/// settings, one `name:size:sha256` line per member except `COPYING`, and a `DSIG` when a
/// key is given. Members are written in the order `COPYING` (if given), `<name>.info`,
/// then the others in the order they were added.
///
/// ```
/// use cvd_format::{CvdBuilder, KeySet, SigningKey, SigningKeys, VerifyOptions};
/// let key = SigningKey::generate(2048)?;
/// let mut cvd = std::io::Cursor::new(Vec::new());
/// CvdBuilder::new("private", 7)
///     .flevel(90)
///     .builder("me")
///     .signatures(1)
///     .member("private.hdb", b"44d88612fea8a8f36de82e1278abb02f:68:Eicar\n".to_vec())
///     .write_cvd(&mut cvd, &SigningKeys::single(key.clone()))?;
/// let opts = VerifyOptions::new().keys(KeySet::single(key.public_key()));
/// let report = cvd_format::verify_reader(cvd.get_ref().as_slice(), &opts)?;
/// assert_eq!(report.header.version, 7);
/// assert!(report.is_signed());
/// # Ok::<(), cvd_format::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CvdBuilder {
    name: String,
    version: u32,
    flevel: u32,
    builder: String,
    build_time: Option<OffsetDateTime>,
    sign_time: Option<Option<i64>>,
    signatures: Option<u32>,
    members: Vec<(String, Source)>,
    limits: Limits,
}

impl CvdBuilder {
    /// A builder for database `name` (e.g. `daily`) at `version`. Defaults: f-level 0,
    /// builder `cvd-format`, build time now (UTC, minute precision), sign time = build
    /// time, signature count counted from the members (see [`CvdBuilder::signatures`]).
    pub fn new(name: &str, version: u32) -> Self {
        Self {
            name: name.to_string(),
            version,
            flevel: 0,
            builder: "cvd-format".to_string(),
            build_time: None,
            sign_time: None,
            signatures: None,
            members: Vec::new(),
            limits: Limits::default(),
        }
    }

    /// Minimum engine functionality level.
    pub fn flevel(mut self, flevel: u32) -> Self {
        self.flevel = flevel;
        self
    }

    /// Builder name (header field 8).
    pub fn builder(mut self, builder: &str) -> Self {
        self.builder = builder.to_string();
        self
    }

    /// Build time (header field 2); seconds are dropped (the format has minutes).
    pub fn build_time(mut self, time: OffsetDateTime) -> Self {
        self.build_time = Some(time);
        self
    }

    /// Sign time in Unix seconds (header field 9), or `None` to omit the field.
    pub fn sign_time(mut self, time: Option<i64>) -> Self {
        self.sign_time = Some(time);
        self
    }

    /// Signature count (header field 4). Without it the count is the number of
    /// non-empty lines not starting with `#` in every member except `COPYING`, `*.info`
    /// and `*.cfg`, with each `*.cbc` (bytecode) file counting once, an approximation of
    /// `sigtool`'s count.
    pub fn signatures(mut self, count: u32) -> Self {
        self.signatures = Some(count);
        self
    }

    /// Limits applied to the inputs (member count and sizes).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Adds a member from bytes. A `<name>.info` member is refused at write time (it is
    /// generated).
    pub fn member(mut self, name: &str, data: Vec<u8>) -> Self {
        self.members.push((name.to_string(), Source::Bytes(data)));
        self
    }

    /// Adds every regular file of `dir` (sorted by name) as a member, read at write
    /// time. Names must be safe member names; subdirectories and other file types are
    /// errors.
    pub fn members_from_dir(mut self, dir: &Path) -> Result<Self> {
        for (name, path) in list_dir(dir, &self.limits)? {
            self.members.push((name, Source::File(path)));
        }
        Ok(self)
    }

    fn info_name(&self) -> String {
        format!("{}.info", self.name)
    }

    /// Validates members, hashes them, counts signatures.
    fn prepare(&self) -> Result<(Header, Vec<InfoEntry>, Vec<usize>)> {
        names::check_member_name(&self.info_name()).map_err(|e| Error::Build {
            reason: format!("database name `{}`: {e}", self.name),
        })?;
        // The generated `.info` is one more member.
        if self.members.len() >= self.limits.max_members {
            return Err(Error::limit(
                "number of members",
                self.limits.max_members as u64,
            ));
        }
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        let mut order = Vec::new();
        let mut copying = None;
        let mut counted = 0u64;
        let mut total = 0u64;
        for (idx, (name, source)) in self.members.iter().enumerate() {
            names::check_member_name(name)?;
            if !seen.insert(name.as_str()) {
                return Err(Error::Build {
                    reason: format!("duplicate member `{name}`"),
                });
            }
            if name.ends_with(".info") {
                return Err(Error::Build {
                    reason: format!("member `{name}`: `.info` members are generated"),
                });
            }
            let (size, sha256, lines) = hash_source(source, name, &self.limits)?;
            total = total.saturating_add(size);
            if total > self.limits.max_unpacked_size {
                return Err(Error::limit(
                    "total member size",
                    self.limits.max_unpacked_size,
                ));
            }
            if name == "COPYING" {
                copying = Some(idx);
                continue;
            }
            counted += if name.ends_with(".cbc") {
                1
            } else if name.ends_with(".cfg") {
                0
            } else {
                lines
            };
            entries.push(InfoEntry {
                name: name.clone(),
                size,
                sha256,
            });
            order.push(idx);
        }
        if let Some(c) = copying {
            order.insert(0, c);
        }
        let signatures = match self.signatures {
            Some(n) => n,
            None => u32::try_from(counted).map_err(|_| Error::Build {
                reason: "too many signatures for the header".into(),
            })?,
        };
        let now = OffsetDateTime::now_utc();
        let build_time = self.build_time.unwrap_or(now);
        let build_time = build_time
            .replace_second(0)
            .and_then(|t| t.replace_nanosecond(0))
            .map_err(|e| Error::Build {
                reason: format!("build time: {e}"),
            })?;
        let sign_time = self.sign_time.unwrap_or(Some(build_time.unix_timestamp()));
        let header = Header {
            build_time,
            version: self.version,
            signatures,
            flevel: self.flevel,
            md5: None,
            dsig: None,
            builder: self.builder.clone(),
            sign_time,
        };
        header.to_bytes()?;
        Ok((header, entries, order))
    }

    fn write_tar(&self, out: &mut impl Write, info_bytes: &[u8], order: &[usize]) -> Result<()> {
        let mut wrote_info = false;
        let write_info = |out: &mut dyn Write| -> Result<()> {
            let mut out = out;
            tar::write_header(&mut out, &self.info_name(), info_bytes.len() as u64)?;
            out.write_all(info_bytes)
                .map_err(|e| Error::io("writing the .info member", e))?;
            tar::write_padding(&mut out, info_bytes.len() as u64)
        };
        for &idx in order {
            let (name, source) = &self.members[idx];
            if name != "COPYING" && !wrote_info {
                write_info(out)?;
                wrote_info = true;
            }
            write_member(out, name, source)?;
        }
        if !wrote_info {
            write_info(out)?;
        }
        tar::write_end(out)
    }

    /// Writes a signed `.cvd` (gzip body, MD5 and legacy signature in the header,
    /// `.info` signed with `keys.info`) and returns its header. `out` must be seekable:
    /// the header, which holds the body's MD5, is written last.
    pub fn write_cvd<W: Write + Seek>(&self, mut out: W, keys: &SigningKeys) -> Result<Header> {
        let (mut header, entries, order) = self.prepare()?;
        let info_bytes = Info::build(&header, &entries, Some(&keys.info))?;
        let start = out
            .stream_position()
            .map_err(|e| Error::io("seeking the output", e))?;
        out.write_all(&[b' '; HEADER_SIZE])
            .map_err(|e| Error::io("writing the header", e))?;
        let mut body = Md5Writer {
            inner: &mut out,
            md5: Md5::new(),
        };
        {
            let mut gz = flate2::write::GzEncoder::new(&mut body, flate2::Compression::best());
            self.write_tar(&mut gz, &info_bytes, &order)?;
            gz.finish()
                .map_err(|e| Error::io("finishing the gzip body", e))?;
        }
        let md5: [u8; 16] = body.md5.finalize().into();
        header.md5 = Some(md5);
        header.dsig = Some(legacy::sign_md5(&keys.cvd, &md5)?);
        let raw = header.to_bytes()?;
        out.seek(SeekFrom::Start(start))
            .map_err(|e| Error::io("seeking the output", e))?;
        out.write_all(&raw)
            .map_err(|e| Error::io("writing the header", e))?;
        out.seek(SeekFrom::End(0))
            .map_err(|e| Error::io("seeking the output", e))?;
        out.flush()
            .map_err(|e| Error::io("flushing the output", e))?;
        Ok(header)
    }

    /// Writes an unsigned `.cld` (plain tar body starting with `COPYING`, header MD5 and
    /// signature `X`). `.info` gets a `DSIG` if `info_key` is given. A `COPYING` member is
    /// required: the reference client recognises an uncompressed body by it.
    pub fn write_cld<W: Write>(&self, mut out: W, info_key: Option<&SigningKey>) -> Result<Header> {
        if !self.members.iter().any(|(n, _)| n == "COPYING") {
            return Err(Error::Build {
                reason: "a .cld needs a COPYING member (it marks the plain tar body)".into(),
            });
        }
        let (header, entries, order) = self.prepare()?;
        let info_bytes = Info::build(&header, &entries, info_key)?;
        out.write_all(&header.to_bytes()?)
            .map_err(|e| Error::io("writing the header", e))?;
        self.write_tar(&mut out, &info_bytes, &order)?;
        out.flush()
            .map_err(|e| Error::io("flushing the output", e))?;
        Ok(header)
    }
}

struct Md5Writer<W> {
    inner: W,
    md5: Md5,
}

impl<W: Write> Write for Md5Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.md5.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Size, SHA-256 and counted signature lines of a member source.
fn hash_source(source: &Source, name: &str, limits: &Limits) -> Result<(u64, [u8; 32], u64)> {
    let mut reader = source.open()?;
    let mut sha = Sha256::new();
    let mut size = 0u64;
    let mut lines = 0u64;
    let mut line_start = true;
    let mut line_counts = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("reading member `{name}`"), e)),
        };
        sha.update(&buf[..n]);
        size += n as u64;
        if size > limits.max_member_size {
            return Err(Error::limit(
                format!("size of member `{name}`"),
                limits.max_member_size,
            ));
        }
        for &b in &buf[..n] {
            if line_start {
                line_counts = b != b'#' && b != b'\n';
                line_start = false;
            }
            if b == b'\n' {
                if line_counts {
                    lines += 1;
                }
                line_start = true;
                line_counts = false;
            }
        }
    }
    if !line_start && line_counts {
        lines += 1;
    }
    Ok((size, sha.finalize().into(), lines))
}

/// Copies a member (header, data, padding), checking the size did not change since it
/// was hashed.
fn write_member(out: &mut impl Write, name: &str, source: &Source) -> Result<()> {
    let size = match source {
        Source::Bytes(b) => b.len() as u64,
        Source::File(p) => std::fs::metadata(p)
            .map_err(|e| Error::io("reading member metadata", e).in_file(p))?
            .len(),
    };
    tar::write_header(out, name, size)?;
    let mut reader = source.open()?.take(size);
    let copied = std::io::copy(&mut reader, out)
        .map_err(|e| Error::io(format!("copying member `{name}`"), e))?;
    if copied != size {
        return Err(Error::Build {
            reason: format!("member `{name}` changed size while being written"),
        });
    }
    tar::write_padding(out, size)
}

/// Lists the regular files of `dir`, sorted by name, refusing unsafe names and other
/// file types.
fn list_dir(dir: &Path, limits: &Limits) -> Result<Vec<(String, PathBuf)>> {
    let rd =
        std::fs::read_dir(dir).map_err(|e| Error::io("listing the directory", e).in_file(dir))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io("listing the directory", e).in_file(dir))?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|raw| Error::UnsafeName {
                name: raw.to_string_lossy().into_owned(),
                reason: "not UTF-8",
            })?;
        names::check_member_name(&name)?;
        let ft = entry
            .file_type()
            .map_err(|e| Error::io("reading the file type", e).in_file(&path))?;
        if !ft.is_file() {
            return Err(Error::Build {
                reason: format!("`{}` is not a regular file", path.display()),
            });
        }
        if out.len() >= limits.max_members {
            return Err(Error::limit("number of files", limits.max_members as u64));
        }
        out.push((name, path));
    }
    out.sort();
    Ok(out)
}

/// Writes a `.cld` from an unpacked database directory, as `freshclam` does after
/// applying cdiffs: the header is the first line of the directory's single `*.info`
/// (padded to 512 bytes, MD5 and signature `X`), the body a plain tar of `COPYING`, the
/// `.info`, then the files the `.info` lists, in `.info` order.
///
/// Every listed file must exist with the listed size and SHA-256, and the directory
/// must hold nothing else (besides `COPYING` and the `.info`). The `.info` signature is
/// not checked here: verify the result with [`crate::verify_reader`].
pub fn write_cld_from_dir<W: Write>(dir: &Path, mut out: W, limits: &Limits) -> Result<Header> {
    let files = list_dir(dir, limits)?;
    let infos: Vec<&(String, PathBuf)> =
        files.iter().filter(|(n, _)| n.ends_with(".info")).collect();
    let [(info_name, info_path)] = infos.as_slice() else {
        return Err(Error::Build {
            reason: format!(
                "`{}` must hold exactly one `*.info` file, found {}",
                dir.display(),
                infos.len()
            ),
        }
        .in_file(dir));
    };
    let info_len = std::fs::metadata(info_path)
        .map_err(|e| Error::io("reading .info metadata", e).in_file(info_path))?
        .len();
    if info_len > limits.max_info_size {
        return Err(Error::limit(
            format!("size of `{info_name}`"),
            limits.max_info_size,
        ));
    }
    let info_bytes =
        std::fs::read(info_path).map_err(|e| Error::io("reading .info", e).in_file(info_path))?;
    let info = Info::parse(info_name, &info_bytes)?;
    let mut header = info.header.clone();
    header.md5 = None;
    header.dsig = None;
    let copying = files
        .iter()
        .find(|(n, _)| n == "COPYING")
        .ok_or_else(|| Error::Build {
            reason: format!("`{}` has no COPYING file", dir.display()),
        })?;
    let listed: HashSet<&str> = info.entries.iter().map(|e| e.name.as_str()).collect();
    for (name, _) in &files {
        if name != "COPYING" && name != info_name && !listed.contains(name.as_str()) {
            return Err(Error::MemberNotInInfo { name: name.clone() });
        }
    }
    let present: HashSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let mut ordered: Vec<(String, Source)> = Vec::new();
    for e in &info.entries {
        let path = dir.join(&e.name);
        if !present.contains(e.name.as_str()) {
            return Err(Error::MissingMember {
                name: e.name.clone(),
            });
        }
        let source = Source::File(path);
        let (size, sha256, _) = hash_source(&source, &e.name, limits)?;
        if size != e.size || sha256 != e.sha256 {
            return Err(Error::MemberMismatch {
                name: e.name.clone(),
                reason: "size or SHA-256 differs from `.info`".into(),
            });
        }
        ordered.push((e.name.clone(), source));
    }
    out.write_all(&header.to_bytes()?)
        .map_err(|e| Error::io("writing the header", e))?;
    let copying_src = Source::File(copying.1.clone());
    write_member(&mut out, "COPYING", &copying_src)?;
    tar::write_header(&mut out, info_name, info_bytes.len() as u64)?;
    out.write_all(&info_bytes)
        .map_err(|e| Error::io("writing the .info member", e))?;
    tar::write_padding(&mut out, info_bytes.len() as u64)?;
    for (name, source) in &ordered {
        if name == "COPYING" {
            continue;
        }
        write_member(&mut out, name, source)?;
    }
    tar::write_end(&mut out)?;
    out.flush()
        .map_err(|e| Error::io("flushing the output", e))?;
    Ok(header)
}
