//! The plugin and the modules it loads at startup.

use bevy::prelude::*;
use interstice_abi::ModuleSchema;
use interstice_core::{
    Database, EngineConfig, IntersticeCorePlugin, LoadError, Modules, Storage, StorageConfig,
};
use std::path::PathBuf;
use std::sync::Arc;

/// Where a module's wasm comes from.
#[derive(Debug, Clone)]
pub enum ModuleSource {
    /// A `.wasm` file.
    File(PathBuf),
    /// Wasm bytes, with a label for messages.
    Bytes {
        /// A name to show in logs until the module's own name is known.
        label: String,
        /// The wasm.
        wasm: Arc<[u8]>,
    },
}

impl ModuleSource {
    fn label(&self) -> String {
        match self {
            ModuleSource::File(p) => p.display().to_string(),
            ModuleSource::Bytes { label, .. } => label.clone(),
        }
    }
}

/// Written once per module the plugin tried to load at startup.
#[derive(Message, Debug, Clone)]
pub struct ModuleLoaded {
    /// The file or label it came from.
    pub source: String,
    /// Its schema, or why it was refused.
    pub result: Result<Arc<ModuleSchema>, String>,
}

/// Adds the Interstice engine to an app: the [`Modules`], [`Database`] and
/// [`ReducerQueue`](interstice_core::ReducerQueue) resources, the reducer system, and the
/// modules listed here (loaded in `PreStartup`, in order, so `Startup` systems can use them).
#[derive(Debug, Clone, Default)]
pub struct IntersticePlugin {
    /// Limits of the wasm engine (fuel per call, memory cap).
    pub engine: EngineConfig,
    /// Modules to load at startup.
    pub modules: Vec<ModuleSource>,
    /// Where tables are persisted; `None` keeps everything in memory.
    pub storage: Option<StorageConfig>,
    /// Serve peers over the network; `None` keeps the node to itself.
    pub network: Option<crate::network::NetworkConfig>,
}

impl IntersticePlugin {
    /// Loads a module from a `.wasm` file at startup.
    pub fn with_module_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.modules.push(ModuleSource::File(path.into()));
        self
    }

    /// Loads a module from bytes at startup.
    pub fn with_module_bytes(
        mut self,
        label: impl Into<String>,
        wasm: impl Into<Arc<[u8]>>,
    ) -> Self {
        self.modules.push(ModuleSource::Bytes {
            label: label.into(),
            wasm: wasm.into(),
        });
        self
    }

    /// Persists tables and installed modules in `dir` (created if needed) with default
    /// storage settings. On start the node recovers what is there.
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage = Some(StorageConfig::new(dir));
        self
    }

    /// Persists with explicit storage settings.
    pub fn with_storage(mut self, storage: StorageConfig) -> Self {
        self.storage = Some(storage);
        self
    }

    /// Serves remote calls, queries and schemas to trusted peers.
    pub fn with_network(mut self, network: crate::network::NetworkConfig) -> Self {
        self.network = Some(network);
        self
    }

    /// Sets the engine limits.
    pub fn with_engine(mut self, engine: EngineConfig) -> Self {
        self.engine = engine;
        self
    }
}

#[derive(Resource)]
struct StartupModules(Vec<ModuleSource>);

#[derive(Resource)]
struct StartupStorage(StorageConfig);

impl Plugin for IntersticePlugin {
    fn build(&self, app: &mut App) {
        if let Some(storage) = &self.storage {
            app.insert_resource(StartupStorage(storage.clone()));
        }
        app.add_plugins(IntersticeCorePlugin {
            engine: self.engine.clone(),
        })
        .add_message::<ModuleLoaded>()
        .init_resource::<GuestLogTail>()
        .init_resource::<crate::logbook::LogBook>()
        .insert_resource(StartupModules(self.modules.clone()))
        .add_systems(PreStartup, (open_storage, load_startup_modules).chain())
        .add_systems(Last, (forward_guest_logs, log_failed_calls).chain());
        crate::watch::add(app);
        crate::mirror::add(app);
        // After the core plugin: the network serves the database's published streams.
        if let Some(network) = &self.network {
            crate::network::add(app, network.clone());
        }
    }
}

/// Opens the data directory and recovers it. A node that cannot read its data must not run
/// (it would answer from an empty state and then overwrite what it could not read), so a
/// failure stops the app with an error.
fn open_storage(world: &mut World) {
    let Some(StartupStorage(config)) = world.remove_resource::<StartupStorage>() else {
        return;
    };
    let dir = config.dir.clone();
    let opened = world.resource_scope(|world, mut modules: Mut<Modules>| {
        let mut db = world.resource_mut::<Database>();
        Storage::open(config, &mut modules, &mut db)
    });
    match opened {
        Ok((storage, report)) => {
            info!(
                "storage {}: {} module(s) restored, snapshot {:?}, {} record(s) replayed{}",
                dir.display(),
                report.modules.len(),
                report.snapshot,
                report.replayed,
                if report.torn_tail_bytes > 0 {
                    format!(", {} byte(s) of torn tail cut off", report.torn_tail_bytes)
                } else {
                    String::new()
                }
            );
            world.insert_resource(storage);
            world
                .resource_mut::<interstice_core::LogicalClock>()
                .resume_at(report.logical_time);
        }
        Err(e) => {
            error!("cannot open storage {}: {e}", dir.display());
            // Until the app exits, nothing may commit in memory only.
            world.insert_resource(interstice_core::StorageUnavailable(e.to_string()));
            world.write_message(AppExit::error());
        }
    }
}

fn load_startup_modules(world: &mut World) {
    let Some(StartupModules(sources)) = world.remove_resource::<StartupModules>() else {
        return;
    };
    for source in sources {
        let label = source.label();
        let result = load_source(world, &source);
        match &result {
            Ok(schema) => info!(
                "loaded module `{}` {} from {label}",
                schema.name, schema.version
            ),
            Err(e) => error!("cannot load module from {label}: {e}"),
        }
        world.write_message(ModuleLoaded {
            source: label,
            result,
        });
    }
}

fn load_source(world: &mut World, source: &ModuleSource) -> Result<Arc<ModuleSchema>, String> {
    let wasm: Arc<[u8]> = match source {
        ModuleSource::File(path) => std::fs::read(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .into(),
        ModuleSource::Bytes { wasm, .. } => wasm.clone(),
    };
    world.resource_scope(|world, mut modules: Mut<Modules>| {
        world.resource_scope(|world, mut db: Mut<Database>| {
            let Some(mut storage) = world.get_resource_mut::<Storage>() else {
                return modules.load(&mut db, &wasm).map_err(|e| e.to_string());
            };
            // A restored module is kept as it is when the same code is given again.
            if let Some(name) = storage.installed_with_code(&wasm) {
                return modules
                    .schema(&name)
                    .cloned()
                    .ok_or_else(|| format!("module `{name}` is installed but not loaded"));
            }
            let schema = storage
                .load_module(&mut modules, &mut db, &wasm)
                .map_err(|e| match e {
                    LoadError::DuplicateModule(name) => format!(
                        "module `{name}` is installed with different code; replacing an installed module is not supported yet"
                    ),
                    e => e.to_string(),
                })?;
            storage.commit(&mut db).map_err(|e| e.to_string())?;
            Ok(schema)
        })
    })
}

/// Guest log lines are already written to the log as they happen; this only keeps the
/// buffer from growing while nobody collects it.
/// The last guest log lines (they were already written to the node's log as they came).
#[derive(Resource, Debug, Default)]
pub struct GuestLogTail {
    /// Oldest first, at most [`GuestLogTail::CAPACITY`].
    pub lines: std::collections::VecDeque<interstice_core::GuestLog>,
}

impl GuestLogTail {
    /// Lines kept.
    pub const CAPACITY: usize = 500;
}

/// Keeps a node line for each reducer call that failed, with why, after the lines the call
/// logged itself.
fn log_failed_calls(
    mut outcomes: MessageReader<interstice_core::ReducerOutcome>,
    mut book: ResMut<crate::logbook::LogBook>,
) {
    for outcome in outcomes.read() {
        if let Err(error) = &outcome.result {
            book.push_node(
                &outcome.module,
                1,
                &format!("reducer `{}` failed: {error}", outcome.reducer),
            );
        }
    }
}

fn forward_guest_logs(
    mut modules: ResMut<Modules>,
    mut tail: ResMut<GuestLogTail>,
    mut book: ResMut<crate::logbook::LogBook>,
) {
    for line in modules.drain_logs() {
        book.push(&line);
        if tail.lines.len() == GuestLogTail::CAPACITY {
            tail.lines.pop_front();
        }
        tail.lines.push_back(line);
    }
}
