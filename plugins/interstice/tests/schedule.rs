//! The schedule with a real module: logical time, chains, repetition, cancellation, rollback,
//! ordering, and pending entries across a restart.

mod common;

use bevy::prelude::*;
use common::*;
use interstice::prelude::*;
use interstice::{CallError, LogicalClock, StorageConfig};
use std::time::Duration;

fn timer_app() -> App {
    let mut app = app();
    app.insert_resource(LogicalClock::manual());
    load(&mut app, "timer").expect("timer");
    app
}

fn advance(app: &mut App, ms: u64) {
    app.world_mut()
        .resource_mut::<LogicalClock>()
        .advance(Duration::from_millis(ms));
    app.update();
}

fn ticks(app: &mut App) -> Vec<(String, u64)> {
    query(app, "timer", "ticks", ()).expect("ticks")
}

fn labels(app: &mut App) -> Vec<String> {
    ticks(app).into_iter().map(|(l, _)| l).collect()
}

#[test]
fn the_documented_timer_runs_after_its_delay_in_logical_time() {
    let mut app = timer_app();
    call(&mut app, "timer", "start_timer", ()).unwrap();
    advance(&mut app, 999);
    assert!(ticks(&mut app).is_empty());
    advance(&mut app, 1);
    assert_eq!(ticks(&mut app), vec![("callback".to_string(), 1000)]);
    advance(&mut app, 5000);
    assert_eq!(ticks(&mut app).len(), 1, "a one-shot entry runs once");
}

#[test]
fn a_chain_reschedules_itself_with_arguments() {
    let mut app = timer_app();
    call(&mut app, "timer", "chain", (3u32,)).unwrap();
    for _ in 0..5 {
        advance(&mut app, 10);
    }
    assert_eq!(
        ticks(&mut app),
        vec![
            ("chain 3".to_string(), 0),
            ("chain 2".to_string(), 10),
            ("chain 1".to_string(), 20),
            ("chain 0".to_string(), 30),
        ]
    );
}

#[test]
fn repeating_entries_run_until_cancelled() {
    let mut app = timer_app();
    call(&mut app, "timer", "start_beating", (100u64,)).unwrap();
    let armed = labels(&mut app);
    let id: u64 = armed[0]
        .strip_prefix("armed ")
        .and_then(|s| s.parse().ok())
        .expect("the entry id");
    for _ in 0..3 {
        advance(&mut app, 100);
    }
    assert_eq!(
        labels(&mut app),
        vec![
            armed[0].clone(),
            "beat".into(),
            "beat".into(),
            "beat".into()
        ]
    );
    call(&mut app, "timer", "stop", (id,)).unwrap();
    advance(&mut app, 500);
    assert_eq!(labels(&mut app).len(), 4, "no beat after cancel");
    assert_eq!(
        call(&mut app, "timer", "stop", (id,)),
        Err(CallError::Failed(format!("no schedule entry {id}")))
    );
}

#[test]
fn scheduling_is_rolled_back_with_its_transaction() {
    let mut app = timer_app();
    assert!(call(&mut app, "timer", "schedule_then_fail", ()).is_err());
    advance(&mut app, 10);
    assert!(ticks(&mut app).is_empty());
}

#[test]
fn scheduling_an_unknown_reducer_fails_the_transaction() {
    let mut app = timer_app();
    let err = call(&mut app, "timer", "schedule_missing", ()).unwrap_err();
    assert!(
        matches!(&err, CallError::Trap(m) if m.contains("no reducer `no_such_reducer`")),
        "{err}"
    );
}

#[test]
fn equal_due_times_run_in_the_order_they_were_scheduled() {
    let mut app = timer_app();
    call(&mut app, "timer", "same_time", ()).unwrap();
    let queue = interstice::core::host_tables::schedule::pending(
        app.world().resource::<interstice::Database>(),
    );
    let queued: Vec<_> = queue
        .iter()
        .map(|e| (e.module.as_str(), e.reducer.as_str(), e.due))
        .collect();
    assert_eq!(queued, vec![("timer", "mark", 5), ("timer", "mark", 5)]);
    advance(&mut app, 5);
    assert_eq!(labels(&mut app), vec!["b", "a"]);
}

#[test]
fn pending_entries_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = |dir: &std::path::Path| {
        let mut app = App::new();
        app.add_plugins((
            MinimalPlugins,
            IntersticePlugin::default()
                .with_storage(StorageConfig::new(dir))
                .with_module_bytes("timer", wasm("timer")),
        ))
        .insert_resource(LogicalClock::manual());
        app.update();
        app
    };
    {
        let mut app = node(dir.path());
        advance(&mut app, 250);
        call(&mut app, "timer", "start_timer", ()).unwrap();
        advance(&mut app, 400);
        assert!(ticks(&mut app).is_empty());
    }
    let mut app = node(dir.path());
    // The clock resumes from the last committed transaction (t = 250), not from zero.
    assert_eq!(app.world().resource::<LogicalClock>().now_ms(), 250);
    advance(&mut app, 999);
    assert!(ticks(&mut app).is_empty());
    advance(&mut app, 1);
    assert_eq!(ticks(&mut app), vec![("callback".to_string(), 1250)]);
}
