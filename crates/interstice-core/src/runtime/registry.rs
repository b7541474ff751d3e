//! Loading, upgrading and unloading modules.

use super::Modules;
use super::call::ReducerHandle;
use super::describe::{check_and_describe, entry_points};
use super::loaded::LoadedModule;
use crate::db::{Database, ModuleTables};
use crate::error::LoadError;
use crate::events::Subscriptions;
use crate::queue::CallContext;
use crate::wasm::cache;
use crate::wasm::instance::Instance;
use crate::wasm::state::HostState;
use interstice_abi::protocol::{IMPORT_MODULE, imports};
use interstice_abi::{EventSpec, ModuleSchema};
use std::sync::Arc;

/// Every function a module may import.
const HOST_FUNCTIONS: [&str; 17] = [
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
    imports::TABLE_AS_OF,
];

impl Modules {
    /// Validates and installs a module, creates its tables and runs its `init` and `load`
    /// hooks: a first load. On any error nothing is left behind.
    ///
    /// # Errors
    ///
    /// Any [`LoadError`]: invalid wasm, an unknown import, a bad description or schema, a name
    /// or authority already taken, or a failed hook ([`LoadError::Hook`]).
    pub fn load(&mut self, db: &mut Database, wasm: &[u8]) -> Result<Arc<ModuleSchema>, LoadError> {
        let schema = self.install(db, wasm)?;
        self.run_hooks(db, &schema.name, true)?;
        Ok(schema)
    }

    /// Validates and installs a module and creates its (empty) tables, without running any
    /// hook: storage uses this to restore a module before filling its tables.
    ///
    /// # Errors
    ///
    /// As [`load`](Modules::load), except that no hook runs.
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
    ///
    /// # Errors
    ///
    /// As [`load`](Modules::load), for what can be checked without installing.
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
        let module =
            cache::compile(&self.engine, cache_dir, wasm).map_err(LoadError::InvalidWasm)?;
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
            .map_err(LoadError::Instantiate)?;
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
    ///
    /// # Errors
    ///
    /// As [`load`](Modules::load).
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
        let tables = tables.unwrap_or_else(|| crate::host_tables::module_tables(&schema));
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
    ///
    /// # Errors
    ///
    /// [`LoadError::NotInstalled`]; [`LoadError::Incompatible`] with the differences when the
    /// change would lose data and `drop_data` is not set (or a row does not fit the new table);
    /// otherwise as [`load`](Modules::load).
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
            .ok_or_else(|| LoadError::NotInstalled(name.clone()))?;
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
            .ok_or_else(|| LoadError::NotInstalled(name.clone()))?;
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
    ///
    /// # Errors
    ///
    /// [`LoadError::Hook`] with the hook that failed and its error; the module is unloaded by
    /// then.
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
                if let Err(error) = self.invoke_reducer(db, handle, &[], CallContext::default()) {
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
