//! What one peer may ask of the node at once, and how fast.
//!
//! A trusted peer is still only one of many: every buffer, queue and upload it can fill is
//! bounded here, on the network thread, before the request reaches the world. A peer over a
//! budget gets `RemoteError::Busy` for that request (nothing ran; resending later is safe) and
//! the node goes on serving everyone else. The transport bounds the rest (streams and unread
//! bytes per connection: `interstice_net::transport`).

use interstice_net::message::{Message, RemoteError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Per-peer budgets ([`NetworkConfig::budget`](super::NetworkConfig::budget)). Most are per
/// connection; `connections_per_peer` bounds how many connections one key may hold, so what a
/// peer can hold in all is at most that many times each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerBudget {
    /// Connections one peer (one key) may have open to the node at once; more are closed at
    /// once after the handshake.
    pub connections_per_peer: usize,
    /// Requests of one connection waiting for the world at once.
    pub queued_requests: usize,
    /// Requests one connection may send per second, sustained... The default only stops
    /// absurd floods (the node answers ~150,000 pipelined calls a second on two cores): what
    /// keeps one peer from crowding out the others is `queued_requests` and
    /// `requests_per_frame`. Lower it for peers you trust less.
    pub requests_per_second: u32,
    /// ...and in one burst.
    pub request_burst: u32,
    /// Subscriptions one connection may hold open (each may hold one batch of events, up to
    /// 2 MiB, that its subscriber has not taken yet).
    pub subscriptions_per_connection: usize,
    /// Uploads one connection may have in progress.
    pub uploads_per_connection: usize,
    /// Bytes of module uploads being received, all peers together.
    pub upload_bytes_in_flight: usize,
    /// Longest a whole upload may take, from its first chunk to its last.
    pub upload_timeout: Duration,
    /// Requests the world answers per frame; the rest wait for the next frame (in order).
    pub requests_per_frame: usize,
    /// Requests of one peer a frame answers while other peers have requests waiting too: a
    /// flood from one peer then adds at most this many calls to the frame another peer's
    /// call waits for. A peer alone gets the whole frame.
    pub fair_share_per_frame: usize,
    /// Strangers (keys neither trusted nor admins, let in because the node is
    /// [open](super::NetworkConfig::open)) connected at once. A new key costs nothing to make,
    /// so per-key budgets alone do not bound what strangers hold together: this does.
    pub strangers: usize,
    /// Handshakes in progress at once, all peers together: a connection attempt beyond them
    /// is refused at once (the dialer retries). On an open node anyone completes TLS, so this
    /// bounds what connections not yet admitted (each up to its receive windows for
    /// [`HANDSHAKE_TIMEOUT`](interstice_net::transport::endpoint::HANDSHAKE_TIMEOUT)) hold.
    pub handshakes: usize,
}

impl Default for PeerBudget {
    fn default() -> Self {
        PeerBudget {
            connections_per_peer: 8,
            queued_requests: 256,
            requests_per_second: 500_000,
            request_burst: 50_000,
            subscriptions_per_connection: 64,
            uploads_per_connection: 1,
            upload_bytes_in_flight: 128 * 1024 * 1024,
            upload_timeout: Duration::from_secs(60),
            requests_per_frame: 4_096,
            fair_share_per_frame: 16,
            strangers: 64,
            handshakes: 64,
        }
    }
}

/// The answer to `request` when it is refused unread: the reply kind its sender waits for.
pub(super) fn busy(request: &Message, why: String) -> Message {
    let error = RemoteError::Busy(why);
    match request {
        Message::CallReducer { request, .. } => Message::CallResult {
            request: *request,
            outcome: Err(error),
        },
        Message::Query { request, .. } => Message::QueryResult {
            request: *request,
            outcome: Err(error),
        },
        Message::Remove { request, .. } => Message::RemoveResult {
            request: *request,
            outcome: Err(error),
        },
        Message::Subscribe { subscription, .. } => Message::Subscribed {
            subscription: *subscription,
            outcome: Err(error),
        },
        Message::StatusRequest { request } => Message::Status {
            request: *request,
            storage: error.to_string(),
        },
        Message::RowsRequest { request, .. } => Message::Rows {
            request: *request,
            outcome: Err(error),
        },
        Message::LogsRequest { request, .. } => Message::Logs {
            request: *request,
            outcome: Err(error),
        },
        Message::HistoryRequest { request, .. } => Message::History {
            request: *request,
            outcome: Err(error),
        },
        Message::PublishChunk { upload, .. } => Message::PublishResult {
            upload: *upload,
            outcome: Err(error),
        },
        _ => Message::Refuse {
            reason: error.to_string(),
        },
    }
}

/// A token bucket: `rate` requests a second, up to `burst` at once.
#[derive(Debug)]
pub(super) struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub(super) fn new(budget: &PeerBudget) -> RateLimit {
        RateLimit {
            rate: f64::from(budget.requests_per_second),
            burst: f64::from(budget.request_burst.max(1)),
            tokens: f64::from(budget.request_burst.max(1)),
            last: Instant::now(),
        }
    }

    /// Whether one more request fits now (and takes its token).
    pub(super) fn admit(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the network thread shares between connections: the upload bytes in flight, and
/// whether an upload from someone who is not an admin could be allowed at all.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) budget: PeerBudget,
    upload_bytes: Arc<AtomicUsize>,
    /// Open connections by peer fingerprint.
    connections: Arc<std::sync::Mutex<std::collections::HashMap<Arc<str>, usize>>>,
    /// Fingerprints allowed to publish without asking anyone.
    pub(super) admins: interstice_net::transport::TrustedPeers,
    /// Fingerprints the node trusts; anyone else connected is a stranger.
    trusted: interstice_net::transport::TrustedPeers,
    /// Whether a module holds the Module authority (kept current by the world): without one,
    /// only admins may publish, and anyone else's upload is refused at its first chunk.
    pub(super) gatekeeper: Arc<AtomicBool>,
}

impl Shared {
    pub(super) fn new(
        budget: PeerBudget,
        admins: interstice_net::transport::TrustedPeers,
        trusted: interstice_net::transport::TrustedPeers,
    ) -> Self {
        Shared {
            budget,
            upload_bytes: Arc::default(),
            connections: Arc::default(),
            admins,
            trusted,
            gatekeeper: Arc::default(),
        }
    }

    /// Whether `peer` is neither trusted nor an admin.
    pub(super) fn is_stranger(&self, peer: &str) -> bool {
        !self.trusted.contains(peer) && !self.admins.contains(peer)
    }

    /// Whether `peer` may start sending an upload: an admin, or anyone while a module holds
    /// the Module authority (which then decides, knowing the module, once it is complete).
    pub(super) fn may_upload(&self, peer: &str) -> bool {
        self.admins.contains(peer) || self.gatekeeper.load(Ordering::Relaxed)
    }

    /// Counts a new connection of `peer`; refused (saying why) when it already has
    /// [`PeerBudget::connections_per_peer`] open, or when it is a new stranger and
    /// [`PeerBudget::strangers`] are connected already.
    pub(super) fn connect(&self, peer: &Arc<str>, stranger: bool) -> Result<Connection, String> {
        let mut open = self
            .connections
            .lock()
            .map_err(|_| "the connection count is unavailable".to_string())?;
        if stranger && !open.contains_key(peer) {
            let strangers = open.keys().filter(|p| self.is_stranger(p)).count();
            if strangers >= self.budget.strangers {
                return Err(format!(
                    "{} strangers are connected already (the node's limit)",
                    self.budget.strangers
                ));
            }
        }
        let count = open.entry(peer.clone()).or_default();
        if *count >= self.budget.connections_per_peer {
            return Err(format!(
                "{} connections from this key are open already",
                self.budget.connections_per_peer
            ));
        }
        *count += 1;
        Ok(Connection {
            peer: peer.clone(),
            connections: self.connections.clone(),
        })
    }

    /// Reserves `bytes` of upload buffer; `None` when that would pass the budget.
    pub(super) fn reserve_upload(&self, bytes: usize) -> Option<UploadBytes> {
        let limit = self.budget.upload_bytes_in_flight;
        self.upload_bytes
            .try_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|total| *total <= limit)
            })
            .ok()
            .map(|_| UploadBytes {
                bytes,
                counter: self.upload_bytes.clone(),
            })
    }
}

/// One open connection of a peer, counted until dropped.
pub(super) struct Connection {
    peer: Arc<str>,
    connections: Arc<std::sync::Mutex<std::collections::HashMap<Arc<str>, usize>>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Ok(mut open) = self.connections.lock()
            && let Some(count) = open.get_mut(&self.peer)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// Upload bytes held in the shared budget until dropped.
pub(super) struct UploadBytes {
    bytes: usize,
    counter: Arc<AtomicUsize>,
}

impl Drop for UploadBytes {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_admits_a_burst_then_its_rate() {
        let budget = PeerBudget {
            requests_per_second: 10,
            request_burst: 5,
            ..PeerBudget::default()
        };
        let mut limit = RateLimit::new(&budget);
        assert_eq!((0..100).filter(|_| limit.admit()).count(), 5);
        limit.last -= Duration::from_millis(500);
        assert_eq!((0..100).filter(|_| limit.admit()).count(), 5);
    }

    #[test]
    fn upload_bytes_are_given_back_when_dropped() {
        let shared = Shared::new(
            PeerBudget {
                upload_bytes_in_flight: 100,
                ..PeerBudget::default()
            },
            Default::default(),
            Default::default(),
        );
        let held = shared.reserve_upload(60).unwrap();
        assert!(shared.reserve_upload(41).is_none());
        let more = shared.reserve_upload(40).unwrap();
        drop(held);
        assert!(shared.reserve_upload(60).is_some());
        drop(more);
    }
}
