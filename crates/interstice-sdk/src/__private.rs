//! Support code for the macros. Not a public API.

use crate::ffi;
use interstice_abi::codec::{DecodeError, Reader, pack};
use interstice_abi::protocol::TableOp;
use interstice_abi::{HostError, IntersticeType, TypeSet};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};

pub use interstice_abi;
pub use interstice_abi::protocol::{
    ABI_VERSION, ModuleDescription, QueryDescription, ReducerDescription, TableDescription,
};
pub use interstice_abi::schema::{
    Authority, EventSpec, IndexKind, IndexSchema, NodeDependency, Persistence, QuerySchema,
    ReducerSchema, TableSchema, Visibility,
};
pub use interstice_abi::types::{
    FieldDef, TypeDef, TypeKind, ValueType, VariantDef, VariantFields,
};

/// A buffer owned by the guest. Wasm modules are single-threaded, and the host never re-enters a
/// guest while it is running, so a cell with no lock is sound here.
struct GuestBuffer(UnsafeCell<Vec<u8>>);
// SAFETY: wasm32-unknown-unknown modules run on one thread; on native targets these buffers
// are never touched because no host calls into the module.
unsafe impl Sync for GuestBuffer {}

impl GuestBuffer {
    const fn new() -> Self {
        GuestBuffer(UnsafeCell::new(Vec::new()))
    }
    #[allow(clippy::mut_from_ref)]
    fn get(&self) -> &mut Vec<u8> {
        // SAFETY: see the `Sync` impl: there is never a second live reference.
        unsafe { &mut *self.0.get() }
    }
}

/// Where the host writes call arguments.
static ARGS: GuestBuffer = GuestBuffer::new();
/// Where the guest leaves a call's result until the host has read it.
static RESULT: GuestBuffer = GuestBuffer::new();

/// `interstice_buffer(len)`: a pointer to at least `len` writable bytes.
pub fn args_buffer(len: u32) -> u32 {
    let buf = ARGS.get();
    buf.clear();
    buf.resize(len as usize, 0);
    buf.as_mut_ptr() as usize as u32
}

/// Leaves `bytes` in the result buffer and packs its address.
fn leave_result(bytes: &[u8]) -> u64 {
    let buf = RESULT.get();
    buf.clear();
    buf.extend_from_slice(bytes);
    pack(buf.as_ptr() as usize as u32, buf.len() as u32)
}

fn install_panic_hook() {
    static INSTALLED: AtomicU32 = AtomicU32::new(0);
    if INSTALLED.swap(1, Ordering::Relaxed) == 0 {
        std::panic::set_hook(Box::new(|info| {
            let message = info.to_string();
            // SAFETY: pointer and length of a live string.
            unsafe { ffi::panic(message.as_ptr(), message.len()) }
        }));
    }
}

/// The argument bytes the host wrote.
///
/// # Safety
/// `ptr`/`len` must come from the host for this call (they point into [`ARGS`]).
unsafe fn args<'a>(ptr: u32, len: u32) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the host wrote `len` bytes at `ptr`, inside the buffer `args_buffer` returned.
    unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }
}

/// A reducer's return value.
pub trait ReducerReturn {
    /// `Ok` or the error message.
    fn into_outcome(self) -> Result<(), String>;
}

impl ReducerReturn for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Display> ReducerReturn for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| {
            let message = e.to_string();
            if message.is_empty() {
                "reducer failed".to_string()
            } else {
                message
            }
        })
    }
}

fn error_outcome(message: &str) -> i64 {
    -(leave_result(message.as_bytes()) as i64)
}

/// Runs a reducer entry point: decodes the arguments, runs the body, encodes the outcome.
///
/// # Safety
/// `ptr`/`len` must be the arguments the host passed to the export.
pub unsafe fn run_reducer(
    ptr: u32,
    len: u32,
    body: impl FnOnce(&mut Reader<'_>) -> Result<Result<(), String>, DecodeError>,
) -> i64 {
    install_panic_hook();
    reset_random();
    // SAFETY: forwarded from the caller.
    let mut reader = Reader::new(unsafe { args(ptr, len) });
    match body(&mut reader) {
        Ok(Ok(())) => 0,
        Ok(Err(message)) => error_outcome(&message),
        Err(e) => error_outcome(&format!("invalid arguments: {e}")),
    }
}

/// Runs a query entry point: decodes the arguments, runs the body, encodes the result.
///
/// # Safety
/// `ptr`/`len` must be the arguments the host passed to the export.
pub unsafe fn run_query<R: IntersticeType>(
    ptr: u32,
    len: u32,
    body: impl FnOnce(&mut Reader<'_>) -> Result<R, DecodeError>,
) -> i64 {
    install_panic_hook();
    reset_random();
    // SAFETY: forwarded from the caller.
    let mut reader = Reader::new(unsafe { args(ptr, len) });
    match body(&mut reader) {
        Ok(value) => {
            let bytes = value.to_bytes();
            if bytes.is_empty() {
                0
            } else {
                leave_result(&bytes) as i64
            }
        }
        Err(e) => error_outcome(&format!("invalid arguments: {e}")),
    }
}

/// Decodes one argument, checking that arguments end where the last one does.
pub fn arg<T: IntersticeType>(r: &mut Reader<'_>) -> Result<T, DecodeError> {
    T::decode(r)
}

/// Checks that no argument bytes are left over.
pub fn end_args(r: &Reader<'_>) -> Result<(), DecodeError> {
    r.finish()
}

/// Encodes a description with postcard and packs its address.
pub fn describe<D: serde::Serialize>(description: &D) -> u64 {
    leave_result(&description_bytes(description))
}

/// Encodes a description with postcard.
pub fn description_bytes<D: serde::Serialize>(description: &D) -> Vec<u8> {
    match postcard::to_allocvec(description) {
        Ok(bytes) => bytes,
        Err(e) => panic!("cannot encode the module description: {e}"),
    }
}

/// Leaves encoded description bytes for the host and packs their address.
pub fn leave_description(bytes: Vec<u8>) -> u64 {
    leave_result(&bytes)
}

#[cfg(not(target_arch = "wasm32"))]
pub use interstice_abi::native::{NativeCall, NativeExport, NativeOutcome};
#[cfg(not(target_arch = "wasm32"))]
pub use inventory;

/// The message of a caught panic.
#[cfg(not(target_arch = "wasm32"))]
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

/// Natively, a panic inside a module's call reports its message to the host as in wasm (the
/// same text: location and payload) and prints nothing, since it is an outcome the test reads;
/// any other panic goes to the hook that was there before.
#[cfg(not(target_arch = "wasm32"))]
fn install_native_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if interstice_abi::native::in_call() {
                let message = info.to_string();
                // SAFETY: pointer and length of a live string.
                unsafe { ffi::panic(message.as_ptr(), message.len()) }
            } else {
                previous(info);
            }
        }));
    });
}

/// A reducer entry point run natively: like [`run_reducer`], with a panic caught and reported
/// the way a wasm trap is.
#[cfg(not(target_arch = "wasm32"))]
pub fn native_reducer(
    args: &[u8],
    body: impl FnOnce(&mut Reader<'_>) -> Result<Result<(), String>, DecodeError>,
) -> NativeOutcome {
    install_native_panic_hook();
    reset_random();
    let mut reader = Reader::new(args);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut reader)));
    match run {
        Ok(Ok(Ok(()))) => NativeOutcome::Done(Vec::new()),
        Ok(Ok(Err(message))) => NativeOutcome::Failed(message),
        Ok(Err(e)) => NativeOutcome::Failed(format!("invalid arguments: {e}")),
        Err(payload) => panicked(payload),
    }
}

/// What a caught panic becomes: the module's trap, or, if it came from the engine answering
/// a host call, the same panic again.
#[cfg(not(target_arch = "wasm32"))]
fn panicked(payload: Box<dyn std::any::Any + Send>) -> NativeOutcome {
    if interstice_abi::native::host_panicked() {
        std::panic::resume_unwind(payload);
    }
    NativeOutcome::Panicked(panic_text(payload.as_ref()))
}

/// A query entry point run natively: like [`run_query`], with a panic caught.
#[cfg(not(target_arch = "wasm32"))]
pub fn native_query<R: IntersticeType>(
    args: &[u8],
    body: impl FnOnce(&mut Reader<'_>) -> Result<R, DecodeError>,
) -> NativeOutcome {
    install_native_panic_hook();
    reset_random();
    let mut reader = Reader::new(args);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut reader)));
    match run {
        Ok(Ok(value)) => NativeOutcome::Done(value.to_bytes()),
        Ok(Err(e)) => NativeOutcome::Failed(format!("invalid arguments: {e}")),
        Err(payload) => panicked(payload),
    }
}

/// The named types `T` uses, as a list.
pub fn types_of(register: impl FnOnce(&mut TypeSet)) -> Vec<TypeDef> {
    let mut set = TypeSet::new();
    register(&mut set);
    set.iter().cloned().collect()
}

/// Resolves and caches a table id.
#[inline]
pub fn cached_table_id(cache: &AtomicU32, name: &str) -> u32 {
    let id = cache.load(Ordering::Relaxed);
    if id != u32::MAX {
        return id;
    }
    resolve_table_id(cache, name)
}

/// The first use of a table: asks the host for its id.
#[cold]
#[inline(never)]
fn resolve_table_id(cache: &AtomicU32, name: &str) -> u32 {
    // SAFETY: pointer and length of a live string.
    let resolved = unsafe { ffi::resolve_table(name.as_ptr(), name.len()) };
    if resolved < 0 {
        panic!("the node does not know table `{name}`");
    }
    cache.store(resolved as u32, Ordering::Relaxed);
    resolved as u32
}

/// The `table_op` host call: `r >= 0` is an `r`-byte response, `r < 0` an error.
#[inline]
fn raw_table_op(op: TableOp, table: u32, field: u16, payload: &[u8]) -> i64 {
    // SAFETY: pointer and length of a live slice.
    unsafe {
        ffi::table_op(
            op as u32,
            table,
            u32::from(field),
            payload.as_ptr(),
            payload.len(),
        )
    }
}

/// Runs one table operation that answers nothing on success (an update): no response to
/// fetch or allocate, which matters to a reducer writing thousands of rows.
#[inline]
pub fn table_call_unit(
    op: TableOp,
    table: u32,
    field: u16,
    payload: &[u8],
) -> Result<(), HostError> {
    let outcome = raw_table_op(op, table, field, payload);
    if outcome == 0 {
        Ok(())
    } else {
        unit_outcome(outcome)
    }
}

/// [`table_call_unit`]'s answer when it is not a plain success.
#[cold]
#[inline(never)]
fn unit_outcome(outcome: i64) -> Result<(), HostError> {
    self::outcome(outcome).map(drop)
}

/// Runs one table operation and returns its response bytes.
pub fn table_call(
    op: TableOp,
    table: u32,
    field: u16,
    payload: &[u8],
) -> Result<Vec<u8>, HostError> {
    let outcome = raw_table_op(op, table, field, payload);
    self::outcome(outcome)
}

/// Decodes an error the host left pending.
pub(crate) fn host_error(bytes: &[u8]) -> HostError {
    postcard::from_bytes(bytes)
        .unwrap_or_else(|e| HostError::InvalidPayload(format!("undecodable host error: {e}")))
}

/// The response of a host call that answers like `table_op`: `r >= 0` is an `r`-byte
/// response, `r < 0` a `(-r - 1)`-byte encoded [`HostError`].
pub(crate) fn outcome(r: i64) -> Result<Vec<u8>, HostError> {
    if r >= 0 {
        Ok(take_response(r as usize))
    } else {
        Err(host_error(&take_response((-(r + 1)) as usize)))
    }
}

/// The `len`-byte response the host left pending. Natively the host hands it over as it is,
/// and a length that differs from the one it announced is a bug in the engine.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn take_response(len: usize) -> Vec<u8> {
    let response = interstice_abi::native::with_host(|h| h.take_response());
    assert_eq!(
        response.len(),
        len,
        "the host announced a {len}-byte response and handed over {} bytes",
        response.len()
    );
    response
}

/// Copies the `len`-byte response the host left pending.
#[cfg(target_arch = "wasm32")]
pub(crate) fn take_response(len: usize) -> Vec<u8> {
    let mut response = Vec::with_capacity(len);
    if len > 0 {
        // SAFETY: the host writes exactly `len` bytes, the pending response, into capacity we
        // reserved; then they are initialised.
        unsafe {
            ffi::take_response(response.as_mut_ptr());
            response.set_len(len);
        }
    }
    response
}

/// Schedules a reducer of this module; returns the entry id.
pub fn schedule(
    reducer: &str,
    args: &[u8],
    delay_ms: u64,
    repeat_ms: u64,
) -> Result<u64, HostError> {
    let mut payload = Vec::with_capacity(reducer.len() + args.len() + 24);
    interstice_abi::codec::write_str(&mut payload, reducer);
    interstice_abi::codec::write_varint(&mut payload, args.len() as u64);
    payload.extend_from_slice(args);
    interstice_abi::codec::write_varint(&mut payload, delay_ms);
    interstice_abi::codec::write_varint(&mut payload, repeat_ms);
    // SAFETY: pointer and length of a live buffer.
    let outcome = unsafe { ffi::schedule(payload.as_ptr(), payload.len()) };
    if outcome >= 0 {
        Ok(outcome as u64)
    } else {
        Err(host_error(&take_response((-(outcome + 1)) as usize)))
    }
}

/// Cancels a schedule entry; whether one was removed.
pub fn cancel_schedule(id: u64) -> bool {
    // SAFETY: plain value call.
    unsafe { ffi::cancel_schedule(id) == 1 }
}

/// The logical time of the current call.
pub fn now() -> u64 {
    // SAFETY: plain value call.
    unsafe { ffi::now() as u64 }
}

/// The call's random generator: unseeded at every entry point, seeded from the host on first
/// use. One per thread natively, where tests run calls on several threads at once.
struct Rng {
    state: u64,
    seeded: bool,
}

#[cfg(target_arch = "wasm32")]
fn with_rng<R>(f: impl FnOnce(&mut Rng) -> R) -> R {
    /// The module's generator (a wasm module runs on one thread).
    struct Shared(UnsafeCell<Rng>);
    // SAFETY: wasm32-unknown-unknown modules run on one thread.
    unsafe impl Sync for Shared {}
    static RNG: Shared = Shared(UnsafeCell::new(Rng {
        state: 0,
        seeded: false,
    }));
    // SAFETY: one thread, and `f` cannot reach `RNG` again.
    f(unsafe { &mut *RNG.0.get() })
}

#[cfg(not(target_arch = "wasm32"))]
fn with_rng<R>(f: impl FnOnce(&mut Rng) -> R) -> R {
    std::thread_local! {
        static RNG: std::cell::RefCell<Rng> = const {
            std::cell::RefCell::new(Rng { state: 0, seeded: false })
        };
    }
    RNG.with(|rng| f(&mut rng.borrow_mut()))
}

fn reset_random() {
    with_rng(|rng| rng.seeded = false);
}

/// The next deterministic random number of this call (SplitMix64 from the host's seed).
pub fn next_random() -> u64 {
    let seeded = with_rng(|rng| rng.seeded);
    if !seeded {
        // SAFETY: plain value call.
        let seed = unsafe { ffi::random_seed() } as u64;
        with_rng(|rng| {
            rng.state = seed;
            rng.seeded = true;
        });
    }
    // SplitMix64, the generator the host seeds with the same function (`interstice_abi::mix`).
    with_rng(|rng| {
        let out = interstice_abi::mix::splitmix64(rng.state);
        rng.state = rng.state.wrapping_add(interstice_abi::mix::SPLITMIX_GAMMA);
        out
    })
}

/// Calls a reducer or query of another module on this node; returns the encoded result.
pub fn call_module(
    kind: interstice_abi::protocol::CallKind,
    module: &str,
    name: &str,
    args: &[u8],
) -> Result<Vec<u8>, HostError> {
    let mut payload = Vec::with_capacity(module.len() + name.len() + args.len() + 8);
    interstice_abi::codec::write_str(&mut payload, module);
    interstice_abi::codec::write_str(&mut payload, name);
    interstice_abi::codec::write_varint(&mut payload, args.len() as u64);
    payload.extend_from_slice(args);
    // SAFETY: pointer and length of a live buffer.
    let outcome = unsafe { ffi::call_module(kind.code(), payload.as_ptr(), payload.len()) };
    if outcome >= 0 {
        Ok(take_response(outcome as usize))
    } else {
        Err(host_error(&take_response((-(outcome + 1)) as usize)))
    }
}

/// Sends a reducer call to another node once the current transaction commits.
pub fn call_remote(node: &str, module: &str, reducer: &str, args: &[u8]) -> Result<(), HostError> {
    let mut payload =
        Vec::with_capacity(node.len() + module.len() + reducer.len() + args.len() + 8);
    interstice_abi::codec::write_str(&mut payload, node);
    interstice_abi::codec::write_str(&mut payload, module);
    interstice_abi::codec::write_str(&mut payload, reducer);
    interstice_abi::codec::write_varint(&mut payload, args.len() as u64);
    payload.extend_from_slice(args);
    let kind = interstice_abi::protocol::CallKind::RemoteReducer.code();
    // SAFETY: pointer and length of a live buffer.
    let outcome = unsafe { ffi::call_module(kind, payload.as_ptr(), payload.len()) };
    if outcome >= 0 {
        Ok(())
    } else {
        Err(host_error(&take_response((-(outcome + 1)) as usize)))
    }
}

/// The module that called the current one, if any.
pub fn caller() -> Option<String> {
    // SAFETY: plain value call.
    let len = unsafe { ffi::caller() };
    (len >= 0).then(|| String::from_utf8_lossy(&take_response(len as usize)).into_owned())
}

/// The node id of the peer whose remote call this is, if any.
pub fn caller_node() -> Option<String> {
    // SAFETY: plain value call.
    let len = unsafe { ffi::caller_node() };
    (len >= 0).then(|| String::from_utf8_lossy(&take_response(len as usize)).into_owned())
}

/// Decodes a query result.
pub fn decode_result<R: IntersticeType>(bytes: &[u8]) -> Result<R, HostError> {
    R::from_bytes(bytes).map_err(|e| HostError::InvalidPayload(format!("query result: {e}")))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod native_tests {
    use super::*;
    use interstice_abi::native::{NativeHost, enter, with_host};

    /// A host whose `table_op` panics (an engine bug) and which keeps panic messages.
    #[derive(Default)]
    struct Host {
        panics: Vec<String>,
    }

    impl NativeHost for Host {
        fn log(&mut self, _: u32, _: &[u8]) {}
        fn panic(&mut self, message: &[u8]) {
            self.panics
                .push(String::from_utf8_lossy(message).into_owned());
        }
        fn resolve_table(&mut self, _: &[u8]) -> i32 {
            0
        }
        fn table_op(&mut self, _: u32, _: u32, _: u32, _: &[u8]) -> i64 {
            panic!("engine bug");
        }
        fn take_response(&mut self) -> Vec<u8> {
            Vec::new()
        }
        fn schedule(&mut self, _: &[u8]) -> i64 {
            // A host call made from inside another finds no host.
            with_host(|_| 0)
        }
        fn cancel_schedule(&mut self, _: u64) -> i32 {
            0
        }
        fn now(&mut self) -> i64 {
            0
        }
        fn random_seed(&mut self) -> i64 {
            7
        }
        fn call_module(&mut self, _: u32, _: &[u8]) -> i64 {
            0
        }
        fn caller(&mut self) -> i64 {
            -1
        }
        fn caller_node(&mut self) -> i64 {
            -1
        }
        fn file_op(&mut self, _: u32, _: &[u8]) -> i64 {
            0
        }
        fn gpu_submit(&mut self, _: &[u8]) -> i64 {
            0
        }
        fn audio_write(&mut self, _: &[u8]) -> i64 {
            0
        }
        fn input_state(&mut self) -> i64 {
            0
        }
        fn table_as_of(&mut self, _: u64, _: u32, _: u32, _: &[u8]) -> i64 {
            0
        }
    }

    #[test]
    fn a_module_panic_is_its_trap_with_the_hook_message() {
        let mut host = Host::default();
        let outcome = enter(&mut host, || {
            native_reducer(&[], |_| -> Result<Result<(), String>, DecodeError> {
                panic!("module bug")
            })
        });
        assert_eq!(outcome, NativeOutcome::Panicked("module bug".into()));
        assert_eq!(host.panics.len(), 1);
        assert!(host.panics[0].contains("module bug"), "{:?}", host.panics);
        assert!(
            host.panics[0].contains("src/__private.rs"),
            "the location, as in wasm"
        );
    }

    #[test]
    fn an_engine_panic_in_a_host_call_is_not_passed_off_as_the_module_s() {
        let mut host = Host::default();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            enter(&mut host, || {
                native_reducer(&[], |_| {
                    let _ = table_call(TableOp::Count, 0, 0, &[]);
                    Ok(Ok(()))
                })
            })
        }));
        let payload = unwound.expect_err("the engine's panic goes on unwinding");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"engine bug"));
        assert!(host.panics.is_empty(), "not reported as the module's");
        assert!(
            !interstice_abi::native::in_call(),
            "the host is uninstalled"
        );
    }

    #[test]
    fn a_host_call_inside_another_finds_no_host() {
        let mut host = Host::default();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            enter(&mut host, || {
                native_reducer(&[], |_| {
                    let _ = schedule("x", &[], 0, 0);
                    Ok(Ok(()))
                })
            })
        }));
        let payload = unwound.expect_err("a nested host call is an engine bug");
        let text = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(text.contains("need a node"), "{text}");
    }

    #[test]
    fn random_numbers_come_from_the_host_seed_per_call() {
        let mut host = Host::default();
        let draw = |host: &mut Host| {
            let mut drawn = Vec::new();
            enter(host, || {
                native_reducer(&[], |_| {
                    drawn.push(next_random());
                    drawn.push(next_random());
                    Ok(Ok(()))
                })
            });
            drawn
        };
        let first = draw(&mut host);
        assert_ne!(first[0], first[1]);
        assert_eq!(draw(&mut host), first, "every call starts from its seed");
    }
}
