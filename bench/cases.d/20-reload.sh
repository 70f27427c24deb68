# shellcheck shell=bash
# Hot reload under load (operations issue): the json endpoint (d) again while the Sluice under
# test is sent SIGHUP every half second. Each reload rebuilds the whole gateway (config, plugins,
# pipelines) on the same core, so the dip in requests/s and the CPU per request beside (d) are
# the cost of reloading; wrk's error count shows whether any request failed.

reload_every_half_second() {
    local i
    # Bounded: twice per second of the measurement, and only while Sluice is alive.
    for ((i = 0; i < DURATION * 2; i++)); do
        kill -HUP "$SLUICE_PID" 2>/dev/null || return 0
        sleep 0.5
    done
}

bench_case "(d~) sluice json, SIGHUP every 0.5 s" "$SLUICE_URL/json"
bench_during "(d~) sluice json, SIGHUP every 0.5 s" reload_every_half_second
