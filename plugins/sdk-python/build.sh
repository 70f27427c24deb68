#!/usr/bin/env bash
# Builds the Python plugins on the Sluice SDK (sluice_plugin.py, world
# sluice:plugin/http-client@0.2.0) into ../dist/<name>.wasm with componentize-py.
#
#   plugins/sdk-python/build.sh                 # every example: py-hmac-signer py-header-rewrite
#   plugins/sdk-python/build.sh py-hmac-signer  # one (a folder of plugins/ holding app.py)
#   plugins/sdk-python/build.sh --force ...     # rebuild even if nothing changed
#
# - Installs componentize-py (pinned below) with pip when the interpreter does not have that
#   version: `$PYTHON -m pip install --quiet componentize-py==VERSION` (PYTHON defaults to
#   python3; point it at a virtualenv's python to keep the install there).
# - The component is built from a copy of the plugin's *.py files plus this folder's
#   sluice_plugin.py, against ../sdk/wit/0.2/plugin.wit (the 0.2.0 contract the SDKs target:
#   headers as one encoded byte list).
# - Writes each component atomically (a temporary file renamed into place), and only when an
#   input changed (dist/<name>.inputs records them): componentize-py never writes the same
#   bytes twice and the gateway caches compiled components by content hash.
#
# Needs: python3 (3.9+) with pip, network access to PyPI on the first run.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1
EXAMPLES=(py-hmac-signer py-header-rewrite)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plugins="$(cd "$here/.." && pwd)"
dist="$plugins/dist"
wit="$plugins/sdk/wit/0.2"
py="${PYTHON:-python3}"

fail() {
    echo "sdk-python/build.sh: $*" >&2
    exit 1
}

force=
names=()
for arg in "$@"; do
    case "$arg" in
    --force) force=1 ;;
    -*) fail "unknown option $arg (usage: build.sh [--force] [NAME...])" ;;
    *) names+=("$arg") ;;
    esac
done
[ ${#names[@]} -gt 0 ] || names=("${EXAMPLES[@]}")
for name in "${names[@]}"; do
    [[ "$name" =~ ^[a-z][a-z0-9-]*$ ]] || fail "not a plugin name: '$name'"
    [ -f "$plugins/$name/app.py" ] || fail "no $plugins/$name/app.py"
done

command -v "$py" >/dev/null || fail "no '$py' on PATH: install Python 3 (with pip), or set PYTHON"

installed_version() {
    "$py" - <<'PY' 2>/dev/null || true
from importlib.metadata import version
print(version("componentize-py"))
PY
}

if [ "$(installed_version)" != "$COMPONENTIZE_PY_VERSION" ]; then
    echo "sdk-python/build.sh: installing componentize-py==$COMPONENTIZE_PY_VERSION with $py -m pip" >&2
    "$py" -m pip install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION" ||
        fail "cannot install componentize-py==$COMPONENTIZE_PY_VERSION from PyPI with '$py -m pip' (no pip? no network to PyPI? externally managed Python? set PYTHON to a virtualenv's python)"
    [ "$(installed_version)" = "$COMPONENTIZE_PY_VERSION" ] ||
        fail "componentize-py==$COMPONENTIZE_PY_VERSION still not importable by $py after pip install"
fi

componentize_py() {
    "$py" -c 'import sys
from componentize_py import script
sys.argv[0] = "componentize-py"
sys.exit(script())' "$@"
}

stage="$(mktemp -d)"
part=
trap 'rm -rf "$stage" ${part:+"$part"}' EXIT
mkdir -p "$dist"

for name in "${names[@]}"; do
    src="$plugins/$name"
    out="$dist/$name.wasm"
    stamp="$dist/$name.inputs" # must not contain ".wasm": the gateway loads such files
    inputs="$(
        {
            echo "componentize-py $COMPONENTIZE_PY_VERSION"
            cat "${BASH_SOURCE[0]}" "$here/sluice_plugin.py" "$wit/plugin.wit"
            find "$src" -maxdepth 1 -name '*.py' -print0 | LC_ALL=C sort -z | xargs -0 cat
        } | sha256sum | cut -d" " -f1
    )"
    if [ -f "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ] && [ -z "$force" ]; then
        echo "sdk-python/build.sh: $out is up to date (--force rebuilds it)"
        continue
    fi
    started=$SECONDS
    # Built from a copy: the bundled interpreter writes __pycache__ beside the sources.
    app="$stage/$name"
    mkdir -p "$app"
    cp "$src"/*.py "$here/sluice_plugin.py" "$app/"
    part="$dist/.$name.part" # beside the output, so the rename is atomic; no ".wasm" in it
    componentize_py -q -d "$wit" -w http-client componentize app -p "$app" -o "$part"
    rm -f "$stamp"
    mv -f "$part" "$out"
    part=
    echo "$inputs" >"$stamp"
    echo "sdk-python/build.sh: $out ($(wc -c <"$out") bytes, componentize-py $COMPONENTIZE_PY_VERSION, $((SECONDS - started))s)"
done
