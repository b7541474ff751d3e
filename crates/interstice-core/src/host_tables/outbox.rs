//! The durable outbox: reducer calls to other nodes, kept until they are answered.
//!
//! A transaction that calls a reducer on another node (`call_module` with
//! `CallKind::RemoteReducer`) inserts the call into its module's host-managed `__outbox`
//! table, inside the transaction: the call is
//! journaled, made durable and recovered with the transaction's other writes, or rolled back
//! with them. Only once that commit is durable is the call handed to the network
//! ([`Modules::take_remote_calls`](crate::Modules::take_remote_calls)); when its answer
//! arrives, [`Modules::remote_call_answered`](crate::Modules::remote_call_answered) deletes the
//! row (a journaled bookkeeping change). On start, every row still there is sent again with
//! its request id, so a caller that crashed after committing and before sending, or before
//! hearing the answer, still delivers the call — and the other node, which remembers the ids
//! it ran (`answered`), runs it exactly once.
//!
//! Request ids are numbered by the node from the wall clock in microseconds at start, above
//! every id still in an outbox, so they keep increasing across restarts.

use crate::db::tx::Undo;
use crate::db::{Database, Table};
use interstice_abi::{Value, ValueType};

/// A reducer call a module sends to another node (`ctx.call_remote_reducer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCall {
    /// Its request id, unique on this node and increasing across restarts; the other node
    /// runs an id at most once (this outbox).
    pub request: u64,
    /// The calling module.
    pub from: String,
    /// The node's name, as the calling module declares it.
    pub node: String,
    /// Its address, from the calling module's node dependencies.
    pub address: String,
    /// The module on that node.
    pub module: String,
    /// The reducer.
    pub reducer: String,
    /// Encoded arguments.
    pub args: Vec<u8>,
}

/// Name of the host-managed table of every module.
pub const OUTBOX_TABLE: &str = "__outbox";
const ROW_TYPE: &str = "__OutboxCall";
const REQUEST: usize = 0;
const NODE: usize = 1;
const ADDRESS: usize = 2;
const MODULE: usize = 3;
const REDUCER: usize = 4;
const ARGS: usize = 5;

/// A new, empty table: `request` (key), `node`, `address`, `module`, `reducer`, `args`.
pub fn new_table() -> Table {
    crate::db::host_table(
        OUTBOX_TABLE,
        ROW_TYPE,
        &[
            ("request", ValueType::U64),
            ("node", ValueType::String),
            ("address", ValueType::String),
            ("module", ValueType::String),
            ("reducer", ValueType::String),
            ("args", ValueType::Vec(Box::new(ValueType::U8))),
        ],
        0,
        false,
        Vec::new(),
    )
}

/// Keeps `call` (its request id set) in the outbox of the module whose tables are `tables`,
/// inside the running transaction (`undo`).
pub(crate) fn record(tables: &mut [Table], undo: &mut Vec<Undo>, call: &RemoteCall) {
    let Some(index) = tables.iter().position(|t| t.schema().name == OUTBOX_TABLE) else {
        return;
    };
    let row = vec![
        Value::U64(call.request),
        Value::String(call.node.clone()),
        Value::String(call.address.clone()),
        Value::String(call.module.clone()),
        Value::String(call.reducer.clone()),
        crate::db::bytes_value(&call.args),
    ];
    let mut scratch = Vec::new();
    if let Err(e) = tables[index].insert(row, undo, index as u32, &mut scratch) {
        // Ids are handed out once each: a collision is a bug, not a guest's doing.
        tracing::error!(target: "interstice", "remote call {} kept twice: {e}", call.request);
    }
}

/// Takes the row of an answered call out of `module`'s outbox, in a bookkeeping transaction
/// (`undo`); whether it was there.
pub(crate) fn remove(tables: &mut [Table], undo: &mut Vec<Undo>, request: u64) -> bool {
    let Some(index) = tables.iter().position(|t| t.schema().name == OUTBOX_TABLE) else {
        return false;
    };
    tables[index].delete(&Value::U64(request), undo, index as u32)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

/// Every call still waiting in an outbox of `db`, in request order.
pub fn pending(db: &Database) -> Vec<RemoteCall> {
    let mut calls = Vec::new();
    for name in db.module_names() {
        let Some(table) = db.module(name).and_then(|m| m.by_name(OUTBOX_TABLE)) else {
            continue;
        };
        for row in table.rows() {
            let Some(Value::U64(request)) = row.get(REQUEST) else {
                continue;
            };
            let args = row
                .get(ARGS)
                .map(crate::db::value_bytes)
                .unwrap_or_default();
            calls.push(RemoteCall {
                request: *request,
                from: name.to_string(),
                node: row.get(NODE).map(text).unwrap_or_default(),
                address: row.get(ADDRESS).map(text).unwrap_or_default(),
                module: row.get(MODULE).map(text).unwrap_or_default(),
                reducer: row.get(REDUCER).map(text).unwrap_or_default(),
                args,
            });
        }
    }
    calls.sort_by_key(|c| c.request);
    calls
}

/// The first request id a node may hand out now: above every id still waiting in `db` and
/// at least the wall clock in microseconds.
pub fn first_free_id(db: &Database) -> u64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    let waiting = pending(db).last().map_or(0, |c| c.request + 1);
    clock.max(waiting)
}
