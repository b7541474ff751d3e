//! The wasmtime side: engine configuration, host functions, instances.

pub mod cache;
pub mod files;
pub mod host_calls;
pub mod instance;
pub mod meter;
pub mod native;
pub mod past;
pub mod present;
pub mod remote;
pub mod state;

use crate::config::EngineConfig;
use wasmtime::{Config, Engine};

/// A wasmtime engine configured for determinism and containment: fuel metering (no
/// wall-clock interruption), NaN canonicalisation, deterministic relaxed SIMD and a bounded
/// stack. Threads are compiled out of wasmtime altogether (its `threads` feature is off), so
/// a module that uses shared memory or atomics fails validation.
pub fn engine(config: &EngineConfig) -> wasmtime::Result<Engine> {
    let mut c = Config::new();
    c.consume_fuel(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .max_wasm_stack(config.max_stack);
    Engine::new(&c)
}
