//! Builds the example modules to wasm so the `interstice` binary can carry them: the CLI runs
//! outside this repository, and a fresh clone needs no manual wasm step.

fn main() {
    interstice_build::embed_workspace_modules(&[
        "hello",
        "caller",
        "graphics",
        "audio",
        "bench_bank",
        "bench_insert",
    ]);
}
