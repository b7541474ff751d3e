//! The node on the network: serving peers, and reaching the nodes its modules depend on.
//!
//! The transport runs on its own thread (a tokio runtime); everything that touches modules or
//! tables crosses into the Bevy world through channels and is handled by ordinary systems, so a
//! frame never waits on the network.
//!
//! - `serve`: requests from peers — pings, schemas, queries, and reducer calls answered only
//!   after their commit is durable, de-duplicated per peer by request id;
//! - `publish`: subscriptions served straight from the node's published event streams,
//!   on the network thread;
//! - `links`: the peers this node keeps connections to (its `dial` list and the nodes its
//!   modules declare): redialed with backoff, subscriptions resumed from the last event seen,
//!   remote reducer calls resent until answered;
//! - `remote`: the world's side of links — which nodes and tables modules want, events
//!   delivered to subscriber reducers, and the remote calls committed transactions made.

mod budget;
mod links;
mod publish;
mod remote;
pub mod rows;
mod serve;

use bevy::prelude::*;
use interstice_net::message::Message;
use interstice_net::transport::{Admission, NodeIdentity, PeerEndpoint, TrustedPeers};
use links::{Link, LinkCommand};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

pub use budget::PeerBudget;
pub use interstice_net::transport::{Invite, KnownHosts, PinError};
pub use remote::RemoteCallOutcome;

/// Where and as whom a node listens for peers.
#[derive(Clone)]
pub struct NetworkConfig {
    /// The UDP address to listen on (port 0 picks one).
    pub listen: SocketAddr,
    /// This node's key and certificate; its node id is derived from them.
    pub identity: Arc<NodeIdentity>,
    /// Fingerprints of the peers allowed in (and out).
    pub trusted: TrustedPeers,
    /// Peers to stay connected to: dialed in the background, again with backoff after a
    /// failure or a disconnect. Nodes that loaded modules depend on are dialed too.
    pub dial: Vec<SocketAddr>,
    /// Where the nodes modules name really are, by name, overriding the address in their
    /// bindings (`src/bindings/node_<name>.toml`): the same module can then reach a test,
    /// staging or production node.
    pub nodes: std::collections::BTreeMap<String, SocketAddr>,
    /// Fingerprints allowed to publish and remove modules (the node's owner, usually the
    /// CLI's identity). Anyone else needs the consent of the module holding the Module
    /// authority, if one is loaded; otherwise admin actions are refused.
    pub admins: TrustedPeers,
    /// What one peer may ask of the node at once, and how fast.
    pub budget: PeerBudget,
    /// An open node: peers whose key it has never seen (strangers) may connect too. A stranger
    /// is known by its key alone and may only call public reducers, run public queries and
    /// subscribe to public tables — never publish, upgrade or remove a module, never reach a
    /// private one (see `docs/security.md`). Off by default; a game host turns it on.
    pub open: bool,
    /// Trust on first use for the nodes this node dials: when set, a node reached by address
    /// need not be in `trusted`; the key it presents the first time is pinned to its address
    /// here (and saved, when the pins have a file), and a later connection presenting another
    /// key is refused ([`LinkState::Refused`]). An [`interstice_net::transport::Invite`]
    /// pins the key before the first connection ([`KnownHosts::pin`]).
    ///
    /// [`KnownHosts::pin`]: interstice_net::transport::KnownHosts::pin
    pub known_hosts: Option<KnownHosts>,
}

impl NetworkConfig {
    /// Listens on `listen` as `identity`, trusting nobody yet, dialing nobody.
    pub fn new(listen: SocketAddr, identity: Arc<NodeIdentity>) -> NetworkConfig {
        NetworkConfig {
            listen,
            identity,
            trusted: TrustedPeers::default(),
            dial: Vec::new(),
            nodes: Default::default(),
            admins: TrustedPeers::default(),
            budget: PeerBudget::default(),
            open: false,
            known_hosts: None,
        }
    }

    /// This node's id, as peers see it.
    pub fn node_id(&self) -> String {
        self.identity.node_id()
    }
}

impl std::fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkConfig")
            .field("listen", &self.listen)
            .field("node_id", &self.node_id())
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
    /// This node's id.
    pub node_id: String,
}

/// Where the world sends the answer to one request: the connection's answer queue, with the
/// token of the request's stream. One queue per connection, drained by one task, so a frame that
/// answers many requests wakes the network thread once rather than once per request.
struct Reply {
    token: u64,
    answers: mpsc::UnboundedSender<(u64, Message)>,
}

impl Reply {
    /// Sends the answer; `Err` once the connection is gone.
    fn send(self, answer: Message) -> Result<(), ()> {
        self.answers.send((self.token, answer)).map_err(drop)
    }
}

/// A request from a peer, waiting for the world to answer it.
struct Inbound {
    /// The peer's certificate fingerprint.
    peer: Arc<str>,
    /// Whether the peer is a stranger (neither trusted nor an admin: in only because the node
    /// is open).
    stranger: bool,
    /// Its node id.
    node_id: String,
    message: Message,
    reply: Reply,
}

/// A complete module upload from a peer, waiting for the world to install it.
struct Upload {
    peer: Arc<str>,
    node_id: String,
    upload: u64,
    wasm: Vec<u8>,
    drop_data: bool,
    reply: oneshot::Sender<Message>,
}

/// What the network thread tells the world.
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
        fingerprint: Arc<str>,
        /// Whether it was a stranger: what the world kept for it goes with it.
        stranger: bool,
    },
    Rtt {
        node_id: String,
        rtt: Duration,
    },
    /// Events of a table on another node, in order, each once.
    RemoteEvents {
        address: SocketAddr,
        module: String,
        table: String,
        /// The number of the first event.
        first_seq: u64,
        events: Vec<(interstice_abi::TableEvent, Vec<u8>)>,
    },
    /// The answer to a reducer call a module sent to another node.
    CallAnswered(RemoteCallOutcome),
    /// A module upload, every chunk received.
    Upload(Upload),
    /// A dialed node's link changed state.
    Link {
        address: SocketAddr,
        state: LinkState,
    },
}

/// Where the link to a node this node dials stands — what a player waiting to join sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Dialing; never connected yet. `last_error` says why the previous attempt failed.
    Connecting {
        /// Attempts so far, this one included.
        attempt: u32,
        /// Why the previous attempt failed, if one did.
        last_error: Option<String>,
    },
    /// Connected to the node with this id.
    Connected {
        /// Its node id.
        node_id: String,
        /// Its key's fingerprint.
        fingerprint: String,
    },
    /// The node refused this one (it does not accept our key) or this one refused it (its
    /// key is not the one trusted or pinned for the address). Dialing goes on, more slowly: a
    /// refusal may be lifted (`node add` on the other side).
    Refused {
        /// Why, in words.
        why: String,
        /// Attempts since the last connection.
        attempt: u32,
    },
    /// It was connected and the connection ended; redialing.
    Lost {
        /// Why the connection ended, or the last attempt failed.
        why: String,
        /// Attempts since it was lost.
        attempt: u32,
    },
}

impl std::fmt::Display for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkState::Connecting {
                attempt,
                last_error: None,
            } => write!(f, "connecting (attempt {attempt})"),
            LinkState::Connecting {
                attempt,
                last_error: Some(e),
            } => write!(f, "connecting (attempt {attempt}; last: {e})"),
            LinkState::Connected { node_id, .. } => write!(f, "connected to {node_id}"),
            LinkState::Refused { why, .. } => write!(f, "refused: {why}"),
            LinkState::Lost { why, attempt } => {
                write!(f, "lost ({why}); reconnecting (attempt {attempt})")
            }
        }
    }
}

/// A dialed node's link, as [`PeerHealth::dialed`] keeps it.
#[derive(Debug, Clone)]
pub struct DialedNode {
    /// Where the link stands.
    pub state: LinkState,
    /// Since when.
    pub since: Instant,
    /// The latest round-trip time while connected.
    pub rtt: Option<Duration>,
}

/// What this node knows of each peer, by node id, and of each node it dials, by address.
#[derive(Resource, Debug, Clone, Default)]
pub struct PeerHealth {
    /// Every peer seen since start.
    pub peers: std::collections::BTreeMap<String, PeerState>,
    /// The nodes this node dials (its `dial` list and the nodes its modules use), by address.
    pub dialed: std::collections::BTreeMap<SocketAddr, DialedNode>,
}

impl PeerHealth {
    /// The link to the node dialed at `address`, if it is dialed.
    pub fn link(&self, address: SocketAddr) -> Option<&DialedNode> {
        self.dialed.get(&address)
    }
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

/// How long a peer whose queue of requests is full waits for room before its next request is
/// read (and answered `Busy` if there is still none).
const QUEUE_WAIT: Duration = Duration::from_millis(100);

/// How often connected peers are pinged for their round-trip time.
const PING_EVERY: Duration = Duration::from_millis(500);

#[derive(Resource)]
struct NetworkInbox(Mutex<Receiver<FromNetwork>>);

/// Requests taken from the inbox but not answered yet, in arrival order: a frame handles at
/// most [`PeerBudget::requests_per_frame`] of them.
#[derive(Resource, Default)]
struct Backlog {
    requests: std::collections::VecDeque<FromNetwork>,
    per_frame: usize,
    fair_share: usize,
}

impl Backlog {
    /// This frame's share of the backlog, in arrival order: at most `per_frame` requests, and
    /// while several peers have requests waiting, at most `fair_share` of each. Everything
    /// else (connections, events, answers to our own calls) is always taken — except a peer's
    /// departure, which waits behind its requests still waiting (its `disconnect` event must
    /// not run before a `join` it sent).
    fn take_frame(&mut self) -> Vec<FromNetwork> {
        let peers: std::collections::BTreeSet<&str> = self
            .requests
            .iter()
            .filter_map(|item| match item {
                FromNetwork::Request(inbound) => Some(&*inbound.peer),
                _ => None,
            })
            .collect();
        let share = if peers.len() > 1 {
            self.fair_share.max(1)
        } else {
            usize::MAX
        };
        let mut taken: HashMap<Arc<str>, usize> = HashMap::new();
        let mut deferred: std::collections::HashSet<Arc<str>> = Default::default();
        let (mut batch, mut rest) = (Vec::new(), std::collections::VecDeque::new());
        let mut requests = 0;
        for item in self.requests.drain(..) {
            let take = match &item {
                FromNetwork::Request(inbound) => {
                    let count = taken.entry(inbound.peer.clone()).or_default();
                    let fits = requests < self.per_frame && *count < share;
                    if fits {
                        *count += 1;
                        requests += 1;
                    } else {
                        deferred.insert(inbound.peer.clone());
                    }
                    fits
                }
                FromNetwork::Disconnected { fingerprint, .. } => !deferred.contains(fingerprint),
                _ => true,
            };
            if take {
                batch.push(item);
            } else {
                rest.push_back(item);
            }
        }
        self.requests = rest;
        batch
    }
}

/// Whether a module holds the Module authority, as the network thread needs to know it.
#[derive(Resource, Clone)]
struct GatekeeperFlag(Arc<std::sync::atomic::AtomicBool>);

/// Wakes a waiting frame loop when the network has something for the world.
#[derive(Default)]
pub struct Wake {
    pending: Mutex<bool>,
    signal: std::sync::Condvar,
}

impl Wake {
    /// Marks work as pending and wakes a waiter.
    pub fn notify(&self) {
        if let Ok(mut pending) = self.pending.lock()
            && !*pending
        {
            // Once per wait: a burst of requests costs one wake-up.
            *pending = true;
            self.signal.notify_one();
        }
    }

    /// Waits until work is pending or `timeout` passes, and clears the mark.
    pub fn wait(&self, timeout: Duration) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        let deadline = Instant::now() + timeout;
        while !*pending {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match self.signal.wait_timeout(pending, deadline - now) {
                Ok((guard, _)) => pending = guard,
                Err(_) => return,
            }
        }
        *pending = false;
    }
}

/// The node's [`Wake`]: a frame loop waiting on it runs as soon as a peer's request arrives
/// (see [`run_node`](crate::run_node)).
#[derive(Resource, Clone)]
pub struct NodeWake(pub Arc<Wake>);

/// The world stopped listening (the app was dropped).
#[derive(Debug)]
struct WorldGone;

/// The network thread's way into the world: a channel, and a wake-up for the frame loop.
#[derive(Clone)]
struct ToWorld {
    tx: std::sync::mpsc::Sender<FromNetwork>,
    wake: Arc<Wake>,
}

impl ToWorld {
    /// Hands `item` to the world; `Err` once the world is gone (the app stopped).
    fn send(&self, item: FromNetwork) -> Result<(), WorldGone> {
        self.tx.send(item).map_err(|_| WorldGone)?;
        self.wake.notify();
        Ok(())
    }
}

/// Commands to the network thread.
#[derive(Resource, Clone)]
struct NetworkOutbox(mpsc::UnboundedSender<LinkCommand>);

pub(crate) fn add(app: &mut App, config: NetworkConfig) {
    let (tx, inbox) = channel();
    let wake = Arc::new(Wake::default());
    let to_world = ToWorld {
        tx,
        wake: wake.clone(),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (commands, command_rx) = mpsc::unbounded_channel();
    let publications = app
        .world()
        .get_resource::<interstice_core::Database>()
        .map(|db| db.publications.clone())
        .unwrap_or_default();
    let node_id = config.node_id();
    let config_nodes = config.nodes.clone();
    let admins = config.admins.clone();
    let shared = budget::Shared::new(config.budget, config.admins.clone(), config.trusted.clone());
    let gatekeeper = GatekeeperFlag(shared.gatekeeper.clone());
    let per_frame = config.budget.requests_per_frame.max(1);
    let fair_share = config.budget.fair_share_per_frame;
    std::thread::Builder::new()
        .name("interstice-net".into())
        .spawn(move || run_network(config, to_world, stopped, command_rx, publications, shared))
        .map(drop)
        .unwrap_or_else(|e| error!("cannot start the network thread: {e}"));
    app.insert_resource(NetworkInbox(Mutex::new(inbox)))
        .insert_resource(Backlog {
            requests: Default::default(),
            per_frame,
            fair_share,
        })
        .insert_resource(gatekeeper)
        .insert_resource(NodeWake(wake))
        .insert_resource(serve::Admins(admins))
        .insert_resource(NetworkOutbox(commands))
        .insert_resource(NetworkControl { stop })
        .insert_resource(NetworkStatus {
            node_id,
            ..NetworkStatus::default()
        })
        .init_resource::<PeerHealth>()
        .init_resource::<serve::RemoteCalls>()
        .insert_resource(remote::WantedLinks::with_overrides(config_nodes))
        .add_message::<RemoteCallOutcome>()
        .add_systems(
            Update,
            (remote::want_links, serve::serve_requests)
                .chain()
                .in_set(interstice_core::IntersticeSystems::Ingest),
        )
        .add_systems(
            Update,
            (serve::answer_calls, remote::send_remote_calls)
                .in_set(interstice_core::IntersticeSystems::Publish),
        );
}

fn run_network(
    config: NetworkConfig,
    to_world: ToWorld,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    mut commands: mpsc::UnboundedReceiver<LinkCommand>,
    publications: interstice_core::PublicationLog,
    shared: budget::Shared,
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
        let admission = if config.open {
            Admission::AnyKey
        } else {
            Admission::Trusted
        };
        let endpoint = match PeerEndpoint::bind_with(
            config.listen,
            &config.identity,
            config.trusted.clone(),
            admission,
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
        let served = publish::Served::new(publications);
        let context = links::Context {
            endpoint: endpoint.clone(),
            to_world: to_world.clone(),
            stopped: stopped.clone(),
            served: served.clone(),
            budget: shared.clone(),
            known_hosts: config.known_hosts.clone(),
            trusted: config.trusted.clone(),
        };
        let mut links: HashMap<SocketAddr, Arc<Link>> = HashMap::new();
        let handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for address in config.dial.clone() {
            links
                .entry(address)
                .or_insert_with(|| Link::start(address, context.clone()));
        }
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    let address = command.address();
                    let link = links
                        .entry(address)
                        .or_insert_with(|| Link::start(address, context.clone()));
                    link.handle(command);
                }
                incoming = endpoint.incoming() => {
                    let Some(incoming) = incoming else { break };
                    let Some(counted) = InFlight::enter(&handshakes, shared.budget.handshakes)
                    else {
                        debug!(
                            "{} handshakes in progress: refused one from {}",
                            shared.budget.handshakes,
                            incoming.remote_address()
                        );
                        incoming.refuse();
                        continue;
                    };
                    // Each handshake in its own task: a slow or silent peer holds up nobody.
                    let (endpoint, to_world, served, shared) =
                        (endpoint.clone(), to_world.clone(), served.clone(), shared.clone());
                    tokio::spawn(async move {
                        let handshake = endpoint.handshake(incoming).await;
                        drop(counted);
                        match handshake {
                            Ok(peer) => serve_peer(peer, None, to_world, served, shared).await,
                            Err(e) => warn!("peer refused: {e}"),
                        }
                    });
                }
            }
        }
        endpoint.close_and_wait(Duration::from_secs(1)).await;
    });
}

/// One of a bounded number of things in progress, counted until dropped.
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    /// Counts one more, unless `limit` are in progress.
    fn enter(count: &Arc<std::sync::atomic::AtomicUsize>, limit: usize) -> Option<InFlight> {
        use std::sync::atomic::Ordering;
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
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Reports the peer, answers its requests (through the world, or for subscriptions from the
/// published streams), pings it, and reports when it goes. The peer's budgets
/// ([`PeerBudget`]) are kept here: a request over one is answered `Busy` unread.
async fn serve_peer(
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
    let mut streams = tokio::task::JoinSet::new();
    // Requests waiting for the world, by token, and the task that answers them.
    let waiting: Arc<Mutex<HashMap<u64, interstice_net::transport::Responder>>> = Arc::default();
    let (answers, mut answered) = mpsc::unbounded_channel::<(u64, Message)>();
    // Signalled whenever a waiting request is answered: room in the peer's queue.
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
    let mut next_token = 0u64;
    let mut rate = budget::RateLimit::new(&shared.budget);
    let uploads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let queued = |waiting: &Mutex<HashMap<u64, interstice_net::transport::Responder>>| {
        waiting.lock().map_or(0, |w| w.len())
    };
    loop {
        // Backpressure first: while the peer's queue is full, its next streams stay unread
        // (QUIC flow control holds the peer) for up to `QUEUE_WAIT`; only a queue that stays
        // full gets `Busy` answers. Answering every stream of a flood at once would spend the
        // network thread on refusals.
        if queued(&waiting) >= shared.budget.queued_requests {
            let _ = tokio::time::timeout(QUEUE_WAIT, async {
                while queued(&waiting) >= shared.budget.queued_requests {
                    room.notified().await;
                }
            })
            .await;
        }
        let Some(request) = peer.next_request().await else {
            break;
        };
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
        // Over a budget: answered at once, unread by the world.
        let queued = queued(&waiting);
        let refusal = if !rate.admit() {
            Some(format!(
                "more than {} requests a second",
                shared.budget.requests_per_second
            ))
        } else if queued >= shared.budget.queued_requests
            && !matches!(message, Message::Ping { .. } | Message::PublishChunk { .. })
        {
            Some(format!(
                "{} requests already waiting",
                shared.budget.queued_requests
            ))
        } else {
            None
        };
        if let Some(why) = refusal {
            let answer = budget::busy(&message, why);
            tokio::spawn(async move {
                let _ = responder.respond(&answer).await;
            });
            continue;
        }
        // Pings measure the network, not the frame: answered here.
        if let Message::Ping { nonce } = message {
            tokio::spawn(async move {
                let _ = responder.respond(&Message::Pong { nonce }).await;
            });
            continue;
        }
        if let Message::Subscribe {
            subscription,
            module,
            table,
            from_seq,
        } = message
        {
            // Finished subscriptions leave the set here, so its size is what is open.
            while streams.try_join_next().is_some() {}
            if streams.len() >= shared.budget.subscriptions_per_connection {
                let answer = Message::Subscribed {
                    subscription,
                    outcome: Err(interstice_net::RemoteError::Busy(format!(
                        "{} subscriptions already open on this connection",
                        shared.budget.subscriptions_per_connection
                    ))),
                };
                tokio::spawn(async move {
                    let _ = responder.respond(&answer).await;
                });
                continue;
            }
            streams.spawn(
                served
                    .clone()
                    .serve(responder, subscription, module, table, from_seq),
            );
            continue;
        }
        if let Message::PublishChunk {
            upload,
            index,
            total,
            bytes,
            drop_data,
        } = message
        {
            // Decided before anything is buffered: who may upload at all, and how many at once.
            let refusal = if stranger {
                Some(interstice_net::RemoteError::NotPermitted(
                    "this node is open to strangers for public reducers, queries and \
                     subscriptions only: publishing needs a key it trusts"
                        .into(),
                ))
            } else if !shared.may_upload(&fingerprint) {
                Some(interstice_net::RemoteError::NotPermitted(
                    "only this node's owner may publish modules".into(),
                ))
            } else if uploads.load(std::sync::atomic::Ordering::Acquire)
                >= shared.budget.uploads_per_connection
            {
                Some(interstice_net::RemoteError::Busy(format!(
                    "{} upload(s) already in progress on this connection",
                    shared.budget.uploads_per_connection
                )))
            } else {
                None
            };
            if let Some(error) = refusal {
                tokio::spawn(async move {
                    let answer = Message::PublishResult {
                        upload,
                        outcome: Err(error),
                    };
                    let _ = responder.respond(&answer).await;
                });
                continue;
            }
            uploads.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            let (to_world, peer, fingerprint, shared, uploads) = (
                to_world.clone(),
                peer.clone(),
                fingerprint.clone(),
                shared.clone(),
                uploads.clone(),
            );
            tokio::spawn(async move {
                let mut responder = responder;
                let received = tokio::time::timeout(
                    shared.budget.upload_timeout,
                    receive_upload(&mut responder, &shared, upload, index, total, bytes),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(interstice_net::RemoteError::Failed(format!(
                        "upload {upload} took longer than {:?}",
                        shared.budget.upload_timeout
                    )))
                });
                let answer = match received {
                    Ok((wasm, _held)) => {
                        let (reply, answer) = oneshot::channel();
                        let sent = to_world.send(FromNetwork::Upload(Upload {
                            peer: fingerprint,
                            node_id: peer.node_id.clone(),
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
                uploads.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            });
            continue;
        }
        let token = next_token;
        next_token += 1;
        if let Ok(mut waiting) = waiting.lock() {
            waiting.insert(token, responder);
        }
        let inbound = Inbound {
            peer: fingerprint.clone(),
            stranger,
            node_id: peer.node_id.clone(),
            message,
            reply: Reply {
                token,
                answers: answers.clone(),
            },
        };
        if to_world.send(FromNetwork::Request(inbound)).is_err() {
            break;
        }
    }
    answerer.abort();
    pinger.abort();
    streams.abort_all();
    info!("peer {} disconnected", peer.node_id);
    let _ = to_world.send(FromNetwork::Disconnected {
        node_id: peer.node_id.clone(),
        fingerprint,
        stranger,
    });
}

/// Reads the rest of an upload whose first chunk arrived: every chunk of the same upload, in
/// order, on the same stream. Bounded by the protocol's chunk size and count, and by the
/// node's upload bytes in flight: each chunk is reserved there before it is kept (the
/// reservation is returned with the bytes, held until the upload is installed or refused).
async fn receive_upload(
    responder: &mut interstice_net::transport::Responder,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, answers: &mpsc::UnboundedSender<(u64, Message)>) -> FromNetwork {
        FromNetwork::Request(Inbound {
            peer: peer.into(),
            stranger: true,
            node_id: peer.into(),
            message: Message::Ping { nonce: 0 },
            reply: Reply {
                token: 0,
                answers: answers.clone(),
            },
        })
    }

    fn describe(item: &FromNetwork) -> String {
        match item {
            FromNetwork::Request(inbound) => format!("request {}", inbound.peer),
            FromNetwork::Disconnected { node_id, .. } => format!("gone {node_id}"),
            _ => "other".into(),
        }
    }

    #[test]
    fn in_flight_counts_up_to_its_limit_and_frees_on_drop() {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let first = InFlight::enter(&count, 2).unwrap();
        let second = InFlight::enter(&count, 2).unwrap();
        assert!(InFlight::enter(&count, 2).is_none());
        drop(first);
        let third = InFlight::enter(&count, 2);
        assert!(third.is_some());
        drop((second, third));
        assert_eq!(count.load(std::sync::atomic::Ordering::Acquire), 0);
    }

    #[test]
    fn a_departure_waits_behind_the_peers_deferred_requests() {
        let (answers, _kept) = mpsc::unbounded_channel();
        let mut backlog = Backlog {
            requests: Default::default(),
            per_frame: 100,
            fair_share: 1,
        };
        backlog.requests.extend([
            request("a", &answers),
            request("a", &answers),
            request("b", &answers),
            FromNetwork::Disconnected {
                node_id: "a".into(),
                fingerprint: "a".into(),
                stranger: true,
            },
            FromNetwork::Disconnected {
                node_id: "b".into(),
                fingerprint: "b".into(),
                stranger: true,
            },
        ]);
        let frame = |backlog: &mut Backlog| -> Vec<String> {
            backlog.take_frame().iter().map(describe).collect()
        };
        assert_eq!(frame(&mut backlog), ["request a", "request b", "gone b"]);
        assert_eq!(frame(&mut backlog), ["request a", "gone a"]);
        assert!(backlog.requests.is_empty());
    }
}
