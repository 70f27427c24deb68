//! `fan-out`: calls two URLs through the gateway and answers `{"a": <first>, "b": <second>}`.
//!
//! Settings: `{"urls": ["http://host-a/x", "http://host-b/y"]}`. Both must answer 2xx JSON.
//! Each host must be allowed (`allowed_hosts`, by default the backend's own hosts): a call to
//! any other host fails the request with `host-not-allowed`.
//!
//! It reads one header of the request the gateway holds (`serve`), and nothing else of it.

use serde::Deserialize;
use sluice_plugin_sdk::{
    Answer, Error, ErrorKind, OutgoingRequest, Plugin, Request, Response, export_plugin, send,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    urls: Option<Vec<String>>,
}

/// The plugin: the two URLs.
#[derive(Debug)]
pub struct FanOut {
    urls: [String; 2],
}

impl Plugin for FanOut {
    fn init(settings: &str) -> Result<Self, String> {
        let s: Settings =
            sluice_plugin_sdk::parse_settings(settings).map_err(|e| format!("fan-out: {e}"))?;
        let urls = s
            .urls
            .ok_or("fan-out: settings need \"urls\": [two absolute URLs]")?;
        let urls: [String; 2] = urls
            .try_into()
            .map_err(|_| "fan-out: \"urls\" must hold exactly two URLs".to_owned())?;
        for url in &urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("fan-out: {url:?} is not an absolute http(s) URL"));
            }
        }
        Ok(FanOut { urls })
    }

    fn serve(&self, request: &OutgoingRequest) -> Result<Answer, Error> {
        let user_agent = request.header("user-agent");
        let mut parts = Vec::with_capacity(2);
        for url in &self.urls {
            let mut call = Request::new("GET", url.as_str());
            if let Some(ua) = &user_agent {
                call.set_header("user-agent", ua);
            }
            call.set_header("accept", "application/json");
            let answer = send(call)?;
            if !(200..300).contains(&answer.status) {
                return Err(Error::new(
                    ErrorKind::Other,
                    format!("fan-out: {url} answered {}", answer.status),
                ));
            }
            let value: serde_json::Value = serde_json::from_slice(&answer.body)
                .map_err(|e| Error::plugin(format!("fan-out: {url} did not answer JSON: {e}")))?;
            parts.push(value);
        }
        let b = parts.pop().unwrap_or_default();
        let a = parts.pop().unwrap_or_default();
        Ok(Answer::Response(Response::json(
            200,
            &serde_json::json!({ "a": a, "b": b }),
        )))
    }
}

export_plugin!(FanOut);
