//! A `ValueType` as any peer, guest or file may spell it in postcard: decoded without
//! overflowing the stack, and what decodes re-encodes to the same bytes.
#![no_main]

use interstice_abi::ValueType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((ty, rest)) = postcard::take_from_bytes::<ValueType>(data) {
        let encoded = postcard::to_allocvec(&ty).expect("a decoded type encodes");
        assert_eq!(encoded, data[..data.len() - rest.len()]);
        let _ = ty.to_string();
    }
});
