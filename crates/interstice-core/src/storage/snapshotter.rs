//! Taking snapshots: when one is due, capturing it on the frame's thread, writing it on a
//! thread of its own, and pruning the log segments and older snapshots it covers.

use super::health::{self, Fault};
use super::{Retention, Storage, StorageError, dirs, history, log::list_segments, snapshot};
use crate::db::Database;
use crate::disk::fsutil;
use interstice_abi::Persistence;
use std::path::{Path, PathBuf};

/// An automatic snapshot captured on the frame's thread and written by a thread of its own:
/// encoding the file, writing it and its fsync (most of a snapshot's cost) no longer stop a
/// frame. The log was rotated when it was captured, so what it covers is whole segments,
/// pruned only once the file is durable.
#[derive(Debug)]
pub(super) struct Writing {
    /// The last record it covers.
    seq: u64,
    /// Records it covers that were counted since the previous snapshot: counted again if it
    /// fails, so the next try is due as before.
    records: u64,
    /// Rows it holds: the next snapshot waits for as many records, once this one is durable.
    rows: u64,
    /// The snapshot file, and how copying the covered segments into history went (`None`:
    /// segments are kept whole).
    thread: std::thread::JoinHandle<Result<(PathBuf, Option<Archived>), StorageError>>,
}

impl Storage {
    /// A snapshot because enough records were written since the last; a failure is recorded
    /// and retried later, with a growing wait.
    pub(super) fn automatic_snapshot(&mut self, db: &mut Database) {
        if let Err(e) = self.start_snapshot(db) {
            // The log could not start a new segment: that halted the log and is reported
            // there.
            if self.health.log.is_none() {
                self.report_snapshot_failure(e);
            }
        }
    }

    /// Captures a snapshot and hands it to a thread to write (see [`Writing`]).
    fn start_snapshot(&mut self, db: &mut Database) -> Result<(), StorageError> {
        let Some(seq) = self.snapshot_position(db, false)? else {
            return Ok(());
        };
        let data = snapshot::capture(db, seq, self.last_time);
        let rows = durable_rows(db);
        if let Err(e) = self.writer.rotate(seq + 1) {
            return Err(self.log_failed("log rotation", e));
        }
        let (_, log_dir, snap_dir) = dirs(&self.config.dir);
        let archive = self.archive_job(db, seq, log_dir);
        let thread = std::thread::Builder::new()
            .name("interstice-snapshot".into())
            .spawn(move || {
                let written = snapshot::write(&snap_dir, &data)?;
                Ok((written, archive.map(|archive| archive.run())))
            })
            .map_err(|e| StorageError::io(&self.config.dir, e))?;
        self.writing = Some(Writing {
            seq,
            records: std::mem::take(&mut self.records_since_snapshot),
            rows,
            thread,
        });
        Ok(())
    }

    /// Takes the result of the snapshot being written, if it is done (or, with `wait`, once it
    /// is): on success it becomes the last snapshot and what it covers is pruned; a failure is
    /// reported in [`StorageHealth::snapshot`] and tried again later.
    pub(super) fn finish_snapshot(&mut self, wait: bool) {
        let Some(writing) = self
            .writing
            .take_if(|writing| wait || writing.thread.is_finished())
        else {
            return;
        };
        let written = writing.thread.join().unwrap_or_else(|_| {
            Err(StorageError::Encode(
                "the thread writing the snapshot panicked".into(),
            ))
        });
        match written {
            Ok((_, archived)) => {
                self.last_snapshot = Some(writing.seq);
                self.snapshot_rows = writing.rows;
                if let Some(Err(e)) = archived {
                    self.archive_failed(e);
                    return;
                }
                self.prune_covered(writing.seq);
                if let Some(fault) = self.health.snapshot.take() {
                    tracing::info!(
                        target: "interstice::storage",
                        "snapshots work again after {} failed retries",
                        fault.retries
                    );
                }
            }
            Err(e) => {
                self.records_since_snapshot += writing.records;
                self.report_snapshot_failure(e);
            }
        }
    }

    /// Reports a failed automatic snapshot (the log still holds every commit).
    fn report_snapshot_failure(&mut self, e: StorageError) {
        let kind = e.fault_kind();
        match self.health.snapshot.as_mut() {
            Some(fault) => {
                fault.failed_again(e.to_string(), kind, health::SNAPSHOT_RETRY_MAX);
            }
            None => {
                self.health.snapshot = Some(Fault::new(
                    "snapshot",
                    kind,
                    e.to_string(),
                    health::SNAPSHOT_RETRY_FIRST,
                ));
            }
        }
        if let Some(fault) = &self.health.snapshot {
            tracing::warn!(
                target: "interstice::storage",
                "snapshot failed (the log keeps every commit; next try in {:.0?}): {e}",
                fault.backoff
            );
        }
    }

    /// Writes a snapshot of every durable table now, starts a new log segment, and prunes
    /// what the snapshot covers (unless history is kept).
    ///
    /// # Errors
    ///
    /// [`StorageError`] when pending commits cannot be made durable or the snapshot cannot be
    /// written.
    pub fn snapshot(&mut self, db: &mut Database) -> Result<(), StorageError> {
        self.write_snapshot(db, false)
    }

    /// Writes a snapshot; `again` rewrites it even when the last one is at the same log
    /// position (the state changed without a record: a module was removed). Refused while
    /// the log is halted: the tables hold commits that are not durable yet.
    pub(super) fn write_snapshot(
        &mut self,
        db: &mut Database,
        again: bool,
    ) -> Result<(), StorageError> {
        // One snapshot at a time, in order: the one being written first.
        self.finish_snapshot(true);
        let Some(seq) = self.snapshot_position(db, again)? else {
            return Ok(());
        };
        let (_, log_dir, snap_dir) = dirs(&self.config.dir);
        snapshot::write(&snap_dir, &snapshot::capture(db, seq, self.last_time))?;
        self.snapshot_rows = durable_rows(db);
        self.last_snapshot = Some(seq);
        self.records_since_snapshot = 0;
        if let Err(e) = self.writer.rotate(seq + 1) {
            return Err(self.log_failed("log rotation", e));
        }
        if let Some(archive) = self.archive_job(db, seq, log_dir)
            && let Err(e) = archive.run()
        {
            self.archive_failed(e);
            return Ok(());
        }
        self.prune_covered(seq);
        Ok(())
    }

    /// A durable snapshot whose covered segments could not be copied into history: they are
    /// kept (nothing is pruned, so no history is lost) and the next snapshot tries again; the
    /// failure is reported as a snapshot fault, which `node ping` and the inspector show.
    fn archive_failed(&mut self, e: StorageError) {
        tracing::warn!(
            target: "interstice::storage",
            "copying pruned segments into history failed; they are kept: {e}"
        );
        self.report_snapshot_failure(e);
    }

    /// What copies logged changes into history before the segments snapshot `seq` covers are
    /// pruned (after the log rotated past them); `None` when segments are kept whole.
    fn archive_job(&self, db: &Database, seq: u64, log_dir: PathBuf) -> Option<Archive> {
        (self.config.retention == Retention::Prune).then(|| Archive {
            log_dir,
            history_dir: history::dir(&self.config.dir),
            seq,
            writing: self.writer.path().to_path_buf(),
            logged: history::logged_tables(db),
            layouts: history::key_layouts(db),
            retention: self.config.history,
        })
    }

    /// The last record a snapshot taken now would cover; `None` when there is nothing new to
    /// cover (unless `again`). Refused while the log is halted.
    fn snapshot_position(
        &self,
        db: &mut Database,
        again: bool,
    ) -> Result<Option<u64>, StorageError> {
        if !self.health.accepts_writes() {
            return Err(StorageError::Halted {
                path: self.writer.path().to_path_buf(),
            });
        }
        let Some(next_seq) = db.journal_mut().map(|j| j.next_seq()) else {
            return Ok(None);
        };
        if next_seq == 0 || (!again && self.last_snapshot == Some(next_seq - 1)) {
            return Ok(None);
        }
        Ok(Some(next_seq - 1))
    }

    /// Deletes what snapshot `seq` covers, with [`Retention::Prune`].
    fn prune_covered(&self, seq: u64) {
        let (_, log_dir, snap_dir) = dirs(&self.config.dir);
        if self.config.retention == Retention::Prune
            && let Err(e) = prune(&log_dir, &snap_dir, seq, self.writer.path())
        {
            // What is left is covered by the snapshot and removed by the next prune.
            tracing::warn!(target: "interstice::storage", "pruning after snapshot {seq}: {e}");
        }
    }
}

/// How copying covered segments into history went.
type Archived = Result<(), StorageError>;

/// Copying the logged changes of covered segments into history (see
/// [`history::archive_covered`]); on the snapshot's thread for an automatic snapshot. A
/// failure fails the snapshot: the segments stay, and the next snapshot archives them.
#[derive(Debug)]
struct Archive {
    log_dir: PathBuf,
    history_dir: PathBuf,
    seq: u64,
    writing: PathBuf,
    logged: history::LoggedTables,
    layouts: history::KeyLayouts,
    retention: history::HistoryRetention,
}

impl Archive {
    fn run(&self) -> Result<(), StorageError> {
        history::archive_covered(
            &self.log_dir,
            &self.history_dir,
            self.seq,
            &self.writing,
            (&self.logged, &self.layouts),
            self.retention,
        )
        .map(drop)
    }
}

/// Rows of every table a snapshot writes (all but ephemeral ones).
pub(super) fn durable_rows(db: &Database) -> u64 {
    db.module_names()
        .filter_map(|name| db.module(name))
        .flat_map(|tables| tables.tables.iter())
        .filter(|t| t.schema().persistence != Persistence::Ephemeral)
        .map(|t| t.len() as u64)
        .sum()
}

/// Deletes the log segments and older snapshots that snapshot `seq` covers, except the
/// segment being written.
fn prune(log_dir: &Path, snap_dir: &Path, seq: u64, writing: &Path) -> Result<(), StorageError> {
    for (first, path) in list_segments(log_dir)? {
        if first <= seq && path != writing {
            std::fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        }
    }
    for (old, path) in snapshot::list(snap_dir)? {
        if old < seq {
            std::fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        }
    }
    fsutil::sync_dir(log_dir).map_err(|e| StorageError::io(log_dir, e))
}
