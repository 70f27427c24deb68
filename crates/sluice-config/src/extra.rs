//! `extra_config`: namespace aliases, the namespaces the gateway reads, and their typed options.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::model::{
    BackendHttpOptions, ClientTls, EndpointProxyOptions, FlatmapOp, GrpcCatalog, PluginLink,
    PluginRef, RouterOptions, SluiceServerOptions, StaticResponse, StaticStrategy,
};
use crate::read::{Obj, Reader, index_path, is_comment_key, key_path, kind, quote};

/// The short names of the `extra_config` namespaces the gateway reads. Each also accepts its
/// legacy spelling(s), and is stored under the short name.
pub mod namespace {
    /// Endpoint and backend proxy options (`sequential`, `static`, `flatmap_filter`, ...).
    /// Alias: `github.com/devopsfaith/krakend/proxy`.
    pub const PROXY: &str = "proxy";
    /// Backend status handling (`return_error_code`, `return_error_details`).
    /// Alias: `github.com/devopsfaith/krakend/http`.
    pub const BACKEND_HTTP: &str = "backend/http";
    /// Router options of the service. Aliases: `github_com/luraproject/lura/router/gin`,
    /// `github.com/luraproject/lura/router/gin`, `github_com/devopsfaith/krakend/router/gin`.
    pub const ROUTER: &str = "router";
    /// The backend's HTTP client plugin.
    /// Alias: `github.com/devopsfaith/krakend/transport/http/client/executor`.
    pub const PLUGIN_HTTP_CLIENT: &str = "plugin/http-client";
    /// Backend client options (`send_body_on_redirect`, `client_tls`).
    /// Alias: `github.com/devopsfaith/krakend/transport/http/client`.
    pub const BACKEND_HTTP_CLIENT: &str = "backend/http/client";
    /// Sluice's own server limits (`max_connections`, `max_buffered_body_bytes`); no alias.
    pub const SLUICE_SERVER: &str = "sluice/server";
    /// Metrics and traces (krakend-otel's schema), at every level.
    pub const OPENTELEMETRY: &str = "telemetry/opentelemetry";
    /// Application logging (krakend-gologging's schema), at the service level.
    pub const LOGGING: &str = "telemetry/logging";
    /// The protobuf catalog of gRPC backends (KrakenD Enterprise's, service level); no alias.
    pub const GRPC: &str = "grpc";
    /// A gRPC backend (KrakenD Enterprise's); no alias. Read as the client plugin
    /// [`GRPC_PLUGIN`] with these settings.
    pub const BACKEND_GRPC: &str = "backend/grpc";
    /// The name of the compiled-in client plugin that calls gRPC backends: `backend/grpc` is
    /// `"plugin/http-client": {"name": "grpc", "grpc": {...}}`.
    pub const GRPC_PLUGIN: &str = "grpc";
}

/// A namespace the gateway reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Namespace {
    Proxy,
    BackendHttp,
    Router,
    PluginHttpClient,
    BackendHttpClient,
    SluiceServer,
    OpenTelemetry,
    Logging,
    Grpc,
    BackendGrpc,
}

pub(crate) use crate::model::Level;

impl Namespace {
    const ALL: [Namespace; 10] = [
        Namespace::Proxy,
        Namespace::BackendHttp,
        Namespace::Router,
        Namespace::PluginHttpClient,
        Namespace::BackendHttpClient,
        Namespace::SluiceServer,
        Namespace::OpenTelemetry,
        Namespace::Logging,
        Namespace::Grpc,
        Namespace::BackendGrpc,
    ];

    /// The short name, under which the namespace is stored.
    fn name(self) -> &'static str {
        match self {
            Namespace::Proxy => namespace::PROXY,
            Namespace::BackendHttp => namespace::BACKEND_HTTP,
            Namespace::Router => namespace::ROUTER,
            Namespace::PluginHttpClient => namespace::PLUGIN_HTTP_CLIENT,
            Namespace::BackendHttpClient => namespace::BACKEND_HTTP_CLIENT,
            Namespace::SluiceServer => namespace::SLUICE_SERVER,
            Namespace::OpenTelemetry => namespace::OPENTELEMETRY,
            Namespace::Logging => namespace::LOGGING,
            Namespace::Grpc => namespace::GRPC,
            Namespace::BackendGrpc => namespace::BACKEND_GRPC,
        }
    }

    /// The other spellings KrakenD accepts.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Namespace::Proxy => &["github.com/devopsfaith/krakend/proxy"],
            Namespace::BackendHttp => &["github.com/devopsfaith/krakend/http"],
            Namespace::Router => &[
                "github_com/luraproject/lura/router/gin",
                "github.com/luraproject/lura/router/gin",
                "github_com/devopsfaith/krakend/router/gin",
            ],
            Namespace::PluginHttpClient => {
                &["github.com/devopsfaith/krakend/transport/http/client/executor"]
            }
            Namespace::BackendHttpClient => {
                &["github.com/devopsfaith/krakend/transport/http/client"]
            }
            Namespace::SluiceServer
            | Namespace::OpenTelemetry
            | Namespace::Logging
            | Namespace::Grpc
            | Namespace::BackendGrpc => &[],
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|ns| ns.name() == key || ns.aliases().contains(&key))
    }

    /// Where the namespace is read, for messages.
    fn levels(self) -> &'static str {
        match self {
            Namespace::Router | Namespace::SluiceServer | Namespace::Logging | Namespace::Grpc => {
                "service"
            }
            Namespace::OpenTelemetry => "service, endpoint and backend",
            Namespace::Proxy => "endpoint and backend",
            Namespace::BackendHttp
            | Namespace::BackendHttpClient
            | Namespace::PluginHttpClient
            | Namespace::BackendGrpc => "backend",
        }
    }

    /// Whether the gateway reads the namespace at that level (elsewhere it is ignored, and reported
    /// like an unknown one).
    fn read_at(self, level: Level) -> bool {
        match self {
            Namespace::Router | Namespace::SluiceServer | Namespace::Logging | Namespace::Grpc => {
                level == Level::Service
            }
            Namespace::OpenTelemetry => true,
            Namespace::Proxy => matches!(level, Level::Endpoint | Level::Backend),
            Namespace::BackendHttp
            | Namespace::BackendHttpClient
            | Namespace::PluginHttpClient
            | Namespace::BackendGrpc => level == Level::Backend,
        }
    }
}

/// One known namespace block as written: its value and JSON path.
#[derive(Debug, Clone)]
pub(crate) struct Block<'v> {
    pub(crate) value: &'v Value,
    pub(crate) path: String,
}

/// An `extra_config`, aliases normalised, with the blocks the gateway reads at its level.
#[derive(Debug, Default)]
pub(crate) struct Extra<'v> {
    pub(crate) map: Map<String, Value>,
    blocks: Vec<(Namespace, Block<'v>)>,
}

impl<'v> Extra<'v> {
    /// The block of `ns`, if present and not `null`.
    pub(crate) fn block(&self, ns: Namespace) -> Option<&Block<'v>> {
        self.blocks
            .iter()
            .find(|(n, b)| *n == ns && !b.value.is_null())
            .map(|(_, b)| b)
    }
}

/// Reads `parent.extra_config`: renames aliases to the short names, reports namespaces the
/// gateway does not read at this level, and rejects two spellings of one namespace.
pub(crate) fn read_extra<'v>(r: &mut Reader<'_>, parent: &Obj<'v>, level: Level) -> Extra<'v> {
    let Some(obj) = r.object(parent, "extra_config") else {
        return Extra::default();
    };
    let mut extra = Extra::default();
    let mut seen: Vec<(Namespace, &str)> = Vec::new();
    for (key, value) in obj.map {
        let path = obj.path_of(key);
        if is_comment_key(key) {
            // `@comment` and the like: KrakenD's schema allows them in any object.
            extra.map.insert(key.clone(), value.clone());
            continue;
        }
        // A namespace a component of the gateway reads (`LoadOptions::components`): kept for
        // it, which reads and checks it when the gateway is built.
        if let Some(component) = r.component(key) {
            if !component.levels.contains(&level) {
                let levels: Vec<&str> = component.levels.iter().map(|l| l.name()).collect();
                r.unknown_namespace(path, key, Some(&levels.join(" and ")));
            }
            extra.map.insert(key.clone(), value.clone());
            continue;
        }
        let Some(ns) = Namespace::from_key(key) else {
            r.unknown_namespace(path, key, None);
            extra.map.insert(key.clone(), value.clone());
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == ns) {
            r.error(
                obj.path.clone(),
                format!(
                    "{} and {} are two spellings of the same namespace; keep one",
                    quote(first),
                    quote(key)
                ),
            );
            continue;
        }
        seen.push((ns, key));
        extra.map.insert(ns.name().to_owned(), value.clone());
        if ns.read_at(level) {
            extra.blocks.push((ns, Block { value, path }));
        } else {
            r.unknown_namespace(path, key, Some(ns.levels()));
        }
    }
    extra
}

/// `router` options of the service.
pub(crate) fn router_options(r: &mut Reader<'_>, block: Option<&Block<'_>>) -> RouterOptions {
    let mut options = RouterOptions::default();
    let Some(o) = block.and_then(|b| r.as_object(b.value, b.path.clone())) else {
        return options;
    };
    r.known_keys(
        &o,
        &[
            "return_error_msg",
            "auto_options",
            "disable_health",
            "health_path",
            "hide_version_header",
            "disable_redirect_trailing_slash",
            "disable_redirect_fixed_path",
            "disable_handle_method_not_allowed",
            "forwarded_by_client_ip",
            "remote_ip_headers",
            "trusted_proxies",
            "disable_access_log",
            "disable_path_decoding",
            "error_body",
        ],
    );
    options.return_error_msg = r.bool(&o, "return_error_msg");
    options.auto_options = r.bool(&o, "auto_options");
    options.disable_health = r.bool(&o, "disable_health");
    if let Some(path) = r.string(&o, "health_path").filter(|p| !p.is_empty()) {
        options.health_path = crate::parse::with_leading_slash(&path);
    }
    options.hide_version_header = r.bool(&o, "hide_version_header");
    options.disable_redirect_trailing_slash = r.bool(&o, "disable_redirect_trailing_slash");
    options.disable_redirect_fixed_path = r.bool(&o, "disable_redirect_fixed_path");
    options.disable_handle_method_not_allowed = r.bool(&o, "disable_handle_method_not_allowed");
    options.forwarded_by_client_ip = r.bool(&o, "forwarded_by_client_ip");
    options.remote_ip_headers = r.strings(&o, "remote_ip_headers").unwrap_or_default();
    options.trusted_proxies = r.strings(&o, "trusted_proxies").unwrap_or_default();
    options.disable_access_log = r.bool(&o, "disable_access_log");
    options.disable_path_decoding = r.bool(&o, "disable_path_decoding");
    if let Some(bodies) = r.object(&o, "error_body") {
        options.error_body = bodies
            .map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>();
    }
    options
}

const STATIC_STRATEGIES: &[(&str, StaticStrategy)] = &[
    ("always", StaticStrategy::Always),
    ("success", StaticStrategy::Success),
    ("errored", StaticStrategy::Errored),
    ("complete", StaticStrategy::Complete),
    ("incomplete", StaticStrategy::Incomplete),
];

/// `proxy` options of an endpoint.
pub(crate) fn endpoint_proxy(
    r: &mut Reader<'_>,
    block: Option<&Block<'_>>,
) -> EndpointProxyOptions {
    let mut options = EndpointProxyOptions::default();
    let Some(o) = block.and_then(|b| r.as_object(b.value, b.path.clone())) else {
        return options;
    };
    r.known_keys(
        &o,
        &[
            "sequential",
            "sequential_propagated_params",
            "static",
            "flatmap_filter",
        ],
    );
    options.sequential = r.bool(&o, "sequential");
    let list = o.path_of("sequential_propagated_params");
    for (i, param) in r
        .strings(&o, "sequential_propagated_params")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        // KrakenD reads `resp<N>_<path>` (a value of backend N's data) and `resp<N>` (the raw
        // body of a no-op backend N), `Resp` spelt either way.
        match crate::params::propagated_param(&param) {
            Some(normalised) => options.sequential_propagated_params.push(normalised),
            None => r.error(
                index_path(&list, i),
                format!(
                    "expected resp<N>_<path> (used as {{Resp<N>_<path>}} in a later url_pattern) or resp<N> (the raw body of the no-op backend N, used as {{Resp<N>}}), found {}",
                    quote(param.as_str())
                ),
            ),
        }
    }
    if let Some(s) = r.object(&o, "static") {
        r.known_keys(&s, &["strategy", "data"]);
        let strategy = r
            .choice(&s, "strategy", STATIC_STRATEGIES)
            .unwrap_or(StaticStrategy::Always);
        // KrakenD applies no static response when `data` is missing.
        if let Some(data) = r.object(&s, "data").map(|d| d.map.clone()) {
            options.static_response = Some(StaticResponse { strategy, data });
        }
    }
    options.flatmap_filter = flatmap_filter(r, &o);
    options
}

/// `proxy` options of a backend.
#[derive(Debug, Default)]
pub(crate) struct BackendProxy {
    pub(crate) flatmap_filter: Vec<FlatmapOp>,
    pub(crate) shadow: bool,
    pub(crate) shadow_timeout: Option<Duration>,
}

/// `proxy` options of a backend: `flatmap_filter`, `shadow` and `shadow_timeout`. A `shadow`
/// that is not a boolean is refused (KrakenD's schema types it so; its runtime would silently
/// treat the backend as a regular one), and so is a `shadow_timeout` that is not a duration
/// (KrakenD would silently fall back to the endpoint's timeout). A `shadow_timeout` of zero
/// reads as unset: KrakenD would give the shadow an expired deadline, so it would never be sent.
pub(crate) fn backend_proxy(r: &mut Reader<'_>, block: Option<&Block<'_>>) -> BackendProxy {
    let Some(o) = block.and_then(|b| r.as_object(b.value, b.path.clone())) else {
        return BackendProxy::default();
    };
    r.known_keys(&o, &["flatmap_filter", "shadow", "shadow_timeout"]);
    BackendProxy {
        flatmap_filter: flatmap_filter(r, &o),
        shadow: r.bool(&o, "shadow"),
        shadow_timeout: Some(r.duration(&o, "shadow_timeout")).filter(|d| !d.is_zero()),
    }
}

/// `flatmap_filter`: `[{"type": "move" | "del" | "append", "args": [...]}]`.
fn flatmap_filter(r: &mut Reader<'_>, proxy: &Obj<'_>) -> Vec<FlatmapOp> {
    const TYPES: &[(&str, &str)] = &[("move", "move"), ("del", "del"), ("append", "append")];

    let Some(items) = r.array(proxy, "flatmap_filter") else {
        return Vec::new();
    };
    let list_path = proxy.path_of("flatmap_filter");
    let mut ops = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(o) = r.as_object(item, index_path(&list_path, i)) else {
            continue;
        };
        r.known_keys(&o, &["type", "args"]);
        if o.get("type").is_none() {
            r.error(
                o.path_of("type"),
                "missing: expected \"move\", \"del\" or \"append\"",
            );
        }
        if o.get("args").is_none() {
            r.error(o.path_of("args"), "missing: expected an array of paths");
        }
        let (Some(op_type), Some(args)) = (r.choice(&o, "type", TYPES), r.strings(&o, "args"))
        else {
            continue;
        };
        match (op_type, args.as_slice()) {
            // KrakenD uses the first two arguments of `move` and `append` and ignores the rest.
            ("move", [from, to, ..]) => ops.push(FlatmapOp::Move(from.clone(), to.clone())),
            ("append", [from, to, ..]) => ops.push(FlatmapOp::Append(from.clone(), to.clone())),
            // KrakenD deletes every path listed, one `del` of several paths or several `del`s.
            ("del", paths) if !paths.is_empty() => {
                ops.extend(paths.iter().cloned().map(FlatmapOp::Del));
            }
            (op_type, _) => {
                let wanted = if op_type == "del" {
                    "at least 1 argument"
                } else {
                    "at least 2 arguments"
                };
                r.error(
                    o.path_of("args"),
                    format!("{} takes {wanted}, found {}", quote(op_type), args.len()),
                );
            }
        }
    }
    ops
}

/// `backend/http` options.
pub(crate) fn backend_http(r: &mut Reader<'_>, block: Option<&Block<'_>>) -> BackendHttpOptions {
    let Some(o) = block.and_then(|b| r.as_object(b.value, b.path.clone())) else {
        return BackendHttpOptions::default();
    };
    r.known_keys(&o, &["return_error_code", "return_error_details"]);
    BackendHttpOptions {
        return_error_code: r.bool(&o, "return_error_code"),
        return_error_details: r
            .string(&o, "return_error_details")
            .filter(|alias| !alias.is_empty()),
    }
}

/// `backend/http/client`: `send_body_on_redirect` and the backend's own `client_tls`.
#[derive(Debug, Default)]
pub(crate) struct BackendHttpClient {
    pub(crate) send_body_on_redirect: bool,
    pub(crate) client_tls: Option<ClientTls>,
}

/// `backend/http/client` options (`no_redirect` and `proxy_address` are refused: not
/// implemented).
pub(crate) fn backend_http_client(
    r: &mut Reader<'_>,
    block: Option<&Block<'_>>,
) -> BackendHttpClient {
    match block.and_then(|b| r.as_object(b.value, b.path.clone())) {
        Some(o) => {
            r.known_keys(&o, &["send_body_on_redirect", "client_tls"]);
            BackendHttpClient {
                send_body_on_redirect: r.bool(&o, "send_body_on_redirect"),
                client_tls: crate::tls::client_tls(r, &o, "client_tls"),
            }
        }
        None => BackendHttpClient::default(),
    }
}

/// `plugin/http-client`: an object whose `name` is one non-empty string, or a list of them (a
/// chain: each plugin once, its settings under its own name).
pub(crate) fn plugin_ref(r: &mut Reader<'_>, block: Option<&Block<'_>>) -> Option<PluginRef> {
    let block = block?;
    let o = r.as_object(block.value, block.path.clone())?;
    const EXPECTED: &str =
        "expected one plugin name as a string, or a list of plugin names (a chain)";
    let single = |name: &String, extra: Map<String, Value>| PluginRef {
        name: name.clone(),
        extra,
        json_path: block.path.clone(),
        settings_path: key_path(&block.path, name),
        chain: Vec::new(),
    };
    match o.map.get("name") {
        Some(Value::String(name)) if !name.is_empty() => Some(single(name, o.map.clone())),
        Some(Value::Array(items)) => {
            let path = o.path_of("name");
            if items.is_empty() {
                r.error(path, format!("an empty list names no plugin; {EXPECTED}"));
                return None;
            }
            let mut chain: Vec<PluginLink> = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                let name_path = index_path(&path, i);
                match item {
                    Value::String(name) if name == "limits" => {
                        r.error(
                            name_path,
                            "a plugin of a chain cannot be named \"limits\": that key of the \
                             block holds each plugin's own limits; rename the plugin's file",
                        );
                        ok = false;
                    }
                    Value::String(name) if !name.is_empty() => {
                        if let Some(first) = chain.iter().find(|l| &l.name == name) {
                            r.error(
                                name_path,
                                format!(
                                    "{} is already {}: a plugin appears once in a chain (its \
                                     settings are the object under its name)",
                                    quote(name),
                                    first.name_path
                                ),
                            );
                            ok = false;
                            continue;
                        }
                        chain.push(PluginLink {
                            name: name.clone(),
                            settings_path: key_path(&block.path, name),
                            name_path,
                            limits: Map::new(),
                            limits_path: key_path(&o.path_of("limits"), name),
                        });
                    }
                    other => {
                        r.error(
                            name_path,
                            format!(
                                "expected a plugin name (a non-empty string), found {}",
                                kind(other)
                            ),
                        );
                        ok = false;
                    }
                }
            }
            if !ok {
                return None;
            }
            if !chain_limits(r, &o, &mut chain) {
                return None;
            }
            let last = chain.last()?.name.clone();
            if chain.len() == 1 {
                // A list of one is the plain name.
                let mut extra = o.map.clone();
                extra.insert("name".to_owned(), Value::String(last.clone()));
                return Some(single(&last, extra));
            }
            Some(PluginRef {
                chain,
                ..single(&last, o.map.clone())
            })
        }
        Some(other) => {
            r.error(
                o.path_of("name"),
                format!("{EXPECTED}, found {}", kind(other)),
            );
            None
        }
        None => {
            r.error(o.path_of("name"), format!("missing: {EXPECTED}"));
            None
        }
    }
}

/// A chain's `limits`: an object whose keys are plugins of the chain, each an object of its own
/// limits (checked against what the plugin reads when it is built). `false` on a problem.
fn chain_limits(r: &mut Reader<'_>, o: &Obj<'_>, chain: &mut [PluginLink]) -> bool {
    let Some(value) = o.get("limits") else {
        return true;
    };
    let Some(limits) = r.as_object(value, o.path_of("limits")) else {
        return false;
    };
    let mut ok = true;
    for (name, value) in limits.map {
        let path = limits.path_of(name);
        let Some(link) = chain.iter_mut().find(|l| &l.name == name) else {
            r.error(
                path,
                format!(
                    "{} is not a plugin of the chain; expected the name of one of them ({})",
                    quote(name),
                    chain
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            ok = false;
            continue;
        };
        match value {
            Value::Object(own) => link.limits = own.clone(),
            other => {
                r.type_error(path, "an object of limits", other);
                ok = false;
            }
        }
    }
    ok
}

/// `backend/grpc`: the compiled-in client plugin [`namespace::GRPC_PLUGIN`] with these settings
/// (checked by that plugin, against the catalog), and its `client_tls`, read here as the
/// backend's TLS settings. It takes over the call, so a `plugin/http-client` beside it is an
/// error.
pub(crate) fn backend_grpc(
    r: &mut Reader<'_>,
    block: Option<&Block<'_>>,
    plugin: Option<&PluginRef>,
) -> (Option<PluginRef>, Option<ClientTls>) {
    let Some(block) = block else {
        return (None, None);
    };
    let Some(o) = r.as_object(block.value, block.path.clone()) else {
        return (None, None);
    };
    // Read (and checked) as the service's `client_tls` is: files, versions, suites.
    let client_tls = crate::tls::client_tls(r, &o, "client_tls");
    if let Some(plugin) = plugin {
        r.error(
            block.path.clone(),
            format!(
                "a gRPC backend is called by Sluice's gRPC client, and {} names the client \
                 plugin {} for the same call; keep one of them",
                plugin.json_path,
                quote(&plugin.name)
            ),
        );
        return (None, client_tls);
    }
    let mut extra = Map::new();
    extra.insert(
        "name".to_owned(),
        Value::String(namespace::GRPC_PLUGIN.to_owned()),
    );
    extra.insert(
        namespace::GRPC_PLUGIN.to_owned(),
        Value::Object(o.map.clone()),
    );
    let plugin = PluginRef {
        name: namespace::GRPC_PLUGIN.to_owned(),
        extra,
        json_path: block.path.clone(),
        settings_path: block.path.clone(),
        chain: Vec::new(),
    };
    (Some(plugin), client_tls)
}

/// `grpc` of the service: the `catalog` of descriptor sets (`.pb`) and `.proto` files, each a
/// file or a folder, relative ones read from the config file's folder. KrakenD's gRPC server
/// (`server`) is refused: Sluice calls gRPC backends, it does not serve gRPC.
pub(crate) fn grpc_catalog(
    r: &mut Reader<'_>,
    block: Option<&Block<'_>>,
    source: &std::path::Path,
) -> Option<GrpcCatalog> {
    let block = block?;
    let o = r.as_object(block.value, block.path.clone())?;
    r.known_keys(&o, &["catalog", "server"]);
    if o.get("server").is_some() {
        r.error(
            o.path_of("server"),
            "the gRPC server is not supported: Sluice calls gRPC backends but does not serve \
             gRPC to clients; remove \"server\" (the catalog alone is what gRPC backends need)",
        );
    }
    let path = o.path_of("catalog");
    let Some(items) = r.array(&o, "catalog") else {
        if o.get("catalog").is_none() {
            r.error(
                path,
                "missing: expected the list of descriptor sets (.pb), .proto files and folders \
                 that hold them",
            );
        }
        return None;
    };
    if items.is_empty() {
        r.error(
            path.clone(),
            "expected at least one file or folder, found an empty list",
        );
    }
    let dir = source.parent().unwrap_or(std::path::Path::new(""));
    let mut catalog = Vec::with_capacity(items.len());
    let mut written = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) if !s.is_empty() => {
                let entry = std::path::PathBuf::from(s);
                catalog.push(if entry.is_relative() {
                    dir.join(entry)
                } else {
                    entry
                });
                written.push(s.clone());
            }
            other => r.type_error(index_path(&path, i), "a file or folder", other),
        }
    }
    Some(GrpcCatalog {
        catalog,
        written,
        json_path: path,
    })
}

/// `sluice/server` options of the service. Zero is refused rather than read as "the default":
/// a cap of zero connections or bytes would serve nothing.
pub(crate) fn sluice_server_options(
    r: &mut Reader<'_>,
    block: Option<&Block<'_>>,
) -> SluiceServerOptions {
    let mut options = SluiceServerOptions::default();
    let Some(o) = block.and_then(|b| r.as_object(b.value, b.path.clone())) else {
        return options;
    };
    let fields: [(&str, &str, &mut usize); 2] = [
        (
            "max_connections",
            "a whole number of connections, at least 1",
            &mut options.max_connections,
        ),
        (
            "max_buffered_body_bytes",
            "a whole number of bytes, at least 1",
            &mut options.max_buffered_body_bytes,
        ),
    ];
    for (key, expected, slot) in fields {
        match r.uint::<usize>(&o, key, expected) {
            Some(0) => r.error(o.path_of(key), format!("expected {expected}, found 0")),
            Some(n) => *slot = n,
            None => {}
        }
    }
    options
}
