//! The runtime: the loaded modules of a node, as one ECS resource ([`Modules`]), and the calls
//! into them.
//!
//! - `registry`: loading, upgrading and unloading modules (their schema comes from
//!   `describe`);
//! - `call`: finding reducers and queries, and running one as a transaction;
//! - `nested`: the `call_module` host function: calls into other modules inside a
//!   transaction, and calls queued for other nodes;
//! - `effects`: what committed calls leave for the node (remote calls, files, events) and the
//!   bookkeeping transactions the node runs for them;
//! - `presentation`: what the presenting plugins take (draw list, audio, watched tables' changes,
//!   file watches) and the input state calls read;
//! - `loaded`: one loaded module.

mod call;
mod describe;
mod effects;
mod loaded;
mod nested;
mod presentation;
mod registry;
#[cfg(test)]
mod tests;

pub use call::{QueryHandle, ReducerHandle};
pub use loaded::LoadedModule;
pub use nested::MAX_CALL_DEPTH;

use crate::config::EngineConfig;
use crate::db::Database;
use crate::db::tx::Undo;
use crate::error::LoadError;
use crate::events::{EventInvocation, Subscriptions};
use crate::queue::{InvocationId, ReducerQueue};
use crate::wasm::state::{GuestLog, HostState};
use crate::wasm::{engine, host_calls};
use bevy_ecs::resource::Resource;
use interstice_abi::input::InputState;
use interstice_abi::{Authority, ModuleSchema};
use presentation::encode_input_state;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::{Engine, Linker};

/// Every loaded module and the wasm engine that runs them.
#[derive(Resource)]
pub struct Modules {
    engine: Engine,
    linker: Linker<HostState>,
    config: EngineConfig,
    slots: Vec<Option<LoadedModule>>,
    by_name: BTreeMap<String, usize>,
    authorities: BTreeMap<Authority, String>,
    undo: Vec<Undo>,
    logs: Vec<GuestLog>,
    cache_dir: Option<std::path::PathBuf>,
    subscriptions: Subscriptions,
    events: Vec<EventInvocation>,
    /// Remote reducer calls of committed transactions, until their commit is durable.
    outbox: Vec<crate::host_tables::outbox::RemoteCall>,
    /// Remote reducer calls of durable transactions, not yet handed to the network.
    outbox_durable: Vec<crate::host_tables::outbox::RemoteCall>,
    /// The request id the next remote call gets ([`outbox`](crate::host_tables::outbox)).
    next_request: u64,
    /// Committed file writes of modules unloaded before their commit was durable: module,
    /// its files directory, the writes.
    orphan_files: Vec<(
        Arc<str>,
        std::path::PathBuf,
        Vec<crate::wasm::files::PendingFile>,
    )>,
    /// Where modules holding the File authority keep their files (`<data>/files`).
    files_dir: Option<std::path::PathBuf>,
    /// Paths committed calls asked to watch, not yet taken by the plugin that watches them.
    watches: Vec<(Arc<str>, std::path::PathBuf)>,
    /// What committed calls drew and played, not yet taken by the presenting plugins.
    presented: crate::wasm::present::Presented,
    /// The input state the Input holder polls (postcard), shared with every call.
    input_state: Arc<[u8]>,
    /// Changes of the tables the host watches.
    feed: crate::feed::TableFeed,
    /// Where queries' past reads are answered (the node's history), when it keeps one.
    past: Option<Arc<dyn crate::wasm::past::PastReads>>,
    now_ms: u64,
    invocation: u64,
}

impl Modules {
    /// An engine with no modules.
    ///
    /// # Errors
    ///
    /// [`LoadError::Instantiate`] when wasmtime refuses the configuration (an engine or linker
    /// error).
    pub fn new(config: EngineConfig) -> Result<Modules, LoadError> {
        let engine = engine(&config).map_err(|e| LoadError::Instantiate(e.context("engine")))?;
        let mut linker = Linker::new(&engine);
        host_calls::link(&mut linker, nested::call_module)
            .map_err(|e| LoadError::Instantiate(e.context("linker")))?;
        Ok(Modules {
            engine,
            linker,
            config,
            slots: Vec::new(),
            by_name: BTreeMap::new(),
            authorities: BTreeMap::new(),
            undo: Vec::new(),
            logs: Vec::new(),
            cache_dir: None,
            subscriptions: Subscriptions::default(),
            events: Vec::new(),
            outbox: Vec::new(),
            outbox_durable: Vec::new(),
            next_request: crate::host_tables::outbox::first_free_id(&Database::default()),
            orphan_files: Vec::new(),
            files_dir: None,
            watches: Vec::new(),
            presented: Default::default(),
            input_state: encode_input_state(&InputState::default()),
            feed: Default::default(),
            past: Some(Arc::new(crate::wasm::past::NoHistory)),
            now_ms: 0,
            invocation: 0,
        })
    }

    /// Gives modules holding the File authority a directory each under `dir`
    /// (`dir/<module>/`); without one, their file calls are refused.
    pub fn set_files_dir(&mut self, dir: Option<std::path::PathBuf>) {
        self.files_dir = dir;
    }

    /// Answers queries' past reads (`ctx.as_of`) from `past`, the node's history (storage
    /// sets this when it opens); until then, or with `None`, they are refused.
    pub fn set_past_reads(&mut self, past: Option<Arc<dyn crate::wasm::past::PastReads>>) {
        self.past = Some(past.unwrap_or_else(|| Arc::new(crate::wasm::past::NoHistory)));
    }

    /// Keeps compiled modules in `dir` so loading the same wasm again skips compilation.
    pub fn set_cache_dir(&mut self, dir: Option<std::path::PathBuf>) {
        self.cache_dir = dir;
    }

    /// The engine settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Schemas of the loaded modules, by name.
    pub fn schemas(&self) -> impl Iterator<Item = &Arc<ModuleSchema>> {
        self.by_name
            .values()
            .filter_map(|&slot| self.slots[slot].as_ref().map(|m| &m.schema))
    }

    /// The schema of a loaded module.
    pub fn schema(&self, module: &str) -> Option<&Arc<ModuleSchema>> {
        let slot = *self.by_name.get(module)?;
        self.slots[slot].as_ref().map(|m| &m.schema)
    }

    /// The binding file (`src/bindings/<module>.toml`) other modules use to call `module`
    /// with types: its public schema as TOML. `None` for a private or unknown module — a
    /// private module is still callable on its node, by name, without typed bindings.
    pub fn export_binding(&self, module: &str) -> Option<String> {
        let public = self.schema(module)?.to_public()?;
        let binding = interstice_abi::Binding { module: public };
        toml::to_string_pretty(&binding).ok()
    }

    /// The node binding (`src/bindings/node_<name>.toml`) modules on other nodes use to reach
    /// this node as `name` at `address`: the public schemas of its public modules (all of them,
    /// or those listed in `only`), as TOML.
    pub fn export_node_binding(&self, name: &str, address: &str, only: &[&str]) -> String {
        let binding = interstice_abi::NodeBinding {
            node: interstice_abi::NodeDependency {
                name: name.to_string(),
                address: address.to_string(),
            },
            modules: self
                .schemas()
                .filter(|s| only.is_empty() || only.contains(&s.name.as_str()))
                .filter_map(|s| s.to_public())
                .collect(),
        };
        toml::to_string_pretty(&binding).unwrap_or_default()
    }

    /// Which module holds each authority.
    pub fn authorities(&self) -> &BTreeMap<Authority, String> {
        &self.authorities
    }

    /// Takes the guest log lines gathered since the last call.
    pub fn drain_logs(&mut self) -> Vec<GuestLog> {
        for module in self.slots.iter_mut().flatten() {
            self.logs.append(&mut module.instance.store.data_mut().logs);
        }
        std::mem::take(&mut self.logs)
    }
}

/// Node-level events need the subscriber list, which the runtime holds: this method lives here
/// so that the queue stays below the runtime.
impl ReducerQueue {
    /// Queues the subscribers of a node-level event (`connect` / `disconnect` with the peer's
    /// node id, which is their argument) — what the network layer calls when a peer comes and
    /// goes. Returns the invocation ids.
    pub fn push_peer_event(
        &mut self,
        modules: &Modules,
        connected: bool,
        node_id: &str,
    ) -> Vec<InvocationId> {
        let event = if connected {
            interstice_abi::EventSpec::Connect
        } else {
            interstice_abi::EventSpec::Disconnect
        };
        let mut args = Vec::new();
        interstice_abi::codec::write_str(&mut args, node_id);
        modules
            .event_subscribers(&event)
            .into_iter()
            .map(|(module, reducer)| self.push_event(module, reducer, args.clone()))
            .collect()
    }
}
