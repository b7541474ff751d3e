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
    /// What one module may hold, and do in one call.
    pub quotas: Quotas,
    /// Native stack a chain of cross-module calls may use beyond the outermost call, in bytes.
    /// Each nested call runs on the same thread's stack and may use up to `max_stack` of it:
    /// 16 of them could need more than a thread has. A nested call is refused unless what the
    /// chain used so far plus `max_stack` fits in this.
    pub nested_call_stack: usize,
}

/// Per-module quotas. The defaults are far above what a game does by accident and bound what
/// a hostile module can make the node hold; raise them in [`EngineConfig::quotas`]. Breaking
/// one is an ordinary error to the reducer (`HostError::QuotaExceeded`, rolled back like any
/// other), never a node failure. `docs/security.md` lists them with every other limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Rows across a module's own tables.
    pub rows: u64,
    /// Pending entries in a module's schedule.
    pub schedule_entries: u64,
    /// Encoded arguments of one schedule entry, in bytes (each byte is stored as a value).
    pub schedule_args_bytes: usize,
    /// Reducer calls to other nodes one transaction may queue.
    pub remote_calls_per_call: usize,
    /// Encoded arguments of all the remote calls one transaction queues, in bytes.
    pub remote_call_bytes_per_call: usize,
    /// Log lines one call may write; later ones are dropped (and counted in one warning).
    pub log_lines_per_call: u32,
    /// Bytes of file writes one transaction may queue (File authority).
    pub file_bytes_per_call: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            rows: 10_000_000,
            schedule_entries: 100_000,
            schedule_args_bytes: 64 * 1024,
            remote_calls_per_call: 1_000,
            remote_call_bytes_per_call: 16 * 1024 * 1024,
            log_lines_per_call: 1_000,
            file_bytes_per_call: 64 * 1024 * 1024,
        }
    }
}

impl Quotas {
    /// The error a reducer gets for breaking `quota` of `limit`.
    pub fn exceeded(quota: &str, limit: impl TryInto<u64>) -> interstice_abi::HostError {
        interstice_abi::HostError::QuotaExceeded {
            quota: quota.into(),
            limit: limit.try_into().unwrap_or(u64::MAX),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            fuel_per_call: 50_000_000,
            memory_cap: 64 * 1024 * 1024,
            max_stack: 512 * 1024,
            cascade_budget: 100_000,
            quotas: Quotas::default(),
            nested_call_stack: 1024 * 1024,
        }
    }
}
