//! Durable storage costs, with a real module compiled to wasm:
//!
//! - `frame_of_inserts/{ephemeral,logged}`: a frame of 5,000 single-row insert transactions,
//!   into an ephemeral table with no storage, and into a logged table with the frame's group
//!   commit (one append and one fsync) — the ratio is what durability costs;
//! - `recovery/1M_rows`: opening a data directory whose log holds 1,000,000 single-row
//!   insert records (no snapshot), module reload included.
//!
//! `cargo bench -p interstice-core --bench storage`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use interstice_abi::IntersticeType;
use interstice_core::{Database, EngineConfig, Modules, Storage, StorageConfig};
use std::path::Path;
use std::time::{Duration, Instant};

const FRAME: u64 = 5_000;
const RECOVERY_ROWS: u64 = 1_000_000;

fn bench_module() -> Vec<u8> {
    interstice_build::test_modules!["bench"].remove(0)
}

fn config(dir: &Path) -> StorageConfig {
    let mut config = StorageConfig::new(dir);
    config.snapshot_every_records = 0;
    config
}

/// The default engine, without the rows quota: the benchmarks' tables grow to millions of
/// rows over a long run, past the default 10 M.
fn unbounded_rows() -> EngineConfig {
    EngineConfig {
        quotas: interstice_core::Quotas {
            rows: u64::MAX,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn frames(c: &mut Criterion) {
    let wasm = bench_module();
    let mut group = c.benchmark_group("frame_of_inserts");
    group.throughput(Throughput::Elements(FRAME));
    group.sample_size(30);
    for logged in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut modules = Modules::new(unbounded_rows()).expect("engine");
        let mut db = Database::default();
        let mut storage = if logged {
            let (mut storage, _) =
                Storage::open(config(dir.path()), &mut modules, &mut db).expect("storage");
            storage
                .load_module(&mut modules, &mut db, &wasm)
                .expect("bench loads");
            Some(storage)
        } else {
            modules.load(&mut db, &wasm).expect("bench loads");
            None
        };
        let reducer = if logged { "insert_logged" } else { "insert" };
        let handle = modules.reducer("bench", reducer).expect("reducer");
        let mut args = Vec::with_capacity(16);
        let mut value = 0u64;
        let name = if logged {
            "logged_group_commit"
        } else {
            "ephemeral"
        };
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                for _ in 0..FRAME {
                    value += 1;
                    args.clear();
                    value.encode(&mut args);
                    modules
                        .call_reducer(&mut db, handle, &args)
                        .expect("insert");
                }
                if let Some(storage) = storage.as_mut() {
                    storage.commit(&mut db).expect("group commit");
                }
            })
        });
    }
    group.finish();
}

fn recovery(c: &mut Criterion) {
    let wasm = bench_module();
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let mut modules = Modules::new(unbounded_rows()).expect("engine");
        let mut db = Database::default();
        let (mut storage, _) =
            Storage::open(config(dir.path()), &mut modules, &mut db).expect("storage");
        storage
            .load_module(&mut modules, &mut db, &wasm)
            .expect("bench loads");
        let handle = modules.reducer("bench", "insert_logged").expect("reducer");
        let mut args = Vec::new();
        for value in 0..RECOVERY_ROWS {
            args.clear();
            value.encode(&mut args);
            modules
                .call_reducer(&mut db, handle, &args)
                .expect("insert");
            if value % 10_000 == 9_999 {
                storage.commit(&mut db).expect("commit");
            }
        }
        storage.commit(&mut db).expect("commit");
    }
    let mut group = c.benchmark_group("recovery");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RECOVERY_ROWS));
    group.bench_function("1M_rows", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let mut modules = Modules::new(unbounded_rows()).expect("engine");
                let mut db = Database::default();
                let started = Instant::now();
                let (_storage, report) =
                    Storage::open(config(dir.path()), &mut modules, &mut db).expect("recovery");
                total += started.elapsed();
                assert_eq!(report.replayed, RECOVERY_ROWS, "one record per insert");
                assert_eq!(
                    db.table("bench", "logged").map(|t| t.len() as u64),
                    Some(RECOVERY_ROWS)
                );
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, frames, recovery);
criterion_main!(benches);
