//! The world's side of links: which nodes and tables loaded modules depend on, the events
//! that arrive from them, and the reducer calls committed transactions send to them.

use super::NetworkOutbox;
use super::links::{LinkCommand, OutgoingCall};
use bevy::prelude::*;
use interstice_abi::{EventSpec, TableEvent};
use interstice_core::Modules;
use interstice_net::message::RemoteError;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, ToSocketAddrs};

/// The answer to a reducer call a module sent to another node
/// (`ctx.call_remote_reducer` / `bindings::<node>::<module>::<reducer>`). A game can read these
/// as Bevy messages; failures are also logged.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct RemoteCallOutcome {
    /// The call's request id (unique on this node).
    pub request: u64,
    /// The module that made the call.
    pub from: String,
    /// The node, by the name the calling module uses.
    pub node: String,
    /// The module called on that node.
    pub module: String,
    /// The reducer.
    pub reducer: String,
    /// Committed on that node, or why not.
    pub outcome: Result<(), RemoteError>,
}

/// A local reducer subscribed to another node's table.
#[derive(Debug, Clone)]
pub(super) struct RemoteSubscriber {
    /// Which change it wants.
    pub event: TableEvent,
    /// Its module.
    pub module: String,
    /// The reducer.
    pub reducer: String,
    /// Its durable position's key ([`interstice_core::cursors`]).
    pub cursor: String,
}

/// Subscriber reducers of remote tables, by `(address, module, table)`.
type RemoteSubscribers = BTreeMap<(SocketAddr, String, String), Vec<RemoteSubscriber>>;

/// What loaded modules want from other nodes, as last told to the network thread.
#[derive(Resource, Default)]
pub(super) struct WantedLinks {
    /// The loaded modules, to notice a change.
    seen: Vec<String>,
    /// Addresses by `(module, node name)`.
    addresses: BTreeMap<(String, String), SocketAddr>,
    /// Subscribers of remote tables.
    pub(super) subscribers: RemoteSubscribers,
    /// Subscriptions asked for.
    subscribed: BTreeSet<(SocketAddr, String, String)>,
    /// Addresses the operator gave for node names ([`NetworkConfig::nodes`](super::NetworkConfig::nodes)).
    overrides: BTreeMap<String, SocketAddr>,
}

impl WantedLinks {
    pub(super) fn with_overrides(overrides: BTreeMap<String, SocketAddr>) -> WantedLinks {
        WantedLinks {
            overrides,
            ..WantedLinks::default()
        }
    }

    /// Where the node a module calls `name` is: the operator's override, else the binding's
    /// address.
    fn locate(&self, name: &str, address: &str) -> Option<SocketAddr> {
        self.overrides
            .get(name)
            .copied()
            .or_else(|| resolve(address))
    }

    /// Local subscriber reducers of an event on another node's table.
    pub(super) fn subscribers_of(
        &self,
        address: SocketAddr,
        module: &str,
        table: &str,
    ) -> &[RemoteSubscriber] {
        self.subscribers
            .get(&(address, module.to_string(), table.to_string()))
            .map_or(&[], Vec::as_slice)
    }
}

fn resolve(address: &str) -> Option<SocketAddr> {
    address.to_socket_addrs().ok()?.next()
}

/// Tells the network thread about the nodes and tables of newly loaded modules.
pub(super) fn want_links(
    modules: Res<Modules>,
    db: Res<interstice_core::Database>,
    mut wanted: ResMut<WantedLinks>,
    outbox: Res<NetworkOutbox>,
) {
    // Every frame: compare without allocating; rebuild only when the modules changed.
    if modules.schemas().map(|s| &s.name).eq(wanted.seen.iter()) {
        return;
    }
    wanted.seen = modules.schemas().map(|s| s.name.clone()).collect();
    let mut addresses = BTreeMap::new();
    let mut subscribers: RemoteSubscribers = BTreeMap::new();
    for schema in modules.schemas() {
        for node in &schema.nodes {
            match wanted.locate(&node.name, &node.address) {
                Some(address) => {
                    addresses.insert((schema.name.clone(), node.name.clone()), address);
                    let _ = outbox.0.send(LinkCommand::Keep { address });
                }
                None => error!(
                    "module `{}`: node `{}` has an address that does not resolve: {}",
                    schema.name, node.name, node.address
                ),
            }
        }
        for reducer in &schema.reducers {
            if let Some(EventSpec::Table {
                node: Some(node),
                module,
                table,
                event,
            }) = &reducer.on
                && let Some(address) = addresses.get(&(schema.name.clone(), node.clone()))
            {
                subscribers
                    .entry((*address, module.clone(), table.clone()))
                    .or_default()
                    .push(RemoteSubscriber {
                        event: *event,
                        module: schema.name.clone(),
                        reducer: reducer.name.clone(),
                        cursor: interstice_core::host_tables::cursors::key(
                            &reducer.name,
                            node,
                            module,
                            table,
                        ),
                    });
            }
        }
    }
    for ((address, module, table), local) in &subscribers {
        let key = (*address, module.clone(), table.clone());
        if wanted.subscribed.insert(key) {
            // From the first event some subscriber has not applied yet (1: from the oldest
            // the other node retains); what others applied already is skipped when it comes.
            let from_seq = local
                .iter()
                .map(|s| {
                    interstice_core::host_tables::cursors::position(&db, &s.module, &s.cursor)
                        .map_or(1, |done| done + 1)
                })
                .min()
                .unwrap_or(1);
            let _ = outbox.0.send(LinkCommand::Subscribe {
                address: *address,
                module: module.clone(),
                table: table.clone(),
                from_seq,
            });
        }
    }
    wanted.addresses = addresses;
    wanted.subscribers = subscribers;
}

/// Hands the remote calls of this frame's committed transactions to the network thread.
pub(super) fn send_remote_calls(
    mut modules: ResMut<Modules>,
    wanted: Res<WantedLinks>,
    outbox: Res<NetworkOutbox>,
    mut outcomes: MessageWriter<RemoteCallOutcome>,
) {
    for call in modules.take_remote_calls() {
        let Some(address) = wanted.locate(&call.node, &call.address) else {
            error!(
                "`{}` called {}.{} on node `{}`, whose address {} does not resolve",
                call.from, call.module, call.reducer, call.node, call.address
            );
            // It stays in the outbox (the name may resolve later): sent again after a restart.
            outcomes.write(RemoteCallOutcome {
                request: call.request,
                outcome: Err(RemoteError::NotFound(format!(
                    "node address {}",
                    call.address
                ))),
                from: call.from,
                node: call.node,
                module: call.module,
                reducer: call.reducer,
            });
            continue;
        };
        let _ = outbox.0.send(LinkCommand::Call {
            address,
            call: OutgoingCall {
                request: call.request,
                from: call.from,
                node: call.node,
                module: call.module,
                reducer: call.reducer,
                args: call.args,
            },
        });
    }
}
