//! Reading history while the node runs: the node's own reads ([`Storage::history`],
//! [`Storage::table_as_of`], [`Storage::row_as_of`]) and the queries' (`ctx.as_of`), which
//! the runtime answers through a [`HistoryReader`] shared with it.
//!
//! Both read the same files and share the in-memory indexes of the log segments not archived
//! yet; a query's reader has no database to look layouts up in, so it keeps a copy of the
//! logged tables' layouts, renewed whenever a module is installed, upgraded or removed (the
//! indexes, built with the old ones, are dropped then).

use super::log::DurableEnd;
use super::{Storage, StorageError, history};
use crate::db::{Database, Table};
use crate::wasm::past::{PastCost, PastReadError, PastReads};
use history::{HistoryError, KeyLayouts, LiveIndexes};
use interstice_abi::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What history reads share: where history lives, how far the log is durable, the log
/// segments' indexes and the layouts they are built with.
#[derive(Debug)]
pub struct HistoryReader {
    root: PathBuf,
    durable: DurableEnd,
    state: Mutex<ReaderState>,
}

/// The indexes and layouts, behind one lock: indexes are built with these layouts.
#[derive(Debug, Default)]
pub(super) struct ReaderState {
    pub(super) live: LiveIndexes,
    pub(super) layouts: KeyLayouts,
}

impl HistoryReader {
    pub(super) fn new(root: PathBuf, durable: DurableEnd) -> HistoryReader {
        HistoryReader {
            root,
            durable,
            state: Mutex::default(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, ReaderState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The segment being written and how much of it is durable, now.
    fn durable(&self) -> (PathBuf, u64) {
        self.durable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads `module`'s `table` with `read`, through the shared indexes, up to the durable
    /// end, within `budget` (fuel); with what it read.
    fn read_past<R>(
        &self,
        (module, table): (&str, &Table),
        budget: u64,
        read: impl FnOnce(history::Source<'_>, &history::Target<'_>) -> Result<R, HistoryError>,
    ) -> Result<(R, PastCost), PastReadError> {
        let (path, len) = self.durable();
        let mut state = self.lock();
        let ReaderState { live, layouts } = &mut *state;
        let source = history::Source {
            root: &self.root,
            durable: (&path, len),
            live,
        };
        // Layouts that miss the table are out of date (a module loaded past storage): the log
        // segments are then read whole rather than indexed with them.
        let layouts = Some(&*layouts).filter(|l| l.has(module, &table.schema().name));
        let target = history::Target {
            module,
            table,
            layouts,
            budget,
            spent: Default::default(),
        };
        let value = read(source, &target).map_err(refusal)?;
        Ok((value, cost(&target.spent)))
    }
}

/// What a read read, for the meter.
fn cost(spent: &history::Spent) -> PastCost {
    PastCost {
        versions: spent.versions.get(),
        bytes: spent.bytes.get(),
    }
}

/// A history error as a query reads it.
fn refusal(error: HistoryError) -> PastReadError {
    match error {
        HistoryError::OverBudget { .. } => PastReadError::OverBudget,
        other => PastReadError::Refused(other.to_string()),
    }
}

impl PastReads for HistoryReader {
    fn row_as_of(
        &self,
        module: &str,
        table: &Table,
        key: &Value,
        seq: u64,
        budget: u64,
    ) -> Result<(Option<Vec<Value>>, PastCost), PastReadError> {
        self.read_past((module, table), budget, |source, target| {
            history::row_as_of(source, target, key, seq)
        })
    }

    fn table_as_of(
        &self,
        module: &str,
        table: &Table,
        seq: u64,
        budget: u64,
    ) -> Result<(Vec<Vec<Value>>, PastCost), PastReadError> {
        self.read_past((module, table), budget, |source, target| {
            history::table_as_of(source, target, seq)
        })
    }
}

impl Storage {
    /// The reader that answers queries' past reads (`ctx.as_of`), for
    /// [`Modules::set_past_reads`](crate::Modules::set_past_reads).
    pub fn past_reads(&self) -> Arc<dyn PastReads> {
        self.reader.clone()
    }

    /// Drops the log segments' indexes (a module's tables are about to change) and, with
    /// `db`, takes the logged tables' layouts as they are now.
    pub(super) fn renew_history_layouts(&self, db: Option<&Database>) {
        let mut state = self.reader.lock();
        state.live.clear();
        if let Some(db) = db {
            state.layouts = history::key_layouts(db);
        }
    }

    /// The versions of a logged table's rows (one row's, with `query.key`) between two log
    /// positions, oldest first, each with the transaction that made it: read from history
    /// and from the log segments not pruned yet (every record appended to them).
    ///
    /// # Errors
    ///
    /// [`history::HistoryError::NoSuchTable`], [`history::HistoryError::NotLogged`] for a
    /// stateful or ephemeral table (they keep no history), or a storage error when a file
    /// cannot be read.
    pub fn history(
        &self,
        db: &Database,
        query: &history::HistoryQuery<'_>,
    ) -> Result<Vec<history::Version>, history::HistoryError> {
        let mut state = self.reader.lock();
        history::read(
            &self.config.dir,
            db,
            query,
            (self.writer.path(), self.writer.synced_len()),
            &mut state.live,
        )
    }

    /// The rows of the logged table `module.table` as they were after transaction `seq` (a
    /// log position, as [`history`](Self::history) gives them), in primary key order: copies,
    /// read from history, that no write reaches. A point past the newest durable transaction
    /// reads the newest state.
    ///
    /// # Errors
    ///
    /// What [`history`](Self::history) refuses, and [`history::HistoryError::Incomplete`] when
    /// history before `seq` is not all kept (retention removed some).
    pub fn table_as_of(
        &self,
        db: &Database,
        module: &str,
        table: &str,
        seq: u64,
    ) -> Result<Vec<Vec<Value>>, history::HistoryError> {
        let table = history::logged_table_in(db, module, table)?;
        let mut state = self.reader.lock();
        let source = self.history_source(&mut state.live);
        let target = history::Target {
            module,
            table,
            layouts: None,
            budget: u64::MAX,
            spent: Default::default(),
        };
        history::table_as_of(source, &target, seq)
    }

    /// The row under `key` of the logged table `module.table` as it was after transaction
    /// `seq` (`None`: there was none); through the history files' indexes, so it costs about
    /// as much as the row's history.
    ///
    /// # Errors
    ///
    /// As [`table_as_of`](Self::table_as_of).
    pub fn row_as_of(
        &self,
        db: &Database,
        (module, table): (&str, &str),
        key: &Value,
        seq: u64,
    ) -> Result<Option<Vec<Value>>, history::HistoryError> {
        let table = history::logged_table_in(db, module, table)?;
        let layouts = history::key_layouts(db);
        let mut state = self.reader.lock();
        let source = self.history_source(&mut state.live);
        let target = history::Target {
            module,
            table,
            layouts: Some(&layouts),
            budget: u64::MAX,
            spent: Default::default(),
        };
        history::row_as_of(source, &target, key, seq)
    }

    /// The last transaction committed at or before logical time `time_ms` that history or
    /// the log holds (`None`: none was); see [`history::last_seq_at`].
    ///
    /// # Errors
    ///
    /// [`StorageError`] when a file cannot be read or holds damage before the point.
    pub fn last_seq_at(&self, time_ms: u64) -> Result<Option<u64>, StorageError> {
        history::last_seq_at(&self.config.dir, time_ms)
    }

    fn history_source<'a>(&'a self, live: &'a mut LiveIndexes) -> history::Source<'a> {
        history::Source {
            root: &self.config.dir,
            durable: (self.writer.path(), self.writer.synced_len()),
            live,
        }
    }
}
