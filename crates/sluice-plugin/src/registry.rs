use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::{BoxFuture, OutboundClient, SharedExecutor};

/// What a plugin factory is given for one backend.
#[derive(Debug, Clone)]
pub struct PluginContext<'a> {
    /// The whole `plugin/http-client` object (with `name` and any siblings), as KrakenD passes it.
    pub extra: &'a serde_json::Map<String, serde_json::Value>,
    /// The plugin's own settings: the object under its name, if present.
    pub settings: Option<&'a serde_json::Value>,
    /// The backend's hosts (after sanitising); outbound calls default to these only.
    pub backend_hosts: &'a [String],
    /// The plugin's only way out: the gateway's pooled client, restricted to the origins the
    /// config grants (checked on every hop), owning the `Host` header.
    pub client: Arc<OutboundClient>,
    /// Where the backend sits, for messages: `METHOD /endpoint -> url_pattern`.
    pub backend_label: &'a str,
    /// The backend's `url_pattern` as written (a gRPC backend's is its method,
    /// `/package.Service/Method`).
    pub url_pattern: &'a str,
    /// The JSON path of the settings (for messages that point inside them).
    pub settings_path: &'a str,
}

/// Why a plugin refused its settings: the message, and the JSON path it is about when the
/// plugin can tell (a key inside its settings); without one, the `plugin/http-client` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// JSON path of the value at fault, e.g. `endpoints[0].backend[0].extra_config["backend/grpc"].input_mapping.Origin`.
    pub path: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl PluginError {
    /// A problem at `path`.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            message: message.into(),
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{path}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl PluginError {
    /// Several problems as one line, `; `-separated (for callers that report one message).
    pub fn join(problems: &[PluginError]) -> String {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl From<String> for PluginError {
    fn from(message: String) -> Self {
        Self {
            path: None,
            message,
        }
    }
}

/// A client-plugin factory, registered by name. Called once per backend that names it.
pub trait ClientPlugin: Send + Sync + fmt::Debug {
    /// Where the plugin comes from, for listings: `compiled-in` or the file path.
    fn origin(&self) -> String {
        "compiled-in".to_owned()
    }
    /// What kind of plugin it is, for listings (e.g. the WebAssembly world it targets).
    fn kind(&self) -> String {
        "compiled-in Rust".to_owned()
    }
    /// The keys this plugin reads beside `name`, its settings and `allowed_hosts` in a backend's
    /// `plugin/http-client` object (a host's limits). Any other key is refused at start-up, so
    /// a misspelt limit is an error rather than a limit silently not applied.
    fn limit_keys(&self) -> &'static [&'static str] {
        &[]
    }
    /// Validates the settings and builds the backend's executor. An `Err` stops start-up.
    fn build(&self, ctx: PluginContext<'_>) -> Result<SharedExecutor, String>;

    /// [`ClientPlugin::build`], with every problem found and the JSON path of each when the
    /// plugin can tell. The default calls `build`.
    fn build_at(&self, ctx: PluginContext<'_>) -> Result<SharedExecutor, Vec<PluginError>> {
        self.build(ctx)
            .map_err(|message| vec![PluginError::from(message)])
    }

    /// What the gateway calls, on its own runtime: [`ClientPlugin::build_at`] as a future, for
    /// a plugin whose set-up waits on something (a WebAssembly component's `init` runs within
    /// its deadline without a thread of its own). The default is `build_at`, done at once.
    fn build_async<'a>(
        &'a self,
        ctx: PluginContext<'a>,
    ) -> BoxFuture<'a, Result<SharedExecutor, Vec<PluginError>>> {
        Box::pin(std::future::ready(self.build_at(ctx)))
    }
}

/// Registration problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// Two plugins claim the same name.
    Duplicate {
        /// The contested name.
        name: String,
        /// Where the first came from.
        first: String,
        /// Where the second came from.
        second: String,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Duplicate {
                name,
                first,
                second,
            } => {
                write!(f, "two plugins are named {name:?}: {first} and {second}")
            }
        }
    }
}

impl std::error::Error for RegistryError {}

/// Client plugins by name.
#[derive(Default, Clone)]
pub struct Registry {
    plugins: BTreeMap<String, Arc<dyn ClientPlugin>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.plugins.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a plugin; a second plugin with the same name is an error (KrakenD silently
    /// lets the last one win, which hides mistakes).
    pub fn register(
        &mut self,
        name: impl Into<String>,
        plugin: Arc<dyn ClientPlugin>,
    ) -> Result<(), RegistryError> {
        let name = name.into();
        if let Some(first) = self.plugins.get(&name) {
            return Err(RegistryError::Duplicate {
                name,
                first: first.origin(),
                second: plugin.origin(),
            });
        }
        self.plugins.insert(name, plugin);
        Ok(())
    }

    /// The plugin registered under `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn ClientPlugin>> {
        self.plugins.get(name)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }

    /// Number of registered plugins.
    pub fn len(&self) -> usize {
        self.plugins.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }
}
