#!/usr/bin/env bash
# Builds plugins/c-stamp (a Sluice-world plugin in C) into ../dist/c-stamp.wasm:
#
# 1. `wit-bindgen c` writes the bindings of ../sdk/wit/0.2/plugin.wit (sluice:plugin@0.2.0, world
#    http-client): http_client.{c,h} and the component type as an object file;
# 2. clang compiles them with plugin.c into a core module for wasm32-wasi (a reactor: no
#    `main`, the exports are the entry points), against wasi-libc;
# 3. `wasm-tools component new` (or jco's `new`, which is the same code, from the JavaScript
#    SDK's npm packages) turns the core module into a component. The plugin imports nothing
#    from WASI, so no preview1 adapter ends up in it.
#
# Needs (Debian 12): apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32;
# cargo install wit-bindgen-cli --version 0.57.1 --locked; and wasm-tools on PATH, or node 20+
# and npm for jco (installed into ../sdk-js/node_modules with `npm ci` when missing).
# Writes the component atomically; `build.sh --force` rebuilds even when nothing changed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plugins="$(cd "$here/.." && pwd)"
out="$plugins/dist/c-stamp.wasm"
force=no
[ "${1:-}" = "--force" ] && force=yes

fail() {
    echo "c-stamp/build.sh: $*" >&2
    exit 1
}

wit_bindgen_version=0.57
command -v wit-bindgen >/dev/null ||
    fail "no 'wit-bindgen' on PATH: cargo install wit-bindgen-cli --version 0.57.1 --locked"
case "$(wit-bindgen --version)" in
"wit-bindgen-cli $wit_bindgen_version".*) ;;
*) fail "$(wit-bindgen --version): the bindings are checked against wit-bindgen-cli $wit_bindgen_version.x" ;;
esac
command -v clang >/dev/null ||
    fail "no 'clang' on PATH: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32"

if command -v wasm-tools >/dev/null; then
    component_new=(wasm-tools component new)
else
    jco="$plugins/sdk-js/node_modules/.bin/jco"
    if [ ! -x "$jco" ]; then
        command -v npm >/dev/null ||
            fail "neither wasm-tools nor npm on PATH: cargo install wasm-tools, or install node 20+ and npm"
        echo "c-stamp/build.sh: installing jco with the JavaScript SDK's packages (npm ci)" >&2
        (cd "$plugins/sdk-js" && npm ci --no-audit --no-fund --loglevel=error) ||
            fail "npm ci failed in $plugins/sdk-js (no network to the npm registry?)"
    fi
    component_new=("$jco" new)
fi

inputs=("$here/plugin.c" "$plugins/sdk/wit/0.2/plugin.wit" "$here/build.sh")
if [ "$force" = no ] && [ -f "$out" ]; then
    newer=no
    for input in "${inputs[@]}"; do
        [ "$input" -nt "$out" ] && newer=yes
    done
    [ "$newer" = no ] && exit 0
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
log="$(wit-bindgen c "$plugins/sdk/wit/0.2/plugin.wit" --world http-client --out-dir "$stage" 2>&1)" ||
    fail "wit-bindgen could not write the bindings: $log"
clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror \
    -Wl,--strip-debug -I"$stage" \
    "$here/plugin.c" "$stage/http_client.c" "$stage/http_client_component_type.o" \
    -o "$stage/core.wasm" ||
    fail "clang could not build for wasm32-wasi (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)"
"${component_new[@]}" "$stage/core.wasm" -o "$stage/c-stamp.wasm" >/dev/null
mkdir -p "$plugins/dist"
mv "$stage/c-stamp.wasm" "$out.tmp"
mv "$out.tmp" "$out"
echo "c-stamp/build.sh: wrote $out ($(wc -c <"$out") bytes)" >&2
