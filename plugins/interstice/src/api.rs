//! [`Interstice`]: the game-facing system parameter.

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use interstice_abi::typed::Args;
use interstice_abi::{IntersticeType, ModuleSchema, ValueType};
use interstice_core::{CallError, Database, InvocationId, LoadError, Modules, ReducerQueue};
use std::sync::Arc;

/// Calls reducers and queries and reads tables from an ordinary Bevy system.
///
/// Reducer calls are queued and run in [`IntersticeSystems::Reduce`](crate::IntersticeSystems)
/// — each outcome arrives as a [`ReducerOutcome`](crate::ReducerOutcome) message with the id
/// returned here. Queries run immediately and return their typed result.
#[derive(SystemParam)]
pub struct Interstice<'w> {
    modules: ResMut<'w, Modules>,
    db: ResMut<'w, Database>,
    queue: ResMut<'w, ReducerQueue>,
    messages: ResMut<'w, crate::mirror::MessageWatches>,
}

fn same_type(expected: &ValueType, actual: &ValueType) -> bool {
    expected == actual
}

fn check_arg_types(
    schema_args: &[interstice_abi::FieldDef],
    given: &[ValueType],
    what: &str,
) -> Result<(), CallError> {
    if schema_args.len() != given.len() {
        return Err(CallError::InvalidArguments(format!(
            "{what} takes {} argument(s), {} given",
            schema_args.len(),
            given.len()
        )));
    }
    for (i, (expected, actual)) in schema_args.iter().zip(given).enumerate() {
        if !same_type(&expected.ty, actual) {
            return Err(CallError::InvalidArguments(format!(
                "{what}: argument {} `{}` is {}, not {actual}",
                i + 1,
                expected.name,
                expected.ty
            )));
        }
    }
    Ok(())
}

impl Interstice<'_> {
    /// Queues a reducer call with typed arguments (a tuple: `()`, `(a,)`, `(a, b)`, ...). The
    /// module, reducer and argument types are checked now; the reducer runs in the next
    /// `Reduce` step, and its outcome arrives as a [`ReducerOutcome`](crate::ReducerOutcome)
    /// message with the returned id.
    ///
    /// # Errors
    ///
    /// [`CallError::NoSuchModule`], [`CallError::NoSuchReducer`],
    /// [`CallError::SubscriberOnly`] or [`CallError::InvalidArguments`]: nothing is queued.
    pub fn queue_reducer<A: Args>(
        &mut self,
        module: &str,
        reducer: &str,
        args: A,
    ) -> Result<InvocationId, CallError> {
        let handle = self.modules.reducer(module, reducer)?;
        let schema = self.schema_of(module)?;
        let reducer_schema = schema
            .reducer(reducer)
            .ok_or_else(|| CallError::NoSuchReducer {
                module: module.into(),
                name: reducer.into(),
            })?;
        check_arg_types(&reducer_schema.args, &A::arg_types(), reducer)?;
        let mut bytes = Vec::new();
        args.encode_args(&mut bytes);
        self.modules.check_reducer_args(handle, &bytes)?;
        Ok(self.queue.push(module, reducer, bytes))
    }

    /// The former name of [`queue_reducer`](Self::queue_reducer): it queues the call, which
    /// runs in the next `Reduce` step ("call" now means run at once, as `ctx.call_reducer`
    /// does inside a module).
    #[deprecated(
        note = "renamed `queue_reducer`: the call is queued and runs in the next Reduce step"
    )]
    pub fn call_reducer<A: Args>(
        &mut self,
        module: &str,
        reducer: &str,
        args: A,
    ) -> Result<InvocationId, CallError> {
        self.queue_reducer(module, reducer, args)
    }

    /// Queues a reducer call with already encoded arguments; they are checked when it runs.
    pub fn queue_reducer_encoded(
        &mut self,
        module: &str,
        reducer: &str,
        args: Vec<u8>,
    ) -> InvocationId {
        self.queue.push(module, reducer, args)
    }

    /// Runs a query now and decodes its result as `R`.
    pub fn query<A: Args, R: IntersticeType>(
        &mut self,
        module: &str,
        query: &str,
        args: A,
    ) -> Result<R, CallError> {
        let handle = self.modules.query(module, query)?;
        let schema = self.schema_of(module)?;
        let query_schema = schema.query(query).ok_or_else(|| CallError::NoSuchQuery {
            module: module.into(),
            name: query.into(),
        })?;
        check_arg_types(&query_schema.args, &A::arg_types(), query)?;
        if !same_type(&query_schema.returns, &R::value_type()) {
            return Err(CallError::TypeMismatch(format!(
                "query `{query}` returns {}, not {}",
                query_schema.returns,
                R::value_type()
            )));
        }
        let mut bytes = Vec::new();
        args.encode_args(&mut bytes);
        let result = self.modules.call_query(&mut self.db, handle, &bytes)?;
        R::from_bytes(&result).map_err(|e| CallError::InvalidResult(e.to_string()))
    }

    /// The loaded modules (schemas, authorities).
    pub fn modules(&self) -> &Modules {
        &self.modules
    }

    /// Every module's tables.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Sends [`TableChanged`](crate::TableChanged) messages for `module.table` from now on.
    pub fn watch_table(&mut self, module: &str, table: &str) {
        self.modules.watch_table(module, table);
        self.messages.add(module, table);
    }

    /// Runs a query now on already encoded arguments (checked against its signature) and
    /// returns its encoded result.
    pub fn query_encoded(
        &mut self,
        module: &str,
        query: &str,
        args: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let handle = self.modules.query(module, query)?;
        self.modules.check_query_args(handle, args)?;
        self.modules.call_query(&mut self.db, handle, args)
    }

    /// Every row of a table, in primary-key order, as the module's own row type `T` (a game
    /// may depend on the module crate natively to share it).
    pub fn rows<T: IntersticeType>(&self, module: &str, table: &str) -> Result<Vec<T>, CallError> {
        let t = self
            .db
            .table(module, table)
            .ok_or_else(|| CallError::NoSuchTable {
                module: module.into(),
                name: table.into(),
            })?;
        let expected = t.schema().row_value_type();
        if !same_type(&expected, &T::value_type()) {
            return Err(CallError::TypeMismatch(format!(
                "rows of `{module}.{table}` are {expected}, not {}",
                T::value_type()
            )));
        }
        let mut buffer = Vec::new();
        t.rows()
            .map(|row| {
                buffer.clear();
                t.encode_row(row, &mut buffer);
                T::from_bytes(&buffer).map_err(|e| CallError::TypeMismatch(e.to_string()))
            })
            .collect()
    }

    /// Number of rows in a table.
    pub fn row_count(&self, module: &str, table: &str) -> Result<usize, CallError> {
        self.db
            .table(module, table)
            .map(|t| t.len())
            .ok_or_else(|| CallError::NoSuchTable {
                module: module.into(),
                name: table.into(),
            })
    }

    /// Loads a module now.
    pub fn load_module(&mut self, wasm: &[u8]) -> Result<Arc<ModuleSchema>, LoadError> {
        let Self { modules, db, .. } = self;
        modules.load(db, wasm)
    }

    /// The schema of a loaded module.
    pub fn schema(&self, module: &str) -> Option<&Arc<ModuleSchema>> {
        self.modules.schema(module)
    }

    fn schema_of(&self, module: &str) -> Result<Arc<ModuleSchema>, CallError> {
        self.modules
            .schema(module)
            .cloned()
            .ok_or_else(|| CallError::NoSuchModule(module.into()))
    }

    /// Tells the modules that subscribe to `connect` (or `disconnect`) that a peer node came
    /// (or went): their reducers are queued with the peer's node id.
    pub fn peer_event(&mut self, connected: bool, node_id: &str) -> Vec<InvocationId> {
        let Self { modules, queue, .. } = self;
        queue.push_peer_event(modules, connected, node_id)
    }

    /// Invocations waiting to run.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}
