//! A Gpu holder's draw list (`gpu_submit` payload): commands decoded and checked one by one.
#![no_main]

use interstice_abi::draw::DrawCommand;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data;
    while !bytes.is_empty() {
        let Ok((command, rest)) = postcard::take_from_bytes::<DrawCommand>(bytes) else {
            return;
        };
        let _ = command.check();
        bytes = rest;
    }
});
