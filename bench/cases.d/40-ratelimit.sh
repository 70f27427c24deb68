# shellcheck shell=bash
# Rate limit cost (issue: security and traffic components): the json endpoint (d) again, behind
# an endpoint rate limit that never triggers (a global bucket and a per-IP bucket, both far
# above what wrk can send), beside the same endpoint without one. The difference in CPU µs/req
# between (k) and (k0) is what checking two token buckets costs per request; errors must stay 0
# (a 503 or 429 would mean the limit triggered and the case measures refusals instead).

sluice_endpoint '{"endpoint": "/json-unlimited",
    "backend": [{"url_pattern": "/data.json"}]}'
bench_case "(k0) sluice json, no rate limit" "$SLUICE_URL/json-unlimited"

sluice_endpoint '{"endpoint": "/json-ratelimit",
    "extra_config": {"qos/ratelimit/router": {
        "max_rate": 100000000, "capacity": 100000000,
        "client_max_rate": 100000000, "client_capacity": 100000000, "strategy": "ip"}},
    "backend": [{"url_pattern": "/data.json"}]}'
bench_case "(k) sluice json, rate limit never reached" "$SLUICE_URL/json-ratelimit"
