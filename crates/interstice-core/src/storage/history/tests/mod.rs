//! A randomized workload on a persisting engine (the notebook compiled in natively), with
//! small segments and frequent snapshots so that most of the log is pruned, checked
//! against a model of every version of every row.

use super::*;
use crate::config::EngineConfig;
use crate::runtime::Modules;
use crate::storage::{Storage, StorageConfig};
use interstice_abi::Value;
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
    // No archive running beside the test's retention.
    node.storage.snapshot(&mut node.db).unwrap();
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
        ..Default::default()
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
        crate::storage::recovery::replay_log(&log_dir, false, 0, &mut db, &mut report).unwrap();
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

#[test]
fn a_removed_modules_history_is_not_its_later_namesakes() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(dir.path(), HistoryRetention::default());
    for title in ["old1", "old2"] {
        assert!(node.call(10, "add", &title_args(title)));
    }
    node.storage
        .remove_module(&mut node.modules, &mut node.db, "notebook")
        .unwrap();
    node.modules
        .load_native(&mut node.db, "notebook")
        .expect("a namesake loads");
    assert!(node.call(20, "add", &title_args("new")));
    node.storage.snapshot(&mut node.db).unwrap();
    let titles: Vec<_> = node.history("note", None).iter().map(title_of).collect();
    assert_eq!(titles, [Some("new".to_string())]);
    // A restore to now holds the namesake's rows only.
    let target = tempfile::tempdir().unwrap();
    let last = node.db.journal_mut().unwrap().next_seq() - 1;
    let logged = logged_tables(&node.db);
    restore(dir.path(), &logged, last, target.path()).unwrap();
    let (mut modules, mut db) = (
        Modules::new(EngineConfig::default()).unwrap(),
        Database::default(),
    );
    modules.load_native(&mut db, "notebook").unwrap();
    let mut report = Default::default();
    crate::storage::recovery::replay_log(
        &target.path().join("log"),
        false,
        0,
        &mut db,
        &mut report,
    )
    .unwrap();
    let restored: Vec<_> = rows_of(&db, "note").iter().map(|r| r[1].clone()).collect();
    assert_eq!(restored, [Value::String("new".into())]);
}

#[test]
fn a_damaged_history_file_is_an_error_naming_it_not_a_shorter_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(dir.path(), HistoryRetention::default());
    workload(&mut node, 200);
    let (_, path) = list(&super::dir(dir.path())).unwrap().remove(0);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 40, "the first history file holds records");
    // A flipped byte inside the first record's payload: its checksum fails.
    bytes[crate::db::journal::HEADER_LEN + 2] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let query = HistoryQuery {
        module: "notebook",
        table: "note",
        key: None,
        from_seq: 0,
        to_seq: u64::MAX,
        limit: MAX_VERSIONS_PER_READ,
    };
    let read = node.storage.history(&node.db, &query);
    assert!(
        matches!(&read, Err(HistoryError::Storage(StorageError::CorruptLog { path: p, .. })) if *p == path),
        "{read:?}"
    );
    let target = tempfile::tempdir().unwrap();
    let restored = restore(dir.path(), &logged_tables(&node.db), 10, target.path());
    assert!(
        matches!(
            restored,
            Err(RestoreError::Storage(StorageError::CorruptLog { .. }))
        ),
        "{restored:?}"
    );
}

#[test]
fn the_point_at_a_logical_time_splits_the_versions_before_and_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node(dir.path(), HistoryRetention::default());
    workload(&mut node, 300);
    let versions = node.history("note", None);
    // The workload's calls are 10 ms apart from 1,000 ms on.
    for time in [1_000, 1_555, 2_000, 3_990, 4_000] {
        let point = last_seq_at(dir.path(), time)
            .unwrap()
            .expect("something by then");
        for version in &versions {
            assert_eq!(
                version.seq <= point,
                version.time <= time,
                "at {time} ms the point is {point}: {version:?}"
            );
        }
    }
    // Before the first call: the notebook's `init`, run when it loaded at time 0.
    let loaded = last_seq_at(dir.path(), 999).unwrap().expect("the load");
    assert!(loaded < versions[0].seq);
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir(empty.path().join("log")).unwrap();
    assert_eq!(last_seq_at(empty.path(), 999).unwrap(), None);
    let newest = node.db.journal_mut().unwrap().next_seq() - 1;
    assert_eq!(last_seq_at(dir.path(), u64::MAX).unwrap(), Some(newest));
}

mod as_of;
mod indexes;

#[test]
fn a_segment_kept_whole_is_linked_into_history_and_a_filtered_one_is_copied() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let segment = dir.path().join("segment.log");
    let whole = b"records kept as they are".to_vec();
    std::fs::write(&segment, &whole).unwrap();
    let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();

    let linked = dir.path().join("linked.hist");
    keep(&segment, (&whole, &whole), &linked).unwrap();
    assert_eq!(
        inode(&linked),
        inode(&segment),
        "no copy: the segment itself"
    );
    // Again over the same name (a crash before the prune): still the one file.
    keep(&segment, (&whole, &whole), &linked).unwrap();
    assert_eq!(inode(&linked), inode(&segment));

    let filtered = b"records kept".to_vec();
    let copied = dir.path().join("copied.hist");
    keep(&segment, (&whole, &filtered), &copied).unwrap();
    assert_ne!(inode(&copied), inode(&segment));
    assert_eq!(std::fs::read(&copied).unwrap(), filtered);
    // The segment's deletion (the prune) leaves the linked history file whole.
    std::fs::remove_file(&segment).unwrap();
    assert_eq!(std::fs::read(&linked).unwrap(), whole);
}
