//! Errors of loading modules and calling into them.

use interstice_abi::{Authority, SchemaError};
use std::path::PathBuf;
use thiserror::Error;

/// Why a module could not be loaded. A failed load leaves nothing behind: no tables, no
/// authorities, no instance.
///
/// Where a lower error caused it, the message includes that error's text (what a person reads)
/// and [`source`](std::error::Error::source) returns it, typed (what code that tells causes
/// apart reads: a full disk, a wasm validation error).
#[derive(Debug, Error)]
pub enum LoadError {
    /// A new version of an installed module changes its tables in a way that would lose data.
    #[error("module `{module}` cannot be upgraded without losing data:\n  {}", differences.join("\n  "))]
    Incompatible {
        /// The module.
        module: String,
        /// What changed, one line each.
        differences: Vec<String>,
    },
    /// The bytes are not a valid WebAssembly module.
    #[error("invalid wasm: {0:#}")]
    InvalidWasm(#[source] wasmtime::Error),
    /// The module imports something Interstice does not provide (for example WASI).
    #[error("the module imports `{module}::{name}`, which Interstice does not provide")]
    UnknownImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// A required export is missing.
    #[error("the module has no export `{0}`: was it built with `interstice_module!()`?")]
    MissingExport(String),
    /// The module was built against another ABI.
    #[error("the module was built for ABI version {found}, this node supports version {expected}")]
    AbiMismatch {
        /// What the module says.
        found: u32,
        /// What the node speaks.
        expected: u32,
    },
    /// A description export returned something unusable.
    #[error("description `{export}` is invalid: {reason}")]
    BadDescription {
        /// The export.
        export: String,
        /// What is wrong.
        reason: String,
    },
    /// The assembled schema is invalid.
    #[error("invalid schema: {0}")]
    Schema(#[from] SchemaError),
    /// Two description exports define one type name differently.
    #[error("invalid schema: type `{name}` is defined twice, differently (seen in `{export}`)")]
    ConflictingType {
        /// The type.
        name: String,
        /// The export that defined it the second time.
        export: String,
    },
    /// An upgrade names a module that is not installed.
    #[error("module `{0}` is not installed")]
    NotInstalled(String),
    /// A module with this name is loaded already.
    #[error("a module named `{0}` is loaded already")]
    DuplicateModule(String),
    /// An authority the module claims is held by another module.
    #[error("authority {authority} is held by module `{holder}`")]
    AuthorityTaken {
        /// The authority.
        authority: Authority,
        /// Its holder.
        holder: String,
    },
    /// wasmtime could not instantiate the module.
    #[error("instantiation failed: {0:#}")]
    Instantiate(#[source] wasmtime::Error),
    /// The module could not be stored in the node's data directory.
    #[error("cannot store the module: {0}")]
    Storage(#[source] Box<StorageError>),
    /// The node's storage refuses writes for now (after a disk fault), so no module is
    /// installed: its `init` hook would commit.
    #[error("cannot store the module: {0}")]
    StorageRefused(String),
    /// An `init` or `load` hook failed; the load was undone.
    #[error("the `{reducer}` hook failed: {error}")]
    Hook {
        /// The hook reducer.
        reducer: String,
        /// Its failure.
        error: CallError,
    },
}

impl From<StorageError> for LoadError {
    fn from(e: StorageError) -> LoadError {
        // Boxed: a storage error can itself hold the load error of a module it reinstalled.
        LoadError::Storage(Box::new(e))
    }
}

/// Why a reducer or query call failed. The node keeps running; a failed reducer's writes are
/// rolled back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallError {
    /// No module of that name.
    #[error("no module named `{0}`")]
    NoSuchModule(String),
    /// The module has no such reducer.
    #[error("module `{module}` has no reducer `{name}`")]
    NoSuchReducer {
        /// The module.
        module: String,
        /// The reducer asked for.
        name: String,
    },
    /// The module has no such query.
    #[error("module `{module}` has no query `{name}`")]
    NoSuchQuery {
        /// The module.
        module: String,
        /// The query asked for.
        name: String,
    },
    /// The module has no such table.
    #[error("module `{module}` has no table `{name}`")]
    NoSuchTable {
        /// The module.
        module: String,
        /// The table asked for.
        name: String,
    },
    /// The reducer subscribes to an event and cannot be called directly.
    #[error("reducer `{0}` subscribes to an event and cannot be called directly")]
    SubscriberOnly(String),
    /// Arguments do not match the signature.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// A Rust type does not match the schema's.
    #[error("type mismatch: {0}")]
    TypeMismatch(String),
    /// The reducer returned an error.
    #[error("{0}")]
    Failed(String),
    /// The guest trapped (panicked, hit `unreachable`, accessed memory out of bounds, ...).
    #[error("trapped: {0}")]
    Trap(String),
    /// The call used up its fuel budget.
    #[error("ran out of fuel (budget: {0})")]
    OutOfFuel(u64),
    /// The guest tried to grow its memory past the cap.
    #[error("exceeded the memory cap of {0} bytes")]
    MemoryCap(usize),
    /// The transaction committed in memory but could not be made durable yet: its outcome is
    /// in doubt. The node keeps it and writes it when storage recovers; it is lost if the node
    /// stops before.
    #[error("committed but not durable: {0}")]
    NotDurable(String),
    /// Not run: the node refuses writes until its storage recovers (a full disk, a failed
    /// write or fsync). Nothing changed; calling again later is safe.
    #[error("not run: {0}")]
    Unavailable(String),
    /// The guest returned something the host cannot read.
    #[error("invalid result: {0}")]
    InvalidResult(String),
}

/// Why storage could not be opened or written (defined beside [`LoadError`], which it can hold
/// and be held by: reinstalling a module can fail, and so can storing one).
#[derive(Debug, Error)]
pub enum StorageError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An earlier write or fsync of the log failed: nothing more is written until storage has
    /// recovered ([`Storage::try_resume`](crate::Storage::try_resume)).
    #[error("{path}: the log is halted after a failed write or fsync")]
    Halted {
        /// The segment.
        path: PathBuf,
    },
    /// A log record in the middle of the log is damaged.
    #[error(
        "{path}: damaged log record at byte offset {offset} ({reason}); {after} more byte(s) of log follow it. \
         Start with repair enabled to drop the damaged record and everything after it"
    )]
    CorruptLog {
        /// The segment.
        path: PathBuf,
        /// Offset of the damaged record.
        offset: u64,
        /// What is wrong.
        reason: String,
        /// Bytes from the damaged record to the end of the log.
        after: u64,
    },
    /// A record decodes but cannot be applied (unknown module or table, bad row).
    #[error("{path}: record {seq} at byte offset {offset} cannot be applied: {reason}")]
    BadRecord {
        /// The segment.
        path: PathBuf,
        /// Its sequence number.
        seq: u64,
        /// Its offset.
        offset: u64,
        /// Why.
        reason: String,
    },
    /// A snapshot file is damaged.
    #[error("{path}: damaged snapshot: {reason}")]
    CorruptSnapshot {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Records between the snapshot and the log are missing.
    #[error(
        "the log starts at record {first} but record {expected} is needed (snapshot or segments missing)"
    )]
    Gap {
        /// The first record found.
        first: u64,
        /// The record needed.
        expected: u64,
    },
    /// An installed module could not be reloaded.
    #[error("installed module {path}: {error}")]
    Module {
        /// Its file.
        path: PathBuf,
        /// Why it failed.
        error: LoadError,
    },
    /// Something could not be encoded.
    #[error("cannot encode: {0}")]
    Encode(String),
}
