//! Builds the game's modules to wasm so the game can carry them.

fn main() {
    interstice_build::embed_workspace_modules(&["arena", "arena_client"]);
}
