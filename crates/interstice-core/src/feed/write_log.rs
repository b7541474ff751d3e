//! [`WriteLog`]: a call's changes to its module's watched tables, recorded as it makes them.

use super::{ChangeKind, Changes, Meta};
use crate::db::table::Table;
use crate::db::tx::Undo;
use interstice_abi::Value;

/// A module's watched tables, as the write log sees them.
pub(crate) type WatchedIds = Vec<bool>;

/// The changes a call made to its module's watched tables, recorded as it made them (see the
/// module docs). Off (and free) unless the call's module has a watched table.
#[derive(Debug, Default)]
pub struct WriteLog {
    /// Watched or not, by table id; empty when recording is off.
    watched: WatchedIds,
    pub(super) changes: Changes,
    pub(super) rows: Vec<u8>,
}

impl WriteLog {
    /// Starts recording writes to the tables marked in `watched` (by table id).
    pub(crate) fn begin(&mut self, watched: WatchedIds) {
        self.clear();
        if watched.iter().any(|w| *w) {
            self.watched = watched;
        }
    }

    /// Stops recording and forgets what was recorded.
    pub(crate) fn clear(&mut self) {
        self.watched.clear();
        self.changes.clear();
        self.rows.clear();
    }

    fn watches(&self, table_id: u32) -> bool {
        self.watched
            .get(table_id as usize)
            .copied()
            .unwrap_or(false)
    }

    /// Records a change whose undo entry is the last of `undo`; `row` writes its encoding.
    fn push(
        &mut self,
        table: u32,
        kind: ChangeKind,
        key: &Value,
        undo: &[Undo],
        unchanged: bool,
        row: impl FnOnce(&mut Vec<u8>),
    ) {
        let start = self.rows.len();
        row(&mut self.rows);
        let meta = Meta {
            table,
            kind,
            row: start..self.rows.len(),
            undo: undo.len().saturating_sub(1) as u32,
            unchanged,
        };
        self.changes.push(meta, key);
    }

    /// Notes an insert into table `table_id` that just pushed its undo entry; `stored` is the
    /// stored row's encoding.
    pub(crate) fn inserted(&mut self, table_id: u32, undo: &[Undo], stored: &[u8]) {
        if !self.watches(table_id) {
            return;
        }
        if let Some(Undo::Inserted { pk, .. }) = undo.last() {
            self.push(table_id, ChangeKind::Insert, pk, undo, false, |rows| {
                rows.extend_from_slice(stored)
            });
        }
    }

    /// Notes an update of `table` (id `table_id`) that just pushed its undo entry; `encoded` is
    /// the new row's encoding and `changed` whether it differs from the old one.
    pub(crate) fn updated(
        &mut self,
        table: &Table,
        table_id: u32,
        undo: &[Undo],
        encoded: &[u8],
        changed: bool,
    ) {
        if !self.watches(table_id) {
            return;
        }
        let pk = usize::from(table.schema().primary_key);
        if let Some(Undo::Updated { old, .. }) = undo.last()
            && let Some(key) = old.get(pk)
        {
            self.push(table_id, ChangeKind::Update, key, undo, !changed, |rows| {
                rows.extend_from_slice(encoded)
            });
        }
    }

    /// Notes a delete from `table` (id `table_id`) that just pushed its undo entry.
    pub(crate) fn deleted(&mut self, table: &Table, table_id: u32, undo: &[Undo]) {
        if !self.watches(table_id) {
            return;
        }
        let pk = usize::from(table.schema().primary_key);
        if let Some(Undo::Deleted { row, .. }) = undo.last()
            && let Some(key) = row.get(pk)
        {
            self.push(table_id, ChangeKind::Delete, key, undo, false, |rows| {
                table.encode_row(row, rows)
            });
        }
    }

    /// Whether the log holds the whole net change of the transaction whose undo log is
    /// `undo`: every write to a watched table was recorded, and no row was touched twice (its
    /// changes would have to be merged).
    pub(super) fn covers(&self, undo: &[Undo]) -> bool {
        if self.watched.is_empty() {
            return false;
        }
        let mut recorded = self.changes.meta.iter().map(|c| c.undo);
        for (at, entry) in undo.iter().enumerate() {
            if self.watches(entry.table()) && recorded.next() != Some(at as u32) {
                return false;
            }
        }
        if recorded.next().is_some() {
            return false;
        }
        // Each row once: proved by strictly ascending (table, key), the way a reducer walks
        // its table; anything else takes the undo-log path, which merges repeats.
        let (meta, keys) = (&self.changes.meta, &self.changes.keys);
        (1..meta.len()).all(|i| (meta[i - 1].table, &keys[i - 1]) < (meta[i].table, &keys[i]))
    }
}
