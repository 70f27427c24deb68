#!/usr/bin/env bash
# Load benchmark: Sluice against nginx, on one machine, in one run.
#
#   bench/run.sh            every case for BENCH_DURATION seconds (default 10) after a warm-up
#   bench/run.sh --quick    2 s per case, a smoke check
#
# Layout (2 cores): the load generator (wrk, 1 thread, 50 connections) runs on core 0 together
# with the backend nginx; the thing under test (an nginx, or Sluice) runs alone on core 1.
# Everything listens on 127.0.0.1 only, on fixed ports (BENCH_PORT_BASE .. +5, default 18081).
#
# Environment:
#   BENCH_DURATION    seconds measured per case (default 10; --quick: 2)
#   BENCH_WARMUP      seconds of warm-up per case (default 2; --quick: 1)
#   BENCH_CONNECTIONS wrk connections (default 50)
#   BENCH_READY_TIMEOUT seconds a server may take to answer after start (default 180)
#   BENCH_RUNS        rounds of every case (default 3; --quick: 1), every other one in reverse
#                     order: the table shows each figure's median over the rounds, and each
#                     round's CPU µs/req
#   BENCH_PAIRS       pairs of short slices per target (default 15; --quick: 0; 0: none): after
#                     the rounds, each target's two cases are measured again in turns,
#                     BENCH_SLICE seconds each (default 2), A then B, then B then A; a target is
#                     judged on the median of the pairs' own ratios. This host's speed moves
#                     by ±10% within seconds, so one 10 s figure of each case, a minute apart,
#                     cannot tell 1.00x from 0.95x; 15 pairs 4 s apart can (quartiles ±2%)
#   BENCH_ONLY        extended regex: run only the cases whose name matches (the ratio
#                     columns need the (a) and (b) cases to be among them)
#   BENCH_CASES_DIR   extra case files to source (default bench/cases.d), see "Cases" below
#   BENCH_KEEP=1      keep the temporary directory (configs, logs, raw wrk output)
#   CARGO_TARGET_DIR  honoured for the build and to find the binary
#   SLUICE_BIN        use this sluice binary instead of building (to compare two builds)
#   BENCH_PGO=1       build with deploy/build-pgo.sh (profile-guided; ~25 min on 2 cores, and
#                     it needs llvm-profdata of rustc's LLVM) instead of `cargo build --release`
#   SLUICE_BASE_BIN   a second sluice binary (e.g. a build of main before a change): it serves
#                     the same config on BENCH_PORT_BASE+4, also pinned to core 1,
#                     and the cases "(c0) base no-op" and "(d0) base json" measure its no-op
#                     and json endpoints in the same run as (c) and (d), so the two builds'
#                     CPU per request compare directly (next to each other in every round,
#                     the base first in even rounds; the report ends with the ratios)
#
# Cases: `declare_cases` below is the one place they are listed. These functions add more, from
# there or from a file in BENCH_CASES_DIR (sourced in name order, after the built-in cases):
#   sluice_endpoint JSON      adds an endpoint object to the Sluice config (hosts default to
#                             the backend, whose file is /data.json)
#   sluice_root KEY JSON      sets a service-level key of the Sluice config (e.g. "plugin")
#   sluice_env NAME=VALUE...  environment for the Sluice process
#   bench_case NAME URL       measures URL, in the order declared, with the same warm-up,
#                             duration and pinning as every other case
#   bench_header NAME "H: v"  sends this header with every request of case NAME (curl's check
#                             and wrk's), e.g. the bearer token of a JWT-protected endpoint
#   bench_during NAME FUNC    runs the shell function FUNC in the background while case NAME
#                             is measured (stopped after it), e.g. to reload Sluice under load;
#                             $SLUICE_PID is the Sluice under test
#   start_process NAME CPU CMD...  (and wait_ready NAME URL "$LAST_PID") for a case that needs
#                             a process of its own; it is stopped on exit like the others
# A case file runs with $WORK (the temporary directory, already holding www/data.json) set, so
# it can build or copy what its endpoints need (a .wasm component, ...) there.
# Variables for URLs: $BACKEND_URL (core 0), $DIRECT_URL, $PROXY_URL, $SLUICE_URL (core 1).
# The idle-RSS target is checked on a Sluice running the built-in cases' config only; with
# case files, the idle RSS of the full config is printed too.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS_DIR="$ROOT/bench/results"

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
RUNS=${BENCH_RUNS:-3}
PAIRS=${BENCH_PAIRS:-15}
SLICE=${BENCH_SLICE:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-50}
CASES_DIR=${BENCH_CASES_DIR:-$ROOT/bench/cases.d}
PORT_BASE=${BENCH_PORT_BASE:-18081}

for arg in "$@"; do
    case "$arg" in
        --quick)
            DURATION=2
            WARMUP=${BENCH_WARMUP:-1}
            RUNS=${BENCH_RUNS:-1}
            PAIRS=${BENCH_PAIRS:-0}
            ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "run.sh: unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

BACKEND_PORT=$PORT_BASE
DIRECT_PORT=$((PORT_BASE + 1))
PROXY_PORT=$((PORT_BASE + 2))
SLUICE_PORT=$((PORT_BASE + 3))
BASE_PORT=$((PORT_BASE + 4))
WIRE_PORT=$((PORT_BASE + 5))
BACKEND_URL="http://127.0.0.1:$BACKEND_PORT"
DIRECT_URL="http://127.0.0.1:$DIRECT_PORT"
PROXY_URL="http://127.0.0.1:$PROXY_PORT"
SLUICE_URL="http://127.0.0.1:$SLUICE_PORT"
export BACKEND_URL DIRECT_URL PROXY_URL SLUICE_URL

LOAD_CPU=0
TARGET_CPU=1

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'run.sh: error: %s\n' "$*" >&2
    exit 1
}
# port_in_use, wait_ready, nginx_conf (instructions.sh uses them too).
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# --- tools --------------------------------------------------------------------------------------

APT_UPDATED=0
apt_install() {
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "need to install $* but am not root and have no sudo"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null || die "need $* and apt-get is not available: install it by hand"
    if [[ $APT_UPDATED -eq 0 ]]; then
        log "apt-get update"
        "${sudo[@]}" apt-get update -q
        APT_UPDATED=1
    fi
    log "apt-get install -y $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

find_nginx() {
    command -v nginx 2>/dev/null && return 0
    local candidate
    for candidate in /usr/sbin/nginx /usr/local/sbin/nginx /usr/local/nginx/sbin/nginx; do
        if [[ -x $candidate ]]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

ensure_tools() {
    command -v cargo >/dev/null || die "cargo is not installed (see rust-toolchain.toml)"
    if ! find_nginx >/dev/null; then
        apt_install nginx-light || apt_install nginx
    fi
    command -v wrk >/dev/null || apt_install wrk
    command -v curl >/dev/null || apt_install curl
    command -v taskset >/dev/null || apt_install util-linux
    NGINX=$(find_nginx) || die "nginx is still missing after installing it"
    local cpus
    cpus=$(nproc --all)
    [[ $cpus -ge 2 ]] || die "needs 2 CPU cores (found $cpus): load generator and target are pinned apart"
}

# --- processes ----------------------------------------------------------------------------------

PIDS=()
TARGET_PIDS=()
WORK=""
cleanup() {
    local status=$? pid deadline
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    # Bounded wait for them to exit, then force.
    deadline=$((SECONDS + 5))
    for pid in "${PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [[ $SECONDS -lt $deadline ]]; do
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ ${BENCH_KEEP:-0} == 1 ]]; then
            log "kept $WORK"
        else
            rm -rf -- "$WORK"
        fi
    fi
    exit "$status"
}

# start_process NAME CPU COMMAND...: runs COMMAND pinned to CPU in the background, output in
# $WORK/NAME.log; stopped on exit. Its PID is left in LAST_PID (for wait_ready).
start_process() {
    local name=$1 cpu=$2
    shift 2
    taskset -c "$cpu" "$@" >"$WORK/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    [[ $cpu != "$TARGET_CPU" ]] || TARGET_PIDS+=("$LAST_PID")
}

# What the processes started on the target core and their children (nginx workers) have used
# so far: CPU ticks (user + system), of which user, and voluntary context switches (each a
# sleep: the process had nothing to do and waited for an event). Divided by the requests, what
# one request costs the thing under test, whatever else the machine was doing.
target_counts() {
    local pid child ticks=0 user=0 sleeps=0 t u s
    for pid in "${TARGET_PIDS[@]}"; do
        for child in $pid $(cat "/proc/$pid/task/"*/children 2>/dev/null); do
            read -r t u < <(awk '{ print $14 + $15, $14 }' "/proc/$child/stat" 2>/dev/null || echo 0 0)
            s=$(awk '$1 == "voluntary_ctxt_switches:" { n += $2 } END { print n + 0 }' \
                "/proc/$child/task/"*/status 2>/dev/null || echo 0)
            ticks=$((ticks + t)) user=$((user + u)) sleeps=$((sleeps + s))
        done
    done
    echo "$ticks $user $sleeps"
}

# target_ticks: the CPU ticks of target_counts alone.
target_ticks() {
    local counts
    read -r -a counts < <(target_counts)
    echo "${counts[0]}"
}

# start_nginx NAME CPU CONF: nginx in the foreground (daemon off) of a background job.
start_nginx() {
    start_process "$1" "$2" "$NGINX" -p "$WORK/$1/" -c "$3" -e "$WORK/$1/error.log"
}

# nginx_wire_conf NAME PORT BACKEND_PORT VERSION: case (b'), nginx's proxy_pass of (b), sending
# the backend the fields Sluice's no-op sends (KrakenD's: the backend's host, X-Forwarded-For and
# -Host, its User-Agent, the gzip ask) and the client the two it adds (X-Krakend-Completed's and
# the version's), so the load generator and the backend on core 0 parse what they parse behind
# Sluice. VERSION is `sluice --version`'s line. nginx still adds its `Connection: keep-alive`.
nginx_wire_conf() {
    local version=${4##* }
    nginx_proxy_conf "$1" "$2" "$3" \
        "proxy_set_header Host 127.0.0.1:$3;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header User-Agent \"Sluice Version $version\";
            proxy_set_header Accept-Encoding gzip;
            add_header X-Krakend-Completed false;
            add_header X-Sluice \"Version $version\";"
}

# --- cases --------------------------------------------------------------------------------------

CASE_NAMES=()
CASE_URLS=()
SLUICE_ENDPOINTS=()
declare -A SLUICE_ROOT=()

bench_case() {
    [[ $# -eq 2 ]] || die "usage: bench_case NAME URL"
    local existing
    for existing in "${CASE_NAMES[@]}"; do
        [[ $existing != "$1" ]] || die "two cases are named \"$1\""
    done
    CASE_NAMES+=("$1")
    CASE_URLS+=("$2")
}

declare -A CASE_HEADER=()
bench_header() {
    [[ $# -eq 2 ]] || die "usage: bench_header NAME 'Header: value'"
    CASE_HEADER[$1]=$2
}

declare -A CASE_DURING=()
bench_during() {
    [[ $# -eq 2 ]] || die "usage: bench_during NAME FUNCTION"
    CASE_DURING[$1]=$2
}

sluice_endpoint() {
    [[ $# -eq 1 ]] || die "usage: sluice_endpoint JSON"
    SLUICE_ENDPOINTS+=("$1")
}

sluice_root() {
    [[ $# -eq 2 ]] || die "usage: sluice_root KEY JSON"
    SLUICE_ROOT[$1]=$2
}

SLUICE_ENV=()
sluice_env() {
    [[ $# -ge 1 ]] || die "usage: sluice_env NAME=VALUE..."
    SLUICE_ENV+=("$@")
}

# The reference cases the ratio columns divide by.
REF_DIRECT="(a) nginx direct"
REF_PROXY="(b) nginx proxy"
# nginx's proxy putting on the wire what Sluice's no-op puts there (not a target's reference).
REF_WIRE="(b') nginx proxy, Sluice's headers"

declare_cases() {
    bench_case "$REF_DIRECT" "$DIRECT_URL/data.json"
    bench_case "$REF_PROXY" "$PROXY_URL/data.json"
    bench_case "$REF_WIRE" "http://127.0.0.1:$WIRE_PORT/data.json"

    sluice_endpoint '{"endpoint": "/noop", "output_encoding": "no-op",
        "backend": [{"url_pattern": "/data.json", "encoding": "no-op"}]}'
    bench_case "(c) sluice no-op" "$SLUICE_URL/noop"
    [[ -z ${SLUICE_BASE_BIN:-} ]] || bench_case "(c0) base no-op" "http://127.0.0.1:$BASE_PORT/noop"

    sluice_endpoint '{"endpoint": "/json",
        "backend": [{"url_pattern": "/data.json"}]}'
    bench_case "(d) sluice json" "$SLUICE_URL/json"
    [[ -z ${SLUICE_BASE_BIN:-} ]] || bench_case "(d0) base json" "http://127.0.0.1:$BASE_PORT/json"

    sluice_endpoint '{"endpoint": "/merge", "backend": [
        {"url_pattern": "/data.json", "group": "a"},
        {"url_pattern": "/data.json", "group": "b"},
        {"url_pattern": "/data.json", "group": "c"}]}'
    bench_case "(e) sluice merge x3" "$SLUICE_URL/merge"

    # The idle-RSS target is about this config; case files may add plugins and more.
    CORE_ENDPOINTS=${#SLUICE_ENDPOINTS[@]}

    # Later cases (plugin endpoints, ...) live in their own files.
    if [[ -d $CASES_DIR ]]; then
        local file
        for file in "$CASES_DIR"/*.sh; do
            [[ -e $file ]] || continue
            # shellcheck source=/dev/null
            source "$file"
        done
    fi
}

# write_sluice_config FILE [core]: every endpoint, or (core) only the built-in cases' ones
# without the service-level keys case files added.
write_sluice_config() {
    local file=$1 key first=1 endpoint endpoints=("${SLUICE_ENDPOINTS[@]}")
    [[ ${2:-} != core ]] || endpoints=("${SLUICE_ENDPOINTS[@]:0:CORE_ENDPOINTS}")
    {
        printf '{\n  "version": 3,\n  "name": "sluice load benchmark",\n'
        printf '  "port": %d,\n  "listen_ip": "127.0.0.1",\n' "$SLUICE_PORT"
        printf '  "timeout": "3s",\n  "host": ["%s"],\n' "$BACKEND_URL"
        if [[ ${2:-} != core ]]; then
            for key in "${!SLUICE_ROOT[@]}"; do
                printf '  "%s": %s,\n' "$key" "${SLUICE_ROOT[$key]}"
            done
        fi
        printf '  "endpoints": [\n'
        for endpoint in "${endpoints[@]}"; do
            [[ $first -eq 1 ]] || printf ',\n'
            first=0
            printf '    %s' "$endpoint"
        done
        printf '\n  ]\n}\n'
    } >"$file"
}

# --- measuring ----------------------------------------------------------------------------------

# Busy and total jiffies of one CPU from /proc/stat.
cpu_jiffies() {
    awk -v cpu="cpu$1" '$1 == cpu {
        busy = $2 + $3 + $4 + $7 + $8; total = busy + $5 + $6; print busy, total }' /proc/stat
}

# Busy percentage of the load and target cores over one second.
background_load() {
    local b0 t0 c0 ct0 b1 t1 c1 ct1
    read -r b0 t0 < <(cpu_jiffies "$LOAD_CPU")
    read -r c0 ct0 < <(cpu_jiffies "$TARGET_CPU")
    sleep 1
    read -r b1 t1 < <(cpu_jiffies "$LOAD_CPU")
    read -r c1 ct1 < <(cpu_jiffies "$TARGET_CPU")
    awk -v a="$((b1 - b0))" -v at="$((t1 - t0))" -v c="$((c1 - c0))" -v ct="$((ct1 - ct0))" \
        'BEGIN { printf "%.0f %.0f\n", at ? 100 * a / at : 0, ct ? 100 * c / ct : 0 }'
}

# A wrk latency figure (e.g. 812.00us, 1.20ms, 2.01s) in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000;
        else if (u == "m") n *= 60000; else if (u == "h") n *= 3600000;
        printf "%.3f", n }'
}

declare -A RPS=() P50=() P99=() CPU_TARGET=() CPU_LOAD=() ERRORS=() BYTES=() US_PER_REQ=() OTHER=()
declare -A USER_PER_REQ=() SLEEPS=()
declare -A ALL_RPS=() ALL_P50=() ALL_P99=() ALL_US=() ALL_TARGET=() ALL_LOAD=() ALL_OTHER=() ALL_ERRORS=()
declare -A ALL_USER=() ALL_SLEEPS=()

# us_per_request TICKS REQUESTS: CPU ticks as microseconds a request ("-" for no request).
us_per_request() {
    awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$2" \
        'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "-" }'
}

run_case() {
    local name=$1 url=$2 out size b0 t0 b1 t1 l0 lt0 l1 lt1 own0 own1 user0 user1 sleeps0 sleeps1
    local requests rps p50 p99 non2xx sockerr
    out="$WORK/wrk-$(printf '%s' "$name" | tr -c 'A-Za-z0-9' '_').txt"
    # A case must answer 200 before it is measured.
    local header=()
    [[ -z ${CASE_HEADER[$name]:-} ]] || header=(-H "${CASE_HEADER[$name]}")
    size=$(curl -sS "${header[@]}" -o /dev/null -w '%{http_code} %{size_download}' --max-time 5 "$url") ||
        die "$name: $url does not answer"
    [[ ${size%% *} == 200 ]] || die "$name: $url answered HTTP ${size%% *}, not 200"
    BYTES[$name]=${size#* }
    log "$name: $url (${BYTES[$name]} B): warm-up ${WARMUP}s, then ${DURATION}s"
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "${header[@]}" "$url" >/dev/null
    read -r b0 t0 < <(cpu_jiffies "$TARGET_CPU")
    read -r l0 lt0 < <(cpu_jiffies "$LOAD_CPU")
    read -r own0 user0 sleeps0 < <(target_counts)
    local during=""
    if [[ -n ${CASE_DURING[$name]:-} ]]; then
        "${CASE_DURING[$name]}" &
        during=$!
    fi
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "${header[@]}" "$url" >"$out"
    if [[ -n $during ]]; then
        kill "$during" 2>/dev/null || true
        wait "$during" 2>/dev/null || true
    fi
    read -r own1 user1 sleeps1 < <(target_counts)
    read -r b1 t1 < <(cpu_jiffies "$TARGET_CPU")
    read -r l1 lt1 < <(cpu_jiffies "$LOAD_CPU")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50=$(awk '$1 == "50%" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    [[ -n $rps && -n $p50 && -n $p99 ]] || {
        cat "$out" >&2
        die "$name: cannot read wrk's output (above)"
    }
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    sockerr=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); print }' "$out")
    requests=$(awk '/ requests in / { print $1 }' "$out")
    US_PER_REQ[$name]=$(us_per_request "$((own1 - own0))" "$requests")
    USER_PER_REQ[$name]=$(us_per_request "$((user1 - user0))" "$requests")
    SLEEPS[$name]=$(awk -v s="$((sleeps1 - sleeps0))" -v n="$requests" \
        'BEGIN { if (n > 0) printf "%.2f", s / n; else print "-" }')
    # Core 1 time not spent by our processes: other work (or interrupts) stealing the core.
    OTHER[$name]=$(awk -v b="$((b1 - b0))" -v o="$((own1 - own0))" -v t="$((t1 - t0))" \
        'BEGIN { v = t ? 100 * (b - o) / t : 0; printf "%.0f", v < 0 ? 0 : v }')
    RPS[$name]=$rps
    P50[$name]=$(to_ms "$p50")
    P99[$name]=$(to_ms "$p99")
    CPU_TARGET[$name]=$(awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" 'BEGIN { printf "%.0f", t ? 100 * b / t : 0 }')
    CPU_LOAD[$name]=$(awk -v b="$((l1 - l0))" -v t="$((lt1 - lt0))" 'BEGIN { printf "%.0f", t ? 100 * b / t : 0 }')
    ERRORS[$name]=""
    [[ -z $non2xx ]] || ERRORS[$name]="non-2xx: $non2xx"
    [[ -z $sockerr ]] || ERRORS[$name]="${ERRORS[$name]:+${ERRORS[$name]}; }socket errors: $sockerr"
    log "$name: $rps req/s, p50 ${P50[$name]} ms, p99 ${P99[$name]} ms${ERRORS[$name]:+ (${ERRORS[$name]})}"
}

# median VALUE...: the middle value (the mean of the two middle ones for an even count, written
# with MEDIAN_FORMAT, %.1f unless set).
median() {
    printf '%s\n' "$@" | sort -g | awk -v fmt="${MEDIAN_FORMAT:-%.1f}" '{ v[NR] = $1 } END {
        if (NR == 0) { print "-"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf fmt, (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
# holds A OP B: a numeric comparison (>= or <) that fails when either side is unknown.
holds() {
    awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
        if (a == "" || a == "-" || b == "" || b == "-") exit 1
        exit !(op == ">=" ? a + 0 >= b + 0 : a + 0 < b + 0) }'
}
mib() { awk -v kb="$1" 'BEGIN { if (kb == "") print "-"; else printf "%.1f", kb / 1024 }'; }
proc_kb() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

verdict() {
    if "$@"; then echo "met"; else echo "MISSED"; fi
}

# round_ratios A B: each round's CPU µs/req of case A over case B's, slash-separated.
round_ratios() {
    awk -v a="${ALL_US[$1]:-}" -v b="${ALL_US[$2]:-}" 'BEGIN {
        n = split(a, x, " "); m = split(b, y, " "); out = ""
        for (i = 1; i <= n && i <= m; i++)
            if (y[i] + 0 > 0) out = out (out == "" ? "" : "/") sprintf("%.2f", x[i] / y[i])
        print out }'
}

# quartiles VALUE...: the first quartile, the median and the third quartile (interpolated
# between the sorted values, as numpy's default), %.2f each.
quartiles() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- - -"; exit }
        for (q = 1; q <= 3; q++) {
            pos = (NR - 1) * q / 4; lo = int(pos); f = pos - lo
            x = v[lo + 1] + (lo + 1 < NR ? f * (v[lo + 2] - v[lo + 1]) : 0)
            printf "%.2f%s", x, q < 3 ? " " : "\n"
        } }'
}

# cpu_target LABEL A B OP LIMIT: one target line for CPU µs/req of case A over case B's (OP is
# <= or >=); nothing when a case did not run. Judged on the median of the pairs' own ratios
# when the pairs ran (BENCH_PAIRS), else on the median of the rounds' own ratios.
cpu_target() {
    local label=$1 a=$2 b=$3 op=$4 limit=$5 rounds median_of_rounds judged paired="" met q1 q2 q3
    [[ -n ${US_PER_REQ[$a]:-} && -n ${US_PER_REQ[$b]:-} ]] || return 0
    rounds=$(round_ratios "$a" "$b")
    # shellcheck disable=SC2086 # the rounds' ratios, one word each
    median_of_rounds=$(MEDIAN_FORMAT=%.2f median ${rounds//\// })
    judged=$median_of_rounds
    if [[ -n ${PAIRED["$a|$b"]:-} ]]; then
        # shellcheck disable=SC2086 # the pairs' ratios, one word each
        read -r q1 q2 q3 < <(quartiles ${PAIRED["$a|$b"]})
        judged=$q2
        paired="; in $(wc -w <<<"${PAIRED["$a|$b"]}") pairs: **median $q2**, quartiles $q1-$q3"
    fi
    if [[ $op == "<=" ]]; then
        met=$(verdict holds "$limit" ">=" "$judged")
    else
        met=$(verdict holds "$judged" ">=" "$limit")
    fi
    echo "- $label: rounds $(ratio "${US_PER_REQ[$a]}" "${US_PER_REQ[$b]}") by the medians, per round $rounds, median $median_of_rounds$paired -> $met"
}

# target_list: the targets (issues #13 and #10), one a line, LABEL|A|B|OP|LIMIT: case A's CPU
# µs/req over case B's, at most (<=) or at least (>=) LIMIT. A plugin case's capacity against
# (d) is (d)'s CPU over the case's.
target_list() {
    local c="(c) sluice no-op" d="(d) sluice json"
    printf '%s\n' \
        "(c) no-op CPU <= 1.0x nginx (b)|$c|$REF_PROXY|<=|1.0" \
        "(d) json CPU <= 1.1x nginx (b)|$d|$REF_PROXY|<=|1.1" \
        "(e) merge of three CPU <= 2.5x (c)|(e) sluice merge x3|$c|<=|2.5" \
        "(f) hooks capacity >= 0.92x (d)|$d|(f) wasm sluice-world hooks|>=|0.92" \
        "(f') handle capacity >= 0.85x (d)|$d|(f') wasm sluice-world handle|>=|0.85" \
        "(f'-held) the same, forward() held, >= 0.85x (d)|$d|(f'-held) wasm sluice-world handle, forward held|>=|0.85" \
        "(h) wasi:http capacity >= 0.5x (d)|$d|(h) wasm wasi:http|>=|0.5" \
        "(h-lean) the same, raw wasi:http bindings, >= 0.5x (d)|$d|(h-lean) wasm wasi:http, raw bindings|>=|0.5"
}

# --- pairs --------------------------------------------------------------------------------------

declare -A PAIRED=() PAIRED_P99=()
PAIR_LOG=()
SLICE_RESULT=""

# case_url NAME: the URL case NAME measures.
case_url() {
    local i
    for i in "${!CASE_NAMES[@]}"; do
        [[ ${CASE_NAMES[$i]} != "$1" ]] || {
            echo "${CASE_URLS[$i]}"
            return 0
        }
    done
    return 1
}

# slice_case NAME URL: one slice of load, BENCH_SLICE seconds with no warm-up (the rounds have
# warmed every pool); SLICE_RESULT is "ticks requests p99-ms".
slice_case() {
    local name=$1 url=$2 out="$WORK/slice.txt" own0 own1 requests p99
    local header=()
    [[ -z ${CASE_HEADER[$name]:-} ]] || header=(-H "${CASE_HEADER[$name]}")
    own0=$(target_ticks)
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${SLICE}s" --latency "${header[@]}" "$url" >"$out"
    own1=$(target_ticks)
    requests=$(awk '/ requests in / { print $1 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    [[ -n $requests && -n $p99 && $requests -gt 0 ]] || {
        cat "$out" >&2
        die "$name: a slice answered no request (wrk's output above)"
    }
    SLICE_RESULT="$((own1 - own0)) $requests $(to_ms "$p99")"
}

# run_pairs A B: BENCH_PAIRS pairs of slices, A then B, then B then A, and so on; PAIRED["A|B"]
# gets each pair's ratio of CPU µs/req (A's over B's), PAIRED_P99["A|B"] its ratio of p99.
run_pairs() {
    local a=$1 b=$2 key="$1|$2" k ua ub ra rb ratios="" p99s=""
    [[ -z ${PAIRED[$key]:-} ]] || return 0
    ua=$(case_url "$a") && ub=$(case_url "$b") || return 0
    log "pairs: $a against $b, $PAIRS x ${SLICE}s each"
    for ((k = 1; k <= PAIRS; k++)); do
        if ((k % 2)); then
            slice_case "$a" "$ua" && ra=$SLICE_RESULT
            slice_case "$b" "$ub" && rb=$SLICE_RESULT
        else
            slice_case "$b" "$ub" && rb=$SLICE_RESULT
            slice_case "$a" "$ua" && ra=$SLICE_RESULT
        fi
        PAIR_LOG+=("$a | $b | pair $k | $ra | $rb")
        # A slice of no ticks (a case far below a tick a request) gives no ratio.
        read -r cpu p99 < <(awk -v x="$ra" -v y="$rb" 'BEGIN {
            split(x, a, " "); split(y, b, " ")
            cpu = (a[1] > 0 && b[1] > 0) ? sprintf("%.3f", (a[1] / a[2]) / (b[1] / b[2])) : "-"
            p99 = (b[3] > 0) ? sprintf("%.3f", a[3] / b[3]) : "-"
            print cpu, p99 }')
        [[ $cpu == - ]] || ratios+=" $cpu"
        [[ $p99 == - ]] || p99s+=" $p99"
    done
    PAIRED[$key]=${ratios# }
    PAIRED_P99[$key]=${p99s# }
}

report() {
    local name rps_b p99_b rps_a
    rps_a=${RPS[$REF_DIRECT]:-}
    rps_b=${RPS[$REF_PROXY]:-}
    p99_b=${P99[$REF_PROXY]:-}
    echo "| case | req/s | p50 ms | p99 ms | req/s vs (a) | req/s vs (b) | p99 vs (b) | CPU µs/req (core 1) | per run | of which user | sleeps/req | core 1 busy | of which not ours | core 0 busy | limit | body B | errors |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"
    local limit
    for name in "${CASE_NAMES[@]}"; do
        [[ -n ${RPS[$name]:-} ]] || continue
        # Which side held the rate back: the load generator's core when it was (nearly) full.
        limit="core 1"
        holds "${CPU_LOAD[$name]}" ">=" 95 && limit="**load generator**"
        printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s%% | %s%% | %s%% | %s | %s | %s |\n' \
            "$name" "${RPS[$name]}" "${P50[$name]}" "${P99[$name]}" \
            "$(ratio "${RPS[$name]}" "$rps_a")" "$(ratio "${RPS[$name]}" "$rps_b")" \
            "$(ratio "${P99[$name]}" "$p99_b")" "${US_PER_REQ[$name]}" \
            "$(echo ${ALL_US[$name]:-} | tr ' ' '/')" "${USER_PER_REQ[$name]:--}" "${SLEEPS[$name]:--}" \
            "${CPU_TARGET[$name]}" \
            "${OTHER[$name]}" "${CPU_LOAD[$name]}" "$limit" "${BYTES[$name]}" "${ERRORS[$name]:-}"
    done
    echo
    echo "Each figure is the median of $RUNS round(s) of every case; \"per run\" lists each round's"
    echo "CPU µs/req. \"limit\": the load generator's core (core 0) at 95% or more means wrk, not the"
    echo "thing under test, set the rate: compare such cases by CPU µs/req, not req/s."
    echo
    echo "CPU µs/req: user + system time of the thing under test (core 1) per request: its"
    echo "capacity, which other work on the machine disturbs less than req/s and latency. \"of which"
    echo "user\": the part spent outside the kernel (the rest is system calls, loopback TCP, waking)."
    echo "sleeps/req: voluntary context switches of the thing under test a request, each a wait for"
    echo "an event with nothing else to do and a wake-up after it (what idling between a merge's"
    echo "answers costs on a core the load does not keep busy)."
    echo "\"of which not ours\": core 1 time not spent by the processes under test (interrupts,"
    echo "or other work on the machine); above ~10% the case was disturbed."
    echo
    echo "Background load: $BACKGROUND."
    echo
    echo "Sluice RSS: idle $(mib "$IDLE_RSS_KB") MiB (VmRSS after start, built-in cases' config);"
    if [[ ${#SLUICE_ENDPOINTS[@]} -gt $CORE_ENDPOINTS ]]; then
        echo "idle $(mib "$FULL_IDLE_RSS_KB") MiB with every case's endpoints and settings;"
    fi
    echo "peak $(mib "$PEAK_RSS_KB") MiB (VmHWM after the runs)."
    echo
    echo "Targets (issues #13 and #10), in CPU µs per request: the ratio of the rounds' medians, each"
    echo "round's own ratio (the two cases measured in the same round) and their median; then, when"
    echo "the pairs ran (BENCH_PAIRS), the median and quartiles of the pairs' own ratios, on which"
    echo "the target is judged (two slices seconds apart share the host's speed; two rounds do not):"
    local c="(c) sluice no-op" label a b op limit
    while IFS='|' read -r label a b op limit; do
        cpu_target "$label" "$a" "$b" "$op" "$limit"
        if [[ $a == "$c" && $b == "$REF_PROXY" && -n ${P99[$c]:-} && -n $p99_b ]]; then
            local pc judged paired="" q1 q2 q3
            pc=$(ratio "${P99[$c]}" "$p99_b")
            judged=$pc
            if [[ -n ${PAIRED_P99["$c|$REF_PROXY"]:-} ]]; then
                # shellcheck disable=SC2086 # the pairs' ratios, one word each
                read -r q1 q2 q3 < <(quartiles ${PAIRED_P99["$c|$REF_PROXY"]})
                judged=$q2
                paired="; in pairs: **median $q2**, quartiles $q1-$q3"
            fi
            echo "- (c) no-op p99 <= 1.0x nginx (b) p99: rounds $pc by the medians$paired -> $(verdict holds 1.0 ">=" "$judged")"
        fi
    done < <(target_list)
    echo "- idle RSS < 20 MiB: $(mib "$IDLE_RSS_KB") MiB -> $(verdict holds "$IDLE_RSS_KB" "<" 20480)"
    if [[ -n ${US_PER_REQ[$c]:-} && -n ${US_PER_REQ[$REF_WIRE]:-} ]]; then
        echo
        echo "Not a target: the no-op against $REF_WIRE, which sends the backend and the client"
        echo "the fields Sluice sends (the load generator and the backend on core 0 parse the same"
        echo "bytes behind both):"
        wire_line "CPU µs/req" "$c" "$REF_WIRE" US_PER_REQ PAIRED
        wire_line "p99" "$c" "$REF_WIRE" P99 PAIRED_P99
    fi
    if [[ -n ${US_PER_REQ["(c0) base no-op"]:-}${US_PER_REQ["(d0) base json"]:-} ]]; then
        echo
        echo "This build against the base build (SLUICE_BASE_BIN), CPU µs/req, measured next to each"
        echo "other in every round (the base first in even rounds):"
        cpu_compare "(c) no-op against (c0)" "$c" "(c0) base no-op"
        cpu_compare "(d) json against (d0)" "$d" "(d0) base json"
    fi
}

# wire_line LABEL A B FIGURES PAIRS: case A's figure over case B's (FIGURES names the array of
# the rounds' medians), and the pairs' median and quartiles from the array PAIRS named.
wire_line() {
    local label=$1 a=$2 b=$3 q1 q2 q3 paired=""
    local -n figures=$4 pairs=$5
    if [[ -n ${pairs["$a|$b"]:-} ]]; then
        # shellcheck disable=SC2086 # the pairs' ratios, one word each
        read -r q1 q2 q3 < <(quartiles ${pairs["$a|$b"]})
        paired="; in pairs: median $q2, quartiles $q1-$q3"
    fi
    echo "- $label: rounds $(ratio "${figures[$a]}" "${figures[$b]}") by the medians$paired"
}

# cpu_compare LABEL A B: case A's CPU µs/req over case B's, the rounds' own ratios and their median.
cpu_compare() {
    local label=$1 a=$2 b=$3 rounds
    [[ -n ${US_PER_REQ[$a]:-} && -n ${US_PER_REQ[$b]:-} ]] || return 0
    rounds=$(round_ratios "$a" "$b")
    # shellcheck disable=SC2086 # the rounds' ratios, one word each
    echo "- $label: $(ratio "${US_PER_REQ[$a]}" "${US_PER_REQ[$b]}"); per round $rounds, median $(MEDIAN_FORMAT=%.2f median ${rounds//\// })"
}

# --- main ---------------------------------------------------------------------------------------

main() {
    ensure_tools

    local sluice target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    [[ $target_dir == /* ]] || target_dir="$ROOT/$target_dir"
    if [[ -n ${SLUICE_BIN:-} ]]; then
        sluice=$SLUICE_BIN
        log "using $sluice (SLUICE_BIN), not building"
    elif [[ ${BENCH_PGO:-} == 1 ]]; then
        log "building sluice with deploy/build-pgo.sh (profile-guided)"
        sluice="$target_dir/pgo/sluice"
        "$ROOT/deploy/build-pgo.sh" "$sluice"
    else
        log "building sluice (release)"
        (cd "$ROOT" && cargo build --release -p sluice)
        sluice="$target_dir/release/sluice"
    fi
    [[ -x $sluice ]] || die "no binary at $sluice"

    local port
    for port in "$BACKEND_PORT" "$DIRECT_PORT" "$PROXY_PORT" "$SLUICE_PORT"; do
        ! port_in_use "$port" || die "port $port on 127.0.0.1 is taken (set BENCH_PORT_BASE)"
    done

    WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
    trap cleanup EXIT INT TERM
    # Workers of an nginx started as root run as nobody and must read the file.
    chmod 755 "$WORK"
    mkdir -p "$WORK/www"
    # bench/data.json: 196 bytes of JSON, the size of a small API answer (instructions.sh serves it too).
    cp "$ROOT/bench/data.json" "$WORK/www/data.json"
    chmod -R a+rX "$WORK/www"

    declare_cases
    if [[ -n ${BENCH_ONLY:-} ]]; then
        local i names=() urls=()
        for i in "${!CASE_NAMES[@]}"; do
            if [[ ${CASE_NAMES[$i]} =~ $BENCH_ONLY ]]; then
                names+=("${CASE_NAMES[$i]}")
                urls+=("${CASE_URLS[$i]}")
            fi
        done
        CASE_NAMES=("${names[@]}")
        CASE_URLS=("${urls[@]}")
    fi
    [[ ${#CASE_NAMES[@]} -gt 0 ]] || die "no case to run"

    # /v1/*: an OTLP HTTP sink for the telemetry cases (the spans are accepted and dropped).
    local file_server="location / { root $WORK/www; } location /v1/ { return 200; }"
    local conf
    conf=$(nginx_conf backend "$BACKEND_PORT" "$file_server")
    start_nginx backend "$LOAD_CPU" "$conf"
    wait_ready backend "$BACKEND_URL/data.json" "$LAST_PID"

    conf=$(nginx_conf direct "$DIRECT_PORT" "$file_server")
    start_nginx direct "$TARGET_CPU" "$conf"
    wait_ready direct "$DIRECT_URL/data.json" "$LAST_PID"

    conf=$(nginx_proxy_conf proxy "$PROXY_PORT" "$BACKEND_PORT")
    start_nginx proxy "$TARGET_CPU" "$conf"
    wait_ready proxy "$PROXY_URL/data.json" "$LAST_PID"

    if case_url "$REF_WIRE" >/dev/null; then
        ! port_in_use "$WIRE_PORT" || die "port $WIRE_PORT on 127.0.0.1 is taken (set BENCH_PORT_BASE)"
        conf=$(nginx_wire_conf wire "$WIRE_PORT" "$BACKEND_PORT" "$("$sluice" --version)")
        start_nginx wire "$TARGET_CPU" "$conf"
        wait_ready wire "http://127.0.0.1:$WIRE_PORT/data.json" "$LAST_PID"
    fi

    # Idle RSS of the built-in cases' config alone: a Sluice started, measured and stopped.
    write_sluice_config "$WORK/sluice-core.json" core
    start_process sluice-core "$TARGET_CPU" env -u RUST_LOG \
        "$sluice" run -c "$WORK/sluice-core.json" --log warn
    local core_pid=$LAST_PID deadline
    wait_ready sluice-core "$SLUICE_URL/__health" "$core_pid"
    IDLE_RSS_KB=$(proc_kb "$core_pid" VmRSS)
    kill -TERM "$core_pid"
    deadline=$((SECONDS + 10))
    while kill -0 "$core_pid" 2>/dev/null; do
        [[ $SECONDS -lt $deadline ]] || die "sluice (core config) did not stop within 10 s"
        sleep 0.05
    done

    write_sluice_config "$WORK/sluice.json"
    (cd "$WORK" && "$sluice" check -c "$WORK/sluice.json" >/dev/null) ||
        die "the generated Sluice config is invalid: $WORK/sluice.json"
    start_process sluice "$TARGET_CPU" env -u RUST_LOG "${SLUICE_ENV[@]}" \
        "$sluice" run -c "$WORK/sluice.json" --log warn
    local sluice_pid=$LAST_PID
    SLUICE_PID=$sluice_pid
    wait_ready sluice "$SLUICE_URL/__health" "$sluice_pid"
    FULL_IDLE_RSS_KB=$(proc_kb "$sluice_pid" VmRSS)

    if [[ -n ${SLUICE_BASE_BIN:-} ]]; then
        [[ -x $SLUICE_BASE_BIN ]] || die "no binary at $SLUICE_BASE_BIN (SLUICE_BASE_BIN)"
        ! port_in_use "$BASE_PORT" || die "port $BASE_PORT on 127.0.0.1 is taken (set BENCH_PORT_BASE)"
        # The same config as the Sluice under test (plugins included: their host's background
        # threads share core 1), on its own port.
        SLUICE_PORT=$BASE_PORT write_sluice_config "$WORK/sluice-base.json"
        start_process sluice-base "$TARGET_CPU" env -u RUST_LOG "${SLUICE_ENV[@]}" \
            "$SLUICE_BASE_BIN" run -c "$WORK/sluice-base.json" --log warn
        wait_ready sluice-base "http://127.0.0.1:$BASE_PORT/__health" "$LAST_PID"
    fi

    # Other work on the machine skews every figure: sample it (1 s) with our servers idle.
    local busy0 busy1
    read -r busy0 busy1 < <(background_load)
    BACKGROUND="core 0 ${busy0}% busy, core 1 ${busy1}% busy before the runs"
    if [[ $busy0 -gt 10 || $busy1 -gt 10 ]]; then
        log "WARNING: the machine is busy ($BACKGROUND): figures will be low and noisy"
        BACKGROUND="$BACKGROUND (WARNING: busy machine, figures unreliable)"
    fi

    # Rounds of every case in turn (not one case N times in a row), so a slow spell of the
    # machine lands on every case alike; each figure is the median over the rounds.
    [[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, not \"$RUNS\""
    [[ $PAIRS =~ ^[0-9]+$ ]] || die "BENCH_PAIRS must be 0 or a positive integer, not \"$PAIRS\""
    [[ $SLICE =~ ^[1-9][0-9]*$ ]] || die "BENCH_SLICE must be a positive integer, not \"$SLICE\""
    local i round name order
    for ((round = 1; round <= RUNS; round++)); do
        [[ $RUNS -eq 1 ]] || log "round $round of $RUNS"
        order=("${!CASE_NAMES[@]}")
        # Every other round runs the cases in reverse order: a drift of the host's speed
        # within a round then favours neither case of a ratio (nginx before Sluice, then after;
        # a base build before its counterpart, then after).
        if ((round % 2 == 0)); then
            local reversed=()
            for ((i = ${#order[@]} - 1; i >= 0; i--)); do
                reversed+=("${order[$i]}")
            done
            order=("${reversed[@]}")
        fi
        for i in "${order[@]}"; do
            name=${CASE_NAMES[$i]}
            run_case "$name" "${CASE_URLS[$i]}"
            cp "$WORK/wrk-$(printf '%s' "$name" | tr -c 'A-Za-z0-9' '_').txt" \
                "$WORK/wrk-$(printf '%s' "$name" | tr -c 'A-Za-z0-9' '_')-run$round.txt"
            ALL_RPS[$name]+=" ${RPS[$name]}"
            ALL_P50[$name]+=" ${P50[$name]}"
            ALL_P99[$name]+=" ${P99[$name]}"
            ALL_US[$name]+=" ${US_PER_REQ[$name]}"
            ALL_USER[$name]+=" ${USER_PER_REQ[$name]}"
            ALL_SLEEPS[$name]+=" ${SLEEPS[$name]}"
            ALL_TARGET[$name]+=" ${CPU_TARGET[$name]}"
            ALL_LOAD[$name]+=" ${CPU_LOAD[$name]}"
            ALL_OTHER[$name]+=" ${OTHER[$name]}"
            [[ -z ${ERRORS[$name]} ]] || ALL_ERRORS[$name]+="${ALL_ERRORS[$name]:+; }run $round: ${ERRORS[$name]}"
        done
    done
    for name in "${CASE_NAMES[@]}"; do
        RPS[$name]=$(median ${ALL_RPS[$name]})
        P50[$name]=$(median ${ALL_P50[$name]})
        P99[$name]=$(median ${ALL_P99[$name]})
        US_PER_REQ[$name]=$(median ${ALL_US[$name]})
        USER_PER_REQ[$name]=$(median ${ALL_USER[$name]})
        SLEEPS[$name]=$(MEDIAN_FORMAT=%.2f median ${ALL_SLEEPS[$name]})
        CPU_TARGET[$name]=$(median ${ALL_TARGET[$name]})
        CPU_LOAD[$name]=$(median ${ALL_LOAD[$name]})
        OTHER[$name]=$(median ${ALL_OTHER[$name]})
        ERRORS[$name]=${ALL_ERRORS[$name]:-}
    done
    if ((PAIRS > 0)); then
        local label a b op limit
        while IFS='|' read -r label a b op limit; do
            [[ -n ${US_PER_REQ[$a]:-} && -n ${US_PER_REQ[$b]:-} ]] || continue
            [[ -z ${CASE_DURING[$a]:-}${CASE_DURING[$b]:-} ]] || continue
            run_pairs "$a" "$b"
        done < <(target_list)
        # Not a target: the no-op against nginx putting the same fields on the wire.
        if [[ -n ${US_PER_REQ["(c) sluice no-op"]:-} && -n ${US_PER_REQ[$REF_WIRE]:-} ]]; then
            run_pairs "(c) sluice no-op" "$REF_WIRE"
        fi
    fi
    PEAK_RSS_KB=$(proc_kb "$sluice_pid" VmHWM)
    kill -0 "$sluice_pid" 2>/dev/null || die "sluice died during the run (see $WORK/sluice.log)"
    if [[ -s $WORK/sluice.log ]]; then
        log "sluice logged (warn and above):"
        head -n 20 "$WORK/sluice.log" >&2
    fi

    local table
    table=$(report)
    echo
    echo "$table"
    mkdir -p "$RESULTS_DIR"
    {
        echo "# Sluice load benchmark"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
            "$(nproc --all) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -r)."
        echo "wrk 1 thread, $CONNECTIONS connections, ${WARMUP}s warm-up then ${DURATION}s per case," \
            "$RUNS round(s), then $PAIRS pair(s) of ${SLICE}s slices per target;" \
            "wrk and the backend nginx on core $LOAD_CPU, the thing under test on core $TARGET_CPU;" \
            "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), body $(wc -c <"$WORK/www/data.json") B."
        echo
        echo "$table"
        echo
        if ((${#PAIR_LOG[@]} > 0)); then
            echo "## Pairs"
            echo
            echo "Each slice: CPU ticks of the processes under test (1/$(getconf CLK_TCK) s), requests, p99 ms."
            echo
            echo "| A | B | pair | A's slice | B's slice |"
            echo "| --- | --- | --- | --- | --- |"
            printf '| %s |\n' "${PAIR_LOG[@]}"
            echo
        fi
        echo "## Raw wrk output"
        for i in "${!CASE_NAMES[@]}"; do
            for ((round = 1; round <= RUNS; round++)); do
                echo
                echo "### ${CASE_NAMES[$i]}, round $round"
                echo
                echo '```'
                cat "$WORK/wrk-$(printf '%s' "${CASE_NAMES[$i]}" | tr -c 'A-Za-z0-9' '_')-run$round.txt"
                echo '```'
            done
        done
    } >"$RESULTS_DIR/latest.md"
    log "wrote $RESULTS_DIR/latest.md"
}

IDLE_RSS_KB=""
FULL_IDLE_RSS_KB=""
CORE_ENDPOINTS=0
PEAK_RSS_KB=""
BACKGROUND=""
LAST_PID=""
NGINX=""
main
