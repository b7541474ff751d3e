//! One instantiated module: its store, memory and entry points. A module loaded natively
//! (a module's own tests, see [`interstice_abi::native`]) is an instance too: a store for its
//! [`HostState`] and entry points that are native functions.

use super::state::HostState;
use crate::error::{CallError, LoadError};
use interstice_abi::codec::unpack;
use interstice_abi::native::{NativeCall, NativeExport, NativeOutcome};
use interstice_abi::protocol::exports;
use std::sync::Arc;
use wasmtime::{InstancePre, Memory, Store, Trap, TypedFunc};

/// Longest description or result the host reads from a guest, in bytes.
pub const MAX_GUEST_RESULT: usize = 16 * 1024 * 1024;

/// An entry point: a wasm export `(args_ptr, args_len) -> outcome`, or a native function.
#[derive(Clone)]
pub enum EntryPoint {
    /// A wasm export.
    Wasm(TypedFunc<(u32, u32), i64>),
    /// A function of a module compiled natively.
    Native(fn(&[u8]) -> NativeOutcome),
}

/// What runs the module's code.
enum Code {
    /// A wasm instance.
    Wasm {
        /// Its memory.
        memory: Memory,
        /// `interstice_buffer(len) -> ptr`.
        buffer: TypedFunc<u32, u32>,
        instance: wasmtime::Instance,
    },
    /// The exports the module named this registered natively.
    Native(Arc<str>),
}

/// A live instance of a module.
pub struct Instance {
    /// The store holding the instance and its [`HostState`].
    pub store: Store<HostState>,
    code: Code,
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
        store.set_fuel(fuel).map_err(LoadError::Instantiate)?;
        let instance = pre
            .instantiate(&mut store)
            .map_err(LoadError::Instantiate)?;
        let memory = instance
            .get_memory(&mut store, exports::MEMORY)
            .ok_or_else(|| LoadError::MissingExport(exports::MEMORY.into()))?;
        store.data_mut().memory = Some(memory);
        let buffer = instance
            .get_typed_func::<u32, u32>(&mut store, exports::BUFFER)
            .map_err(|_| LoadError::MissingExport(exports::BUFFER.into()))?;
        Ok(Instance {
            store,
            code: Code::Wasm {
                memory,
                buffer,
                instance,
            },
        })
    }

    /// An instance of the module compiled into this program whose exports are registered
    /// under `registered` ([`interstice_abi::native`]).
    pub fn native(engine: &wasmtime::Engine, registered: Arc<str>, memory_cap: usize) -> Instance {
        let store = Store::new(engine, HostState::new(registered.clone(), memory_cap));
        Instance {
            store,
            code: Code::Native(registered),
        }
    }

    /// Whether the module runs natively.
    pub fn is_native(&self) -> bool {
        matches!(self.code, Code::Native(_))
    }

    /// The native export `name`.
    fn native_export(&self, name: &str) -> Option<&'static NativeExport> {
        match &self.code {
            Code::Native(module) => {
                interstice_abi::native::exports_of(module).find(|e| e.name == name)
            }
            Code::Wasm { .. } => None,
        }
    }

    /// The names of the instance's exports.
    pub fn export_names(&mut self) -> Vec<String> {
        match &self.code {
            Code::Wasm { instance, .. } => {
                let instance = *instance;
                instance
                    .exports(&mut self.store)
                    .map(|e| e.name().to_string())
                    .collect()
            }
            Code::Native(module) => interstice_abi::native::exports_of(module)
                .map(|e| e.name.to_string())
                .collect(),
        }
    }

    /// A typed export of a wasm instance.
    pub fn func<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        name: &str,
    ) -> Result<TypedFunc<P, R>, LoadError> {
        let Code::Wasm { instance, .. } = &self.code else {
            return Err(LoadError::MissingExport(name.into()));
        };
        instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .map_err(|e| LoadError::BadDescription {
                export: name.into(),
                reason: format!("{e:#}"),
            })
    }

    /// The entry point `name` (a reducer or query export).
    pub fn entry(&mut self, name: &str) -> Result<EntryPoint, LoadError> {
        if self.is_native() {
            return match self.native_export(name).map(|e| e.call) {
                Some(NativeCall::Entry(run)) => Ok(EntryPoint::Native(run)),
                _ => Err(LoadError::MissingExport(name.into())),
            };
        }
        self.func::<(u32, u32), i64>(name).map(EntryPoint::Wasm)
    }

    /// The ABI version the module was built with.
    pub fn abi_version(&mut self, fuel: u64) -> Result<u32, LoadError> {
        if self.is_native() {
            return match self.native_export(exports::ABI_VERSION).map(|e| e.call) {
                Some(NativeCall::AbiVersion(version)) => Ok(version()),
                _ => Err(LoadError::MissingExport(exports::ABI_VERSION.into())),
            };
        }
        let version = self
            .func::<(), u32>(exports::ABI_VERSION)
            .map_err(|_| LoadError::MissingExport(exports::ABI_VERSION.into()))?;
        self.store.set_fuel(fuel).map_err(LoadError::Instantiate)?;
        version
            .call(&mut self.store, ())
            .map_err(LoadError::Instantiate)
    }

    /// Copies `len` bytes at `ptr` out of the guest, bounds-checked.
    pub fn read(&self, ptr: u32, len: u32) -> Option<Vec<u8>> {
        let Code::Wasm { memory, .. } = &self.code else {
            return None;
        };
        let (start, len) = (ptr as usize, len as usize);
        if len > MAX_GUEST_RESULT {
            return None;
        }
        let data = memory.data(&self.store);
        data.get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
    }

    /// Reads the bytes a packed pointer/length names.
    pub fn read_packed(&self, packed: u64) -> Option<Vec<u8>> {
        let (ptr, len) = unpack(packed);
        self.read(ptr, len)
    }

    /// Calls a describe export and returns the bytes it points at.
    pub fn describe(&mut self, export: &str, fuel: u64) -> Result<Vec<u8>, LoadError> {
        if self.is_native() {
            return match self.native_export(export).map(|e| e.call) {
                Some(NativeCall::Describe(describe)) => Ok(describe()),
                _ => Err(LoadError::MissingExport(export.into())),
            };
        }
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
        let wasm = match entry {
            EntryPoint::Wasm(wasm) => wasm,
            EntryPoint::Native(run) => {
                let state = self.store.data_mut();
                state.native_trap = None;
                let outcome = interstice_abi::native::enter(state, || run(args));
                if let Some(message) = self.store.data_mut().native_trap.take() {
                    return Err(CallError::Trap(message));
                }
                return match outcome {
                    NativeOutcome::Done(bytes) if bytes.len() > MAX_GUEST_RESULT => {
                        Err(CallError::InvalidResult(format!(
                            "a result of {} bytes is over {MAX_GUEST_RESULT}",
                            bytes.len()
                        )))
                    }
                    NativeOutcome::Done(bytes) => Ok(bytes),
                    NativeOutcome::Failed(message) => Err(CallError::Failed(message)),
                    NativeOutcome::Panicked(payload) => {
                        // What the module's panic hook reported, as in wasm; else the payload.
                        let message = self.store.data_mut().panic_message.take();
                        Err(CallError::Trap(format!(
                            "panicked: {}",
                            message.unwrap_or(payload)
                        )))
                    }
                };
            }
        };
        let result = self.run_inner(wasm, args, fuel);
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

    fn run_inner(
        &mut self,
        entry: &TypedFunc<(u32, u32), i64>,
        args: &[u8],
        fuel: u64,
    ) -> wasmtime::Result<i64> {
        let Code::Wasm { memory, buffer, .. } = &self.code else {
            return Err(wasmtime::Error::msg("not a wasm instance"));
        };
        let (memory, buffer) = (*memory, buffer.clone());
        self.store.set_fuel(fuel)?;
        let (ptr, len) = if args.is_empty() {
            (0, 0)
        } else {
            let len = u32::try_from(args.len())
                .map_err(|_| wasmtime::Error::msg("arguments too large"))?;
            let ptr = buffer.call(&mut self.store, len)?;
            memory.write(&mut self.store, ptr as usize, args)?;
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
