//! ClamAV 1.5 detached `.sign` files: parse and verify (spec §3).
//!
//! A `.sign` file sits next to the file it signs (`<db>-<version>.cvd.sign`,
//! `<db>-<version>.cdiff.sign`):
//!
//! ```text
//! #clamsign-1.0
//! <min f-level>:<max f-level>:pkcs7-pem:<base64 DER CMS SignedData>
//! ```
//!
//! Each signature line is a detached CMS `SignedData` over the **whole** signed file.
//! [`SignVerifier`] accepts the file when at least one line whose f-level range covers
//! the configured f-level verifies completely:
//!
//! 1. the CMS structure is a `SignedData` with detached `id-data` content;
//! 2. for **every** `SignerInfo` (as `openssl cms -verify` does): the `messageDigest`
//!    signed attribute equals the digest of the file under the declared digest
//!    algorithm (SHA-256/384/512) and the `contentType` attribute is `id-data`; the
//!    RSA PKCS#1 v1.5 signature over the DER encoding of the signed attributes (re-tagged
//!    from `[0] IMPLICIT` to `SET OF`, RFC 5652 §5.4) verifies with the signer
//!    certificate, found among the embedded certificates by issuer and serial number or
//!    by subject key identifier;
//! 3. a certificate path exists from the signer through embedded intermediates to one
//!    of the caller's root certificates ([`SignRoots`]): every certificate's signature
//!    verifies with its issuer's key (`sha{256,384,512}WithRSAEncryption`; other
//!    algorithms are rejected by name), every certificate **including the root** is
//!    within its validity period at the verification time, every issuer below the
//!    root is a CA (`basicConstraints cA=TRUE`, `keyCertSign` when key usage is
//!    present), path-length constraints hold, the path has at most
//!    [`MAX_CHAIN_DEPTH`] intermediates, and no certificate carries a critical
//!    extension this module does not understand. Extended key usage is recognised but
//!    not restricted, like `openssl cms -verify -purpose any`, the reference check in
//!    the spec.
//!
//! Lines whose f-level range does not include the configured f-level are skipped. When
//! no f-level is configured ([`SignVerifier::flevel`] not called) every line is
//! considered; this suits a mirror, which serves clients of every engine version. When
//! no considered line verifies, the error of the **first** considered line is returned
//! (it names the line and the failed check).
//!
//! # Bounded work
//!
//! Every input is refused in bounded time, whatever certificates a peer embeds. Sizes
//! are capped ([`MAX_SIGN_FILE_SIZE`], [`MAX_SIGN_LINES`], [`MAX_EMBEDDED_CERTS`],
//! [`MAX_SIGNERS`], [`MAX_CHAIN_DEPTH`]), and so is the path search, which size
//! limits alone do not bound (15 CA certificates with one subject and one key each
//! validly "issue" every other one: a plain depth-first search tries every ordering,
//! hours of work in 53 KB). As rustls-webpki stops a path build after 100 signature
//! checks:
//! - every RSA verification (signer and certificates) is paid from a budget of
//!   [`MAX_SIGNATURE_CHECKS_PER_LINE`] per line and [`MAX_SIGNATURE_CHECKS_PER_FILE`]
//!   per file; a spent budget is [`Error::SignBudget`], naming the limit;
//! - a certificate's signature is checked at most once per issuer key;
//! - certificates with the same subject and public key are one issuer (RFC 4158):
//!   a path never holds two of them, so copies cannot loop or be permuted;
//! - a search visits at most [`MAX_PATH_STEPS`] candidates.
//!
//! The worst file therefore costs at most 256 RSA verifications of keys the attacker
//! chose (at most 4096-bit moduli and 33-bit exponents, the `rsa` crate's limits), plus DER decoding linear in
//! the file's size.
//!
//! Verification time is injectable ([`SignVerifier::at`]) because certificates expire:
//! the official test root expires 2027-03-26.
//!
//! # Trust anchors
//!
//! The default trust set is the official production root `clamav.crt`, embedded as
//! [`CLAMAV_ROOT_PEM`] (file `src/roots/clamav.crt`, copied from the public ClamAV
//! distribution: a root certificate is a public trust anchor, like the official RSA
//! keys). Callers replace it with [`SignVerifier::roots`] (tests use
//! `clamav-test-root.crt`; private publishers use their own CA).
//!
//! # Why pure-Rust RustCrypto rather than the `openssl` crate
//!
//! CMS and X.509 are decoded with `cms` 0.2 / `x509-cert` 0.2 / `der` 0.7 and signatures
//! checked with `rsa` 0.9 + `sha2`, the same RustCrypto generation the rest of the crate
//! uses for the legacy and PSS signatures. The `openssl` crate would give a complete
//! `CMS_verify`, but it links the system libssl (a C dependency whose version varies by
//! platform and which the fuzz targets would exercise through FFI), needs `unsafe`
//! bindings in our dependency tree, and makes the verification time and the trust
//! store process-global C state. With RustCrypto the whole check is safe Rust, builds
//! the same everywhere, is fuzzable end to end, and every rule is explicit in this
//! file. The price is that the path-validation rules are ours to write: they are kept
//! small (listed above), and an interop test compares every verdict with
//! `openssl cms -verify` on genuine and tampered inputs.

use std::io::Read;

use base64::Engine as _;
use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use nom::Parser;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::Digest;
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use x509_cert::time::Time;

use crate::error::{Error, Result};

/// The first line of every `.sign` file.
pub const SIGN_MAGIC: &str = "#clamsign-1.0";
/// Largest `.sign` file accepted, in bytes (official files are about 5 KiB).
pub const MAX_SIGN_FILE_SIZE: usize = 256 * 1024;
/// Largest number of signature lines accepted in one `.sign` file.
pub const MAX_SIGN_LINES: usize = 16;
/// Largest number of certificates accepted in one CMS structure.
pub const MAX_EMBEDDED_CERTS: usize = 16;
/// Largest number of `SignerInfo`s accepted in one CMS structure.
pub const MAX_SIGNERS: usize = 4;
/// Largest number of intermediate certificates between signer and root.
pub const MAX_CHAIN_DEPTH: usize = 6;
/// Largest number of root certificates in one [`SignRoots`].
pub const MAX_ROOTS: usize = 64;
/// Most RSA signature checks (signers and certificates) spent on one `.sign` line, as
/// rustls-webpki's path builder allows 100.
pub const MAX_SIGNATURE_CHECKS_PER_LINE: u32 = 100;
/// Most RSA signature checks spent on one `.sign` file, all lines together.
pub const MAX_SIGNATURE_CHECKS_PER_FILE: u32 = 256;
/// Most candidate certificates one signer's path search visits (each visit is cheap:
/// name comparisons and, at most once per certificate and issuer key, a paid signature
/// check).
pub const MAX_PATH_STEPS: u32 = 1024;

/// The PEM text of the official production root certificate (`clamav.crt`, "Cisco
/// Software Identity Root CA RSA 4096 SHA512 2099"). It is a public trust anchor, like
/// the official RSA keys, and is the default trust set of [`SignRoots::default`].
pub const CLAMAV_ROOT_PEM: &str = include_str!("roots/clamav.crt");

const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const OID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const OID_EXT_SKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const OID_EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_EXT_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_EXT_AKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
const OID_EXT_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");

/// Critical extensions this module understands (all others make a certificate invalid).
const KNOWN_CRITICAL: [ObjectIdentifier; 5] = [
    OID_EXT_SKI,
    OID_EXT_KEY_USAGE,
    OID_EXT_BASIC_CONSTRAINTS,
    OID_EXT_AKI,
    OID_EXT_EKU,
];

/// A digest algorithm a `.sign` signature may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// SHA-256 (what the official files use).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm's usual name (`"SHA-256"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha384 => "SHA-384",
            DigestAlgorithm::Sha512 => "SHA-512",
        }
    }

    fn from_digest_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            OID_SHA256 => Some(DigestAlgorithm::Sha256),
            OID_SHA384 => Some(DigestAlgorithm::Sha384),
            OID_SHA512 => Some(DigestAlgorithm::Sha512),
            _ => None,
        }
    }

    fn from_rsa_signature_oid(oid: &ObjectIdentifier) -> Option<Self> {
        match *oid {
            OID_SHA256_WITH_RSA => Some(DigestAlgorithm::Sha256),
            OID_SHA384_WITH_RSA => Some(DigestAlgorithm::Sha384),
            OID_SHA512_WITH_RSA => Some(DigestAlgorithm::Sha512),
            _ => None,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            DigestAlgorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
            DigestAlgorithm::Sha384 => sha2::Sha384::digest(data).to_vec(),
            DigestAlgorithm::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    fn padding(self) -> Pkcs1v15Sign {
        match self {
            DigestAlgorithm::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
            DigestAlgorithm::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
            DigestAlgorithm::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }
}

impl std::fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One signature line of a `.sign` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignEntry {
    line: usize,
    min_flevel: u32,
    max_flevel: Option<u32>,
    cms_der: Vec<u8>,
}

impl SignEntry {
    /// 1-based line number in the `.sign` file.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Lowest engine f-level this signature is meant for.
    pub fn min_flevel(&self) -> u32 {
        self.min_flevel
    }

    /// Highest engine f-level this signature is meant for (`None`: no upper bound).
    pub fn max_flevel(&self) -> Option<u32> {
        self.max_flevel
    }

    /// `true` when `flevel` lies in `min ..= max` (an empty max means no upper bound).
    pub fn covers(&self, flevel: u32) -> bool {
        flevel >= self.min_flevel && self.max_flevel.is_none_or(|max| flevel <= max)
    }

    /// The DER bytes of the CMS `ContentInfo` (decoded from the base64 field).
    pub fn cms_der(&self) -> &[u8] {
        &self.cms_der
    }
}

/// A parsed `.sign` file: the magic line and one or more signature lines.
///
/// Parsing checks only the text layout; [`SignVerifier`] checks the signatures.
///
/// ```
/// use cvd_format::sign::SignFile;
///
/// let text = "#clamsign-1.0\n230::pkcs7-pem:MAA=\n";
/// let sign = SignFile::parse(text.as_bytes())?;
/// assert_eq!(sign.entries().len(), 1);
/// assert_eq!(sign.entries()[0].min_flevel(), 230);
/// assert_eq!(sign.entries()[0].max_flevel(), None);
/// assert!(SignFile::parse(b"not a sign file").is_err());
/// # Ok::<(), cvd_format::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignFile {
    entries: Vec<SignEntry>,
}

/// The fields of one signature line, before base64 decoding.
struct RawLine<'a> {
    min: u32,
    max: Option<u32>,
    kind: &'a str,
    payload: &'a str,
}

fn parse_sign_line(input: &str) -> nom::IResult<&str, RawLine<'_>> {
    use nom::bytes::complete::{tag, take_while, take_while1};
    use nom::character::complete::{char, digit1};
    use nom::combinator::{all_consuming, map_res, opt};

    let number = || map_res(digit1, str::parse::<u32>);
    all_consuming((
        number(),
        char(':'),
        opt(number()),
        char(':'),
        take_while1(|c: char| c.is_ascii_alphanumeric() || c == '-'),
        tag(":"),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='),
    ))
    .map(|(min, _, max, _, kind, _, payload)| RawLine {
        min,
        max,
        kind,
        payload,
    })
    .parse(input)
}

impl SignFile {
    /// Parses the text of a `.sign` file.
    ///
    /// Accepted: the magic line [`SIGN_MAGIC`], then 1 ..= [`MAX_SIGN_LINES`] lines of
    /// `<min>:<max>:pkcs7-pem:<base64>` (max may be empty); `\n` or `\r\n` line ends;
    /// empty lines are ignored. Anything else is an [`Error::SignSyntax`] naming the line.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_SIGN_FILE_SIZE {
            return Err(Error::limit(
                format!(".sign file of {} bytes", bytes.len()),
                MAX_SIGN_FILE_SIZE as u64,
            ));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| Error::SignSyntax {
            line: 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            reason: "not ASCII text".into(),
        })?;
        let mut lines = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .enumerate()
            .map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, SIGN_MAGIC)) => {}
            _ => {
                return Err(Error::SignSyntax {
                    line: 1,
                    reason: format!("the first line must be `{SIGN_MAGIC}`"),
                });
            }
        }
        let mut entries = Vec::new();
        for (line, content) in lines {
            if content.is_empty() {
                continue;
            }
            if entries.len() == MAX_SIGN_LINES {
                return Err(Error::limit(
                    "number of .sign signature lines",
                    MAX_SIGN_LINES as u64,
                ));
            }
            let syntax = |reason: String| Error::SignSyntax { line, reason };
            let (_, raw) = parse_sign_line(content).map_err(|_| {
                syntax("expected `<min f-level>:<max f-level>:pkcs7-pem:<base64>`".into())
            })?;
            if raw.kind != "pkcs7-pem" {
                return Err(syntax(format!(
                    "unsupported signature type `{}` (only `pkcs7-pem` is known)",
                    raw.kind
                )));
            }
            if let Some(max) = raw.max
                && max < raw.min
            {
                return Err(syntax(format!("f-level range {}:{max} is empty", raw.min)));
            }
            let cms_der = base64::engine::general_purpose::STANDARD
                .decode(raw.payload)
                .map_err(|e| syntax(format!("invalid base64 signature: {e}")))?;
            if cms_der.is_empty() {
                return Err(syntax("empty signature".into()));
            }
            entries.push(SignEntry {
                line,
                min_flevel: raw.min,
                max_flevel: raw.max,
                cms_der,
            });
        }
        if entries.is_empty() {
            return Err(Error::SignSyntax {
                line: 2,
                reason: "no signature line".into(),
            });
        }
        Ok(SignFile { entries })
    }

    /// Reads and parses a `.sign` file from `reader`, reading at most
    /// [`MAX_SIGN_FILE_SIZE`] + 1 bytes.
    pub fn read_from(reader: impl Read) -> Result<Self> {
        let mut bytes = Vec::new();
        reader
            .take(MAX_SIGN_FILE_SIZE as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("reading .sign file", e))?;
        Self::parse(&bytes)
    }

    /// The signature lines, in file order.
    pub fn entries(&self) -> &[SignEntry] {
        &self.entries
    }

    /// The digest algorithms declared by the signers of all lines (SHA-256 when
    /// none can be read: such a line fails verification anyway).
    pub fn digest_algorithms(&self) -> Vec<DigestAlgorithm> {
        let mut algs = Vec::new();
        for entry in &self.entries {
            let signed = ContentInfo::from_der(&entry.cms_der)
                .ok()
                .and_then(|info| info.content.decode_as::<SignedData>().ok());
            for signer in signed.iter().flat_map(|s| s.signer_infos.0.iter()) {
                if let Some(alg) = DigestAlgorithm::from_digest_oid(&signer.digest_alg.oid)
                    && !algs.contains(&alg)
                {
                    algs.push(alg);
                }
            }
        }
        if algs.is_empty() {
            algs.push(DigestAlgorithm::Sha256);
        }
        algs
    }

    /// A hasher that computes, in one pass, every digest the signature lines need.
    /// Feed it the signed file and pass the result to [`SignVerifier::verify_digests`].
    pub fn hasher(&self) -> ContentHasher {
        ContentHasher::new(&self.digest_algorithms())
    }
}

/// Streaming digests of the signed content, for the digest algorithms chosen at creation.
///
/// Implements [`std::io::Write`], so `std::io::copy(&mut file, &mut hasher)` works.
#[derive(Debug, Clone)]
pub struct ContentHasher {
    sha256: Option<sha2::Sha256>,
    sha384: Option<sha2::Sha384>,
    sha512: Option<sha2::Sha512>,
    len: u64,
}

impl ContentHasher {
    /// A hasher computing the given digests (duplicates are ignored).
    pub fn new(algorithms: &[DigestAlgorithm]) -> Self {
        let mut h = ContentHasher {
            sha256: None,
            sha384: None,
            sha512: None,
            len: 0,
        };
        for alg in algorithms {
            match alg {
                DigestAlgorithm::Sha256 => h.sha256 = Some(sha2::Sha256::default()),
                DigestAlgorithm::Sha384 => h.sha384 = Some(sha2::Sha384::default()),
                DigestAlgorithm::Sha512 => h.sha512 = Some(sha2::Sha512::default()),
            }
        }
        h
    }

    /// Feeds the next bytes of the signed file.
    pub fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha384 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha512 {
            h.update(data);
        }
        self.len += data.len() as u64;
    }

    /// Finishes hashing.
    pub fn finish(self) -> ContentDigests {
        ContentDigests {
            sha256: self.sha256.map(|h| h.finalize().to_vec()),
            sha384: self.sha384.map(|h| h.finalize().to_vec()),
            sha512: self.sha512.map(|h| h.finalize().to_vec()),
            len: self.len,
        }
    }
}

impl std::io::Write for ContentHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Digests of a signed file, from [`ContentHasher::finish`] or [`ContentDigests::of`].
///
/// A signature whose digest algorithm was not computed fails verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentDigests {
    sha256: Option<Vec<u8>>,
    sha384: Option<Vec<u8>>,
    sha512: Option<Vec<u8>>,
    len: u64,
}

impl ContentDigests {
    /// All supported digests of an in-memory file.
    pub fn of(content: &[u8]) -> Self {
        let mut h = ContentHasher::new(&[
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha384,
            DigestAlgorithm::Sha512,
        ]);
        h.update(content);
        h.finish()
    }

    /// Length of the hashed content in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// `true` when the hashed content was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest under `alg`, when it was computed.
    pub fn get(&self, alg: DigestAlgorithm) -> Option<&[u8]> {
        match alg {
            DigestAlgorithm::Sha256 => self.sha256.as_deref(),
            DigestAlgorithm::Sha384 => self.sha384.as_deref(),
            DigestAlgorithm::Sha512 => self.sha512.as_deref(),
        }
    }
}

/// A set of trusted root certificates for `.sign` chains.
///
/// The default ([`SignRoots::default`]) is the official production root
/// [`CLAMAV_ROOT_PEM`]; tests and private publishers supply their own.
///
/// ```
/// use cvd_format::sign::SignRoots;
///
/// let roots = SignRoots::default();
/// assert_eq!(roots.len(), 1);
/// assert!(SignRoots::from_pem(b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct SignRoots {
    certs: Vec<Certificate>,
}

impl Default for SignRoots {
    fn default() -> Self {
        // The embedded PEM is a constant and is parsed by a unit test; should it ever
        // fail, the set is empty and every verification fails closed.
        SignRoots::from_pem(CLAMAV_ROOT_PEM.as_bytes()).unwrap_or_else(|_| SignRoots::empty())
    }
}

impl SignRoots {
    /// An empty set (nothing verifies until roots are added).
    pub fn empty() -> Self {
        SignRoots { certs: Vec::new() }
    }

    /// The certificates of one PEM file (one or more `CERTIFICATE` blocks).
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        let mut roots = SignRoots::empty();
        roots.add_pem(pem)?;
        Ok(roots)
    }

    /// Adds the certificates of one PEM file (one or more `CERTIFICATE` blocks).
    pub fn add_pem(&mut self, pem: &[u8]) -> Result<()> {
        let certs = Certificate::load_pem_chain(pem).map_err(|e| Error::SignRoot {
            reason: format!("not a PEM certificate file: {e}"),
        })?;
        if certs.is_empty() {
            return Err(Error::SignRoot {
                reason: "no CERTIFICATE block found".into(),
            });
        }
        if self.certs.len() + certs.len() > MAX_ROOTS {
            return Err(Error::limit(
                "number of root certificates",
                MAX_ROOTS as u64,
            ));
        }
        for cert in &certs {
            rsa_key(cert).map_err(|reason| Error::SignRoot {
                reason: format!(
                    "root `{}` has no usable RSA key: {reason}",
                    cert.tbs_certificate.subject
                ),
            })?;
        }
        self.certs.extend(certs);
        Ok(())
    }

    /// Adds the certificate in one DER buffer.
    pub fn add_der(&mut self, der: &[u8]) -> Result<()> {
        let cert = Certificate::from_der(der).map_err(|e| Error::SignRoot {
            reason: format!("not a DER certificate: {e}"),
        })?;
        rsa_key(&cert).map_err(|reason| Error::SignRoot {
            reason: format!(
                "root `{}` has no usable RSA key: {reason}",
                cert.tbs_certificate.subject
            ),
        })?;
        if self.certs.len() >= MAX_ROOTS {
            return Err(Error::limit(
                "number of root certificates",
                MAX_ROOTS as u64,
            ));
        }
        self.certs.push(cert);
        Ok(())
    }

    /// Adds the certificates of one certificate file's contents: PEM (one or more
    /// `CERTIFICATE` blocks, recognised by `-----BEGIN`) or a single DER certificate.
    pub fn add_pem_or_der(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            self.add_pem(bytes)
        } else {
            self.add_der(bytes)
        }
    }

    /// The roots in these certificate files, each PEM or DER (see
    /// [`SignRoots::add_pem_or_der`]); errors name the file. This is the one place the
    /// command-line tools load `--sign-root` files.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("sign-roots-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let pem = dir.join("clamav.crt");
    /// std::fs::write(&pem, cvd_format::sign::CLAMAV_ROOT_PEM)?;
    /// let roots = cvd_format::sign::SignRoots::from_files([&pem])?;
    /// assert_eq!(roots.len(), 1);
    /// let err = cvd_format::sign::SignRoots::from_files([dir.join("missing.crt")]).unwrap_err();
    /// assert!(err.to_string().contains("missing.crt"));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn from_files<P: AsRef<std::path::Path>>(
        paths: impl IntoIterator<Item = P>,
    ) -> Result<Self> {
        let mut roots = SignRoots::empty();
        for p in paths {
            let p = p.as_ref();
            let bytes = std::fs::read(p)
                .map_err(|e| Error::io("reading a root certificate", e).in_file(p))?;
            roots.add_pem_or_der(&bytes).map_err(|e| e.in_file(p))?;
        }
        Ok(roots)
    }

    /// Number of root certificates.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// `true` when the set holds no certificate.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The subjects of the root certificates (RFC 4514 strings), for display.
    pub fn subjects(&self) -> Vec<String> {
        self.certs
            .iter()
            .map(|c| c.tbs_certificate.subject.to_string())
            .collect()
    }
}

/// What a successful `.sign` verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignReport {
    /// The 1-based line of the `.sign` file whose signature verified.
    pub line: usize,
    /// The line's minimum f-level.
    pub min_flevel: u32,
    /// The line's maximum f-level (`None`: unbounded).
    pub max_flevel: Option<u32>,
    /// The digest algorithm of the (first) signer.
    pub digest_algorithm: DigestAlgorithm,
    /// Subjects of the certificate path, signer first, trusted root last.
    pub chain: Vec<String>,
    /// The `signingTime` signed attribute of the (first) signer, when present.
    pub signing_time: Option<OffsetDateTime>,
}

/// Verifies `.sign` files: trust roots, verification time and f-level.
///
/// ```no_run
/// use cvd_format::sign::{SignFile, SignRoots, SignVerifier};
///
/// let root = std::fs::read("clamav-test-root.crt")?;
/// let verifier = SignVerifier::new()
///     .roots(SignRoots::from_pem(&root)?)
///     .at(time::macros::datetime!(2026-01-01 0:00 UTC))
///     .flevel(230);
/// let sign = SignFile::parse(&std::fs::read("test-6.cvd.sign")?)?;
/// let report = verifier.verify(&sign, std::fs::File::open("test-6.cvd")?)?;
/// println!("signed by {}", report.chain[0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SignVerifier {
    roots: SignRoots,
    at: Option<OffsetDateTime>,
    flevel: Option<u32>,
}

impl Default for SignVerifier {
    fn default() -> Self {
        SignVerifier::new()
    }
}

impl SignVerifier {
    /// A verifier trusting the official production root, checking validity at the
    /// current time, considering every signature line.
    pub fn new() -> Self {
        SignVerifier {
            roots: SignRoots::default(),
            at: None,
            flevel: None,
        }
    }

    /// Replaces the trusted roots.
    pub fn roots(mut self, roots: SignRoots) -> Self {
        self.roots = roots;
        self
    }

    /// Checks certificate validity at `at` instead of the current time.
    pub fn at(mut self, at: OffsetDateTime) -> Self {
        self.at = Some(at);
        self
    }

    /// Considers only signature lines whose f-level range includes `flevel`.
    pub fn flevel(mut self, flevel: u32) -> Self {
        self.flevel = Some(flevel);
        self
    }

    /// Verifies `sign` against the signed file read (streamed) from `content`.
    pub fn verify(&self, sign: &SignFile, mut content: impl Read) -> Result<SignReport> {
        let mut hasher = sign.hasher();
        std::io::copy(&mut content, &mut hasher)
            .map_err(|e| Error::io("reading the signed file", e))?;
        self.verify_digests(sign, &hasher.finish())
    }

    /// Verifies `sign` against digests of the signed file computed by the caller
    /// (with [`SignFile::hasher`], e.g. during a pass that also checks other things).
    pub fn verify_digests(&self, sign: &SignFile, digests: &ContentDigests) -> Result<SignReport> {
        let at = self.at.unwrap_or_else(OffsetDateTime::now_utc);
        let mut first_error = None;
        let mut ctx = Context {
            roots: &self.roots,
            at,
            budget: Budget::for_file(),
        };
        for entry in sign.entries() {
            if let Some(flevel) = self.flevel
                && !entry.covers(flevel)
            {
                continue;
            }
            if ctx.budget.file_spent() {
                // Nothing left to pay for another line: the first error explains.
                first_error.get_or_insert(Error::SignBudget {
                    line: entry.line,
                    what: "signature checks per .sign file",
                    limit: MAX_SIGNATURE_CHECKS_PER_FILE,
                });
                break;
            }
            ctx.budget.start_line();
            match verify_entry(entry, digests, &mut ctx) {
                Ok(report) => return Ok(report),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(Error::SignFlevel {
            flevel: self.flevel.unwrap_or_default(),
            ranges: sign
                .entries()
                .iter()
                .map(|e| match e.max_flevel {
                    Some(max) => format!("{}..={max}", e.min_flevel),
                    None => format!("{}..", e.min_flevel),
                })
                .collect::<Vec<_>>()
                .join(", "),
        }))
    }
}

/// Per-line verification: every step returns an error naming `line`.
fn verify_entry(
    entry: &SignEntry,
    digests: &ContentDigests,
    ctx: &mut Context<'_>,
) -> Result<SignReport> {
    let line = entry.line;
    let cms_err = |reason: String| Error::SignCms { line, reason };
    let info = ContentInfo::from_der(&entry.cms_der)
        .map_err(|e| cms_err(format!("not a DER CMS ContentInfo: {e}")))?;
    if info.content_type != OID_SIGNED_DATA {
        return Err(cms_err(format!(
            "content type is {}, not SignedData",
            info.content_type
        )));
    }
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(|e| cms_err(format!("malformed SignedData: {e}")))?;
    if signed.encap_content_info.econtent_type != OID_DATA {
        return Err(cms_err(format!(
            "encapsulated content type is {}, not id-data",
            signed.encap_content_info.econtent_type
        )));
    }
    if signed.encap_content_info.econtent.is_some() {
        return Err(cms_err(
            "the signature embeds its content; a detached signature is required".into(),
        ));
    }
    let certs: Vec<&Certificate> = signed
        .certificates
        .as_ref()
        .map(|set| {
            set.0
                .iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(cert) => Some(cert),
                    CertificateChoices::Other(_) => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if certs.len() > MAX_EMBEDDED_CERTS {
        return Err(Error::limit(
            format!(".sign line {line}: number of embedded certificates"),
            MAX_EMBEDDED_CERTS as u64,
        ));
    }
    let signers = signed.signer_infos.0.as_slice();
    // RFC 5652 §5.1: version 5 with other certificate formats, 3 with a version-3
    // SignerInfo, else 1 (we accept only id-data content, no attribute certificates).
    let expected_version = if signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .any(|c| matches!(c, CertificateChoices::Other(_)))
    {
        CmsVersion::V5
    } else if signers.iter().any(|s| s.version == CmsVersion::V3) {
        CmsVersion::V3
    } else {
        CmsVersion::V1
    };
    if signed.version != expected_version {
        return Err(cms_err(format!(
            "SignedData version {} is inconsistent with its contents (expected {})",
            signed.version as u8, expected_version as u8
        )));
    }
    for alg in signed.digest_algorithms.iter() {
        check_null_params(line, "digest", alg)?;
    }
    if signers.is_empty() {
        return Err(cms_err("no SignerInfo".into()));
    }
    if signers.len() > MAX_SIGNERS {
        return Err(Error::limit(
            format!(".sign line {line}: number of signers"),
            MAX_SIGNERS as u64,
        ));
    }
    let mut report = None;
    for signer in signers {
        let r = verify_signer(
            line,
            signer,
            signed.digest_algorithms.as_slice(),
            &certs,
            digests,
            ctx,
        )?;
        report.get_or_insert(r);
    }
    let (digest_algorithm, chain, signing_time) =
        report.ok_or_else(|| cms_err("no SignerInfo".into()))?;
    Ok(SignReport {
        line,
        min_flevel: entry.min_flevel,
        max_flevel: entry.max_flevel,
        digest_algorithm,
        chain,
        signing_time,
    })
}

type SignerResult = (DigestAlgorithm, Vec<String>, Option<OffsetDateTime>);

fn verify_signer(
    line: usize,
    signer: &SignerInfo,
    declared_digests: &[AlgorithmIdentifierOwned],
    certs: &[&Certificate],
    digests: &ContentDigests,
    ctx: &mut Context<'_>,
) -> Result<SignerResult> {
    let cms_err = |reason: String| Error::SignCms { line, reason };
    let unsupported = |role: &'static str, oid: &ObjectIdentifier| Error::SignAlgorithm {
        line,
        role,
        oid: oid.to_string(),
    };
    // RFC 5652 §5.3: version 1 goes with issuerAndSerialNumber, 3 with subjectKeyIdentifier.
    let expected_version = match signer.sid {
        SignerIdentifier::IssuerAndSerialNumber(_) => CmsVersion::V1,
        SignerIdentifier::SubjectKeyIdentifier(_) => CmsVersion::V3,
    };
    if signer.version != expected_version {
        return Err(cms_err(format!(
            "SignerInfo version {} does not match its signer identifier",
            signer.version as u8
        )));
    }
    let digest_alg = DigestAlgorithm::from_digest_oid(&signer.digest_alg.oid)
        .ok_or_else(|| unsupported("digest", &signer.digest_alg.oid))?;
    check_null_params(line, "digest", &signer.digest_alg)?;
    check_null_params(line, "signer signature", &signer.signature_algorithm)?;
    if !declared_digests.contains(&signer.digest_alg) {
        return Err(cms_err(format!(
            "the signer's digest algorithm {} is not listed in SignedData digestAlgorithms",
            signer.digest_alg.oid
        )));
    }
    let sig_oid = &signer.signature_algorithm.oid;
    if *sig_oid != OID_RSA_ENCRYPTION
        && DigestAlgorithm::from_rsa_signature_oid(sig_oid) != Some(digest_alg)
    {
        return Err(unsupported("signer signature", sig_oid));
    }
    let content_digest = digests
        .get(digest_alg)
        .ok_or_else(|| unsupported("digest", &signer.digest_alg.oid))?;

    // What the RSA signature covers: the signed attributes, DER-encoded as a SET OF
    // (not with the [0] IMPLICIT tag they carry inside SignerInfo), or, without
    // signed attributes, the content itself.
    let mut signing_time = None;
    let signed_digest = match &signer.signed_attrs {
        Some(attrs) => {
            let mut message_digest = None;
            let mut content_type = None;
            for attr in attrs.iter() {
                let single = || {
                    if attr.values.len() == 1 {
                        attr.values
                            .get(0)
                            .ok_or_else(|| cms_err(format!("attribute {} has no value", attr.oid)))
                    } else {
                        Err(cms_err(format!(
                            "attribute {} must have exactly one value",
                            attr.oid
                        )))
                    }
                };
                match attr.oid {
                    OID_MESSAGE_DIGEST => {
                        let v: OctetString = single()?
                            .decode_as()
                            .map_err(|e| cms_err(format!("malformed messageDigest: {e}")))?;
                        if message_digest.replace(v).is_some() {
                            return Err(cms_err("repeated messageDigest attribute".into()));
                        }
                    }
                    OID_CONTENT_TYPE => {
                        let v: ObjectIdentifier = single()?
                            .decode_as()
                            .map_err(|e| cms_err(format!("malformed contentType: {e}")))?;
                        if content_type.replace(v).is_some() {
                            return Err(cms_err("repeated contentType attribute".into()));
                        }
                    }
                    OID_SIGNING_TIME => {
                        let v = single()?
                            .to_der()
                            .and_then(|der| Time::from_der(&der))
                            .map_err(|e| cms_err(format!("malformed signingTime: {e}")))?;
                        signing_time = to_offset(&v);
                    }
                    _ => {}
                }
            }
            if content_type != Some(OID_DATA) {
                return Err(cms_err(
                    "the contentType signed attribute is missing or not id-data".into(),
                ));
            }
            let md = message_digest
                .ok_or_else(|| cms_err("no messageDigest signed attribute".into()))?;
            if md.as_bytes() != content_digest {
                return Err(Error::SignDigestMismatch {
                    line,
                    algorithm: digest_alg,
                });
            }
            let der = attrs
                .to_der()
                .map_err(|e| cms_err(format!("cannot re-encode signed attributes: {e}")))?;
            digest_alg.digest(&der)
        }
        None => content_digest.to_vec(),
    };

    let signer_cert = find_signer(line, &signer.sid, certs)?;
    ctx.budget.spend(line)?;
    let key = rsa_key(signer_cert).map_err(|reason| Error::SignSignature {
        line,
        signer: signer_cert.tbs_certificate.subject.to_string(),
        reason,
    })?;
    key.verify(
        digest_alg.padding(),
        &signed_digest,
        signer.signature.as_bytes(),
    )
    .map_err(|_| Error::SignSignature {
        line,
        signer: signer_cert.tbs_certificate.subject.to_string(),
        reason: "the RSA signature does not verify with the signer certificate".into(),
    })?;
    if let Some(ku) = extension::<KeyUsage>(line, signer_cert, OID_EXT_KEY_USAGE)?
        && !(ku.digital_signature() || ku.non_repudiation())
    {
        return Err(Error::SignChain {
            line,
            reason: format!(
                "signer `{}` key usage allows neither digitalSignature nor nonRepudiation",
                signer_cert.tbs_certificate.subject
            ),
        });
    }
    let chain = build_chain(line, signer_cert, certs, ctx)?;
    Ok((digest_alg, chain, signing_time))
}

/// Algorithm parameters must be absent or NULL for the digest and RSA algorithms we accept.
fn check_null_params(
    line: usize,
    role: &'static str,
    alg: &AlgorithmIdentifierOwned,
) -> Result<()> {
    match &alg.parameters {
        None => Ok(()),
        Some(p) if der::Tagged::tag(p) == der::Tag::Null && p.value().is_empty() => Ok(()),
        Some(_) => Err(Error::SignCms {
            line,
            reason: format!("{role} algorithm {} has unexpected parameters", alg.oid),
        }),
    }
}

/// Finds the signer certificate by issuer + serial number or by subject key identifier.
fn find_signer<'c>(
    line: usize,
    sid: &SignerIdentifier,
    certs: &[&'c Certificate],
) -> Result<&'c Certificate> {
    let found = match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => certs.iter().find(|c| {
            c.tbs_certificate.issuer == ias.issuer
                && c.tbs_certificate.serial_number == ias.serial_number
        }),
        SignerIdentifier::SubjectKeyIdentifier(ski) => certs.iter().find(|c| {
            matches!(
                extension::<SubjectKeyIdentifier>(line, c, OID_EXT_SKI),
                Ok(Some(own)) if own == *ski
            )
        }),
    };
    found.copied().ok_or_else(|| Error::SignChain {
        line,
        reason: "the signer certificate is not among the embedded certificates".into(),
    })
}

/// Builds and checks a path from `leaf` to a trusted root; returns the subjects.
fn build_chain<'c, 'r: 'c>(
    line: usize,
    leaf: &'c Certificate,
    certs: &[&'c Certificate],
    ctx: &mut Context<'r>,
) -> Result<Vec<String>> {
    let (roots, at) = (ctx.roots, ctx.at);
    check_certificate(line, leaf, at)?;
    let mut search = PathSearch {
        line,
        certs,
        roots,
        at,
        budget: &mut ctx.budget,
        checked: Vec::new(),
        steps: 0,
        last_error: None,
    };
    let mut path = vec![leaf];
    if search.extend(&mut path)? {
        Ok(path
            .iter()
            .map(|c| c.tbs_certificate.subject.to_string())
            .collect())
    } else {
        Err(search.last_error.unwrap_or_else(|| Error::SignChain {
            line,
            reason: format!(
                "no path from `{}` to a trusted root (issuer `{}` is not a trusted root: {})",
                leaf.tbs_certificate.subject,
                path_top_issuer(&path),
                roots.subjects().join("; ")
            ),
        }))
    }
}

fn path_top_issuer(path: &[&Certificate]) -> String {
    path.last()
        .map(|c| c.tbs_certificate.issuer.to_string())
        .unwrap_or_default()
}

/// What every line of one `.sign` file is verified with.
struct Context<'r> {
    roots: &'r SignRoots,
    at: OffsetDateTime,
    budget: Budget,
}

/// What verifying one `.sign` file may cost: signature checks (RSA verifications of
/// signers and certificates) left for the current line and for the whole file.
///
/// Size limits alone do not bound the work of a path search over certificates an
/// attacker chose (15 CA certificates with one subject and one key each "issue" every
/// other one): like rustls-webpki, which stops a path build after 100 signature
/// checks, every RSA verification is paid for, and the search stops with
/// [`Error::SignBudget`] when the budget is spent.
#[derive(Debug)]
struct Budget {
    line_left: u32,
    file_left: u32,
}

impl Budget {
    fn for_file() -> Self {
        Budget {
            line_left: MAX_SIGNATURE_CHECKS_PER_LINE,
            file_left: MAX_SIGNATURE_CHECKS_PER_FILE,
        }
    }

    /// A new line starts with the per-line allowance (never more than the file has left).
    fn start_line(&mut self) {
        self.line_left = MAX_SIGNATURE_CHECKS_PER_LINE;
    }

    /// Pays for one signature check, or says which limit is reached.
    fn spend(&mut self, line: usize) -> Result<()> {
        if self.file_left == 0 {
            return Err(Error::SignBudget {
                line,
                what: "signature checks per .sign file",
                limit: MAX_SIGNATURE_CHECKS_PER_FILE,
            });
        }
        if self.line_left == 0 {
            return Err(Error::SignBudget {
                line,
                what: "signature checks per .sign line",
                limit: MAX_SIGNATURE_CHECKS_PER_LINE,
            });
        }
        self.line_left -= 1;
        self.file_left -= 1;
        #[cfg(feature = "fuzzing")]
        SIGNATURE_CHECKS.with(|c| c.set(c.get() + 1));
        Ok(())
    }

    fn file_spent(&self) -> bool {
        self.file_left == 0
    }
}

#[cfg(feature = "fuzzing")]
thread_local! {
    /// Signature checks paid on this thread (read by `crate::fuzzing::signature_checks`).
    pub(crate) static SIGNATURE_CHECKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// One signer's depth-first search for a path to a trusted root, with a budget.
///
/// Bounds, whatever the embedded certificates are:
/// - a certificate's signature is checked at most once per issuer **key**
///   (`checked`), and every check is paid from the [`Budget`];
/// - an issuer is identified by subject **and** public key (RFC 4158 §5.2): a path
///   never holds two certificates with the same subject and key, so copies of one CA
///   cannot form a loop or be permuted;
/// - the search visits at most [`MAX_PATH_STEPS`] candidate certificates.
struct PathSearch<'a, 'c> {
    line: usize,
    certs: &'a [&'c Certificate],
    roots: &'c SignRoots,
    at: OffsetDateTime,
    budget: &'a mut Budget,
    /// (child certificate, issuer key) pairs whose signature check has been done, with
    /// its outcome.
    checked: Vec<(&'c Certificate, &'c spki::SubjectPublicKeyInfoOwned, bool)>,
    steps: u32,
    /// Errors that prove a candidate bad (expiry, bad signature), so that a failed
    /// search can explain itself.
    last_error: Option<Error>,
}

impl<'c> PathSearch<'_, 'c> {
    /// `path` ends with an already checked certificate; on success the trusted root is
    /// appended.
    fn extend(&mut self, path: &mut Vec<&'c Certificate>) -> Result<bool> {
        let Some(&current) = path.last() else {
            return Ok(false);
        };
        // Intermediates (CAs) below the next issuer: path[1..].
        let intermediates_below = path.len() - 1;
        for root in &self.roots.certs {
            if root.tbs_certificate.subject != current.tbs_certificate.issuer {
                continue;
            }
            self.step()?;
            match self.issued_by(current, root, intermediates_below) {
                Ok(true) => {
                    path.push(root);
                    return Ok(true);
                }
                Ok(false) => {}
                Err(e) => self.fail(e)?,
            }
        }
        if intermediates_below >= MAX_CHAIN_DEPTH {
            self.last_error = Some(Error::SignChain {
                line: self.line,
                reason: format!("certificate path longer than {MAX_CHAIN_DEPTH} intermediates"),
            });
            return Ok(false);
        }
        for &candidate in self.certs {
            if candidate.tbs_certificate.subject != current.tbs_certificate.issuer
                || path.iter().any(|p| same_issuer(p, candidate))
            {
                continue;
            }
            self.step()?;
            let checked = check_certificate(self.line, candidate, self.at)
                .and_then(|()| self.issued_by(current, candidate, intermediates_below));
            match checked {
                Ok(true) => {
                    path.push(candidate);
                    if self.extend(path)? {
                        return Ok(true);
                    }
                    path.pop();
                }
                Ok(false) => {}
                Err(e) => self.fail(e)?,
            }
        }
        Ok(false)
    }

    /// Counts one candidate visited.
    fn step(&mut self) -> Result<()> {
        self.steps += 1;
        if self.steps > MAX_PATH_STEPS {
            return Err(Error::SignBudget {
                line: self.line,
                what: "certificates visited by the path search per signer",
                limit: MAX_PATH_STEPS,
            });
        }
        Ok(())
    }

    /// Keeps a candidate's error as the search's explanation; a spent budget ends the
    /// search.
    fn fail(&mut self, e: Error) -> Result<()> {
        if matches!(e, Error::SignBudget { .. }) {
            return Err(e);
        }
        self.last_error = Some(e);
        Ok(())
    }

    /// `Ok(true)` when `issuer` may issue certificates and signed `child`; `Ok(false)`
    /// when that was already found false (the error was recorded then); `Err` with the
    /// reason otherwise. The signature check is done (and paid for) once per
    /// (child, issuer key).
    fn issued_by(
        &mut self,
        child: &'c Certificate,
        issuer: &'c Certificate,
        intermediates_below: usize,
    ) -> Result<bool> {
        check_issuer(self.line, issuer, intermediates_below, self.at)?;
        let key = &issuer.tbs_certificate.subject_public_key_info;
        if let Some(&(_, _, ok)) = self
            .checked
            .iter()
            .find(|(c, k, _)| std::ptr::eq(*c, child) && *k == key)
        {
            return Ok(ok);
        }
        self.budget.spend(self.line)?;
        let outcome = verify_certificate_signature(self.line, child, issuer);
        self.checked.push((child, key, outcome.is_ok()));
        outcome.map(|()| true)
    }
}

/// Two certificates name the same issuer when subject and public key are equal.
fn same_issuer(a: &Certificate, b: &Certificate) -> bool {
    std::ptr::eq(a, b)
        || (a.tbs_certificate.subject == b.tbs_certificate.subject
            && a.tbs_certificate.subject_public_key_info
                == b.tbs_certificate.subject_public_key_info)
}

/// Checks that `issuer` may issue certificates (validity, CA, key usage, path length);
/// the signature on the child is checked by [`PathSearch::issued_by`].
/// `intermediates_below` is the number of CA certificates between `issuer` and the leaf.
fn check_issuer(
    line: usize,
    issuer: &Certificate,
    intermediates_below: usize,
    at: OffsetDateTime,
) -> Result<()> {
    let subject = issuer.tbs_certificate.subject.to_string();
    check_validity(line, issuer, at)?;
    let chain_err = |reason: String| Error::SignChain { line, reason };
    let bc = extension::<BasicConstraints>(line, issuer, OID_EXT_BASIC_CONSTRAINTS)?;
    let is_v1 = issuer.tbs_certificate.version == x509_cert::Version::V1;
    match bc {
        Some(bc) if bc.ca => {
            if let Some(max) = bc.path_len_constraint
                && intermediates_below > usize::from(max)
            {
                return Err(chain_err(format!(
                    "`{subject}` allows {max} intermediate(s) below it, the path has {intermediates_below}"
                )));
            }
        }
        // A version 1 certificate has no extensions; it can only be a trust anchor,
        // which is how OpenSSL treats the official test root.
        None if is_v1 && is_self_issued(issuer) => {}
        _ => {
            return Err(chain_err(format!(
                "issuer `{subject}` is not a CA (basicConstraints cA is not set)"
            )));
        }
    }
    if let Some(ku) = extension::<KeyUsage>(line, issuer, OID_EXT_KEY_USAGE)?
        && !ku.key_cert_sign()
    {
        return Err(chain_err(format!(
            "issuer `{subject}` key usage does not allow keyCertSign"
        )));
    }
    Ok(())
}

fn is_self_issued(cert: &Certificate) -> bool {
    cert.tbs_certificate.subject == cert.tbs_certificate.issuer
}

/// Validity plus unknown critical extensions of a certificate in the path.
fn check_certificate(line: usize, cert: &Certificate, at: OffsetDateTime) -> Result<()> {
    check_validity(line, cert, at)?;
    if let Some(exts) = &cert.tbs_certificate.extensions {
        for ext in exts {
            if ext.critical && !KNOWN_CRITICAL.contains(&ext.extn_id) {
                return Err(Error::SignChain {
                    line,
                    reason: format!(
                        "`{}` has an unsupported critical extension {}",
                        cert.tbs_certificate.subject, ext.extn_id
                    ),
                });
            }
        }
    }
    Ok(())
}

fn check_validity(line: usize, cert: &Certificate, at: OffsetDateTime) -> Result<()> {
    let validity = &cert.tbs_certificate.validity;
    let secs = |t: &Time| i128::from(t.to_unix_duration().as_secs());
    let now = i128::from(at.unix_timestamp());
    if now < secs(&validity.not_before) || now > secs(&validity.not_after) {
        let fmt = |t: &Time| {
            to_offset(t)
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| t.to_string())
        };
        return Err(Error::SignCertificateTime {
            line,
            subject: cert.tbs_certificate.subject.to_string(),
            not_before: fmt(&validity.not_before),
            not_after: fmt(&validity.not_after),
            at: at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| at.to_string()),
        });
    }
    Ok(())
}

fn to_offset(t: &Time) -> Option<OffsetDateTime> {
    let secs = i64::try_from(t.to_unix_duration().as_secs()).ok()?;
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

fn verify_certificate_signature(
    line: usize,
    child: &Certificate,
    issuer: &Certificate,
) -> Result<()> {
    let subject = child.tbs_certificate.subject.to_string();
    let oid = &child.signature_algorithm.oid;
    if child.tbs_certificate.signature != child.signature_algorithm {
        return Err(Error::SignChain {
            line,
            reason: format!("`{subject}`: inner and outer signature algorithms differ"),
        });
    }
    let alg = DigestAlgorithm::from_rsa_signature_oid(oid).ok_or_else(|| Error::SignAlgorithm {
        line,
        role: "certificate signature",
        oid: oid.to_string(),
    })?;
    let key = rsa_key(issuer).map_err(|reason| Error::SignChain {
        line,
        reason: format!("issuer `{}` key: {reason}", issuer.tbs_certificate.subject),
    })?;
    let tbs = child
        .tbs_certificate
        .to_der()
        .map_err(|e| Error::SignChain {
            line,
            reason: format!("`{subject}`: cannot re-encode the certificate: {e}"),
        })?;
    let sig = child.signature.as_bytes().ok_or_else(|| Error::SignChain {
        line,
        reason: format!("`{subject}`: signature bit string has unused bits"),
    })?;
    key.verify(alg.padding(), &alg.digest(&tbs), sig)
        .map_err(|_| Error::SignChain {
            line,
            reason: format!(
                "the signature on `{subject}` does not verify with the key of `{}`",
                issuer.tbs_certificate.subject
            ),
        })
}

/// The certificate's RSA public key, or why there is none.
fn rsa_key(cert: &Certificate) -> std::result::Result<RsaPublicKey, String> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != OID_RSA_ENCRYPTION {
        return Err(format!(
            "unsupported public key algorithm {}",
            spki.algorithm.oid
        ));
    }
    let der = spki.to_der().map_err(|e| e.to_string())?;
    RsaPublicKey::from_public_key_der(&der).map_err(|e| format!("invalid RSA key: {e}"))
}

/// Decodes the extension `oid` of `cert`; a repeated or malformed extension is an error.
fn extension<'c, T: Decode<'c>>(
    line: usize,
    cert: &'c Certificate,
    oid: ObjectIdentifier,
) -> Result<Option<T>> {
    let mut found = None;
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        if ext.extn_id != oid {
            continue;
        }
        let bad = |reason: String| Error::SignChain {
            line,
            reason: format!(
                "`{}`: extension {oid}: {reason}",
                cert.tbs_certificate.subject
            ),
        };
        if found.is_some() {
            return Err(bad("repeated".into()));
        }
        found = Some(T::from_der(ext.extn_value.as_bytes()).map_err(|e| bad(e.to_string()))?);
    }
    Ok(found)
}

/// Entry point of the `sign` fuzz target (see `crate::fuzzing`): never panics.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz(data: &[u8]) {
    let verifier =
        SignVerifier::new().at(OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_454));
    let digests = ContentDigests::of(b"fuzz");
    if let Ok(sign) = SignFile::parse(data) {
        let _ = sign.digest_algorithms();
        let _ = verifier.verify_digests(&sign, &digests);
    }
    if !data.starts_with(b"#clamsign") && !data.is_empty() {
        let sign = SignFile {
            entries: vec![SignEntry {
                line: 2,
                min_flevel: 0,
                max_flevel: None,
                cms_der: data.to_vec(),
            }],
        };
        let _ = verifier.verify_digests(&sign, &digests);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_files_load_as_pem_or_der_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("sign-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (_, der) = der::pem::decode_vec(CLAMAV_ROOT_PEM.as_bytes()).expect("pem");
        let pem_file = dir.join("root.pem");
        let der_file = dir.join("root.der");
        let bad_file = dir.join("bad.crt");
        std::fs::write(&pem_file, CLAMAV_ROOT_PEM).expect("write");
        std::fs::write(&der_file, &der).expect("write");
        std::fs::write(&bad_file, b"not a certificate").expect("write");
        let roots = SignRoots::from_files([&pem_file, &der_file]).expect("both forms");
        assert_eq!(roots.len(), 2);
        assert_eq!(roots.subjects()[0], roots.subjects()[1]);
        let err = SignRoots::from_files([&pem_file, &bad_file]).expect_err("garbage");
        assert!(err.to_string().contains("bad.crt"), "{err}");
        assert!(matches!(err, Error::File { .. }));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn embedded_production_root_parses() {
        let roots = SignRoots::from_pem(CLAMAV_ROOT_PEM.as_bytes()).expect("embedded root");
        assert_eq!(roots.len(), 1);
        assert!(roots.subjects()[0].contains("Cisco Software Identity Root CA"));
        assert_eq!(SignRoots::default().len(), 1);
    }

    #[test]
    fn flevel_ranges() {
        let e = |min, max| SignEntry {
            line: 2,
            min_flevel: min,
            max_flevel: max,
            cms_der: vec![0],
        };
        assert!(e(230, None).covers(230));
        assert!(e(230, None).covers(u32::MAX));
        assert!(!e(230, None).covers(229));
        assert!(e(10, Some(20)).covers(20));
        assert!(!e(10, Some(20)).covers(21));
    }
}
