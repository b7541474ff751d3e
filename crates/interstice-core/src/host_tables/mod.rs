//! The tables the host keeps inside every module, past the module's own (guests cannot name
//! them): the schedule, the remote calls already answered, the subscriber cursors and the
//! outbox. Being tables, they are transactional, journaled, snapshotted and recovered with
//! the module's own rows.
//!
//! Each file owns one table: its layout, and the reads and writes the engine makes on it.
//! [`module_tables`] appends them to a module's own tables; the database itself knows nothing
//! about them.

pub mod answered;
pub mod cursors;
pub mod outbox;
pub mod schedule;

use crate::db::ModuleTables;
use interstice_abi::ModuleSchema;

/// Empty tables for a validated schema: the module's own, then `__schedule`, `__answered`,
/// `__cursors` and `__outbox`.
pub fn module_tables(schema: &ModuleSchema) -> ModuleTables {
    ModuleTables::new(
        schema,
        vec![
            schedule::new_table(),
            answered::new_table(),
            cursors::new_table(),
            // Request ids come from the wall clock: transport numbering, not state a replay
            // must reproduce.
            outbox::new_table().outside_state_hash(),
        ],
    )
}
