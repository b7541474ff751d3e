//! Remote calls over loopback QUIC to a real node (the engine running its Bevy app loop on
//! another thread): RTT of single calls (p50/p99), throughput of pipelined calls, and rows per
//! second a subscription delivers to a remote subscriber.
//!
//! `cargo bench -p interstice --bench remote` — prints its own report.

use bevy::prelude::*;
use interstice::abi::IntersticeType;
use interstice::network::{NetworkConfig, NetworkStatus};
use interstice::prelude::*;
use interstice_build::build_workspace_modules;
use interstice_net::message::Message;
use interstice_net::transport::{MessageStream, NodeIdentity, Peer, PeerEndpoint, TrustedPeers};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SEQUENTIAL: usize = 2_000;
const PIPELINED: u64 = 20_000;
/// Rounds of pipelined calls per kind; the median is reported.
const PIPELINED_ROUNDS: usize = 7;
const WINDOW: usize = 256;
/// Rows produced per `stream.emit` call, and calls.
const ROWS_PER_EMIT: u32 = 10_000;
const EMITS: u64 = 50;

fn main() {
    let (hello, stream) = build_modules();

    let server_identity = Arc::new(NodeIdentity::generate().unwrap());
    let client_identity = NodeIdentity::generate().unwrap();
    let server_print = server_identity.fingerprint();
    let node_trust = TrustedPeers::default();
    node_trust.trust(client_identity.fingerprint());

    let frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let addr = start_node(hello, stream, server_identity, node_trust, frames.clone());

    let bench_started = Instant::now();
    let frames_at_start = frames.load(std::sync::atomic::Ordering::Relaxed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run_benches(client_identity, server_print, addr));
    let frame_count = frames.load(std::sync::atomic::Ordering::Relaxed) - frames_at_start;
    println!(
        "remote/node_frames: {:.0} frames/s while serving (mean frame {:?})",
        frame_count as f64 / bench_started.elapsed().as_secs_f64(),
        bench_started.elapsed() / frame_count.max(1) as u32
    );
}

/// Builds the `hello` and `stream` modules the node serves; returns their wasm bytes.
fn build_modules() -> (Vec<u8>, Vec<u8>) {
    let built = build_workspace_modules(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        &["hello", "stream"],
    )
    .expect("building the modules");
    let hello = std::fs::read(&built[0]).expect("hello.wasm");
    let stream = std::fs::read(&built[1]).expect("stream.wasm");
    (hello, stream)
}

/// Runs the node on its own thread, counting its frames in `frame_counter`; returns the
/// address it listens on once it does.
fn start_node(
    hello: Vec<u8>,
    stream: Vec<u8>,
    server_identity: Arc<NodeIdentity>,
    node_trust: TrustedPeers,
    frame_counter: Arc<std::sync::atomic::AtomicU64>,
) -> SocketAddr {
    let (addr_tx, addr_rx) = mpsc::channel();
    let node = std::thread::Builder::new().name("node".into());
    let _ = node.spawn(move || {
        let mut app = App::new();
        app.add_plugins((
            MinimalPlugins,
            IntersticePlugin::default()
                .with_module_bytes("hello", hello)
                .with_module_bytes("stream", stream)
                .with_network(NetworkConfig {
                    trusted: node_trust,
                    ..NetworkConfig::new("127.0.0.1:0".parse().unwrap(), server_identity)
                }),
        ));
        interstice::run_single_threaded(&mut app);
        // Runs like `interstice example`: a frame every 16 ms, and at once when a request
        // arrives.
        app.add_systems(
            Last,
            move |status: Res<NetworkStatus>, mut sent: Local<bool>| {
                frame_counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if !*sent && let Some(addr) = status.local_addr {
                    let _ = addr_tx.send(addr);
                    *sent = true;
                }
            },
        );
        interstice::run_node(app, Duration::from_millis(16));
    });
    addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("node listening")
}

/// Connects to the node at `addr` as `client_identity` and runs every measurement, in order.
async fn run_benches(client_identity: NodeIdentity, server_print: String, addr: SocketAddr) {
    let trust = TrustedPeers::default();
    trust.trust(server_print);
    let endpoint =
        PeerEndpoint::bind("127.0.0.1:0".parse().unwrap(), &client_identity, trust).unwrap();
    let peer = endpoint.connect(addr).await.expect("handshake");
    measure_ping_rtt(&peer).await;
    measure_pipelined_pings(&peer).await;
    measure_single_call_rtt(&peer).await;
    measure_pipelined_calls(&peer).await;
    let mut events = subscribe_ticks(&peer).await;
    measure_subscription(&peer, &mut events).await;
    endpoint.close();
}

/// A call of `hello.hello`: an insert, a log line, a published event.
fn hello_call(request: u64) -> Message {
    Message::CallReducer {
        request,
        module: "hello".into(),
        reducer: "hello".into(),
        args: ("bench".to_string(),).to_bytes(),
    }
}

/// The call machinery alone: a reducer that does nothing (`stream.emit(0)`).
fn noop_call(request: u64) -> Message {
    Message::CallReducer {
        request,
        module: "stream".into(),
        reducer: "emit".into(),
        args: (0u32,).to_bytes(),
    }
}

/// The transport alone: RTT of pings answered on the network thread.
async fn measure_ping_rtt(peer: &Peer) {
    let mut pings = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        pings.push(peer.ping().await.expect("pong"));
    }
    pings.sort();
    println!(
        "remote/ping_rtt: p50 {:?}, p99 {:?} (the transport alone: answered without the engine)",
        pings[SEQUENTIAL / 2],
        pings[SEQUENTIAL * 99 / 100]
    );
}

/// The transport alone, pipelined: pings per second with up to WINDOW in flight.
async fn measure_pipelined_pings(peer: &Peer) {
    let started = Instant::now();
    let mut in_flight: tokio::task::JoinSet<
        Result<Duration, interstice_net::transport::TransportError>,
    > = tokio::task::JoinSet::new();
    for _ in 0..PIPELINED {
        if in_flight.len() >= WINDOW {
            in_flight
                .join_next()
                .await
                .expect("task")
                .expect("join")
                .expect("pong");
        }
        let peer = peer.clone();
        in_flight.spawn(async move { peer.ping().await });
    }
    while let Some(done) = in_flight.join_next().await {
        done.expect("join").expect("pong");
    }
    println!(
        "remote/pipelined_pings: {:.0} pings/s (the transport alone, {WINDOW} in flight)",
        PIPELINED as f64 / started.elapsed().as_secs_f64()
    );
}

/// RTT of single calls of `hello`, one after the other.
async fn measure_single_call_rtt(peer: &Peer) {
    let mut rtts = Vec::with_capacity(SEQUENTIAL);
    for request in 0..SEQUENTIAL as u64 {
        let started = Instant::now();
        let answer = peer.request(&hello_call(request)).await.expect("answer");
        rtts.push(started.elapsed());
        assert!(
            matches!(
                answer,
                Message::CallResult {
                    outcome: Ok(()),
                    ..
                }
            ),
            "{answer:?}"
        );
    }
    rtts.sort();
    let p = |q: f64| rtts[((rtts.len() as f64 - 1.0) * q) as usize];
    println!(
        "remote/single_call_rtt: p50 {:?}, p99 {:?} ({SEQUENTIAL} sequential calls)",
        p(0.50),
        p(0.99)
    );
}

/// Pipelined: up to WINDOW calls in flight on one connection — of `hello` (an insert, a log
/// line, a published event), then of a reducer that does nothing. Each is measured
/// PIPELINED_ROUNDS times and the median reported: one round lasts about 0.1 s, and on a
/// shared machine single rounds moved by 30 % from run to run.
async fn measure_pipelined_calls(peer: &Peer) {
    let mut next_request = SEQUENTIAL as u64;
    for (label, make) in [
        ("hello", hello_call as fn(u64) -> Message),
        ("noop", noop_call),
    ] {
        let mut rates = Vec::with_capacity(PIPELINED_ROUNDS);
        for _ in 0..PIPELINED_ROUNDS {
            rates.push(pipelined_round(peer, make, next_request).await);
            next_request += PIPELINED;
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "remote/pipelined_calls/{label}: {:.0} calls/s (median of {PIPELINED_ROUNDS} rounds \
             of {PIPELINED} calls, {WINDOW} in flight; slowest {:.0}, fastest {:.0})",
            rates[PIPELINED_ROUNDS / 2],
            rates[0],
            rates[PIPELINED_ROUNDS - 1],
        );
    }
}

/// One round of PIPELINED calls made by `make`, from request id `first`; calls per second.
async fn pipelined_round(peer: &Peer, make: fn(u64) -> Message, first: u64) -> f64 {
    let started = Instant::now();
    let mut in_flight: tokio::task::JoinSet<
        Result<Message, interstice_net::transport::TransportError>,
    > = tokio::task::JoinSet::new();
    for request in first..first + PIPELINED {
        if in_flight.len() >= WINDOW {
            committed(
                in_flight
                    .join_next()
                    .await
                    .expect("task")
                    .expect("join")
                    .expect("answer"),
            );
        }
        let peer = peer.clone();
        let message = make(request);
        in_flight.spawn(async move { peer.request(&message).await });
    }
    while let Some(done) = in_flight.join_next().await {
        committed(done.expect("join").expect("answer"));
    }
    PIPELINED as f64 / started.elapsed().as_secs_f64()
}

/// Subscribes this client to the node's `stream.tick` table, from its first row; returns the
/// stream its rows arrive on.
async fn subscribe_ticks(peer: &Peer) -> MessageStream {
    let subscribe = Message::Subscribe {
        subscription: 1,
        module: "stream".into(),
        table: "tick".into(),
        from_seq: 1,
    };
    let mut events = peer.open_stream(&subscribe).await.expect("subscribe");
    match events.next().await.expect("subscribed") {
        Message::Subscribed { outcome: Ok(1), .. } => {}
        other => panic!("unexpected {other:?}"),
    }
    events
}

/// Subscription: rows inserted on the node by remote calls, delivered to this subscriber on
/// `events`.
async fn measure_subscription(peer: &Peer, events: &mut MessageStream) {
    let total = u64::from(ROWS_PER_EMIT) * EMITS;
    let started = Instant::now();
    let emitter = spawn_emitter(peer);
    let mut received = 0u64;
    let mut next = 1u64;
    while received < total {
        match events.next().await.expect("events") {
            Message::Events {
                first_seq, events, ..
            } => {
                assert_eq!(first_seq, next, "events arrive in order");
                next += events.len() as u64;
                received += events.len() as u64;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    emitter.await.expect("emitter");
    println!(
        "remote/subscription_rows: {:.0} rows/s delivered ({total} rows inserted by {EMITS} remote calls and received by a remote subscriber, {:?} end to end)",
        total as f64 / elapsed.as_secs_f64(),
        elapsed
    );
}

/// Calls `stream.emit` EMITS times on its own task, each inserting ROWS_PER_EMIT rows.
fn spawn_emitter(peer: &Peer) -> tokio::task::JoinHandle<()> {
    let peer = peer.clone();
    tokio::spawn(async move {
        for i in 0..EMITS {
            let message = Message::CallReducer {
                request: 1_000_000 + i,
                module: "stream".into(),
                reducer: "emit".into(),
                args: (ROWS_PER_EMIT,).to_bytes(),
            };
            match peer.request(&message).await.expect("answer") {
                Message::CallResult {
                    outcome: Ok(()), ..
                } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    })
}

/// Counts a call only if it ran: an answer that says the node was busy (a budget refused it
/// unread) would make the throughput a measure of refusals.
fn committed(answer: Message) {
    assert!(
        matches!(
            answer,
            Message::CallResult {
                outcome: Ok(()),
                ..
            }
        ),
        "a pipelined call did not commit: {answer:?}"
    );
}
