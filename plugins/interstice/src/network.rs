//! Serving peers: remote reducer calls, queries and schemas over the QUIC transport.
//!
//! The transport runs on its own thread (a tokio runtime); requests cross into the Bevy world
//! through a channel and are handled by ordinary systems, so a frame never waits on the
//! network. A remote reducer call is queued like any other and answered only after its
//! [`ReducerOutcome`](interstice_core::ReducerOutcome) — that is, after its commit is durable.
//! Request ids are de-duplicated per peer, so a call retried after a lost answer runs once.

use bevy::prelude::*;
use interstice_abi::Visibility;
use interstice_core::{Database, InvocationId, Modules, ReducerOutcome, ReducerQueue};
use interstice_net::message::{Message, RemoteError};
use interstice_net::requests::{Admission, ExactlyOnce};
use interstice_net::transport::{NodeIdentity, PeerEndpoint, TrustedPeers};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Where and as whom a node listens for peers.
#[derive(Clone)]
pub struct NetworkConfig {
    /// The UDP address to listen on (port 0 picks one).
    pub listen: SocketAddr,
    /// This node's id, told to peers in the handshake.
    pub node_id: String,
    /// This node's key and certificate.
    pub identity: Arc<NodeIdentity>,
    /// Fingerprints of the peers allowed in.
    pub trusted: TrustedPeers,
    /// Peers to stay connected to: dialed in the background, again with backoff after a
    /// failure or a disconnect.
    pub dial: Vec<SocketAddr>,
}

impl std::fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkConfig")
            .field("listen", &self.listen)
            .field("node_id", &self.node_id)
            .field("fingerprint", &self.identity.fingerprint())
            .finish()
    }
}

/// What the network thread reports about itself.
#[derive(Resource, Debug, Clone, Default)]
pub struct NetworkStatus {
    /// The bound address, once listening.
    pub local_addr: Option<SocketAddr>,
    /// Why the node is not listening, if it failed.
    pub error: Option<String>,
}

/// A request from a peer, waiting for the world to answer it.
struct Inbound {
    peer: String,
    message: Message,
    reply: oneshot::Sender<Message>,
}

enum FromNetwork {
    Listening(SocketAddr),
    Failed(String),
    Request(Inbound),
    Connected {
        node_id: String,
        fingerprint: String,
        address: Option<SocketAddr>,
    },
    Disconnected {
        node_id: String,
    },
    Rtt {
        node_id: String,
        rtt: Duration,
    },
}

/// What this node knows of each peer, by node id.
#[derive(Resource, Debug, Clone, Default)]
pub struct PeerHealth {
    /// Every peer seen since start.
    pub peers: std::collections::BTreeMap<String, PeerState>,
}

/// One peer's state.
#[derive(Debug, Clone)]
pub struct PeerState {
    /// Its certificate fingerprint.
    pub fingerprint: String,
    /// The address it was dialed at (`None` when it dialed us).
    pub address: Option<SocketAddr>,
    /// Open connections to it (usually 0 or 1).
    pub connections: u32,
    /// The latest measured round-trip time.
    pub rtt: Option<Duration>,
    /// When it was last heard from.
    pub last_seen: Instant,
}

impl PeerState {
    /// Whether at least one connection is open.
    pub fn connected(&self) -> bool {
        self.connections > 0
    }
}

/// Stops the network thread when dropped (or when asked), closing every connection.
#[derive(Resource)]
pub struct NetworkControl {
    stop: tokio::sync::watch::Sender<bool>,
}

impl NetworkControl {
    /// Closes the endpoint and every connection; the thread ends.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for NetworkControl {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How often connected peers are pinged for their round-trip time.
const PING_EVERY: Duration = Duration::from_millis(500);
/// Longest wait between two dial attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Resource)]
struct NetworkInbox(Mutex<Receiver<FromNetwork>>);

/// Remote reducer calls waiting for their outcome, and each peer's request ids.
#[derive(Resource, Default)]
struct RemoteCalls {
    waiting: HashMap<InvocationId, (String, u64, Vec<oneshot::Sender<Message>>)>,
    by_request: HashMap<(String, u64), InvocationId>,
    seen: HashMap<String, ExactlyOnce<Result<(), RemoteError>>>,
}

/// Requests remembered per peer for exactly-once execution.
const REQUEST_WINDOW: usize = 65_536;

pub(crate) fn add(app: &mut App, config: NetworkConfig) {
    let (to_world, inbox) = channel();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    std::thread::Builder::new()
        .name("interstice-net".into())
        .spawn(move || run_network(config, to_world, stopped))
        .map(drop)
        .unwrap_or_else(|e| error!("cannot start the network thread: {e}"));
    app.insert_resource(NetworkInbox(Mutex::new(inbox)))
        .insert_resource(NetworkControl { stop })
        .init_resource::<PeerHealth>()
        .init_resource::<NetworkStatus>()
        .init_resource::<RemoteCalls>()
        .add_systems(
            Update,
            serve_requests.in_set(interstice_core::IntersticeSystems::Ingest),
        )
        .add_systems(
            Update,
            answer_calls.in_set(interstice_core::IntersticeSystems::Publish),
        );
}

fn run_network(
    config: NetworkConfig,
    to_world: Sender<FromNetwork>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    // One thread serves every peer: the work is in the world, not here.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = to_world.send(FromNetwork::Failed(format!("tokio runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let endpoint = match PeerEndpoint::bind(
            config.listen,
            &config.identity,
            config.node_id.clone(),
            config.trusted.clone(),
        ) {
            Ok(endpoint) => Arc::new(endpoint),
            Err(e) => {
                let _ = to_world.send(FromNetwork::Failed(e.to_string()));
                return;
            }
        };
        match endpoint.local_addr() {
            Ok(addr) => {
                let _ = to_world.send(FromNetwork::Listening(addr));
            }
            Err(e) => {
                let _ = to_world.send(FromNetwork::Failed(e.to_string()));
                return;
            }
        }
        for address in config.dial.clone() {
            tokio::spawn(keep_dialing(
                endpoint.clone(),
                address,
                to_world.clone(),
                stopped.clone(),
            ));
        }
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                accepted = endpoint.accept() => {
                    let Some(accepted) = accepted else { break };
                    match accepted {
                        Ok(peer) => {
                            tokio::spawn(serve_peer(peer, None, to_world.clone()));
                        }
                        Err(e) => warn!("peer refused: {e}"),
                    }
                }
            }
        }
        endpoint.close_and_wait(Duration::from_secs(1)).await;
    });
}

/// Keeps a connection to `address` open: dials, serves it until it closes, waits (doubling up
/// to [`MAX_BACKOFF`]) and dials again, until the node stops.
async fn keep_dialing(
    endpoint: Arc<PeerEndpoint>,
    address: SocketAddr,
    to_world: Sender<FromNetwork>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match endpoint.connect(address).await {
            Ok(peer) => {
                backoff = Duration::from_millis(50);
                serve_peer(peer, Some(address), to_world.clone()).await;
            }
            Err(e) => debug!("dialing {address}: {e}"),
        }
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Reports the peer, forwards its requests to the world, pings it, and reports when it goes.
async fn serve_peer(
    peer: interstice_net::transport::Peer,
    address: Option<SocketAddr>,
    to_world: Sender<FromNetwork>,
) {
    info!("peer {} connected ({})", peer.node_id, peer.fingerprint);
    let _ = to_world.send(FromNetwork::Connected {
        node_id: peer.node_id.clone(),
        fingerprint: peer.fingerprint.clone(),
        address,
    });
    let pinger = {
        let (peer, to_world) = (peer.clone(), to_world.clone());
        tokio::spawn(async move {
            loop {
                match peer.ping().await {
                    Ok(rtt) => {
                        let _ = to_world.send(FromNetwork::Rtt {
                            node_id: peer.node_id.clone(),
                            rtt,
                        });
                    }
                    Err(_) => break,
                }
                tokio::time::sleep(PING_EVERY).await;
            }
        })
    };
    while let Some(request) = peer.next_request().await {
        let (message, responder) = match request {
            Ok(request) => request,
            Err(e) => {
                warn!(
                    "peer {} broke the protocol and was disconnected: {e}",
                    peer.node_id
                );
                break;
            }
        };
        let (reply, answer) = oneshot::channel();
        let inbound = Inbound {
            peer: peer.fingerprint.clone(),
            message,
            reply,
        };
        if to_world.send(FromNetwork::Request(inbound)).is_err() {
            break;
        }
        tokio::spawn(async move {
            if let Ok(answer) = answer.await {
                let _ = responder.respond(&answer).await;
            }
        });
    }
    pinger.abort();
    info!("peer {} disconnected", peer.node_id);
    let _ = to_world.send(FromNetwork::Disconnected {
        node_id: peer.node_id.clone(),
    });
}

fn not_found(what: String) -> RemoteError {
    RemoteError::NotFound(what)
}

/// Public modules only: a private module looks exactly like a missing one from outside.
fn public_module(modules: &Modules, name: &str) -> Result<(), RemoteError> {
    match modules.schema(name) {
        Some(schema) if schema.visibility == Visibility::Public => Ok(()),
        _ => Err(not_found(format!("module `{name}`"))),
    }
}

#[allow(clippy::too_many_arguments)]
fn serve_requests(
    inbox: Res<NetworkInbox>,
    mut status: ResMut<NetworkStatus>,
    mut health: ResMut<PeerHealth>,
    mut modules: ResMut<Modules>,
    mut db: ResMut<Database>,
    mut queue: ResMut<ReducerQueue>,
    mut calls: ResMut<RemoteCalls>,
) {
    let Ok(inbox) = inbox.0.lock() else {
        return;
    };
    while let Ok(item) = inbox.try_recv() {
        let Inbound {
            peer,
            message,
            reply,
        } = match item {
            FromNetwork::Listening(addr) => {
                info!("listening for peers on {addr}");
                status.local_addr = Some(addr);
                continue;
            }
            FromNetwork::Failed(e) => {
                error!("network: {e}");
                status.error = Some(e);
                continue;
            }
            FromNetwork::Request(inbound) => inbound,
            FromNetwork::Connected {
                node_id,
                fingerprint,
                address,
            } => {
                let state = health
                    .peers
                    .entry(node_id.clone())
                    .or_insert_with(|| PeerState {
                        fingerprint: fingerprint.clone(),
                        address,
                        connections: 0,
                        rtt: None,
                        last_seen: Instant::now(),
                    });
                state.fingerprint = fingerprint;
                state.address = address.or(state.address);
                state.last_seen = Instant::now();
                state.connections += 1;
                if state.connections == 1 {
                    queue.push_peer_event(&modules, true, &node_id);
                }
                continue;
            }
            FromNetwork::Disconnected { node_id } => {
                if let Some(state) = health.peers.get_mut(&node_id) {
                    state.connections = state.connections.saturating_sub(1);
                    if state.connections == 0 {
                        queue.push_peer_event(&modules, false, &node_id);
                    }
                }
                continue;
            }
            FromNetwork::Rtt { node_id, rtt } => {
                if let Some(state) = health.peers.get_mut(&node_id) {
                    state.rtt = Some(rtt);
                    state.last_seen = Instant::now();
                }
                continue;
            }
        };
        let answer = match message {
            Message::Ping { nonce } => Message::Pong { nonce },
            Message::SchemaRequest { request } => Message::Schema {
                request,
                modules: modules.schemas().filter_map(|s| s.to_public()).collect(),
            },
            Message::Query {
                request,
                module,
                query,
                args,
            } => Message::QueryResult {
                request,
                outcome: public_module(&modules, &module).and_then(|()| {
                    let handle = modules
                        .query(&module, &query)
                        .map_err(|_| not_found(format!("query `{module}.{query}`")))?;
                    modules
                        .check_query_args(handle, &args)
                        .map_err(|e| RemoteError::Failed(e.to_string()))?;
                    modules
                        .call_query(&mut db, handle, &args)
                        .map_err(|e| RemoteError::Failed(e.to_string()))
                }),
            },
            Message::CallReducer {
                request,
                module,
                reducer,
                args,
            } => {
                let seen = calls
                    .seen
                    .entry(peer.clone())
                    .or_insert_with(|| ExactlyOnce::new(REQUEST_WINDOW));
                match seen.admit(request) {
                    Admission::Repeat(outcome) => Message::CallResult { request, outcome },
                    Admission::TooOld => Message::CallResult {
                        request,
                        outcome: Err(RemoteError::NotPermitted(format!(
                            "request {request} is too old to be answered again"
                        ))),
                    },
                    Admission::InFlight => {
                        // Answered together with the first copy.
                        if let Some(id) = calls.by_request.get(&(peer.clone(), request)).copied()
                            && let Some(waiting) = calls.waiting.get_mut(&id)
                        {
                            waiting.2.push(reply);
                        }
                        continue;
                    }
                    Admission::Run => {
                        let checked = public_module(&modules, &module).and_then(|()| {
                            let handle =
                                modules.reducer(&module, &reducer).map_err(|e| match e {
                                    interstice_core::CallError::SubscriberOnly(_) => {
                                        RemoteError::NotPermitted(e.to_string())
                                    }
                                    _ => not_found(format!("reducer `{module}.{reducer}`")),
                                })?;
                            modules
                                .check_reducer_args(handle, &args)
                                .map_err(|e| RemoteError::Failed(e.to_string()))
                        });
                        match checked {
                            Ok(()) => {
                                let id = queue.push(module, reducer, args);
                                calls.by_request.insert((peer.clone(), request), id);
                                calls.waiting.insert(id, (peer, request, vec![reply]));
                                continue;
                            }
                            Err(e) => {
                                let outcome = Err(e);
                                if let Some(seen) = calls.seen.get_mut(&peer) {
                                    seen.complete(request, outcome.clone());
                                }
                                Message::CallResult { request, outcome }
                            }
                        }
                    }
                }
            }
            other => Message::Refuse {
                reason: format!("this node does not serve {other:?} yet"),
            },
        };
        let _ = reply.send(answer);
    }
}

/// Answers remote reducer calls once their outcome (written after the durable commit) arrives.
fn answer_calls(mut outcomes: MessageReader<ReducerOutcome>, mut calls: ResMut<RemoteCalls>) {
    for outcome in outcomes.read() {
        let Some((peer, request, replies)) = calls.waiting.remove(&outcome.id) else {
            continue;
        };
        calls.by_request.remove(&(peer.clone(), request));
        let result = outcome
            .result
            .clone()
            .map_err(|e| RemoteError::Failed(e.to_string()));
        if let Some(seen) = calls.seen.get_mut(&peer) {
            seen.complete(request, result.clone());
        }
        for reply in replies {
            let _ = reply.send(Message::CallResult {
                request,
                outcome: result.clone(),
            });
        }
    }
}
