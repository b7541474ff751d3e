//! The host-call protocol between a guest module and its node.
//!
//! # Exports a module provides
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | [`exports::ABI_VERSION`] | `() -> i32` | [`ABI_VERSION`] the module was built with |
//! | [`exports::DESCRIBE_MODULE`] | `() -> i64` | packed pointer/length of a postcard [`ModuleDescription`] |
//! | `interstice_describe_table__<name>` | `() -> i64` | a postcard [`TableDescription`] |
//! | `interstice_describe_reducer__<name>` | `() -> i64` | a postcard [`ReducerDescription`] |
//! | `interstice_describe_query__<name>` | `() -> i64` | a postcard [`QueryDescription`] |
//! | `interstice_reducer__<name>` | `(ptr: i32, len: i32) -> i64` | runs a reducer on encoded arguments |
//! | `interstice_query__<name>` | `(ptr: i32, len: i32) -> i64` | runs a query; the result is encoded |
//! | [`exports::BUFFER`] | `(len: i32) -> i32` | a guest buffer of at least `len` bytes the host may fill |
//! | `memory` | memory | the module's linear memory |
//!
//! Reducers and queries return an [`i64`] outcome: `0` is success with no payload, a positive
//! value is success with a payload at [`unpack`](crate::codec::unpack)`(r)`, a negative value is
//! an error whose UTF-8 message is at `unpack(-r)`. Arguments are the concatenated
//! [encodings](crate::codec) of each argument.
//!
//! # Imports the host provides (module [`IMPORT_MODULE`])
//!
//! | import | signature | meaning |
//! |---|---|---|
//! | `log` | `(level: i32, ptr: i32, len: i32)` | log a UTF-8 message (0 error … 4 trace) |
//! | `panic` | `(ptr: i32, len: i32)` | record the panic message before the guest traps |
//! | `resolve_table` | `(ptr: i32, len: i32) -> i32` | id of the current module's table of that name, or -1 |
//! | `table_op` | `(op: i32, table: i32, field: i32, ptr: i32, len: i32) -> i64` | run a [`TableOp`] |
//! | `take_response` | `(ptr: i32)` | copy the pending response into guest memory |
//! | `schedule` | `(ptr: i32, len: i32) -> i64` | schedule a reducer of this module (see [`imports::SCHEDULE`]) |
//! | `cancel_schedule` | `(id: i64) -> i32` | cancel a scheduled entry |
//! | `now` | `() -> i64` | the call's logical time in milliseconds |
//! | `random_seed` | `() -> i64` | the call's deterministic random seed |
//! | `call_module` | `(kind: i32, ptr: i32, len: i32) -> i64` | call another module's reducer (kind 0) or query (1) on this node, or send a reducer call to another node (2) |
//! | `caller` | `() -> i64` | the calling module's name |
//! | `caller_node` | `() -> i64` | the node id of the peer whose remote call this is |
//! | `file_op` | `(op: i32, ptr: i32, len: i32) -> i64` | a [`FileOp`] in the module's file sandbox (File authority) |
//! | `gpu_submit` | `(ptr: i32, len: i32) -> i64` | add postcard [`DrawCommand`](crate::draw::DrawCommand)s to this frame's draw list (Gpu authority) |
//! | `audio_write` | `(ptr: i32, len: i32) -> i64` | queue interleaved little-endian `f32` samples for the output device (Audio authority) |
//! | `input_state` | `() -> i64` | the current [`InputState`](crate::input::InputState), postcard, as the response (Input authority) |
//!
//! `table_op` answers `r >= 0` when it succeeded, with an `r`-byte response pending, and
//! `r < 0` when it failed, with a `(-r - 1)`-byte postcard [`HostError`] pending. The guest
//! fetches a pending response with `take_response` into a buffer it allocated.

use crate::schema::{Authority, QuerySchema, ReducerSchema, TableSchema, Visibility};
use crate::types::TypeDef;
use alloc::{string::String, vec::Vec};
use core::fmt;
use serde::{Deserialize, Serialize};

/// Version of this protocol. A host refuses modules built against another version.
pub const ABI_VERSION: u32 = 1;

/// The wasm import module name of every host function.
pub const IMPORT_MODULE: &str = "interstice";

/// Rows a `Scan` page holds at most.
pub const SCAN_PAGE_ROWS: u32 = 256;

/// Names of the exports a module provides.
pub mod exports {
    /// `() -> i32`: the ABI version.
    pub const ABI_VERSION: &str = "interstice_abi_version";
    /// `() -> i64`: the module description.
    pub const DESCRIBE_MODULE: &str = "interstice_describe_module";
    /// Prefix of table descriptions.
    pub const DESCRIBE_TABLE: &str = "interstice_describe_table__";
    /// Prefix of reducer descriptions.
    pub const DESCRIBE_REDUCER: &str = "interstice_describe_reducer__";
    /// Prefix of query descriptions.
    pub const DESCRIBE_QUERY: &str = "interstice_describe_query__";
    /// Prefix of reducer entry points.
    pub const REDUCER: &str = "interstice_reducer__";
    /// Prefix of query entry points.
    pub const QUERY: &str = "interstice_query__";
    /// `(len: i32) -> i32`: a buffer for the host to write arguments into.
    pub const BUFFER: &str = "interstice_buffer";
    /// The linear memory.
    pub const MEMORY: &str = "memory";
}

/// What a `call_module` call asks for: its `kind` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CallKind {
    /// A reducer of another module on this node, inside the caller's transaction.
    Reducer = 0,
    /// A query of another module on this node.
    Query = 1,
    /// A reducer of a module on another node, sent once the caller's transaction commits.
    RemoteReducer = 2,
}

impl CallKind {
    /// The number the import passes.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The kind a number names, if any.
    pub const fn from_code(code: u32) -> Option<CallKind> {
        match code {
            0 => Some(CallKind::Reducer),
            1 => Some(CallKind::Query),
            2 => Some(CallKind::RemoteReducer),
            _ => None,
        }
    }
}

/// Names of the host functions.
pub mod imports {
    /// `log(level, ptr, len)`
    pub const LOG: &str = "log";
    /// `panic(ptr, len)`
    pub const PANIC: &str = "panic";
    /// `resolve_table(ptr, len) -> id`
    pub const RESOLVE_TABLE: &str = "resolve_table";
    /// `table_op(op, table, field, ptr, len) -> outcome`
    pub const TABLE_OP: &str = "table_op";
    /// `take_response(ptr)`
    pub const TAKE_RESPONSE: &str = "take_response";
    /// `schedule(ptr, len) -> outcome`: payload `reducer: str | args: bytes | delay_ms: varint
    /// | repeat_ms: varint`; answers the entry id, or an error like `table_op`.
    pub const SCHEDULE: &str = "schedule";
    /// `cancel_schedule(id) -> i32`: 1 if an entry was removed, 0 if none, -1 outside a
    /// reducer.
    pub const CANCEL_SCHEDULE: &str = "cancel_schedule";
    /// `now() -> i64`: the logical time of the current call, in milliseconds.
    pub const NOW: &str = "now";
    /// `random_seed() -> i64`: a seed for the call's deterministic random numbers, derived
    /// from the invocation's position and logical time.
    pub const RANDOM_SEED: &str = "random_seed";
    /// `call_module(kind, ptr, len) -> outcome`: `kind` is a [`CallKind`](super::CallKind).
    /// A reducer (0) or query (1) of another module on this node runs inside the current
    /// transaction; payload `module: str | name: str | args: bytes`; answers like `table_op`
    /// (a query's result is the response). A remote reducer (2) is sent to another node once
    /// the current transaction commits (it never waits for that node); payload `node: str |
    /// module: str | name: str | args: bytes`, where `node` is one of the module's node
    /// dependencies. Any other kind is refused.
    pub const CALL_MODULE: &str = "call_module";
    /// `caller() -> i64`: the length of the calling module's name, left as the response, or
    /// -1 when the call came from outside any module.
    pub const CALLER: &str = "caller";
    /// `caller_node() -> i64`: the length of the node id of the peer whose remote call this
    /// transaction runs, left as the response, or -1 when the call came from this node. The id
    /// is bound to the peer's key ([`node_id_of`](crate::node_id_of)): a peer cannot claim
    /// another's.
    pub const CALLER_NODE: &str = "caller_node";
    /// `file_op(op, ptr, len) -> outcome`: a [`FileOp`](super::FileOp) on a path in the
    /// module's own directory (payload `path: str`, then `bytes` for a write); only for the
    /// holder of the File authority; answers like `table_op`.
    pub const FILE_OP: &str = "file_op";
    /// `gpu_submit(ptr, len) -> outcome`: postcard-encoded
    /// [`DrawCommand`](crate::draw::DrawCommand)s, one after another, added to the draw list
    /// of the current transaction; the list of the last committed reducer call is what the
    /// next frame shows. Only for the holder of the Gpu authority, only in reducers; answers
    /// like `table_op`.
    pub const GPU_SUBMIT: &str = "gpu_submit";
    /// `audio_write(ptr, len) -> outcome`: interleaved little-endian `f32` samples (in the
    /// channel count of the `audio_output` request) queued for the output device when the
    /// transaction commits. Only for the holder of the Audio authority, only in reducers;
    /// answers like `table_op`.
    pub const AUDIO_WRITE: &str = "audio_write";
    /// `input_state() -> outcome`: the keys, buttons, cursor and gamepads held down now, as a
    /// postcard [`InputState`](crate::input::InputState) response. Only for the holder of the
    /// Input authority; answers like `table_op`.
    pub const INPUT_STATE: &str = "input_state";
    /// `table_as_of(seq, op, table, ptr, len) -> outcome`: a read of one of the module's
    /// logged tables as it was after transaction `seq` (an `i64` holding the `u64`), from the
    /// node's history: `op` is [`TableOp::Get`](super::TableOp::Get) (payload: a primary key;
    /// answers like `table_op`) or [`TableOp::Scan`](super::TableOp::Scan) (payload: a cursor;
    /// answers a page). Only in a query called from outside any transaction (a game, a tool, a
    /// peer), never in a reducer or a call nested in one: what it answers depends on what
    /// the node keeps, which a replay of the reducer could not reproduce. Refusals
    /// (`NotPermitted`) say why: not logged, no history kept, retention cut it, inside a
    /// transaction.
    pub const TABLE_AS_OF: &str = "table_as_of";
}

/// What `file_op` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum FileOp {
    /// The file's bytes.
    Read = 0,
    /// Replace the file's bytes (created with its directories); applied when the transaction
    /// commits.
    Write = 1,
    /// The names in a directory (`""`: the module's directory), sorted; directories end in `/`.
    List = 2,
    /// Remove the file; applied when the transaction commits.
    Delete = 3,
    /// Watch a file or directory (`""`: the whole module directory): changes to it are
    /// delivered to the module's `#[reducer(on = "file_changed")]` reducers.
    Watch = 4,
}

impl FileOp {
    /// The op with this number.
    pub fn from_u32(op: u32) -> Option<FileOp> {
        match op {
            0 => Some(FileOp::Read),
            1 => Some(FileOp::Write),
            2 => Some(FileOp::List),
            3 => Some(FileOp::Delete),
            4 => Some(FileOp::Watch),
            _ => None,
        }
    }
}

/// Log levels of the `log` import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum LogLevel {
    /// An error.
    Error = 0,
    /// A warning.
    Warn = 1,
    /// Information (what `host_calls::log` uses).
    Info = 2,
    /// Debugging detail.
    Debug = 3,
    /// Tracing detail.
    Trace = 4,
}

impl LogLevel {
    /// The level of a raw number; anything unknown is `Trace`.
    pub fn from_raw(raw: u32) -> LogLevel {
        match raw {
            0 => LogLevel::Error,
            1 => LogLevel::Warn,
            2 => LogLevel::Info,
            3 => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// Table operations of the `table_op` import.
///
/// Payloads are [encoded values](crate::codec); `field` names the indexed field for index
/// operations and is ignored otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum TableOp {
    /// Payload: a row. Response: the stored row (generated values filled in).
    Insert = 1,
    /// Payload: a primary key. Response: `Option<row>`.
    Get = 2,
    /// Payload: a row whose primary key exists. Response: the stored row.
    Update = 3,
    /// Payload: a primary key. Response: `bool`, whether a row was removed.
    Delete = 4,
    /// Response: `u64` row count.
    Count = 5,
    /// Response: `u64` rows removed.
    Clear = 6,
    /// Payload: `Option<primary key>` to start after. Response: `Vec<row>` of at most
    /// [`SCAN_PAGE_ROWS`] rows in primary-key order.
    Scan = 7,
    /// Payload: a key of a unique index. Response: `Option<row>`.
    FindUnique = 8,
    /// Payload: a key of an index. Response: `Vec<row>` in primary-key order.
    Filter = 9,
    /// Payload: two bounds of a btree index (each a `u8` tag — 0 unbounded, 1 included,
    /// 2 excluded — then the key when bounded). Response: `Vec<row>` in key order.
    Range = 10,
    /// Payload: a row whose primary key exists. Response: empty — an update generates
    /// nothing, so the stored row is the payload, and the guest keeps the row it sent
    /// instead of decoding it back (what [`TableOp::Update`] answers).
    Replace = 11,
}

impl TableOp {
    /// The operation of a raw number.
    pub fn from_raw(raw: u32) -> Option<TableOp> {
        Some(match raw {
            1 => TableOp::Insert,
            2 => TableOp::Get,
            3 => TableOp::Update,
            4 => TableOp::Delete,
            5 => TableOp::Count,
            6 => TableOp::Clear,
            7 => TableOp::Scan,
            8 => TableOp::FindUnique,
            9 => TableOp::Filter,
            10 => TableOp::Range,
            11 => TableOp::Replace,
            _ => return None,
        })
    }

    /// Whether the operation changes the table.
    pub fn writes(self) -> bool {
        matches!(
            self,
            TableOp::Insert | TableOp::Update | TableOp::Replace | TableOp::Delete | TableOp::Clear
        )
    }
}

/// Why the host refused a table operation. Reducers receive it as an ordinary `Err` they may
/// handle; it does not abort the transaction by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostError {
    /// A row with this primary key or unique index key exists already.
    UniqueViolation {
        /// The table.
        table: String,
        /// The column whose uniqueness was violated.
        column: String,
        /// The key, printed.
        key: String,
    },
    /// `update` of a row whose primary key does not exist.
    NotFound {
        /// The table.
        table: String,
        /// The key, printed.
        key: String,
    },
    /// A write from a query.
    ReadOnly,
    /// A table id the module does not have.
    NoSuchTable(u32),
    /// An index operation on a field without a suitable index.
    NoSuchIndex {
        /// The table.
        table: String,
        /// The field position.
        field: u16,
        /// What was needed.
        expected: String,
    },
    /// The payload did not decode as the expected type.
    InvalidPayload(String),
    /// An auto-increment counter ran past its type's range.
    AutoIncOverflow {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// An unknown operation code.
    UnknownOp(u32),
    /// The call is not allowed in this context.
    NotPermitted(String),
    /// A call to another module failed; its writes were rolled back.
    CallFailed {
        /// The called module.
        module: String,
        /// The reducer or query.
        name: String,
        /// Why.
        reason: String,
    },
    /// The call would take the module past one of the node's quotas (rows, schedule entries,
    /// remote calls, file bytes, ...). Appended last, so earlier encodings are unchanged.
    QuotaExceeded {
        /// Which quota, in words (`"rows per module"`).
        quota: String,
        /// Its limit on this node.
        limit: u64,
    },
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::UniqueViolation { table, column, key } => {
                write!(f, "{table}.{column}: a row with key {key} exists already")
            }
            HostError::NotFound { table, key } => write!(f, "{table}: no row with key {key}"),
            HostError::ReadOnly => f.write_str("queries cannot change tables"),
            HostError::NoSuchTable(id) => write!(f, "no table with id {id}"),
            HostError::NoSuchIndex {
                table,
                field,
                expected,
            } => write!(f, "{table}: field #{field} has no {expected} index"),
            HostError::InvalidPayload(why) => write!(f, "invalid payload: {why}"),
            HostError::AutoIncOverflow { table, column } => {
                write!(f, "{table}.{column}: auto_inc counter overflowed")
            }
            HostError::UnknownOp(op) => write!(f, "unknown table operation {op}"),
            HostError::NotPermitted(why) => write!(f, "not permitted: {why}"),
            HostError::CallFailed {
                module,
                name,
                reason,
            } => write!(f, "call to {module}.{name} failed: {reason}"),
            HostError::QuotaExceeded { quota, limit } => {
                write!(f, "quota exceeded: at most {limit} {quota}")
            }
        }
    }
}

/// What [`exports::DESCRIBE_MODULE`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleDescription {
    /// [`ABI_VERSION`] at build time.
    pub abi_version: u32,
    /// Crate name.
    pub name: String,
    /// Crate version.
    pub version: String,
    /// Visibility.
    pub visibility: Visibility,
    /// Claimed authorities.
    pub authorities: Vec<Authority>,
    /// Other nodes it reaches (from its node bindings).
    pub nodes: Vec<crate::schema::NodeDependency>,
}

/// What a table's describe export returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDescription {
    /// The table.
    pub table: TableSchema,
    /// Named types it uses.
    pub types: Vec<TypeDef>,
}

/// What a reducer's describe export returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReducerDescription {
    /// The reducer.
    pub reducer: ReducerSchema,
    /// Named types it uses.
    pub types: Vec<TypeDef>,
}

/// What a query's describe export returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryDescription {
    /// The query.
    pub query: QuerySchema,
    /// Named types it uses.
    pub types: Vec<TypeDef>,
}
