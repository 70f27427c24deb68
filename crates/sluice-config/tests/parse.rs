//! Valid configs: every value parsed, every default applied, every alias normalised.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use sluice_config::{
    BackendHttpOptions, Config, Diagnostics, Encoding, FlatmapOp, LoadOptions, NamespaceClass,
    OutputEncoding, PluginFolder, Position, RouterOptions, ServerOptions, SluiceServerOptions,
    StaticStrategy, TlsProtocol, TlsVersion, TransportOptions, UnknownNamespace, from_value,
    from_value_with, load, load_with, namespace, parse_str,
};

const FULL: &str = "tests/fixtures/full.json";

/// The full fixture names two namespaces Sluice does not enforce; its tests opt out of them.
fn load_full() -> Config {
    load_full_from(FULL)
}

fn load_full_from(path: &str) -> Config {
    let options = LoadOptions {
        allow_unenforced: vec!["plugin/http-client".to_owned(), "qos/*".to_owned()],
        ..LoadOptions::default()
    };
    load_with(Path::new(path), &options).unwrap_or_else(|e| panic!("{e}"))
}

fn parse(value: Value) -> Config {
    match from_value(&value, Path::new("test.json")) {
        Ok(config) => config,
        Err(diagnostics) => panic!("{diagnostics}"),
    }
}

fn minimal() -> Value {
    json!({
        "version": 3,
        "host": ["localhost:8080"],
        "endpoints": [{"endpoint": "/a", "backend": [{"url_pattern": "/a"}]}]
    })
}

#[test]
fn full_config_service() {
    let config = load_full();
    assert_eq!(config.source, Path::new(FULL));
    assert_eq!(config.name, "Sluice full");
    assert_eq!(config.port, 9090);
    assert_eq!(config.listen_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(config.timeout, Duration::from_secs(3));
    assert_eq!(config.cache_ttl, Duration::from_secs(3600));
    assert_eq!(
        config.host,
        ["http://localhost:8081", "https://api.example.com"]
    );
    assert_eq!(config.output_encoding, OutputEncoding::Negotiate);
    assert_eq!(
        config.plugin,
        Some(PluginFolder {
            folder: PathBuf::from("tests/fixtures/./plugins"),
            pattern: ".wasm".to_owned(),
            sha256: Default::default(),
        })
    );
    assert!(config.debug_endpoint && config.echo_endpoint && !config.disable_rest);
    assert_eq!(
        config.server,
        ServerOptions {
            read_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(3),
            read_header_timeout: Duration::from_millis(150),
            max_header_bytes: 4096,
            use_h2c: true,
            max_shutdown_wait_time: Duration::from_secs(5),
        }
    );
    assert_eq!(
        config.transport,
        TransportOptions {
            disable_keep_alives: true,
            disable_compression: true,
            max_idle_connections_per_host: 10,
            idle_connection_timeout: Duration::from_secs(90),
            response_header_timeout: Duration::from_millis(500),
            dialer_timeout: Duration::from_secs(5),
            dialer_fallback_delay: Duration::from_millis(100),
            dialer_keep_alive: Duration::from_secs(15),
        }
    );
    let router = &config.router;
    assert!(router.return_error_msg && router.auto_options && !router.disable_health);
    assert_eq!(router.health_path, "/healthz");
    assert!(router.hide_version_header);
    assert!(router.disable_redirect_trailing_slash && router.disable_redirect_fixed_path);
    assert!(router.disable_handle_method_not_allowed && router.forwarded_by_client_ip);
    assert_eq!(router.remote_ip_headers, ["X-Real-Ip"]);
    assert_eq!(router.trusted_proxies, ["10.0.0.0/8", "::1"]);
    assert!(router.disable_access_log && router.disable_path_decoding);
    assert_eq!(router.error_body["404"], json!({"error": "not found"}));
    assert_eq!(
        router.error_body["405"],
        json!({"error": "method not allowed"})
    );

    // The legacy router key is stored under its short name; unknown namespaces are kept.
    assert!(config.extra_config.contains_key(namespace::ROUTER));
    assert!(
        !config
            .extra_config
            .contains_key("github_com/luraproject/lura/router/gin")
    );
    assert_eq!(
        config.extra_config["telemetry/logging"],
        json!({"level": "DEBUG"})
    );
    assert_eq!(
        config.logging.as_ref().map(|l| l.level),
        Some(sluice_config::LogLevel::Debug)
    );
    assert_eq!(
        config.unknown_namespaces,
        [
            UnknownNamespace {
                path: r#"extra_config["plugin/http-client"]"#.to_owned(),
                namespace: "plugin/http-client".to_owned(),
                class: NamespaceClass::OptedOut,
            },
            UnknownNamespace {
                path: r#"endpoints[0].extra_config["qos/ratelimit/router"]"#.to_owned(),
                namespace: "qos/ratelimit/router".to_owned(),
                class: NamespaceClass::OptedOut,
            },
        ]
    );
    assert_eq!(config.endpoints.len(), 3);
}

#[test]
fn full_config_endpoints_and_backends() {
    let config = load_full();

    let users = &config.endpoints[0];
    assert_eq!(users.json_path, "endpoints[0]");
    assert_eq!(users.label(), "GET /users/{id}");
    assert_eq!(users.concurrent_calls, 1);
    assert_eq!(users.timeout, Duration::from_secs(3));
    assert_eq!(users.cache_ttl, Duration::from_secs(3600));
    assert_eq!(users.input_headers, ["Authorization", "X-Y-Z"]);
    assert_eq!(users.input_query_strings, ["a", "c[]"]);
    assert_eq!(users.output_encoding, OutputEncoding::Negotiate);
    assert!(users.proxy.sequential);
    assert_eq!(
        users.proxy.sequential_propagated_params,
        ["resp0_first.foo"]
    );
    let static_response = users.proxy.static_response.as_ref().unwrap();
    assert_eq!(static_response.strategy, StaticStrategy::Incomplete);
    assert_eq!(
        Value::Object(static_response.data.clone()),
        json!({"foo": 42, "bar": "foobar"})
    );
    assert_eq!(
        users.proxy.flatmap_filter,
        [
            FlatmapOp::Move("a".into(), "b".into()),
            FlatmapOp::Del("c.*.d".into()),
            FlatmapOp::Append("x".into(), "y".into()),
        ]
    );
    assert!(users.extra_config.contains_key(namespace::PROXY));
    assert!(users.extra_config.contains_key("qos/ratelimit/router"));

    let b0 = &users.backends[0];
    assert_eq!(b0.json_path, "endpoints[0].backend[0]");
    assert_eq!(b0.host, config.host);
    assert_eq!(b0.url_pattern, "/users/{id}");
    assert_eq!(b0.method, Method::GET);
    assert_eq!(b0.encoding, Encoding::SafeJson);
    assert!(b0.is_collection);
    assert_eq!(b0.allow, ["name", "email"]);
    assert_eq!(b0.deny, ["password"]);
    assert_eq!(b0.mapping["collection"], "users");
    assert_eq!(b0.group.as_deref(), Some("first"));
    assert_eq!(b0.target.as_deref(), Some("data"));
    assert_eq!(b0.input_headers, None);
    assert_eq!(b0.input_query_strings, None);
    assert_eq!(b0.flatmap_filter, [FlatmapOp::Del("secret".into())]);
    assert_eq!(
        b0.http,
        BackendHttpOptions {
            return_error_code: true,
            return_error_details: Some("backend_a".to_owned()),
        }
    );
    assert!(b0.send_body_on_redirect);
    let plugin = b0.plugin.as_ref().unwrap();
    assert_eq!(plugin.name, "hmac-signer");
    assert_eq!(
        Value::Object(plugin.extra.clone()),
        json!({"name": "hmac-signer", "hmac-signer": {"key_env": "HMAC_KEY"}})
    );
    assert_eq!(
        plugin.json_path,
        r#"endpoints[0].backend[0].extra_config["github.com/devopsfaith/krakend/transport/http/client/executor"]"#
    );
    let mut keys: Vec<&str> = b0.extra_config.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            namespace::BACKEND_HTTP,
            namespace::BACKEND_HTTP_CLIENT,
            namespace::PLUGIN_HTTP_CLIENT,
            namespace::PROXY,
        ]
    );

    let b1 = &users.backends[1];
    assert_eq!(b1.host, ["http://b:81"]);
    assert_eq!(b1.method, Method::POST);
    assert_eq!(b1.url_pattern, "/x/{resp0_first.id}/{JWT.sub}?id={id}");
    assert_eq!(b1.encoding, Encoding::Json);
    assert_eq!(b1.input_headers.as_deref(), Some(&["*".to_owned()][..]));
    assert_eq!(
        b1.input_query_strings.as_deref(),
        Some(&["a".to_owned()][..])
    );
    assert_eq!(b1.plugin, None);
    assert_eq!(b1.http, BackendHttpOptions::default());

    let proxy = &config.endpoints[1];
    assert_eq!(proxy.endpoint, "/proxy/{path}");
    assert_eq!(proxy.method, Method::POST);
    assert_eq!(proxy.output_encoding, OutputEncoding::NoOp);
    assert_eq!(proxy.timeout, Duration::from_millis(100));
    assert_eq!(proxy.cache_ttl, Duration::from_secs(3600));
    assert_eq!(proxy.input_headers, ["Content-Type"]);
    let raw = &proxy.backends[0];
    assert_eq!(raw.host, ["unix:///var/run/api.sock"]);
    assert_eq!(raw.method, Method::POST);
    assert_eq!(
        raw.encoding,
        Encoding::NoOp,
        "no-op endpoints force no-op backends"
    );

    let defaults = &config.endpoints[2];
    assert_eq!(defaults.method, Method::GET);
    assert_eq!(defaults.output_encoding, OutputEncoding::Negotiate);
    assert_eq!(defaults.backends[0].host, config.host);
}

#[test]
fn defaults() {
    let config = parse(minimal());
    assert_eq!(config.name, "");
    assert_eq!(config.port, 8080);
    assert_eq!(config.listen_ip, None);
    assert_eq!(config.timeout, Duration::from_secs(2));
    assert_eq!(config.cache_ttl, Duration::ZERO);
    assert_eq!(config.host, ["http://localhost:8080"]);
    assert_eq!(config.output_encoding, OutputEncoding::Json);
    assert_eq!(config.plugin, None);
    assert!(!config.debug_endpoint && !config.echo_endpoint && !config.disable_rest);
    assert_eq!(config.server, ServerOptions::default());
    assert_eq!(config.server.max_header_bytes, 64 << 10);
    assert_eq!(config.sluice_server, SluiceServerOptions::default());
    assert_eq!(config.sluice_server.max_connections, 4096);
    assert_eq!(config.sluice_server.max_buffered_body_bytes, 64 << 20);
    assert_eq!(config.transport, TransportOptions::default());
    assert_eq!(config.transport.max_idle_connections_per_host, 250);
    assert_eq!(config.router, RouterOptions::default());
    assert_eq!(config.router.health_path, "/__health");
    assert!(config.extra_config.is_empty());
    assert!(config.unknown_namespaces.is_empty());

    let endpoint = &config.endpoints[0];
    assert_eq!(endpoint.method, Method::GET);
    assert_eq!(endpoint.concurrent_calls, 1);
    assert_eq!(endpoint.timeout, Duration::from_secs(2));
    assert_eq!(endpoint.cache_ttl, Duration::ZERO);
    assert!(endpoint.input_query_strings.is_empty());
    assert_eq!(endpoint.input_headers, ["Content-Type"]);
    assert_eq!(endpoint.output_encoding, OutputEncoding::Json);
    assert_eq!(endpoint.proxy, Default::default());

    let backend = &endpoint.backends[0];
    assert_eq!(backend.host, ["http://localhost:8080"]);
    assert_eq!(backend.method, Method::GET);
    assert_eq!(backend.encoding, Encoding::Json);
    assert_eq!(backend.group, None);
    assert_eq!(backend.target, None);
    assert!(backend.mapping.is_empty() && backend.allow.is_empty() && backend.deny.is_empty());
    assert_eq!(backend.plugin, None);
    assert!(!backend.send_body_on_redirect);
}

#[test]
fn zeros_mean_defaults() {
    let mut value = minimal();
    value["port"] = json!(0);
    value["timeout"] = json!("0");
    value["max_idle_connections_per_host"] = json!(0);
    value["endpoints"][0]["concurrent_calls"] = json!(0);
    value["endpoints"][0]["timeout"] = json!("0s");
    let config = parse(value);
    assert_eq!(config.port, 8080);
    assert_eq!(config.timeout, Duration::from_secs(2));
    assert_eq!(config.transport.max_idle_connections_per_host, 250);
    assert_eq!(config.endpoints[0].concurrent_calls, 1);
    assert_eq!(config.endpoints[0].timeout, Duration::from_secs(2));
}

#[test]
fn inherited_values() {
    let config = parse(json!({
        "version": 3,
        "timeout": "5s",
        "cache_ttl": "30s",
        "output_encoding": "string",
        "host": ["https://a.example.com/"],
        "endpoints": [{
            "endpoint": "/a",
            "method": "put",
            "backend": [
                {"url_pattern": "/a"},
                {"url_pattern": "/b", "host": []},
                {"url_pattern": "/c", "host": ["c:81"], "method": "PATCH"}
            ]
        }]
    }));
    let endpoint = &config.endpoints[0];
    assert_eq!(endpoint.method, Method::PUT);
    assert_eq!(endpoint.timeout, Duration::from_secs(5));
    assert_eq!(endpoint.cache_ttl, Duration::from_secs(30));
    assert_eq!(endpoint.output_encoding, OutputEncoding::String);
    assert_eq!(endpoint.backends[0].host, ["https://a.example.com"]);
    assert_eq!(endpoint.backends[0].method, Method::PUT);
    assert_eq!(endpoint.backends[1].host, ["https://a.example.com"]);
    assert_eq!(endpoint.backends[2].host, ["http://c:81"]);
    assert_eq!(endpoint.backends[2].method, Method::PATCH);
}

#[test]
fn namespace_aliases_both_spellings() {
    let spellings = [
        (namespace::ROUTER, "router", "service"),
        (
            namespace::ROUTER,
            "github_com/luraproject/lura/router/gin",
            "service",
        ),
        (
            namespace::ROUTER,
            "github.com/luraproject/lura/router/gin",
            "service",
        ),
        (
            namespace::ROUTER,
            "github_com/devopsfaith/krakend/router/gin",
            "service",
        ),
        (namespace::PROXY, "proxy", "endpoint"),
        (
            namespace::PROXY,
            "github.com/devopsfaith/krakend/proxy",
            "endpoint",
        ),
        (
            namespace::PROXY,
            "github.com/devopsfaith/krakend/proxy",
            "backend",
        ),
        (namespace::BACKEND_HTTP, "backend/http", "backend"),
        (
            namespace::BACKEND_HTTP,
            "github.com/devopsfaith/krakend/http",
            "backend",
        ),
        (
            namespace::BACKEND_HTTP_CLIENT,
            "backend/http/client",
            "backend",
        ),
        (
            namespace::BACKEND_HTTP_CLIENT,
            "github.com/devopsfaith/krakend/transport/http/client",
            "backend",
        ),
        (
            namespace::PLUGIN_HTTP_CLIENT,
            "plugin/http-client",
            "backend",
        ),
        (
            namespace::PLUGIN_HTTP_CLIENT,
            "github.com/devopsfaith/krakend/transport/http/client/executor",
            "backend",
        ),
    ];
    for (short, key, level) in spellings {
        let block = match short {
            s if s == namespace::ROUTER => json!({"return_error_msg": true}),
            s if s == namespace::PROXY && level == "endpoint" => {
                json!({"sequential": true, "flatmap_filter": [{"type": "del", "args": ["x"]}]})
            }
            s if s == namespace::PROXY => {
                json!({"flatmap_filter": [{"type": "del", "args": ["x"]}]})
            }
            s if s == namespace::BACKEND_HTTP => json!({"return_error_code": true}),
            s if s == namespace::BACKEND_HTTP_CLIENT => json!({"send_body_on_redirect": true}),
            _ => json!({"name": "p"}),
        };
        let mut value = minimal();
        let holder = match level {
            "service" => &mut value,
            "endpoint" => &mut value["endpoints"][0],
            _ => &mut value["endpoints"][0]["backend"][0],
        };
        holder["extra_config"] = json!({ key: block });
        let config = parse(value);
        assert!(
            config.unknown_namespaces.is_empty(),
            "{key}: {:?}",
            config.unknown_namespaces
        );
        let endpoint = &config.endpoints[0];
        let backend = &endpoint.backends[0];
        let stored = match level {
            "service" => &config.extra_config,
            "endpoint" => &endpoint.extra_config,
            _ => &backend.extra_config,
        };
        assert_eq!(stored.keys().collect::<Vec<_>>(), [short], "{key}");
        match (short, level) {
            (namespace::ROUTER, _) => assert!(config.router.return_error_msg, "{key}"),
            (namespace::PROXY, "endpoint") => {
                assert!(endpoint.proxy.sequential, "{key}");
                assert_eq!(endpoint.proxy.flatmap_filter.len(), 1, "{key}");
            }
            (namespace::PROXY, _) => assert_eq!(backend.flatmap_filter.len(), 1, "{key}"),
            (namespace::BACKEND_HTTP, _) => assert!(backend.http.return_error_code, "{key}"),
            (namespace::BACKEND_HTTP_CLIENT, _) => assert!(backend.send_body_on_redirect, "{key}"),
            _ => assert_eq!(backend.plugin.as_ref().unwrap().name, "p", "{key}"),
        }
    }
}

#[test]
fn known_namespace_at_the_wrong_level_is_reported_not_read() {
    let mut value = minimal();
    value["endpoints"][0]["extra_config"] =
        json!({"plugin/http-client": {"name": ["not", "read"]}});
    value["endpoints"][0]["backend"][0]["extra_config"] = json!({"router": {"auto_options": 1}});
    let errors = from_value(&value, Path::new("test.json"))
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains(r#"endpoints[0].extra_config["plugin/http-client"]: namespace "plugin/http-client" is read at the backend level only"#),
        "{errors}"
    );
    assert!(
        errors.contains(r#"endpoints[0].backend[0].extra_config.router: namespace "router" is read at the service level only"#),
        "{errors}"
    );
    // The operator's explicit opt-out serves it, and it is still not read.
    let options = LoadOptions {
        allow_unenforced: vec!["plugin/http-client".to_owned(), "router".to_owned()],
        ..LoadOptions::default()
    };
    let config = from_value_with(&value, Path::new("test.json"), &options).unwrap();
    assert_eq!(
        config.unknown_namespaces,
        [
            UnknownNamespace {
                path: r#"endpoints[0].extra_config["plugin/http-client"]"#.to_owned(),
                namespace: "plugin/http-client".to_owned(),
                class: NamespaceClass::OptedOut,
            },
            UnknownNamespace {
                path: "endpoints[0].backend[0].extra_config.router".to_owned(),
                namespace: "router".to_owned(),
                class: NamespaceClass::OptedOut,
            },
        ]
    );
    assert!(!config.router.auto_options);
}

#[test]
fn namespaces_that_restrict_traffic_fail_closed() {
    let mut value = minimal();
    value["endpoints"][0]["extra_config"] = json!({
        "auth/validator": {"alg": "RS256", "jwk_url": "http://127.0.0.1:1/jwk"},
        "telemetry/metrics": {},
        "documentation/openapi": {}
    });
    value["endpoints"][0]["backend"][0]["extra_config"] =
        json!({"modifier/martian": {}, "my/own": {}});
    value["extra_config"] = json!({"security/cors": {}, "plugin/http-server": {"name": ["x"]}});
    let errors = from_value(&value, Path::new("k.json"))
        .unwrap_err()
        .to_string();
    for path in [
        r#"endpoints[0].extra_config["auth/validator"]"#,
        r#"endpoints[0].backend[0].extra_config["modifier/martian"]"#,
        r#"endpoints[0].backend[0].extra_config["my/own"]"#,
        r#"extra_config["security/cors"]"#,
        r#"extra_config["plugin/http-server"]"#,
    ] {
        assert!(
            errors.contains(&format!("k.json: {path}: namespace ")),
            "{path}: {errors}"
        );
    }
    assert!(errors.contains("KrakenD would enforce it"), "{errors}");
    assert!(
        errors.contains("--allow-unenforced auth/validator"),
        "{errors}"
    );
    assert!(
        errors.contains(r#"namespace "my/own" is not one Sluice knows"#),
        "{errors}"
    );
    assert!(
        !errors.contains("telemetry"),
        "observe-only namespaces are warnings: {errors}"
    );
    assert!(!errors.contains("documentation"), "{errors}");
    assert_eq!(errors.matches("namespace \"").count(), 5, "{errors}");

    // Opting out by name or by family serves it, and says so.
    let options = LoadOptions {
        allow_unenforced: vec![
            "auth/validator".to_owned(),
            "modifier/*".to_owned(),
            "my/own".to_owned(),
            "security/cors".to_owned(),
            "plugin/http-server".to_owned(),
        ],
        ..LoadOptions::default()
    };
    let config = from_value_with(&value, Path::new("k.json"), &options).unwrap();
    let classes: Vec<_> = config
        .unknown_namespaces
        .iter()
        .map(|u| (u.namespace.as_str(), u.class))
        .collect();
    assert!(classes.contains(&("auth/validator", NamespaceClass::OptedOut)));
    assert!(classes.contains(&("modifier/martian", NamespaceClass::OptedOut)));
    assert!(classes.contains(&("telemetry/metrics", NamespaceClass::ObserveOnly)));
    assert_eq!(classes.len(), 7);
    // A family opt-out does not reach past its prefix.
    let narrow = LoadOptions {
        allow_unenforced: vec!["auth/*".to_owned()],
        ..LoadOptions::default()
    };
    let mut only_auth = minimal();
    only_auth["endpoints"][0]["extra_config"] = json!({"authx/validator": {}});
    assert!(from_value_with(&only_auth, Path::new("k.json"), &narrow).is_err());
}

#[test]
fn fields_sluice_does_not_apply_are_refused() {
    let mut value = minimal();
    value["extra_config"] = json!({"router": {"app_engine": true, "return_error_msg": true}});
    value["endpoints"][0]["extra_config"] =
        json!({"proxy": {"combiner": "x", "sequential": false}});
    value["endpoints"][0]["backend"][0]["extra_config"] = json!({
        "proxy": {"shadow": true, "combiner": "x"},
        "backend/http": {"return_error_code": true, "error_code": 1},
        "backend/http/client": {"no_redirect": true}
    });
    value["max_idle_connections"] = json!(10);
    value["expect_continue_timeout"] = json!("1s");
    let errors = from_value(&value, Path::new("k.json"))
        .unwrap_err()
        .to_string();
    for path in [
        "extra_config.router.app_engine",
        "endpoints[0].extra_config.proxy.combiner",
        "endpoints[0].backend[0].extra_config.proxy.combiner",
        r#"endpoints[0].backend[0].extra_config["backend/http"].error_code"#,
        r#"endpoints[0].backend[0].extra_config["backend/http/client"].no_redirect"#,
        "max_idle_connections",
        "expect_continue_timeout",
    ] {
        assert!(
            errors.contains(&format!("k.json: {path}: ")),
            "{path}: {errors}"
        );
    }
    // Values that ask for nothing are accepted.
    let mut zero = minimal();
    zero["max_idle_connections"] = json!(0);
    zero["allow_insecure_connections"] = json!(false);
    zero["expect_continue_timeout"] = json!("0s");
    parse(zero);
}

#[test]
fn propagated_params_are_placeholders_of_later_backends() {
    let mut value = minimal();
    value["endpoints"][0] = json!({
        "endpoint": "/a",
        "extra_config": {"proxy": {"sequential": true, "sequential_propagated_params": ["resp0_x.y"]}},
        "backend": [{"url_pattern": "/a"}, {"url_pattern": "/b/{Resp0_x.y}"}, {"url_pattern": "/c/{Resp0_z}"}]
    });
    let errors = from_value(&value, Path::new("k.json"))
        .unwrap_err()
        .to_string();
    assert_eq!(errors.matches("k.json: ").count(), 1, "{errors}");
    assert!(
        errors.contains(r#"endpoints[0].backend[2].url_pattern: {Resp0_z} is a propagated param: list "resp0_z""#),
        "{errors}"
    );
    value["endpoints"][0]["extra_config"]["proxy"]["sequential_propagated_params"] =
        json!(["resp0_x.y", "resp0_z"]);
    parse(value.clone());
    value["endpoints"][0]["extra_config"]["proxy"]["sequential_propagated_params"] =
        json!(["resp0x"]);
    let errors = from_value(&value, Path::new("k.json"))
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("sequential_propagated_params[0]: expected resp<N>_<path>"),
        "{errors}"
    );
}

#[test]
fn whole_body_propagated_params() {
    // CE's /sequential/propagate-full: `resp0`, the raw body of a no-op first backend.
    let mut value = minimal();
    value["endpoints"][0] = json!({
        "endpoint": "/a",
        "extra_config": {"proxy": {"sequential": true, "sequential_propagated_params": ["resp0", "Resp0_x"]}},
        "backend": [{"url_pattern": "/a", "encoding": "no-op"}, {"url_pattern": "/b/{Resp0}/{Resp0_x}"}]
    });
    let config = parse(value.clone());
    assert_eq!(
        config.endpoints[0].proxy.sequential_propagated_params,
        ["resp0", "resp0_x"]
    );
    value["endpoints"][0]["backend"][1]["url_pattern"] = json!("/b/{Resp1}");
    let errors = from_value(&value, Path::new("k.json"))
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains(r#"{Resp1} is a propagated param: list "resp1""#),
        "{errors}"
    );
    // An endpoint param that merely starts with "Resp" is an endpoint param.
    value["endpoints"][0]["endpoint"] = json!("/a/{Response}");
    value["endpoints"][0]["backend"][1]["url_pattern"] = json!("/b/{Response}");
    parse(value);
}

#[test]
fn relaxed_params_with_disable_rest() {
    let mut value = minimal();
    value["disable_rest"] = json!(true);
    value["endpoints"][0] = json!({
        "endpoint": "/files/{name}.{ext}",
        "backend": [{"url_pattern": "/f/{name}/{ext}"}]
    });
    let config = parse(value);
    assert!(config.disable_rest);
    assert_eq!(
        sluice_config::endpoint_params(&config.endpoints[0].endpoint, true),
        ["name", "ext"]
    );
}

#[test]
fn plugin_folder_is_relative_to_the_config_file() {
    let text = r#"{"version": 3, "plugin": {"folder": "plugins", "pattern": ".wasm"}}"#;
    let config = parse_str(text, Path::new("/etc/sluice/krakend.json")).unwrap();
    assert_eq!(
        config.plugin.unwrap().folder,
        Path::new("/etc/sluice/plugins")
    );

    let text = r#"{"version": 3, "plugin": {"folder": "/opt/plugins"}}"#;
    let config = parse_str(text, Path::new("/etc/sluice/krakend.json")).unwrap();
    let plugin = config.plugin.unwrap();
    assert_eq!(plugin.folder, Path::new("/opt/plugins"));
    assert_eq!(plugin.pattern, "");

    let text = r#"{"version": 3, "plugin": {"folder": "plugins"}}"#;
    let config = parse_str(text, Path::new("krakend.json")).unwrap();
    assert_eq!(config.plugin.unwrap().folder, Path::new("plugins"));
}

#[test]
fn no_endpoints_is_valid() {
    let config = parse_str(r#"{"version": 3}"#, Path::new("k.json")).unwrap();
    assert!(config.endpoints.is_empty());
}

#[test]
fn byte_order_mark_is_skipped() {
    assert!(parse_str("\u{feff}{\"version\": 3}", Path::new("k.json")).is_ok());
}

#[test]
fn unreadable_file_is_a_diagnostic() {
    let missing = Path::new("tests/fixtures/does-not-exist.json");
    let diagnostics = load(missing).unwrap_err();
    assert_eq!(diagnostics.len(), 1);
    let error = &diagnostics.errors[0];
    assert_eq!(error.file, missing);
    assert_eq!(error.path, "");
    assert!(
        error
            .to_string()
            .starts_with("tests/fixtures/does-not-exist.json: cannot read the file: "),
        "{error}"
    );
}

#[test]
fn non_utf8_file_is_a_diagnostic() {
    let file = tempfile::Builder::new()
        .prefix("sluice-config-latin1-")
        .suffix(".json")
        .tempfile()
        .unwrap();
    std::fs::write(file.path(), b"{\"version\": 3,\n \"name\": \"caf\xe9\"}").unwrap();
    let diagnostics = load(file.path()).unwrap_err();
    assert_eq!(diagnostics.len(), 1);
    let error = &diagnostics.errors[0];
    assert_eq!(error.message, "the file is not UTF-8 text");
    assert_eq!(
        error.position,
        Some(Position {
            line: 2,
            column: 14
        })
    );
}

#[test]
fn diagnostics_are_errors() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
    is_error::<Diagnostics>();
    is_error::<sluice_config::Diagnostic>();
}

/// Every node of the full config replaced by values of every JSON type: the parser reports, and
/// never panics.
#[test]
fn never_panics_whatever_the_types() {
    let full: Value = serde_json::from_str(&std::fs::read_to_string(FULL).unwrap()).unwrap();
    let replacements = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(18446744073709551615u64),
        json!(""),
        json!("x"),
        json!("/__debug/{x}*y"),
        json!([]),
        json!([1, "a", null]),
        json!({}),
        json!({"name": 1, "type": "move", "args": ["a"]}),
    ];
    let mut pointers = Vec::new();
    collect_pointers(&full, String::new(), &mut pointers);
    assert!(pointers.len() > 150, "{}", pointers.len());
    for pointer in &pointers {
        for replacement in &replacements {
            let mut value = full.clone();
            *value.pointer_mut(pointer).unwrap() = replacement.clone();
            let _ = from_value(&value, Path::new("fuzz.json"));
        }
    }
}

fn collect_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                collect_pointers(child, format!("{at}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Truncated or corrupted text is one malformed-JSON diagnostic with a position, never a panic.
#[test]
fn never_panics_on_broken_text() {
    let text = std::fs::read_to_string(FULL).unwrap();
    for (at, c) in text.char_indices().step_by(7) {
        let _ = parse_str(&text[..at], Path::new("cut.json"));
        let mut corrupted = text.clone();
        corrupted.replace_range(at..at + c.len_utf8(), "\u{0}");
        if let Err(diagnostics) = parse_str(&corrupted, Path::new("bad.json")) {
            assert!(!diagnostics.is_empty());
        }
    }
}

#[test]
fn sluice_server_namespace_is_read_at_the_service() {
    let mut value = minimal();
    value["extra_config"] = json!({"sluice/server": {
        "max_connections": 10,
        "max_buffered_body_bytes": 1048576
    }});
    let config = parse(value);
    assert_eq!(
        config.sluice_server,
        SluiceServerOptions {
            max_connections: 10,
            max_buffered_body_bytes: 1 << 20,
        }
    );
    assert!(config.unknown_namespaces.is_empty());
}

#[test]
fn flatmap_del_takes_several_paths() {
    let mut value = minimal();
    value["endpoints"][0]["backend"][0]["extra_config"] = json!({"proxy": {"flatmap_filter": [
        {"type": "del", "args": ["a", "b.c"]},
        {"type": "move", "args": ["x", "y"]}
    ]}});
    let config = parse(value);
    assert_eq!(
        config.endpoints[0].backends[0].flatmap_filter,
        [
            FlatmapOp::Del("a".to_owned()),
            FlatmapOp::Del("b.c".to_owned()),
            FlatmapOp::Move("x".to_owned(), "y".to_owned())
        ]
    );
}

#[test]
fn shadow_backends() {
    let mut value = minimal();
    value["endpoints"][0]["timeout"] = json!("1s");
    value["endpoints"][0]["backend"] = json!([
        {"url_pattern": "/a"},
        {"url_pattern": "/s", "extra_config": {"proxy": {"shadow": true}}},
        {"url_pattern": "/t", "extra_config": {"github.com/devopsfaith/krakend/proxy": {"shadow": true, "shadow_timeout": "150ms"}}},
        {"url_pattern": "/u", "extra_config": {"proxy": {"shadow": true, "shadow_timeout": "0s"}}},
        // `false` is a regular backend, as in KrakenD; its shadow_timeout is read and unused.
        {"url_pattern": "/v", "extra_config": {"proxy": {"shadow": false, "shadow_timeout": "5s"}}}
    ]);
    let config = parse(value);
    let shadows: Vec<(bool, Option<Duration>)> = config.endpoints[0]
        .backends
        .iter()
        .map(|b| (b.shadow, b.shadow_timeout))
        .collect();
    assert_eq!(
        shadows,
        [
            (false, None),
            (true, None),
            (true, Some(Duration::from_millis(150))),
            (true, None),
            (false, Some(Duration::from_secs(5))),
        ]
    );
}

#[test]
fn bad_shadow_values_are_refused_at_their_path() {
    let mut value = minimal();
    value["endpoints"] = json!([
        {"endpoint": "/a", "backend": [
            {"url_pattern": "/a"},
            {"url_pattern": "/s", "extra_config": {"proxy": {"shadow": "true"}}},
            {"url_pattern": "/t", "extra_config": {"proxy": {"shadow": true, "shadow_timeout": "5 s"}}},
            {"url_pattern": "/u", "extra_config": {"proxy": {"shadow": true, "shadow_timeout": 5}}}
        ]},
        {"endpoint": "/b", "backend": [
            {"url_pattern": "/s", "extra_config": {"proxy": {"shadow": true}}}
        ]}
    ]);
    let errors = from_value(&value, Path::new("k.json"))
        .unwrap_err()
        .to_string();
    for expected in [
        "k.json: endpoints[0].backend[1].extra_config.proxy.shadow: expected true or false, found a string",
        "k.json: endpoints[0].backend[2].extra_config.proxy.shadow_timeout: invalid duration \"5 s\"",
        "k.json: endpoints[0].backend[3].extra_config.proxy.shadow_timeout: expected a duration string",
        "k.json: endpoints[1].backend: every backend is a shadow",
    ] {
        assert!(errors.contains(expected), "{expected}\n{errors}");
    }
    assert_eq!(errors.lines().count(), 4, "{errors}");
}

#[test]
fn krakend_schema_shapes_and_their_meaning() {
    let mut value = minimal();
    value["endpoints"][0] = json!({
        "endpoint": "/a",
        "output_encoding": "fast-json",
        "extra_config": {"proxy": {
            "static": {"strategy": "errored"},
            "flatmap_filter": [{"type": "move", "args": ["a", "b", "c"]}]
        }},
        "backend": [{"url_pattern": "/a", "encoding": "fast-json"}]
    });
    let config = parse(value);
    let endpoint = &config.endpoints[0];
    assert_eq!(
        endpoint.output_encoding,
        sluice_config::OutputEncoding::Json
    );
    assert_eq!(endpoint.backends[0].encoding, sluice_config::Encoding::Json);
    // Without `data`, KrakenD applies no static response at all.
    assert_eq!(endpoint.proxy.static_response, None);
    assert_eq!(
        endpoint.proxy.flatmap_filter,
        [sluice_config::FlatmapOp::Move("a".into(), "b".into())]
    );
}

#[test]
fn listener_tls_with_krakend_defaults() {
    let mut value = minimal();
    value["tls"] = json!({
        "public_key": "/certs/a.pem",
        "private_key": "/certs/a.key",
        "keys": [{"public_key": "b.pem", "private_key": "b.key", "@comment": "second site"}]
    });
    let tls = parse(value.clone()).tls.unwrap();
    assert_eq!(tls.json_path, "tls");
    let paths: Vec<_> = tls
        .keys
        .iter()
        .map(|k| {
            (
                k.public_key.path.to_str().unwrap(),
                k.private_key.json_path.as_str(),
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            ("/certs/a.pem", "tls.private_key"),
            ("b.pem", "tls.keys[0].private_key")
        ]
    );
    // KrakenD's defaults: TLS 1.3 only, every suite, the default groups, no mTLS.
    assert_eq!(tls.protocol, TlsProtocol::default());
    assert_eq!(tls.protocol.min_version, TlsVersion::Tls13);
    assert!(!tls.enable_mtls);

    value["tls"]["min_version"] = json!("TLS12");
    value["tls"]["cipher_suites"] = json!([49199, 4865]);
    value["tls"]["curve_preferences"] = json!([29, 23]);
    value["tls"]["enable_mtls"] = json!(true);
    value["tls"]["ca_certs"] = json!(["ca.pem"]);
    value["tls"]["prefer_server_cipher_suites"] = json!(true);
    let tls = parse(value.clone()).tls.unwrap();
    assert_eq!(tls.protocol.min_version, TlsVersion::Tls12);
    assert_eq!(tls.protocol.cipher_suites, [49199, 4865]);
    assert_eq!(tls.protocol.curve_preferences, [29, 23]);
    assert!(tls.enable_mtls && tls.prefer_server_cipher_suites);
    assert_eq!(tls.ca_certs[0].json_path, "tls.ca_certs[0]");

    // Disabled: plain HTTP, and nothing is required.
    value["tls"] = json!({"disabled": true});
    assert!(parse(value.clone()).tls.is_none());
    value["tls"] = Value::Null;
    assert!(parse(value).tls.is_none());
}

#[test]
fn listener_tls_problems_are_refused_at_their_paths() {
    let mut value = minimal();
    value["tls"] = json!({
        "public_key": "a.pem",
        "keys": [{"private_key": "b.key", "password": "x"}],
        "min_version": "TLS10",
        "max_version": "tls13",
        "cipher_suites": [4865, 47, 1234, 4865],
        "curve_preferences": [25, 7],
        "enable_mtls": true,
        "disable_system_ca_pool": true,
        "session_tickets": false
    });
    let errors = from_value(&value, Path::new("k.json"))
        .unwrap_err()
        .to_string();
    for expected in [
        "k.json: tls.session_tickets: field \"session_tickets\" is not supported",
        "k.json: tls.private_key: missing: expected the path of a PEM file (it goes with \"public_key\")",
        "k.json: tls.keys[0].password: field \"password\" is not supported",
        "k.json: tls.keys[0].public_key: missing",
        "k.json: tls.min_version: \"TLS10\" (TLS 1.0) is not supported by Sluice",
        "k.json: tls.max_version: expected \"TLS12\" or \"TLS13\", found \"tls13\"",
        "k.json: tls.cipher_suites[1]: cipher suite 47 (TLS_RSA_WITH_AES_128_CBC_SHA) is not supported by Sluice",
        "k.json: tls.cipher_suites[2]: unknown cipher suite 1234: expected one of 4865 (TLS_AES_128_GCM_SHA256)",
        "k.json: tls.cipher_suites[3]: cipher suite 4865 is listed twice",
        "k.json: tls.curve_preferences[0]: curve 25 (P-521) is not supported by Sluice",
        "k.json: tls.curve_preferences[1]: unknown curve 7",
        "k.json: tls.ca_certs: enable_mtls with disable_system_ca_pool trusts only ca_certs",
    ] {
        assert!(errors.contains(expected), "{expected}\n{errors}");
    }
    // A `tls` block needs a certificate.
    value["tls"] = json!({"min_version": "TLS12"});
    let errors = from_value(&value, Path::new("k.json"))
        .unwrap_err()
        .to_string();
    assert!(
        errors.starts_with("k.json: tls: missing: the certificate and its key"),
        "{errors}"
    );
    // A range with no version in it.
    value["tls"] = json!({"public_key": "a", "private_key": "b", "max_version": "TLS12"});
    let errors = from_value(&value, Path::new("k.json"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        errors,
        "k.json: tls.max_version: min_version TLS13 (the default) is above max_version TLS12: \
         no version could be negotiated"
    );
    // TLS 1.2 allowed but no TLS 1.2 suite listed.
    value["tls"] = json!({"public_key": "a", "private_key": "b", "min_version": "TLS12",
        "cipher_suites": [4865, 4866, 4867]});
    let errors = from_value(&value, Path::new("k.json"))
        .unwrap_err()
        .to_string();
    assert!(
        errors.starts_with(
            "k.json: tls.cipher_suites: min_version TLS12 allows TLS 1.2, but cipher_suites lists no TLS 1.2 suite"
        ),
        "{errors}"
    );
}

#[test]
fn client_tls_at_the_service_and_in_a_backend() {
    let mut value = minimal();
    value["client_tls"] = json!({
        "ca_certs": ["ca.pem"],
        "client_certs": [{"certificate": "c.pem", "private_key": "c.key"}],
        "min_version": "TLS12",
        "max_version": "TLS13"
    });
    value["endpoints"][0]["backend"][0]["extra_config"] = json!({
        "backend/http/client": {"client_tls": {"allow_insecure_connections": true}}
    });
    let config = parse(value.clone());
    let service = config.client_tls.unwrap();
    assert_eq!(service.json_path, "client_tls");
    assert_eq!(service.ca_certs[0].path, Path::new("ca.pem"));
    assert_eq!(
        service.client_certs[0].private_key.json_path,
        "client_tls.client_certs[0].private_key"
    );
    assert_eq!(service.protocol.min_version, TlsVersion::Tls12);
    let own = config.endpoints[0].backends[0].client_tls.clone().unwrap();
    assert!(own.allow_insecure_connections);
    assert_eq!(
        own.json_path,
        r#"endpoints[0].backend[0].extra_config["backend/http/client"].client_tls"#
    );
    // KrakenD's defaults once a client_tls is written: TLS 1.3 only.
    assert_eq!(own.protocol, TlsProtocol::default());

    // The legacy top-level switch makes (or joins) the service's client_tls, as lura does.
    let mut legacy = minimal();
    legacy["allow_insecure_connections"] = json!(true);
    let tls = parse(legacy.clone()).client_tls.unwrap();
    assert!(tls.allow_insecure_connections);
    assert_eq!(tls.json_path, "allow_insecure_connections");
    legacy["allow_insecure_connections"] = json!(false);
    assert!(parse(legacy).client_tls.is_none());

    value["client_tls"] = json!({"disable_system_ca_pool": true, "client_certs": [{"certificate": "c"}],
        "verify": false});
    let errors = from_value(&value, Path::new("k.json"))
        .unwrap_err()
        .to_string();
    for expected in [
        "k.json: client_tls.verify: field \"verify\" is not supported",
        "k.json: client_tls.client_certs[0].private_key: missing",
        "k.json: client_tls.disable_system_ca_pool: with the system's CAs disabled and no ca_certs",
    ] {
        assert!(errors.contains(expected), "{expected}\n{errors}");
    }
}
