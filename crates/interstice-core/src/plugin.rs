//! [`IntersticeCorePlugin`]: the engine as resources and one exclusive system.

use crate::config::EngineConfig;
use crate::db::Database;
use crate::error::CallError;
use crate::queue::{InvocationLog, RecordedFrame, ReducerOutcome, ReducerQueue, Trigger};
use crate::runtime::Modules;
use crate::schedule::LogicalClock;
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
    let mut outcomes = Vec::with_capacity(pending.len());
    // Taken out for the frame so the queue stays reachable for the invocations events cause.
    let mut storage = world.remove_resource::<Storage>();
    let unopened = world
        .get_resource::<StorageUnavailable>()
        .map(|u| format!("storage could not be opened: {}", u.0));
    let refusal = |storage: &Option<Storage>| {
        storage
            .as_ref()
            .and_then(Storage::refusal)
            .or_else(|| unopened.clone())
    };
    world.resource_scope(|world, mut modules: Mut<Modules>| {
        world.resource_scope(|world, mut db: Mut<Database>| {
            let every_commit = storage
                .as_ref()
                .is_some_and(|s| s.durability() == Durability::EveryCommit);
            modules.set_now(now);
            if let Some(storage) = storage.as_mut() {
                storage.set_time(now);
                // A halted log is retried (with a growing wait) before anything runs; once
                // it holds again, what committed before the fault is durable.
                if !storage.health().accepts_writes() && storage.try_resume(&mut db) {
                    release_durable(&mut db, &mut modules);
                }
            }
            let halted = refusal(&storage);
            // Due schedule entries run first, in (due, module, id) order, each after the
            // bookkeeping transaction that retires or re-arms it. Not while storage refuses
            // writes: they stay due.
            let mut due = Vec::new();
            if halted.is_none() {
                let names: Vec<String> = db.module_names().map(String::from).collect();
                for name in &names {
                    if let Some(tables) = db.module(name) {
                        crate::schedule::due(name, tables, now, &mut due);
                    }
                }
            }
            due.sort_by(|a, b| (a.due, &a.module, a.id).cmp(&(b.due, &b.module, b.id)));
            let mut queue = world.resource_mut::<ReducerQueue>();
            let mut scheduled = Vec::with_capacity(due.len());
            for entry in due {
                modules.settle_schedule_entry(&mut db, &entry);
                scheduled.push(queue.invocation(entry.module, entry.reducer, entry.args, Trigger::Scheduled));
            }
            for invocation in scheduled.into_iter().rev() {
                pending.push_front(invocation);
            }
            let budget = modules.config().cascade_budget;
            let mut cascaded = 0usize;
            let mut events = Vec::new();
            let mut deferred = Vec::new();
            while let Some(invocation) = pending.pop_front() {
                // Storage refuses writes (now, or since a commit of this frame failed): calls
                // are refused without running, events and due schedule entries wait for it to
                // recover.
                if let Some(why) = refusal(&storage) {
                    // Their entries are settled already: refused, they would never run.
                    if matches!(invocation.trigger, Trigger::Event { .. } | Trigger::Scheduled) {
                        deferred.push(invocation);
                    } else {
                        outcomes.push(ReducerOutcome {
                            id: invocation.id,
                            module: invocation.module,
                            reducer: invocation.reducer,
                            result: Err(CallError::Unavailable(why)),
                        });
                    }
                    continue;
                }
                let handle = match invocation.trigger {
                    Trigger::Call | Trigger::Scheduled => {
                        modules.reducer(&invocation.module, &invocation.reducer)
                    }
                    Trigger::Event { .. } => {
                        modules.subscriber(&invocation.module, &invocation.reducer)
                    }
                };
                let checked = invocation.args_checked
                    || matches!(invocation.trigger, Trigger::Event { args_checked: true });
                modules.set_invocation(invocation.id.0);
                modules.set_origin(invocation.origin.clone());
                modules.set_cursor(invocation.cursor.clone());
                let mut result = handle.and_then(|handle| {
                    if !checked {
                        modules.check_reducer_args(handle, &invocation.args)?;
                    }
                    modules.call_reducer(&mut db, handle, &invocation.args)
                });
                if every_commit
                    && result.is_ok()
                    && let Some(storage) = storage.as_mut()
                    && let Err(e) = storage.commit(&mut db)
                {
                    result = Err(CallError::NotDurable(in_doubt(&e)));
                }
                modules.drain_events_into(&mut events);
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
                outcomes.push(ReducerOutcome {
                    id: invocation.id,
                    module: invocation.module,
                    reducer: invocation.reducer,
                    result,
                });
            }
            if !deferred.is_empty() {
                if halted.is_none() {
                    tracing::warn!(
                        target: "interstice",
                        "cascade budget of {budget} subscriber invocations reached; {} wait for the next frame",
                        deferred.len()
                    );
                }
                world.resource_mut::<ReducerQueue>().defer(deferred.into_iter());
            }
            // Group commit: one write and one fsync for the whole frame (or for every
            // interval). Nobody hears of a commit, and no effect of it (published event, file
            // write, remote call) leaves the node, before the fsync that covers it.
            if let Some(storage) = storage.as_mut() {
                let synced = storage.append(&mut db).and_then(|()| {
                    if storage.sync_due() {
                        storage.sync(&mut db).map(|()| true)
                    } else {
                        Ok(false)
                    }
                });
                match synced {
                    Ok(true) => {
                        release_durable(&mut db, &mut modules);
                        let mut released = std::mem::take(&mut storage.held);
                        released.append(&mut outcomes);
                        outcomes = released;
                    }
                    Ok(false) => storage.held.append(&mut outcomes),
                    Err(e) => {
                        // The commits stay in memory and in the halted log's keeping: written
                        // when storage recovers, lost if the node stops first. Their callers
                        // hear that now rather than wait an unknown time.
                        let message = in_doubt(&e);
                        let mut failed = std::mem::take(&mut storage.held);
                        failed.append(&mut outcomes);
                        for outcome in &mut failed {
                            if outcome.result.is_ok() {
                                outcome.result = Err(CallError::NotDurable(message.clone()));
                            }
                        }
                        outcomes = failed;
                    }
                }
            } else {
                // Nothing to wait for: what committed is as durable as it gets.
                release_durable(&mut db, &mut modules);
            }
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
