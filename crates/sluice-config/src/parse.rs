//! From JSON text to a [`Config`], every default applied, every problem listed.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Method;
use serde_json::Value;

use crate::diagnostics::Diagnostics;
use crate::extra::{self, Level, Namespace};
use crate::host::sanitize_host;
use crate::model::{
    Backend, Config, Encoding, Endpoint, LoadOptions, OutputEncoding, PluginFolder, ServerOptions,
    TransportOptions,
};
use crate::params::{endpoint_params, is_implicit_placeholder, route_shape, url_placeholders};
use crate::read::{Obj, Reader, index_path, quote};

/// The config version this gateway reads.
const VERSION: u64 = 3;
const DEFAULT_PORT: u16 = 8080;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_INPUT_HEADER: &str = "Content-Type";

const ENDPOINT_METHODS: &[(&str, Method)] = &[
    ("GET", Method::GET),
    ("POST", Method::POST),
    ("PUT", Method::PUT),
    ("PATCH", Method::PATCH),
    ("DELETE", Method::DELETE),
];

const OUTPUT_ENCODINGS: &[(&str, OutputEncoding)] = &[
    ("json", OutputEncoding::Json),
    // KrakenD EE's faster JSON renderer: the same output.
    ("fast-json", OutputEncoding::Json),
    ("json-collection", OutputEncoding::JsonCollection),
    ("string", OutputEncoding::String),
    ("no-op", OutputEncoding::NoOp),
    ("negotiate", OutputEncoding::Negotiate),
    ("xml", OutputEncoding::Xml),
    ("yaml", OutputEncoding::Yaml),
];

const ENCODINGS: &[(&str, Encoding)] = &[
    ("json", Encoding::Json),
    // KrakenD EE's faster JSON decoder: the same data.
    ("fast-json", Encoding::Json),
    ("safejson", Encoding::SafeJson),
    ("string", Encoding::String),
    ("no-op", Encoding::NoOp),
    ("xml", Encoding::Xml),
    ("rss", Encoding::Rss),
];

/// Reads and parses the config file at `path`. A file that cannot be read is a diagnostic too.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    load_with(path, &LoadOptions::default())
}

/// [`load`] with options (the namespaces the operator chose to serve unenforced, the
/// environment the overrides and the flexible configuration are read from).
pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Config, Diagnostics> {
    crate::load::load(path, options)
}

/// Parses the text of a config in the format its file name says (JSON unless it ends in
/// `.yaml`, `.yml` or `.toml`); `source` names the file in messages and is the folder relative
/// plugin folders are resolved against. The environment overrides of `options` apply; the
/// flexible configuration, which reads files, only applies to [`load_with`].
pub fn parse_str(text: &str, source: &Path) -> Result<Config, Diagnostics> {
    parse_str_with(text, source, &LoadOptions::default())
}

/// [`parse_str`] with options.
pub fn parse_str_with(
    text: &str,
    source: &Path,
    options: &LoadOptions,
) -> Result<Config, Diagnostics> {
    crate::load::parse_text(text, source, options)
}

/// Builds the config from an already parsed JSON tree (what a YAML or TOML front end produces).
pub fn from_value(root: &Value, source: &Path) -> Result<Config, Diagnostics> {
    from_value_with(root, source, &LoadOptions::default())
}

/// [`from_value`] with options.
pub fn from_value_with(
    root: &Value,
    source: &Path,
    options: &LoadOptions,
) -> Result<Config, Diagnostics> {
    let mut r = Reader::new(source, options);
    let config = service(&mut r, root, source);
    match config {
        Some(config) if r.errors.is_empty() => Ok(Config {
            unknown_namespaces: r.unknown_namespaces,
            digest: digest(root),
            ..config
        }),
        _ => Err(Diagnostics { errors: r.errors }),
    }
}

/// The first 16 hex digits of the SHA-256 of the config as read (JSON, keys sorted): the same
/// for the same settings whatever the file's format, spacing or comments' places.
fn digest(root: &Value) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(serde_json::to_vec(root).unwrap_or_default());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// `path` with a leading `/` (KrakenD's `CleanPath`).
pub(crate) fn with_leading_slash(path: &str) -> String {
    format!("/{}", path.strip_prefix('/').unwrap_or(path))
}

/// `value`, or `default` when it is zero: KrakenD's (and Go's) "0 means the default".
fn or_default<T: PartialEq + Default>(value: T, default: T) -> T {
    if value == T::default() {
        default
    } else {
        value
    }
}

/// What endpoints inherit from the service.
#[derive(Debug)]
struct ServiceDefaults<'a> {
    timeout: Duration,
    cache_ttl: Duration,
    output_encoding: OutputEncoding,
    host: &'a [String],
    /// Whether the service wrote a `host` at all (an invalid one is reported on its own).
    host_written: bool,
    disable_rest: bool,
}

fn service(r: &mut Reader<'_>, root: &Value, source: &Path) -> Option<Config> {
    let Value::Object(map) = root else {
        r.type_error("", "a JSON object at the top level", root);
        return None;
    };
    let svc = Obj {
        map,
        path: String::new(),
    };

    check_version(r, &svc);
    let name = r.string(&svc, "name").unwrap_or_default();
    let port = r
        .uint::<u16>(&svc, "port", "a port number from 0 to 65535")
        .unwrap_or(0);
    let listen_ip = listen_ip(r, &svc);
    let timeout = or_default(r.duration(&svc, "timeout"), DEFAULT_TIMEOUT);
    let cache_ttl = r.duration(&svc, "cache_ttl");
    let host = hosts(r, &svc, Some("")).unwrap_or_default();
    let output_encoding = r
        .choice(&svc, "output_encoding", OUTPUT_ENCODINGS)
        .unwrap_or(OutputEncoding::Json);
    let plugin = plugin_folder(r, &svc, source);
    let debug_endpoint = r.bool(&svc, "debug_endpoint");
    let echo_endpoint = r.bool(&svc, "echo_endpoint");
    let disable_rest = r.bool(&svc, "disable_rest");
    let server = server_options(r, &svc);
    let transport = transport_options(r, &svc);
    let tls = crate::tls::server_tls(r, &svc);
    let client_tls = crate::tls::service_client_tls(r, &svc);
    let extra = extra::read_extra(r, &svc, Level::Service);
    let router = extra::router_options(r, extra.block(Namespace::Router));
    let sluice_server = extra::sluice_server_options(r, extra.block(Namespace::SluiceServer));
    let opentelemetry =
        crate::telemetry::opentelemetry(r, extra.block(Namespace::OpenTelemetry), &name);
    let logging = crate::telemetry::logging(r, extra.block(Namespace::Logging));
    let grpc = extra::grpc_catalog(r, extra.block(Namespace::Grpc), source);

    let defaults = ServiceDefaults {
        timeout,
        cache_ttl,
        output_encoding,
        host: &host,
        host_written: svc.get("host").is_some(),
        disable_rest,
    };
    let endpoints = endpoints(r, &svc, &defaults);

    Some(Config {
        source: source.to_path_buf(),
        name,
        port: or_default(port, DEFAULT_PORT),
        listen_ip,
        timeout,
        cache_ttl,
        host,
        output_encoding,
        plugin,
        debug_endpoint,
        echo_endpoint,
        disable_rest,
        server,
        transport,
        tls,
        client_tls,
        router,
        sluice_server,
        opentelemetry,
        logging,
        grpc,
        extra_config: extra.map,
        endpoints,
        unknown_namespaces: Vec::new(),
        env_overrides: Vec::new(),
        digest: String::new(),
    })
}

fn check_version(r: &mut Reader<'_>, svc: &Obj<'_>) {
    let path = svc.path_of("version");
    match svc.get("version") {
        None => r.error(path, format!("missing (want: {VERSION})")),
        Some(Value::Number(n)) if n.as_u64() == Some(VERSION) => {}
        Some(Value::Number(n)) => {
            r.error(path, format!("unsupported version: {n} (want: {VERSION})"));
        }
        Some(other) => r.type_error(path, &format!("the number {VERSION}"), other),
    }
}

fn listen_ip(r: &mut Reader<'_>, svc: &Obj<'_>) -> Option<IpAddr> {
    let ip = r.string(svc, "listen_ip").filter(|ip| !ip.is_empty())?;
    match ip.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            r.error(
                svc.path_of("listen_ip"),
                format!("expected an IP address, found {}", quote(&ip)),
            );
            None
        }
    }
}

/// `host`, `None` when absent or empty. Sanitised when `sanitize` is given: the hint it holds is
/// added to the message of each invalid host.
fn hosts(r: &mut Reader<'_>, parent: &Obj<'_>, sanitize: Option<&str>) -> Option<Vec<String>> {
    let hosts = r.strings(parent, "host").filter(|h| !h.is_empty())?;
    let Some(hint) = sanitize else {
        return Some(hosts);
    };
    let path = parent.path_of("host");
    let mut clean = Vec::with_capacity(hosts.len());
    for (i, host) in hosts.iter().enumerate() {
        match sanitize_host(host) {
            Ok(host) => clean.push(host),
            Err(message) => r.error(index_path(&path, i), format!("{message}{hint}")),
        }
    }
    Some(clean)
}

fn plugin_folder(r: &mut Reader<'_>, svc: &Obj<'_>, source: &Path) -> Option<PluginFolder> {
    let plugin = r.object(svc, "plugin")?;
    r.known_keys(&plugin, &["folder", "pattern", "sha256"]);
    let folder = r.string(&plugin, "folder");
    let pattern = r.string(&plugin, "pattern").unwrap_or_default();
    let mut sha256 = std::collections::BTreeMap::new();
    if let Some(pins) = r.object(&plugin, "sha256") {
        for (name, pin) in pins.map {
            let path = pins.path_of(name);
            match pin.as_str() {
                Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    sha256.insert(name.clone(), hex.to_ascii_lowercase());
                }
                _ => {
                    let found = match pin.as_str() {
                        Some(text) => format!("{text:?} ({} characters)", text.chars().count()),
                        None => crate::read::kind(pin).to_owned(),
                    };
                    r.error(
                        path,
                        format!(
                            "expected the SHA-256 of the plugin's file, 64 hex digits (as `sluice plugin hash FILE` prints it), found {found}"
                        ),
                    );
                }
            }
        }
    }
    let folder = match folder {
        Some(folder) if !folder.is_empty() => PathBuf::from(folder),
        Some(_) => {
            r.error(
                plugin.path_of("folder"),
                "expected the folder plugins are loaded from, found an empty string",
            );
            return None;
        }
        None => {
            if plugin.get("folder").is_none() {
                r.error(
                    plugin.path_of("folder"),
                    "missing: expected the folder plugins are loaded from",
                );
            }
            return None;
        }
    };
    let folder = match source.parent() {
        Some(dir) if folder.is_relative() => dir.join(folder),
        _ => folder,
    };
    Some(PluginFolder {
        folder,
        pattern,
        sha256,
    })
}

/// Options Sluice reads but cannot honour yet: refusing them beats silently doing without.
fn unsupported_service_options(r: &mut Reader<'_>, svc: &Obj<'_>) {
    if svc
        .get("async_agent")
        .is_some_and(|a| a.as_array().is_none_or(|a| !a.is_empty()))
    {
        r.error(
            svc.path_of("async_agent"),
            "async agents (consumers of message queues) are not supported: remove them, or run \
             them in a KrakenD instance of their own",
        );
    }
    // `dns_cache_ttl` only applies to DNS SRV service discovery (`sd: dns`), which a backend
    // cannot use (it is refused there): checked for its type, nothing to apply it to.
    let _ = r.duration(svc, "dns_cache_ttl");
}

fn server_options(r: &mut Reader<'_>, svc: &Obj<'_>) -> ServerOptions {
    unsupported_service_options(r, svc);
    let defaults = ServerOptions::default();
    ServerOptions {
        read_timeout: r.duration(svc, "read_timeout"),
        write_timeout: r.duration(svc, "write_timeout"),
        idle_timeout: r.duration(svc, "idle_timeout"),
        read_header_timeout: r.duration(svc, "read_header_timeout"),
        max_header_bytes: or_default(
            r.uint(svc, "max_header_bytes", "a whole number of bytes")
                .unwrap_or(0),
            defaults.max_header_bytes,
        ),
        use_h2c: r.bool(svc, "use_h2c"),
        max_shutdown_wait_time: or_default(
            r.duration(svc, "max_shutdown_wait_time"),
            defaults.max_shutdown_wait_time,
        ),
    }
}

fn transport_options(r: &mut Reader<'_>, svc: &Obj<'_>) -> TransportOptions {
    let d = TransportOptions::default();
    const COUNT: &str = "a whole number of connections";
    // Read to refuse what the client cannot do: a value that changes nothing stays accepted.
    if r.uint::<u64>(svc, "max_idle_connections", COUNT)
        .unwrap_or(0)
        != 0
    {
        r.error(
            svc.path_of("max_idle_connections"),
            "a process-wide cap on idle connections is not supported: the pool is bounded per \
             host, set max_idle_connections_per_host instead",
        );
    }
    if !r.duration(svc, "expect_continue_timeout").is_zero() {
        r.error(
            svc.path_of("expect_continue_timeout"),
            "not supported: Sluice sends request bodies at once, without waiting for \
             100 Continue; remove it",
        );
    }
    TransportOptions {
        disable_keep_alives: r.bool(svc, "disable_keep_alives"),
        disable_compression: r.bool(svc, "disable_compression"),
        max_idle_connections_per_host: or_default(
            r.uint(svc, "max_idle_connections_per_host", COUNT)
                .unwrap_or(0),
            d.max_idle_connections_per_host,
        ),
        idle_connection_timeout: or_default(
            r.duration(svc, "idle_connection_timeout"),
            d.idle_connection_timeout,
        ),
        response_header_timeout: r.duration(svc, "response_header_timeout"),
        dialer_timeout: or_default(r.duration(svc, "dialer_timeout"), d.dialer_timeout),
        dialer_fallback_delay: or_default(
            r.duration(svc, "dialer_fallback_delay"),
            d.dialer_fallback_delay,
        ),
        dialer_keep_alive: or_default(r.duration(svc, "dialer_keep_alive"), d.dialer_keep_alive),
    }
}

/// Every endpoint, and the check that no method and route is defined twice.
fn endpoints(r: &mut Reader<'_>, svc: &Obj<'_>, d: &ServiceDefaults<'_>) -> Vec<Endpoint> {
    let Some(items) = r.array(svc, "endpoints") else {
        return Vec::new();
    };
    let list_path = svc.path_of("endpoints");
    let mut endpoints = Vec::with_capacity(items.len());
    // (method, route shape) -> JSON path of the first endpoint with it.
    let mut routes: HashMap<(Method, String), String> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let Some(endpoint) = endpoint(r, item, index_path(&list_path, i), d) else {
            continue;
        };
        // A path, once read, starts with "/": an empty one was missing (and is reported).
        if !endpoint.endpoint.is_empty() {
            let key = (
                endpoint.method.clone(),
                route_shape(&endpoint.endpoint, d.disable_rest),
            );
            match routes.entry(key) {
                Entry::Occupied(first) => r.error(
                    endpoint.json_path.clone(),
                    format!("{} is already defined at {}", endpoint.label(), first.get()),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(endpoint.json_path.clone());
                }
            }
        }
        endpoints.push(endpoint);
    }
    endpoints
}

/// What backends inherit from their endpoint.
#[derive(Debug)]
struct EndpointContext<'a> {
    method: &'a Method,
    /// The endpoint path and its parameters, when the path is known.
    route: Option<(&'a str, &'a [String])>,
    output_encoding: OutputEncoding,
    service_host: &'a [String],
    service_host_written: bool,
    /// `proxy.sequential_propagated_params`: `resp<N>_<path>` values and `resp<N>` raw bodies
    /// later backends may use as `{Resp<N>_<path>}` and `{Resp<N>}`.
    propagated: &'a [String],
}

/// One endpoint (with an empty path when it has none).
fn endpoint(
    r: &mut Reader<'_>,
    item: &Value,
    path: String,
    d: &ServiceDefaults<'_>,
) -> Option<Endpoint> {
    let o = r.as_object(item, path)?;

    let route = route(r, &o);
    let params = route
        .as_deref()
        .map(|route| {
            let params = endpoint_params(route, d.disable_rest);
            report_repeated_params(r, &o, route, &params);
            params
        })
        .unwrap_or_default();
    let method = r
        .choice(&o, "method", ENDPOINT_METHODS)
        .unwrap_or(Method::GET);
    let concurrent_calls = or_default(
        r.uint(&o, "concurrent_calls", "a whole number of calls")
            .unwrap_or(0),
        1,
    );
    let timeout = or_default(r.duration(&o, "timeout"), d.timeout);
    let cache_ttl = or_default(r.duration(&o, "cache_ttl"), d.cache_ttl);
    let input_query_strings = r.strings(&o, "input_query_strings").unwrap_or_default();
    let input_headers = r
        .strings(&o, "input_headers")
        .filter(|h| !h.is_empty())
        .map(canonical_headers)
        .unwrap_or_else(|| vec![DEFAULT_INPUT_HEADER.to_owned()]);
    let output_encoding = r
        .choice(&o, "output_encoding", OUTPUT_ENCODINGS)
        .unwrap_or(d.output_encoding);
    let extra = extra::read_extra(r, &o, Level::Endpoint);
    let proxy = extra::endpoint_proxy(r, extra.block(Namespace::Proxy));
    let telemetry = crate::telemetry::endpoint_telemetry(r, extra.block(Namespace::OpenTelemetry));

    let backend_items = match (o.get("backend"), r.array(&o, "backend")) {
        (None, _) | (_, Some([])) => {
            r.error(
                o.path_of("backend"),
                "an endpoint needs at least one backend, found none",
            );
            &[][..]
        }
        (Some(_), None) => &[][..],
        (_, Some(items)) => items,
    };
    if output_encoding == OutputEncoding::NoOp && backend_items.len() > 1 {
        r.error(
            o.path.clone(),
            format!(
                "output_encoding \"no-op\" passes one backend's answer through untouched, so it \
                 needs exactly one backend, found {}",
                backend_items.len()
            ),
        );
    }
    let cx = EndpointContext {
        method: &method,
        route: route.as_deref().map(|route| (route, params.as_slice())),
        output_encoding,
        service_host: d.host,
        service_host_written: d.host_written,
        propagated: &proxy.sequential_propagated_params,
    };
    let list_path = o.path_of("backend");
    let backends: Vec<Backend> = backend_items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| backend(r, item, index_path(&list_path, i), &cx))
        .collect();
    if !backends.is_empty()
        && backends.len() == backend_items.len()
        && backends.iter().all(|b| b.shadow)
    {
        // KrakenD builds no pipe for such an endpoint (no backend left to answer): it logs an
        // error at start-up and answers every request with 500, never calling the shadows.
        r.error(
            list_path.clone(),
            "every backend is a shadow (proxy.shadow: true), so none answers the client: \
             KrakenD would answer every request with 500 and never call them; keep at least \
             one backend that is not a shadow",
        );
    }

    Some(Endpoint {
        json_path: o.path.clone(),
        endpoint: route.unwrap_or_default(),
        method,
        backends,
        concurrent_calls,
        timeout,
        cache_ttl,
        input_query_strings,
        input_headers,
        output_encoding,
        proxy,
        telemetry,
        extra_config: extra.map,
    })
}

/// The endpoint path with a leading `/`, checked against the paths the gateway keeps for itself.
fn route(r: &mut Reader<'_>, o: &Obj<'_>) -> Option<String> {
    let path = o.path_of("endpoint");
    let Some(route) = r.string(o, "endpoint") else {
        if o.get("endpoint").is_none() {
            r.error(
                path,
                "missing: expected the endpoint's path, like \"/users/{id}\"",
            );
        }
        return None;
    };
    let route = with_leading_slash(&route);
    if let Some(reserved) = reserved_prefix(&route) {
        r.error(
            path,
            format!(
                "{} is reserved: the gateway serves {reserved} and the paths under it \
                 (/__debug, /__echo and /__health are all reserved)",
                quote(&route)
            ),
        );
    } else if let Some(star) = route.find('*')
        && star + 1 < route.len()
    {
        r.error(
            path,
            format!("a \"*\" can only end the path, found {}", quote(&route)),
        );
    }
    Some(route)
}

/// The reserved segment `/__debug`, `/__echo` or `/__health` of a path, when the path is one of
/// them or under one (anywhere in the path, as KrakenD's pattern is unanchored).
fn reserved_prefix(route: &str) -> Option<&'static str> {
    ["/__debug", "/__echo", "/__health"].into_iter().find(|r| {
        route
            .match_indices(r)
            .any(|(at, _)| matches!(route.as_bytes().get(at + r.len()), None | Some(b'/')))
    })
}

fn report_repeated_params(r: &mut Reader<'_>, o: &Obj<'_>, route: &str, params: &[String]) {
    for (i, param) in params.iter().enumerate() {
        if params[..i].contains(param) && !params[i + 1..].contains(param) {
            r.error(
                o.path_of("endpoint"),
                format!(
                    "the parameter {{{param}}} appears more than once in {}",
                    quote(route)
                ),
            );
        }
    }
}

/// Header names as Go's `CanonicalMIMEHeaderKey` writes them (`x-y-z` -> `X-Y-Z`); `*` and names
/// with characters a header name cannot have are kept as written.
fn canonical_headers(names: Vec<String>) -> Vec<String> {
    names
        .into_iter()
        .map(|name| canonical_header(&name))
        .collect()
}

fn canonical_header(name: &str) -> String {
    let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_token) {
        return name.to_owned();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let c = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            c
        })
        .collect()
}

fn backend(
    r: &mut Reader<'_>,
    item: &Value,
    path: String,
    cx: &EndpointContext<'_>,
) -> Option<Backend> {
    let o = r.as_object(item, path)?;

    let disable_host_sanitize = r.bool(&o, "disable_host_sanitize");
    let host = backend_hosts(r, &o, disable_host_sanitize, cx);
    let url_pattern = with_leading_slash(&r.string(&o, "url_pattern").unwrap_or_default());
    if let Some((route, params)) = cx.route {
        check_placeholders(r, &o, &url_pattern, route, params, cx.propagated);
    }
    let method = backend_method(r, &o).unwrap_or_else(|| cx.method.clone());
    let encoding = r
        .choice(&o, "encoding", ENCODINGS)
        .unwrap_or(Encoding::Json);
    let encoding = if cx.output_encoding == OutputEncoding::NoOp {
        Encoding::NoOp
    } else {
        encoding
    };
    let is_collection = r.bool(&o, "is_collection");
    let allow = r.strings(&o, "allow").unwrap_or_default();
    let deny = r.strings(&o, "deny").unwrap_or_default();
    let mapping = mapping(r, &o);
    let group = r.string(&o, "group").filter(|g| !g.is_empty());
    let target = r.string(&o, "target").filter(|t| !t.is_empty());
    let sd = r.string(&o, "sd").unwrap_or_default();
    if !sd.is_empty() && sd != "static" {
        r.error(
            o.path_of("sd"),
            format!("service discovery {sd:?} is not supported yet: list the hosts in \"host\" (\"sd\": \"static\")"),
        );
    }
    // Only DNS service discovery (refused above) reads `sd_scheme`; with static hosts KrakenD
    // ignores it too, so it is checked for its type and has nothing to apply to.
    let _ = r.string(&o, "sd_scheme");
    let input_headers = r.strings(&o, "input_headers").map(canonical_headers);
    let input_query_strings = r.strings(&o, "input_query_strings");

    let extra = extra::read_extra(r, &o, Level::Backend);
    let proxy = extra::backend_proxy(r, extra.block(Namespace::Proxy));
    let http = extra::backend_http(r, extra.block(Namespace::BackendHttp));
    let http_client = extra::backend_http_client(r, extra.block(Namespace::BackendHttpClient));
    let plugin = extra::plugin_ref(r, extra.block(Namespace::PluginHttpClient));
    let telemetry = crate::telemetry::backend_telemetry(r, extra.block(Namespace::OpenTelemetry));
    let mut client_tls = http_client.client_tls;
    let plugin = match extra.block(Namespace::BackendGrpc) {
        Some(block) => {
            // A gRPC backend's own `client_tls` is the backend's TLS, as `backend/http/client`'s
            // is for an HTTP one: one place for it, so two spellings are refused.
            let (plugin, grpc_tls) = extra::backend_grpc(r, Some(block), plugin.as_ref());
            if let Some(tls) = grpc_tls {
                if client_tls.is_some() {
                    r.error(
                        format!("{}.client_tls", block.path),
                        "the backend's TLS is already set in extra_config[\"backend/http/client\"].client_tls; keep one of them",
                    );
                } else {
                    client_tls = Some(tls);
                }
            }
            plugin
        }
        None => plugin,
    };

    Some(Backend {
        json_path: o.path.clone(),
        host,
        url_pattern,
        method,
        encoding,
        is_collection,
        allow,
        deny,
        mapping,
        group,
        target,
        input_headers,
        input_query_strings,
        flatmap_filter: proxy.flatmap_filter,
        shadow: proxy.shadow,
        shadow_timeout: proxy.shadow_timeout,
        http,
        send_body_on_redirect: http_client.send_body_on_redirect,
        client_tls,
        plugin,
        telemetry,
        extra_config: extra.map,
    })
}

/// The backend's own hosts (sanitised unless disabled), else the service's.
fn backend_hosts(
    r: &mut Reader<'_>,
    o: &Obj<'_>,
    disable_host_sanitize: bool,
    cx: &EndpointContext<'_>,
) -> Vec<String> {
    let sanitize = (!disable_host_sanitize)
        .then_some(" (or set \"disable_host_sanitize\": true to use it as written)");
    let written = hosts(r, o, sanitize);
    let nothing_written = written.is_none() && !cx.service_host_written;
    let hosts = written.unwrap_or_else(|| cx.service_host.to_vec());
    if nothing_written {
        // Found here rather than as a 500 on the first request.
        r.error(
            o.path_of("host"),
            "missing: the backend has no host, and neither has the service (\"host\" at the top level)",
        );
    }
    hosts
}

fn backend_method(r: &mut Reader<'_>, o: &Obj<'_>) -> Option<Method> {
    let method = r.string(o, "method").filter(|m| !m.is_empty())?;
    match Method::from_bytes(method.to_ascii_uppercase().as_bytes()) {
        Ok(method) => Some(method),
        Err(_) => {
            r.error(
                o.path_of("method"),
                format!(
                    "expected an HTTP method like \"GET\", found {}",
                    quote(&method)
                ),
            );
            None
        }
    }
}

/// Every `{placeholder}` of `url_pattern` must be a parameter of the endpoint, except the
/// sequential `resp<N>_...` and `JWT.<claim>` ones.
fn check_placeholders(
    r: &mut Reader<'_>,
    o: &Obj<'_>,
    url_pattern: &str,
    route: &str,
    params: &[String],
    propagated: &[String],
) {
    let mut reported: Vec<String> = Vec::new();
    for placeholder in url_placeholders(url_pattern) {
        if params.contains(&placeholder) {
            continue;
        }
        // A propagated param: `{Resp0_a.b}` (a value of backend 0) or `{Resp0}` (the raw body of
        // the no-op backend 0), once listed in the endpoint's proxy.sequential_propagated_params.
        if let Some(rest) = placeholder.strip_prefix("Resp")
            && let Some(listed) = crate::params::propagated_param(&placeholder)
        {
            if !propagated.contains(&listed) && !reported.contains(&placeholder) {
                r.error(
                    o.path_of("url_pattern"),
                    format!(
                        "{{{placeholder}}} is a propagated param: list {} in the endpoint's proxy.sequential_propagated_params",
                        quote(&format!("resp{rest}"))
                    ),
                );
                reported.push(placeholder);
            }
            continue;
        }
        if params.contains(&placeholder)
            || is_implicit_placeholder(&placeholder)
            || reported.contains(&placeholder)
        {
            continue;
        }
        let known = if params.is_empty() {
            "it has none".to_owned()
        } else {
            let list = params
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("it has {list}")
        };
        // `/x{id}` in the endpoint is plain text unless REST checks are off: say so.
        let hint = if route.contains(&format!("{{{placeholder}}}")) {
            "; a parameter must be a whole path segment like /{name}, unless \"disable_rest\" is true"
        } else {
            ""
        };
        r.error(
            o.path_of("url_pattern"),
            format!(
                "{{{placeholder}}} is not a parameter of the endpoint {} ({known}){hint}",
                quote(route)
            ),
        );
        reported.push(placeholder);
    }
}

/// `mapping`: an object of strings (top-level renames).
fn mapping(r: &mut Reader<'_>, o: &Obj<'_>) -> BTreeMap<String, String> {
    let Some(m) = r.object(o, "mapping") else {
        return BTreeMap::new();
    };
    let mut renames = BTreeMap::new();
    for (from, to) in m.map {
        match to {
            Value::String(to) => {
                renames.insert(from.clone(), to.clone());
            }
            other => r.type_error(m.path_of(from), "a string", other),
        }
    }
    renames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_header_names() {
        assert_eq!(canonical_header("content-type"), "Content-Type");
        assert_eq!(canonical_header("X-Y-Z"), "X-Y-Z");
        assert_eq!(canonical_header("x-TEST-1"), "X-Test-1");
        assert_eq!(canonical_header("*"), "*");
        assert_eq!(canonical_header("bad header"), "bad header");
    }

    #[test]
    fn reserved_paths() {
        assert_eq!(reserved_prefix("/__debug"), Some("/__debug"));
        assert_eq!(reserved_prefix("/__debug/x"), Some("/__debug"));
        assert_eq!(reserved_prefix("/__echo/"), Some("/__echo"));
        assert_eq!(reserved_prefix("/__health"), Some("/__health"));
        assert_eq!(reserved_prefix("/a/__health"), Some("/__health"));
        assert_eq!(reserved_prefix("/__debugger"), None);
        assert_eq!(reserved_prefix("/__healthz"), None);
        assert_eq!(reserved_prefix("/users"), None);
    }

    #[test]
    fn leading_slash() {
        assert_eq!(with_leading_slash("users"), "/users");
        assert_eq!(with_leading_slash("/users"), "/users");
        assert_eq!(with_leading_slash(""), "/");
    }
}
