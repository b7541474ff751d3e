//! The arena over real UDP on 127.0.0.1: on an open node, a player belongs to the key that
//! joined it (another key can neither steer nor remove it), and scores survive a host restart.

mod common;

use bevy::prelude::*;
use common::*;
use interstice::network::NetworkConfig;
use interstice::prelude::*;
use interstice_net::message::{Message, RemoteError};
use interstice_net::transport::{NodeIdentity, Peer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An open node hosting the arena.
fn arena_host() -> (App, SocketAddr) {
    let mut network = NetworkConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(NodeIdentity::generate().unwrap()),
    );
    network.open = true;
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default()
            .with_module_bytes("arena", wasm("arena"))
            .with_network(network),
    ));
    let addr = listening(&mut app);
    (app, addr)
}

fn arena_call(request: u64, reducer: &str, args: impl interstice::abi::typed::Args) -> Message {
    let mut bytes = Vec::new();
    args.encode_args(&mut bytes);
    Message::CallReducer {
        request,
        module: "arena".into(),
        reducer: reducer.into(),
        args: bytes,
    }
}

fn players(app: &mut App) -> Vec<arena::Player> {
    with_api(app, |api| api.rows("arena", "player")).expect("the player table")
}

/// Asks the arena, as `peer`, for the name of the player that peer owns.
async fn my_player(peer: &Peer) -> Option<String> {
    match peer
        .request(&Message::Query {
            request: 99,
            module: "arena".into(),
            query: "my_player".into(),
            args: Vec::new(),
        })
        .await
        .unwrap()
    {
        Message::QueryResult {
            outcome: Ok(bytes), ..
        } => <Option<arena::Player> as interstice::IntersticeType>::from_bytes(&bytes)
            .unwrap()
            .map(|p| p.name),
        other => panic!("{other:?}"),
    }
}

/// Alice joins and steers; mallory tries to take, steer and remove her player; returns the
/// outcome of each call.
async fn alice_plays_and_mallory_meddles(
    alice: NodeIdentity,
    mallory: NodeIdentity,
    addr: SocketAddr,
) -> Vec<Result<(), RemoteError>> {
    let dial = |identity: NodeIdentity| async move {
        let (endpoint, peer) = dial_as_stranger(identity, addr).await;
        (endpoint, peer.unwrap())
    };
    let outcome = |m: Message| match m {
        Message::CallResult { outcome, .. } => outcome,
        other => panic!("{other:?}"),
    };
    let (_a, alice) = dial(alice).await;
    let (_m, mallory) = dial(mallory).await;
    let mut outcomes = Vec::new();
    for (peer, message) in [
        (
            &alice,
            arena_call(1, "join", ("alice".to_string(), 30.0f32)),
        ),
        (
            &alice,
            arena_call(2, "steer", ("alice".to_string(), 5.0f32, 0.0f32, 1u64)),
        ),
        // Someone else's key may neither take the name, steer nor remove it.
        (
            &mallory,
            arena_call(1, "join", ("alice".to_string(), 90.0f32)),
        ),
        (
            &mallory,
            arena_call(2, "steer", ("alice".to_string(), 5.0f32, 0.0f32, 9u64)),
        ),
        (&mallory, arena_call(3, "leave", ("alice".to_string(),))),
        (&mallory, arena_call(4, "open_arena", ())),
        // One node, one player.
        (
            &alice,
            arena_call(3, "join", ("alias".to_string(), 30.0f32)),
        ),
    ] {
        outcomes.push(outcome(peer.request(&message).await.unwrap()));
    }
    // A query sees who asks, too.
    assert_eq!(my_player(&alice).await.as_deref(), Some("alice"));
    assert_eq!(my_player(&mallory).await, None);
    outcomes
}

/// Checks that only alice's first two calls went through, and that her player is hers alone.
fn assert_alice_owns_her_player(
    app: &mut App,
    outcomes: &[Result<(), RemoteError>],
    alice_id: &str,
) {
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok(), "{outcomes:?}");
    for refused in &outcomes[2..] {
        assert!(refused.is_err(), "{outcomes:?}");
    }
    let alice_row = players(app)
        .into_iter()
        .find(|p| p.name == "alice")
        .expect("alice plays");
    assert_eq!(alice_row.owner, alice_id);
    assert_eq!(alice_row.input, 1, "mallory's input was not applied");
    // The host's own calls are the host's: it may not steer a guest's player either.
    assert!(
        call(
            app,
            "arena",
            "steer",
            ("alice".to_string(), 1.0f32, 0.0f32, 2u64)
        )
        .is_err()
    );
}

/// Runs `app` until alice, whose endpoint closed, has left the arena.
fn until_alice_has_left(app: &mut App) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while players(app).iter().any(|p| p.name == "alice") {
        app.update();
        assert!(Instant::now() < deadline, "alice is still in the arena");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Plays under alice's name from the host and checks that her record stays hers.
fn a_borrowed_name_leaves_her_record_alone(app: &mut App, alice_id: &str) {
    // Someone else playing under her name while she is away neither gets her score nor
    // overwrites it when leaving.
    call(app, "arena", "join", ("alice".to_string(), 0.0f32)).unwrap();
    let borrowed = players(app)
        .into_iter()
        .find(|p| p.name == "alice")
        .unwrap();
    assert_eq!((borrowed.owner.as_str(), borrowed.score), ("", 0));
    call(app, "arena", "leave", ("alice".to_string(),)).unwrap();
    let records: Vec<arena::Record> = with_api(app, |api| api.rows("arena", "record")).unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| (r.name.as_str(), r.owner.as_str()))
            .collect::<Vec<_>>(),
        [("alice", alice_id)]
    );
}

#[test]
fn an_arena_player_belongs_to_the_key_that_joined_it() {
    let (mut app, addr) = arena_host();
    let (alice, mallory) = (
        NodeIdentity::generate().unwrap(),
        NodeIdentity::generate().unwrap(),
    );
    let alice_id = alice.node_id();
    let outcomes = with_client(&mut app, move || {
        client_runtime().block_on(alice_plays_and_mallory_meddles(alice, mallory, addr))
    });
    assert_alice_owns_her_player(&mut app, &outcomes, &alice_id);
    // Both guests are gone (their endpoints closed): alice left, her score kept by name.
    until_alice_has_left(&mut app);
    a_borrowed_name_leaves_her_record_alone(&mut app, &alice_id);
}

fn coins(app: &mut App) -> Vec<arena::Coin> {
    with_api(app, |api| api.rows("arena", "coin")).expect("the coin table")
}

#[test]
fn the_arena_keeps_scores_across_a_host_restart() {
    let dir = tempfile::tempdir().unwrap();
    let storage = || interstice::StorageConfig::new(dir.path());
    let mut app = persisting_node(storage(), &["arena"]);
    call(&mut app, "arena", "open_arena", ()).unwrap();
    call(&mut app, "arena", "join", ("scorer".to_string(), 10.0f32)).unwrap();
    // The scorer walks to the nearest coin, step by step, until it has a point.
    let mut input = 0u64;
    let scorer = loop {
        let me = players(&mut app)
            .into_iter()
            .find(|p| p.name == "scorer")
            .unwrap();
        if me.score > 0 {
            break me;
        }
        let coin = coins(&mut app)
            .into_iter()
            .min_by(|a, b| {
                let d = |c: &arena::Coin| (c.x - me.x).powi(2) + (c.y - me.y).powi(2);
                d(a).total_cmp(&d(b))
            })
            .unwrap();
        input += 1;
        assert!(input < 200, "never reached a coin");
        let args = ("scorer".to_string(), coin.x - me.x, coin.y - me.y, input);
        call(&mut app, "arena", "steer", args).unwrap();
    };
    drop(app);

    // The host comes back: the host's player is where it was, with its score.
    let mut app = persisting_node(storage(), &["arena"]);
    call(&mut app, "arena", "open_arena", ()).unwrap();
    assert_eq!(
        players(&mut app).into_iter().find(|p| p.name == "scorer"),
        Some(scorer.clone())
    );
    // It leaves; after another restart, joining again gives its score back.
    call(&mut app, "arena", "leave", ("scorer".to_string(),)).unwrap();
    drop(app);
    let mut app = persisting_node(storage(), &["arena"]);
    call(&mut app, "arena", "open_arena", ()).unwrap();
    assert!(players(&mut app).is_empty());
    call(&mut app, "arena", "join", ("scorer".to_string(), 10.0f32)).unwrap();
    let back = players(&mut app)
        .into_iter()
        .find(|p| p.name == "scorer")
        .unwrap();
    assert_eq!(back.score, scorer.score);
}
