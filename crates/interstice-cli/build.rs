//! Builds the example modules to wasm so the `interstice` binary can carry them: the CLI runs
//! outside this repository, and a fresh clone needs no manual wasm step.

use interstice_build::{ModuleBuild, wasm_target_dir_near, workspace_root};
use std::path::{Path, PathBuf};

/// Example modules embedded in the binary.
const EXAMPLES: [&str; 4] = ["hello", "caller", "graphics", "audio"];

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let Some(root) = workspace_root(&manifest_dir) else {
        panic!(
            "the interstice CLI must be built from the Interstice workspace (it embeds modules/)"
        );
    };
    for dir in [
        "crates/interstice-abi",
        "crates/interstice-sdk",
        "crates/interstice-sdk-macros",
    ] {
        rerun_if_changed(&root.join(dir));
    }
    rerun_if_changed(&root.join("Cargo.toml"));
    rerun_if_changed(&root.join("Cargo.lock"));
    let mut build = ModuleBuild::new(root.join("Cargo.toml"), wasm_target_dir_near(&out_dir));
    for example in EXAMPLES {
        rerun_if_changed(&root.join("modules").join(example));
        build = build.package(example);
    }
    let paths = match build.run() {
        Ok(paths) => paths,
        Err(e) => panic!("cannot build the example modules: {e}"),
    };
    for (example, path) in EXAMPLES.iter().zip(paths) {
        let dest = out_dir.join(format!("{example}.wasm"));
        if let Err(e) = std::fs::copy(&path, &dest) {
            panic!("cannot copy {} to {}: {e}", path.display(), dest.display());
        }
    }
}

fn rerun_if_changed(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}
