//! Per-peer budgets over real UDP on 127.0.0.1: a peer that floods the node is held to its
//! budget (and answered `Busy` when its queue stays full), and another peer's calls stay fast
//! meanwhile.

mod common;

use bevy::prelude::*;
use common::*;
use interstice::abi::IntersticeType;
use interstice::network::{NetworkConfig, NetworkStatus};
use interstice::prelude::*;
use interstice_net::message::{Message, RemoteError};
use interstice_net::transport::{NodeIdentity, Peer, PeerEndpoint, TrustedPeers};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The tests here measure latency and this process's memory: they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A node serving `hello`, trusting `clients`.
fn node(clients: &[&NodeIdentity]) -> (App, std::net::SocketAddr, String) {
    let identity = Arc::new(NodeIdentity::generate().unwrap());
    let fingerprint = identity.fingerprint();
    let network = NetworkConfig::new("127.0.0.1:0".parse().unwrap(), identity);
    for client in clients {
        network.trusted.trust(client.fingerprint());
    }
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default()
            .with_module_bytes("hello", wasm("hello"))
            .with_network(network),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.update();
        if let Some(addr) = app.world().resource::<NetworkStatus>().local_addr {
            return (app, addr, fingerprint);
        }
        assert!(Instant::now() < deadline, "the node never listened");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn hello(request: u64) -> Message {
    Message::CallReducer {
        request,
        module: "hello".into(),
        reducer: "hello".into(),
        args: ("peer".to_string(),).to_bytes(),
    }
}

/// Median round-trip time of `count` sequential calls, starting at request id `first`.
async fn median_call_rtt(peer: &Peer, first: u64, count: u64) -> Duration {
    let mut rtts = Vec::new();
    for request in first..first + count {
        let started = Instant::now();
        match peer.request(&hello(request)).await.expect("answer") {
            Message::CallResult {
                outcome: Ok(()), ..
            } => rtts.push(started.elapsed()),
            other => panic!("the victim's call failed: {other:?}"),
        }
    }
    rtts.sort();
    rtts[rtts.len() / 2]
}

/// Keeps 1,000 calls in flight until `stop`, each resent as soon as it is answered; returns
/// how many were answered `Busy` and how many committed.
async fn flood(peer: Peer, stop: Arc<AtomicBool>, committed: Arc<AtomicU64>) -> u64 {
    let busy = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(1_000_000));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1_000 {
        let (peer, stop, busy, committed, next) = (
            peer.clone(),
            stop.clone(),
            busy.clone(),
            committed.clone(),
            next.clone(),
        );
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let request = next.fetch_add(1, Ordering::Relaxed);
                match peer.request(&hello(request)).await {
                    Ok(Message::CallResult {
                        outcome: Err(RemoteError::Busy(_)),
                        ..
                    }) => {
                        busy.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        committed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => break,
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    busy.load(Ordering::Relaxed)
}

#[test]
fn a_flood_from_one_peer_leaves_another_peers_calls_fast() {
    let _serial = serial();
    let (flooder, victim) = (
        NodeIdentity::generate().unwrap(),
        NodeIdentity::generate().unwrap(),
    );
    let (mut app, addr, node_print) = node(&[&flooder, &victim]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut run = |until: &dyn Fn() -> bool| {
        while !until() {
            app.update();
            assert!(Instant::now() < deadline, "the clients did not finish");
            std::thread::sleep(Duration::from_millis(1));
        }
    };

    // The victim measures its latency with the node idle (after a warm-up), then again once
    // the flood has filled its budget. Each client has a runtime and a thread of its own.
    let (stop, committed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let flood_ready = Arc::new(AtomicBool::new(false));
    let (idle_tx, idle_rx) = std::sync::mpsc::channel();
    let measuring = {
        let (print, flood_ready) = (node_print.clone(), flood_ready.clone());
        on_runtime(async move {
            let peer = connect(&victim, addr, &print).await;
            median_call_rtt(&peer, 0, 20).await;
            let _ = idle_tx.send(median_call_rtt(&peer, 100, 40).await);
            while !flood_ready.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            median_call_rtt(&peer, 200, 40).await
        })
    };
    let idle = std::cell::Cell::new(None);
    run(&|| {
        if let Ok(rtt) = idle_rx.try_recv() {
            idle.set(Some(rtt));
        }
        idle.get().is_some()
    });
    let flooding = {
        let (stop, committed, print) = (stop.clone(), committed.clone(), node_print.clone());
        on_runtime(async move {
            let peer = connect(&flooder, addr, &print).await;
            flood(peer, stop, committed).await
        })
    };
    run(&|| committed.load(Ordering::Relaxed) >= 500);
    flood_ready.store(true, Ordering::Relaxed);
    run(&|| measuring.is_finished());
    let flooded = measuring.join().expect("victim");
    let idle = idle.get().expect("idle latency");
    stop.store(true, Ordering::Relaxed);
    run(&|| flooding.is_finished());
    let busy = flooding.join().expect("flooder");
    let committed = committed.load(Ordering::Relaxed);
    println!(
        "victim's median call RTT: idle {idle:?}, flooded {flooded:?}; \
         flood: {committed} committed, {busy} busy"
    );
    // The flood is held to its budget by backpressure (its streams wait unread while its
    // queue is full), so it may see no `Busy` at all; the next test shows the refusals.
    // Within 2× of idle; the 2 ms allow for the scheduler of a busy two-core machine (the
    // flood's own answers share the cores with the victim's).
    assert!(
        flooded <= idle * 2 + Duration::from_millis(2),
        "the victim's calls slowed from {idle:?} to {flooded:?} under the flood"
    );
}

#[test]
fn requests_past_a_full_queue_are_answered_busy_and_nothing_is_lost() {
    let _serial = serial();
    let client = NodeIdentity::generate().unwrap();
    let (mut app, addr, node_print) = node(&[&client]);
    let budget = interstice::network::PeerBudget::default().queued_requests;
    let extra = 4;
    let (answers_tx, answers_rx) = std::sync::mpsc::channel();
    let sending = on_runtime(async move {
        let peer = connect(&client, addr, &node_print).await;
        let mut calls = tokio::task::JoinSet::new();
        for request in 0..(budget + extra) as u64 {
            let (peer, answers) = (peer.clone(), answers_tx.clone());
            calls.spawn(async move {
                let answer = peer.request(&hello(request)).await.expect("answer");
                let _ = answers.send(answer);
            });
            // In order, so the ones past the budget are the last ones.
            tokio::task::yield_now().await;
        }
        while calls.join_next().await.is_some() {}
    });
    // No frame runs: the world answers nothing, the queue fills and stays full, and what
    // comes past it is refused unread, one request per wait for room.
    let mut answers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while answers.len() < extra {
        answers.extend(answers_rx.try_recv());
        assert!(Instant::now() < deadline, "only {} answers", answers.len());
        std::thread::sleep(Duration::from_millis(5));
    }
    for answer in &answers {
        assert!(
            matches!(
                answer,
                Message::CallResult {
                    outcome: Err(RemoteError::Busy(_)),
                    ..
                }
            ),
            "{answer:?}"
        );
    }
    // Frames again: every queued call commits.
    while !sending.is_finished() {
        app.update();
        assert!(
            Instant::now() < deadline,
            "the queued calls were not answered"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    sending.join().expect("client");
    answers.extend(answers_rx.try_iter());
    let committed = answers
        .iter()
        .filter(|a| {
            matches!(
                a,
                Message::CallResult {
                    outcome: Ok(()),
                    ..
                }
            )
        })
        .count();
    assert_eq!((answers.len(), committed), (budget + extra, budget));
    let count: u64 = query(&mut app, "hello", "greeting_count", ()).unwrap();
    assert_eq!(count, budget as u64);
}

#[test]
fn subscriptions_past_the_budget_are_answered_busy() {
    let _serial = serial();
    let client = NodeIdentity::generate().unwrap();
    let (mut app, addr, node_print) = node(&[&client]);
    let budget = interstice::network::PeerBudget::default().subscriptions_per_connection;
    let subscribing = on_runtime(async move {
        let peer = connect(&client, addr, &node_print).await;
        let mut streams = Vec::new();
        let mut answers = Vec::new();
        for subscription in 0..=budget as u64 {
            let subscribe = Message::Subscribe {
                subscription,
                module: "hello".into(),
                table: "greetings".into(),
                from_seq: 0,
            };
            let mut stream = peer.open_stream(&subscribe).await.expect("stream");
            answers.push(stream.next().await.expect("an answer"));
            // Kept open: each one counts against the budget.
            streams.push(stream);
        }
        answers
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !subscribing.is_finished() {
        app.update();
        assert!(
            Instant::now() < deadline,
            "the subscriptions were not answered"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let answers = subscribing.join().expect("client");
    let (open, last) = answers.split_at(budget);
    for answer in open {
        assert!(
            matches!(answer, Message::Subscribed { outcome: Ok(_), .. }),
            "{answer:?}"
        );
    }
    assert!(
        matches!(
            last,
            [Message::Subscribed {
                outcome: Err(RemoteError::Busy(_)),
                ..
            }]
        ),
        "{last:?}"
    );
}

#[test]
fn a_peer_holds_a_bounded_number_of_connections() {
    let _serial = serial();
    let client = NodeIdentity::generate().unwrap();
    let (mut app, addr, node_print) = node(&[&client]);
    let limit = interstice::network::PeerBudget::default().connections_per_peer;
    let connecting = on_runtime(async move {
        let mut peers = Vec::new();
        let mut pings = Vec::new();
        for _ in 0..=limit {
            let trust = TrustedPeers::default();
            trust.trust(node_print.clone());
            let endpoint =
                PeerEndpoint::bind("127.0.0.1:0".parse().unwrap(), &client, trust).unwrap();
            // One past the limit is closed as soon as the node sees it: during the handshake
            // or before its first answer.
            let answered = match endpoint.connect(addr).await {
                Ok(peer) => {
                    // Give the node time to count (or close) it before asking.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let ok = peer.ping().await.is_ok();
                    peers.push(peer);
                    ok
                }
                Err(_) => false,
            };
            pings.push(answered);
            std::mem::forget(endpoint);
        }
        pings
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !connecting.is_finished() {
        app.update();
        assert!(
            Instant::now() < deadline,
            "the connections were not answered"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let pings = connecting.join().expect("client");
    assert_eq!(&pings[..limit], vec![true; limit].as_slice());
    assert!(
        !pings[limit],
        "connection {} should have been closed",
        limit + 1
    );
}
