//! Talking to a node as the CLI: one connection, pinned to the keys the CLI trusts.

use crate::home::{CliError, Home, resolve};
use crate::registry::NodeEntry;
use interstice_net::message::Message;
use interstice_net::transport::{NodeIdentity, Peer, PeerEndpoint, TrustedPeers};
use std::future::Future;
use std::time::Duration;

/// How long a node has to answer the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A runtime for one command's network work.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(format!("tokio runtime: {e}")))
}

/// Connects to `node` and runs `work` with the connection, on a runtime of its own.
pub fn with_node<T, F>(
    home: &Home,
    node: &NodeEntry,
    work: impl FnOnce(Peer) -> F,
) -> Result<T, CliError>
where
    F: Future<Output = Result<T, CliError>>,
{
    let runtime = runtime()?;
    runtime.block_on(async {
        let (endpoint, peer) = connect(home, node).await?;
        let result = work(peer).await;
        endpoint.close_and_wait(Duration::from_millis(200)).await;
        result
    })
}

/// A connection to a node kept open across requests (what `interstice dev` uses between
/// saves), opened again when the node went away.
pub struct Session {
    /// A runtime with a thread of its own, so the connection keeps answering the node's
    /// keep-alives between requests (a current-thread runtime would only run inside them, and
    /// the node would drop an idle connection).
    runtime: tokio::runtime::Runtime,
    open: Option<(PeerEndpoint, Peer)>,
    home: Home,
    node: NodeEntry,
}

impl Session {
    /// A session with `node`; it connects on first use.
    pub fn new(home: &Home, node: &NodeEntry) -> Result<Session, CliError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| CliError::Other(format!("tokio runtime: {e}")))?;
        Ok(Session {
            runtime,
            open: None,
            home: home.clone(),
            node: node.clone(),
        })
    }

    /// Runs `work` with the connection, connecting first if there is none or it has ended.
    /// When a kept connection fails under `work` (the node restarted, or dropped it), `work`
    /// runs once more on a new one.
    pub fn run<T, F>(&mut self, work: impl Fn(Peer) -> F) -> Result<T, CliError>
    where
        F: Future<Output = Result<T, CliError>>,
    {
        let Session {
            runtime,
            open,
            home,
            node,
        } = self;
        runtime.block_on(async {
            if open.as_ref().is_some_and(|(_, peer)| peer.is_closed()) {
                *open = None;
            }
            if let Some((_, peer)) = open.as_ref() {
                match work(peer.clone()).await {
                    // Only a transport failure is worth a new connection; the node's answers,
                    // refusals included, are final.
                    Err(CliError::Other(_)) => {
                        if let Some((endpoint, _)) = open.take() {
                            endpoint.close();
                        }
                    }
                    done => return done,
                }
            }
            let (endpoint, peer) = connect(home, node).await?;
            *open = Some((endpoint, peer.clone()));
            work(peer).await
        })
    }
}

/// Connects to `node`, checking that the node answering is the one the entry names.
async fn connect(home: &Home, node: &NodeEntry) -> Result<(PeerEndpoint, Peer), CliError> {
    connect_as(&home.identity, home.trusted()?, node).await
}

/// [`connect`] with another key than the CLI's (`interstice bench` gives each client its own),
/// trusting the node keys in `trusted`.
pub async fn connect_as(
    identity: &NodeIdentity,
    trusted: TrustedPeers,
    node: &NodeEntry,
) -> Result<(PeerEndpoint, Peer), CliError> {
    let address = resolve(&node.address)?;
    let unreachable = |reason: String| CliError::Unreachable {
        name: node.name.clone(),
        address: node.address.clone(),
        reason,
        cli: identity.fingerprint(),
    };
    let local = interstice_net::transport::any_port_for(address);
    let endpoint =
        PeerEndpoint::bind(local, identity, trusted).map_err(|e| unreachable(e.to_string()))?;
    let peer = match tokio::time::timeout(CONNECT_TIMEOUT, endpoint.connect(address)).await {
        Ok(Ok(peer)) => peer,
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Err(_) => return Err(unreachable(format!("no answer within {CONNECT_TIMEOUT:?}"))),
    };
    // The key pinned the connection to a node this CLI trusts; the id says it is the one this
    // entry names (another trusted node may now answer on its address).
    if !peer.node_id.eq_ignore_ascii_case(&node.id) {
        endpoint.close_and_wait(Duration::from_millis(200)).await;
        return Err(CliError::Refused(format!(
            "the node answering at {} is {} (key {}), not `{}` ({}): nothing was sent.\n  \
             if `{}` moved, `interstice node remove {}` and add it again at its new address",
            node.address, peer.node_id, peer.fingerprint, node.name, node.id, node.name, node.name
        )));
    }
    Ok((endpoint, peer))
}

/// Sends one request and returns the answer, or a clear error.
pub async fn ask(peer: &Peer, message: &Message) -> Result<Message, CliError> {
    peer.request(message)
        .await
        .map_err(|e| CliError::Other(format!("the node dropped the request: {e}")))
}
