//! The table feed: committed changes of the tables the host watches (a game mirroring rows
//! into entities, an inspector), one net change per row and transaction — the same net change
//! table events and published streams describe.
//!
//! A transaction's changes are recorded in one of two ways, with the same result:
//! - **as they are written** ([`WriteLog`]): `table_op` notes each insert, update and delete of
//!   a watched table while the row is at hand, and an update's row is the guest's own encoding
//!   of it (the payload it was decoded from), so nothing is looked up or encoded again at
//!   commit. This covers the common case — a reducer touching each row once, in key order.
//! - **from the undo log** at commit (the fallback): for everything else (a row touched twice,
//!   writes that bypass `table_op`, modules called by other modules), the net change is
//!   computed from the undo log and the rows are looked up and encoded.
//!
//! Either way one transaction's changes become one [`ChangeBatch`] whose rows share one
//! buffer.

use crate::db::changes::{NetChange, RowChangeKind};
use crate::db::table::Table;
use bytes::Bytes;
use interstice_abi::Value;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

mod write_log;
pub(crate) use write_log::WatchedIds;
pub use write_log::WriteLog;

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

/// One row's change inside a [`ChangeBatch`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowChange<'a> {
    /// What happened.
    pub kind: ChangeKind,
    /// The row's primary key.
    pub key: &'a Value,
    /// The row after the change (insert, update) or before it (delete), encoded like a
    /// reducer argument of the row's type.
    pub row: &'a [u8],
}

/// A change as recorded, but for its key: the table by its id within the module, the row by
/// its place in the batch's buffer.
#[derive(Debug, Clone)]
struct Meta {
    table: u32,
    kind: ChangeKind,
    row: Range<usize>,
    /// Where its undo entry is (write log only: to check at commit that every write was seen).
    undo: u32,
    /// An update that left the row as it was: nothing to report (write log only).
    unchanged: bool,
}

/// Recorded changes, their keys apart from the rest: a key is a `Value`, and pushing it
/// inside a larger struct had the compiler build the struct on the stack and copy it whole,
/// which stalls the CPU's store forwarding once per row written.
#[derive(Debug, Default)]
struct Changes {
    meta: Vec<Meta>,
    keys: Vec<Value>,
}

impl Changes {
    fn with_capacity(n: usize) -> Changes {
        Changes {
            meta: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
        }
    }

    fn len(&self) -> usize {
        self.meta.len()
    }

    fn clear(&mut self) {
        self.meta.clear();
        self.keys.clear();
    }

    #[inline(always)]
    fn push(&mut self, meta: Meta, key: &Value) {
        self.meta.push(meta);
        push_clone(&mut self.keys, key);
    }

    /// Drops the updates that changed nothing.
    fn retain_changed(&mut self) {
        if self.meta.iter().all(|m| !m.unchanged) {
            return;
        }
        let mut kept = 0;
        for i in 0..self.meta.len() {
            if !self.meta[i].unchanged {
                self.meta.swap(kept, i);
                self.keys.swap(kept, i);
                kept += 1;
            }
        }
        self.meta.truncate(kept);
        self.keys.truncate(kept);
    }

    fn iter(&self) -> impl Iterator<Item = (&Meta, &Value)> {
        self.meta.iter().zip(&self.keys)
    }
}

/// Appends a clone of `value`, the common numbers written straight into the vector's memory
/// (see [`Changes`]).
#[inline]
#[allow(
    unsafe_code,
    reason = "appends a value without a capacity check the caller already made"
)]
fn push_clone(values: &mut Vec<Value>, value: &Value) {
    values.reserve(1);
    let len = values.len();
    let slot = &mut values.spare_capacity_mut()[0];
    match *value {
        Value::U32(v) => slot.write(Value::U32(v)),
        Value::U64(v) => slot.write(Value::U64(v)),
        Value::I32(v) => slot.write(Value::I32(v)),
        Value::I64(v) => slot.write(Value::I64(v)),
        _ => slot.write(value.clone()),
    };
    // SAFETY: `reserve` made room for one more value, and it was just initialised.
    unsafe { values.set_len(len + 1) };
}

/// What one committed transaction changed in one module's watched tables, in the order it
/// changed them. Cheap to read in bulk (a mirror applying thousands of rows a frame) and to
/// turn into [`TableChange`]s one by one.
#[derive(Debug)]
pub struct ChangeBatch {
    module: Arc<str>,
    /// Watched tables' names by table id (`None`: not watched).
    tables: Arc<[Option<Arc<str>>]>,
    changes: Changes,
    rows: Bytes,
}

impl ChangeBatch {
    /// The module whose tables changed.
    pub fn module(&self) -> &Arc<str> {
        &self.module
    }

    /// How many row changes the batch holds.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether the batch holds no change.
    pub fn is_empty(&self) -> bool {
        self.changes.len() == 0
    }

    /// The watched table's id within the module, if the batch can hold changes of it.
    fn table_id(&self, table: &str) -> Option<u32> {
        self.tables
            .iter()
            .position(|name| name.as_deref() == Some(table))
            .map(|id| id as u32)
    }

    /// Whether any change of the batch is one of `table`'s.
    pub fn touches(&self, table: &str) -> bool {
        self.table_id(table)
            .is_some_and(|id| self.changes.meta.iter().any(|c| c.table == id))
    }

    /// The changes of `table`, oldest first.
    pub fn rows_of<'a>(&'a self, table: &str) -> impl Iterator<Item = RowChange<'a>> + 'a {
        let id = self.table_id(table);
        self.changes
            .iter()
            .filter(move |(c, _)| Some(c.table) == id)
            .map(|(c, key)| RowChange {
                kind: c.kind,
                key,
                row: self.rows.get(c.row.clone()).unwrap_or_default(),
            })
    }

    /// Every change as a [`TableChange`] of its own, oldest first; `wanted` picks the tables
    /// (by name).
    pub fn changes<'a>(
        &'a self,
        mut wanted: impl FnMut(&str) -> bool + 'a,
    ) -> impl Iterator<Item = TableChange> + 'a {
        let wanted: Vec<bool> = self
            .tables
            .iter()
            .map(|name| name.as_deref().is_some_and(&mut wanted))
            .collect();
        self.changes
            .iter()
            .filter(move |(c, _)| wanted.get(c.table as usize).copied().unwrap_or(false))
            .filter_map(|(c, key)| {
                Some(TableChange {
                    module: self.module.clone(),
                    table: self.tables.get(c.table as usize)?.clone()?,
                    kind: c.kind,
                    key: key.clone(),
                    row: self.rows.slice(c.row.clone()),
                })
            })
    }
}

/// Which tables are watched, and what they changed since the host last took it.
#[derive(Debug, Default)]
pub struct TableFeed {
    /// Module → its watched tables (by name, shared with the changes).
    watched: BTreeMap<Arc<str>, Vec<Arc<str>>>,
    batches: Vec<ChangeBatch>,
    /// Rows' buffer size of the last recorded transaction, to size the next one's.
    last_rows: usize,
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

    /// Which of `tables` (a module's, by table id) are watched: what a [`WriteLog`] records.
    pub(crate) fn watched_ids(&self, module: &str, tables: &[Table]) -> WatchedIds {
        match self.watched.get(module) {
            None => Vec::new(),
            Some(watched) => watched_names(watched, tables)
                .map(|n| n.is_some())
                .collect(),
        }
    }

    /// Records what a committed transaction changed in `module`'s watched tables: from
    /// `written` when it holds the whole change, otherwise from the undo log. `tables` are the
    /// module's tables after the transaction. Leaves `written` empty.
    pub fn capture(
        &mut self,
        module: &str,
        change: &NetChange<'_>,
        written: Option<&mut WriteLog>,
    ) {
        let (tables, undo) = (change.tables(), change.undo());
        let Some((module, watched)) = self.watched.get_key_value(module) else {
            if let Some(log) = written {
                log.clear();
            }
            return;
        };
        let names: Arc<[Option<Arc<str>>]> = watched_names(watched, tables)
            .map(Option::<&_>::cloned)
            .collect();
        let (changes, rows) = match written {
            Some(log) if log.covers(undo) => {
                // The next transaction is likely to write as much: size its log alike.
                let capacity = log.changes.len();
                let mut changes =
                    std::mem::replace(&mut log.changes, Changes::with_capacity(capacity));
                changes.retain_changed();
                let rows = std::mem::replace(&mut log.rows, Vec::with_capacity(self.last_rows));
                log.clear();
                (changes, rows)
            }
            log => {
                if let Some(log) = log {
                    log.clear();
                }
                from_net_change(change, &names, self.last_rows)
            }
        };
        if changes.len() == 0 {
            return;
        }
        self.last_rows = rows.len();
        self.batches.push(ChangeBatch {
            module: module.clone(),
            tables: names,
            changes,
            rows: Bytes::from(rows),
        });
    }

    /// Takes the recorded batches, oldest first.
    pub fn take(&mut self) -> Vec<ChangeBatch> {
        std::mem::take(&mut self.batches)
    }
}

/// For each of `tables` (by table id), its name if it is one of `watched`.
fn watched_names<'a>(
    watched: &'a [Arc<str>],
    tables: &'a [Table],
) -> impl Iterator<Item = Option<&'a Arc<str>>> + 'a {
    tables
        .iter()
        .map(|t| watched.iter().find(|w| ***w == *t.schema().name))
}

/// The net change of the watched tables (`names`, by table id), its rows (the new one, or the
/// old one of a delete) encoded into one buffer.
fn from_net_change(
    change: &NetChange<'_>,
    names: &[Option<Arc<str>>],
    capacity: usize,
) -> (Changes, Vec<u8>) {
    let mut changes = Changes::default();
    let mut rows = Vec::with_capacity(capacity);
    for touched in change.rows() {
        let (Some(table), Some(Some(_))) = (
            change.tables().get(touched.table as usize),
            names.get(touched.table as usize),
        ) else {
            continue;
        };
        let (kind, row) = match touched.kind {
            RowChangeKind::Insert => (ChangeKind::Insert, touched.after),
            RowChangeKind::Update => (ChangeKind::Update, touched.after),
            RowChangeKind::Delete => (ChangeKind::Delete, touched.before),
        };
        let Some(row) = row else {
            continue;
        };
        let start = rows.len();
        table.encode_row(row, &mut rows);
        let meta = Meta {
            table: touched.table,
            kind,
            row: start..rows.len(),
            undo: 0,
            unchanged: false,
        };
        changes.push(meta, touched.pk);
    }
    (changes, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::host_table;
    use crate::db::table::Row;
    use interstice_abi::ValueType;

    /// Two tables: `players` (watched) and `other` (not).
    fn tables() -> Vec<Table> {
        let fields = [("id", ValueType::U32), ("name", ValueType::String)];
        vec![
            host_table("players", "Player", &fields, 0, false, Vec::new()),
            host_table("other", "Other", &fields, 0, false, Vec::new()),
        ]
    }

    fn row(id: u32, name: &str) -> Row {
        vec![Value::U32(id), Value::String(name.into())]
    }

    enum Op {
        Insert(u32, Row),
        Update(u32, Row),
        Delete(u32, u32),
        /// An update the write log does not hear of (like a host table write).
        Unrecorded(u32, Row),
    }

    /// Runs `ops` the way `table_op` does, telling the write log, and returns what the feed
    /// captured with the write log and what it captured from the undo log alone, and whether
    /// the write log held the whole change.
    fn capture(setup: &[Row], ops: Vec<Op>) -> (Vec<TableChange>, Vec<TableChange>, bool) {
        let mut tables = tables();
        let mut undo = Vec::new();
        for r in setup {
            tables[0]
                .insert(r.clone(), &mut undo, 0, &mut Vec::new())
                .unwrap();
        }
        undo.clear();
        let (mut recorded, mut computed) = (TableFeed::default(), TableFeed::default());
        for feed in [&mut recorded, &mut computed] {
            feed.watch("m", "players");
        }
        let mut log = WriteLog::default();
        log.begin(recorded.watched_ids("m", &tables));
        for op in ops {
            match op {
                Op::Insert(t, r) => {
                    let mut stored = Vec::new();
                    let table = &mut tables[t as usize];
                    table.insert(r, &mut undo, t, &mut stored).unwrap();
                    log.inserted(t, &undo, &stored);
                }
                Op::Update(t, r) => {
                    let table = &mut tables[t as usize];
                    let mut encoded = Vec::new();
                    table.encode_row(&r, &mut encoded);
                    let changed = table.update(r, &mut undo, t, None).unwrap();
                    log.updated(table, t, &undo, &encoded, changed);
                }
                Op::Delete(t, id) => {
                    let table = &mut tables[t as usize];
                    if table.delete(&Value::U32(id), &mut undo, t) {
                        log.deleted(table, t, &undo);
                    }
                }
                Op::Unrecorded(t, r) => {
                    tables[t as usize].update(r, &mut undo, t, None).unwrap();
                }
            }
        }
        let covered = log.covers(&undo);
        recorded.capture("m", &NetChange::new(&tables, &undo), Some(&mut log));
        computed.capture("m", &NetChange::new(&tables, &undo), None);
        let all = |feed: &mut TableFeed| -> Vec<TableChange> {
            feed.take()
                .iter()
                .flat_map(|b| b.changes(|_| true).collect::<Vec<_>>())
                .collect()
        };
        (all(&mut recorded), all(&mut computed), covered)
    }

    fn change(kind: ChangeKind, r: Row) -> (ChangeKind, Value, Vec<u8>) {
        let mut bytes = Vec::new();
        tables()[0].encode_row(&r, &mut bytes);
        (kind, r[0].clone(), bytes)
    }

    fn summary(changes: &[TableChange]) -> Vec<(ChangeKind, Value, Vec<u8>)> {
        changes
            .iter()
            .inspect(|c| assert_eq!((&*c.module, &*c.table), ("m", "players")))
            .map(|c| (c.kind, c.key.clone(), c.row.to_vec()))
            .collect()
    }

    #[test]
    fn rows_written_once_in_key_order_come_from_the_write_log() {
        let setup = [row(1, "a"), row(2, "b"), row(3, "c"), row(4, "d")];
        let (recorded, computed, covered) = capture(
            &setup,
            vec![
                Op::Update(0, row(1, "A")),
                Op::Insert(1, row(9, "x")), // not watched
                Op::Update(0, row(2, "b")), // unchanged: nothing to report
                Op::Delete(0, 3),
                Op::Insert(0, row(5, "e")),
            ],
        );
        assert!(covered);
        assert_eq!(recorded, computed);
        assert_eq!(
            summary(&recorded),
            [
                change(ChangeKind::Update, row(1, "A")),
                change(ChangeKind::Delete, row(3, "c")),
                change(ChangeKind::Insert, row(5, "e")),
            ]
        );
    }

    #[test]
    fn rows_written_twice_or_out_of_order_are_merged_from_the_undo_log() {
        let setup = [row(1, "a"), row(2, "b"), row(3, "c")];
        // A row inserted, changed and another deleted after a change: one net change each.
        let (recorded, computed, covered) = capture(
            &setup,
            vec![
                Op::Insert(0, row(7, "g")),
                Op::Update(0, row(7, "G")),
                Op::Update(0, row(1, "A")),
                Op::Delete(0, 1),
                Op::Insert(0, row(8, "h")),
                Op::Delete(0, 8),
            ],
        );
        assert!(!covered);
        assert_eq!(recorded, computed);
        assert_eq!(
            summary(&recorded),
            [
                change(ChangeKind::Insert, row(7, "G")),
                change(ChangeKind::Delete, row(1, "a")),
            ]
        );
        // Each row once, but walking the keys backwards.
        let (recorded, computed, covered) = capture(
            &setup,
            vec![Op::Update(0, row(3, "C")), Op::Update(0, row(2, "B"))],
        );
        assert!(!covered);
        assert_eq!(recorded, computed);
        assert_eq!(
            summary(&recorded),
            [
                change(ChangeKind::Update, row(3, "C")),
                change(ChangeKind::Update, row(2, "B")),
            ]
        );
    }

    #[test]
    fn a_write_the_log_did_not_hear_of_falls_back_to_the_undo_log() {
        let setup = [row(1, "a"), row(2, "b")];
        let (recorded, computed, covered) = capture(
            &setup,
            vec![Op::Update(0, row(1, "A")), Op::Unrecorded(0, row(2, "B"))],
        );
        assert!(!covered);
        assert_eq!(recorded, computed);
        assert_eq!(
            summary(&recorded),
            [
                change(ChangeKind::Update, row(1, "A")),
                change(ChangeKind::Update, row(2, "B")),
            ]
        );
    }

    #[test]
    fn batches_read_per_table_and_an_unwatched_module_records_nothing() {
        let mut tables = tables();
        let mut undo = Vec::new();
        tables[0]
            .insert(row(1, "a"), &mut undo, 0, &mut Vec::new())
            .unwrap();
        tables[1]
            .insert(row(2, "b"), &mut undo, 1, &mut Vec::new())
            .unwrap();
        let mut feed = TableFeed::default();
        feed.capture("m", &NetChange::new(&tables, &undo), None);
        assert!(feed.take().is_empty());
        feed.watch("m", "players");
        feed.watch("m", "other");
        feed.capture("m", &NetChange::new(&tables, &undo), None);
        let batches = feed.take();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!((&**batch.module(), batch.len()), ("m", 2));
        assert!(batch.touches("other") && !batch.touches("nothing"));
        let other: Vec<_> = batch.rows_of("other").collect();
        assert_eq!(other.len(), 1);
        assert_eq!(
            (other[0].kind, other[0].key),
            (ChangeKind::Insert, &Value::U32(2))
        );
        assert_eq!(batch.changes(|t| t == "players").count(), 1);
    }
}
