//! Recovery: what [`Storage::open`](super::Storage::open) does to bring a data directory's
//! state back, one phase per function, in order: the installed modules (with empty tables),
//! the newest snapshot that verifies, then the log after it.

use super::log::{self, SegmentEnd, frame_records, list_segments, parse_record};
use super::{RecoveryReport, StorageError, snapshot};
use crate::db::Database;
use crate::db::journal::{OP_DELETE, OP_PUT};
use crate::runtime::Modules;
use std::path::{Path, PathBuf};

/// The modules installed in `modules_dir`, reinstalled in install order with empty tables and
/// no hooks run. Returns each module's name and file, and the install order the next
/// install takes.
pub(super) fn install_modules(
    modules_dir: &Path,
    modules: &mut Modules,
    db: &mut Database,
    report: &mut RecoveryReport,
) -> Result<(Vec<(String, PathBuf)>, u64), StorageError> {
    let mut installed = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(modules_dir)
        .map_err(|e| StorageError::io(modules_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    let mut next_install = 0;
    for path in files {
        let order = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('-').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        next_install = next_install.max(order + 1);
        let wasm = log::read(&path)?;
        // An upgrade writes the new code before it deletes the old: when both are here,
        // the later install (files are visited in install order) replaces the earlier.
        let name = modules
            .inspect(&wasm)
            .map_err(|error| StorageError::Module {
                path: path.clone(),
                error,
            })?
            .name;
        if let Some(position) = installed
            .iter()
            .position(|(n, _): &(String, PathBuf)| *n == name)
        {
            let (_, superseded) = installed.remove(position);
            modules.unload(db, &name);
            report.modules.retain(|m| *m != name);
            tracing::warn!(
                target: "interstice::storage",
                "{} supersedes {} (an upgrade was interrupted); removing the older",
                path.display(),
                superseded.display()
            );
            std::fs::remove_file(&superseded).map_err(|e| StorageError::io(&superseded, e))?;
        }
        let schema = modules
            .install(db, &wasm)
            .map_err(|error| StorageError::Module {
                path: path.clone(),
                error,
            })?;
        report.modules.push(schema.name.clone());
        installed.push((schema.name.clone(), path));
    }
    Ok((installed, next_install))
}

/// Restores the newest snapshot that verifies (damaged ones are skipped and reported).
/// Returns the sequence number of the first record after it (0 without a snapshot).
pub(super) fn restore_newest_snapshot(
    snap_dir: &Path,
    db: &mut Database,
    report: &mut RecoveryReport,
) -> Result<u64, StorageError> {
    let mut next_seq = 0;
    for (seq, path) in snapshot::list(snap_dir)? {
        match snapshot::read(&path) {
            Ok(data) => {
                restore_snapshot(db, &data, &mut report.removed_module_changes).map_err(
                    |reason| StorageError::CorruptSnapshot {
                        path: path.clone(),
                        reason,
                    },
                )?;
                report.snapshot = Some(seq);
                report.logical_time = data.time;
                next_seq = seq + 1;
                break;
            }
            Err(e) => {
                tracing::warn!(target: "interstice::storage", "skipping {e}");
                report.damaged_snapshots.push(path);
            }
        }
    }
    Ok(next_seq)
}

/// Replays the log from record `next_seq` on, cutting off an incomplete last record, and with
/// `repair` dropping whatever follows damage in the middle (without it, damage is an error).
/// Returns the segment to go on writing and its valid length, if there is one, and the
/// sequence number of the next record.
pub(super) fn replay_log(
    log_dir: &Path,
    repair: bool,
    mut next_seq: u64,
    db: &mut Database,
    report: &mut RecoveryReport,
) -> Result<(Option<(PathBuf, u64)>, u64), StorageError> {
    let segments = list_segments(log_dir)?;
    let mut tail: Option<(PathBuf, u64)> = None;
    for (i, (_, path)) in segments.iter().enumerate() {
        // Empty segments after it do not count: a rotation that failed half-way (the next
        // segment created, its directory fsync failed) leaves one, and records kept while
        // the log was halted go on in this segment.
        let is_last = segments[i + 1..]
            .iter()
            .all(|(_, later)| std::fs::metadata(later).is_ok_and(|m| m.len() == 0));
        let bytes = log::read(path)?;
        let (records, end) = frame_records(&bytes);
        for (offset, payload) in &records {
            let record = parse_record(payload).ok_or_else(|| StorageError::BadRecord {
                path: path.clone(),
                seq: next_seq,
                offset: *offset,
                reason: "undecodable payload".into(),
            })?;
            if record.seq < next_seq {
                continue; // covered by the snapshot
            }
            if record.seq != next_seq {
                return Err(StorageError::Gap {
                    first: record.seq,
                    expected: next_seq,
                });
            }
            apply(db, &record, &mut report.removed_module_changes).map_err(|reason| {
                StorageError::BadRecord {
                    path: path.clone(),
                    seq: record.seq,
                    offset: *offset,
                    reason,
                }
            })?;
            next_seq += 1;
            report.replayed += 1;
            report.logical_time = report.logical_time.max(record.time);
        }
        let valid_len = match end {
            SegmentEnd::Clean => bytes.len() as u64,
            SegmentEnd::TornTail { offset } if is_last => {
                let cut = bytes.len() as u64 - offset;
                tracing::warn!(
                    target: "interstice::storage",
                    "{}: cutting off an incomplete last record ({cut} bytes at offset {offset})",
                    path.display()
                );
                log::truncate(path, offset)?;
                report.torn_tail_bytes = cut;
                offset
            }
            SegmentEnd::TornTail { offset } | SegmentEnd::Corrupt { offset, .. } => {
                let reason = match &end {
                    SegmentEnd::Corrupt { reason, .. } => reason.clone(),
                    _ => "incomplete record before the last segment".into(),
                };
                let later: u64 = segments[i + 1..]
                    .iter()
                    .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
                    .sum();
                let after = bytes.len() as u64 - offset + later;
                if !repair {
                    return Err(StorageError::CorruptLog {
                        path: path.clone(),
                        offset,
                        reason,
                        after,
                    });
                }
                tracing::warn!(
                    target: "interstice::storage",
                    "repair: dropping {after} byte(s) of log from {} offset {offset} on ({reason})",
                    path.display()
                );
                log::truncate(path, offset)?;
                for (_, later_path) in &segments[i + 1..] {
                    std::fs::remove_file(later_path)
                        .map_err(|e| StorageError::io(later_path, e))?;
                }
                report.repaired_bytes = after;
                tail = Some((path.clone(), offset));
                break;
            }
        };
        if is_last {
            tail = Some((path.clone(), valid_len));
        }
    }
    Ok((tail, next_seq))
}

/// The table `module.table` of the database, for recovery.
fn recovery_table<'a>(
    db: &'a mut Database,
    module: &str,
    table: &str,
) -> Result<&'a mut crate::db::Table, String> {
    db.module_mut(module)
        .ok_or_else(|| format!("module `{module}` is not installed"))?
        .tables
        .iter_mut()
        .find(|t| t.schema().name == table)
        .ok_or_else(|| format!("module `{module}` has no table `{table}`"))
}

fn restore_snapshot(
    db: &mut Database,
    data: &snapshot::SnapshotData,
    skipped: &mut u64,
) -> Result<(), String> {
    for module in &data.modules {
        if db.module(&module.name).is_none() {
            // Removed after this snapshot: its data went with it.
            *skipped += module
                .tables
                .iter()
                .map(|t| t.rows.len() as u64)
                .sum::<u64>();
            continue;
        }
        let layout = data.layouts.iter().find(|l| l.module == module.name);
        for t in &module.tables {
            let table = recovery_table(db, &module.name, &t.name)?;
            // Written by an older version of the module (upgraded since): take its rows in.
            let older = layout.and_then(|l| {
                l.tables
                    .iter()
                    .find(|old| old.name == t.name && old.fields != table.schema().fields)
                    .map(|old| (old, &l.types))
            });
            match older {
                Some((old, types)) => {
                    crate::upgrade::restore_rows(table, old, types, t.rows.iter())
                        .map_err(|e| format!("table `{}.{}`: {e}", module.name, t.name))?;
                }
                None => {
                    for bytes in t.rows.iter() {
                        let row = table.decode_row(bytes).map_err(|e| e.to_string())?;
                        table.put_recovered(row).map_err(|e| e.to_string())?;
                    }
                }
            }
            table.restore_counters(t.next_pk, &t.counters);
        }
    }
    for stream in &data.streams {
        if db
            .publications
            .stream(&stream.module, &stream.table)
            .is_some()
        {
            let events = stream
                .events
                .iter()
                .map(|(seq, kind, rows)| crate::publish::PublishedEvent {
                    seq: *seq,
                    kind: *kind,
                    rows: rows.clone(),
                })
                .collect();
            db.publications
                .restore(&stream.module, &stream.table, stream.next_seq, events);
        }
    }
    Ok(())
}

/// Replays one record. The events it makes in published streams are appended again, with the
/// numbers the live node gave them: each change is the net change of one row, and the row
/// before it is in the table being rebuilt.
fn apply(db: &mut Database, record: &log::Record<'_>, skipped: &mut u64) -> Result<(), String> {
    let publications = db.publications.clone();
    for group in &record.groups {
        if db.module(group.module).is_none() {
            // A removed module's changes (records are checksummed: this is not damage).
            *skipped += group.changes.len() as u64;
            continue;
        }
        let publishes = publications.publishes(group.module);
        for change in &group.changes {
            let table = recovery_table(db, group.module, change.table)?;
            let event = match change.op {
                OP_PUT => {
                    let row = table.decode_row(change.data).map_err(|e| e.to_string())?;
                    let pk = row
                        .get(usize::from(table.schema().primary_key))
                        .cloned()
                        .ok_or("row without a primary key")?;
                    let event = publishes
                        .then(|| {
                            let before = table.get(&pk).map(|r| r.as_slice());
                            crate::commit::event_of(table, before, Some(&row))
                        })
                        .flatten();
                    table.put_recovered(row).map_err(|e| e.to_string())?;
                    event
                }
                OP_DELETE => {
                    let pk = table.decode_pk(change.data).map_err(|e| e.to_string())?;
                    let event = publishes
                        .then(|| {
                            crate::commit::event_of(
                                table,
                                table.get(&pk).map(|r| r.as_slice()),
                                None,
                            )
                        })
                        .flatten();
                    table.delete_recovered(&pk);
                    event
                }
                op => return Err(format!("unknown change op {op}")),
            };
            if let Some((kind, rows)) = event {
                publications.append(group.module, change.table, kind, rows);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The log replay phase on its own: what a live engine journaled, written as a segment and
    //! replayed into a fresh engine, with the module compiled in natively.

    use super::*;
    use crate::config::EngineConfig;
    use crate::error::CallError;
    use interstice_abi::codec::write_str;
    use notebook as _;

    /// An engine with the notebook loaded (its `init` hook run), journaling from record 1.
    fn engine() -> (Modules, Database) {
        let mut modules = Modules::new(EngineConfig::default()).expect("engine");
        let mut db = Database::default();
        modules
            .load_native(&mut db, "notebook")
            .expect("loading the notebook natively");
        db.enable_journal(1);
        (modules, db)
    }

    fn call(
        modules: &mut Modules,
        db: &mut Database,
        reducer: &str,
        args: &[u8],
    ) -> Result<(), CallError> {
        let handle = modules.reducer("notebook", reducer)?;
        modules.call_reducer(db, handle, args)
    }

    fn title(text: &str) -> Vec<u8> {
        let mut args = Vec::new();
        write_str(&mut args, text);
        args
    }

    /// A live engine's work: inserts, an update, a delete and a failed call; returns its
    /// journal as one segment's bytes and the durable state it reached.
    fn journaled_work() -> (Vec<u8>, u64) {
        let (mut modules, mut db) = engine();
        for t in ["a", "b", "c"] {
            call(&mut modules, &mut db, "add", &title(t)).unwrap();
        }
        let mut rename = Vec::new();
        interstice_abi::codec::write_varint(&mut rename, 2);
        write_str(&mut rename, "b2");
        call(&mut modules, &mut db, "rename", &rename).unwrap();
        let mut remove = Vec::new();
        interstice_abi::codec::write_varint(&mut remove, 1);
        call(&mut modules, &mut db, "remove", &remove).unwrap();
        assert!(call(&mut modules, &mut db, "add_then_fail", &title("x")).is_err());
        let journal = db.journal_mut().expect("journal enabled").take();
        (journal, db.durable_state_hash())
    }

    fn replay(dir: &Path, repair: bool) -> (Result<u64, StorageError>, RecoveryReport, u64) {
        let (_, mut db) = engine();
        let mut report = RecoveryReport::default();
        let replayed = replay_log(dir, repair, 1, &mut db, &mut report).map(|(_, next)| next);
        (replayed, report, db.durable_state_hash())
    }

    #[test]
    fn replaying_the_journal_rebuilds_the_state_the_live_engine_reached() {
        let (journal, live) = journaled_work();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(log::segment_name(1)), &journal).unwrap();
        let (next, report, replayed) = replay(dir.path(), false);
        // Five committed transactions; the failed one left no record.
        assert_eq!(next.unwrap(), 6);
        assert_eq!(report.replayed, 5);
        assert_eq!(replayed, live);
        let (_, fresh) = engine();
        assert_ne!(
            fresh.durable_state_hash(),
            live,
            "the work changed something"
        );
    }

    #[test]
    fn a_torn_last_record_is_cut_off_and_the_rest_replayed() {
        let (journal, _) = journaled_work();
        let dir = tempfile::tempdir().unwrap();
        let segment = dir.path().join(log::segment_name(1));
        let torn = &journal[..journal.len() - 3];
        std::fs::write(&segment, torn).unwrap();
        let (next, report, _) = replay(dir.path(), false);
        assert_eq!(next.unwrap(), 5, "the last record is gone");
        assert_eq!(report.replayed, 4);
        assert!(report.torn_tail_bytes > 0);
        let (records, _) = frame_records(&journal);
        assert_eq!(
            std::fs::metadata(&segment).unwrap().len(),
            records[4].0,
            "the segment ends where the torn record began"
        );
    }

    #[test]
    fn damage_in_the_middle_is_an_error_unless_repair_drops_what_follows() {
        let (mut journal, _) = journaled_work();
        let (records, _) = frame_records(&journal);
        let second = records[1].0 as usize;
        // A flipped byte inside the second record's payload: its checksum fails, and intact
        // records follow it.
        journal[second + crate::db::journal::HEADER_LEN + 1] ^= 0xff;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(log::segment_name(1)), &journal).unwrap();
        let (refused, _, _) = replay(dir.path(), false);
        assert!(
            matches!(refused, Err(StorageError::CorruptLog { offset, .. }) if offset == second as u64),
            "{refused:?}"
        );
        let (repaired, report, _) = replay(dir.path(), true);
        assert_eq!(repaired.unwrap(), 2, "only the first record is kept");
        assert_eq!(report.repaired_bytes, (journal.len() - second) as u64);
    }
}
