//! A commit log segment read back from disk: framed, checksummed and parsed record by
//! record, whatever the bytes (the fuzzer's records mostly fail their checksum, so the
//! payload parser is also fed the raw input).
#![no_main]

use interstice_core::storage::log::{frame_records, parse_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (records, _end) = frame_records(data);
    for (_, payload) in records {
        let _ = parse_record(payload);
    }
    let _ = parse_record(data);
});
