//! History: every committed change of *logged* tables, kept after the log segments that held
//! it are pruned; *stateful* tables keep their latest state only.
//!
//! ```text
//! <data dir>/history/<first seq, 20 digits>.hist   one per pruned log segment
//! ```
//!
//! A history file holds the records of one pruned segment, framed exactly as in the log
//! (`len | crc32c | payload`, see [`journal`](crate::db::journal)), each with only its changes
//! to logged tables of the modules' own (records that changed none are left out). It is
//! written atomically from the segment before the segment is deleted, by the thread that
//! writes the snapshot covering it, so a crash in between leaves both (the next prune writes
//! the same file again). Reading a row's history reads these files, then the log segments
//! not pruned yet, in sequence order.
//!
//! What is kept is bounded by [`HistoryRetention`], set by the node's owner: by default
//! everything. Retention removes whole files, oldest first, after each archive.

use super::StorageError;
use super::log::{self, Change, Record, SegmentEnd, frame_records, parse_record};
use crate::db::Database;
use crate::db::journal::HEADER_LEN;
use crate::disk::fsutil::write_atomic;
use interstice_abi::Persistence;
use interstice_abi::codec::{write_str, write_varint};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod as_of;
mod index;
mod read;
mod replay;
mod restore;

pub(super) use as_of::{Source, Spent, Target, row_as_of, table_as_of};
pub use index::{KeyLayouts, LiveIndexes, key_layouts};
pub use read::{HistoryError, HistoryQuery, Version};
pub(super) use read::{logged_table_in, read};
pub use replay::{Difference, DifferenceDetail, ReplayError, ReplayReport, ReplayRequest, replay};
pub use restore::{RestoreError, Restored, last_seq_at, restore};

/// Most versions one [`Storage::history`](super::Storage::history) read returns; a longer
/// history is read in pages (from the sequence number after the last one returned).
pub const MAX_VERSIONS_PER_READ: usize = 100_000;

/// How much history a node keeps. Whole files go, oldest first, once one of the bounds is
/// passed; the newest file is never removed by `max_bytes` alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryRetention {
    /// Remove files whose newest change is older than this, in logical milliseconds before
    /// the newest archived change (`None`: no age limit).
    pub max_age_ms: Option<u64>,
    /// Remove the oldest files while all of them take more bytes than this (`None`: no size
    /// limit).
    pub max_bytes: Option<u64>,
}

/// The logged tables of the modules' own, by module: what history keeps.
pub type LoggedTables = BTreeMap<String, BTreeSet<String>>;

/// The tables whose changes history keeps, as the database has them now.
pub fn logged_tables(db: &Database) -> LoggedTables {
    db.module_names()
        .filter_map(|name| db.module(name).map(|m| (name, m)))
        .map(|(name, tables)| {
            let logged = tables
                .guest_tables()
                .iter()
                .filter(|t| t.schema().persistence == Persistence::Logged)
                .map(|t| t.schema().name.clone())
                .collect();
            (name.to_string(), logged)
        })
        .collect()
}

/// The tables whose changes history keeps, as these schemas describe them (a node's
/// installed modules, read without running them).
pub fn logged_tables_of<'a>(
    schemas: impl IntoIterator<Item = &'a interstice_abi::ModuleSchema>,
) -> LoggedTables {
    schemas
        .into_iter()
        .map(|schema| {
            let logged = schema
                .tables
                .iter()
                .filter(|t| t.persistence == Persistence::Logged)
                .map(|t| t.name.clone())
                .collect();
            (schema.name.clone(), logged)
        })
        .collect()
}

/// The file in the history directory that lists removed modules (see [`record_removal`]).
const REMOVALS: &str = "removed";

/// Notes that `module` was removed when the log's next transaction was `seq`: its history
/// before that belongs to the removed module, not to a later module of the same name, so
/// reads and restores leave it out.
pub(crate) fn record_removal(root: &Path, module: &str, seq: u64) -> Result<(), StorageError> {
    let history_dir = dir(root);
    std::fs::create_dir_all(&history_dir).map_err(|e| StorageError::io(&history_dir, e))?;
    let mut removed = removals(root)?;
    removed.insert(module.to_string(), seq);
    let text: String = removed
        .iter()
        .map(|(module, seq)| format!("{seq} {module}\n"))
        .collect();
    let path = history_dir.join(REMOVALS);
    write_atomic(&path, text.as_bytes()).map_err(|e| StorageError::io(&path, e))
}

/// Notes that an upgrade started `module.table` over when the log's next transaction was
/// `seq` (its rows did not carry over): its history before that is the old table's, in the
/// old layout, so reads start after it and a past read before it is refused.
pub(crate) fn record_started_over(
    root: &Path,
    (module, table): (&str, &str),
    seq: u64,
) -> Result<(), StorageError> {
    record_removal(root, &started_over_key(module, table), seq)
}

/// How `history/removed` names a table started over (module names have no dots).
pub(crate) fn started_over_key(module: &str, table: &str) -> String {
    format!("{module}.{table}")
}

/// The removed modules, with the log position of their last removal.
pub(crate) fn removals(root: &Path) -> Result<BTreeMap<String, u64>, StorageError> {
    let path = dir(root).join(REMOVALS);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(StorageError::io(&path, e)),
    };
    text.lines()
        .map(|line| {
            line.split_once(' ')
                .and_then(|(seq, module)| Some((module.to_string(), seq.parse().ok()?)))
                .ok_or_else(|| StorageError::CorruptSnapshot {
                    path: path.clone(),
                    reason: format!("not `<seq> <module>`: {line:?}"),
                })
        })
        .collect()
}

/// The records of a history file or log segment, refusing damage: a history file and every
/// segment but the one being written (`durable`: its path, and how many of its bytes are
/// durable) end cleanly.
fn records_of<'a>(path: &Path, bytes: &'a [u8]) -> Result<Vec<(u64, &'a [u8])>, StorageError> {
    let (records, end) = frame_records(bytes);
    match end {
        SegmentEnd::Clean => Ok(records),
        SegmentEnd::TornTail { offset } | SegmentEnd::Corrupt { offset, .. } => {
            Err(StorageError::CorruptLog {
                path: path.to_path_buf(),
                offset,
                reason: "damaged record in history".into(),
                after: bytes.len() as u64 - offset,
            })
        }
    }
}

/// Reads a history file or a log segment for history: the segment being written only up to
/// what is durable.
fn read_for_history(path: &Path, durable: Option<(&Path, u64)>) -> Result<Vec<u8>, StorageError> {
    let mut bytes = log::read(path)?;
    if let Some((writing, len)) = durable
        && writing == path
    {
        bytes.truncate(usize::try_from(len).unwrap_or(usize::MAX));
    }
    Ok(bytes)
}

/// History files, then log segments, by first sequence number: a segment archived but not
/// pruned yet comes after its history file, whose records the reader has then seen.
fn ordered_files(root: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let (_, log_dir, _) = super::dirs(root);
    let mut files = list(&dir(root))?;
    files.extend(log::list_segments(&log_dir)?);
    files.sort_by_key(|(first, path)| (*first, path.extension().is_some_and(|e| e == "log")));
    Ok(files)
}

/// The history directory of a data directory.
pub fn dir(root: &Path) -> PathBuf {
    root.join("history")
}

fn file_name(first: u64) -> String {
    format!("{first:020}.hist")
}

/// History files, by the first sequence number of the segment each was made from.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(StorageError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let name = entry.file_name();
        if let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".hist"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            found.push((first, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Appends one framed record holding `record`'s changes to logged tables and returns its
/// offset; nothing (`None`) when it changed none.
fn append_logged(out: &mut Vec<u8>, record: &Record<'_>, logged: &LoggedTables) -> Option<usize> {
    let groups: Vec<(&str, Vec<&Change<'_>>)> = record
        .groups
        .iter()
        .filter_map(|group| {
            let tables = logged.get(group.module)?;
            let kept: Vec<&Change<'_>> = group
                .changes
                .iter()
                .filter(|c| tables.contains(c.table))
                .collect();
            (!kept.is_empty()).then_some((group.module, kept))
        })
        .collect();
    if groups.is_empty() {
        return None;
    }
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    write_varint(out, record.seq);
    write_varint(out, record.time);
    write_str(out, record.module);
    write_str(out, record.reducer);
    write_varint(out, record.args.len() as u64);
    out.extend_from_slice(record.args);
    write_varint(out, groups.len() as u64);
    for (module, changes) in &groups {
        write_str(out, module);
        write_varint(out, changes.len() as u64);
        for change in changes {
            write_str(out, change.table);
            out.push(change.op);
            write_varint(out, change.data.len() as u64);
            out.extend_from_slice(change.data);
        }
    }
    crate::db::journal::write_caller(out, record.caller, record.invocation);
    let payload_len = (out.len() - start - HEADER_LEN) as u32;
    let crc = crc32c::crc32c(&out[start + HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Some(start)
}

/// Writes `kept` (what history keeps of the segment at `segment`, whose bytes are `whole`) to
/// `target`. When it keeps every record as it is (a segment of logged changes only, the usual
/// case) the file is the segment itself, linked: no copy written and fsynced again.
fn keep(segment: &Path, (whole, kept): (&[u8], &[u8]), target: &Path) -> Result<(), StorageError> {
    if whole == kept {
        match crate::disk::fsutil::link_durable(segment, target) {
            Ok(()) => return Ok(()),
            // A file system without hard links: write the copy.
            Err(e) => tracing::debug!(
                target: "interstice::storage",
                "{}: not linked ({e}), copied",
                target.display()
            ),
        }
    }
    write_atomic(target, kept).map_err(|e| StorageError::io(target, e))
}

/// Copies the logged changes of every complete log segment that snapshot `seq` covers
/// (`writing` is the segment being written, never covered) into history files, each with its
/// index (see docs/storage.md, History), then applies `retention`. Returns how many files were written.
pub fn archive_covered(
    log_dir: &Path,
    history_dir: &Path,
    seq: u64,
    writing: &Path,
    (logged, layouts): (&LoggedTables, &KeyLayouts),
    retention: HistoryRetention,
) -> Result<usize, StorageError> {
    let mut written = 0;
    for (first, path) in log::list_segments(log_dir)? {
        if first > seq || path == writing {
            continue;
        }
        let bytes = log::read(&path)?;
        let records = records_of(&path, &bytes)?;
        let mut out = Vec::new();
        let mut index = index::Builder::new();
        let mut last_seq = None;
        for (offset, payload) in records {
            let record = parse_record(payload).ok_or_else(|| StorageError::BadRecord {
                path: path.clone(),
                seq: first,
                offset,
                reason: "undecodable payload".into(),
            })?;
            last_seq = Some(record.seq);
            if let Some(at) = append_logged(&mut out, &record, logged) {
                index::index_record(&mut index, &record, layouts, at);
            }
        }
        if !history_dir.is_dir() {
            std::fs::create_dir_all(history_dir).map_err(|e| StorageError::io(history_dir, e))?;
            if let Some(root) = history_dir.parent() {
                crate::disk::fsutil::sync_dir(root).map_err(|e| StorageError::io(root, e))?;
            }
        }
        let target = history_dir.join(file_name(first));
        // An index never describes other contents than its file's: the old one goes first.
        let index_path = index::path_of(&target);
        if remove_if_there(&index_path)? {
            // Gone for good before the file it described is replaced.
            crate::disk::fsutil::sync_dir(history_dir)
                .map_err(|e| StorageError::io(history_dir, e))?;
        }
        keep(&path, (&bytes, &out), &target)?;
        let index = last_seq.and_then(|last| index.finish(out.len() as u64, first, last));
        if let Some(index) = index
            && let Err(e) = write_atomic(&index_path, &index)
        {
            // Only a shortcut: reads of this file read it whole.
            tracing::warn!(
                target: "interstice::storage",
                "{}: history index not written ({e}); reads of its file read it whole",
                index_path.display()
            );
        }
        written += 1;
    }
    apply_retention(history_dir, retention)?;
    Ok(written)
}

/// Removes a file, which may not be there; whether it was.
fn remove_if_there(path: &Path) -> Result<bool, StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// The newest change time in a history file (0 when it holds none).
fn newest_time(path: &Path) -> Result<u64, StorageError> {
    let bytes = log::read(path)?;
    let (records, _) = frame_records(&bytes);
    Ok(records
        .last()
        .and_then(|(_, payload)| parse_record(payload))
        .map_or(0, |r| r.time))
}

/// Removes the history files `retention` no longer keeps; returns their paths.
pub fn apply_retention(
    history_dir: &Path,
    retention: HistoryRetention,
) -> Result<Vec<PathBuf>, StorageError> {
    let mut removed = Vec::new();
    if retention == HistoryRetention::default() {
        return Ok(removed);
    }
    let files = list(history_dir)?;
    let mut sizes = Vec::with_capacity(files.len());
    for (_, path) in &files {
        let len = std::fs::metadata(path)
            .map_err(|e| StorageError::io(path, e))?
            .len();
        sizes.push(len);
    }
    let mut total: u64 = sizes.iter().sum();
    // Files of segments that changed no logged table hold nothing: the newest change is the
    // latest over all files.
    let mut times = Vec::with_capacity(files.len());
    for (_, path) in &files {
        times.push(newest_time(path)?);
    }
    let newest = times.iter().copied().max().unwrap_or(0);
    for (i, (_, path)) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        let too_old = match retention.max_age_ms {
            Some(age) => times[i] < newest.saturating_sub(age),
            None => false,
        };
        let too_big = retention.max_bytes.is_some_and(|max| total > max) && !last;
        if !too_old && !too_big {
            break;
        }
        std::fs::remove_file(path).map_err(|e| StorageError::io(path, e))?;
        remove_if_there(&index::path_of(path))?;
        total -= sizes[i];
        removed.push(path.clone());
    }
    if !removed.is_empty() {
        crate::disk::fsutil::sync_dir(history_dir).map_err(|e| StorageError::io(history_dir, e))?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests;
