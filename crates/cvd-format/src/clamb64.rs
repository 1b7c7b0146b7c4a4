//! ClamAV's custom base64 for signature text (spec §1).
//!
//! Alphabet `a`-`z` = 0..25, `A`-`Z` = 26..51, `0`-`9` = 52..61, `+` = 62, `/` = 63; the
//! digits are **little-endian**: the first character holds the least significant six
//! bits of the integer. This is *not* RFC 4648 base64, so the `base64` crate does not
//! apply.

use crate::error::{Error, Result};

/// Longest signature text accepted (a 4096-bit integer needs 683 digits).
pub const MAX_TEXT_LEN: usize = 700;

fn digit_value(c: u8) -> Option<u8> {
    match c {
        b'a'..=b'z' => Some(c - b'a'),
        b'A'..=b'Z' => Some(c - b'A' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

fn digit_char(v: u8) -> char {
    let c = match v {
        0..=25 => b'a' + v,
        26..=51 => b'A' + (v - 26),
        52..=61 => b'0' + (v - 52),
        62 => b'+',
        _ => b'/',
    };
    char::from(c)
}

/// Decodes signature text into its integer, returned as minimal big-endian bytes (no
/// leading zero bytes; zero is an empty vector).
///
/// ```
/// use cvd_format::clamb64;
/// let n = clamb64::decode("bab")?; // first digit least significant: 1 + 0*64 + 1*4096
/// assert_eq!(n, vec![0x10, 0x01]);
/// assert_eq!(clamb64::encode(&n, 3), "bab");
/// # Ok::<(), cvd_format::Error>(())
/// ```
pub fn decode(text: &str) -> Result<Vec<u8>> {
    if text.is_empty() {
        return Err(Error::SignatureText {
            reason: "empty".into(),
        });
    }
    if text.len() > MAX_TEXT_LEN {
        return Err(Error::SignatureText {
            reason: format!("{} characters, more than {MAX_TEXT_LEN}", text.len()),
        });
    }
    // Pack the little-endian 6-bit digits into little-endian bytes.
    let mut bytes = Vec::with_capacity(text.len() * 6 / 8 + 1);
    let mut acc: u32 = 0;
    let mut nbits = 0u32;
    for (pos, c) in text.bytes().enumerate() {
        let v = digit_value(c).ok_or_else(|| Error::SignatureText {
            reason: format!(
                "invalid character {:?} at position {pos}",
                char::from(c).escape_default().to_string()
            ),
        })?;
        acc |= u32::from(v) << nbits;
        nbits += 6;
        while nbits >= 8 {
            bytes.push((acc & 0xff) as u8);
            acc >>= 8;
            nbits -= 8;
        }
    }
    if nbits > 0 {
        bytes.push((acc & 0xff) as u8);
    }
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes.reverse();
    Ok(bytes)
}

/// Encodes the integer whose big-endian bytes are `value_be` as exactly `digits`
/// characters (high digits padded with `a` = 0).
///
/// `digits` should be `ceil(modulus_bits / 6)` ([`digits_for_bits`]); if the value needs
/// more digits, all of them are written (the text is then longer than `digits`).
pub fn encode(value_be: &[u8], digits: usize) -> String {
    let bytes: Vec<u8> = value_be.iter().rev().copied().collect();
    let mut out = String::with_capacity(digits.max(bytes.len() * 8 / 6 + 1));
    let mut acc: u32 = 0;
    let mut nbits = 0u32;
    for b in bytes {
        acc |= u32::from(b) << nbits;
        nbits += 8;
        while nbits >= 6 {
            out.push(digit_char((acc & 0x3f) as u8));
            acc >>= 6;
            nbits -= 6;
        }
    }
    if nbits > 0 {
        out.push(digit_char((acc & 0x3f) as u8));
    }
    // Drop high zero digits beyond what is needed, then pad to `digits`.
    while out.len() > digits && out.ends_with('a') {
        out.pop();
    }
    while out.len() < digits {
        out.push('a');
    }
    out
}

/// Number of custom-base64 digits for an integer below a modulus of `bits` bits.
pub fn digits_for_bits(bits: usize) -> usize {
    bits.div_ceil(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_round_trip() {
        for v in 0u8..64 {
            let c = digit_char(v);
            assert_eq!(digit_value(c as u8), Some(v));
        }
    }

    #[test]
    fn little_endian_digits() {
        // "ab" = 0 + 1*64
        assert_eq!(decode("ab").ok(), Some(vec![64]));
        assert_eq!(decode("/").ok(), Some(vec![63]));
        assert_eq!(decode("aaaa").ok(), Some(vec![]));
        assert_eq!(encode(&[64], 4), "abaa");
        assert_eq!(encode(&[], 3), "aaa");
        assert_eq!(encode(&[0, 0, 64], 2), "ab");
    }

    #[test]
    fn rejects_bad_characters() {
        assert!(decode("ab=").is_err());
        assert!(decode("").is_err());
        assert!(decode("a b").is_err());
        assert!(decode(&"a".repeat(MAX_TEXT_LEN + 1)).is_err());
    }

    #[test]
    fn round_trip_large() {
        let v: Vec<u8> = (1u8..=40).collect();
        let text = encode(&v, digits_for_bits(320));
        assert_eq!(decode(&text).ok(), Some(v));
    }
}
