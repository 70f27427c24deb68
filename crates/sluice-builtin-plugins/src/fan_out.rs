//! Calls two URLs through the gateway and combines their JSON objects as `{"a": .., "b": ..}`.
//! Settings: `{"urls": ["http://one/x", "http://two/y"]}`. Each URL's host must be allowed:
//! the backend's own hosts, or those listed in `allowed_hosts` beside `name` (the gateway's
//! outbound client checks it, redirects included).

use http::{Method, Uri};
use serde_json::{Map, Value};
use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ClientPlugin, ErrorKind, ExecError,
    Executor, PluginContext, SharedExecutor, full,
};

#[derive(Debug)]
pub(crate) struct Factory;

impl ClientPlugin for Factory {
    fn build(&self, ctx: PluginContext<'_>) -> Result<SharedExecutor, String> {
        let settings = crate::settings_object(ctx.settings)?;
        crate::reject_unknown(settings, &["urls"])?;
        let urls = settings
            .get("urls")
            .and_then(Value::as_array)
            .filter(|urls| urls.len() == 2)
            .ok_or("settings.urls: expected two absolute URLs")?;
        let mut parsed = Vec::with_capacity(2);
        for (i, url) in urls.iter().enumerate() {
            let uri: Uri = url
                .as_str()
                .and_then(|u| u.parse().ok())
                .filter(|u: &Uri| u.scheme().is_some() && u.authority().is_some())
                .ok_or_else(|| {
                    format!("settings.urls[{i}]: expected an absolute URL, found {url}")
                })?;
            parsed.push(uri);
        }
        Ok(std::sync::Arc::new(FanOut {
            urls: parsed,
            next: ctx.client,
        }))
    }
}

#[derive(Debug)]
struct FanOut {
    urls: Vec<Uri>,
    next: SharedExecutor,
}

impl FanOut {
    async fn fetch(&self, url: &Uri, ctx: &CallContext) -> Result<Value, ExecError> {
        let request = BackendRequest {
            method: Method::GET,
            url: url.clone(),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::new(),
        };
        let response = self.next.execute(request, ctx).await?;
        if !response.status().is_success() {
            return Err(ExecError::plugin(
                ErrorKind::Other,
                format!("{url} answered {}", response.status()),
            ));
        }
        let body = sluice_plugin::collect(response.into_body(), ctx.max_body_bytes).await?;
        serde_json::from_slice(&body).map_err(|e| {
            ExecError::plugin(
                ErrorKind::Other,
                format!("{url} answered invalid JSON: {e}"),
            )
        })
    }
}

impl Executor for FanOut {
    fn execute<'a>(
        &'a self,
        _request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(async move {
            let (a, b) = futures_util::future::join(
                self.fetch(&self.urls[0], ctx),
                self.fetch(&self.urls[1], ctx),
            )
            .await;
            let mut combined = Map::new();
            combined.insert("a".into(), a?);
            combined.insert("b".into(), b?);
            let mut response = BackendResponse::new(full(Value::Object(combined).to_string()));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Ok(response)
        })
    }
}
