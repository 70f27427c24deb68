#!/usr/bin/env bash
# Builds every plugin of this workspace for wasm32-wasip2 and copies each component to
# dist/<plugin-name>.wasm (the file stem is the name the gateway registers it under).
# Honours CARGO_TARGET_DIR; defaults to ../target (see .cargo/config.toml).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
# Not `rustup ... | grep -q`: with pipefail, grep exiting early can SIGPIPE rustup and fail.
if command -v rustup >/dev/null && ! grep -qx wasm32-wasip2 <<<"$(rustup target list --installed)"; then
    echo "build.sh: the wasm32-wasip2 target is missing: run 'rustup target add wasm32-wasip2'" >&2
    exit 1
fi
cargo build --release --target wasm32-wasip2 "$@"
target_dir="${CARGO_TARGET_DIR:-$here/../target}"
out="$target_dir/wasm32-wasip2/release"
mkdir -p dist
plugins=(client-example hmac-signer static-answer fan-out header-rewrite fault message-edits wasi-passthrough wasi-lean-passthrough wasi-fault grpc-caller)
for name in "${plugins[@]}"; do
    cp -f "$out/${name//-/_}.wasm" "dist/$name.wasm"
done
echo "build.sh: ${#plugins[@]} plugins in $here/dist"
