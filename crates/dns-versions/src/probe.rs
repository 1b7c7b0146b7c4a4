//! Learning a database's version without DNS: the first 512 bytes of `<db>.cvd`.

use nom::Parser;
use nom::bytes::complete::{tag, take_till};
use nom::character::complete::{char, digit1};

use crate::Error;

/// The size of a CVD header.
pub const HEADER_LEN: usize = 512;

/// What a header probe learns about a published database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbedHeader {
    /// Header field 3: the database version.
    pub version: u32,
    /// Header field 4: number of signatures.
    pub signatures: u32,
    /// Header field 5: minimum functionality level.
    pub flevel: u32,
}

fn num(s: &str) -> Option<u32> {
    s.parse().ok()
}

impl ProbedHeader {
    /// Parses the leading fields of a CVD/CLD header (`ClamAV-VDB:time:version:
    /// signatures:flevel:...`). Only the first [`HEADER_LEN`] bytes are looked at.
    /// `source` names where the bytes came from, for the error.
    ///
    /// ```
    /// let mut h = b"ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X:X:builder:1624412045".to_vec();
    /// h.resize(512, b' ');
    /// let p = dns_versions::ProbedHeader::parse(&h, "test")?;
    /// assert_eq!((p.version, p.signatures, p.flevel), (6, 14, 81));
    /// # Ok::<(), dns_versions::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Header`] for anything that is not a complete CVD header.
    pub fn parse(bytes: &[u8], source: &str) -> Result<ProbedHeader, Error> {
        let err = |reason: &str| Error::Header {
            url: source.to_string(),
            reason: reason.to_string(),
        };
        if bytes.len() < HEADER_LEN {
            return Err(err(&format!(
                "only {} bytes; a header is {HEADER_LEN}",
                bytes.len()
            )));
        }
        let head = &bytes[..HEADER_LEN];
        if !head.iter().all(|b| b.is_ascii() && *b != 0) {
            return Err(err("header is not printable ASCII"));
        }
        let text = std::str::from_utf8(head).map_err(|_| err("header is not ASCII"))?;
        let mut p = (
            tag::<&str, &str, nom::error::Error<&str>>("ClamAV-VDB:"),
            take_till(|c| c == ':'),
            char(':'),
            digit1,
            char(':'),
            digit1,
            char(':'),
            digit1,
            char(':'),
        );
        let (_, (_, _, _, v, _, s, _, f, _)) = p
            .parse(text)
            .map_err(|_| err("expected ClamAV-VDB:<time>:<version>:<signatures>:<flevel>:"))?;
        Ok(ProbedHeader {
            version: num(v).ok_or_else(|| err("version out of range"))?,
            signatures: num(s).ok_or_else(|| err("signature count out of range"))?,
            flevel: num(f).ok_or_else(|| err("functionality level out of range"))?,
        })
    }
}

/// Reads `<base_url>/<db>.cvd` bytes 0–511 (HTTP `Range: bytes=0-511`) and parses the
/// header.
///
/// # Errors
/// [`Error::Fetch`] for the HTTP request, [`Error::Header`] for the bytes.
pub fn probe_header(
    client: &fetch::Client,
    base_url: &str,
    db: &str,
) -> Result<ProbedHeader, Error> {
    let url = format!("{}/{db}.cvd", base_url.trim_end_matches('/'));
    let bytes = client.fetch_range(&url, 0..HEADER_LEN as u64)?;
    ProbedHeader::parse(&bytes, &url)
}

/// [`probe_header`] with failover across `upstreams`; returns the header and the URL
/// that served it.
///
/// # Errors
/// As [`probe_header`]; HTTP failures of every upstream come as
/// [`fetch::Error::AllUpstreamsFailed`].
pub fn probe_header_from(
    client: &fetch::Client,
    upstreams: &fetch::Upstreams,
    db: &str,
) -> Result<(ProbedHeader, String), Error> {
    let got = upstreams.fetch_range(client, &format!("{db}.cvd"), 0..HEADER_LEN as u64)?;
    Ok((ProbedHeader::parse(&got.value, &got.url)?, got.url))
}
