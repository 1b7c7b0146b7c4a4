//! Safe member names.

use crate::error::{Error, Result};

/// Longest member name accepted (the tar `name` field is 100 bytes).
pub const MAX_NAME_LEN: usize = 100;

/// Checks that `name` is a safe, flat member name: 1 to 100 bytes of ASCII letters,
/// digits, `.`, `_`, `-` and `+`, starting with a letter or digit. This excludes `/`,
/// `\`, `..`, `.`, NUL, control characters, hidden files and anything a shell or a
/// file system could interpret.
///
/// ```
/// use cvd_format::check_member_name;
/// assert!(check_member_name("daily.ldb").is_ok());
/// assert!(check_member_name("../etc/passwd").is_err());
/// assert!(check_member_name("a/b").is_err());
/// ```
pub fn check_member_name(name: &str) -> Result<()> {
    check_member_name_bytes(name.as_bytes())
}

pub(crate) fn check_member_name_bytes(name: &[u8]) -> Result<()> {
    let fail = |reason| {
        Err(Error::UnsafeName {
            name: String::from_utf8_lossy(name).into_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("empty name");
    }
    if name.len() > MAX_NAME_LEN {
        return fail("longer than 100 bytes");
    }
    if name.contains(&0) {
        return fail("contains NUL");
    }
    if name.contains(&b'/') || name.contains(&b'\\') {
        return fail("contains a path separator");
    }
    if name == b"." || name == b".." || name.windows(2).any(|w| w == b"..") {
        return fail("contains `..`");
    }
    if !name[0].is_ascii_alphanumeric() {
        return fail("must start with an ASCII letter or digit");
    }
    if !name
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
    {
        return fail("contains a character other than ASCII letters, digits, `.`, `_`, `-`, `+`");
    }
    Ok(())
}
