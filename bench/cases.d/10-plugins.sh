# shellcheck shell=bash
# Plugin cases (issue: HTTP client plugins): the json endpoint (d) again, with its backend
# behind a pass-through client plugin of each kind. Sourced by run.sh after the core cases.

plugins_dist="$ROOT/plugins/dist"
if [[ ! -f $plugins_dist/header-rewrite.wasm || ! -f $plugins_dist/wasi-lean-passthrough.wasm ]]; then
    log "building the example plugins (plugins/build.sh)"
    "$ROOT/plugins/build.sh" >&2
fi
mkdir -p "$WORK/plugins"
cp "$plugins_dist"/{header-rewrite,client-example,message-edits,wasi-passthrough,wasi-lean-passthrough}.wasm "$WORK/plugins/"
sluice_root plugin "{\"folder\": \"$WORK/plugins\", \"pattern\": \".wasm\"}"
sluice_env "SLUICE_CACHE_DIR=$WORK/wasm-cache"

# (f) the Sluice world, hooks mode (on-request only): the host makes the backend call, so no
# instance is held while waiting.
sluice_endpoint '{"endpoint": "/plugin-wasm", "backend": [{"url_pattern": "/data.json",
    "extra_config": {"plugin/http-client": {"name": "header-rewrite", "header-rewrite": {}}}}]}'
bench_case "(f) wasm sluice-world hooks" "$SLUICE_URL/plugin-wasm"

# (f') the Sluice world, handle mode: KrakenD's client-example, which reads the request's URL
# and answers it itself or passes it on (`Answer::Forward`: the host sends it once `handle` has
# returned, so no instance waits on the backend).
sluice_endpoint '{"endpoint": "/plugin-wasm-handle", "backend": [{"url_pattern": "/data.json",
    "extra_config": {"plugin/http-client": {"name": "client-example", "max_instances": 64,
        "client-example": {"path": "/never"}}}}]}'
bench_case "(f') wasm sluice-world handle" "$SLUICE_URL/plugin-wasm-handle"

# (f'-held) handle mode holding its instance while the backend answers: `forward()` in the
# plugin, the answer it hands back passed on (what a plugin that reads or changes the answer
# does; message-edits with no ops).
sluice_endpoint '{"endpoint": "/plugin-wasm-held", "backend": [{"url_pattern": "/data.json",
    "extra_config": {"plugin/http-client": {"name": "message-edits", "max_instances": 64,
        "message-edits": {"handle": true}}}}]}'
bench_case "(f'-held) wasm sluice-world handle, forward held" "$SLUICE_URL/plugin-wasm-held"

# (g) the compiled-in twin.
sluice_endpoint '{"endpoint": "/plugin-native", "backend": [{"url_pattern": "/data.json",
    "extra_config": {"plugin/http-client": {"name": "native/client-example",
        "native/client-example": {"path": "/never"}}}}]}'
bench_case "(g) native plugin" "$SLUICE_URL/plugin-native"

# (h) a standard wasi:http/proxy component (no Sluice SDK).
sluice_endpoint '{"endpoint": "/plugin-wasi", "backend": [{"url_pattern": "/data.json",
    "extra_config": {"plugin/http-client": {"name": "wasi-passthrough", "max_instances": 64}}}]}'
bench_case "(h) wasm wasi:http" "$SLUICE_URL/plugin-wasi"

# (h-lean) the same pass-through on the raw wasi:http bindings: headers copied and bodies
# spliced host-side, about two thirds of the host calls of (h)'s wstd guest.
sluice_endpoint '{"endpoint": "/plugin-wasi-lean", "backend": [{"url_pattern": "/data.json",
    "extra_config": {"plugin/http-client": {"name": "wasi-lean-passthrough", "max_instances": 64}}}]}'
bench_case "(h-lean) wasm wasi:http, raw bindings" "$SLUICE_URL/plugin-wasi-lean"

# (f-py), (f-js) the hooks-mode pass-through of (f) written in Python and JavaScript on their
# SDKs (plugins/sdk-python, plugins/sdk-js). Built when missing; skipped, with a line saying
# so, when the toolchain is not there (python3 with pip; node 20+ with npm).
for lang in py:sdk-python js:sdk-js; do
    plugin="${lang%%:*}-header-rewrite"
    if [[ ! -f $plugins_dist/$plugin.wasm ]]; then
        log "building $plugin (plugins/${lang#*:}/build.sh)"
        bash "$ROOT/plugins/${lang#*:}/build.sh" >&2 || true
    fi
    if [[ ! -f $plugins_dist/$plugin.wasm ]]; then
        log "skipping (f-${lang%%:*}): no $plugins_dist/$plugin.wasm"
        continue
    fi
    cp "$plugins_dist/$plugin.wasm" "$WORK/plugins/"
    sluice_endpoint "{\"endpoint\": \"/plugin-$plugin\", \"backend\": [{\"url_pattern\": \"/data.json\",
        \"extra_config\": {\"plugin/http-client\": {\"name\": \"$plugin\", \"$plugin\": {}}}}]}"
    bench_case "(f-${lang%%:*}) wasm sluice-world hooks, ${lang%%:*}" "$SLUICE_URL/plugin-$plugin"
done
