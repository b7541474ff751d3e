//! Builds the game's module (`modules/orbits`) to wasm so the game can carry it.

fn main() {
    interstice_build::embed_workspace_modules(&["orbits"]);
}
