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
use super::log::{self, Change, ChangeGroup, Record, SegmentEnd, frame_records, parse_record};
use crate::db::Database;
use crate::db::journal::HEADER_LEN;
use crate::disk::fsutil::write_atomic;
use interstice_abi::codec::{write_str, write_varint};
use interstice_abi::{Persistence, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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

/// Appends one framed record holding `record`'s changes to logged tables; nothing when it
/// changed none.
fn append_logged(out: &mut Vec<u8>, record: &Record<'_>, logged: &LoggedTables) {
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
        return;
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
    crate::db::journal::write_caller(out, record.caller);
    let payload_len = (out.len() - start - HEADER_LEN) as u32;
    let crc = crc32c::crc32c(&out[start + HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Copies the logged changes of every complete log segment that snapshot `seq` covers
/// (`writing` is the segment being written, never covered) into history files, then applies
/// `retention`. Returns how many files were written.
pub fn archive_covered(
    log_dir: &Path,
    history_dir: &Path,
    seq: u64,
    writing: &Path,
    logged: &LoggedTables,
    retention: HistoryRetention,
) -> Result<usize, StorageError> {
    let mut written = 0;
    for (first, path) in log::list_segments(log_dir)? {
        if first > seq || path == writing {
            continue;
        }
        let bytes = log::read(&path)?;
        let (records, end) = frame_records(&bytes);
        if let SegmentEnd::Corrupt { offset, reason } = end {
            return Err(StorageError::CorruptLog {
                path,
                offset,
                reason,
                after: 0,
            });
        }
        let mut out = Vec::new();
        for (offset, payload) in records {
            let record = parse_record(payload).ok_or_else(|| StorageError::BadRecord {
                path: path.clone(),
                seq: first,
                offset,
                reason: "undecodable payload".into(),
            })?;
            append_logged(&mut out, &record, logged);
        }
        std::fs::create_dir_all(history_dir).map_err(|e| StorageError::io(history_dir, e))?;
        let target = history_dir.join(file_name(first));
        write_atomic(&target, &out).map_err(|e| StorageError::io(&target, e))?;
        written += 1;
    }
    apply_retention(history_dir, retention)?;
    Ok(written)
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
    let newest = match files.last() {
        Some((_, path)) => newest_time(path)?,
        None => return Ok(removed),
    };
    for (i, (_, path)) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        let too_old = match retention.max_age_ms {
            Some(age) => newest_time(path)? < newest.saturating_sub(age),
            None => false,
        };
        let too_big = retention.max_bytes.is_some_and(|max| total > max) && !last;
        if !too_old && !too_big {
            break;
        }
        std::fs::remove_file(path).map_err(|e| StorageError::io(path, e))?;
        total -= sizes[i];
        removed.push(path.clone());
    }
    if !removed.is_empty() {
        crate::disk::fsutil::sync_dir(history_dir).map_err(|e| StorageError::io(history_dir, e))?;
    }
    Ok(removed)
}

/// One version of a row: its state after a committed transaction, and that transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// The transaction's sequence number in the log.
    pub seq: u64,
    /// Its logical time, in milliseconds.
    pub time: u64,
    /// The module whose reducer ran (the row's own module, or one that called it).
    pub module: String,
    /// The reducer.
    pub reducer: String,
    /// Its encoded arguments.
    pub args: Vec<u8>,
    /// The node id of the peer whose call it ran (another node, or a CLI's key); `None` for a
    /// call made on this node (the game, a schedule, a subscription).
    pub caller: Option<String>,
    /// The row's primary key.
    pub key: Value,
    /// The row after the transaction; `None`: it was deleted.
    pub row: Option<Vec<Value>>,
}

/// What to read: one table's versions, of one row or all, between two sequence numbers.
#[derive(Debug, Clone)]
pub struct HistoryQuery<'a> {
    /// The module.
    pub module: &'a str,
    /// Its table (a logged one).
    pub table: &'a str,
    /// Only this row's versions (`None`: every row's).
    pub key: Option<&'a Value>,
    /// The first sequence number to read (inclusive).
    pub from_seq: u64,
    /// The last one (inclusive).
    pub to_seq: u64,
    /// Most versions returned (at most [`MAX_VERSIONS_PER_READ`]).
    pub limit: usize,
}

/// Why a history read cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// No such module, or no such table in it.
    #[error("no table `{module}.{table}` on this node")]
    NoSuchTable {
        /// The module.
        module: String,
        /// The table.
        table: String,
    },
    /// The table is not logged: it keeps its latest state only.
    #[error("`{module}.{table}` is {persistence:?}, not logged: it keeps no history")]
    NotLogged {
        /// The module.
        module: String,
        /// The table.
        table: String,
        /// Its persistence.
        persistence: Persistence,
    },
    /// A file could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Reads versions from history files and then log segments of `root`, in sequence order,
/// decoding rows with `table` (the table as the database has it now).
pub(super) fn read(
    root: &Path,
    db: &Database,
    query: &HistoryQuery<'_>,
) -> Result<Vec<Version>, HistoryError> {
    let no_table = || HistoryError::NoSuchTable {
        module: query.module.into(),
        table: query.table.into(),
    };
    let table = db
        .module(query.module)
        .and_then(|m| {
            m.guest_tables()
                .iter()
                .find(|t| t.schema().name == query.table)
        })
        .ok_or_else(no_table)?;
    if table.schema().persistence != Persistence::Logged {
        return Err(HistoryError::NotLogged {
            module: query.module.into(),
            table: query.table.into(),
            persistence: table.schema().persistence,
        });
    }
    let limit = query.limit.min(MAX_VERSIONS_PER_READ);
    let (_, log_dir, _) = super::dirs(root);
    let mut files = list(&dir(root))?;
    files.extend(log::list_segments(&log_dir)?);
    // By first sequence number; a segment archived but not pruned yet comes after its
    // history file, and its records are skipped as already read.
    files.sort_by_key(|(first, path)| (*first, path.extension().is_some_and(|e| e == "log")));
    let mut next = query.from_seq;
    let mut versions = Vec::new();
    let mut key_bytes = Vec::new();
    if let Some(key) = query.key {
        table.encode_pk(key, &mut key_bytes);
    }
    for (i, (first, path)) in files.iter().enumerate() {
        if *first > query.to_seq {
            break;
        }
        // A file's records come before the next file's first one.
        let later = files.get(i + 1).map(|(f, _)| *f);
        if later.is_some_and(|l| l <= query.from_seq && l != *first) {
            continue;
        }
        let bytes = log::read(path)?;
        let (records, _) = frame_records(&bytes);
        for (_, payload) in records {
            let Some(record) = parse_record(payload) else {
                continue;
            };
            if record.seq < next || record.seq > query.to_seq {
                continue;
            }
            next = record.seq + 1;
            collect(&record, table, query, &key_bytes, &mut versions).map_err(|reason| {
                StorageError::BadRecord {
                    path: path.clone(),
                    seq: record.seq,
                    offset: 0,
                    reason,
                }
            })?;
            if versions.len() >= limit {
                versions.truncate(limit);
                return Ok(versions);
            }
        }
    }
    Ok(versions)
}

/// Appends the versions `record` made of the queried rows.
fn collect(
    record: &Record<'_>,
    table: &crate::db::Table,
    query: &HistoryQuery<'_>,
    key_bytes: &[u8],
    out: &mut Vec<Version>,
) -> Result<(), String> {
    let changes = record
        .groups
        .iter()
        .filter(|g: &&ChangeGroup<'_>| g.module == query.module)
        .flat_map(|g| g.changes.iter())
        .filter(|c| c.table == query.table);
    for change in changes {
        let (key, row) = match change.op {
            crate::db::journal::OP_PUT => {
                let row = table.decode_row(change.data).map_err(|e| e.to_string())?;
                let key = row
                    .get(usize::from(table.schema().primary_key))
                    .cloned()
                    .ok_or("row without a primary key")?;
                (key, Some(row))
            }
            crate::db::journal::OP_DELETE => (
                table.decode_pk(change.data).map_err(|e| e.to_string())?,
                None,
            ),
            op => return Err(format!("unknown change op {op}")),
        };
        if query.key.is_some() {
            let mut encoded = Vec::with_capacity(key_bytes.len());
            table.encode_pk(&key, &mut encoded);
            if encoded != key_bytes {
                continue;
            }
        }
        out.push(Version {
            seq: record.seq,
            time: record.time,
            module: record.module.to_string(),
            reducer: record.reducer.to_string(),
            args: record.args.to_vec(),
            caller: record.caller.map(str::to_string),
            key,
            row,
        });
    }
    Ok(())
}

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
    if std::fs::read_dir(target).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(RestoreError::TargetNotEmpty(target.to_path_buf()));
    }
    let (modules_dir, log_dir, _) = super::dirs(source);
    let mut files = list(&dir(source))?;
    files.extend(log::list_segments(&log_dir)?);
    files.sort_by_key(|(first, path)| (*first, path.extension().is_some_and(|e| e == "log")));
    let first = files.first().map_or(0, |(first, _)| *first);
    if first > 0 {
        return Err(RestoreError::Incomplete { first, to: to_seq });
    }
    let mut out = Vec::new();
    let mut restored = Restored::default();
    let mut next = 0u64;
    'files: for (_, path) in &files {
        let bytes = log::read(path)?;
        let (records, _) = frame_records(&bytes);
        for (offset, payload) in records {
            let mut record = parse_record(payload).ok_or_else(|| StorageError::BadRecord {
                path: path.clone(),
                seq: next,
                offset,
                reason: "undecodable payload".into(),
            })?;
            if record.seq < next {
                continue; // read from the history file already
            }
            if record.seq > to_seq {
                break 'files;
            }
            next = record.seq + 1;
            record.seq = restored.transactions;
            let before = out.len();
            append_logged(&mut out, &record, logged);
            if out.len() > before {
                restored.transactions += 1;
                restored.time = record.time;
            }
        }
    }
    let (target_modules, target_log, _) = super::dirs(target);
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

#[cfg(test)]
mod tests {
    //! A randomized workload on a persisting engine (the notebook compiled in natively), with
    //! small segments and frequent snapshots so that most of the log is pruned, checked
    //! against a model of every version of every row.

    use super::*;
    use crate::config::EngineConfig;
    use crate::runtime::Modules;
    use crate::storage::{Storage, StorageConfig};
    use interstice_abi::codec::{write_str, write_varint};
    use interstice_abi::mix::splitmix64;
    use notebook as _;
    use std::collections::BTreeMap;

    struct Node {
        modules: Modules,
        db: Database,
        storage: Storage,
    }

    fn node(dir: &Path, history: HistoryRetention) -> Node {
        let mut modules = Modules::new(EngineConfig::default()).expect("engine");
        let mut db = Database::default();
        let config = StorageConfig {
            segment_bytes: 2048,
            snapshot_every_records: 16,
            snapshot_scales_with_rows: false,
            history,
            ..StorageConfig::new(dir)
        };
        let (storage, _) = Storage::open(config, &mut modules, &mut db).expect("storage");
        modules
            .load_native(&mut db, "notebook")
            .expect("loading the notebook natively");
        Node {
            modules,
            db,
            storage,
        }
    }

    impl Node {
        /// Runs a reducer at logical time `now` and makes it durable; whether it committed.
        fn call(&mut self, now: u64, reducer: &str, args: &[u8]) -> bool {
            self.modules.set_now(now);
            let handle = self.modules.reducer("notebook", reducer).expect("reducer");
            let ok = self
                .modules
                .call_reducer(&mut self.db, handle, args)
                .is_ok();
            self.storage.commit(&mut self.db).expect("commit");
            self.storage.sync(&mut self.db).expect("sync");
            ok
        }

        /// The id of the note titled `title`.
        fn id_of(&self, title: &str) -> u64 {
            let table = self.db.table("notebook", "note").expect("note table");
            let row = table
                .rows()
                .find(|row| row[1] == Value::String(title.into()))
                .expect("the note just added");
            match row[0] {
                Value::U64(id) => id,
                ref other => panic!("id is {other:?}"),
            }
        }

        fn history(&self, table: &str, key: Option<&Value>) -> Vec<Version> {
            let query = HistoryQuery {
                module: "notebook",
                table,
                key,
                from_seq: 0,
                to_seq: u64::MAX,
                limit: MAX_VERSIONS_PER_READ,
            };
            self.storage.history(&self.db, &query).expect("history")
        }
    }

    fn title_args(title: &str) -> Vec<u8> {
        let mut args = Vec::new();
        write_str(&mut args, title);
        args
    }

    fn id_args(id: u64, title: Option<&str>) -> Vec<u8> {
        let mut args = Vec::new();
        write_varint(&mut args, id);
        if let Some(title) = title {
            write_str(&mut args, title);
        }
        args
    }

    /// The title of a note version (`None`: deleted).
    fn title_of(version: &Version) -> Option<String> {
        version.row.as_ref().map(|row| match &row[1] {
            Value::String(t) => t.clone(),
            other => panic!("title is {other:?}"),
        })
    }

    /// Runs `steps` random calls; returns the model: every version of every note, by id, with
    /// the reducer that made it and its time.
    fn workload(node: &mut Node, steps: u64) -> BTreeMap<u64, Vec<(Option<String>, String, u64)>> {
        let mut model: BTreeMap<u64, Vec<(Option<String>, String, u64)>> = BTreeMap::new();
        let mut live: Vec<u64> = Vec::new();
        let mut seed = 7;
        for step in 0..steps {
            seed = splitmix64(seed);
            let now = 1_000 + step * 10;
            let pick = |n: usize| (seed >> 16) as usize % n.max(1);
            match seed % 5 {
                0 | 1 => {
                    let title = format!("n{step}");
                    if node.call(now, "add", &title_args(&title)) {
                        // Ids are not reused, and a failed call uses one up too: look it up.
                        let id = node.id_of(&title);
                        model
                            .entry(id)
                            .or_default()
                            .push((Some(title), "add".into(), now));
                        live.push(id);
                    }
                }
                2 if !live.is_empty() => {
                    let id = live[pick(live.len())];
                    let title = format!("r{step}");
                    assert!(node.call(now, "rename", &id_args(id, Some(&title))));
                    model
                        .entry(id)
                        .or_default()
                        .push((Some(title), "rename".into(), now));
                }
                3 if !live.is_empty() => {
                    let id = live.remove(pick(live.len()));
                    assert!(node.call(now, "remove", &id_args(id, None)));
                    model
                        .entry(id)
                        .or_default()
                        .push((None, "remove".into(), now));
                }
                _ => {
                    // A stateful table's change (no history) and a failed call (no record).
                    let mut args = Vec::new();
                    write_varint(&mut args, seed % 4);
                    write_varint(&mut args, step);
                    assert!(node.call(now, "scribble", &args));
                    assert!(!node.call(now, "add_then_fail", &title_args("never")));
                }
            }
        }
        model
    }

    #[test]
    fn every_version_of_every_logged_row_is_kept_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let mut node = node(dir.path(), HistoryRetention::default());
        let model = workload(&mut node, 400);
        // Most of the log was pruned: history came from the archive.
        let history_files = list(&super::dir(dir.path())).unwrap();
        assert!(history_files.len() > 3, "{history_files:?}");
        let (_, log_dir, _) = crate::storage::dirs(dir.path());
        let first_live = log::list_segments(&log_dir).unwrap()[0].0;
        assert!(first_live > 100, "segments up to {first_live} were pruned");

        for (id, versions) in &model {
            let got = node.history("note", Some(&Value::U64(*id)));
            let got: Vec<_> = got
                .iter()
                .map(|v| (title_of(v), v.reducer.clone(), v.time))
                .collect();
            assert_eq!(&got, versions, "note {id}");
        }
        // The whole table's history is every row's, in transaction order.
        let all = node.history("note", None);
        assert_eq!(all.len(), model.values().map(Vec::len).sum::<usize>());
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(
            all.iter()
                .all(|v| v.module == "notebook" && v.caller.is_none())
        );
        // A page: from a position, at most `limit` versions.
        let from = all[10].seq;
        let page = node
            .storage
            .history(
                &node.db,
                &HistoryQuery {
                    module: "notebook",
                    table: "note",
                    key: None,
                    from_seq: from,
                    to_seq: u64::MAX,
                    limit: 5,
                },
            )
            .unwrap();
        assert_eq!(page, all[10..15]);
    }

    #[test]
    fn stateful_tables_keep_no_history_and_the_archive_holds_none_of_their_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut node = node(dir.path(), HistoryRetention::default());
        workload(&mut node, 200);
        let refused = node.storage.history(
            &node.db,
            &HistoryQuery {
                module: "notebook",
                table: "scratch",
                key: None,
                from_seq: 0,
                to_seq: u64::MAX,
                limit: 10,
            },
        );
        assert!(
            matches!(
                refused,
                Err(HistoryError::NotLogged {
                    persistence: Persistence::Stateful,
                    ..
                })
            ),
            "{refused:?}"
        );
        for (_, path) in list(&super::dir(dir.path())).unwrap() {
            let bytes = std::fs::read(&path).unwrap();
            let (records, end) = frame_records(&bytes);
            assert_eq!(end, SegmentEnd::Clean);
            for (_, payload) in records {
                let record = parse_record(payload).unwrap();
                for group in &record.groups {
                    assert!(group.changes.iter().all(|c| c.table != "scratch"));
                }
            }
        }
    }

    #[test]
    fn retention_by_size_removes_whole_files_oldest_first_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let mut node = node(dir.path(), HistoryRetention::default());
        workload(&mut node, 300);
        let history = super::dir(dir.path());
        let files = list(&history).unwrap();
        let sizes: Vec<u64> = files
            .iter()
            .map(|(_, p)| std::fs::metadata(p).unwrap().len())
            .collect();
        // Keep about the newest half, by bytes.
        let max = sizes.iter().sum::<u64>() / 2;
        let mut expected = files.clone();
        let mut total: u64 = sizes.iter().sum();
        let mut i = 0;
        while total > max && i + 1 < files.len() {
            total -= sizes[i];
            i += 1;
        }
        let kept = expected.split_off(i);
        let retention = HistoryRetention {
            max_bytes: Some(max),
            max_age_ms: None,
        };
        let removed = apply_retention(&history, retention).unwrap();
        assert_eq!(
            removed,
            expected.into_iter().map(|(_, p)| p).collect::<Vec<_>>()
        );
        assert_eq!(list(&history).unwrap(), kept);
        // What is left starts with the first kept file's first record.
        let versions = node.history("note", None);
        assert!(versions[0].seq >= kept[0].0);
        // A bound of zero bytes still keeps the newest file.
        let all = HistoryRetention {
            max_bytes: Some(0),
            max_age_ms: None,
        };
        apply_retention(&history, all).unwrap();
        assert_eq!(list(&history).unwrap().len(), 1);
    }

    #[test]
    fn retention_by_age_removes_files_whose_newest_change_is_older() {
        let dir = tempfile::tempdir().unwrap();
        let mut node = node(dir.path(), HistoryRetention::default());
        workload(&mut node, 300);
        let history = super::dir(dir.path());
        let files = list(&history).unwrap();
        let newest: Vec<u64> = files.iter().map(|(_, p)| newest_time(p).unwrap()).collect();
        let last = *newest.last().unwrap();
        let age = 1_000;
        let retention = HistoryRetention {
            max_age_ms: Some(age),
            max_bytes: None,
        };
        let removed = apply_retention(&history, retention).unwrap();
        let expected: Vec<PathBuf> = files
            .iter()
            .zip(&newest)
            .take_while(|(_, t)| **t < last - age)
            .map(|((_, p), _)| p.clone())
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(removed, expected);
    }

    #[test]
    fn a_peers_call_is_kept_with_the_peers_node_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut node = node(dir.path(), HistoryRetention::default());
        let peer = "ab".repeat(32);
        let handle = node.modules.reducer("notebook", "add").unwrap();
        let context = crate::queue::CallContext {
            invocation: 1,
            origin: Some(crate::queue::Origin {
                peer: peer.clone(),
                request: 9,
            }),
            cursor: None,
        };
        node.modules
            .call_reducer_in(&mut node.db, handle, &title_args("from afar"), context)
            .unwrap();
        node.call(5, "add", &title_args("from here"));
        node.storage.snapshot(&mut node.db).unwrap();
        let versions = node.history("note", None);
        let callers: Vec<_> = versions.iter().map(|v| v.caller.clone()).collect();
        assert_eq!(
            callers,
            [Some(interstice_abi::node_id_of(&peer)), None],
            "{versions:?}"
        );
        // Both came from the archive: the snapshot pruned their segment.
        assert!(!list(&super::dir(dir.path())).unwrap().is_empty());
    }

    /// A table's rows, in key order.
    fn rows_of(db: &Database, table: &str) -> Vec<Vec<Value>> {
        db.table("notebook", table)
            .map(|t| t.rows().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_restore_rebuilds_the_logged_tables_of_any_past_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut full = node(dir.path(), HistoryRetention::default());
        workload(&mut full, 300);
        let logged = logged_tables(&full.db);
        for steps in [0, 1, 57, 180, 300] {
            // A reference engine that ran only the first `steps` calls of the same workload.
            let reference_dir = tempfile::tempdir().unwrap();
            let mut reference = node(reference_dir.path(), HistoryRetention::default());
            workload(&mut reference, steps);
            let to_seq = reference.db.journal_mut().unwrap().next_seq() - 1;

            let target = tempfile::tempdir().unwrap();
            let restored = restore(dir.path(), &logged, to_seq, target.path()).unwrap();
            assert!(restored.transactions <= to_seq + 1);
            // A fresh engine replays the restored log.
            let mut modules = Modules::new(EngineConfig::default()).unwrap();
            let mut db = Database::default();
            modules.load_native(&mut db, "notebook").unwrap();
            let (log_dir, mut report) = (target.path().join("log"), Default::default());
            super::super::recovery::replay_log(&log_dir, false, 0, &mut db, &mut report).unwrap();
            assert_eq!(report.replayed, restored.transactions);
            for table in ["note", "tally"] {
                assert_eq!(
                    rows_of(&db, table),
                    rows_of(&reference.db, table),
                    "{table} after {steps} calls (transaction {to_seq})"
                );
            }
            // Stateful tables are not restored: they keep no history.
            assert!(rows_of(&db, "scratch").is_empty());
        }
        // Into a directory that holds something: refused, nothing touched.
        let busy = tempfile::tempdir().unwrap();
        std::fs::write(busy.path().join("x"), b"x").unwrap();
        assert!(matches!(
            restore(dir.path(), &logged, 10, busy.path()),
            Err(RestoreError::TargetNotEmpty(_))
        ));
    }

    #[test]
    fn a_restore_before_what_retention_kept_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut node = node(dir.path(), HistoryRetention::default());
        workload(&mut node, 300);
        let history = super::dir(dir.path());
        let retention = HistoryRetention {
            max_bytes: Some(0),
            max_age_ms: None,
        };
        apply_retention(&history, retention).unwrap();
        let target = tempfile::tempdir().unwrap();
        let refused = restore(dir.path(), &logged_tables(&node.db), 5, target.path());
        assert!(
            matches!(refused, Err(RestoreError::Incomplete { to: 5, .. })),
            "{refused:?}"
        );
    }
}
