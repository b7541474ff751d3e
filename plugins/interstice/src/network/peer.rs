//! One peer's connection, on the network thread: its requests read under the peer's budgets
//! ([`PeerBudget`](super::PeerBudget)), pings and subscriptions answered here, module uploads
//! received here, and every other request handed to the world, whose answers go back on the
//! request's own stream.

use super::{FromNetwork, Inbound, Reply, ToWorld, Upload, budget, publish};
use bevy::prelude::*;
use interstice_net::message::Message;
use interstice_net::transport::Responder;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long a peer whose queue of requests is full waits for room before its next request is
/// read (and answered `Busy` if there is still none).
const QUEUE_WAIT: Duration = Duration::from_millis(100);

/// How often connected peers are pinged for their round-trip time.
const PING_EVERY: Duration = Duration::from_millis(500);

/// One of a bounded number of things in progress, counted until dropped.
pub(super) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Counts one more, unless `limit` are in progress.
    pub(super) fn enter(count: &Arc<AtomicUsize>, limit: usize) -> Option<InFlight> {
        count
            .try_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| InFlight(count.clone()))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Reports the peer, answers its requests (through the world, or for subscriptions from the
/// published streams), pings it, and reports when it goes. The peer's budgets are kept here:
/// a request over one is answered `Busy` unread.
pub(super) async fn serve_peer(
    peer: interstice_net::transport::Peer,
    address: Option<SocketAddr>,
    to_world: ToWorld,
    served: publish::Served,
    shared: budget::Shared,
) {
    let fingerprint: Arc<str> = peer.fingerprint.as_str().into();
    // Decided by the key alone: a node reached by address and pinned on first use is no more
    // trusted for that.
    let stranger = shared.is_stranger(&fingerprint);
    let _counted = match shared.connect(&fingerprint, stranger) {
        Ok(counted) => counted,
        Err(why) => {
            warn!("peer {}: {why}; connection closed", peer.node_id);
            peer.connection().close(0u32.into(), why.as_bytes());
            return;
        }
    };
    info!(
        "peer {} connected ({}{})",
        peer.node_id,
        peer.fingerprint,
        if stranger { ", a stranger" } else { "" }
    );
    let _ = to_world.send(FromNetwork::Connected {
        node_id: peer.node_id.clone(),
        fingerprint: peer.fingerprint.clone(),
        address,
    });
    let pinger = ping(peer.clone(), to_world.clone());
    let mut connection = Connection::new(peer, fingerprint, stranger, to_world, served, shared);
    connection.serve().await;
    pinger.abort();
    connection.close();
}

/// Pings the peer every [`PING_EVERY`], reporting each round-trip time, until it is gone.
fn ping(peer: interstice_net::transport::Peer, to_world: ToWorld) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(rtt) = peer.ping().await {
            let _ = to_world.send(FromNetwork::Rtt {
                node_id: peer.node_id.clone(),
                rtt,
            });
            tokio::time::sleep(PING_EVERY).await;
        }
    })
}

/// Requests of one connection waiting for the world, by token.
type Waiting = Arc<Mutex<HashMap<u64, Responder>>>;

/// What serving one connection keeps.
struct Connection {
    peer: interstice_net::transport::Peer,
    fingerprint: Arc<str>,
    stranger: bool,
    to_world: ToWorld,
    served: publish::Served,
    shared: budget::Shared,
    /// Open subscriptions.
    streams: tokio::task::JoinSet<()>,
    waiting: Waiting,
    /// Where the world sends its answers (with the request's token).
    answers: mpsc::UnboundedSender<(u64, Message)>,
    /// Signalled whenever a waiting request is answered: room in the peer's queue.
    room: Arc<tokio::sync::Notify>,
    /// The task that sends the world's answers on their streams.
    answerer: tokio::task::JoinHandle<()>,
    next_token: u64,
    rate: budget::RateLimit,
    /// Uploads in progress on this connection.
    uploads: Arc<AtomicUsize>,
}

impl Connection {
    fn new(
        peer: interstice_net::transport::Peer,
        fingerprint: Arc<str>,
        stranger: bool,
        to_world: ToWorld,
        served: publish::Served,
        shared: budget::Shared,
    ) -> Connection {
        let waiting: Waiting = Arc::default();
        let (answers, mut answered) = mpsc::unbounded_channel::<(u64, Message)>();
        let room = Arc::new(tokio::sync::Notify::new());
        let answerer = {
            let (waiting, room) = (waiting.clone(), room.clone());
            tokio::spawn(async move {
                while let Some((token, answer)) = answered.recv().await {
                    let responder = waiting.lock().ok().and_then(|mut w| w.remove(&token));
                    room.notify_one();
                    if let Some(responder) = responder {
                        let _ = responder.respond(&answer).await;
                    }
                }
            })
        };
        let rate = budget::RateLimit::new(&shared.budget);
        Connection {
            peer,
            fingerprint,
            stranger,
            to_world,
            served,
            shared,
            streams: tokio::task::JoinSet::new(),
            waiting,
            answers,
            room,
            answerer,
            next_token: 0,
            rate,
            uploads: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Requests waiting for the world.
    fn queued(&self) -> usize {
        self.waiting.lock().map_or(0, |w| w.len())
    }

    /// Reads and answers requests until the peer goes, breaks the protocol or the world does.
    async fn serve(&mut self) {
        loop {
            // Backpressure first: while the peer's queue is full, its next streams stay
            // unread (QUIC flow control holds the peer) for up to `QUEUE_WAIT`; only a queue
            // that stays full gets `Busy` answers. Answering every stream of a flood at once
            // would spend the network thread on refusals.
            if self.queued() >= self.shared.budget.queued_requests {
                let _ = tokio::time::timeout(QUEUE_WAIT, async {
                    while self.queued() >= self.shared.budget.queued_requests {
                        self.room.notified().await;
                    }
                })
                .await;
            }
            let Some(request) = self.peer.next_request().await else {
                break;
            };
            let (message, responder) = match request {
                Ok(request) => request,
                Err(e) => {
                    warn!(
                        "peer {} broke the protocol and was disconnected: {e}",
                        self.peer.node_id
                    );
                    break;
                }
            };
            if !self.take(message, responder) {
                break;
            }
        }
    }

    /// Answers one request, or hands it to the world; `false` once the world is gone.
    fn take(&mut self, message: Message, responder: Responder) -> bool {
        // Over a budget: answered at once, unread by the world.
        if let Some(why) = self.over_budget(&message) {
            respond(responder, budget::busy(&message, why));
            return true;
        }
        match message {
            // Pings measure the network, not the frame: answered here.
            Message::Ping { nonce } => respond(responder, Message::Pong { nonce }),
            Message::Subscribe {
                subscription,
                module,
                table,
                from_seq,
            } => self.subscribe(responder, subscription, module, table, from_seq),
            Message::PublishChunk {
                upload,
                index,
                total,
                bytes,
                drop_data,
            } => self.upload(responder, upload, (index, total, bytes), drop_data),
            message => return self.hand_to_world(message, responder),
        }
        true
    }

    /// Why the peer's budgets refuse this request now, if they do.
    fn over_budget(&mut self, message: &Message) -> Option<String> {
        let budget = &self.shared.budget;
        if !self.rate.admit() {
            Some(format!(
                "more than {} requests a second",
                budget.requests_per_second
            ))
        } else if self.queued() >= budget.queued_requests
            && !matches!(message, Message::Ping { .. } | Message::PublishChunk { .. })
        {
            Some(format!(
                "{} requests already waiting",
                budget.queued_requests
            ))
        } else {
            None
        }
    }

    /// Serves a subscription from the published streams, within the connection's budget.
    fn subscribe(
        &mut self,
        responder: Responder,
        subscription: u64,
        module: String,
        table: String,
        from_seq: u64,
    ) {
        // Finished subscriptions leave the set here, so its size is what is open.
        while self.streams.try_join_next().is_some() {}
        let most = self.shared.budget.subscriptions_per_connection;
        if self.streams.len() >= most {
            let answer = Message::Subscribed {
                subscription,
                outcome: Err(interstice_net::RemoteError::Busy(format!(
                    "{most} subscriptions already open on this connection"
                ))),
            };
            respond(responder, answer);
            return;
        }
        self.streams.spawn(self.served.clone().serve(
            responder,
            subscription,
            module,
            table,
            from_seq,
        ));
    }

    /// Receives an upload whose first chunk is `first` (index, total, bytes) and hands it to
    /// the world to decide and install. Who may upload at all, and how many at once, is
    /// decided before anything is buffered.
    fn upload(
        &mut self,
        responder: Responder,
        upload: u64,
        first: (u32, u32, Vec<u8>),
        drop_data: bool,
    ) {
        use interstice_net::RemoteError;
        let budget = &self.shared.budget;
        let refusal = if self.stranger {
            Some(RemoteError::NotPermitted(
                "this node is open to strangers for public reducers, queries and \
                 subscriptions only: publishing needs a key it trusts"
                    .into(),
            ))
        } else if !self.shared.may_upload(&self.fingerprint) {
            Some(RemoteError::NotPermitted(
                "only this node's owner may publish modules".into(),
            ))
        } else if self.uploads.load(Ordering::Acquire) >= budget.uploads_per_connection {
            Some(RemoteError::Busy(format!(
                "{} upload(s) already in progress on this connection",
                budget.uploads_per_connection
            )))
        } else {
            None
        };
        if let Some(error) = refusal {
            let answer = Message::PublishResult {
                upload,
                outcome: Err(error),
            };
            respond(responder, answer);
            return;
        }
        self.uploads.fetch_add(1, Ordering::AcqRel);
        let (to_world, shared, uploads) = (
            self.to_world.clone(),
            self.shared.clone(),
            self.uploads.clone(),
        );
        let (peer, node_id) = (self.fingerprint.clone(), self.peer.node_id.clone());
        tokio::spawn(async move {
            let mut responder = responder;
            let (index, total, bytes) = first;
            let received = tokio::time::timeout(
                shared.budget.upload_timeout,
                receive_upload(&mut responder, &shared, upload, index, total, bytes),
            )
            .await
            .unwrap_or_else(|_| {
                Err(RemoteError::Failed(format!(
                    "upload {upload} took longer than {:?}",
                    shared.budget.upload_timeout
                )))
            });
            let answer = match received {
                Ok((wasm, _held)) => {
                    let (reply, answer) = oneshot::channel();
                    let sent = to_world.send(FromNetwork::Upload(Upload {
                        peer,
                        node_id,
                        upload,
                        wasm,
                        drop_data,
                        reply,
                    }));
                    match sent {
                        Ok(()) => answer.await.ok(),
                        Err(_) => None,
                    }
                }
                Err(e) => Some(Message::PublishResult {
                    upload,
                    outcome: Err(e),
                }),
            };
            if let Some(answer) = answer {
                let _ = responder.respond(&answer).await;
            }
            // In progress until the world decided and the peer has its answer.
            uploads.fetch_sub(1, Ordering::AcqRel);
        });
    }

    /// Queues a request for the world, whose answer comes back through `answers`; `false` if
    /// the world is gone.
    fn hand_to_world(&mut self, message: Message, responder: Responder) -> bool {
        let token = self.next_token;
        self.next_token += 1;
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(token, responder);
        }
        let inbound = Inbound {
            peer: self.fingerprint.clone(),
            stranger: self.stranger,
            node_id: self.peer.node_id.clone(),
            message,
            reply: Reply {
                token,
                answers: self.answers.clone(),
            },
        };
        self.to_world.send(FromNetwork::Request(inbound)).is_ok()
    }

    /// Stops what serves the connection and reports that the peer went.
    fn close(mut self) {
        self.answerer.abort();
        self.streams.abort_all();
        info!("peer {} disconnected", self.peer.node_id);
        let _ = self.to_world.send(FromNetwork::Disconnected {
            node_id: self.peer.node_id.clone(),
            fingerprint: self.fingerprint,
            stranger: self.stranger,
        });
    }
}

/// Sends an answer decided on the network thread, without holding up the next request.
fn respond(responder: Responder, answer: Message) {
    tokio::spawn(async move {
        let _ = responder.respond(&answer).await;
    });
}

/// Reads the rest of an upload whose first chunk arrived: every chunk of the same upload, in
/// order, on the same stream. Bounded by the protocol's chunk size and count, and by the
/// node's upload bytes in flight: each chunk is reserved there before it is kept (the
/// reservation is returned with the bytes, held until the upload is installed or refused).
async fn receive_upload(
    responder: &mut Responder,
    shared: &budget::Shared,
    upload: u64,
    index: u32,
    total: u32,
    bytes: Vec<u8>,
) -> Result<(Vec<u8>, Vec<budget::UploadBytes>), interstice_net::RemoteError> {
    use interstice_net::RemoteError;
    if index != 0 {
        return Err(RemoteError::Failed(format!(
            "upload {upload} must start with chunk 0, not {index}"
        )));
    }
    let over = || {
        RemoteError::Busy(format!(
            "more than {} bytes of uploads in progress on this node",
            shared.budget.upload_bytes_in_flight
        ))
    };
    let mut held = vec![shared.reserve_upload(bytes.len()).ok_or_else(over)?];
    let mut wasm = bytes;
    for expected in 1..total {
        match responder.next_message().await {
            Ok(Message::PublishChunk {
                upload: u,
                index: i,
                total: t,
                bytes,
                ..
            }) if u == upload && i == expected && t == total => {
                held.push(shared.reserve_upload(bytes.len()).ok_or_else(over)?);
                wasm.extend_from_slice(&bytes);
            }
            Ok(other) => {
                return Err(RemoteError::Failed(format!(
                    "expected chunk {expected} of upload {upload}, got {}",
                    describe(&other)
                )));
            }
            Err(e) => return Err(RemoteError::Failed(format!("upload {upload}: {e}"))),
        }
    }
    Ok((wasm, held))
}

/// A message, briefly, for an error about an upload.
fn describe(message: &Message) -> String {
    match message {
        Message::PublishChunk {
            upload,
            index,
            total,
            ..
        } => format!("chunk {index} of {total} of upload {upload}"),
        _ => "another message".into(),
    }
}
