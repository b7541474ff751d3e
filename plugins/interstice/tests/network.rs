//! A node serving peers over real UDP on 127.0.0.1: remote reducer calls (exactly once,
//! answered after the commit), queries, schemas, and what private modules and untrusted keys
//! get.

mod common;

use bevy::prelude::*;
use common::*;
use interstice::abi::IntersticeType;
use interstice::network::{NetworkConfig, NetworkStatus};
use interstice::prelude::*;
use interstice_net::message::{Message, RemoteError};
use interstice_net::transport::{NodeIdentity, PeerEndpoint, TrustedPeers};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A node with `hello` (public) and `kitchen` (private) listening on a free port.
fn serving_node(trusted: TrustedPeers) -> (App, std::net::SocketAddr, String) {
    let identity = Arc::new(NodeIdentity::generate().unwrap());
    let fingerprint = identity.fingerprint();
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default()
            .with_module_bytes("hello", wasm("hello"))
            .with_module_bytes("kitchen", wasm("kitchen"))
            .with_network(NetworkConfig {
                trusted,
                ..NetworkConfig::new("127.0.0.1:0".parse().unwrap(), identity)
            }),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.update();
        if let Some(addr) = app.world().resource::<NetworkStatus>().local_addr {
            return (app, addr, fingerprint);
        }
        assert!(
            Instant::now() < deadline,
            "the node never started listening"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Connects to the node at `addr` as a trusted client and sends it calls, a retry, a query,
/// forbidden and broken calls and a schema request; returns the answers in order.
async fn ask_as_trusted_client(
    client_identity: NodeIdentity,
    addr: std::net::SocketAddr,
    server_print: String,
) -> Vec<Message> {
    let trust = TrustedPeers::default();
    let server_id = interstice_net::transport::node_id_of(&server_print);
    trust.trust(server_print);
    let endpoint =
        PeerEndpoint::bind("127.0.0.1:0".parse().unwrap(), &client_identity, trust).unwrap();
    let peer = endpoint.connect(addr).await.expect("handshake");
    assert_eq!(peer.node_id, server_id, "the node id is bound to its key");
    peer.ping().await.expect("ping");
    let call = |request: u64, module: &str, reducer: &str, args: Vec<u8>| Message::CallReducer {
        request,
        module: module.into(),
        reducer: reducer.into(),
        args,
    };
    let mut answers = Vec::new();
    let hello_args = ("remote".to_string(),).to_bytes();
    answers.push(
        peer.request(&call(0, "hello", "hello", hello_args.clone()))
            .await
            .unwrap(),
    );
    // The same request id again (a retry after a lost answer): answered, not run.
    answers.push(
        peer.request(&call(0, "hello", "hello", hello_args))
            .await
            .unwrap(),
    );
    answers.push(
        peer.request(&Message::Query {
            request: 1,
            module: "hello".into(),
            query: "greeting_count".into(),
            args: vec![],
        })
        .await
        .unwrap(),
    );
    answers.push(
        peer.request(&call(2, "kitchen", "clear_items", vec![]))
            .await
            .unwrap(),
    );
    answers.push(
        peer.request(&call(3, "hello", "init", vec![]))
            .await
            .unwrap(),
    );
    answers.push(
        peer.request(&call(4, "hello", "hello", vec![0xff]))
            .await
            .unwrap(),
    );
    answers.push(
        peer.request(&Message::SchemaRequest { request: 5 })
            .await
            .unwrap(),
    );
    endpoint.close();
    answers
}

/// Checks each answer a trusted client got from `ask_as_trusted_client`.
fn assert_remote_answers(answers: &[Message]) {
    assert_eq!(
        answers[0],
        Message::CallResult {
            request: 0,
            outcome: Ok(())
        }
    );
    assert_eq!(
        answers[1],
        Message::CallResult {
            request: 0,
            outcome: Ok(())
        }
    );
    assert_eq!(
        answers[2],
        Message::QueryResult {
            request: 1,
            outcome: Ok(1u64.to_bytes())
        },
        "the retried call ran once"
    );
    assert_eq!(
        answers[3],
        Message::CallResult {
            request: 2,
            outcome: Err(RemoteError::NotFound("module `kitchen`".into()))
        },
        "a private module is invisible from other nodes"
    );
    assert!(
        matches!(
            &answers[4],
            Message::CallResult {
                outcome: Err(RemoteError::NotPermitted(_)),
                ..
            }
        ),
        "subscription reducers cannot be called remotely: {:?}",
        answers[4]
    );
    assert!(matches!(
        &answers[5],
        Message::CallResult {
            outcome: Err(RemoteError::Failed(_)),
            ..
        }
    ));
    match &answers[6] {
        Message::Schema { modules, .. } => {
            let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
            assert_eq!(names, vec!["hello"]);
        }
        other => panic!("expected a schema, got {other:?}"),
    }
}

#[test]
fn remote_calls_queries_and_schemas() {
    let client_identity = NodeIdentity::generate().unwrap();
    let client_print = client_identity.fingerprint();
    let node_trust = TrustedPeers::default();
    node_trust.trust(client_print);
    let (mut app, addr, server_print) = serving_node(node_trust);

    let answers = with_client(&mut app, move || {
        client_runtime().block_on(ask_as_trusted_client(client_identity, addr, server_print))
    });

    assert_remote_answers(&answers);
    assert_eq!(
        query::<_, u64>(&mut app, "hello", "greeting_count", ()),
        Ok(1)
    );
}

#[test]
fn an_untrusted_peer_cannot_call_anything() {
    let (mut app, addr, server_print) = serving_node(TrustedPeers::default());
    let connected = with_client(&mut app, move || {
        client_runtime().block_on(async move {
            let identity = NodeIdentity::generate().unwrap();
            let trust = TrustedPeers::default();
            trust.trust(server_print);
            let endpoint =
                PeerEndpoint::bind("127.0.0.1:0".parse().unwrap(), &identity, trust).unwrap();
            let result = match endpoint.connect(addr).await {
                Ok(peer) => peer.ping().await.is_ok(),
                Err(_) => false,
            };
            endpoint.close();
            result
        })
    });
    assert!(!connected, "an unknown key got an answer");
    assert_eq!(
        query::<_, u64>(&mut app, "hello", "greeting_count", ()),
        Ok(0)
    );
}

async fn impairing_proxy(upstream: std::net::SocketAddr, seed: u64) -> std::net::SocketAddr {
    interstice_net::impair::impairing_relay(
        upstream,
        seed,
        interstice_net::impair::Impairment::TEN_PERCENT,
    )
    .await
    .expect("relay")
}

#[test]
fn remote_calls_run_exactly_once_through_a_lossy_link() {
    const CALLS: u64 = 150;
    let client_identity = NodeIdentity::generate().unwrap();
    let node_trust = TrustedPeers::default();
    node_trust.trust(client_identity.fingerprint());
    let (mut app, addr, server_print) = serving_node(node_trust);
    let answered = with_client(&mut app, move || {
        client_runtime().block_on(async move {
            let proxy = impairing_proxy(addr, 0x1234_5678).await;
            let trust = TrustedPeers::default();
            trust.trust(server_print);
            let endpoint =
                PeerEndpoint::bind("127.0.0.1:0".parse().unwrap(), &client_identity, trust)
                    .unwrap();
            let peer = endpoint
                .connect(proxy)
                .await
                .expect("handshake through the proxy");
            let mut ok = 0u64;
            for request in 0..CALLS {
                let call = Message::CallReducer {
                    request,
                    module: "hello".into(),
                    reducer: "hello".into(),
                    args: (format!("n{request}"),).to_bytes(),
                };
                // Every third call is also retried, as a caller does after a lost answer.
                let answer = peer.request(&call).await.expect("answer");
                if request % 3 == 0 {
                    assert_eq!(peer.request(&call).await.expect("retry answer"), answer);
                }
                if answer
                    == (Message::CallResult {
                        request,
                        outcome: Ok(()),
                    })
                {
                    ok += 1;
                }
            }
            endpoint.close();
            ok
        })
    });
    assert_eq!(answered, CALLS, "every call answered Ok");
    assert_eq!(
        query::<_, u64>(&mut app, "hello", "greeting_count", ()),
        Ok(CALLS),
        "every call ran exactly once"
    );
}

/// A node with the `watcher` module (which records `connect`/`disconnect`), dialing `dial`.
fn watching_node(
    identity: Arc<NodeIdentity>,
    trusted: TrustedPeers,
    listen: std::net::SocketAddr,
    dial: Vec<std::net::SocketAddr>,
) -> App {
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default()
            .with_module_bytes("watcher", wasm("watcher"))
            .with_network(NetworkConfig {
                trusted,
                dial,
                ..NetworkConfig::new(listen, identity)
            }),
    ));
    app.update();
    app
}

fn seen(app: &mut App) -> Vec<String> {
    query(app, "watcher", "seen", ()).unwrap()
}

#[test]
fn peers_are_dialed_reported_and_their_departure_noticed() {
    use interstice::network::PeerHealth;
    let (a_id, b_id) = (
        Arc::new(NodeIdentity::generate().unwrap()),
        Arc::new(NodeIdentity::generate().unwrap()),
    );
    let (a_trust, b_trust) = (TrustedPeers::default(), TrustedPeers::default());
    a_trust.trust(b_id.fingerprint());
    b_trust.trust(a_id.fingerprint());
    let (a_node, b_node) = (a_id.node_id(), b_id.node_id());
    let mut b = watching_node(b_id, b_trust, "127.0.0.1:0".parse().unwrap(), vec![]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let b_addr = loop {
        b.update();
        if let Some(addr) = b.world().resource::<NetworkStatus>().local_addr {
            break addr;
        }
        assert!(Instant::now() < deadline, "b never listened");
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut a = watching_node(a_id, a_trust, "127.0.0.1:0".parse().unwrap(), vec![b_addr]);

    // Both sides see the other connect, and a measures the round trip.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        a.update();
        b.update();
        let rtt = a
            .world()
            .resource::<PeerHealth>()
            .peers
            .get(&b_node)
            .and_then(|p| p.rtt);
        if seen(&mut a) == [format!("peer+ {b_node}")]
            && seen(&mut b) == [format!("peer+ {a_node}")]
            && rtt.is_some()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a: {:?}, b: {:?}",
            seen(&mut a),
            seen(&mut b)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let health = a.world().resource::<PeerHealth>().peers[&b_node].clone();
    assert!(health.connected());
    assert_eq!(health.address, Some(b_addr));

    // b goes away: a notices, and keeps trying to reach it in the background.
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        a.update();
        if seen(&mut a) == [format!("peer+ {b_node}"), format!("peer- {b_node}")] {
            break;
        }
        assert!(Instant::now() < deadline, "a: {:?}", seen(&mut a));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!a.world().resource::<PeerHealth>().peers[&b_node].connected());
}
