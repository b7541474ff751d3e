//! Two endpoints over real UDP on 127.0.0.1: mutual authentication pinned to fingerprints,
//! the handshake, requests, and what happens to a peer that breaks the rules.

use interstice_net::message::{MAX_MESSAGE_BYTES, Message};
use interstice_net::transport::{NodeIdentity, Peer, PeerEndpoint, TransportError, TrustedPeers};
use std::net::SocketAddr;
use std::time::Duration;

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

struct Node {
    identity: NodeIdentity,
    trusted: TrustedPeers,
    endpoint: PeerEndpoint,
}

fn node() -> Node {
    let identity = NodeIdentity::generate().expect("identity");
    let trusted = TrustedPeers::default();
    let endpoint = PeerEndpoint::bind(localhost(), &identity, trusted.clone()).expect("bind");
    Node {
        identity,
        trusted,
        endpoint,
    }
}

/// Answers pings on every accepted connection until the endpoint closes.
fn serve(node: Node) -> tokio::task::JoinHandle<Vec<Result<Peer, String>>> {
    tokio::spawn(async move {
        let mut handshakes = Vec::new();
        let endpoint = std::sync::Arc::new(node.endpoint);
        while let Ok(Some(accepted)) =
            tokio::time::timeout(Duration::from_secs(3), endpoint.accept()).await
        {
            match accepted {
                Ok(peer) => {
                    handshakes.push(Ok(peer.clone()));
                    tokio::spawn(async move {
                        while let Some(Ok((message, responder))) = peer.next_request().await {
                            if let Message::Ping { nonce } = message {
                                let _ = responder.respond(&Message::Pong { nonce }).await;
                            }
                        }
                    });
                }
                Err(e) => handshakes.push(Err(e.to_string())),
            }
        }
        handshakes
    })
}

#[tokio::test]
async fn trusted_peers_authenticate_each_other_and_talk() {
    let a = node();
    let b = node();
    a.trusted.trust(b.identity.fingerprint());
    b.trusted.trust(a.identity.fingerprint());
    let b_addr = b.endpoint.local_addr().unwrap();
    let b_print = b.identity.fingerprint();
    let a_print = a.identity.fingerprint();
    let (a_id, b_id) = (a.identity.node_id(), b.identity.node_id());
    let server = serve(b);

    let peer = a.endpoint.connect(b_addr).await.expect("handshake");
    assert_eq!(peer.node_id, b_id, "the node id is bound to the key");
    assert_eq!(peer.version, 1);
    assert_eq!(peer.fingerprint, b_print, "the peer is who its key says");
    let rtt = peer.ping().await.expect("ping");
    assert!(rtt < Duration::from_secs(1), "{rtt:?}");
    for _ in 0..100 {
        peer.ping().await.expect("ping");
    }
    a.endpoint.close();
    let handshakes = server.await.unwrap();
    let accepted = handshakes[0].as_ref().expect("accepted");
    assert_eq!(accepted.node_id, a_id);
    assert_eq!(accepted.fingerprint, a_print);
}

#[tokio::test]
async fn an_unknown_key_is_refused_both_ways() {
    // b does not trust a: a cannot get in.
    let a = node();
    let b = node();
    a.trusted.trust(b.identity.fingerprint());
    let b_addr = b.endpoint.local_addr().unwrap();
    let server = serve(b);
    let refused = a.endpoint.connect(b_addr).await;
    assert!(refused.is_err(), "an untrusted client got through");
    let handshakes = server.await.unwrap();
    assert!(handshakes.iter().all(|h| h.is_err()), "{handshakes:?}");

    // a does not trust c: a will not talk to it.
    let c = node();
    c.trusted.trust(a.identity.fingerprint());
    let c_addr = c.endpoint.local_addr().unwrap();
    let server = serve(c);
    assert!(matches!(
        a.endpoint.connect(c_addr).await,
        Err(TransportError::Connection(_))
    ));
    drop(server.await);
}

#[tokio::test]
async fn trust_on_first_use_learns_the_key_without_being_trusted() {
    // b trusts nobody; a learns b's fingerprint anyway, then trusts it, and still cannot get
    // in until b trusts a back.
    let a = node();
    let b = node();
    let b_addr = b.endpoint.local_addr().unwrap();
    let b_print = b.identity.fingerprint();
    let b_trust = b.trusted.clone();
    let a_print = a.identity.fingerprint();
    let b_endpoint = std::sync::Arc::new(b.endpoint);
    let accepting = b_endpoint.clone();
    let server = tokio::spawn(async move {
        let mut peers = Vec::new();
        while let Ok(Some(accepted)) =
            tokio::time::timeout(Duration::from_secs(3), accepting.accept()).await
        {
            if let Ok(peer) = accepted {
                peers.push(peer);
            }
        }
        peers.len()
    });
    let learned = interstice_net::transport::probe_fingerprint(b_addr, &a.identity)
        .await
        .expect("probe");
    assert_eq!(
        learned, b_print,
        "the probe reports the key the node really has"
    );
    a.trusted.trust(learned);
    assert!(
        a.endpoint.connect(b_addr).await.is_err(),
        "b does not trust a yet"
    );
    b_trust.trust(a_print);
    let peer = a
        .endpoint
        .connect(b_addr)
        .await
        .expect("both trust each other now");
    drop(peer);
    a.endpoint.close();
    assert_eq!(server.await.unwrap(), 1);
    // Nobody at the address: an error, not a fingerprint.
    let nobody = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent = nobody.local_addr().unwrap();
    assert!(
        interstice_net::transport::probe_fingerprint(silent, &a.identity)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_oversized_message_closes_that_connection_only() {
    let a = node();
    let b = node();
    a.trusted.trust(b.identity.fingerprint());
    b.trusted.trust(a.identity.fingerprint());
    let b_addr = b.endpoint.local_addr().unwrap();
    let b_endpoint = std::sync::Arc::new(b.endpoint);
    let accepting = b_endpoint.clone();
    let server = tokio::spawn(async move {
        let mut outcomes = Vec::new();
        let mut kept = Vec::new();
        for _ in 0..2 {
            let peer = accepting
                .accept()
                .await
                .expect("incoming")
                .expect("handshake");
            let outcome: Result<String, String> = match peer.next_request().await {
                Some(Ok((Message::Ping { nonce }, responder))) => responder
                    .respond(&Message::Pong { nonce })
                    .await
                    .map(|()| "pong".to_string())
                    .map_err(|e| e.to_string()),
                Some(Ok((other, _))) => Ok(format!("unexpected {other:?}")),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("closed".to_string()),
            };
            outcomes.push(outcome);
            // Dropping the last handle of a connection closes it: keep it until the client
            // is done with it.
            kept.push(peer);
        }
        if let Some(last) = kept.last() {
            let _ = tokio::time::timeout(Duration::from_secs(5), last.connection().closed()).await;
        }
        outcomes
    });

    // A raw stream that claims a message larger than the limit.
    let bad = a.endpoint.connect(b_addr).await.expect("handshake");
    let (mut send, mut recv) = bad.connection().open_bi().await.unwrap();
    send.write_all(&((MAX_MESSAGE_BYTES as u32) + 1).to_le_bytes())
        .await
        .unwrap();
    send.write_all(&[0; 16]).await.unwrap();
    let _ = send.finish();
    let mut buf = [0u8; 1];
    assert!(
        recv.read_exact(&mut buf).await.is_err(),
        "the connection must be closed"
    );

    // Another connection is unaffected.
    let good = a.endpoint.connect(b_addr).await.expect("second handshake");
    good.ping().await.expect("ping on a fresh connection");
    a.endpoint.close();

    let outcomes = server.await.unwrap();
    assert!(
        matches!(&outcomes[0], Err(e) if e.contains("exceeds")),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1].as_deref(), Ok("pong"));
}
