//! `header-rewrite`: changes headers on the way to the backend and on the way back.
//!
//! Settings:
//! ```json
//! {"request":  {"set": {"X-Api-Key": "k"}, "remove": ["Cookie"]},
//!  "response": {"set": {"X-Served-By": "sluice"}, "remove": ["Server"]}}
//! ```
//! Both parts optional. Runs in hooks mode: `on-request` always, `on-response` only when a
//! `response` part is given, so the gateway makes the backend call itself and streams the
//! answer through when there is nothing to change on it.

use serde::Deserialize;
use sluice_plugin_sdk::{
    Error, Hooks, IncomingResponse, OutgoingRequest, Plugin, Response, export_plugin,
};

#[derive(Debug, Default)]
struct Rules {
    set: Vec<(String, String)>,
    remove: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    request: Option<RulesIn>,
    response: Option<RulesIn>,
}

/// `set` as an object in the settings, kept in order.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RulesIn {
    set: serde_json::Map<String, serde_json::Value>,
    remove: Vec<String>,
}

impl RulesIn {
    fn into_rules(self, part: &str) -> Result<Rules, String> {
        let mut set = Vec::with_capacity(self.set.len());
        for (name, value) in self.set {
            let serde_json::Value::String(value) = value else {
                return Err(format!(
                    "header-rewrite: {part}.set.{name} must be a string"
                ));
            };
            set.push((name, value));
        }
        Ok(Rules {
            set,
            remove: self.remove,
        })
    }
}

/// The plugin.
#[derive(Debug)]
pub struct HeaderRewrite {
    request: Rules,
    response: Option<Rules>,
}

impl Plugin for HeaderRewrite {
    const HOOKS: Hooks = Hooks::ON_REQUEST;

    fn init(settings: &str) -> Result<Self, String> {
        let s: Settings = sluice_plugin_sdk::parse_settings(settings)
            .map_err(|e| format!("header-rewrite: {e}"))?;
        let request = s.request.unwrap_or_default().into_rules("request")?;
        let response = s.response.map(|r| r.into_rules("response")).transpose()?;
        Ok(HeaderRewrite { request, response })
    }

    fn hooks(&self) -> Hooks {
        if self.response.is_some() {
            Hooks::ON_REQUEST | Hooks::ON_RESPONSE
        } else {
            Hooks::ON_REQUEST
        }
    }

    // In place: the gateway keeps the message and only the named headers cross.
    fn edit_request(&self, request: &OutgoingRequest) -> Result<Option<Response>, Error> {
        for name in &self.request.remove {
            request.remove_header(name);
        }
        for (name, value) in &self.request.set {
            request.set_header(name, value.as_bytes())?;
        }
        Ok(None)
    }

    fn edit_response(&self, response: &IncomingResponse) -> Result<(), Error> {
        if let Some(rules) = &self.response {
            for name in &rules.remove {
                response.remove_header(name);
            }
            for (name, value) in &rules.set {
                response.set_header(name, value.as_bytes())?;
            }
        }
        Ok(())
    }
}

export_plugin!(HeaderRewrite);
