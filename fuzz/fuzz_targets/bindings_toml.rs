//! A bindings file (`src/bindings/*.toml`) as a module author or a node's export may write
//! it: parsed and checked without panicking.
#![no_main]

use interstice_abi::{Binding, NodeBinding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(binding) = toml::from_str::<Binding>(text) {
        let _ = binding.module.validate();
    }
    if let Ok(node) = toml::from_str::<NodeBinding>(text) {
        for module in &node.modules {
            let _ = module.validate();
        }
    }
});
