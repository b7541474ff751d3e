//! An impairing UDP relay for tests: it stands between two nodes on 127.0.0.1 and loses,
//! duplicates and delays (so reorders) datagrams in both directions, the way a bad network
//! does. Tests point one node at the relay instead of at the other node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// What happens to datagrams, in percent of those crossing (each direction separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Impairment {
    /// Dropped.
    pub loss: u64,
    /// Sent twice.
    pub duplicate: u64,
    /// Held back 5 ms more, so later ones overtake them.
    pub reorder: u64,
    /// How long every datagram takes to cross, each way (half the round trip it adds).
    pub delay: Duration,
}

impl Impairment {
    /// 10% lost, 10% duplicated, 10% reordered.
    pub const TEN_PERCENT: Impairment = Impairment {
        loss: 10,
        duplicate: 10,
        reorder: 10,
        delay: Duration::ZERO,
    };

    /// A long, lossy path: 50 ms each way (100 ms round trip), `loss` percent lost each way,
    /// nothing duplicated or reordered beyond what loss recovery does.
    pub const fn distant(loss: u64) -> Impairment {
        Impairment {
            loss,
            duplicate: 0,
            reorder: 0,
            delay: Duration::from_millis(50),
        }
    }
}

/// Xorshift: a reproducible fate for each datagram.
fn roll(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state % 100
}

fn forward(
    datagram: Vec<u8>,
    fate: u64,
    impairment: Impairment,
    socket: Arc<UdpSocket>,
    to: Option<SocketAddr>,
) {
    let Impairment {
        loss,
        duplicate,
        reorder,
        delay: base,
    } = impairment;
    if fate < loss {
        return;
    }
    let copies = if fate < loss + duplicate { 2 } else { 1 };
    let delay = if (loss + duplicate..loss + duplicate + reorder).contains(&fate) {
        base + Duration::from_millis(5)
    } else {
        base
    };
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        for _ in 0..copies {
            let _ = match to {
                Some(to) => socket.send_to(&datagram, to).await,
                None => socket.send(&datagram).await,
            };
        }
    });
}

/// Starts a relay to `upstream` on a free port of 127.0.0.1 and returns that port's address.
/// The relay forwards to the most recent client that sent it something; it keeps running
/// (across restarts of the upstream node) until the tokio runtime stops.
pub async fn impairing_relay(
    upstream: SocketAddr,
    seed: u64,
    impairment: Impairment,
) -> std::io::Result<SocketAddr> {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let relay = socket.local_addr()?;
    let upstream_socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    upstream_socket.connect(upstream).await?;
    let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
    {
        let (socket, upstream_socket, client) =
            (socket.clone(), upstream_socket.clone(), client.clone());
        tokio::spawn(async move {
            let mut rng = seed | 1;
            let mut buf = vec![0u8; 65_536];
            loop {
                let (n, from) = match socket.recv_from(&mut buf).await {
                    Ok(received) => received,
                    // An ICMP "port unreachable" from an earlier send: keep relaying.
                    Err(_) => continue,
                };
                if let Ok(mut client) = client.lock() {
                    *client = Some(from);
                }
                let fate = roll(&mut rng);
                forward(
                    buf[..n].to_vec(),
                    fate,
                    impairment,
                    upstream_socket.clone(),
                    None,
                );
            }
        });
    }
    tokio::spawn(async move {
        let mut rng = seed.rotate_left(21) | 1;
        let mut buf = vec![0u8; 65_536];
        loop {
            let n = match upstream_socket.recv(&mut buf).await {
                Ok(n) => n,
                // The upstream node is down (it may come back): keep relaying.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            };
            let to = client.lock().ok().and_then(|c| *c);
            let Some(to) = to else {
                continue;
            };
            let fate = roll(&mut rng);
            forward(
                buf[..n].to_vec(),
                fate,
                impairment,
                socket.clone(),
                Some(to),
            );
        }
    });
    Ok(relay)
}
