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

mod admin;
mod budget;
pub mod history;
mod links;
mod peer;
mod publish;
mod remote;
pub mod rows;
mod serve;

use bevy::prelude::*;
use interstice_net::message::Message;
use interstice_net::transport::{Admission, NodeIdentity, PeerEndpoint, TrustedPeers};
use links::{Link, LinkCommand};
use peer::{InFlight, serve_peer};
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
        .insert_resource(admin::Admins(admins))
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
