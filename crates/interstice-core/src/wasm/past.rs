//! `table_as_of`: a query reads one of its module's logged tables as it was after a past
//! transaction, from the node's history.
//!
//! The sandbox does not know where history lives: the runtime lends each outermost query a
//! [`PastReads`] (storage's history reader) in [`HostState::past`]. Reducers, and every call
//! nested in another, get none: a reducer's outcome must depend on recorded state alone (a
//! replay makes the same changes), and what history is kept is the node owner's choice.

use super::host_calls::{answer_error, guest_bytes, memory_and_state, trap};
use super::meter::{self, OutOfFuel};
use super::state::HostState;
use crate::db::Table;
use crate::db::table::Row;
use interstice_abi::codec::write_varint;
use interstice_abi::protocol::{SCAN_PAGE_ROWS, TableOp};
use interstice_abi::{HostError, Value};
use wasmtime::Caller;

/// Why a past read gives no rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PastReadError {
    /// It cannot be answered; the text says why (answered as [`HostError::NotPermitted`]).
    Refused(String),
    /// It would read more than the call's fuel pays for (the call runs out of fuel).
    OverBudget,
}

/// What a past read read, which the call pays for: [`FUEL_PER_ROW`](super::meter::FUEL_PER_ROW)
/// a version, [`FUEL_PER_BYTE`](super::meter::FUEL_PER_BYTE) a byte of history read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PastCost {
    /// Versions of the table's rows read.
    pub versions: u64,
    /// Bytes of history files and log read (whole files, or the records an index named).
    pub bytes: u64,
}

/// Where a query's past reads are answered: the node's history.
pub trait PastReads: Send + Sync {
    /// The row of `module`'s `table` under `key` after transaction `seq` (`None`: there was
    /// none), reading no more than `budget` (fuel) pays for; with what it read.
    ///
    /// # Errors
    ///
    /// [`PastReadError`].
    fn row_as_of(
        &self,
        module: &str,
        table: &Table,
        key: &Value,
        seq: u64,
        budget: u64,
    ) -> Result<(Option<Row>, PastCost), PastReadError>;

    /// Every row of `module`'s `table` after transaction `seq`, in primary-key order, reading
    /// no more than `budget` (fuel) pays for; with what it read.
    ///
    /// # Errors
    ///
    /// [`PastReadError`].
    fn table_as_of(
        &self,
        module: &str,
        table: &Table,
        seq: u64,
        budget: u64,
    ) -> Result<(Vec<Row>, PastCost), PastReadError>;
}

/// The past reads of a node that keeps no data directory: refused.
#[derive(Debug, Clone, Copy)]
pub struct NoHistory;

/// What [`NoHistory`] answers.
const NO_HISTORY: &str = "this node keeps no data directory, so no history to read the past from";

impl PastReads for NoHistory {
    fn row_as_of(
        &self,
        _: &str,
        _: &Table,
        _: &Value,
        _: u64,
        _: u64,
    ) -> Result<(Option<Row>, PastCost), PastReadError> {
        Err(PastReadError::Refused(NO_HISTORY.into()))
    }

    fn table_as_of(
        &self,
        _: &str,
        _: &Table,
        _: u64,
        _: u64,
    ) -> Result<(Vec<Row>, PastCost), PastReadError> {
        Err(PastReadError::Refused(NO_HISTORY.into()))
    }
}

/// Why a call gets no past reads at all.
const NOT_HERE: &str = "past reads (`ctx.as_of`) are for queries called from outside a \
     transaction (a game, a tool, a peer), not in reducers or calls they make: a reducer's \
     outcome depends on recorded state only";

/// The `table_as_of` import.
pub(crate) fn host_table_as_of(
    mut caller: Caller<'_, HostState>,
    seq: i64,
    op: u32,
    table: u32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<i64> {
    // What is read is bounded by the fuel left once what is owed is paid.
    meter::settle(&mut caller)?;
    let budget = caller.get_fuel()?;
    let (memory, state) = memory_and_state(&mut caller)?;
    if !state.in_call {
        return Err(trap(
            "table reads are only allowed inside a reducer or query",
        ));
    }
    let payload = guest_bytes(memory, ptr, len)?;
    state.meter.bytes(payload.len());
    let answer = match past_op(state, seq as u64, op, table, payload, budget) {
        Ok(answer) => answer,
        Err(OutOfFuel) => return Err(meter::out_of_fuel(OutOfFuel)),
    };
    let response = state.response.len();
    state.meter.bytes(response);
    meter::settle_if_due(&mut caller)?;
    Ok(answer)
}

/// `table_as_of` for a call of any kind (a natively loaded module's too): leaves the response
/// in `state.response` and answers like `table_op`; reads no more than `budget` (fuel) pays
/// for, and owes what it read to the meter.
pub(crate) fn past_op(
    state: &mut HostState,
    seq: u64,
    op: u32,
    table_id: u32,
    payload: &[u8],
    budget: u64,
) -> Result<i64, OutOfFuel> {
    state.response.clear();
    let mut out = std::mem::take(&mut state.response);
    let result = read_past(state, seq, op, table_id, payload, budget, &mut out);
    state.response = out;
    match result {
        Ok(cost) => {
            state.meter.rows(cost.versions.max(1));
            state
                .meter
                .bytes(usize::try_from(cost.bytes).unwrap_or(usize::MAX));
            Ok(state.response.len() as i64)
        }
        Err(PastReadError::OverBudget) => Err(OutOfFuel),
        Err(PastReadError::Refused(why)) => Ok(answer_error(state, &HostError::NotPermitted(why))),
    }
}

/// The read itself; answers what it read (at least the rows it returned).
fn read_past(
    state: &HostState,
    seq: u64,
    op: u32,
    table_id: u32,
    payload: &[u8],
    budget: u64,
    out: &mut Vec<u8>,
) -> Result<PastCost, PastReadError> {
    let refused = |e: HostError| PastReadError::Refused(e.to_string());
    let op = TableOp::from_raw(op).ok_or_else(|| refused(HostError::UnknownOp(op)))?;
    let past = state
        .past
        .as_ref()
        .ok_or_else(|| PastReadError::Refused(NOT_HERE.into()))?;
    // Only the module's own tables: host-managed ones have no guest id.
    let table = state
        .tx
        .tables
        .guest_table(table_id)
        .and_then(|_| state.tx.tables.tables.get(table_id as usize))
        .ok_or_else(|| refused(HostError::NoSuchTable(table_id)))?;
    match op {
        TableOp::Get => {
            let key = table.decode_pk(payload).map_err(refused)?;
            let (row, cost) = past.row_as_of(&state.module, table, &key, seq, budget)?;
            match row {
                Some(row) => {
                    out.push(1);
                    table.encode_row(&row, out);
                }
                None => out.push(0),
            }
            Ok(cost)
        }
        TableOp::Scan => {
            let after = match payload.split_first() {
                Some((0, [])) => None,
                Some((1, key)) => Some(table.decode_pk(key).map_err(refused)?),
                _ => return Err(refused(HostError::InvalidPayload("scan cursor".into()))),
            };
            let (rows, cost) = past.table_as_of(&state.module, table, seq, budget)?;
            let pk = usize::from(table.schema().primary_key);
            let page: Vec<&Row> = rows
                .iter()
                .filter(|row| after.as_ref().is_none_or(|a| row.get(pk) > Some(a)))
                .take(SCAN_PAGE_ROWS as usize)
                .collect();
            write_varint(out, page.len() as u64);
            for row in &page {
                table.encode_row(row, out);
            }
            Ok(PastCost {
                versions: cost.versions.max(page.len() as u64),
                ..cost
            })
        }
        other => Err(PastReadError::Refused(format!(
            "`{other:?}` is not a past read: a table's past is read with Get and Scan only"
        ))),
    }
}
