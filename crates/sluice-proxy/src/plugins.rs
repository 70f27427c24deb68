//! A backend's client plugin, or chain of them, built into its executor at start-up.

use std::sync::Arc;

use serde_json::{Map, Value};
use sluice_config::{Backend, Endpoint, PluginRef};
use sluice_plugin::{
    Chain, ChainLink, ClientPlugin, OutboundClient, PluginContext, Registry, SharedExecutor,
    not_hooks_message,
};
use sluice_telemetry::Telemetry;

/// Where a backend's plugin is built: everything but the plugin reference itself.
pub(crate) struct Site<'a> {
    pub(crate) file: &'a dyn std::fmt::Display,
    pub(crate) registry: &'a Registry,
    pub(crate) telemetry: &'a Telemetry,
    pub(crate) endpoint: &'a Endpoint,
    pub(crate) backend: &'a Backend,
    pub(crate) default_client: &'a SharedExecutor,
    pub(crate) label: &'a str,
}

/// The backend's executor for `plugin`: the plugin's own for one name, a [`Chain`] for a list.
/// Every problem goes to `errors`; `None` when there was one.
pub(crate) async fn build(
    site: &Site<'_>,
    plugin: &PluginRef,
    errors: &mut Vec<String>,
) -> Option<SharedExecutor> {
    if plugin.chain.is_empty() {
        return single(site, plugin, errors).await;
    }
    chain(site, plugin, errors).await
}

fn unknown_name(site: &Site<'_>, path: &str, name: &str) -> String {
    let available: Vec<&str> = site.registry.names().collect();
    format!(
        "{}: {path}: no client plugin is named {name:?}; available: {}",
        site.file,
        if available.is_empty() {
            "none".to_owned()
        } else {
            available.join(", ")
        }
    )
}

/// One plugin, as today: `extra` is the whole block.
async fn single(
    site: &Site<'_>,
    plugin: &PluginRef,
    errors: &mut Vec<String>,
) -> Option<SharedExecutor> {
    let Some(factory) = site.registry.get(&plugin.name) else {
        errors.push(unknown_name(
            site,
            &format!("{}.name", plugin.json_path),
            &plugin.name,
        ));
        return None;
    };
    if let Some(key) = unknown_sibling(&plugin.extra, &plugin.name, factory.limit_keys()) {
        let mut known = vec!["name", plugin.name.as_str(), "allowed_hosts"];
        known.extend(factory.limit_keys());
        errors.push(format!(
            "{}: {}.{key}: not a key plugin {:?} reads (it would be ignored); expected one of {}",
            site.file,
            plugin.json_path,
            plugin.name,
            known.join(", ")
        ));
        return None;
    }
    let (executor, _) = one(
        site,
        &**factory,
        &plugin.name,
        &plugin.extra,
        &plugin.json_path,
        &plugin.settings_path,
        errors,
    )
    .await?;
    Some(executor)
}

/// Builds one plugin from its view of the block; its executor and its outbound client.
async fn one(
    site: &Site<'_>,
    factory: &dyn ClientPlugin,
    name: &str,
    extra: &Map<String, Value>,
    json_path: &str,
    settings_path: &str,
    errors: &mut Vec<String>,
) -> Option<(SharedExecutor, Arc<OutboundClient>)> {
    let backend = site.backend;
    let client = match OutboundClient::for_backend(
        Arc::clone(site.default_client),
        name,
        extra,
        &backend.host,
    ) {
        Ok(client) => Arc::new(client.with_metrics(crate::telemetry::outbound_metrics(
            site.telemetry,
            site.endpoint,
            backend,
            name,
            extra,
        ))),
        Err(message) => {
            errors.push(format!("{}: {json_path}: {message}", site.file));
            return None;
        }
    };
    let ctx = PluginContext {
        extra,
        settings: extra.get(name),
        backend_hosts: &backend.host,
        client: Arc::clone(&client),
        backend_label: site.label,
        url_pattern: &backend.url_pattern,
        settings_path,
    };
    match factory.build_async(ctx).await {
        Ok(executor) => Some((executor, client)),
        Err(problems) => {
            for problem in problems {
                errors.push(match problem.path {
                    Some(path) => format!("{}: {path}: {}", site.file, problem.message),
                    None => format!(
                        "{}: {json_path}: plugin {name:?}: {}",
                        site.file, problem.message
                    ),
                });
            }
            None
        }
    }
}

/// A chain: each plugin found, the block's keys checked against what the plugins read, each
/// plugin built with its own view of the block (its name, its settings, `allowed_hosts` and the
/// limit keys it reads), every plugin but the last in hooks mode.
async fn chain(
    site: &Site<'_>,
    plugin: &PluginRef,
    errors: &mut Vec<String>,
) -> Option<SharedExecutor> {
    let before = errors.len();
    let mut factories = Vec::with_capacity(plugin.chain.len());
    for link in &plugin.chain {
        match site.registry.get(&link.name) {
            Some(factory) => factories.push(factory),
            None => errors.push(unknown_name(site, &link.name_path, &link.name)),
        }
    }
    if errors.len() > before {
        return None;
    }
    let reads = |key: &str| {
        matches!(key, "name" | "allowed_hosts" | "limits")
            || plugin.chain.iter().any(|l| l.name == key)
            || factories.iter().any(|f| f.limit_keys().contains(&key))
    };
    if let Some(key) = plugin.extra.keys().find(|k| !reads(k.as_str())) {
        let mut known = vec!["name", "allowed_hosts", "limits"];
        known.extend(plugin.chain.iter().map(|l| l.name.as_str()));
        for factory in &factories {
            for key in factory.limit_keys() {
                if !known.contains(key) {
                    known.push(*key);
                }
            }
        }
        errors.push(format!(
            "{}: {}.{key}: not a key any plugin of the chain reads (it would be ignored); \
             expected one of {}",
            site.file,
            plugin.json_path,
            known.join(", ")
        ));
        return None;
    }
    let last = plugin.chain.len() - 1;
    let mut links = Vec::with_capacity(last);
    let mut last_executor = None;
    for (i, (link, factory)) in plugin.chain.iter().zip(&factories).enumerate() {
        let own_limit = |key: &str| key == "allowed_hosts" || factory.limit_keys().contains(&key);
        let mut extra = Map::new();
        extra.insert("name".to_owned(), Value::String(link.name.clone()));
        for (key, value) in &plugin.extra {
            if key == &link.name || own_limit(key) {
                extra.insert(key.clone(), value.clone());
            }
        }
        // Its own `limits` override the shared ones.
        if let Some(key) = link.limits.keys().find(|k| !own_limit(k.as_str())) {
            let mut known = vec!["allowed_hosts"];
            known.extend(factory.limit_keys());
            errors.push(format!(
                "{}: {}: not a limit plugin {:?} reads; expected one of {}",
                site.file,
                sluice_config::read::key_path(&link.limits_path, key),
                link.name,
                known.join(", ")
            ));
            continue;
        }
        for (key, value) in &link.limits {
            extra.insert(key.clone(), value.clone());
        }
        let Some((executor, client)) = one(
            site,
            &***factory,
            &link.name,
            &extra,
            &plugin.json_path,
            &link.settings_path,
            errors,
        )
        .await
        else {
            continue;
        };
        if i == last {
            last_executor = Some(executor);
            continue;
        }
        if executor.hooks().is_none() {
            errors.push(format!(
                "{}: {}: {}",
                site.file,
                link.name_path,
                not_hooks_message(&link.name)
            ));
            continue;
        }
        links.push(ChainLink {
            name: link.name.clone(),
            executor,
            client,
            metrics: crate::telemetry::chain_link_metrics(
                site.telemetry,
                site.endpoint,
                site.backend,
                &link.name,
            ),
        });
    }
    if errors.len() > before {
        return None;
    }
    match Chain::new(links, plugin.name.clone(), last_executor?) {
        Ok(chain) => Some(Arc::new(chain)),
        Err((i, message)) => {
            errors.push(format!(
                "{}: {}: {message}",
                site.file, plugin.chain[i].name_path
            ));
            None
        }
    }
}

/// The first key of a single plugin's block it would not read.
fn unknown_sibling<'a>(
    extra: &'a Map<String, Value>,
    name: &str,
    limit_keys: &[&str],
) -> Option<&'a str> {
    extra.keys().map(String::as_str).find(|key| {
        !matches!(*key, "name" | "allowed_hosts") && *key != name && !limit_keys.contains(key)
    })
}
