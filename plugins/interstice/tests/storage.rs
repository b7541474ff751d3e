//! Durable tables across restarts, with real modules and real files.

mod common;

use bevy::prelude::*;
use common::*;
use interstice::core::storage::log::list_segments;
use interstice::core::storage::snapshot;
use interstice::prelude::*;
use interstice::{
    Database, EngineConfig, Modules, Retention, Storage, StorageConfig, StorageError,
};
use kitchen::Kind;
use std::path::Path;

/// A node app persisting in `dir` with the kitchen module.
fn node(config: StorageConfig) -> App {
    persisting_node(config, &["kitchen"])
}

fn add(app: &mut App, code: &str, price: i64) {
    call(
        app,
        "kitchen",
        "add_item",
        (
            code.to_string(),
            "c".to_string(),
            price,
            Kind::Labeled(code.into()),
            vec![code.to_string()],
            Some(code.to_string()),
            (1.0f32, 2.0f32),
        ),
    )
    .expect("add_item");
}

fn ids(app: &mut App) -> Vec<u64> {
    query(app, "kitchen", "all_ids", ()).expect("all_ids")
}

fn durable_hash(app: &App) -> u64 {
    app.world().resource::<Database>().durable_state_hash()
}

/// Opens storage directly, as recovery does, and reports.
fn open(
    config: StorageConfig,
) -> Result<(Storage, interstice::RecoveryReport, Database), StorageError> {
    let mut modules = Modules::new(EngineConfig::default()).expect("engine");
    let mut db = Database::default();
    Storage::open(config, &mut modules, &mut db).map(|(s, r)| (s, r, db))
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    list_segments(&dir.join("log"))
        .unwrap()
        .last()
        .unwrap()
        .1
        .clone()
}

#[test]
fn every_persistence_mode_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig::new(dir.path());
    let before = {
        let mut app = node(config.clone());
        add(&mut app, "a", 1);
        add(&mut app, "b", 2);
        call(
            &mut app,
            "kitchen",
            "set_setting",
            ("theme".to_string(), "dark".to_string()),
        )
        .unwrap();
        call(&mut app, "kitchen", "set_price", (1u64, 10i64)).unwrap();
        assert_eq!(
            query::<_, i64>(&mut app, "kitchen", "counter", ("init".to_string(),)),
            Ok(1)
        );
        durable_hash(&app)
    };
    let mut app = node(config);
    assert_eq!(
        durable_hash(&app),
        before,
        "logged and stateful tables come back exactly"
    );
    assert_eq!(ids(&mut app), vec![1, 2]);
    assert_eq!(
        query::<_, Option<String>>(&mut app, "kitchen", "setting", ("theme".to_string(),)),
        Ok(Some("dark".into()))
    );
    // Ephemeral tables start empty; `load` ran again, `init` did not.
    assert_eq!(
        query::<_, i64>(&mut app, "kitchen", "counter", ("init".to_string(),)),
        Ok(0)
    );
    assert_eq!(
        query::<_, i64>(&mut app, "kitchen", "counter", ("load".to_string(),)),
        Ok(1)
    );
    assert_eq!(
        query::<_, Option<String>>(&mut app, "kitchen", "setting", ("init_runs".to_string(),)),
        Ok(Some("1".into()))
    );
    // Indexes are rebuilt.
    let by_code: Option<kitchen::Item> =
        query(&mut app, "kitchen", "item_by_code", ("b".to_string(),)).unwrap();
    assert_eq!(by_code.map(|i| i.id), Some(2));
}

#[test]
fn auto_inc_values_are_never_reused_after_restart() {
    for snapshot_every in [0, 2] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StorageConfig::new(dir.path());
        config.snapshot_every_records = snapshot_every;
        config.snapshot_scales_with_rows = false;
        {
            let mut app = node(config.clone());
            add(&mut app, "a", 1);
            add(&mut app, "b", 2);
            add(&mut app, "c", 3);
            call(&mut app, "kitchen", "remove_item", (3u64,)).unwrap();
        }
        let mut app = node(config);
        add(&mut app, "d", 4);
        assert_eq!(
            ids(&mut app),
            vec![1, 2, 4],
            "snapshot every {snapshot_every}"
        );
        let serial: Option<u64> = query(&mut app, "kitchen", "item_by_serial", (4u32,)).unwrap();
        assert_eq!(serial, Some(4), "index auto_inc counters survive too");
    }
}

#[test]
fn snapshots_compact_the_log_and_recover_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StorageConfig::new(dir.path());
    config.snapshot_every_records = 5;
    config.snapshot_scales_with_rows = false;
    let before = {
        let mut app = node(config.clone());
        for i in 0..23 {
            add(&mut app, &format!("item{i}"), i);
        }
        call(&mut app, "kitchen", "remove_item", (7u64,)).unwrap();
        durable_hash(&app)
    };
    let snapshots = snapshot::list(&dir.path().join("snapshots")).unwrap();
    assert_eq!(snapshots.len(), 1, "older snapshots are pruned");
    let segments = list_segments(&dir.path().join("log")).unwrap();
    assert!(
        segments.len() <= 2,
        "covered segments are pruned: {segments:?}"
    );
    let (_, report, db) = open(config.clone()).unwrap();
    assert!(report.snapshot.is_some());
    // A snapshot that falls due while the previous one is still being written (with its
    // history archive) waits for the next frame: at most two intervals of records remain.
    assert!(
        report.replayed < 2 * 5,
        "only the records after the snapshot are replayed: {}",
        report.replayed
    );
    assert_eq!(db.durable_state_hash(), before);
    let app = node(config);
    assert_eq!(durable_hash(&app), before);
}

/// A node with two items committed in `config`'s directory; its durable state hash.
fn two_items(config: &StorageConfig) -> u64 {
    let mut app = node(config.clone());
    add(&mut app, "a", 1);
    add(&mut app, "b", 2);
    durable_hash(&app)
}

/// Appends `bytes` to a log segment, as a crash mid-write leaves them; its length before.
fn append_to(segment: &Path, bytes: &[u8]) -> u64 {
    let mut all = std::fs::read(segment).unwrap();
    let intact = all.len() as u64;
    all.extend_from_slice(bytes);
    std::fs::write(segment, &all).unwrap();
    intact
}

#[test]
fn a_torn_tail_before_an_empty_segment_or_zeros_at_the_end_are_torn_tails() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig::new(dir.path());
    let before = two_items(&config);
    // A rotation that failed half-way left an empty next segment; records kept while the
    // log was halted went on in this one, and a crash cut the last of them.
    let segment = last_segment(dir.path());
    let intact = append_to(&segment, &[40, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
    std::fs::write(
        dir.path()
            .join("log")
            .join(interstice::core::storage::log::segment_name(u64::MAX / 2)),
        b"",
    )
    .unwrap();
    let (_, report, db) = open(config.clone()).unwrap();
    assert_eq!(report.torn_tail_bytes, 10);
    assert_eq!(db.durable_state_hash(), before);
    drop(db);

    // Pages dropped after a failed fsync can read back as zeros after the last record.
    assert_eq!(append_to(&segment, &[0; 4096]), intact);
    let (_, report, db) = open(config.clone()).unwrap();
    assert_eq!(report.torn_tail_bytes, 4096);
    assert_eq!(db.durable_state_hash(), before);
    drop(db);
    let mut app = node(config);
    add(&mut app, "c", 3);
}

#[test]
fn a_torn_tail_is_cut_off_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig::new(dir.path());
    let before = two_items(&config);
    // A crash in the middle of appending a record leaves a prefix of it.
    let segment = last_segment(dir.path());
    let intact = append_to(&segment, &[40, 0, 0, 0, 1, 2, 3, 4, 5, 6]);

    let (_, report, db) = open(config.clone()).unwrap();
    assert_eq!(report.torn_tail_bytes, 10);
    assert_eq!(db.durable_state_hash(), before);
    assert_eq!(
        std::fs::metadata(&segment).unwrap().len(),
        intact,
        "the tail is truncated"
    );
    drop(db);
    // And the log keeps working after the cut.
    let mut app = node(config);
    add(&mut app, "c", 3);
    assert_eq!(ids(&mut app), vec![1, 2, 3]);
}

#[test]
fn a_damaged_record_refuses_to_start_unless_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StorageConfig::new(dir.path());
    {
        let mut app = node(config.clone());
        add(&mut app, "a", 1);
        add(&mut app, "b", 2);
        add(&mut app, "c", 3);
    }
    let segment = last_segment(dir.path());
    let mut bytes = std::fs::read(&segment).unwrap();
    // Flip a bit inside the first record's payload; intact records follow it.
    bytes[12] ^= 0x04;
    std::fs::write(&segment, &bytes).unwrap();

    let err = open(config.clone()).unwrap_err();
    match &err {
        StorageError::CorruptLog {
            path,
            offset,
            after,
            ..
        } => {
            assert_eq!(path, &segment);
            assert_eq!(*offset, 0);
            assert_eq!(*after, bytes.len() as u64);
        }
        other => panic!("expected CorruptLog, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("offset 0") && message.contains("repair"),
        "{message}"
    );

    config.repair = true;
    let (_, report, db) = open(config).unwrap();
    assert_eq!(report.repaired_bytes, bytes.len() as u64);
    let items = db.table("kitchen", "item").map(|t| t.len());
    assert_eq!(
        items,
        Some(0),
        "everything from the damaged record on is dropped"
    );
}

#[test]
fn a_truncated_snapshot_falls_back_to_the_kept_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StorageConfig::new(dir.path());
    config.snapshot_every_records = 3;
    config.snapshot_scales_with_rows = false;
    config.retention = Retention::KeepHistory;
    let before = {
        let mut app = node(config.clone());
        for i in 0..7 {
            add(&mut app, &format!("i{i}"), i);
        }
        durable_hash(&app)
    };
    let snapshots = snapshot::list(&dir.path().join("snapshots")).unwrap();
    let (_, newest) = &snapshots[0];
    let len = std::fs::metadata(newest).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(newest)
        .unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);

    let (_, report, db) = open(config).unwrap();
    assert_eq!(report.damaged_snapshots, vec![newest.clone()]);
    assert_eq!(db.durable_state_hash(), before);
}

#[test]
fn a_truncated_snapshot_without_history_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StorageConfig::new(dir.path());
    config.snapshot_every_records = 3;
    config.snapshot_scales_with_rows = false;
    {
        let mut app = node(config.clone());
        for i in 0..4 {
            add(&mut app, &format!("i{i}"), i);
        }
    }
    let snapshots = snapshot::list(&dir.path().join("snapshots")).unwrap();
    let (_, newest) = &snapshots[0];
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(newest)
        .unwrap();
    f.set_len(25).unwrap();
    drop(f);
    let err = open(config).unwrap_err();
    assert!(matches!(err, StorageError::Gap { .. }), "{err}");
}

#[test]
fn a_refused_module_leaves_nothing_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig::new(dir.path());
    let mut app = node(config);
    let before: Vec<_> = std::fs::read_dir(dir.path().join("modules"))
        .unwrap()
        .collect();
    assert_eq!(before.len(), 1);
    // Loading the same module again is refused before anything is written.
    let loaded = app
        .world_mut()
        .resource_scope(|world, mut modules: Mut<Modules>| {
            world.resource_scope(|world, mut db: Mut<Database>| {
                let mut storage = world.resource_mut::<Storage>();
                storage.load_module(&mut modules, &mut db, &wasm("kitchen"))
            })
        });
    assert!(loaded.is_err());
    let after: Vec<_> = std::fs::read_dir(dir.path().join("modules"))
        .unwrap()
        .collect();
    assert_eq!(after.len(), 1);
}

#[test]
fn compiled_modules_are_cached_and_a_damaged_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig::new(dir.path());
    {
        let mut app = node(config.clone());
        add(&mut app, "a", 1);
    }
    let cache = dir.path().join("cache");
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "one compiled artifact: {entries:?}");
    assert!(entries[0].extension().is_some_and(|x| x == "cwasm"));
    // The restart loads from the cache.
    {
        let mut app = node(config.clone());
        assert_eq!(ids(&mut app), vec![1]);
    }
    // A damaged artifact is not trusted: the module is compiled again.
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entries[0], &bytes).unwrap();
    let mut app = node(config);
    assert_eq!(ids(&mut app), vec![1]);
    add(&mut app, "b", 2);
    assert_eq!(ids(&mut app), vec![1, 2]);
}

#[test]
fn interval_durability_holds_outcomes_until_the_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StorageConfig::new(dir.path());
    let interval = std::time::Duration::from_millis(500);
    config.durability = interstice::Durability::Interval(interval);
    // Loading the module ends with an fsync, so the next one is due an interval after that.
    // Taken before the node starts, this is no later than that fsync: on a busy machine the
    // start itself can take a good part of the interval.
    let synced = std::time::Instant::now();
    let mut app = node(config);
    let ids: Vec<_> = (0..3)
        .map(|i| {
            with_api(&mut app, |api| {
                api.queue_reducer("kitchen", "set_setting", (format!("k{i}"), "v".to_string()))
            })
            .unwrap()
        })
        .collect();
    app.update();
    let outcomes = |app: &App| {
        let messages = app.world().resource::<Messages<ReducerOutcome>>();
        messages
            .get_cursor()
            .read(messages)
            .cloned()
            .collect::<Vec<_>>()
    };
    if synced.elapsed() < interval {
        assert!(
            outcomes(&app).is_empty(),
            "outcomes were reported before their fsync"
        );
    }
    let mut seen = Vec::new();
    let deadline = synced + std::time::Duration::from_secs(30);
    while seen.len() < ids.len() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        app.update();
        for outcome in outcomes(&app) {
            if !seen.contains(&outcome.id) {
                assert_eq!(outcome.result, Ok(()));
                assert!(
                    synced.elapsed() >= interval,
                    "released before the interval fsync"
                );
                seen.push(outcome.id);
            }
        }
    }
    assert_eq!(seen, ids, "every outcome, in order");
}

fn encoded<A: interstice::abi::typed::Args>(args: A) -> Vec<u8> {
    let mut out = Vec::new();
    args.encode_args(&mut out);
    out
}

/// Runs one invocation queued by `push` and returns its outcome.
fn run_queued(
    app: &mut App,
    push: impl FnOnce(&mut interstice::ReducerQueue) -> interstice::InvocationId,
) -> Result<(), interstice::CallError> {
    let id = push(&mut app.world_mut().resource_mut::<interstice::ReducerQueue>());
    app.update();
    let messages = app.world().resource::<Messages<ReducerOutcome>>();
    let mut cursor = messages.get_cursor();
    cursor
        .read(messages)
        .find(|o| o.id == id)
        .cloned()
        .expect("an outcome")
        .result
}

#[test]
fn calls_from_peers_are_remembered_with_their_commit_across_restart() {
    use interstice::core::host_tables::answered::answered_by;
    let dir = tempfile::tempdir().unwrap();
    let mut app = node(StorageConfig::new(dir.path()));
    // Committed: remembered. Failed (rolled back): not remembered, so a resend runs it.
    run_queued(&mut app, |q| {
        q.push_remote("kitchen", "add_many", encoded((3u32,)), "peer-a", 41)
    })
    .unwrap();
    assert!(
        run_queued(&mut app, |q| {
            q.push_remote(
                "kitchen",
                "set_price",
                encoded((999u64, 5i64)),
                "peer-a",
                42,
            )
        })
        .is_err()
    );
    run_queued(&mut app, |q| {
        q.push_remote("kitchen", "set_price", encoded((1u64, 5i64)), "peer-b", 7)
    })
    .unwrap();
    let db = app.world().resource::<Database>();
    assert_eq!(answered_by(db, "peer-a"), vec![41]);
    assert_eq!(answered_by(db, "peer-b"), vec![7]);
    let before = durable_hash(&app);
    drop(app);

    let app = node(StorageConfig::new(dir.path()));
    assert_eq!(durable_hash(&app), before);
    let db = app.world().resource::<Database>();
    assert_eq!(answered_by(db, "peer-a"), vec![41], "survives a restart");
    assert!(answered_by(db, "peer-c").is_empty());
}

#[test]
fn an_upgrade_interrupted_after_writing_the_new_code_recovers_to_the_new_version() {
    let project = tempfile::tempdir().unwrap();
    let v1 = versioned_module(project.path(), "", "");
    let v2 = versioned_module(
        project.path(),
        "    pub note: Option<String>,\n",
        ", note: None",
    );
    assert_ne!(v1, v2);
    let dir = tempfile::tempdir().unwrap();

    // v1 with rows, everything durable and snapshotted: the state after step 1 of an upgrade.
    {
        let mut modules = Modules::new(EngineConfig::default()).unwrap();
        let mut db = Database::default();
        let (mut storage, _) =
            Storage::open(StorageConfig::new(dir.path()), &mut modules, &mut db).unwrap();
        storage.load_module(&mut modules, &mut db, &v1).unwrap();
        for name in ["a", "b"] {
            let handle = modules.reducer("versioned", "add").unwrap();
            let mut args = Vec::new();
            interstice::abi::codec::write_str(&mut args, name);
            modules.call_reducer(&mut db, handle, &args).unwrap();
        }
        storage.commit(&mut db).unwrap();
        storage.snapshot(&mut db).unwrap();
    }
    // Step 2: the new code next to the old, under a higher install number. Then the crash.
    std::fs::write(dir.path().join("modules/000099-versioned.wasm"), &v2).unwrap();

    let mut modules = Modules::new(EngineConfig::default()).unwrap();
    let mut db = Database::default();
    let (_storage, report) =
        Storage::open(StorageConfig::new(dir.path()), &mut modules, &mut db).unwrap();
    assert_eq!(report.modules, vec!["versioned".to_string()]);
    let schema = modules.schema("versioned").unwrap();
    assert_eq!(schema.tables[0].fields.len(), 3, "v2 won");
    let names = modules
        .call_query(&mut db, modules.query("versioned", "names").unwrap(), &[])
        .unwrap();
    let names: Vec<String> = interstice::IntersticeType::from_bytes(&names).unwrap();
    assert_eq!(names, ["a", "b"], "the rows came through the layout change");
    let files = std::fs::read_dir(dir.path().join("modules"))
        .unwrap()
        .count();
    assert_eq!(files, 1, "the superseded code is gone");
}

/// The snapshots `config`'s node wrote for 40 single-row inserts: (last record covered, rows
/// held), oldest first; and the durable state it ended with.
fn snapshots_of_forty_inserts(config: &StorageConfig) -> (Vec<(u64, usize)>, u64) {
    let state = {
        let mut app = node(config.clone());
        for i in 0..40 {
            add(&mut app, &format!("item{i}"), i);
        }
        durable_hash(&app)
    };
    // The node waited for the snapshot being written when it stopped: every file is whole.
    let mut snapshots: Vec<(u64, usize)> = snapshot::list(&config.dir.join("snapshots"))
        .unwrap()
        .into_iter()
        .map(|(seq, path)| {
            let data = snapshot::read(&path).expect("a whole snapshot");
            let rows = data
                .modules
                .iter()
                .flat_map(|m| &m.tables)
                .map(|t| t.rows.len())
                .sum();
            (seq, rows)
        })
        .collect();
    snapshots.reverse();
    (snapshots, state)
}

#[test]
fn a_snapshot_waits_for_as_many_records_as_the_last_one_held_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StorageConfig::new(dir.path());
    config.snapshot_every_records = 4;
    config.retention = Retention::KeepHistory;
    let (scaled, state) = snapshots_of_forty_inserts(&config);
    assert!(scaled.len() >= 2, "{scaled:?}");
    for pair in scaled.windows(2) {
        let ((before, rows), (after, _)) = (pair[0], pair[1]);
        assert!(
            after - before >= (rows as u64).max(4),
            "snapshot at {after} came {} records after one holding {rows} rows: {scaled:?}",
            after - before
        );
    }
    // Recovery from the last one and the log after it is the same state.
    let (_, report, db) = open(config.clone()).unwrap();
    assert_eq!(report.snapshot, scaled.last().map(|(seq, _)| *seq));
    assert_eq!(db.durable_state_hash(), state);

    // Without scaling, a snapshot is due every 4 records whatever it holds: some come sooner
    // after the last one than it held rows. (How many there are depends on timing: one due
    // while the previous is still being written waits for a later frame.)
    let dir = tempfile::tempdir().unwrap();
    let mut config = StorageConfig::new(dir.path());
    config.snapshot_every_records = 4;
    config.snapshot_scales_with_rows = false;
    config.retention = Retention::KeepHistory;
    let (every, state) = snapshots_of_forty_inserts(&config);
    assert!(every.len() >= 2, "{every:?}");
    assert!(
        every
            .windows(2)
            .any(|pair| pair[1].0 - pair[0].0 < pair[0].1 as u64),
        "{every:?}"
    );
    let (_, _, db) = open(config).unwrap();
    assert_eq!(db.durable_state_hash(), state);
}

#[test]
fn temporary_files_a_killed_node_left_are_removed_when_storage_opens() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StorageConfig::new(dir.path());
    config.snapshot_every_records = 2;
    config.snapshot_scales_with_rows = false;
    let state = {
        let mut app = node(config.clone());
        for i in 0..5 {
            add(&mut app, &format!("i{i}"), i);
        }
        durable_hash(&app)
    };
    // What a node killed halfway through writing a snapshot and an installed module leaves.
    let left = [
        dir.path()
            .join("snapshots")
            .join(".00000000000000000099.snap.4242.tmp"),
        dir.path()
            .join("modules")
            .join(".0001-kitchen.wasm.4242.tmp"),
    ];
    for path in &left {
        std::fs::write(path, b"half a file").unwrap();
    }
    let (_, report, db) = open(config).unwrap();
    for path in &left {
        assert!(!path.exists(), "{} is still there", path.display());
    }
    assert!(report.snapshot.is_some(), "the real snapshot is kept");
    assert_eq!(db.durable_state_hash(), state);
}
