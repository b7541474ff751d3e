//! Native tests for Interstice modules.
//!
//! A module's own `cargo test` runs its reducers and queries natively — no wasm build, no
//! node process — on the real engine: the same tables and indexes, transactions and rollback,
//! unique violations, auto-increment keys, events and subscriptions, schedule (on a clock the
//! test moves), `ctx.caller_node()` and random numbers as a node gives them.
//!
//! ```no_run
//! use interstice_testing::TestNode;
//!
//! let mut node = TestNode::new(); // the module this test is linked with, `init` run
//! node.call("add_note", ("hello".to_string(),)).unwrap();
//! let notes: Vec<String> = node.query("notes", ()).unwrap();
//! assert_eq!(notes, ["hello"]);
//! ```
//!
//! Add it as a dev-dependency of the module crate (`interstice init` does). The module must
//! build as an `rlib` besides a `cdylib` (`crate-type = ["cdylib", "rlib"]`) so that its tests
//! link it.
//!
//! What a native test does not have: calls to other modules, files, drawing, audio and input
//! answer an error the module can read, and nothing is metered — a module that loops forever
//! hangs its test instead of running out of fuel. Calls to other nodes are kept, not sent
//! ([`TestNode::take_remote_calls`]). The module's code is the test program's: its statics
//! (`static`, `thread_local!`) are shared by every `TestNode` of the program and survive a
//! panic, where a node gives each instance fresh memory. Test those on a node.

use bevy_app::App;
use bevy_ecs::message::Messages;
use bevy_ecs::prelude::*;
use interstice_abi::typed::Args;
use interstice_abi::{IntersticeType, ModuleSchema};
use interstice_core::{
    CallError, Database, EngineConfig, IntersticeCorePlugin, InvocationId, LoadError, LogicalClock,
    Modules, ReducerOutcome, ReducerQueue,
};
use std::sync::Arc;
use std::time::Duration;

pub use interstice_core::CallError as Error;
pub use interstice_core::RemoteCall;

/// An in-memory node running one module natively.
pub struct TestNode {
    app: App,
    schema: Arc<ModuleSchema>,
    /// Request numbers of calls made "from another node".
    next_request: u64,
}

/// Why a [`TestNode`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No module, or several, are linked into the test: name the one to run.
    #[error("{0}")]
    WhichModule(String),
    /// The engine refused the module, as a node would.
    #[error("the module does not load: {0}")]
    Load(#[from] LoadError),
}

impl TestNode {
    /// A node running the module this test is linked with, its `init` and `load` hooks run.
    ///
    /// # Panics
    /// When no module or several are linked (use [`TestNode::of`]) or the module does not
    /// load; [`TestNode::start`] returns these as errors.
    pub fn new() -> TestNode {
        TestNode::start(None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A node running the linked module named `module`.
    ///
    /// # Panics
    /// As [`TestNode::new`].
    pub fn of(module: &str) -> TestNode {
        TestNode::start(Some(module)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A node running a module built to wasm, through the same harness: what checks that a
    /// native test and a node agree.
    pub fn start_wasm(wasm: &[u8]) -> Result<TestNode, StartError> {
        TestNode::boot(|modules, db| modules.load(db, wasm))
    }

    /// A node running `module`, or the only module linked when `None`.
    pub fn start(module: Option<&str>) -> Result<TestNode, StartError> {
        let linked = interstice_abi::native::linked_modules();
        let module = match (module, linked.as_slice()) {
            (Some(name), _) => name.to_string(),
            (None, [only]) => only.to_string(),
            (None, []) => {
                return Err(StartError::WhichModule(
                    "no Interstice module is linked into this test: use something from the \
                     module crate (its tests do), and build it with crate-type \
                     [\"cdylib\", \"rlib\"]"
                        .into(),
                ));
            }
            (None, many) => {
                return Err(StartError::WhichModule(format!(
                    "several modules are linked into this test ({}): use TestNode::of(NAME)",
                    many.join(", ")
                )));
            }
        };
        TestNode::boot(|modules, db| modules.load_native(db, &module))
    }

    /// An engine with the module `load` installs.
    fn boot(
        load: impl FnOnce(&mut Modules, &mut Database) -> Result<Arc<ModuleSchema>, LoadError>,
    ) -> Result<TestNode, StartError> {
        let mut app = App::new();
        app.add_plugins(IntersticeCorePlugin {
            engine: EngineConfig::default(),
        });
        app.insert_resource(LogicalClock::manual());
        let schema = app
            .world_mut()
            .resource_scope(|world, mut modules: Mut<Modules>| {
                let mut db = world.resource_mut::<Database>();
                load(&mut modules, &mut db)
            })?;
        let mut node = TestNode {
            app,
            schema,
            next_request: 1,
        };
        // What the hooks triggered (subscribers of `init`'s writes) runs now, as on a node.
        node.run_frame();
        Ok(node)
    }

    /// The module's schema, as a node describes it.
    pub fn schema(&self) -> &ModuleSchema {
        &self.schema
    }

    /// Calls a reducer as a local caller would (`interstice call_reducer`): one transaction,
    /// committed if it returns `Ok`, rolled back otherwise. The subscribers its changes
    /// trigger run before this returns, as they run in the same frame on a node.
    pub fn call(&mut self, reducer: &str, args: impl Args) -> Result<(), CallError> {
        let mut encoded = Vec::new();
        args.encode_args(&mut encoded);
        self.call_encoded(reducer, encoded)
    }

    /// [`TestNode::call`] with arguments already encoded.
    pub fn call_encoded(&mut self, reducer: &str, args: Vec<u8>) -> Result<(), CallError> {
        let module = self.schema.name.clone();
        let id = self
            .app
            .world_mut()
            .resource_mut::<ReducerQueue>()
            .push(module, reducer, args);
        self.outcome_of(id)
    }

    /// Calls a reducer as the peer node whose public key is `peer_key` would: the module
    /// sees that node's id in `ctx.caller_node()` ([`node_id_of`](interstice_abi::node_id_of)).
    pub fn call_from(
        &mut self,
        peer_key: &str,
        reducer: &str,
        args: impl Args,
    ) -> Result<(), CallError> {
        let mut encoded = Vec::new();
        args.encode_args(&mut encoded);
        let module = self.schema.name.clone();
        let request = self.next_request;
        self.next_request += 1;
        let id = {
            let world = self.app.world_mut();
            world.resource_scope(|world, modules: Mut<Modules>| {
                let handle = modules.reducer(&module, reducer)?;
                modules.check_reducer_args(handle, &encoded)?;
                Ok::<_, CallError>(world.resource_mut::<ReducerQueue>().push_remote(
                    module.clone(),
                    reducer,
                    encoded,
                    peer_key,
                    request,
                ))
            })?
        };
        self.outcome_of(id)
    }

    /// Runs a query and decodes its result as `R`, which must be the type the query returns
    /// (an error names both otherwise: encodings alone cannot always tell them apart).
    pub fn query<R: IntersticeType>(
        &mut self,
        query: &str,
        args: impl Args,
    ) -> Result<R, CallError> {
        if let Some(schema) = self.schema.query(query) {
            let asked = R::value_type();
            if asked != schema.returns {
                return Err(CallError::TypeMismatch(format!(
                    "`{query}` returns {}, not {asked}",
                    schema.returns
                )));
            }
        }
        let mut encoded = Vec::new();
        args.encode_args(&mut encoded);
        let bytes = self.query_encoded(query, &encoded)?;
        R::from_bytes(&bytes).map_err(|e| {
            CallError::TypeMismatch(format!(
                "the result of `{query}` does not decode as asked: {e}"
            ))
        })
    }

    /// Runs a query on encoded arguments; its encoded result.
    pub fn query_encoded(&mut self, query: &str, args: &[u8]) -> Result<Vec<u8>, CallError> {
        let module = self.schema.name.clone();
        self.app
            .world_mut()
            .resource_scope(|world, mut modules: Mut<Modules>| {
                let mut db = world.resource_mut::<Database>();
                let handle = modules.query(&module, query)?;
                modules.call_query(&mut db, handle, args)
            })
    }

    /// Every row of one of the module's tables, in primary-key order.
    ///
    /// # Panics
    /// When the module has no such table or a row does not decode as `T`.
    pub fn rows<T: IntersticeType>(&self, table: &str) -> Vec<T> {
        self.encoded_rows(table)
            .iter()
            .map(|bytes| {
                T::from_bytes(bytes).unwrap_or_else(|e| {
                    panic!("a row of `{table}` does not decode as the type asked for: {e}")
                })
            })
            .collect()
    }

    /// Every row of a table, encoded, in primary-key order.
    ///
    /// # Panics
    /// When the module has no such table.
    pub fn encoded_rows(&self, table: &str) -> Vec<Vec<u8>> {
        let db = self.app.world().resource::<Database>();
        let Some(t) = db.table(&self.schema.name, table) else {
            panic!("module `{}` has no table `{table}`", self.schema.name);
        };
        t.rows()
            .map(|row| {
                let mut bytes = Vec::new();
                t.encode_row(row, &mut bytes);
                bytes
            })
            .collect()
    }

    /// Moves the node's clock forward and runs what falls due (schedule entries, in order,
    /// and what they trigger), as the frames of a node would over that time.
    pub fn advance(&mut self, by: Duration) {
        let step = Duration::from_millis(1);
        let mut left = by;
        // Entries due at different times run in separate frames, as on a node whose frames
        // are short: advance in steps up to the next due entry.
        while !left.is_zero() {
            let next = self.next_due().map(|due| due.saturating_sub(self.now_ms()));
            let jump = match next {
                Some(ms) if ms > 0 => Duration::from_millis(ms).min(left),
                Some(_) => step.min(left),
                None => left,
            };
            self.app
                .world_mut()
                .resource_mut::<LogicalClock>()
                .advance(jump);
            left -= jump;
            self.run_frame();
        }
    }

    /// The node's logical time, in milliseconds (what `ctx.timestamp()` returns).
    pub fn now_ms(&self) -> u64 {
        self.app.world().resource::<LogicalClock>().now_ms()
    }

    /// The time of the earliest pending schedule entry, if any.
    fn next_due(&self) -> Option<u64> {
        let db = self.app.world().resource::<Database>();
        interstice_core::host_tables::schedule::pending(db)
            .iter()
            .map(|e| e.due)
            .min()
    }

    /// A peer node connects: the module's `connect` subscribers run with its id.
    pub fn connect(&mut self, node_id: &str) {
        self.peer_event(true, node_id);
    }

    /// A peer node disconnects: the module's `disconnect` subscribers run with its id.
    pub fn disconnect(&mut self, node_id: &str) {
        self.peer_event(false, node_id);
    }

    fn peer_event(&mut self, connected: bool, node_id: &str) {
        self.app
            .world_mut()
            .resource_scope(|world, modules: Mut<Modules>| {
                world
                    .resource_mut::<ReducerQueue>()
                    .push_peer_event(&modules, connected, node_id);
            });
        self.run_frame();
    }

    /// The module's log lines since the last time they were taken, oldest first.
    pub fn take_logs(&mut self) -> Vec<String> {
        self.app
            .world_mut()
            .resource_mut::<Modules>()
            .drain_logs()
            .into_iter()
            .map(|line| line.message)
            .collect()
    }

    /// The reducer calls to other nodes the module made (`ctx.call_remote_reducer`) in
    /// transactions that committed, oldest first, since the last time they were taken. A
    /// test node sends nothing: the test checks what would have been sent.
    pub fn take_remote_calls(&mut self) -> Vec<RemoteCall> {
        self.app
            .world_mut()
            .resource_mut::<Modules>()
            .take_remote_calls()
    }

    /// A hash of every table's contents: equal on two nodes that hold the same rows.
    pub fn state_hash(&self) -> u64 {
        self.app.world().resource::<Database>().state_hash()
    }

    /// The engine's Bevy app, for what this harness does not wrap.
    pub fn app(&mut self) -> &mut App {
        &mut self.app
    }

    /// Runs one frame of the engine: queued calls, due schedule entries and what they trigger.
    fn run_frame(&mut self) {
        interstice_core::plugin::run_reducers(self.app.world_mut());
    }

    /// Runs the frame that runs invocation `id` and returns how it ended.
    fn outcome_of(&mut self, id: InvocationId) -> Result<(), CallError> {
        self.run_frame();
        let mut messages = self
            .app
            .world_mut()
            .resource_mut::<Messages<ReducerOutcome>>();
        let found = messages.drain().find(|o| o.id == id);
        match found {
            Some(outcome) => outcome.result,
            None => Err(CallError::Failed(
                "the call did not run in its frame (deferred by the engine)".into(),
            )),
        }
    }
}

impl Default for TestNode {
    fn default() -> Self {
        TestNode::new()
    }
}
