//! The host functions a module imports, and the table operations behind `table_op`.

use super::meter::{self, OutOfFuel};
use super::past::host_table_as_of;
use super::state::{GuestLog, HostState, MAX_MESSAGE_LEN, MAX_PENDING_LOGS};
use crate::config::Quotas;
use crate::db::table::Row;
use interstice_abi::codec::write_varint;
use interstice_abi::protocol::{IMPORT_MODULE, SCAN_PAGE_ROWS, TableOp, imports};
use interstice_abi::{HostError, Value};
use std::ops::Bound;
use wasmtime::{Caller, Linker};

/// Bytes the varint of `v` takes.
const fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Longest payload a guest may pass to one host call.
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

pub(crate) fn trap(message: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::msg(message.into())
}

/// Copies `len` bytes at `ptr` out of guest memory, bounds-checked.
pub(crate) fn guest_bytes(memory: &[u8], ptr: u32, len: u32) -> wasmtime::Result<&[u8]> {
    let (start, len) = (ptr as usize, len as usize);
    if len > MAX_PAYLOAD {
        return Err(trap(format!(
            "host call payload of {len} bytes exceeds {MAX_PAYLOAD}"
        )));
    }
    start
        .checked_add(len)
        .and_then(|end| memory.get(start..end))
        .ok_or_else(|| trap("host call pointer out of bounds"))
}

pub(crate) fn memory_and_state<'a>(
    caller: &'a mut Caller<'_, HostState>,
) -> wasmtime::Result<(&'a mut [u8], &'a mut HostState)> {
    let memory = caller
        .data()
        .memory
        .ok_or_else(|| trap("module has no memory"))?;
    Ok(memory.data_and_store_mut(caller))
}

/// Runs a host function that takes a guest payload of `len` bytes and may leave a response,
/// charging both to the call's fuel ([`meter`]).
fn metered(
    caller: &mut Caller<'_, HostState>,
    len: u32,
    run: impl FnOnce(&mut Caller<'_, HostState>) -> wasmtime::Result<i64>,
) -> wasmtime::Result<i64> {
    caller.data_mut().meter.bytes(len as usize);
    let answer = run(caller)?;
    let response = caller.data().response.len();
    caller.data_mut().meter.bytes(response);
    meter::settle_if_due(caller)?;
    Ok(answer)
}

/// What ends a table operation early.
enum Refusal {
    /// An ordinary error, answered to the guest.
    Host(HostError),
    /// The guest cannot pay for the rows the operation would touch: the call traps.
    OutOfFuel,
}

impl From<HostError> for Refusal {
    #[inline]
    fn from(error: HostError) -> Refusal {
        Refusal::Host(error)
    }
}

impl From<OutOfFuel> for Refusal {
    fn from(_: OutOfFuel) -> Refusal {
        Refusal::OutOfFuel
    }
}

/// Operations whose rows are not bounded by their payload: they are limited to what the
/// call's remaining fuel pays for before they start.
fn touches_many(op: u32) -> bool {
    matches!(
        TableOp::from_raw(op),
        Some(TableOp::Clear | TableOp::Filter | TableOp::Range)
    )
}

fn text(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(MAX_MESSAGE_LEN)];
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `call_module` host function, which the runtime provides: it runs other modules, which
/// the sandbox below it cannot reach.
pub type CallModule = fn(&mut Caller<'_, HostState>, u32, u32, u32) -> wasmtime::Result<i64>;

/// Registers every host function in `linker`, with `call_module` as the cross-module call.
pub fn link(linker: &mut Linker<HostState>, call_module: CallModule) -> wasmtime::Result<()> {
    linker.func_wrap(IMPORT_MODULE, imports::LOG, host_log)?;
    linker.func_wrap(IMPORT_MODULE, imports::PANIC, host_panic)?;
    linker.func_wrap(IMPORT_MODULE, imports::RESOLVE_TABLE, host_resolve_table)?;
    linker.func_wrap(IMPORT_MODULE, imports::TABLE_OP, host_table_op)?;
    linker.func_wrap(IMPORT_MODULE, imports::TAKE_RESPONSE, host_take_response)?;
    linker.func_wrap(IMPORT_MODULE, imports::SCHEDULE, host_schedule)?;
    linker.func_wrap(
        IMPORT_MODULE,
        imports::CANCEL_SCHEDULE,
        |mut caller: Caller<'_, HostState>, id: u64| -> wasmtime::Result<i32> {
            Ok(cancel_schedule(caller.data_mut(), id))
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        imports::NOW,
        |caller: Caller<'_, HostState>| -> i64 { caller.data().now_ms as i64 },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        imports::CALL_MODULE,
        move |mut caller: Caller<'_, HostState>, kind: u32, ptr: u32, len: u32| {
            metered(&mut caller, len, |c| call_module(c, kind, ptr, len))
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        imports::FILE_OP,
        |mut caller: Caller<'_, HostState>, op: u32, ptr: u32, len: u32| {
            metered(&mut caller, len, |c| super::files::file_op(c, op, ptr, len))
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        imports::GPU_SUBMIT,
        |mut caller: Caller<'_, HostState>, ptr: u32, len: u32| {
            metered(&mut caller, len, |c| {
                super::present::gpu_submit(c, ptr, len)
            })
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        imports::AUDIO_WRITE,
        |mut caller: Caller<'_, HostState>, ptr: u32, len: u32| {
            metered(&mut caller, len, |c| {
                super::present::audio_write(c, ptr, len)
            })
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        imports::INPUT_STATE,
        super::present::input_state,
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        imports::CALLER,
        |mut caller: Caller<'_, HostState>| -> i64 { caller_name(caller.data_mut(), false) },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        imports::CALLER_NODE,
        |mut caller: Caller<'_, HostState>| -> i64 { caller_name(caller.data_mut(), true) },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        imports::RANDOM_SEED,
        |caller: Caller<'_, HostState>| -> i64 { caller.data().random_seed as i64 },
    )?;
    linker.func_wrap(IMPORT_MODULE, imports::TABLE_AS_OF, host_table_as_of)?;
    Ok(())
}

/// The `log` import.
fn host_log(
    mut caller: Caller<'_, HostState>,
    level: u32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<()> {
    let (memory, state) = memory_and_state(&mut caller)?;
    log_line(state, level, guest_bytes(memory, ptr, len)?);
    meter::settle_if_due(&mut caller)
}

/// The `panic` import.
fn host_panic(mut caller: Caller<'_, HostState>, ptr: u32, len: u32) -> wasmtime::Result<()> {
    let (memory, state) = memory_and_state(&mut caller)?;
    panic_message(state, guest_bytes(memory, ptr, len)?);
    meter::settle_if_due(&mut caller)
}

/// The `resolve_table` import.
fn host_resolve_table(
    mut caller: Caller<'_, HostState>,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<i32> {
    let (memory, state) = memory_and_state(&mut caller)?;
    Ok(resolve_table(state, guest_bytes(memory, ptr, len)?))
}

/// The `table_op` import.
fn host_table_op(
    mut caller: Caller<'_, HostState>,
    op: u32,
    table: u32,
    field: u32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<i64> {
    // Work on many rows is bounded by the fuel left once what is owed is paid.
    let affordable = if touches_many(op) {
        meter::settle(&mut caller)?;
        caller.data().meter.rows_affordable(caller.get_fuel()?)
    } else {
        u64::MAX
    };
    let (memory, state) = memory_and_state(&mut caller)?;
    if !state.in_call {
        return Err(trap(
            "table operations are only allowed inside a reducer or query",
        ));
    }
    let payload = guest_bytes(memory, ptr, len)?;
    state.response.clear();
    let outcome = table_op(state, op, table, field, payload, affordable);
    state.meter.bytes(payload.len() + state.response.len());
    let answer = match outcome {
        Ok(()) => state.response.len() as i64,
        Err(Refusal::OutOfFuel) => return Err(meter::out_of_fuel(OutOfFuel)),
        Err(Refusal::Host(error)) => answer_error(state, &error),
    };
    meter::settle_if_due(&mut caller)?;
    Ok(answer)
}

/// The `take_response` import: copies the last answer into the guest's memory.
fn host_take_response(mut caller: Caller<'_, HostState>, ptr: u32) -> wasmtime::Result<()> {
    let (memory, state) = memory_and_state(&mut caller)?;
    let len = state.response.len();
    let start = ptr as usize;
    let dest = start
        .checked_add(len)
        .and_then(|end| memory.get_mut(start..end))
        .ok_or_else(|| trap("take_response pointer out of bounds"))?;
    dest.copy_from_slice(&state.response);
    state.response.clear();
    Ok(())
}

/// The `schedule` import.
fn host_schedule(mut caller: Caller<'_, HostState>, ptr: u32, len: u32) -> wasmtime::Result<i64> {
    let (memory, state) = memory_and_state(&mut caller)?;
    if !state.in_call {
        return Err(trap("schedule is only allowed inside a reducer"));
    }
    let payload = guest_bytes(memory, ptr, len)?;
    state.meter.rows(1);
    state.meter.bytes(payload.len());
    let answer = schedule_call(state, payload);
    meter::settle_if_due(&mut caller)?;
    Ok(answer)
}

/// `log`: forwards a guest line to the node's log and keeps it for collection, within the
/// call's quota of lines.
pub(crate) fn log_line(state: &mut HostState, level: u32, bytes: &[u8]) {
    let message = text(bytes);
    state.meter.bytes(message.len());
    state.log_lines = state.log_lines.saturating_add(1);
    let quota = state.quotas.log_lines_per_call;
    if state.log_lines > quota {
        if state.log_lines == quota + 1 {
            log_guest(
                &state.module,
                1,
                &format!("more than {quota} log lines in one call: the rest are dropped"),
            );
        }
        return;
    }
    log_guest(&state.module, level, &message);
    if state.logs.len() < MAX_PENDING_LOGS {
        state.logs.push(GuestLog {
            module: state.module.clone(),
            level,
            message,
        });
    }
}

/// `panic`: keeps the message of the panic that is about to end the call.
pub(crate) fn panic_message(state: &mut HostState, bytes: &[u8]) {
    let message = text(bytes);
    state.meter.bytes(message.len());
    state.panic_message = Some(message);
}

/// `resolve_table`: the id of one of the module's own tables, or -1.
pub(crate) fn resolve_table(state: &HostState, name: &[u8]) -> i32 {
    state
        .tx
        .tables
        .guest_table_named(name)
        .map_or(-1, |id| id.raw() as i32)
}

/// Leaves `error` as the pending response and answers what a host call answers for it:
/// `-(encoded length) - 1`.
pub(crate) fn answer_error(state: &mut HostState, error: &HostError) -> i64 {
    state.response.clear();
    // A `HostError` is strings and integers: postcard cannot fail on it; should it ever,
    // the guest reads an undecodable error rather than the host failing the call.
    state.response = postcard::to_allocvec(error).unwrap_or_default();
    -(state.response.len() as i64) - 1
}

/// `cancel_schedule`: 1 if entry `id` was removed, 0 if there was none, -1 outside a reducer.
pub(crate) fn cancel_schedule(state: &mut HostState, id: u64) -> i32 {
    if !state.in_call || state.tx.read_only {
        return -1;
    }
    let tx = &mut state.tx;
    let Some(index) = tx
        .tables
        .tables
        .iter()
        .position(|t| t.schema().name == crate::host_tables::schedule::SCHEDULE_TABLE)
    else {
        return 0;
    };
    let removed = tx.tables.tables[index].delete(&Value::U64(id), &mut tx.undo, index as u32);
    i32::from(removed)
}

/// `table_op` for a natively loaded module: as for wasm, without fuel (nothing to meter).
pub(crate) fn native_table_op(
    state: &mut HostState,
    op: u32,
    table: u32,
    field: u32,
    payload: &[u8],
) -> i64 {
    state.response.clear();
    match table_op(state, op, table, field, payload, u64::MAX) {
        Ok(()) => state.response.len() as i64,
        Err(Refusal::Host(error)) => answer_error(state, &error),
        // Only a limited `affordable` refuses for fuel.
        Err(Refusal::OutOfFuel) => {
            answer_error(state, &HostError::NotPermitted("out of fuel".into()))
        }
    }
}

/// `schedule`: the new entry's id, or an error left as the response.
pub(crate) fn schedule_call(state: &mut HostState, payload: &[u8]) -> i64 {
    state.response.clear();
    match schedule(state, payload) {
        Ok(id) => id as i64,
        Err(error) => answer_error(state, &error),
    }
}

/// `caller` (the calling module) or, with `node`, `caller_node`: see [`respond_name`].
pub(crate) fn caller_name(state: &mut HostState, node: bool) -> i64 {
    let name = if node {
        state.caller_node.clone()
    } else {
        state.caller.clone()
    };
    respond_name(state, name)
}

/// Checks and stores a schedule entry made by the current call; returns its id.
fn schedule(state: &mut HostState, payload: &[u8]) -> Result<u64, HostError> {
    if state.tx.read_only {
        return Err(HostError::ReadOnly);
    }
    let bad = |why: String| HostError::InvalidPayload(why);
    let mut r = interstice_abi::Reader::new(payload);
    let reducer = r.string().map_err(|e| bad(format!("reducer name: {e}")))?;
    let n = r.length(1).map_err(|e| bad(format!("arguments: {e}")))?;
    let args = r
        .bytes(n)
        .map_err(|e| bad(format!("arguments: {e}")))?
        .to_vec();
    let delay = r.varint(64).map_err(|e| bad(format!("delay: {e}")))?;
    let repeat = r.varint(64).map_err(|e| bad(format!("repeat: {e}")))?;
    r.finish().map_err(|e| bad(e.to_string()))?;
    let schema = state
        .schema
        .as_ref()
        .ok_or_else(|| HostError::NotPermitted("module schema unknown".into()))?;
    let target = schema
        .reducer(&reducer)
        .ok_or_else(|| HostError::NotPermitted(format!("no reducer `{reducer}` to schedule")))?;
    if target.on.is_some() {
        return Err(HostError::NotPermitted(format!(
            "`{reducer}` subscribes to an event and cannot be scheduled"
        )));
    }
    let mut args_reader = interstice_abi::Reader::new(&args);
    for (i, arg) in target.args.iter().enumerate() {
        interstice_abi::codec::decode_value(&arg.ty, &schema.types, &mut args_reader).map_err(
            |e| {
                bad(format!(
                    "argument {} of `{reducer}` ({}): {e}",
                    i + 1,
                    arg.ty
                ))
            },
        )?;
    }
    args_reader
        .finish()
        .map_err(|e| bad(format!("arguments of `{reducer}`: {e}")))?;
    let quotas = state.quotas;
    if args.len() > quotas.schedule_args_bytes {
        return Err(Quotas::exceeded(
            "bytes of arguments per schedule entry",
            quotas.schedule_args_bytes,
        ));
    }
    let due = state.now_ms.saturating_add(delay);
    let tx = &mut state.tx;
    let index = tx
        .tables
        .tables
        .iter()
        .position(|t| t.schema().name == crate::host_tables::schedule::SCHEDULE_TABLE)
        .ok_or_else(|| HostError::NotPermitted("this module has no schedule".into()))?;
    if tx.tables.tables[index].len() as u64 >= quotas.schedule_entries {
        return Err(Quotas::exceeded(
            "pending schedule entries per module",
            quotas.schedule_entries,
        ));
    }
    let mut stored = Vec::new();
    tx.tables.tables[index].insert(
        crate::host_tables::schedule::row(due, &reducer, &args, repeat),
        &mut tx.undo,
        index as u32,
        &mut stored,
    )?;
    interstice_abi::Reader::new(&stored)
        .varint(64)
        .map_err(|e| bad(format!("stored entry: {e}")))
}

/// Forwards a guest log line to the node's log.
pub fn log_guest(module: &str, level: u32, message: &str) {
    match level {
        0 => tracing::error!(target: "interstice::module", module, "{message}"),
        1 => tracing::warn!(target: "interstice::module", module, "{message}"),
        2 => tracing::info!(target: "interstice::module", module, "{message}"),
        3 => tracing::debug!(target: "interstice::module", module, "{message}"),
        _ => tracing::trace!(target: "interstice::module", module, "{message}"),
    }
}

fn encode_rows<'a>(
    table: &crate::db::Table,
    rows: impl ExactSizeIterator<Item = &'a Row>,
    out: &mut Vec<u8>,
) {
    write_varint(out, rows.len() as u64);
    for row in rows {
        table.encode_row(row, out);
    }
}

/// The rows of `walk`, unless there are more than `affordable`: then the walk stops at the
/// first row too many and the operation is refused.
fn affordable_rows<'a>(
    walk: impl Iterator<Item = &'a Row>,
    affordable: u64,
) -> Result<Vec<&'a Row>, OutOfFuel> {
    let limit = usize::try_from(affordable).unwrap_or(usize::MAX);
    let rows: Vec<&Row> = walk.take(limit.saturating_add(1)).collect();
    if rows.len() > limit {
        return Err(OutOfFuel);
    }
    Ok(rows)
}

fn read_bound(
    table: &crate::db::Table,
    field: u16,
    r: &mut &[u8],
) -> Result<Bound<Value>, HostError> {
    let (&tag, rest) = r
        .split_first()
        .ok_or_else(|| HostError::InvalidPayload("missing range bound".into()))?;
    *r = rest;
    if tag == 0 {
        return Ok(Bound::Unbounded);
    }
    if tag > 2 {
        return Err(HostError::InvalidPayload(format!(
            "invalid bound tag {tag}"
        )));
    }
    let ty = table
        .field_type(field)
        .ok_or_else(|| HostError::NoSuchIndex {
            table: table.schema().name.clone(),
            field,
            expected: "btree".into(),
        })?;
    let mut reader = interstice_abi::Reader::new(r);
    let key = interstice_abi::codec::decode_value(ty, table.types(), &mut reader)
        .map_err(|e| HostError::InvalidPayload(format!("range bound: {e}")))?;
    *r = &r[r.len() - reader.remaining()..];
    Ok(if tag == 1 {
        Bound::Included(key)
    } else {
        Bound::Excluded(key)
    })
}

/// Runs one table operation of the current call, leaving the response in `state.response`
/// and owing its rows to the meter. Operations on many rows touch at most `affordable` of
/// them: one that would need more is refused as [`Refusal::OutOfFuel`] before it starts (or,
/// for filters and ranges, once it has seen one row too many).
fn table_op(
    state: &mut HostState,
    op: u32,
    table_id: u32,
    field: u32,
    payload: &[u8],
    affordable: u64,
) -> Result<(), Refusal> {
    // `let … else` rather than `ok_or`: an error built eagerly is dropped on every call.
    let Some(op) = TableOp::from_raw(op) else {
        return Err(HostError::UnknownOp(op).into());
    };
    if op.writes() && state.tx.read_only {
        return Err(HostError::ReadOnly.into());
    }
    let field = u16::try_from(field)
        .map_err(|_| HostError::InvalidPayload("field number too large".into()))?;
    let tx = &mut state.tx;
    let out = &mut state.response;
    if op == TableOp::Insert && tx.tables.guest_rows() >= state.quotas.rows {
        return Err(Quotas::exceeded("rows per module", state.quotas.rows).into());
    }
    // Only the module's own tables: host-managed ones have no guest id.
    let Some(id) = tx.tables.guest_table(table_id) else {
        return Err(HostError::NoSuchTable(table_id).into());
    };
    let table = tx.tables.guest_mut(id);
    let meter = &mut state.meter;
    match op {
        TableOp::Insert => {
            let spare = tx.spare_rows.pop().unwrap_or_default();
            let row = table.decode_row_into(payload, spare)?;
            table.insert(row, &mut tx.undo, table_id, out)?;
            tx.written.inserted(table_id, &tx.undo, out);
            meter.rows(1);
        }
        TableOp::Update | TableOp::Replace => {
            let spare = tx.spare_rows.pop().unwrap_or_default();
            let row = table.decode_row_into(payload, spare)?;
            let echo = (op == TableOp::Update).then_some(&mut *out);
            let changed = table.update(row, &mut tx.undo, table_id, echo)?;
            // The payload decoded exactly into the stored row: it is the row's encoding.
            tx.written
                .updated(table, table_id, &tx.undo, payload, changed);
            meter.rows(1);
        }
        TableOp::Get => {
            meter.rows(1);
            let pk = table.decode_pk(payload)?;
            match table.get(&pk) {
                Some(row) => {
                    out.push(1);
                    table.encode_row(row, out);
                }
                None => out.push(0),
            }
        }
        TableOp::Delete => {
            meter.rows(1);
            let pk = table.decode_pk(payload)?;
            let removed = table.delete(&pk, &mut tx.undo, table_id);
            if removed {
                tx.written.deleted(table, table_id, &tx.undo);
            }
            out.push(u8::from(removed));
        }
        TableOp::Count => {
            meter.rows(1);
            write_varint(out, table.len() as u64);
        }
        TableOp::Clear => {
            let rows = table.len() as u64;
            if rows > affordable {
                return Err(Refusal::OutOfFuel);
            }
            meter.rows(rows.max(1));
            let removed = table.clear(&mut tx.undo, table_id);
            write_varint(out, removed);
        }
        TableOp::Scan => scan_page(table, payload, out, meter)?,
        TableOp::FindUnique => {
            meter.rows(1);
            let key = table.decode_key(field, payload)?;
            match table.find_unique(field, &key)? {
                Some(row) => {
                    out.push(1);
                    table.encode_row(row, out);
                }
                None => out.push(0),
            }
        }
        TableOp::Filter => {
            let key = table.decode_key(field, payload)?;
            let rows = affordable_rows(table.filter_iter(field, &key)?, affordable)?;
            meter.rows(rows.len().max(1) as u64);
            encode_rows(table, rows.into_iter(), out);
        }
        TableOp::Range => {
            let mut rest = payload;
            let lower = read_bound(table, field, &mut rest)?;
            let upper = read_bound(table, field, &mut rest)?;
            if !rest.is_empty() {
                return Err(
                    HostError::InvalidPayload("trailing bytes after range bounds".into()).into(),
                );
            }
            let rows = affordable_rows(table.range_iter(field, lower, upper)?, affordable)?;
            meter.rows(rows.len().max(1) as u64);
            encode_rows(table, rows.into_iter(), out);
        }
    }
    Ok(())
}

/// `table_op` scan: the page of at most [`SCAN_PAGE_ROWS`] rows after the cursor in
/// `payload` (0: from the start; 1 and a key: after that key), as a count and the rows.
fn scan_page(
    table: &crate::db::Table,
    payload: &[u8],
    out: &mut Vec<u8>,
    meter: &mut super::meter::Meter,
) -> Result<(), Refusal> {
    let after = match payload.split_first() {
        Some((0, [])) => None,
        Some((1, key)) => Some(table.decode_pk(key)?),
        _ => return Err(HostError::InvalidPayload("scan cursor".into()).into()),
    };
    // The row count comes first but is known only at the end: the rows go after room for its
    // longest encoding, which then moves next to them if it is shorter.
    const ROOM: usize = varint_len(SCAN_PAGE_ROWS as u64);
    let start = out.len();
    out.resize(start + ROOM, 0);
    let mut count = 0u64;
    for row in table
        .rows_after(after.as_ref())
        .take(SCAN_PAGE_ROWS as usize)
    {
        table.encode_row(row, out);
        count += 1;
    }
    meter.rows(count.max(1));
    let mut prefix = Vec::with_capacity(ROOM);
    write_varint(&mut prefix, count);
    let gap = ROOM - prefix.len();
    out[start + gap..start + ROOM].copy_from_slice(&prefix);
    if gap > 0 {
        out.drain(start..start + gap);
    }
    Ok(())
}

/// Leaves `name` as the pending response and answers its length, or -1 (nothing pending) for
/// none: how `caller` and `caller_node` answer.
fn respond_name(state: &mut HostState, name: Option<std::sync::Arc<str>>) -> i64 {
    state.response.clear();
    match name {
        Some(name) => {
            state.response.extend_from_slice(name.as_bytes());
            state.response.len() as i64
        }
        None => -1,
    }
}
