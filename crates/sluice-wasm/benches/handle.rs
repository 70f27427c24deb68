//! One `execute` through plugins against an in-process backend, versus the default client
//! directly. Run with `cargo bench -p sluice-wasm --bench handle`.

#![allow(missing_docs)]

#[path = "../tests/host/common/mod.rs"]
mod common;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use serde_json::json;
use sluice_plugin::SharedExecutor;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let backend = rt.block_on(common::start_backend());
    let url = format!("{}/__debug/bench", backend.url);

    let executors: Vec<(&str, SharedExecutor)> = vec![
        ("default-client", common::default_client()),
        (
            "client-example (handle + send)",
            common::build(
                &common::load("client-example"),
                json!({"name": "client-example", "client-example": {"path": "/never"}}),
                &backend.url,
            )
            .expect("client-example"),
        ),
        (
            "hmac-signer (on-request hook)",
            common::build(
                &common::load("hmac-signer"),
                json!({"name": "hmac-signer", "hmac-signer": {"secret": "s"}}),
                &backend.url,
            )
            .expect("hmac-signer"),
        ),
        (
            "header-rewrite (on-request hook, pass-through)",
            common::build(
                &common::load("header-rewrite"),
                json!({"name": "header-rewrite", "header-rewrite": {"request": {"set": {"x-k": "v"}}}}),
                &backend.url,
            )
            .expect("header-rewrite"),
        ),
        (
            "header-rewrite (both hooks, body buffered)",
            common::build(
                &common::load("header-rewrite"),
                json!({"name": "header-rewrite", "header-rewrite": {"response": {"set": {"x-k": "v"}}}}),
                &backend.url,
            )
            .expect("header-rewrite"),
        ),
        (
            "wasi-passthrough (wasi:http)",
            common::build(
                &common::load("wasi-passthrough"),
                json!({"name": "wasi-passthrough"}),
                &backend.url,
            )
            .expect("wasi-passthrough"),
        ),
        (
            "static-answer (on-request answers, no call)",
            common::build(
                &common::load("static-answer"),
                json!({"name": "static-answer", "static-answer": {"body": {"message": "static"}}}),
                &backend.url,
            )
            .expect("static-answer"),
        ),
    ];

    let mut group = c.benchmark_group("execute");
    group.measurement_time(Duration::from_secs(5));
    for (name, exec) in &executors {
        group.bench_function(*name, |b| {
            b.to_async(&rt).iter(|| async {
                let ctx = common::ctx(Duration::from_secs(5));
                let response = exec
                    .execute(common::request("GET", &url), &ctx)
                    .await
                    .expect("execute");
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes();
                assert!(!body.is_empty());
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
