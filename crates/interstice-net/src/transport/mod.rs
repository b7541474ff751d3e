//! QUIC transport between nodes: one UDP endpoint per node that both dials and accepts,
//! mutual TLS 1.3 where each side accepts only certificates whose fingerprint it trusts, and
//! length-prefixed [`Message`](crate::Message) frames on QUIC streams.

pub mod endpoint;
pub mod identity;
pub mod known_hosts;
mod streams;
pub mod verify;

pub use endpoint::{
    Admission, CONNECTION_RECEIVE_WINDOW, Dial, MAX_STREAMS, Peer, PeerEndpoint,
    STREAM_RECEIVE_WINDOW, TransportError, any_port_for, probe_fingerprint,
};
pub use identity::{NodeIdentity, fingerprint, node_id_of};
pub use known_hosts::{Invite, KnownHosts, PinError, PinOutcome};
pub use streams::{MessageStream, Responder, UploadStream};
pub use verify::TrustedPeers;
