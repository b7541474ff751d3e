//! [`Modules`]: the loaded modules of a node, as one ECS resource, and the calls into them.

use crate::config::EngineConfig;
use crate::db::tx::{Undo, rollback};
use crate::db::{Database, ModuleTables};
use crate::error::{CallError, LoadError};
use crate::events::{EventInvocation, Subscriptions};
use crate::wasm::instance::{EntryPoint, Instance};
use crate::wasm::state::{GuestLog, HostState};
use crate::wasm::{cache, engine, host_calls};
use bevy_ecs::resource::Resource;
use interstice_abi::codec::{Reader, decode_value};
use interstice_abi::draw::DrawCommand;
use interstice_abi::input::InputState;
use interstice_abi::protocol::{
    ABI_VERSION, IMPORT_MODULE, ModuleDescription, QueryDescription, ReducerDescription,
    TableDescription, exports, imports,
};
use interstice_abi::{Authority, EventSpec, HostError, ModuleSchema, TypeSet};
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::{Engine, InstancePre, Linker};

/// Every function a module may import.
const HOST_FUNCTIONS: [&str; 16] = [
    imports::LOG,
    imports::PANIC,
    imports::RESOLVE_TABLE,
    imports::TABLE_OP,
    imports::TAKE_RESPONSE,
    imports::SCHEDULE,
    imports::CANCEL_SCHEDULE,
    imports::NOW,
    imports::RANDOM_SEED,
    imports::CALL_MODULE,
    imports::CALLER,
    imports::CALLER_NODE,
    imports::FILE_OP,
    imports::GPU_SUBMIT,
    imports::AUDIO_WRITE,
    imports::INPUT_STATE,
];

/// Deepest chain of cross-module calls (a calls b calls c ...) in one transaction.
pub const MAX_CALL_DEPTH: u32 = 16;

/// A loaded module.
pub struct LoadedModule {
    schema: Arc<ModuleSchema>,
    name: Arc<str>,
    /// How to make a fresh instance: `None` for a module loaded natively.
    pre: Option<InstancePre<HostState>>,
    instance: Instance,
    reducers: Vec<EntryPoint>,
    queries: Vec<EntryPoint>,
    /// Whether the instance trapped and must be replaced before the next call.
    poisoned: bool,
    /// Whether it imports `call_module` (only then are other modules lent to its calls).
    calls_modules: bool,
}

impl LoadedModule {
    /// Replaces a trapped instance: it may have broken its own heap; modules keep no state
    /// outside their tables, so a fresh instance is equivalent and safe.
    fn refresh(&mut self, memory_cap: usize, fuel: u64) -> Result<(), CallError> {
        if !self.poisoned {
            return Ok(());
        }
        let mut instance = match &self.pre {
            Some(pre) => Instance::new(pre, self.name.clone(), memory_cap, fuel)
                .map_err(|e| CallError::Trap(format!("re-instantiation failed: {e}")))?,
            None => {
                let engine = self.instance.store.engine().clone();
                let mut fresh = Instance::native(&engine, self.name.clone(), memory_cap);
                fresh.store.data_mut().schema = Some(self.schema.clone());
                fresh
            }
        };
        let (reducers, queries) = entry_points(&mut instance, &self.schema)
            .map_err(|e| CallError::Trap(format!("re-instantiation failed: {e}")))?;
        // Committed file writes waiting for their fsync belong to earlier transactions.
        let waiting = std::mem::take(&mut self.instance.store.data_mut().committed_files);
        instance.store.data_mut().committed_files = waiting;
        self.instance = instance;
        self.reducers = reducers;
        self.queries = queries;
        self.poisoned = false;
        Ok(())
    }
}

/// What a call may reach besides its own module: every other module and its tables, moved
/// into the running module's store for the duration of the call (and back after it), so a
/// nested call needs no shared or aliased access to [`Modules`].
#[derive(Default)]
pub struct CallEnv {
    slots: Vec<Option<LoadedModule>>,
    by_name: BTreeMap<String, usize>,
    db: Database,
    depth: u32,
    memory_cap: usize,
    quotas: crate::config::Quotas,
    /// Where the outermost call's native stack was when it started (an address; stacks grow
    /// down), and what a chain of nested calls may use below it.
    stack_base: usize,
    stack_budget: usize,
    max_stack: usize,
    now_ms: u64,
    invocation: u64,
    /// Nested calls made so far in this transaction: each gets its own random seed.
    calls: u64,
    /// The peer whose remote call the transaction runs (its node id), for every module the
    /// transaction reaches.
    caller_node: Option<Arc<str>>,
}

impl LoadedModule {
    /// The module's schema.
    pub fn schema(&self) -> &Arc<ModuleSchema> {
        &self.schema
    }
}

/// A reducer resolved once, for calling many times without name lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReducerHandle {
    module: usize,
    reducer: usize,
}

/// A query resolved once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryHandle {
    module: usize,
    query: usize,
}

fn encode_input_state(state: &InputState) -> Arc<[u8]> {
    // Plain strings, floats and vectors: postcard cannot fail on them.
    Arc::from(postcard::to_allocvec(state).unwrap_or_default())
}

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
    outbox: Vec<crate::wasm::state::RemoteCall>,
    /// Remote reducer calls of durable transactions, not yet handed to the network.
    outbox_durable: Vec<crate::wasm::state::RemoteCall>,
    /// The request id the next remote call gets ([`outbox`](crate::outbox)).
    next_request: u64,
    /// Committed file writes of modules unloaded before their commit was durable: module,
    /// its files directory, the writes.
    orphan_files: Vec<(
        Arc<str>,
        std::path::PathBuf,
        Vec<crate::wasm::files::PendingFile>,
    )>,
    /// The peer and request id of the next reducer call, when it comes from a peer.
    origin: Option<(String, u64)>,
    /// The cursor key and event number of the next reducer call, when it applies an event of
    /// another node's table.
    cursor: Option<(String, u64)>,
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
    now_ms: u64,
    invocation: u64,
}

impl Modules {
    /// An engine with no modules.
    pub fn new(config: EngineConfig) -> Result<Modules, LoadError> {
        let engine =
            engine(&config).map_err(|e| LoadError::Instantiate(format!("engine: {e:#}")))?;
        let mut linker = Linker::new(&engine);
        host_calls::link(&mut linker)
            .map_err(|e| LoadError::Instantiate(format!("linker: {e:#}")))?;
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
            next_request: crate::outbox::first_free_id(&Database::default()),
            orphan_files: Vec::new(),
            origin: None,
            cursor: None,
            files_dir: None,
            watches: Vec::new(),
            presented: Default::default(),
            input_state: encode_input_state(&InputState::default()),
            feed: Default::default(),
            now_ms: 0,
            invocation: 0,
        })
    }

    /// The draw list of the last committed reducer call of the Gpu holder that drew, since
    /// the last take (`None`: nothing new; keep showing the previous frame).
    pub fn take_draw_list(&mut self) -> Option<(Arc<str>, Vec<DrawCommand>)> {
        self.presented.draw.take()
    }

    /// The samples the Audio holder's committed calls queued since the last take,
    /// interleaved in the channel count it was asked for.
    pub fn take_audio(&mut self) -> Vec<f32> {
        std::mem::take(&mut self.presented.samples)
    }

    /// Records every committed change of `module.table` from now on, for
    /// [`take_table_changes`](Self::take_table_changes).
    pub fn watch_table(&mut self, module: &str, table: &str) {
        self.feed.watch(module, table);
    }

    /// Takes the watched tables' changes since the last call: one batch per committed
    /// transaction and module, oldest first.
    pub fn take_table_changes(&mut self) -> Vec<crate::feed::ChangeBatch> {
        self.feed.take()
    }

    /// Sets what the Input holder sees when it polls (`input_state`).
    pub fn set_input_state(&mut self, state: &InputState) {
        self.input_state = encode_input_state(state);
    }

    /// Takes the paths committed calls asked to watch (File authority): the module and the
    /// file or directory, inside the module's own directory.
    pub fn take_watch_requests(&mut self) -> Vec<(Arc<str>, std::path::PathBuf)> {
        std::mem::take(&mut self.watches)
    }

    /// The directory of a File holder's files (`<data>/files/<module>`), when the node keeps
    /// a data directory.
    pub fn files_dir_of(&self, module: &str) -> Option<std::path::PathBuf> {
        self.files_dir.as_ref().map(|d| d.join(module))
    }

    /// Sets the logical time the next calls run at (the transaction timestamp).
    pub fn set_now(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// Sets the position of the next call in the node's sequence of invocations; with the
    /// logical time it seeds the call's random numbers, so replaying the same invocations in
    /// the same order draws the same numbers.
    pub fn set_invocation(&mut self, invocation: u64) {
        self.invocation = invocation;
    }

    /// The logical time calls run at.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Forgets an answered remote call: takes it out of `module`'s outbox in a bookkeeping
    /// transaction (journaled like any other), so a restart does not send it again.
    pub fn remote_call_answered(&mut self, db: &mut Database, module: &str, request: u64) {
        let now = self.now_ms;
        let Some(tables) = db.module_mut(module) else {
            return;
        };
        let mut undo = std::mem::take(&mut self.undo);
        if crate::outbox::remove(&mut tables.tables, &mut undo, request)
            && let Err(e) = db.record_bookkeeping(now, module, crate::outbox::OUTBOX_TABLE, &undo)
        {
            tracing::error!(target: "interstice", "forgetting answered call {request}: {e}");
        }
        undo.clear();
        self.undo = undo;
    }

    /// After recovery: numbers new remote calls above every id still in an outbox, and sends
    /// every call still there again (they are durable: they committed before the restart).
    pub fn resume_outbox(&mut self, db: &Database) {
        self.next_request = self.next_request.max(crate::outbox::first_free_id(db));
        let mut pending = crate::outbox::pending(db);
        pending.append(&mut self.outbox_durable);
        self.outbox_durable = pending;
    }

    /// Runs the bookkeeping transaction of a due schedule entry: removes it, or moves a
    /// repeating one to its next time. Journaled like any transaction.
    pub fn settle_schedule_entry(&mut self, db: &mut Database, entry: &crate::schedule::DueEntry) {
        let now = self.now_ms;
        let Some(tables) = db.module_mut(&entry.module) else {
            return;
        };
        let Some(index) = tables
            .tables
            .iter()
            .position(|t| t.schema().name == crate::schedule::SCHEDULE_TABLE)
        else {
            return;
        };
        let mut undo = std::mem::take(&mut self.undo);
        let table = &mut tables.tables[index];
        let id = interstice_abi::Value::U64(entry.id);
        match crate::schedule::after_run(entry, now) {
            None => {
                table.delete(&id, &mut undo, index as u32);
            }
            Some(row) => {
                if let Err(e) = table.update(row, &mut undo, index as u32, None) {
                    tracing::error!(target: "interstice", "cannot reschedule {}: {e}", entry.reducer);
                }
            }
        }
        if let Err(e) =
            db.record_bookkeeping(now, &entry.module, crate::schedule::SCHEDULE_TABLE, &undo)
        {
            tracing::error!(target: "interstice", "schedule bookkeeping of {}: {e}", entry.reducer);
        }
        undo.clear();
        self.undo = undo;
    }

    /// Gives modules holding the File authority a directory each under `dir`
    /// (`dir/<module>/`); without one, their file calls are refused.
    pub fn set_files_dir(&mut self, dir: Option<std::path::PathBuf>) {
        self.files_dir = dir;
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

    /// Validates and installs a module, creates its tables and runs its `init` and `load`
    /// hooks: a first load. On any error nothing is left behind.
    pub fn load(&mut self, db: &mut Database, wasm: &[u8]) -> Result<Arc<ModuleSchema>, LoadError> {
        let schema = self.install(db, wasm)?;
        self.run_hooks(db, &schema.name, true)?;
        Ok(schema)
    }

    /// Validates and installs a module and creates its (empty) tables, without running any
    /// hook: storage uses this to restore a module before filling its tables.
    pub fn install(
        &mut self,
        db: &mut Database,
        wasm: &[u8],
    ) -> Result<Arc<ModuleSchema>, LoadError> {
        let prepared = self.prepare(wasm)?;
        self.register(db, prepared, None)
    }

    /// The schema a module would have, checked as for loading, without loading it. The
    /// compiled code is not cached: a module only inspected (an upload not authorized yet)
    /// leaves nothing in the data directory.
    pub fn inspect(&self, wasm: &[u8]) -> Result<ModuleSchema, LoadError> {
        Ok(self.prepare_with(wasm, None)?.schema)
    }

    /// Compiles, instantiates and describes a module; checks its imports, ABI and schema.
    fn prepare(&self, wasm: &[u8]) -> Result<Prepared, LoadError> {
        self.prepare_with(wasm, self.cache_dir.as_deref())
    }

    /// [`prepare`](Modules::prepare), caching compiled code in `cache_dir` when there is one.
    fn prepare_with(
        &self,
        wasm: &[u8],
        cache_dir: Option<&std::path::Path>,
    ) -> Result<Prepared, LoadError> {
        let module = cache::compile(&self.engine, cache_dir, wasm)
            .map_err(|e| LoadError::InvalidWasm(format!("{e:#}")))?;
        for import in module.imports() {
            if import.module() != IMPORT_MODULE || !HOST_FUNCTIONS.contains(&import.name()) {
                return Err(LoadError::UnknownImport {
                    module: import.module().into(),
                    name: import.name().into(),
                });
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        let fuel = self.config.fuel_per_call;
        let mut instance =
            Instance::new(&pre, Arc::from("(loading)"), self.config.memory_cap, fuel)?;

        let calls_modules = module
            .imports()
            .any(|i| i.module() == IMPORT_MODULE && i.name() == imports::CALL_MODULE);
        let schema = check_and_describe(&mut instance, fuel)?;
        Ok(Prepared {
            pre: Some(pre),
            instance,
            schema,
            calls_modules,
        })
    }

    /// Validates and installs the module compiled into this program (not into wasm) under the
    /// name `module`, creates its tables and runs its `init` and `load` hooks, as [`load`]
    /// does for wasm. Its reducers and queries run as native code with the same host calls,
    /// transactions, events and schedules; what only a wasm store has (calls to other
    /// modules, files, drawing, audio, input) answers an error. This is how a module's own
    /// `cargo test` runs it (`interstice-testing`); a node never loads modules this way.
    ///
    /// [`load`]: Modules::load
    pub fn load_native(
        &mut self,
        db: &mut Database,
        module: &str,
    ) -> Result<Arc<ModuleSchema>, LoadError> {
        if interstice_abi::native::exports_of(module).next().is_none() {
            return Err(LoadError::MissingExport(format!(
                "no module `{module}` is compiled into this program (linked: {:?})",
                interstice_abi::native::linked_modules()
            )));
        }
        let fuel = self.config.fuel_per_call;
        let mut instance =
            Instance::native(&self.engine, Arc::from(module), self.config.memory_cap);
        let schema = check_and_describe(&mut instance, fuel)?;
        let prepared = Prepared {
            pre: None,
            instance,
            schema,
            calls_modules: false,
        };
        let schema = self.register(db, prepared, None)?;
        self.run_hooks(db, &schema.name, true)?;
        Ok(schema)
    }

    /// Installs a prepared module, with `tables` (filled by an upgrade) or empty ones.
    fn register(
        &mut self,
        db: &mut Database,
        prepared: Prepared,
        tables: Option<ModuleTables>,
    ) -> Result<Arc<ModuleSchema>, LoadError> {
        let Prepared {
            pre,
            mut instance,
            schema,
            calls_modules,
        } = prepared;
        if self.by_name.contains_key(&schema.name) {
            return Err(LoadError::DuplicateModule(schema.name.clone()));
        }
        for authority in &schema.authorities {
            if let Some(holder) = self.authorities.get(authority) {
                return Err(LoadError::AuthorityTaken {
                    authority: *authority,
                    holder: holder.clone(),
                });
            }
        }
        let name: Arc<str> = Arc::from(schema.name.as_str());
        instance.store.data_mut().module = name.clone();
        let (reducers, queries) = entry_points(&mut instance, &schema)?;

        // Everything is checked: install.
        let schema = Arc::new(schema);
        let slot = self.slots.len();
        self.slots.push(Some(LoadedModule {
            schema: schema.clone(),
            name,
            pre,
            instance,
            reducers,
            queries,
            poisoned: false,
            calls_modules,
        }));
        self.by_name.insert(schema.name.clone(), slot);
        for authority in &schema.authorities {
            self.authorities.insert(*authority, schema.name.clone());
        }
        let tables = tables.unwrap_or_else(|| ModuleTables::for_schema(&schema));
        db.insert_module(&schema, tables);
        self.rebuild_subscriptions();
        tracing::info!(target: "interstice", module = %schema.name, version = %schema.version, "module loaded");

        Ok(schema)
    }

    /// Replaces an installed module with new code, keeping its data: rows move into the new
    /// tables (new trailing optional fields start as `None`), schedules, answered calls and
    /// subscriber positions carry over. A change that would lose data is refused with its
    /// differences unless `drop_data` (then the affected tables start empty). On any error
    /// the installed module is left as it was. No hook runs.
    pub fn upgrade(
        &mut self,
        db: &mut Database,
        wasm: &[u8],
        drop_data: bool,
    ) -> Result<(Arc<ModuleSchema>, Vec<String>), LoadError> {
        let prepared = self.prepare(wasm)?;
        let name = prepared.schema.name.clone();
        let old = self
            .schema(&name)
            .cloned()
            .ok_or_else(|| LoadError::Storage(format!("module `{name}` is not installed")))?;
        for authority in &prepared.schema.authorities {
            if let Some(holder) = self.authorities.get(authority)
                && *holder != name
            {
                return Err(LoadError::AuthorityTaken {
                    authority: *authority,
                    holder: holder.clone(),
                });
            }
        }
        let plan = crate::upgrade::plan(&old, &prepared.schema);
        let dropped = match &plan {
            Ok(_) => Vec::new(),
            Err(differences) if !drop_data => {
                return Err(LoadError::Incompatible {
                    module: name,
                    differences: differences.clone(),
                });
            }
            Err(differences) => differences.clone(),
        };
        // Fill the new tables aside: nothing changes until every row fits.
        let old_tables = db
            .module(&name)
            .ok_or_else(|| LoadError::Storage(format!("module `{name}` has no tables")))?;
        let tables = crate::upgrade::migrate(old_tables, &prepared.schema).map_err(|reason| {
            LoadError::Incompatible {
                module: name.clone(),
                differences: vec![reason],
            }
        })?;
        self.unload(db, &name);
        let schema = self.register(db, prepared, Some(tables))?;
        Ok((schema, dropped))
    }

    /// Runs a module's `init` hooks (on its first load only) and then its `load` hooks, in name
    /// order, each as its own transaction. If one fails, the module is unloaded.
    pub fn run_hooks(
        &mut self,
        db: &mut Database,
        module: &str,
        first_load: bool,
    ) -> Result<(), LoadError> {
        let (slot, loaded) = self.loaded(module).map_err(|e| LoadError::Hook {
            reducer: "(none)".into(),
            error: e,
        })?;
        let schema = loaded.schema.clone();
        let mark = db.journal_mut().map(|j| j.mark());
        let events: &[EventSpec] = if first_load {
            &[EventSpec::Init, EventSpec::Load]
        } else {
            &[EventSpec::Load]
        };
        for event in events {
            let hooks: Vec<usize> = schema
                .reducers
                .iter()
                .enumerate()
                .filter(|(_, r)| r.on.as_ref() == Some(event))
                .map(|(i, _)| i)
                .collect();
            for reducer in hooks {
                let handle = ReducerHandle {
                    module: slot,
                    reducer,
                };
                if let Err(error) = self.invoke_reducer(db, handle, &[]) {
                    // Undo the whole load, including what earlier hooks committed and the
                    // calls to other nodes they made.
                    if let (Some(mark), Some(journal)) = (mark, db.journal_mut()) {
                        journal.rewind(mark);
                    }
                    self.outbox.retain(|call| call.from != schema.name);
                    if let Some(loaded) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                        loaded.instance.store.data_mut().committed_files.clear();
                    }
                    self.unload(db, &schema.name);
                    return Err(LoadError::Hook {
                        reducer: schema.reducers[reducer].name.clone(),
                        error,
                    });
                }
            }
        }
        Ok(())
    }

    /// Removes a module, its tables and its authorities. Returns whether it was loaded.
    pub fn unload(&mut self, db: &mut Database, module: &str) -> bool {
        let Some(slot) = self.by_name.remove(module) else {
            return false;
        };
        // Its committed file writes still wait for their fsync: they outlive the instance.
        if let Some(mut loaded) = self.slots[slot].take() {
            let state = loaded.instance.store.data_mut();
            let files = std::mem::take(&mut state.committed_files);
            if let (false, Some(root)) = (files.is_empty(), state.files_root.clone()) {
                self.orphan_files.push((loaded.name.clone(), root, files));
            }
        }
        self.authorities.retain(|_, holder| holder != module);
        db.remove_module(module);
        self.rebuild_subscriptions();
        true
    }

    fn rebuild_subscriptions(&mut self) {
        let schemas: Vec<Arc<ModuleSchema>> = self.schemas().cloned().collect();
        self.subscriptions = Subscriptions::build(schemas.iter());
    }

    /// Marks the next reducer call as request `request` of `peer`: the call's transaction also
    /// records that the request ran ([`answered`](crate::answered)).
    pub fn set_origin(&mut self, origin: Option<(String, u64)>) {
        self.origin = origin;
    }

    /// Marks the next reducer call as applying event `seq` under cursor `key`: it runs only if
    /// that event was not applied yet, and its transaction records it
    /// ([`cursors`](crate::cursors)).
    pub fn set_cursor(&mut self, cursor: Option<(String, u64)>) {
        self.cursor = cursor;
    }

    /// Takes the reducer calls to other nodes that durable transactions made, in order (the
    /// network layer sends them).
    pub fn take_remote_calls(&mut self) -> Vec<crate::wasm::state::RemoteCall> {
        std::mem::take(&mut self.outbox_durable)
    }

    /// Lets out the effects of every transaction committed so far, once the caller has made
    /// those commits durable: file writes reach the disk, remote calls become
    /// [`take_remote_calls`](Modules::take_remote_calls)'s.
    pub fn release_effects(&mut self) {
        self.outbox_durable.append(&mut self.outbox);
        for (name, root, files) in std::mem::take(&mut self.orphan_files) {
            crate::wasm::files::apply(&root, &name, files);
        }
        for loaded in self.slots.iter_mut().flatten() {
            let state = loaded.instance.store.data_mut();
            if state.committed_files.is_empty() {
                continue;
            }
            let files = std::mem::take(&mut state.committed_files);
            if let Some(root) = state.files_root.clone() {
                crate::wasm::files::apply(&root, &loaded.name, files);
            }
        }
    }

    /// Takes the subscriber invocations caused by the transactions committed since the last
    /// call, in order.
    pub fn take_events(&mut self) -> Vec<EventInvocation> {
        std::mem::take(&mut self.events)
    }

    /// Moves the pending subscriber invocations into `out` (in order), keeping this buffer's
    /// allocation for the next transaction.
    pub fn drain_events_into(&mut self, out: &mut Vec<EventInvocation>) {
        out.append(&mut self.events);
    }

    /// Finds a reducer that subscribes to a table event, to deliver an event to it.
    pub fn subscriber(&self, module: &str, reducer: &str) -> Result<ReducerHandle, CallError> {
        let (slot, loaded) = self.loaded(module)?;
        let index = loaded
            .schema
            .reducers
            .iter()
            .position(|r| {
                r.name == reducer
                    && matches!(
                        r.on,
                        Some(
                            EventSpec::Table { .. }
                                | EventSpec::Connect
                                | EventSpec::Disconnect
                                | EventSpec::Host(_)
                        )
                    )
            })
            .ok_or_else(|| CallError::NoSuchReducer {
                module: module.into(),
                name: reducer.into(),
            })?;
        Ok(ReducerHandle {
            module: slot,
            reducer: index,
        })
    }

    /// The reducers subscribed to a node-level event (`connect`, `disconnect`, host events),
    /// in (module name, reducer name) order.
    pub fn event_subscribers(&self, event: &EventSpec) -> Vec<(String, String)> {
        self.schemas()
            .flat_map(|schema| {
                schema
                    .reducers
                    .iter()
                    .filter(|r| r.on.as_ref() == Some(event))
                    .map(|r| (schema.name.clone(), r.name.clone()))
            })
            .collect()
    }

    /// Finds a reducer that may be called directly (not a subscriber).
    pub fn reducer(&self, module: &str, reducer: &str) -> Result<ReducerHandle, CallError> {
        let (slot, loaded) = self.loaded(module)?;
        let index = loaded
            .schema
            .reducers
            .iter()
            .position(|r| r.name == reducer)
            .ok_or_else(|| CallError::NoSuchReducer {
                module: module.into(),
                name: reducer.into(),
            })?;
        if loaded.schema.reducers[index].on.is_some() {
            return Err(CallError::SubscriberOnly(reducer.into()));
        }
        Ok(ReducerHandle {
            module: slot,
            reducer: index,
        })
    }

    /// Finds a query.
    pub fn query(&self, module: &str, query: &str) -> Result<QueryHandle, CallError> {
        let (slot, loaded) = self.loaded(module)?;
        let index = loaded
            .schema
            .queries
            .iter()
            .position(|q| q.name == query)
            .ok_or_else(|| CallError::NoSuchQuery {
                module: module.into(),
                name: query.into(),
            })?;
        Ok(QueryHandle {
            module: slot,
            query: index,
        })
    }

    fn loaded(&self, module: &str) -> Result<(usize, &LoadedModule), CallError> {
        let slot = *self
            .by_name
            .get(module)
            .ok_or_else(|| CallError::NoSuchModule(module.into()))?;
        let loaded = self.slots[slot]
            .as_ref()
            .ok_or_else(|| CallError::NoSuchModule(module.into()))?;
        Ok((slot, loaded))
    }

    /// Checks encoded arguments against a reducer's signature.
    pub fn check_reducer_args(&self, handle: ReducerHandle, args: &[u8]) -> Result<(), CallError> {
        let loaded = self.slot(handle.module)?;
        let reducer = &loaded.schema.reducers[handle.reducer];
        check_args(
            &loaded.schema.types,
            reducer.args.iter().map(|a| &a.ty),
            args,
        )
    }

    fn slot(&self, slot: usize) -> Result<&LoadedModule, CallError> {
        self.slots
            .get(slot)
            .and_then(Option::as_ref)
            .ok_or_else(|| CallError::NoSuchModule(format!("#{slot}")))
    }

    /// Runs a reducer as one transaction: committed if it returns normally, rolled back if it
    /// fails, traps, runs out of fuel or exceeds its memory cap.
    pub fn call_reducer(
        &mut self,
        db: &mut Database,
        handle: ReducerHandle,
        args: &[u8],
    ) -> Result<(), CallError> {
        self.invoke_reducer(db, handle, args)
    }

    fn invoke_reducer(
        &mut self,
        db: &mut Database,
        handle: ReducerHandle,
        args: &[u8],
    ) -> Result<(), CallError> {
        self.invoke(db, handle.module, Entry::Reducer(handle.reducer), args)
            .map(drop)
    }

    /// Runs a query (read-only) and returns its encoded result.
    pub fn call_query(
        &mut self,
        db: &mut Database,
        handle: QueryHandle,
        args: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        self.invoke(db, handle.module, Entry::Query(handle.query), args)
    }

    /// Runs a query for a peer (`peer`: its certificate fingerprint), whose node id
    /// `ctx.caller_node()` then answers.
    pub fn call_query_from(
        &mut self,
        db: &mut Database,
        handle: QueryHandle,
        args: &[u8],
        peer: &str,
    ) -> Result<Vec<u8>, CallError> {
        // Taken by `invoke` whatever happens, so it reaches no other call.
        self.origin = Some((peer.to_string(), 0));
        self.invoke(db, handle.module, Entry::Query(handle.query), args)
    }

    /// The type a query returns, with the module's types.
    pub fn query_result_type(
        &self,
        handle: QueryHandle,
    ) -> Result<(interstice_abi::ValueType, &TypeSet), CallError> {
        let loaded = self.slot(handle.module)?;
        Ok((
            loaded.schema.queries[handle.query].returns.clone(),
            &loaded.schema.types,
        ))
    }

    /// Checks encoded arguments against a query's signature.
    pub fn check_query_args(&self, handle: QueryHandle, args: &[u8]) -> Result<(), CallError> {
        let loaded = self.slot(handle.module)?;
        let query = &loaded.schema.queries[handle.query];
        check_args(&loaded.schema.types, query.args.iter().map(|a| &a.ty), args)
    }

    fn invoke(
        &mut self,
        db: &mut Database,
        slot: usize,
        entry: Entry,
        args: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let fuel = self.config.fuel_per_call;
        let memory_cap = self.config.memory_cap;
        // Meant for this call only, whatever happens to it.
        let origin = self.origin.take();
        let caller_node: Option<Arc<str>> = origin
            .as_ref()
            .map(|(peer, _)| interstice_abi::node_id_of(peer).into());
        let cursor = self.cursor.take();
        if let (Entry::Reducer(_), Some((key, seq))) = (entry, &cursor)
            && let Some(module) = self.slots.get(slot).and_then(Option::as_ref)
            && crate::cursors::position(db, &module.name, key).is_some_and(|done| done >= *seq)
        {
            // Applied before (the event was resent after a reconnect or a restart).
            return Ok(Vec::new());
        }
        let mut loaded = self
            .slots
            .get_mut(slot)
            .and_then(Option::take)
            .ok_or_else(|| CallError::NoSuchModule(format!("#{slot}")))?;
        let prepared = loaded.refresh(memory_cap, fuel).and_then(|()| {
            db.module_mut(&loaded.name)
                .map(std::mem::take)
                .ok_or_else(|| CallError::NoSuchModule(loaded.name.to_string()))
        });
        let tables = match prepared {
            Ok(tables) => tables,
            Err(e) => {
                self.slots[slot] = Some(loaded);
                return Err(e);
            }
        };
        let (func, read_only) = match entry {
            Entry::Reducer(i) => (loaded.reducers[i].clone(), false),
            Entry::Query(i) => (loaded.queries[i].clone(), true),
        };

        let state = loaded.instance.store.data_mut();
        state.tx.tables = tables;
        std::mem::swap(&mut state.tx.undo, &mut self.undo);
        state.tx.read_only = read_only;
        if let (Entry::Reducer(_), Some((key, seq))) = (entry, cursor) {
            crate::cursors::advance(&mut state.tx.tables.tables, &mut state.tx.undo, &key, seq);
        }
        if let (Entry::Reducer(_), Some((peer, request))) = (entry, origin) {
            crate::answered::record(
                &mut state.tx.tables.tables,
                &mut state.tx.undo,
                &peer,
                request,
            );
        }
        if matches!(entry, Entry::Reducer(_)) && self.feed.watches_module(&loaded.name) {
            let watched = self.feed.watched_ids(&loaded.name, &state.tx.tables.tables);
            state.tx.written.begin(watched);
        }
        state.in_call = true;
        state.quotas = self.config.quotas;
        if !Arc::ptr_eq(&state.input, &self.input_state) {
            state.input = self.input_state.clone();
        }
        state.now_ms = self.now_ms;
        state.random_seed = random_seed(self.invocation, self.now_ms, &loaded.name);
        state.caller = None;
        state.caller_node = caller_node;
        if state.schema.is_none() {
            state.schema = Some(loaded.schema.clone());
        }
        if state.files_root.is_none() {
            state.files_root = self.files_dir.as_ref().map(|d| d.join(&*loaded.name));
        }
        if loaded.calls_modules {
            state.env = Some(CallEnv {
                slots: std::mem::take(&mut self.slots),
                by_name: std::mem::take(&mut self.by_name),
                db: std::mem::take(db),
                depth: 1,
                memory_cap,
                quotas: self.config.quotas,
                stack_base: native_stack_position(),
                stack_budget: self.config.nested_call_stack,
                max_stack: self.config.max_stack,
                now_ms: self.now_ms,
                invocation: self.invocation,
                calls: 0,
                caller_node: state.caller_node.clone(),
            });
        }

        let mut result = loaded.instance.run(&func, args, fuel);

        let state = loaded.instance.store.data_mut();
        state.in_call = false;
        if let Some(env) = state.env.take() {
            self.slots = env.slots;
            self.by_name = env.by_name;
            *db = env.db;
        }
        let mut nested = std::mem::take(&mut state.nested);
        // Remote calls get their ids and a place in the durable outbox, in the transaction.
        if result.is_ok() && matches!(entry, Entry::Reducer(_)) {
            for call in &mut state.remote_calls {
                call.request = self.next_request;
                self.next_request += 1;
                crate::outbox::record(&mut state.tx.tables.tables, &mut state.tx.undo, call);
            }
        }
        // Frame the log record first: a transaction whose record is too large is rolled back
        // before anything of it (effects, events) leaves it.
        let mut recorded = false;
        if let (Ok(_), Entry::Reducer(i)) = (&result, entry)
            && (!state.tx.undo.is_empty() || !nested.is_empty())
        {
            let framed = db.record_commit(
                self.now_ms,
                &loaded.name,
                &loaded.schema.reducers[i].name,
                args,
                Some(&state.tx.tables.tables),
                &state.tx.undo,
                &nested,
            );
            match framed {
                Ok(()) => recorded = true,
                Err(e) => result = Err(CallError::Failed(e.to_string())),
            }
        }
        if result.is_err() {
            rollback(&mut state.tx.tables.tables, &mut state.tx.undo);
            rollback_nested(db, nested.drain(..));
            state.remote_calls.clear();
            state.pending_files.clear();
            state.pending_watches.clear();
            state.output = Default::default();
        } else {
            self.outbox.append(&mut state.remote_calls);
            self.presented.commit(&loaded.name, &mut state.output);
            if !state.pending_watches.is_empty() {
                let name = loaded.name.clone();
                self.watches
                    .extend(state.pending_watches.drain(..).map(|p| (name.clone(), p)));
            }
            // Written once the commit is durable (`release_effects`).
            state.committed_files.append(&mut state.pending_files);
        }
        if let Some(home) = db.module_mut(&loaded.name) {
            *home = std::mem::take(&mut state.tx.tables);
        }
        if recorded {
            let tx = &mut state.tx;
            let own = std::iter::once((&*loaded.name, tx.undo.as_slice(), Some(&mut tx.written)));
            let called = nested
                .iter()
                .map(|n| (n.module.as_str(), n.undo.as_slice(), None));
            for (module, undo, written) in own.chain(called) {
                if db.publications.publishes(module)
                    && let Some(tables) = db.module(module)
                {
                    crate::publish::capture(&db.publications, module, &tables.tables, undo);
                }
                if self.subscriptions.watches_module(module)
                    && let Some(tables) = db.module(module)
                {
                    self.subscriptions
                        .events_of(module, &tables.tables, undo, &mut self.events);
                }
                if self.feed.watches_module(module)
                    && let Some(tables) = db.module(module)
                {
                    self.feed.capture(module, &tables.tables, undo, written);
                }
            }
        }
        state.tx.written.clear();
        // Committed (or rolled back, leaving it empty): its rows' vectors serve the next call.
        let tables = db.module(&loaded.name).map_or(&[][..], |m| &m.tables[..]);
        state.tx.recycle_undo(tables);
        std::mem::swap(&mut state.tx.undo, &mut self.undo);
        if matches!(
            result,
            Err(CallError::Trap(_) | CallError::OutOfFuel(_) | CallError::MemoryCap(_))
        ) {
            loaded.poisoned = true;
            // Keep what it logged before trapping.
            self.logs.append(&mut loaded.instance.store.data_mut().logs);
        }
        self.slots[slot] = Some(loaded);
        result
    }
}

/// Takes back what called modules committed inside a transaction that failed, newest first.
fn rollback_nested(
    db: &mut Database,
    nested: impl DoubleEndedIterator<Item = crate::db::tx::NestedCommit>,
) {
    for mut commit in nested.rev() {
        if let Some(tables) = db.module_mut(&commit.module) {
            rollback(&mut tables.tables, &mut commit.undo);
        }
    }
}

/// The `call_module` host function: runs a reducer or query of another module inside the
/// caller's transaction, with the caller's remaining fuel.
pub(crate) fn call_module(
    caller: &mut wasmtime::Caller<'_, HostState>,
    kind: u32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<i64> {
    let (memory, state) = host_calls::memory_and_state(caller)?;
    if !state.in_call {
        return Err(host_calls::trap(
            "calls are only allowed inside a reducer or query",
        ));
    }
    let payload = host_calls::guest_bytes(memory, ptr, len)?.to_vec();
    if kind == 2 {
        let queued = queue_remote_call(state, &payload);
        state.response.clear();
        return Ok(match queued {
            Ok(()) => 0,
            Err(error) => {
                state.response = postcard::to_allocvec(&error)
                    .map_err(|e| host_calls::trap(format!("cannot encode host error: {e}")))?;
                -(state.response.len() as i64) - 1
            }
        });
    }
    let from = state.module.clone();
    let read_only = state.tx.read_only;
    let env = state.env.take();
    let remaining = caller.get_fuel()?;
    let (outcome, used, env) = match env {
        Some(mut env) => {
            let (outcome, used) =
                nested_call(&mut env, &from, read_only, kind, &payload, remaining);
            (outcome, used, Some(env))
        }
        None => (
            Err(HostError::NotPermitted(
                "no other module can be reached from here".into(),
            )),
            0,
            None,
        ),
    };
    caller.set_fuel(remaining.saturating_sub(used))?;
    let state = caller.data_mut();
    state.env = env;
    state.response.clear();
    Ok(match outcome {
        Ok((response, commits)) => {
            state.nested.extend(commits);
            state.response = response;
            state.response.len() as i64
        }
        Err(error) => {
            state.response = postcard::to_allocvec(&error)
                .map_err(|e| host_calls::trap(format!("cannot encode host error: {e}")))?;
            -(state.response.len() as i64) - 1
        }
    })
}

/// Where this thread's native stack is now: the address of a local. Differences between two
/// positions on one thread measure the stack used between them (stacks grow down on every
/// platform wasmtime supports).
#[inline(never)]
fn native_stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Checks a remote reducer call (`call_module` kind 2) and keeps it with the transaction.
pub(crate) fn queue_remote_call(state: &mut HostState, payload: &[u8]) -> Result<(), HostError> {
    use crate::wasm::state::{MAX_REMOTE_ARGS, RemoteCall};
    if state.tx.read_only {
        return Err(HostError::NotPermitted(
            "a query cannot call reducers on other nodes".into(),
        ));
    }
    if state.caller.is_some() {
        return Err(HostError::NotPermitted(
            "remote calls are made by the module a transaction started in, not by modules it calls"
                .into(),
        ));
    }
    let quotas = state.quotas;
    if state.remote_calls.len() >= quotas.remote_calls_per_call {
        return Err(crate::config::Quotas::exceeded(
            "remote calls per transaction",
            quotas.remote_calls_per_call,
        ));
    }
    let mut r = Reader::new(payload);
    let parsed = (|| {
        let node = r.string().ok()?;
        let module = r.string().ok()?;
        let reducer = r.string().ok()?;
        let n = r.length(1).ok()?;
        let args = r.bytes(n).ok()?.to_vec();
        r.finish().ok()?;
        Some((node, module, reducer, args))
    })();
    let Some((node, module, reducer, args)) = parsed else {
        return Err(HostError::InvalidPayload("remote call payload".into()));
    };
    if args.len() > MAX_REMOTE_ARGS {
        return Err(HostError::InvalidPayload(format!(
            "remote call arguments of {} bytes exceed {MAX_REMOTE_ARGS}",
            args.len()
        )));
    }
    let queued: usize = state.remote_calls.iter().map(|c| c.args.len()).sum();
    if queued + args.len() > quotas.remote_call_bytes_per_call {
        return Err(crate::config::Quotas::exceeded(
            "bytes of remote call arguments per transaction",
            quotas.remote_call_bytes_per_call,
        ));
    }
    let address = state
        .schema
        .as_ref()
        .and_then(|s| s.nodes.iter().find(|n| n.name == node))
        .map(|n| n.address.clone())
        .ok_or_else(|| {
            HostError::NotPermitted(format!(
                "unknown node `{node}`: declare it with src/bindings/node_{node}.toml"
            ))
        })?;
    state.remote_calls.push(RemoteCall {
        // Numbered when the transaction commits (`Modules::invoke`).
        request: 0,
        from: state.module.to_string(),
        node,
        address,
        module,
        reducer,
        args,
    });
    Ok(())
}

type NestedOutcome = Result<(Vec<u8>, Vec<crate::db::tx::NestedCommit>), HostError>;

/// Runs one nested call with what `env` lends; returns its outcome and the fuel it used.
fn nested_call(
    env: &mut CallEnv,
    from: &Arc<str>,
    read_only: bool,
    kind: u32,
    payload: &[u8],
    fuel: u64,
) -> (NestedOutcome, u64) {
    let mut r = Reader::new(payload);
    let parsed = (|| {
        let module = r.string().ok()?;
        let name = r.string().ok()?;
        let n = r.length(1).ok()?;
        let args = r.bytes(n).ok()?.to_vec();
        r.finish().ok()?;
        Some((module, name, args))
    })();
    let Some((module, name, args)) = parsed else {
        return (Err(HostError::InvalidPayload("call payload".into())), 0);
    };
    let failed = |reason: String| HostError::CallFailed {
        module: module.clone(),
        name: name.clone(),
        reason,
    };
    let is_query = kind == 1;
    if !is_query && read_only {
        return (
            Err(HostError::NotPermitted(
                "queries cannot call reducers".into(),
            )),
            0,
        );
    }
    if env.depth >= MAX_CALL_DEPTH {
        return (
            Err(failed(format!("more than {MAX_CALL_DEPTH} nested calls"))),
            0,
        );
    }
    let used = env.stack_base.saturating_sub(native_stack_position());
    if used.saturating_add(env.max_stack) > env.stack_budget {
        return (
            Err(failed(format!(
                "the chain of calls has used {used} bytes of native stack; another call may \
                 need {} more, past the node's {} (EngineConfig::nested_call_stack)",
                env.max_stack, env.stack_budget
            ))),
            0,
        );
    }
    let Some(&slot) = env.by_name.get(&module) else {
        return (Err(failed("no such module on this node".into())), 0);
    };
    let Some(mut target) = env.slots.get_mut(slot).and_then(Option::take) else {
        return (
            Err(failed("the module is already running in this transaction (calls cannot re-enter a module)".into())),
            0,
        );
    };
    let outcome = run_nested(
        env,
        &mut target,
        from,
        read_only,
        is_query,
        &name,
        &args,
        fuel,
    );
    env.slots[slot] = Some(target);
    match outcome {
        Ok((result, used)) => (result.map_err(|e| failed(e.to_string())), used),
        Err(e) => (Err(failed(e.to_string())), 0),
    }
}

type RunOutcome = Result<
    (
        Result<(Vec<u8>, Vec<crate::db::tx::NestedCommit>), CallError>,
        u64,
    ),
    CallError,
>;

#[allow(clippy::too_many_arguments)]
fn run_nested(
    env: &mut CallEnv,
    target: &mut LoadedModule,
    from: &Arc<str>,
    read_only: bool,
    is_query: bool,
    name: &str,
    args: &[u8],
    fuel: u64,
) -> RunOutcome {
    let schema = target.schema.clone();
    let (func, arg_types) = if is_query {
        let i = schema
            .queries
            .iter()
            .position(|q| q.name == name)
            .ok_or_else(|| CallError::NoSuchQuery {
                module: schema.name.clone(),
                name: name.into(),
            })?;
        (target.queries[i].clone(), &schema.queries[i].args)
    } else {
        let i = schema
            .reducers
            .iter()
            .position(|r| r.name == name)
            .ok_or_else(|| CallError::NoSuchReducer {
                module: schema.name.clone(),
                name: name.into(),
            })?;
        if schema.reducers[i].on.is_some() {
            return Err(CallError::SubscriberOnly(name.into()));
        }
        (target.reducers[i].clone(), &schema.reducers[i].args)
    };
    check_args(&schema.types, arg_types.iter().map(|a| &a.ty), args)?;
    target.refresh(env.memory_cap, fuel)?;
    let tables = env
        .db
        .module_mut(&target.name)
        .map(std::mem::take)
        .ok_or_else(|| CallError::NoSuchModule(target.name.to_string()))?;

    let state = target.instance.store.data_mut();
    state.tx.tables = tables;
    state.tx.undo.clear();
    state.tx.read_only = read_only || is_query;
    state.in_call = true;
    state.quotas = env.quotas;
    state.now_ms = env.now_ms;
    // Every nested call of the transaction draws its own numbers, still from recorded state.
    env.calls += 1;
    state.random_seed = random_seed(
        env.invocation ^ env.calls.rotate_left(40),
        env.now_ms,
        &target.name,
    );
    state.caller = Some(from.clone());
    state.caller_node = env.caller_node.clone();
    state.nested.clear();
    if state.schema.is_none() {
        state.schema = Some(schema.clone());
    }
    let lent = std::mem::take(env);
    state.env = Some(CallEnv {
        depth: lent.depth + 1,
        ..lent
    });

    let result = target.instance.run(&func, args, fuel);
    let used = fuel.saturating_sub(target.instance.store.get_fuel().unwrap_or(0));

    let state = target.instance.store.data_mut();
    state.in_call = false;
    if let Some(back) = state.env.take() {
        *env = CallEnv {
            depth: back.depth - 1,
            ..back
        };
    }
    let mut nested = std::mem::take(&mut state.nested);
    if result.is_err() {
        rollback(&mut state.tx.tables.tables, &mut state.tx.undo);
        rollback_nested(&mut env.db, nested.drain(..));
    }
    if let Some(home) = env.db.module_mut(&target.name) {
        *home = std::mem::take(&mut state.tx.tables);
    }
    let undo = std::mem::take(&mut state.tx.undo);
    if matches!(
        result,
        Err(CallError::Trap(_) | CallError::OutOfFuel(_) | CallError::MemoryCap(_))
    ) {
        target.poisoned = true;
    }
    Ok((
        result.map(|response| {
            if !undo.is_empty() {
                nested.push(crate::db::tx::NestedCommit {
                    module: target.name.to_string(),
                    undo,
                });
            }
            (response, nested)
        }),
        used,
    ))
}

#[derive(Clone, Copy)]
enum Entry {
    Reducer(usize),
    Query(usize),
}

fn check_args<'a>(
    types: &TypeSet,
    tys: impl Iterator<Item = &'a interstice_abi::ValueType>,
    args: &[u8],
) -> Result<(), CallError> {
    let mut r = Reader::new(args);
    for (i, ty) in tys.enumerate() {
        decode_value(ty, types, &mut r)
            .map_err(|e| CallError::InvalidArguments(format!("argument {} ({ty}): {e}", i + 1)))?;
    }
    r.finish()
        .map_err(|e| CallError::InvalidArguments(format!("{e}")))
}

/// The reducer and query entry points of an instance, in schema order.
fn entry_points(
    instance: &mut Instance,
    schema: &ModuleSchema,
) -> Result<(Vec<EntryPoint>, Vec<EntryPoint>), LoadError> {
    let reducers = schema
        .reducers
        .iter()
        .map(|r| instance.entry(&format!("{}{}", exports::REDUCER, r.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let queries = schema
        .queries
        .iter()
        .map(|q| instance.entry(&format!("{}{}", exports::QUERY, q.name)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((reducers, queries))
}

fn decode_description<T: serde::de::DeserializeOwned>(
    export: &str,
    bytes: &[u8],
) -> Result<T, LoadError> {
    postcard::from_bytes(bytes).map_err(|e| LoadError::BadDescription {
        export: export.into(),
        reason: interstice_abi::limits::describe_postcard_error(&e),
    })
}

/// A module compiled, instantiated and described, not registered yet.
struct Prepared {
    /// `None` for a module loaded natively.
    pre: Option<wasmtime::InstancePre<HostState>>,
    instance: Instance,
    schema: ModuleSchema,
    /// Whether it imports `call_module`.
    calls_modules: bool,
}

/// Checks an instance's ABI version, then describes and validates its schema.
fn check_and_describe(instance: &mut Instance, fuel: u64) -> Result<ModuleSchema, LoadError> {
    let found = instance.abi_version(fuel)?;
    if found != ABI_VERSION {
        return Err(LoadError::AbiMismatch {
            found,
            expected: ABI_VERSION,
        });
    }
    let schema = describe(instance, fuel)?;
    schema.validate()?;
    Ok(schema)
}

/// Assembles a module's schema from its describe exports.
fn describe(instance: &mut Instance, fuel: u64) -> Result<ModuleSchema, LoadError> {
    let bytes = instance.describe(exports::DESCRIBE_MODULE, fuel)?;
    let m: ModuleDescription = decode_description(exports::DESCRIBE_MODULE, &bytes)?;
    let mut schema = ModuleSchema {
        abi_version: m.abi_version,
        name: m.name,
        version: m.version,
        visibility: m.visibility,
        authorities: m.authorities,
        nodes: m.nodes,
        ..ModuleSchema::default()
    };
    let mut names: Vec<String> = instance.export_names();
    names.sort();
    let mut types = TypeSet::new();
    let mut add_types =
        |export: &str, defs: Vec<interstice_abi::TypeDef>| -> Result<(), LoadError> {
            for def in defs {
                types.insert(def).map_err(|c| {
                    LoadError::Schema(format!(
                        "type `{}` is defined twice, differently (seen in `{export}`)",
                        c.0
                    ))
                })?;
            }
            Ok(())
        };
    for export in &names {
        if export.starts_with(exports::DESCRIBE_TABLE) {
            let d: TableDescription =
                decode_description(export, &instance.describe(export, fuel)?)?;
            add_types(export, d.types)?;
            schema.tables.push(d.table);
        } else if export.starts_with(exports::DESCRIBE_REDUCER) {
            let d: ReducerDescription =
                decode_description(export, &instance.describe(export, fuel)?)?;
            add_types(export, d.types)?;
            schema.reducers.push(d.reducer);
        } else if export.starts_with(exports::DESCRIBE_QUERY) {
            let d: QueryDescription =
                decode_description(export, &instance.describe(export, fuel)?)?;
            add_types(export, d.types)?;
            schema.queries.push(d.query);
        }
    }
    schema.types = types;
    schema.tables.sort_by(|a, b| a.name.cmp(&b.name));
    schema.reducers.sort_by(|a, b| a.name.cmp(&b.name));
    schema.queries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(schema)
}

/// SplitMix64 over the invocation position, the logical time and the module name: a seed that
/// depends only on recorded state.
fn random_seed(invocation: u64, now_ms: u64, module: &str) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let mut h = mix(invocation) ^ mix(now_ms.rotate_left(17));
    for b in module.bytes() {
        h = mix(h ^ u64::from(b));
    }
    h
}
