//! `client-example`: KrakenD's documented example client plugin, as a Sluice component.
//!
//! Settings: `{"path": "/__debug/hijack-me"}`. A backend request whose path equals `path` is
//! answered by the plugin itself with `200 application/json {"message":"<path>"}`; every other
//! request is passed to its backend through the gateway (`send`) and the answer returned as is.

use sluice_plugin_sdk::{Error, Plugin, Request, Response, export_plugin, log, send};

/// The plugin: the path it answers itself.
#[derive(Debug)]
pub struct ClientExample {
    path: String,
}

impl Plugin for ClientExample {
    fn init(settings: &str) -> Result<Self, String> {
        let settings: serde_json::Value = sluice_plugin_sdk::parse_settings(settings)?;
        match settings.get("path") {
            Some(serde_json::Value::String(path)) if !path.is_empty() => {
                log::debug(&format!("client-example: hijacking {path}"));
                Ok(ClientExample { path: path.clone() })
            }
            Some(_) => Err("client-example: settings \"path\" must be a non-empty string".into()),
            None => Err(
                "client-example: missing settings \"path\" (e.g. {\"client-example\": {\"path\": \"/__debug/hijack-me\"}})"
                    .into(),
            ),
        }
    }

    fn handle(&self, request: Request) -> Result<Response, Error> {
        if request.path() == self.path {
            log::debug(&format!("client-example: answering {}", self.path));
            return Ok(Response::json(
                200,
                &serde_json::json!({ "message": self.path }),
            ));
        }
        send(request)
    }
}

export_plugin!(ClientExample);
