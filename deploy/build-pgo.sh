#!/usr/bin/env bash
# A profile-guided (PGO) release build of Sluice: the same code as `cargo build --release -p
# sluice`, laid out by where a proxied request's time goes.
#
#   deploy/build-pgo.sh              writes target/pgo/sluice
#   deploy/build-pgo.sh OUT          writes OUT
#
# Three steps: an instrumented build, a training run (the bench's shapes: no-op, json, a merge
# of three, a hooks plugin and a handle plugin, each under wrk for PGO_SECONDS in front of an
# nginx backend on 127.0.0.1, which the script starts), and the build that uses the profile.
# A request's code is then packed together and its branches ordered by what the training saw:
# most of what Sluice spends above nginx in user space is instruction-cache misses (callgrind's
# cache simulation counts twice nginx's per proxied request), which this halves
# (bench/README.md, "A profile-guided build"). Paths the training does not exercise are laid
# out as cold, not removed: they behave the same and may cost a little more.
#
# With PGO_BOLT=1 and llvm-bolt of rustc's LLVM (Debian: apt-get install bolt-N), a fourth
# step lays the linked binary out again (BOLT: hot functions together, cold blocks split off),
# trained the same way on an instrumented copy: about a quarter fewer instruction-cache misses
# again, but in one run a higher idle RSS (bench/README.md), so it is not the default yet.
#
# Environment:
#   CARGO_TARGET_DIR  where the two builds go, under pgo-generate/ and pgo-use/ (default: target/)
#   PGO_SECONDS       seconds of load per path (default 8)
#   PGO_PORT_BASE     backend port; the gateway listens on the next one (default 18291)
#   LLVM_PROFDATA     the llvm-profdata to merge the profiles with; it must be of rustc's LLVM
#                     major version (found as llvm-profdata-N, /usr/lib/llvm-N/bin or rustup's
#                     llvm-tools; Debian: apt-get install llvm-N)
#   PGO_BOLT=1        the BOLT step too (it fails without llvm-bolt)
#   LLVM_BOLT         the llvm-bolt to use (found as llvm-bolt-N or /usr/lib/llvm-N/bin)
# Needs nginx, wrk and curl. Everything listens on 127.0.0.1; every process it starts is
# stopped on exit.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/target/pgo/sluice}
SECONDS_EACH=${PGO_SECONDS:-8}
BACKEND_PORT=${PGO_PORT_BASE:-18291}
GATEWAY_PORT=$((BACKEND_PORT + 1))
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $TARGET == /* ]] || TARGET="$ROOT/$TARGET"

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'build-pgo.sh: %s\n' "$*" >&2
    exit 1
}

for tool in wrk curl cargo rustc; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
NGINX=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null) || die "nginx is not installed"
[[ $SECONDS_EACH =~ ^[1-9][0-9]*$ ]] || die "PGO_SECONDS must be a positive integer"

# llvm-profdata of rustc's LLVM major version: a profile written by one major version is not
# read by another.
llvm_major=$(rustc -vV | awk '/^LLVM version:/ { split($3, v, "."); print v[1] }')
[[ -n $llvm_major ]] || die "cannot read rustc's LLVM version (rustc -vV)"
# first_command CANDIDATE...: the path of the first that runs, or nothing.
first_command() {
    local candidate
    for candidate in "$@"; do
        if command -v "$candidate" 2>/dev/null; then
            return
        fi
    done
}
if [[ -z ${LLVM_PROFDATA:-} ]]; then
    sysroot=$(rustc --print sysroot)
    host=$(rustc -vV | awk '/^host:/ { print $2 }')
    LLVM_PROFDATA=$(first_command "llvm-profdata-$llvm_major" \
        "/usr/lib/llvm-$llvm_major/bin/llvm-profdata" "$sysroot/lib/rustlib/$host/bin/llvm-profdata")
fi
[[ -n ${LLVM_PROFDATA:-} ]] ||
    die "no llvm-profdata for LLVM $llvm_major (Debian: apt-get install llvm-$llvm_major; or rustup component add llvm-tools; or set LLVM_PROFDATA)"

if [[ ${PGO_BOLT:-0} != 1 ]]; then
    LLVM_BOLT=""
elif [[ -z ${LLVM_BOLT:-} ]]; then
    LLVM_BOLT=$(first_command "llvm-bolt-$llvm_major" "/usr/lib/llvm-$llvm_major/bin/llvm-bolt")
    [[ -n $LLVM_BOLT ]] ||
        die "PGO_BOLT=1, but there is no llvm-bolt for LLVM $llvm_major (Debian: apt-get install bolt-$llvm_major; or set LLVM_BOLT)"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-pgo.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# port_in_use, wait_ready, start_document_backend.
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
for port in "$BACKEND_PORT" "$GATEWAY_PORT"; do
    ! port_in_use "$port" || die "port $port on 127.0.0.1 is taken (set PGO_PORT_BASE)"
done

# 1. The instrumented build (its own target directory: other flags, every crate rebuilt; the
# flags name no path of this run's, so a second run reuses it).
profiles="$WORK/profiles"
mkdir -p "$profiles"
log "instrumented build (into $TARGET/pgo-generate)"
(cd "$ROOT" && RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$TARGET/pgo-generate/profiles" \
    CARGO_TARGET_DIR="$TARGET/pgo-generate" cargo build --release --locked -p sluice)
instrumented="$TARGET/pgo-generate/release/sluice"

# 2. Training: the bench's shapes in front of an nginx backend.
start_document_backend "$BACKEND_PORT"

dist="$ROOT/plugins/dist"
[[ -f $dist/header-rewrite.wasm && -f $dist/client-example.wasm ]] || "$ROOT/plugins/build.sh" >&2
mkdir -p "$WORK/plugins"
cp "$dist"/{header-rewrite,client-example}.wasm "$WORK/plugins/"
cat >"$WORK/sluice.json" <<EOF
{"version": 3, "name": "pgo training", "port": $GATEWAY_PORT, "listen_ip": "127.0.0.1",
 "timeout": "3s", "host": ["http://127.0.0.1:$BACKEND_PORT"],
 "plugin": {"folder": "$WORK/plugins", "pattern": ".wasm"},
 "endpoints": [
  {"endpoint": "/noop", "output_encoding": "no-op",
   "backend": [{"url_pattern": "/data.json", "encoding": "no-op"}]},
  {"endpoint": "/json", "backend": [{"url_pattern": "/data.json"}]},
  {"endpoint": "/merge", "backend": [{"url_pattern": "/data.json", "group": "a"},
   {"url_pattern": "/data.json", "group": "b"}, {"url_pattern": "/data.json", "group": "c"}]},
  {"endpoint": "/plugin-hooks", "backend": [{"url_pattern": "/data.json",
   "extra_config": {"plugin/http-client": {"name": "header-rewrite", "header-rewrite": {}}}}]},
  {"endpoint": "/plugin-handle", "backend": [{"url_pattern": "/data.json",
   "extra_config": {"plugin/http-client": {"name": "client-example",
    "client-example": {"path": "/never"}}}}]}
 ]}
EOF
# train BINARY: the paths under load, BINARY serving them. An instrumented binary writes its
# profile when it exits: a drained stop (SIGINT), not a kill.
train() {
    local binary=$1 gateway path url
    SLUICE_CACHE_DIR="$WORK/cache" "$binary" run --log warn -c "$WORK/sluice.json" \
        >"$WORK/sluice.log" 2>&1 &
    gateway=$!
    PIDS+=("$gateway")
    for path in /noop /json /merge /plugin-hooks /plugin-handle; do
        url="http://127.0.0.1:$GATEWAY_PORT$path"
        wait_ready sluice "$url" "$gateway"
        log "training on $path for ${SECONDS_EACH} s"
        wrk -t1 -c50 -d"${SECONDS_EACH}s" "$url" | awk '/ requests in /'
    done
    kill -INT "$gateway"
    wait "$gateway" || die "the instrumented gateway did not stop cleanly (see its log: $WORK/sluice.log)"
}
LLVM_PROFILE_FILE="$profiles/sluice-%p-%m.profraw" train "$instrumented"
compgen -G "$profiles/*.profraw" >/dev/null || die "the training wrote no profile"
"$LLVM_PROFDATA" merge -o "$WORK/sluice.profdata" "$profiles"/*.profraw

# 3. The build that uses the profile, named by its digest: cargo rebuilds when the flags
# change, and a new profile is a new name.
profile="$TARGET/pgo-use/sluice-$(sha256sum "$WORK/sluice.profdata" | cut -c1-16).profdata"
mkdir -p "$TARGET/pgo-use"
cp "$WORK/sluice.profdata" "$profile"
# BOLT moves functions: the link keeps its relocations (`-q`) when BOLT follows.
relocations=""
[[ -z ${LLVM_BOLT:-} ]] || relocations="-Clink-args=-Wl,-q"
log "optimised build (into $TARGET/pgo-use)"
(cd "$ROOT" && RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$profile $relocations" \
    CARGO_TARGET_DIR="$TARGET/pgo-use" cargo build --release --locked -p sluice)
built="$TARGET/pgo-use/release/sluice"
mkdir -p "$(dirname -- "$OUT")"

# 4. BOLT: an instrumented copy of the linked binary, the same training, then the layout.
if [[ -n ${LLVM_BOLT:-} ]]; then
    log "BOLT ($LLVM_BOLT)"
    mkdir -p "$WORK/bolt"
    "$LLVM_BOLT" "$built" -instrument -instrumentation-file="$WORK/bolt/sluice.fdata" \
        -instrumentation-file-append-pid -o "$WORK/sluice-bolt-instrumented" >"$WORK/bolt.log" 2>&1 ||
        die "llvm-bolt could not instrument the binary: $(tail -n 3 "$WORK/bolt.log")"
    train "$WORK/sluice-bolt-instrumented"
    fdata=("$WORK"/bolt/sluice.fdata.*.fdata)
    [[ ${#fdata[@]} -eq 1 && -f ${fdata[0]} ]] || die "the BOLT training wrote no profile, or more than one"
    "$LLVM_BOLT" "$built" -data="${fdata[0]}" -o "$OUT" -reorder-blocks=ext-tsp \
        -reorder-functions=cdsort -split-functions -split-all-cold -split-eh -icf=all \
        -use-gnu-stack -update-debug-sections >>"$WORK/bolt.log" 2>&1 ||
        die "llvm-bolt could not lay the binary out: $(tail -n 3 "$WORK/bolt.log")"
else
    cp "$built" "$OUT"
fi
"$OUT" --version >/dev/null || die "$OUT does not run"
log "wrote $OUT"
