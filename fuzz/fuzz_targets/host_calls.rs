//! The host-call surface, from inside a real guest: the `hostile` fixture's `replay` reducer
//! turns the input into a sequence of raw host calls (any import, any numbers, any payload).
//! Whatever it asks, the node answers or ends the call; it never panics, and its tables stay
//! usable. The guest's wasm is read from `INTERSTICE_FUZZ_GUEST` (scripts/fuzz.sh builds it).
#![no_main]

use interstice_core::{Database, EngineConfig, Modules};
use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};

struct Node {
    modules: Modules,
    db: Database,
    calls: u64,
}

fn fresh(wasm: &[u8]) -> Node {
    let mut modules = Modules::new(EngineConfig {
        fuel_per_call: 2_000_000,
        ..EngineConfig::default()
    })
    .expect("an engine");
    // Compiled once: a fresh node deserializes the guest instead of compiling it again (under
    // the sanitizer, a compile takes longer than libFuzzer's time per input).
    modules.set_cache_dir(Some(std::env::temp_dir().join("interstice-fuzz-cache")));
    let mut db = Database::default();
    modules.load(&mut db, wasm).expect("the fuzz guest loads");
    Node {
        modules,
        db,
        calls: 0,
    }
}

fn node() -> &'static Mutex<(Vec<u8>, Node)> {
    static NODE: OnceLock<Mutex<(Vec<u8>, Node)>> = OnceLock::new();
    NODE.get_or_init(|| {
        let path = std::env::var("INTERSTICE_FUZZ_GUEST")
            .expect("INTERSTICE_FUZZ_GUEST names the hostile fixture's wasm (see scripts/fuzz.sh)");
        let wasm = std::fs::read(&path).expect("reading the fuzz guest");
        let node = fresh(&wasm);
        Mutex::new((wasm, node))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut guard = node().lock().unwrap_or_else(|p| p.into_inner());
    let (wasm, node) = &mut *guard;
    // Start over now and then, so what earlier inputs stored does not pile up.
    node.calls += 1;
    if node.calls % 10_000 == 0 {
        *node = fresh(wasm);
    }
    let handle = node.modules.reducer("hostile", "replay").expect("replay");
    let mut args = Vec::with_capacity(data.len() + 5);
    interstice_abi::codec::write_varint(&mut args, data.len() as u64);
    args.extend_from_slice(data);
    let _ = node.modules.call_reducer(&mut node.db, handle, &args);
    // The node still serves an ordinary call afterwards.
    let rows = node.modules.query("hostile", "rows").expect("rows");
    node.modules
        .call_query(&mut node.db, rows, &[])
        .expect("a plain query still runs");
});
