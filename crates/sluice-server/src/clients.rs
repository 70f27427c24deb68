//! The clients backends call through, built once from the config: the default client (with
//! the service's `client_tls`), and a client of its own for each backend with its own
//! `backend/http/client.client_tls` (backends whose settings are the same share one pool).

use std::sync::Arc;

use sluice_client::DefaultClient;
use sluice_config::{ClientTls, Config};
use sluice_plugin::SharedExecutor;
use sluice_proxy::Clients;

/// Every client the config asks for; each certificate or key that does not load is an error
/// naming the config file, the JSON path and the file.
pub fn clients(config: &Config) -> Result<Clients, Vec<String>> {
    let file = config.source.display();
    let mut errors = Vec::new();
    let mut client = |tls: Option<&ClientTls>| match DefaultClient::new(&config.transport, tls) {
        Ok(client) => {
            if let Some(tls) = tls.filter(|t| t.allow_insecure_connections) {
                tracing::warn!(
                    target: "sluice::tls",
                    "{}: allow_insecure_connections: the certificates of https backends are not \
                     verified",
                    tls.json_path
                );
            }
            Some(Arc::new(client) as SharedExecutor)
        }
        Err(e) => {
            errors.push(format!("{file}: {e}"));
            None
        }
    };
    let default = client(config.client_tls.as_ref());
    let mut own: Vec<(String, SharedExecutor)> = Vec::new();
    let mut built: Vec<(&ClientTls, SharedExecutor)> = Vec::new();
    for backend in config.endpoints.iter().flat_map(|e| &e.backends) {
        let Some(tls) = &backend.client_tls else {
            continue;
        };
        let shared = built
            .iter()
            .find(|(seen, _)| same_settings(seen, tls))
            .map(|(_, client)| Arc::clone(client));
        let Some(backend_client) = shared.or_else(|| {
            let made = client(Some(tls))?;
            built.push((tls, Arc::clone(&made)));
            Some(made)
        }) else {
            continue;
        };
        own.push((backend.json_path.clone(), backend_client));
    }
    match default {
        Some(default) if errors.is_empty() => {
            let mut clients = Clients::new(default);
            for (path, client) in own {
                clients.insert(path, client);
            }
            Ok(clients)
        }
        _ => Err(errors),
    }
}

/// Whether two `client_tls` blocks differ only in where they are written.
fn same_settings(a: &ClientTls, b: &ClientTls) -> bool {
    let cas = |t: &ClientTls| {
        t.ca_certs
            .iter()
            .map(|f| f.path.clone())
            .collect::<Vec<_>>()
    };
    let certs = |t: &ClientTls| {
        t.client_certs
            .iter()
            .map(|c| (c.certificate.path.clone(), c.private_key.path.clone()))
            .collect::<Vec<_>>()
    };
    a.allow_insecure_connections == b.allow_insecure_connections
        && a.disable_system_ca_pool == b.disable_system_ca_pool
        && a.protocol == b.protocol
        && cas(a) == cas(b)
        && certs(a) == certs(b)
}
