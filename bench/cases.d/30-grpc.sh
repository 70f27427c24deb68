# shellcheck shell=bash
# gRPC backends (issue: gRPC backends through a client plugin): the json endpoint (d) again, its
# backend a gRPC method (bench.Users/GetUser over h2c) answering the same data as data.json, so
# (i) beside (d) is the cost of gRPC over HTTP/JSON: the goal is at least 0.8x (d)'s req/s.
# The gRPC server (tests/integration/src/bin/grpc-bench-backend.rs) shares core 0 with wrk and
# the backend nginx, as nginx does in (d).

GRPC_PORT=$((PORT_BASE + 9))
target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $target_dir == /* ]] || target_dir="$ROOT/$target_dir"
grpc_backend="${GRPC_BENCH_BACKEND_BIN:-$target_dir/release/grpc-bench-backend}"
if [[ -z ${GRPC_BENCH_BACKEND_BIN:-} ]]; then
    log "building the gRPC bench backend (release)"
    (cd "$ROOT" && cargo build --release -p sluice-integration --bin grpc-bench-backend) >&2
fi
[[ -x $grpc_backend ]] || die "no gRPC bench backend at $grpc_backend"
! port_in_use "$GRPC_PORT" || die "port $GRPC_PORT on 127.0.0.1 is taken (set BENCH_PORT_BASE)"
start_process grpc-backend "$LOAD_CPU" "$grpc_backend" --listen "127.0.0.1:$GRPC_PORT"
grpc_pid=$LAST_PID
for _ in $(seq 1 200); do
    port_in_use "$GRPC_PORT" && break
    kill -0 "$grpc_pid" 2>/dev/null || die "the gRPC bench backend exited (log: $WORK/grpc-backend.log)"
    sleep 0.05
done

sluice_root extra_config "{\"grpc\": {\"catalog\": [\"$ROOT/tests/integration/protos/bench.proto\"]}}"
sluice_endpoint "{\"endpoint\": \"/grpc/{id}\", \"backend\": [{\"host\": [\"http://127.0.0.1:$GRPC_PORT\"],
    \"url_pattern\": \"/bench.Users/GetUser\", \"extra_config\": {\"backend/grpc\": {}}}]}"
bench_case "(i) sluice json over gRPC" "$SLUICE_URL/grpc/123456"
