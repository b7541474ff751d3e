//! A snapshot file read back from disk: header, checksum and payload checked and decoded
//! (the fuzzer's checksums mostly fail, so the payload decoder is also fed the raw input).
#![no_main]

use interstice_core::storage::snapshot::{decode, decode_payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode(data);
    if let Some((&version, payload)) = data.split_first() {
        let _ = decode_payload(u32::from(version % 4), payload);
    }
});
