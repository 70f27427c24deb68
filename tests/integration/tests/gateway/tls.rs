//! TLS at both ends, with certificates made in the test and real rustls peers on 127.0.0.1.
//!
//! The listener (`tls`): HTTP/1.1 and HTTP/2 by ALPN, KrakenD's TLS 1.3-only default, a
//! certificate per server name (SNI), mTLS that refuses a client without a certificate or with
//! one from another CA, a handshake deadline that frees the connection slot, the smuggling
//! guard still reading the decrypted HTTP/1 bytes. Backends (`client_tls`, service-wide and a
//! backend's own): verified against `ca_certs`, a wrong CA and an expired certificate refused
//! with the reason in the error body and the log, `allow_insecure_connections`, a client
//! certificate for mTLS to the backend, a plugin's outbound https calls through its backend's
//! settings. Config errors name the config file, the JSON path and the certificate file.

#![allow(clippy::unwrap_used)]

use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_integration::backend::{Backend, Reply};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::tls::{
    Ca, TLS12_AND_13, TLS12_ONLY, TempDir, TlsBackend, Usage, client_config, connect, https_get,
};
use sluice_integration::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// Log capture: the gateway's warnings, for the lines a failed handshake must leave.

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .try_init();
    });
}

/// Waits (up to 10 s) for a log line containing every one of `parts`.
async fn log_line(parts: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned();
        if let Some(line) = logs
            .lines()
            .find(|line| parts.iter().all(|p| line.contains(p)))
        {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {parts:?} in:\n{logs}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------

async fn ok_backend() -> Backend {
    Backend::start_sync(|_| Reply::json(200, &json!({"ok": true}))).await
}

fn one_endpoint(path: &str, host: &str, extra: Value) -> Value {
    json!([endpoint(
        path,
        json!([backend(host, "/", extra)]),
        Value::Null
    )])
}

fn with(mut config: Value, key: &str, value: Value) -> Value {
    config[key] = value;
    config
}

/// A gateway answering `/ok` over TLS with a certificate for `localhost` and 127.0.0.1, issued
/// by `ca`; `tls` is merged into the block.
async fn tls_gateway(ca: &Ca, dir: &TempDir, tls: Value) -> (Gateway, Backend) {
    let upstream = ok_backend().await;
    let (cert, key) = ca
        .issue(&["localhost", "127.0.0.1"], Usage::Server)
        .write(dir, "gateway");
    let mut block = json!({"public_key": cert, "private_key": key});
    if let Value::Object(extra) = tls {
        block.as_object_mut().unwrap().extend(extra);
    }
    let config = with(
        service(one_endpoint("/ok", &upstream.url(), Value::Null)),
        "tls",
        block,
    );
    (start_gateway(config).await, upstream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_serves_http1_and_http2_by_alpn_and_tls13_by_default() {
    let ca = Ca::new("listener CA");
    let dir = TempDir::new("tls-alpn");
    let (gw, _upstream) = tls_gateway(&ca, &dir, Value::Null).await;
    for (alpn, version) in [
        (&["http/1.1"][..], http::Version::HTTP_11),
        (&["h2"][..], http::Version::HTTP_2),
        (&["h2", "http/1.1"][..], http::Version::HTTP_2),
        (&[][..], http::Version::HTTP_11),
    ] {
        let config = client_config(&[&ca], None, alpn, TLS12_AND_13);
        let response = https_get(config, gw.addr, "localhost", "/ok")
            .await
            .unwrap();
        assert_eq!(
            (response.status, response.version),
            (200, version),
            "{alpn:?}"
        );
        assert_eq!(response.body, r#"{"ok":true}"#);
    }
    // KrakenD's default is TLS 1.3 only: a TLS 1.2 client is refused.
    let old = client_config(&[&ca], None, &["http/1.1"], TLS12_ONLY);
    let refused = https_get(old, gw.addr, "localhost", "/ok")
        .await
        .unwrap_err();
    assert!(refused.starts_with("handshake: "), "{refused}");
    // With TLS on, plain HTTP is not served.
    assert!(
        try_request(http::Method::GET, &gw.url("/ok"), &[], "")
            .await
            .is_err()
    );
    gw.shutdown().await;

    // min_version TLS12 lets TLS 1.2 clients in.
    let (gw, _upstream) = tls_gateway(&ca, &dir, json!({"min_version": "TLS12"})).await;
    let old = client_config(&[&ca], None, &["h2"], TLS12_ONLY);
    let response = https_get(old, gw.addr, "127.0.0.1", "/ok").await.unwrap();
    assert_eq!(
        (response.status, response.version),
        (200, http::Version::HTTP_2)
    );
    gw.shutdown().await;
}

/// The smuggling guard sits after TLS: it still reads (and refuses) an ambiguous HTTP/1 head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smuggling_guard_reads_the_decrypted_bytes() {
    let ca = Ca::new("listener CA");
    let dir = TempDir::new("tls-guard");
    let (gw, upstream) = tls_gateway(&ca, &dir, Value::Null).await;
    let config = client_config(&[&ca], None, &["http/1.1"], TLS12_AND_13);
    let mut stream = connect(config, gw.addr, "localhost").await.unwrap();
    stream
        .write_all(
            b"GET /ok HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\
              Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(upstream.count(), 0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_is_chosen_by_server_name() {
    let ca = Ca::new("listener CA");
    let dir = TempDir::new("tls-sni");
    let upstream = ok_backend().await;
    let default = ca.issue(&["localhost"], Usage::Server);
    let a = ca.issue(&["a.test"], Usage::Server);
    let b = ca.issue(&["*.b.test"], Usage::Server);
    let (default_cert, default_key) = default.write(&dir, "default");
    let (a_cert, a_key) = a.write(&dir, "a");
    let (b_cert, b_key) = b.write(&dir, "b");
    let config = with(
        service(one_endpoint("/ok", &upstream.url(), Value::Null)),
        "tls",
        json!({
            "public_key": default_cert,
            "private_key": default_key,
            "keys": [
                {"public_key": a_cert, "private_key": a_key},
                {"public_key": b_cert, "private_key": b_key}
            ]
        }),
    );
    let gw = start_gateway(config).await;
    for (name, expected) in [("localhost", &default), ("a.test", &a), ("www.b.test", &b)] {
        let config = client_config(&[&ca], None, &["h2"], TLS12_AND_13);
        let response = https_get(config, gw.addr, name, "/ok").await.unwrap();
        assert_eq!(response.status, 200, "{name}");
        assert_eq!(response.server_cert.as_ref(), Some(&expected.der), "{name}");
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_on_the_listener_refuses_clients_without_a_good_certificate() {
    capture_logs();
    let ca = Ca::new("listener CA");
    let clients = Ca::new("client CA");
    let stranger = Ca::new("another CA");
    let dir = TempDir::new("tls-mtls");
    let client_ca = dir.write("clients.pem", &clients.cert_pem);
    let (gw, upstream) = tls_gateway(
        &ca,
        &dir,
        json!({"enable_mtls": true, "ca_certs": [client_ca], "disable_system_ca_pool": true}),
    )
    .await;
    let attempt = |cert: Option<sluice_integration::tls::Leaf>| {
        let config = client_config(&[&ca], cert.as_ref(), &["http/1.1"], TLS12_AND_13);
        https_get(config, gw.addr, "localhost", "/ok")
    };

    let refused = attempt(None).await.unwrap_err();
    assert!(!refused.is_empty());
    log_line(&[
        "TLS handshake failed",
        "the client sent no certificate, and this listener requires one (enable_mtls)",
    ])
    .await;

    let foreign = stranger.issue(&["mallory"], Usage::Client);
    attempt(Some(foreign)).await.unwrap_err();
    log_line(&[
        "TLS handshake failed",
        "the peer's certificate was refused: it is not signed by a trusted CA (unknown issuer)",
    ])
    .await;

    let expired = clients.issue_expired(&["late"], Usage::Client);
    attempt(Some(expired)).await.unwrap_err();
    log_line(&["TLS handshake failed", "it has expired"]).await;
    assert_eq!(upstream.count(), 0);

    let good = clients.issue(&["alice"], Usage::Client);
    let response = attempt(Some(good)).await.unwrap();
    assert_eq!(response.status, 200);
    gw.shutdown().await;
}

/// A client that never finishes its handshake is cut at the deadline (the smallest of the
/// server's read timeouts), and its connection slot goes to the next client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_cut_and_frees_its_slot() {
    capture_logs();
    let ca = Ca::new("listener CA");
    let dir = TempDir::new("tls-stall");
    let upstream = ok_backend().await;
    let (cert, key) = ca.issue(&["localhost"], Usage::Server).write(&dir, "gw");
    let mut config = service(one_endpoint("/ok", &upstream.url(), Value::Null));
    config["tls"] = json!({"public_key": cert, "private_key": key});
    config["read_header_timeout"] = json!("300ms");
    config["extra_config"]["sluice/server"] = json!({"max_connections": 1});
    let gw = start_gateway(config).await;

    let mut stalled = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let stalled_port = stalled.local_addr().unwrap().port();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let client = client_config(&[&ca], None, &["http/1.1"], TLS12_AND_13);
    let response = https_get(client, gw.addr, "localhost", "/ok")
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    // It waited in the backlog until the stalled handshake was cut.
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(2), stalled.read(&mut buf))
        .await
        .expect("the stalled connection is closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    log_line(&[
        &format!("127.0.0.1:{stalled_port}"),
        "the client did not finish the handshake within 300ms",
    ])
    .await;
    gw.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Backends

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_backends_are_verified_against_ca_certs_and_refused_otherwise() {
    capture_logs();
    let backend_ca = Ca::new("backend CA");
    let stranger = Ca::new("another CA");
    let dir = TempDir::new("tls-backend");
    let trusted = dir.write("backend-ca.pem", &backend_ca.cert_pem);
    let good = TlsBackend::start(&backend_ca.issue(&["127.0.0.1"], Usage::Server), None).await;
    let foreign = TlsBackend::start(&stranger.issue(&["127.0.0.1"], Usage::Server), None).await;
    let expired = TlsBackend::start(
        &backend_ca.issue_expired(&["127.0.0.1"], Usage::Server),
        None,
    )
    .await;
    let endpoints = json!([
        endpoint(
            "/good",
            json!([backend(&good.url(), "/x", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/foreign",
            json!([backend(&foreign.url(), "/x", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/expired",
            json!([backend(&expired.url(), "/x", Value::Null)]),
            Value::Null
        ),
    ]);
    let gw = start_gateway(with(
        service(endpoints.clone()),
        "client_tls",
        json!({"ca_certs": [trusted]}),
    ))
    .await;

    let response = get(&gw.url("/good")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({"tls": true, "path": "/x", "client_cert": false})
    );

    let response = get(&gw.url("/foreign")).await;
    assert_eq!(response.status, 500);
    let why = format!(
        "TLS handshake with {} failed: the peer's certificate was refused: it is not signed by a \
         trusted CA (unknown issuer)",
        foreign.authority()
    );
    assert!(response.text().contains(&why), "{}", response.text());
    log_line(&["backend call failed", &why]).await;

    let response = get(&gw.url("/expired")).await;
    assert_eq!(response.status, 500);
    let why = format!(
        "TLS handshake with {} failed: the peer's certificate was refused: it has expired",
        expired.authority()
    );
    assert!(response.text().contains(&why), "{}", response.text());
    log_line(&["backend call failed", &why]).await;
    assert_eq!((foreign.requests(), expired.requests()), (0, 0));
    gw.shutdown().await;

    // Without client_tls, backends are verified against the system's roots: a private CA is
    // refused.
    let gw = start_gateway(service(endpoints)).await;
    let response = get(&gw.url("/good")).await;
    assert_eq!(response.status, 500);
    assert!(
        response.text().contains("unknown issuer"),
        "{}",
        response.text()
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_insecure_connections_accepts_any_certificate() {
    let stranger = Ca::new("untrusted CA");
    let upstream =
        TlsBackend::start(&stranger.issue(&["elsewhere.test"], Usage::Server), None).await;
    let endpoints = |extra: Value| one_endpoint("/x", &upstream.url(), extra);
    let insecure = json!({"allow_insecure_connections": true});
    let configs = [
        with(
            service(endpoints(Value::Null)),
            "client_tls",
            insecure.clone(),
        ),
        // The legacy top-level switch, as lura reads it.
        with(
            service(endpoints(Value::Null)),
            "allow_insecure_connections",
            json!(true),
        ),
        // A backend's own.
        service(endpoints(json!({"extra_config": {
            "backend/http/client": {"client_tls": insecure}
        }}))),
    ];
    for config in configs {
        let gw = start_gateway(config.clone()).await;
        let response = get(&gw.url("/x")).await;
        assert_eq!(response.status, 200, "{config}: {}", response.text());
        assert_eq!(response.json()["tls"], json!(true));
        gw.shutdown().await;
    }
    assert_eq!(upstream.requests(), 3);
}

/// With a `client_tls`, KrakenD's defaults apply: TLS 1.3 only, unless `min_version` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_defaults_to_tls13_as_krakend() {
    let backend_ca = Ca::new("backend CA");
    let dir = TempDir::new("tls-versions");
    let trusted = dir.write("ca.pem", &backend_ca.cert_pem);
    let old = TlsBackend::start_with(
        &backend_ca.issue(&["127.0.0.1"], Usage::Server),
        None,
        TLS12_ONLY,
    )
    .await;
    let endpoints = one_endpoint("/x", &old.url(), Value::Null);
    let gw = start_gateway(with(
        service(endpoints.clone()),
        "client_tls",
        json!({"ca_certs": [trusted]}),
    ))
    .await;
    let response = get(&gw.url("/x")).await;
    assert_eq!(response.status, 500);
    assert!(
        response.text().contains("TLS handshake with"),
        "{}",
        response.text()
    );
    gw.shutdown().await;
    let gw = start_gateway(with(
        service(endpoints),
        "client_tls",
        json!({"ca_certs": [trusted], "min_version": "TLS12"}),
    ))
    .await;
    assert_eq!(get(&gw.url("/x")).await.status, 200);
    gw.shutdown().await;
}

/// A backend's own `client_tls` (its own pool) with a client certificate: the backend that asks
/// for one gets it; a backend without `client_certs` has none to show and is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_to_a_backend_with_its_own_client_tls() {
    capture_logs();
    let backend_ca = Ca::new("backend CA");
    let client_ca = Ca::new("gateway identity CA");
    let dir = TempDir::new("tls-backend-mtls");
    let trusted = dir.write("backend-ca.pem", &backend_ca.cert_pem);
    let (cert, key) = client_ca
        .issue(&["gateway"], Usage::Client)
        .write(&dir, "gateway");
    let upstream = TlsBackend::start(
        &backend_ca.issue(&["127.0.0.1"], Usage::Server),
        Some(&client_ca),
    )
    .await;
    let own = |client_tls: Value| json!({"extra_config": {"backend/http/client": {"client_tls": client_tls}}});
    let endpoints = json!([
        endpoint(
            "/with-cert",
            json!([backend(
                &upstream.url(),
                "/a",
                own(json!({
                    "ca_certs": [trusted],
                    "client_certs": [{"certificate": cert, "private_key": key}]
                }))
            )]),
            Value::Null
        ),
        endpoint(
            "/without-cert",
            json!([backend(
                &upstream.url(),
                "/b",
                own(json!({"ca_certs": [trusted]}))
            )]),
            Value::Null
        ),
    ]);
    let gw = start_gateway(service(endpoints)).await;
    let response = get(&gw.url("/with-cert")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({"tls": true, "path": "/a", "client_cert": true})
    );
    // Under TLS 1.3 the backend refuses after the handshake, so the request's own error may
    // only say the connection closed; the client logs why when the backend asks.
    let response = get(&gw.url("/without-cert")).await;
    assert_eq!(response.status, 500);
    assert!(
        response
            .text()
            .starts_with(&format!("request to {}/b: ", upstream.url())),
        "{}",
        response.text()
    );
    log_line(&[
        "an https backend asks for a client certificate (mTLS) and",
        r#"endpoints[1].backend[0].extra_config["backend/http/client"].client_tls.client_certs has none"#,
    ])
    .await;
    assert_eq!(upstream.requests(), 1);
    gw.shutdown().await;
}

/// A plugin's outbound https calls go through its backend's client, so its `client_tls`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_outbound_https_calls_use_its_backends_tls_settings() {
    let backend_ca = Ca::new("backend CA");
    let dir = TempDir::new("tls-plugin");
    let trusted = dir.write("backend-ca.pem", &backend_ca.cert_pem);
    let upstream = TlsBackend::start(&backend_ca.issue(&["127.0.0.1"], Usage::Server), None).await;
    let mut registry = sluice_plugin::Registry::new();
    sluice_builtin_plugins::register_all(&mut registry).unwrap();
    let fan_out = |client_tls: Value| {
        let mut extra = json!({
            "plugin/http-client": {
                "name": "native/fan-out",
                "native/fan-out": {"urls": [format!("{}/one", upstream.url()), format!("{}/two", upstream.url())]}
            }
        });
        if !client_tls.is_null() {
            extra["backend/http/client"] = json!({"client_tls": client_tls});
        }
        json!({"extra_config": extra})
    };
    let endpoints = json!([
        endpoint(
            "/own",
            json!([backend(
                &upstream.url(),
                "/",
                fan_out(json!({"ca_certs": [trusted]}))
            )]),
            Value::Null
        ),
        endpoint(
            "/default",
            json!([backend(&upstream.url(), "/", fan_out(Value::Null))]),
            Value::Null
        ),
    ]);
    let gw = start_gateway_with_registry(service(endpoints), registry).await;
    let response = get(&gw.url("/own")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["a"]["path"], json!("/one"));
    assert_eq!(response.json()["b"]["path"], json!("/two"));
    let response = get(&gw.url("/default")).await;
    assert_eq!(response.status, 500);
    assert!(
        response.text().contains("unknown issuer"),
        "{}",
        response.text()
    );
    assert_eq!(upstream.requests(), 2);
    gw.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Config errors

async fn start_error(config: Value) -> String {
    match try_start_gateway(config, sluice_plugin::Registry::new()).await {
        Ok(gw) => {
            gw.shutdown().await;
            panic!("the gateway started");
        }
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_and_keys_that_do_not_load_stop_start_up_naming_file_and_path() {
    let ca = Ca::new("CA");
    let dir = TempDir::new("tls-errors");
    let (cert, key) = ca.issue(&["localhost"], Usage::Server).write(&dir, "good");
    let (_, other_key) = ca.issue(&["localhost"], Usage::Server).write(&dir, "other");
    let missing = dir.path("missing.pem").display().to_string();
    let garbage = dir.write("garbage.pem", "this is not PEM\n");
    let mut config = service(one_endpoint(
        "/x",
        "http://127.0.0.1:19",
        json!({"extra_config": {"backend/http/client": {"client_tls": {
            "client_certs": [{"certificate": cert, "private_key": garbage}]
        }}}}),
    ));
    config["tls"] = json!({
        "public_key": missing,
        "private_key": key,
        "keys": [
            {"public_key": garbage, "private_key": key},
            {"public_key": cert, "private_key": other_key}
        ]
    });
    config["client_tls"] = json!({"ca_certs": [missing]});
    let errors = start_error(config.clone()).await;
    let backend_tls = r#"endpoints[0].backend[0].extra_config["backend/http/client"].client_tls"#;
    for expected in [
        format!(
            "test.json: client_tls.ca_certs[0]: cannot read the certificate file \"{missing}\": "
        ),
        format!(
            "test.json: {backend_tls}.client_certs[0].private_key: \"{garbage}\" holds no private key"
        ),
        format!("test.json: tls.public_key: cannot read the certificate file \"{missing}\": "),
        format!("test.json: tls.keys[0].public_key: \"{garbage}\" holds no certificate"),
        format!(
            "test.json: tls.keys[1].private_key: the private key in \"{other_key}\" does not \
             belong to the certificate in \"{cert}\""
        ),
    ] {
        assert!(errors.contains(&expected), "{expected}\n---\n{errors}");
    }
    // `sluice check` reports the same through validate.
    let parsed = parse_config(&config).unwrap();
    let checked = sluice_server::validate(&parsed, &sluice_plugin::Registry::new())
        .await
        .unwrap_err()
        .join("\n");
    assert!(
        checked.contains("test.json: tls.keys[0].public_key: "),
        "{checked}"
    );
    assert!(
        checked.contains("test.json: client_tls.ca_certs[0]: "),
        "{checked}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_rustls_cannot_honour_are_config_errors() {
    let mut config = service(one_endpoint("/x", "http://127.0.0.1:19", Value::Null));
    config["tls"] = json!({
        "public_key": "a.pem",
        "private_key": "a.key",
        "min_version": "TLS10",
        "cipher_suites": [1234, 10],
        "curve_preferences": [25]
    });
    config["client_tls"] = json!({"max_version": "TLS11", "cipher_suites": [49171]});
    let errors = start_error(config).await;
    for expected in [
        "test.json: tls.min_version: \"TLS10\" (TLS 1.0) is not supported by Sluice",
        "test.json: tls.cipher_suites[0]: unknown cipher suite 1234: expected one of 4865",
        "test.json: tls.cipher_suites[1]: cipher suite 10 (TLS_RSA_WITH_3DES_EDE_CBC_SHA) is not supported by Sluice",
        "test.json: tls.curve_preferences[0]: curve 25 (P-521) is not supported by Sluice",
        "test.json: client_tls.max_version: \"TLS11\" (TLS 1.1) is not supported by Sluice",
        "test.json: client_tls.cipher_suites[0]: cipher suite 49171 (TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA) is not supported",
    ] {
        assert!(errors.contains(expected), "{expected}\n---\n{errors}");
    }
}
