#!/usr/bin/env bash
# The SDK crates (interstice-abi, -sdk, -sdk-macros) build on the oldest Rust that edition 2024
# allows, as a module author's crate would use them: a crate outside this workspace, with its
# own lock file (cargo picks dependency versions that this Rust supports), built for wasm, and
# checked natively (what the module's own tests compile).
# Run by scripts/test.sh after setup.sh; needs the Rust it names (installed here).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
msrv="1.85.0"
echo "==> the SDK on Rust $msrv (the oldest with edition 2024)"
rustup toolchain install "$msrv" --profile minimal --target wasm32-unknown-unknown >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cat > "$work/Cargo.toml" <<TOML
[package]
name = "msrv-check"
version = "0.1.0"
edition = "2024"
rust-version = "${msrv%.0}"

[lib]
crate-type = ["cdylib"]

[dependencies]
interstice-sdk = { path = "$repo_root/crates/interstice-sdk" }

[workspace]
TOML
cat > "$work/src/lib.rs" <<'RUST'
use interstice_sdk::*;

interstice_module!(visibility: Public);

#[table]
pub struct Note {
    #[primary_key(auto_inc)]
    pub id: u64,
    #[index(btree)]
    pub author: String,
    pub text: String,
}

#[reducer]
fn add(ctx: ReducerContext, author: String, text: String) -> Result<(), HostError> {
    ctx.current.tables.note().insert(Note { id: 0, author, text })?;
    Ok(())
}

#[query]
fn count(ctx: QueryContext) -> u64 {
    ctx.current.tables.note().count()
}
RUST
# Its own target directory: nothing of the pinned toolchain's build output is reused.
(cd "$work" && CARGO_TARGET_DIR="$work/target" cargo "+$msrv" build --quiet --release \
    --target wasm32-unknown-unknown)
test -f "$work/target/wasm32-unknown-unknown/release/msrv_check.wasm"
(cd "$work" && CARGO_TARGET_DIR="$work/target" cargo "+$msrv" check --quiet)
echo "    built a module with Rust $msrv, for wasm and natively"
