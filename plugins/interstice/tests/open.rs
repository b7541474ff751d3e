//! Open nodes and nodes joined by address, over real UDP on 127.0.0.1: a stranger's key gets
//! into an open node and reaches its public reducers, queries and tables — nothing else, even
//! where a Module-authority module would let a trusted peer publish; a node dialed with trust
//! on first use pins the key it met and refuses another one later, saying why.

mod common;

use bevy::prelude::*;
use common::*;
use interstice::network::{KnownHosts, LinkState, NetworkConfig, NetworkStatus, PeerHealth};
use interstice::prelude::*;
use interstice_net::message::{Message, RemoteError};
use interstice_net::transport::{NodeIdentity, TransportError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An open node with `hello` (public), `kitchen` (private) and `gatekeeper` (the Module
/// authority, which lets anyone publish), listening on `listen`.
fn open_node(
    identity: Arc<NodeIdentity>,
    listen: SocketAddr,
    strangers: usize,
) -> (App, SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut network = NetworkConfig::new(listen, identity.clone());
        network.open = true;
        network.budget.strangers = strangers;
        let mut app = App::new();
        app.add_plugins((
            MinimalPlugins,
            IntersticePlugin::default()
                .with_module_bytes("hello", wasm("hello"))
                .with_module_bytes("kitchen", wasm("kitchen"))
                .with_module_bytes("gatekeeper", wasm("gatekeeper"))
                .with_network(network),
        ));
        // The port of a node that just stopped may take a moment to free: try again.
        while app.world().resource::<NetworkStatus>().local_addr.is_none()
            && app.world().resource::<NetworkStatus>().error.is_none()
        {
            app.update();
            assert!(Instant::now() < deadline, "the node never listened");
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(addr) = app.world().resource::<NetworkStatus>().local_addr {
            return (app, addr);
        }
        assert!(
            Instant::now() < deadline,
            "the node cannot listen: {:?}",
            app.world().resource::<NetworkStatus>().error
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A request for the first page of `module.table`.
fn rows_of(module: &str, table: &str) -> Message {
    rows_request(module, table, None)
}

/// A request for the first page of `module.table` as it was after its first transaction.
fn past_rows_of(module: &str, table: &str) -> Message {
    rows_request(
        module,
        table,
        Some(interstice_net::message::PastPoint::Tx(0)),
    )
}

fn rows_request(
    module: &str,
    table: &str,
    as_of: Option<interstice_net::message::PastPoint>,
) -> Message {
    Message::RowsRequest {
        request: 7,
        module: module.into(),
        table: table.into(),
        after: None,
        filter: None,
        limit: 10,
        as_of,
    }
}

/// What a stranger got for each thing it asked.
#[derive(Debug)]
struct Answers {
    call: Message,
    query: Message,
    private_query: Message,
    subscribe: Message,
    publish: Message,
    remove: Message,
    remove_private: Message,
    rows: Message,
    rows_private: Message,
    rows_host_table: Message,
    rows_past: Message,
}

/// Dials the open node at `addr` as a stranger and asks it for everything, public or not.
async fn stranger_asks_everything(addr: SocketAddr, hello: Vec<u8>) -> Answers {
    // A key the node has never seen; it trusts the node's key by trying any.
    let (endpoint, peer) = dial_as_stranger(NodeIdentity::generate().unwrap(), addr).await;
    let peer = peer.expect("an open node lets a stranger in");
    let ask = |m: Message| {
        let peer = peer.clone();
        async move { peer.request(&m).await.expect("an answer") }
    };
    let mut args = Vec::new();
    interstice_abi::codec::write_str(&mut args, "stranger");
    let answers = Answers {
        call: ask(Message::CallReducer {
            request: 1,
            module: "hello".into(),
            reducer: "hello".into(),
            args,
        })
        .await,
        query: ask(Message::Query {
            request: 2,
            module: "hello".into(),
            query: "greeting_count".into(),
            args: Vec::new(),
        })
        .await,
        private_query: ask(Message::Query {
            request: 3,
            module: "kitchen".into(),
            query: "setting".into(),
            args: Vec::new(),
        })
        .await,
        subscribe: peer
            .open_stream(&Message::Subscribe {
                subscription: 1,
                module: "hello".into(),
                table: "greetings".into(),
                from_seq: 1,
            })
            .await
            .expect("a stream")
            .next()
            .await
            .expect("an answer"),
        publish: peer.upload(4, &hello, false).await.expect("an answer"),
        remove: ask(Message::Remove {
            request: 5,
            module: "hello".into(),
        })
        .await,
        remove_private: ask(Message::Remove {
            request: 6,
            module: "kitchen".into(),
        })
        .await,
        rows: ask(rows_of("hello", "greetings")).await,
        rows_private: ask(rows_of("kitchen", "item")).await,
        rows_host_table: ask(rows_of("hello", "__answered")).await,
        rows_past: ask(past_rows_of("hello", "greetings")).await,
    };
    endpoint.close();
    answers
}

/// Checks that the public call, query, subscription and rows were answered, and that the
/// private query and rows look missing.
fn assert_public_things_answered(answers: &Answers) {
    assert!(
        matches!(
            answers.call,
            Message::CallResult {
                outcome: Ok(()),
                ..
            }
        ),
        "{answers:?}"
    );
    assert!(
        matches!(answers.query, Message::QueryResult { outcome: Ok(_), .. }),
        "{answers:?}"
    );
    assert!(
        matches!(
            answers.private_query,
            Message::QueryResult {
                outcome: Err(RemoteError::NotFound(_)),
                ..
            }
        ),
        "{answers:?}"
    );
    assert!(
        matches!(
            answers.subscribe,
            Message::Subscribed { outcome: Ok(_), .. }
        ),
        "{answers:?}"
    );
    // Rows: a public table's, one page; a private module's and a host table look missing.
    match &answers.rows {
        Message::Rows {
            outcome: Ok(page), ..
        } => assert_eq!(page.rows.len(), 1, "the greeting the call stored"),
        other => panic!("{other:?}"),
    }
    // A public table's past is its owner's to read.
    assert!(
        matches!(
            &answers.rows_past,
            Message::Rows {
                outcome: Err(RemoteError::NotPermitted(_)),
                ..
            }
        ),
        "{answers:?}"
    );
    for missing in [&answers.rows_private, &answers.rows_host_table] {
        assert!(
            matches!(
                missing,
                Message::Rows {
                    outcome: Err(RemoteError::NotFound(_)),
                    ..
                }
            ),
            "{missing:?}"
        );
    }
}

/// Checks that the stranger's publish and removes were refused as a stranger's.
fn assert_stranger_may_not_publish_or_remove(answers: &Answers) {
    // The gatekeeper would let a trusted peer publish; a stranger is refused before it asks.
    match &answers.publish {
        Message::PublishResult {
            outcome: Err(RemoteError::NotPermitted(why)),
            ..
        } => assert!(why.contains("strangers"), "{why}"),
        other => panic!("a stranger's upload got {other:?}"),
    }
    for remove in [&answers.remove, &answers.remove_private] {
        match remove {
            Message::RemoveResult {
                outcome: Err(RemoteError::NotPermitted(why)),
                ..
            } => assert!(why.contains("stranger"), "{why}"),
            other => panic!("a stranger's remove got {other:?}"),
        }
    }
}

/// Checks that the stranger's call ran once and that every module is still installed.
fn assert_call_ran_once_and_modules_remain(app: &mut App) {
    // The call ran, once; the modules are all still there.
    assert_eq!(query::<_, u64>(app, "hello", "greeting_count", ()), Ok(1));
    let modules = app.world().resource::<interstice::Modules>();
    for module in ["hello", "kitchen", "gatekeeper"] {
        assert!(modules.schema(module).is_some(), "{module} is gone");
    }
}

#[test]
fn a_stranger_on_an_open_node_reaches_public_things_only() {
    let (mut app, addr) = open_node(
        Arc::new(NodeIdentity::generate().unwrap()),
        "127.0.0.1:0".parse().unwrap(),
        64,
    );
    let hello = wasm("hello");
    let answers = with_client(&mut app, move || {
        client_runtime().block_on(stranger_asks_everything(addr, hello))
    });
    assert_public_things_answered(&answers);
    assert_stranger_may_not_publish_or_remove(&answers);
    assert_call_ran_once_and_modules_remain(&mut app);
}

#[test]
fn strangers_beyond_the_limit_are_turned_away_and_a_closed_node_says_refused() {
    let (mut app, addr) = open_node(
        Arc::new(NodeIdentity::generate().unwrap()),
        "127.0.0.1:0".parse().unwrap(),
        1,
    );
    let (first, second) = with_client(&mut app, move || {
        client_runtime().block_on(async move {
            let connect = |identity: NodeIdentity| dial_as_stranger(identity, addr);
            let (_one, first) = connect(NodeIdentity::generate().unwrap()).await;
            // Kept open (a dropped connection closes) while the second one tries.
            let first = first.unwrap();
            let first_ping = first.ping().await.is_ok();
            let (_two, second) = connect(NodeIdentity::generate().unwrap()).await;
            // Closed right after the handshake: the refusal arrives with the handshake's end
            // or under the first request.
            let second_ping = match second {
                Err(e) => e.to_string(),
                Ok(second) => match second.ping().await {
                    Ok(_) => "answered".to_string(),
                    Err(_) => second
                        .connection()
                        .close_reason()
                        .map(|r| r.to_string())
                        .unwrap_or_default(),
                },
            };
            drop(first);
            (first_ping, second_ping)
        })
    });
    assert!(first, "the first stranger was not answered");
    assert!(
        second.contains("strangers are connected already"),
        "{second}"
    );

    // A node that is not open refuses an unknown key, and the dialer learns it was refused.
    let identity = Arc::new(NodeIdentity::generate().unwrap());
    let mut closed = App::new();
    closed.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default()
            .with_network(NetworkConfig::new("127.0.0.1:0".parse().unwrap(), identity)),
    ));
    let closed_addr = listening(&mut closed);
    let refused = with_client(&mut closed, move || {
        client_runtime().block_on(async move {
            dial_as_stranger(NodeIdentity::generate().unwrap(), closed_addr)
                .await
                .1
                .map(drop)
        })
    });
    assert!(
        matches!(refused, Err(TransportError::Refused(_))),
        "{refused:?}"
    );
}

/// A guest node (no modules) dialing `host` with trust on first use, pins in `known`.
fn guest(known: KnownHosts, host: SocketAddr) -> App {
    let mut network = NetworkConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(NodeIdentity::generate().unwrap()),
    );
    network.known_hosts = Some(known);
    network.dial = vec![host];
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default().with_network(network),
    ));
    app
}

fn link_state(app: &App, host: SocketAddr) -> Option<LinkState> {
    app.world()
        .resource::<PeerHealth>()
        .link(host)
        .map(|l| l.state.clone())
}

/// Runs both apps until the guest's link to `host` is in a state `wanted` accepts.
fn until(
    host_app: &mut App,
    guest: &mut App,
    host: SocketAddr,
    wanted: impl Fn(&LinkState) -> bool,
) -> LinkState {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        host_app.update();
        guest.update();
        if let Some(state) = link_state(guest, host)
            && wanted(&state)
        {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "the guest's link stayed {:?}",
            link_state(guest, host)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_host_joined_by_address_is_pinned_on_first_use_and_a_new_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("known_hosts");
    let host_key = Arc::new(NodeIdentity::generate().unwrap());
    let (mut host, addr) = open_node(host_key.clone(), "127.0.0.1:0".parse().unwrap(), 64);
    let mut visitor = guest(KnownHosts::load(&file).unwrap(), addr);
    let state = until(&mut host, &mut visitor, addr, |s| {
        matches!(s, LinkState::Connected { .. })
    });
    assert_eq!(
        state,
        LinkState::Connected {
            node_id: host_key.node_id(),
            fingerprint: host_key.fingerprint(),
        }
    );
    let pins = std::fs::read_to_string(&file).unwrap();
    assert!(
        pins.contains(&format!("{addr} {}", host_key.fingerprint())),
        "{pins}"
    );
    // The round trip is measured for the player to see.
    let deadline = Instant::now() + Duration::from_secs(10);
    while visitor
        .world()
        .resource::<PeerHealth>()
        .link(addr)
        .and_then(|l| l.rtt)
        .is_none()
    {
        host.update();
        visitor.update();
        assert!(Instant::now() < deadline, "no round-trip time");
        std::thread::sleep(Duration::from_millis(5));
    }

    // The host stops: the guest sees the link lost and keeps trying.
    drop(host);
    let mut nothing = App::new();
    let lost = until(&mut nothing, &mut visitor, addr, |s| {
        matches!(s, LinkState::Lost { .. })
    });
    assert!(matches!(lost, LinkState::Lost { .. }), "{lost:?}");

    // Someone else answers on that address with another key: refused, and the guest says why.
    let (mut impostor, _) = open_node(Arc::new(NodeIdentity::generate().unwrap()), addr, 64);
    let refused = until(&mut impostor, &mut visitor, addr, |s| {
        matches!(s, LinkState::Refused { .. })
    });
    let LinkState::Refused { why, .. } = refused else {
        unreachable!()
    };
    assert!(
        why.contains(&host_key.fingerprint()) && why.contains("pinned"),
        "{why}"
    );
    // A fresh start of the guest reads the pin from the file and refuses again.
    drop(visitor);
    let mut again = guest(KnownHosts::load(&file).unwrap(), addr);
    let refused = until(&mut impostor, &mut again, addr, |s| {
        !matches!(s, LinkState::Connecting { .. })
    });
    assert!(matches!(refused, LinkState::Refused { .. }), "{refused:?}");
}

#[test]
fn connection_attempts_past_the_handshake_budget_are_refused_at_once() {
    let mut network = NetworkConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(NodeIdentity::generate().unwrap()),
    );
    network.open = true;
    // No room at all: every attempt is over the budget.
    network.budget.handshakes = 0;
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default().with_network(network),
    ));
    let addr = listening(&mut app);
    let refused = with_client(&mut app, move || {
        client_runtime().block_on(async move {
            let started = Instant::now();
            let result = dial_as_stranger(NodeIdentity::generate().unwrap(), addr)
                .await
                .1
                .map(drop);
            (result, started.elapsed())
        })
    });
    assert!(
        matches!(&refused.0, Err(TransportError::Unreachable(why)) if why.contains("not taking")),
        "{refused:?}"
    );
    assert!(refused.1 < Duration::from_secs(2), "{refused:?}");
}
