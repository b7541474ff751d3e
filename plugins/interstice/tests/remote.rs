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

/// The caller node: `caller`, persisted in `data` when given, reaching hello at `hello_addr`.
fn caller_node(
    data: Option<&std::path::Path>,
    identity: Arc<NodeIdentity>,
    hello_print: String,
    hello_addr: SocketAddr,
) -> App {
    let mut network = NetworkConfig::new("127.0.0.1:0".parse().unwrap(), identity);
    network.trusted.trust(hello_print);
    network.nodes.insert("hello_node".into(), hello_addr);
    let mut plugin = IntersticePlugin::default()
        .with_module_bytes("caller", wasm("caller"))
        .with_network(network);
    if let Some(data) = data {
        plugin = plugin.with_storage(StorageConfig::new(data));
    }
    let mut caller = App::new();
    caller.add_plugins((MinimalPlugins, plugin));
    listening(&mut caller);
    caller
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

    // The binding says 127.0.0.1:8080; this hello node is elsewhere.
    let caller = caller_node(
        None,
        caller_identity,
        hello_identity.fingerprint(),
        hello_addr,
    );
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

#[test]
fn a_restarted_subscriber_resumes_where_it_stood() {
    let hello_data = tempfile::tempdir().unwrap();
    let caller_data = tempfile::tempdir().unwrap();
    let mut pair = pair(hello_data.path());
    let caller_identity = Arc::new(NodeIdentity::generate().unwrap());
    pair.hello_trust.trust(caller_identity.fingerprint());
    // A persisting caller replaces the in-memory one.
    pair.caller = caller_node(
        Some(caller_data.path()),
        caller_identity.clone(),
        pair.hello_identity.fingerprint(),
        pair.hello_addr,
    );
    call(
        &mut pair.caller,
        "caller",
        "greet_many",
        ("a".to_string(), 20u32),
    )
    .unwrap();
    run_until(&mut pair, "the first greetings", |p| {
        received(&mut p.caller).len() >= 21
    });
    // The caller stops; hello goes on greeting.
    pair.caller = App::new();
    for i in 0..5 {
        call(&mut pair.hello, "hello", "hello", (format!("offline{i}"),)).unwrap();
    }
    pair.caller = caller_node(
        Some(caller_data.path()),
        caller_identity,
        pair.hello_identity.fingerprint(),
        pair.hello_addr,
    );
    run_until(&mut pair, "the greetings made while it was away", |p| {
        received(&mut p.caller)
            .iter()
            .any(|g| g == "Hello, offline4!")
    });
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
        "nothing missed while away, nothing applied twice after the restart"
    );
}
