//! Modules reaching modules on other nodes: the `caller` module calls `hello` on another node
//! through its node binding and subscribes to `hello.greetings.insert` there. Two real nodes
//! (two apps, real UDP on 127.0.0.1) in one process.

mod common;

use bevy::prelude::*;
use common::*;
use interstice::network::{NetworkConfig, NetworkStatus, RemoteCallOutcome};
use interstice::prelude::*;
use interstice::{StorageConfig, TrustedPeers};
use interstice_net::transport::NodeIdentity;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Pair {
    hello: App,
    caller: App,
    hello_addr: SocketAddr,
    hello_identity: Arc<NodeIdentity>,
    hello_trust: TrustedPeers,
}

fn listening(app: &mut App) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.update();
        if let Some(addr) = app.world().resource::<NetworkStatus>().local_addr {
            return addr;
        }
        assert!(Instant::now() < deadline, "the node never listened");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The hello node: `hello` (public), persisted in `data`, on `listen`.
fn hello_node(
    data: &std::path::Path,
    listen: SocketAddr,
    identity: Arc<NodeIdentity>,
    trust: TrustedPeers,
) -> App {
    let mut network = NetworkConfig::new(listen, identity);
    network.trusted = trust;
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default()
            .with_storage(StorageConfig::new(data))
            .with_module_bytes("hello", wasm("hello"))
            .with_network(network),
    ));
    app
}

fn pair(data: &std::path::Path) -> Pair {
    let hello_identity = Arc::new(NodeIdentity::generate().unwrap());
    let caller_identity = Arc::new(NodeIdentity::generate().unwrap());
    let hello_trust = TrustedPeers::default();
    hello_trust.trust(caller_identity.fingerprint());
    let mut hello = hello_node(
        data,
        "127.0.0.1:0".parse().unwrap(),
        hello_identity.clone(),
        hello_trust.clone(),
    );
    let hello_addr = listening(&mut hello);

    let mut network = NetworkConfig::new("127.0.0.1:0".parse().unwrap(), caller_identity);
    network.trusted.trust(hello_identity.fingerprint());
    // The binding says 127.0.0.1:8080; this hello node is elsewhere.
    network.nodes.insert("hello_node".into(), hello_addr);
    let mut caller = App::new();
    caller.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default()
            .with_module_bytes("caller", wasm("caller"))
            .with_network(network),
    ));
    listening(&mut caller);
    Pair {
        hello,
        caller,
        hello_addr,
        hello_identity,
        hello_trust,
    }
}

fn received(app: &mut App) -> Vec<String> {
    query(app, "caller", "received", ()).unwrap()
}

fn greetings_on(app: &mut App) -> u64 {
    query(app, "hello", "greeting_count", ()).unwrap()
}

/// Runs both nodes until `done`, or fails after 30 s with `what`.
fn run_until(pair: &mut Pair, what: &str, mut done: impl FnMut(&mut Pair) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        pair.hello.update();
        pair.caller.update();
        if done(pair) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: caller received {:?}",
            received(&mut pair.caller)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn caller_calls_hello_remotely_and_receives_every_insert() {
    let data = tempfile::tempdir().unwrap();
    let mut pair = pair(data.path());
    // `init` sent one call; its insert comes back through the subscription.
    run_until(&mut pair, "the init greeting", |p| {
        received(&mut p.caller) == ["Hello, caller!"]
    });
    call(
        &mut pair.caller,
        "caller",
        "greet_many",
        ("n".to_string(), 200u32),
    )
    .unwrap();
    run_until(&mut pair, "200 more greetings", |p| {
        received(&mut p.caller).len() == 201
    });
    let got = received(&mut pair.caller);
    let expected: Vec<String> = std::iter::once("Hello, caller!".to_string())
        .chain((0..200).map(|i| format!("Hello, n{i}!")))
        .collect();
    assert_eq!(got, expected, "every insert, once, in order");
    assert_eq!(greetings_on(&mut pair.hello), 201, "every call ran once");
    let ids: Vec<u64> = query(&mut pair.caller, "caller", "received_ids", ()).unwrap();
    assert_eq!(ids, (1..=201).collect::<Vec<u64>>());
    // The answers reached the game as messages.
    let outcomes = pair
        .caller
        .world()
        .resource::<Messages<RemoteCallOutcome>>();
    assert!(
        outcomes
            .iter_current_update_messages()
            .chain(outcomes.get_cursor().read(outcomes))
            .all(|o| o.outcome.is_ok())
    );
}

#[test]
fn the_subscription_resumes_after_the_hello_node_restarts() {
    let data = tempfile::tempdir().unwrap();
    let mut pair = pair(data.path());
    run_until(&mut pair, "the init greeting", |p| {
        received(&mut p.caller).len() == 1
    });
    call(
        &mut pair.caller,
        "caller",
        "greet_many",
        ("a".to_string(), 50u32),
    )
    .unwrap();
    // Stop hello part-way through the stream.
    run_until(&mut pair, "some greetings", |p| {
        received(&mut p.caller).len() > 10
    });
    let App { .. } = std::mem::replace(&mut pair.hello, App::new());
    std::thread::sleep(Duration::from_millis(200));
    // Calls made while hello is down wait for it.
    call(
        &mut pair.caller,
        "caller",
        "greet_many",
        ("b".to_string(), 50u32),
    )
    .unwrap();
    for _ in 0..50 {
        pair.caller.update();
        std::thread::sleep(Duration::from_millis(2));
    }
    // Same data, same key, same address.
    pair.hello = hello_node(
        data.path(),
        pair.hello_addr,
        pair.hello_identity.clone(),
        pair.hello_trust.clone(),
    );
    listening(&mut pair.hello);
    run_until(&mut pair, "all 101 greetings", |p| {
        greetings_on(&mut p.hello) >= 101 && received(&mut p.caller).len() >= 101
    });
    // Give late duplicates a chance to show up.
    for _ in 0..100 {
        pair.hello.update();
        pair.caller.update();
        std::thread::sleep(Duration::from_millis(2));
    }
    let ids: Vec<u64> = query(&mut pair.caller, "caller", "received_ids", ()).unwrap();
    let stored = greetings_on(&mut pair.hello);
    assert_eq!(
        ids,
        (1..=stored).collect::<Vec<u64>>(),
        "every greeting stored on hello arrived once, in order"
    );
    let got = received(&mut pair.caller);
    for name in (0..50)
        .map(|i| format!("a{i}"))
        .chain((0..50).map(|i| format!("b{i}")))
    {
        let greeting = format!("Hello, {name}!");
        assert_eq!(
            got.iter().filter(|g| **g == greeting).count(),
            1,
            "{greeting} ran exactly once"
        );
    }
}
