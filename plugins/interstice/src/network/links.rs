//! Links: the peers this node keeps a connection to, on the network thread.
//!
//! A link dials its address, serves the connection like any peer's, and on top of it keeps the
//! subscriptions and remote calls the node's modules asked for:
//!
//! - each subscription is a stream opened with `Subscribe { from_seq }` where `from_seq` comes
//!   from the link's [`Cursor`] for that table, so after a disconnect (or a restart of the
//!   other node) it resumes from the first event not yet delivered — none lost, none twice;
//! - each remote call has the request id it was given in the caller's durable outbox
//!   ([`interstice_core::outbox`]), is kept in the link's [`Outstanding`] and is sent again on
//!   every new connection until it is answered; the other node runs an id at most once.
//!
//! When the connection drops, the link waits (50 ms doubling up to [`MAX_BACKOFF`]) and dials
//! again, until the node stops.

use super::peer::serve_peer;
use super::{FromNetwork, LinkState, RemoteCallOutcome, ToWorld, publish::Served};
use bevy::log::{debug, info, warn};
use interstice_net::message::Message;
use interstice_net::requests::Outstanding;
use interstice_net::subscription::{Cursor, Delivery};
use interstice_net::transport::{Dial, KnownHosts, Peer, PeerEndpoint, PinOutcome, TransportError};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// Longest wait between two dial attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A reducer call a module sent to another node.
#[derive(Debug, Clone)]
pub(super) struct OutgoingCall {
    /// Its request id, from the caller's durable outbox ([`interstice_core::outbox`]).
    pub request: u64,
    pub from: String,
    pub node: String,
    pub module: String,
    pub reducer: String,
    pub args: Vec<u8>,
}

/// What the world asks of the network thread.
pub(super) enum LinkCommand {
    /// Keep a connection to this address (for `connect` events and its requests).
    Keep { address: SocketAddr },
    /// Keep a subscription to a table of the node at this address.
    Subscribe {
        address: SocketAddr,
        module: String,
        table: String,
        /// The first event wanted (the subscribers' durable positions).
        from_seq: u64,
    },
    /// Deliver a reducer call to the node at this address, exactly once.
    Call {
        address: SocketAddr,
        call: OutgoingCall,
    },
}

impl LinkCommand {
    pub(super) fn address(&self) -> SocketAddr {
        match self {
            LinkCommand::Keep { address }
            | LinkCommand::Subscribe { address, .. }
            | LinkCommand::Call { address, .. } => *address,
        }
    }
}

/// Why one dial failed, and whether it was a refusal (by either side) rather than silence.
struct DialFailure {
    why: String,
    refused: bool,
}

impl From<TransportError> for DialFailure {
    fn from(e: TransportError) -> DialFailure {
        let refused = matches!(e, TransportError::Refused(_));
        let why = match e {
            TransportError::Refused(why) => why,
            TransportError::Unreachable(_) => "no answer".into(),
            other => other.to_string(),
        };
        // Our own verifier turning the node's key down reads as a handshake failure.
        let refused = refused || why.contains("not trusted");
        DialFailure { why, refused }
    }
}

/// What every link shares.
#[derive(Clone)]
pub(super) struct Context {
    pub endpoint: Arc<PeerEndpoint>,
    pub to_world: ToWorld,
    pub stopped: tokio::sync::watch::Receiver<bool>,
    pub served: Served,
    pub budget: super::budget::Shared,
    /// Keys pinned to addresses, when nodes are dialed with trust on first use.
    pub known_hosts: Option<KnownHosts>,
    /// The keys the node trusts (accepted at any address, pinned or not).
    pub trusted: interstice_net::transport::TrustedPeers,
}

struct Wanted {
    /// Wanted subscriptions and where each stands.
    cursors: BTreeMap<(String, String), Cursor>,
    /// Calls not answered yet.
    calls: Outstanding<OutgoingCall>,
}

/// One peer this node stays connected to.
pub(super) struct Link {
    address: SocketAddr,
    state: Mutex<Wanted>,
    changed: Notify,
}

impl Link {
    /// Starts keeping a connection to `address`.
    pub(super) fn start(address: SocketAddr, context: Context) -> Arc<Link> {
        let link = Arc::new(Link {
            address,
            state: Mutex::new(Wanted {
                cursors: BTreeMap::new(),
                calls: Outstanding::new(),
            }),
            changed: Notify::new(),
        });
        tokio::spawn(link.clone().run(context));
        link
    }

    fn lock(&self) -> MutexGuard<'_, Wanted> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a command from the world.
    pub(super) fn handle(&self, command: LinkCommand) {
        match command {
            LinkCommand::Keep { .. } => return,
            LinkCommand::Subscribe {
                module,
                table,
                from_seq,
                ..
            } => {
                self.lock()
                    .cursors
                    .entry((module, table))
                    .or_insert_with(|| Cursor::starting_at(from_seq.max(1)));
            }
            LinkCommand::Call { call, .. } => {
                self.lock().calls.insert(call.request, call);
            }
        }
        self.changed.notify_waiters();
    }

    async fn run(self: Arc<Link>, context: Context) {
        let mut stopped = context.stopped.clone();
        let mut backoff = Duration::from_millis(50);
        // Attempts since the last connection, and how the last one ended.
        let mut attempt = 1u32;
        let mut lost: Option<String> = None;
        let report = |state: LinkState| {
            let _ = context.to_world.send(FromNetwork::Link {
                address: self.address,
                state,
            });
        };
        report(LinkState::Connecting {
            attempt,
            last_error: None,
        });
        loop {
            match self.dial(&context).await {
                Ok(peer) => {
                    backoff = Duration::from_millis(50);
                    report(LinkState::Connected {
                        node_id: peer.node_id.clone(),
                        fingerprint: peer.fingerprint.clone(),
                    });
                    let connection = peer.connection().clone();
                    self.clone().connected(peer, &context).await;
                    let why = connection
                        .close_reason()
                        .map_or_else(|| "connection closed".into(), |r| r.to_string());
                    attempt = 1;
                    report(LinkState::Lost {
                        why: why.clone(),
                        attempt,
                    });
                    lost = Some(why);
                }
                Err(failure) => {
                    debug!("dialing {}: {}", self.address, failure.why);
                    attempt = attempt.saturating_add(1);
                    report(if failure.refused {
                        LinkState::Refused {
                            why: failure.why,
                            attempt,
                        }
                    } else if lost.is_some() {
                        LinkState::Lost {
                            why: failure.why,
                            attempt,
                        }
                    } else {
                        LinkState::Connecting {
                            attempt,
                            last_error: Some(failure.why),
                        }
                    });
                    if failure.refused {
                        // A refusal is not lifted in milliseconds.
                        backoff = backoff.max(MAX_BACKOFF / 5);
                    }
                }
            }
            tokio::select! {
                _ = stopped.changed() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One attempt: dials, and with trust on first use checks (or pins) the key presented.
    async fn dial(&self, context: &Context) -> Result<Peer, DialFailure> {
        let Some(known) = &context.known_hosts else {
            return context
                .endpoint
                .connect(self.address)
                .await
                .map_err(DialFailure::from);
        };
        let peer = context
            .endpoint
            .connect_with(self.address, Dial::AnyKey)
            .await
            .map_err(DialFailure::from)?;
        // A key the node trusts anyway needs no pin.
        if context.trusted.contains(&peer.fingerprint) {
            return Ok(peer);
        }
        match known.check(self.address, &peer.fingerprint) {
            Ok(PinOutcome::Known) => Ok(peer),
            Ok(PinOutcome::FirstUse) => {
                info!(
                    "the node at {} presents key {} (node {}): pinned for this address{}",
                    self.address,
                    peer.fingerprint,
                    peer.node_id,
                    known
                        .file()
                        .map(|f| format!(" in {}", f.display()))
                        .unwrap_or_default()
                );
                Ok(peer)
            }
            Err(e) => {
                peer.connection()
                    .close(0u32.into(), b"key not the one pinned");
                Err(DialFailure {
                    why: e.to_string(),
                    refused: true,
                })
            }
        }
    }

    /// Runs everything the link wants over one connection, until it closes.
    async fn connected(self: Arc<Link>, peer: Peer, context: &Context) {
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(serve_peer(
            peer.clone(),
            Some(self.address),
            context.to_world.clone(),
            context.served.clone(),
            context.budget.clone(),
        ));
        let mut subscribed = BTreeSet::new();
        let mut sent = BTreeSet::new();
        let (failed_tx, mut failed) = tokio::sync::mpsc::unbounded_channel();
        let mut subscription_id = 0u64;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (new_subscriptions, new_calls) = {
                let state = self.lock();
                let subs: Vec<(String, String)> = state
                    .cursors
                    .keys()
                    .filter(|k| !subscribed.contains(*k))
                    .cloned()
                    .collect();
                let calls: Vec<(u64, OutgoingCall)> = state
                    .calls
                    .to_resend()
                    .filter(|(id, _)| !sent.contains(id))
                    .map(|(id, c)| (id, c.clone()))
                    .collect();
                (subs, calls)
            };
            for key in new_subscriptions {
                subscribed.insert(key.clone());
                subscription_id += 1;
                tasks.spawn(self.clone().subscription(
                    peer.clone(),
                    subscription_id,
                    key,
                    context.to_world.clone(),
                ));
            }
            for (id, call) in new_calls {
                sent.insert(id);
                let (link, peer, to_world, failed) = (
                    self.clone(),
                    peer.clone(),
                    context.to_world.clone(),
                    failed_tx.clone(),
                );
                tasks.spawn(async move {
                    if !link.call(&peer, id, call, &to_world).await {
                        let _ = failed.send(id);
                    }
                });
            }
            tokio::select! {
                () = &mut changed => {}
                () = peer.closed() => break,
                Some(id) = failed.recv() => {
                    // Not answered on a live connection (a stream error): send it again soon.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    sent.remove(&id);
                }
            }
        }
        tasks.abort_all();
    }

    /// Sends one call and waits for its answer; `false` when it must be sent again.
    async fn call(&self, peer: &Peer, id: u64, call: OutgoingCall, to_world: &ToWorld) -> bool {
        let request = Message::CallReducer {
            request: id,
            module: call.module.clone(),
            reducer: call.reducer.clone(),
            args: call.args.clone(),
        };
        match peer.request(&request).await {
            Ok(Message::CallResult {
                outcome: Err(interstice_net::RemoteError::Busy(why)),
                ..
            }) => {
                // Not run: the node is over this link's budget. Sent again shortly.
                debug!("call {id} to {}: busy ({why})", self.address);
                false
            }
            Ok(Message::CallResult { request, outcome }) if request == id => {
                if self.lock().calls.answer(id).is_some() {
                    let _ = to_world.send(FromNetwork::CallAnswered(RemoteCallOutcome {
                        request: id,
                        from: call.from,
                        node: call.node,
                        module: call.module,
                        reducer: call.reducer,
                        outcome,
                    }));
                }
                true
            }
            Ok(other) => {
                warn!("expected the answer to call {id}, got {other:?}");
                false
            }
            Err(e) => {
                debug!("call {id} to {}: {e}", self.address);
                false
            }
        }
    }

    /// Keeps one subscription going over this connection, resuming from the cursor.
    async fn subscription(
        self: Arc<Link>,
        peer: Peer,
        id: u64,
        (module, table): (String, String),
        to_world: ToWorld,
    ) {
        let key = (module.clone(), table.clone());
        loop {
            let from_seq = self.lock().cursors.get(&key).map_or(1, Cursor::resume_from);
            let subscribe = Message::Subscribe {
                subscription: id,
                module: module.clone(),
                table: table.clone(),
                from_seq,
            };
            let mut stream = match peer.open_stream(&subscribe).await {
                Ok(stream) => stream,
                Err(_) if peer.connection().close_reason().is_some() => return,
                Err(e) => {
                    debug!("subscribing to {module}.{table}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            loop {
                match stream.next().await {
                    Ok(Message::Subscribed {
                        outcome: Ok(first), ..
                    }) => {
                        let mut state = self.lock();
                        let Some(cursor) = state.cursors.get_mut(&key) else {
                            return;
                        };
                        let wanted = cursor.resume_from();
                        if first != wanted {
                            warn!(
                                "{module}.{table} on {}: resuming at event {first}, not {wanted} \
                                 (the node no longer has them, or its numbering restarted)",
                                self.address
                            );
                        }
                        cursor.restart_at(first);
                    }
                    Ok(Message::Subscribed {
                        outcome: Err(e), ..
                    }) => {
                        warn!(
                            "cannot subscribe to {module}.{table} on {}: {e}",
                            self.address
                        );
                        // It may be published later: ask again in a while.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                    Ok(Message::Events {
                        first_seq, events, ..
                    }) => {
                        let delivery = self
                            .lock()
                            .cursors
                            .get_mut(&key)
                            .map(|c| c.accept_batch(first_seq, events.len() as u64));
                        match delivery {
                            Some((Delivery::Deliver, skip)) => {
                                let events: Vec<_> = events.into_iter().skip(skip).collect();
                                let _ = to_world.send(FromNetwork::RemoteEvents {
                                    address: self.address,
                                    module: module.clone(),
                                    table: table.clone(),
                                    first_seq: first_seq + skip as u64,
                                    events,
                                });
                            }
                            Some((Delivery::Duplicate, _)) => {}
                            Some((Delivery::Gap { .. }, _)) => break,
                            None => return,
                        }
                    }
                    Ok(other) => {
                        warn!(
                            "unexpected {other:?} on a subscription from {}",
                            self.address
                        );
                        break;
                    }
                    // The connection is gone: the next one resubscribes from the cursor.
                    Err(_) if peer.connection().close_reason().is_some() => return,
                    Err(e) => {
                        debug!("subscription to {module}.{table} broke: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break;
                    }
                }
            }
        }
    }
}
