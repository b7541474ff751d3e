//! The plugin and the modules it loads at startup.

use bevy::prelude::*;
use interstice_abi::ModuleSchema;
use interstice_core::{Database, EngineConfig, IntersticeCorePlugin, Modules};
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

    /// Sets the engine limits.
    pub fn with_engine(mut self, engine: EngineConfig) -> Self {
        self.engine = engine;
        self
    }
}

#[derive(Resource)]
struct StartupModules(Vec<ModuleSource>);

impl Plugin for IntersticePlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins(IntersticeCorePlugin {
            engine: self.engine.clone(),
        })
        .add_message::<ModuleLoaded>()
        .insert_resource(StartupModules(self.modules.clone()))
        .add_systems(PreStartup, load_startup_modules)
        .add_systems(Last, forward_guest_logs);
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
        let mut db = world.resource_mut::<Database>();
        modules.load(&mut db, &wasm).map_err(|e| e.to_string())
    })
}

/// Guest log lines are already written to the log as they happen; this only keeps the
/// buffer from growing while nobody collects it.
fn forward_guest_logs(mut modules: ResMut<Modules>) {
    let _ = modules.drain_logs();
}
