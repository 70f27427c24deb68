//! Which specs exercise something other than the proxy layer, decided per spec by reading the
//! endpoint it calls in the served config; and which namespaces the gateway must be told to
//! leave unenforced.

use serde_json::{Map, Value};

use super::spec::Input;
use super::url::Url;

/// The proxy layer's namespaces (the spec's section 2.1, with their long aliases), the client
/// plugins (section 1) and the components Sluice implements (JWT validation): what these specs
/// are run for.
const PROXY_LAYER: [&str; 11] = [
    "proxy",
    "backend/http",
    "backend/http/client",
    "router",
    "plugin/http-client",
    "github.com/devopsfaith/krakend/proxy",
    "github.com/devopsfaith/krakend/http",
    "github_com/luraproject/lura/router/gin",
    "github.com/devopsfaith/krakend/transport/http/client/executor",
    "auth/validator",
    "github.com/devopsfaith/krakend-jose/validator",
];

/// Namespaces beyond the proxy layer that Sluice implements as components (and their long
/// aliases): the specs of endpoints using them are run, and they are never left unenforced.
const IMPLEMENTED: [&str; 18] = [
    "auth/validator",
    "github.com/devopsfaith/krakend-jose/validator",
    "security/cors",
    "github_com/devopsfaith/krakend-cors",
    "validation/json-schema",
    "qos/circuit-breaker",
    "qos/http-cache",
    "github.com/devopsfaith/krakend-jsonschema",
    "github.com/devopsfaith/krakend-circuitbreaker/gobreaker",
    "github.com/devopsfaith/krakend-httpcache",
    "security/bot-detector",
    "github_com/devopsfaith/krakend-botdetector",
    "qos/ratelimit/router",
    "qos/ratelimit/router/redis",
    "qos/ratelimit/service",
    "qos/ratelimit/service/redis",
    "qos/ratelimit/proxy",
    "redis",
];

/// Families that are not the proxy layer and that Sluice refuses unless told to leave them
/// unenforced (`sluice run --allow-unenforced`).
const NOT_PROXY_LAYER: [&str; 5] = ["security/", "auth/", "validation/", "modifier/lua-", "qos/"];

fn extra_config(v: &Value) -> Option<&Map<String, Value>> {
    v.get("extra_config").and_then(Value::as_object)
}

fn endpoints(config: &Value) -> &[Value] {
    config
        .get("endpoints")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn backends(endpoint: &Value) -> &[Value] {
    endpoint
        .get("backend")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Every namespace of `config` (service, endpoints, backends) in the non-proxy families, sorted:
/// the `--allow-unenforced` arguments. Anything else Sluice refuses stays refused.
pub fn unenforced_namespaces(config: &Value) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut scan = |v: &Value| {
        for ns in extra_config(v).into_iter().flat_map(Map::keys) {
            if NOT_PROXY_LAYER.iter().any(|p| ns.starts_with(p))
                && !IMPLEMENTED.contains(&ns.as_str())
            {
                found.push(ns.clone());
            }
        }
    };
    scan(config);
    for e in endpoints(config) {
        scan(e);
        backends(e).iter().for_each(&mut scan);
    }
    found.sort();
    found.dedup();
    found
}

/// What a namespace does, for skip reasons.
fn component(ns: &str) -> &'static str {
    match ns {
        "auth/validator" => "JWT validation",
        "auth/signer" => "JWT signing",
        "validation/cel" => "CEL",
        "validation/json-schema" => "JSON-schema validation",
        "security/cors" => "CORS",
        "security/bot-detector" => "bot detector",
        _ if ns.starts_with("modifier/lua-") => "Lua",
        _ if ns.starts_with("qos/") => "QoS",
        _ if ns.starts_with("auth/") => "auth",
        _ if ns.starts_with("security/") => "security",
        _ => "not the proxy layer",
    }
}

/// The endpoint a request reaches: an exact route match, else one the router's case and
/// trailing-slash redirects lead to.
pub fn find_endpoint<'a>(config: &'a Value, method: &str, path: &str) -> Option<&'a Value> {
    let method = if method.is_empty() {
        "GET".to_owned()
    } else {
        method.to_ascii_uppercase()
    };
    let candidates = endpoints(config).iter().filter(|e| {
        e.get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .eq_ignore_ascii_case(&method)
    });
    let route = |e: &Value| {
        e.get("endpoint")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let mut loose = None;
    for e in candidates {
        let pattern = route(e);
        if route_matches(&pattern, path, false) {
            return Some(e);
        }
        if loose.is_none() && route_matches(&pattern, path, true) {
            loose = Some(e);
        }
    }
    loose
}

fn route_matches(pattern: &str, path: &str, loose: bool) -> bool {
    let (pattern, path) = if loose {
        (pattern.trim_end_matches('/'), path.trim_end_matches('/'))
    } else {
        (pattern, path)
    };
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    p.len() == s.len()
        && p.iter().zip(&s).all(|(p, s)| {
            if p.starts_with('{') && p.ends_with('}') {
                !s.is_empty()
            } else if loose {
                p.eq_ignore_ascii_case(s)
            } else {
                p == s
            }
        })
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The host part of a config `host` entry (`http://showrss.info/` -> `showrss.info`).
fn host_of(entry: &str) -> &str {
    let rest = entry.split_once("://").map_or(entry, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// Why the spec whose request is `input` cannot judge the proxy layer, if it cannot.
pub fn skip_reason(config: &Value, input: &Input) -> Option<String> {
    let url = match Url::parse(&input.url) {
        Ok(url) => url,
        Err(e) => return Some(format!("its URL cannot be sent: {e}")),
    };
    if !is_loopback_host(&url.host) {
        return Some(format!(
            "its request goes to {}, not to this machine",
            url.host
        ));
    }
    let endpoint = find_endpoint(config, &input.method, &url.path)?;
    let route = format!(
        "{} {}",
        endpoint
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase(),
        endpoint
            .get("endpoint")
            .and_then(Value::as_str)
            .unwrap_or("")
    );
    let default_hosts = config.get("host");
    for backend in backends(endpoint) {
        let hosts = backend.get("host").or(default_hosts);
        for h in hosts.and_then(Value::as_array).into_iter().flatten() {
            let h = h.as_str().unwrap_or("");
            if !is_loopback_host(host_of(h)) {
                return Some(format!("needs the internet: `{route}` calls {h}"));
            }
        }
    }
    let mut foreign: Vec<&str> = Vec::new();
    for v in std::iter::once(endpoint).chain(backends(endpoint)) {
        for ns in extra_config(v).into_iter().flat_map(Map::keys) {
            if !PROXY_LAYER.contains(&ns.as_str())
                && !IMPLEMENTED.contains(&ns.as_str())
                && !ns.starts_with("telemetry/")
            {
                foreign.push(ns);
            }
        }
    }
    foreign.sort_unstable();
    foreign.dedup();
    if foreign.is_empty() {
        return None;
    }
    let named: Vec<String> = foreign
        .iter()
        .map(|ns| format!("`{ns}` ({})", component(ns)))
        .collect();
    Some(format!("`{route}` uses {}", named.join(", ")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(method: &str, url: &str, header: &[(&str, &str)]) -> Input {
        Input {
            method: method.to_owned(),
            url: url.to_owned(),
            header: header
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: None,
        }
    }

    fn config() -> Value {
        json!({
            "extra_config": {"security/cors": {}, "security/bot-detector": {"deny": ["a"], "patterns": ["(bot)/.*"]}, "telemetry/logging": {}},
            "endpoints": [
                {"endpoint": "/static", "backend": [{"host": ["http://127.0.0.1:8080"]}],
                 "extra_config": {"proxy": {"static": {}}}},
                {"endpoint": "/cel/{id}", "backend": [{"host": ["http://127.0.0.1:8080"],
                  "extra_config": {"validation/cel": []}}],
                 "extra_config": {"auth/validator": {}}},
                {"endpoint": "/show/{id}", "backend": [{"host": ["http://showrss.info/"],
                  "extra_config": {"qos/http-cache": {}}}]},
                {"endpoint": "/p", "method": "POST", "backend": [{"host": ["http://localhost:8081"]}]},
                {"endpoint": "/jsonschema", "method": "POST",
                 "backend": [{"host": ["http://127.0.0.1:8080"],
                  "extra_config": {"qos/circuit-breaker": {}, "qos/http-cache": {}}}],
                 "extra_config": {"validation/json-schema": {"type": "number"}}}
            ]
        })
    }

    #[test]
    fn namespaces_to_leave_unenforced() {
        assert_eq!(unenforced_namespaces(&config()), ["validation/cel"]);
    }

    #[test]
    fn skips_by_the_endpoint_called() {
        let c = config();
        let skip = |m, u, h: &[(&str, &str)]| skip_reason(&c, &input(m, u, h));
        assert_eq!(skip("GET", "http://localhost:8080/static", &[]), None);
        assert_eq!(skip("GET", "http://localhost:8080/StAtic", &[]), None);
        assert_eq!(skip("", "http://localhost:8080/__health", &[]), None);
        assert_eq!(skip("POST", "http://localhost:8080/p", &[]), None);
        // Implemented components are run, not skipped.
        assert_eq!(skip("POST", "http://localhost:8080/jsonschema", &[]), None);
        assert_eq!(
            skip("GET", "http://localhost:8080/cel/1", &[]).as_deref(),
            Some("`GET /cel/{id}` uses `validation/cel` (CEL)")
        );
        assert!(
            skip("GET", "http://localhost:8080/show/1", &[])
                .is_some_and(|r| r.starts_with("needs the internet"))
        );
        // CORS and the bot detector are implemented: their requests are judged.
        assert_eq!(
            skip("GET", "http://localhost:8080/static", &[("origin", "x")]),
            None
        );
        assert_eq!(skip("OPTIONS", "http://localhost:8080/static", &[]), None);
        assert_eq!(
            skip(
                "GET",
                "http://localhost:8080/static",
                &[("User-Agent", "a")]
            ),
            None
        );
        assert!(skip("GET", "http://example.com/static", &[]).is_some());
    }
}
