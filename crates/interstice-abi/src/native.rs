//! Modules run natively, outside wasm: how a module's own `cargo test` runs its reducers and
//! queries against a real engine without building it for wasm.
//!
//! A module compiled for a native target registers each of its exports here (the SDK's macros
//! do it, through [`inventory`]), and its host calls go to the [`NativeHost`] the engine
//! installs with [`enter`] for the duration of a call. The contract is the wasm one, byte for
//! byte: the same export names, the same encoded arguments and results, the same host-call
//! answers; only the pointers are native. The engine side lives in `interstice-core`
//! (`Modules::load_native`), the test harness in `interstice-testing`.

extern crate std;

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;

/// How a native entry point ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeOutcome {
    /// It returned: a query's encoded result, or nothing for a reducer.
    Done(Vec<u8>),
    /// A reducer returned an error, or the arguments did not decode.
    Failed(String),
    /// The module panicked, with this message: the engine treats it as a wasm trap.
    Panicked(String),
}

/// What a native export does.
#[derive(Clone, Copy)]
pub enum NativeCall {
    /// `interstice_abi_version`.
    AbiVersion(fn() -> u32),
    /// A describe export: the postcard description it would leave in guest memory.
    Describe(fn() -> Vec<u8>),
    /// A reducer or query entry point, on its encoded arguments.
    Entry(fn(&[u8]) -> NativeOutcome),
}

/// One export of a module compiled natively.
pub struct NativeExport {
    /// The module (its crate's name, as `interstice_module!` names it).
    pub module: &'static str,
    /// The export's wasm name ([`crate::protocol::exports`]).
    pub name: &'static str,
    /// What it does.
    pub call: NativeCall,
}

inventory::collect!(NativeExport);

/// Every export of `module` linked into this program.
pub fn exports_of(module: &str) -> impl Iterator<Item = &'static NativeExport> + '_ {
    inventory::iter::<NativeExport>
        .into_iter()
        .filter(move |e| e.module == module)
}

/// The modules linked into this program, each named once, sorted.
pub fn linked_modules() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = inventory::iter::<NativeExport>
        .into_iter()
        .map(|e| e.module)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The host side of the wasm imports ([`crate::protocol::imports`]), with slices for guest
/// pointers. Each answers exactly what the import answers.
pub trait NativeHost {
    /// `log`.
    fn log(&mut self, level: u32, message: &[u8]);
    /// `panic`: the message of a panic about to unwind.
    fn panic(&mut self, message: &[u8]);
    /// `resolve_table`.
    fn resolve_table(&mut self, name: &[u8]) -> i32;
    /// `table_op`.
    fn table_op(&mut self, op: u32, table: u32, field: u32, payload: &[u8]) -> i64;
    /// `take_response`: the pending response, which the guest copies.
    fn take_response(&mut self) -> Vec<u8>;
    /// `schedule`.
    fn schedule(&mut self, payload: &[u8]) -> i64;
    /// `cancel_schedule`.
    fn cancel_schedule(&mut self, id: u64) -> i32;
    /// `now`.
    fn now(&mut self) -> i64;
    /// `random_seed`.
    fn random_seed(&mut self) -> i64;
    /// `call_module`.
    fn call_module(&mut self, kind: u32, payload: &[u8]) -> i64;
    /// `caller`.
    fn caller(&mut self) -> i64;
    /// `caller_node`.
    fn caller_node(&mut self) -> i64;
    /// `file_op`.
    fn file_op(&mut self, op: u32, payload: &[u8]) -> i64;
    /// `gpu_submit`.
    fn gpu_submit(&mut self, payload: &[u8]) -> i64;
    /// `audio_write`.
    fn audio_write(&mut self, payload: &[u8]) -> i64;
    /// `input_state`.
    fn input_state(&mut self) -> i64;
    /// `table_as_of`.
    fn table_as_of(&mut self, seq: u64, op: u32, table: u32, payload: &[u8]) -> i64;
}

std::thread_local! {
    /// The host of the call running on this thread, if any.
    static HOST: Cell<Option<*mut (dyn NativeHost + 'static)>> = const { Cell::new(None) };
}

/// Runs `f` (a native entry point) with `host` answering its host calls on this thread.
/// Calls nest: the previous host is restored afterwards, even if `f` unwinds.
#[allow(
    unsafe_code,
    reason = "keeps the host a native module calls in a thread-local, lifetime erased"
)]
pub fn enter<R>(host: &mut dyn NativeHost, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<*mut (dyn NativeHost + 'static)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            HOST.with(|h| h.set(self.0));
        }
    }
    // SAFETY: only the lifetime is erased. The pointer is reachable only through `with_host`
    // on this thread, and only until `Restore` puts the previous one back when `f` returns
    // or unwinds, while `host` is still mutably borrowed by this function.
    let erased: *mut (dyn NativeHost + 'static) =
        unsafe { core::mem::transmute::<*mut dyn NativeHost, _>(host as *mut dyn NativeHost) };
    let _restore = Restore(HOST.with(|h| h.replace(Some(erased))));
    f()
}

/// What a host call made outside any call says.
pub const NEEDS_NODE: &str = "Interstice host calls need a node: inside a module running on a \
     node (wasm32), or in a native test through interstice-testing's TestNode";

/// Runs `f` with the host of the current call. Panics (with [`NEEDS_NODE`]) outside one.
///
/// The host is taken out of the thread for the duration of `f`: a host call made from inside
/// another (which the SDK never does) finds none and panics, instead of reaching the host a
/// second time while it is borrowed. A panic inside `f` is the engine's, not the module's:
/// [`host_panicked`] says so to the entry point that catches it.
#[allow(unsafe_code, reason = "lends the host `enter` keeps")]
pub fn with_host<R>(f: impl FnOnce(&mut dyn NativeHost) -> R) -> R {
    struct PutBack {
        host: *mut (dyn NativeHost + 'static),
        /// Whether a panic was unwinding already (the module's, reported by its hook).
        was_panicking: bool,
    }
    impl Drop for PutBack {
        fn drop(&mut self) {
            if std::thread::panicking() && !self.was_panicking {
                HOST_PANICKED.with(|p| p.set(true));
            }
            HOST.with(|h| h.set(Some(self.host)));
        }
    }
    let Some(host) = HOST.with(|h| h.take()) else {
        panic!("{NEEDS_NODE}");
    };
    let _put_back = PutBack {
        host,
        was_panicking: std::thread::panicking(),
    };
    // SAFETY: set by `enter`, whose borrow of the host outlives this call, and taken out of
    // the thread until `f` returns: this is the only reference to it.
    f(unsafe { &mut *host })
}

std::thread_local! {
    /// Whether the engine panicked while answering a host call on this thread.
    static HOST_PANICKED: Cell<bool> = const { Cell::new(false) };
}

/// Whether a panic that unwound through a host call happened in the engine (answering the
/// call) rather than in the module; clears the flag. An entry point that caught the panic
/// resumes it then: an engine bug must fail the test, not pass for a module's trap.
pub fn host_panicked() -> bool {
    HOST_PANICKED.with(|p| p.replace(false))
}

/// Whether a host is installed on this thread: a native call is running and is not inside a
/// host call.
pub fn in_call() -> bool {
    HOST.with(Cell::get).is_some()
}
