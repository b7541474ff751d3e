#!/usr/bin/env bash
# Installs what building Interstice needs on a fresh Debian/Ubuntu machine that has rustup:
# the pinned Rust toolchain with rustfmt, clippy and the wasm32 target, a C toolchain and the
# system libraries and tools the audio, window and screenshot tests use.
# Sourced by the other scripts; safe to run again (it only installs what is missing).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
channel="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$repo_root/rust-toolchain.toml")"

if ! command -v rustup >/dev/null 2>&1; then
    echo "error: rustup is required (https://rustup.rs); install it and run this again" >&2
    exit 1
fi

# wasmtime and some dependencies compile C; cpal needs ALSA's headers, gilrs udev's. The
# windowed tests run under Xvfb with Mesa's lavapipe (Vulkan on the CPU) and type with xdotool.
packages=(build-essential pkg-config libasound2-dev libudev-dev libxkbcommon-x11-0
    libvulkan1 mesa-vulkan-drivers xvfb xdotool)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
        missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: install these packages (or your system's equivalents): ${missing[*]}" >&2
        exit 1
    fi
    echo "==> installing ${missing[*]}"
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${missing[@]}"
fi

echo "==> Rust $channel with rustfmt, clippy and wasm32-unknown-unknown"
rustup toolchain install "$channel" --profile minimal \
    --component rustfmt --component clippy --target wasm32-unknown-unknown

# One target directory shared by every clone: Bevy and wasmtime are slow to build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/interstice-target}"
echo "==> build output in $CARGO_TARGET_DIR"

# Every dependency or feature change leaves old test executables (hundreds of MB each) and
# incremental state behind: drop what no build touched for a day (cargo rebuilds what it
# needs), so a long-lived shared target directory does not fill the disk.
# Of the executables more than two hours old, only the newest of each name is kept: every
# clone of the repository, and every change, links them again under a new hash, and a day of
# CI runs would fill the disk. (Two crates may have tests of the same name: recent builds are
# spared so that both stay linked.)
for profile in debug release; do
    deps="$CARGO_TARGET_DIR/$profile/deps"
    if [ -d "$deps" ]; then
        find "$deps" -maxdepth 1 -type f -perm -u+x ! -name '*.so' -mtime +0 -delete
        find "$deps" -maxdepth 1 -type f -perm -u+x ! -name '*.so' -printf '%T@ %f\n' \
            | sort -rn \
            | awk -v before="$(($(date +%s) - 7200))" \
                '{ name = $2; sub(/-[0-9a-f]+$/, "", name); if (seen[name]++ && $1 < before) print $2 }' \
            | while read -r stale; do rm -f "$deps/$stale"; done
    fi
    incremental="$CARGO_TARGET_DIR/$profile/incremental"
    if [ -d "$incremental" ]; then
        # Each clone of the repository starts its own; cargo starts again without one.
        find "$incremental" -mindepth 1 -maxdepth 1 -type d -mmin +120 -exec rm -rf {} +
    fi
done
cd "$repo_root"
