//! `static-answer`: answers every request with a fixed response, without any call.
//!
//! Settings: `{"status": 200, "headers": {"X-A": "1"}, "body": <string or any JSON value>}`.
//! All optional: status 200, no headers, empty body. A body that is not a string is sent as
//! JSON with `content-type: application/json` (unless `headers` sets one).

use serde::Deserialize;
use sluice_plugin_sdk::{Error, Hooks, OutgoingRequest, Plugin, Response, export_plugin};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "ok")]
    status: u16,
    #[serde(default)]
    headers: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    body: serde_json::Value,
}

fn ok() -> u16 {
    200
}

/// The plugin: the prepared answer.
#[derive(Debug)]
pub struct StaticAnswer {
    response: Response,
}

impl Plugin for StaticAnswer {
    const HOOKS: Hooks = Hooks::ON_REQUEST;

    fn init(settings: &str) -> Result<Self, String> {
        let s: Settings = sluice_plugin_sdk::parse_settings(settings)
            .map_err(|e| format!("static-answer: {e}"))?;
        if !(100..=999).contains(&s.status) {
            return Err(format!(
                "static-answer: status {} is not an HTTP status",
                s.status
            ));
        }
        let mut response = Response::new(s.status);
        for (name, value) in &s.headers {
            let Some(value) = value.as_str() else {
                return Err(format!("static-answer: header {name:?} must be a string"));
            };
            response.append_header(name, value);
        }
        match s.body {
            serde_json::Value::Null => {}
            serde_json::Value::String(text) => response.body = text.into_bytes(),
            value => {
                if response.header("content-type").is_none() {
                    response.set_header("content-type", "application/json");
                }
                response.body = value.to_string().into_bytes();
            }
        }
        Ok(StaticAnswer { response })
    }

    // Reads nothing of the request: nothing of it crosses into the plugin.
    fn edit_request(&self, _request: &OutgoingRequest) -> Result<Option<Response>, Error> {
        Ok(Some(self.response.clone()))
    }
}

export_plugin!(StaticAnswer);
