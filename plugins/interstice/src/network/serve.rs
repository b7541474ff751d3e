//! Requests from peers that need the world: schemas, queries and reducer calls — and what the
//! network thread reports (peers coming and going, remote events, answers to remote calls).
//!
//! A remote reducer call is queued like any other and answered only after its
//! [`ReducerOutcome`] — that is, after its commit is durable. Request ids are de-duplicated per
//! peer, so a call retried after a lost answer runs once.

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

/// Fingerprints allowed to publish and remove modules ([`NetworkConfig::admins`]).
///
/// [`NetworkConfig::admins`]: super::NetworkConfig::admins
#[derive(Resource)]
pub(super) struct Admins(pub(super) interstice_net::transport::TrustedPeers);

/// Whether `peer` (fingerprint; `node_id` for the policy module) may do `action` to `module`
/// (see [`ModuleAction`]): the node's admins may; anyone else only with the consent of the
/// module holding the Module authority, whose query `authorize(node_id, action, module) ->
/// bool` decides — always asked with the real module name.
fn authorize(
    admins: &interstice_net::transport::TrustedPeers,
    modules: &mut Modules,
    db: &mut Database,
    peer: &str,
    node_id: &str,
    action: ModuleAction,
    module: &str,
) -> Result<(), RemoteError> {
    if admins.contains(peer) {
        return Ok(());
    }
    let action = action.name();
    let action = action.as_str();
    let Some(holder) = modules
        .authorities()
        .get(&interstice_abi::Authority::Module)
        .cloned()
    else {
        return Err(RemoteError::NotPermitted(format!(
            "only this node's owner may {action} modules"
        )));
    };
    let refused = |why: String| RemoteError::NotPermitted(format!("`{holder}` {why}"));
    let handle = modules
        .query(&holder, "authorize")
        .map_err(|_| refused("holds the Module authority but has no `authorize` query".into()))?;
    let mut args = Vec::new();
    interstice_abi::codec::write_str(&mut args, node_id);
    interstice_abi::codec::write_str(&mut args, action);
    interstice_abi::codec::write_str(&mut args, module);
    modules
        .check_query_args(handle, &args)
        .map_err(|e| refused(format!("has an `authorize` query of the wrong shape: {e}")))?;
    let answer = modules
        .call_query(db, handle, &args)
        .map_err(|e| refused(format!("failed to decide: {e}")))?;
    match answer.as_slice() {
        [1] => Ok(()),
        [0] => Err(refused(format!(
            "refused to let node {node_id} {action} `{module}`"
        ))),
        _ => Err(refused("answered something other than a bool".into())),
    }
}

/// What a peer asks to do to a module, as the Module authority's `authorize` query is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModuleAction {
    /// Install a module of a name not installed yet.
    Publish,
    /// Replace an installed module, keeping its data.
    Upgrade,
    /// Replace an installed module although the new version loses data (asked in addition to
    /// `Upgrade`).
    DropData,
    /// Remove an installed module and its data.
    Remove,
    /// Let the module (published or upgraded) hold this authority (asked in addition, once per
    /// authority it claims): consent to publish is not consent to take the Gpu or the files.
    Claim(interstice_abi::Authority),
}

impl ModuleAction {
    fn name(self) -> String {
        match self {
            ModuleAction::Publish => "publish".into(),
            ModuleAction::Upgrade => "upgrade".into(),
            ModuleAction::DropData => "drop_data".into(),
            ModuleAction::Remove => "remove".into(),
            ModuleAction::Claim(authority) => format!("claim:{}", authority.name()),
        }
    }
}

/// Decides an upload: the module is compiled and described first, so the decision names it
/// and knows whether it replaces an installed module; an upgrade needs `upgrade` (and
/// `drop_data` when asked to drop data), a new module `publish`.
fn authorize_upload(
    admins: &interstice_net::transport::TrustedPeers,
    modules: &mut Modules,
    db: &mut Database,
    upload: &super::Upload,
) -> Result<(), RemoteError> {
    if admins.contains(&upload.peer) {
        return Ok(());
    }
    let schema = modules
        .inspect(&upload.wasm)
        .map_err(|e| RemoteError::Failed(e.to_string()))?;
    let installed = modules.schema(&schema.name).is_some();
    let mut actions = vec![if installed {
        ModuleAction::Upgrade
    } else {
        ModuleAction::Publish
    }];
    if installed && upload.drop_data {
        actions.push(ModuleAction::DropData);
    }
    actions.extend(schema.authorities.iter().copied().map(ModuleAction::Claim));
    for action in actions {
        authorize(
            admins,
            modules,
            db,
            &upload.peer,
            &upload.node_id,
            action,
            &schema.name,
        )?;
    }
    Ok(())
}

/// Installs an uploaded module (durably when the node persists); a module that is installed
/// already is upgraded, keeping its data ([`Modules::upgrade`]).
fn publish(
    modules: &mut Modules,
    db: &mut Database,
    storage: Option<&mut Storage>,
    wasm: &[u8],
    drop_data: bool,
) -> Result<interstice_net::message::Published, RemoteError> {
    let refused = |e: interstice_core::LoadError| match e {
        interstice_core::LoadError::Incompatible { .. } => RemoteError::NotPermitted(format!(
            "{e}\n(publish with --drop-data to replace it anyway)"
        )),
        e => RemoteError::Failed(e.to_string()),
    };
    // Installing finds out whether the module is there already (compiling it once).
    let installed = match storage {
        Some(storage) => storage
            .load_module(modules, db, wasm)
            .and_then(|schema| {
                storage
                    .commit(db)
                    .map(|()| schema)
                    .map_err(|e| interstice_core::LoadError::Storage(e.to_string()))
            })
            .map(|schema| (schema, Vec::new(), false))
            .or_else(|e| match e {
                interstice_core::LoadError::DuplicateModule(_) => storage
                    .upgrade_module(modules, db, wasm, drop_data)
                    .map(|(schema, dropped)| (schema, dropped, true)),
                e => Err(e),
            }),
        None => modules
            .load(db, wasm)
            .map(|schema| (schema, Vec::new(), false))
            .or_else(|e| match e {
                interstice_core::LoadError::DuplicateModule(_) => modules
                    .upgrade(db, wasm, drop_data)
                    .map(|(schema, dropped)| (schema, dropped, true)),
                e => Err(e),
            }),
    };
    let (schema, dropped, upgraded) = installed.map_err(refused)?;
    Ok(interstice_net::message::Published {
        module: schema.name.clone(),
        upgraded,
        dropped,
    })
}

/// Removes a module, its tables and (when the node persists) its stored code and data.
fn remove(
    modules: &mut Modules,
    db: &mut Database,
    storage: Option<&mut Storage>,
    module: &str,
) -> Result<(), RemoteError> {
    if modules.schema(module).is_none() {
        return Err(RemoteError::NotFound(format!("module `{module}`")));
    }
    match storage {
        Some(storage) => storage
            .remove_module(modules, db, module)
            .map_err(|e| RemoteError::Failed(e.to_string())),
        None => {
            modules.unload(db, module);
            Ok(())
        }
    }
}

/// Requests remembered per peer for exactly-once execution: as many as the `__answered` rows
/// kept per peer, from which the window is seeded after a restart.
const REQUEST_WINDOW: usize = interstice_core::answered::MAX_ROWS_PER_PEER;

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
pub(super) fn serve_requests(
    inbox: Res<NetworkInbox>,
    mut status: ResMut<NetworkStatus>,
    mut health: ResMut<PeerHealth>,
    mut modules: ResMut<Modules>,
    mut db: ResMut<Database>,
    mut queue: ResMut<ReducerQueue>,
    mut calls: ResMut<RemoteCalls>,
    wanted: Res<WantedLinks>,
    mut call_outcomes: MessageWriter<RemoteCallOutcome>,
    admins: Res<Admins>,
    mut storage: Option<ResMut<Storage>>,
    mut backlog: ResMut<Backlog>,
    gatekeeper: Res<GatekeeperFlag>,
    wake: Res<super::NodeWake>,
    mut logs: ResMut<crate::logbook::LogBook>,
) {
    // The network thread lets anyone but an admin start an upload only while a module can
    // decide it.
    gatekeeper.0.store(
        modules
            .authorities()
            .contains_key(&interstice_abi::Authority::Module),
        std::sync::atomic::Ordering::Relaxed,
    );
    if let Ok(inbox) = inbox.0.lock() {
        backlog.requests.extend(inbox.try_iter());
    }
    // A bounded, fair share of what waits: the rest waits for the next frame, which a
    // waiting frame loop then runs at once.
    let batch = backlog.take_frame();
    if !backlog.requests.is_empty() {
        wake.0.notify();
    }
    for item in batch {
        let Inbound {
            peer,
            stranger,
            node_id,
            message,
            reply,
        } = match item {
            FromNetwork::Upload(upload) => {
                let outcome =
                    authorize_upload(&admins.0, &mut modules, &mut db, &upload).and_then(|()| {
                        publish(
                            &mut modules,
                            &mut db,
                            storage.as_deref_mut(),
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
                        logs.push_node(&p.module, 2, &format!("{what} by {}", upload.node_id));
                    }
                    Err(e) => warn!("node {} could not publish a module: {e}", upload.node_id),
                }
                let _ = upload.reply.send(Message::PublishResult {
                    upload: upload.upload,
                    outcome,
                });
                continue;
            }
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
            FromNetwork::Disconnected {
                node_id,
                fingerprint,
                stranger,
            } => {
                if let Some(state) = health.peers.get_mut(&node_id) {
                    state.connections = state.connections.saturating_sub(1);
                    if state.connections == 0 {
                        queue.push_peer_event(&modules, false, &node_id);
                        // Strangers come and go with fresh keys: what is kept for each goes
                        // when it does (its exactly-once window is rebuilt from `__answered`
                        // if it comes back), unless a call of its is still running.
                        if stranger && !calls.waiting.values().any(|w| w.0 == fingerprint) {
                            calls.seen.remove(&fingerprint);
                            health.peers.remove(&node_id);
                        }
                    }
                }
                continue;
            }
            FromNetwork::RemoteEvents {
                address,
                module,
                table,
                first_seq,
                events,
            } => {
                let subscribers = wanted.subscribers_of(address, &module, &table);
                for (offset, (kind, rows)) in events.into_iter().enumerate() {
                    // A publisher's numbers are its own: one that runs past u64::MAX ends
                    // the batch instead of overflowing.
                    let Some(seq) = first_seq.checked_add(offset as u64) else {
                        break;
                    };
                    for subscriber in subscribers.iter().filter(|s| s.event == kind) {
                        queue.push_remote_event(
                            subscriber.module.clone(),
                            subscriber.reducer.clone(),
                            rows.clone(),
                            subscriber.cursor.clone(),
                            seq,
                        );
                    }
                }
                continue;
            }
            FromNetwork::CallAnswered(outcome) => {
                modules.remote_call_answered(&mut db, &outcome.from, outcome.request);
                if let Err(e) = &outcome.outcome {
                    warn!(
                        "`{}`'s call of {}.{} on node `{}` failed: {e}",
                        outcome.from, outcome.module, outcome.reducer, outcome.node
                    );
                }
                call_outcomes.write(outcome);
                continue;
            }
            FromNetwork::Rtt { node_id, rtt } => {
                if let Some(state) = health.peers.get_mut(&node_id) {
                    state.rtt = Some(rtt);
                    state.last_seen = Instant::now();
                }
                for link in health.dialed.values_mut() {
                    if matches!(&link.state, LinkState::Connected { node_id: id, .. } if *id == node_id)
                    {
                        link.rtt = Some(rtt);
                    }
                }
                continue;
            }
            FromNetwork::Link { address, state } => {
                match &state {
                    LinkState::Connected { node_id, .. } => {
                        info!("link to {address}: connected to {node_id}")
                    }
                    LinkState::Refused { why, attempt: 1 } => {
                        warn!("link to {address}: refused: {why}")
                    }
                    LinkState::Lost { why, attempt: 1 } => {
                        warn!("link to {address}: lost ({why}); reconnecting")
                    }
                    _ => {}
                }
                let rtt = health
                    .dialed
                    .get(&address)
                    .filter(|_| matches!(state, LinkState::Connected { .. }))
                    .and_then(|link| link.rtt);
                health.dialed.insert(
                    address,
                    DialedNode {
                        state,
                        since: Instant::now(),
                        rtt,
                    },
                );
                continue;
            }
        };
        let answer = match message {
            Message::Ping { nonce } => Message::Pong { nonce },
            Message::StatusRequest { request } => Message::Status {
                request,
                storage: storage.as_deref().map_or_else(
                    || "ephemeral (no data directory)".into(),
                    |s| s.health().to_string(),
                ),
            },
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
                        .call_query_from(&mut db, handle, &args, &peer)
                        .map_err(|e| RemoteError::Failed(e.to_string()))
                }),
            },
            Message::CallReducer {
                request,
                module,
                reducer,
                args,
            } => {
                if !calls.seen.contains_key(&peer) {
                    // What this peer's calls committed before (even before a crash) is
                    // answered, never run again.
                    let mut window = ExactlyOnce::new(REQUEST_WINDOW);
                    for request in interstice_core::answered::answered_by(&db, &peer) {
                        let _ = window.admit(request);
                        window.complete(request, Ok(()));
                    }
                    calls.seen.insert(peer.clone(), window);
                }
                let Some(seen) = calls.seen.get_mut(&peer) else {
                    continue;
                };
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
                                let id = queue.push_remote(module, reducer, args, &peer, request);
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
            Message::RowsRequest {
                request,
                module,
                table,
                after,
                filter,
                limit,
            } => Message::Rows {
                request,
                outcome: super::rows::page(
                    &modules,
                    &db,
                    &super::rows::PageRequest {
                        module: &module,
                        table: &table,
                        after: after.as_deref(),
                        filter: filter.as_ref().map(|(c, v)| (c.as_str(), v.as_str())),
                        limit,
                        owner: admins.0.contains(&peer),
                    },
                ),
            },
            Message::LogsRequest {
                request,
                module,
                after,
            } => Message::Logs {
                request,
                outcome: if admins.0.contains(&peer) {
                    Ok(log_page(&logs, module.as_deref(), after))
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
            Message::Remove { request, module } => {
                let outcome = authorize(
                    &admins.0,
                    &mut modules,
                    &mut db,
                    &peer,
                    &node_id,
                    ModuleAction::Remove,
                    &module,
                )
                .and_then(|()| remove(&mut modules, &mut db, storage.as_deref_mut(), &module));
                match &outcome {
                    Ok(()) => info!("node {node_id} removed module `{module}`"),
                    Err(e) => warn!("node {node_id} could not remove `{module}`: {e}"),
                }
                Message::RemoveResult { request, outcome }
            }
            other => Message::Refuse {
                reason: format!("this node does not serve {other:?}"),
            },
        };
        let _ = reply.send(answer);
    }
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
