//! Durable tables: installed modules, the commit log and snapshots in a node's data directory.
//!
//! ```text
//! <data dir>/
//!   modules/<install order, 6 digits>-<name>.wasm   installed modules, reloaded on start
//!   log/<first seq>.log                             commit log segments
//!   snapshots/<seq>.snap                            durable tables up to a log position
//!   cache/<sha256>-<engine hash>.cwasm             compiled modules
//! ```
//!
//! Committed transactions are journaled by the [`Database`]; [`Storage::commit`] appends them
//! and makes them durable before anyone is told they committed. On start,
//! [`Storage::open`] reinstalls the modules, loads the newest valid snapshot, replays the log
//! after it and runs the modules' `load` hooks (not `init`). See `docs/storage.md`.

pub mod health;
pub mod history;
pub mod log;
mod reads;
mod recovery;
pub mod snapshot;
mod snapshotter;

use crate::db::Database;
use crate::disk::fsutil;
use crate::error::LoadError;
pub use crate::error::StorageError;
use crate::runtime::Modules;
use bevy_ecs::resource::Resource;
use health::{Fault, FaultKind, StorageHealth};
use interstice_abi::ModuleSchema;
use log::{LogWriter, segment_name};
use snapshotter::{Writing, durable_rows};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// When committed transactions are fsynced. Reducer outcomes are only reported after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// One fsync per frame for everything committed in it (group commit; the default).
    #[default]
    PerFrame,
    /// One fsync per committed transaction.
    EveryCommit,
    /// Records are appended every frame and fsynced at most this often; reducer outcomes
    /// wait for the fsync that covers them.
    Interval(std::time::Duration),
}

/// What happens to log segments a snapshot covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retention {
    /// Delete them once logged tables' changes are copied into [`history`] (the default):
    /// stateful tables keep their latest state only.
    #[default]
    Prune,
    /// Keep them whole: every record, stateful tables' changes included, stays in the log.
    KeepHistory,
}

/// Storage settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// The node's data directory.
    pub dir: PathBuf,
    /// When to fsync.
    pub durability: Durability,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// A snapshot is written after this many records (0: never automatically)...
    pub snapshot_every_records: u64,
    /// ...and, when this is set (the default), not before as many records as the last
    /// snapshot held rows: a snapshot writes every row, so its cost is spread over at least as
    /// many records (a node of millions of rows does not write them all every 100,000
    /// commits), and recovery replays no more records than the snapshot it starts from holds
    /// rows (or `snapshot_every_records`).
    pub snapshot_scales_with_rows: bool,
    /// What to do with segments a snapshot covers.
    pub retention: Retention,
    /// How much history of logged tables to keep once their segments are pruned (by default
    /// all of it; see [`history`]).
    pub history: history::HistoryRetention,
    /// Accept a damaged log by dropping everything from the first damaged record on.
    pub repair: bool,
    /// Largest log record, in bytes: a transaction that would write more is rolled back
    /// before anything of it is written. At most (and by default)
    /// [`MAX_RECORD_LEN`](crate::db::journal::MAX_RECORD_LEN), what recovery reads; at least
    /// [`MIN_RECORD_LIMIT`].
    pub max_record_bytes: usize,
}

/// The lowest [`StorageConfig::max_record_bytes`] accepted (smaller settings are raised to it):
/// host bookkeeping records (a schedule entry, an answered call) must always fit.
pub const MIN_RECORD_LIMIT: usize = 64 * 1024;

impl StorageConfig {
    /// Defaults for a data directory.
    pub fn new(dir: impl Into<PathBuf>) -> StorageConfig {
        StorageConfig {
            dir: dir.into(),
            durability: Durability::PerFrame,
            segment_bytes: 64 * 1024 * 1024,
            snapshot_every_records: 100_000,
            snapshot_scales_with_rows: true,
            retention: Retention::Prune,
            history: history::HistoryRetention::default(),
            repair: false,
            max_record_bytes: crate::db::journal::MAX_RECORD_LEN,
        }
    }
}

/// The OS data directory's `interstice` folder (`~/.local/share/interstice` on Linux), under
/// which the CLI keeps its nodes and games their data; `None` when the user has no home.
pub fn os_data_root() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "interstice").map(|dirs| dirs.data_dir().to_path_buf())
}

impl StorageError {
    /// Whether a full disk (or quota) caused it.
    pub fn fault_kind(&self) -> FaultKind {
        match self {
            StorageError::Io { source, .. } => FaultKind::of(source),
            _ => FaultKind::Io,
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> StorageError {
        StorageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Modules reinstalled, in install order.
    pub modules: Vec<String>,
    /// The snapshot loaded, if any (its last record).
    pub snapshot: Option<u64>,
    /// Log records replayed after it.
    pub replayed: u64,
    /// Bytes of an incomplete last record that were cut off.
    pub torn_tail_bytes: u64,
    /// Bytes dropped by repair.
    pub repaired_bytes: u64,
    /// The logical time of the last recovered transaction, in milliseconds: the node's clock
    /// resumes from there.
    pub logical_time: u64,
    /// Snapshots skipped because they were damaged.
    pub damaged_snapshots: Vec<PathBuf>,
    /// Changes skipped because they belong to modules no longer installed (removed ones).
    /// A fresh snapshot is then taken, so they are never replayed again.
    pub removed_module_changes: u64,
}

/// A node's durable storage, as an ECS resource.
#[derive(Resource, Debug)]
pub struct Storage {
    config: StorageConfig,
    writer: LogWriter,
    installed: Vec<(String, PathBuf)>,
    next_install: u64,
    records_since_snapshot: u64,
    last_snapshot: Option<u64>,
    /// Rows of durable tables when the last snapshot was taken (or storage opened).
    snapshot_rows: u64,
    last_time: u64,
    last_sync: std::time::Instant,
    health: StorageHealth,
    /// The automatic snapshot being written off the frame's thread, if one is.
    writing: Option<Writing>,
    /// Outcomes of committed transactions waiting for an interval fsync.
    pub(crate) held: Vec<crate::queue::ReducerOutcome>,
    /// What history reads share, the queries' (`ctx.as_of`) included (see [`reads`]).
    reader: Arc<reads::HistoryReader>,
}

pub(crate) fn dirs(root: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        root.join("modules"),
        root.join("log"),
        root.join("snapshots"),
    )
}

impl Storage {
    /// Opens a data directory (creating it if needed) and recovers its state into `modules`
    /// and `db`, which must be empty. Enables the database's journal.
    ///
    /// # Errors
    ///
    /// [`StorageError`] when the directory cannot be created or read, a snapshot or log record
    /// is damaged (repair not enabled), the log has a gap, or an installed module no longer
    /// loads.
    pub fn open(
        config: StorageConfig,
        modules: &mut Modules,
        db: &mut Database,
    ) -> Result<(Storage, RecoveryReport), StorageError> {
        let (modules_dir, log_dir, snap_dir) = dirs(&config.dir);
        for dir in [&config.dir, &modules_dir, &log_dir, &snap_dir] {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        }
        // A node killed while writing a file leaves its temporary copy (a snapshot's is as
        // large as the tables): nothing reads those, so they go.
        let history_dir = history::dir(&config.dir);
        for dir in [&modules_dir, &snap_dir, &history_dir] {
            if dir.is_dir() {
                fsutil::remove_temporaries(dir).map_err(|e| StorageError::io(dir, e))?;
            }
        }
        let mut report = RecoveryReport::default();
        modules.set_cache_dir(Some(config.dir.join("cache")));
        modules.set_files_dir(Some(config.dir.join("files")));

        // 1. Modules, in install order, with empty tables and no hooks yet.
        let (installed, next_install) =
            recovery::install_modules(&modules_dir, modules, db, &mut report)?;
        // 2. The newest snapshot that verifies.
        let next_seq = recovery::restore_newest_snapshot(&snap_dir, db, &mut report)?;
        // 3. The log after it.
        let (tail, next_seq) =
            recovery::replay_log(&log_dir, config.repair, next_seq, db, &mut report)?;

        // Everything replayed is durable: its events may be served.
        db.publications.release();
        let (path, len) = tail.unwrap_or_else(|| (log_dir.join(segment_name(next_seq)), 0));
        let writer = LogWriter::open(&log_dir, path, len, config.segment_bytes)?;
        db.enable_journal(next_seq);
        if let Some(journal) = db.journal_mut() {
            journal.set_limit(config.max_record_bytes.max(MIN_RECORD_LIMIT));
        }
        let mut storage = Storage {
            records_since_snapshot: report.replayed,
            last_snapshot: report.snapshot,
            snapshot_rows: durable_rows(db),
            last_time: report.logical_time,
            last_sync: std::time::Instant::now(),
            health: StorageHealth::default(),
            writing: None,
            held: Vec::new(),
            reader: Arc::new(reads::HistoryReader::new(
                config.dir.clone(),
                writer.durable_end(),
            )),
            config,
            writer,
            next_install,
            installed,
        };
        storage.renew_history_layouts(Some(db));
        // Queries read the past (`ctx.as_of`) from this node's history.
        modules.set_past_reads(Some(storage.past_reads()));

        // Changes of removed modules were skipped: a snapshot without them makes sure they are
        // never replayed into a later module of the same name.
        if report.removed_module_changes > 0 {
            storage.write_snapshot(db, true)?;
        }

        // Remote calls that committed but were not answered go out again, with their ids.
        modules.resume_outbox(db);

        // 4. Hooks: restored modules get `load`, not `init`.
        for name in &report.modules {
            modules
                .run_hooks(db, name, false)
                .map_err(|error| StorageError::Module {
                    path: storage.module_path(name).unwrap_or_default(),
                    error,
                })?;
        }
        Ok((storage, report))
    }

    /// The settings.
    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    /// Where an installed module's wasm is kept.
    pub fn module_path(&self, name: &str) -> Option<PathBuf> {
        self.installed
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
    }

    /// Loads a new module durably: installs it, keeps its wasm so it is reloaded on restart,
    /// then runs its `init` and `load` hooks. On any error nothing is left behind, on disk or
    /// in memory.
    ///
    /// # Errors
    ///
    /// [`LoadError::StorageRefused`] while the log is halted after a disk fault;
    /// [`LoadError::Storage`] when the module's code cannot be written; otherwise as
    /// [`Modules::load`].
    pub fn load_module(
        &mut self,
        modules: &mut Modules,
        db: &mut Database,
        wasm: &[u8],
    ) -> Result<Arc<ModuleSchema>, LoadError> {
        // The log segments' indexes were built for the logged tables as they were.
        self.renew_history_layouts(None);
        let loaded = self.install_durably(modules, db, wasm);
        self.renew_history_layouts(Some(db));
        loaded
    }

    fn install_durably(
        &mut self,
        modules: &mut Modules,
        db: &mut Database,
        wasm: &[u8],
    ) -> Result<Arc<ModuleSchema>, LoadError> {
        // Its `init` hook commits: not while commits cannot be made durable.
        if let Some(why) = self.refusal() {
            return Err(LoadError::StorageRefused(why));
        }
        let schema = modules.install(db, wasm)?;
        let (modules_dir, _, _) = dirs(&self.config.dir);
        let path = modules_dir.join(format!("{:06}-{}.wasm", self.next_install, schema.name));
        if let Err(e) = fsutil::write_atomic(&path, wasm) {
            modules.unload(db, &schema.name);
            return Err(StorageError::io(&path, e).into());
        }
        self.next_install += 1;
        if let Err(e) = modules.run_hooks(db, &schema.name, true) {
            let removed = std::fs::remove_file(&path).and_then(|()| fsutil::sync_dir(&modules_dir));
            if let Err(io) = removed {
                tracing::error!(target: "interstice::storage", "cannot remove {}: {io}", path.display());
            }
            return Err(e);
        }
        self.installed.push((schema.name.clone(), path));
        Ok(schema)
    }

    /// Removes a module durably: makes pending commits durable, unloads it, forgets its code,
    /// then writes a snapshot without it, so its logged changes are never replayed again.
    /// A crash part-way leaves the module either installed as it was or removed (recovery
    /// skips the changes of modules whose code is gone).
    ///
    /// # Errors
    ///
    /// [`StorageError`] when pending commits, the removal of the code or the snapshot cannot be
    /// made durable.
    pub fn remove_module(
        &mut self,
        modules: &mut Modules,
        db: &mut Database,
        name: &str,
    ) -> Result<(), StorageError> {
        self.renew_history_layouts(None);
        let removed = self.remove_durably(modules, db, name);
        self.renew_history_layouts(Some(db));
        removed
    }

    fn remove_durably(
        &mut self,
        modules: &mut Modules,
        db: &mut Database,
        name: &str,
    ) -> Result<(), StorageError> {
        self.commit(db)?;
        let (modules_dir, _, _) = dirs(&self.config.dir);
        if let Some(position) = self.installed.iter().position(|(n, _)| n == name) {
            let (_, path) = self.installed.remove(position);
            std::fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
            fsutil::sync_dir(&modules_dir).map_err(|e| StorageError::io(&modules_dir, e))?;
        }
        // Its history is the removed module's, not a later namesake's.
        let next_seq = db.journal_mut().map_or(0, |j| j.next_seq());
        history::record_removal(&self.config.dir, name, next_seq)?;
        modules.unload(db, name);
        self.write_snapshot(db, true)
    }

    /// Upgrades an installed module durably ([`Modules::upgrade`]): its rows carry over.
    /// The steps leave a recoverable state at every point: a snapshot (all pending commits
    /// durable first), the new code next to the old, a snapshot of the migrated tables (with
    /// the old layout recorded in the first, recovery can migrate again), then the old code
    /// deleted. Returns the new schema and, with `drop_data`, what was dropped.
    ///
    /// # Errors
    ///
    /// [`LoadError::Storage`] when a snapshot or the new code cannot be written or the old code
    /// removed; otherwise as [`Modules::upgrade`]. The module is left as it was unless the
    /// error came after the new code was durable.
    pub fn upgrade_module(
        &mut self,
        modules: &mut Modules,
        db: &mut Database,
        wasm: &[u8],
        drop_data: bool,
    ) -> Result<(Arc<ModuleSchema>, Vec<String>), LoadError> {
        self.renew_history_layouts(None);
        let upgraded = self.upgrade_durably(modules, db, wasm, drop_data);
        self.renew_history_layouts(Some(db));
        upgraded
    }

    fn upgrade_durably(
        &mut self,
        modules: &mut Modules,
        db: &mut Database,
        wasm: &[u8],
        drop_data: bool,
    ) -> Result<(Arc<ModuleSchema>, Vec<String>), LoadError> {
        self.commit(db)?;
        self.write_snapshot(db, true)?;
        let before: Vec<Arc<ModuleSchema>> = modules.schemas().cloned().collect();
        let (schema, dropped) = modules.upgrade(db, wasm, drop_data)?;
        let old = before.into_iter().find(|s| s.name == schema.name);
        let (modules_dir, _, _) = dirs(&self.config.dir);
        let path = modules_dir.join(format!("{:06}-{}.wasm", self.next_install, schema.name));
        fsutil::write_atomic(&path, wasm).map_err(|e| StorageError::io(&path, e))?;
        self.next_install += 1;
        self.write_snapshot(db, true)?;
        let started_over =
            old.map_or_else(Vec::new, |old| crate::upgrade::started_over(&old, &schema));
        let old: Vec<PathBuf> = self
            .installed
            .iter()
            .filter(|(n, _)| *n == schema.name)
            .map(|(_, p)| p.clone())
            .collect();
        self.installed.retain(|(n, _)| *n != schema.name);
        for superseded in old {
            std::fs::remove_file(&superseded).map_err(|e| StorageError::io(&superseded, e))?;
        }
        fsutil::sync_dir(&modules_dir).map_err(|e| StorageError::io(&modules_dir, e))?;
        self.installed.push((schema.name.clone(), path));
        // Tables started over (of any persistence: a stateful table's changes are in the log
        // too): their history before now is the old table's.
        let next_seq = db.journal().map_or(0, |j| j.next_seq());
        for table in started_over {
            history::record_started_over(&self.config.dir, (&schema.name, &table), next_seq)?;
        }
        Ok((schema, dropped))
    }

    /// The name of the installed module whose wasm is exactly `wasm`, if any.
    pub fn installed_with_code(&self, wasm: &[u8]) -> Option<String> {
        self.installed.iter().find_map(|(name, path)| {
            let same = std::fs::metadata(path).is_ok_and(|m| m.len() == wasm.len() as u64)
                && std::fs::read(path).is_ok_and(|stored| stored == wasm);
            same.then(|| name.clone())
        })
    }

    /// Appends what the database journaled and makes it durable. Call it before telling
    /// anyone that those transactions committed.
    ///
    /// # Errors
    ///
    /// [`StorageError`] when the append or the fsync fails: the log is halted, and the
    /// transactions must not be reported committed.
    pub fn commit(&mut self, db: &mut Database) -> Result<(), StorageError> {
        self.append(db)?;
        self.sync(db)
    }

    /// Appends what the database journaled, without waiting for the disk. On an error the
    /// records are kept (the log is halted): [`Storage::try_resume`] writes them later.
    ///
    /// # Errors
    ///
    /// [`StorageError`] when the write fails (or the log was halted already).
    pub fn append(&mut self, db: &mut Database) -> Result<(), StorageError> {
        let Some(journal) = db.journal_mut() else {
            return Ok(());
        };
        let records = journal.pending_records();
        let next_seq = journal.next_seq();
        let buffer = journal.take();
        let result = self.writer.append(buffer, next_seq);
        if let Some(spare) = self.writer.reclaim() {
            journal.recycle(spare);
        }
        // Counted even when halted: the writer keeps them and writes them on recovery.
        self.records_since_snapshot += records;
        result.map_err(|e| self.log_failed("log write", e))
    }

    /// Notes the logical time of what is being committed (kept in snapshots).
    pub fn set_time(&mut self, now_ms: u64) {
        self.last_time = self.last_time.max(now_ms);
    }

    /// Makes everything appended durable, then writes a snapshot if one is due. A failed
    /// snapshot is not an error here: what was synced is durable whatever happens to the
    /// snapshot (see [`StorageHealth::snapshot`]).
    ///
    /// # Errors
    ///
    /// [`StorageError`] when the fsync fails: what was appended since the last good fsync is
    /// not durable.
    pub fn sync(&mut self, db: &mut Database) -> Result<(), StorageError> {
        if let Err(e) = self.writer.sync() {
            return Err(self.log_failed("log fsync", e));
        }
        self.recycle_spare(db);
        self.last_sync = std::time::Instant::now();
        self.finish_snapshot(false);
        if self.writing.is_none()
            && self.config.snapshot_every_records > 0
            && self.records_since_snapshot >= self.config.snapshot_every_records
            && (!self.config.snapshot_scales_with_rows
                || self.records_since_snapshot >= self.snapshot_rows)
            && self.health.snapshot.as_ref().is_none_or(Fault::due)
        {
            self.automatic_snapshot(db);
        }
        Ok(())
    }

    /// Whether an [`Interval`](Durability::Interval) fsync is due.
    pub fn sync_due(&self) -> bool {
        match self.config.durability {
            Durability::Interval(every) => self.last_sync.elapsed() >= every,
            _ => true,
        }
    }

    /// The health of storage: whether commits are accepted, and the last faults.
    pub fn health(&self) -> &StorageHealth {
        &self.health
    }

    /// Why a write is refused now (the log is halted), for the caller; `None` when writes
    /// are accepted.
    pub fn refusal(&self) -> Option<String> {
        self.health.refusal()
    }

    /// Tries to make a halted log good again, when a retry is due: cuts the log back to its
    /// last durable byte, writes what was committed since again, fsyncs and verifies it.
    /// Returns whether the log accepts writes now (`true` at once when it was not halted).
    /// Everything committed before the fault is durable after a `true`.
    pub fn try_resume(&mut self, db: &mut Database) -> bool {
        let Some(fault) = self.health.log.as_mut() else {
            return true;
        };
        if !fault.due() {
            return false;
        }
        match self.writer.recover() {
            Ok(()) => {
                if let Some(fault) = self.health.log.take() {
                    tracing::info!(
                        target: "interstice::storage",
                        "storage recovered after {} retries over {:.1?}: the log is verified and writes resume",
                        fault.retries + 1,
                        fault.since.elapsed()
                    );
                }
                self.recycle_spare(db);
                self.last_sync = std::time::Instant::now();
                true
            }
            Err(e) => {
                let kind = e.fault_kind();
                fault.failed_again(e.to_string(), kind, health::RETRY_MAX);
                tracing::warn!(
                    target: "interstice::storage",
                    "storage still failing (retry {}; next in {:.1?}): {e}",
                    fault.retries,
                    fault.backoff
                );
                false
            }
        }
    }

    /// Hands the buffer of records made durable back to the journal, for its allocation.
    fn recycle_spare(&mut self, db: &mut Database) {
        if let (Some(spare), Some(journal)) = (self.writer.reclaim(), db.journal_mut()) {
            journal.recycle(spare);
        }
    }

    /// Records that the log is halted by `error` (once: later errors while halted are the same
    /// fault) and hands the error back.
    fn log_failed(&mut self, operation: &'static str, error: StorageError) -> StorageError {
        if self.health.log.is_none() {
            tracing::error!(
                target: "interstice::storage",
                "{operation} failed, refusing writes until storage recovers: {error}"
            );
            self.health.log = Some(Fault::new(
                operation,
                error.fault_kind(),
                error.to_string(),
                health::RETRY_FIRST,
            ));
        }
        error
    }

    /// The durability setting.
    pub fn durability(&self) -> Durability {
        self.config.durability
    }
}

impl Drop for Storage {
    /// A node that stops leaves its snapshot whole: the one being written is waited for.
    fn drop(&mut self) {
        self.finish_snapshot(true);
    }
}
