//! The raw host imports, and stand-ins for them outside wasm.

#[cfg(target_arch = "wasm32")]
mod imp {
    #[link(wasm_import_module = "interstice")]
    unsafe extern "C" {
        pub fn log(level: u32, ptr: *const u8, len: usize);
        pub fn panic(ptr: *const u8, len: usize);
        pub fn resolve_table(ptr: *const u8, len: usize) -> i32;
        pub fn table_op(op: u32, table: u32, field: u32, ptr: *const u8, len: usize) -> i64;
        pub fn take_response(ptr: *mut u8);
        pub fn schedule(ptr: *const u8, len: usize) -> i64;
        pub fn cancel_schedule(id: u64) -> i32;
        pub fn now() -> i64;
        pub fn random_seed() -> i64;
        pub fn call_module(kind: u32, ptr: *const u8, len: usize) -> i64;
        pub fn caller() -> i64;
        pub fn caller_node() -> i64;
        pub fn file_op(op: u32, ptr: *const u8, len: usize) -> i64;
        pub fn gpu_submit(ptr: *const u8, len: usize) -> i64;
        pub fn audio_write(ptr: *const u8, len: usize) -> i64;
        pub fn input_state() -> i64;
        pub fn table_as_of(seq: i64, op: u32, table: u32, ptr: *const u8, len: usize) -> i64;
    }
}

/// Outside wasm the imports go to the host of the current native call (a test's engine, see
/// `interstice_abi::native`); with none, they panic saying where they work. `take_response`
/// has no stand-in: natively the host hands the response over as a vector
/// (`__private::take_response`).
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::missing_safety_doc)]
mod imp {
    use interstice_abi::native::with_host;

    /// The `len` bytes at `ptr`.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes (the SDK passes live slices).
    unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
        if len == 0 {
            &[]
        } else {
            // SAFETY: see above.
            unsafe { std::slice::from_raw_parts(ptr, len) }
        }
    }

    pub unsafe fn log(level: u32, ptr: *const u8, len: usize) {
        // SAFETY: forwarded from the caller.
        let message = unsafe { bytes(ptr, len) };
        with_host(|h| h.log(level, message))
    }
    pub unsafe fn panic(ptr: *const u8, len: usize) {
        // SAFETY: forwarded from the caller.
        let message = unsafe { bytes(ptr, len) };
        if interstice_abi::native::in_call() {
            with_host(|h| h.panic(message))
        }
    }
    pub unsafe fn resolve_table(ptr: *const u8, len: usize) -> i32 {
        // SAFETY: forwarded from the caller.
        let name = unsafe { bytes(ptr, len) };
        with_host(|h| h.resolve_table(name))
    }
    pub unsafe fn table_op(op: u32, table: u32, field: u32, ptr: *const u8, len: usize) -> i64 {
        // SAFETY: forwarded from the caller.
        let payload = unsafe { bytes(ptr, len) };
        with_host(|h| h.table_op(op, table, field, payload))
    }
    pub unsafe fn schedule(ptr: *const u8, len: usize) -> i64 {
        // SAFETY: forwarded from the caller.
        let payload = unsafe { bytes(ptr, len) };
        with_host(|h| h.schedule(payload))
    }
    pub unsafe fn cancel_schedule(id: u64) -> i32 {
        with_host(|h| h.cancel_schedule(id))
    }
    pub unsafe fn now() -> i64 {
        with_host(|h| h.now())
    }
    pub unsafe fn random_seed() -> i64 {
        with_host(|h| h.random_seed())
    }
    pub unsafe fn call_module(kind: u32, ptr: *const u8, len: usize) -> i64 {
        // SAFETY: forwarded from the caller.
        let payload = unsafe { bytes(ptr, len) };
        with_host(|h| h.call_module(kind, payload))
    }
    pub unsafe fn caller() -> i64 {
        with_host(|h| h.caller())
    }
    pub unsafe fn caller_node() -> i64 {
        with_host(|h| h.caller_node())
    }
    pub unsafe fn file_op(op: u32, ptr: *const u8, len: usize) -> i64 {
        // SAFETY: forwarded from the caller.
        let payload = unsafe { bytes(ptr, len) };
        with_host(|h| h.file_op(op, payload))
    }
    pub unsafe fn gpu_submit(ptr: *const u8, len: usize) -> i64 {
        // SAFETY: forwarded from the caller.
        let payload = unsafe { bytes(ptr, len) };
        with_host(|h| h.gpu_submit(payload))
    }
    pub unsafe fn audio_write(ptr: *const u8, len: usize) -> i64 {
        // SAFETY: forwarded from the caller.
        let payload = unsafe { bytes(ptr, len) };
        with_host(|h| h.audio_write(payload))
    }
    pub unsafe fn input_state() -> i64 {
        with_host(|h| h.input_state())
    }
    pub unsafe fn table_as_of(seq: i64, op: u32, table: u32, ptr: *const u8, len: usize) -> i64 {
        // SAFETY: forwarded from the caller.
        let payload = unsafe { bytes(ptr, len) };
        with_host(|h| h.table_as_of(seq as u64, op, table, payload))
    }
}

pub(crate) use imp::*;
