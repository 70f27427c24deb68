//! KrakenD's documented example client plugin (spec §1.11): answers one configured path
//! itself, passes everything else through the gateway's client.

use serde_json::json;
use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ClientPlugin, ExecError, Executor,
    PluginContext, SharedExecutor, full,
};

#[derive(Debug)]
pub(crate) struct Factory;

impl ClientPlugin for Factory {
    fn build(&self, ctx: PluginContext<'_>) -> Result<SharedExecutor, String> {
        let settings = crate::settings_object(ctx.settings)?;
        crate::reject_unknown(settings, &["path"])?;
        let path = match settings.get("path") {
            Some(serde_json::Value::String(path)) if !path.is_empty() => path.clone(),
            _ => return Err("settings.path: expected the path to answer, as a string".to_owned()),
        };
        Ok(std::sync::Arc::new(ClientExample {
            path,
            next: ctx.client,
        }))
    }
}

#[derive(Debug)]
struct ClientExample {
    path: String,
    next: SharedExecutor,
}

impl Executor for ClientExample {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        if request.url.path() == self.path {
            let body = json!({ "message": request.url.path() }).to_string();
            let mut response = BackendResponse::new(full(body));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            return Box::pin(async move { Ok(response) });
        }
        self.next.execute(request, ctx)
    }
}
