//! `IntersticePlugin`: sandboxed WebAssembly modules with typed tables and deterministic
//! reducers, inside any Bevy app.
//!
//! ```no_run
//! use bevy::prelude::*;
//! use interstice::prelude::*;
//!
//! fn main() {
//!     App::new()
//!         .add_plugins((MinimalPlugins, IntersticePlugin::default().with_module_file("hello.wasm")))
//!         .add_systems(Startup, greet)
//!         .add_systems(Update, report)
//!         .run();
//! }
//!
//! fn greet(mut interstice: Interstice) {
//!     if let Err(e) = interstice.queue_reducer("hello", "hello", ("Bevy".to_string(),)) {
//!         error!("cannot call hello: {e}");
//!     }
//! }
//!
//! fn report(mut outcomes: MessageReader<ReducerOutcome>) {
//!     for outcome in outcomes.read() {
//!         info!("{}.{} -> {:?}", outcome.module, outcome.reducer, outcome.result);
//!     }
//! }
//! ```

mod api;
pub mod logbook;
pub mod mirror;
pub mod network;
mod plugin;
pub mod smooth;
pub mod values;
mod watch;

pub use api::Interstice;
pub use interstice_abi::{self as abi, IntersticeType, ModuleSchema, Value};
pub use interstice_core::{
    self as core, CallError, ChangeBatch, ChangeKind, Database, Durability, EngineConfig, GuestLog,
    IntersticeCorePlugin, IntersticeSystems, Invocation, InvocationId, InvocationLog, LoadError,
    LogicalClock, Modules, Quotas, RecordedFrame, RecoveryReport, ReducerOutcome, ReducerQueue,
    Retention, RowChange, Storage, StorageConfig, StorageError, StorageHealth, TableChange,
};
pub use interstice_net::transport::{NodeIdentity, TrustedPeers};
pub use mirror::{
    IntersticeAppExt, MirrorKey, MirrorStats, MirrorSystems, MirrorTable, Mirrored, TableChanged,
    TableChanges,
};
pub use plugin::{GuestLogTail, IntersticePlugin, ModuleLoaded, ModuleSource};

/// Runs the app's main schedules on the calling thread instead of a thread pool. For a headless
/// node (the engine is one exclusive system; the network has its own thread) this takes a
/// remote call's frame from hundreds of microseconds to tens on a small machine; a game with
/// many parallel systems should keep Bevy's default.
pub fn run_single_threaded(app: &mut bevy::app::App) {
    use bevy::app::{First, Last, PostUpdate, PreUpdate, Update};
    use bevy::ecs::schedule::{ScheduleLabel, SingleThreadedExecutor};
    fn single(app: &mut bevy::app::App, label: impl ScheduleLabel) {
        app.edit_schedule(label, |schedule| {
            schedule.set_executor(SingleThreadedExecutor::new());
        });
    }
    single(app, First);
    single(app, PreUpdate);
    single(app, Update);
    single(app, PostUpdate);
    single(app, Last);
}

/// Runs a headless node: an update at least every `frame`, and at once whenever a peer's
/// request arrives (when the node has a network), so a remote call waits for no frame tick.
/// Use it as the app's runner: `app.set_runner(|app| interstice::run_node(app, frame))`.
pub fn run_node(mut app: bevy::app::App, frame: std::time::Duration) -> bevy::app::AppExit {
    use bevy::app::PluginsState;
    if app.plugins_state() != PluginsState::Cleaned {
        while app.plugins_state() == PluginsState::Adding {
            bevy::tasks::tick_global_task_pools_on_main_thread();
        }
        app.finish();
        app.cleanup();
    }
    let wake = app
        .world()
        .get_resource::<network::NodeWake>()
        .map(|w| w.0.clone());
    loop {
        let started = std::time::Instant::now();
        app.update();
        if let Some(exit) = app.should_exit() {
            return exit;
        }
        let left = frame.saturating_sub(started.elapsed());
        match &wake {
            Some(wake) => wake.wait(left),
            None => std::thread::sleep(left),
        }
    }
}

/// What a game usually needs.
pub mod prelude {
    pub use crate::smooth::{Motion, Predicted, Prediction, SmoothTable, Smoothed};
    pub use crate::{
        Interstice, IntersticeAppExt, IntersticePlugin, IntersticeSystems, MirrorKey, MirrorTable,
        Mirrored, ModuleLoaded, ModuleSource, ReducerOutcome, TableChanged,
    };
}
