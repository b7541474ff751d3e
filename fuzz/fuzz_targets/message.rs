//! A peer's protocol message: decoded within its limits, and what decodes re-encodes and
//! decodes to the same message.
#![no_main]

use interstice_net::message::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        let encoded = message.encode().expect("a decoded message encodes");
        assert_eq!(Message::decode(&encoded).expect("and decodes again"), message);
    }
});
