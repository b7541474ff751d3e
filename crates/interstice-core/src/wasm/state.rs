//! What a module's wasmtime `Store` carries: its limits and, during a call, its transaction.

use crate::db::ModuleTables;
use crate::db::Table;
use crate::db::tx::Undo;
use std::sync::Arc;
use wasmtime::{Memory, ResourceLimiter};

/// The transaction a call runs in: the module's tables (moved in for the call) and the undo
/// log of what the call changed.
#[derive(Default)]
pub struct CallTx {
    /// The calling module's tables.
    pub tables: ModuleTables,
    /// Changes made so far, oldest first.
    pub undo: Vec<Undo>,
    /// Queries may not write.
    pub read_only: bool,
    /// Row vectors of committed transactions' undo logs, emptied, for the next rows decoded
    /// from the guest: a reducer updating thousands of rows a frame then allocates none.
    pub(crate) spare_rows: Vec<crate::db::Row>,
    /// Writes to watched tables, recorded as they are made (see [`crate::feed`]).
    pub(crate) written: crate::feed::WriteLog,
}

/// At most this many spare row vectors are kept per module.
const MAX_SPARE_ROWS: usize = 16 * 1024;

impl CallTx {
    /// Empties the undo log of a committed transaction, keeping its rows' vectors as spares.
    /// `tables` are the module's (to tell which rows own memory beyond their vector).
    #[allow(
        unsafe_code,
        reason = "forgets the numbers of cold scalar rows instead of dropping them"
    )]
    pub fn recycle_undo(&mut self, tables: &[Table]) {
        for entry in self.undo.drain(..) {
            if let Undo::Updated {
                old: mut row,
                table,
            }
            | Undo::Deleted { mut row, table, .. } = entry
                && self.spare_rows.len() < MAX_SPARE_ROWS
            {
                if tables
                    .get(table as usize)
                    .is_some_and(Table::has_scalar_rows)
                {
                    // SAFETY: a length of 0 is within capacity and leaves nothing
                    // uninitialised in view. The values are forgotten rather than dropped:
                    // they are numbers, whose drop does nothing, and the row is cold by now —
                    // dropping them would fetch it from memory only to find that out.
                    unsafe { row.set_len(0) };
                } else {
                    row.clear();
                }
                self.spare_rows.push(row);
            }
        }
    }
}

/// A guest log line, kept for whoever wants to show it (the inspector, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestLog {
    /// The module that logged it.
    pub module: Arc<str>,
    /// 0 error … 4 trace.
    pub level: u32,
    /// The message.
    pub message: String,
}

/// Store data of one module instance.
pub struct HostState {
    /// The module's name.
    pub module: Arc<str>,
    /// Most bytes its linear memory may grow to.
    pub memory_cap: usize,
    /// Set when a memory growth past the cap was refused during the current call.
    pub memory_refused: bool,
    /// The instance's memory (set after instantiation).
    pub memory: Option<Memory>,
    /// The current call's transaction.
    pub tx: CallTx,
    /// Whether a call is running (table calls outside one are refused).
    pub in_call: bool,
    /// The response a guest fetches with `take_response`.
    pub response: Vec<u8>,
    /// Host work the current call has not paid for in fuel yet.
    pub meter: super::meter::Meter,
    /// The node's quotas, set before every call.
    pub quotas: crate::config::Quotas,
    /// Log lines the current call wrote (see [`Quotas::log_lines_per_call`]).
    ///
    /// [`Quotas::log_lines_per_call`]: crate::config::Quotas::log_lines_per_call
    pub log_lines: u32,
    /// The message of the last guest panic.
    pub panic_message: Option<String>,
    /// Why a natively loaded module's call must end as a trap (what would have trapped a wasm
    /// module inside a host call, such as an oversized payload), once the call returns.
    pub native_trap: Option<String>,
    /// Guest log lines not collected yet.
    pub logs: Vec<GuestLog>,
    /// The logical time of the current call, in milliseconds.
    pub now_ms: u64,
    /// The current call's random seed.
    pub random_seed: u64,
    /// The module's schema (to check what it schedules).
    pub schema: Option<Arc<interstice_abi::ModuleSchema>>,
    /// The other modules and their tables, lent to this call so it can call them: the
    /// runtime's call environment, which only the runtime reads (the sandbox does not know its
    /// type, so it does not depend on the runtime).
    pub env: Option<Box<dyn std::any::Any + Send + Sync>>,
    /// What modules called from this call committed, until the whole transaction ends.
    pub nested: Vec<crate::db::tx::NestedCommit>,
    /// The module that called this one, for `ctx.caller()` (`None` for calls from outside).
    pub caller: Option<Arc<str>>,
    /// The node id of the peer whose remote call this transaction runs, for
    /// `ctx.caller_node()` (`None` for calls made on this node).
    pub caller_node: Option<Arc<str>>,
    /// What the current call leaves outside its tables, kept only if it commits.
    pub effects: Effects,
    /// The module's file directory (File authority), when the node keeps a data directory.
    pub files_root: Option<std::path::PathBuf>,
    /// File writes and deletes of committed calls, applied once their commit is durable
    /// ([`Modules::release_effects`](crate::Modules::release_effects)).
    pub committed_files: Vec<super::files::PendingFile>,
    /// The input state the Input holder polls (postcard `InputState`), set before each call.
    pub input: Arc<[u8]>,
    /// Where this call's past reads are answered: set only for a query called from outside
    /// any transaction (see [`past`](super::past)).
    pub past: Option<Arc<dyn super::past::PastReads>>,
}

/// What one call leaves outside its tables: nothing of it leaves the transaction unless the
/// transaction commits, and all of it is dropped if it does not. The runtime hands each kind to
/// where it goes after a commit (`runtime::call`, `keep_effects`), so a new kind of effect (a
/// new authority's) is a field here, its line in [`discard`](Effects::discard), and its line
/// there.
#[derive(Debug, Default)]
pub struct Effects {
    /// Reducer calls to other nodes, sent once the commit is durable.
    pub remote_calls: Vec<crate::host_tables::outbox::RemoteCall>,
    /// File writes and deletes, applied once the commit is durable.
    pub files: Vec<super::files::PendingFile>,
    /// Paths to watch, registered at commit.
    pub watches: Vec<std::path::PathBuf>,
    /// What the call drew or played, presented at commit.
    pub output: super::present::PendingOutput,
}

impl Effects {
    /// Drops everything the call queued (it did not commit), keeping the vectors' memory.
    pub fn discard(&mut self) {
        self.remote_calls.clear();
        self.files.clear();
        self.watches.clear();
        self.output = Default::default();
    }
}

/// Largest encoded arguments of a remote call.
pub const MAX_REMOTE_ARGS: usize = 1024 * 1024;

/// Most guest log lines kept between collections.
pub const MAX_PENDING_LOGS: usize = 4096;
/// Longest guest log message or panic message kept, in bytes.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

impl HostState {
    /// State for a module that is being loaded.
    pub fn new(module: Arc<str>, memory_cap: usize) -> HostState {
        HostState {
            module,
            memory_cap,
            memory_refused: false,
            memory: None,
            tx: CallTx::default(),
            in_call: false,
            response: Vec::new(),
            meter: Default::default(),
            quotas: Default::default(),
            log_lines: 0,
            panic_message: None,
            native_trap: None,
            logs: Vec::new(),
            now_ms: 0,
            random_seed: 0,
            schema: None,
            env: None,
            nested: Vec::new(),
            caller: None,
            caller_node: None,
            effects: Effects::default(),
            files_root: None,
            committed_files: Vec::new(),
            input: Arc::from(&[][..]),
            past: None,
        }
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}
