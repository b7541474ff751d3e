//! Protocol messages and their checked encoding.
//!
//! Every message is postcard (the same format modules use), at most [`MAX_MESSAGE_BYTES`] long.
//! Decoding never trusts its input: the size is checked before anything is decoded, postcard
//! bounds every allocation by the bytes present, and trailing bytes are an error. A peer whose
//! message fails to decode is disconnected; nothing else is affected.

use interstice_abi::{ModuleSchema, TableEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Largest encoded message accepted, in bytes. Module uploads are split into chunks below it.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Largest chunk of a module upload.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;

/// Most chunks in one upload: modules of up to 64 MiB.
pub const MAX_UPLOAD_CHUNKS: u32 = 64;

/// Why a remote call failed, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum RemoteError {
    /// The peer has no such public module, reducer, query or table (private ones are reported
    /// exactly like missing ones: they are invisible from other nodes).
    #[error("not found: {0}")]
    NotFound(String),
    /// The caller is not allowed to do this (subscription-only reducer, admin action, ...).
    #[error("not permitted: {0}")]
    NotPermitted(String),
    /// The reducer or query ran and failed; its writes were rolled back.
    #[error("failed: {0}")]
    Failed(String),
    /// The call did not answer in time (queries only; reducer calls are never abandoned).
    #[error("timed out")]
    Timeout,
    /// The request was not looked at: the peer is over one of its budgets (requests queued or
    /// per second, uploads in progress). Nothing ran; sending it again later is safe.
    #[error("busy: {0}")]
    Busy(String),
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The module's name.
    pub module: String,
    /// Whether it replaced an installed version (keeping its data).
    pub upgraded: bool,
    /// What the upgrade dropped (only with `drop_data`), one line each.
    pub dropped: Vec<String>,
}

/// A point in a node's history: after a transaction, or the last transaction at or before a
/// logical time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PastPoint {
    /// After this transaction (its log position).
    Tx(u64),
    /// After the last transaction committed at or before this logical time, in milliseconds.
    Time(u64),
}

/// A page of a table's rows (`interstice rows`), with what it takes to read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowsPage {
    /// The table's columns, in row order (the primary key's is `primary_key`).
    pub columns: Vec<interstice_abi::FieldDef>,
    /// The index of the primary key among `columns`.
    pub primary_key: u32,
    /// The module's named types, to decode the rows.
    pub types: interstice_abi::TypeSet,
    /// The rows, each encoded like a row event (the fields in order), in primary-key order.
    pub rows: Vec<Vec<u8>>,
    /// Where the next page starts (pass it as `after`), or `None` after the last row.
    pub next: Option<Vec<u8>>,
    /// Rows the node looked at for this page (more than `rows` with a filter).
    pub scanned: u64,
}

/// A page of a logged table's history (`interstice history`), with what it takes to read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The table's columns, in row order (the primary key's is `primary_key`).
    pub columns: Vec<interstice_abi::FieldDef>,
    /// The index of the primary key among `columns`.
    pub primary_key: u32,
    /// The module's named types, to decode rows and keys.
    pub types: interstice_abi::TypeSet,
    /// The versions, oldest first.
    pub versions: Vec<HistoryVersion>,
    /// Where the next page starts (pass it as `from_seq` and `skip`): a log position and how
    /// many of that transaction's versions this page already held; `None` after the last
    /// version up to `to_seq`.
    pub next: Option<(u64, u32)>,
}

/// One version of a row: its state after a transaction, and what caused the transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryVersion {
    /// The transaction's position in the node's log.
    pub seq: u64,
    /// Its logical time, in milliseconds.
    pub time: u64,
    /// The module whose reducer ran.
    pub module: String,
    /// The reducer.
    pub reducer: String,
    /// Its encoded arguments.
    pub args: Vec<u8>,
    /// The node id of the peer whose call it was (another node, or a CLI's key); `None` for a
    /// call made on the node.
    pub caller: Option<String>,
    /// The encoded primary key.
    pub key: Vec<u8>,
    /// The row after the transaction, encoded like a row event; `None`: deleted.
    pub row: Option<Vec<u8>>,
}

/// A guest log line (`interstice logs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Its number on the node (increasing).
    pub seq: u64,
    /// The module that logged it.
    pub module: String,
    /// 0 error … 4 trace.
    pub level: u32,
    /// The message.
    pub message: String,
    /// When the node took it, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// A protocol message, in either direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// First message of a connection: the versions the sender speaks and who it is.
    Hello {
        /// Supported protocol versions.
        versions: Vec<u16>,
        /// The sender's node id (a UUID bound to its key).
        node_id: String,
    },
    /// Answer to `Hello`: the version both will use.
    Welcome {
        /// The negotiated version.
        version: u16,
        /// The answering node's id.
        node_id: String,
    },
    /// The connection is refused (no common version, unknown peer, ...).
    Refuse {
        /// Why, for the operator.
        reason: String,
    },
    /// Liveness and round-trip time.
    Ping {
        /// Echoed by `Pong`.
        nonce: u64,
    },
    /// Answer to `Ping`.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// Ask for the public schemas of the peer's modules.
    SchemaRequest {
        /// Request id.
        request: u64,
    },
    /// The public schemas (private modules are left out).
    Schema {
        /// The request answered.
        request: u64,
        /// Public module schemas.
        modules: Vec<ModuleSchema>,
    },
    /// Run a reducer. Answered with `CallResult` only after the commit is durable.
    CallReducer {
        /// Request id, unique per caller: a repeated id is answered, not run again.
        request: u64,
        /// The module.
        module: String,
        /// The reducer.
        reducer: String,
        /// Encoded arguments.
        args: Vec<u8>,
    },
    /// Outcome of a `CallReducer`.
    CallResult {
        /// The request answered.
        request: u64,
        /// Committed, or why not.
        outcome: Result<(), RemoteError>,
    },
    /// Run a query.
    Query {
        /// Request id.
        request: u64,
        /// The module.
        module: String,
        /// The query.
        query: String,
        /// Encoded arguments.
        args: Vec<u8>,
    },
    /// Outcome of a `Query`.
    QueryResult {
        /// The request answered.
        request: u64,
        /// The encoded result, or why not.
        outcome: Result<Vec<u8>, RemoteError>,
    },
    /// Receive a table's events from sequence number `from_seq` on (0: from now). Sent as the
    /// first message of its own stream; the events come back on that stream.
    Subscribe {
        /// Subscription id chosen by the subscriber.
        subscription: u64,
        /// The module.
        module: String,
        /// The table.
        table: String,
        /// First event sequence number wanted (the one after the last one seen).
        from_seq: u64,
    },
    /// Answer to `Subscribe`: where the stream starts, or why there is none.
    Subscribed {
        /// The subscription.
        subscription: u64,
        /// The number of the first event the stream will carry: `from_seq`, unless the
        /// publisher no longer retains it (or its numbering restarted); or why not.
        outcome: Result<u64, RemoteError>,
    },
    /// Consecutive events of a subscription: `first_seq`, `first_seq + 1`, ...
    Events {
        /// The subscription.
        subscription: u64,
        /// The number of the first event.
        first_seq: u64,
        /// What happened, and the encoded row (or old then new row for updates).
        events: Vec<(TableEvent, Vec<u8>)>,
    },
    /// Stop a subscription.
    Unsubscribe {
        /// The subscription.
        subscription: u64,
    },
    /// One chunk of a module upload (`interstice publish`).
    PublishChunk {
        /// Upload id.
        upload: u64,
        /// Chunk index, from 0.
        index: u32,
        /// Number of chunks.
        total: u32,
        /// At most [`MAX_CHUNK_BYTES`] bytes of wasm.
        bytes: Vec<u8>,
        /// When the module is installed and the new version would lose data: replace it
        /// anyway (the affected tables start empty). Read from the first chunk.
        drop_data: bool,
    },
    /// The node's verdict on a complete upload.
    PublishResult {
        /// The upload.
        upload: u64,
        /// What was installed, or why it was refused.
        outcome: Result<Published, RemoteError>,
    },
    /// Remove a module (`interstice remove`).
    Remove {
        /// Request id.
        request: u64,
        /// The module.
        module: String,
    },
    /// The node's verdict on a `Remove`.
    RemoveResult {
        /// The request answered.
        request: u64,
        /// Removed, or why not.
        outcome: Result<(), RemoteError>,
    },
    /// Ask for the node's health (`interstice node ping`).
    StatusRequest {
        /// Request id.
        request: u64,
    },
    /// The node's health.
    Status {
        /// The request answered.
        request: u64,
        /// Its storage: `ok`, `ephemeral` (no data directory), or why it refuses writes.
        storage: String,
    },
    /// Read a page of a table's rows (`interstice rows`): a public module's for anyone, any
    /// module's for the node's owner. Read-only.
    RowsRequest {
        /// Request id.
        request: u64,
        /// The module.
        module: String,
        /// The table.
        table: String,
        /// The encoded primary key the page starts after (the previous page's `next`).
        after: Option<Vec<u8>>,
        /// `(column, value)`, the value as typed on a command line: only rows whose column
        /// equals it.
        filter: Option<(String, String)>,
        /// The most rows wanted (the node sends at most its own page size).
        limit: u32,
        /// The table as it was at this point of its history instead of now (a logged table;
        /// the node's owner only).
        as_of: Option<PastPoint>,
    },
    /// A page of rows, or why not.
    Rows {
        /// The request answered.
        request: u64,
        /// The page.
        outcome: Result<RowsPage, RemoteError>,
    },
    /// Read the guest log lines the node kept (`interstice logs`; the node's owner only).
    LogsRequest {
        /// Request id.
        request: u64,
        /// One module's lines, or every module's.
        module: Option<String>,
        /// Only lines numbered after this (0: every line kept).
        after: u64,
    },
    /// Log lines, oldest first, or why not.
    Logs {
        /// The request answered.
        request: u64,
        /// The lines, and the number to ask after next time.
        outcome: Result<(Vec<LogLine>, u64), RemoteError>,
    },
    /// Read the versions of a logged table's rows (`interstice history`; the node's owner
    /// only). Read-only.
    HistoryRequest {
        /// Request id.
        request: u64,
        /// The module.
        module: String,
        /// The table (a logged one).
        table: String,
        /// One row's versions: its primary key as typed on a command line (`None`: every
        /// row's).
        key: Option<String>,
        /// The first log position to read (inclusive).
        from_seq: u64,
        /// Versions of the `from_seq` transaction to leave out (a previous page held them).
        skip: u32,
        /// The last one (inclusive).
        to_seq: u64,
        /// The most versions wanted (the node sends at most its own page size).
        limit: u32,
    },
    /// A page of history, or why not.
    History {
        /// The request answered.
        request: u64,
        /// The page.
        outcome: Result<HistoryPage, RemoteError>,
    },
}

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Longer than [`MAX_MESSAGE_BYTES`].
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not a valid encoding.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Valid, but breaks a protocol limit.
    #[error("message breaks a protocol limit: {0}")]
    Invalid(String),
}

impl Message {
    /// Encodes a message; fails if it would exceed [`MAX_MESSAGE_BYTES`].
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let bytes =
            postcard::to_allocvec(self).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// Decodes one message from exactly `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        let (message, rest) = postcard::take_from_bytes::<Message>(bytes).map_err(|e| {
            DecodeError::Malformed(interstice_abi::limits::describe_postcard_error(&e))
        })?;
        if !rest.is_empty() {
            return Err(DecodeError::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        message.check()?;
        Ok(message)
    }

    /// Protocol limits beyond the encoding.
    fn check(&self) -> Result<(), DecodeError> {
        match self {
            Message::PublishChunk {
                index,
                total,
                bytes,
                ..
            } => {
                if bytes.len() > MAX_CHUNK_BYTES {
                    return Err(DecodeError::Invalid(format!(
                        "chunk of {} bytes exceeds {MAX_CHUNK_BYTES}",
                        bytes.len()
                    )));
                }
                if *total == 0 || index >= total || *total > MAX_UPLOAD_CHUNKS {
                    return Err(DecodeError::Invalid(format!(
                        "chunk {index} of {total} (at most {MAX_UPLOAD_CHUNKS} chunks)"
                    )));
                }
                Ok(())
            }
            Message::Hello { versions, .. } if versions.is_empty() || versions.len() > 64 => Err(
                DecodeError::Invalid("a hello must list 1 to 64 versions".into()),
            ),
            // No module, table, reducer or query has a longer name: one that does names
            // nothing, and would only be echoed back in errors kept per peer.
            Message::CallReducer {
                module,
                reducer: name,
                ..
            }
            | Message::Query {
                module,
                query: name,
                ..
            }
            | Message::Subscribe {
                module,
                table: name,
                ..
            } => check_names(&[module, name]),
            Message::Remove { module, .. } => check_names(&[module]),
            Message::LogsRequest {
                module: Some(module),
                ..
            } => check_names(&[module]),
            Message::HistoryRequest { module, table, .. } => check_names(&[module, table]),
            Message::RowsRequest {
                module,
                table,
                filter,
                ..
            } => {
                check_names(&[module, table])?;
                match filter {
                    Some((column, _)) => check_names(&[column]),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

/// Names longer than [`MAX_NAME_LEN`](interstice_abi::limits::MAX_NAME_LEN) are refused.
fn check_names(names: &[&String]) -> Result<(), DecodeError> {
    let limit = interstice_abi::limits::MAX_NAME_LEN;
    match names.iter().find(|n| n.len() > limit) {
        Some(long) => Err(DecodeError::Invalid(format!(
            "a name of {} bytes (names are at most {limit})",
            long.len()
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use interstice_abi::{FieldDef, Persistence, TableSchema, ValueType};

    #[test]
    fn names_longer_than_any_schema_allows_are_refused() {
        let call = |module: String| Message::CallReducer {
            request: 1,
            module,
            reducer: "r".into(),
            args: Vec::new(),
        };
        let long = "m".repeat(interstice_abi::limits::MAX_NAME_LEN + 1);
        let refused = Message::decode(&call(long).encode().unwrap()).unwrap_err();
        assert!(refused.to_string().contains("at most 128"), "{refused}");
        let fits = "m".repeat(interstice_abi::limits::MAX_NAME_LEN);
        assert!(Message::decode(&call(fits).encode().unwrap()).is_ok());
    }

    /// A `Schema` message whose one field type is `Vec(Vec(…))` `depth` levels deep (built by
    /// splicing: encoding such a type would itself need a deep stack).
    fn deep_schema_message(depth: usize) -> Vec<u8> {
        let schema = ModuleSchema {
            name: "m".into(),
            tables: vec![TableSchema {
                name: "t".into(),
                row_type: "T".into(),
                fields: vec![FieldDef {
                    name: "f".into(),
                    ty: ValueType::Named("ZZZZZZ".into()),
                }],
                primary_key: 0,
                primary_key_auto_inc: false,
                indexes: vec![],
                persistence: Persistence::Logged,
            }],
            ..ModuleSchema::default()
        };
        let encoded = Message::Schema {
            request: 1,
            modules: vec![schema],
        }
        .encode()
        .unwrap();
        let marker = [16u8, 6, b'Z', b'Z', b'Z', b'Z', b'Z', b'Z'];
        let at = encoded
            .windows(marker.len())
            .position(|w| w == marker)
            .unwrap();
        let mut hostile = encoded[..at].to_vec();
        hostile.extend(std::iter::repeat_n(13u8, depth)); // Vec(
        hostile.push(4); // U32
        hostile.extend(&encoded[at + marker.len()..]);
        hostile
    }

    #[test]
    fn a_deep_schema_message_is_refused_on_a_small_stack() {
        let hostile = deep_schema_message(200_000);
        assert!(hostile.len() < MAX_MESSAGE_BYTES);
        let outcome = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || Message::decode(&hostile))
            .unwrap()
            .join()
            .expect("the decoding thread survived");
        match outcome {
            Err(DecodeError::Malformed(why)) => assert!(why.contains("decoding limit"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // The same message with a shallow type decodes.
        assert!(Message::decode(&deep_schema_message(3)).is_ok());
    }
}
