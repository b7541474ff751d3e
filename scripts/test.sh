#!/usr/bin/env bash
# Sets everything up, then runs every check CI runs: formatting, clippy, all tests (unit,
# property, compile-fail, integration tests with real wasm modules, CLI end-to-end), the API
# docs (broken or private links are errors), and the SDK built on the oldest Rust it supports.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace
echo "==> cargo test"
cargo test --workspace
bash "$(dirname "${BASH_SOURCE[0]}")/check-sdk-msrv.sh"
