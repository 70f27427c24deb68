# shellcheck shell=bash
# Telemetry cases (issue: operations): the json endpoint (d) again, each served by a Sluice of
# its own whose config adds `telemetry/opentelemetry` (telemetry is service-wide):
#   (d-m) metrics on (a Prometheus endpoint; every krakend-otel layer) and traces sampled at 0
#         (ids still made and `traceparent` sent to the backend);
#   (d-t) the same with every request traced: 4 spans per request, sent over OTLP HTTP/protobuf
#         to the backend nginx, which answers 200 to /v1/traces.
# Targets: CPU µs/req at most 5% (d-m) and 15% (d-t) above (d).
# Ports: Sluice on PORT_BASE+5 and +6, their Prometheus endpoints on +7 and +8.

telemetry_case() { # NAME PORT PROMETHEUS_PORT SAMPLE_RATE
    local name=$1 port=$2 metrics_port=$3 rate=$4 config
    config="$WORK/sluice-$name.json"
    cat >"$config" <<JSON
{"version": 3, "name": "sluice telemetry benchmark", "port": $port, "listen_ip": "127.0.0.1",
 "timeout": "3s", "host": ["$BACKEND_URL"],
 "extra_config": {"telemetry/opentelemetry": {
     "service_name": "sluice-bench", "trace_sample_rate": $rate, "metric_reporting_period": 30,
     "exporters": {
         "prometheus": [{"name": "prom", "port": $metrics_port, "listen_ip": "127.0.0.1"}],
         "otlp": [{"name": "sink", "host": "127.0.0.1", "port": $BACKEND_PORT, "use_http": true,
                   "disable_metrics": true}]}}},
 "endpoints": [{"endpoint": "/json", "backend": [{"url_pattern": "/data.json"}]}]}
JSON
    ! port_in_use "$port" || die "port $port on 127.0.0.1 is taken (set BENCH_PORT_BASE)"
    start_process "sluice-$name" "$TARGET_CPU" env -u RUST_LOG "$sluice" run -c "$config" --log warn
    wait_ready "sluice-$name" "http://127.0.0.1:$port/__health" "$LAST_PID"
}

telemetry_case metrics "$((PORT_BASE + 5))" "$((PORT_BASE + 7))" 0
bench_case "(d-m) sluice json, metrics, traces sampled at 0" "http://127.0.0.1:$((PORT_BASE + 5))/json"
telemetry_case traced "$((PORT_BASE + 6))" "$((PORT_BASE + 8))" 1
bench_case "(d-t) sluice json, every request traced" "http://127.0.0.1:$((PORT_BASE + 6))/json"
