//! One loaded module: its schema, its instance and its entry points.

use super::describe::entry_points;
use crate::error::CallError;
use crate::wasm::instance::{EntryPoint, Instance};
use crate::wasm::state::HostState;
use interstice_abi::ModuleSchema;
use std::sync::Arc;
use wasmtime::InstancePre;

/// A loaded module.
pub struct LoadedModule {
    pub(super) schema: Arc<ModuleSchema>,
    pub(super) name: Arc<str>,
    /// How to make a fresh instance: `None` for a module loaded natively.
    pub(super) pre: Option<InstancePre<HostState>>,
    pub(super) instance: Instance,
    pub(super) reducers: Vec<EntryPoint>,
    pub(super) queries: Vec<EntryPoint>,
    /// Whether the instance trapped and must be replaced before the next call.
    pub(super) poisoned: bool,
    /// Whether it imports `call_module` (only then are other modules lent to its calls).
    pub(super) calls_modules: bool,
}

impl LoadedModule {
    /// Replaces a trapped instance: it may have broken its own heap; modules keep no state
    /// outside their tables, so a fresh instance is equivalent and safe.
    pub(super) fn refresh(&mut self, memory_cap: usize, fuel: u64) -> Result<(), CallError> {
        if !self.poisoned {
            return Ok(());
        }
        let mut instance = match &self.pre {
            Some(pre) => Instance::new(pre, self.name.clone(), memory_cap, fuel)
                .map_err(|e| CallError::Trap(format!("re-instantiation failed: {e}")))?,
            None => {
                let engine = self.instance.store.engine().clone();
                let mut fresh = Instance::native(&engine, self.name.clone(), memory_cap);
                fresh.store.data_mut().schema = Some(self.schema.clone());
                fresh
            }
        };
        let (reducers, queries) = entry_points(&mut instance, &self.schema)
            .map_err(|e| CallError::Trap(format!("re-instantiation failed: {e}")))?;
        // Committed file writes waiting for their fsync belong to earlier transactions.
        let waiting = std::mem::take(&mut self.instance.store.data_mut().committed_files);
        instance.store.data_mut().committed_files = waiting;
        self.instance = instance;
        self.reducers = reducers;
        self.queries = queries;
        self.poisoned = false;
        Ok(())
    }
}
