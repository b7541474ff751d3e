//! Serving subscriptions: each one is a stream of `Events` messages read straight from the
//! node's [`PublicationLog`] on the network thread, never through the world, so a busy
//! subscriber costs the frame nothing. Only released events (durable ones) are read.

use interstice_core::{PublicationLog, ReadOutcome};
use interstice_net::message::{MAX_MESSAGE_BYTES, Message, RemoteError};
use interstice_net::transport::Responder;
use std::sync::Arc;
use tokio::sync::Notify;

/// Most events in one `Events` message.
const BATCH_EVENTS: usize = 8192;
/// Most bytes of rows in one `Events` message (the rest of the message is small).
const BATCH_BYTES: usize = MAX_MESSAGE_BYTES / 2;
/// How long a subscriber may leave one batch untaken before its subscription is ended (it
/// resumes from its cursor when it subscribes again): a reader that stopped reading does not
/// pin a batch for ever.
pub(super) const SUBSCRIBER_STALL: std::time::Duration = std::time::Duration::from_secs(30);

/// The node's published streams, and a wake-up for every release.
#[derive(Clone)]
pub(super) struct Served {
    log: PublicationLog,
    released: Arc<Notify>,
}

impl Served {
    pub(super) fn new(log: PublicationLog) -> Served {
        let released = Arc::new(Notify::new());
        let wake = released.clone();
        log.on_release(move || wake.notify_waiters());
        Served { log, released }
    }

    /// Serves one subscription until the subscriber stops reading or the connection ends.
    pub(super) async fn serve(
        self,
        mut responder: Responder,
        subscription: u64,
        module: String,
        table: String,
        from_seq: u64,
    ) {
        // A private module has no streams: it looks exactly like a missing one.
        let mut next = match self.log.read(&module, &table, from_seq, 0, 0) {
            ReadOutcome::Events { first, .. } => first,
            ReadOutcome::NoStream => {
                let _ = responder
                    .respond(&Message::Subscribed {
                        subscription,
                        outcome: Err(RemoteError::NotFound(format!("table `{module}.{table}`"))),
                    })
                    .await;
                return;
            }
        };
        let subscribed = Message::Subscribed {
            subscription,
            outcome: Ok(next),
        };
        if responder.send(&subscribed).await.is_err() {
            return;
        }
        loop {
            // Registered before reading, so a release between the read and the wait is seen.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let (first, events) =
                match self
                    .log
                    .read(&module, &table, next, BATCH_EVENTS, BATCH_BYTES)
                {
                    ReadOutcome::Events { first, events } => (first, events),
                    ReadOutcome::NoStream => return, // the module was removed
                };
            if first != next {
                // This subscriber fell behind what the node retains: say where it resumes.
                let restart = Message::Subscribed {
                    subscription,
                    outcome: Ok(first),
                };
                if responder.send(&restart).await.is_err() {
                    return;
                }
                next = first;
            }
            if events.is_empty() {
                tokio::select! {
                    () = &mut released => {}
                    () = responder.stopped() => return,
                }
                continue;
            }
            next = first + events.len() as u64;
            let message = Message::Events {
                subscription,
                first_seq: first,
                events: events.into_iter().map(|e| (e.kind, e.rows)).collect(),
            };
            match tokio::time::timeout(SUBSCRIBER_STALL, responder.send(&message)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    bevy::log::debug!("subscription {subscription} to {module}.{table} ended: {e}");
                    return;
                }
                Err(_) => {
                    bevy::log::warn!(
                        "subscription {subscription} to {module}.{table} ended: the subscriber \
                         took no events for {SUBSCRIBER_STALL:?}"
                    );
                    return;
                }
            }
        }
    }
}
