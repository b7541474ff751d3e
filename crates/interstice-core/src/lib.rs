//! The Interstice engine, without any renderer.
//!
//! - [`Modules`]: the wasm host — loading, validation, sandboxing (fuel, memory cap), calls;
//! - [`Database`]: every module's tables and indexes, with transactional writes;
//! - [`ReducerQueue`]: reducer invocations in the order they run;
//! - [`IntersticeCorePlugin`]: puts all three into a Bevy `App` as resources and runs the queue
//!   in one exclusive system, writing each outcome as a [`ReducerOutcome`] message.
//!
//! The state lives in ECS resources so that a game, the inspector and the network layer all
//! reach it the Bevy way; nothing here depends on Bevy's renderer, windowing or audio.

pub(crate) mod commit;
pub(crate) mod config;
pub mod db;
pub mod disk;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod feed;
pub mod host_tables;
pub mod limits;
pub mod plugin;
pub(crate) mod publish;
pub(crate) mod queue;
pub(crate) mod runtime;
pub mod storage;
pub(crate) mod upgrade;
pub(crate) mod wasm;

pub use config::{EngineConfig, Quotas};
pub use db::Database;
pub use error::{CallError, LoadError};
pub use feed::{ChangeBatch, ChangeKind, RowChange, TableChange};
pub use host_tables::outbox::RemoteCall;
pub use host_tables::schedule::LogicalClock;
pub use plugin::{IntersticeCorePlugin, IntersticeSystems, StorageUnavailable};
pub use publish::{PublicationLog, PublishedEvent, ReadOutcome};
pub use queue::{
    CallContext, EventCursor, Invocation, InvocationId, InvocationLog, Origin, RecordedFrame,
    ReducerOutcome, ReducerQueue, Trigger,
};
pub use runtime::{Modules, QueryHandle, ReducerHandle};
pub use storage::health::StorageHealth;
pub use storage::{Durability, RecoveryReport, Retention, Storage, StorageConfig, StorageError};
pub use wasm::state::GuestLog;
