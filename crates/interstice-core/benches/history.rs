//! What keeping history costs and how fast it is read, with a real module compiled to wasm
//! (`bench`'s logged table, one insert per transaction, frames of 5,000 with group commit):
//!
//! - inserts per second with history kept (`Retention::Prune`: pruned segments' changes copied
//!   into `history/` on the snapshot's thread) against keeping the whole log instead
//!   (`Retention::KeepHistory`: nothing copied, nothing deleted), run alternately;
//! - one row's history looked up in a log of that many changes (`Storage::history` with a key):
//!   a row in a history file, first and again, the newest row, 100 rows spread over the log;
//! - a restore of the state after the first million changes (`history::restore`) and the
//!   recovery of the restored directory (what `node start` then does).
//!
//! `cargo bench -p interstice-core --bench history` (`INTERSTICE_HISTORY_CHANGES`, default
//! 10,000,000; `INTERSTICE_HISTORY_ROUNDS`, default 2).

use interstice_abi::{IntersticeType, Value};
use interstice_core::storage::history::{self, HistoryQuery, MAX_VERSIONS_PER_READ};
use interstice_core::{Database, EngineConfig, Modules, Retention, Storage, StorageConfig};
use std::path::Path;
use std::time::{Duration, Instant};

const FRAME: u64 = 5_000;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn engine() -> Modules {
    Modules::new(EngineConfig {
        quotas: interstice_core::Quotas {
            rows: u64::MAX,
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("engine")
}

/// A persisting engine with `bench` loaded into `dir`.
fn node(dir: &Path, retention: Retention, wasm: &[u8]) -> (Modules, Database, Storage) {
    let mut config = StorageConfig::new(dir);
    config.retention = retention;
    config.snapshot_every_records = 2_000_000;
    config.snapshot_scales_with_rows = false;
    let mut modules = engine();
    let mut db = Database::default();
    let (mut storage, _) = Storage::open(config, &mut modules, &mut db).expect("storage");
    storage
        .load_module(&mut modules, &mut db, wasm)
        .expect("bench loads");
    (modules, db, storage)
}

/// Inserts `changes` rows, a frame of `FRAME` transactions at a time; returns the time taken.
fn insert(
    modules: &mut Modules,
    db: &mut Database,
    storage: &mut Storage,
    changes: u64,
) -> Duration {
    let handle = modules.reducer("bench", "insert_logged").expect("reducer");
    let started = Instant::now();
    let mut args = Vec::new();
    for frame in 0..changes.div_ceil(FRAME) {
        for i in 0..FRAME.min(changes - frame * FRAME) {
            args.clear();
            (frame * FRAME + i).encode(&mut args);
            modules.call_reducer(db, handle, &args).expect("insert");
        }
        storage.commit(db).expect("commit");
        storage.sync(db).expect("sync");
    }
    // The last snapshot's archive, written on its thread, counts too.
    storage.snapshot(db).expect("snapshot");
    started.elapsed()
}

fn main() {
    let changes = env("INTERSTICE_HISTORY_CHANGES", 10_000_000);
    let rounds = env("INTERSTICE_HISTORY_ROUNDS", 2);
    let wasm = interstice_build::test_modules!["bench"].remove(0);
    let rate = |d: Duration| changes as f64 / d.as_secs_f64();
    for round in 1..=rounds {
        for retention in [Retention::KeepHistory, Retention::Prune] {
            let dir = tempfile::tempdir().expect("temp dir");
            let (mut modules, mut db, mut storage) = node(dir.path(), retention, &wasm);
            let took = insert(&mut modules, &mut db, &mut storage, changes);
            let history_dir = dir.path().join("history");
            let (files, indexes) = (
                walk_bytes(&history_dir, "hist"),
                walk_bytes(&history_dir, "hidx"),
            );
            let mib = |bytes: u64| bytes as f64 / 1048576.0;
            let per_million = |bytes: u64| mib(bytes) / (changes as f64 / 1e6);
            println!(
                "history/inserts/{retention:?} (round {round}): {changes} changes in {took:.2?}, \
                 {:.0} per second; history/ holds {:.1} MiB of changes ({:.1} MiB per million) \
                 and {:.1} MiB of indexes ({:.1} MiB per million)",
                rate(took),
                mib(files),
                per_million(files),
                mib(indexes),
                per_million(indexes),
            );
            if retention != Retention::Prune || round != rounds {
                continue;
            }
            // One row's history in a log of `changes` changes: the middle one's (in a history
            // file), twice (the first read also indexes the log segments not archived yet),
            // then the newest row's (in the segment being written), then 100 rows spread over
            // the whole log.
            let lookup = |key: u64| {
                let key = Value::U64(key);
                let query = HistoryQuery {
                    module: "bench",
                    table: "logged",
                    key: Some(&key),
                    from_seq: 0,
                    to_seq: u64::MAX,
                    limit: MAX_VERSIONS_PER_READ,
                };
                let started = Instant::now();
                let versions = storage.history(&db, &query).expect("history");
                assert_eq!(versions.len(), 1, "row {key:?} has one version");
                started.elapsed()
            };
            let first = lookup(changes / 2 + 1);
            let again = lookup(changes / 2 + 1);
            let newest = lookup(changes);
            let mut spread: Vec<Duration> = (0..100u64)
                .map(|i| lookup(1 + i * (changes / 100)))
                .collect();
            spread.sort();
            println!(
                "history/lookup: one row's history (1 version) in a log of {changes} changes \
                 (budget 50 ms): the middle row {first:.2?} (first read), {again:.2?} (again); \
                 the newest row {newest:.2?}; 100 rows spread over the log: median {:.2?}, \
                 max {:.2?}",
                spread[50], spread[99],
            );
            // A restore of the state after the first million changes, then its recovery.
            let logged = history::logged_tables(&db);
            let newest = db.journal_mut().map(|j| j.next_seq() - 1).expect("journal");
            let last = newest.min(1_000_000);
            let target = tempfile::tempdir().expect("temp dir");
            let started = Instant::now();
            let restored =
                history::restore(dir.path(), &logged, last, target.path()).expect("restore");
            let restore_took = started.elapsed();
            let started = Instant::now();
            let (mut modules2, mut db2) = (engine(), Database::default());
            let (_, report) =
                Storage::open(StorageConfig::new(target.path()), &mut modules2, &mut db2)
                    .expect("the restored directory opens");
            let open_took = started.elapsed();
            println!(
                "history/restore: {} rows as of transaction {last}: restore {restore_took:.2?} \
                 ({} transactions), recovery of the restored node {open_took:.2?} ({} replayed); \
                 budget 2 s for 1 M rows",
                db2.table("bench", "logged").map_or(0, |t| t.len()),
                restored.transactions,
                report.replayed,
            );
        }
    }
}

/// Bytes of the files in `dir` with this extension (0 when it does not exist).
fn walk_bytes(dir: &Path, extension: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == extension))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
