//! The configuration model, every default already applied. Built once at start-up.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

/// The whole service (KrakenD's `ServiceConfig`).
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages).
    pub source: PathBuf,
    /// `name`.
    pub name: String,
    /// `port`, default 8080.
    pub port: u16,
    /// `listen_ip`, default all interfaces.
    pub listen_ip: Option<IpAddr>,
    /// `timeout`, default 2s.
    pub timeout: Duration,
    /// `cache_ttl`, default none.
    pub cache_ttl: Duration,
    /// `host`: default backend hosts (sanitised).
    pub host: Vec<String>,
    /// `output_encoding`, default json.
    pub output_encoding: OutputEncoding,
    /// `plugin`: where component plugins are loaded from.
    pub plugin: Option<PluginFolder>,
    /// `debug_endpoint`: serve `/__debug/*`.
    pub debug_endpoint: bool,
    /// `echo_endpoint`: serve `/__echo/*`.
    pub echo_endpoint: bool,
    /// `disable_rest`: relaxed `{param}` syntax.
    pub disable_rest: bool,
    /// HTTP server options.
    pub server: ServerOptions,
    /// Outgoing transport options for the default client.
    pub transport: TransportOptions,
    /// `tls`: HTTPS on the listener; `None` when absent or `disabled`.
    pub tls: Option<ServerTls>,
    /// `client_tls` (and the legacy top-level `allow_insecure_connections`): how the default
    /// client verifies and authenticates to https backends; `None` for the defaults (the
    /// system's roots, TLS 1.2 and 1.3).
    pub client_tls: Option<ClientTls>,
    /// `extra_config.router`.
    pub router: RouterOptions,
    /// `extra_config."sluice/server"`: Sluice's own resource limits.
    pub sluice_server: SluiceServerOptions,
    /// `extra_config."telemetry/opentelemetry"`: metrics and traces.
    pub opentelemetry: Option<crate::OpenTelemetry>,
    /// `extra_config."telemetry/logging"`: the application log.
    pub logging: Option<crate::Logging>,
    /// `extra_config.grpc`: the protobuf catalog of gRPC backends, if any.
    pub grpc: Option<GrpcCatalog>,
    /// The service `extra_config`, aliases normalised to their short names.
    pub extra_config: Map<String, Value>,
    /// Endpoints, in file order.
    pub endpoints: Vec<Endpoint>,
    /// Namespaces in any `extra_config` the gateway does not know, with the JSON path of each.
    pub unknown_namespaces: Vec<UnknownNamespace>,
    /// The root values taken from `SLUICE_*` or `KRAKEND_*` environment variables.
    pub env_overrides: Vec<EnvOverride>,
    /// A short hash of the settings (after templates and environment overrides): which config
    /// a gateway serves, in `/__health` and the reload logs.
    pub digest: String,
}

/// A root value of the config replaced by an environment variable (KrakenD's `KRAKEND_PORT`,
/// `KRAKEND_TIMEOUT`..., or Sluice's `SLUICE_PORT`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvOverride {
    /// The root key, e.g. `port`.
    pub key: String,
    /// The variable its value came from, e.g. `KRAKEND_PORT`.
    pub variable: String,
}

/// An `extra_config` key the gateway does not act on, and accepted anyway: one that only
/// observes or describes traffic, or one the operator opted out of explicitly. Any other is a
/// configuration error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownNamespace {
    /// JSON path of the key, e.g. `endpoints[0].extra_config["telemetry/opentelemetry"]`.
    pub path: String,
    /// The namespace.
    pub namespace: String,
    /// Why it was accepted.
    pub class: NamespaceClass,
}

/// Why a namespace Sluice does not act on was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceClass {
    /// It only observes or describes traffic (`telemetry/*`, `documentation/*`): a warning.
    ObserveOnly,
    /// It restricts or changes traffic, and the operator opted out of it by name
    /// (`--allow-unenforced`): served without it, logged at start-up.
    OptedOut,
}

/// How a config is loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Namespaces served without being enforced, by the operator's explicit choice
    /// (`sluice run --allow-unenforced NAMESPACE`): exact names, or a prefix ending in `/*`
    /// (`qos/*`). Every other namespace Sluice does not implement is an error.
    pub allow_unenforced: Vec<String>,
    /// The environment variables read for root overrides (`KRAKEND_*`, `SLUICE_*`) and the
    /// flexible configuration (`FC_*`, and the template function `env`). Empty by default: the
    /// `sluice` command passes [`Environment::from_process`].
    pub environment: Environment,
    /// The namespaces the gateway's components read (JWT, CORS, rate limits...), and where: the
    /// parser keeps each in the `extra_config` of its level for the component, which checks it
    /// when the gateway is built, and refuses it at any other level.
    pub components: Vec<Component>,
}

/// An `extra_config` namespace a component of the gateway reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Its name as KrakenD spells it (`security/cors`).
    pub namespace: String,
    /// Where it may be.
    pub levels: Vec<Level>,
}

/// Where an `extra_config` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The service's (root) `extra_config`.
    Service,
    /// An endpoint's.
    Endpoint,
    /// A backend's.
    Backend,
}

impl Level {
    /// `service`, `endpoint` or `backend`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Service => "service",
            Level::Endpoint => "endpoint",
            Level::Backend => "backend",
        }
    }
}

/// A snapshot of environment variables.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The process's environment (variables whose name or value is not UTF-8 are left out).
    pub fn from_process() -> Self {
        std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect()
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Environment {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            vars: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl fmt::Debug for Environment {
    /// The number of variables only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Environment({} variables)", self.vars.len())
    }
}

impl LoadOptions {
    /// Whether the operator opted out of enforcing `namespace`.
    pub fn allows_unenforced(&self, namespace: &str) -> bool {
        self.allow_unenforced.iter().any(|allowed| {
            allowed == namespace
                || allowed
                    .strip_suffix('*')
                    .is_some_and(|prefix| prefix.ends_with('/') && namespace.starts_with(prefix))
        })
    }
}

/// `plugin.folder` and `plugin.pattern`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFolder {
    /// Folder scanned (not recursively), relative paths resolved against the config file's folder.
    pub folder: PathBuf,
    /// A file is a candidate when its name contains this substring.
    pub pattern: String,
    /// `sha256`: integrity pins, plugin name -> the SHA-256 of its file (64 lower-case hex
    /// digits). A pinned plugin whose file differs or is missing stops start-up.
    pub sha256: std::collections::BTreeMap<String, String>,
}

/// HTTP server options of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerOptions {
    /// `read_timeout`: the deadline for reading a client body (0 = Sluice's 30s default).
    pub read_timeout: Duration,
    /// `write_timeout`: the deadline for writing a response (0 = none).
    pub write_timeout: Duration,
    /// `idle_timeout`: how long a keep-alive connection may wait for its next request
    /// (0 = `read_timeout`, as Go's server).
    pub idle_timeout: Duration,
    /// `read_header_timeout` (0 = hyper's 30s, against slow-loris).
    pub read_header_timeout: Duration,
    /// `max_header_bytes`, default 64 KiB (Go's is 1 MiB).
    pub max_header_bytes: usize,
    /// `use_h2c`.
    pub use_h2c: bool,
    /// `max_shutdown_wait_time`, default 1s.
    pub max_shutdown_wait_time: Duration,
}

/// `extra_config."sluice/server"` of the service: limits KrakenD has no field for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SluiceServerOptions {
    /// `max_connections`: client connections served at once, default 4096. Connections past
    /// the cap wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// `max_buffered_body_bytes`: the process-wide budget for client bodies being buffered,
    /// default 64 MiB (four bodies of the 16 MiB maximum). A body that does not fit gets 503 at once.
    pub max_buffered_body_bytes: usize,
}

impl Default for SluiceServerOptions {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_buffered_body_bytes: 64 << 20,
        }
    }
}

/// Outgoing transport options (the default client).
#[derive(Debug, Clone, PartialEq)]
pub struct TransportOptions {
    /// `disable_keep_alives`.
    pub disable_keep_alives: bool,
    /// `disable_compression`: do not ask for gzip.
    pub disable_compression: bool,
    /// `max_idle_connections_per_host`, default 250.
    pub max_idle_connections_per_host: usize,
    /// `idle_connection_timeout`, default 90s.
    pub idle_connection_timeout: Duration,
    /// `response_header_timeout` (0 = bounded by the deadline only).
    pub response_header_timeout: Duration,
    /// `dialer_timeout`, default 30s.
    pub dialer_timeout: Duration,
    /// `dialer_fallback_delay`, default 300ms.
    pub dialer_fallback_delay: Duration,
    /// `dialer_keep_alive`, default 30s.
    pub dialer_keep_alive: Duration,
}

/// A file named in a TLS block, with the JSON path that names it (for messages).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsFile {
    /// The path as written: absolute, or relative to the working directory (as KrakenD).
    pub path: PathBuf,
    /// JSON path of the string that names it, e.g. `tls.keys[1].private_key`.
    pub json_path: String,
}

/// A TLS protocol version Sluice can speak (rustls has TLS 1.2 and 1.3 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// `TLS12`.
    Tls12,
    /// `TLS13`, KrakenD's default for both ends of the range.
    Tls13,
}

/// What is negotiated: versions, cipher suites and key-exchange groups.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsProtocol {
    /// `min_version`, default `TLS13` (KrakenD's).
    pub min_version: TlsVersion,
    /// `max_version`, default `TLS13`.
    pub max_version: TlsVersion,
    /// `cipher_suites`: IANA ids, each one rustls implements, in order of preference; empty for
    /// every suite. TLS 1.3 suites listed restrict TLS 1.3; none listed leaves all three on (Go
    /// does not let TLS 1.3 suites be configured).
    pub cipher_suites: Vec<u16>,
    /// `curve_preferences`: IANA named-group ids (23 P-256, 24 P-384, 29 X25519), in order;
    /// empty for the provider's groups (X25519, P-256, P-384).
    pub curve_preferences: Vec<u16>,
}

/// `tls` of the service: the listener speaks HTTPS only (HTTP/1.1 and HTTP/2 by ALPN).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerTls {
    /// JSON path of the block (`tls`).
    pub json_path: String,
    /// `public_key` and `private_key`, then each of `keys`: the certificate for a client's
    /// server name (SNI) is the first that is valid for it; the first is the default.
    pub keys: Vec<TlsKeyPair>,
    /// Versions, suites, curves.
    pub protocol: TlsProtocol,
    /// `enable_mtls`: every client must present a certificate that verifies.
    pub enable_mtls: bool,
    /// `ca_certs`: the CAs client certificates are verified against (with `enable_mtls`).
    pub ca_certs: Vec<TlsFile>,
    /// `disable_system_ca_pool`: trust only `ca_certs` for client certificates.
    pub disable_system_ca_pool: bool,
    /// `prefer_server_cipher_suites`: the listener's order of suites wins over the client's.
    pub prefer_server_cipher_suites: bool,
}

/// One certificate (chain) and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsKeyPair {
    /// `public_key`: the certificate chain, leaf first.
    pub public_key: TlsFile,
    /// `private_key`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub private_key: TlsFile,
}

/// `client_tls`: how https backends are verified, and the certificate shown to them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientTls {
    /// JSON path of the block.
    pub json_path: String,
    /// `allow_insecure_connections`: backend certificates are not verified at all.
    pub allow_insecure_connections: bool,
    /// `ca_certs`: CAs trusted beside (or, with `disable_system_ca_pool`, instead of) the
    /// system's roots.
    pub ca_certs: Vec<TlsFile>,
    /// `disable_system_ca_pool`.
    pub disable_system_ca_pool: bool,
    /// `client_certs`: certificates offered to backends that ask for one (mTLS).
    pub client_certs: Vec<TlsClientCert>,
    /// Versions, suites, curves.
    pub protocol: TlsProtocol,
}

/// One of `client_tls.client_certs`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsClientCert {
    /// `certificate`: the chain, leaf first.
    pub certificate: TlsFile,
    /// `private_key`.
    pub private_key: TlsFile,
}

/// `extra_config.router` (alias `github_com/luraproject/lura/router/gin`).
#[derive(Debug, Clone, PartialEq)]
pub struct RouterOptions {
    /// `return_error_msg`: error text in 5xx bodies.
    pub return_error_msg: bool,
    /// `auto_options`: answer OPTIONS with `Allow`.
    pub auto_options: bool,
    /// `disable_health`.
    pub disable_health: bool,
    /// `health_path`, default `/__health`.
    pub health_path: String,
    /// `hide_version_header`.
    pub hide_version_header: bool,
    /// `disable_redirect_trailing_slash`.
    pub disable_redirect_trailing_slash: bool,
    /// `disable_redirect_fixed_path`.
    pub disable_redirect_fixed_path: bool,
    /// `disable_handle_method_not_allowed`.
    pub disable_handle_method_not_allowed: bool,
    /// `forwarded_by_client_ip`.
    pub forwarded_by_client_ip: bool,
    /// `remote_ip_headers`.
    pub remote_ip_headers: Vec<String>,
    /// `trusted_proxies` (IPs or CIDRs, as written).
    pub trusted_proxies: Vec<String>,
    /// `disable_access_log`.
    pub disable_access_log: bool,
    /// `disable_path_decoding`.
    pub disable_path_decoding: bool,
    /// `error_body`: JSON bodies for "404" and "405".
    pub error_body: BTreeMap<String, Value>,
}

/// Output encodings of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputEncoding {
    /// `json` (default).
    Json,
    /// `json-collection`: the `collection` array.
    JsonCollection,
    /// `string`: the `content` string.
    String,
    /// `no-op`: the backend's answer verbatim.
    NoOp,
    /// `negotiate`: by the `Accept` header.
    Negotiate,
    /// `xml`.
    Xml,
    /// `yaml`.
    Yaml,
}

/// Backend (input) encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `json` (default; an unknown name is a config error, where KrakenD falls back to json).
    Json,
    /// `safejson`.
    SafeJson,
    /// `string`.
    String,
    /// `no-op`.
    NoOp,
    /// `xml`.
    Xml,
    /// `rss`: an RSS or Atom feed (KrakenD CE's krakend-rss).
    Rss,
}

/// One endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// JSON path of the endpoint, e.g. `endpoints[3]`.
    pub json_path: String,
    /// `endpoint`: the path template, leading `/` enforced.
    pub endpoint: String,
    /// `method`, upper-cased, default GET.
    pub method: http::Method,
    /// `backend`.
    pub backends: Vec<Backend>,
    /// `concurrent_calls`, default 1.
    pub concurrent_calls: u32,
    /// `timeout`, default the service's.
    pub timeout: Duration,
    /// `cache_ttl`, default the service's.
    pub cache_ttl: Duration,
    /// `input_query_strings`, default none (`*` = all).
    pub input_query_strings: Vec<String>,
    /// `input_headers`, default `[Content-Type]` (`*` = all).
    pub input_headers: Vec<String>,
    /// `output_encoding`, default the service's.
    pub output_encoding: OutputEncoding,
    /// `extra_config.proxy` options that act on the endpoint.
    pub proxy: EndpointProxyOptions,
    /// `extra_config."telemetry/opentelemetry"` of the endpoint.
    pub telemetry: Option<crate::EndpointTelemetry>,
    /// The endpoint `extra_config`, aliases normalised.
    pub extra_config: Map<String, Value>,
}

/// `extra_config.proxy` of an endpoint.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EndpointProxyOptions {
    /// `sequential`.
    pub sequential: bool,
    /// `sequential_propagated_params`: `resp<N>_<path>` (a value of backend N's data) and
    /// `resp<N>` (the raw body of the no-op backend N), written `resp` whichever way the config
    /// spelt it.
    pub sequential_propagated_params: Vec<String>,
    /// `static`.
    pub static_response: Option<StaticResponse>,
    /// `flatmap_filter` on the merged answer.
    pub flatmap_filter: Vec<FlatmapOp>,
}

/// `proxy.static`.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticResponse {
    /// When to apply it.
    pub strategy: StaticStrategy,
    /// The data merged on top.
    pub data: Map<String, Value>,
}

/// `proxy.static.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticStrategy {
    /// `always` (default).
    Always,
    /// `success`: no error.
    Success,
    /// `errored`: an error.
    Errored,
    /// `complete`: no error and complete.
    Complete,
    /// `incomplete`: no response or incomplete.
    Incomplete,
}

/// One `flatmap_filter` operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlatmapOp {
    /// `move` from the first path to the second.
    Move(String, String),
    /// `del` the path.
    Del(String),
    /// `append` the array at the first path to the array at the second.
    Append(String, String),
}

/// One backend of an endpoint.
#[derive(Debug, Clone)]
pub struct Backend {
    /// JSON path of the backend, e.g. `endpoints[3].backend[0]`.
    pub json_path: String,
    /// `host`, sanitised (default the service's).
    pub host: Vec<String>,
    /// `url_pattern`.
    pub url_pattern: String,
    /// `method`, upper-cased, default the endpoint's.
    pub method: http::Method,
    /// `encoding`.
    pub encoding: Encoding,
    /// `is_collection`.
    pub is_collection: bool,
    /// `allow`.
    pub allow: Vec<String>,
    /// `deny`.
    pub deny: Vec<String>,
    /// `mapping`: top-level renames.
    pub mapping: BTreeMap<String, String>,
    /// `group`.
    pub group: Option<String>,
    /// `target`.
    pub target: Option<String>,
    /// Backend-level `input_headers` (a further subset), if set.
    pub input_headers: Option<Vec<String>>,
    /// Backend-level `input_query_strings` (a further subset), if set.
    pub input_query_strings: Option<Vec<String>>,
    /// `extra_config.proxy.flatmap_filter`.
    pub flatmap_filter: Vec<FlatmapOp>,
    /// `extra_config.proxy.shadow`: a shadow (traffic mirroring) backend, called with the
    /// endpoint's request beside the other backends and its answer discarded.
    pub shadow: bool,
    /// `extra_config.proxy.shadow_timeout`: the deadline of a shadow backend's call, from the
    /// start of the request (`None`, or `0` as written: the endpoint's timeout). Read only when
    /// `shadow` is true, as KrakenD.
    pub shadow_timeout: Option<Duration>,
    /// `extra_config."backend/http"`.
    pub http: BackendHttpOptions,
    /// `extra_config."backend/http/client".send_body_on_redirect`.
    pub send_body_on_redirect: bool,
    /// `extra_config."backend/http/client".client_tls`: the backend's own TLS settings (and so
    /// its own connection pool), replacing the service's `client_tls` for this backend.
    pub client_tls: Option<ClientTls>,
    /// `extra_config."plugin/http-client"`.
    pub plugin: Option<PluginRef>,
    /// `extra_config."telemetry/opentelemetry".backend`: this backend's layer options.
    pub telemetry: Option<crate::BackendLayer>,
    /// The backend `extra_config`, aliases normalised.
    pub extra_config: Map<String, Value>,
}

/// `extra_config."backend/http"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackendHttpOptions {
    /// `return_error_code`.
    pub return_error_code: bool,
    /// `return_error_details`: the alias, if set.
    pub return_error_details: Option<String>,
}

/// `extra_config.grpc` of the service (KrakenD Enterprise's gRPC catalog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCatalog {
    /// `catalog`: descriptor sets (`.pb`), `.proto` files and folders holding them, relative
    /// paths resolved against the config file's folder.
    pub catalog: Vec<PathBuf>,
    /// The entries as written, for messages.
    pub written: Vec<String>,
    /// JSON path of the `catalog` list, for messages.
    pub json_path: String,
}

/// A backend's `plugin/http-client` block (or its `backend/grpc` block, read as the plugin
/// `grpc`).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginRef {
    /// `name`: the plugin; for a chain (`name` a list of two or more), the last one, which
    /// answers the call (the others are in [`PluginRef::chain`]).
    pub name: String,
    /// The whole object (with `name`), as given to the plugin factory.
    pub extra: Map<String, Value>,
    /// JSON path of the block, for messages.
    pub json_path: String,
    /// JSON path of the plugin's settings (the object under its name; for `backend/grpc`, the
    /// block itself), for messages.
    pub settings_path: String,
    /// `name` as a list of two or more plugins: every one of them in order, the last included
    /// (it is also [`PluginRef::name`]). Empty when `name` is one string (or a list of one).
    pub chain: Vec<PluginLink>,
}

/// One plugin of a chain (`"name": ["auth-headers", "hmac-signer", "static-answer"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLink {
    /// The plugin's name.
    pub name: String,
    /// JSON path of its item in `name` (`...["plugin/http-client"].name[1]`), for messages.
    pub name_path: String,
    /// JSON path of its settings (the object under its name).
    pub settings_path: String,
    /// Its own limits: the object under its name in the block's `limits`, overriding the
    /// limit keys beside `name` for this plugin only (empty without one).
    pub limits: Map<String, Value>,
    /// JSON path of those limits (`...["plugin/http-client"].limits["hmac-signer"]`).
    pub limits_path: String,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            read_timeout: Duration::ZERO,
            write_timeout: Duration::ZERO,
            idle_timeout: Duration::ZERO,
            read_header_timeout: Duration::ZERO,
            max_header_bytes: 64 << 10,
            use_h2c: false,
            max_shutdown_wait_time: Duration::from_secs(1),
        }
    }
}

impl Default for RouterOptions {
    /// Everything off, and the health check at `/__health`.
    fn default() -> Self {
        Self {
            return_error_msg: false,
            auto_options: false,
            disable_health: false,
            health_path: "/__health".to_owned(),
            hide_version_header: false,
            disable_redirect_trailing_slash: false,
            disable_redirect_fixed_path: false,
            disable_handle_method_not_allowed: false,
            forwarded_by_client_ip: false,
            remote_ip_headers: Vec::new(),
            trusted_proxies: Vec::new(),
            disable_access_log: false,
            disable_path_decoding: false,
            error_body: BTreeMap::new(),
        }
    }
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            disable_keep_alives: false,
            disable_compression: false,
            max_idle_connections_per_host: 250,
            idle_connection_timeout: Duration::from_secs(90),
            response_header_timeout: Duration::ZERO,
            dialer_timeout: Duration::from_secs(30),
            dialer_fallback_delay: Duration::from_millis(300),
            dialer_keep_alive: Duration::from_secs(30),
        }
    }
}

impl TlsVersion {
    /// KrakenD's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        }
    }
}

impl Default for TlsProtocol {
    /// KrakenD's: TLS 1.3 only, every suite, the default groups.
    fn default() -> Self {
        Self {
            min_version: TlsVersion::Tls13,
            max_version: TlsVersion::Tls13,
            cipher_suites: Vec::new(),
            curve_preferences: Vec::new(),
        }
    }
}

impl Endpoint {
    /// `METHOD /path`, for messages and logs.
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.endpoint)
    }
}

impl Encoding {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::SafeJson => "safejson",
            Encoding::String => "string",
            Encoding::NoOp => "no-op",
            Encoding::Xml => "xml",
            Encoding::Rss => "rss",
        }
    }
}

impl OutputEncoding {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputEncoding::Json => "json",
            OutputEncoding::JsonCollection => "json-collection",
            OutputEncoding::String => "string",
            OutputEncoding::NoOp => "no-op",
            OutputEncoding::Negotiate => "negotiate",
            OutputEncoding::Xml => "xml",
            OutputEncoding::Yaml => "yaml",
        }
    }
}
