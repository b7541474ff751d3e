//! A cache of compiled modules, so a restarted node does not recompile what it ran before.
//!
//! Entries are `<sha256 of the wasm>-<engine compatibility hash>.cwasm`: a wasmtime artifact
//! from `Module::serialize`, prefixed by its CRC32C. An entry is only used when its checksum
//! verifies; anything wrong with it means compiling again, never failing the load.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

/// The cache entry for `wasm` compiled by `engine`.
pub fn entry(dir: &Path, engine: &Engine, wasm: &[u8]) -> PathBuf {
    let digest = Sha256::digest(wasm);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    // FNV-1a: its output does not change between Rust releases.
    let mut fnv = interstice_abi::mix::Fnv1a::default();
    engine.precompile_compatibility_hash().hash(&mut fnv);
    dir.join(format!("{hex}-{:016x}.cwasm", fnv.finish()))
}

/// Compiles `wasm`, or loads it from the cache when a valid entry exists; stores new
/// compilations in the cache.
#[allow(
    unsafe_code,
    reason = "loads a compiled module this node wrote and checksummed"
)]
pub fn compile(engine: &Engine, dir: Option<&Path>, wasm: &[u8]) -> wasmtime::Result<Module> {
    let Some(dir) = dir else {
        return Module::new(engine, wasm);
    };
    let path = entry(dir, engine, wasm);
    if let Ok(bytes) = std::fs::read(&path)
        && bytes.len() > 4
    {
        let (crc, artifact) = bytes.split_at(4);
        if crc == crc32c::crc32c(artifact).to_le_bytes() {
            // SAFETY: the artifact was produced by `Module::serialize` of an engine with the
            // same compatibility hash (it is in the file name), written by this node into its
            // own data directory, and its checksum matches what was written.
            match unsafe { Module::deserialize(engine, artifact) } {
                Ok(module) => return Ok(module),
                Err(e) => {
                    tracing::warn!(target: "interstice", "ignoring cached {}: {e:#}", path.display())
                }
            }
        }
    }
    let module = Module::new(engine, wasm)?;
    match module.serialize() {
        Ok(artifact) => {
            let mut bytes = crc32c::crc32c(&artifact).to_le_bytes().to_vec();
            bytes.extend_from_slice(&artifact);
            let stored = std::fs::create_dir_all(dir)
                .and_then(|()| crate::disk::fsutil::write_atomic(&path, &bytes));
            if let Err(e) = stored {
                tracing::warn!(target: "interstice", "cannot cache {}: {e}", path.display());
            }
        }
        Err(e) => tracing::warn!(target: "interstice", "cannot serialize a compiled module: {e:#}"),
    }
    Ok(module)
}
