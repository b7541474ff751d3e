//! The Interstice peer protocol and its transport.
//!
//! Peers exchange [`Message`]s (postcard-encoded, every one bounded by [`MAX_MESSAGE_BYTES`]).
//! These pieces hold the protocol's rules without any I/O, so they are tested without sockets:
//!
//! - [`message`]: the messages and their checked encoding;
//! - [`version`]: choosing the protocol version both peers speak;
//! - [`requests`]: exactly-once execution of remote calls, keyed by request id;
//! - [`subscription`]: in-order, gap-free, duplicate-free delivery of table events across
//!   reconnects.
//!
//! [`transport`] (QUIC over UDP with mutual TLS pinned to node keys) is built on top of them;
//! [`impair`] is a lossy relay for testing nodes over a bad network. `docs/protocol.md`
//! describes the protocol.

pub mod impair;
pub mod message;
pub mod requests;
pub mod subscription;
pub mod transport;
pub mod version;

pub use message::{DecodeError, MAX_MESSAGE_BYTES, Message, RemoteError};
pub use version::{PROTOCOL_VERSION, SUPPORTED_VERSIONS, negotiate};
