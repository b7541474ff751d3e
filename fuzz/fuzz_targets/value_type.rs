//! A `ValueType` as any peer, guest or file may spell it in postcard: decoded without
//! overflowing the stack, and what decodes encodes and decodes back to itself. (postcard
//! accepts varints that are not in their shortest form, so the bytes need not be the same.)
#![no_main]

use interstice_abi::ValueType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ty) = postcard::from_bytes::<ValueType>(data) {
        let encoded = postcard::to_allocvec(&ty).expect("a decoded type encodes");
        let again: ValueType = postcard::from_bytes(&encoded).expect("and decodes again");
        assert_eq!(again, ty);
        let _ = ty.to_string();
    }
});
