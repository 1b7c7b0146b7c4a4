//! The decompressed cdiff script: a line-oriented edit program (spec §2).
//!
//! Grammar, as measured against `sigtool --run-cdiff` of ClamAV 1.4.6 (the reference):
//!
//! - a line is every byte up to `\n` (a `\r` is *not* stripped: it becomes part of the
//!   last argument, exactly as in the reference); a final line without `\n` counts;
//! - a line starting with `#` is a comment; an empty line is an error;
//! - the command is the text before the first space, arguments are separated by single
//!   spaces (a tab is not a separator);
//! - `OPEN <name>` / `UNLINK <name>`: the rest of the line is the name: ASCII letters,
//!   digits and `.` only (the reference rejects `_` and `/`);
//! - `ADD <line>`: the rest of the line after `ADD `, verbatim (may be empty);
//! - `DEL <n> <prefix>`: line number (decimal, optional `+`), then the prefix up to the
//!   next space (may be empty); anything after it is ignored;
//! - `XCHG <n> <prefix> <new line>`: the new line is the rest after the prefix's
//!   terminating space, verbatim;
//! - `CLOSE` (anything after `CLOSE ` is ignored);
//! - `MOVE <src> <dst> <start> <start prefix> <end> <end prefix>`.

use nom::bytes::complete::{tag, take_till, take_while1};
use nom::combinator::{opt, rest};
use nom::{IResult, Parser};

use crate::error::{Error, Result};
use crate::limits::Limits;

/// Longest accepted database file name in `OPEN`, `UNLINK` and `MOVE`.
pub const MAX_NAME_LEN: usize = 255;

/// One command of a cdiff script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `OPEN <file>`: start editing a database file.
    Open(String),
    /// `ADD <line>`: append a line to the open file when it is closed.
    Add(Vec<u8>),
    /// `DEL <n> <prefix>`: delete original line `n`, which must start with `prefix`.
    Del {
        /// 1-based line number in the file as it was when opened.
        line: u64,
        /// Bytes the line must start with.
        prefix: Vec<u8>,
    },
    /// `XCHG <n> <prefix> <new>`: replace original line `n` (checked against `prefix`).
    Xchg {
        /// 1-based line number in the file as it was when opened.
        line: u64,
        /// Bytes the old line must start with.
        prefix: Vec<u8>,
        /// The replacement line (without newline).
        new: Vec<u8>,
    },
    /// `CLOSE`: apply the edits collected since `OPEN`.
    Close,
    /// `MOVE`: move lines `start..=end` of `src` to the end of `dst`.
    Move {
        /// Source file.
        src: String,
        /// Destination file (must exist).
        dst: String,
        /// First line to move (1-based).
        start: u64,
        /// Prefix the first line must start with.
        start_prefix: Vec<u8>,
        /// Last line to move (1-based, greater than `start`).
        end: u64,
        /// Prefix the last line must start with.
        end_prefix: Vec<u8>,
    },
    /// `UNLINK <file>`: delete a database file.
    Unlink(String),
    /// A `#` comment line (without the `#`).
    Comment(Vec<u8>),
}

/// A command with the 1-based script line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the script.
    pub number: usize,
    /// The parsed command.
    pub command: Command,
}

/// A parsed cdiff script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    lines: Vec<Line>,
}

impl Script {
    /// Parses a decompressed script with the default [`Limits`].
    ///
    /// ```
    /// let script = cdiff::Script::parse(b"OPEN x.db\nDEL 2 foo\nADD bar\nCLOSE\n")?;
    /// assert_eq!(script.lines().len(), 4);
    /// # Ok::<(), cdiff::Error>(())
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Script> {
        Self::parse_with_limits(bytes, &Limits::default())
    }

    /// Parses a decompressed script, enforcing `limits` on its size, line count and line
    /// length. Every error names the script line.
    pub fn parse_with_limits(bytes: &[u8], limits: &Limits) -> Result<Script> {
        if bytes.len() as u64 > limits.max_script_len {
            return Err(Error::Limit {
                what: format!("script of {} bytes", bytes.len()),
                limit: limits.max_script_len,
            });
        }
        let mut lines = Vec::new();
        let mut body = bytes;
        let mut number = 0usize;
        while !body.is_empty() {
            number += 1;
            if number > limits.max_script_lines {
                return Err(Error::Limit {
                    what: "number of script lines".into(),
                    limit: limits.max_script_lines as u64,
                });
            }
            let (line, next) = match memchr::memchr(b'\n', body) {
                Some(i) => (&body[..i], &body[i + 1..]),
                None => (body, &body[body.len()..]),
            };
            body = next;
            if line.len() > limits.max_line_len {
                return Err(Error::Syntax {
                    line: number,
                    reason: format!(
                        "line of {} bytes exceeds the limit of {}",
                        line.len(),
                        limits.max_line_len
                    ),
                });
            }
            let command = parse_line(line).map_err(|reason| Error::Syntax {
                line: number,
                reason,
            })?;
            lines.push(Line { number, command });
        }
        Ok(Script { lines })
    }

    /// Builds a script from commands (numbered 1, 2, ... in order).
    pub fn from_commands(commands: impl IntoIterator<Item = Command>) -> Script {
        let lines = commands
            .into_iter()
            .enumerate()
            .map(|(i, command)| Line {
                number: i + 1,
                command,
            })
            .collect();
        Script { lines }
    }

    /// The commands with their line numbers, in script order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Serializes the script (one command per line, each ending in `\n`).
    ///
    /// Fails when a command cannot be written so that it parses back to itself: a name
    /// or argument containing a forbidden byte, a prefix containing a space, or a line
    /// containing `\n`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for line in &self.lines {
            write_command(&mut out, &line.command).map_err(|reason| Error::Syntax {
                line: line.number,
                reason,
            })?;
            out.push(b'\n');
        }
        Ok(out)
    }
}

/// True when `name` is accepted by the reference as a database file name: ASCII
/// letters, digits and `.`, not only dots, at most [`MAX_NAME_LEN`] bytes.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        && !name.bytes().all(|b| b == b'.')
}

fn check_name(name: &[u8]) -> std::result::Result<String, String> {
    let text = std::str::from_utf8(name)
        .ok()
        .filter(|s| is_valid_name(s))
        .ok_or_else(|| {
            format!(
                "invalid database name `{}`: only ASCII letters, digits and `.` are allowed",
                String::from_utf8_lossy(name).escape_debug()
            )
        })?;
    Ok(text.to_string())
}

type PResult<'a, O> = IResult<&'a [u8], O>;

/// A space-delimited token (possibly empty).
fn token(input: &[u8]) -> PResult<'_, &[u8]> {
    take_till(|b| b == b' ').parse(input)
}

fn sp(input: &[u8]) -> PResult<'_, &[u8]> {
    tag(&b" "[..]).parse(input)
}

/// A line number: optional `+` then decimal digits (as Rust's `usize::from_str`).
fn number(input: &[u8]) -> PResult<'_, (Option<&[u8]>, &[u8])> {
    (opt(tag(&b"+"[..])), take_while1(|b: u8| b.is_ascii_digit())).parse(input)
}

fn to_u64(digits: &[u8]) -> std::result::Result<u64, String> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| "line number out of range".to_string())
}

/// `<n> <prefix>` where the line number is followed by a space.
fn numbered_prefix(input: &[u8]) -> PResult<'_, (&[u8], &[u8])> {
    let (input, (_, digits)) = number(input)?;
    let (input, _) = sp(input)?;
    let (input, prefix) = token(input)?;
    Ok((input, (digits, prefix)))
}

fn parse_line(line: &[u8]) -> std::result::Result<Command, String> {
    if let Some(comment) = line.strip_prefix(b"#") {
        return Ok(Command::Comment(comment.to_vec()));
    }
    let (cmd, args) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    let missing = |what: &str| format!("{} is missing {what}", String::from_utf8_lossy(cmd));
    let bad = |what: &str| {
        format!(
            "malformed {} arguments: {what}",
            String::from_utf8_lossy(cmd)
        )
    };
    match (cmd, args) {
        (b"CLOSE", _) => Ok(Command::Close),
        (b"OPEN", Some(name)) => Ok(Command::Open(check_name(name)?)),
        (b"UNLINK", Some(name)) => Ok(Command::Unlink(check_name(name)?)),
        (b"ADD", Some(text)) => Ok(Command::Add(text.to_vec())),
        (b"DEL", Some(args)) => {
            let (_, (digits, prefix)) =
                numbered_prefix(args).map_err(|_| bad("expected `<line> <prefix>`"))?;
            Ok(Command::Del {
                line: to_u64(digits)?,
                prefix: prefix.to_vec(),
            })
        }
        (b"XCHG", Some(args)) => {
            let (_, ((digits, prefix), _, new)) = (numbered_prefix, sp, rest).parse(args).map_err(
                |_: nom::Err<nom::error::Error<&[u8]>>| {
                    bad("expected `<line> <prefix> <new line>`")
                },
            )?;
            Ok(Command::Xchg {
                line: to_u64(digits)?,
                prefix: prefix.to_vec(),
                new: new.to_vec(),
            })
        }
        (b"MOVE", Some(args)) => {
            let parsed: PResult<'_, _> = (
                token, sp, token, sp, number, sp, token, sp, number, sp, token,
            )
                .parse(args);
            let (_, (src, _, dst, _, (_, start), _, start_prefix, _, (_, end), _, end_prefix)) =
                parsed
                    .map_err(|_| bad("expected `<src> <dst> <start> <prefix> <end> <prefix>`"))?;
            Ok(Command::Move {
                src: check_name(src)?,
                dst: check_name(dst)?,
                start: to_u64(start)?,
                start_prefix: start_prefix.to_vec(),
                end: to_u64(end)?,
                end_prefix: end_prefix.to_vec(),
            })
        }
        (b"OPEN" | b"UNLINK", None) => Err(missing("a database name")),
        (b"ADD", None) => Err(missing("the line to add")),
        (b"DEL" | b"XCHG" | b"MOVE", None) => Err(missing("its arguments")),
        _ => Err(format!(
            "unknown command `{}`",
            String::from_utf8_lossy(cmd).escape_debug()
        )),
    }
}

fn write_command(out: &mut Vec<u8>, command: &Command) -> std::result::Result<(), String> {
    let no_newline = |b: &[u8], what: &str| {
        if b.contains(&b'\n') {
            Err(format!("{what} contains a newline"))
        } else {
            Ok(())
        }
    };
    let prefix_ok = |b: &[u8], what: &str| {
        if b.contains(&b'\n') || b.contains(&b' ') {
            Err(format!("{what} contains a space or newline"))
        } else {
            Ok(())
        }
    };
    let name_ok = |n: &str| {
        if is_valid_name(n) {
            Ok(())
        } else {
            Err(format!("invalid database name `{}`", n.escape_debug()))
        }
    };
    match command {
        Command::Open(name) => {
            name_ok(name)?;
            out.extend_from_slice(b"OPEN ");
            out.extend_from_slice(name.as_bytes());
        }
        Command::Unlink(name) => {
            name_ok(name)?;
            out.extend_from_slice(b"UNLINK ");
            out.extend_from_slice(name.as_bytes());
        }
        Command::Add(text) => {
            no_newline(text, "ADD line")?;
            out.extend_from_slice(b"ADD ");
            out.extend_from_slice(text);
        }
        Command::Del { line, prefix } => {
            prefix_ok(prefix, "DEL prefix")?;
            out.extend_from_slice(format!("DEL {line} ").as_bytes());
            out.extend_from_slice(prefix);
        }
        Command::Xchg { line, prefix, new } => {
            prefix_ok(prefix, "XCHG prefix")?;
            no_newline(new, "XCHG new line")?;
            out.extend_from_slice(format!("XCHG {line} ").as_bytes());
            out.extend_from_slice(prefix);
            out.push(b' ');
            out.extend_from_slice(new);
        }
        Command::Close => out.extend_from_slice(b"CLOSE"),
        Command::Move {
            src,
            dst,
            start,
            start_prefix,
            end,
            end_prefix,
        } => {
            name_ok(src)?;
            name_ok(dst)?;
            prefix_ok(start_prefix, "MOVE start prefix")?;
            prefix_ok(end_prefix, "MOVE end prefix")?;
            out.extend_from_slice(format!("MOVE {src} {dst} {start} ").as_bytes());
            out.extend_from_slice(start_prefix);
            out.extend_from_slice(format!(" {end} ").as_bytes());
            out.extend_from_slice(end_prefix);
        }
        Command::Comment(text) => {
            no_newline(text, "comment")?;
            out.push(b'#');
            out.extend_from_slice(text);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;

    fn one(line: &[u8]) -> std::result::Result<Command, String> {
        parse_line(line)
    }

    #[test]
    fn reference_tokenization() {
        assert_eq!(
            one(b"DEL 1 foo bar"),
            Ok(Command::Del {
                line: 1,
                prefix: b"foo".to_vec()
            })
        );
        assert_eq!(
            one(b"DEL +02 "),
            Ok(Command::Del {
                line: 2,
                prefix: vec![]
            })
        );
        assert_eq!(
            one(b"XCHG 1 a   new  line  "),
            Ok(Command::Xchg {
                line: 1,
                prefix: b"a".to_vec(),
                new: b"  new  line  ".to_vec()
            })
        );
        assert_eq!(one(b"ADD   x "), Ok(Command::Add(b"  x ".to_vec())));
        assert_eq!(one(b"ADD "), Ok(Command::Add(vec![])));
        assert_eq!(one(b"CLOSE extra"), Ok(Command::Close));
        assert_eq!(one(b"# c"), Ok(Command::Comment(b" c".to_vec())));
    }

    #[test]
    fn reference_rejections() {
        for bad in [
            &b""[..],
            b" #x",
            b"open x.db",
            b"OPEN\tx.db",
            b"OPEN x_y.db",
            b"OPEN x.db\r",
            b"OPEN ..",
            b"OPEN a/b",
            b"DEL 1",
            b"DEL x a",
            b"DEL  1 a",
            b"XCHG 1 a",
            b"DEL 99999999999999999999999 a",
            b"MOVE a b 1 x 2",
            b"ADD",
        ] {
            assert!(
                one(bad).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn errors_carry_line_numbers() {
        let err = Script::parse(b"OPEN a\n# ok\nFOO bar\n").unwrap_err();
        assert!(matches!(err, Error::Syntax { line: 3, .. }), "{err}");
        let limits = Limits {
            max_line_len: 4,
            ..Limits::default()
        };
        let err = Script::parse_with_limits(b"CLOSE\n", &limits).unwrap_err();
        assert!(matches!(err, Error::Syntax { line: 1, .. }), "{err}");
    }

    #[test]
    fn roundtrip() {
        let text = b"OPEN a.db\nXCHG 3 pre new line\nDEL 4 x\nADD  spaced \nCLOSE\nMOVE a.db b.db 1 x 2 y\nUNLINK a.db\n#note\n";
        let script = Script::parse(text).unwrap();
        assert_eq!(script.to_bytes().unwrap(), text.to_vec());
    }
}
