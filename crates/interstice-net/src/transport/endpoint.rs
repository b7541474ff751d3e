//! A node's QUIC endpoint and its connections to peers.

use super::identity::{NodeIdentity, fingerprint, node_id_of};
use super::streams::{MessageStream, Responder, UploadStream, read_frame, write_frame};
use super::verify::{Pinned, TrustedPeers};
use crate::message::{DecodeError, Message};
use crate::version::{SUPPORTED_VERSIONS, negotiate};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::CertificateDer;
use sha2::Digest;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// ALPN of the protocol's first version.
const ALPN: &[u8] = b"interstice/1";
/// How long a connecting peer has to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a silent connection lives.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests (streams) a peer may have open at once on one connection.
pub const MAX_STREAMS: u32 = 1024;
/// Bytes a peer may have sent on one stream that the node has not read yet (QUIC flow
/// control; a message larger than this simply arrives in several windows). quinn's default,
/// 1.25 MB, let 1,024 streams hold over a gigabyte. 64 KiB is 640 KB/s per stream at 100 ms of
/// round trip: enough on a LAN, short for large uploads over long distances (256 KiB made the
/// 100-concurrent-uploads test stall; not understood yet).
pub const STREAM_RECEIVE_WINDOW: u32 = 64 * 1024;
/// Bytes a peer may have sent on all its streams of one connection that the node has not read
/// yet: every stream's full window, no less. Requests are read one stream after another, in
/// order, so a smaller connection window could fill up with later streams' bytes while the
/// stream being read waits for its own — a deadlock (seen with 100 concurrent uploads).
pub const CONNECTION_RECEIVE_WINDOW: u32 = MAX_STREAMS * STREAM_RECEIVE_WINDOW;
/// How often an idle connection says it is alive.
const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// Application error code when a peer breaks the protocol.
pub(super) const PROTOCOL_VIOLATION: u32 = 1;

/// Why a transport operation failed.
#[derive(Debug, Error)]
pub enum TransportError {
    /// TLS or endpoint configuration failed.
    #[error("transport setup: {0}")]
    Setup(String),
    /// The UDP socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The connection could not be made or was lost (includes an untrusted peer key).
    #[error("connection: {0}")]
    Connection(String),
    /// The peer sent something the protocol does not allow; the connection is closed.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A message did not decode; the connection is closed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The peer refused the handshake (or our key).
    #[error("refused by peer: {0}")]
    Refused(String),
    /// Nobody answered at the address.
    #[error("unreachable: {0}")]
    Unreachable(String),
}

/// A dial that failed: nobody answering, or an endpoint that takes no connections (a node
/// stopping), is [`TransportError::Unreachable`]; the other side closing the connection
/// (refusing our key, say) is [`TransportError::Refused`].
fn dial_failure(e: &quinn::ConnectionError) -> TransportError {
    use quinn::ConnectionError as E;
    match e {
        E::TimedOut => TransportError::Unreachable("no answer".into()),
        E::ConnectionClosed(close)
            if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
        {
            TransportError::Unreachable("the node is not taking connections".into())
        }
        E::ConnectionClosed(close) => {
            let reason = String::from_utf8_lossy(&close.reason).into_owned();
            TransportError::Refused(if reason.is_empty() {
                close.error_code.to_string()
            } else {
                format!("{reason} ({})", close.error_code)
            })
        }
        E::ApplicationClosed(close) => {
            TransportError::Refused(String::from_utf8_lossy(&close.reason).into_owned())
        }
        other => conn(other),
    }
}

pub(super) fn conn<E: std::fmt::Display>(e: E) -> TransportError {
    TransportError::Connection(e.to_string())
}

/// Whom an endpoint accepts connections from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Admission {
    /// Only peers whose key is in the trusted set (the default: a private node).
    #[default]
    Trusted,
    /// Any peer, whatever its key (an open node, such as a game host): the peer is still
    /// authenticated by its key, and what a stranger may ask is for the node to decide.
    AnyKey,
}

/// How the key of a node being dialed is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dial {
    /// It must be in the trusted set.
    #[default]
    Trusted,
    /// Any key is accepted; the caller compares [`Peer::fingerprint`] with what it pinned for
    /// that address (or pins it: trust on first use) before sending anything.
    AnyKey,
}

/// One UDP port that dials and accepts peers.
#[derive(Debug)]
pub struct PeerEndpoint {
    endpoint: quinn::Endpoint,
    node_id: String,
    /// The client side for [`Dial::AnyKey`]: the same identity and transport settings, a
    /// verifier that takes any key.
    any_key_client: quinn::ClientConfig,
}

/// An authenticated connection to a peer, after the handshake.
#[derive(Debug, Clone)]
pub struct Peer {
    connection: quinn::Connection,
    /// The peer's node id.
    pub node_id: String,
    /// The peer's certificate fingerprint.
    pub fingerprint: String,
    /// The protocol version both use.
    pub version: u16,
}

impl PeerEndpoint {
    /// Binds `addr` (port 0 picks one) with this node's identity, accepting and reaching only
    /// peers in `trusted`. Must be called inside a tokio runtime.
    pub fn bind(
        addr: SocketAddr,
        identity: &NodeIdentity,
        trusted: TrustedPeers,
    ) -> Result<PeerEndpoint, TransportError> {
        Self::bind_with(addr, identity, trusted, Admission::Trusted)
    }

    /// [`PeerEndpoint::bind`], choosing whom to accept connections from: with
    /// [`Admission::AnyKey`] any peer gets in, and `trusted` only tells the node's own dials
    /// whom to reach. Must be called inside a tokio runtime.
    pub fn bind_with(
        addr: SocketAddr,
        identity: &NodeIdentity,
        trusted: TrustedPeers,
        admission: Admission,
    ) -> Result<PeerEndpoint, TransportError> {
        let setup = |e: &dyn std::fmt::Display| TransportError::Setup(e.to_string());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| setup(&e))?
            .with_client_cert_verifier(Arc::new(Pinned {
                trusted: trusted.clone(),
                provider: provider.clone(),
                first_use: None,
                any_key: admission == Admission::AnyKey,
            }))
            .with_single_cert(vec![identity.certificate()], identity.key())
            .map_err(|e| setup(&e))?;
        server.alpn_protocols = vec![ALPN.to_vec()];
        let client_for = |any_key: bool| -> Result<QuicClientConfig, TransportError> {
            let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| setup(&e))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    trusted: trusted.clone(),
                    provider: provider.clone(),
                    first_use: None,
                    any_key,
                }))
                .with_client_auth_cert(vec![identity.certificate()], identity.key())
                .map_err(|e| setup(&e))?;
            client.alpn_protocols = vec![ALPN.to_vec()];
            QuicClientConfig::try_from(client).map_err(|e| setup(&e))
        };
        let server = QuicServerConfig::try_from(server).map_err(|e| setup(&e))?;
        let client = client_for(false)?;
        let any_key_client = client_for(true)?;
        // A peer that vanished without closing (killed, unplugged) is noticed within
        // IDLE_TIMEOUT; keep-alives stop a quiet but live connection from timing out.
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_idle_timeout(Some(
                quinn::IdleTimeout::try_from(IDLE_TIMEOUT).map_err(|e| setup(&e))?,
            ))
            .keep_alive_interval(Some(KEEP_ALIVE))
            // Every request is a stream: room for many in flight (pipelining, subscriptions).
            .max_concurrent_bidi_streams(MAX_STREAMS.into())
            // What a peer can make the node buffer is bounded per stream and per connection.
            .stream_receive_window(STREAM_RECEIVE_WINDOW.into())
            .receive_window(CONNECTION_RECEIVE_WINDOW.into());
        let transport = Arc::new(transport);
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server));
        server.transport_config(transport.clone());
        let mut client = quinn::ClientConfig::new(Arc::new(client));
        client.transport_config(transport.clone());
        let mut any_key_client = quinn::ClientConfig::new(Arc::new(any_key_client));
        any_key_client.transport_config(transport);
        // Stateless resets are keyed by the node's own key, so a node that restarts can end its
        // peers' stale connections at once instead of leaving them to time out.
        let reset_secret = sha2::Sha256::new()
            .chain_update(b"interstice stateless reset key")
            .chain_update(identity.key_bytes())
            .finalize();
        let endpoint_config = quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &reset_secret,
        )));
        let socket = std::net::UdpSocket::bind(addr)
            .map_err(|source| TransportError::Bind { addr, source })?;
        let mut endpoint = quinn::Endpoint::new(
            endpoint_config,
            Some(server),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| TransportError::Bind { addr, source })?;
        endpoint.set_default_client_config(client);
        Ok(PeerEndpoint {
            endpoint,
            node_id: identity.node_id(),
            any_key_client,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        self.endpoint.local_addr().map_err(conn)
    }

    /// Dials a peer and performs the handshake (its key must be trusted).
    pub async fn connect(&self, addr: SocketAddr) -> Result<Peer, TransportError> {
        self.connect_with(addr, Dial::Trusted).await
    }

    /// Dials a peer and performs the handshake, checking its key as `dial` says.
    pub async fn connect_with(&self, addr: SocketAddr, dial: Dial) -> Result<Peer, TransportError> {
        let connecting = match dial {
            Dial::Trusted => self.endpoint.connect(addr, "interstice-node"),
            Dial::AnyKey => {
                self.endpoint
                    .connect_with(self.any_key_client.clone(), addr, "interstice-node")
            }
        };
        let connection = connecting
            .map_err(conn)?
            .await
            .map_err(|e| dial_failure(&e))?;
        // The other side checks our key after the TLS handshake completed on ours: its
        // refusal arrives as the connection closing under the first request.
        let refused = |e: TransportError| match connection.close_reason() {
            Some(reason) => dial_failure(&reason),
            None => e,
        };
        let (mut send, mut recv) = connection.open_bi().await.map_err(conn).map_err(refused)?;
        write_frame(
            &mut send,
            &Message::Hello {
                versions: SUPPORTED_VERSIONS.to_vec(),
                node_id: self.node_id.clone(),
            },
        )
        .await
        .map_err(refused)?;
        send.finish().map_err(conn).map_err(refused)?;
        match read_frame(&mut recv).await.map_err(refused)? {
            Message::Welcome { version, node_id } if SUPPORTED_VERSIONS.contains(&version) => {
                let peer = peer(connection, node_id, version);
                check_node_id(&peer)?;
                Ok(peer)
            }
            Message::Refuse { reason } => Err(TransportError::Refused(reason)),
            other => Err(violation(
                &connection,
                format!("expected Welcome, got {other:?}"),
            )),
        }
    }

    /// Waits for the next peer and performs the handshake; `None` once the endpoint is closed.
    /// A server should rather take [`PeerEndpoint::incoming`] connections and run each
    /// [`PeerEndpoint::handshake`] in its own task, so a slow peer does not hold up the next.
    pub async fn accept(&self) -> Option<Result<Peer, TransportError>> {
        let incoming = self.incoming().await?;
        Some(self.handshake(incoming).await)
    }

    /// Waits for the next connection attempt; `None` once the endpoint is closed.
    pub async fn incoming(&self) -> Option<quinn::Incoming> {
        self.endpoint.accept().await
    }

    /// Completes a connection attempt: TLS (the peer's key must be trusted), then `Hello`,
    /// within [`HANDSHAKE_TIMEOUT`].
    pub async fn handshake(&self, incoming: quinn::Incoming) -> Result<Peer, TransportError> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, self.handshake_inner(incoming))
            .await
            .unwrap_or_else(|_| {
                Err(TransportError::Protocol(format!(
                    "no handshake within {HANDSHAKE_TIMEOUT:?}"
                )))
            })
    }

    async fn handshake_inner(&self, incoming: quinn::Incoming) -> Result<Peer, TransportError> {
        let connection = incoming.await.map_err(conn)?;
        let (mut send, mut recv) = connection.accept_bi().await.map_err(conn)?;
        let (versions, node_id) = match read_frame(&mut recv).await {
            Ok(Message::Hello { versions, node_id }) => (versions, node_id),
            Ok(other) => {
                return Err(violation(
                    &connection,
                    format!("expected Hello, got {other:?}"),
                ));
            }
            Err(e) => {
                connection.close(PROTOCOL_VIOLATION.into(), b"bad hello");
                return Err(e);
            }
        };
        let Some(version) = negotiate(SUPPORTED_VERSIONS, &versions) else {
            let reason = format!(
                "no common protocol version: we speak {SUPPORTED_VERSIONS:?}, you {versions:?}"
            );
            write_frame(
                &mut send,
                &Message::Refuse {
                    reason: reason.clone(),
                },
            )
            .await?;
            send.finish().map_err(conn)?;
            return Err(TransportError::Refused(reason));
        };
        write_frame(
            &mut send,
            &Message::Welcome {
                version,
                node_id: self.node_id.clone(),
            },
        )
        .await?;
        send.finish().map_err(conn)?;
        let peer = peer(connection, node_id, version);
        check_node_id(&peer)?;
        Ok(peer)
    }

    /// Stops accepting and closes every connection.
    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"node stopping");
    }

    /// Closes every connection and waits (at most `limit`) until peers were told, so they
    /// notice the departure at once instead of after an idle timeout.
    pub async fn close_and_wait(&self, limit: std::time::Duration) {
        self.close();
        let _ = tokio::time::timeout(limit, self.endpoint.wait_idle()).await;
    }
}

/// Any local port of the address family that reaches `addr` (what a client binds).
pub fn any_port_for(addr: SocketAddr) -> SocketAddr {
    if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    }
}

/// Trust on first use: the fingerprint of the key the node at `addr` presents, learned from the
/// TLS handshake alone — that node does not have to trust `identity` yet, and nothing else is
/// sent. Show it to the operator before trusting it (`node add`). Must be called inside a tokio
/// runtime.
pub async fn probe_fingerprint(
    addr: SocketAddr,
    identity: &NodeIdentity,
) -> Result<String, TransportError> {
    let setup = |e: &dyn std::fmt::Display| TransportError::Setup(e.to_string());
    let seen = Arc::new(std::sync::Mutex::new(None));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| setup(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            trusted: TrustedPeers::default(),
            provider,
            first_use: Some(seen.clone()),
            any_key: false,
        }))
        .with_client_auth_cert(vec![identity.certificate()], identity.key())
        .map_err(|e| setup(&e))?;
    client.alpn_protocols = vec![ALPN.to_vec()];
    let client = QuicClientConfig::try_from(client).map_err(|e| setup(&e))?;
    let local = any_port_for(addr);
    let mut endpoint = quinn::Endpoint::client(local).map_err(|source| TransportError::Bind {
        addr: local,
        source,
    })?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(client)));
    let connecting = endpoint.connect(addr, "interstice-node").map_err(conn)?;
    // The other node may refuse us once it sees our (untrusted) key: by then its own key was
    // checked, which is all this needs.
    if let Ok(Ok(connection)) = tokio::time::timeout(Duration::from_secs(5), connecting).await {
        connection.close(0u32.into(), b"probe");
    }
    // Let the close reach the node, so it does not wait for a handshake that will not come.
    endpoint.close(0u32.into(), b"probe");
    let _ = tokio::time::timeout(Duration::from_millis(500), endpoint.wait_idle()).await;
    let fingerprint = seen.lock().ok().and_then(|mut seen| seen.take());
    fingerprint
        .ok_or_else(|| TransportError::Connection(format!("no interstice node answered at {addr}")))
}

fn violation(connection: &quinn::Connection, what: String) -> TransportError {
    connection.close(PROTOCOL_VIOLATION.into(), b"protocol violation");
    TransportError::Protocol(what)
}

/// A node id is bound to the key: one that does not match the certificate is a lie.
fn check_node_id(peer: &Peer) -> Result<(), TransportError> {
    let expected = node_id_of(&peer.fingerprint);
    if peer.node_id == expected {
        Ok(())
    } else {
        Err(violation(
            &peer.connection,
            format!(
                "peer claims node id {} but its key belongs to {expected}",
                peer.node_id
            ),
        ))
    }
}

fn peer(connection: quinn::Connection, node_id: String, version: u16) -> Peer {
    let fingerprint = connection
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|certs| certs.first().map(|c| fingerprint(c.as_ref())))
        .unwrap_or_default();
    Peer {
        connection,
        node_id,
        fingerprint,
        version,
    }
}

impl Peer {
    /// Whether the connection has ended (closed by either side, timed out or lost).
    pub fn is_closed(&self) -> bool {
        self.connection.close_reason().is_some()
    }

    /// Sends a request on its own stream and waits for the answer.
    pub async fn request(&self, message: &Message) -> Result<Message, TransportError> {
        let (mut send, mut recv) = self.connection.open_bi().await.map_err(conn)?;
        write_frame(&mut send, message).await?;
        send.finish().map_err(conn)?;
        read_frame(&mut recv).await.inspect_err(|e| {
            if matches!(e, TransportError::Decode(_)) {
                self.connection
                    .close(PROTOCOL_VIOLATION.into(), b"bad message");
            }
        })
    }

    /// Waits for the peer's next request. A malformed or oversized one closes the connection
    /// and is returned as an error; `None` once the connection is closed.
    pub async fn next_request(&self) -> Option<Result<(Message, Responder), TransportError>> {
        let (send, mut recv) = match self.connection.accept_bi().await {
            Ok(streams) => streams,
            Err(_) => return None,
        };
        Some(match read_frame(&mut recv).await {
            Ok(message) => Ok((
                message,
                Responder {
                    send,
                    recv,
                    connection: self.connection.clone(),
                },
            )),
            Err(e) => {
                self.connection
                    .close(PROTOCOL_VIOLATION.into(), b"bad message");
                Err(e)
            }
        })
    }

    /// Round-trip time of one ping (the peer must be answering requests).
    pub async fn ping(&self) -> Result<Duration, TransportError> {
        let nonce = u64::from(std::process::id()) ^ Instant::now().elapsed().as_nanos() as u64;
        let started = Instant::now();
        match self.request(&Message::Ping { nonce }).await? {
            Message::Pong { nonce: back } if back == nonce => Ok(started.elapsed()),
            other => Err(TransportError::Protocol(format!(
                "expected Pong, got {other:?}"
            ))),
        }
    }

    /// Opens a stream, sends `first` on it and returns the stream the peer answers on with
    /// as many messages as it likes (a subscription). Dropping it tells the peer to stop.
    pub async fn open_stream(&self, first: &Message) -> Result<MessageStream, TransportError> {
        let (mut send, recv) = self.connection.open_bi().await.map_err(conn)?;
        write_frame(&mut send, first).await?;
        send.finish().map_err(conn)?;
        Ok(MessageStream {
            recv,
            connection: self.connection.clone(),
        })
    }

    /// Uploads a module: `PublishChunk` messages of at most
    /// [`MAX_CHUNK_BYTES`](crate::message::MAX_CHUNK_BYTES) on one stream, then waits for the
    /// node's `PublishResult`.
    pub async fn upload(
        &self,
        upload: u64,
        wasm: &[u8],
        drop_data: bool,
    ) -> Result<Message, TransportError> {
        use crate::message::MAX_CHUNK_BYTES;
        let chunks: Vec<&[u8]> = if wasm.is_empty() {
            vec![&[][..]]
        } else {
            wasm.chunks(MAX_CHUNK_BYTES).collect()
        };
        let total = u32::try_from(chunks.len())
            .map_err(|_| TransportError::Protocol("upload too large".into()))?;
        let mut stream = self.begin_upload(upload, total, drop_data).await?;
        for bytes in chunks {
            stream.send_chunk(bytes).await?;
        }
        stream.finish().await
    }

    /// Starts an upload of `total` chunks on a stream of its own; the caller sends them one by
    /// one (to show progress), then waits for the node's answer with [`UploadStream::finish`].
    pub async fn begin_upload(
        &self,
        upload: u64,
        total: u32,
        drop_data: bool,
    ) -> Result<UploadStream, TransportError> {
        let (send, recv) = self.connection.open_bi().await.map_err(conn)?;
        Ok(UploadStream {
            send,
            recv,
            upload,
            total,
            drop_data,
            next: 0,
        })
    }

    /// Resolves when the connection is closed, by either side.
    pub async fn closed(&self) {
        self.connection.closed().await;
    }

    /// The QUIC connection (for the node's dispatcher).
    pub fn connection(&self) -> &quinn::Connection {
        &self.connection
    }
}
