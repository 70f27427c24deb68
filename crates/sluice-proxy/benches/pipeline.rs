//! Per-request cost of the proxy layer without the network: `EndpointPipeline::call` plus
//! `respond::render` (and reading the rendered body), with an in-process executor answering a
//! fixed 200-byte JSON body in place of the pooled HTTP client.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ExecError, Executor, Registry,
    SharedExecutor,
};
use sluice_proxy::respond::{self, RenderOptions};
use sluice_proxy::{EndpointPipeline, ProxyRequest, build_pipelines};

/// About 200 bytes of JSON, the size of a small API answer (the load benchmark serves the same).
const BODY: &[u8] = br#"{"id":123456,"name":"Elliot Alderson","email":"elliot@example.com","active":true,"role":"admin","address":{"city":"New York","zip":"10001","street":"5th Avenue"},"tags":["a","b","c"],"score":98.5}"#;

const CONFIG: &str = r#"{
  "version": 3,
  "host": ["http://127.0.0.1:9999"],
  "timeout": "3s",
  "endpoints": [
    {
      "endpoint": "/users/{id}",
      "input_headers": ["Authorization"],
      "backend": [{
        "url_pattern": "/users/{id}",
        "allow": ["id", "name", "email", "address.city", "tags"],
        "mapping": {"email": "contact"},
        "group": "user"
      }]
    },
    {
      "endpoint": "/merge",
      "backend": [
        {"url_pattern": "/data.json", "group": "a"},
        {"url_pattern": "/data.json", "group": "b"},
        {"url_pattern": "/data.json", "group": "c"}
      ]
    },
    {
      "endpoint": "/noop",
      "output_encoding": "no-op",
      "backend": [{"url_pattern": "/data.json", "encoding": "no-op"}]
    }
  ]
}"#;

/// Answers every call with [`BODY`], as a backend on the network would (minus the network).
#[derive(Debug)]
struct FixedAnswer;

impl Executor for FixedAnswer {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(async move {
            black_box(&request);
            let mut response = Response::new(sluice_plugin::full(Bytes::from_static(BODY)));
            *response.status_mut() = StatusCode::OK;
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(BODY.len()));
            Ok(response)
        })
    }
}

async fn pipelines() -> Vec<EndpointPipeline> {
    let config = sluice_config::parse_str(CONFIG, Path::new("bench.json")).unwrap();
    let executor: SharedExecutor = Arc::new(FixedAnswer);
    build_pipelines(&config, &Registry::new(), &executor)
        .await
        .unwrap()
}

/// A client request as the server hands it over: a few typical headers, no body.
fn request(params: Vec<(String, String)>) -> ProxyRequest {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
    headers.insert(header::USER_AGENT, HeaderValue::from_static("wrk"));
    headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer abc"),
    );
    ProxyRequest {
        method: Method::GET,
        params,
        query: None,
        headers,
        body: Bytes::new(),
        client_ip: "127.0.0.1".parse().unwrap(),
        telemetry: Default::default(),
    }
}

fn bench_pipeline(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let pipelines = runtime.block_on(pipelines());
    let options = RenderOptions {
        return_error_msg: false,
        version: HeaderValue::from_static("Version bench"),
    };
    let find = |path: &str| {
        pipelines
            .iter()
            .find(|p| p.endpoint.endpoint == path)
            .unwrap()
    };
    let cases = [
        (
            "json, 1 backend, allow+mapping+group",
            find("/users/{id}"),
            vec![("id".to_owned(), "42".to_owned())],
        ),
        ("json, merge of 3 backends", find("/merge"), Vec::new()),
        ("no-op, 1 backend", find("/noop"), Vec::new()),
    ];

    // Each case must produce a complete 200 answer, or the figures mean nothing.
    for (name, pipeline, params) in &cases {
        let request = request(params.clone());
        let (status, body) = runtime.block_on(async {
            let outcome = pipeline.call(&request).await;
            assert!(outcome.error.is_none(), "{name}: {:?}", outcome.error);
            let response = respond::render(pipeline, outcome, None, &options);
            let status = response.status();
            (
                status,
                sluice_plugin::collect(response.into_body(), usize::MAX)
                    .await
                    .unwrap(),
            )
        });
        assert_eq!(status, StatusCode::OK, "{name}");
        assert!(!body.is_empty(), "{name}: empty body");
    }

    let mut group = c.benchmark_group("pipeline call + render");
    for (name, pipeline, params) in &cases {
        let request = request(params.clone());
        group.bench_function(*name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let outcome = pipeline.call(black_box(&request)).await;
                    let response = respond::render(pipeline, outcome, None, &options);
                    black_box(sluice_plugin::collect(response.into_body(), usize::MAX).await)
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
