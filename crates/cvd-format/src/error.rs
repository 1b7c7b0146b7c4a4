//! The crate's one error type.

use std::fmt;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A field of the 512-byte container header (or of the `.info` header line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderField {
    /// The header as a whole: its length, encoding or number of fields.
    Layout,
    /// Field 1, `ClamAV-VDB`.
    Magic,
    /// Field 2, the build time (`%d %b %Y %H-%M %z`).
    BuildTime,
    /// Field 3, the database version.
    Version,
    /// Field 4, the number of signatures.
    Signatures,
    /// Field 5, the functionality level.
    FunctionalityLevel,
    /// Field 6, the MD5 of the body (or `X`).
    Md5,
    /// Field 7, the legacy digital signature (or `X`).
    Dsig,
    /// Field 8, the builder name.
    Builder,
    /// Field 9, the sign time (Unix seconds).
    SignTime,
    /// The space padding after the last field.
    Padding,
}

impl fmt::Display for HeaderField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderField::Layout => "layout",
            HeaderField::Magic => "magic",
            HeaderField::BuildTime => "build time",
            HeaderField::Version => "version",
            HeaderField::Signatures => "signatures",
            HeaderField::FunctionalityLevel => "functionality level",
            HeaderField::Md5 => "MD5",
            HeaderField::Dsig => "digital signature",
            HeaderField::Builder => "builder",
            HeaderField::SignTime => "sign time",
            HeaderField::Padding => "padding",
        })
    }
}

/// Which verification check an [`Error`] reports as failed (see [`Error::failed_check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Check {
    /// The 512-byte header could not be parsed.
    Header,
    /// The MD5 of the body differs from the header's.
    Md5,
    /// The legacy RSA signature in the header.
    LegacySignature,
    /// The `DSIG` (versig2, RSA-PSS) signature of the `.info` member.
    InfoSignature,
    /// The `.info` header line against the container header.
    InfoHeader,
    /// The `.info` member list (names, sizes, SHA-256) against the archive members.
    InfoEntries,
    /// The compressed stream or the tar archive structure (including unsafe member names).
    Archive,
    /// A configured size or count limit.
    Limits,
    /// A ClamAV 1.5 detached `.sign` signature.
    Sign,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Check::Header => "header",
            Check::Md5 => "md5",
            Check::LegacySignature => "legacy signature",
            Check::InfoSignature => ".info signature",
            Check::InfoHeader => ".info header",
            Check::InfoEntries => ".info entries",
            Check::Archive => "archive",
            Check::Limits => "limits",
            Check::Sign => ".sign signature",
        })
    }
}

/// Everything that can go wrong reading, verifying, unpacking or building a container.
///
/// Messages name the file (through [`Error::File`]), the field or member, and the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error that occurred while processing the named file.
    #[error("{}", path.display())]
    File {
        /// The file (or directory) being processed.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },

    /// A local I/O error (reading the input, writing output files).
    #[error("I/O error while {context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The input ended before a complete structure was read.
    #[error("truncated input: {what}")]
    Truncated {
        /// What was incomplete.
        what: &'static str,
    },

    /// A malformed header field (container header or `.info` first line).
    #[error("invalid header field `{field}`: {reason}")]
    Header {
        /// The offending field.
        field: HeaderField,
        /// Why it was rejected.
        reason: String,
    },

    /// A key could not be constructed or decoded.
    #[error("invalid key: {reason}")]
    Key {
        /// Why the key was rejected.
        reason: String,
    },

    /// Signature text in ClamAV's custom base64 is malformed.
    #[error("malformed signature text: {reason}")]
    SignatureText {
        /// Why the text was rejected.
        reason: String,
    },

    /// The body's MD5 differs from the MD5 recorded in the header.
    #[error("MD5 mismatch: header says {header}, body is {actual}")]
    Md5Mismatch {
        /// The MD5 from the header.
        header: String,
        /// The MD5 computed over the body.
        actual: String,
    },

    /// The legacy RSA signature in the header does not verify.
    #[error("legacy CVD signature does not verify: {reason}")]
    LegacySignature {
        /// Why it failed.
        reason: String,
    },

    /// The `.info` member's `DSIG` (versig2) signature does not verify or is missing.
    #[error("`{name}` DSIG signature does not verify: {reason}")]
    InfoSignature {
        /// The `.info` member name.
        name: String,
        /// Why it failed.
        reason: String,
    },

    /// A line of the `.info` member is malformed.
    #[error("`{name}` line {line}: {reason}")]
    InfoSyntax {
        /// The `.info` member name.
        name: String,
        /// 1-based line number.
        line: usize,
        /// Why it was rejected.
        reason: String,
    },

    /// A field of the `.info` header line differs from the container header.
    #[error(
        "`.info` header field `{field}` is {info:?} but the container header says {container:?}"
    )]
    InfoHeaderMismatch {
        /// The differing field.
        field: HeaderField,
        /// The value in the container header.
        container: String,
        /// The value in the `.info` first line.
        info: String,
    },

    /// The archive has no `<name>.info` member, or more than one.
    #[error("archive {reason}")]
    InfoMember {
        /// What is wrong.
        reason: String,
    },

    /// An archive member is not listed in `.info`.
    #[error("member `{name}` is not listed in `.info`")]
    MemberNotInInfo {
        /// The unlisted member.
        name: String,
    },

    /// A file listed in `.info` is not in the archive.
    #[error("`.info` lists `{name}` but the archive has no such member")]
    MissingMember {
        /// The missing member.
        name: String,
    },

    /// A member's size or SHA-256 differs from its `.info` entry.
    #[error("member `{name}` does not match `.info`: {reason}")]
    MemberMismatch {
        /// The member.
        name: String,
        /// What differs.
        reason: String,
    },

    /// The gzip stream of the body is corrupt.
    #[error("corrupt gzip body: {reason}")]
    Gzip {
        /// Why it was rejected.
        reason: String,
    },

    /// The tar archive is malformed.
    #[error("malformed tar archive at offset {offset}: {reason}")]
    Tar {
        /// Offset in the uncompressed tar stream.
        offset: u64,
        /// Why it was rejected.
        reason: String,
    },

    /// A member name is not a safe flat file name.
    #[error("unsafe member name {name:?}: {reason}")]
    UnsafeName {
        /// The name (lossily decoded).
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// Two members have the same name.
    #[error("duplicate member `{name}`")]
    DuplicateMember {
        /// The repeated name.
        name: String,
    },

    /// A member is not a regular file (directory, link, device, ...).
    #[error("member `{name}` is not a regular file (tar type flag {typeflag:?})")]
    NonRegularMember {
        /// The member name.
        name: String,
        /// Its tar type flag.
        typeflag: char,
    },

    /// A configured limit was exceeded.
    #[error("{what} exceeds the limit of {limit}")]
    Limit {
        /// What was too large or too many.
        what: String,
        /// The limit.
        limit: u64,
    },

    /// The container is an unsigned `.cld` but the options require a signed `.cvd`.
    #[error("container is unsigned (MD5 and signature are `X`) but a signed .cvd is required")]
    Unsigned,

    /// A `.sign` file is malformed (magic line, field layout, base64).
    #[error(".sign line {line}: {reason}")]
    SignSyntax {
        /// 1-based line number.
        line: usize,
        /// Why it was rejected.
        reason: String,
    },

    /// No signature line of a `.sign` file covers the required f-level.
    #[error(".sign: no signature line covers f-level {flevel} (lines cover {ranges})")]
    SignFlevel {
        /// The f-level the verifier was configured with.
        flevel: u32,
        /// The f-level ranges of the file's lines.
        ranges: String,
    },

    /// The CMS structure of a `.sign` line is malformed or not a detached SignedData.
    #[error(".sign line {line}: invalid CMS signature: {reason}")]
    SignCms {
        /// 1-based line number.
        line: usize,
        /// Why it was rejected.
        reason: String,
    },

    /// A `.sign` line uses an algorithm this crate does not accept.
    #[error(".sign line {line}: unsupported {role} algorithm {oid}")]
    SignAlgorithm {
        /// 1-based line number.
        line: usize,
        /// Where the algorithm appears (`digest`, `signer signature`, `certificate signature`).
        role: &'static str,
        /// The algorithm's object identifier.
        oid: String,
    },

    /// The signed file's digest differs from the `.sign` line's `messageDigest`.
    #[error(
        ".sign line {line}: the file's {algorithm} digest does not match the signed messageDigest"
    )]
    SignDigestMismatch {
        /// 1-based line number.
        line: usize,
        /// The digest algorithm.
        algorithm: crate::sign::DigestAlgorithm,
    },

    /// The CMS signer's signature does not verify.
    #[error(".sign line {line}: signature by `{signer}` rejected: {reason}")]
    SignSignature {
        /// 1-based line number.
        line: usize,
        /// Subject of the signer certificate.
        signer: String,
        /// Why it failed.
        reason: String,
    },

    /// A certificate of the `.sign` path is outside its validity period.
    #[error(
        ".sign line {line}: certificate `{subject}` is not valid at {at} (valid {not_before} to {not_after})"
    )]
    SignCertificateTime {
        /// 1-based line number.
        line: usize,
        /// Subject of the certificate.
        subject: String,
        /// Start of validity (RFC 3339).
        not_before: String,
        /// End of validity (RFC 3339).
        not_after: String,
        /// The verification time (RFC 3339).
        at: String,
    },

    /// No valid certificate path from the `.sign` signer to a trusted root.
    #[error(".sign line {line}: certificate chain rejected: {reason}")]
    SignChain {
        /// 1-based line number.
        line: usize,
        /// Why it failed.
        reason: String,
    },

    /// Verifying a `.sign` line would cost more than its budget (hostile certificate
    /// sets make a path search explode): the line is rejected.
    #[error(".sign line {line}: verification stopped: more than {limit} {what}")]
    SignBudget {
        /// 1-based line number.
        line: usize,
        /// Which budget was spent, e.g. "signature checks per .sign line".
        what: &'static str,
        /// The limit.
        limit: u32,
    },

    /// A root certificate supplied for `.sign` verification is unusable.
    #[error("invalid .sign root certificate: {reason}")]
    SignRoot {
        /// Why it was rejected.
        reason: String,
    },

    /// Invalid builder input (names, header fields, missing members).
    #[error("cannot build container: {reason}")]
    Build {
        /// Why the build was refused.
        reason: String,
    },
}

impl Error {
    /// Which verification check this error reports as failed, or `None` for local I/O
    /// errors, invalid keys and builder errors (which are not verdicts on the input).
    pub fn failed_check(&self) -> Option<Check> {
        match self {
            Error::File { source, .. } => source.failed_check(),
            Error::Io { .. } | Error::Key { .. } | Error::Build { .. } => None,
            Error::Truncated { .. }
            | Error::Gzip { .. }
            | Error::Tar { .. }
            | Error::UnsafeName { .. }
            | Error::DuplicateMember { .. }
            | Error::NonRegularMember { .. } => Some(Check::Archive),
            Error::Header { .. } => Some(Check::Header),
            Error::Md5Mismatch { .. } => Some(Check::Md5),
            Error::SignatureText { .. } | Error::LegacySignature { .. } | Error::Unsigned => {
                Some(Check::LegacySignature)
            }
            Error::InfoSignature { .. } => Some(Check::InfoSignature),
            Error::InfoSyntax { .. } | Error::InfoMember { .. } => Some(Check::InfoEntries),
            Error::InfoHeaderMismatch { .. } => Some(Check::InfoHeader),
            Error::MemberNotInInfo { .. }
            | Error::MissingMember { .. }
            | Error::MemberMismatch { .. } => Some(Check::InfoEntries),
            Error::Limit { .. } => Some(Check::Limits),
            Error::SignSyntax { .. }
            | Error::SignFlevel { .. }
            | Error::SignCms { .. }
            | Error::SignAlgorithm { .. }
            | Error::SignDigestMismatch { .. }
            | Error::SignSignature { .. }
            | Error::SignCertificateTime { .. }
            | Error::SignChain { .. }
            | Error::SignBudget { .. } => Some(Check::Sign),
            Error::SignRoot { .. } => None,
        }
    }

    /// `true` when the input was judged invalid (as opposed to a local failure such as
    /// an unreadable file or a full disk).
    pub fn is_verification_failure(&self) -> bool {
        self.failed_check().is_some()
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            already @ Error::File { .. } => already,
            other => Error::File {
                path: path.to_path_buf(),
                source: Box::new(other),
            },
        }
    }

    pub(crate) fn header(field: HeaderField, reason: impl Into<String>) -> Self {
        Error::Header {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn limit(what: impl Into<String>, limit: u64) -> Self {
        Error::Limit {
            what: what.into(),
            limit,
        }
    }
}
