//! `security/cors` as KrakenD CE applies it: rs/cors (v1.11) around the whole router, with
//! krakend-cors' defaults (every origin and every header when none is listed, GET, POST and
//! HEAD when no method is). A preflight (`OPTIONS` with `Access-Control-Request-Method`) is
//! answered before routing with `options_success_status` (204), or passed on with
//! `options_passthrough`; every other answer gets `Vary: Origin` and, for an allowed origin and
//! method, `Access-Control-Allow-Origin`, `-Expose-Headers` and `-Allow-Credentials`. A refused
//! preflight is still answered, without the allow headers: the browser refuses it.

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use serde_json::Value;
use sluice_config::read::{Reader, key_path};
use sluice_config::{Component, Config, Diagnostic, Level, LoadOptions};
use sluice_stage::{
    EarlyAnswer, RequestHead, ResponseContext, SharedStage, Stage, StageFactory, StageFuture,
    decided,
};

/// The namespace.
pub const NAMESPACE: &str = "security/cors";
/// Its long alias, still read by KrakenD.
pub const ALIAS: &str = "github_com/devopsfaith/krakend-cors";

const ALLOW_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-allow-private-network");
const REQUEST_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-request-private-network");

/// The methods KrakenD's schema lists (rs/cors compares them as written, so another spelling
/// would never match: refused).
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The `security/cors` component.
#[derive(Debug, Default)]
pub struct Cors;

impl StageFactory for Cors {
    fn components(&self) -> Vec<Component> {
        [NAMESPACE, ALIAS]
            .into_iter()
            .map(|namespace| Component {
                namespace: namespace.to_owned(),
                levels: vec![Level::Service],
            })
            .collect()
    }

    fn service_stages(&self, config: &Config) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        let found: Vec<&str> = [NAMESPACE, ALIAS]
            .into_iter()
            .filter(|ns| config.extra_config.get(*ns).is_some_and(|v| !v.is_null()))
            .collect();
        let namespace = match found[..] {
            [] => return Ok(Vec::new()),
            [one] => one,
            _ => {
                return Err(vec![Diagnostic::new(
                    &config.source,
                    "extra_config",
                    format!(
                        "\"{NAMESPACE}\" and \"{ALIAS}\" are two spellings of the same namespace; keep one"
                    ),
                )]);
            }
        };
        let Some(value) = config.extra_config.get(namespace) else {
            return Ok(Vec::new());
        };
        let options = LoadOptions::default();
        let mut r = Reader::new(&config.source, &options);
        let policy = read(&mut r, value, key_path("extra_config", namespace));
        let errors = r.into_errors();
        match policy {
            Some(policy) if errors.is_empty() => Ok(vec![Arc::new(policy)]),
            _ => Err(errors),
        }
    }
}

/// The policy, compiled once.
#[derive(Debug)]
pub struct CorsStage {
    origins_all: bool,
    /// Lower-cased.
    origins: Vec<String>,
    /// `prefix*suffix`, lower-cased (split at the first `*`, as rs/cors).
    wildcards: Vec<(String, String)>,
    headers_all: bool,
    /// Lower-cased, sorted, each once: a request's header list must be a strictly increasing
    /// sequence of these (the Fetch standard sends them sorted and lower-cased).
    headers: Vec<String>,
    longest_header: usize,
    methods: Vec<String>,
    expose: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    credentials: bool,
    private_network: bool,
    passthrough: bool,
    success: StatusCode,
    preflight_vary: HeaderValue,
    debug: bool,
}

fn read(r: &mut Reader<'_>, value: &Value, path: String) -> Option<CorsStage> {
    let o = r.as_object(value, path)?;
    r.known_keys(
        &o,
        &[
            "allow_origins",
            "allow_methods",
            "allow_headers",
            "expose_headers",
            "max_age",
            "allow_credentials",
            "allow_private_network",
            "options_passthrough",
            "options_success_status",
            "debug",
        ],
    );
    let origins = r.strings(&o, "allow_origins").unwrap_or_default();
    let methods = r.strings(&o, "allow_methods").unwrap_or_default();
    for (i, method) in methods.iter().enumerate() {
        if !METHODS.contains(&method.as_str()) {
            r.error(
                format!("{}[{i}]", o.path_of("allow_methods")),
                format!(
                    "expected one of {} (as written: methods are compared exactly), found {method:?}",
                    METHODS.join(", ")
                ),
            );
        }
    }
    let headers = r.strings(&o, "allow_headers").unwrap_or_default();
    let expose = r.strings(&o, "expose_headers").unwrap_or_default();
    let max_age: Duration = r.duration(&o, "max_age");
    let credentials = r.bool(&o, "allow_credentials");
    let private_network = r.bool(&o, "allow_private_network");
    let passthrough = r.bool(&o, "options_passthrough");
    let debug = r.bool(&o, "debug");
    let success = match r.uint::<u16>(&o, "options_success_status", "an HTTP status code") {
        None | Some(0) => Some(StatusCode::NO_CONTENT),
        Some(code) => match StatusCode::from_u16(code) {
            Ok(status) if code >= 200 => Some(status),
            _ => {
                r.error(
                    o.path_of("options_success_status"),
                    format!("expected an HTTP status code from 200 to 999, found {code}"),
                );
                None
            }
        },
    };

    // krakend-cors' defaults, then rs/cors'.
    let mut stage = CorsStage {
        origins_all: origins.is_empty(),
        origins: Vec::new(),
        wildcards: Vec::new(),
        headers_all: headers.is_empty() || headers.iter().any(|h| h == "*"),
        headers: Vec::new(),
        longest_header: 0,
        methods: if methods.is_empty() {
            vec!["GET".to_owned(), "POST".to_owned(), "HEAD".to_owned()]
        } else {
            methods
        },
        expose: None,
        max_age: None,
        credentials,
        private_network,
        passthrough,
        success: success?,
        preflight_vary: HeaderValue::from_static(if private_network {
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network"
        } else {
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        }),
        debug,
    };
    for origin in origins {
        let origin = origin.to_lowercase();
        if origin == "*" {
            stage.origins_all = true;
            stage.origins.clear();
            stage.wildcards.clear();
            break;
        }
        match origin.split_once('*') {
            Some((prefix, suffix)) => stage.wildcards.push((prefix.to_owned(), suffix.to_owned())),
            None => stage.origins.push(origin),
        }
    }
    if !stage.headers_all {
        let mut names: Vec<String> = headers.iter().map(|h| h.to_lowercase()).collect();
        names.sort();
        names.dedup();
        stage.longest_header = names.iter().map(String::len).max().unwrap_or_default();
        stage.headers = names;
    }
    if !expose.is_empty() {
        let joined = expose
            .iter()
            .map(|h| canonical(h))
            .collect::<Vec<_>>()
            .join(", ");
        match HeaderValue::from_str(&joined) {
            Ok(value) => stage.expose = Some(value),
            Err(_) => r.error(
                o.path_of("expose_headers"),
                "expected header names".to_owned(),
            ),
        }
    }
    // Whole seconds; none sent for zero (rs/cors).
    if max_age.as_secs() > 0 {
        stage.max_age = Some(HeaderValue::from(max_age.as_secs()));
    }
    Some(stage)
}

/// Go's `CanonicalHeaderKey` (`content-length` is `Content-Length`); a name with a character
/// a header name cannot hold is left as it is.
fn canonical(name: &str) -> String {
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return name.to_owned();
    }
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// The first value of `name`, as Go's `Header.Get` (empty when absent).
fn first<'h>(headers: &'h HeaderMap, name: &HeaderName) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    *method == Method::OPTIONS && !first(headers, &header::ACCESS_CONTROL_REQUEST_METHOD).is_empty()
}

/// Up to one space or tab off each end (rs/cors tolerates no more).
fn trim_ows(s: &str) -> Option<&str> {
    let ows = |c: char| c == ' ' || c == '\t';
    let start = s.len() - s.trim_start_matches(ows).len();
    let end = s.len() - s.trim_end_matches(ows).len();
    (start <= 1 && end <= 1).then(|| s.trim_matches(ows))
}

impl CorsStage {
    fn origin_allowed(&self, origin: &str) -> bool {
        if self.origins_all {
            return true;
        }
        let origin = origin.to_lowercase();
        self.origins.contains(&origin)
            || self.wildcards.iter().any(|(prefix, suffix)| {
                origin.len() >= prefix.len() + suffix.len()
                    && origin.starts_with(prefix.as_str())
                    && origin.ends_with(suffix.as_str())
            })
    }

    fn method_allowed(&self, method: &str) -> bool {
        if self.methods.is_empty() {
            return false;
        }
        method == "OPTIONS" || self.methods.iter().any(|m| m == method)
    }

    /// rs/cors' `SortedSet.Accepts`: every listed name allowed, sorted, once.
    fn headers_allowed<'h>(&self, values: impl Iterator<Item = &'h str>) -> bool {
        let mut last: Option<usize> = None;
        let mut empty = 0;
        for value in values {
            for name in value.split(',') {
                // A name longer than any allowed one cannot be allowed (rs/cors reads only that
                // many bytes of it).
                if name.len() > self.longest_header + 3 {
                    return false;
                }
                let Some(name) = trim_ows(name) else {
                    return false;
                };
                if name.is_empty() {
                    empty += 1;
                    if empty > 16 {
                        return false;
                    }
                    continue;
                }
                let Ok(position) = self.headers.binary_search_by(|h| h.as_str().cmp(name)) else {
                    return false;
                };
                if last.is_some_and(|l| position <= l) {
                    return false;
                }
                last = Some(position);
            }
        }
        true
    }

    fn log(&self, what: &str) {
        if self.debug {
            tracing::debug!(target: "sluice::cors", "{what}");
        }
    }

    fn preflight(&self, request: &HeaderMap, response: &mut HeaderMap) {
        response.append(header::VARY, self.preflight_vary.clone());
        let origin = first(request, &header::ORIGIN);
        if origin.is_empty() {
            return self.log("preflight aborted: empty origin");
        }
        if !self.origin_allowed(origin) {
            return self.log(&format!("preflight aborted: origin {origin:?} not allowed"));
        }
        let method = first(request, &header::ACCESS_CONTROL_REQUEST_METHOD);
        if !self.method_allowed(method) {
            return self.log(&format!("preflight aborted: method {method:?} not allowed"));
        }
        let asked: Vec<&HeaderValue> = request
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .collect();
        if !asked.is_empty()
            && !self.headers_all
            && !self.headers_allowed(asked.iter().map(|v| v.to_str().unwrap_or("\u{0}")))
        {
            return self.log(&format!("preflight aborted: headers {asked:?} not allowed"));
        }
        self.allow_origin(request, response);
        for method in request.get_all(header::ACCESS_CONTROL_REQUEST_METHOD) {
            response.append(header::ACCESS_CONTROL_ALLOW_METHODS, method.clone());
        }
        if asked.first().is_some_and(|v| !v.is_empty()) {
            response.remove(header::ACCESS_CONTROL_ALLOW_HEADERS);
            for value in asked {
                response.append(header::ACCESS_CONTROL_ALLOW_HEADERS, value.clone());
            }
        }
        if self.credentials {
            response.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if self.private_network && first(request, &REQUEST_PRIVATE_NETWORK) == "true" {
            response.insert(ALLOW_PRIVATE_NETWORK, HeaderValue::from_static("true"));
        }
        if let Some(max_age) = &self.max_age {
            response.insert(header::ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
    }

    fn actual(&self, method: &Method, request: &HeaderMap, response: &mut HeaderMap) {
        response.append(header::VARY, HeaderValue::from_static("Origin"));
        let origin = first(request, &header::ORIGIN);
        if origin.is_empty() {
            return;
        }
        if !self.origin_allowed(origin) {
            return self.log(&format!("no CORS headers: origin {origin:?} not allowed"));
        }
        if !self.method_allowed(method.as_str()) {
            return self.log(&format!("no CORS headers: method {method} not allowed"));
        }
        self.allow_origin(request, response);
        if let Some(expose) = &self.expose {
            response.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
        if self.credentials {
            response.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    fn allow_origin(&self, request: &HeaderMap, response: &mut HeaderMap) {
        response.remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
        if self.origins_all {
            response.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        } else {
            for origin in request.get_all(header::ORIGIN) {
                response.append(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            }
        }
    }
}

impl Stage for CorsStage {
    fn name(&self) -> &'static str {
        NAMESPACE
    }

    fn on_request<'a>(&'a self, head: &'a mut RequestHead<'_>) -> StageFuture<'a> {
        // The preflight's headers are added by `on_response`, whoever answers it.
        decided(
            if is_preflight(head.method, head.headers) && !self.passthrough {
                Err(EarlyAnswer::empty(self.success))
            } else {
                Ok(())
            },
        )
    }

    fn on_response(&self, request: &ResponseContext<'_>, response: &mut http::response::Parts) {
        if is_preflight(request.method, request.request_headers) {
            self.preflight(request.request_headers, &mut response.headers);
        } else {
            self.actual(
                request.method,
                request.request_headers,
                &mut response.headers,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(config: Value) -> CorsStage {
        let options = LoadOptions::default();
        let file = std::path::PathBuf::from("t.json");
        let mut r = Reader::new(&file, &options);
        let stage = read(&mut r, &config, "extra_config".to_owned());
        assert!(r.into_errors().is_empty());
        stage.expect("a policy")
    }

    #[test]
    fn origins_and_wildcards_as_rs_cors() {
        let s = stage(
            serde_json::json!({"allow_origins": ["https://A.example", "https://*.b.example", "http://x*"]}),
        );
        assert!(s.origin_allowed("https://a.example"));
        assert!(s.origin_allowed("https://api.b.example"));
        assert!(!s.origin_allowed("https://b.example"));
        assert!(s.origin_allowed("http://x"));
        assert!(!s.origin_allowed("https://c.example"));
        assert!(stage(serde_json::json!({})).origin_allowed("http://any"));
    }

    #[test]
    fn request_headers_sorted_lower_case_once() {
        let s = stage(
            serde_json::json!({"allow_headers": ["Origin", "Content-Type", "Authorization"]}),
        );
        let ok = |v: &str| s.headers_allowed(std::iter::once(v));
        assert!(ok("content-type,origin"));
        assert!(ok("authorization, content-type"));
        assert!(!ok("origin,content-type"), "not sorted");
        assert!(!ok("content-type,content-type"));
        assert!(!ok("X-PINGOTHER"));
        assert!(!ok("Content-Type"), "browsers send lower case");
        assert!(!ok("content-type,  origin"), "two spaces");
        assert_eq!(canonical("content-length"), "Content-Length");
        assert_eq!(canonical("x-my-HEADER"), "X-My-Header");
    }
}
