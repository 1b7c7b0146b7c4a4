//! Running a script against an unpacked database, with the reference semantics.
//!
//! Behaviour measured with `sigtool --run-cdiff` (ClamAV 1.4.6) and kept here:
//!
//! - `DEL`/`XCHG` are keyed by the **original** line number of the file when it was
//!   opened; a later edit of the same line replaces an earlier one; the order of the
//!   edits in the script does not matter. At `CLOSE` the file is streamed once: a line
//!   with an edit must start with the edit's prefix (bytes, `\r` included), an edit
//!   whose line does not exist is an error, and a file being edited must end with `\n`.
//!   Untouched lines are copied byte for byte (CRLF stays CRLF); an exchanged line is
//!   written with `\n`.
//! - `ADD` lines are appended (each plus `\n`) after the edits, at `CLOSE`; if the file
//!   does not exist it is created. `OPEN` + `CLOSE` with no commands creates nothing.
//! - `MOVE` needs no open file; both files must exist; lines `start..=end` (with
//!   `start < end`, both prefix-checked) are removed from `src` and appended to `dst`
//!   (with `src == dst` the range ends up at the end of the file).
//! - `UNLINK` needs no open file and an existing file.
//! - A file still open at the end of the script is silently dropped with its pending
//!   edits (the reference does not report it).
//!
//! Everything is computed in memory against an overlay of the touched files and
//! committed only when the whole script succeeded: an error leaves the input untouched.
//! Time is linear in the size of the touched files plus the script.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::script::{Command, Script};

/// An unpacked database held in memory: file name → contents.
///
/// ```
/// let mut db = cdiff::Database::new();
/// db.insert("x.db", b"a\nb\n".to_vec());
/// db.apply(&cdiff::Script::parse(b"OPEN x.db\nDEL 1 a\nADD c\nCLOSE\n")?)?;
/// assert_eq!(db.get("x.db"), Some(&b"b\nc\n"[..]));
/// # Ok::<(), cdiff::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Database {
    files: BTreeMap<String, Vec<u8>>,
}

impl Database {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a file; returns the previous contents.
    pub fn insert(&mut self, name: impl Into<String>, contents: Vec<u8>) -> Option<Vec<u8>> {
        self.files.insert(name.into(), contents)
    }

    /// Removes a file; returns its contents.
    pub fn remove(&mut self, name: &str) -> Option<Vec<u8>> {
        self.files.remove(name)
    }

    /// The contents of a file.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// All files, by name.
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    /// Consumes the database, returning its files.
    pub fn into_files(self) -> BTreeMap<String, Vec<u8>> {
        self.files
    }

    /// Applies `script` with the default [`Limits`]; on error `self` is unchanged.
    pub fn apply(&mut self, script: &Script) -> Result<()> {
        self.apply_with_limits(script, &Limits::default())
    }

    /// Applies `script`; on error `self` is unchanged.
    pub fn apply_with_limits(&mut self, script: &Script, limits: &Limits) -> Result<()> {
        let files = &self.files;
        let changes = run(script, limits, &mut |name: &str| {
            Ok(files.get(name).map(|f| Cow::Borrowed(f.as_slice())))
        })?;
        for (name, change) in changes {
            match change {
                Some(bytes) => {
                    self.files.insert(name, bytes);
                }
                None => {
                    self.files.remove(&name);
                }
            }
        }
        Ok(())
    }

    /// Reads every regular file of a flat directory (e.g. an unpacked `.cvd`).
    /// Subdirectories are an error; so are files larger than `limits.max_file_len`.
    pub fn read_dir(dir: &Path, limits: &Limits) -> Result<Database> {
        let mut db = Database::new();
        for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let path = entry.path();
            let name = entry.file_name().into_string().map_err(|_| Error::Result {
                reason: format!("{}: file name is not UTF-8", path.display()),
            })?;
            if let Some(bytes) = read_regular(&path, limits)? {
                db.insert(name, bytes);
            } else {
                return Err(Error::io(
                    &path,
                    std::io::Error::other("not a regular file in a database directory"),
                ));
            }
        }
        Ok(db)
    }
}

/// Applies `script` to the unpacked database in directory `dir`.
///
/// All commands are first run in memory against the files they touch; only when the
/// whole script succeeded are the changed files written (each to a temporary file in
/// `dir`, then renamed over the original) and unlinked files removed. A script error
/// leaves the directory untouched. Files are not `fsync`ed (like the reference);
/// callers that need durability across a crash sync the directory themselves.
pub fn apply_to_dir(dir: &Path, script: &Script, limits: &Limits) -> Result<()> {
    let changes = run(script, limits, &mut |name: &str| {
        Ok(read_regular(&dir.join(name), limits)?.map(Cow::Owned))
    })?;
    // Write every new file to a temporary name first, then switch them all.
    let mut staged = Vec::new();
    for (name, change) in &changes {
        if let Some(bytes) = change {
            let tmp = dir.join(format!(".{name}.cdiff-tmp"));
            let write = || -> std::io::Result<()> {
                let mut f = fs::File::create(&tmp)?;
                f.write_all(bytes)
            };
            if let Err(e) = write() {
                let _ = fs::remove_file(&tmp);
                for (t, _) in &staged {
                    let _ = fs::remove_file(t);
                }
                return Err(Error::io(&tmp, e));
            }
            staged.push((tmp, dir.join(name)));
        }
    }
    for (tmp, dst) in &staged {
        fs::rename(tmp, dst).map_err(|e| Error::io(dst, e))?;
    }
    for (name, change) in &changes {
        if change.is_none() {
            let path = dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
    }
    Ok(())
}

/// Reads `path` if it is a regular file (not a symlink); `None` if it does not exist.
fn read_regular(path: &Path, limits: &Limits) -> Result<Option<Vec<u8>>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    if !meta.file_type().is_file() {
        return Err(Error::io(
            path,
            std::io::Error::other("not a regular file (symlinks and directories are refused)"),
        ));
    }
    if meta.len() > limits.max_file_len {
        return Err(Error::Limit {
            what: format!("{} ({} bytes)", path.display(), meta.len()),
            limit: limits.max_file_len,
        });
    }
    fs::read(path).map(Some).map_err(|e| Error::io(path, e))
}

/// A pending `DEL` (no `new`) or `XCHG`.
struct Edit<'s> {
    script_line: usize,
    prefix: &'s [u8],
    new: Option<&'s [u8]>,
}

struct Open<'s> {
    name: &'s str,
    edits: BTreeMap<u64, Edit<'s>>,
    adds: Vec<&'s [u8]>,
}

/// Changed files: `Some(contents)` or `None` (deleted).
type Changes = BTreeMap<String, Option<Vec<u8>>>;

/// Reads an untouched file: borrowed from an in-memory database, owned from disk.
type Loader<'l, 'f> = dyn FnMut(&str) -> Result<Option<Cow<'l, [u8]>>> + 'f;

/// Current contents of `name` (a copy): the overlay if touched, else the loader.
fn current(changes: &Changes, load: &mut Loader<'_, '_>, name: &str) -> Result<Option<Vec<u8>>> {
    match changes.get(name) {
        Some(state) => Ok(state.clone()),
        None => Ok(load(name)?.map(Cow::into_owned)),
    }
}

/// Takes the current contents of `name` out of the overlay (to modify and put back);
/// an untouched file is borrowed when the loader can lend it.
fn take<'l>(
    changes: &mut Changes,
    load: &mut Loader<'l, '_>,
    name: &str,
) -> Result<Option<Cow<'l, [u8]>>> {
    match changes.get_mut(name) {
        Some(state) => Ok(state.take().map(Cow::Owned)),
        None => load(name),
    }
}

fn run(script: &Script, limits: &Limits, load: &mut Loader<'_, '_>) -> Result<Changes> {
    let mut changes = Changes::new();
    let mut open: Option<Open<'_>> = None;
    let mut rewrites = BTreeMap::new();
    for line in script.lines() {
        let n = line.number;
        let fail = |file: &str, reason: String| Error::Apply {
            line: n,
            file: file.to_string(),
            reason,
        };
        match &line.command {
            Command::Comment(_) => {}
            Command::Open(name) => {
                if let Some(o) = &open {
                    return Err(fail(o.name, format!("not closed before opening `{name}`")));
                }
                open = Some(Open {
                    name,
                    edits: BTreeMap::new(),
                    adds: Vec::new(),
                });
            }
            Command::Add(text) => match &mut open {
                Some(o) => o.adds.push(text),
                None => return Err(fail("(no file open)", "ADD without an open file".into())),
            },
            Command::Del { line: ln, prefix } => match &mut open {
                Some(o) => {
                    o.edits.insert(
                        *ln,
                        Edit {
                            script_line: n,
                            prefix,
                            new: None,
                        },
                    );
                }
                None => return Err(fail("(no file open)", "DEL without an open file".into())),
            },
            Command::Xchg {
                line: ln,
                prefix,
                new,
            } => match &mut open {
                Some(o) => {
                    o.edits.insert(
                        *ln,
                        Edit {
                            script_line: n,
                            prefix,
                            new: Some(new),
                        },
                    );
                }
                None => return Err(fail("(no file open)", "XCHG without an open file".into())),
            },
            Command::Close => {
                let Some(o) = open.take() else {
                    return Err(fail("(no file open)", "CLOSE without an open file".into()));
                };
                if !o.edits.is_empty() {
                    count_rewrite(&mut rewrites, o.name, n, limits)?;
                }
                close(o, n, limits, &mut changes, load)?;
            }
            Command::Move {
                src,
                dst,
                start,
                start_prefix,
                end,
                end_prefix,
            } => {
                if let Some(o) = &open {
                    return Err(fail(o.name, "MOVE while a file is open".into()));
                }
                count_rewrite(&mut rewrites, src, n, limits)?;
                if dst != src {
                    count_rewrite(&mut rewrites, dst, n, limits)?;
                }
                move_lines(
                    n,
                    (src, dst),
                    (*start, start_prefix),
                    (*end, end_prefix),
                    limits,
                    &mut changes,
                    load,
                )?;
            }
            Command::Unlink(name) => {
                if let Some(o) = &open {
                    return Err(fail(o.name, "UNLINK while a file is open".into()));
                }
                if current(&changes, load, name)?.is_none() {
                    return Err(fail(name, "UNLINK of a file that does not exist".into()));
                }
                changes.insert(name.clone(), None);
            }
        }
    }
    // The reference silently drops a file left open at the end of the script.
    Ok(changes)
}

/// Counts one whole-file rewrite of `name` at script line `line` against
/// [`Limits::max_rewrites_per_file`].
fn count_rewrite<'s>(
    rewrites: &mut BTreeMap<&'s str, usize>,
    name: &'s str,
    line: usize,
    limits: &Limits,
) -> Result<()> {
    let count = rewrites.entry(name).or_insert(0);
    *count += 1;
    if *count > limits.max_rewrites_per_file {
        return Err(Error::Limit {
            what: format!("rewrites of `{name}` by one script (at script line {line})"),
            limit: limits.max_rewrites_per_file as u64,
        });
    }
    Ok(())
}

fn check_len(name: &str, bytes: &[u8], limits: &Limits, line: usize) -> Result<()> {
    if bytes.len() as u64 > limits.max_file_len {
        return Err(Error::Limit {
            what: format!("`{name}` after script line {line} ({} bytes)", bytes.len()),
            limit: limits.max_file_len,
        });
    }
    Ok(())
}

/// Splits off the next line (including its `\n`, if any).
fn next_line(data: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b'\n', data) {
        Some(i) => data.split_at(i + 1),
        None => (data, &data[data.len()..]),
    }
}

fn strip_nl(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

fn close(
    open: Open<'_>,
    close_line: usize,
    limits: &Limits,
    changes: &mut Changes,
    load: &mut Loader<'_, '_>,
) -> Result<()> {
    let name = open.name;
    if open.edits.is_empty() && open.adds.is_empty() {
        return Ok(());
    }
    let original = take(changes, load, name)?;
    let mut out = match (original, open.edits.is_empty()) {
        (None, false) => {
            return Err(Error::Apply {
                line: close_line,
                file: name.to_string(),
                reason: "DEL/XCHG on a file that does not exist".into(),
            });
        }
        (None, true) => Vec::new(),
        (Some(data), true) => data.into_owned(),
        (Some(data), false) => {
            // Put the original back in case of error is unnecessary: the whole run
            // is discarded on error.
            rewrite(name, &data, &open.edits, close_line)?
        }
    };
    let extra: usize = open.adds.iter().map(|a| a.len() + 1).sum();
    if (out.len() + extra) as u64 > limits.max_file_len {
        return Err(Error::Limit {
            what: format!("`{name}` after script line {close_line}"),
            limit: limits.max_file_len,
        });
    }
    out.reserve(extra);
    for add in &open.adds {
        out.extend_from_slice(add);
        out.push(b'\n');
    }
    changes.insert(name.to_string(), Some(out));
    Ok(())
}

/// Streams `data` once, applying `edits` keyed by original line number.
fn rewrite(
    name: &str,
    data: &[u8],
    edits: &BTreeMap<u64, Edit<'_>>,
    close_line: usize,
) -> Result<Vec<u8>> {
    if !data.is_empty() && !data.ends_with(b"\n") {
        return Err(Error::Apply {
            line: close_line,
            file: name.to_string(),
            reason: "the file's last line has no final newline".into(),
        });
    }
    let mut out = Vec::with_capacity(data.len());
    let mut pending = edits.iter().peekable();
    let mut rest = data;
    let mut number = 0u64;
    while let Some(&(&target, edit)) = pending.peek() {
        if rest.is_empty() {
            let kind = if edit.new.is_some() { "XCHG" } else { "DEL" };
            return Err(Error::Apply {
                line: edit.script_line,
                file: name.to_string(),
                reason: format!("{kind} of line {target}, but the file has only {number} lines"),
            });
        }
        let (line, after) = next_line(rest);
        rest = after;
        number += 1;
        if number != target {
            out.extend_from_slice(line);
            continue;
        }
        if !strip_nl(line).starts_with(edit.prefix) {
            let kind = if edit.new.is_some() { "XCHG" } else { "DEL" };
            return Err(Error::Apply {
                line: edit.script_line,
                file: name.to_string(),
                reason: format!(
                    "{kind} of line {target}: the line does not start with `{}`",
                    String::from_utf8_lossy(edit.prefix).escape_debug()
                ),
            });
        }
        if let Some(new) = edit.new {
            out.extend_from_slice(new);
            out.push(b'\n');
        }
        pending.next();
    }
    out.extend_from_slice(rest);
    Ok(out)
}

fn move_lines(
    line: usize,
    (src, dst): (&str, &str),
    (start, start_prefix): (u64, &[u8]),
    (end, end_prefix): (u64, &[u8]),
    limits: &Limits,
    changes: &mut Changes,
    load: &mut Loader<'_, '_>,
) -> Result<()> {
    let fail = |file: &str, reason: String| Error::Apply {
        line,
        file: file.to_string(),
        reason,
    };
    if start == 0 || end <= start {
        return Err(fail(
            src,
            format!(
                "MOVE range {start}..{end} is empty or reversed (the reference needs start < end)"
            ),
        ));
    }
    let Some(src_data) = current(changes, load, src)? else {
        return Err(fail(src, "MOVE from a file that does not exist".into()));
    };
    let Some(mut dst_data) = current(changes, load, dst)? else {
        return Err(fail(dst, "MOVE to a file that does not exist".into()));
    };
    if !src_data.is_empty() && !src_data.ends_with(b"\n") {
        return Err(fail(
            src,
            "the file's last line has no final newline".into(),
        ));
    }
    if src == dst {
        let moved = move_within(&src_data, (start, start_prefix), (end, end_prefix), limits)
            .map_err(|e| match e {
                MoveWithin::Prefix(n) => {
                    fail(src, format!("MOVE line {n} does not match its prefix"))
                }
                MoveWithin::TooShort(n) => fail(
                    src,
                    format!("MOVE end line {end}, but the file has only {n} lines"),
                ),
                MoveWithin::TooLong(len) => Error::Limit {
                    what: format!("`{dst}` after script line {line} ({len} bytes)"),
                    limit: limits.max_file_len,
                },
            })?;
        changes.insert(dst.to_string(), Some(moved));
        return Ok(());
    }
    let mut kept = Vec::with_capacity(src_data.len());
    let mut rest = &src_data[..];
    let mut number = 0u64;
    let mut moved_from = None;
    while !rest.is_empty() {
        let (l, after) = next_line(rest);
        number += 1;
        if number == start {
            if !strip_nl(l).starts_with(start_prefix) {
                return Err(fail(
                    src,
                    format!("MOVE start line {start} does not match its prefix"),
                ));
            }
            moved_from = Some(src_data.len() - rest.len());
        }
        if number == end {
            if !strip_nl(l).starts_with(end_prefix) {
                return Err(fail(
                    src,
                    format!("MOVE end line {end} does not match its prefix"),
                ));
            }
            let from = moved_from.unwrap_or(0);
            let to = src_data.len() - after.len();
            kept.extend_from_slice(after);
            dst_data.extend_from_slice(&src_data[from..to]);
            break;
        }
        if number < start {
            kept.extend_from_slice(l);
        }
        rest = after;
    }
    if number < end {
        return Err(fail(
            src,
            format!("MOVE end line {end}, but the file has only {number} lines"),
        ));
    }
    check_len(dst, &dst_data, limits, line)?;
    changes.insert(src.to_string(), Some(kept));
    changes.insert(dst.to_string(), Some(dst_data));
    Ok(())
}

/// Why a `MOVE` within one file failed.
enum MoveWithin {
    /// This line did not start with its prefix.
    Prefix(u64),
    /// The file ended (after this many lines) before the range started.
    TooShort(u64),
    /// The file grew past the size limit (bytes so far).
    TooLong(u64),
}

/// `MOVE f f start end`: the reference appends each line of the range to the file it
/// is still reading, and reads on through those appended copies (measured with sigtool
/// 1.4.6). So the range ends up at the end of the file, and a range that ends past the
/// original last line takes its last lines from the copies: on `1 2 3 4 5 6`,
/// `MOVE 3..7` gives `1 2 4 5 6 3`, the copy of line 3 being line 7. Every line after
/// the range, appended ones included, is kept in order.
fn move_within(
    data: &[u8],
    (start, start_prefix): (u64, &[u8]),
    (end, end_prefix): (u64, &[u8]),
    limits: &Limits,
) -> std::result::Result<Vec<u8>, MoveWithin> {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (l, after) = next_line(rest);
        lines.push(l);
        rest = after;
    }
    let mut size = data.len() as u64;
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while let Some(&l) = lines.get(i) {
        let number = i as u64 + 1;
        for (at, prefix) in [(start, start_prefix), (end, end_prefix)] {
            if number == at && !strip_nl(l).starts_with(prefix) {
                return Err(MoveWithin::Prefix(number));
            }
        }
        if (start..=end).contains(&number) {
            size += l.len() as u64;
            if size > limits.max_file_len {
                return Err(MoveWithin::TooLong(size));
            }
            lines.push(l);
        } else {
            out.extend_from_slice(l);
        }
        i += 1;
    }
    // The file ends only before the range starts: inside it, every line read adds one.
    if (lines.len() as u64) < start {
        return Err(MoveWithin::TooShort(lines.len() as u64));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;

    fn db(files: &[(&str, &[u8])]) -> Database {
        let mut d = Database::new();
        for (n, b) in files {
            d.insert(*n, b.to_vec());
        }
        d
    }

    fn apply(d: &mut Database, script: &[u8]) -> Result<()> {
        d.apply(&Script::parse(script)?)
    }

    #[test]
    fn reference_behaviours() {
        // each case measured with sigtool --run-cdiff (ClamAV 1.4.6)
        type Case<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);
        let cases: &[Case<'_>] = &[
            (
                b"a\r\nb\r\nc\r\n",
                b"OPEN x.db\nXCHG 2 b B\nCLOSE\n",
                Some(b"a\r\nB\nc\r\n"),
            ),
            (b"a\nb", b"OPEN x.db\nADD c\nCLOSE\n", Some(b"a\nbc\n")),
            (b"a\nb", b"OPEN x.db\nDEL 1 a\nCLOSE\n", None),
            (
                b"a\nb\nc\n",
                b"OPEN x.db\nDEL 2 b\nDEL 2 b\nCLOSE\n",
                Some(b"a\nc\n"),
            ),
            (
                b"a\nb\nc\n",
                b"OPEN x.db\nDEL 2 b\nXCHG 2 b B\nCLOSE\n",
                Some(b"a\nB\nc\n"),
            ),
            (
                b"a\nb\nc\n",
                b"OPEN x.db\nXCHG 3 c C\nXCHG 1 a A\nCLOSE\n",
                Some(b"A\nb\nC\n"),
            ),
            (b"a\nb\nc\n", b"OPEN x.db\nDEL 1 a\n", Some(b"a\nb\nc\n")),
            (b"a\nb\nc\n", b"OPEN x.db\nDEL 0 a\nCLOSE\n", None),
            (b"a\nb\nc\n", b"OPEN x.db\nDEL 4 a\nCLOSE\n", None),
            (b"a\nb\nc\n", b"OPEN x.db\nDEL 2 a\nCLOSE\n", None),
            (
                b"a\nb\nc\n",
                b"OPEN x.db\nXCHG 1 a \nCLOSE\n",
                Some(b"\nb\nc\n"),
            ),
            (
                b"a\nb\nc\n",
                b"OPEN x.db\nADD \nCLOSE\n",
                Some(b"a\nb\nc\n\n"),
            ),
            (
                b"a\r\nb\r\n",
                b"OPEN x.db\nXCHG 1 a\r A\nCLOSE\n",
                Some(b"A\nb\r\n"),
            ),
            (
                b"a\n\xff\xfe\nc\n",
                b"OPEN x.db\nXCHG 1 a A\nCLOSE\n",
                Some(b"A\n\xff\xfe\nc\n"),
            ),
            (b"", b"OPEN x.db\nADD q\nCLOSE\n", Some(b"q\n")),
        ];
        for (before, script, after) in cases {
            let mut d = db(&[("x.db", before)]);
            let orig = d.clone();
            let r = apply(&mut d, script);
            match after {
                Some(want) => {
                    r.unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(script)));
                    assert_eq!(
                        d.get("x.db"),
                        Some(*want),
                        "{}",
                        String::from_utf8_lossy(script)
                    );
                }
                None => {
                    assert!(r.is_err(), "{}", String::from_utf8_lossy(script));
                    assert_eq!(d, orig);
                }
            }
        }
    }

    #[test]
    fn open_creates_only_with_add() {
        let mut d = Database::new();
        apply(&mut d, b"OPEN x.db\nCLOSE\n").unwrap();
        assert!(d.files().is_empty());
        apply(&mut d, b"OPEN x.db\nADD n\nCLOSE\n").unwrap();
        assert_eq!(d.get("x.db"), Some(&b"n\n"[..]));
        assert!(apply(&mut Database::new(), b"OPEN x.db\nDEL 1 a\nCLOSE\n").is_err());
    }

    #[test]
    fn move_within_one_file_reads_on_through_the_appended_range() {
        // measured with sigtool --run-cdiff (ClamAV 1.4.6): the range is appended to the
        // file being read, so line 7 of a 6-line file is the copy of line 3
        let six = &b"sig1:0:*:01\nsig2:0:*:02\nsig3 x\nsig4\n\nsig6\n"[..];
        let mut d = db(&[("c.info", six)]);
        apply(&mut d, b"MOVE c.info c.info 3 sig3 7 sig\n").unwrap();
        assert_eq!(
            d.get("c.info"),
            Some(&b"sig1:0:*:01\nsig2:0:*:02\nsig4\n\nsig6\nsig3 x\n"[..])
        );
        let mut d = db(&[("c.info", six)]);
        apply(&mut d, b"MOVE c.info c.info 2 sig2 4 sig4\n").unwrap();
        assert_eq!(
            d.get("c.info"),
            Some(&b"sig1:0:*:01\n\nsig6\nsig2:0:*:02\nsig3 x\nsig4\n"[..])
        );
        for bad in [
            &b"MOVE c.info c.info 3 sig 7 x\n"[..],
            b"MOVE c.info c.info 7 sig 8 sig\n",
        ] {
            let mut d = db(&[("c.info", six)]);
            assert!(
                apply(&mut d, bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(d.get("c.info"), Some(six));
        }
    }

    #[test]
    fn move_and_unlink() {
        let mut d = db(&[("x.db", b"a\nb\nc\n"), ("y.db", b"y1\n")]);
        apply(&mut d, b"MOVE x.db y.db 1 a 2 b\n").unwrap();
        assert_eq!(d.get("x.db"), Some(&b"c\n"[..]));
        assert_eq!(d.get("y.db"), Some(&b"y1\na\nb\n"[..]));
        for bad in [
            &b"MOVE x.db y.db 1 c 1 c\n"[..],
            b"MOVE y.db z.db 1 y 2 a\n",
            b"MOVE y.db x.db 1 y 5 c\n",
            b"OPEN x.db\nMOVE y.db x.db 1 y 2 a\n",
            b"UNLINK z.db\n",
            b"OPEN x.db\nUNLINK x.db\n",
        ] {
            let before = d.clone();
            assert!(
                apply(&mut d, bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(d, before);
        }
        apply(&mut d, b"UNLINK x.db\nOPEN x.db\nADD n\nCLOSE\n").unwrap();
        assert_eq!(d.get("x.db"), Some(&b"n\n"[..]));
    }

    #[test]
    fn error_is_all_or_nothing_across_files() {
        let mut d = db(&[("a.db", b"1\n"), ("b.db", b"2\n")]);
        let before = d.clone();
        let err = apply(
            &mut d,
            b"OPEN a.db\nADD x\nCLOSE\nUNLINK b.db\nOPEN a.db\nDEL 9 z\nCLOSE\n",
        )
        .unwrap_err();
        assert!(matches!(err, Error::Apply { line: 6, .. }), "{err}");
        assert_eq!(d, before);
    }

    #[test]
    fn file_size_limit() {
        let mut d = db(&[("a.db", b"1\n")]);
        let limits = Limits::default().max_file_len(4);
        let s = Script::parse(b"OPEN a.db\nADD 12345\nCLOSE\n").unwrap();
        assert!(matches!(
            d.apply_with_limits(&s, &limits),
            Err(Error::Limit { .. })
        ));
    }
}
