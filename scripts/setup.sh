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

# The test command checks the dependencies' licences and sources (deny.toml).
if ! cargo deny --version 2>/dev/null | grep -q "0.20.2"; then
  say "installing cargo-deny 0.20.2 (about 5 minutes, once per machine)"
  cargo install cargo-deny --version 0.20.2 --locked
fi

# The wasm-bindgen CLI must match the crate version in Cargo.lock exactly.
wbg_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q "$wbg_version"; then
  say "installing wasm-bindgen-cli $wbg_version"
  cargo install wasm-bindgen-cli --version "$wbg_version"
fi

missing=()
for pkg in chromium fonts-liberation sqlite3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# The mail tests run a relay that requires STARTTLS and AUTH (tests/api/support/smtp_relay.py).
for module in aiosmtpd; do
  if ! python3 -c "import $module" 2>/dev/null; then
    say "installing the Python package $module"
    python3 -m pip install --quiet --disable-pip-version-check "$module" \
      || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$module"
  fi
done

# The release build runs wasm-opt. Debian's Binaryen (108) predates the WebAssembly features
# today's Rust emits (reference types) and its output fails in the browser; npm's Binaryen is
# current. Its bin folder goes first on PATH, before any wasm-opt the system has.
if [ ! -d tools/node_modules ] || [ tools/package-lock.json -nt tools/node_modules/.package-lock.json ]; then
  say "installing the build tools (Binaryen's wasm-opt)"
  (cd tools && npm ci --no-audit --no-fund --loglevel=error)
fi
export PATH="$PWD/tools/node_modules/.bin:$PATH"

if [ ! -d end2end/node_modules ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  say "installing the end-to-end test packages"
  (cd end2end && npm ci --no-audit --no-fund --loglevel=error)
fi
