//! The `<name>.info` member: header line, member list, `DSIG` (spec §1).

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::header::Header;
use crate::keys::{PublicKey, SigningKey};
use crate::{names, versig2};

/// One `filename:size:sha256hex` line of `.info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoEntry {
    /// Member file name (a safe flat name).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the member's contents.
    pub sha256: [u8; 32],
}

impl InfoEntry {
    /// The SHA-256 as 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> String {
        crate::hex(&self.sha256)
    }
}

/// A parsed `.info` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The first line, parsed as a header (MD5 and signature are normally `X`).
    pub header: Header,
    /// The member list, in file order.
    pub entries: Vec<InfoEntry>,
    /// The `DSIG` signature text, if the file has a `DSIG:` line.
    pub dsig: Option<String>,
    /// SHA-256 of every byte before the `DSIG:` line (what `dsig` signs).
    pub signed_digest: [u8; 32],
}

/// Default cap on the number of `.info` entries.
pub const MAX_ENTRIES: usize = 100_000;

impl Info {
    /// Parses `.info` contents. `name` (the member name, e.g. `daily.info`) is used in
    /// error messages only. The signature is not checked here: see
    /// [`Info::verify_signature`].
    ///
    /// Rules: lines end with `\n` (the last may lack it); the first line is a header;
    /// then `name:size:sha256` lines with safe names, decimal sizes, 64 hex digits and no
    /// duplicates; then optionally `DSIG:<sig>` as the very last line.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Info> {
        let err = |line: usize, reason: String| Error::InfoSyntax {
            name: name.to_string(),
            line,
            reason,
        };
        let text =
            std::str::from_utf8(bytes).map_err(|e| err(0, format!("not UTF-8 text: {e}")))?;
        if text.is_empty() {
            return Err(err(1, "empty file".into()));
        }
        let mut header = None;
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        let mut dsig = None;
        let mut signed_len = bytes.len();
        let mut offset = 0usize;
        for (idx, raw_line) in text.split_inclusive('\n').enumerate() {
            let lineno = idx + 1;
            if dsig.is_some() {
                return Err(err(lineno, "text after the DSIG line".into()));
            }
            let line = raw_line.strip_suffix('\n').unwrap_or(raw_line);
            if line.contains('\r') {
                return Err(err(lineno, "carriage return in line".into()));
            }
            if lineno == 1 {
                header = Some(Header::parse_line(line).map_err(|e| err(1, e.to_string()))?);
            } else if let Some(sig) = line.strip_prefix("DSIG:") {
                if sig.is_empty() || sig.len() > crate::clamb64::MAX_TEXT_LEN {
                    return Err(err(lineno, "empty or oversized DSIG".into()));
                }
                signed_len = offset;
                dsig = Some(sig.to_string());
            } else {
                if entries.len() >= MAX_ENTRIES {
                    return Err(err(lineno, format!("more than {MAX_ENTRIES} entries")));
                }
                let entry = parse_entry(line).map_err(|reason| err(lineno, reason))?;
                if !seen.insert(entry.name.clone()) {
                    return Err(err(lineno, format!("duplicate entry `{}`", entry.name)));
                }
                entries.push(entry);
            }
            offset += raw_line.len();
        }
        let header = header.ok_or_else(|| err(1, "no header line".into()))?;
        let signed_digest: [u8; 32] = Sha256::digest(&bytes[..signed_len]).into();
        Ok(Info {
            header,
            entries,
            dsig,
            signed_digest,
        })
    }

    /// Verifies the `DSIG` line with `key` (the INFO key). `name` is used in errors.
    pub fn verify_signature(&self, name: &str, key: &PublicKey) -> Result<()> {
        let sig = self.dsig.as_deref().ok_or_else(|| Error::InfoSignature {
            name: name.to_string(),
            reason: "no DSIG line".into(),
        })?;
        versig2::verify(key, &self.signed_digest, sig).map_err(|e| match e {
            Error::InfoSignature { reason, .. } | Error::SignatureText { reason } => {
                Error::InfoSignature {
                    name: name.to_string(),
                    reason,
                }
            }
            other => other,
        })
    }

    /// Looks up an entry by member name (a linear search: callers that look up every
    /// member build a set of [`Info::entries`] instead).
    pub fn entry(&self, name: &str) -> Option<&InfoEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Writes `.info` contents: `header` as the first line (MD5 and signature forced to
    /// `X`), one line per entry, and a `DSIG` line signed with `key` if one is given.
    pub fn build(
        header: &Header,
        entries: &[InfoEntry],
        key: Option<&SigningKey>,
    ) -> Result<Vec<u8>> {
        let mut h = header.clone();
        h.md5 = None;
        h.dsig = None;
        let mut out = h.to_line()?.into_bytes();
        out.push(b'\n');
        let mut seen = HashSet::new();
        for e in entries {
            names::check_member_name(&e.name)?;
            if !seen.insert(e.name.as_str()) {
                return Err(Error::Build {
                    reason: format!("duplicate .info entry `{}`", e.name),
                });
            }
            out.extend_from_slice(
                format!("{}:{}:{}\n", e.name, e.size, crate::hex(&e.sha256)).as_bytes(),
            );
        }
        if let Some(key) = key {
            let digest: [u8; 32] = Sha256::digest(&out).into();
            let sig = versig2::sign(key, &digest)?;
            out.extend_from_slice(format!("DSIG:{sig}\n").as_bytes());
        }
        Ok(out)
    }
}

fn parse_entry(line: &str) -> std::result::Result<InfoEntry, String> {
    use nom::Parser;
    use nom::bytes::complete::{take_till1, take_while_m_n};
    use nom::character::complete::char;
    use nom::combinator::{all_consuming, map_res};

    let parsed: nom::IResult<&str, (&str, char, u64, char, &str)> = all_consuming((
        take_till1(|c| c == ':'),
        char(':'),
        map_res(crate::header::canonical_digits, str::parse::<u64>),
        char(':'),
        take_while_m_n(64, 64, |c: char| c.is_ascii_hexdigit()),
    ))
    .parse(line);
    let (_, (name, _, size, _, hex)) = parsed.map_err(|_| {
        format!(
            "expected `name:size:sha256hex`, found {:?}",
            line.chars().take(80).collect::<String>()
        )
    })?;
    names::check_member_name(name).map_err(|e| e.to_string())?;
    let sha256 = crate::unhex(hex).ok_or_else(|| format!("bad SHA-256 {hex:?}"))?;
    Ok(InfoEntry {
        name: name.to_string(),
        size,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X:X:micasnyd:1624412045\n";
    const SHA: &str = "0748b843a1cea3242d70531083b84f877d8de398cfefe65509b5d3bb1e3bcb57";

    #[test]
    fn parses_entries_and_dsig() -> Result<()> {
        let text = format!("{HEAD}a.hdb:44:{SHA}\nb.ndb:1:{SHA}\nDSIG:abc\n");
        let info = Info::parse("t.info", text.as_bytes())?;
        assert_eq!(info.entries.len(), 2);
        assert_eq!(info.entries[1].name, "b.ndb");
        assert_eq!(info.entries[0].size, 44);
        assert_eq!(info.dsig.as_deref(), Some("abc"));
        let prefix_len = text.find("DSIG:").unwrap_or(0);
        let want: [u8; 32] = Sha256::digest(&text.as_bytes()[..prefix_len]).into();
        assert_eq!(info.signed_digest, want);
        Ok(())
    }

    #[test]
    fn rejects_malformed_lines() {
        let bad = [
            format!("{HEAD}a.hdb:44\n"),
            format!("{HEAD}a.hdb:x:{SHA}\n"),
            format!("{HEAD}a.hdb:44:{}\n", &SHA[1..]),
            format!("{HEAD}../a:44:{SHA}\n"),
            format!("{HEAD}a/b:44:{SHA}\n"),
            format!("{HEAD}a.hdb:44:{SHA}\na.hdb:44:{SHA}\n"),
            format!("{HEAD}a.hdb:44:{SHA}\n\n"),
            format!("{HEAD}DSIG:abc\na.hdb:44:{SHA}\n"),
            format!("{HEAD}a.hdb:44:{SHA}\r\n"),
            "not a header\n".to_string(),
            String::new(),
        ];
        for text in bad {
            assert!(Info::parse("t.info", text.as_bytes()).is_err(), "{text:?}");
        }
    }
}
