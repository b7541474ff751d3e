//! Remote calls over loopback QUIC to a real node (the engine running its Bevy app loop on
//! another thread): RTT of single calls (p50/p99) and throughput of pipelined calls.
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

fn main() {
    let hello = build_workspace_modules(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        &["hello"],
    )
    .expect("building hello");
    let hello = std::fs::read(&hello[0]).expect("hello.wasm");

    let server_identity = Arc::new(NodeIdentity::generate().unwrap());
    let client_identity = NodeIdentity::generate().unwrap();
    let server_print = server_identity.fingerprint();
    let node_trust = TrustedPeers::default();
    node_trust.trust(client_identity.fingerprint());

    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut app = App::new();
        app.add_plugins((
            MinimalPlugins,
            IntersticePlugin::default()
                .with_module_bytes("hello", hello)
                .with_network(NetworkConfig {
                    listen: "127.0.0.1:0".parse().unwrap(),
                    identity: server_identity,
                    trusted: node_trust,
                    dial: Vec::new(),
                    nodes: Default::default(),
                }),
        ));
        let mut sent = false;
        loop {
            app.update();
            if !sent && let Some(addr) = app.world().resource::<NetworkStatus>().local_addr {
                let _ = addr_tx.send(addr);
                sent = true;
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("node listening");

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

        // Pipelined: up to WINDOW calls in flight on one connection.
        let started = Instant::now();
        let mut in_flight: tokio::task::JoinSet<
            Result<Message, interstice_net::transport::TransportError>,
        > = tokio::task::JoinSet::new();
        let first = SEQUENTIAL as u64;
        for request in first..first + PIPELINED {
            if in_flight.len() >= WINDOW {
                in_flight
                    .join_next()
                    .await
                    .expect("task")
                    .expect("join")
                    .expect("answer");
            }
            let peer = peer.clone();
            let message = call(request);
            in_flight.spawn(async move { peer.request(&message).await });
        }
        while let Some(done) = in_flight.join_next().await {
            done.expect("join").expect("answer");
        }
        let elapsed = started.elapsed();
        println!(
            "remote/pipelined_calls: {:.0} calls/s ({PIPELINED} calls, {WINDOW} in flight, {:?})",
            PIPELINED as f64 / elapsed.as_secs_f64(),
            elapsed
        );
        endpoint.close();
    });
}
