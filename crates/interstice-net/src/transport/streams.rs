//! A request's streams: the framing every message travels in (a length, then the message,
//! bounded by [`MAX_MESSAGE_BYTES`] before anything is allocated), the stream a request is
//! answered on ([`Responder`]), and the streams of an upload and a subscription.

use super::endpoint::{PROTOCOL_VIOLATION, TransportError, conn};
use crate::message::{DecodeError, MAX_MESSAGE_BYTES, Message};

/// Where to send the answer to a request received from a peer (and where the rest of a
/// multi-message request, like an upload, is read from).
#[derive(Debug)]
pub struct Responder {
    pub(super) send: quinn::SendStream,
    pub(super) recv: quinn::RecvStream,
    pub(super) connection: quinn::Connection,
}

pub(super) async fn write_frame(
    send: &mut quinn::SendStream,
    message: &Message,
) -> Result<(), TransportError> {
    let bytes = message.encode()?;
    send.write_all(&(bytes.len() as u32).to_le_bytes())
        .await
        .map_err(conn)?;
    send.write_all(&bytes).await.map_err(conn)?;
    Ok(())
}

pub(super) async fn read_frame(recv: &mut quinn::RecvStream) -> Result<Message, TransportError> {
    let mut header = [0u8; 4];
    recv.read_exact(&mut header).await.map_err(conn)?;
    let len = u32::from_le_bytes(header) as usize;
    // Bounded before anything is allocated.
    if len > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge(len).into());
    }
    let mut bytes = vec![0u8; len];
    recv.read_exact(&mut bytes).await.map_err(conn)?;
    Ok(Message::decode(&bytes)?)
}

/// A module upload being sent (see [`Peer::begin_upload`](super::Peer::begin_upload)).
#[derive(Debug)]
pub struct UploadStream {
    pub(super) send: quinn::SendStream,
    pub(super) recv: quinn::RecvStream,
    pub(super) upload: u64,
    pub(super) total: u32,
    pub(super) drop_data: bool,
    pub(super) next: u32,
}

impl UploadStream {
    /// Sends the next chunk (at most [`MAX_CHUNK_BYTES`](crate::message::MAX_CHUNK_BYTES)).
    pub async fn send_chunk(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        let chunk = Message::PublishChunk {
            upload: self.upload,
            index: self.next,
            total: self.total,
            bytes: bytes.to_vec(),
            drop_data: self.drop_data,
        };
        write_frame(&mut self.send, &chunk).await?;
        self.next += 1;
        Ok(())
    }

    /// Chunks sent so far.
    pub fn sent(&self) -> u32 {
        self.next
    }

    /// Ends the upload and waits for the node's `PublishResult`.
    pub async fn finish(mut self) -> Result<Message, TransportError> {
        self.send.finish().map_err(conn)?;
        read_frame(&mut self.recv).await
    }
}

/// Messages a peer sends on one stream (see [`Peer::open_stream`](super::Peer::open_stream)).
#[derive(Debug)]
pub struct MessageStream {
    pub(super) recv: quinn::RecvStream,
    pub(super) connection: quinn::Connection,
}

impl MessageStream {
    /// The next message; an error when the stream or connection ended, or the peer broke the
    /// protocol (then the connection is closed).
    pub async fn next(&mut self) -> Result<Message, TransportError> {
        read_frame(&mut self.recv).await.inspect_err(|e| {
            if matches!(e, TransportError::Decode(_)) {
                self.connection
                    .close(PROTOCOL_VIOLATION.into(), b"bad message");
            }
        })
    }
}

impl Responder {
    /// Sends the answer and ends the stream.
    pub async fn respond(mut self, message: &Message) -> Result<(), TransportError> {
        write_frame(&mut self.send, message).await?;
        self.send.finish().map_err(conn)
    }

    /// Sends one message of a longer answer (a subscription's events), keeping the stream open.
    pub async fn send(&mut self, message: &Message) -> Result<(), TransportError> {
        write_frame(&mut self.send, message).await
    }

    /// The next message the peer sent on this request's stream (the following chunks of an
    /// upload). A malformed or oversized one closes the connection.
    pub async fn next_message(&mut self) -> Result<Message, TransportError> {
        read_frame(&mut self.recv).await.inspect_err(|e| {
            if matches!(e, TransportError::Decode(_)) {
                self.connection
                    .close(PROTOCOL_VIOLATION.into(), b"bad message");
            }
        })
    }

    /// Resolves when the peer no longer reads this stream (it dropped it, or the connection
    /// closed).
    pub async fn stopped(&mut self) {
        let _ = self.send.stopped().await;
    }
}
