#!/usr/bin/env bash
# Builds the browser package: crates/gru-web compiled to wasm32-unknown-unknown (release)
# and turned into an ES module by wasm-bindgen, in crates/gru-web/www/pkg.
# Needs: rustup target add wasm32-unknown-unknown
#        cargo install wasm-bindgen-cli --version <the wasm-bindgen version in Cargo.lock>
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! command -v wasm-bindgen >/dev/null; then
    echo "build-web: wasm-bindgen not found; install it with: cargo install wasm-bindgen-cli --version $want" >&2
    exit 1
fi
have=$(wasm-bindgen --version | awk '{ print $2 }')
if [ "$have" != "$want" ]; then
    echo "build-web: wasm-bindgen $have does not match the wasm-bindgen crate ($want): cargo install wasm-bindgen-cli --version $want --force" >&2
    exit 1
fi
cargo build -p gru-web --target wasm32-unknown-unknown --profile web
wasm=target/wasm32-unknown-unknown/web/gru_web.wasm
rm -rf crates/gru-web/www/pkg
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section --out-dir crates/gru-web/www/pkg "$wasm"
out=crates/gru-web/www/pkg/gru_web_bg.wasm
raw=$(stat -c %s "$out")
gz=$(gzip -9 -c "$out" | wc -c)
echo "build-web: $out: $raw bytes raw, $gz bytes gzipped"
