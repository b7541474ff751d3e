//! What committed calls leave for the node once their commit is durable (remote calls, file
//! writes, subscriber events), and the bookkeeping transactions the node runs for them
//! (answered remote calls, due schedule entries).

use super::Modules;
use crate::db::Database;
use crate::events::EventInvocation;

impl Modules {
    /// Forgets an answered remote call: takes it out of `module`'s outbox in a bookkeeping
    /// transaction (journaled like any other), so a restart does not send it again.
    pub fn remote_call_answered(&mut self, db: &mut Database, module: &str, request: u64) {
        let now = self.now_ms;
        let Some(tables) = db.module_mut(module) else {
            return;
        };
        let mut undo = std::mem::take(&mut self.undo);
        if crate::host_tables::outbox::remove(&mut tables.tables, &mut undo, request)
            && let Err(e) =
                db.record_bookkeeping(now, module, crate::host_tables::outbox::OUTBOX_TABLE, &undo)
        {
            tracing::error!(target: "interstice", "forgetting answered call {request}: {e}");
        }
        undo.clear();
        self.undo = undo;
    }

    /// After recovery: numbers new remote calls above every id still in an outbox, and sends
    /// every call still there again (they are durable: they committed before the restart).
    pub fn resume_outbox(&mut self, db: &Database) {
        self.next_request = self
            .next_request
            .max(crate::host_tables::outbox::first_free_id(db));
        let mut pending = crate::host_tables::outbox::pending(db);
        pending.append(&mut self.outbox_durable);
        self.outbox_durable = pending;
    }

    /// Runs the bookkeeping transaction of a due schedule entry: removes it, or moves a
    /// repeating one to its next time. Journaled like any transaction.
    pub fn settle_schedule_entry(
        &mut self,
        db: &mut Database,
        entry: &crate::host_tables::schedule::DueEntry,
    ) {
        let now = self.now_ms;
        let Some(tables) = db.module_mut(&entry.module) else {
            return;
        };
        let Some(index) = tables
            .tables
            .iter()
            .position(|t| t.schema().name == crate::host_tables::schedule::SCHEDULE_TABLE)
        else {
            return;
        };
        let mut undo = std::mem::take(&mut self.undo);
        let table = &mut tables.tables[index];
        let id = interstice_abi::Value::U64(entry.id);
        match crate::host_tables::schedule::after_run(entry, now) {
            None => {
                table.delete(&id, &mut undo, index as u32);
            }
            Some(row) => {
                if let Err(e) = table.update(row, &mut undo, index as u32, None) {
                    tracing::error!(target: "interstice", "cannot reschedule {}: {e}", entry.reducer);
                }
            }
        }
        if let Err(e) = db.record_bookkeeping(
            now,
            &entry.module,
            crate::host_tables::schedule::SCHEDULE_TABLE,
            &undo,
        ) {
            tracing::error!(target: "interstice", "schedule bookkeeping of {}: {e}", entry.reducer);
        }
        undo.clear();
        self.undo = undo;
    }

    /// Takes the reducer calls to other nodes that durable transactions made, in order (the
    /// network layer sends them).
    pub fn take_remote_calls(&mut self) -> Vec<crate::host_tables::outbox::RemoteCall> {
        std::mem::take(&mut self.outbox_durable)
    }

    /// Lets out the effects of every transaction committed so far, once the caller has made
    /// those commits durable: file writes reach the disk, remote calls become
    /// [`take_remote_calls`](Modules::take_remote_calls)'s.
    pub fn release_effects(&mut self) {
        self.outbox_durable.append(&mut self.outbox);
        for (name, root, files) in std::mem::take(&mut self.orphan_files) {
            crate::wasm::files::apply(&root, &name, files);
        }
        for loaded in self.slots.iter_mut().flatten() {
            let state = loaded.instance.store.data_mut();
            if state.committed_files.is_empty() {
                continue;
            }
            let files = std::mem::take(&mut state.committed_files);
            if let Some(root) = state.files_root.clone() {
                crate::wasm::files::apply(&root, &loaded.name, files);
            }
        }
    }

    /// Takes the subscriber invocations caused by the transactions committed since the last
    /// call, in order.
    pub fn take_events(&mut self) -> Vec<EventInvocation> {
        std::mem::take(&mut self.events)
    }

    /// Moves the pending subscriber invocations into `out` (in order), keeping this buffer's
    /// allocation for the next transaction.
    pub fn drain_events_into(&mut self, out: &mut Vec<EventInvocation>) {
        out.append(&mut self.events);
    }
}
