//! Endpoint stages: a component reads its own namespace (errors with file and JSON path), its
//! service stage runs before routing, its endpoint stage after, either may answer early, every
//! answer passes its `on_response`, and its backend layer wraps the executor.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::header::{HeaderName, HeaderValue};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_config::read::Reader;
use sluice_config::{Component, Config, Diagnostic, Endpoint, Level, LoadOptions};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;
use sluice_plugin::{Registry, SharedExecutor};
use sluice_stage::{
    Components, EarlyAnswer, RequestHead, ResponseContext, SharedStage, Stage, StageFactory,
    StageFuture, decided,
};

const NS: &str = "test/guard";

/// `test/guard`: at the service, `{"preflight": true}` answers OPTIONS itself (204) and marks
/// every answer; at an endpoint, `{"deny_header": "X-Deny"}` refuses (403) a request carrying
/// the header and copies a param into a header for the backend; at a backend, `{"count": true}`
/// counts the calls through its executor.
#[derive(Debug, Default)]
struct Guard {
    backend_calls: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct Preflight;

impl Stage for Preflight {
    fn name(&self) -> &'static str {
        NS
    }

    fn on_request<'a>(&'a self, head: &'a mut RequestHead<'_>) -> StageFuture<'a> {
        decided(if *head.method == Method::OPTIONS {
            Err(EarlyAnswer::empty(StatusCode::NO_CONTENT))
        } else {
            Ok(())
        })
    }

    fn on_response(&self, request: &ResponseContext<'_>, response: &mut http::response::Parts) {
        let origin = request.request_headers.get("origin").cloned();
        response.headers.insert(
            HeaderName::from_static("x-guarded"),
            origin.unwrap_or(HeaderValue::from_static("yes")),
        );
    }
}

#[derive(Debug)]
struct Deny {
    header: HeaderName,
}

impl Stage for Deny {
    fn name(&self) -> &'static str {
        NS
    }

    fn on_request<'a>(&'a self, head: &'a mut RequestHead<'_>) -> StageFuture<'a> {
        if head.headers.contains_key(&self.header) {
            return decided(Err(EarlyAnswer::text(StatusCode::FORBIDDEN, "denied")));
        }
        // What a JWT stage does with claims: a header for the backends.
        if let Some((_, id)) = head.params.iter().find(|(k, _)| k == "id") {
            head.headers
                .insert("x-user", HeaderValue::from_str(id).unwrap());
        }
        decided(Ok(()))
    }
}

#[derive(Debug)]
struct Counting {
    inner: SharedExecutor,
    calls: Arc<AtomicUsize>,
}

impl sluice_plugin::Executor for Counting {
    fn execute<'a>(
        &'a self,
        request: sluice_plugin::BackendRequest,
        ctx: &'a sluice_plugin::CallContext,
    ) -> sluice_plugin::BoxFuture<
        'a,
        Result<sluice_plugin::BackendResponse, sluice_plugin::ExecError>,
    > {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.execute(request, ctx)
    }
}

fn block(extra: &serde_json::Map<String, Value>) -> Option<&Value> {
    extra.get(NS)
}

impl StageFactory for Guard {
    fn components(&self) -> Vec<Component> {
        vec![Component {
            namespace: NS.to_owned(),
            levels: vec![Level::Service, Level::Endpoint, Level::Backend],
        }]
    }

    fn service_stages(&self, config: &Config) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        let Some(value) = block(&config.extra_config) else {
            return Ok(Vec::new());
        };
        let options = LoadOptions::default();
        let mut r = Reader::new(&config.source, &options);
        let Some(o) = r.as_object(value, format!("extra_config[{NS:?}]")) else {
            return Err(r.into_errors());
        };
        r.known_keys(&o, &["preflight"]);
        let preflight = r.bool(&o, "preflight");
        let errors = r.into_errors();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(if preflight {
            vec![Arc::new(Preflight)]
        } else {
            Vec::new()
        })
    }

    fn endpoint_stages(
        &self,
        config: &Config,
        endpoint: &Endpoint,
    ) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        let Some(value) = block(&endpoint.extra_config) else {
            return Ok(Vec::new());
        };
        let options = LoadOptions::default();
        let mut r = Reader::new(&config.source, &options);
        let path = format!("{}.extra_config[{NS:?}]", endpoint.json_path);
        let Some(o) = r.as_object(value, path) else {
            return Err(r.into_errors());
        };
        let header = r.string(&o, "deny_header").unwrap_or_default();
        let header = match HeaderName::try_from(header.as_str()) {
            Ok(header) => header,
            Err(_) => {
                r.error(o.path_of("deny_header"), "expected a header name");
                return Err(r.into_errors());
            }
        };
        Ok(vec![Arc::new(Deny { header })])
    }

    fn wrap_backend(
        &self,
        _config: &Config,
        _endpoint: &Endpoint,
        backend: &sluice_config::Backend,
        inner: SharedExecutor,
    ) -> Result<SharedExecutor, Vec<Diagnostic>> {
        if block(&backend.extra_config).is_none() {
            return Ok(inner);
        }
        Ok(Arc::new(Counting {
            inner,
            calls: Arc::clone(&self.backend_calls),
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_run_around_the_pipeline_and_answer_early() {
    let mock = Backend::start_sync(|req: &Received| {
        Reply::json(200, &json!({"user": req.header("x-user").unwrap_or("-")}))
    })
    .await;
    let guard = Guard::default();
    let calls = Arc::clone(&guard.backend_calls);
    let components = Components::new().with(guard);
    let mut config = service(json!([
        endpoint(
            "/users/{id}",
            json!([backend(
                &mock.url(),
                "/u",
                json!({"extra_config": {NS: {"count": true}}})
            )]),
            // As with KrakenD's propagated JWT claims, a header a stage adds reaches the
            // backend when input_headers lists it.
            json!({"input_headers": ["X-User"], "extra_config": {NS: {"deny_header": "X-Deny"}}})
        ),
        endpoint(
            "/open",
            json!([backend(&mock.url(), "/o", Value::Null)]),
            Value::Null
        )
    ]));
    config["extra_config"][NS] = json!({"preflight": true});
    let gw = try_start_gateway_with_components(config, Registry::new(), &components)
        .await
        .unwrap();

    // The endpoint stage adds a header for the backend; the backend layer counts the call;
    // the service stage marks the answer.
    let resp = get(&gw.url("/users/7")).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), json!({"user": "7"}));
    assert_eq!(resp.header("x-guarded"), Some("yes"));
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    // Refused by the endpoint stage: no backend call, the stage's answer as it is.
    let resp = request(
        Method::GET,
        &gw.url("/users/7"),
        &[("x-deny", "1"), ("origin", "http://a.example")],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.text(), "denied");
    assert_eq!(resp.header("x-krakend-completed"), None);
    assert_eq!(resp.header("x-guarded"), Some("http://a.example"));
    assert!(resp.header("x-sluice").is_some());
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    // The service stage answers before routing, on a path no endpoint has too.
    let resp = request(
        Method::OPTIONS,
        &gw.url("/nowhere"),
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("x-guarded"), Some("yes"));
    // An endpoint without the namespace has no stage; the router's own 404 is marked too.
    assert_eq!(get(&gw.url("/open")).await.status, 200);
    assert_eq!(
        get(&gw.url("/missing")).await.header("x-guarded"),
        Some("yes")
    );
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_reports_its_problems_with_file_and_path() {
    let components = Components::new().with(Guard::default());
    let mut config = service(json!([endpoint(
        "/a",
        json!([backend("http://127.0.0.1:10", "/a", Value::Null)]),
        json!({"extra_config": {NS: {"deny_header": "bad header"}}})
    )]));
    config["extra_config"][NS] = json!({"preflight": "yes", "extra": 1});
    let error = try_start_gateway_with_components(config, Registry::new(), &components)
        .await
        .unwrap_err()
        .to_string();
    for expected in [
        "test.json: extra_config[\"test/guard\"].extra:",
        "test.json: extra_config[\"test/guard\"].preflight: expected true or false",
        "test.json: endpoints[0].extra_config[\"test/guard\"].deny_header: expected a header name",
    ] {
        assert!(error.contains(expected), "{expected}\n{error}");
    }

    // Without the component, the namespace is refused as before (fail closed).
    let config = service(json!([endpoint(
        "/a",
        json!([backend("http://127.0.0.1:10", "/a", Value::Null)]),
        json!({"extra_config": {NS: {"deny_header": "X-Deny"}}})
    )]));
    let error = try_start_gateway_with_components(config, Registry::new(), &Components::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("test/guard"), "{error}");
}
