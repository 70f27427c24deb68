//! `telemetry/opentelemetry` and `telemetry/logging`: read as krakend-otel and
//! krakend-gologging read them, every field honoured or refused at its JSON path.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_config::{LogFormat, LogLevel, from_value};

fn config(extra: Value, endpoint_extra: Value, backend_extra: Value) -> Value {
    json!({
        "version": 3,
        "name": "gw",
        "extra_config": extra,
        "endpoints": [{
            "endpoint": "/a/{id}",
            "extra_config": endpoint_extra,
            "backend": [{"host": ["http://b"], "url_pattern": "/x/{id}", "extra_config": backend_extra}]
        }]
    })
}

fn errors(value: &Value) -> String {
    from_value(value, Path::new("k.json"))
        .unwrap_err()
        .to_string()
}

#[test]
fn defaults_as_krakend_otel() {
    let c = from_value(
        &config(json!({"telemetry/opentelemetry": {}}), json!({}), json!({})),
        Path::new("k.json"),
    )
    .unwrap();
    let otel = c.opentelemetry.unwrap();
    assert_eq!(otel.service_name, "gw");
    assert_eq!(otel.metric_reporting_period, Duration::from_secs(30));
    assert_eq!(otel.trace_sample_rate, 1.0);
    assert_eq!(
        otel.skip_paths,
        ["/__health", "/__debug/", "/__echo/", "/__stats/"]
    );
    assert!(otel.layers.backend.metrics.round_trip);
    assert!(otel.layers.backend.metrics.read_payload);
    assert!(c.unknown_namespaces.is_empty());
}

#[test]
fn a_full_block_is_read() {
    let c = from_value(
        &config(
            json!({"telemetry/opentelemetry": {
                "service_name": "svc", "service_version": "1.2", "deploy_env": "prod",
                "skip_paths": [""], "metric_reporting_period": 5, "trace_sample_rate": 0.25,
                "exporters": {
                    "prometheus": [{"name": "p", "port": 9091, "listen_ip": "127.0.0.1", "process_metrics": true, "go_metrics": true}],
                    "otlp": [{"name": "o", "host": "http://collector", "port": 4318, "use_http": true, "disable_metrics": true}]
                },
                "layers": {
                    "global": {"disable_propagation": true, "metrics_static_attributes": [{"key": "env", "value": "prod"}]},
                    "proxy": {"disable_traces": true},
                    "backend": {"metrics": {"round_trip": true}, "traces": {"disable_stage": true}}
                }
            }}),
            json!({"telemetry/opentelemetry": {"proxy": {"disable_metrics": true}, "global": {"metrics_static_attributes": [{"key": "team", "value": "a"}]}}}),
            json!({"telemetry/opentelemetry": {"backend": {"metrics": {"static_attributes": [{"key": "tier", "value": "gold"}]}}}}),
        ),
        Path::new("k.json"),
    )
    .unwrap();
    let otel = c.opentelemetry.unwrap();
    assert_eq!(otel.service_name, "svc");
    assert!(otel.skip_paths.is_empty());
    assert_eq!(otel.trace_sample_rate, 0.25);
    assert_eq!(otel.prometheus[0].port, 9091);
    assert_eq!(otel.prometheus[0].listen_ip, Some([127, 0, 0, 1].into()));
    assert_eq!(otel.otlp[0].host, "collector");
    assert!(otel.otlp[0].use_http);
    assert!(otel.layers.global.disable_propagation);
    assert_eq!(
        otel.layers.global.metrics_static_attributes,
        [("env".to_owned(), "prod".to_owned())]
    );
    // A written metrics block starts from Go's zero values.
    assert!(otel.layers.backend.metrics.round_trip);
    assert!(!otel.layers.backend.metrics.read_payload);
    let endpoint = c.endpoints[0].telemetry.as_ref().unwrap();
    assert!(endpoint.proxy.as_ref().unwrap().disable_metrics);
    assert_eq!(endpoint.metrics_static_attributes[0].0, "team");
    let backend = c.endpoints[0].backends[0].telemetry.as_ref().unwrap();
    assert!(!backend.metrics.round_trip);
    assert_eq!(backend.metrics.static_attributes[0].1, "gold");
}

#[test]
fn what_is_not_honoured_is_refused_at_its_path() {
    let e = errors(&config(
        json!({"telemetry/opentelemetry": {
            "sample_rate": 1,
            "trace_sample_rate": 2,
            "exporters": {"prometheus": [{"name": "p", "tag_host": true}, {"name": "p"}], "otlp": [{"name": "o", "host": "https://c"}], "zipkin": []},
            "layers": {"global": {"semantic_convention": "1.27"}, "backend": {"metrics": {"detailed_connection": true}}}
        }}),
        json!({"telemetry/opentelemetry": {"backend": {}}}),
        json!({"telemetry/opentelemetry": {"proxy": {}}}),
    ));
    for path in [
        r#"k.json: extra_config["telemetry/opentelemetry"].sample_rate: field "sample_rate""#,
        r#"k.json: extra_config["telemetry/opentelemetry"].trace_sample_rate: expected a number from 0 to 1, found 2"#,
        r#"extra_config["telemetry/opentelemetry"].exporters.prometheus[0].tag_host"#,
        r#"extra_config["telemetry/opentelemetry"].exporters.prometheus[1].name: two exporters are named "p""#,
        r#"extra_config["telemetry/opentelemetry"].exporters.otlp[0].host: OTLP over TLS"#,
        r#"extra_config["telemetry/opentelemetry"].exporters.zipkin"#,
        r#"extra_config["telemetry/opentelemetry"].layers.global.semantic_convention"#,
        r#"extra_config["telemetry/opentelemetry"].layers.backend.metrics.detailed_connection"#,
        r#"endpoints[0].extra_config["telemetry/opentelemetry"].backend: krakend-otel reads"#,
        r#"endpoints[0].backend[0].extra_config["telemetry/opentelemetry"].proxy"#,
    ] {
        assert!(e.contains(path), "{path}\n{e}");
    }
}

#[test]
fn logging() {
    let c = from_value(
        &config(
            json!({"telemetry/logging": {"level": "WARNING", "prefix": "[KRAKEND]", "stdout": true, "format": "custom", "custom_format": "%{time:2006} %{level} %{message}"}}),
            json!({}),
            json!({}),
        ),
        Path::new("k.json"),
    )
    .unwrap();
    let logging = c.logging.unwrap();
    assert_eq!(logging.level, LogLevel::Warning);
    assert_eq!(logging.prefix, "[KRAKEND]");
    assert!(matches!(logging.format, LogFormat::Custom(_)));
    let e = errors(&config(
        json!({"telemetry/logging": {"level": "LOUD", "format": "custom", "custom_format": "%{shortfile} %{message}", "access_log_format": "x"}}),
        json!({}),
        json!({}),
    ));
    assert!(
        e.contains(r#"extra_config["telemetry/logging"].level: expected one of "DEBUG""#),
        "{e}"
    );
    assert!(
        e.contains("%{shortfile} is not a verb Sluice writes"),
        "{e}"
    );
    assert!(
        e.contains(r#"extra_config["telemetry/logging"].access_log_format"#),
        "{e}"
    );
    let e = errors(&config(
        json!({"telemetry/logging": {}}),
        json!({}),
        json!({}),
    ));
    assert!(e.contains("level: missing"), "{e}");
    // Elsewhere it is KrakenD EE's backend log: observes only, so a warning.
    let c = from_value(
        &config(
            json!({}),
            json!({"telemetry/logging": {"level": "INFO"}}),
            json!({}),
        ),
        Path::new("k.json"),
    )
    .unwrap();
    assert_eq!(c.unknown_namespaces.len(), 1);
}
