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
/// a window of the same size in memory). A caller resends only calls it has no answer for,
/// and every call committed after such a call was outstanding beside it; a peer can have at
/// most 8 connections (the default `PeerBudget::connections_per_peer`) of 1,024 streams each
/// (`transport::MAX_STREAMS`) outstanding, so 8,192 rows cover every call it can resend.
pub const MAX_ROWS_PER_PEER: usize = 8_192;
/// Most rows kept per module, all peers together: the full windows of 64 peers (the default
/// number of strangers an open node admits). Past it the lowest key goes, whoever's it is.
pub const MAX_ROWS: usize = 64 * MAX_ROWS_PER_PEER;
/// Rows a call may evict under each bound: one more than it adds, so a table over its bounds
/// comes back under them one row a call.
const EVICTIONS_PER_CALL: usize = 2;
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
    // Up to two rows go per call: a table over its bounds (kept under larger bounds by an
    // earlier version) shrinks by one a call, never in one large transaction.
    for _ in 0..EVICTIONS_PER_CALL {
        if table.count_where(PEER, &peer_key) <= MAX_ROWS_PER_PEER {
            break;
        }
        let Some(oldest) = table.first_key_where(PEER, &peer_key).cloned() else {
            break;
        };
        table.delete(&oldest, undo, index as u32);
    }
    for _ in 0..EVICTIONS_PER_CALL {
        if table.len() <= MAX_ROWS {
            break;
        }
        let Some(lowest) = table.rows().next().and_then(|r| r.first().cloned()) else {
            break;
        };
        table.delete(&lowest, undo, index as u32);
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

    #[test]
    fn a_window_kept_larger_by_an_earlier_version_shrinks_one_row_a_call() {
        let mut tables = vec![new_table()];
        let mut undo = Vec::new();
        let b = Value::String("b".into());
        // As an earlier version with a larger window left it: 100 rows over the bound.
        let over = MAX_ROWS_PER_PEER + 100;
        for request in 0..over as u64 {
            let row = vec![
                Value::String(key("b", request)),
                b.clone(),
                Value::U64(request),
            ];
            tables[0]
                .insert(row, &mut undo, 0, &mut Vec::new())
                .unwrap();
        }
        for (call, request) in (over as u64..).take(40).enumerate() {
            record(&mut tables, &mut undo, "b", request);
            assert_eq!(tables[0].count_where(PEER, &b), over - call - 1);
        }
        for request in over as u64 + 40..over as u64 + 200 {
            record(&mut tables, &mut undo, "b", request);
        }
        assert_eq!(tables[0].count_where(PEER, &b), MAX_ROWS_PER_PEER);
    }
}
