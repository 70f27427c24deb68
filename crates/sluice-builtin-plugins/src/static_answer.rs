//! Answers from its settings without calling anything: `{"status": 200, "headers":
//! {"name": "value"}, "body": "text" | {...json...}}`.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ClientPlugin, ExecError, Executor,
    Flow, Hooks, PluginContext, SharedExecutor, full,
};

#[derive(Debug)]
pub(crate) struct Factory;

impl ClientPlugin for Factory {
    fn build(&self, ctx: PluginContext<'_>) -> Result<SharedExecutor, String> {
        let settings = crate::settings_object(ctx.settings)?;
        crate::reject_unknown(settings, &["status", "headers", "body"])?;
        let status = match settings.get("status") {
            None => StatusCode::OK,
            Some(value) => value
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .and_then(|s| StatusCode::from_u16(s).ok())
                .ok_or_else(|| {
                    format!("settings.status: expected an HTTP status code, found {value}")
                })?,
        };
        let mut headers = HeaderMap::new();
        if let Some(map) = settings.get("headers") {
            let map = map
                .as_object()
                .ok_or("settings.headers: expected an object of header names to values")?;
            for (name, value) in map {
                let value = value
                    .as_str()
                    .ok_or_else(|| format!("settings.headers.{name}: expected a string"))?;
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("settings.headers: {name:?} is not a header name"))?;
                let value = HeaderValue::from_str(value)
                    .map_err(|_| format!("settings.headers.{name}: not a valid header value"))?;
                headers.append(name, value);
            }
        }
        let body = match settings.get("body") {
            None => Bytes::new(),
            Some(serde_json::Value::String(text)) => Bytes::from(text.clone()),
            Some(json) => {
                if !headers.contains_key(http::header::CONTENT_TYPE) {
                    headers.insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                }
                Bytes::from(json.to_string())
            }
        };
        Ok(std::sync::Arc::new(StaticAnswer {
            status,
            headers,
            body,
        }))
    }
}

#[derive(Debug)]
struct StaticAnswer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl StaticAnswer {
    fn answer(&self) -> BackendResponse {
        let mut response = BackendResponse::new(full(self.body.clone()));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

impl Executor for StaticAnswer {
    fn execute<'a>(
        &'a self,
        _request: BackendRequest,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        let response = self.answer();
        Box::pin(async move { Ok(response) })
    }

    /// Answering is an `on_request` hook (as the WebAssembly twin's), so it can stand before
    /// another plugin in a chain, which it then short-circuits.
    fn hooks(&self) -> Option<&dyn Hooks> {
        Some(self)
    }
}

impl Hooks for StaticAnswer {
    fn on_request<'a>(
        &'a self,
        _request: BackendRequest,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Flow, ExecError>> {
        let response = self.answer();
        Box::pin(async move { Ok(Flow::Response(response)) })
    }

    fn on_response<'a>(
        &'a self,
        response: BackendResponse,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(async move { Ok(response) })
    }
}
