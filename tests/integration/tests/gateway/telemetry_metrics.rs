//! `telemetry/opentelemetry` with a Prometheus exporter: after a few requests through a plain
//! endpoint and one whose backend is a WebAssembly plugin with outbound calls, the endpoint is
//! scraped over HTTP, parsed with a Prometheus text parser, and the metric names, labels and
//! values are krakend-otel's (as OpenTelemetry's Prometheus exporter writes them), plus
//! Sluice's plugin metrics.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use prometheus_parse::{Sample, Scrape, Value as PromValue};
use serde_json::{Value, json};
use sluice_integration::backend::{Backend, Received, Reply};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn origin() -> Backend {
    Backend::start(|req: Received| async move {
        match req.path.as_str() {
            "/a" => Reply::json(200, &json!({"x": 1})),
            "/b" => Reply::json(200, &json!({"y": 2})),
            "/broken" => Reply::json(500, &json!({"error": "boom"})),
            _ => Reply::json(
                200,
                &json!({"path": req.path, "id": req.header("x-request-id")}),
            ),
        }
    })
    .await
}

async fn scrape(port: u16) -> Scrape {
    let resp = get(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = resp.text();
    if std::env::var_os("SHOW_SCRAPE").is_some() {
        eprintln!("{text}");
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The samples named `name` whose labels include every pair of `want`.
fn find<'a>(scrape: &'a Scrape, name: &str, want: &[(&str, &str)]) -> Vec<&'a Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && want.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

fn value(sample: &Sample) -> f64 {
    match &sample.value {
        PromValue::Counter(v) | PromValue::Gauge(v) | PromValue::Untyped(v) => *v,
        other => panic!("not a scalar: {other:?}"),
    }
}

fn one(scrape: &Scrape, name: &str, want: &[(&str, &str)]) -> f64 {
    let found = find(scrape, name, want);
    assert_eq!(found.len(), 1, "{name} {want:?}: {found:?}");
    value(found[0])
}

fn labels(sample: &Sample) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for key in [
        "http_request_method",
        "http_route",
        "http_response_status_code",
        "url_scheme",
        "krakend_endpoint_route",
        "krakend_endpoint_method",
        "server_address",
        "server_port",
        "clientname",
        "otel_scope_name",
        "error",
        "canceled",
        "complete",
        "env",
    ] {
        if let Some(v) = sample.labels.get(key) {
            map.insert(key.to_owned(), v.to_owned());
        }
    }
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_exposes_krakend_otel_metrics() {
    let one_origin = origin().await;
    let two = origin().await;
    let port = free_port();
    let mut config = service(json!([
        endpoint(
            "/direct/{id}",
            json!([backend(&one_origin.url(), "/users/{id}", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/broken",
            json!([backend(&one_origin.url(), "/broken", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/both",
            json!([backend(
                &one_origin.url(),
                "/",
                json!({"extra_config": {"plugin/http-client": {
                    "name": "fan-out",
                    "fan-out": {"urls": [format!("{}/a", one_origin.url()), format!("{}/b", two.url())]},
                    "allowed_hosts": [one_origin.url(), two.url()]
                }}})
            )]),
            Value::Null
        ),
        endpoint(
            "/faulty/{what}",
            json!([backend(
                &one_origin.url(),
                "/f/{what}",
                json!({"extra_config": {"plugin/http-client": {"name": "fault"}}})
            )]),
            Value::Null
        ),
    ]));
    config["extra_config"]["telemetry/opentelemetry"] = json!({
        "service_name": "sluice-test",
        "service_version": "9.9",
        "exporters": {"prometheus": [{"name": "local", "port": port, "listen_ip": "127.0.0.1", "process_metrics": true}]},
        "layers": {"global": {"metrics_static_attributes": [{"key": "env", "value": "test"}]}}
    });
    // A host of its own: its counters see only this test's calls.
    let (registry, host) = sluice_integration::plugins::own_registry();
    let gw = try_start_gateway_with(config, registry, |t| {
        t.register_collector(host.collector());
    })
    .await
    .unwrap();

    for _ in 0..3 {
        let resp = get(&gw.url("/direct/42")).await;
        assert_eq!(resp.status, 200);
        // A request id reached the backend (generated: the client sent none).
        assert_eq!(resp.json()["id"].as_str().map(str::len), Some(36));
    }
    let resp = request(
        http::Method::GET,
        &gw.url("/direct/7"),
        &[("x-request-id", "client-chosen-1")],
        "",
    )
    .await;
    assert_eq!(resp.json()["id"], "client-chosen-1");
    for _ in 0..2 {
        assert_eq!(get(&gw.url("/both")).await.status, 200);
    }
    assert_eq!(get(&gw.url("/broken")).await.status, 500);
    assert_eq!(get(&gw.url("/faulty/trap")).await.status, 500);
    assert_eq!(get(&gw.url("/faulty/refused")).await.status, 500);
    assert_eq!(get(&gw.url("/no/such/route")).await.status, 404);
    // Skipped by default (skip_paths).
    assert_eq!(get(&gw.url("/__health")).await.status, 200);

    let s = scrape(port).await;
    let base = [
        ("otel_scope_name", "io.krakend.krakend-otel"),
        ("env", "test"),
    ];

    // Global layer: http.server.duration and http.server.response.size, per route pattern.
    let direct = [
        base[0],
        base[1],
        ("http_route", "/direct/:id"),
        ("http_request_method", "GET"),
        ("http_response_status_code", "200"),
        ("url_scheme", "http"),
    ];
    assert_eq!(one(&s, "http_server_duration_count", &direct), 4.0);
    assert!(one(&s, "http_server_duration_sum", &direct) > 0.0);
    assert_eq!(one(&s, "http_server_response_size_count", &direct), 4.0);
    let histogram = find(&s, "http_server_duration", &direct);
    assert_eq!(histogram.len(), 1);
    let PromValue::Histogram(buckets) = &histogram[0].value else {
        panic!("not a histogram: {:?}", histogram[0]);
    };
    assert_eq!(buckets.len(), 21, "krakend-otel's 20 time buckets and +Inf");
    assert_eq!(buckets.last().unwrap().count, 4.0);
    assert_eq!(
        one(
            &s,
            "http_server_duration_count",
            &[
                ("http_route", "/both"),
                ("http_response_status_code", "200")
            ]
        ),
        2.0
    );
    assert_eq!(
        one(
            &s,
            "http_server_duration_count",
            &[
                ("http_route", "/broken"),
                ("http_response_status_code", "500")
            ]
        ),
        1.0
    );
    // No endpoint answered: the route is the status text, never the raw path.
    assert_eq!(
        one(
            &s,
            "http_server_duration_count",
            &[
                ("http_route", "404 Not Found"),
                ("http_response_status_code", "404")
            ]
        ),
        1.0
    );
    assert!(
        find(
            &s,
            "http_server_duration_count",
            &[("http_route", "/no/such/route")]
        )
        .is_empty()
    );
    assert!(
        find(
            &s,
            "http_server_duration_count",
            &[("http_route", "/__health")]
        )
        .is_empty()
    );

    // Proxy layer.
    let proxy = [
        ("http_route", "/direct/:id"),
        ("http_request_method", "GET"),
        ("error", "false"),
        ("canceled", "false"),
        ("complete", "true"),
    ];
    assert_eq!(one(&s, "krakend_proxy_duration_count", &proxy), 4.0);
    assert_eq!(
        one(
            &s,
            "krakend_proxy_duration_count",
            &[
                ("http_route", "/broken"),
                ("error", "true"),
                ("complete", "false")
            ]
        ),
        1.0
    );

    // Backend layer.
    let stage = [
        ("http_route", "/users/:id"),
        ("krakend_endpoint_route", "/direct/:id"),
        ("krakend_endpoint_method", "GET"),
        ("http_request_method", "GET"),
        ("error", "false"),
        ("complete", "true"),
    ];
    assert_eq!(one(&s, "krakend_backend_duration_count", &stage), 4.0);

    // Round trip (the default client's requests).
    let authority = one_origin.addr();
    let port_text = authority.port().to_string();
    let rt = [
        ("http_route", "/users/:id"),
        ("krakend_endpoint_route", "/direct/:id"),
        ("clientname", "/users/:id"),
        ("server_address", "127.0.0.1"),
        ("server_port", port_text.as_str()),
        ("http_response_status_code", "200"),
    ];
    assert_eq!(one(&s, "http_client_request_started_count_total", &rt), 4.0);
    assert_eq!(one(&s, "http_client_duration_count", &rt), 4.0);
    assert_eq!(one(&s, "http_client_response_size_count", &rt), 4.0);
    assert_eq!(one(&s, "http_client_request_size_total", &rt), 0.0);
    assert!(
        find(&s, "http_client_request_failed_count_total", &rt)
            .iter()
            .all(|x| value(x) == 0.0)
    );
    let broken = [
        ("http_route", "/broken"),
        ("http_response_status_code", "500"),
    ];
    assert_eq!(
        one(&s, "http_client_request_started_count_total", &broken),
        1.0
    );
    // Reading the body (read_payload).
    assert_eq!(
        one(
            &s,
            "http_client_response_read_size_hist_count",
            &[("http_route", "/users/:id")]
        ),
        4.0
    );
    assert!(
        one(
            &s,
            "http_client_response_read_size_total",
            &[("http_route", "/users/:id")]
        ) > 0.0
    );

    // The plugin's calls and its outbound calls, by allowed origin.
    let plugin = [
        ("sluice_plugin", "fan-out"),
        ("krakend_endpoint_route", "/both"),
        ("outcome", "ok"),
    ];
    assert_eq!(one(&s, "sluice_plugin_calls_total", &plugin), 2.0);
    let a_origin = format!("http://{}", one_origin.authority());
    let b_origin = format!("http://{}", two.authority());
    for o in [&a_origin, &b_origin] {
        assert_eq!(
            one(
                &s,
                "sluice_plugin_outbound_calls_total",
                &[
                    ("sluice_plugin", "fan-out"),
                    ("server_origin", o),
                    ("outcome", "ok")
                ]
            ),
            2.0,
            "{o}"
        );
    }
    // The WebAssembly host's own counters for the plugin.
    let fan_out = [("sluice_plugin", "fan-out")];
    assert_eq!(one(&s, "sluice_plugin_wasm_requests_total", &fan_out), 2.0);
    assert_eq!(one(&s, "sluice_plugin_wasm_errors_total", &fan_out), 0.0);
    for kind in [
        "trap",
        "deadline",
        "out_of_memory",
        "host_not_allowed",
        "overloaded",
    ] {
        assert_eq!(
            one(
                &s,
                "sluice_plugin_wasm_faults_total",
                &[fan_out[0], ("kind", kind)]
            ),
            0.0,
            "{kind}"
        );
    }
    let fault = [("sluice_plugin", "fault")];
    assert_eq!(
        one(
            &s,
            "sluice_plugin_wasm_faults_total",
            &[fault[0], ("kind", "trap")]
        ),
        1.0
    );
    assert_eq!(
        one(
            &s,
            "sluice_plugin_wasm_faults_total",
            &[fault[0], ("kind", "host_not_allowed")]
        ),
        1.0
    );
    assert_eq!(one(&s, "sluice_plugin_wasm_errors_total", &fault), 2.0);
    assert_eq!(
        one(
            &s,
            "sluice_plugin_calls_total",
            &[
                fault[0],
                ("outcome", "plugin_fault"),
                ("http_route", "/f/:what")
            ]
        ),
        1.0
    );
    // The refused outbound call: counted, with no host the plugin chose.
    assert_eq!(
        one(
            &s,
            "sluice_plugin_outbound_calls_total",
            &[fault[0], ("outcome", "host_not_allowed")]
        ),
        1.0
    );
    assert!(
        find(
            &s,
            "sluice_plugin_outbound_calls_total",
            &[("server_origin", "http://refused.invalid:80")]
        )
        .is_empty()
    );
    let live = one(
        &s,
        "sluice_plugin_wasm_instances",
        &[fan_out[0], ("state", "live")],
    );
    let idle = one(
        &s,
        "sluice_plugin_wasm_instances",
        &[fan_out[0], ("state", "idle")],
    );
    assert!(
        live >= 1.0 && idle >= 1.0 && idle <= live,
        "live {live}, idle {idle}"
    );
    assert!(
        one(
            &s,
            "sluice_plugin_wasm_instance_events_total",
            &[fan_out[0], ("event", "created")]
        ) >= 1.0
    );

    // No round-trip metrics for the plugin's backend: the plugin replaces the HTTP client.
    assert!(
        find(
            &s,
            "http_client_request_started_count_total",
            &[("krakend_endpoint_route", "/both")]
        )
        .is_empty()
    );

    // The resource and the process.
    let target = find(
        &s,
        "target_info",
        &[("service_name", "sluice-test"), ("service_version", "9.9")],
    );
    assert_eq!(target.len(), 1);
    assert!(one(&s, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(find(&s, "process_cpu_seconds_total", &[]).len() == 1);

    // Every label set comes from the config or a closed set.
    for sample in &s.samples {
        let l = labels(sample);
        if let Some(route) = l.get("http_route") {
            assert!(!route.contains("42") && !route.contains("/7"), "{sample:?}");
        }
    }

    // Anything but /metrics is not found.
    let other = get(&format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(other.status, 404);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_busy_metrics_port_stops_start_up_with_the_exporter_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let b = origin().await;
    let mut config = service(json!([endpoint(
        "/x",
        json!([backend(&b.url(), "/", Value::Null)]),
        Value::Null
    )]));
    config["extra_config"]["telemetry/opentelemetry"] = json!({
        "exporters": {"prometheus": [{"name": "busy", "port": port, "listen_ip": "127.0.0.1"}]}
    });
    let err = try_start_gateway(config, sluice_plugin::Registry::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Prometheus exporter \"busy\" cannot listen on 127.0.0.1:"),
        "{err}"
    );
}
