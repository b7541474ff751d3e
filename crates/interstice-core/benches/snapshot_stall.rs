//! What an automatic snapshot costs the frame that takes it.
//!
//! A logged table grows to 1,000,000 rows in frames of 10,000 single-row insert transactions,
//! each frame ending in the group commit (append, fsync, and a snapshot when one is due:
//! every 250,000 records here). Prints the median frame without a snapshot, and each frame
//! that took one with the table's size then.
//!
//! `cargo bench -p interstice-core --bench snapshot_stall`
//! (`INTERSTICE_SNAPSHOT_ROWS` changes the final size; snapshots stay 4 per run.)

use interstice_abi::IntersticeType;
use interstice_core::{Database, EngineConfig, Modules, Storage, StorageConfig};
use std::path::Path;
use std::time::{Duration, Instant};

const FRAME: u64 = 10_000;

fn main() {
    let rows: u64 = std::env::var("INTERSTICE_SNAPSHOT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let every = (rows / 4).max(FRAME);
    let wasm = interstice_build::test_modules!["bench"].remove(0);

    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = StorageConfig::new(dir.path());
    config.snapshot_every_records = every;
    let mut modules = Modules::new(EngineConfig {
        quotas: interstice_core::Quotas {
            rows: u64::MAX,
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("engine");
    let mut db = Database::default();
    let (mut storage, _) = Storage::open(config, &mut modules, &mut db).expect("storage");
    storage
        .load_module(&mut modules, &mut db, &wasm)
        .expect("bench loads");
    let handle = modules.reducer("bench", "insert_logged").expect("reducer");
    // A snapshot starts a new log segment when it is taken (segments are 64 MiB, far more
    // than this run writes): the newest segment's name tells the frames that took one.
    let snapshots = |dir: &Path| {
        std::fs::read_dir(dir.join("log"))
            .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name()).max())
            .ok()
            .flatten()
    };
    let mut plain: Vec<Duration> = Vec::new();
    let mut with_snapshot: Vec<(u64, Duration)> = Vec::new();
    let mut args = Vec::with_capacity(16);
    let mut value = 0u64;
    while value < rows {
        let before = snapshots(dir.path());
        let started = Instant::now();
        for _ in 0..FRAME {
            value += 1;
            args.clear();
            value.encode(&mut args);
            modules
                .call_reducer(&mut db, handle, &args)
                .expect("insert");
        }
        storage.commit(&mut db).expect("group commit");
        let took = started.elapsed();
        if snapshots(dir.path()) != before {
            with_snapshot.push((value, took));
        } else {
            plain.push(took);
        }
    }
    plain.sort();
    let median = plain.get(plain.len() / 2).copied().unwrap_or_default();
    println!(
        "snapshot_stall: {rows} rows in frames of {FRAME} inserts, a snapshot every {every} records"
    );
    println!(
        "  frames without a snapshot: median {:.2} ms, max {:.2} ms ({} frames)",
        median.as_secs_f64() * 1e3,
        plain.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        plain.len()
    );
    for (at, took) in &with_snapshot {
        println!(
            "  frame with a snapshot at {at} rows: {:.2} ms ({:.1}× the median)",
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() / median.as_secs_f64().max(1e-9)
        );
    }
}
