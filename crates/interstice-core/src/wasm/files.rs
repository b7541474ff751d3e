//! The File authority: a module's own directory inside the node's data directory
//! (`<data>/files/<module>/`), reached through the `file_op` host call by the module holding
//! the authority, and by no one else.
//!
//! Paths are relative and made only of plain names: `..`, absolute paths, `.` and empty
//! components are refused, and so is any path that goes through a symbolic link, so nothing
//! outside the directory can be reached. Writes and deletes wait in the transaction; when it
//! commits they wait on (in [`HostState::committed_files`]) until the fsync that makes the
//! commit durable, and only then reach the disk: a failed reducer, or a commit the node could
//! not make durable, leaves the files as they were. Reads see them all along.

use super::host_calls::{guest_bytes, memory_and_state, trap};
use super::state::HostState;
use interstice_abi::protocol::FileOp;
use interstice_abi::{Authority, HostError, Reader};
use std::path::{Component, Path, PathBuf};
use wasmtime::Caller;

/// Longest path accepted.
pub const MAX_PATH_LEN: usize = 1024;
/// Largest file read or written.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;
/// Most writes and deletes one transaction may queue.
pub const MAX_PENDING: usize = 1024;

/// A write (`Some`) or delete (`None`) waiting for the commit.
pub type PendingFile = (String, Option<Vec<u8>>);

fn refused(why: impl Into<String>) -> HostError {
    HostError::NotPermitted(why.into())
}

/// The file `path` names inside `root`, if it is a plain relative path that stays there.
pub fn resolve(root: &Path, path: &str, allow_root: bool) -> Result<PathBuf, HostError> {
    if path.len() > MAX_PATH_LEN || path.contains('\0') {
        return Err(refused(format!(
            "path longer than {MAX_PATH_LEN} bytes or with NUL"
        )));
    }
    if path.is_empty() {
        return if allow_root {
            Ok(root.to_path_buf())
        } else {
            Err(refused("empty path"))
        };
    }
    let mut resolved = root.to_path_buf();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(name) => resolved.push(name),
            _ => {
                return Err(refused(format!(
                    "`{path}`: only plain relative paths inside the module's directory"
                )));
            }
        }
        // Nothing on the way may be a link: it could lead anywhere.
        if std::fs::symlink_metadata(&resolved).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(refused(format!("`{path}` goes through a symbolic link")));
        }
    }
    Ok(resolved)
}

fn io(path: &str, e: std::io::Error) -> HostError {
    match e.kind() {
        std::io::ErrorKind::NotFound => HostError::NotFound {
            table: "files".into(),
            key: path.to_string(),
        },
        _ => HostError::InvalidPayload(format!("{path}: {e}")),
    }
}

fn read(state: &HostState, root: &Path, path: &str) -> Result<Vec<u8>, HostError> {
    let waiting = state.committed_files.iter().chain(&state.effects.files);
    if let Some((_, pending)) = waiting.rev().find(|(p, _)| p == path) {
        return pending.clone().ok_or_else(|| HostError::NotFound {
            table: "files".into(),
            key: path.to_string(),
        });
    }
    let file = resolve(root, path, false)?;
    let size = std::fs::metadata(&file).map_err(|e| io(path, e))?.len();
    if size > MAX_FILE_BYTES as u64 {
        return Err(HostError::InvalidPayload(format!(
            "{path} has {size} bytes, more than {MAX_FILE_BYTES}"
        )));
    }
    std::fs::read(&file).map_err(|e| io(path, e))
}

fn list(state: &HostState, root: &Path, dir: &str) -> Result<Vec<String>, HostError> {
    let directory = resolve(root, dir, true)?;
    let mut names = std::collections::BTreeSet::new();
    match std::fs::read_dir(&directory) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                names.insert(if is_dir { format!("{name}/") } else { name });
            }
        }
        // A directory nobody wrote to yet is empty.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(dir, e)),
    }
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{}/", dir.trim_end_matches('/'))
    };
    for (path, pending) in state.committed_files.iter().chain(&state.effects.files) {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        let entry = match rest.split_once('/') {
            Some((sub, _)) => format!("{sub}/"),
            None => rest.to_string(),
        };
        match pending {
            Some(_) => {
                names.insert(entry);
            }
            None if !rest.contains('/') => {
                names.remove(&entry);
            }
            None => {}
        }
    }
    Ok(names.into_iter().collect())
}

fn run(state: &mut HostState, op: u32, payload: &[u8]) -> Result<Vec<u8>, HostError> {
    let holds = state
        .schema
        .as_ref()
        .is_some_and(|s| s.authorities.contains(&Authority::File));
    if !holds {
        return Err(refused(
            "files are only for the module holding the File authority",
        ));
    }
    let root = state
        .files_root
        .clone()
        .ok_or_else(|| refused("this node keeps no data directory, so it has no files"))?;
    let op =
        FileOp::from_u32(op).ok_or_else(|| HostError::InvalidPayload(format!("file op {op}")))?;
    let mut r = Reader::new(payload);
    let path = r
        .string()
        .map_err(|e| HostError::InvalidPayload(format!("file path: {e}")))?;
    let writes = matches!(op, FileOp::Write | FileOp::Delete | FileOp::Watch);
    if writes && state.tx.read_only {
        return Err(HostError::ReadOnly);
    }
    if writes && state.caller.is_some() {
        return Err(refused(
            "files are written by the module a transaction started in, not by modules it calls",
        ));
    }
    if writes && state.effects.files.len() >= MAX_PENDING {
        return Err(refused(format!(
            "a transaction may write or delete at most {MAX_PENDING} files"
        )));
    }
    match op {
        FileOp::Read => {
            let bytes = read(state, &root, &path)?;
            r.finish()
                .map_err(|e| HostError::InvalidPayload(e.to_string()))?;
            Ok(bytes)
        }
        FileOp::List => {
            let names = list(state, &root, &path)?;
            let mut out = Vec::new();
            interstice_abi::codec::write_varint(&mut out, names.len() as u64);
            for name in &names {
                interstice_abi::codec::write_str(&mut out, name);
            }
            Ok(out)
        }
        FileOp::Write => {
            resolve(&root, &path, false)?;
            let n = r
                .length(1)
                .map_err(|e| HostError::InvalidPayload(e.to_string()))?;
            if n > MAX_FILE_BYTES {
                return Err(HostError::InvalidPayload(format!(
                    "a file of {n} bytes is more than {MAX_FILE_BYTES}"
                )));
            }
            let quota = state.quotas.file_bytes_per_call;
            let queued: usize = state
                .effects
                .files
                .iter()
                .filter_map(|(_, contents)| contents.as_ref().map(Vec::len))
                .sum();
            if queued + n > quota {
                return Err(crate::config::Quotas::exceeded(
                    "bytes of file writes per transaction",
                    quota,
                ));
            }
            let bytes = r
                .bytes(n)
                .map_err(|e| HostError::InvalidPayload(e.to_string()))?
                .to_vec();
            state.effects.files.push((path, Some(bytes)));
            Ok(Vec::new())
        }
        FileOp::Watch => {
            let target = resolve(&root, &path, true)?;
            if state.effects.watches.len() >= MAX_PENDING {
                return Err(refused(format!(
                    "a transaction may add at most {MAX_PENDING} watches"
                )));
            }
            state.effects.watches.push(target);
            Ok(Vec::new())
        }
        FileOp::Delete => {
            // It must exist (on disk or written by this transaction).
            read(state, &root, &path)?;
            state.effects.files.push((path, None));
            Ok(Vec::new())
        }
    }
}

/// The `file_op` host function.
pub(crate) fn file_op(
    caller: &mut Caller<'_, HostState>,
    op: u32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<i64> {
    let (memory, state) = memory_and_state(caller)?;
    if !state.in_call {
        return Err(trap(
            "file calls are only allowed inside a reducer or query",
        ));
    }
    let payload = guest_bytes(memory, ptr, len)?.to_vec();
    let outcome = run(state, op, &payload);
    state.response.clear();
    Ok(match outcome {
        Ok(bytes) => {
            state.response = bytes;
            state.response.len() as i64
        }
        Err(error) => {
            state.response = postcard::to_allocvec(&error)
                .map_err(|e| trap(format!("cannot encode host error: {e}")))?;
            -(state.response.len() as i64) - 1
        }
    })
}

/// Applies durable transactions' writes and deletes, in order.
pub(crate) fn apply(root: &Path, module: &str, pending: Vec<PendingFile>) {
    for (path, contents) in pending {
        let result = resolve(root, &path, false).and_then(|file| {
            let outcome = match &contents {
                Some(bytes) => file
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| crate::disk::fsutil::write_atomic(&file, bytes)),
                None => std::fs::remove_file(&file),
            };
            outcome.map_err(|e| io(&path, e))
        });
        if let Err(e) = result {
            tracing::error!(target: "interstice", module, "committed file change to {path} failed: {e}");
        }
    }
}
