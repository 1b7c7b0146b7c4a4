//! Atomic publishing of immutable generation directories.
//!
//! A new snapshot is assembled in `staging/build-g-<n>/` (unchanged files hard-linked
//! from the previous generation, new ones moved in from the download area), every file
//! and the directory are fsynced, the directory is renamed to `generations/g-<n>` (one
//! atomic step: a `generations/g-*` directory is always complete), and finally a
//! temporary symlink `DIR/.current.tmp -> generations/g-<n>` is renamed over
//! `DIR/current` and `DIR` is fsynced. A reader that resolves `current` sees either the
//! old or the new complete snapshot; a crash at any point leaves the old one in place
//! and at worst an unreferenced directory that the next sync removes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, io_err};
use crate::layout::{CURRENT, GENERATIONS, GenerationId, MirrorLayout, sync_dir};
use crate::model::{FileName, FileNameKind, MirrorFile};

/// Name of the temporary symlink renamed over `current`.
const CURRENT_TMP: &str = ".current.tmp";
/// Prefix of generation directories under construction in `staging/`.
const BUILD_PREFIX: &str = "build-";

/// A generation under construction. Nothing is visible to readers until
/// [`publish`](Self::publish).
#[derive(Debug)]
pub struct NewGeneration {
    layout: MirrorLayout,
    id: GenerationId,
    dir: PathBuf,
    files: BTreeSet<String>,
}

impl NewGeneration {
    /// Starts a generation numbered one above every generation present (published or
    /// not), in a fresh build directory under `staging/`.
    pub fn begin(layout: &MirrorLayout) -> Result<Self, Error> {
        layout.create()?;
        let newest = layout
            .list_generations()?
            .into_iter()
            .chain(layout.current_generation()?)
            .max()
            .unwrap_or(GenerationId(0));
        let id = newest.next();
        let dir = layout.staging().join(format!("{BUILD_PREFIX}{id}"));
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&dir, "remove stale build directory")(e)),
        }
        std::fs::create_dir(&dir).map_err(io_err(&dir, "create build directory"))?;
        Ok(Self {
            layout: layout.clone(),
            id,
            dir,
            files: BTreeSet::new(),
        })
    }

    /// The number this generation will get.
    pub fn id(&self) -> GenerationId {
        self.id
    }

    /// The build directory (inside `staging/`).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The names added so far.
    pub fn files(&self) -> &BTreeSet<String> {
        &self.files
    }

    fn target(&mut self, file: &MirrorFile) -> Result<PathBuf, Error> {
        let name = file.to_string();
        if !self.files.insert(name.clone()) {
            return Err(Error::Layout {
                path: self.dir.join(&name),
                reason: "added twice to one generation".into(),
            });
        }
        Ok(self.dir.join(name))
    }

    /// Adds an unchanged file from an earlier generation, as a hard link (immutable
    /// files can be shared), or a copy where hard links are not possible.
    pub fn link_from(&mut self, src_dir: &Path, file: &MirrorFile) -> Result<(), Error> {
        let src = src_dir.join(file.to_string());
        let dst = self.target(file)?;
        if std::fs::hard_link(&src, &dst).is_err() {
            copy_file(&src, &dst)?;
        }
        Ok(())
    }

    /// Moves a verified file in (e.g. from the download area, same file system), or
    /// copies it when a rename is not possible.
    pub fn move_in(&mut self, src: &Path, file: &MirrorFile) -> Result<(), Error> {
        let dst = self.target(file)?;
        if std::fs::rename(src, &dst).is_err() {
            copy_file(src, &dst)?;
        }
        Ok(())
    }

    /// Writes a new file with the given content.
    pub fn write(&mut self, file: &MirrorFile, bytes: &[u8]) -> Result<(), Error> {
        let dst = self.target(file)?;
        std::fs::write(&dst, bytes).map_err(io_err(&dst, "write"))
    }

    /// Moves verified content of another kind than the signature databases in (see
    /// the engine's `ExtraContent`): the file or directory tree at `src` (in
    /// `staging/`, same file system) becomes `name`, or is copied when a rename is not
    /// possible. `name` is one path component, not a dot file (the generation's
    /// records) and not a name of the database grammar ([`FileName`]); a tree holds
    /// only files and directories (no symbolic links).
    pub fn move_in_extra(&mut self, src: &Path, name: &str) -> Result<(), Error> {
        let dst = self.target_extra(name)?;
        check_tree(src)?;
        if std::fs::rename(src, &dst).is_err() {
            link_tree(src, &dst)?;
        }
        Ok(())
    }

    /// Adds content of another kind unchanged from an earlier generation: the file or
    /// tree `src_dir/name`, hard-linked file by file (copied where hard links are not
    /// possible). The same names as [`move_in_extra`](Self::move_in_extra).
    pub fn link_extra_from(&mut self, src_dir: &Path, name: &str) -> Result<(), Error> {
        let dst = self.target_extra(name)?;
        let src = src_dir.join(name);
        check_tree(&src)?;
        link_tree(&src, &dst)
    }

    fn target_extra(&mut self, name: &str) -> Result<PathBuf, Error> {
        let bad = name.is_empty()
            || name.starts_with('.')
            || name.contains(['/', '\0'])
            || FileName::parse(name).is_some();
        if bad {
            return Err(Error::Layout {
                path: self.dir.join(name),
                reason: "not a name for other content: one path component, not a dot file, not a database file name".into(),
            });
        }
        if !self.files.insert(name.to_owned()) {
            return Err(Error::Layout {
                path: self.dir.join(name),
                reason: "added twice to one generation".into(),
            });
        }
        Ok(self.dir.join(name))
    }

    /// Writes the generation's trust record ([`crate::trust::TRUST_FILE`]), made
    /// durable and switched with the rest of the generation.
    pub fn write_trust(&mut self, record: &crate::trust::TrustRecord) -> Result<(), Error> {
        let bytes = record.to_bytes().map_err(io_err(
            &self.dir.join(crate::trust::TRUST_FILE),
            "serialise",
        ))?;
        self.write_record(crate::trust::TRUST_FILE, &bytes)
    }

    /// Writes the generation's trace record ([`crate::trace::TRACE_FILE`]).
    pub fn write_trace(&mut self, record: &crate::trace::TraceRecord) -> Result<(), Error> {
        let bytes = record.to_bytes().map_err(io_err(
            &self.dir.join(crate::trace::TRACE_FILE),
            "serialise",
        ))?;
        self.write_record(crate::trace::TRACE_FILE, &bytes)
    }

    /// Writes one of the generation's dot-file records (never served).
    fn write_record(&mut self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let dst = self.dir.join(name);
        if !self.files.insert(name.to_owned()) {
            return Err(Error::Layout {
                path: dst,
                reason: "added twice to one generation".into(),
            });
        }
        std::fs::write(&dst, bytes).map_err(io_err(&dst, "write"))
    }

    /// Makes the generation durable and switches `current` to it atomically.
    ///
    /// Every `<db>.cvd` (and `<db>.cld`) gets its header's build time as modification
    /// time first, so `Last-Modified` (ours, and that of any plain web server in front
    /// of the directory) is the database's build time, as on the official CDN: a
    /// client whose local copy is as new sends `If-Modified-Since` ≥ it and gets `304`,
    /// never an older body (`ARCHITECTURE.md`, "no downgrade").
    pub fn publish(self) -> Result<GenerationId, Error> {
        for name in &self.files {
            let p = self.dir.join(name);
            if matches!(
                FileName::parse(name).map(|n| n.kind()),
                Some(FileNameKind::Cvd | FileNameKind::Cld)
            ) {
                set_build_time(&p)?;
            }
            sync_tree(&p)?;
        }
        sync_dir(&self.dir)?;
        let final_dir = self.layout.generation(self.id);
        std::fs::rename(&self.dir, &final_dir)
            .map_err(io_err(&final_dir, "rename build directory to"))?;
        sync_dir(&self.layout.generations())?;
        switch_current(&self.layout, self.id)?;
        Ok(self.id)
    }
}

/// The build time in the header of the `.cvd`/`.cld` at `path`, when it has a valid
/// header.
pub fn header_build_time(path: &Path) -> Result<Option<std::time::SystemTime>, Error> {
    use std::io::Read as _;
    let mut head = [0u8; cvd_format::header::HEADER_SIZE];
    let mut f = std::fs::File::open(path).map_err(io_err(path, "open"))?;
    if f.read_exact(&mut head).is_err() {
        return Ok(None);
    }
    Ok(cvd_format::Header::parse(&head).ok().and_then(|h| {
        let secs = u64::try_from(h.build_time.unix_timestamp()).ok()?;
        std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))
    }))
}

/// Sets the modification (and access) time of the `.cvd`/`.cld` at `path` to its
/// header's build time; a file without a valid header is left as it is (the sync
/// engine verified it; a plain copy is not ours to judge here).
pub fn set_build_time(path: &Path) -> Result<(), Error> {
    let Some(t) = header_build_time(path)? else {
        return Ok(());
    };
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .or_else(|_| std::fs::File::open(path))
        .map_err(io_err(path, "open"))?;
    f.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
        .map_err(io_err(path, "set the build time as modification time of"))
}

/// Points `DIR/current` at `generations/<id>` atomically (temp symlink + rename), then
/// fsyncs `DIR`.
pub fn switch_current(layout: &MirrorLayout, id: GenerationId) -> Result<(), Error> {
    let root = layout.root();
    let tmp = root.join(CURRENT_TMP);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&tmp, "remove stale temp symlink")(e)),
    }
    let target = Path::new(GENERATIONS).join(id.dir_name());
    std::os::unix::fs::symlink(&target, &tmp).map_err(io_err(&tmp, "create symlink"))?;
    let cur = root.join(CURRENT);
    std::fs::rename(&tmp, &cur).map_err(io_err(&cur, "rename symlink over"))?;
    sync_dir(root)
}

/// Fsyncs the file at `path`, or every file and directory of the tree at `path`.
fn sync_tree(path: &Path) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(path).map_err(io_err(path, "stat"))?;
    if meta.is_dir() {
        for (entry, _) in entries(path)? {
            sync_tree(&entry)?;
        }
        return sync_dir(path);
    }
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_err(path, "fsync"))
}

/// Refuses a tree that holds anything but files and directories.
fn check_tree(path: &Path) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(path).map_err(io_err(path, "stat"))?;
    if meta.is_dir() {
        for (entry, _) in entries(path)? {
            check_tree(&entry)?;
        }
    } else if !meta.is_file() {
        return Err(Error::Layout {
            path: path.to_path_buf(),
            reason: "neither a file nor a directory".into(),
        });
    }
    Ok(())
}

/// Recreates the tree at `src` as `dst`: directories created, files hard-linked or
/// copied.
fn link_tree(src: &Path, dst: &Path) -> Result<(), Error> {
    if !std::fs::symlink_metadata(src)
        .map_err(io_err(src, "stat"))?
        .is_dir()
    {
        if std::fs::hard_link(src, dst).is_err() {
            copy_file(src, dst)?;
        }
        return Ok(());
    }
    std::fs::create_dir(dst).map_err(io_err(dst, "create directory"))?;
    for (entry, _) in entries(src)? {
        if let Some(name) = entry.file_name() {
            link_tree(&entry, &dst.join(name))?;
        }
    }
    Ok(())
}

fn copy_file(src: &Path, dst: &Path) -> Result<(), Error> {
    std::fs::copy(src, dst).map_err(io_err(src, "copy"))?;
    Ok(())
}

/// Name of the download area inside `staging/`.
pub const DOWNLOADS: &str = "downloads";

/// Removes what an earlier (possibly killed) sync left in `staging/`: generations
/// under construction, trash, and completed but unpublished downloads. Partial
/// downloads (`*.part` with their `*.part.meta`) under `staging/downloads/` are kept so
/// that the next attempt can resume them (their content is verified after completion
/// like any other download). Call only while holding the sync lock.
pub fn clean_staging(layout: &MirrorLayout) -> Result<(), Error> {
    let dir = layout.staging();
    for (path, is_dir) in entries(&dir)? {
        let is_downloads = path.file_name().is_some_and(|n| n == DOWNLOADS);
        if is_dir && is_downloads {
            clean_downloads(&path)?;
        } else {
            remove(&path, is_dir)?;
        }
    }
    Ok(())
}

fn clean_downloads(dir: &Path) -> Result<(), Error> {
    for (path, is_dir) in entries(dir)? {
        let partial = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".part") || n.ends_with(".part.meta"));
        if is_dir {
            clean_downloads(&path)?;
        } else if !partial {
            remove(&path, false)?;
        }
    }
    Ok(())
}

fn entries(dir: &Path) -> Result<Vec<(PathBuf, bool)>, Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, "list directory")(e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io_err(dir, "list directory"))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push((entry.path(), is_dir));
    }
    Ok(out)
}

fn remove(path: &Path, is_dir: bool) -> Result<(), Error> {
    let r = if is_dir {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(path, "remove")(e)),
        _ => Ok(()),
    }
}
