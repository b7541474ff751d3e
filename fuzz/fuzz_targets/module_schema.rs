//! A module schema as a guest's describe exports or a peer's `Schema` message carry it:
//! decoded, validated and turned public without panicking.
#![no_main]

use interstice_abi::ModuleSchema;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(schema) = postcard::from_bytes::<ModuleSchema>(data) {
        let _ = schema.validate();
        let _ = schema.to_public();
    }
});
