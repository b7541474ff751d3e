//! Finding reducers and queries, and running one as a transaction.

use super::Modules;
use super::loaded::LoadedModule;
use super::nested::{CallEnv, lend, native_stack_position, rollback_nested, take_env};
use crate::commit::Followers;
use crate::db::Database;
use crate::db::tx::rollback;
use crate::error::CallError;
use crate::queue::{CallContext, EventCursor, Origin};
use crate::wasm::state::HostState;
use interstice_abi::codec::{Reader, decode_value};
use interstice_abi::{EventSpec, TypeSet};
use std::sync::Arc;

/// A reducer resolved once, for calling many times without name lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReducerHandle {
    pub(super) module: usize,
    pub(super) reducer: usize,
}

/// A query resolved once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryHandle {
    pub(super) module: usize,
    pub(super) query: usize,
}

impl Modules {
    /// Sets the logical time the next calls run at (the transaction timestamp).
    pub fn set_now(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// The logical time calls run at.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Finds a reducer that subscribes to a table event, to deliver an event to it.
    ///
    /// # Errors
    ///
    /// [`CallError::NoSuchModule`], or [`CallError::NoSuchReducer`] when the module has no
    /// reducer of that name subscribed to an event.
    pub fn subscriber(&self, module: &str, reducer: &str) -> Result<ReducerHandle, CallError> {
        let (slot, loaded) = self.loaded(module)?;
        let index = loaded
            .schema
            .reducers
            .iter()
            .position(|r| {
                r.name == reducer
                    && matches!(
                        r.on,
                        Some(
                            EventSpec::Table { .. }
                                | EventSpec::Connect
                                | EventSpec::Disconnect
                                | EventSpec::Host(_)
                        )
                    )
            })
            .ok_or_else(|| CallError::NoSuchReducer {
                module: module.into(),
                name: reducer.into(),
            })?;
        Ok(ReducerHandle {
            module: slot,
            reducer: index,
        })
    }

    /// The reducers subscribed to a node-level event (`connect`, `disconnect`, host events),
    /// in (module name, reducer name) order.
    pub fn event_subscribers(&self, event: &EventSpec) -> Vec<(String, String)> {
        self.schemas()
            .flat_map(|schema| {
                schema
                    .reducers
                    .iter()
                    .filter(|r| r.on.as_ref() == Some(event))
                    .map(|r| (schema.name.clone(), r.name.clone()))
            })
            .collect()
    }

    /// Finds a reducer that may be called directly (not a subscriber).
    ///
    /// # Errors
    ///
    /// [`CallError::NoSuchModule`], [`CallError::NoSuchReducer`], or
    /// [`CallError::SubscriberOnly`] for a subscriber, which cannot be called directly.
    pub fn reducer(&self, module: &str, reducer: &str) -> Result<ReducerHandle, CallError> {
        let (slot, loaded) = self.loaded(module)?;
        let index = loaded
            .schema
            .reducers
            .iter()
            .position(|r| r.name == reducer)
            .ok_or_else(|| CallError::NoSuchReducer {
                module: module.into(),
                name: reducer.into(),
            })?;
        if loaded.schema.reducers[index].on.is_some() {
            return Err(CallError::SubscriberOnly(reducer.into()));
        }
        Ok(ReducerHandle {
            module: slot,
            reducer: index,
        })
    }

    /// Finds a query.
    ///
    /// # Errors
    ///
    /// [`CallError::NoSuchModule`] or [`CallError::NoSuchQuery`].
    pub fn query(&self, module: &str, query: &str) -> Result<QueryHandle, CallError> {
        let (slot, loaded) = self.loaded(module)?;
        let index = loaded
            .schema
            .queries
            .iter()
            .position(|q| q.name == query)
            .ok_or_else(|| CallError::NoSuchQuery {
                module: module.into(),
                name: query.into(),
            })?;
        Ok(QueryHandle {
            module: slot,
            query: index,
        })
    }

    pub(super) fn loaded(&self, module: &str) -> Result<(usize, &LoadedModule), CallError> {
        let slot = *self
            .by_name
            .get(module)
            .ok_or_else(|| CallError::NoSuchModule(module.into()))?;
        let loaded = self.slots[slot]
            .as_ref()
            .ok_or_else(|| CallError::NoSuchModule(module.into()))?;
        Ok((slot, loaded))
    }

    /// Checks encoded arguments against a reducer's signature.
    ///
    /// # Errors
    ///
    /// [`CallError::InvalidArguments`] when the arguments do not decode as the reducer's
    /// parameters (the message names the first that does not).
    pub fn check_reducer_args(&self, handle: ReducerHandle, args: &[u8]) -> Result<(), CallError> {
        let loaded = self.slot(handle.module)?;
        let reducer = &loaded.schema.reducers[handle.reducer];
        check_args(
            &loaded.schema.types,
            reducer.args.iter().map(|a| &a.ty),
            args,
        )
    }

    fn slot(&self, slot: usize) -> Result<&LoadedModule, CallError> {
        self.slots
            .get(slot)
            .and_then(Option::as_ref)
            .ok_or_else(|| CallError::NoSuchModule(format!("#{slot}")))
    }

    /// Runs a reducer as one transaction: committed if it returns normally, rolled back if it
    /// fails, traps, runs out of fuel or exceeds its memory cap.
    ///
    /// # Errors
    ///
    /// Whatever ended the call: the reducer's own error ([`CallError::Failed`], also when the
    /// guest cannot decode `args`: check them first with
    /// [`check_reducer_args`](Modules::check_reducer_args)), a trap, fuel or memory exhausted,
    /// or a journal record too large. The transaction is rolled back in every case.
    pub fn call_reducer(
        &mut self,
        db: &mut Database,
        handle: ReducerHandle,
        args: &[u8],
    ) -> Result<(), CallError> {
        self.invoke_reducer(db, handle, args, CallContext::default())
    }

    /// [`call_reducer`](Modules::call_reducer) for an invocation of the frame's queue: with its
    /// place in the node's sequence of invocations (so replaying the same invocations in the
    /// same order draws the same random numbers), the peer request it answers and the remote
    /// event it applies ([`Invocation::context`](crate::Invocation::context)).
    ///
    /// # Errors
    ///
    /// As [`call_reducer`](Modules::call_reducer).
    pub fn call_reducer_in(
        &mut self,
        db: &mut Database,
        handle: ReducerHandle,
        args: &[u8],
        context: CallContext,
    ) -> Result<(), CallError> {
        self.invoke_reducer(db, handle, args, context)
    }

    pub(super) fn invoke_reducer(
        &mut self,
        db: &mut Database,
        handle: ReducerHandle,
        args: &[u8],
        context: CallContext,
    ) -> Result<(), CallError> {
        self.invoke(
            db,
            handle.module,
            Entry::Reducer(handle.reducer),
            args,
            context,
        )
        .map(drop)
    }

    /// Runs a query (read-only) and returns its encoded result.
    ///
    /// # Errors
    ///
    /// As [`call_reducer`](Modules::call_reducer); nothing is written either way.
    pub fn call_query(
        &mut self,
        db: &mut Database,
        handle: QueryHandle,
        args: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        self.invoke(
            db,
            handle.module,
            Entry::Query(handle.query),
            args,
            CallContext::default(),
        )
    }

    /// Runs a query for a peer (`peer`: its certificate fingerprint), whose node id
    /// `ctx.caller_node()` then answers.
    ///
    /// # Errors
    ///
    /// As [`call_query`](Modules::call_query).
    pub fn call_query_from(
        &mut self,
        db: &mut Database,
        handle: QueryHandle,
        args: &[u8],
        peer: &str,
    ) -> Result<Vec<u8>, CallError> {
        let context = CallContext {
            origin: Some(Origin {
                peer: peer.to_string(),
                request: 0,
            }),
            ..CallContext::default()
        };
        self.invoke(db, handle.module, Entry::Query(handle.query), args, context)
    }

    /// The type a query returns, with the module's types.
    ///
    /// # Errors
    ///
    /// [`CallError::NoSuchModule`] when the module behind the handle was unloaded since.
    pub fn query_result_type(
        &self,
        handle: QueryHandle,
    ) -> Result<(interstice_abi::ValueType, &TypeSet), CallError> {
        let loaded = self.slot(handle.module)?;
        Ok((
            loaded.schema.queries[handle.query].returns.clone(),
            &loaded.schema.types,
        ))
    }

    /// Checks encoded arguments against a query's signature.
    ///
    /// # Errors
    ///
    /// [`CallError::InvalidArguments`], as [`check_reducer_args`](Modules::check_reducer_args).
    pub fn check_query_args(&self, handle: QueryHandle, args: &[u8]) -> Result<(), CallError> {
        let loaded = self.slot(handle.module)?;
        let query = &loaded.schema.queries[handle.query];
        check_args(&loaded.schema.types, query.args.iter().map(|a| &a.ty), args)
    }

    /// Runs one entry point of a module as a transaction (a reducer) or a read (a query).
    fn invoke(
        &mut self,
        db: &mut Database,
        slot: usize,
        entry: Entry,
        args: &[u8],
        context: CallContext,
    ) -> Result<Vec<u8>, CallError> {
        let CallContext {
            invocation,
            origin,
            cursor,
            caller_node,
        } = context;
        self.invocation = invocation;
        if let (Entry::Reducer(_), Some(event)) = (entry, &cursor)
            && let Some(module) = self.slots.get(slot).and_then(Option::as_ref)
            && crate::host_tables::cursors::position(db, &module.name, &event.key)
                .is_some_and(|done| done >= event.seq)
        {
            // Applied before (the event was resent after a reconnect or a restart).
            return Ok(Vec::new());
        }
        let mut loaded = self
            .slots
            .get_mut(slot)
            .and_then(Option::take)
            .ok_or_else(|| CallError::NoSuchModule(format!("#{slot}")))?;
        let fuel = self.config.fuel_per_call;
        let prepared = loaded.refresh(self.config.memory_cap, fuel).and_then(|()| {
            db.module_mut(&loaded.name)
                .map(std::mem::take)
                .ok_or_else(|| CallError::NoSuchModule(loaded.name.to_string()))
        });
        let tables = match prepared {
            Ok(tables) => tables,
            Err(e) => {
                self.slots[slot] = Some(loaded);
                return Err(e);
            }
        };
        let func = match entry {
            Entry::Reducer(i) => loaded.reducers[i].clone(),
            Entry::Query(i) => loaded.queries[i].clone(),
        };
        self.enter(
            db,
            &mut loaded,
            tables,
            entry,
            (origin, caller_node),
            cursor,
        );
        let result = loaded.instance.run(&func, args, fuel);
        let result = self.leave(db, &mut loaded, entry, args, result);
        self.slots[slot] = Some(loaded);
        result
    }

    /// Readies a module's store for a call: its tables and the shared undo log moved in, the
    /// host tables the call's origin writes (cursor, answered call), the call's context, and
    /// (if it calls other modules) everything else lent to it.
    fn enter(
        &mut self,
        db: &mut Database,
        loaded: &mut LoadedModule,
        tables: crate::db::ModuleTables,
        entry: Entry,
        (origin, caller_node): (Option<Origin>, Option<String>),
        cursor: Option<EventCursor>,
    ) {
        let caller_node: Option<Arc<str>> = origin
            .as_ref()
            .map(|origin| interstice_abi::node_id_of(&origin.peer).into())
            .or_else(|| caller_node.map(Arc::from));
        let reducer = matches!(entry, Entry::Reducer(_));
        let state = loaded.instance.store.data_mut();
        state.tx.tables = tables;
        std::mem::swap(&mut state.tx.undo, &mut self.undo);
        state.tx.read_only = !reducer;
        // Past reads only for a query called from outside any transaction.
        state.past = if reducer { None } else { self.past.clone() };
        if let (true, Some(event)) = (reducer, cursor) {
            let tables = &mut state.tx.tables.tables;
            crate::host_tables::cursors::advance(tables, &mut state.tx.undo, &event.key, event.seq);
        }
        if let (true, Some(Origin { peer, request })) = (reducer, origin) {
            crate::host_tables::answered::record(
                &mut state.tx.tables.tables,
                &mut state.tx.undo,
                &peer,
                request,
            );
        }
        if reducer && self.feed.watches_module(&loaded.name) {
            let watched = self.feed.watched_ids(&loaded.name, &state.tx.tables.tables);
            state.tx.written.begin(watched);
        }
        state.in_call = true;
        state.quotas = self.config.quotas;
        if !Arc::ptr_eq(&state.input, &self.input_state) {
            state.input = self.input_state.clone();
        }
        state.now_ms = self.now_ms;
        state.random_seed = random_seed(self.invocation, self.now_ms, &loaded.name);
        state.caller = None;
        state.caller_node = caller_node;
        if state.schema.is_none() {
            state.schema = Some(loaded.schema.clone());
        }
        if state.files_root.is_none() {
            state.files_root = self.files_dir.as_ref().map(|d| d.join(&*loaded.name));
        }
        if loaded.calls_modules {
            state.env = Some(lend(CallEnv {
                slots: std::mem::take(&mut self.slots),
                by_name: std::mem::take(&mut self.by_name),
                db: std::mem::take(db),
                depth: 1,
                memory_cap: self.config.memory_cap,
                quotas: self.config.quotas,
                stack_base: native_stack_position(),
                stack_budget: self.config.nested_call_stack,
                max_stack: self.config.max_stack,
                now_ms: self.now_ms,
                invocation: self.invocation,
                calls: 0,
                caller_node: state.caller_node.clone(),
            }));
        }
    }

    /// Hands what a committed call left outside its tables to where each kind goes: remote
    /// calls to the outbox, drawing and sound to the presenting authorities, watches to the
    /// plugin, file writes to wait for the commit's fsync.
    fn keep_effects(&mut self, module: &Arc<str>, state: &mut HostState) {
        let effects = &mut state.effects;
        self.outbox.append(&mut effects.remote_calls);
        self.presented.commit(module, &mut effects.output);
        if !effects.watches.is_empty() {
            self.watches
                .extend(effects.watches.drain(..).map(|p| (module.clone(), p)));
        }
        // Written once the commit is durable (`release_effects`).
        state.committed_files.append(&mut effects.files);
    }

    /// Ends a call: takes back what was lent, commits (journal record, effects, captured
    /// changes) or rolls back, moves the tables home and keeps the undo log's allocation.
    fn leave(
        &mut self,
        db: &mut Database,
        loaded: &mut LoadedModule,
        entry: Entry,
        args: &[u8],
        mut result: Result<Vec<u8>, CallError>,
    ) -> Result<Vec<u8>, CallError> {
        let state = loaded.instance.store.data_mut();
        state.in_call = false;
        if let Some(env) = take_env(state) {
            self.slots = env.slots;
            self.by_name = env.by_name;
            *db = env.db;
        }
        let mut nested = std::mem::take(&mut state.nested);
        // Remote calls get their ids and a place in the durable outbox, in the transaction.
        if result.is_ok() && matches!(entry, Entry::Reducer(_)) {
            for call in &mut state.effects.remote_calls {
                call.request = self.next_request;
                self.next_request += 1;
                crate::host_tables::outbox::record(
                    &mut state.tx.tables.tables,
                    &mut state.tx.undo,
                    call,
                );
            }
        }
        // Frame the log record first: a transaction whose record is too large is rolled back
        // before anything of it (effects, events) leaves it.
        let mut recorded = false;
        if let (Ok(_), Entry::Reducer(i)) = (&result, entry)
            && (!state.tx.undo.is_empty() || !nested.is_empty())
        {
            let cause = crate::db::journal::Cause {
                time: self.now_ms,
                module: &loaded.name,
                reducer: &loaded.schema.reducers[i].name,
                args,
                caller: state.caller_node.as_deref(),
                invocation: Some(self.invocation),
            };
            let framed = db.record_commit(
                &cause,
                Some(&state.tx.tables.tables),
                &state.tx.undo,
                &nested,
            );
            match framed {
                Ok(()) => recorded = true,
                Err(e) => result = Err(CallError::Failed(e.to_string())),
            }
        }
        if result.is_err() {
            rollback(&mut state.tx.tables.tables, &mut state.tx.undo);
            rollback_nested(db, nested.drain(..));
            state.effects.discard();
        } else {
            self.keep_effects(&loaded.name, state);
        }
        if let Some(home) = db.module_mut(&loaded.name) {
            *home = std::mem::take(&mut state.tx.tables);
        }
        if recorded {
            let tx = &mut state.tx;
            let own = std::iter::once((&*loaded.name, tx.undo.as_slice(), Some(&mut tx.written)));
            let called = nested
                .iter()
                .map(|n| (n.module.as_str(), n.undo.as_slice(), None));
            let mut followers = Followers {
                publications: &db.publications,
                subscriptions: &self.subscriptions,
                events: &mut self.events,
                feed: &mut self.feed,
            };
            for (module, undo, written) in own.chain(called) {
                if let Some(tables) = db.module(module) {
                    followers.committed(module, &tables.tables, undo, written);
                }
            }
        }
        state.tx.written.clear();
        // Committed (or rolled back, leaving it empty): its rows' vectors serve the next call.
        let tables = db.module(&loaded.name).map_or(&[][..], |m| &m.tables[..]);
        state.tx.recycle_undo(tables);
        std::mem::swap(&mut state.tx.undo, &mut self.undo);
        if matches!(
            result,
            Err(CallError::Trap(_) | CallError::OutOfFuel(_) | CallError::MemoryCap(_))
        ) {
            loaded.poisoned = true;
            // Keep what it logged before trapping.
            self.logs.append(&mut loaded.instance.store.data_mut().logs);
        }
        result
    }
}

#[derive(Clone, Copy)]
pub(super) enum Entry {
    Reducer(usize),
    Query(usize),
}

pub(super) fn check_args<'a>(
    types: &TypeSet,
    tys: impl Iterator<Item = &'a interstice_abi::ValueType>,
    args: &[u8],
) -> Result<(), CallError> {
    let mut r = Reader::new(args);
    for (i, ty) in tys.enumerate() {
        decode_value(ty, types, &mut r)
            .map_err(|e| CallError::InvalidArguments(format!("argument {} ({ty}): {e}", i + 1)))?;
    }
    r.finish()
        .map_err(|e| CallError::InvalidArguments(format!("{e}")))
}

/// SplitMix64 over the invocation position, the logical time and the module name: a seed that
/// depends only on recorded state.
pub(super) fn random_seed(invocation: u64, now_ms: u64, module: &str) -> u64 {
    use interstice_abi::mix::splitmix64 as mix;
    let mut h = mix(invocation) ^ mix(now_ms.rotate_left(17));
    for b in module.bytes() {
        h = mix(h ^ u64::from(b));
    }
    h
}
