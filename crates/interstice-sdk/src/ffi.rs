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
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::missing_safety_doc)]
mod imp {
    const NEEDS_NODE: &str =
        "Interstice host calls are only available inside a module running on a node (wasm32)";

    pub unsafe fn log(_level: u32, _ptr: *const u8, _len: usize) {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn panic(_ptr: *const u8, _len: usize) {}
    pub unsafe fn resolve_table(_ptr: *const u8, _len: usize) -> i32 {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn table_op(_op: u32, _t: u32, _f: u32, _ptr: *const u8, _len: usize) -> i64 {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn take_response(_ptr: *mut u8) {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn schedule(_ptr: *const u8, _len: usize) -> i64 {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn cancel_schedule(_id: u64) -> i32 {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn now() -> i64 {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn random_seed() -> i64 {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn call_module(_kind: u32, _ptr: *const u8, _len: usize) -> i64 {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn caller() -> i64 {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn caller_node() -> i64 {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn file_op(_op: u32, _ptr: *const u8, _len: usize) -> i64 {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn gpu_submit(_ptr: *const u8, _len: usize) -> i64 {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn audio_write(_ptr: *const u8, _len: usize) -> i64 {
        panic!("{NEEDS_NODE}")
    }
    pub unsafe fn input_state() -> i64 {
        panic!("{NEEDS_NODE}")
    }
}

pub(crate) use imp::*;
