//! The sync lock: an advisory lock on `DIR/sync.lock`, held for a whole sync.
//!
//! The lock is `flock(2)`-style (`std::fs::File::try_lock`): the kernel releases it when
//! the holder exits for any reason, including `SIGKILL`, so a lock left behind by a
//! killed process is never "stale": the file may still exist and still hold the dead
//! PID, but the next sync acquires it at once. The PID inside is for diagnostics only.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, io_err};

/// A held sync lock; released on drop (or when the process dies).
#[derive(Debug)]
pub struct SyncLock {
    file: File,
    path: PathBuf,
}

impl SyncLock {
    /// Tries to take the lock on `path` without waiting.
    ///
    /// Returns [`Error::LockHeld`] (with the holder's PID if readable) when another
    /// process or another open handle in this process holds it.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use mirror_core::lock::SyncLock;
    /// let path = dir.path().join("sync.lock");
    /// let held = SyncLock::acquire(&path).unwrap();
    /// assert!(SyncLock::acquire(&path).is_err());
    /// drop(held);
    /// assert!(SyncLock::acquire(&path).is_ok());
    /// ```
    pub fn acquire(path: &Path) -> Result<Self, Error> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err(path, "open lock file"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::LockHeld {
                    path: path.to_path_buf(),
                    pid: read_pid(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(path, "lock")(e)),
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(io_err(path, "write PID to lock file"))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the PID recorded in a lock file (whoever holds or last held it).
    pub fn holder_pid(path: &Path) -> Option<u32> {
        File::open(path).ok().as_mut().and_then(read_pid)
    }
}

impl Drop for SyncLock {
    fn drop(&mut self) {
        // Best effort: closing the file releases the lock anyway.
        let _ = self.file.unlock();
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut buf = [0u8; 32];
    file.seek(SeekFrom::Start(0)).ok()?;
    let n = file.read(&mut buf).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}
