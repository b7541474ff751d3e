//! What reducers and queries receive as their first argument.

use interstice_abi::typed::Args;
use interstice_abi::{HostError, IntersticeType};

/// The tables of the current module. `#[table]` adds one accessor per table, named after the
/// table: `ctx.current.tables.greetings()`.
#[derive(Debug, Clone, Copy)]
pub struct Tables {
    _private: (),
}

/// The current module.
#[derive(Debug, Clone, Copy)]
pub struct Current {
    /// Its tables.
    pub tables: Tables,
}

impl Current {
    const NEW: Current = Current {
        tables: Tables { _private: () },
    };
}

/// The context of a reducer: one transaction that may change the module's tables.
///
/// Everything a reducer writes is committed atomically when it returns normally and rolled back
/// when it returns an error, panics, runs out of fuel or exceeds its memory cap.
#[derive(Debug)]
pub struct ReducerContext {
    /// The current module.
    pub current: Current,
}

impl ReducerContext {
    #[doc(hidden)]
    pub fn __new() -> Self {
        ReducerContext {
            current: Current::NEW,
        }
    }
}

/// Identifies a scheduled reducer run, to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScheduleId(pub u64);

impl ReducerContext {
    /// Runs `reducer` (of this module, taking no arguments) `delay_ms` logical milliseconds from
    /// now. Scheduling is part of this transaction: if the reducer fails, nothing is scheduled.
    /// Scheduling a reducer that does not exist is a bug and panics (rolling back).
    pub fn schedule(&self, reducer: &str, delay_ms: u64) -> ScheduleId {
        self.schedule_with(reducer, (), delay_ms)
    }

    /// Like [`schedule`](ReducerContext::schedule), with arguments (a tuple).
    pub fn schedule_with<A: Args>(&self, reducer: &str, args: A, delay_ms: u64) -> ScheduleId {
        match self.try_schedule(reducer, args, delay_ms, 0) {
            Ok(id) => id,
            Err(e) => panic!("cannot schedule `{reducer}`: {e}"),
        }
    }

    /// Runs `reducer` after `delay_ms`, then every `every_ms` until cancelled.
    pub fn schedule_repeating<A: Args>(
        &self,
        reducer: &str,
        args: A,
        delay_ms: u64,
        every_ms: u64,
    ) -> ScheduleId {
        match self.try_schedule(reducer, args, delay_ms, every_ms.max(1)) {
            Ok(id) => id,
            Err(e) => panic!("cannot schedule `{reducer}`: {e}"),
        }
    }

    /// Schedules and reports errors instead of panicking; `every_ms` 0 means once.
    pub fn try_schedule<A: Args>(
        &self,
        reducer: &str,
        args: A,
        delay_ms: u64,
        every_ms: u64,
    ) -> Result<ScheduleId, HostError> {
        let mut bytes = Vec::new();
        args.encode_args(&mut bytes);
        crate::__private::schedule(reducer, &bytes, delay_ms, every_ms).map(ScheduleId)
    }

    /// Cancels a scheduled run (also a repeating one); whether it was still pending.
    pub fn cancel_schedule(&self, id: ScheduleId) -> bool {
        crate::__private::cancel_schedule(id.0)
    }

    /// The transaction's logical time in milliseconds: the node's clock at the start of the
    /// frame, the same for every call in that frame, never the wall clock.
    pub fn timestamp(&self) -> u64 {
        crate::__private::now()
    }

    /// Calls a reducer of another module on this node. It joins this transaction: its writes
    /// commit with this reducer's, and are rolled back if this reducer fails. If the called
    /// reducer fails, its own writes are rolled back and the error is returned here, to handle.
    pub fn call_reducer<A: Args>(
        &self,
        module: &str,
        reducer: &str,
        args: A,
    ) -> Result<(), HostError> {
        let mut bytes = Vec::new();
        args.encode_args(&mut bytes);
        crate::__private::call_module(
            interstice_abi::protocol::CallKind::Reducer,
            module,
            reducer,
            &bytes,
        )
        .map(drop)
    }

    /// Sends a call of `reducer` of `module` on another node — one this module declares in a
    /// `src/bindings/node_<node>.toml` — once this transaction commits. It returns at once and
    /// never waits for the network: the call is delivered in the background, exactly once,
    /// retried across reconnects. If this reducer fails, nothing is sent. Typed bindings
    /// (`bindings::<node>::<module>::<reducer>`) call this.
    pub fn call_remote_reducer<A: Args>(
        &self,
        node: &str,
        module: &str,
        reducer: &str,
        args: A,
    ) -> Result<(), HostError> {
        let mut bytes = Vec::new();
        args.encode_args(&mut bytes);
        crate::__private::call_remote(node, module, reducer, &bytes)
    }

    /// A deterministic random number: the sequence depends only on the invocation's position
    /// in the node's history and its logical time, so a replay draws the same numbers.
    pub fn random(&self) -> u64 {
        crate::__private::next_random()
    }

    /// A deterministic random number in `0..bound` (`bound` > 0).
    pub fn random_below(&self, bound: u64) -> u64 {
        // Multiply-shift keeps the bias below 2^-64 per value, and needs no retry loop.
        ((u128::from(self.random()) * u128::from(bound.max(1))) >> 64) as u64
    }
}

/// The context of a query: read-only access to the module's tables. Writes are refused by the
/// node with [`HostError::ReadOnly`].
#[derive(Debug)]
pub struct QueryContext {
    /// The current module.
    pub current: Current,
}

/// Contexts that can run queries of other modules (both reducers and queries can); what typed
/// bindings take.
///
/// Both reducers and queries may run queries of other modules on the node (seeing the current
/// transaction's writes) and ask who called them; queries cannot call reducers.
pub trait QueryCaller {
    /// Runs a query of another module on this node.
    fn call_query<A: Args, R: IntersticeType>(
        &self,
        module: &str,
        query: &str,
        args: A,
    ) -> Result<R, HostError> {
        call_query(module, query, args)
    }

    /// The module whose reducer or query called this one, or `None` for a call from outside
    /// any module (a game system, the CLI, the schedule, an event).
    fn caller(&self) -> Option<String> {
        crate::__private::caller()
    }

    /// The node id of the peer whose remote reducer call (or query) this is, or `None` for a
    /// call made on this node (a game system, the CLI through the node's own process) — and
    /// for reducers that run later on this node's behalf: scheduled reducers and event
    /// subscribers see `None` even when a peer's call caused them. It is bound to the peer's
    /// key, so a game can tie a player to it: only that key can call as that node again.
    /// Modules called from such a reducer see it too, so a public module calling another on a
    /// peer's behalf passes that peer on.
    fn caller_node(&self) -> Option<String> {
        crate::__private::caller_node()
    }
}

impl QueryCaller for ReducerContext {}

impl QueryCaller for QueryContext {}

fn call_query<A: Args, R: IntersticeType>(
    module: &str,
    query: &str,
    args: A,
) -> Result<R, HostError> {
    let mut bytes = Vec::new();
    args.encode_args(&mut bytes);
    let result = crate::__private::call_module(
        interstice_abi::protocol::CallKind::Query,
        module,
        query,
        &bytes,
    )?;
    crate::__private::decode_result(&result)
}

impl QueryContext {
    #[doc(hidden)]
    pub fn __new() -> Self {
        QueryContext {
            current: Current::NEW,
        }
    }
}
