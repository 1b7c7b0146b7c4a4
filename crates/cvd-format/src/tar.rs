//! A strict streaming reader and a minimal writer for the flat ustar archives inside
//! CVD/CLD bodies.
//!
//! Hand-written (rather than the `tar` crate) because the format accepted is a tiny,
//! strict subset: flat regular files only, with ClamAV's quirks (sigtool writes v7-style
//! headers with zero mode/uid/mtime and no `ustar` magic), and every anomaly must be a
//! typed error with an offset. The reader pulls from any [`Read`] and never buffers more
//! than one 8 KiB chunk of member data.

use std::collections::HashSet;
use std::io::{Read, Write};

use crate::error::{Error, Result};
use crate::names;

/// Tar block size.
pub const BLOCK: usize = 512;

/// Most trailing bytes accepted after the end-of-archive block (all must be zero).
pub const MAX_TRAILER: u64 = 1 << 20;

/// Limits enforced by the reader.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TarLimits {
    pub max_member_size: u64,
    pub max_total_size: u64,
    pub max_members: usize,
}

/// A member header that passed all checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub name: String,
    pub size: u64,
}

/// Strict pull reader.
pub(crate) struct TarReader<R> {
    inner: R,
    offset: u64,
    limits: TarLimits,
    names: HashSet<String>,
    total: u64,
    /// Unread data bytes (plus padding) of the current member.
    pending: Option<(u64, u64)>,
    done: bool,
}

/// Maps an I/O error from the stream below the tar reader.
pub(crate) type IoMap = fn(std::io::Error, &'static str) -> Error;

impl<R: Read> TarReader<R> {
    pub fn new(inner: R, limits: TarLimits) -> Self {
        Self {
            inner,
            offset: 0,
            limits,
            names: HashSet::new(),
            total: 0,
            pending: None,
            done: false,
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn tar_err(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::Tar {
            offset,
            reason: reason.into(),
        }
    }

    /// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean EOF before the first byte.
    fn read_block(&mut self, buf: &mut [u8; BLOCK], map: IoMap) -> Result<bool> {
        let mut filled = 0;
        while filled < BLOCK {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(map(e, "tar header")),
            }
        }
        if filled == 0 {
            return Ok(false);
        }
        if filled < BLOCK {
            return Err(Error::Truncated {
                what: "tar header block",
            });
        }
        self.offset += BLOCK as u64;
        Ok(true)
    }

    /// Next member header, or `None` at the end-of-archive block.
    pub fn next_entry(&mut self, map: IoMap) -> Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        if self.pending.is_some() {
            self.skip_data(map)?;
        }
        let start = self.offset;
        let mut block = [0u8; BLOCK];
        if !self.read_block(&mut block, map)? {
            // sigtool writes no end-of-archive blocks: a clean end of stream on a block
            // boundary ends the archive, as in the reference reader. Truncation at a
            // member boundary is caught by the `.info` member list (and the MD5).
            self.done = true;
            return Ok(None);
        }
        if block.iter().all(|&b| b == 0) {
            self.done = true;
            return Ok(None);
        }
        let entry = self.parse_header(&block, start)?;
        if self.names.len() >= self.limits.max_members {
            return Err(Error::limit(
                "number of archive members",
                self.limits.max_members as u64,
            ));
        }
        if !self.names.insert(entry.name.clone()) {
            return Err(Error::DuplicateMember { name: entry.name });
        }
        if entry.size > self.limits.max_member_size {
            return Err(Error::limit(
                format!("size of member `{}` ({} bytes)", entry.name, entry.size),
                self.limits.max_member_size,
            ));
        }
        self.total = self.total.saturating_add(entry.size);
        if self.total > self.limits.max_total_size {
            return Err(Error::limit(
                "total unpacked size",
                self.limits.max_total_size,
            ));
        }
        let padding = (BLOCK as u64 - entry.size % BLOCK as u64) % BLOCK as u64;
        self.pending = Some((entry.size, padding));
        Ok(Some(entry))
    }

    fn parse_header(&self, b: &[u8; BLOCK], start: u64) -> Result<Entry> {
        // Checksum first: it tells corrupt blocks from hostile ones.
        let stored = parse_octal(&b[148..156])
            .ok_or_else(|| self.tar_err(start + 148, "checksum field is not octal"))?;
        let computed: u64 = b
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(v)
                }
            })
            .sum();
        if stored != computed {
            return Err(self.tar_err(
                start + 148,
                format!("header checksum {stored:o} does not match computed {computed:o}"),
            ));
        }
        let name_field = &b[..100];
        let name_len = name_field.iter().position(|&c| c == 0).unwrap_or(100);
        let (name, rest) = name_field.split_at(name_len);
        if rest.iter().any(|&c| c != 0) {
            return Err(Error::UnsafeName {
                name: String::from_utf8_lossy(name_field).into_owned(),
                reason: "contains NUL",
            });
        }
        let magic = &b[257..265];
        let prefix_used = match magic {
            b"ustar\x0000" => b[345..500].iter().any(|&c| c != 0),
            b"ustar  \0" | [0, 0, 0, 0, 0, 0, 0, 0] => false,
            _ => {
                return Err(self.tar_err(start + 257, "unknown tar magic"));
            }
        };
        if prefix_used {
            return Err(Error::UnsafeName {
                name: String::from_utf8_lossy(name).into_owned(),
                reason: "uses the ustar prefix field (a path)",
            });
        }
        names::check_member_name_bytes(name)?;
        let name = String::from_utf8_lossy(name).into_owned();
        let typeflag = b[156];
        if typeflag != b'0' && typeflag != 0 {
            return Err(Error::NonRegularMember {
                name,
                typeflag: char::from(typeflag),
            });
        }
        let size = parse_octal(&b[124..136])
            .ok_or_else(|| self.tar_err(start + 124, format!("size of `{name}` is not octal")))?;
        Ok(Entry { name, size })
    }

    /// Streams the current member's data to `sink` in chunks.
    pub fn read_data(
        &mut self,
        map: IoMap,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let Some((mut left, padding)) = self.pending.take() else {
            return Ok(());
        };
        let mut buf = [0u8; 8192];
        while left > 0 {
            let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            let n = match self.inner.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(Error::Truncated {
                        what: "tar member data",
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(map(e, "tar member data")),
            };
            sink(&buf[..n])?;
            left -= n as u64;
            self.offset += n as u64;
        }
        self.skip_exact(padding, map, "tar padding")
    }

    fn skip_data(&mut self, map: IoMap) -> Result<()> {
        self.read_data(map, |_| Ok(()))
    }

    /// Skips the zero padding after member data; non-zero padding is refused (it is
    /// covered by no checksum or hash, so it could hide data).
    fn skip_exact(&mut self, mut n: u64, map: IoMap, what: &'static str) -> Result<()> {
        let mut buf = [0u8; BLOCK];
        while n > 0 {
            let want = usize::try_from(n.min(BLOCK as u64)).unwrap_or(BLOCK);
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => return Err(Error::Truncated { what }),
                Ok(k) => {
                    if let Some(pos) = buf[..k].iter().position(|&b| b != 0) {
                        return Err(self.tar_err(
                            self.offset + pos as u64,
                            "non-zero padding after member data",
                        ));
                    }
                    n -= k as u64;
                    self.offset += k as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(map(e, what)),
            }
        }
        Ok(())
    }

    /// After the end-of-archive block: the rest of the stream must be zero bytes (at
    /// most [`MAX_TRAILER`]).
    pub fn finish(&mut self, map: IoMap) -> Result<()> {
        if !self.done {
            return Err(self.tar_err(self.offset, "finish before end of archive"));
        }
        let mut buf = [0u8; 8192];
        let mut trailer = 0u64;
        loop {
            let n = match self.inner.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(map(e, "tar trailer")),
            };
            if let Some(pos) = buf[..n].iter().position(|&b| b != 0) {
                return Err(self.tar_err(
                    self.offset + pos as u64,
                    "non-zero data after the end-of-archive block",
                ));
            }
            trailer += n as u64;
            self.offset += n as u64;
            if trailer > MAX_TRAILER {
                return Err(Error::limit(
                    "zero padding after the tar archive",
                    MAX_TRAILER,
                ));
            }
        }
    }
}

/// Parses a tar numeric field: optional leading spaces, octal digits, then only NUL or
/// space terminators. Base-256 (GNU binary) sizes are refused.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let start = field.iter().position(|&c| c != b' ')?;
    let field = &field[start..];
    let digits = field
        .iter()
        .position(|&c| !(b'0'..=b'7').contains(&c))
        .unwrap_or(field.len());
    if digits == 0 || digits > 21 {
        return None;
    }
    if !field[digits..].iter().all(|&c| c == 0 || c == b' ') {
        return None;
    }
    field[..digits].iter().try_fold(0u64, |acc, &c| {
        acc.checked_mul(8)?.checked_add(u64::from(c - b'0'))
    })
}

/// Writes one regular-file header (POSIX ustar, mode 0644, uid/gid/mtime 0).
pub(crate) fn write_header(out: &mut impl Write, name: &str, size: u64) -> Result<()> {
    names::check_member_name(name)?;
    if size >= 1 << 33 {
        return Err(Error::Build {
            reason: format!("member `{name}` is too large for a tar header ({size} bytes)"),
        });
    }
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name.as_bytes());
    b[100..108].copy_from_slice(b"0000644\0");
    b[108..116].copy_from_slice(b"0000000\0");
    b[116..124].copy_from_slice(b"0000000\0");
    b[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    b[136..148].copy_from_slice(b"00000000000\0");
    b[156] = b'0';
    b[257..265].copy_from_slice(b"ustar\x0000");
    b[148..156].copy_from_slice(b"        ");
    let sum: u64 = b.iter().map(|&v| u64::from(v)).sum();
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.write_all(&b)
        .map_err(|e| Error::io("writing a tar header", e))
}

/// Writes the zero padding after `size` bytes of member data.
pub(crate) fn write_padding(out: &mut impl Write, size: u64) -> Result<()> {
    let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
    let zeros = [0u8; BLOCK];
    out.write_all(&zeros[..usize::try_from(pad).unwrap_or(0)])
        .map_err(|e| Error::io("writing tar padding", e))
}

/// Writes the end-of-archive marker (two zero blocks).
pub(crate) fn write_end(out: &mut impl Write) -> Result<()> {
    out.write_all(&[0u8; 2 * BLOCK])
        .map_err(|e| Error::io("writing the tar end blocks", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields() {
        assert_eq!(parse_octal(b"00000000012\0"), Some(10));
        assert_eq!(parse_octal(b"  12 \0\0\0"), Some(10));
        assert_eq!(parse_octal(b"0000000001 2"), None);
        assert_eq!(parse_octal(b"0000000009\0\0"), None);
        assert_eq!(parse_octal(b"\0\0\0\0"), None);
        assert_eq!(parse_octal(&[0x80, 0, 0, 0, 0, 0, 0, 1]), None);
    }
}
