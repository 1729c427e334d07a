#!/usr/bin/env bash
# Installs what is missing, builds Gatehouse and starts the demo at http://demo.localhost:3000
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

say "building (cargo leptos build)"
cargo leptos build

say "starting the demo: open http://demo.localhost:3000 (phone app: http://localhost:3000/app)"
export LEPTOS_SITE_ROOT=target/site
exec "$CARGO_TARGET_DIR/debug/gatehouse" serve --demo "$@"
