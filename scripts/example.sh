#!/usr/bin/env bash
# Sets everything up, then runs a built-in example node: `bash scripts/example.sh hello`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cargo run -p interstice-cli --bin interstice -- example "${1:-hello}" "${@:2}"
