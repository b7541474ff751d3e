//! Rebuilding a past state from history into a new data directory.

use super::{LoggedTables, append_logged, ordered_files, removals};
use crate::disk::fsutil::write_atomic;
use crate::storage::StorageError;
use crate::storage::log::{self, Record, SegmentEnd, frame_records, parse_record};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// What [`restore`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Transactions written to the new node's log (those up to the point that changed a
    /// logged table), renumbered from 0.
    pub transactions: u64,
    /// The logical time of the last of them, in milliseconds.
    pub time: u64,
    /// The module files copied.
    pub modules: usize,
}

/// Why [`restore`] cannot rebuild a past state.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The target directory holds something already.
    #[error("{0}: not empty; restore into a new directory")]
    TargetNotEmpty(PathBuf),
    /// The history before the point is gone (retention removed it, or it was pruned before
    /// history was kept).
    #[error(
        "history before transaction {first} is gone (removed by retention or pruned before \
         history was kept): transaction {to} cannot be rebuilt"
    )]
    Incomplete {
        /// The first transaction still kept.
        first: u64,
        /// The point asked for.
        to: u64,
    },
    /// A table held rows at the point that an upgrade after it dropped (it started the
    /// table over in another layout): today's code cannot hold them.
    #[error(
        "`{table}` was started over by an upgrade at transaction {at}, after the point: its \
         rows then do not fit today's code"
    )]
    StartedOver {
        /// `module.table`.
        table: String,
        /// The first transaction after the upgrade.
        at: u64,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Rebuilds, in the empty directory `target`, a data directory holding the state of the
/// *logged* tables of `source` as of transaction `to_seq`: the modules installed now (their
/// code copied) and one log segment with every kept transaction up to `to_seq`, renumbered
/// from 0, with only their changes to logged tables (`logged`). A node started on it replays
/// that log; its stateful tables and host tables (schedule, answered calls, cursors, outbox)
/// start empty: they keep no history. `source` is only read.
///
/// The code is today's: a table whose layout changed since `to_seq` (an upgrade) is refused
/// by the new node when it replays the older rows.
pub fn restore(
    source: &Path,
    logged: &LoggedTables,
    to_seq: u64,
    target: &Path,
) -> Result<Restored, RestoreError> {
    rebuild(source, logged, to_seq.saturating_add(1), target)
}

/// [`restore`] of the state before transaction `before` (nothing of it, nor after it; for
/// 0, the modules alone).
pub(super) fn rebuild(
    source: &Path,
    logged: &LoggedTables,
    before: u64,
    target: &Path,
) -> Result<Restored, RestoreError> {
    let to_seq = before.saturating_sub(1);
    if std::fs::read_dir(target).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(RestoreError::TargetNotEmpty(target.to_path_buf()));
    }
    let (modules_dir, _, _) = crate::storage::dirs(source);
    let files = ordered_files(source)?;
    let first = files.first().map_or(0, |(first, _)| *first);
    if first > 0 && before > 0 {
        return Err(RestoreError::Incomplete { first, to: to_seq });
    }
    let removed = removals(source)?;
    let mut out = Vec::new();
    let mut restored = Restored::default();
    each_record(&files, |mut record| {
        if record.seq >= before {
            return Ok(ControlFlow::Break(()));
        }
        // Changes of a module removed later belong to it, not to today's namesake.
        let seq = record.seq;
        record
            .groups
            .retain(|g| removed.get(g.module).is_none_or(|&at| seq >= at));
        // Changes of a table an upgrade started over since are in its old layout: left out
        // when the upgrade came before the point, refused when after (today's code cannot
        // hold the rows the table had then).
        for group in &mut record.groups {
            let module = group.module;
            let mut refused = None;
            group.changes.retain(|c| {
                let key = super::started_over_key(module, c.table);
                match removed.get(&key) {
                    Some(&at) if seq < at && at >= before => {
                        refused.get_or_insert((key, at));
                        true
                    }
                    Some(&at) => seq >= at,
                    None => true,
                }
            });
            if let Some((table, at)) = refused {
                return Err(RestoreError::StartedOver { table, at });
            }
        }
        record.seq = restored.transactions;
        if append_logged(&mut out, &record, logged).is_some() {
            restored.transactions += 1;
            restored.time = record.time;
        }
        Ok(ControlFlow::Continue(()))
    })?;
    let (target_modules, target_log, _) = crate::storage::dirs(target);
    for dir in [&target_modules, &target_log] {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
    }
    if modules_dir.is_dir() {
        for entry in
            std::fs::read_dir(&modules_dir).map_err(|e| StorageError::io(&modules_dir, e))?
        {
            let entry = entry.map_err(|e| StorageError::io(&modules_dir, e))?;
            let name = entry.file_name();
            if !name.to_string_lossy().ends_with(".wasm") {
                continue;
            }
            let bytes =
                std::fs::read(entry.path()).map_err(|e| StorageError::io(&entry.path(), e))?;
            let copy = target_modules.join(&name);
            write_atomic(&copy, &bytes).map_err(|e| StorageError::io(&copy, e))?;
            restored.modules += 1;
        }
    }
    let segment = target_log.join(log::segment_name(0));
    write_atomic(&segment, &out).map_err(|e| StorageError::io(&segment, e))?;
    Ok(restored)
}

/// Hands `visit` every record the history files and log segments `files` (as
/// [`ordered_files`] lists them) keep, once each (a segment archived but not pruned yet
/// repeats its history file's), in sequence order, until it breaks. A damaged file is refused
/// before any of its records is visited, but for an incomplete last record of the last file (a
/// crash may have cut it short).
pub(super) fn each_record<E: From<StorageError>>(
    files: &[(u64, PathBuf)],
    mut visit: impl FnMut(Record<'_>) -> Result<ControlFlow<()>, E>,
) -> Result<(), E> {
    let last = files.len().saturating_sub(1);
    let mut next = 0u64;
    for (i, (_, path)) in files.iter().enumerate() {
        let bytes = log::read(path)?;
        let (records, end) = frame_records(&bytes);
        refuse_damage(path, &end, i == last, bytes.len())?;
        for (offset, payload) in records {
            let record = parse_record(payload).ok_or_else(|| StorageError::BadRecord {
                path: path.clone(),
                seq: next,
                offset,
                reason: "undecodable payload".into(),
            })?;
            if record.seq < next {
                continue; // read from the history file already
            }
            next = record.seq.saturating_add(1);
            if visit(record)?.is_break() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The last transaction of `source` committed at or before logical time `time_ms` that history
/// or the log still holds (`None`: none was). Logical time never goes back from one
/// transaction to the next, so this is the point a restore "as of" that time rebuilds.
///
/// # Errors
///
/// [`StorageError`] when a file cannot be read, or holds damage before the point is found.
pub fn last_seq_at(source: &Path, time_ms: u64) -> Result<Option<u64>, StorageError> {
    let files = ordered_files(source)?;
    let last = files.len().saturating_sub(1);
    let mut found = None;
    for (i, (_, path)) in files.iter().enumerate() {
        let bytes = log::read(path)?;
        let (records, end) = frame_records(&bytes);
        for (offset, payload) in records {
            let record = parse_record(payload).ok_or_else(|| StorageError::BadRecord {
                path: path.clone(),
                seq: found.map_or(0, |seq: u64| seq + 1),
                offset,
                reason: "undecodable payload".into(),
            })?;
            if record.time > time_ms {
                return Ok(found);
            }
            found = Some(found.map_or(record.seq, |seq: u64| seq.max(record.seq)));
        }
        refuse_damage(path, &end, i == last, bytes.len())?;
    }
    Ok(found)
}

/// Refuses a history file or log segment that does not end cleanly, but for an incomplete
/// last record of the last file: a stopped node's crash may have cut it short.
fn refuse_damage(
    path: &Path,
    end: &SegmentEnd,
    last_file: bool,
    len: usize,
) -> Result<(), StorageError> {
    match *end {
        SegmentEnd::Clean => Ok(()),
        SegmentEnd::TornTail { .. } if last_file => Ok(()),
        SegmentEnd::TornTail { offset } | SegmentEnd::Corrupt { offset, .. } => {
            Err(StorageError::CorruptLog {
                path: path.to_path_buf(),
                offset,
                reason: "damaged record in history".into(),
                after: len as u64 - offset,
            })
        }
    }
}
