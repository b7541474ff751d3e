//! Determinism: a randomized workload over several modules (calls that fail, subscriptions,
//! cascades, schedules, repeating timers, random numbers, cross-module calls) recorded once and
//! replayed on fresh nodes must give the same state hash every time.

mod common;

use bevy::prelude::*;
use common::*;
use interstice::abi::IntersticeType;
use interstice::abi::typed::Args;
use interstice::{Database, InvocationLog, LogicalClock, Modules, ReducerQueue};
use kitchen::Kind;
use std::time::Duration;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn encode<A: Args>(args: A) -> Vec<u8> {
    let mut out = Vec::new();
    args.encode_args(&mut out);
    out
}

/// A fresh node with the workload's modules, a manual clock and a shared compile cache.
fn node(cache: &std::path::Path) -> App {
    let mut app = app();
    app.insert_resource(LogicalClock::manual());
    app.world_mut()
        .resource_mut::<Modules>()
        .set_cache_dir(Some(cache.to_path_buf()));
    for module in ["kitchen", "watcher", "timer", "bank", "teller"] {
        load(&mut app, module).expect(module);
    }
    app
}

fn random_call(rng: &mut Rng) -> (&'static str, &'static str, Vec<u8>) {
    let owners = ["ada", "bob", "cy"];
    match rng.below(13) {
        10 => (
            "bank",
            "open",
            encode((
                owners[rng.below(3) as usize].to_string(),
                rng.below(200) as i64,
            )),
        ),
        11 => (
            "teller",
            "transfer",
            encode((
                owners[rng.below(3) as usize].to_string(),
                owners[rng.below(3) as usize].to_string(),
                rng.below(80) as i64,
            )),
        ),
        12 => (
            "teller",
            ["try_overdraw", "transfer_then_fail"][rng.below(2) as usize],
            if rng.below(2) == 0 {
                encode((owners[rng.below(3) as usize].to_string(), 1000i64))
            } else {
                encode((
                    owners[rng.below(3) as usize].to_string(),
                    owners[rng.below(3) as usize].to_string(),
                    5i64,
                ))
            },
        ),
        0 | 1 => {
            let kind = match rng.below(3) {
                0 => Kind::Plain,
                1 => Kind::Labeled(format!("l{}", rng.below(5))),
                _ => Kind::Sized {
                    w: rng.below(9) as u32,
                    h: rng.below(9) as u32,
                },
            };
            (
                "kitchen",
                "add_item",
                encode((
                    format!("c{}", rng.below(40)),
                    ["x", "y", "z"][rng.below(3) as usize].to_string(),
                    rng.below(100) as i64 - 50,
                    kind,
                    vec![format!("t{}", rng.below(3))],
                    (rng.below(2) == 0).then(|| "note".to_string()),
                    (rng.below(100) as f32 / 7.0, -(rng.below(100) as f32)),
                )),
            )
        }
        2 => (
            "kitchen",
            "set_price",
            encode((rng.below(30) + 1, rng.below(1000) as i64)),
        ),
        3 => ("kitchen", "remove_item", encode((rng.below(30) + 1,))),
        4 => (
            "kitchen",
            "set_setting",
            encode((format!("k{}", rng.below(5)), format!("v{}", rng.below(9)))),
        ),
        5 => (
            "kitchen",
            "add_then_fail",
            encode((format!("f{}", rng.below(9)),)),
        ),
        6 => ("timer", "chain", encode((rng.below(4) as u32,))),
        7 if rng.below(4) == 0 => ("timer", "start_beating", encode((50 + rng.below(100),))),
        8 => ("timer", "mark", encode((format!("m{}", rng.below(9)),))),
        _ => ("timer", "roll", encode((6u64,))),
    }
}

/// Runs `frames` frames of random calls while recording; returns the log and the state hash.
fn record(seed: u64, frames: usize, cache: &std::path::Path) -> (InvocationLog, u64) {
    let mut app = node(cache);
    app.insert_resource(InvocationLog::default());
    let mut rng = Rng(seed | 1);
    for _ in 0..frames {
        let step = rng.below(40);
        app.world_mut()
            .resource_mut::<LogicalClock>()
            .advance(Duration::from_millis(step));
        for _ in 0..rng.below(5) {
            let (module, reducer, args) = random_call(&mut rng);
            app.world_mut()
                .resource_mut::<ReducerQueue>()
                .push(module, reducer, args);
        }
        app.update();
    }
    let log = app
        .world_mut()
        .remove_resource::<InvocationLog>()
        .expect("log");
    (log, app.world().resource::<Database>().state_hash())
}

fn replay(log: &InvocationLog, cache: &std::path::Path) -> u64 {
    let mut app = node(cache);
    for frame in &log.frames {
        app.world_mut()
            .resource_mut::<LogicalClock>()
            .resume_at(frame.time_ms);
        let mut queue = app.world_mut().resource_mut::<ReducerQueue>();
        for (module, reducer, args) in &frame.calls {
            queue.push(module.clone(), reducer.clone(), args.clone());
        }
        app.update();
    }
    app.world().resource::<Database>().state_hash()
}

#[test]
fn a_recorded_workload_replays_to_the_same_state_100_times() {
    let cache = tempfile::tempdir().unwrap();
    let seed = 0x5eed_1234_u64;
    let (log, recorded) = record(seed, 120, cache.path());
    let calls: usize = log.frames.iter().map(|f| f.calls.len()).sum();
    assert!(calls > 150, "the workload is too small: {calls} calls");
    for run in 0..100 {
        assert_eq!(
            replay(&log, cache.path()),
            recorded,
            "replay {run} diverged"
        );
    }
}

#[test]
fn two_nodes_fed_the_same_inputs_agree_and_different_inputs_differ() {
    let cache = tempfile::tempdir().unwrap();
    let (a, hash_a) = record(7, 60, cache.path());
    let (b, hash_b) = record(7, 60, cache.path());
    assert_eq!(a, b);
    assert_eq!(hash_a, hash_b);
    let (_, hash_c) = record(8, 60, cache.path());
    assert_ne!(hash_a, hash_c, "the hash must depend on the state");
}

#[test]
fn random_numbers_depend_on_recorded_state_only() {
    let cache = tempfile::tempdir().unwrap();
    let rolls = |app: &mut App| -> Vec<String> {
        let ticks: Vec<(String, u64)> = query(app, "timer", "ticks", ()).unwrap();
        ticks.into_iter().map(|(l, _)| l).collect()
    };
    let run = || {
        let mut app = node(cache.path());
        for _ in 0..5 {
            app.world_mut()
                .resource_mut::<ReducerQueue>()
                .push("timer", "roll", 6u64.to_bytes());
            app.update();
        }
        rolls(&mut app)
    };
    let first = run();
    assert_eq!(first, run());
    assert_eq!(first.len(), 5);
    let distinct: std::collections::BTreeSet<_> = first.iter().collect();
    assert!(
        distinct.len() > 1,
        "each call draws its own numbers: {first:?}"
    );
}
