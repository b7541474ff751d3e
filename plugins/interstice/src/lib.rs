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
//!     if let Err(e) = interstice.call_reducer("hello", "hello", ("Bevy".to_string(),)) {
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
mod loading;
pub mod network;

pub use api::Interstice;
pub use interstice_abi::{self as abi, IntersticeType, ModuleSchema, Value};
pub use interstice_core::{
    self as core, CallError, Database, Durability, EngineConfig, GuestLog, IntersticeCorePlugin,
    IntersticeSystems, Invocation, InvocationId, InvocationLog, LoadError, LogicalClock, Modules,
    RecordedFrame, RecoveryReport, ReducerOutcome, ReducerQueue, Retention, Storage, StorageConfig,
    StorageError,
};
pub use interstice_net::transport::{NodeIdentity, TrustedPeers};
pub use loading::{IntersticePlugin, ModuleLoaded, ModuleSource};

/// What a game usually needs.
pub mod prelude {
    pub use crate::{
        Interstice, IntersticePlugin, IntersticeSystems, ModuleLoaded, ModuleSource, ReducerOutcome,
    };
}
