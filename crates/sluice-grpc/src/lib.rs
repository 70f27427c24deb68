//! gRPC backends: KrakenD Enterprise's `backend/grpc`, with no code generation.
//!
//! The service's `grpc.catalog` ([`Catalog`]) is loaded once per config; each backend that
//! names `backend/grpc` (or `"plugin/http-client": {"name": "grpc", "grpc": {...}}`) gets a
//! [`GrpcPlugin`] executor: its `url_pattern` is the method (`/package.Service/Method`), the
//! input message is built from the request's `{params}`, query and (with
//! `use_request_body`) JSON body, the call goes over HTTP/2 (h2c for `http` hosts, TLS with
//! ALPN for `https`, with the backend's `client_tls` or the service's) with the deadline as `grpc-timeout` and the forwarded headers as
//! metadata, and the answer is handed to the pipeline as data ([`sluice_plugin::Decoded`]),
//! mapped to JSON by the protobuf JSON mapping and KrakenD's `output_*` switches. A status
//! other than OK becomes its HTTP equivalent with `grpc-message` as the body, so
//! `return_error_code` and `return_error_details` work as for HTTP backends. A
//! server-streaming method answers the JSON array of its messages (KrakenD refuses them);
//! client and bidirectional streaming are refused at start-up.

mod catalog;
mod decode;
mod executor;
mod input;
mod output;
mod settings;
mod wire;
mod wkt;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost_reflect::MethodDescriptor;
use sluice_client::Http2Client;
use sluice_config::{ClientTls, Config, TransportOptions};
use sluice_plugin::{ClientPlugin, PluginContext, PluginError, SharedExecutor};

pub use catalog::Catalog;
pub use settings::{Naming, Settings};

use crate::decode::Decoder;
use crate::executor::GrpcExecutor;
use crate::input::InputPlan;
use crate::output::OutputOptions;

/// The compiled-in client plugin `grpc`: a factory of gRPC executors over one catalog.
#[derive(Debug)]
pub struct GrpcPlugin {
    catalog: Option<Arc<Catalog>>,
    transport: TransportOptions,
    /// The service's `client_tls`: what `https` gRPC hosts are called with by default.
    service_tls: Option<ClientTls>,
    /// Backends with TLS settings of their own (`backend/grpc.client_tls` or
    /// `backend/http/client.client_tls`), by the backend's JSON path.
    backend_tls: HashMap<String, ClientTls>,
    /// HTTP/2 clients by idle timeout and TLS settings: backends with the same settings share
    /// connections.
    clients: Mutex<Vec<(ClientKey, Arc<Http2Client>)>>,
}

type ClientKey = (Duration, Option<ClientTls>);

impl GrpcPlugin {
    /// A factory over `catalog` (`None`: a config without `grpc.catalog`, whose gRPC backends
    /// are refused), connecting as `transport` says.
    pub fn new(catalog: Option<Catalog>, transport: TransportOptions) -> Self {
        Self {
            catalog: catalog.map(Arc::new),
            transport,
            service_tls: None,
            backend_tls: HashMap::new(),
            clients: Mutex::new(Vec::new()),
        }
    }

    /// `https` hosts are called with `service` (the service's `client_tls`) unless a backend
    /// has TLS settings of its own in `backends` (by the backend's JSON path).
    #[must_use]
    pub fn with_tls(
        mut self,
        service: Option<ClientTls>,
        backends: HashMap<String, ClientTls>,
    ) -> Self {
        self.service_tls = service;
        self.backend_tls = backends;
        self
    }

    /// The factory for `config`: its catalog loaded (every problem reported with the config
    /// file and the JSON path of the catalog entry), its transport options.
    pub fn from_config(config: &Config) -> Result<Self, Vec<String>> {
        let catalog = match &config.grpc {
            Some(grpc) => Some(Catalog::load(&config.source, grpc)?),
            None => None,
        };
        let backend_tls = config
            .endpoints
            .iter()
            .flat_map(|e| &e.backends)
            .filter_map(|b| Some((b.json_path.clone(), b.client_tls.clone()?)))
            .collect();
        Ok(Self::new(catalog, config.transport.clone())
            .with_tls(config.client_tls.clone(), backend_tls))
    }

    /// The pooled client for `idle_timeout` and the TLS settings of the backend at
    /// `backend_path`.
    fn client(
        &self,
        idle_timeout: Duration,
        backend_path: &str,
    ) -> Result<Arc<Http2Client>, PluginError> {
        let tls = self
            .backend_tls
            .get(backend_path)
            .or(self.service_tls.as_ref());
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, client)) = clients
            .iter()
            .find(|((idle, t), _)| *idle == idle_timeout && t.as_ref() == tls)
        {
            return Ok(Arc::clone(client));
        }
        let client = Http2Client::new(&self.transport, idle_timeout, tls)
            .map_err(|e| PluginError::at(e.json_path, e.message))?;
        let client = Arc::new(client);
        clients.push(((idle_timeout, tls.cloned()), Arc::clone(&client)));
        Ok(client)
    }
}

impl ClientPlugin for GrpcPlugin {
    fn kind(&self) -> String {
        "compiled-in gRPC client (backend/grpc)".to_owned()
    }

    fn build(&self, ctx: PluginContext<'_>) -> Result<SharedExecutor, String> {
        self.build_at(ctx)
            .map_err(|problems| PluginError::join(&problems))
    }

    fn build_at(&self, ctx: PluginContext<'_>) -> Result<SharedExecutor, Vec<PluginError>> {
        let settings_path = ctx.settings_path;
        let settings = Settings::parse(ctx.settings, settings_path).map_err(|errors| {
            errors
                .into_iter()
                .map(|(path, message)| PluginError::at(path, message))
                .collect::<Vec<_>>()
        })?;
        if ctx.extra.contains_key("allowed_hosts") {
            // The plugin's json path is the settings' parent: `...["plugin/http-client"]`.
            let block = settings_path
                .rsplit_once('.')
                .map_or(settings_path, |(block, _)| block);
            return Err(vec![PluginError::at(
                format!("{block}.allowed_hosts"),
                "does not apply to the gRPC client, which calls the backend's own hosts only; \
                 remove it",
            )]);
        }
        let Some(catalog) = &self.catalog else {
            return Err(vec![PluginError::at(
                settings_path,
                "a gRPC backend needs the service's protobuf catalog: add \
                 \"grpc\": {\"catalog\": [\"file.pb\", \"file.proto\", \"folder/\"]} to the \
                 top-level extra_config",
            )]);
        };
        // `endpoints[0].backend[1]` out of `endpoints[0].backend[1].extra_config[...]`.
        let backend_path = settings_path
            .rsplit_once(".extra_config")
            .map_or(settings_path, |(backend, _)| backend);
        let url_pattern_path = format!("{backend_path}.url_pattern");
        let method = find_method(catalog, ctx.url_pattern)
            .map_err(|message| vec![PluginError::at(&url_pattern_path, message)])?;
        if method.is_client_streaming() {
            return Err(vec![PluginError::at(
                url_pattern_path,
                format!(
                    "{} is a {} method: Sluice calls unary and server-streaming methods only",
                    method.full_name(),
                    if method.is_server_streaming() {
                        "bidirectional streaming"
                    } else {
                        "client-streaming"
                    }
                ),
            )]);
        }
        let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
        let mut targets = Vec::with_capacity(ctx.backend_hosts.len());
        for host in ctx.backend_hosts {
            // As the request builder writes it (the host as sanitised), so a request's host is
            // found by its authority.
            let uri = sluice_plugin::Origin::parse(host)
                .filter(|_| host.contains("://"))
                .and_then(|_| {
                    format!("{}{path}", host.trim_end_matches('/'))
                        .parse::<http::Uri>()
                        .ok()
                })
                .filter(|uri| uri.authority().is_some());
            match uri {
                Some(uri) => targets.push(uri),
                None => {
                    return Err(vec![PluginError::at(
                        format!("{backend_path}.host"),
                        format!("{host:?} is not an http (h2c) or https (HTTP/2 over TLS) host"),
                    )]);
                }
            }
        }
        let input = InputPlan::new(method.input(), &settings).map_err(|errors| {
            let mapping_path = settings::key_path(settings_path, "input_mapping");
            errors
                .into_iter()
                .map(|(key, message)| {
                    PluginError::at(settings::key_path(&mapping_path, &key), message)
                })
                .collect::<Vec<_>>()
        })?;
        Ok(Arc::new(GrpcExecutor {
            path,
            input,
            decoder: Decoder::new(&method.output(), OutputOptions::new(&settings)),
            server_streaming: method.is_server_streaming(),
            header_mapping: settings.header_mapping.clone(),
            client: self
                .client(settings.idle_timeout, backend_path)
                .map_err(|e| vec![e])?,
            targets,
            alternate_hosts: settings.use_alternate_host_on_error,
        }))
    }
}

/// The method a `url_pattern` names: `/package.Service/Method`.
fn find_method(catalog: &Catalog, url_pattern: &str) -> Result<MethodDescriptor, String> {
    let trimmed = url_pattern.trim_start_matches('/');
    let Some((service_name, method_name)) = trimmed.rsplit_once('/') else {
        return Err(format!(
            "{url_pattern:?} does not name a gRPC method: write /package.Service/Method"
        ));
    };
    let pool = catalog.pool();
    let Some(service) = pool.get_service_by_name(service_name) else {
        let services: Vec<String> = pool
            .services()
            .map(|s| s.full_name().to_owned())
            .take(20)
            .collect();
        return Err(format!(
            "{url_pattern:?}: the catalog has no service {service_name:?} ({})",
            if services.is_empty() {
                "it has no service at all".to_owned()
            } else {
                format!("its services: {}", services.join(", "))
            }
        ));
    };
    let Some(method) = service.methods().find(|m| m.name() == method_name) else {
        let methods: Vec<String> = service.methods().map(|m| m.name().to_owned()).collect();
        return Err(format!(
            "{url_pattern:?}: the service {service_name} has no method {method_name:?} (its methods: {})",
            methods.join(", ")
        ));
    };
    Ok(method)
}

#[cfg(test)]
mod tests;
