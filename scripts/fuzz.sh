#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (libFuzzer, nightly Rust, AddressSanitizer), each for a
# bounded time, starting from the corpus checked in under fuzz/corpus/<target>.
#
#   bash scripts/fuzz.sh                    # every target, 20 s each (what CI runs)
#   bash scripts/fuzz.sh --seconds 600 message values   # chosen targets, 10 minutes each
#   bash scripts/fuzz.sh --keep ...         # then merge what covers new code into fuzz/corpus
#
# A crash stops the script with libFuzzer's report; the input that crashed is left in
# fuzz/artifacts/<target>/ (`cargo +<nightly> fuzz run <target> <file>` replays it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

# cargo-fuzz needs nightly (-Zsanitizer); pinned, like the stable toolchain.
nightly="nightly-2026-10-30"
seconds=20
keep=0
targets=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        *) targets+=("$1"); shift ;;
    esac
done

echo "==> Rust $nightly and cargo-fuzz"
rustup toolchain install "$nightly" --profile minimal
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi

# The host-call target runs a real guest: the `hostile` fixture, built like any module.
echo "==> building the fuzz guest (modules/fixtures/hostile)"
cargo build --quiet --target wasm32-unknown-unknown --profile wasm-module -p hostile
export INTERSTICE_FUZZ_GUEST="$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-module/hostile.wasm"

cd "$repo_root/fuzz"
# Sanitizer builds kept apart from the ordinary ones.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/interstice-fuzz-target}"
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo "+$nightly" fuzz list)
fi
for target in "${targets[@]}"; do
    seeds="corpus/$target"
    mkdir -p "$seeds"
    found="$(mktemp -d)"
    echo "==> fuzzing $target for ${seconds}s"
    cargo "+$nightly" fuzz run "$target" "$found" "$seeds" -- \
        -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 -timeout=30
    if [ "$keep" -eq 1 ]; then
        # Only inputs that reach code the checked-in corpus does not.
        cargo "+$nightly" fuzz run "$target" "$seeds" "$found" -- -merge=1
    fi
    rm -rf "$found"
done
echo "fuzzing: ${#targets[@]} passed, 0 failed"
