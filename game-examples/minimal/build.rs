//! Builds the game's module (`modules/orbits`) to wasm so the game can carry it.

use interstice_build::{ModuleBuild, wasm_target_dir_near, workspace_root};
use std::path::PathBuf;

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let Some(root) = workspace_root(&manifest_dir) else {
        panic!(
            "the minimal game must be built from the Interstice workspace (it embeds modules/orbits)"
        );
    };
    for dir in [
        "modules/orbits",
        "crates/interstice-abi",
        "crates/interstice-sdk",
        "crates/interstice-sdk-macros",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let built = ModuleBuild::new(root.join("Cargo.toml"), wasm_target_dir_near(&out_dir))
        .package("orbits")
        .run();
    let paths = match built {
        Ok(paths) => paths,
        Err(e) => panic!("cannot build modules/orbits: {e}"),
    };
    if let Err(e) = std::fs::copy(&paths[0], out_dir.join("orbits.wasm")) {
        panic!("cannot copy orbits.wasm: {e}");
    }
}
