//! The history timeline, apart from drawing it: the kept transactions that changed the shown
//! table's module (its logged tables), a selected point (`None`: live), the selected
//! transaction's cause and the changes it made, and the shown table as it was after it.
//!
//! Everything here is read from the node's [`Storage`]; every failure (no storage, a table
//! that keeps no history, history cut by retention, a damaged file) becomes a message to
//! show, never a panic.

use interstice::abi::codec::{Reader, decode_value};
use interstice::abi::{ModuleSchema, Value};
use interstice::core::storage::history::{self, HistoryQuery, Version};
use interstice::values::display;
use interstice::{Database, Modules, Storage};
use std::collections::BTreeMap;

/// Most transactions the timeline holds: the newest ones; older ones are left out (and the
/// timeline says so).
pub const MAX_TRANSACTIONS: usize = 500;
/// Most versions one read of a table's history returns while the timeline loads; a longer
/// history is read in pages of this many.
pub const LOAD_PAGE: usize = 10_000;
/// The first load looks this many transactions back from the newest (of any module), then
/// four times as many, until it has [`MAX_TRANSACTIONS`] of the module's: a timeline opened
/// on a long history reads its recent end, not all of it.
pub const FIRST_WINDOW: u64 = 4 * MAX_TRANSACTIONS as u64;
/// How far back (in transactions of any module) the first load looks at most: a module that
/// was quiet for longer shows what it did within it, and says older ones are left out.
pub const MAX_LOOK_BACK: u64 = 1_000_000;
/// Most changed rows of one table the diff of a transaction shows.
pub const MAX_DIFF_ROWS: usize = 200;

/// What the timeline reads: the node's storage (`None`: the node keeps no data directory),
/// its tables and its modules' schemas.
#[derive(Clone, Copy)]
pub struct HistorySource<'a> {
    /// The node's storage.
    pub storage: Option<&'a Storage>,
    /// The node's tables.
    pub db: &'a Database,
    /// The node's modules.
    pub modules: &'a Modules,
}

/// One row changed by a transaction: its key and the row after it (`None`: deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The table.
    pub table: String,
    /// The row's primary key.
    pub key: Value,
    /// The row after the transaction; `None`: it was deleted.
    pub after: Option<Vec<Value>>,
}

/// A kept transaction that changed the module's logged tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// Its sequence number in the log.
    pub seq: u64,
    /// Its logical time, in milliseconds.
    pub time: u64,
    /// The module whose reducer ran.
    pub module: String,
    /// The reducer.
    pub reducer: String,
    /// Its encoded arguments.
    pub args: Vec<u8>,
    /// The node id of the peer whose call it was (`None`: a call made on this node).
    pub caller: Option<String>,
    /// What it changed in the module's logged tables, by table and key.
    pub changes: Vec<Change>,
    /// Whether it changed more rows than were loaded (the rest is left out).
    pub truncated: bool,
}

/// What a transaction did to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The row was not there before.
    Inserted,
    /// The row was there and changed.
    Updated,
    /// The row was removed.
    Deleted,
    /// The row was written, but whether it was there before is not known (history cut).
    Written,
}

/// One row of a transaction's diff: before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct RowDiff {
    /// The table.
    pub table: String,
    /// The row's primary key.
    pub key: Value,
    /// What happened to it.
    pub kind: ChangeKind,
    /// The row before the transaction (`Ok(None)`: there was none; `Err`: why it is not
    /// known).
    pub before: Result<Option<Vec<Value>>, String>,
    /// The row after it (`None`: deleted).
    pub after: Option<Vec<Value>>,
}

/// The selected transaction's cause, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The transaction's sequence number.
    pub seq: u64,
    /// `module.reducer`.
    pub reducer: String,
    /// The arguments: decoded with the reducer's parameters, or hex when they do not decode.
    pub args: String,
    /// Who called: a peer's node id, or "this node".
    pub caller: String,
    /// Its logical time, as text.
    pub time: String,
}

/// The selected point: its cause, its diff and the shown table as of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The transaction.
    pub seq: u64,
    /// Its cause.
    pub cause: Cause,
    /// What it changed (at most [`MAX_DIFF_ROWS`] rows a table).
    pub diff: Vec<RowDiff>,
    /// Changed rows left out of `diff`.
    pub diff_left_out: usize,
    /// The shown table's rows after it, in primary key order, or why they cannot be read.
    pub rows: Result<Vec<Vec<Value>>, String>,
}

/// The timeline of one table's module.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The module owning the shown table.
    pub module: String,
    /// The shown table.
    pub table: String,
    /// The kept transactions loaded, oldest first (the newest [`MAX_TRANSACTIONS`]).
    pub transactions: Vec<Transaction>,
    /// Whether older transactions are kept than those loaded.
    pub older_left_out: bool,
    /// Why there is no timeline (no storage, no logged table) or what failed last.
    pub message: Option<String>,
    /// The selected point; `None`: live.
    pub point: Option<Point>,
    /// Whether anything was loaded yet.
    pub loaded: bool,
    /// Most versions one read returns while loading ([`LOAD_PAGE`] unless changed).
    pub load_page: usize,
    /// The first sequence number the next refresh reads.
    next_seq: u64,
}

impl Timeline {
    /// An empty timeline of `module.table`, showing the live state; [`refresh`](Self::refresh)
    /// loads it.
    pub fn new(module: &str, table: &str) -> Timeline {
        Timeline {
            module: module.into(),
            table: table.into(),
            transactions: Vec::new(),
            older_left_out: false,
            message: None,
            point: None,
            loaded: false,
            load_page: LOAD_PAGE,
            next_seq: 0,
        }
    }

    /// Whether a past point is selected (the table is shown as it was, read-only).
    pub fn is_past(&self) -> bool {
        self.point.is_some()
    }

    /// The selected transaction's sequence number (`None`: live).
    pub fn selected(&self) -> Option<u64> {
        self.point.as_ref().map(|p| p.seq)
    }

    /// Loads the transactions committed since the last refresh (all kept ones the first
    /// time), keeping the newest [`MAX_TRANSACTIONS`].
    pub fn refresh(&mut self, src: HistorySource<'_>) {
        self.loaded = true;
        let Some(storage) = src.storage else {
            self.transactions.clear();
            self.point = None;
            self.message = Some(
                "this node keeps no history (it has no data directory: tables live in memory \
                 only)"
                    .into(),
            );
            return;
        };
        let logged = history::logged_tables(src.db)
            .remove(&self.module)
            .unwrap_or_default();
        if logged.is_empty() {
            self.message = Some(format!(
                "module `{}` has no logged table: it keeps no history",
                self.module
            ));
            return;
        }
        let first_load = self.transactions.is_empty() && self.next_seq == 0;
        let newest = src.db.journal().map_or(0, |j| j.next_seq());
        let mut window = FIRST_WINDOW;
        let (found, dropped) = loop {
            if first_load {
                self.next_seq = newest.saturating_sub(window);
            }
            let mut found: BTreeMap<u64, Transaction> = BTreeMap::new();
            let mut dropped = self.next_seq > 0 && first_load;
            for table in &logged {
                if let Err(e) = self.load_table(storage, src.db, table, &mut found, &mut dropped) {
                    self.message = Some(format!("cannot read the history of `{table}`: {e}"));
                    return;
                }
            }
            let enough = found.len() >= MAX_TRANSACTIONS;
            if !first_load || enough || self.next_seq == 0 || window >= MAX_LOOK_BACK {
                break (found, dropped);
            }
            window = window.saturating_mul(4).min(MAX_LOOK_BACK);
        };
        self.message = None;
        if let Some(last) = found.keys().next_back() {
            self.next_seq = last.saturating_add(1);
        }
        self.transactions.extend(found.into_values());
        let excess = self.transactions.len().saturating_sub(MAX_TRANSACTIONS);
        if excess > 0 || dropped {
            self.older_left_out = true;
        }
        self.transactions.drain(..excess);
    }

    /// Reads one table's versions from `next_seq` on into `found`, keeping the newest
    /// [`MAX_TRANSACTIONS`] transactions (`dropped`: some older ones were left out).
    fn load_table(
        &self,
        storage: &Storage,
        db: &Database,
        table: &str,
        found: &mut BTreeMap<u64, Transaction>,
        dropped: &mut bool,
    ) -> Result<(), history::HistoryError> {
        let mut from_seq = self.next_seq;
        loop {
            let query = HistoryQuery {
                module: &self.module,
                table,
                key: None,
                from_seq,
                to_seq: u64::MAX,
                limit: self.load_page.max(1),
            };
            let mut versions = storage.history(db, &query)?;
            let full = versions.len() >= self.load_page.max(1);
            let (Some(first), Some(last)) = (versions.first(), versions.last()) else {
                return Ok(());
            };
            let (first, last) = (first.seq, last.seq);
            // One transaction changed more rows than a page: keep what was read of it.
            let overflow = full && first == last;
            if full && !overflow {
                // The last transaction may be cut off: the next page reads it again, whole.
                versions.retain(|v| v.seq != last);
                from_seq = last;
            } else if overflow {
                from_seq = last.saturating_add(1);
            }
            for version in versions {
                add_version(found, table, version);
            }
            if overflow && let Some(t) = found.get_mut(&last) {
                t.truncated = true;
            }
            while found.len() > MAX_TRANSACTIONS {
                found.pop_first();
                *dropped = true;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Selects the transaction `seq` (`None`: back to live) and reads what it shows.
    pub fn select(&mut self, seq: Option<u64>, src: HistorySource<'_>) {
        self.point = seq.and_then(|seq| self.read_point(seq, src));
    }

    /// Back to the live state.
    pub fn back_to_live(&mut self) {
        self.point = None;
    }

    /// One transaction back: from live, the newest; from the oldest loaded, stays.
    pub fn step_back(&mut self, src: HistorySource<'_>) {
        let index = match self.selected_index() {
            None => self.transactions.len().checked_sub(1),
            Some(i) => Some(i.saturating_sub(1)),
        };
        if let Some(seq) = index.and_then(|i| self.transactions.get(i)).map(|t| t.seq) {
            self.select(Some(seq), src);
        }
    }

    /// One transaction forward: from the newest, back to live.
    pub fn step_forward(&mut self, src: HistorySource<'_>) {
        let Some(i) = self.selected_index() else {
            return;
        };
        let next = self.transactions.get(i + 1).map(|t| t.seq);
        self.select(next, src);
    }

    /// Where the selected transaction is in [`transactions`](Self::transactions).
    pub fn selected_index(&self) -> Option<usize> {
        let seq = self.selected()?;
        self.transactions.iter().position(|t| t.seq == seq)
    }

    fn read_point(&self, seq: u64, src: HistorySource<'_>) -> Option<Point> {
        let index = self.transactions.iter().position(|t| t.seq == seq)?;
        let transaction = &self.transactions[index];
        let rows = match src.storage {
            Some(storage) => storage
                .table_as_of(src.db, &self.module, &self.table, seq)
                .map_err(|e| e.to_string()),
            None => Err("this node keeps no history".into()),
        };
        let (diff, diff_left_out) = self.diff(index, src);
        Some(Point {
            seq,
            cause: cause(transaction, src.modules),
            diff,
            diff_left_out,
            rows,
        })
    }

    /// The rows the transaction at `index` changed, before and after, at most
    /// [`MAX_DIFF_ROWS`] a table (and how many were left out).
    fn diff(&self, index: usize, src: HistorySource<'_>) -> (Vec<RowDiff>, usize) {
        let transaction = &self.transactions[index];
        let mut per_table: BTreeMap<&str, usize> = BTreeMap::new();
        let mut diff = Vec::new();
        let mut left_out = 0;
        for change in &transaction.changes {
            let shown = per_table.entry(&change.table).or_default();
            if *shown == MAX_DIFF_ROWS {
                left_out += 1;
                continue;
            }
            *shown += 1;
            let before = self.before(index, change, src);
            let kind = match (&before, &change.after) {
                (_, None) => ChangeKind::Deleted,
                (Ok(None), Some(_)) => ChangeKind::Inserted,
                (Ok(Some(_)), Some(_)) => ChangeKind::Updated,
                (Err(_), Some(_)) => ChangeKind::Written,
            };
            diff.push(RowDiff {
                table: change.table.clone(),
                key: change.key.clone(),
                kind,
                before,
                after: change.after.clone(),
            });
        }
        (diff, left_out + usize::from(transaction.truncated))
    }

    /// The row `change` touched, as it was before the transaction at `index`: from the
    /// loaded transactions when one of them changed it, else from storage.
    fn before(
        &self,
        index: usize,
        change: &Change,
        src: HistorySource<'_>,
    ) -> Result<Option<Vec<Value>>, String> {
        let earlier = self.transactions[..index].iter().rev().find_map(|t| {
            t.changes
                .iter()
                .find(|c| c.table == change.table && c.key == change.key)
        });
        if let Some(earlier) = earlier {
            return Ok(earlier.after.clone());
        }
        let seq = self.transactions[index].seq;
        let Some(previous) = seq.checked_sub(1) else {
            return Ok(None);
        };
        let storage = src.storage.ok_or("this node keeps no history")?;
        storage
            .row_as_of(src.db, (&self.module, &change.table), &change.key, previous)
            .map_err(|e| e.to_string())
    }
}

/// Adds one version to its transaction in `found`.
fn add_version(found: &mut BTreeMap<u64, Transaction>, table: &str, version: Version) {
    let transaction = found.entry(version.seq).or_insert_with(|| Transaction {
        seq: version.seq,
        time: version.time,
        module: version.module.clone(),
        reducer: version.reducer.clone(),
        args: version.args.to_vec(),
        caller: version.caller.clone(),
        changes: Vec::new(),
        truncated: false,
    });
    transaction.changes.push(Change {
        table: table.to_string(),
        key: version.key,
        after: version.row,
    });
}

/// A transaction's cause as text: its arguments decoded with the reducer's parameters when
/// its module is loaded and they fit, else in hex.
pub fn cause(transaction: &Transaction, modules: &Modules) -> Cause {
    let schema = modules.schema(&transaction.module);
    let args = schema
        .and_then(|schema| decode_args(schema, &transaction.reducer, &transaction.args))
        .unwrap_or_else(|| hex(&transaction.args));
    Cause {
        seq: transaction.seq,
        reducer: format!("{}.{}", transaction.module, transaction.reducer),
        args,
        caller: caller_text(transaction.caller.as_deref()),
        time: time_text(transaction.time),
    }
}

/// Who made a call: a peer's node id, or "this node" (the game, a schedule, a subscription).
pub fn caller_text(caller: Option<&str>) -> String {
    caller.map_or_else(|| "this node".into(), str::to_string)
}

/// A logical time in milliseconds, as seconds.
pub fn time_text(time_ms: u64) -> String {
    format!("{}.{:03} s", time_ms / 1000, time_ms % 1000)
}

fn decode_args(schema: &ModuleSchema, reducer: &str, args: &[u8]) -> Option<String> {
    let reducer = schema.reducers.iter().find(|r| r.name == reducer)?;
    let mut reader = Reader::new(args);
    let mut texts = Vec::with_capacity(reducer.args.len());
    for arg in &reducer.args {
        let value = decode_value(&arg.ty, &schema.types, &mut reader).ok()?;
        texts.push(format!(
            "{}: {}",
            arg.name,
            display(&value, &arg.ty, &schema.types)
        ));
    }
    reader.finish().ok()?;
    Some(format!("({})", texts.join(", ")))
}

/// Bytes as hex, for arguments that do not decode.
pub fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "(no arguments)".into();
    }
    let digits: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_times_and_hex_read_plainly() {
        assert_eq!(caller_text(None), "this node");
        assert_eq!(caller_text(Some("ab12")), "ab12");
        assert_eq!(time_text(12_345), "12.345 s");
        assert_eq!(time_text(7), "0.007 s");
        assert_eq!(hex(&[0, 0xff, 0x10]), "0x00ff10");
        assert_eq!(hex(&[]), "(no arguments)");
    }
}
