//! Through the reducer system of a real (headless) Bevy app:
//! - subscription fan-out: one insert with ten local subscribers; criterion reports subscriber
//!   invocations (row events dispatched and run) per second;
//! - the schedule against direct calls of the same reducer.
//!
//! `cargo bench -p interstice-core --bench events`

use bevy_app::App;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use interstice_abi::IntersticeType;
use interstice_core::{Database, IntersticeCorePlugin, Modules, ReducerQueue};

const INSERTS_PER_FRAME: u64 = 100;
const SUBSCRIBERS: u64 = 10;

/// A headless app with the engine and one fixture module loaded.
fn app_with(package: &str) -> App {
    let wasm = interstice_build::test_modules![package].remove(0);
    let mut app = App::new();
    app.add_plugins(IntersticeCorePlugin::default());
    app.world_mut()
        .resource_scope(|world, mut modules: bevy_ecs::world::Mut<Modules>| {
            let mut db = world.resource_mut::<Database>();
            modules.load(&mut db, &wasm).map(drop)
        })
        .expect("the module loads");
    app
}

fn fanout(c: &mut Criterion) {
    let mut app = app_with("fanout");

    let mut group = c.benchmark_group("subscriptions");
    group.throughput(Throughput::Elements(INSERTS_PER_FRAME * SUBSCRIBERS));
    let mut value = 0u64;
    group.bench_function("fan_out_10_subscribers", |b| {
        b.iter(|| {
            let mut queue = app.world_mut().resource_mut::<ReducerQueue>();
            for _ in 0..INSERTS_PER_FRAME {
                value += 1;
                queue.push("fanout", "insert", value.to_bytes());
            }
            app.update();
        })
    });
    group.finish();
}

/// The schedule against direct calls: 100 runs of the same reducer per iteration, either queued
/// directly (one frame) or scheduled by one reducer and run in the next frame (each run then
/// also pays the transaction that retires its entry).
fn schedule(c: &mut Criterion) {
    const RUNS: u32 = 100;
    let mut app = app_with("timer");
    let mark = ("s".to_string(),).to_bytes();
    let mut group = c.benchmark_group("schedule");
    group.throughput(Throughput::Elements(u64::from(RUNS)));
    group.bench_function("direct_calls", |b| {
        b.iter(|| {
            let mut queue = app.world_mut().resource_mut::<ReducerQueue>();
            for _ in 0..RUNS {
                queue.push("timer", "mark", mark.clone());
            }
            app.update();
        })
    });
    group.bench_function("scheduled_runs", |b| {
        b.iter(|| {
            app.world_mut()
                .resource_mut::<ReducerQueue>()
                .push("timer", "spawn", RUNS.to_bytes());
            app.update();
            app.update();
        })
    });
    group.finish();
}

criterion_group!(benches, fanout, schedule);
criterion_main!(benches);
