//! Client plugins compiled into the gateway: the fastest path, no sandbox.
//!
//! Each is a [`ClientPlugin`] factory registered by name, configured exactly like a
//! WebAssembly plugin (`"plugin/http-client": {"name": "native/<plugin>", "native/<plugin>":
//! {...}}`); switching between the native and the wasm twin is a change of `name`.
//!
//! Writing one: implement [`ClientPlugin::build`] to validate the settings and return an
//! [`Executor`]; call `ctx.client` to reach the backend (and only the hosts the config grants) through the
//! gateway's pool.

mod client_example;
mod fan_out;
mod hmac_signer;
mod static_answer;

use std::sync::Arc;

use sluice_plugin::{ClientPlugin, Registry, RegistryError};

pub use hmac_signer::string_to_sign;

/// The prefix that tells compiled-in plugins from components (`native/hmac-signer`).
pub const PREFIX: &str = "native/";

/// Registers every compiled-in plugin.
pub fn register_all(registry: &mut Registry) -> Result<(), RegistryError> {
    let plugins: [(&str, Arc<dyn ClientPlugin>); 4] = [
        ("client-example", Arc::new(client_example::Factory)),
        ("hmac-signer", Arc::new(hmac_signer::Factory)),
        ("static-answer", Arc::new(static_answer::Factory)),
        ("fan-out", Arc::new(fan_out::Factory)),
    ];
    for (name, plugin) in plugins {
        registry.register(format!("{PREFIX}{name}"), plugin)?;
    }
    Ok(())
}

/// The settings object, or a message saying what was expected.
fn settings_object(
    settings: Option<&serde_json::Value>,
) -> Result<&serde_json::Map<String, serde_json::Value>, String> {
    match settings {
        Some(serde_json::Value::Object(map)) => Ok(map),
        Some(other) => Err(format!("settings must be an object, found {other}")),
        None => Err("settings missing: add an object under the plugin's name".to_owned()),
    }
}

/// Refuses settings keys the plugin does not know (a typo would otherwise be ignored), as the
/// WebAssembly twins do.
fn reject_unknown(
    settings: &serde_json::Map<String, serde_json::Value>,
    known: &[&str],
) -> Result<(), String> {
    match settings.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "settings.{key}: unknown setting; expected one of {}",
            known.join(", ")
        )),
        None => Ok(()),
    }
}
