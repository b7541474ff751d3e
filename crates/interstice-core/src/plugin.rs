//! [`IntersticeCorePlugin`]: the engine as resources and one exclusive system.

use crate::config::EngineConfig;
use crate::db::Database;
use crate::error::CallError;
use crate::host_tables::schedule::LogicalClock;
use crate::queue::{
    Invocation, InvocationLog, RecordedFrame, ReducerOutcome, ReducerQueue, Trigger,
};
use crate::runtime::Modules;
use crate::storage::{Durability, Storage};
use crate::wasm::host_calls::log_guest;
use bevy_app::{App, Plugin, Update};
use bevy_ecs::prelude::*;

/// System sets to order game systems against the engine. They run in this order in `Update`.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub enum IntersticeSystems {
    /// Turns inputs (game calls, network, schedules) into queued reducer invocations.
    Ingest,
    /// Runs the reducer queue, one transaction per invocation.
    Reduce,
    /// Publishes what changed (messages, mirrored entities, remote subscribers).
    Publish,
}

/// Adds [`Modules`], [`Database`] and [`ReducerQueue`] to the app and runs the queue every
/// update in [`IntersticeSystems::Reduce`].
#[derive(Debug, Clone, Default)]
pub struct IntersticeCorePlugin {
    /// Limits of the wasm engine.
    pub engine: EngineConfig,
}

impl Plugin for IntersticeCorePlugin {
    fn build(&self, app: &mut App) {
        let modules = match Modules::new(self.engine.clone()) {
            Ok(modules) => modules,
            // Only a broken wasmtime configuration can fail here: no module is involved yet.
            Err(e) => panic!("Interstice cannot start its wasm engine: {e}"),
        };
        app.insert_resource(modules)
            .init_resource::<Database>()
            .init_resource::<ReducerQueue>()
            .init_resource::<LogicalClock>()
            .add_message::<ReducerOutcome>()
            .configure_sets(
                Update,
                (
                    IntersticeSystems::Ingest,
                    IntersticeSystems::Reduce,
                    IntersticeSystems::Publish,
                )
                    .chain(),
            )
            .add_systems(Update, advance_clock.in_set(IntersticeSystems::Ingest))
            .add_systems(Update, run_reducers.in_set(IntersticeSystems::Reduce));
    }
}

/// Runs every queued invocation in order, each as one transaction, then the subscribers their
/// commits triggered (breadth first, within [`EngineConfig::cascade_budget`]), makes what they
/// committed durable (when the node has [`Storage`]) and only then writes a [`ReducerOutcome`]
/// for each.
pub fn run_reducers(world: &mut World) {
    let mut pending = world.resource_mut::<ReducerQueue>().drain();
    let now = world.resource::<LogicalClock>().now_ms();
    record_frame(world, &pending, now);
    let mut outcomes = Vec::with_capacity(pending.len());
    // Taken out for the frame so the queue stays reachable for the invocations events cause.
    let mut storage = world.remove_resource::<Storage>();
    let unopened = world
        .get_resource::<StorageUnavailable>()
        .map(|u| format!("storage could not be opened: {}", u.0));
    world.resource_scope(|world, mut modules: Mut<Modules>| {
        world.resource_scope(|world, mut db: Mut<Database>| {
            modules.set_now(now);
            resume_storage(&mut storage, &mut db, &mut modules, now);
            let halted = refusal(&storage, &unopened);
            // Not while storage refuses writes: due schedule entries stay due.
            if halted.is_none() {
                let mut queue = world.resource_mut::<ReducerQueue>();
                queue_due_entries(&mut db, &mut modules, &mut queue, &mut pending, now);
            }
            let mut frame = Frame {
                modules: &mut modules,
                db: &mut db,
                storage: &mut storage,
                unopened: &unopened,
                outcomes: &mut outcomes,
            };
            let deferred = frame.run_queue(world, &mut pending);
            if !deferred.is_empty() {
                if halted.is_none() {
                    tracing::warn!(
                        target: "interstice",
                        "cascade budget of {} subscriber invocations reached; {} wait for the next frame",
                        frame.modules.config().cascade_budget,
                        deferred.len()
                    );
                }
                world.resource_mut::<ReducerQueue>().defer(deferred.into_iter());
            }
            frame.group_commit();
        });
    });
    if let Some(storage) = storage {
        world.insert_resource(storage);
    }
    world.resource_mut::<ReducerQueue>().recycle(pending);
    if !outcomes.is_empty() {
        world.write_message_batch(outcomes);
    }
}

/// Records the frame's game calls when the node records for replay ([`InvocationLog`]).
fn record_frame(world: &mut World, pending: &std::collections::VecDeque<Invocation>, now: u64) {
    if let Some(mut log) = world.get_resource_mut::<InvocationLog>() {
        let calls = pending
            .iter()
            .filter(|i| i.trigger == Trigger::Call)
            .map(|i| (i.module.clone(), i.reducer.clone(), i.args.clone()))
            .collect();
        log.frames.push(RecordedFrame {
            time_ms: now,
            calls,
        });
    }
}

/// Why a write is refused now: the log is halted, or storage could not be opened.
fn refusal(storage: &Option<Storage>, unopened: &Option<String>) -> Option<String> {
    storage
        .as_ref()
        .and_then(Storage::refusal)
        .or_else(|| unopened.clone())
}

/// Notes the frame's time in storage and retries a halted log (with a growing wait) before
/// anything runs; once it holds again, what committed before the fault is durable.
fn resume_storage(
    storage: &mut Option<Storage>,
    db: &mut Database,
    modules: &mut Modules,
    now: u64,
) {
    if let Some(storage) = storage.as_mut() {
        storage.set_time(now);
        if !storage.health().accepts_writes() && storage.try_resume(db) {
            release_durable(db, modules);
        }
    }
}

/// Puts the due schedule entries at the front of the frame's invocations, in (due, module,
/// id) order, each after the bookkeeping transaction that retires or re-arms it.
fn queue_due_entries(
    db: &mut Database,
    modules: &mut Modules,
    queue: &mut ReducerQueue,
    pending: &mut std::collections::VecDeque<Invocation>,
    now: u64,
) {
    let mut due = Vec::new();
    let names: Vec<String> = db.module_names().map(String::from).collect();
    for name in &names {
        if let Some(tables) = db.module(name) {
            crate::host_tables::schedule::due(name, tables, now, &mut due);
        }
    }
    due.sort_by(|a, b| (a.due, &a.module, a.id).cmp(&(b.due, &b.module, b.id)));
    let mut scheduled = Vec::with_capacity(due.len());
    for entry in due {
        modules.settle_schedule_entry(db, &entry);
        scheduled.push(queue.invocation(
            entry.module,
            entry.reducer,
            entry.args,
            Trigger::Scheduled,
        ));
    }
    for invocation in scheduled.into_iter().rev() {
        pending.push_front(invocation);
    }
}

/// What one frame of [`run_reducers`] works with.
struct Frame<'a> {
    modules: &'a mut Modules,
    db: &'a mut Database,
    storage: &'a mut Option<Storage>,
    unopened: &'a Option<String>,
    outcomes: &'a mut Vec<ReducerOutcome>,
}

impl Frame<'_> {
    /// Runs the invocations in order, and the subscribers their commits trigger after them
    /// (up to the cascade budget); returns the invocations left for the next frame.
    fn run_queue(
        &mut self,
        world: &mut World,
        pending: &mut std::collections::VecDeque<Invocation>,
    ) -> Vec<Invocation> {
        let budget = self.modules.config().cascade_budget;
        let every_commit = self
            .storage
            .as_ref()
            .is_some_and(|s| s.durability() == Durability::EveryCommit);
        let mut cascaded = 0usize;
        let mut events = Vec::new();
        let mut deferred = Vec::new();
        while let Some(invocation) = pending.pop_front() {
            // Storage refuses writes (now, or since a commit of this frame failed): calls
            // are refused without running, events and due schedule entries wait for it to
            // recover.
            if let Some(why) = refusal(self.storage, self.unopened) {
                // Their entries are settled already: refused, they would never run.
                if matches!(
                    invocation.trigger,
                    Trigger::Event { .. } | Trigger::Scheduled
                ) {
                    deferred.push(invocation);
                } else {
                    self.outcomes.push(ReducerOutcome {
                        id: invocation.id,
                        module: invocation.module,
                        reducer: invocation.reducer,
                        result: Err(CallError::Unavailable(why)),
                    });
                }
                continue;
            }
            let result = self.run_one(&invocation, every_commit);
            self.modules.drain_events_into(&mut events);
            if !events.is_empty() {
                let mut queue = world.resource_mut::<ReducerQueue>();
                for event in events.drain(..) {
                    let next = queue.invocation(
                        event.subscriber.module,
                        event.subscriber.reducer,
                        event.args,
                        Trigger::Event {
                            args_checked: event.subscriber.args_match,
                        },
                    );
                    if cascaded < budget {
                        cascaded += 1;
                        pending.push_back(next);
                    } else {
                        deferred.push(next);
                    }
                }
            }
            if let Err(error) = &result {
                log_guest(
                    &invocation.module,
                    1,
                    &format!("reducer `{}` failed: {error}", invocation.reducer),
                );
            }
            self.outcomes.push(ReducerOutcome {
                id: invocation.id,
                module: invocation.module,
                reducer: invocation.reducer,
                result,
            });
        }
        deferred
    }

    /// Runs one invocation as a transaction; with [`Durability::EveryCommit`], makes it
    /// durable before it counts as committed.
    fn run_one(&mut self, invocation: &Invocation, every_commit: bool) -> Result<(), CallError> {
        let modules = &mut *self.modules;
        let handle = match invocation.trigger {
            Trigger::Call | Trigger::Scheduled => {
                modules.reducer(&invocation.module, &invocation.reducer)
            }
            Trigger::Event { .. } => modules.subscriber(&invocation.module, &invocation.reducer),
        };
        let checked = invocation.args_checked
            || matches!(invocation.trigger, Trigger::Event { args_checked: true });
        let mut result = handle.and_then(|handle| {
            if !checked {
                modules.check_reducer_args(handle, &invocation.args)?;
            }
            modules.call_reducer_in(self.db, handle, &invocation.args, invocation.context())
        });
        if every_commit
            && result.is_ok()
            && let Some(storage) = self.storage.as_mut()
            && let Err(e) = storage.commit(self.db)
        {
            result = Err(CallError::NotDurable(in_doubt(&e)));
        }
        result
    }

    /// Group commit: one write and one fsync for the whole frame (or for every interval).
    /// Nobody hears of a commit, and no effect of it (published event, file write, remote
    /// call) leaves the node, before the fsync that covers it.
    fn group_commit(&mut self) {
        let Some(storage) = self.storage.as_mut() else {
            // Nothing to wait for: what committed is as durable as it gets.
            release_durable(self.db, self.modules);
            return;
        };
        let synced = storage.append(self.db).and_then(|()| {
            if storage.sync_due() {
                storage.sync(self.db).map(|()| true)
            } else {
                Ok(false)
            }
        });
        match synced {
            Ok(true) => {
                release_durable(self.db, self.modules);
                let mut released = std::mem::take(&mut storage.held);
                released.append(self.outcomes);
                *self.outcomes = released;
            }
            Ok(false) => storage.held.append(self.outcomes),
            Err(e) => {
                // The commits stay in memory and in the halted log's keeping: written when
                // storage recovers, lost if the node stops first. Their callers hear that now
                // rather than wait an unknown time.
                let message = in_doubt(&e);
                let mut failed = std::mem::take(&mut storage.held);
                failed.append(self.outcomes);
                for outcome in &mut failed {
                    if outcome.result.is_ok() {
                        outcome.result = Err(CallError::NotDurable(message.clone()));
                    }
                }
                *self.outcomes = failed;
            }
        }
    }
}

/// What the callers of transactions whose commit could not be made durable are told.
fn in_doubt(error: &crate::storage::StorageError) -> String {
    format!(
        "{}: {error}; the transaction is kept in memory and written when storage recovers \
         (lost if the node stops before)",
        error.fault_kind()
    )
}

/// Lets out what waited for the commits made so far to be durable: published events, file
/// writes and remote calls.
fn release_durable(db: &mut Database, modules: &mut Modules) {
    db.publications.release();
    modules.release_effects();
}

/// Present when the node was given a data directory that could not be opened: it must not
/// commit anything in memory only, so every reducer call is refused (the node is stopping).
#[derive(Resource, Debug, Clone)]
pub struct StorageUnavailable(pub String);

/// Moves the logical clock by the frame's time (when it follows frames).
pub fn advance_clock(time: Option<Res<bevy_time::Time>>, mut clock: ResMut<LogicalClock>) {
    if clock.follows_frames
        && let Some(time) = time
    {
        clock.advance(time.delta());
    }
}
