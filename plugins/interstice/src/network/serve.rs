//! Requests from peers that need the world: schemas, queries and reducer calls — and what the
//! network thread reports (peers coming and going, remote events, answers to remote calls).
//!
//! A remote reducer call is queued like any other and answered only after its
//! [`ReducerOutcome`] — that is, after its commit is durable. Request ids are de-duplicated per
//! peer, so a call retried after a lost answer runs once.

use super::admin::{Admins, ModuleAction, authorize, authorize_upload, publish, remove};
use super::remote::{RemoteCallOutcome, WantedLinks};
use super::{
    Backlog, DialedNode, FromNetwork, GatekeeperFlag, Inbound, LinkState, NetworkInbox,
    NetworkStatus, PeerHealth, PeerState, Reply,
};
use bevy::prelude::*;
use interstice_abi::Visibility;
use interstice_core::{Database, InvocationId, Modules, ReducerOutcome, ReducerQueue, Storage};
use interstice_net::message::{Message, RemoteError};
use interstice_net::requests::{Admission, ExactlyOnce};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// A call waiting for its outcome: the peer, its request id, and everyone to answer.
type Waiting = (Arc<str>, u64, Vec<Reply>);

/// Remote reducer calls waiting for their outcome, and each peer's request ids.
#[derive(Resource, Default)]
pub(super) struct RemoteCalls {
    waiting: HashMap<InvocationId, Waiting>,
    by_request: HashMap<(Arc<str>, u64), InvocationId>,
    seen: HashMap<Arc<str>, ExactlyOnce<Result<(), RemoteError>>>,
    /// Calls that ran but whose commit storage could not make durable yet (still in
    /// `waiting`): answered `Ok` once storage has written them.
    in_doubt: Vec<InvocationId>,
}

/// Requests remembered per peer for exactly-once execution: as many as the `__answered` rows
/// kept per peer, from which the window is seeded after a restart.
const REQUEST_WINDOW: usize = interstice_core::host_tables::answered::MAX_ROWS_PER_PEER;

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

/// What serving a frame's share of the network's reports and requests touches.
#[derive(bevy::ecs::system::SystemParam)]
pub(super) struct Server<'w> {
    inbox: Res<'w, NetworkInbox>,
    status: ResMut<'w, NetworkStatus>,
    health: ResMut<'w, PeerHealth>,
    modules: ResMut<'w, Modules>,
    db: ResMut<'w, Database>,
    queue: ResMut<'w, ReducerQueue>,
    calls: ResMut<'w, RemoteCalls>,
    wanted: Res<'w, WantedLinks>,
    call_outcomes: MessageWriter<'w, RemoteCallOutcome>,
    admins: Res<'w, Admins>,
    storage: Option<ResMut<'w, Storage>>,
    backlog: ResMut<'w, Backlog>,
    gatekeeper: Res<'w, GatekeeperFlag>,
    wake: Res<'w, super::NodeWake>,
    logs: ResMut<'w, crate::logbook::LogBook>,
}

/// Serves a bounded, fair share of what the network thread handed over: its reports (peers,
/// links, remote events, answered calls, uploads) and peers' requests.
pub(super) fn serve_requests(mut server: Server) {
    // The network thread lets anyone but an admin start an upload only while a module can
    // decide it.
    server.gatekeeper.0.store(
        server
            .modules
            .authorities()
            .contains_key(&interstice_abi::Authority::Module),
        std::sync::atomic::Ordering::Relaxed,
    );
    if let Ok(inbox) = server.inbox.0.lock() {
        server.backlog.requests.extend(inbox.try_iter());
    }
    // The rest waits for the next frame, which a waiting frame loop then runs at once.
    let batch = server.backlog.take_frame();
    if !server.backlog.requests.is_empty() {
        server.wake.0.notify();
    }
    for item in batch {
        server.take(item);
    }
}

impl Server<'_> {
    /// Takes one thing the network thread handed over: a request is answered, a report is
    /// noted.
    fn take(&mut self, item: FromNetwork) {
        match item {
            FromNetwork::Request(inbound) => self.answer(inbound),
            FromNetwork::Upload(upload) => self.upload(upload),
            FromNetwork::Listening(addr) => {
                info!("listening for peers on {addr}");
                self.status.local_addr = Some(addr);
            }
            FromNetwork::Failed(e) => {
                error!("network: {e}");
                self.status.error = Some(e);
            }
            FromNetwork::Connected {
                node_id,
                fingerprint,
                address,
            } => self.connected(node_id, fingerprint, address),
            FromNetwork::Disconnected {
                node_id,
                fingerprint,
                stranger,
            } => self.disconnected(&node_id, &fingerprint, stranger),
            FromNetwork::RemoteEvents {
                address,
                module,
                table,
                first_seq,
                events,
            } => {
                let subscribers = self.wanted.subscribers_of(address, &module, &table);
                for (offset, (kind, rows)) in events.into_iter().enumerate() {
                    // A publisher's numbers are its own: one that runs past u64::MAX ends
                    // the batch instead of overflowing.
                    let Some(seq) = first_seq.checked_add(offset as u64) else {
                        break;
                    };
                    for subscriber in subscribers.iter().filter(|s| s.event == kind) {
                        self.queue.push_remote_event(
                            subscriber.module.clone(),
                            subscriber.reducer.clone(),
                            rows.clone(),
                            subscriber.cursor.clone(),
                            seq,
                        );
                    }
                }
            }
            FromNetwork::CallAnswered(outcome) => {
                self.modules
                    .remote_call_answered(&mut self.db, &outcome.from, outcome.request);
                if let Err(e) = &outcome.outcome {
                    warn!(
                        "`{}`'s call of {}.{} on node `{}` failed: {e}",
                        outcome.from, outcome.module, outcome.reducer, outcome.node
                    );
                }
                self.call_outcomes.write(outcome);
            }
            FromNetwork::Rtt { node_id, rtt } => {
                if let Some(state) = self.health.peers.get_mut(&node_id) {
                    state.rtt = Some(rtt);
                    state.last_seen = Instant::now();
                }
                for link in self.health.dialed.values_mut() {
                    if matches!(&link.state, LinkState::Connected { node_id: id, .. } if *id == node_id)
                    {
                        link.rtt = Some(rtt);
                    }
                }
            }
            FromNetwork::Link { address, state } => self.link(address, state),
        }
    }

    /// Decides and installs an uploaded module, and answers the uploader.
    fn upload(&mut self, upload: super::Upload) {
        let outcome = authorize_upload(&self.admins.0, &mut self.modules, &mut self.db, &upload)
            .and_then(|()| {
                publish(
                    &mut self.modules,
                    &mut self.db,
                    self.storage.as_deref_mut(),
                    &upload.wasm,
                    upload.drop_data,
                )
            });
        match &outcome {
            Ok(p) => {
                let what = if p.upgraded {
                    "upgraded, its data kept"
                } else {
                    "published"
                };
                info!(
                    "node {} published module `{}` ({what})",
                    upload.node_id, p.module
                );
                self.logs
                    .push_node(&p.module, 2, &format!("{what} by {}", upload.node_id));
            }
            Err(e) => warn!("node {} could not publish a module: {e}", upload.node_id),
        }
        let _ = upload.reply.send(Message::PublishResult {
            upload: upload.upload,
            outcome,
        });
    }

    /// A connection of a peer opened: its first one raises `connect`.
    fn connected(
        &mut self,
        node_id: String,
        fingerprint: String,
        address: Option<std::net::SocketAddr>,
    ) {
        let state = self
            .health
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
            self.queue.push_peer_event(&self.modules, true, &node_id);
        }
    }

    /// A connection of a peer closed: its last one raises `disconnect`.
    fn disconnected(&mut self, node_id: &str, fingerprint: &Arc<str>, stranger: bool) {
        let Some(state) = self.health.peers.get_mut(node_id) else {
            return;
        };
        state.connections = state.connections.saturating_sub(1);
        if state.connections == 0 {
            self.queue.push_peer_event(&self.modules, false, node_id);
            // Strangers come and go with fresh keys: what is kept for each goes when it does
            // (its exactly-once window is rebuilt from `__answered` if it comes back), unless
            // a call of its is still running.
            if stranger && !self.calls.waiting.values().any(|w| w.0 == *fingerprint) {
                self.calls.seen.remove(fingerprint);
                self.health.peers.remove(node_id);
            }
        }
    }

    /// A link this node dials changed state.
    fn link(&mut self, address: std::net::SocketAddr, state: LinkState) {
        match &state {
            LinkState::Connected { node_id, .. } => {
                info!("link to {address}: connected to {node_id}")
            }
            LinkState::Refused { why, attempt: 1 } => warn!("link to {address}: refused: {why}"),
            LinkState::Lost { why, attempt: 1 } => {
                warn!("link to {address}: lost ({why}); reconnecting")
            }
            _ => {}
        }
        let rtt = self
            .health
            .dialed
            .get(&address)
            .filter(|_| matches!(state, LinkState::Connected { .. }))
            .and_then(|link| link.rtt);
        self.health.dialed.insert(
            address,
            DialedNode {
                state,
                since: Instant::now(),
                rtt,
            },
        );
    }

    /// Answers a `HistoryRequest` with a page of a logged table's history, for the node's
    /// owner only.
    fn history(&self, peer: &str, asked: Message) -> Message {
        let Message::HistoryRequest {
            request,
            module,
            table,
            key,
            from_seq,
            skip,
            to_seq,
            limit,
        } = asked
        else {
            return Message::Refuse {
                reason: "not a history request".into(),
            };
        };
        let outcome = if self.admins.0.contains(peer) {
            let asked = super::history::HistoryRequest {
                module: &module,
                table: &table,
                key: key.as_deref(),
                from_seq,
                skip,
                to_seq,
                limit,
            };
            super::history::page(&self.modules, &self.db, self.storage.as_deref(), &asked)
        } else {
            Err(RemoteError::NotPermitted(
                "only the node's owner reads its history".into(),
            ))
        };
        Message::History { request, outcome }
    }

    /// Answers a peer's request (a reducer call is answered once its outcome is durable).
    fn answer(&mut self, inbound: Inbound) {
        let Inbound {
            peer,
            stranger,
            node_id,
            message,
            reply,
        } = inbound;
        let answer = match message {
            Message::Ping { nonce } => Message::Pong { nonce },
            Message::StatusRequest { request } => Message::Status {
                request,
                storage: self.storage.as_deref().map_or_else(
                    || "ephemeral (no data directory)".into(),
                    |s| s.health().to_string(),
                ),
            },
            Message::SchemaRequest { request } => Message::Schema {
                request,
                modules: self
                    .modules
                    .schemas()
                    .filter_map(|s| s.to_public())
                    .collect(),
            },
            Message::Query {
                request,
                module,
                query,
                args,
            } => Message::QueryResult {
                request,
                outcome: self.query(&peer, &module, &query, &args),
            },
            Message::CallReducer {
                request,
                module,
                reducer,
                args,
            } => {
                let call = RemoteCall {
                    peer,
                    request,
                    module,
                    reducer,
                    args,
                };
                if let Some((answer, reply)) = self.call_reducer(call, reply) {
                    let _ = reply.send(answer);
                }
                return;
            }
            Message::RowsRequest {
                request,
                module,
                table,
                after,
                filter,
                limit,
                as_of,
            } => Message::Rows {
                request,
                outcome: super::rows::page(
                    (&self.modules, &self.db, self.storage.as_deref()),
                    &super::rows::PageRequest {
                        module: &module,
                        table: &table,
                        after: after.as_deref(),
                        filter: filter.as_ref().map(|(c, v)| (c.as_str(), v.as_str())),
                        limit,
                        owner: self.admins.0.contains(&peer),
                        as_of,
                    },
                ),
            },
            asked @ Message::HistoryRequest { .. } => self.history(&peer, asked),
            Message::LogsRequest {
                request,
                module,
                after,
            } => Message::Logs {
                request,
                outcome: if self.admins.0.contains(&peer) {
                    Ok(log_page(&self.logs, module.as_deref(), after))
                } else {
                    Err(RemoteError::NotPermitted(
                        "only the node's owner reads its logs".into(),
                    ))
                },
            },
            Message::Remove { request, module } if stranger => Message::RemoveResult {
                request,
                outcome: Err(RemoteError::NotPermitted(format!(
                    "node {node_id} is a stranger here: it may not remove `{module}`"
                ))),
            },
            Message::Remove { request, module } => Message::RemoveResult {
                request,
                outcome: self.remove(&peer, &node_id, &module),
            },
            other => Message::Refuse {
                reason: format!("this node does not serve {other:?}"),
            },
        };
        let _ = reply.send(answer);
    }

    /// Runs a peer's query on a public module.
    fn query(
        &mut self,
        peer: &str,
        module: &str,
        query: &str,
        args: &[u8],
    ) -> Result<Vec<u8>, RemoteError> {
        public_module(&self.modules, module)?;
        let handle = self
            .modules
            .query(module, query)
            .map_err(|_| not_found(format!("query `{module}.{query}`")))?;
        self.modules
            .check_query_args(handle, args)
            .map_err(|e| RemoteError::Failed(e.to_string()))?;
        self.modules
            .call_query_from(&mut self.db, handle, args, peer)
            .map_err(|e| RemoteError::Failed(e.to_string()))
    }

    /// A peer's reducer call, run exactly once: answered now (a repeat, too old, or refused:
    /// the answer and the reply to send it on), or queued (`None`; answered once its outcome
    /// is durable, together with any copy that arrives meanwhile).
    fn call_reducer(&mut self, call: RemoteCall, reply: Reply) -> Option<(Message, Reply)> {
        let RemoteCall {
            peer,
            request,
            module,
            reducer,
            args,
        } = call;
        if !self.calls.seen.contains_key(&peer) {
            // What this peer's calls committed before (even before a crash) is answered,
            // never run again.
            let mut window = ExactlyOnce::new(REQUEST_WINDOW);
            for request in interstice_core::host_tables::answered::answered_by(&self.db, &peer) {
                let _ = window.admit(request);
                window.complete(request, Ok(()));
            }
            self.calls.seen.insert(peer.clone(), window);
        }
        let seen = self.calls.seen.get_mut(&peer)?;
        let outcome = match seen.admit(request) {
            Admission::Repeat(outcome) => outcome,
            Admission::TooOld => Err(RemoteError::NotPermitted(format!(
                "request {request} is too old to be answered again"
            ))),
            Admission::InFlight => {
                // Answered together with the first copy.
                if let Some(id) = self.calls.by_request.get(&(peer.clone(), request)).copied()
                    && let Some(waiting) = self.calls.waiting.get_mut(&id)
                {
                    waiting.2.push(reply);
                }
                return None;
            }
            Admission::Run => match self.check_call(&module, &reducer, &args) {
                Ok(()) => {
                    let id = self
                        .queue
                        .push_remote(module, reducer, args, &peer, request);
                    self.calls.by_request.insert((peer.clone(), request), id);
                    self.calls.waiting.insert(id, (peer, request, vec![reply]));
                    return None;
                }
                Err(e) => {
                    let outcome = Err(e);
                    if let Some(seen) = self.calls.seen.get_mut(&peer) {
                        seen.complete(request, outcome.clone());
                    }
                    outcome
                }
            },
        };
        Some((Message::CallResult { request, outcome }, reply))
    }

    /// Whether a peer may call this reducer with these arguments.
    fn check_call(&self, module: &str, reducer: &str, args: &[u8]) -> Result<(), RemoteError> {
        public_module(&self.modules, module)?;
        let handle = self.modules.reducer(module, reducer).map_err(|e| match e {
            interstice_core::CallError::SubscriberOnly(_) => {
                RemoteError::NotPermitted(e.to_string())
            }
            _ => not_found(format!("reducer `{module}.{reducer}`")),
        })?;
        self.modules
            .check_reducer_args(handle, args)
            .map_err(|e| RemoteError::Failed(e.to_string()))
    }

    /// Removes a module, if the peer may.
    fn remove(&mut self, peer: &str, node_id: &str, module: &str) -> Result<(), RemoteError> {
        let outcome = authorize(
            &self.admins.0,
            &mut self.modules,
            &mut self.db,
            peer,
            node_id,
            ModuleAction::Remove,
            module,
        )
        .and_then(|()| {
            remove(
                &mut self.modules,
                &mut self.db,
                self.storage.as_deref_mut(),
                module,
            )
        });
        match &outcome {
            Ok(()) => info!("node {node_id} removed module `{module}`"),
            Err(e) => warn!("node {node_id} could not remove `{module}`: {e}"),
        }
        outcome
    }
}

/// A reducer call from a peer, as it arrived.
struct RemoteCall {
    peer: Arc<str>,
    request: u64,
    module: String,
    reducer: String,
    args: Vec<u8>,
}

/// Most log lines in one answer (a follower asks again for the rest).
pub const LOG_LINES_PER_ANSWER: usize = 1_000;

/// The log lines after `after` (at most [`LOG_LINES_PER_ANSWER`], under 2 MiB), and the number
/// to ask after next time.
fn log_page(
    book: &crate::logbook::LogBook,
    module: Option<&str>,
    after: u64,
) -> (Vec<interstice_net::message::LogLine>, u64) {
    let mut bytes = 0;
    let mut next = after;
    let mut lines = Vec::new();
    for (name, entry) in book.after(module, after, LOG_LINES_PER_ANSWER) {
        bytes += entry.message.len() + name.len();
        if bytes > 2 * 1024 * 1024 {
            break;
        }
        next = entry.seq;
        lines.push(interstice_net::message::LogLine {
            seq: entry.seq,
            module: name.to_string(),
            level: entry.level,
            message: entry.message.clone(),
            at_ms: entry.at_ms,
        });
    }
    // Nothing new for this module: later lines of others need not be read again.
    if lines.is_empty() {
        next = next.max(book.last());
    }
    (lines, next)
}

/// Answers remote reducer calls once their outcome (written after the durable commit) arrives.
pub(super) fn answer_calls(
    mut outcomes: MessageReader<ReducerOutcome>,
    mut calls: ResMut<RemoteCalls>,
    storage: Option<Res<Storage>>,
) {
    // A retry that succeeds writes every commit kept since the fault: the calls in doubt are
    // durable now.
    if !calls.in_doubt.is_empty()
        && storage
            .as_deref()
            .is_none_or(|s| s.health().accepts_writes())
    {
        for id in std::mem::take(&mut calls.in_doubt) {
            let Some((peer, request, replies)) = calls.waiting.remove(&id) else {
                continue;
            };
            calls.by_request.remove(&(peer.clone(), request));
            if let Some(seen) = calls.seen.get_mut(&peer) {
                seen.complete(request, Ok(()));
            }
            for reply in replies {
                let _ = reply.send(Message::CallResult {
                    request,
                    outcome: Ok(()),
                });
            }
        }
    }
    for outcome in outcomes.read() {
        if matches!(
            outcome.result,
            Err(interstice_core::CallError::NotDurable(_))
        ) && calls.waiting.contains_key(&outcome.id)
        {
            // It ran; its commit is kept and written when storage recovers, or lost with the
            // node. Either way the caller must not forget the call: no answer until then
            // (copies sent meanwhile join this one).
            calls.in_doubt.push(outcome.id);
            continue;
        }
        let Some((peer, request, replies)) = calls.waiting.remove(&outcome.id) else {
            continue;
        };
        calls.by_request.remove(&(peer.clone(), request));
        let result = match &outcome.result {
            Ok(()) => Ok(()),
            // Nothing ran (storage refuses writes for now): the caller may send it again, and
            // that copy must run.
            Err(interstice_core::CallError::Unavailable(why)) => {
                if let Some(seen) = calls.seen.get_mut(&peer) {
                    seen.abandon(request);
                }
                Err(RemoteError::Busy(why.clone()))
            }
            Err(e) => Err(RemoteError::Failed(e.to_string())),
        };
        if let Some(seen) = calls.seen.get_mut(&peer)
            && !matches!(result, Err(RemoteError::Busy(_)))
        {
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
