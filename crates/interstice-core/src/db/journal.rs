//! The journal: committed changes, framed as log records, waiting to be written to disk.
//!
//! A record is `len: u32 LE | crc32c(payload): u32 LE | payload`, where the payload is
//!
//! ```text
//! seq: varint | time: varint (logical ms) | module: str | reducer: str | args: bytes
//!   | groups: varint count, then per group (one per module the transaction changed)
//!     module: str | changes: varint count, then per change
//!       table: str | op: u8 (1 = put row, 2 = delete by primary key) | data: bytes
//!   | caller: u8 (0 = a call made on this node, 1 = a peer's call) then, for 1,
//!       the peer's node id: str
//!   | invocation: u8 (0 = none: host bookkeeping, 1 = a reducer call) then, for 1,
//!       the call's place in the node's sequence of invocations: varint
//! ```
//!
//! (`str`/`bytes` are a varint length then the bytes.) The caller is absent from records
//! written before it was added; they read as made on this node. The invocation (which, with
//! the time, seeds the call's random numbers, so a replay draws the same ones) is absent from
//! records written before it was added. Changes are physical: replaying them
//! rebuilds the state without running any module code. Each row the transaction touched
//! appears once, with its state after the transaction (its net change). Only changes to
//! non-ephemeral tables are journaled; a transaction that touched nothing durable writes no
//! record.

use super::table::Table;
use super::tx::Undo;
use interstice_abi::Persistence;
use interstice_abi::codec::{write_str, write_varint};

/// Change op: the row now stored under its primary key.
pub const OP_PUT: u8 = 1;
/// Change op: no row under this primary key.
pub const OP_DELETE: u8 = 2;
/// Bytes of a record header (length and checksum).
pub const HEADER_LEN: usize = 8;
/// Largest record payload accepted when reading a log.
pub const MAX_RECORD_LEN: usize = 256 * 1024 * 1024;

/// What caused a transaction: when it ran, the reducer call and who made it. Every record
/// keeps it, so each change in the log and in history knows its cause.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    /// The logical time it ran at, in milliseconds.
    pub time: u64,
    /// The module whose reducer ran.
    pub module: &'a str,
    /// The reducer (or, for host bookkeeping, what it was).
    pub reducer: &'a str,
    /// Its encoded arguments.
    pub args: &'a [u8],
    /// The node id of the peer whose call it ran; `None` for a call made on this node.
    pub caller: Option<&'a str>,
    /// The call's place in the node's sequence of invocations; `None` for host bookkeeping.
    pub invocation: Option<u64>,
}

/// The changes one module made in a transaction.
#[derive(Clone, Copy)]
pub struct Group<'a> {
    /// The module.
    pub module: &'a str,
    /// Its tables after the transaction.
    pub tables: &'a [Table],
    /// Its undo log for the transaction.
    pub undo: &'a [Undo],
}

/// A journal position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalMark {
    len: usize,
    records: u64,
    next_seq: u64,
}

/// A transaction whose record would be larger than the log accepts: refused before anything of
/// it is written or seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the transaction's log record would be {len} bytes, over the limit of {limit} \
     (StorageConfig::max_record_bytes): rolled back; write less in one transaction"
)]
pub struct RecordTooLarge {
    /// The payload's size.
    pub len: usize,
    /// The limit.
    pub limit: usize,
}

/// Framed records not yet handed to storage.
#[derive(Debug)]
pub struct Journal {
    buffer: Vec<u8>,
    /// Largest record payload framed ([`MAX_RECORD_LEN`] at most).
    limit: usize,
    records: u64,
    next_seq: u64,
    scratch: Vec<u8>,
    changes: Vec<u8>,
}

/// Appends a record's closing fields, its caller and its invocation (see the module docs).
pub fn write_caller(out: &mut Vec<u8>, caller: Option<&str>, invocation: Option<u64>) {
    match caller {
        None => out.push(0),
        Some(node) => {
            out.push(1);
            write_str(out, node);
        }
    }
    match invocation {
        None => out.push(0),
        Some(n) => {
            out.push(1);
            write_varint(out, n);
        }
    }
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

impl Default for Journal {
    fn default() -> Journal {
        Journal {
            buffer: Vec::new(),
            limit: MAX_RECORD_LEN,
            records: 0,
            next_seq: 0,
            scratch: Vec::new(),
            changes: Vec::new(),
        }
    }
}

impl Journal {
    /// A journal whose next record gets sequence number `next_seq`.
    pub fn starting_at(next_seq: u64) -> Journal {
        Journal {
            next_seq,
            ..Journal::default()
        }
    }

    /// Refuses records whose payload is over `limit` bytes (at most [`MAX_RECORD_LEN`], what
    /// recovery reads).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.min(MAX_RECORD_LEN);
    }

    /// The largest record payload framed.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Sequence number of the next record.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// A position to [`rewind`](Journal::rewind) to.
    pub fn mark(&self) -> JournalMark {
        JournalMark {
            len: self.buffer.len(),
            records: self.records,
            next_seq: self.next_seq,
        }
    }

    /// Forgets every record framed since `mark` (used when a module's load is undone).
    pub fn rewind(&mut self, mark: JournalMark) {
        if mark.len <= self.buffer.len() {
            self.buffer.truncate(mark.len);
            self.records = mark.records;
            self.next_seq = mark.next_seq;
        }
    }

    /// Records waiting.
    pub fn pending_records(&self) -> u64 {
        self.records
    }

    /// Takes the framed records, leaving the buffer empty (its capacity is reused when it is
    /// handed back with [`Journal::recycle`]).
    pub fn take(&mut self) -> Vec<u8> {
        self.records = 0;
        std::mem::take(&mut self.buffer)
    }

    /// Gives a written buffer back so its allocation is reused.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.buffer.is_empty() {
            buffer.clear();
            self.buffer = buffer;
        }
    }

    /// Frames one committed transaction, described by the undo log of each module it changed
    /// (the called module first, then modules it called) and their tables after it. A record
    /// over the limit is not framed: the caller rolls the transaction back.
    pub fn record(
        &mut self,
        cause: &Cause<'_>,
        groups: &[Group<'_>],
    ) -> Result<(), RecordTooLarge> {
        let start = self.buffer.len();
        self.buffer.extend_from_slice(&[0; HEADER_LEN]);
        let out = &mut self.buffer;
        write_varint(out, self.next_seq);
        write_varint(out, cause.time);
        write_str(out, cause.module);
        write_str(out, cause.reducer);
        write_bytes(out, cause.args);
        let mut group_count = 0u64;
        let mut total = 0u64;
        // Counts come first on disk but are known last: collect the groups aside.
        let body = &mut self.changes;
        body.clear();
        for group in groups {
            let (count, encoded) = Self::changes(group, &mut self.scratch);
            if count == 0 {
                continue;
            }
            write_str(body, group.module);
            write_varint(body, count);
            body.extend_from_slice(&encoded);
            group_count += 1;
            total += count;
        }
        if total == 0 {
            self.buffer.truncate(start);
            return Ok(());
        }
        let out = &mut self.buffer;
        write_varint(out, group_count);
        let mut caller = Vec::new();
        write_caller(&mut caller, cause.caller, cause.invocation);
        let payload_len = out.len() - start - HEADER_LEN + self.changes.len() + caller.len();
        if payload_len > self.limit {
            self.buffer.truncate(start);
            return Err(RecordTooLarge {
                len: payload_len,
                limit: self.limit,
            });
        }
        out.extend_from_slice(&self.changes);
        out.extend_from_slice(&caller);
        let crc = crc32c::crc32c(&out[start + HEADER_LEN..]);
        out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        self.next_seq += 1;
        self.records += 1;
        Ok(())
    }

    /// The encoded changes of one group, and how many there are.
    fn changes(group: &Group<'_>, scratch: &mut Vec<u8>) -> (u64, Vec<u8>) {
        let tables = group.tables;
        let durable = |t: u32| {
            tables
                .get(t as usize)
                .filter(|t| t.schema().persistence != Persistence::Ephemeral)
        };
        let mut encoded = Vec::new();
        let mut count = 0u64;
        // One change per row: its state after the transaction.
        for touched in super::changes::touched(tables, group.undo) {
            let Some(table) = durable(touched.table) else {
                continue;
            };
            scratch.clear();
            let op = match table.get(touched.pk) {
                None => {
                    table.encode_pk(touched.pk, scratch);
                    OP_DELETE
                }
                Some(row) => {
                    table.encode_row(row, scratch);
                    OP_PUT
                }
            };
            write_str(&mut encoded, &table.schema().name);
            encoded.push(op);
            write_bytes(&mut encoded, scratch);
            count += 1;
        }
        (count, encoded)
    }
}
