//! The `call_module` host function: a reducer or query of another module run inside the
//! caller's transaction ([`CallKind::Reducer`], [`CallKind::Query`]), or a reducer call queued
//! for another node ([`CallKind::RemoteReducer`]).

use super::call::{check_args, random_seed};
use super::loaded::LoadedModule;
use crate::db::Database;
use crate::db::tx::rollback;
use crate::error::CallError;
use crate::wasm::host_calls;
use crate::wasm::state::HostState;
use interstice_abi::HostError;
use interstice_abi::codec::Reader;
use interstice_abi::protocol::CallKind;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Deepest chain of cross-module calls (a calls b calls c ...) in one transaction.
pub const MAX_CALL_DEPTH: u32 = 16;

/// What a call may reach besides its own module: every other module and its tables, moved
/// into the running module's store for the duration of the call (and back after it), so a
/// nested call needs no shared or aliased access to [`Modules`].
#[derive(Default)]
pub struct CallEnv {
    pub(super) slots: Vec<Option<LoadedModule>>,
    pub(super) by_name: BTreeMap<String, usize>,
    pub(super) db: Database,
    pub(super) depth: u32,
    pub(super) memory_cap: usize,
    pub(super) quotas: crate::config::Quotas,
    /// Where the outermost call's native stack was when it started (an address; stacks grow
    /// down), and what a chain of nested calls may use below it.
    pub(super) stack_base: usize,
    pub(super) stack_budget: usize,
    pub(super) max_stack: usize,
    pub(super) now_ms: u64,
    pub(super) invocation: u64,
    /// Nested calls made so far in this transaction: each gets its own random seed.
    pub(super) calls: u64,
    /// The peer whose remote call the transaction runs (its node id), for every module the
    /// transaction reaches.
    pub(super) caller_node: Option<Arc<str>>,
}

/// `env` as the sandbox keeps it: the sandbox holds it for the call without knowing its type,
/// so it stays below the runtime.
pub(super) fn lend(env: CallEnv) -> Box<dyn Any + Send + Sync> {
    Box::new(env)
}

/// Takes back what [`lend`] gave the call in `state`, if anything.
pub(super) fn take_env(state: &mut HostState) -> Option<CallEnv> {
    let lent = state.env.take()?;
    // Only this module lends, so the type always matches; anything else is dropped.
    lent.downcast::<CallEnv>().ok().map(|env| *env)
}

/// Takes back what called modules committed inside a transaction that failed, newest first.
pub(super) fn rollback_nested(
    db: &mut Database,
    nested: impl DoubleEndedIterator<Item = crate::db::tx::NestedCommit>,
) {
    for mut commit in nested.rev() {
        if let Some(tables) = db.module_mut(&commit.module) {
            rollback(&mut tables.tables, &mut commit.undo);
        }
    }
}

/// The `call_module` host function: runs a reducer or query of another module inside the
/// caller's transaction, with the caller's remaining fuel.
pub(crate) fn call_module(
    caller: &mut wasmtime::Caller<'_, HostState>,
    kind: u32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<i64> {
    let (memory, state) = host_calls::memory_and_state(caller)?;
    if !state.in_call {
        return Err(host_calls::trap(
            "calls are only allowed inside a reducer or query",
        ));
    }
    let payload = host_calls::guest_bytes(memory, ptr, len)?.to_vec();
    let Some(kind) = CallKind::from_code(kind) else {
        let error = HostError::InvalidPayload(format!("unknown call kind {kind}"));
        state.response = postcard::to_allocvec(&error)
            .map_err(|e| host_calls::trap(format!("cannot encode host error: {e}")))?;
        return Ok(-(state.response.len() as i64) - 1);
    };
    if kind == CallKind::RemoteReducer {
        let queued = crate::wasm::remote::queue_remote_call(state, &payload);
        state.response.clear();
        return Ok(match queued {
            Ok(()) => 0,
            Err(error) => {
                state.response = postcard::to_allocvec(&error)
                    .map_err(|e| host_calls::trap(format!("cannot encode host error: {e}")))?;
                -(state.response.len() as i64) - 1
            }
        });
    }
    let from = state.module.clone();
    let read_only = state.tx.read_only;
    let env = take_env(state);
    let remaining = caller.get_fuel()?;
    let (outcome, used, env) = match env {
        Some(mut env) => {
            let (outcome, used) =
                nested_call(&mut env, &from, read_only, kind, &payload, remaining);
            (outcome, used, Some(env))
        }
        None => (
            Err(HostError::NotPermitted(
                "no other module can be reached from here".into(),
            )),
            0,
            None,
        ),
    };
    caller.set_fuel(remaining.saturating_sub(used))?;
    let state = caller.data_mut();
    state.env = env.map(lend);
    state.response.clear();
    Ok(match outcome {
        Ok((response, commits)) => {
            state.nested.extend(commits);
            state.response = response;
            state.response.len() as i64
        }
        Err(error) => {
            state.response = postcard::to_allocvec(&error)
                .map_err(|e| host_calls::trap(format!("cannot encode host error: {e}")))?;
            -(state.response.len() as i64) - 1
        }
    })
}

/// Where this thread's native stack is now: the address of a local. Differences between two
/// positions on one thread measure the stack used between them (stacks grow down on every
/// platform wasmtime supports).
#[inline(never)]
pub(super) fn native_stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

type NestedOutcome = Result<(Vec<u8>, Vec<crate::db::tx::NestedCommit>), HostError>;

/// Runs one nested call with what `env` lends; returns its outcome and the fuel it used.
fn nested_call(
    env: &mut CallEnv,
    from: &Arc<str>,
    read_only: bool,
    kind: CallKind,
    payload: &[u8],
    fuel: u64,
) -> (NestedOutcome, u64) {
    let mut r = Reader::new(payload);
    let parsed = (|| {
        let module = r.string().ok()?;
        let name = r.string().ok()?;
        let n = r.length(1).ok()?;
        let args = r.bytes(n).ok()?.to_vec();
        r.finish().ok()?;
        Some((module, name, args))
    })();
    let Some((module, name, args)) = parsed else {
        return (Err(HostError::InvalidPayload("call payload".into())), 0);
    };
    let failed = |reason: String| HostError::CallFailed {
        module: module.clone(),
        name: name.clone(),
        reason,
    };
    let is_query = kind == CallKind::Query;
    if !is_query && read_only {
        return (
            Err(HostError::NotPermitted(
                "queries cannot call reducers".into(),
            )),
            0,
        );
    }
    if env.depth >= MAX_CALL_DEPTH {
        return (
            Err(failed(format!("more than {MAX_CALL_DEPTH} nested calls"))),
            0,
        );
    }
    let used = env.stack_base.saturating_sub(native_stack_position());
    if used.saturating_add(env.max_stack) > env.stack_budget {
        return (
            Err(failed(format!(
                "the chain of calls has used {used} bytes of native stack; another call may \
                 need {} more, past the node's {} (EngineConfig::nested_call_stack)",
                env.max_stack, env.stack_budget
            ))),
            0,
        );
    }
    let Some(&slot) = env.by_name.get(&module) else {
        return (Err(failed("no such module on this node".into())), 0);
    };
    let Some(mut target) = env.slots.get_mut(slot).and_then(Option::take) else {
        return (
            Err(failed("the module is already running in this transaction (calls cannot re-enter a module)".into())),
            0,
        );
    };
    let outcome = run_nested(
        env,
        &mut target,
        from,
        read_only,
        is_query,
        &name,
        &args,
        fuel,
    );
    env.slots[slot] = Some(target);
    match outcome {
        Ok((result, used)) => (result.map_err(|e| failed(e.to_string())), used),
        Err(e) => (Err(failed(e.to_string())), 0),
    }
}

type RunOutcome = Result<
    (
        Result<(Vec<u8>, Vec<crate::db::tx::NestedCommit>), CallError>,
        u64,
    ),
    CallError,
>;

#[allow(clippy::too_many_arguments)]
fn run_nested(
    env: &mut CallEnv,
    target: &mut LoadedModule,
    from: &Arc<str>,
    read_only: bool,
    is_query: bool,
    name: &str,
    args: &[u8],
    fuel: u64,
) -> RunOutcome {
    let schema = target.schema.clone();
    let (func, arg_types) = if is_query {
        let i = schema
            .queries
            .iter()
            .position(|q| q.name == name)
            .ok_or_else(|| CallError::NoSuchQuery {
                module: schema.name.clone(),
                name: name.into(),
            })?;
        (target.queries[i].clone(), &schema.queries[i].args)
    } else {
        let i = schema
            .reducers
            .iter()
            .position(|r| r.name == name)
            .ok_or_else(|| CallError::NoSuchReducer {
                module: schema.name.clone(),
                name: name.into(),
            })?;
        if schema.reducers[i].on.is_some() {
            return Err(CallError::SubscriberOnly(name.into()));
        }
        (target.reducers[i].clone(), &schema.reducers[i].args)
    };
    check_args(&schema.types, arg_types.iter().map(|a| &a.ty), args)?;
    target.refresh(env.memory_cap, fuel)?;
    let tables = env
        .db
        .module_mut(&target.name)
        .map(std::mem::take)
        .ok_or_else(|| CallError::NoSuchModule(target.name.to_string()))?;

    let state = target.instance.store.data_mut();
    state.tx.tables = tables;
    state.tx.undo.clear();
    state.tx.read_only = read_only || is_query;
    // A call nested in another runs inside its transaction: no past reads.
    state.past = None;
    state.in_call = true;
    state.quotas = env.quotas;
    state.now_ms = env.now_ms;
    // Every nested call of the transaction draws its own numbers, still from recorded state.
    env.calls += 1;
    state.random_seed = random_seed(
        env.invocation ^ env.calls.rotate_left(40),
        env.now_ms,
        &target.name,
    );
    state.caller = Some(from.clone());
    state.caller_node = env.caller_node.clone();
    state.nested.clear();
    if state.schema.is_none() {
        state.schema = Some(schema.clone());
    }
    let lent = std::mem::take(env);
    state.env = Some(lend(CallEnv {
        depth: lent.depth + 1,
        ..lent
    }));

    let result = target.instance.run(&func, args, fuel);
    let used = fuel.saturating_sub(target.instance.store.get_fuel().unwrap_or(0));

    let state = target.instance.store.data_mut();
    state.in_call = false;
    if let Some(back) = take_env(state) {
        *env = CallEnv {
            depth: back.depth - 1,
            ..back
        };
    }
    let mut nested = std::mem::take(&mut state.nested);
    if result.is_err() {
        rollback(&mut state.tx.tables.tables, &mut state.tx.undo);
        rollback_nested(&mut env.db, nested.drain(..));
    }
    if let Some(home) = env.db.module_mut(&target.name) {
        *home = std::mem::take(&mut state.tx.tables);
    }
    let undo = std::mem::take(&mut state.tx.undo);
    if matches!(
        result,
        Err(CallError::Trap(_) | CallError::OutOfFuel(_) | CallError::MemoryCap(_))
    ) {
        target.poisoned = true;
    }
    Ok((
        result.map(|response| {
            if !undo.is_empty() {
                nested.push(crate::db::tx::NestedCommit {
                    module: target.name.to_string(),
                    undo,
                });
            }
            (response, nested)
        }),
        used,
    ))
}
