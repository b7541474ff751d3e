//! Engine throughput on the hot path, with a real module compiled to wasm:
//! noop reducer calls, single-row insert transactions (ephemeral table) and point queries.
//!
//! `cargo bench -p interstice-core --bench engine`; criterion prints each as elements/s.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use interstice_abi::IntersticeType;
use interstice_core::{Database, EngineConfig, Modules};
use std::hint::black_box;

fn bench_module() -> Vec<u8> {
    interstice_build::test_modules!["bench"].remove(0)
}

fn engine(c: &mut Criterion) {
    let wasm = bench_module();
    // The insert benchmark's table grows past the default rows quota (10 M) in a long run.
    let config = EngineConfig {
        quotas: interstice_core::Quotas {
            rows: u64::MAX,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut modules = Modules::new(config).expect("engine");
    let mut db = Database::default();
    modules.load(&mut db, &wasm).expect("bench module loads");
    let noop = modules.reducer("bench", "noop").expect("noop");
    let insert = modules.reducer("bench", "insert").expect("insert");
    let get = modules.query("bench", "get").expect("get");

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));

    group.bench_function("noop_reducer_call", |b| {
        b.iter(|| modules.call_reducer(&mut db, noop, &[]).expect("noop"))
    });

    let mut args = Vec::with_capacity(16);
    let mut value = 0u64;
    // One insert transaction of the next value.
    let mut insert_next = |modules: &mut Modules, db: &mut Database| {
        value += 1;
        args.clear();
        value.encode(&mut args);
        modules.call_reducer(db, insert, &args).expect("insert")
    };
    group.bench_function("insert_transaction_ephemeral", |b| {
        b.iter(|| insert_next(&mut modules, &mut db))
    });

    // The insert benchmark filled the table; run alone (a filter), it fills it here.
    while db.table("bench", "entry").is_none_or(|t| t.len() < 100_000) {
        insert_next(&mut modules, &mut db);
    }
    let rows = db.table("bench", "entry").map_or(1, |t| t.len()) as u64;
    let mut id = 0u64;
    group.bench_function("point_query", |b| {
        b.iter(|| {
            id = id % rows + 1;
            args.clear();
            id.encode(&mut args);
            black_box(modules.call_query(&mut db, get, &args).expect("get"))
        })
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
