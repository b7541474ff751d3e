//! Files, for the module holding the File authority
//! (`interstice_module!(authorities: [File])`): a directory of its own inside the node's data
//! directory. Paths are relative to it (`"levels/1.txt"`); `..`, absolute paths and symlinks
//! are refused. Writes and deletes are part of the transaction: they happen when the reducer
//! commits, and not at all if it fails. Reads see the transaction's own writes.

use crate::ffi;
use interstice_abi::HostError;
use interstice_abi::protocol::FileOp;

fn op(kind: FileOp, path: &str, bytes: Option<&[u8]>) -> Result<Vec<u8>, HostError> {
    let mut payload = Vec::with_capacity(path.len() + bytes.map_or(0, <[u8]>::len) + 8);
    interstice_abi::codec::write_str(&mut payload, path);
    if let Some(bytes) = bytes {
        interstice_abi::codec::write_varint(&mut payload, bytes.len() as u64);
        payload.extend_from_slice(bytes);
    }
    // SAFETY: pointer and length of a live buffer.
    let outcome = unsafe { ffi::file_op(kind as u32, payload.as_ptr(), payload.len()) };
    crate::__private::outcome(outcome)
}

/// The file's bytes.
pub fn read(path: &str) -> Result<Vec<u8>, HostError> {
    op(FileOp::Read, path, None)
}

/// The file as UTF-8 text.
pub fn read_to_string(path: &str) -> Result<String, HostError> {
    String::from_utf8(read(path)?)
        .map_err(|_| HostError::InvalidPayload(format!("{path} is not UTF-8")))
}

/// Replaces the file's contents (creating it and its directories) when the transaction
/// commits.
pub fn write(path: &str, bytes: &[u8]) -> Result<(), HostError> {
    op(FileOp::Write, path, Some(bytes)).map(drop)
}

/// The names in a directory (`""` for the module's own), sorted; directories end with `/`.
pub fn list(dir: &str) -> Result<Vec<String>, HostError> {
    let bytes = op(FileOp::List, dir, None)?;
    <Vec<String> as interstice_abi::IntersticeType>::from_bytes(&bytes)
        .map_err(|e| HostError::InvalidPayload(format!("file list: {e}")))
}

/// Watches a file or directory (`""`: the module's whole directory) once the transaction
/// commits: every change under it is delivered to the module's
/// `#[reducer(on = "file_changed")]` reducers as a [`FileChanged`]. Watches last until the node
/// stops; watching the same path again is harmless.
pub fn watch(path: &str) -> Result<(), HostError> {
    op(FileOp::Watch, path, None).map(drop)
}

/// A change to a watched path.
#[crate::interstice_type]
#[derive(Debug, Clone, PartialEq)]
pub struct FileChanged {
    /// The path that changed, relative to the module's directory.
    pub path: String,
    /// Whether it is gone (removed or renamed away) rather than created or written.
    pub removed: bool,
}

/// Removes the file when the transaction commits.
pub fn delete(path: &str) -> Result<(), HostError> {
    op(FileOp::Delete, path, None).map(drop)
}
