//! Every field of the configuration model is applied somewhere, never read and dropped.
//!
//! The test walks `crates/sluice-config/src/model.rs`, lists every field of every struct, and
//! checks each against [`FIELDS`]: the source file that acts on it (where `.field` must appear),
//! or the reason it is bookkeeping. A field added to the model without a reader, or a reader
//! removed while its field stays, fails here. Options Sluice cannot honour are not in the model
//! at all: the parser refuses them (see `crates/sluice-config/tests/ui`).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Not read by the gateway, on purpose (messages, raw maps, parser input).
const BOOKKEEPING: &str = "bookkeeping";

/// `Struct.field` -> the file that applies it (relative to the repository), or [`BOOKKEEPING`].
const FIELDS: &[(&str, &str)] = &[
    ("Config.source", "crates/sluice/src/commands.rs"),
    ("Config.name", BOOKKEEPING),
    ("Config.port", "crates/sluice-server/src/lib.rs"),
    ("Config.listen_ip", "crates/sluice-server/src/lib.rs"),
    ("Config.timeout", "crates/sluice-config/src/parse.rs"),
    ("Config.cache_ttl", "crates/sluice-config/src/parse.rs"),
    ("Config.host", "crates/sluice-config/src/parse.rs"),
    (
        "Config.output_encoding",
        "crates/sluice-config/src/parse.rs",
    ),
    ("Config.plugin", "crates/sluice/src/commands.rs"),
    ("Config.debug_endpoint", "crates/sluice-server/src/lib.rs"),
    ("Config.echo_endpoint", "crates/sluice-server/src/lib.rs"),
    ("Config.disable_rest", "crates/sluice-config/src/parse.rs"),
    ("Config.server", "crates/sluice-server/src/lib.rs"),
    ("Config.transport", "crates/sluice-server/src/clients.rs"),
    ("Config.router", "crates/sluice-server/src/lib.rs"),
    ("Config.extra_config", BOOKKEEPING),
    ("Config.endpoints", "crates/sluice-proxy/src/endpoint.rs"),
    ("Config.unknown_namespaces", "crates/sluice/src/commands.rs"),
    ("Config.sluice_server", "crates/sluice-server/src/lib.rs"),
    ("Config.tls", "crates/sluice-server/src/tls.rs"),
    ("Config.client_tls", "crates/sluice-server/src/clients.rs"),
    ("Backend.client_tls", "crates/sluice-server/src/clients.rs"),
    ("ServerTls.json_path", "crates/sluice-server/src/tls.rs"),
    ("ServerTls.keys", "crates/sluice-server/src/tls.rs"),
    ("ServerTls.protocol", "crates/sluice-server/src/tls.rs"),
    ("ServerTls.enable_mtls", "crates/sluice-server/src/tls.rs"),
    ("ServerTls.ca_certs", "crates/sluice-server/src/tls.rs"),
    (
        "ServerTls.disable_system_ca_pool",
        "crates/sluice-server/src/tls.rs",
    ),
    (
        "ServerTls.prefer_server_cipher_suites",
        "crates/sluice-server/src/tls.rs",
    ),
    ("TlsKeyPair.public_key", "crates/sluice-server/src/tls.rs"),
    ("TlsKeyPair.private_key", "crates/sluice-server/src/tls.rs"),
    ("ClientTls.json_path", "crates/sluice-client/src/tls.rs"),
    (
        "ClientTls.allow_insecure_connections",
        "crates/sluice-client/src/tls.rs",
    ),
    ("ClientTls.ca_certs", "crates/sluice-client/src/tls.rs"),
    (
        "ClientTls.disable_system_ca_pool",
        "crates/sluice-client/src/tls.rs",
    ),
    ("ClientTls.client_certs", "crates/sluice-client/src/tls.rs"),
    ("ClientTls.protocol", "crates/sluice-client/src/tls.rs"),
    (
        "TlsClientCert.certificate",
        "crates/sluice-client/src/tls.rs",
    ),
    (
        "TlsClientCert.private_key",
        "crates/sluice-client/src/tls.rs",
    ),
    ("TlsFile.path", "crates/sluice-client/src/tls.rs"),
    ("TlsFile.json_path", "crates/sluice-client/src/tls.rs"),
    ("TlsProtocol.min_version", "crates/sluice-client/src/tls.rs"),
    ("TlsProtocol.max_version", "crates/sluice-client/src/tls.rs"),
    (
        "TlsProtocol.cipher_suites",
        "crates/sluice-client/src/tls.rs",
    ),
    (
        "TlsProtocol.curve_preferences",
        "crates/sluice-client/src/tls.rs",
    ),
    (
        "Config.opentelemetry",
        "crates/sluice-server/src/telemetry.rs",
    ),
    ("Config.logging", "crates/sluice/src/commands.rs"),
    ("Endpoint.telemetry", "crates/sluice-proxy/src/telemetry.rs"),
    ("Backend.telemetry", "crates/sluice-proxy/src/telemetry.rs"),
    (
        "SluiceServerOptions.max_connections",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "SluiceServerOptions.max_buffered_body_bytes",
        "crates/sluice-server/src/lib.rs",
    ),
    ("UnknownNamespace.path", "crates/sluice/src/commands.rs"),
    (
        "UnknownNamespace.namespace",
        "crates/sluice/src/commands.rs",
    ),
    ("UnknownNamespace.class", "crates/sluice/src/commands.rs"),
    (
        "LoadOptions.allow_unenforced",
        "crates/sluice-config/src/model.rs",
    ),
    (
        "LoadOptions.environment",
        "crates/sluice-config/src/load.rs",
    ),
    ("Config.env_overrides", "crates/sluice/src/commands.rs"),
    ("Config.digest", "crates/sluice-server/src/lib.rs"),
    ("LoadOptions.components", "crates/sluice-config/src/read.rs"),
    ("Component.namespace", "crates/sluice-config/src/read.rs"),
    ("Component.levels", "crates/sluice-config/src/extra.rs"),
    ("EnvOverride.key", "crates/sluice/src/commands.rs"),
    ("EnvOverride.variable", "crates/sluice/src/commands.rs"),
    ("PluginFolder.folder", "crates/sluice-wasm/src/loader.rs"),
    ("PluginFolder.pattern", "crates/sluice-wasm/src/loader.rs"),
    ("PluginFolder.sha256", "crates/sluice-wasm/src/loader.rs"),
    (
        "ServerOptions.read_timeout",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "ServerOptions.write_timeout",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "ServerOptions.idle_timeout",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "ServerOptions.read_header_timeout",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "ServerOptions.max_header_bytes",
        "crates/sluice-server/src/lib.rs",
    ),
    ("ServerOptions.use_h2c", "crates/sluice-server/src/lib.rs"),
    (
        "ServerOptions.max_shutdown_wait_time",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "TransportOptions.disable_keep_alives",
        "crates/sluice-client/src/lib.rs",
    ),
    (
        "TransportOptions.disable_compression",
        "crates/sluice-client/src/lib.rs",
    ),
    (
        "TransportOptions.max_idle_connections_per_host",
        "crates/sluice-client/src/lib.rs",
    ),
    (
        "TransportOptions.idle_connection_timeout",
        "crates/sluice-client/src/lib.rs",
    ),
    (
        "TransportOptions.response_header_timeout",
        "crates/sluice-client/src/lib.rs",
    ),
    (
        "TransportOptions.dialer_timeout",
        "crates/sluice-client/src/lib.rs",
    ),
    (
        "TransportOptions.dialer_fallback_delay",
        "crates/sluice-client/src/lib.rs",
    ),
    (
        "TransportOptions.dialer_keep_alive",
        "crates/sluice-client/src/lib.rs",
    ),
    (
        "RouterOptions.return_error_msg",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "RouterOptions.auto_options",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "RouterOptions.disable_health",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "RouterOptions.health_path",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "RouterOptions.hide_version_header",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "RouterOptions.disable_redirect_trailing_slash",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "RouterOptions.disable_redirect_fixed_path",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "RouterOptions.disable_handle_method_not_allowed",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "RouterOptions.forwarded_by_client_ip",
        "crates/sluice-server/src/client_ip.rs",
    ),
    (
        "RouterOptions.remote_ip_headers",
        "crates/sluice-server/src/client_ip.rs",
    ),
    (
        "RouterOptions.trusted_proxies",
        "crates/sluice-server/src/client_ip.rs",
    ),
    (
        "RouterOptions.disable_access_log",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "RouterOptions.disable_path_decoding",
        "crates/sluice-server/src/lib.rs",
    ),
    (
        "RouterOptions.error_body",
        "crates/sluice-server/src/lib.rs",
    ),
    ("Endpoint.json_path", "crates/sluice/src/plugin.rs"),
    ("Endpoint.endpoint", "crates/sluice-server/src/router.rs"),
    ("Endpoint.method", "crates/sluice-server/src/router.rs"),
    ("Endpoint.backends", "crates/sluice-proxy/src/endpoint.rs"),
    (
        "Endpoint.concurrent_calls",
        "crates/sluice-proxy/src/backend.rs",
    ),
    ("Endpoint.timeout", "crates/sluice-proxy/src/endpoint.rs"),
    ("Endpoint.cache_ttl", "crates/sluice-proxy/src/respond.rs"),
    (
        "Endpoint.input_query_strings",
        "crates/sluice-proxy/src/request.rs",
    ),
    (
        "Endpoint.input_headers",
        "crates/sluice-proxy/src/request.rs",
    ),
    (
        "Endpoint.output_encoding",
        "crates/sluice-proxy/src/endpoint.rs",
    ),
    ("Endpoint.proxy", "crates/sluice-proxy/src/endpoint.rs"),
    ("Endpoint.extra_config", BOOKKEEPING),
    (
        "EndpointProxyOptions.sequential",
        "crates/sluice-proxy/src/endpoint.rs",
    ),
    // Each listed `resp<N>_<path>` is what a later `{Resp<N>_<path>}` placeholder reads.
    (
        "EndpointProxyOptions.sequential_propagated_params",
        "crates/sluice-config/src/parse.rs",
    ),
    (
        "EndpointProxyOptions.static_response",
        "crates/sluice-proxy/src/endpoint.rs",
    ),
    (
        "EndpointProxyOptions.flatmap_filter",
        "crates/sluice-proxy/src/endpoint.rs",
    ),
    (
        "StaticResponse.strategy",
        "crates/sluice-proxy/src/endpoint.rs",
    ),
    ("StaticResponse.data", "crates/sluice-proxy/src/endpoint.rs"),
    ("Backend.json_path", "crates/sluice/src/plugin.rs"),
    ("Backend.host", "crates/sluice-proxy/src/request.rs"),
    ("Backend.url_pattern", "crates/sluice-proxy/src/request.rs"),
    ("Backend.method", "crates/sluice-proxy/src/request.rs"),
    ("Backend.encoding", "crates/sluice-proxy/src/backend.rs"),
    (
        "Backend.is_collection",
        "crates/sluice-proxy/src/backend.rs",
    ),
    ("Backend.allow", "crates/sluice-transform/src/format.rs"),
    ("Backend.deny", "crates/sluice-transform/src/format.rs"),
    ("Backend.mapping", "crates/sluice-transform/src/format.rs"),
    ("Backend.group", "crates/sluice-transform/src/format.rs"),
    ("Backend.target", "crates/sluice-transform/src/format.rs"),
    (
        "Backend.input_headers",
        "crates/sluice-proxy/src/request.rs",
    ),
    (
        "Backend.input_query_strings",
        "crates/sluice-proxy/src/request.rs",
    ),
    (
        "Backend.flatmap_filter",
        "crates/sluice-transform/src/format.rs",
    ),
    ("Backend.shadow", "crates/sluice-proxy/src/endpoint.rs"),
    (
        "Backend.shadow_timeout",
        "crates/sluice-proxy/src/shadow.rs",
    ),
    ("Backend.http", "crates/sluice-proxy/src/backend.rs"),
    (
        "Backend.send_body_on_redirect",
        "crates/sluice-proxy/src/backend.rs",
    ),
    ("Backend.plugin", "crates/sluice-proxy/src/endpoint.rs"),
    ("Backend.extra_config", BOOKKEEPING),
    (
        "BackendHttpOptions.return_error_code",
        "crates/sluice-proxy/src/backend.rs",
    ),
    (
        "BackendHttpOptions.return_error_details",
        "crates/sluice-proxy/src/backend.rs",
    ),
    ("PluginRef.name", "crates/sluice-proxy/src/plugins.rs"),
    ("PluginRef.extra", "crates/sluice-proxy/src/plugins.rs"),
    ("PluginRef.json_path", "crates/sluice-proxy/src/endpoint.rs"),
    (
        "PluginRef.settings_path",
        "crates/sluice-proxy/src/plugins.rs",
    ),
    ("PluginRef.chain", "crates/sluice-proxy/src/plugins.rs"),
    ("PluginLink.name", "crates/sluice-proxy/src/plugins.rs"),
    ("PluginLink.name_path", "crates/sluice-proxy/src/plugins.rs"),
    (
        "PluginLink.settings_path",
        "crates/sluice-proxy/src/plugins.rs",
    ),
    ("PluginLink.limits", "crates/sluice-proxy/src/plugins.rs"),
    (
        "PluginLink.limits_path",
        "crates/sluice-proxy/src/plugins.rs",
    ),
    ("Config.grpc", "crates/sluice-grpc/src/lib.rs"),
    ("GrpcCatalog.catalog", "crates/sluice-grpc/src/catalog.rs"),
    ("GrpcCatalog.written", "crates/sluice-grpc/src/catalog.rs"),
    ("GrpcCatalog.json_path", "crates/sluice-grpc/src/catalog.rs"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `Struct.field` for every field of every `pub struct` in the model.
fn model_fields() -> BTreeSet<String> {
    let model = std::fs::read_to_string(repo().join("crates/sluice-config/src/model.rs")).unwrap();
    let mut fields = BTreeSet::new();
    let mut current: Option<String> = None;
    for line in model.lines() {
        if let Some(rest) = line.strip_prefix("pub struct ") {
            current = rest
                .split([' ', '{', '<'])
                .next()
                .filter(|_| line.trim_end().ends_with('{'))
                .map(str::to_owned);
        } else if line == "}" {
            current = None;
        } else if let (Some(name), Some(field)) = (&current, line.strip_prefix("    pub "))
            && let Some((field, _)) = field.split_once(':')
        {
            fields.insert(format!("{name}.{field}"));
        }
    }
    fields
}

/// Whether `.field` appears in `file` as a field access (not a method call).
fn reads(file: &str, field: &str) -> bool {
    let text = std::fs::read_to_string(repo().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let needle = format!(".{field}");
    text.match_indices(&needle).any(|(at, _)| {
        let next = text[at + needle.len()..].chars().next();
        !next.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '(')
    })
}

#[test]
fn every_config_field_is_applied_or_refused() {
    let fields = model_fields();
    assert!(
        fields.len() > 50,
        "the model walk found too little: {fields:?}"
    );
    let listed: BTreeSet<String> = FIELDS.iter().map(|(f, _)| (*f).to_owned()).collect();

    let unlisted: Vec<_> = fields.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "fields with no known reader (apply them, or refuse them in the parser and drop them \
         from the model): {unlisted:?}"
    );
    let stale: Vec<_> = listed.difference(&fields).collect();
    assert!(
        stale.is_empty(),
        "FIELDS lists fields the model no longer has: {stale:?}"
    );

    let mut unread = Vec::new();
    for (qualified, file) in FIELDS {
        if *file == BOOKKEEPING {
            continue;
        }
        let field = qualified.split_once('.').unwrap().1;
        if !reads(file, field) {
            unread.push(format!("{qualified} is not read in {file}"));
        }
    }
    assert!(unread.is_empty(), "{unread:#?}");
}
