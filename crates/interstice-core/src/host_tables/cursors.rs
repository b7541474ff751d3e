//! Where each subscriber of another node's table stands, remembered durably, so a subscriber
//! node that restarts neither misses events nor applies one twice.
//!
//! Each module has a host-managed table, `__cursors`, which guests cannot reach: one row per
//! subscriber reducer and remote table (`key`: `<reducer>@<node>.<module>.<table>`) holding the
//! number of the last event that reducer applied. The row is written inside the subscriber
//! invocation's own transaction, so it commits with what the reducer did, or not at all. An
//! event at or below the stored number is a repeat (it was resent after a reconnect or a
//! restart) and is not run again; the network layer resubscribes from the lowest stored number.

use crate::db::tx::Undo;
use crate::db::{Database, Table};
use interstice_abi::{Value, ValueType};

/// Name of the host-managed table of every module.
pub const CURSORS_TABLE: &str = "__cursors";
const ROW_TYPE: &str = "__Cursor";

/// A new, empty table: `key`, `seq`.
pub fn new_table() -> Table {
    crate::db::host_table(
        CURSORS_TABLE,
        ROW_TYPE,
        &[("key", ValueType::String), ("seq", ValueType::U64)],
        0,
        false,
        Vec::new(),
    )
}

/// The key of a subscriber reducer's position in a remote table's stream.
pub fn key(reducer: &str, node: &str, module: &str, table: &str) -> String {
    format!("{reducer}@{node}.{module}.{table}")
}

fn stored(table: &Table, key: &str) -> Option<u64> {
    match table.get(&Value::String(key.to_string()))?.get(1) {
        Some(Value::U64(seq)) => Some(*seq),
        _ => None,
    }
}

/// The last event number applied under `key` in `module`, if any.
pub fn position(db: &Database, module: &str, key: &str) -> Option<u64> {
    stored(db.module(module)?.by_name(CURSORS_TABLE)?, key)
}

/// Inside the running transaction: `false` when event `seq` was applied already (skip it);
/// otherwise records it as applied and returns `true`.
pub(crate) fn advance(tables: &mut [Table], undo: &mut Vec<Undo>, key: &str, seq: u64) -> bool {
    let Some(index) = tables.iter().position(|t| t.schema().name == CURSORS_TABLE) else {
        return true;
    };
    let table = &mut tables[index];
    let row = vec![Value::String(key.to_string()), Value::U64(seq)];
    let mut scratch = Vec::new();
    let written = match stored(table, key) {
        Some(done) if done >= seq => return false,
        Some(_) => table.update(row, undo, index as u32, None).map(drop),
        None => table.insert(row, undo, index as u32, &mut scratch),
    };
    if let Err(e) = written {
        tracing::warn!(target: "interstice", "cannot record cursor {key} at {seq}: {e}");
    }
    true
}
