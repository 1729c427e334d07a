#!/usr/bin/env bash
# Builds what production runs, into dist/: the release server binary (dist/gatehouse), the
# file naming its hashed assets (dist/hash.txt, read next to the binary) and its site
# (dist/site: the WebAssembly optimised by a current wasm-opt, every asset also stored
# Brotli- and gzip-compressed). Copy dist/ to the server as it is; see the README's
# "Running in production".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

site="target/site-release"
say "building the release (cargo leptos build --release --precompress)"
rm -rf "$site"
# --precompress stores a Brotli and a gzip copy next to each asset; the server sends the one
# the browser asks for.
LEPTOS_SITE_ROOT="$site" cargo leptos build --release --precompress

say "assembling dist/"
rm -rf dist
mkdir -p dist
cp "$CARGO_TARGET_DIR/release/gatehouse" dist/gatehouse
cp "$CARGO_TARGET_DIR/release/hash.txt" dist/hash.txt
cp -r "$site" dist/site
du -sh dist/gatehouse dist/site | sed 's/^/    /'
say "done: run it with LEPTOS_SITE_ROOT=dist/site dist/gatehouse serve (README: Running in production)"
