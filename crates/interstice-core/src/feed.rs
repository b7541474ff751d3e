//! The table feed: committed changes of the tables the host watches (a game mirroring rows
//! into entities, an inspector), captured from each transaction's undo log the same way table
//! events are, so the host sees one net change per row and transaction.

use crate::db::table::Table;
use crate::db::tx::Undo;
use bytes::Bytes;
use interstice_abi::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// It was inserted.
    Insert,
    /// It changed.
    Update,
    /// It was deleted.
    Delete,
}

/// A committed change to a watched table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableChange {
    /// The module owning the table.
    pub module: Arc<str>,
    /// The table.
    pub table: Arc<str>,
    /// What happened.
    pub kind: ChangeKind,
    /// The row's primary key.
    pub key: Value,
    /// The row after the change (insert, update) or before it (delete), encoded like a
    /// reducer argument of the row's type. The rows of one transaction share one buffer.
    pub row: Bytes,
}

/// Which tables are watched, and what they changed since the host last took it.
#[derive(Debug, Default)]
pub struct TableFeed {
    /// Module → its watched tables (by name, shared with the changes).
    watched: BTreeMap<Arc<str>, Vec<Arc<str>>>,
    changes: Vec<TableChange>,
    /// Changes of the transaction being captured, waiting for their rows' shared buffer.
    pending: Vec<Pending>,
}

/// A change whose row lies at `range` of the transaction's row buffer.
#[derive(Debug)]
struct Pending {
    table: Arc<str>,
    kind: ChangeKind,
    key: Value,
    range: std::ops::Range<usize>,
}

impl TableFeed {
    /// Starts recording changes of `module.table` (the table need not exist yet).
    pub fn watch(&mut self, module: &str, table: &str) {
        let tables = self.watched.entry(Arc::from(module)).or_default();
        if !tables.iter().any(|t| &**t == table) {
            tables.push(Arc::from(table));
        }
    }

    /// Whether any table of `module` is watched (the cheap check on every commit).
    pub fn watches_module(&self, module: &str) -> bool {
        self.watched.contains_key(module)
    }

    /// Records what a committed transaction changed in `module`'s watched tables.
    pub fn capture(&mut self, module: &str, tables: &[Table], undo: &[Undo]) {
        let Some((module, watched)) = self.watched.get_key_value(module) else {
            return;
        };
        // One buffer for all rows of the transaction: one allocation instead of one per row.
        let mut rows = Vec::new();
        for touched in crate::db::changes::touched(tables, undo) {
            let Some(table) = tables.get(touched.table as usize) else {
                continue;
            };
            let Some(name) = watched.iter().find(|t| ***t == *table.schema().name) else {
                continue;
            };
            let after = table.get(touched.pk);
            let (kind, row) = match (touched.before, after) {
                (None, Some(new)) => (ChangeKind::Insert, new.as_slice()),
                (Some(old), None) => (ChangeKind::Delete, old),
                (Some(old), Some(new)) if old != new.as_slice() => {
                    (ChangeKind::Update, new.as_slice())
                }
                _ => continue,
            };
            let start = rows.len();
            table.encode_row(row, &mut rows);
            self.pending.push(Pending {
                table: name.clone(),
                kind,
                key: touched.pk.clone(),
                range: start..rows.len(),
            });
        }
        let rows = Bytes::from(rows);
        self.changes
            .extend(self.pending.drain(..).map(|p| TableChange {
                module: module.clone(),
                table: p.table,
                kind: p.kind,
                key: p.key,
                row: rows.slice(p.range),
            }));
    }

    /// Takes the recorded changes, oldest first.
    pub fn drain(&mut self) -> std::vec::Drain<'_, TableChange> {
        self.changes.drain(..)
    }
}
