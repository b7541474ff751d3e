//! Transactions: changes are applied in place and recorded in an undo log, so a reducer's reads
//! see its own writes, commit is dropping the log, and rollback replays it backwards.

use super::table::{Row, Table};
use interstice_abi::Value;

/// How to take back one change.
#[derive(Debug)]
pub enum Undo {
    /// A row was inserted: remove it.
    Inserted {
        /// Table id within the module.
        table: u32,
        /// Its primary key.
        pk: Value,
    },
    /// A row was removed: put it back.
    Deleted {
        /// Table id within the module.
        table: u32,
        /// The removed row.
        row: Row,
    },
    /// A row was replaced: put the old one back.
    Updated {
        /// Table id within the module.
        table: u32,
        /// The row before the change.
        old: Row,
    },
}

impl Undo {
    /// The table (id within the module) the change was made to.
    pub fn table(&self) -> u32 {
        match self {
            Undo::Inserted { table, .. }
            | Undo::Deleted { table, .. }
            | Undo::Updated { table, .. } => *table,
        }
    }
}

/// What a module called inside another module's transaction changed: kept until the whole
/// transaction commits (journaled with it) or fails (rolled back with it).
#[derive(Debug)]
pub struct NestedCommit {
    /// The called module.
    pub module: String,
    /// Its changes, oldest first.
    pub undo: Vec<Undo>,
}

/// Takes back every change in `undo`, newest first, and empties it.
pub fn rollback(tables: &mut [Table], undo: &mut Vec<Undo>) {
    while let Some(change) = undo.pop() {
        match change {
            Undo::Inserted { table, pk } => {
                if let Some(t) = tables.get_mut(table as usize) {
                    t.remove_row(&pk);
                }
            }
            Undo::Deleted { table, row } | Undo::Updated { table, old: row } => {
                if let Some(t) = tables.get_mut(table as usize) {
                    t.restore_row(row);
                }
            }
        }
    }
}
