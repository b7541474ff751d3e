//! Small file-system helpers with the durability the storage layer relies on.

use crate::disk::faults;
use std::fs::{self, File};
use std::io;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename
/// over the destination, then fsync of the directory so the rename itself is durable. On an
/// error the temporary file is removed and the destination is as it was (unless only the
/// directory fsync failed: then the new file is in place but its rename may not survive a
/// crash).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    // Per process, so two processes writing the same file never share a temporary.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let written = write_synced(&tmp, bytes)
        .and_then(|()| faults::check(faults::RENAME))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        // A full disk is the likely cause: do not leave the half-written copy taking space.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Puts the durable file `src` at `path` as well, as a hard link: no byte is copied, for a
/// file that is complete and never written again (a log segment whose records history keeps
/// as they are). What was at `path` is replaced; the directory is fsynced. A crash in between
/// leaves `path` absent or complete, never partial.
pub fn link_durable(src: &Path, path: &Path) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    faults::check(faults::RENAME)?;
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::hard_link(src, path)?;
    sync_dir(dir)
}

/// Deletes the temporary files [`write_atomic`] left in `dir` when its process died before
/// renaming them (`.<name>.<pid>.tmp`). Only for a directory no other process is writing.
pub fn remove_temporaries(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") && entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Creates `path` with `bytes` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create(path)?;
    faults::write_all(faults::FILE_WRITE, &mut f, bytes)?;
    faults::check(faults::FILE_FSYNC)?;
    f.sync_all()
}

/// Makes a directory's entries (created, renamed, removed files) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    faults::check(faults::DIR_FSYNC)?;
    File::open(dir)?.sync_all()
}
