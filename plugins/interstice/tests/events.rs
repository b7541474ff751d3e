//! Table-event subscriptions between real modules: delivery, order, cascades, rollback and
//! the cascade budget.

mod common;

use common::*;
use interstice::{CallError, EngineConfig};
use kitchen::Kind;

fn add(app: &mut bevy::prelude::App, code: &str) {
    call(
        app,
        "kitchen",
        "add_item",
        (
            code.to_string(),
            "c".to_string(),
            1i64,
            Kind::Sized { w: 2, h: 3 },
            vec!["t".to_string()],
            None::<String>,
            (0.5f32, 0.25f32),
        ),
    )
    .expect("add_item");
}

fn seen(app: &mut bevy::prelude::App) -> Vec<String> {
    query(app, "watcher", "seen", ()).expect("seen")
}

fn watched_app(engine: EngineConfig) -> bevy::prelude::App {
    let mut app = app_with(engine);
    load(&mut app, "kitchen").expect("kitchen");
    load(&mut app, "watcher").expect("watcher");
    app
}

#[test]
fn subscribers_see_inserts_updates_and_deletes_of_another_module() {
    let mut app = watched_app(EngineConfig::default());
    call(
        &mut app,
        "kitchen",
        "set_setting",
        ("theme".to_string(), "dark".to_string()),
    )
    .unwrap();
    call(
        &mut app,
        "kitchen",
        "set_setting",
        ("theme".to_string(), "light".to_string()),
    )
    .unwrap();
    add(&mut app, "a");
    call(&mut app, "kitchen", "remove_item", (1u64,)).unwrap();
    assert_eq!(
        seen(&mut app),
        vec![
            "setting+ theme=dark",
            "setting~ theme: dark -> light",
            "item+ 1 a",
            "item- 1 a",
        ]
    );
    // Each `Seen` insert cascaded into `count_seen`, within the same frames.
    assert_eq!(
        query::<_, u64>(&mut app, "watcher", "tally", ("seen".to_string(),)),
        Ok(4)
    );
}

#[test]
fn a_whole_cascade_runs_in_the_frame_of_its_cause() {
    let mut app = watched_app(EngineConfig::default());
    // One frame: the setting insert, the watcher's subscriber, and its own subscriber.
    call(
        &mut app,
        "kitchen",
        "set_setting",
        ("k".to_string(), "v".to_string()),
    )
    .unwrap();
    assert_eq!(seen(&mut app), vec!["setting+ k=v"]);
    assert_eq!(
        query::<_, u64>(&mut app, "watcher", "tally", ("seen".to_string(),)),
        Ok(1)
    );
}

#[test]
fn rolled_back_transactions_cause_no_events() {
    let mut app = watched_app(EngineConfig::default());
    assert!(call(&mut app, "kitchen", "add_then_fail", ("x".to_string(),)).is_err());
    assert!(call(&mut app, "kitchen", "add_then_panic", ("y".to_string(),)).is_err());
    assert!(seen(&mut app).is_empty());
}

#[test]
fn subscribers_cannot_be_called_directly() {
    let mut app = watched_app(EngineConfig::default());
    let err = with_api(&mut app, |api| {
        api.queue_reducer(
            "watcher",
            "setting_added",
            (("k".to_string(), "v".to_string()),),
        )
    })
    .unwrap_err();
    assert_eq!(err, CallError::SubscriberOnly("setting_added".into()));
}

#[test]
fn a_subscription_cycle_is_bounded_by_the_cascade_budget() {
    let mut app = watched_app(EngineConfig {
        cascade_budget: 100,
        ..EngineConfig::default()
    });
    call(&mut app, "watcher", "start_echo", ()).unwrap();
    assert_eq!(query::<_, u64>(&mut app, "watcher", "echoes", ()), Ok(101));
    // The node keeps serving other calls while the cycle goes on, a budget per frame. Next
    // frame: the deferred echo runs, then the call; their cascades share the budget of 100,
    // two of which go to the setting's subscriber and its own subscriber.
    call(
        &mut app,
        "kitchen",
        "set_setting",
        ("still".to_string(), "here".to_string()),
    )
    .unwrap();
    assert_eq!(
        query::<_, u64>(&mut app, "watcher", "echoes", ()),
        Ok(101 + 1 + 98)
    );
    assert_eq!(seen(&mut app), vec!["setting+ still=here"]);
    assert_eq!(
        query::<_, u64>(&mut app, "watcher", "tally", ("seen".to_string(),)),
        Ok(1)
    );
}

#[test]
fn connect_and_disconnect_reach_their_subscribers_with_the_node_id() {
    let mut app = watched_app(EngineConfig::default());
    let ids = with_api(&mut app, |api| api.peer_event(true, "5f0c9a5e-peer"));
    assert_eq!(ids.len(), 1);
    app.update();
    with_api(&mut app, |api| api.peer_event(false, "5f0c9a5e-peer"));
    app.update();
    assert_eq!(
        seen(&mut app),
        vec!["peer+ 5f0c9a5e-peer", "peer- 5f0c9a5e-peer"]
    );
    let err = with_api(&mut app, |api| {
        api.queue_reducer("watcher", "peer_up", ("x".to_string(),))
    })
    .unwrap_err();
    assert_eq!(err, CallError::SubscriberOnly("peer_up".into()));
}
