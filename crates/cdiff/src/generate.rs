//! Generating a script (and a signed `.cdiff`) from two versions of a database.
//!
//! The script language cannot insert a line in the middle of a file: `ADD` appends at
//! `CLOSE`, and `DEL`/`XCHG` address original lines. So for each changed file the
//! generator aligns old and new lines (common prefix/suffix, then lines unique to both
//! sides ordered by a longest increasing subsequence, as patience diff does — O(n log n)),
//! turns each changed region into `XCHG`s and `DEL`s, and appends the new tail with
//! `ADD`. Where a region inserts more lines than it removes before the end of the file,
//! the rest of the file is rewritten positionally (`XCHG` of every differing line). A
//! file that disappears is `UNLINK`ed; a new file is created with `OPEN` + `ADD`s.
//!
//! Not every pair of databases can be expressed: a new or changed file must end with
//! `\n` (or be empty when it already exists), and names must be valid cdiff names. Such
//! input gives [`Error::Unrepresentable`].

use std::collections::HashMap;

use cvd_format::SigningKey;

use crate::apply::Database;
use crate::error::{Error, Result};
use crate::patch;
use crate::script::{Command, Script, is_valid_name};

/// Longest prefix written in `DEL`/`XCHG` checks (the official patches use about 15).
pub const PREFIX_LEN: usize = 16;

/// A script that turns `old` into `new` (files in name order).
///
/// ```
/// let mut old = cdiff::Database::new();
/// old.insert("a.db", b"1\n2\n3\n".to_vec());
/// let mut new = cdiff::Database::new();
/// new.insert("a.db", b"1\n3\n4\n".to_vec());
/// let script = cdiff::generate::script(&old, &new)?;
/// old.apply(&script)?;
/// assert_eq!(old, new);
/// # Ok::<(), cdiff::Error>(())
/// ```
pub fn script(old: &Database, new: &Database) -> Result<Script> {
    let mut commands = Vec::new();
    let mut names: Vec<&String> = old.files().keys().chain(new.files().keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let unrepresentable = |reason: &str| Error::Unrepresentable {
            file: name.clone(),
            reason: reason.into(),
        };
        match (old.get(name), new.get(name)) {
            (Some(a), Some(b)) if a == b => {}
            (None, None) => {}
            (Some(_), None) => {
                check_name(name)?;
                commands.push(Command::Unlink(name.clone()));
            }
            (None, Some(b)) => {
                check_name(name)?;
                if b.is_empty() {
                    return Err(unrepresentable("an empty new file cannot be created"));
                }
                create(name, b, &mut commands)?;
            }
            (Some(a), Some(b)) => {
                check_name(name)?;
                if !b.is_empty() && !b.ends_with(b"\n") {
                    return Err(unrepresentable("the new last line has no final newline"));
                }
                if !a.is_empty() && !a.ends_with(b"\n") {
                    // The reference refuses to edit such a file: recreate it.
                    if b.is_empty() {
                        return Err(unrepresentable(
                            "the old file lacks a final newline and the new one is empty",
                        ));
                    }
                    commands.push(Command::Unlink(name.clone()));
                    create(name, b, &mut commands)?;
                } else {
                    commands.push(Command::Open(name.clone()));
                    edit(a, b, &mut commands);
                    commands.push(Command::Close);
                }
            }
        }
    }
    Ok(Script::from_commands(commands))
}

/// A signed `.cdiff` for `version` turning `old` into `new`.
pub fn cdiff(old: &Database, new: &Database, version: u32, key: &SigningKey) -> Result<Vec<u8>> {
    let bytes = script(old, new)?.to_bytes()?;
    patch::build(version, &bytes, key)
}

fn check_name(name: &str) -> Result<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::Unrepresentable {
            file: name.to_string(),
            reason: "not a valid cdiff file name (ASCII letters, digits and `.` only)".into(),
        })
    }
}

fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split_inclusive(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\n").unwrap_or(l))
        .collect()
}

fn create(name: &str, data: &[u8], commands: &mut Vec<Command>) -> Result<()> {
    if !data.ends_with(b"\n") {
        return Err(Error::Unrepresentable {
            file: name.to_string(),
            reason: "the new last line has no final newline".into(),
        });
    }
    commands.push(Command::Open(name.to_string()));
    for l in lines(data) {
        commands.push(Command::Add(l.to_vec()));
    }
    commands.push(Command::Close);
    Ok(())
}

fn prefix(line: &[u8]) -> Vec<u8> {
    let end = line
        .iter()
        .position(|&b| b == b' ')
        .unwrap_or(line.len())
        .min(PREFIX_LEN);
    line[..end].to_vec()
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Keep(usize),
    Del(usize),
    Ins(usize),
}

/// Emits XCHG/DEL/ADD (between OPEN and CLOSE) turning `a` into `b`.
fn edit(a: &[u8], b: &[u8], commands: &mut Vec<Command>) {
    let la = lines(a);
    let lb = lines(b);
    let ops = align(&la, &lb);
    let xchg = |ai: usize, bj: usize| Command::Xchg {
        line: ai as u64 + 1,
        prefix: prefix(la[ai]),
        new: lb[bj].to_vec(),
    };
    let del = |ai: usize| Command::Del {
        line: ai as u64 + 1,
        prefix: prefix(la[ai]),
    };
    let mut edits = Vec::new();
    let mut adds = Vec::new();
    let mut dels: Vec<usize> = Vec::new();
    let mut ins: Vec<usize> = Vec::new();
    let mut b_pos = 0usize; // next B line not yet produced
    let mut rewrite_from: Option<(usize, usize)> = None;
    for op in &ops {
        match *op {
            Op::Del(i) => dels.push(i),
            Op::Ins(j) => ins.push(j),
            Op::Keep(i) => {
                if ins.len() > dels.len() {
                    let a_start = dels.first().copied().unwrap_or(i);
                    rewrite_from = Some((a_start, b_pos));
                    break;
                }
                for (k, &ai) in dels.iter().enumerate() {
                    match ins.get(k) {
                        Some(&bj) => edits.push(xchg(ai, bj)),
                        None => edits.push(del(ai)),
                    }
                }
                b_pos += ins.len() + 1;
                dels.clear();
                ins.clear();
            }
        }
    }
    match rewrite_from {
        Some((a_start, b_start)) => {
            let mut k = 0;
            loop {
                match (la.get(a_start + k), lb.get(b_start + k)) {
                    (Some(x), Some(y)) => {
                        if x != y {
                            edits.push(xchg(a_start + k, b_start + k));
                        }
                    }
                    (Some(_), None) => edits.push(del(a_start + k)),
                    (None, Some(y)) => adds.push(Command::Add(y.to_vec())),
                    (None, None) => break,
                }
                k += 1;
            }
        }
        None => {
            for (k, &ai) in dels.iter().enumerate() {
                match ins.get(k) {
                    Some(&bj) => edits.push(xchg(ai, bj)),
                    None => edits.push(del(ai)),
                }
            }
            for &bj in ins.iter().skip(dels.len()) {
                adds.push(Command::Add(lb[bj].to_vec()));
            }
        }
    }
    commands.extend(edits);
    commands.extend(adds);
}

/// Aligns two line lists: ops in order, covering every line of both.
fn align(a: &[&[u8]], b: &[&[u8]]) -> Vec<Op> {
    let mut ops = Vec::with_capacity(a.len().max(b.len()));
    let mut pre = 0;
    while pre < a.len() && pre < b.len() && a[pre] == b[pre] {
        ops.push(Op::Keep(pre));
        pre += 1;
    }
    let mut suf = 0;
    while suf < a.len() - pre && suf < b.len() - pre && a[a.len() - 1 - suf] == b[b.len() - 1 - suf]
    {
        suf += 1;
    }
    let (a_end, b_end) = (a.len() - suf, b.len() - suf);
    // Lines unique in both middles.
    let mut counts: HashMap<&[u8], (u32, u32, usize, usize)> = HashMap::new();
    for (i, l) in a.iter().enumerate().take(a_end).skip(pre) {
        let e = counts.entry(l).or_insert((0, 0, 0, 0));
        e.0 += 1;
        e.2 = i;
    }
    for (j, l) in b.iter().enumerate().take(b_end).skip(pre) {
        if let Some(e) = counts.get_mut(l) {
            e.1 += 1;
            e.3 = j;
        }
    }
    let mut pairs: Vec<(usize, usize)> = counts
        .values()
        .filter(|c| c.0 == 1 && c.1 == 1)
        .map(|c| (c.2, c.3))
        .collect();
    pairs.sort_unstable();
    let anchors = lis(&pairs);
    let (mut i, mut j) = (pre, pre);
    for (ai, bj) in anchors.into_iter().chain(std::iter::once((a_end, b_end))) {
        // Extend equal lines at the start of the gap.
        while i < ai && j < bj && a[i] == b[j] {
            ops.push(Op::Keep(i));
            i += 1;
            j += 1;
        }
        // Equal lines at the end of the gap.
        let mut tail = 0;
        while ai - tail > i && bj - tail > j && a[ai - tail - 1] == b[bj - tail - 1] {
            tail += 1;
        }
        ops.extend((i..ai - tail).map(Op::Del));
        ops.extend((j..bj - tail).map(Op::Ins));
        ops.extend((ai - tail..ai).map(Op::Keep));
        if ai < a_end {
            ops.push(Op::Keep(ai));
        }
        i = ai + 1;
        j = bj + 1;
    }
    ops.extend((a_end..a.len()).map(Op::Keep));
    ops
}

/// Longest strictly increasing subsequence of the second components (pairs sorted by
/// the first), in O(n log n).
fn lis(pairs: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut tails: Vec<usize> = Vec::new(); // index into pairs
    let mut prev: Vec<Option<usize>> = vec![None; pairs.len()];
    for (k, &(_, y)) in pairs.iter().enumerate() {
        let pos = tails.partition_point(|&t| pairs[t].1 < y);
        if pos > 0 {
            prev[k] = Some(tails[pos - 1]);
        }
        if pos == tails.len() {
            tails.push(k);
        } else {
            tails[pos] = k;
        }
    }
    let mut out = Vec::with_capacity(tails.len());
    let mut cur = tails.last().copied();
    while let Some(k) = cur {
        out.push(pairs[k]);
        cur = prev[k];
    }
    out.reverse();
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;

    fn roundtrip(a: &[u8], b: &[u8]) -> Script {
        let mut old = Database::new();
        old.insert("f.db", a.to_vec());
        let mut new = Database::new();
        new.insert("f.db", b.to_vec());
        let s = script(&old, &new).unwrap();
        let reparsed = Script::parse(&s.to_bytes().unwrap()).unwrap();
        old.apply(&reparsed).unwrap();
        assert_eq!(
            old,
            new,
            "{}",
            String::from_utf8_lossy(&s.to_bytes().unwrap())
        );
        s
    }

    #[test]
    fn typical_update_is_small() {
        let s = roundtrip(b"h 1\nx\ny\nz\nDSIG:aaa\n", b"h 2\ny\nz\nw\nDSIG:bbb\n");
        // XCHG 1, DEL 2, XCHG 5 (w), ADD DSIG? — at most a handful of commands
        assert!(s.lines().len() <= 7, "{s:?}");
    }

    #[test]
    fn middle_insertions_and_edge_cases() {
        roundtrip(b"a\nb\nc\n", b"a\nx\ny\nb\nc\n");
        roundtrip(b"a\nb\nc\n", b"");
        roundtrip(b"", b"a\n");
        roundtrip(b"a\nb\n", b"b\na\n");
        roundtrip(b" lead\n\n\n", b"\n lead\n");
        roundtrip(b"a\r\nb\r\n", b"a\r\nc\r\n");
    }

    #[test]
    fn unrepresentable_inputs() {
        let mut old = Database::new();
        let mut new = Database::new();
        new.insert("e.db", vec![]);
        assert!(matches!(
            script(&old, &new),
            Err(Error::Unrepresentable { .. })
        ));
        new = Database::new();
        new.insert("bad_name", b"x\n".to_vec());
        assert!(matches!(
            script(&old, &new),
            Err(Error::Unrepresentable { .. })
        ));
        old.insert("n.db", b"x\n".to_vec());
        new = Database::new();
        new.insert("n.db", b"x\ny".to_vec());
        assert!(matches!(
            script(&old, &new),
            Err(Error::Unrepresentable { .. })
        ));
    }
}
