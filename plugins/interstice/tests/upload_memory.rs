//! A peer's module uploads are bounded before they are buffered: 100 never-finished uploads
//! on one connection keep the node's memory under a stated bound, and a stranger's upload is
//! refused at its first chunk. Alone in its test binary, so the process's memory is the node's
//! (and this test's client's) only.

mod common;

use bevy::prelude::*;
use common::{connect, on_runtime};
use interstice::network::{NetworkConfig, NetworkStatus};
use interstice::prelude::*;
use interstice_net::message::{Message, RemoteError};
use interstice_net::transport::NodeIdentity;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// What 100 never-finished uploads from one admin may make the node hold (its receive windows
/// and one upload, with room for the allocator).
const UPLOAD_ATTACK_RSS_BOUND: u64 = 48 * 1024 * 1024;

#[test]
fn a_hundred_unfinished_uploads_hold_little_memory() {
    let admin = NodeIdentity::generate().unwrap();
    let stranger = NodeIdentity::generate().unwrap();
    let identity = Arc::new(NodeIdentity::generate().unwrap());
    let node_print = identity.fingerprint();
    let network = NetworkConfig::new("127.0.0.1:0".parse().unwrap(), identity);
    network.trusted.trust(admin.fingerprint());
    network.trusted.trust(stranger.fingerprint());
    network.admins.trust(admin.fingerprint());
    let mut app = App::new();
    app.add_plugins((
        MinimalPlugins,
        IntersticePlugin::default().with_network(network),
    ));
    let deadline = Instant::now() + Duration::from_secs(120);
    let addr = loop {
        app.update();
        if let Some(addr) = app.world().resource::<NetworkStatus>().local_addr {
            break addr;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let before = rss();

    // 100 uploads of 64 chunks on one connection, each stopping after 10 chunks (1.25 MiB):
    // taken in full, 125 MiB held until the uploads time out.
    let attack = {
        let print = node_print.clone();
        on_runtime(async move {
            let peer = connect(&admin, addr, &print).await;
            // Chunks of 128 KiB (any size up to 1 MiB is allowed): the debug build's QUIC moves
            // a few MB a second, and the point is the count of uploads held, not their size.
            let chunk = vec![0u8; 128 * 1024];
            let mut uploads = tokio::task::JoinSet::new();
            for upload in 0..100u64 {
                let (peer, chunk) = (peer.clone(), chunk.clone());
                uploads.spawn(async move {
                    let mut stream = peer.begin_upload(upload, 64, false).await.ok()?;
                    for _ in 0..10 {
                        // A refused upload's stream is stopped by the node: writes fail.
                        stream.send_chunk(&chunk).await.ok()?;
                    }
                    Some(stream)
                });
            }
            // Every upload either sent its ten chunks (the node read them) or was refused;
            // the ones still open are kept open, never finished.
            let mut open = Vec::new();
            while let Some(done) = uploads.join_next().await {
                open.extend(done.ok().flatten());
            }
            // What the node read is in its buffers by now.
            tokio::time::sleep(Duration::from_millis(500)).await;
            (peer, open.len())
        })
    };
    while !attack.is_finished() {
        app.update();
        assert!(Instant::now() < deadline, "the attack did not finish");
        std::thread::sleep(Duration::from_millis(1));
    }
    let grown = rss().saturating_sub(before);
    let (_peer, accepted) = attack.join().expect("attacker");
    println!(
        "RSS grew by {} MiB during the upload attack; {accepted} of 100 uploads read in full",
        grown / (1024 * 1024)
    );
    assert!(
        grown < UPLOAD_ATTACK_RSS_BOUND,
        "RSS grew by {grown} bytes, more than {UPLOAD_ATTACK_RSS_BOUND}"
    );
    assert_eq!(accepted, 1, "one upload at a time per connection");

    // Without a module holding the Module authority, a stranger's upload is refused at its
    // first chunk, before anything is buffered.
    let refused = on_runtime(async move {
        let peer = connect(&stranger, addr, &node_print).await;
        peer.upload(1, &[0u8; 16], false).await
    });
    while !refused.is_finished() {
        app.update();
        std::thread::sleep(Duration::from_millis(1));
    }
    match refused.join().expect("stranger") {
        Ok(Message::PublishResult {
            outcome: Err(RemoteError::NotPermitted(_)),
            ..
        }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
}
