//! The contract between Interstice guests (WebAssembly modules) and hosts (nodes).
//!
//! This crate is `no_std` + `alloc` so that the same definitions compile into a wasm module and
//! into the engine. It holds:
//!
//! - [`value`]: the dynamic [`Value`] model the host uses for rows, keys and arguments;
//! - [`types`]: [`ValueType`] and named type definitions ([`TypeDef`]);
//! - [`codec`]: the wire encoding of values, byte-compatible with postcard's serde format;
//! - [`typed`]: [`IntersticeType`], the link between Rust types and the dynamic model;
//! - [`schema`]: module, table, reducer and query schemas;
//! - [`protocol`]: the host-call protocol, the export names and the ABI version;
//! - [`limits`]: every bound a decoder of outside data enforces;
//! - [`key_hash`]: the hasher for maps keyed by values, kind to consecutive integer keys;
//! - `native`: exports and host calls of modules compiled natively (their own tests);
//! - [`draw`] and [`input`]: what the Gpu authority's holder draws and what the Input
//!   authority's holder can poll.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

pub mod codec;
pub mod draw;
pub mod input;
pub mod key_hash;
pub mod limits;
pub mod mix;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod node_id;
pub mod protocol;
pub mod schema;
pub mod typed;
pub mod types;
pub mod value;

pub use codec::{DecodeError, Reader};
pub use key_hash::{KeyHash, KeyHasher};
pub use node_id::node_id_of;
pub use protocol::{ABI_VERSION, HostError};
pub use schema::{
    Authority, Binding, EventSpec, IndexKind, IndexSchema, ModuleSchema, NodeBinding,
    NodeDependency, Persistence, QuerySchema, ReducerSchema, SchemaError, TableEvent, TableSchema,
    Visibility,
};
pub use typed::IntersticeType;
pub use types::{FieldDef, TypeDef, TypeKind, TypeSet, ValueType, VariantDef, VariantFields};
pub use value::Value;
