//! The signed `.cdiff` container: `ClamAV-Diff:<version>:<script length>:` + gzip
//! stream + `:` + versig2 signature (spec §2).
//!
//! Like the reference, the signature is the text after the **last** `:` within the
//! last 350 bytes, and it signs SHA-256 of every byte before that `:`. It is verified
//! before anything is parsed further or decompressed. The gzip stream is read as one
//! member (trailing bytes before the signature are ignored, as by the reference), with
//! its decompressed size capped by [`Limits::max_script_len`].

use std::io::Read;

use cvd_format::{PublicKey, SigningKey, versig2};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::script::Script;

/// The signature must lie within this many bytes of the end (reference `MAX_SIG_SIZE`).
pub const SIG_WINDOW: usize = 350;

/// The container magic, including the first `:`.
pub const MAGIC: &[u8] = b"ClamAV-Diff:";

/// A `.cdiff` whose signature has been verified.
#[derive(Debug, Clone)]
pub struct Patch {
    name: String,
    version: u32,
    declared_len: u64,
    bytes: Vec<u8>,
    gzip: std::ops::Range<usize>,
    limits: Limits,
}

/// Where the parts of a container are (before any verification).
struct Layout<'a> {
    signed: &'a [u8],
    sig: &'a str,
}

fn container_err(name: &str, reason: impl Into<String>) -> Error {
    Error::Container {
        name: name.to_string(),
        reason: reason.into(),
    }
}

fn split_signature<'a>(name: &str, bytes: &'a [u8]) -> Result<Layout<'a>> {
    if bytes.len() < SIG_WINDOW {
        return Err(container_err(
            name,
            format!(
                "{} bytes is shorter than the {SIG_WINDOW} bytes the reference requires",
                bytes.len()
            ),
        ));
    }
    let window_start = bytes.len() - SIG_WINDOW;
    let colon = bytes[window_start..]
        .iter()
        .rposition(|&b| b == b':')
        .map(|i| window_start + i)
        .ok_or_else(|| {
            container_err(
                name,
                format!("no `:` before a signature in the last {SIG_WINDOW} bytes"),
            )
        })?;
    let sig = std::str::from_utf8(&bytes[colon + 1..])
        .map_err(|_| container_err(name, "signature text is not ASCII"))?;
    if sig.is_empty() {
        return Err(container_err(name, "empty signature"));
    }
    Ok(Layout {
        signed: &bytes[..colon],
        sig,
    })
}

/// Parses `ClamAV-Diff:<version>:<len>:`; returns (version, declared length, header end).
fn parse_header(name: &str, signed: &[u8]) -> Result<(u32, u64, usize)> {
    use nom::Parser;
    use nom::bytes::complete::{tag, take_while1};
    let digits = || take_while1(|b: u8| b.is_ascii_digit());
    let parsed: nom::IResult<&[u8], _> = (
        tag(MAGIC),
        digits(),
        tag(&b":"[..]),
        digits(),
        tag(&b":"[..]),
    )
        .parse(signed);
    let (rest, (_, version, _, len, _)) = parsed.map_err(|_| {
        container_err(
            name,
            "header is not `ClamAV-Diff:<version>:<script length>:`",
        )
    })?;
    let num = |d: &[u8], what: &str| {
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| container_err(name, format!("{what} out of range")))
    };
    let version = u32::try_from(num(version, "version")?)
        .map_err(|_| container_err(name, "version out of range"))?;
    let len = num(len, "script length")?;
    Ok((version, len, signed.len() - rest.len()))
}

impl Patch {
    /// Verifies a `.cdiff` with `key` (the CDIFF key: `KeySet::official().cdiff` for
    /// official patches) and default [`Limits`]. `name` is used in error messages.
    ///
    /// Nothing is decompressed until the signature has verified.
    pub fn verify(name: &str, bytes: Vec<u8>, key: &PublicKey) -> Result<Patch> {
        Self::verify_with_limits(name, bytes, key, &Limits::default())
    }

    /// [`Patch::verify`] with explicit limits.
    pub fn verify_with_limits(
        name: &str,
        bytes: Vec<u8>,
        key: &PublicKey,
        limits: &Limits,
    ) -> Result<Patch> {
        if bytes.len() as u64 > limits.max_patch_len {
            return Err(Error::Limit {
                what: format!("{name} ({} bytes)", bytes.len()),
                limit: limits.max_patch_len,
            });
        }
        let layout = split_signature(name, &bytes)?;
        let digest: [u8; 32] = Sha256::digest(layout.signed).into();
        versig2::verify(key, &digest, layout.sig).map_err(|e| Error::Signature {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        let signed_len = layout.signed.len();
        let (version, declared_len, header_end) = parse_header(name, layout.signed)?;
        Ok(Patch {
            name: name.to_string(),
            version,
            declared_len,
            gzip: header_end..signed_len,
            bytes,
            limits: limits.clone(),
        })
    }

    /// The name given at verification (used in messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database version this patch produces.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The script length declared in the header (informational, as in the reference).
    pub fn declared_script_len(&self) -> u64 {
        self.declared_len
    }

    /// The decompressed script bytes (bounded by [`Limits::max_script_len`]).
    pub fn script_bytes(&self) -> Result<Vec<u8>> {
        decompress(&self.name, &self.bytes[self.gzip.clone()], &self.limits)
    }

    /// The parsed script.
    pub fn script(&self) -> Result<Script> {
        let bytes = self.script_bytes()?;
        Script::parse_with_limits(&bytes, &self.limits).map_err(|e| match e {
            Error::Syntax { line, reason } => Error::Syntax {
                line,
                reason: format!("{}: {reason}", self.name),
            },
            other => other,
        })
    }
}

fn decompress(name: &str, gzip: &[u8], limits: &Limits) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    GzDecoder::new(gzip)
        .take(limits.max_script_len.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| container_err(name, format!("gzip stream: {e}")))?;
    if out.len() as u64 > limits.max_script_len {
        return Err(Error::Limit {
            what: format!("{name}: decompressed script"),
            limit: limits.max_script_len,
        });
    }
    Ok(out)
}

/// Builds a signed `.cdiff` for `version` from a script (the decompressed bytes):
/// header, gzip stream, `:` and the versig2 signature made with `key`.
///
/// ```
/// let key = cvd_format::SigningKey::generate(2048)?;
/// let bytes = cdiff::patch::build(7, b"OPEN a.db\nADD x\nCLOSE\n", &key)?;
/// let patch = cdiff::Patch::verify("a-7.cdiff", bytes, &key.public_key())?;
/// assert_eq!(patch.version(), 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn build(version: u32, script: &[u8], key: &SigningKey) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut out = format!("ClamAV-Diff:{version}:{}:", script.len()).into_bytes();
    let mut gz = GzEncoder::new(out, Compression::default());
    let gz_err = |e: std::io::Error| Error::Container {
        name: format!("version {version}"),
        reason: format!("gzip: {e}"),
    };
    gz.write_all(script).map_err(gz_err)?;
    out = gz.finish().map_err(gz_err)?;
    let digest: [u8; 32] = Sha256::digest(&out).into();
    let sig = versig2::sign(key, &digest).map_err(|e| Error::Format {
        context: "signing cdiff".into(),
        source: Box::new(e),
    })?;
    out.push(b':');
    out.extend_from_slice(sig.as_bytes());
    // The reference looks for the signature's `:` in the last 350 bytes of a file of at
    // least 350 bytes: refuse to build what it could not read (keys above ~2090 bits, or
    // tiny patches signed with small keys).
    if sig.len() >= SIG_WINDOW || out.len() < SIG_WINDOW {
        return Err(Error::Container {
            name: format!("version {version}"),
            reason: format!(
                "a {}-character signature in a {}-byte file cannot be read by the reference \
                 (signature must be < {SIG_WINDOW} characters, file >= {SIG_WINDOW} bytes; \
                 use a 2048-bit key)",
                sig.len(),
                out.len()
            ),
        });
    }
    Ok(out)
}

/// Parses the container without checking the signature and decompresses with `limits`
/// (for fuzzing the header and gzip handling; never use for trust decisions).
#[cfg(feature = "fuzzing")]
pub(crate) fn parse_unverified(bytes: &[u8], limits: &Limits) -> Result<(u32, Vec<u8>)> {
    let layout = split_signature("input", bytes)?;
    let (version, _, header_end) = parse_header("input", layout.signed)?;
    let script = decompress("input", &layout.signed[header_end..], limits)?;
    Ok((version, script))
}
