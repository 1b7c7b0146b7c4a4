//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// All official `.cvd` files.
pub const OFFICIAL_CVDS: &[&str] = &[
    "test-1.cvd",
    "test-2.cvd",
    "test-3.cvd",
    "test-4.cvd",
    "test-5.cvd",
    "test-6.cvd",
    "bytecode.cvd",
];

pub fn official(name: &str) -> PathBuf {
    testkit::official_vectors().join(name)
}

pub fn read_official(name: &str) -> Vec<u8> {
    std::fs::read(official(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

use cvd_format::{Header, Info, InfoEntry, KeySet, SigningKey, SigningKeys, VerifyOptions};
use sha2::{Digest, Sha256};

/// TEST-ONLY signing keys (fixed, from `testkit::keys`).
pub fn test_keys() -> SigningKeys {
    let key = |pem| SigningKey::from_pkcs8_pem(pem).unwrap_or_else(|e| panic!("test key: {e}"));
    SigningKeys::new(
        key(testkit::keys::TEST_CVD_KEY_PEM),
        key(testkit::keys::TEST_INFO_KEY_PEM),
    )
}

/// Verification options trusting the TEST-ONLY keys.
pub fn test_opts() -> VerifyOptions {
    let keys = test_keys();
    VerifyOptions::new().keys(KeySet::new(
        keys.cvd.public_key(),
        keys.info.public_key(),
        keys.info.public_key(),
    ))
}

/// A tar member as an attacker would write it: any name bytes, any type flag, and a
/// size field that may lie about the data.
#[derive(Clone, Debug)]
pub struct RawMember {
    pub name: Vec<u8>,
    pub typeflag: u8,
    pub data: Vec<u8>,
    /// Size written in the header (defaults to `data.len()`).
    pub size_field: Option<u64>,
    /// Written into the ustar prefix field when set.
    pub prefix: Option<Vec<u8>>,
}

impl RawMember {
    pub fn file(name: &str, data: &[u8]) -> Self {
        Self {
            name: name.as_bytes().to_vec(),
            typeflag: b'0',
            data: data.to_vec(),
            size_field: None,
            prefix: None,
        }
    }
}

/// Writes one tar header block with a correct checksum.
pub fn tar_header(m: &RawMember) -> [u8; 512] {
    let mut b = [0u8; 512];
    let n = m.name.len().min(100);
    b[..n].copy_from_slice(&m.name[..n]);
    b[100..108].copy_from_slice(b"0000644\0");
    let size = m.size_field.unwrap_or(m.data.len() as u64);
    let size_text = format!("{size:011o}\0");
    if size_text.len() == 12 {
        b[124..136].copy_from_slice(size_text.as_bytes());
    } else {
        // Too large for octal: GNU base-256.
        b[124] = 0x80;
        b[128..136].copy_from_slice(&size.to_be_bytes());
    }
    b[136..148].copy_from_slice(b"00000000000\0");
    b[156] = m.typeflag;
    b[257..265].copy_from_slice(b"ustar\x0000");
    if let Some(p) = &m.prefix {
        let n = p.len().min(155);
        b[345..345 + n].copy_from_slice(&p[..n]);
    }
    b[148..156].copy_from_slice(b"        ");
    let sum: u64 = b.iter().map(|&v| u64::from(v)).sum();
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    b
}

/// A raw tar stream of `members` (data padded, two end blocks).
pub fn raw_tar(members: &[RawMember]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        out.extend_from_slice(&tar_header(m));
        out.extend_from_slice(&m.data);
        let pad = (512 - m.data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A sample header for crafted containers.
pub fn sample_header(version: u32) -> Header {
    Header::parse_line(&format!(
        "ClamAV-VDB:01 Feb 2024 10-20 +0000:{version}:2:90:X:X:tester:1706782800"
    ))
    .unwrap_or_else(|e| panic!("sample header: {e}"))
}

/// `.info` contents for `entries`, signed with the TEST INFO key.
pub fn signed_info(header: &Header, entries: &[InfoEntry]) -> Vec<u8> {
    Info::build(header, entries, Some(&test_keys().info))
        .unwrap_or_else(|e| panic!("info build: {e}"))
}

/// The `.info` entry describing `m` truthfully.
pub fn entry_for(m: &RawMember) -> InfoEntry {
    InfoEntry {
        name: String::from_utf8_lossy(&m.name).into_owned(),
        size: m.data.len() as u64,
        sha256: sha256(&m.data),
    }
}

/// A fully signed `.cvd` (legacy signature over the MD5 of the gzip body, TEST keys)
/// around an arbitrary raw tar stream: only what the tar/.info contain can be wrong.
pub fn signed_cvd(header: &Header, tar: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(tar).unwrap_or_else(|e| panic!("gzip: {e}"));
    let body = gz.finish().unwrap_or_else(|e| panic!("gzip: {e}"));
    let md5: [u8; 16] = md5::Md5::digest(&body).into();
    let mut h = header.clone();
    h.md5 = Some(md5);
    h.dsig = Some(
        cvd_format::legacy::sign_md5(&test_keys().cvd, &md5)
            .unwrap_or_else(|e| panic!("sign: {e}")),
    );
    let mut out = h
        .to_bytes()
        .unwrap_or_else(|e| panic!("header: {e}"))
        .to_vec();
    out.extend_from_slice(&body);
    out
}

/// A signed `.cvd` whose archive is `COPYING`, a correct signed `test.info` listing
/// `listed`, then `members` (which may or may not match the listing).
pub fn cvd_with(listed: &[InfoEntry], members: &[RawMember]) -> Vec<u8> {
    let header = sample_header(5);
    let info = signed_info(&header, listed);
    let mut all = vec![
        RawMember::file("COPYING", b"test licence\n"),
        RawMember::file("test.info", &info),
    ];
    all.extend_from_slice(members);
    signed_cvd(&header, &raw_tar(&all))
}

/// A well-formed member set and the matching `.info` entries.
pub fn good_members() -> (Vec<InfoEntry>, Vec<RawMember>) {
    let members = vec![
        RawMember::file(
            "test.hdb",
            b"44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test\n",
        ),
        RawMember::file("test.ndb", b"Test.Sig:0:*:414243\n"),
    ];
    (members.iter().map(entry_for).collect(), members)
}

/// Asserts that `bytes` fails verification (not a local error) and returns the error.
pub fn assert_rejected(bytes: &[u8], opts: &VerifyOptions) -> cvd_format::Error {
    match cvd_format::verify_reader(bytes, opts) {
        Ok(r) => panic!("accepted a bad container: {:?}", r.members),
        Err(e) => {
            assert!(
                e.is_verification_failure(),
                "not a verification failure: {e}"
            );
            e
        }
    }
}
