#!/usr/bin/env bash
# Instructions per request: Sluice under callgrind, serving the bench's no-op, json and merge
# endpoints (an nginx backend with the same 196-byte JSON document), one path at a time.
#
#   bench/instructions.sh                 /noop /json /merge
#   bench/instructions.sh /json           one path
#   bench/instructions.sh /plugin-handle  the (f') plugin path (/plugin-hooks: (f)'s,
#                                         /plugin-held: (f'-held)'s, /plugin-wasi: (h)'s,
#                                         /plugin-wasi-lean: (h-lean)'s)
#   bench/instructions.sh nginx /noop     nginx's proxy_pass (the bench's case (b)) in front of
#                                         the same backend, counted the same way: the
#                                         reference #13's no-op and json targets compare with
#
# The count repeats within ~1-2% from run to run whatever else the machine does, where CPU time
# on a shared VM swings by 10-50%: it is the measure for a change of a few percent. Run it on
# the build before and the build after (SLUICE_BIN) and compare. Per path: a fresh gateway under
# `valgrind --tool=callgrind --instr-atstart=no`, 5 s of warm-up load, then instrumentation on
# for INSTR_SECONDS of load (wrk, 1 thread); instructions per request = the instructions counted
# over the requests wrk completed. Profiles stay in the work directory with INSTR_KEEP=1
# (`callgrind_annotate FILE` shows where they went).
#
# Environment:
#   SLUICE_BIN          the binary to measure (default: a release build under CARGO_TARGET_DIR
#                       or target/, built if missing)
#   INSTR_SECONDS       seconds of measured load per path (default 10)
#   INSTR_CONNECTIONS   wrk connections (default 50)
#   INSTR_PORT_BASE     backend port; the gateway listens on the next one (default 18191)
#   INSTR_KEEP=1        keep the work directory (configs, logs, callgrind profiles)
#   INSTR_CPU           the core the gateway is pinned to, as the bench pins it (default: the
#                       last one); on one core Sluice runs tokio's single-threaded runtime, the
#                       one the bench measures
#   INSTR_CACHE=1       also simulate the caches (`--cache-sim=yes --branch-sim=yes`, ~2x
#                       slower): instruction- and data-cache misses and mispredicted indirect
#                       branches a request, in extra columns (L1: 32 KiB, 8-way, 64-byte lines)
# Needs valgrind, wrk, curl and nginx. Everything listens on 127.0.0.1; every process it starts
# is stopped on exit.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_MEASURED=${INSTR_SECONDS:-10}
CONNECTIONS=${INSTR_CONNECTIONS:-50}
BACKEND_PORT=${INSTR_PORT_BASE:-18191}
GATEWAY_PORT=$((BACKEND_PORT + 1))
PATHS=("$@")
[[ ${#PATHS[@]} -gt 0 ]] || PATHS=(/noop /json /merge)

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'instructions.sh: %s\n' "$*" >&2
    exit 1
}

for tool in valgrind callgrind_control callgrind_annotate wrk curl; do
    command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install valgrind wrk curl)"
done
NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null) || die "nginx is not installed"
[[ $SECONDS_MEASURED =~ ^[1-9][0-9]*$ ]] || die "INSTR_SECONDS must be a positive integer"
GATEWAY_CPU=${INSTR_CPU:-$(($(nproc) - 1))}
command -v taskset >/dev/null || die "taskset is not installed (Debian: apt-get install util-linux)"

# port_in_use, wait_ready (at most 120 s here: valgrind starts slowly), nginx_conf.
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
BENCH_READY_TIMEOUT=${BENCH_READY_TIMEOUT:-120}
for port in "$BACKEND_PORT" "$GATEWAY_PORT"; do
    ! port_in_use "$port" || die "port $port on 127.0.0.1 is taken (set INSTR_PORT_BASE)"
done

if [[ -n ${SLUICE_BIN:-} ]]; then
    SLUICE=$SLUICE_BIN
else
    target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    [[ $target_dir == /* ]] || target_dir="$ROOT/$target_dir"
    SLUICE="$target_dir/release/sluice"
    [[ -x $SLUICE ]] || (cd "$ROOT" && cargo build --release -p sluice)
fi
[[ -x $SLUICE ]] || die "no binary at $SLUICE"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-instructions.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${INSTR_KEEP:-} == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT INT TERM

# The backend: nginx serving the bench's document, bench/data.json.
start_document_backend "$BACKEND_PORT"

# The gateway's config: the bench's three endpoints.
cat >"$WORK/sluice.json" <<EOF
{"version": 3, "name": "instructions", "port": $GATEWAY_PORT, "listen_ip": "127.0.0.1",
 "timeout": "3s", "host": ["http://127.0.0.1:$BACKEND_PORT"],
 "endpoints": [
  {"endpoint": "/noop", "output_encoding": "no-op",
   "backend": [{"url_pattern": "/data.json", "encoding": "no-op"}]},
  {"endpoint": "/json", "backend": [{"url_pattern": "/data.json"}]},
  {"endpoint": "/merge", "backend": [{"url_pattern": "/data.json", "group": "a"},
   {"url_pattern": "/data.json", "group": "b"}, {"url_pattern": "/data.json", "group": "c"}]}
 ]}
EOF

# The plugin paths, only when asked for (the plugin host's epoch ticker would otherwise count
# in the other paths' figures): the bench's (f), (f') and (h) plugins on the json endpoint.
# valgrind cannot map the pooling allocator's reservation, so the host runs without it; each
# instance then reserves its own (~4 GiB of address space), hence 8 instances, not the
# bench's 64.
PLUGIN_ENV=()
if printf '%s\n' "${PATHS[@]}" | grep -q '^/plugin-'; then
    dist="$ROOT/plugins/dist"
    plugins=(header-rewrite client-example message-edits wasi-passthrough wasi-lean-passthrough)
    for plugin in "${plugins[@]}"; do
        [[ -f $dist/$plugin.wasm ]] || missing=1
    done
    [[ -z ${missing:-} ]] || "$ROOT/plugins/build.sh" >&2
    mkdir -p "$WORK/plugins"
    for plugin in "${plugins[@]}"; do cp "$dist/$plugin.wasm" "$WORK/plugins/"; done
    python3 - "$WORK/sluice.json" "$WORK/plugins" <<'PY'
import json, sys
path, folder = sys.argv[1], sys.argv[2]
config = json.load(open(path))
config["plugin"] = {"folder": folder, "pattern": ".wasm"}
def plugin(name, settings):
    client = {"name": name, "max_instances": 8, name: settings}
    return {"url_pattern": "/data.json", "extra_config": {"plugin/http-client": client}}
config["endpoints"] += [
    {"endpoint": "/plugin-hooks", "backend": [plugin("header-rewrite", {})]},
    {"endpoint": "/plugin-handle", "backend": [plugin("client-example", {"path": "/never"})]},
    {"endpoint": "/plugin-held", "backend": [plugin("message-edits", {"handle": True})]},
    {"endpoint": "/plugin-wasi", "backend": [plugin("wasi-passthrough", {})]},
    {"endpoint": "/plugin-wasi-lean", "backend": [plugin("wasi-lean-passthrough", {})]},
]
json.dump(config, open(path, "w"))
PY
    PLUGIN_ENV=(SLUICE_WASM_POOLING=off "SLUICE_CACHE_DIR=$WORK/wasm-cache")
fi

# nginx's proxy, as the bench's case (b) runs it, but one process (no master): callgrind then
# counts the worker that serves.
if printf '%s\n' "${PATHS[@]}" | grep -qx nginx; then
    conf=$(nginx_proxy_conf proxy "$GATEWAY_PORT" "$BACKEND_PORT")
    sed -i -e 's/^master_process on;/master_process off;/' -e '/^user /d' "$conf"
fi

CALLGRIND=(valgrind --tool=callgrind --instr-atstart=no)
if [[ ${INSTR_CACHE:-0} == 1 ]]; then
    CALLGRIND+=(--cache-sim=yes --branch-sim=yes)
    echo "| path | requests | instructions | per request | I1 misses | D1 read misses | D1 write misses | indirect mispredicted |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
else
    echo "| path | requests | instructions | per request |"
    echo "|---|---:|---:|---:|"
fi
for path in "${PATHS[@]}"; do
    name=$(printf '%s' "$path" | tr -c 'A-Za-z0-9' '_')
    profile="$WORK/callgrind$name.out"
    if [[ $path == nginx ]]; then
        taskset -c "$GATEWAY_CPU" "${CALLGRIND[@]}" --callgrind-out-file="$profile" \
            "$NGINX" -p "$WORK/proxy/" -c "$WORK/proxy/nginx.conf" -e "$WORK/proxy/error.log" \
            >"$WORK/nginx-proxy.log" 2>&1 &
        url="http://127.0.0.1:$GATEWAY_PORT/data.json"
    else
        taskset -c "$GATEWAY_CPU" env "${PLUGIN_ENV[@]}" "${CALLGRIND[@]}" --callgrind-out-file="$profile" \
            "$SLUICE" run --log warn -c "$WORK/sluice.json" >"$WORK/sluice$name.log" 2>&1 &
        url="http://127.0.0.1:$GATEWAY_PORT$path"
    fi
    gateway=$!
    PIDS+=("$gateway")
    wait_ready "$path" "$url" "$gateway"
    log "$path: warm-up 5 s, then ${SECONDS_MEASURED} s counted"
    wrk -t1 -c"$CONNECTIONS" -d5s "$url" >/dev/null
    callgrind_control -i on "$gateway" >/dev/null 2>&1
    requests=$(wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_MEASURED}s" "$url" | awk '/ requests in / { print $1 }')
    callgrind_control -i off "$gateway" >/dev/null 2>&1
    callgrind_control -d "$gateway" >/dev/null 2>&1
    # SIGQUIT: nginx's graceful stop (its SIGINT is a fast one); Sluice drains on SIGINT.
    kill "-$([[ $path == nginx ]] && echo QUIT || echo INT)" "$gateway"
    wait "$gateway" || true
    # The dump asked for above is the first part; the exit writes the rest (nothing counted).
    # The totals line: Ir first, then (with the cache simulation) Dr Dw I1mr D1mr D1mw ILmr DLmr
    # DLmw Bc Bcm Bi Bim.
    read -r -a totals < <(callgrind_annotate "$profile.1" 2>/dev/null |
        awk '/PROGRAM TOTALS/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9,]+$/) { gsub(",", "", $i); printf "%s ", $i } } END { print "" }')
    instructions=${totals[0]:-}
    [[ -n $requests && $requests -gt 0 && -n $instructions ]] ||
        die "$path: no count (wrk requests: ${requests:-none}; see $WORK/sluice$name.log, INSTR_KEEP=1)"
    if [[ ${INSTR_CACHE:-0} == 1 ]]; then
        printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$path" "$requests" "$instructions" \
            "$((instructions / requests))" "$((totals[3] / requests))" "$((totals[4] / requests))" \
            "$((totals[5] / requests))" "$((totals[12] / requests))"
    else
        printf '| %s | %s | %s | %s |\n' "$path" "$requests" "$instructions" "$((instructions / requests))"
    fi
done
