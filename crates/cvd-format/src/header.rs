//! The 512-byte container header (spec §1), also used as the first line of `.info`.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while_m_n, take_while1};
use nom::character::complete::digit1;
use nom::combinator::{all_consuming, map, map_opt, map_res};
use nom::{IResult, Parser};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::error::{Error, HeaderField, Result};

/// Size of the container header in bytes.
pub const HEADER_SIZE: usize = 512;

/// The magic first field.
pub const MAGIC: &str = "ClamAV-VDB";

/// `%d %b %Y %H-%M %z`, e.g. `22 Jun 2021 21-34 -0400`.
const BUILD_TIME_FORMAT: &[BorrowedFormatItem<'static>] = format_description!(
    "[day] [month repr:short] [year] [hour]-[minute] [offset_hour sign:mandatory][offset_minute]"
);

/// A parsed container header (or `.info` first line).
///
/// Parsing is strict: every field must be well formed, numbers are unsigned decimal
/// integers, the MD5 is 32 lowercase hex digits or `X`, the signature uses only the
/// custom-base64 alphabet or is `X`, and the padding is spaces only. Because parsing is
/// strict and [`Header::to_bytes`] canonical, `parse(to_bytes(h)) == h`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Field 2: when the database was built (minute precision, with the builder's UTC
    /// offset).
    pub build_time: OffsetDateTime,
    /// Field 3: the database version.
    pub version: u32,
    /// Field 4: the number of signatures.
    pub signatures: u32,
    /// Field 5: the minimum engine functionality level.
    pub flevel: u32,
    /// Field 6: MD5 of the body; `None` is the `X` of a `.cld` or `.info` line.
    pub md5: Option<[u8; 16]>,
    /// Field 7: the legacy signature text; `None` is `X`.
    pub dsig: Option<String>,
    /// Field 8: who built the database.
    pub builder: String,
    /// Field 9: sign time in Unix seconds; `None` when the field is absent (old files).
    pub sign_time: Option<i64>,
}

/// Decimal digits without a leading zero (except `0` itself): the canonical `%u`.
pub(crate) fn canonical_digits(input: &str) -> IResult<&str, &str> {
    nom::combinator::verify(digit1, |d: &str| d == "0" || !d.starts_with('0')).parse(input)
}

fn u32_field(input: &str) -> IResult<&str, u32> {
    map_res(canonical_digits, str::parse::<u32>).parse(input)
}

fn i64_field(input: &str) -> IResult<&str, i64> {
    map_res(canonical_digits, str::parse::<i64>).parse(input)
}

fn is_lower_hex(c: char) -> bool {
    c.is_ascii_digit() || ('a'..='f').contains(&c)
}

fn is_sig_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/'
}

fn md5_field(input: &str) -> IResult<&str, Option<[u8; 16]>> {
    alt((
        map(tag("X"), |_| None),
        map_opt(take_while_m_n(32, 32, is_lower_hex), |h| {
            crate::unhex::<16>(h).map(Some)
        }),
    ))
    .parse(input)
}

fn dsig_field(input: &str) -> IResult<&str, Option<&str>> {
    alt((
        map(all_consuming(tag("X")), |_| None),
        map(take_while1(is_sig_char), Some),
    ))
    .parse(input)
}

/// Runs `parser` on the whole of `text`, mapping failure to a typed error.
fn field<'a, O>(
    text: &'a str,
    which: HeaderField,
    what: &str,
    mut parser: impl Parser<&'a str, Output = O, Error = nom::error::Error<&'a str>>,
) -> Result<O> {
    match all_consuming(|i| parser.parse(i)).parse(text) {
        Ok((_, out)) => Ok(out),
        Err(_) => Err(Error::header(
            which,
            format!("{:?} is not {what}", truncate_for_message(text)),
        )),
    }
}

fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        s.to_string()
    } else {
        let cut = (0..=MAX)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}...", &s[..cut])
    }
}

/// Splits the `:`-separated fields with nom (every byte already checked printable).
fn split_fields(text: &str) -> Vec<&str> {
    let parsed: IResult<&str, Vec<&str>> = nom::multi::separated_list1(
        nom::character::complete::char(':'),
        nom::bytes::complete::take_till(|c| c == ':'),
    )
    .parse(text);
    match parsed {
        Ok((_, fields)) => fields,
        // `take_till` accepts the empty string, so separated_list1 cannot fail; keep
        // the whole text as one field to let the magic check report it.
        Err(_) => vec![text],
    }
}

impl Header {
    /// Parses a 512-byte container header.
    ///
    /// ```
    /// let text = "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X:X:micasnyd:1624412045";
    /// let mut raw = [b' '; 512];
    /// raw[..text.len()].copy_from_slice(text.as_bytes());
    /// let header = cvd_format::Header::parse(&raw)?;
    /// assert_eq!(header.version, 6);
    /// assert_eq!(header.build_time.unix_timestamp(), 1624412040);
    /// assert_eq!(header.to_bytes()?, raw);
    /// # Ok::<(), cvd_format::Error>(())
    /// ```
    pub fn parse(raw: &[u8]) -> Result<Header> {
        if raw.len() != HEADER_SIZE {
            return Err(Error::header(
                HeaderField::Layout,
                format!("header is {} bytes, expected {HEADER_SIZE}", raw.len()),
            ));
        }
        let content_len = raw
            .iter()
            .rposition(|&b| b != b' ')
            .map(|p| p + 1)
            .unwrap_or(0);
        let (content, _padding) = raw.split_at(content_len);
        Self::parse_fields(content, true)
    }

    /// Parses the first line of a `.info` member (no padding, no newline).
    pub fn parse_line(line: &str) -> Result<Header> {
        Self::parse_fields(line.as_bytes(), false)
    }

    fn parse_fields(content: &[u8], padded: bool) -> Result<Header> {
        let text = std::str::from_utf8(content).ok();
        let Some(text) = text.filter(|t| t.bytes().all(|b| (0x20..0x7f).contains(&b))) else {
            // Name the field in which the first bad byte sits.
            let bad = content
                .iter()
                .position(|&b| !(0x20..0x7f).contains(&b))
                .unwrap_or(0);
            let colons = content[..bad].iter().filter(|&&b| b == b':').count();
            let last_colon = content[..bad].iter().rposition(|&b| b == b':').unwrap_or(0);
            // A space between the sign time and the bad byte: it sits in the padding.
            let field = if padded && colons >= 8 && content[last_colon..bad].contains(&b' ') {
                HeaderField::Padding
            } else {
                field_by_index(colons, padded)
            };
            return Err(Error::header(
                field,
                format!(
                    "byte 0x{:02x} at offset {bad} is not printable ASCII",
                    content.get(bad).copied().unwrap_or(0)
                ),
            ));
        };
        let fields = split_fields(text);
        let magic = fields.first().copied().unwrap_or("");
        if magic != MAGIC {
            return Err(Error::header(
                HeaderField::Magic,
                format!(
                    "{:?} is not {MAGIC:?}: not a CVD/CLD",
                    truncate_for_message(magic)
                ),
            ));
        }
        if fields.len() < 8 || fields.len() > 9 {
            return Err(Error::header(
                HeaderField::Layout,
                format!("{} `:`-separated fields, expected 8 or 9", fields.len()),
            ));
        }
        let bad_time = || {
            Error::header(
                HeaderField::BuildTime,
                format!(
                    "{:?} is not a time like \"22 Jun 2021 21-34 -0400\"",
                    truncate_for_message(fields[1])
                ),
            )
        };
        let build_time =
            OffsetDateTime::parse(fields[1], BUILD_TIME_FORMAT).map_err(|_| bad_time())?;
        // Only the canonical spelling (e.g. not `-0000` for `+0000`).
        if build_time.format(BUILD_TIME_FORMAT).ok().as_deref() != Some(fields[1]) {
            return Err(bad_time());
        }
        let version = field(
            fields[2],
            HeaderField::Version,
            "an unsigned integer",
            u32_field,
        )?;
        let signatures = field(
            fields[3],
            HeaderField::Signatures,
            "an unsigned integer",
            u32_field,
        )?;
        let flevel = field(
            fields[4],
            HeaderField::FunctionalityLevel,
            "an unsigned integer",
            u32_field,
        )?;
        let md5 = field(
            fields[5],
            HeaderField::Md5,
            "32 lowercase hex digits or X",
            md5_field,
        )?;
        let dsig = field(
            fields[6],
            HeaderField::Dsig,
            "custom-base64 signature text or X",
            dsig_field,
        )?
        .map(str::to_string);
        if dsig
            .as_ref()
            .is_some_and(|d| d.len() > crate::clamb64::MAX_TEXT_LEN)
        {
            return Err(Error::header(HeaderField::Dsig, "signature text too long"));
        }
        let builder = fields[7];
        if builder.is_empty() {
            return Err(Error::header(HeaderField::Builder, "empty"));
        }
        if builder.ends_with(' ') {
            return Err(Error::header(
                HeaderField::Builder,
                "ends with a space (not canonical)",
            ));
        }
        let sign_time = match fields.get(8) {
            Some(t) => Some(field(
                t,
                HeaderField::SignTime,
                "Unix seconds (an unsigned integer)",
                i64_field,
            )?),
            None => None,
        };
        let header = Header {
            build_time,
            version,
            signatures,
            flevel,
            md5,
            dsig,
            builder: builder.to_string(),
            sign_time,
        };
        // Whatever parses can be written back (e.g. no negative years).
        header.validate()?;
        Ok(header)
    }

    /// The header as one line (no padding, no newline): the `.info` first line.
    pub fn to_line(&self) -> Result<String> {
        self.validate()?;
        let time = self
            .build_time
            .format(BUILD_TIME_FORMAT)
            .map_err(|err| Error::header(HeaderField::BuildTime, err.to_string()))?;
        let md5 = self.md5.map_or_else(|| "X".to_string(), |m| crate::hex(&m));
        let dsig = self.dsig.as_deref().unwrap_or("X");
        let mut line = format!(
            "{MAGIC}:{time}:{}:{}:{}:{md5}:{dsig}:{}",
            self.version, self.signatures, self.flevel, self.builder
        );
        if let Some(st) = self.sign_time {
            line.push(':');
            line.push_str(&st.to_string());
        }
        Ok(line)
    }

    /// Serializes the header, right-padded with spaces to 512 bytes.
    pub fn to_bytes(&self) -> Result<[u8; HEADER_SIZE]> {
        let line = self.to_line()?;
        if line.len() > HEADER_SIZE {
            return Err(Error::header(
                HeaderField::Layout,
                format!(
                    "header text is {} bytes, more than {HEADER_SIZE}",
                    line.len()
                ),
            ));
        }
        let mut out = [b' '; HEADER_SIZE];
        out[..line.len()].copy_from_slice(line.as_bytes());
        Ok(out)
    }

    /// The MD5 field as 32 lowercase hex digits (`None` for `X`).
    pub fn md5_hex(&self) -> Option<String> {
        self.md5.map(|m| crate::hex(&m))
    }

    /// `true` for a signed `.cvd` header (MD5 and signature present), `false` for the
    /// `X`/`X` of a `.cld`.
    pub fn is_signed(&self) -> bool {
        self.md5.is_some() && self.dsig.is_some()
    }

    /// Checks that the fields can be written in canonical form.
    fn validate(&self) -> Result<()> {
        if self.builder.is_empty()
            || self.builder.ends_with(' ')
            || !self
                .builder
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b':')
        {
            return Err(Error::header(
                HeaderField::Builder,
                format!(
                    "{:?} must be non-empty printable ASCII without `:` or trailing space",
                    self.builder
                ),
            ));
        }
        if let Some(d) = &self.dsig
            && (d.is_empty() || d == "X" || !d.chars().all(is_sig_char))
        {
            return Err(Error::header(
                HeaderField::Dsig,
                "not custom-base64 signature text",
            ));
        }
        if self.sign_time.is_some_and(|t| t < 0) {
            return Err(Error::header(HeaderField::SignTime, "negative"));
        }
        let year = self.build_time.year();
        if !(0..=9999).contains(&year) || self.build_time.second() != 0 {
            return Err(Error::header(
                HeaderField::BuildTime,
                "must be in years 0..=9999 with zero seconds (minute precision)",
            ));
        }
        Ok(())
    }

    /// Compares the fields that identify a database version with `info` (the `.info`
    /// first line): everything except MD5 and signature, which a `.info` line leaves as
    /// `X`. The reference loader compares only version, signatures, f-level and sign
    /// time; we also compare build time and builder so that no header byte goes
    /// unchecked.
    pub(crate) fn check_matches_info(&self, info: &Header) -> Result<()> {
        let mismatch = |field, c: String, i: String| {
            Err(Error::InfoHeaderMismatch {
                field,
                container: c,
                info: i,
            })
        };
        if self.version != info.version {
            return mismatch(
                HeaderField::Version,
                self.version.to_string(),
                info.version.to_string(),
            );
        }
        if self.signatures != info.signatures {
            return mismatch(
                HeaderField::Signatures,
                self.signatures.to_string(),
                info.signatures.to_string(),
            );
        }
        if self.flevel != info.flevel {
            return mismatch(
                HeaderField::FunctionalityLevel,
                self.flevel.to_string(),
                info.flevel.to_string(),
            );
        }
        if self.sign_time.unwrap_or(0) != info.sign_time.unwrap_or(0) {
            return mismatch(
                HeaderField::SignTime,
                format!("{:?}", self.sign_time),
                format!("{:?}", info.sign_time),
            );
        }
        if self.build_time != info.build_time
            || self.build_time.offset() != info.build_time.offset()
        {
            return mismatch(
                HeaderField::BuildTime,
                self.build_time.to_string(),
                info.build_time.to_string(),
            );
        }
        if self.builder != info.builder {
            return mismatch(
                HeaderField::Builder,
                self.builder.clone(),
                info.builder.clone(),
            );
        }
        Ok(())
    }
}

fn field_by_index(index: usize, padded: bool) -> HeaderField {
    match index {
        0 => HeaderField::Magic,
        1 => HeaderField::BuildTime,
        2 => HeaderField::Version,
        3 => HeaderField::Signatures,
        4 => HeaderField::FunctionalityLevel,
        5 => HeaderField::Md5,
        6 => HeaderField::Dsig,
        7 => HeaderField::Builder,
        8 => HeaderField::SignTime,
        _ if padded => HeaderField::Padding,
        _ => HeaderField::Layout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:3e249e00076b0b15bb54ced37be880c7:Dou6:micasnyd:1624412045";

    fn padded(text: &str) -> Vec<u8> {
        let mut raw = vec![b' '; HEADER_SIZE];
        raw[..text.len()].copy_from_slice(text.as_bytes());
        raw
    }

    #[test]
    fn parses_all_fields() -> Result<()> {
        let h = Header::parse(&padded(LINE))?;
        assert_eq!(h.version, 6);
        assert_eq!(h.signatures, 14);
        assert_eq!(h.flevel, 81);
        assert_eq!(
            h.md5.map(|m| crate::hex(&m)).as_deref(),
            Some("3e249e00076b0b15bb54ced37be880c7")
        );
        assert_eq!(h.dsig.as_deref(), Some("Dou6"));
        assert_eq!(h.builder, "micasnyd");
        assert_eq!(h.sign_time, Some(1624412045));
        assert_eq!(h.build_time.unix_timestamp(), 1624412040);
        assert_eq!(h.to_line()?, LINE);
        Ok(())
    }

    #[test]
    fn optional_sign_time() -> Result<()> {
        let h = Header::parse_line("ClamAV-VDB:01 Jan 2010 00-00 +0000:1:2:3:X:X:me")?;
        assert_eq!(h.sign_time, None);
        assert!(!h.is_signed());
        assert_eq!(
            h.to_line()?,
            "ClamAV-VDB:01 Jan 2010 00-00 +0000:1:2:3:X:X:me"
        );
        Ok(())
    }

    fn field_of(err: Error) -> Option<HeaderField> {
        match err {
            Error::Header { field, .. } => Some(field),
            _ => None,
        }
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, HeaderField)] = &[
            (
                "ClamAV-VDX:22 Jun 2021 21-34 -0400:6:14:81:X:X:m:1",
                HeaderField::Magic,
            ),
            (
                "ClamAV-VDB:22 Jum 2021 21-34 -0400:6:14:81:X:X:m:1",
                HeaderField::BuildTime,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21:34 -0400:6:14:81:X:X:m:1",
                HeaderField::Layout,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:6a:14:81:X:X:m:1",
                HeaderField::Version,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:-6:14:81:X:X:m:1",
                HeaderField::Version,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:06:14:81:X:X:m:1",
                HeaderField::Version,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0000:6:14:81:X:X:m:1",
                HeaderField::BuildTime,
            ),
            (
                "ClamAV-VDB:2 Jun 2021 21-34 +0000:6:14:81:X:X:m:1",
                HeaderField::BuildTime,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:99999999999:81:X:X:m:1",
                HeaderField::Signatures,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14::X:X:m:1",
                HeaderField::FunctionalityLevel,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:3E249e00076b0b15bb54ced37be880c7:X:m:1",
                HeaderField::Md5,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:abc:X:m:1",
                HeaderField::Md5,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X:ab=c:m:1",
                HeaderField::Dsig,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X::m:1",
                HeaderField::Dsig,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X:X::1",
                HeaderField::Builder,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X:X:me :1",
                HeaderField::Builder,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X:X:m:1x",
                HeaderField::SignTime,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X:X:m:1   7",
                HeaderField::SignTime,
            ),
            (
                "ClamAV-VDB:22 Jun 2021 21-34 -0400:6:14:81:X:X:m:1:2",
                HeaderField::Layout,
            ),
        ];
        for (text, want) in cases {
            let got = Header::parse(&padded(text)).err().and_then(field_of);
            assert_eq!(got, Some(*want), "{text}");
        }
    }

    #[test]
    fn rejects_bad_padding_and_length() {
        let mut raw = padded(LINE);
        raw[400] = 0;
        assert_eq!(
            Header::parse(&raw).err().and_then(field_of),
            Some(HeaderField::Padding)
        );
        assert_eq!(
            Header::parse(&raw[..511]).err().and_then(field_of),
            Some(HeaderField::Layout)
        );
    }

    #[test]
    fn serialize_refuses_bad_builder() -> Result<()> {
        let mut h = Header::parse(&padded(LINE))?;
        h.builder = "a:b".into();
        assert!(h.to_bytes().is_err());
        h.builder = "x".repeat(600);
        assert!(h.to_bytes().is_err());
        Ok(())
    }
}
