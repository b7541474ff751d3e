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
//! The table is bounded per peer: past [`MAX_ROWS_PER_PEER`] rows of one peer, that peer's
//! lowest key goes (in the same transaction) — its oldest request; callers resend only requests
//! they have no answer for, which are always recent. One peer's traffic never evicts another
//! peer's window (it used to: the globally lowest key went). Past [`MAX_ROWS`] rows in all, the
//! globally lowest goes too, so the table stays bounded whatever the number of peers.

use crate::db::tx::Undo;
use crate::db::{Database, Table};
use interstice_abi::{Value, ValueType};

/// Name of the host-managed table of every module.
pub const ANSWERED_TABLE: &str = "__answered";
const ROW_TYPE: &str = "__AnsweredCall";
/// Most rows kept per peer and module: a peer's exactly-once window (the network layer keeps
/// a window of the same size in memory). It must hold every call a caller may still resend,
/// and a caller may hold more than its streams: calls answered `Busy` wait at the caller,
/// and its link resends them while newer ones go out (a window of 8,192, tried, could refuse
/// such a resend as too old).
pub const MAX_ROWS_PER_PEER: usize = 65_536;
/// Most rows kept per module, all peers together. Past it the lowest key goes, whoever's it
/// is.
pub const MAX_ROWS: usize = 16 * MAX_ROWS_PER_PEER;
/// The `peer` column, indexed to count and evict one peer's rows.
const PEER: u16 = 1;

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
        vec![interstice_abi::IndexSchema {
            field: PEER,
            kind: interstice_abi::IndexKind::BTree,
            unique: false,
            auto_inc: false,
        }],
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
    let peer_key = Value::String(peer.to_string());
    if table.count_where(PEER, &peer_key) > MAX_ROWS_PER_PEER {
        let oldest = table.first_key_where(PEER, &peer_key).cloned();
        if let Some(oldest) = oldest {
            table.delete(&oldest, undo, index as u32);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_peers_traffic_never_evicts_anothers_window() {
        let mut tables = vec![new_table()];
        let mut undo = Vec::new();
        // "a" sorts before "b": the old eviction (globally lowest key) took "a"'s rows.
        record(&mut tables, &mut undo, "a", 1);
        for request in 0..(MAX_ROWS_PER_PEER as u64 + 10) {
            record(&mut tables, &mut undo, "b", request);
        }
        let table = &tables[0];
        let b = Value::String("b".into());
        assert_eq!(table.count_where(PEER, &b), MAX_ROWS_PER_PEER);
        assert_eq!(table.count_where(PEER, &Value::String("a".into())), 1);
        // "b" lost its own oldest requests.
        assert_eq!(
            table.first_key_where(PEER, &b),
            Some(&Value::String(key("b", 10)))
        );
    }
}
