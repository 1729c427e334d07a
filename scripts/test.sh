#!/usr/bin/env bash
# Installs what is missing and runs every test: the Entra emulator's own, Rust on SQLite, Rust
# on PostgreSQL, then Playwright in headless Chromium against a freshly built app.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

say "formatting and lints"
cargo fmt --all -- --check
# At the root, cargo means the gatehouse package. The emulator (emulator/, a workspace member)
# is named on its own and built with only the features it declares, so one it forgot shows here.
cargo clippy --features ssr --all-targets -- -D warnings
cargo clippy -p gatehouse-emulator --all-targets -- -D warnings
cargo clippy --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings

say "dependencies: licences, bans and sources (deny.toml)"
cargo deny --log-level error check licenses bans sources
# The RustSec advisory database is fetched from GitHub, which some machines cannot reach.
if cargo deny --log-level error fetch db >/dev/null 2>&1; then
  cargo deny --log-level error check advisories
else
  say "advisories NOT checked: the RustSec database (github.com) cannot be fetched from here"
fi

say "the Entra emulator's own tests"
timeout 900 cargo test -p gatehouse-emulator

say "Rust tests on SQLite"
TEST_DATABASE=sqlite timeout 900 cargo test --features ssr

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
say "Rust tests on PostgreSQL"
TEST_DATABASE=postgres timeout 900 cargo test --features ssr --test api

say "building the site for the browser tests"
cargo leptos build

say "Playwright in headless Chromium"
(cd end2end && GATEHOUSE_BIN="$CARGO_TARGET_DIR/debug/gatehouse" timeout 900 npx playwright test)

say "the release build, as operators run it (scripts/build-release.sh)"
./scripts/build-release.sh

say "Playwright in headless Chromium against the release build"
(cd end2end && GATEHOUSE_BIN="$PWD/../dist/gatehouse" GATEHOUSE_SITE_ROOT="$PWD/../dist/site" \
  timeout 900 npx playwright test)
