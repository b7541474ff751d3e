//! The Interstice module SDK.
//!
//! A module is a Rust `cdylib` built for `wasm32-unknown-unknown`. It declares itself with
//! [`interstice_module!`], its data with [`table`](macro@table) and [`interstice_type`], and its behaviour with
//! [`reducer`]s (transactions that may change its tables) and [`query`]s (read-only functions):
//!
//! ```ignore
//! use interstice_sdk::*;
//!
//! interstice_module!();
//!
//! #[table]
//! pub struct Greetings {
//!     #[primary_key(auto_inc)]
//!     id: u64,
//!     greeting: String,
//! }
//!
//! #[reducer]
//! fn hello(ctx: ReducerContext, name: String) {
//!     ctx.current.tables.greetings()
//!         .insert(Greetings { id: 0, greeting: format!("Hello, {name}!") })
//!         .expect("insert");
//! }
//!
//! #[query]
//! fn greeting_count(ctx: QueryContext) -> u64 {
//!     ctx.current.tables.greetings().count()
//! }
//! ```
//!
//! Outside wasm (for example when a game depends on a module crate to share its types) the
//! types and tables compile as ordinary Rust, but host calls panic: they need a node.

#![allow(
    unsafe_code,
    reason = "the SDK is the guest side of the host ABI: wasm imports and exports are unsafe by nature"
)]

// The macros name this crate by its path, also from inside it.
extern crate self as interstice_sdk;

pub mod audio;
pub mod context;
mod ffi;
pub mod files;
pub mod gpu;
pub mod host_calls;
pub mod input;
pub mod past;
pub mod table;

#[doc(hidden)]
pub mod __private;

pub use context::{Current, QueryCaller, QueryContext, ReducerContext, ScheduleId, Tables};
pub use gpu::{Color, Vec2};
pub use interstice_abi::{self as abi, HostError, IntersticeType, Value};
pub use interstice_sdk_macros::{interstice_module, interstice_type, query, reducer, table};
pub use past::{Past, PastTable};
pub use table::{
    BTreeIndex, HashIndex, IndexHandle, ScanIter, TableHandle, TableRow, UniqueBTreeIndex,
    UniqueHashIndex,
};

/// Everything a module usually needs: `use interstice_sdk::prelude::*;` (or `use interstice_sdk::*;`).
pub mod prelude {
    pub use crate::gpu::{Color, Vec2};
    pub use crate::{
        HostError, IntersticeType, QueryCaller, QueryContext, ReducerContext, TableRow,
        interstice_module, interstice_type, query, reducer, table,
    };
    pub use crate::{audio, files, gpu, host_calls, input};
}
