//! The JSON documents of a mirror directory (`status.json`, `targets.json`, and
//! `push.json` of the `push` crate) and the records inside a generation (`.trust.json`,
//! `.trace.json`): one bounded reader and one atomic writer for all of them.

use std::io::Read;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, RecordError, io_err};

/// Largest document [`read`] accepts.
pub const MAX_DOCUMENT_LEN: u64 = 64 << 20;

/// Reads the file at `path`, at most `max` bytes (`Ok(None)` when it does not exist;
/// `Err(InvalidData)` when it is larger).
fn read_bounded(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(Some(bytes))
}

/// Reads a JSON document: `Ok(None)` when the file does not exist; `InvalidData` when
/// it is larger than [`MAX_DOCUMENT_LEN`] or not a `T`.
pub fn read<T: DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match read_bounded(path, MAX_DOCUMENT_LEN)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        None => Ok(None),
    }
}

/// Writes a JSON document atomically (temp file, fsync, rename, fsync of the directory).
pub fn store<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    atomic_file::write(path, &pretty(value)?)
}

/// A value as pretty JSON with a final newline (what [`store`] writes). A value that
/// cannot be serialised (a map with non-string keys, a failing `Serialize`) is an
/// error, never an empty document.
pub fn pretty<T: Serialize>(value: &T) -> std::io::Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(value)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    out.push(b'\n');
    Ok(out)
}

/// Reads a generation's record (`Ok(None)` when there is none): at most `max` bytes of
/// JSON, else [`Error::Corrupt`] naming the file.
pub(crate) fn read_record<T: DeserializeOwned>(path: &Path, max: u64) -> Result<Option<T>, Error> {
    let corrupt = |reason: RecordError| Error::Corrupt {
        path: path.to_owned(),
        source: reason,
    };
    let bytes = match read_bounded(path, max) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(corrupt(RecordError::TooLarge(max)));
        }
        Err(e) => return Err(io_err(path, "read")(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| corrupt(RecordError::Json(e)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_cannot_be_serialised_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"{\"good\": 1}\n").unwrap();
        // JSON object keys must be strings: a tuple key cannot be written.
        let bad: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let err = pretty(&bad).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
        assert!(store(&path, &bad).is_err());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"{\"good\": 1}\n",
            "old file kept"
        );
    }

    #[test]
    fn documents_round_trip_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("doc.json");
        assert_eq!(read::<Vec<u32>>(&p).unwrap(), None);
        store(&p, &vec![1u32, 2]).unwrap();
        assert_eq!(read::<Vec<u32>>(&p).unwrap(), Some(vec![1, 2]));
        std::fs::write(&p, b"[1,").unwrap();
        assert_eq!(
            read::<Vec<u32>>(&p).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
        std::fs::write(&p, vec![b' '; 100]).unwrap();
        let e = read_record::<Vec<u32>>(&p, 10).unwrap_err().to_string();
        assert!(e.contains("doc.json"), "{e}");
        assert_eq!(
            read_record::<Vec<u32>>(&dir.path().join("none"), 10).unwrap(),
            None
        );
    }
}
