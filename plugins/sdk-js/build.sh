#!/usr/bin/env bash
# Builds the JavaScript example plugins (plugins/js-hmac-signer, plugins/js-header-rewrite) into
# ../dist/<name>.wasm with componentize-js, on the SDK of this folder (sluice.js).
#
# - Installs the pinned npm packages of package-lock.json (componentize-js and what it needs)
#   into ./node_modules with `npm ci` when they are missing or the lock file changed
#   (node_modules is git-ignored).
# - Targets the WIT the SDK targets: ../sdk/wit/0.2/plugin.wit (sluice:plugin@0.2.0, world
#   http-client), without wasi:http (`--disable http fetch-event`): a plugin calls hosts through
#   the gateway's `send`.
# - Writes each component atomically (a temporary file renamed into place), and only when an
#   input changed (dist/<name>.inputs records them); `build.sh --force` rebuilds anyway.
#
# Needs: node (20+) and npm, network access to the npm registry on the first run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plugins="$(cd "$here/.." && pwd)"
dist="$plugins/dist"
examples=(js-hmac-signer js-header-rewrite)
force=no
[ "${1:-}" = "--force" ] && force=yes

fail() {
    echo "sdk-js/build.sh: $*" >&2
    exit 1
}

command -v node >/dev/null || fail "no 'node' on PATH: install Node.js 20 or later (Debian: apt-get install nodejs npm)"
command -v npm >/dev/null || fail "no 'npm' on PATH: install npm (Debian: apt-get install npm)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || fail "node $(node --version) is too old: componentize-js needs Node.js 20 or later"

# npm ci when node_modules does not match the lock file (npm records what it installed in
# node_modules/.package-lock.json; compare it with a copy of the lock taken at install time).
installed_lock="$here/node_modules/.sluice-installed-lock"
if ! cmp -s "$here/package-lock.json" "$installed_lock" 2>/dev/null ||
    [ ! -x "$here/node_modules/.bin/componentize-js" ]; then
    echo "sdk-js/build.sh: installing the pinned npm packages (npm ci)" >&2
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) ||
        fail "npm ci failed in $here (no network to the npm registry?)"
    cp "$here/package-lock.json" "$installed_lock"
fi
componentize_version="$(node -p 'require(process.argv[1]).version' \
    "$here/node_modules/@bytecodealliance/componentize-js/package.json")"

mkdir -p "$dist"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

for name in "${examples[@]}"; do
    src="$plugins/$name"
    [ -f "$src/plugin.js" ] || fail "no $src/plugin.js"
    out="$dist/$name.wasm"
    stamp="$dist/$name.inputs" # must not contain ".wasm": the gateway loads such files
    # componentize-js's output is not byte-for-byte reproducible, and the gateway caches
    # compiled components by content hash: rebuild only when an input changed.
    inputs="$(
        {
            echo "componentize-js $componentize_version"
            cat "${BASH_SOURCE[0]}" "$here/package-lock.json" "$here/sluice.js" "$plugins/sdk/wit/0.2/plugin.wit"
            find "$src" -maxdepth 1 -name '*.js' -print0 | LC_ALL=C sort -z | xargs -0 cat
        } | sha256sum | cut -d" " -f1
    )"
    if [ -f "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ] && [ "$force" = no ]; then
        echo "sdk-js/build.sh: $out is up to date (--force rebuilds it)"
        continue
    fi
    started=$SECONDS
    # The sources are built from a copy with the SDK beside them (plugins import ./sluice.js:
    # componentize-js reads modules from the entry file's folder only).
    rm -rf "$stage/src"
    mkdir -p "$stage/src" "$stage/wit"
    cp "$src"/*.js "$stage/src/"
    cp "$here/sluice.js" "$stage/src/"
    cp "$plugins/sdk/wit/0.2/plugin.wit" "$stage/wit/"
    "$here/node_modules/.bin/componentize-js" "$stage/src/plugin.js" \
        --wit "$stage/wit" --world-name http-client --disable http fetch-event \
        -o "$stage/$name.wasm" >"$stage/log" 2>&1 ||
        fail "componentize-js failed on $src/plugin.js:$(printf '\n'; cat "$stage/log")"
    rm -f "$stamp"
    mv -f "$stage/$name.wasm" "$out"
    echo "$inputs" >"$stamp"
    echo "sdk-js/build.sh: $out ($(wc -c <"$out") bytes, componentize-js $componentize_version, $((SECONDS - started))s)"
done
