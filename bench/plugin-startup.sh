#!/usr/bin/env bash
# Start-up with 10 component plugins: `sluice check` (loads the folder, compiles or loads each
# component, runs every backend's init) with an empty compiled cache, then with it warm; and
# the resident memory a running gateway spends per plugin (compiled code + one live instance).
# Usage: bench/plugin-startup.sh   (builds target/release/sluice and the example plugins)
set -euo pipefail
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -p sluice --manifest-path "$ROOT/Cargo.toml" >&2
SLUICE=${SLUICE_BIN:-$TARGET_DIR/release/sluice}
[[ -f $ROOT/plugins/dist/client-example.wasm ]] || "$ROOT/plugins/build.sh" >&2
WORK=$(mktemp -d)
trap 'kill "${PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/plugins"

# Ten distinct components (distinct content, so the cache cannot share them): the example
# plugins, plus copies of client-example with a custom section appended to make them unique.
for name in client-example header-rewrite hmac-signer static-answer fan-out wasi-passthrough; do
    cp "$ROOT/plugins/dist/$name.wasm" "$WORK/plugins/"
done
for i in 1 2 3 4; do
    # A component custom section: id 0, size, name length, name, payload.
    { cat "$ROOT/plugins/dist/client-example.wasm"; printf '\x00\x08\x06copy-%s\x00' "$i"; } \
        >"$WORK/plugins/client-copy-$i.wasm"
done

port=18099
endpoints=""
n=0
for file in "$WORK"/plugins/*.wasm; do
    name=$(basename "$file" .wasm)
    case $name in
        client-*) settings='{"path": "/never"}' ;;
        hmac-signer) settings='{"secret": "s"}' ;;
        static-answer) settings='{"body": "ok"}' ;;
        fan-out) settings='{"urls": ["http://127.0.0.1:18098/a", "http://127.0.0.1:18098/b"]}' ;;
        *) settings='{}' ;;
    esac
    [[ -z $endpoints ]] || endpoints+=","
    endpoints+="{\"endpoint\": \"/p$n\", \"backend\": [{\"host\": [\"http://127.0.0.1:18098\"], \"url_pattern\": \"/\",
      \"extra_config\": {\"plugin/http-client\": {\"name\": \"$name\", \"$name\": $settings}}}]}"
    n=$((n + 1))
done
cat >"$WORK/plugins.json" <<JSON
{"version": 3, "port": $port, "listen_ip": "127.0.0.1",
 "plugin": {"folder": "$WORK/plugins", "pattern": ".wasm"},
 "endpoints": [$endpoints]}
JSON
cat >"$WORK/none.json" <<JSON
{"version": 3, "port": $port, "listen_ip": "127.0.0.1",
 "endpoints": [{"endpoint": "/p", "backend": [{"host": ["http://127.0.0.1:18098"], "url_pattern": "/"}]}]}
JSON

ms() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.0f", (e - s) / 1e6 }'; }
export SLUICE_CACHE_DIR="$WORK/cache"
start=$(date +%s%N); "$SLUICE" check -c "$WORK/plugins.json" >/dev/null; end=$(date +%s%N)
cold=$(ms "$start" "$end")
start=$(date +%s%N); "$SLUICE" check -c "$WORK/plugins.json" >/dev/null; end=$(date +%s%N)
warm=$(ms "$start" "$end")
start=$(date +%s%N); "$SLUICE" check -c "$WORK/none.json" >/dev/null; end=$(date +%s%N)
bare=$(ms "$start" "$end")

rss_of() {
    "$SLUICE" run --log warn -c "$1" & PID=$!
    for _ in $(seq 1 200); do
        curl -fsS "http://127.0.0.1:$port/__health" >/dev/null 2>&1 && break
        kill -0 "$PID" || exit 1
        sleep 0.05
    done
    awk '$1 == "VmRSS:" { print $2 }' "/proc/$PID/status"
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
}
rss_none=$(rss_of "$WORK/none.json")
rss_plugins=$(rss_of "$WORK/plugins.json")
per_plugin=$(awk -v a="$rss_plugins" -v b="$rss_none" 'BEGIN { printf "%.0f", (a - b) / 10 }')

printf '| start-up (sluice check, 10 component plugins) | ms |\n| --- | ---: |\n'
printf '| no plugins (reference) | %s |\n| 10 plugins, cold compiled cache | %s |\n| 10 plugins, warm compiled cache | %s |\n' "$bare" "$cold" "$warm"
printf '\nResident memory: %s KiB without plugins, %s KiB with 10 (one live instance each): %s KiB per plugin.\n' \
    "$rss_none" "$rss_plugins" "$per_plugin"
