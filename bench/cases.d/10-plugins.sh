# shellcheck shell=bash
# Plugin cases (issue: HTTP client plugins): the json endpoint (d) again, with its backend
# behind a pass-through client plugin of each kind. Sourced by run.sh after the core cases.

plugins_dist="$ROOT/plugins/dist"
if [[ ! -f $plugins_dist/header-rewrite.wasm || ! -f $plugins_dist/wasi-passthrough.wasm ]]; then
    log "building the example plugins (plugins/build.sh)"
    "$ROOT/plugins/build.sh" >&2
fi
mkdir -p "$WORK/plugins"
cp "$plugins_dist"/{header-rewrite,client-example,wasi-passthrough}.wasm "$WORK/plugins/"
sluice_root plugin "{\"folder\": \"$WORK/plugins\", \"pattern\": \".wasm\"}"
sluice_env "SLUICE_CACHE_DIR=$WORK/wasm-cache"

# (f) the Sluice world, hooks mode (on-request only): the host makes the backend call, so no
# instance is held while waiting.
sluice_endpoint '{"endpoint": "/plugin-wasm", "backend": [{"url_pattern": "/data.json",
    "extra_config": {"plugin/http-client": {"name": "header-rewrite", "header-rewrite": {}}}}]}'
bench_case "(f) wasm sluice-world hooks" "$SLUICE_URL/plugin-wasm"

# (f') the Sluice world, handle mode: the plugin calls `send` and holds an instance per request.
sluice_endpoint '{"endpoint": "/plugin-wasm-handle", "backend": [{"url_pattern": "/data.json",
    "extra_config": {"plugin/http-client": {"name": "client-example", "max_instances": 64,
        "client-example": {"path": "/never"}}}}]}'
bench_case "(f') wasm sluice-world handle" "$SLUICE_URL/plugin-wasm-handle"

# (g) the compiled-in twin.
sluice_endpoint '{"endpoint": "/plugin-native", "backend": [{"url_pattern": "/data.json",
    "extra_config": {"plugin/http-client": {"name": "native/client-example",
        "native/client-example": {"path": "/never"}}}}]}'
bench_case "(g) native plugin" "$SLUICE_URL/plugin-native"

# (h) a standard wasi:http/proxy component (no Sluice SDK).
sluice_endpoint '{"endpoint": "/plugin-wasi", "backend": [{"url_pattern": "/data.json",
    "extra_config": {"plugin/http-client": {"name": "wasi-passthrough", "max_instances": 64}}}]}'
bench_case "(h) wasm wasi:http" "$SLUICE_URL/plugin-wasi"
