//! One instantiated module: its store, memory and entry points.

use super::state::HostState;
use crate::error::{CallError, LoadError};
use interstice_abi::codec::unpack;
use interstice_abi::protocol::exports;
use std::sync::Arc;
use wasmtime::{InstancePre, Memory, Store, Trap, TypedFunc};

/// Longest description or result the host reads from a guest, in bytes.
pub const MAX_GUEST_RESULT: usize = 16 * 1024 * 1024;

/// An entry point: `(args_ptr, args_len) -> outcome`.
pub type EntryPoint = TypedFunc<(u32, u32), i64>;

/// A live instance of a module.
pub struct Instance {
    /// The store holding the instance and its [`HostState`].
    pub store: Store<HostState>,
    /// Its memory.
    pub memory: Memory,
    /// `interstice_buffer(len) -> ptr`.
    pub buffer: TypedFunc<u32, u32>,
    instance: wasmtime::Instance,
}

impl Instance {
    /// Instantiates a pre-linked module with a fresh store.
    pub fn new(
        pre: &InstancePre<HostState>,
        module: Arc<str>,
        memory_cap: usize,
        fuel: u64,
    ) -> Result<Instance, LoadError> {
        let mut store = Store::new(pre.module().engine(), HostState::new(module, memory_cap));
        store.limiter(|s| s);
        store
            .set_fuel(fuel)
            .map_err(|e| LoadError::Instantiate(e.to_string()))?;
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        let memory = instance
            .get_memory(&mut store, exports::MEMORY)
            .ok_or_else(|| LoadError::MissingExport(exports::MEMORY.into()))?;
        store.data_mut().memory = Some(memory);
        let buffer = instance
            .get_typed_func::<u32, u32>(&mut store, exports::BUFFER)
            .map_err(|_| LoadError::MissingExport(exports::BUFFER.into()))?;
        Ok(Instance {
            store,
            memory,
            buffer,
            instance,
        })
    }

    /// A typed export.
    pub fn func<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        name: &str,
    ) -> Result<TypedFunc<P, R>, LoadError> {
        self.instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .map_err(|e| LoadError::BadDescription {
                export: name.into(),
                reason: format!("{e:#}"),
            })
    }

    /// Copies `len` bytes at `ptr` out of the guest, bounds-checked.
    pub fn read(&self, ptr: u32, len: u32) -> Option<Vec<u8>> {
        let (start, len) = (ptr as usize, len as usize);
        if len > MAX_GUEST_RESULT {
            return None;
        }
        let data = self.memory.data(&self.store);
        data.get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
    }

    /// Reads the bytes a packed pointer/length names.
    pub fn read_packed(&self, packed: u64) -> Option<Vec<u8>> {
        let (ptr, len) = unpack(packed);
        self.read(ptr, len)
    }

    /// Calls a describe export and returns the bytes it points at.
    pub fn describe(&mut self, export: &str, fuel: u64) -> Result<Vec<u8>, LoadError> {
        let f = self.func::<(), i64>(export)?;
        let bad = |reason: String| LoadError::BadDescription {
            export: export.into(),
            reason,
        };
        self.store.set_fuel(fuel).map_err(|e| bad(e.to_string()))?;
        let packed = f
            .call(&mut self.store, ())
            .map_err(|e| bad(format!("{e:#}")))?;
        self.read_packed(packed as u64)
            .ok_or_else(|| bad("points outside the module's memory".into()))
    }

    /// Runs an entry point on `args`; returns the outcome's payload. Does not touch tables:
    /// the caller sets up and finishes the transaction.
    pub fn run(
        &mut self,
        entry: &EntryPoint,
        args: &[u8],
        fuel: u64,
    ) -> Result<Vec<u8>, CallError> {
        let state = self.store.data_mut();
        state.memory_refused = false;
        state.panic_message = None;
        // Every call starts owing nothing (a replayed call pays exactly what it paid before).
        state.meter = Default::default();
        state.log_lines = 0;
        let result = self.run_inner(entry, args, fuel);
        match result {
            Ok(0) => Ok(Vec::new()),
            Ok(outcome) if outcome > 0 => self.read_packed(outcome as u64).ok_or_else(|| {
                CallError::InvalidResult("result outside the module's memory".into())
            }),
            Ok(outcome) => {
                let message = outcome
                    .checked_neg()
                    .and_then(|packed| self.read_packed(packed as u64))
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_else(|| "reducer failed (unreadable message)".into());
                Err(CallError::Failed(message))
            }
            Err(error) => Err(self.classify(error, fuel)),
        }
    }

    fn run_inner(&mut self, entry: &EntryPoint, args: &[u8], fuel: u64) -> wasmtime::Result<i64> {
        self.store.set_fuel(fuel)?;
        let (ptr, len) = if args.is_empty() {
            (0, 0)
        } else {
            let len = u32::try_from(args.len())
                .map_err(|_| wasmtime::Error::msg("arguments too large"))?;
            let ptr = self.buffer.call(&mut self.store, len)?;
            self.memory.write(&mut self.store, ptr as usize, args)?;
            (ptr, len)
        };
        entry.call(&mut self.store, (ptr, len))
    }

    fn classify(&mut self, error: wasmtime::Error, fuel: u64) -> CallError {
        let state = self.store.data_mut();
        if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
            return CallError::OutOfFuel(fuel);
        }
        if state.memory_refused {
            return CallError::MemoryCap(state.memory_cap);
        }
        if let Some(message) = state.panic_message.take() {
            return CallError::Trap(format!("panicked: {message}"));
        }
        CallError::Trap(format!("{error:#}"))
    }
}
