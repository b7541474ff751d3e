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
use interstice_net::transport::{NodeIdentity, PeerEndpoint, TrustedPeers};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SEQUENTIAL: usize = 2_000;
const PIPELINED: u64 = 20_000;
const WINDOW: usize = 256;
/// Rows produced per `stream.emit` call, and calls.
const ROWS_PER_EMIT: u32 = 10_000;
const EMITS: u64 = 50;

fn main() {
    let built = build_workspace_modules(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        &["hello", "stream"],
    )
    .expect("building the modules");
    let hello = std::fs::read(&built[0]).expect("hello.wasm");
    let stream = std::fs::read(&built[1]).expect("stream.wasm");

    let server_identity = Arc::new(NodeIdentity::generate().unwrap());
    let client_identity = NodeIdentity::generate().unwrap();
    let server_print = server_identity.fingerprint();
    let node_trust = TrustedPeers::default();
    node_trust.trust(client_identity.fingerprint());

    let (addr_tx, addr_rx) = mpsc::channel();
    let frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let frame_counter = frames.clone();
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
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("node listening");

    let bench_started = Instant::now();
    let frames_at_start = frames.load(std::sync::atomic::Ordering::Relaxed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let trust = TrustedPeers::default();
        trust.trust(server_print);
        let endpoint =
            PeerEndpoint::bind("127.0.0.1:0".parse().unwrap(), &client_identity, trust).unwrap();
        let peer = endpoint.connect(addr).await.expect("handshake");
        let call = |request: u64| Message::CallReducer {
            request,
            module: "hello".into(),
            reducer: "hello".into(),
            args: ("bench".to_string(),).to_bytes(),
        };

        // The transport alone: pings answered on the network thread.
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

        // The transport alone, pipelined.
        let started = Instant::now();
        let mut in_flight: tokio::task::JoinSet<
            Result<Duration, interstice_net::transport::TransportError>,
        > = tokio::task::JoinSet::new();
        for _ in 0..PIPELINED {
            if in_flight.len() >= WINDOW {
                in_flight.join_next().await.expect("task").expect("join").expect("pong");
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

        // The call machinery alone: a reducer that does nothing (`stream.emit(0)`).
        let noop = |request: u64| Message::CallReducer {
            request,
            module: "stream".into(),
            reducer: "emit".into(),
            args: (0u32,).to_bytes(),
        };

        // Single calls, one after the other.
        let mut rtts = Vec::with_capacity(SEQUENTIAL);
        for request in 0..SEQUENTIAL as u64 {
            let started = Instant::now();
            let answer = peer.request(&call(request)).await.expect("answer");
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

        // Pipelined: up to WINDOW calls in flight on one connection — of `hello` (an insert,
        // a log line, a published event), then of a reducer that does nothing.
        let mut next_request = SEQUENTIAL as u64;
        for (label, make) in [
            ("hello", &call as &(dyn Fn(u64) -> Message + Sync)),
            ("noop", &noop),
        ] {
            let started = Instant::now();
            let mut in_flight: tokio::task::JoinSet<
                Result<Message, interstice_net::transport::TransportError>,
            > = tokio::task::JoinSet::new();
            for request in next_request..next_request + PIPELINED {
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
            next_request += PIPELINED;
            let elapsed = started.elapsed();
            println!(
                "remote/pipelined_calls/{label}: {:.0} calls/s ({PIPELINED} calls, {WINDOW} in flight, {:?})",
                PIPELINED as f64 / elapsed.as_secs_f64(),
                elapsed
            );
        }

        // Subscription: rows inserted on the node, delivered to this subscriber.
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
        let total = u64::from(ROWS_PER_EMIT) * EMITS;
        let started = Instant::now();
        let emitter = {
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
                        Message::CallResult { outcome: Ok(()), .. } => {}
                        other => panic!("unexpected {other:?}"),
                    }
                }
            })
        };
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
        endpoint.close();
    });
    let frame_count = frames.load(std::sync::atomic::Ordering::Relaxed) - frames_at_start;
    println!(
        "remote/node_frames: {:.0} frames/s while serving (mean frame {:?})",
        frame_count as f64 / bench_started.elapsed().as_secs_f64(),
        bench_started.elapsed() / frame_count.max(1) as u32
    );
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
