//! One-pass streaming verification of a whole container, with pluggable member sinks
//! (discard, memory, directory).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::digests::{BodyFeed, MemberFeed};
use crate::error::{Error, Result};
use crate::header::{HEADER_SIZE, Header};
use crate::info::Info;
use crate::keys::KeySet;
use crate::legacy;
use crate::tar::{TarLimits, TarReader};

/// Size and count limits applied while reading a container. Every limit is checked
/// before the corresponding bytes are buffered or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body (bytes after the header, compressed) read. Default 2 GiB.
    pub max_body_size: u64,
    /// Largest sum of member sizes (uncompressed). Default 4 GiB.
    pub max_unpacked_size: u64,
    /// Largest single member. Default 2 GiB.
    pub max_member_size: u64,
    /// Most members in the archive. Default 10 000.
    pub max_members: usize,
    /// Largest `.info` member (held in memory to parse it). Default 16 MiB.
    pub max_info_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_size: 2 << 30,
            max_unpacked_size: 4 << 30,
            max_member_size: 2 << 30,
            max_members: 10_000,
            max_info_size: 16 << 20,
        }
    }
}

/// What to trust and how strict to be. Defaults: the official keys, [`Limits::default`],
/// unsigned `.cld` containers accepted (the report says so), `.info` must carry a valid
/// `DSIG`.
///
/// ```
/// use cvd_format::{KeySet, Limits, VerifyOptions};
/// let opts = VerifyOptions::new()
///     .keys(KeySet::official())
///     .limits(Limits { max_members: 100, ..Limits::default() })
///     .require_signed(true);
/// assert!(opts.requires_signed());
/// ```
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    keys: KeySet,
    limits: Limits,
    require_signed: bool,
    allow_unsigned_info: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl VerifyOptions {
    /// Official keys, default limits.
    pub fn new() -> Self {
        Self {
            keys: KeySet::official(),
            limits: Limits::default(),
            require_signed: false,
            allow_unsigned_info: false,
        }
    }

    /// Use these trust anchors instead of the official keys.
    pub fn keys(mut self, keys: KeySet) -> Self {
        self.keys = keys;
        self
    }

    /// Use these limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Reject unsigned `.cld` containers (header MD5 and signature `X`).
    pub fn require_signed(mut self, yes: bool) -> Self {
        self.require_signed = yes;
        self
    }

    /// Accept a `.info` without a `DSIG` line (ClamAV's `CL_DB_UNSIGNED`, for local
    /// databases only). A `DSIG` that is present must still verify.
    pub fn allow_unsigned_info(mut self, yes: bool) -> Self {
        self.allow_unsigned_info = yes;
        self
    }

    /// The trust anchors in use.
    pub fn key_set(&self) -> &KeySet {
        &self.keys
    }

    /// The limits in use.
    pub fn limit_values(&self) -> &Limits {
        &self.limits
    }

    /// Whether unsigned containers are rejected.
    pub fn requires_signed(&self) -> bool {
        self.require_signed
    }
}

/// Outcome of one check in a [`Report`]. A failed check is an [`Error`], so a report
/// only ever holds checks that passed or did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckStatus {
    /// The check ran and passed.
    Passed,
    /// The container carries nothing to check (a `.cld` has no MD5 or legacy signature;
    /// an unsigned `.info` has no `DSIG` when that is allowed).
    NotPresent,
}

/// Which checks passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// Header MD5 equals the MD5 of the body.
    pub md5: CheckStatus,
    /// Legacy RSA signature in the header verifies with the CVD key.
    pub legacy_signature: CheckStatus,
    /// `.info` `DSIG` verifies with the INFO key.
    pub info_signature: CheckStatus,
    /// `.info` first line equals the container header (all fields but MD5/signature).
    pub info_header: CheckStatus,
    /// Every member (except `COPYING` and the `.info` itself) is listed in `.info` with
    /// its size and SHA-256, and every listed file is present.
    pub info_entries: CheckStatus,
}

/// Body encoding, detected as the reference client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip-compressed tar (every `.cvd`).
    Gzip,
    /// Plain tar: the body starts with the bytes `COPYING` (usual for `.cld`).
    None,
}

/// One archive member as listed in a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the contents.
    pub sha256: [u8; 32],
}

impl MemberInfo {
    /// The SHA-256 as 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> String {
        crate::hex(&self.sha256)
    }
}

/// Everything known about a verified container.
#[derive(Debug, Clone)]
pub struct Report {
    /// The container header.
    pub header: Header,
    /// The database name (`<name>.info` without `.info`).
    pub name: String,
    /// How the body is encoded.
    pub compression: Compression,
    /// The parsed `.info` member.
    pub info: Info,
    /// All members in archive order (including `COPYING` and `<name>.info`).
    pub members: Vec<MemberInfo>,
    /// Number of body bytes (after the 512-byte header).
    pub body_size: u64,
    /// MD5 of the body.
    pub body_md5: [u8; 16],
    /// Which checks passed.
    pub checks: Checks,
}

impl Report {
    /// `true` when the container is a signed `.cvd` whose legacy signature verified.
    pub fn is_signed(&self) -> bool {
        self.checks.legacy_signature == CheckStatus::Passed
    }
}

/// Receives member data while the archive streams. Implementations must not treat
/// anything as valid until [`MemberSink::commit`].
pub(crate) trait MemberSink {
    fn begin(&mut self, name: &str, size: u64) -> Result<()>;
    fn data(&mut self, chunk: &[u8]) -> Result<()>;
    fn end(&mut self) -> Result<()>;
    /// Called once after everything verified.
    fn commit(&mut self) -> Result<()>;
}

/// Discards data.
pub(crate) struct NullSink;

impl MemberSink for NullSink {
    fn begin(&mut self, _: &str, _: u64) -> Result<()> {
        Ok(())
    }
    fn data(&mut self, _: &[u8]) -> Result<()> {
        Ok(())
    }
    fn end(&mut self) -> Result<()> {
        Ok(())
    }
    fn commit(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Marker carried inside `io::Error` for errors of the source reader itself.
#[derive(Debug)]
struct SourceError(std::io::Error);
impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for SourceError {}

/// Marker carried inside `io::Error` when the body exceeds its limit.
#[derive(Debug)]
struct BodyTooLarge(u64);
impl std::fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "body larger than {}", self.0)
    }
}
impl std::error::Error for BodyTooLarge {}

/// Feeds everything read through it to the MD5 (on the hashing thread) and counts it;
/// enforces the body limit.
struct HashingReader<R> {
    inner: R,
    md5: BodyFeed,
    count: u64,
    limit: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = loop {
            match self.inner.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(std::io::Error::new(e.kind(), SourceError(e))),
            }
        };
        self.md5.update(&buf[..n]);
        self.count += n as u64;
        if self.count > self.limit {
            return Err(std::io::Error::other(BodyTooLarge(self.limit)));
        }
        Ok(n)
    }
}

/// Maps an I/O error seen above the hashing reader (possibly through the gzip decoder).
fn map_stream_error(e: std::io::Error, what: &'static str) -> Error {
    if let Some(inner) = e.get_ref() {
        if let Some(src) = inner.downcast_ref::<SourceError>() {
            return Error::io(
                format!("reading the body ({what})"),
                std::io::Error::new(src.0.kind(), src.0.to_string()),
            );
        }
        if let Some(limit) = inner.downcast_ref::<BodyTooLarge>() {
            return Error::limit("body size", limit.0);
        }
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Truncated { what },
        _ => Error::Gzip {
            reason: format!("{e} (while reading {what})"),
        },
    }
}

/// When the body fails to decompress or parse, the reference client would already
/// have refused the file for its MD5 (it checks MD5 and signature before reading the
/// archive). Report it the same way: drain the rest of the body through the hashing
/// reader (still bounded by the body limit) and, if the MD5 differs from the header's,
/// return that mismatch instead of the archive error. Errors from the source itself
/// (I/O) and limits are returned as they are.
fn prefer_md5_mismatch<R: Read>(err: Error, header: &Header, mut rest: HashingReader<R>) -> Error {
    let Some(expected) = header.md5 else {
        return err;
    };
    if matches!(err, Error::Io { .. }) || err.failed_check() == Some(crate::Check::Limits) {
        return err;
    }
    if std::io::copy(&mut rest, &mut std::io::sink()).is_err() {
        return err;
    }
    let Ok(actual) = rest.md5.finish() else {
        return err;
    };
    if actual == expected {
        err
    } else {
        Error::Md5Mismatch {
            header: crate::hex(&expected),
            actual: crate::hex(&actual),
        }
    }
}

type BodySource<R> = std::io::Chain<std::io::Cursor<Vec<u8>>, HashingReader<R>>;

/// Runs the whole verification pipeline over `reader`, feeding member data to `sink`.
/// The digests run on a second thread ([`crate::digests`]); everything else, the reader
/// and the sink stay on the calling thread.
pub(crate) fn run<R: Read>(
    reader: R,
    opts: &VerifyOptions,
    sink: &mut dyn MemberSink,
) -> Result<Report> {
    std::thread::scope(|scope| {
        let (body, members) = crate::digests::spawn(scope);
        run_with(reader, opts, sink, body, members)
    })
}

fn run_with<R: Read>(
    mut reader: R,
    opts: &VerifyOptions,
    sink: &mut dyn MemberSink,
    body_feed: BodyFeed,
    mut member_feed: MemberFeed,
) -> Result<Report> {
    let limits = opts.limits;
    let mut raw = [0u8; HEADER_SIZE];
    read_header(&mut reader, &mut raw)?;
    let header = Header::parse(&raw)?;

    let (md5_status, legacy_status) = match (&header.md5, &header.dsig) {
        (Some(md5), Some(dsig)) => {
            // Fail fast: the signature must cover the header's MD5 before we read a
            // single body byte. The body MD5 is compared at the end.
            legacy::verify_dsig(&opts.keys.cvd, dsig, md5)?;
            (CheckStatus::Passed, CheckStatus::Passed)
        }
        (None, None) if !opts.require_signed => (CheckStatus::NotPresent, CheckStatus::NotPresent),
        (None, None) => return Err(Error::Unsigned),
        (Some(_), None) => {
            return Err(Error::LegacySignature {
                reason: "header has an MD5 but no signature (`X`)".into(),
            });
        }
        (None, Some(_)) => {
            return Err(Error::LegacySignature {
                reason: "header has a signature but no MD5 (`X`)".into(),
            });
        }
    };

    let mut hashing = HashingReader {
        inner: reader,
        md5: body_feed,
        count: 0,
        limit: limits.max_body_size,
    };
    // Peek the first 7 bytes to tell plain tar (`COPYING`) from gzip.
    let mut prefix = [0u8; 7];
    let got = read_some(&mut hashing, &mut prefix)?;
    let prefix = prefix[..got].to_vec();
    let compression = if prefix == b"COPYING" {
        Compression::None
    } else if got >= 2 && prefix[..2] == [0x1f, 0x8b] {
        Compression::Gzip
    } else if got < 7 {
        return Err(Error::Truncated { what: "body" });
    } else {
        let err = Error::Gzip {
            reason: "body is neither gzip (1f 8b) nor a plain tar starting with COPYING".into(),
        };
        return Err(prefer_md5_mismatch(err, &header, hashing));
    };
    let source: BodySource<R> = std::io::Cursor::new(prefix).chain(hashing);
    let tar_limits = TarLimits {
        max_member_size: limits.max_member_size,
        max_total_size: limits.max_unpacked_size,
        max_members: limits.max_members,
    };

    let (state, mut source) = match compression {
        Compression::Gzip => {
            let gz = flate2::bufread::GzDecoder::new(BufReader::new(source));
            let mut tar = TarReader::new(gz, tar_limits);
            let walked = walk(
                &mut tar,
                &header,
                opts,
                sink,
                &mut member_feed,
                map_stream_error,
            )
            .and_then(|state| tar.finish(map_stream_error).map(|()| state));
            let state = match walked {
                Ok(state) => state,
                Err(e) => {
                    let (_, hashing) = tar.into_inner().into_inner().into_inner().into_inner();
                    return Err(prefer_md5_mismatch(e, &header, hashing));
                }
            };
            let gz = tar.into_inner();
            // Anything after the gzip member (another member, garbage) is refused.
            let mut rest = gz.into_inner();
            let leftover = rest
                .fill_buf()
                .map_err(|e| map_stream_error(e, "data after the gzip stream"))?;
            if !leftover.is_empty() {
                return Err(Error::Gzip {
                    reason: "data after the end of the gzip stream".into(),
                });
            }
            (state, rest.into_inner())
        }
        Compression::None => {
            let mut tar = TarReader::new(source, tar_limits);
            let walked = walk(
                &mut tar,
                &header,
                opts,
                sink,
                &mut member_feed,
                map_stream_error,
            )
            .and_then(|state| tar.finish(map_stream_error).map(|()| state));
            match walked {
                Ok(state) => (state, tar.into_inner()),
                Err(e) => {
                    let (_, hashing) = tar.into_inner().into_inner();
                    return Err(prefer_md5_mismatch(e, &header, hashing));
                }
            }
        }
    };
    // Drain to EOF (nothing should be left) so the MD5 covers the whole file.
    let mut tail = [0u8; 1];
    if read_some(&mut source, &mut tail)? != 0 {
        return Err(Error::Gzip {
            reason: "data after the end of the body".into(),
        });
    }
    let (_, mut hashing) = source.into_inner();
    let body_md5 = hashing.md5.finish()?;
    if let Some(md5) = &header.md5
        && *md5 != body_md5
    {
        return Err(Error::Md5Mismatch {
            header: crate::hex(md5),
            actual: crate::hex(&body_md5),
        });
    }

    let WalkState {
        info,
        info_name,
        mut members,
        info_signature,
    } = state;
    let shas = member_feed.finish()?;
    if shas.len() != members.len() {
        return Err(Error::io(
            "hashing the members",
            std::io::Error::other("the hashing thread lost a member"),
        ));
    }
    for (m, sha) in members.iter_mut().zip(shas) {
        m.sha256 = sha;
    }
    let (Some(info), Some(info_name)) = (info, info_name) else {
        return Err(Error::InfoMember {
            reason: "has no `<name>.info` member".into(),
        });
    };
    check_entries(&info, &info_name, &members)?;
    sink.commit()?;
    let name = info_name
        .strip_suffix(".info")
        .unwrap_or(&info_name)
        .to_string();
    Ok(Report {
        header,
        name,
        compression,
        info,
        members,
        body_size: hashing.count,
        body_md5,
        checks: Checks {
            md5: md5_status,
            legacy_signature: legacy_status,
            info_signature,
            info_header: CheckStatus::Passed,
            info_entries: CheckStatus::Passed,
        },
    })
}

struct WalkState {
    info: Option<Info>,
    info_name: Option<String>,
    members: Vec<MemberInfo>,
    info_signature: CheckStatus,
}

fn walk<R: Read>(
    tar: &mut TarReader<R>,
    header: &Header,
    opts: &VerifyOptions,
    sink: &mut dyn MemberSink,
    shas: &mut MemberFeed,
    map: crate::tar::IoMap,
) -> Result<WalkState> {
    let mut state = WalkState {
        info: None,
        info_name: None,
        members: Vec::new(),
        info_signature: CheckStatus::NotPresent,
    };
    while let Some(entry) = tar.next_entry(map)? {
        let is_info = entry.name.ends_with(".info");
        if is_info {
            if let Some(first) = &state.info_name {
                return Err(Error::InfoMember {
                    reason: format!("has two `.info` members: `{first}` and `{}`", entry.name),
                });
            }
            if entry.size > opts.limits.max_info_size {
                return Err(Error::limit(
                    format!("size of `{}` ({} bytes)", entry.name, entry.size),
                    opts.limits.max_info_size,
                ));
            }
        }
        sink.begin(&entry.name, entry.size)?;
        let mut info_buf = Vec::new();
        tar.read_data(map, |chunk| {
            shas.update(chunk);
            if is_info {
                info_buf.extend_from_slice(chunk);
            }
            sink.data(chunk)
        })?;
        sink.end()?;
        shas.end_member();
        if is_info {
            let info = Info::parse(&entry.name, &info_buf)?;
            // Fail fast on the .info: signature, then header consistency.
            match (&info.dsig, opts.allow_unsigned_info) {
                (None, true) => state.info_signature = CheckStatus::NotPresent,
                _ => {
                    info.verify_signature(&entry.name, &opts.keys.info)?;
                    state.info_signature = CheckStatus::Passed;
                }
            }
            header.check_matches_info(&info.header)?;
            state.info = Some(info);
            state.info_name = Some(entry.name.clone());
        }
        // The SHA-256 is filled in from the hashing thread once the walk is done.
        state.members.push(MemberInfo {
            name: entry.name,
            size: entry.size,
            sha256: [0; 32],
        });
    }
    Ok(state)
}

/// Every member except `COPYING` and the `.info` itself must be listed; every listed
/// file must be present with the same size and SHA-256.
fn check_entries(info: &Info, info_name: &str, members: &[MemberInfo]) -> Result<()> {
    let listed: HashMap<&str, &crate::info::InfoEntry> =
        info.entries.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut present = HashSet::new();
    for m in members {
        present.insert(m.name.as_str());
        match listed.get(m.name.as_str()) {
            Some(entry) => {
                if entry.size != m.size {
                    return Err(Error::MemberMismatch {
                        name: m.name.clone(),
                        reason: format!("size is {} but `.info` says {}", m.size, entry.size),
                    });
                }
                if entry.sha256 != m.sha256 {
                    return Err(Error::MemberMismatch {
                        name: m.name.clone(),
                        reason: format!(
                            "SHA-256 is {} but `.info` says {}",
                            crate::hex(&m.sha256),
                            crate::hex(&entry.sha256)
                        ),
                    });
                }
            }
            None if m.name == "COPYING" || m.name == info_name => {}
            None => {
                return Err(Error::MemberNotInInfo {
                    name: m.name.clone(),
                });
            }
        }
    }
    for e in &info.entries {
        if !present.contains(e.name.as_str()) {
            return Err(Error::MissingMember {
                name: e.name.clone(),
            });
        }
    }
    Ok(())
}

/// Reads the 512-byte header straight from the source (errors are local I/O errors).
fn read_header(reader: &mut impl Read, buf: &mut [u8; HEADER_SIZE]) -> Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return Err(Error::Truncated { what: "header" }),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("reading the header", e)),
        }
    }
    Ok(())
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(map_stream_error(e, "body")),
        }
    }
    Ok(filled)
}

/// Verifies a whole container read from `reader` and reports everything about it.
///
/// The body is streamed once: MD5 of the raw bytes, gunzip (or plain tar), SHA-256 of
/// each member, `.info` checks at the end. Memory use is bounded by the `.info` size
/// limit plus a few buffers, independent of the container size.
pub fn verify_reader(reader: impl Read, opts: &VerifyOptions) -> Result<Report> {
    run(reader, opts, &mut NullSink)
}

/// Verifies the container at `path` (see [`verify_reader`]). Errors name the file.
///
/// ```no_run
/// let report = cvd_format::verify_file("daily.cvd".as_ref(), &cvd_format::VerifyOptions::new())?;
/// println!("{} v{}: {} members", report.name, report.header.version, report.members.len());
/// # Ok::<(), cvd_format::Error>(())
/// ```
pub fn verify_file(path: &Path, opts: &VerifyOptions) -> Result<Report> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io("opening the container", e).in_file(path))?;
    verify_reader(BufReader::with_capacity(64 * 1024, file), opts).map_err(|e| e.in_file(path))
}
