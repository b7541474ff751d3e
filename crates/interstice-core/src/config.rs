//! Limits and settings of the wasm engine.

/// How guests are contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Fuel (roughly: wasm instructions) one reducer or query call may use.
    pub fuel_per_call: u64,
    /// Largest linear memory a module may have, in bytes (at most 2 GiB).
    pub memory_cap: usize,
    /// Largest wasm stack, in bytes.
    pub max_stack: usize,
    /// Most subscriber invocations one frame runs; the rest wait for the next frame, so a
    /// subscription cycle slows the node down instead of hanging it.
    pub cascade_budget: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            fuel_per_call: 50_000_000,
            memory_cap: 64 * 1024 * 1024,
            max_stack: 512 * 1024,
            cascade_budget: 100_000,
        }
    }
}
