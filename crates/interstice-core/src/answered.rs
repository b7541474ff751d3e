//! Remote reducer calls a node has committed, remembered durably so a call is never run twice —
//! not even when the node crashes after committing it and before its answer reached the caller,
//! who then sends it again.
//!
//! Each module has a host-managed table, `__answered`, which guests cannot reach. When a call
//! from a peer runs, the row `(peer, request id)` is inserted into the called module's table
//! inside the call's own transaction: it commits (and is journaled, snapshotted, recovered) with
//! the call's writes, or is rolled back with them. The network layer seeds its per-peer
//! de-duplication window from these rows, so a resent request is answered, not run.
//!
//! The table is bounded: past [`MAX_ROWS`] rows the lowest key goes (in the same transaction).
//! Keys order by peer, then request id, so it is that peer's oldest request; callers resend only
//! requests they have no answer for, which are always recent.

use crate::db::tx::Undo;
use crate::db::{Database, Table};
use interstice_abi::{Value, ValueType};

/// Name of the host-managed table of every module.
pub const ANSWERED_TABLE: &str = "__answered";
const ROW_TYPE: &str = "__AnsweredCall";
/// Most rows kept per module.
pub const MAX_ROWS: usize = 65_536;

/// A new, empty table: `key` (`<peer>:<request, 20 digits>`), `peer`, `request`.
pub fn new_table() -> Table {
    crate::db::host_table(
        ANSWERED_TABLE,
        ROW_TYPE,
        &[
            ("key", ValueType::String),
            ("peer", ValueType::String),
            ("request", ValueType::U64),
        ],
        0,
        false,
        Vec::new(),
    )
}

fn key(peer: &str, request: u64) -> String {
    format!("{peer}:{request:020}")
}

/// Records, inside the running transaction (`undo`), that `peer`'s request `request` ran in
/// the module whose tables are `tables`.
pub(crate) fn record(tables: &mut [Table], undo: &mut Vec<Undo>, peer: &str, request: u64) {
    let Some(index) = tables
        .iter()
        .position(|t| t.schema().name == ANSWERED_TABLE)
    else {
        return;
    };
    let table = &mut tables[index];
    let row = vec![
        Value::String(key(peer, request)),
        Value::String(peer.to_string()),
        Value::U64(request),
    ];
    let mut scratch = Vec::new();
    if let Err(e) = table.insert(row, undo, index as u32, &mut scratch) {
        // Only a repeat could collide, and repeats are answered before they get here.
        tracing::warn!(target: "interstice", "request {request} of {peer} recorded twice: {e}");
    }
    if table.len() > MAX_ROWS {
        let lowest = table.rows().next().and_then(|r| r.first().cloned());
        if let Some(lowest) = lowest {
            table.delete(&lowest, undo, index as u32);
        }
    }
}

/// The request ids of `peer` committed in any module of `db`, in increasing order.
pub fn answered_by(db: &Database, peer: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    let prefix = format!("{peer}:");
    for name in db.module_names() {
        let Some(table) = db.module(name).and_then(|m| m.by_name(ANSWERED_TABLE)) else {
            continue;
        };
        // Keys start with the peer: its rows are one range.
        let start = Value::String(prefix.clone());
        for row in table.rows_after(Some(&start)) {
            match (row.first(), row.get(2)) {
                (Some(Value::String(k)), Some(Value::U64(request))) if k.starts_with(&prefix) => {
                    ids.push(*request);
                }
                _ => break,
            }
        }
    }
    ids.sort_unstable();
    ids
}
