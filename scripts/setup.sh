#!/usr/bin/env bash
# Installs whatever this machine is missing to build, demo and test Gatehouse, and skips
# what is already there. Safe to run again. Sourced by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gatehouse/target}"
export PATH="$HOME/.cargo/bin:$PATH"
# cargo-leptos passes the output name to the compiler; plain cargo (tests, clippy) must pass
# the same, or each switch between the two rebuilds Leptos, and a binary built by plain cargo
# would look for `gatehouse_bg.wasm`.
export LEPTOS_OUTPUT_NAME=gatehouse

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -q "0.3.10"; then
  say "installing cargo-leptos 0.3.10 (about 15 minutes, once per machine)"
  cargo install cargo-leptos --version 0.3.10 --locked
fi

# The wasm-bindgen CLI must match the crate version in Cargo.lock exactly.
wbg_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q "$wbg_version"; then
  say "installing wasm-bindgen-cli $wbg_version"
  cargo install wasm-bindgen-cli --version "$wbg_version"
fi

missing=()
for pkg in chromium fonts-liberation binaryen sqlite3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# The mail tests run a relay that requires STARTTLS and AUTH (tests/api/support/smtp_relay.py).
if ! python3 -c "import aiosmtpd" 2>/dev/null; then
  say "installing aiosmtpd (the test mail relay)"
  python3 -m pip install --quiet --disable-pip-version-check aiosmtpd \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages aiosmtpd
fi

if [ ! -d end2end/node_modules ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  say "installing the end-to-end test packages"
  (cd end2end && npm ci --no-audit --no-fund --loglevel=error)
fi
