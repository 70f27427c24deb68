#!/usr/bin/env bash
# Builds the Python plugin py-hello into ../dist/py-hello.wasm with componentize-py.
#
# - Installs componentize-py (pinned below) with pip when the interpreter does not have that
#   version: `$PYTHON -m pip install --quiet componentize-py==VERSION` (PYTHON defaults to
#   python3; point it at a virtualenv's python to keep the install there).
# - Takes the wasi:http and wasi:config WIT from the wasmtime-wasi-http and wasmtime-wasi-config
#   crates of the gateway's Cargo.lock (located with `cargo metadata`), so the component targets
#   exactly the interfaces the host implements; nothing of it is kept in this folder.
# - Writes the component atomically (a temporary file renamed into place), and only when an
#   input changed (dist/py-hello.inputs records them); `build.sh --force` rebuilds anyway.
#
# Needs: python3 (3.9+) with pip, cargo, network access to PyPI on the first run.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dist="$(cd "$here/.." && pwd)/dist"
py="${PYTHON:-python3}"

fail() {
    echo "py-hello/build.sh: $*" >&2
    exit 1
}

command -v "$py" >/dev/null || fail "no '$py' on PATH: install Python 3 (with pip), or set PYTHON"
command -v cargo >/dev/null || fail "no cargo on PATH (needed to locate the host's WIT)"

installed_version() {
    "$py" - <<'EOF' 2>/dev/null || true
from importlib.metadata import version
print(version("componentize-py"))
EOF
}

if [ "$(installed_version)" != "$COMPONENTIZE_PY_VERSION" ]; then
    echo "py-hello/build.sh: installing componentize-py==$COMPONENTIZE_PY_VERSION with $py -m pip" >&2
    "$py" -m pip install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION" ||
        fail "cannot install componentize-py==$COMPONENTIZE_PY_VERSION from PyPI with '$py -m pip' (no network to PyPI? externally managed Python? set PYTHON to a virtualenv's python)"
    [ "$(installed_version)" = "$COMPONENTIZE_PY_VERSION" ] ||
        fail "componentize-py==$COMPONENTIZE_PY_VERSION still not importable by $py after pip install"
fi

componentize_py() {
    "$py" -c 'import sys
from componentize_py import script
sys.argv[0] = "componentize-py"
sys.exit(script())' "$@"
}

# The crates' source folders, from the workspace's lock file.
host_triple="$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')"
metadata="$(cd "$repo" && cargo metadata --format-version 1 --locked \
    ${host_triple:+--filter-platform "$host_triple"})" ||
    fail "cargo metadata failed in $repo"
read -r http_dir config_dir < <(
    "$py" -c '
import json, os, sys
dirs = {p["name"]: os.path.dirname(p["manifest_path"]) for p in json.load(sys.stdin)["packages"]}
print(dirs["wasmtime-wasi-http"], dirs["wasmtime-wasi-config"])
' <<<"$metadata"
) || fail "wasmtime-wasi-http or wasmtime-wasi-config is not in the workspace's dependencies"
[ -f "$http_dir/wit/deps/http.wit" ] || fail "no wit/deps/http.wit in $http_dir"
[ -d "$config_dir/wit/deps/config" ] || fail "no wit/deps/config in $config_dir"
http_version="$(sed -n 's/^package wasi:http@\([0-9][0-9.a-z-]*\);.*/\1/p' "$http_dir/wit/deps/http.wit")"
[ -n "$http_version" ] || fail "cannot read the wasi:http version of $http_dir/wit/deps/http.wit"

# The WIT folder componentize-py reads: our world plus the host's packages as deps.
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/wit/deps/config"
sed -E "s/wasi:http\/proxy@[0-9][0-9.a-z-]*;/wasi:http\/proxy@$http_version;/" \
    "$here/wit/world.wit" >"$stage/wit/world.wit"
cp "$http_dir"/wit/deps/*.wit "$stage/wit/deps/"
cp "$config_dir"/wit/deps/config/*.wit "$stage/wit/deps/config/"

# componentize-py's output differs from one run to the next (the interpreter's snapshot), and
# the gateway caches compiled components by content hash: rebuild only when an input changed,
# so an unchanged plugin is not recompiled (nor cached again) by every test run.
out="$dist/py-hello.wasm"
stamp="$dist/py-hello.inputs" # must not contain ".wasm": the gateway loads such files
inputs="$(
    {
        echo "componentize-py $COMPONENTIZE_PY_VERSION"
        cat "${BASH_SOURCE[0]}"
        find "$here" -maxdepth 1 -name '*.py' -print0 | LC_ALL=C sort -z | xargs -0 cat
        find "$stage/wit" -name '*.wit' -print0 | LC_ALL=C sort -z | xargs -0 cat
    } | sha256sum | cut -d" " -f1
)"
if [ -f "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ] && [ "${1:-}" != "--force" ]; then
    echo "py-hello/build.sh: $out is up to date (--force rebuilds it)"
    exit 0
fi

mkdir -p "$dist"
started=$SECONDS
# The sources are built from a copy: the bundled interpreter writes __pycache__ beside them.
mkdir -p "$stage/app"
cp "$here"/*.py "$stage/app/"
componentize_py -q -d "$stage/wit" -w py-hello componentize app \
    -p "$stage/app" -o "$stage/py-hello.wasm"
rm -f "$stamp"
mv -f "$stage/py-hello.wasm" "$out"
echo "$inputs" >"$stamp"
size=$(wc -c <"$out")
echo "py-hello/build.sh: $out ($size bytes, wasi:http@$http_version, componentize-py $COMPONENTIZE_PY_VERSION, $((SECONDS - started))s)"
