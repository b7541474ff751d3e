//! What `TestNode` offers a module's tests, on the `notebook` fixture.

use interstice_testing::{Error, StartError, TestNode};
use notebook::{Note, Tally};
use std::time::Duration;

fn tally(node: &mut TestNode, name: &str) -> u64 {
    node.query("tally", (name.to_string(),)).unwrap()
}

#[test]
fn init_runs_once_and_its_log_is_readable() {
    let mut node = TestNode::new();
    assert_eq!(node.take_logs(), ["notebook ready"]);
    assert!(node.take_logs().is_empty(), "taken lines are gone");
    let rows: Vec<Tally> = node.rows("tally");
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].name.as_str(), rows[0].count), ("init", 1));
}

#[test]
fn auto_inc_unique_and_rollback() {
    let mut node = TestNode::of("notebook");
    node.call("add", ("a".to_string(),)).unwrap();
    node.call("add", ("b".to_string(),)).unwrap();
    let duplicate = node.call("add", ("a".to_string(),)).unwrap_err();
    assert!(
        duplicate.to_string().contains("exists already"),
        "{duplicate}"
    );
    let failed = node.call("add_then_fail", ("c".to_string(),)).unwrap_err();
    assert!(
        matches!(&failed, Error::Failed(m) if m == "changed my mind"),
        "{failed:?}"
    );
    let panicked = node.call("add_then_panic", ("d".to_string(),)).unwrap_err();
    assert!(
        matches!(&panicked, Error::Trap(m) if m.contains("oops")),
        "{panicked:?}"
    );
    let notes: Vec<Note> = node.rows("note");
    let ids: Vec<(u64, &str)> = notes.iter().map(|n| (n.id, n.title.as_str())).collect();
    assert_eq!(ids, [(1, "a"), (2, "b")], "failed calls left nothing");
    // The subscriber ran once per committed insert, not for the rolled-back ones.
    assert_eq!(tally(&mut node, "inserted"), 2);
    // A call after a panic runs normally (the instance was replaced).
    node.call("add", ("e".to_string(),)).unwrap();
    assert_eq!(node.rows::<Note>("note").len(), 3);
}

#[test]
fn the_schedule_runs_when_the_clock_says() {
    let mut node = TestNode::new();
    node.call("add_later", ("soon".to_string(), 100u64))
        .unwrap();
    node.advance(Duration::from_millis(99));
    assert!(node.rows::<Note>("note").is_empty(), "not due yet");
    assert_eq!(node.now_ms(), 99);
    node.advance(Duration::from_millis(1));
    let titles: Vec<String> = node.query("titles", ()).unwrap();
    assert_eq!(titles, ["soon"]);
}

#[test]
fn calls_from_other_nodes_and_peer_events() {
    let mut node = TestNode::new();
    let key = "5c4b7e0c2a9f1d3e8b6a4f2c0e9d7b5a3c1e8f6d4b2a0c9e7f5d3b1a8c6e4f20";
    node.call_from(key, "add", ("remote".to_string(),)).unwrap();
    node.call("add", ("local".to_string(),)).unwrap();
    let remote: Option<Note> = node.query("by_title", ("remote".to_string(),)).unwrap();
    let local: Option<Note> = node.query("by_title", ("local".to_string(),)).unwrap();
    assert_eq!(
        remote.unwrap().author.as_deref(),
        Some(interstice_abi::node_id_of(key).as_str())
    );
    assert_eq!(local.unwrap().author, None);
    node.take_logs();
    node.connect("peer-1");
    assert_eq!(tally(&mut node, "connected"), 1);
    assert_eq!(node.take_logs(), ["peer-1 connected"]);
    node.disconnect("peer-1");
    assert_eq!(tally(&mut node, "connected"), 1, "no disconnect subscriber");
}

#[test]
fn random_numbers_repeat_from_the_same_start() {
    let mut a = TestNode::new();
    let mut b = TestNode::new();
    for title in ["x", "y", "z"] {
        a.call("add", (title.to_string(),)).unwrap();
        b.call("add", (title.to_string(),)).unwrap();
    }
    let luck = |n: &TestNode| {
        n.rows::<Note>("note")
            .iter()
            .map(|n| n.luck)
            .collect::<Vec<_>>()
    };
    assert_eq!(luck(&a), luck(&b));
    assert_ne!(luck(&a)[0], luck(&a)[1], "a different number per call");
}

#[test]
fn wrong_calls_are_errors() {
    let mut node = TestNode::new();
    let missing = node.call("no_such_reducer", ()).unwrap_err();
    assert!(
        matches!(missing, Error::NoSuchReducer { .. }),
        "{missing:?}"
    );
    let bad = node.call("add", (5u32,)).unwrap_err();
    assert!(matches!(bad, Error::InvalidArguments(_)), "{bad:?}");
    let typed: Result<u64, _> = node.query("titles", ());
    assert!(matches!(typed, Err(Error::TypeMismatch(_))), "{typed:?}");
    match TestNode::start(Some("not_linked")) {
        Err(StartError::Load(e)) => assert!(e.to_string().contains("notebook"), "{e}"),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a module that is not linked cannot start"),
    }
}

#[test]
fn calls_to_other_nodes_are_kept_for_the_test() {
    let mut node = TestNode::new();
    node.call("share", ("postcard".to_string(),)).unwrap();
    let sent = node.take_remote_calls();
    assert_eq!(sent.len(), 1);
    let call = &sent[0];
    assert_eq!(
        (
            call.node.as_str(),
            call.module.as_str(),
            call.reducer.as_str()
        ),
        ("far", "notebook", "add")
    );
    assert_eq!(call.address, "127.0.0.1:9");
    assert!(node.take_remote_calls().is_empty(), "taken");
}
