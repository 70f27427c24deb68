//! Signs each backend request so the backend can authenticate the gateway:
//! `X-Signature: hex(HMAC-SHA256(secret, string_to_sign))`, with the timestamp and key id
//! beside it. Settings: `{"secret": "...", "key_id": "..."}`.

use hmac::{Hmac, Mac};
use http::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ClientPlugin, ExecError, Executor,
    Flow, Hooks, PluginContext, SharedExecutor,
};

/// What is signed: `METHOD\npath?query\ntimestamp\nhex(sha256(body))`.
pub fn string_to_sign(method: &str, path_and_query: &str, timestamp: u64, body: &[u8]) -> String {
    format!(
        "{method}\n{path_and_query}\n{timestamp}\n{}",
        hex::encode(Sha256::digest(body))
    )
}

#[derive(Debug)]
pub(crate) struct Factory;

impl ClientPlugin for Factory {
    fn build(&self, ctx: PluginContext<'_>) -> Result<SharedExecutor, String> {
        let settings = crate::settings_object(ctx.settings)?;
        crate::reject_unknown(settings, &["secret", "key_id", "headers"])?;
        let names = HeaderNames::from_settings(settings.get("headers"))?;
        let secret = match settings.get("secret") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err("settings.secret: expected a non-empty string".to_owned()),
        };
        let key_id = match settings.get("key_id") {
            None => None,
            Some(serde_json::Value::String(s)) => Some(
                HeaderValue::from_str(s)
                    .map_err(|_| "settings.key_id: not a valid header value")?,
            ),
            Some(other) => {
                return Err(format!("settings.key_id: expected a string, found {other}"));
            }
        };
        Ok(std::sync::Arc::new(HmacSigner {
            secret,
            key_id,
            names,
            next: ctx.client,
        }))
    }
}

#[derive(Debug)]
struct HmacSigner {
    secret: String,
    key_id: Option<HeaderValue>,
    names: HeaderNames,
    next: SharedExecutor,
}

/// The three header names; `headers: {"timestamp", "signature", "key_id"}` renames them.
#[derive(Debug)]
struct HeaderNames {
    timestamp: HeaderName,
    signature: HeaderName,
    key_id: HeaderName,
}

impl HeaderNames {
    fn from_settings(value: Option<&serde_json::Value>) -> Result<Self, String> {
        let map = match value {
            None => return Ok(Self::default()),
            Some(serde_json::Value::Object(map)) => map,
            Some(other) => {
                return Err(format!(
                    "settings.headers: expected an object, found {other}"
                ));
            }
        };
        crate::reject_unknown(map, &["timestamp", "signature", "key_id"])
            .map_err(|e| e.replacen("settings.", "settings.headers.", 1))?;
        let name = |key: &str, default: HeaderName| -> Result<HeaderName, String> {
            match map.get(key) {
                None => Ok(default),
                Some(serde_json::Value::String(s)) => HeaderName::from_bytes(s.as_bytes())
                    .map_err(|_| format!("settings.headers.{key}: {s:?} is not a header name")),
                Some(other) => Err(format!(
                    "settings.headers.{key}: expected a string, found {other}"
                )),
            }
        };
        let defaults = Self::default();
        Ok(Self {
            timestamp: name("timestamp", defaults.timestamp)?,
            signature: name("signature", defaults.signature)?,
            key_id: name("key_id", defaults.key_id)?,
        })
    }
}

impl Default for HeaderNames {
    fn default() -> Self {
        Self {
            timestamp: HeaderName::from_static("x-signature-timestamp"),
            signature: HeaderName::from_static("x-signature"),
            key_id: HeaderName::from_static("x-key-id"),
        }
    }
}

impl HmacSigner {
    /// The request with its signature headers.
    fn sign(&self, mut request: BackendRequest) -> BackendRequest {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let path_and_query = request.url.path_and_query().map_or("/", |p| p.as_str());
        let to_sign = string_to_sign(
            request.method.as_str(),
            path_and_query,
            timestamp,
            &request.body,
        );
        let signature = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes())
            .map(|mut mac| {
                mac.update(to_sign.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            })
            .unwrap_or_default();
        let headers = &mut request.headers;
        headers.insert(self.names.timestamp.clone(), HeaderValue::from(timestamp));
        if let Ok(value) = HeaderValue::from_str(&signature) {
            headers.insert(self.names.signature.clone(), value);
        }
        if let Some(key_id) = &self.key_id {
            headers.insert(self.names.key_id.clone(), key_id.clone());
        }
        request
    }
}

impl Executor for HmacSigner {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        self.next.execute(self.sign(request), ctx)
    }

    /// Signing is an `on_request` hook, so it can stand before another plugin in a chain.
    fn hooks(&self) -> Option<&dyn Hooks> {
        Some(self)
    }
}

impl Hooks for HmacSigner {
    fn on_request<'a>(
        &'a self,
        request: BackendRequest,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Flow, ExecError>> {
        let request = self.sign(request);
        Box::pin(async move { Ok(Flow::Request(request)) })
    }

    fn on_response<'a>(
        &'a self,
        response: BackendResponse,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(async move { Ok(response) })
    }
}
