//! `client-example`: KrakenD's documented example client plugin, as a Sluice component.
//!
//! Settings: `{"path": "/__debug/hijack-me"}`. A backend request whose path equals `path` is
//! answered by the plugin itself with `200 application/json {"message":"<path>"}`; every other
//! request is passed on to its backend and the answer returned as is.
//!
//! It works on the request the gateway holds (`serve`): it reads the URL alone, and neither the
//! request nor the answer crosses into the plugin. `Answer::Forward` has the gateway send the
//! request once `serve` has returned, so no instance waits on the backend.

use sluice_plugin_sdk::{
    Answer, Error, OutgoingRequest, Plugin, Response, export_plugin, log, url_path,
};

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

    fn serve(&self, request: &OutgoingRequest) -> Result<Answer, Error> {
        if url_path(&request.url()) == self.path {
            log::debug(&format!("client-example: answering {}", self.path));
            return Ok(Answer::Response(Response::json(
                200,
                &serde_json::json!({ "message": self.path }),
            )));
        }
        Ok(Answer::Forward)
    }
}

export_plugin!(ClientExample);
