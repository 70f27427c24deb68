//! The example plugins, end to end: real components on a real host against a real backend.

use std::time::{Duration, Instant as StdInstant};

use crate::common::*;
use serde_json::json;
use sluice_config::PluginFolder;
use sluice_plugin::{ErrorKind, ErrorSource};
use sluice_wasm::{WasmHost, WasmHostOptions};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_example_init_is_checked() {
    let plugin = load("client-example");
    let backend = start_backend().await;
    let err =
        build(&plugin, json!({"name": "client-example"}), &backend.url).expect_err("no settings");
    assert!(err.contains("missing settings \"path\""), "{err}");
    let err = build(
        &plugin,
        json!({"name": "client-example", "client-example": {"path": 3}}),
        &backend.url,
    )
    .expect_err("bad settings");
    assert!(err.contains("non-empty string"), "{err}");
    build(
        &plugin,
        json!({"name": "client-example", "client-example": {"path": "/x"}}),
        &backend.url,
    )
    .expect("good settings");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_example_passes_through_and_hijacks() {
    let plugin = load("client-example");
    let backend = start_backend().await;
    let exec = build(
        &plugin,
        json!({"name": "client-example", "client-example": {"path": "/__debug/hijack-me"}}),
        &backend.url,
    )
    .expect("build");

    // The backend's answer comes back whole (the host keeps its own parsed headers when the
    // plugin answers with those of `send`), call after call on the same instance.
    for _ in 0..3 {
        let url = format!("{}/__debug/normal", backend.url);
        let (status, headers, body) = call(&exec, request("GET", &url), SECOND)
            .await
            .expect("pass-through");
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["content-length"], body.len().to_string().as_str());
        assert_eq!(json(&body), json!({"message": "pong"}));
    }

    let url = format!("{}/__debug/hijack-me", backend.url);
    let (status, headers, body) = call(&exec, request("GET", &url), SECOND)
        .await
        .expect("hijack");
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(json(&body), json!({"message": "/__debug/hijack-me"}));

    // Headers and query reach the backend unchanged.
    let url = format!("{}/echo/x?q=1", backend.url);
    let (_, _, body) = call(&exec, request("GET", &url), SECOND)
        .await
        .expect("echo");
    let echo = json(&body);
    assert_eq!(echo["path"], "/echo/x");
    assert_eq!(echo["query"], "q=1");
    assert_eq!(echo["headers"]["user-agent"], "Sluice Version test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_answer_answers_without_a_call() {
    let plugin = load("static-answer");
    let exec = build(
        &plugin,
        json!({"name": "static-answer", "static-answer": {"status": 201, "headers": {"X-A": "1"}, "body": {"id": 1}}}),
        // Nothing listens there: any call would fail.
        "http://127.0.0.1:9",
    )
    .expect("build");
    let (status, headers, body) =
        call(&exec, request("GET", "http://127.0.0.1:9/anything"), SECOND)
            .await
            .expect("answer");
    assert_eq!(status, 201);
    assert_eq!(headers["x-a"], "1");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(json(&body), json!({"id": 1}));

    // A wrong content-length from a plugin is corrected to the body's length.
    let exec = build(
        &plugin,
        json!({"name": "static-answer", "static-answer": {"body": "plain", "headers": {"Content-Length": "999"}}}),
        "http://h",
    )
    .expect("build");
    let (status, headers, body) = call(&exec, request("GET", "http://h/"), SECOND)
        .await
        .expect("answer");
    assert_eq!((status.as_u16(), &body[..]), (200, &b"plain"[..]));
    assert_eq!(headers["content-length"], "5");

    let err = build(
        &plugin,
        json!({"name": "static-answer", "static-answer": {"status": 7}}),
        "http://h",
    )
    .expect_err("bad status");
    assert!(err.contains("not an HTTP status"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_signer_is_verified_by_the_backend() {
    let plugin = load("hmac-signer");
    let backend = start_backend().await;
    let err = build(
        &plugin,
        json!({"name": "hmac-signer", "hmac-signer": {}}),
        &backend.url,
    )
    .expect_err("no secret");
    assert!(err.contains("secret"), "{err}");

    let exec = build(
        &plugin,
        json!({"name": "hmac-signer", "hmac-signer": {"secret": HMAC_SECRET, "key_id": "gw-1"}}),
        &backend.url,
    )
    .expect("build");
    for (method, target, body) in [
        ("GET", "/signed/a?x=1&y=2", ""),
        ("POST", "/signed/b", "{\"hello\":\"world\"}"),
    ] {
        let mut req = request(method, &format!("{}{target}", backend.url));
        req.body = body.as_bytes().to_vec().into();
        let (status, _, answer) = call(&exec, req, SECOND).await.expect("signed call");
        let answer = json(&answer);
        assert_eq!(status, 200, "{method} {target}: {answer}");
        assert_eq!(answer["verified"], true);
        assert_eq!(answer["key_id"], "gw-1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_combines_and_refuses_other_hosts() {
    let plugin = load("fan-out");
    let backend = start_backend().await;
    let urls = json!([format!("{}/a", backend.url), format!("{}/b", backend.url)]);
    let exec = build(
        &plugin,
        json!({"name": "fan-out", "fan-out": {"urls": urls}}),
        &backend.url,
    )
    .expect("build");
    let (status, _, body) = call(&exec, request("GET", &format!("{}/", backend.url)), SECOND)
        .await
        .expect("fan-out");
    assert_eq!(status, 200);
    assert_eq!(json(&body), json!({"a": {"x": 1}, "b": {"y": 2}}));

    // The second URL is on a host the backend does not list: refused, cleanly.
    let other = start_backend().await;
    let urls = json!([format!("{}/a", backend.url), format!("{}/b", other.url)]);
    let exec = build(
        &plugin,
        json!({"name": "fan-out", "fan-out": {"urls": urls}}),
        &backend.url,
    )
    .expect("build");
    let err = call(&exec, request("GET", &format!("{}/", backend.url)), SECOND)
        .await
        .expect_err("refused");
    assert_eq!(
        (err.source, err.kind),
        (ErrorSource::Plugin, ErrorKind::HostNotAllowed),
        "{err}"
    );

    // Unless allowed explicitly.
    let exec = build(
        &plugin,
        json!({"name": "fan-out", "fan-out": {"urls": urls}, "allowed_hosts": [backend.url, other.url]}),
        &backend.url,
    )
    .expect("build");
    call(&exec, request("GET", &format!("{}/", backend.url)), SECOND)
        .await
        .expect("allowed");

    let err = build(
        &plugin,
        json!({"name": "fan-out", "fan-out": {"urls": ["http://x/"]}}),
        &backend.url,
    )
    .expect_err("one url");
    assert!(err.contains("exactly two"), "{err}");
}

/// Builds the `fault` plugin for `backend` with `hang_url` pointing at its never-answering route.
async fn fault_executor(extra: serde_json::Value) -> (sluice_plugin::SharedExecutor, Backend) {
    let plugin = load("fault");
    let backend = start_backend().await;
    let mut extra = extra;
    extra["name"] = json!("fault");
    extra["fault"] = json!({"hang_url": format!("{}/hang", backend.url)});
    let exec = build(&plugin, extra, &backend.url).expect("build");
    (exec, backend)
}

async fn assert_healthy(exec: &sluice_plugin::SharedExecutor, backend: &Backend) {
    let (status, _, body) = call(
        exec,
        request("GET", &format!("{}/fine", backend.url)),
        SECOND,
    )
    .await
    .expect("healthy request");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_trap_then_healthy() {
    let (exec, backend) = fault_executor(json!({"max_instances": 1})).await;
    assert_healthy(&exec, &backend).await;
    let err = call(
        &exec,
        request("GET", &format!("{}/trap", backend.url)),
        SECOND,
    )
    .await
    .expect_err("trap");
    assert_eq!(
        (err.source, err.kind),
        (ErrorSource::Plugin, ErrorKind::PluginFault),
        "{err}"
    );
    assert!(
        err.message.contains("trap, as asked"),
        "the panic message is reported: {err}"
    );
    // The trapped instance was replaced: with one instance allowed, this needs a new one.
    assert_healthy(&exec, &backend).await;
    let stats = host().stats()["fault"];
    assert!(
        stats.traps >= 1 && stats.instances_discarded >= 1,
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_loop_is_cut_at_the_deadline_then_healthy() {
    let (exec, backend) = fault_executor(json!({"max_instances": 1})).await;
    let started = StdInstant::now();
    let err = call(
        &exec,
        request("GET", &format!("{}/loop", backend.url)),
        Duration::from_millis(300),
    )
    .await
    .expect_err("loop");
    let took = started.elapsed();
    assert_eq!(
        (err.source, err.kind),
        (ErrorSource::Plugin, ErrorKind::Timeout),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "cut after {took:?}"
    );
    assert_healthy(&exec, &backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_memory_blow_up_then_healthy() {
    let (exec, backend) =
        fault_executor(json!({"max_instances": 1, "memory_limit": "16MiB"})).await;
    let err = call(
        &exec,
        request("GET", &format!("{}/oom", backend.url)),
        5 * SECOND,
    )
    .await
    .expect_err("oom");
    assert_eq!(
        (err.source, err.kind),
        (ErrorSource::Plugin, ErrorKind::PluginFault),
        "{err}"
    );
    assert!(err.message.contains("out of memory"), "{err}");
    assert_healthy(&exec, &backend).await;
    assert!(host().stats()["fault"].out_of_memory >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_never_answers_then_healthy() {
    let (exec, backend) = fault_executor(json!({"max_instances": 1})).await;
    let started = StdInstant::now();
    let err = call(
        &exec,
        request("GET", &format!("{}/hang", backend.url)),
        Duration::from_millis(300),
    )
    .await
    .expect_err("hang");
    assert_eq!(err.kind, ErrorKind::Timeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "cut after {:?}",
        started.elapsed()
    );
    assert_healthy(&exec, &backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_refused_host_then_healthy() {
    let (exec, backend) = fault_executor(json!({})).await;
    let err = call(
        &exec,
        request("GET", &format!("{}/refused", backend.url)),
        SECOND,
    )
    .await
    .expect_err("refused");
    assert_eq!(
        (err.source, err.kind),
        (ErrorSource::Plugin, ErrorKind::HostNotAllowed),
        "{err}"
    );
    assert_healthy(&exec, &backend).await;
    assert!(host().stats()["fault"].hosts_refused >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_reused() {
    let (exec, backend) = fault_executor(json!({"max_instances": 1})).await;
    let mut served = Vec::new();
    for _ in 0..3 {
        let (_, _, body) = call(
            &exec,
            request("GET", &format!("{}/fine", backend.url)),
            SECOND,
        )
        .await
        .expect("ok");
        served.push(json(&body)["served"].as_u64().expect("served"));
    }
    assert_eq!(served, [1, 2, 3], "one long-lived instance served them all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_failures_stop_the_build() {
    let plugin = load("fault");
    let err = build(
        &plugin,
        json!({"name": "fault", "fault": {"reject": "wrong config"}}),
        "http://h",
    )
    .expect_err("rejected");
    assert!(err.contains("wrong config"), "{err}");
    let err = build(
        &plugin,
        json!({"name": "fault", "fault": {"panic_in_init": true}}),
        "http://h",
    )
    .expect_err("trapped");
    assert!(
        err.contains("trapped") && err.contains("panic in init"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_validated() {
    let plugin = load("fault");
    for (extra, key) in [
        (
            json!({"name": "fault", "max_instances": "many"}),
            "max_instances",
        ),
        (
            json!({"name": "fault", "memory_limit": "huge"}),
            "memory_limit",
        ),
        (
            json!({"name": "fault", "memory_limit": "64GiB"}),
            "memory_limit",
        ),
        (json!({"name": "fault", "timeout": "soon"}), "timeout"),
        (
            json!({"name": "fault", "allowed_hosts": [1]}),
            "allowed_hosts",
        ),
    ] {
        let err = build(&plugin, extra, "http://h").expect_err("invalid limit");
        assert!(err.contains(key), "{key}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_setting_caps_the_deadline() {
    let (exec, backend) = fault_executor(json!({"timeout": "100ms"})).await;
    let started = StdInstant::now();
    let err = call(
        &exec,
        request("GET", &format!("{}/loop", backend.url)),
        5 * SECOND,
    )
    .await
    .expect_err("loop");
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "cut after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_http_passthrough() {
    let plugin = load("wasi-passthrough");
    let backend = start_backend().await;
    let exec = build(
        &plugin,
        json!({"name": "wasi-passthrough", "wasi-passthrough": {"response_header": "x-via"}}),
        &backend.url,
    )
    .expect("build");
    for _ in 0..2 {
        let url = format!("{}/echo/p?z=9", backend.url);
        let (status, headers, body) = call(&exec, request("GET", &url), SECOND)
            .await
            .expect("passthrough");
        assert_eq!(status, 200);
        assert_eq!(
            headers["x-via"], "wasi-passthrough",
            "the setting came through wasi:config"
        );
        let echo = json(&body);
        assert_eq!(
            (echo["path"].as_str(), echo["query"].as_str()),
            (Some("/echo/p"), Some("z=9"))
        );
        assert_eq!(echo["headers"]["user-agent"], "Sluice Version test");
    }
    let mut post = request("POST", &format!("{}/echo/post", backend.url));
    post.body = "payload".into();
    let (_, _, body) = call(&exec, post, SECOND).await.expect("post");
    assert_eq!(json(&body)["body"], "payload");

    // Hop-by-hop and proxy headers never reach the guest (wasi:http's forbidden list), so a
    // pass-through cannot forward them; other headers pass.
    let mut req = request("GET", &format!("{}/echo/h", backend.url));
    for (name, value) in [
        ("proxy-authorization", "Basic c2VjcmV0"),
        ("keep-alive", "timeout=5"),
        ("upgrade", "websocket"),
        ("x-kept", "yes"),
    ] {
        req.headers
            .insert(name, http::HeaderValue::from_static(value));
    }
    let (_, _, body) = call(&exec, req, SECOND).await.expect("headers");
    let echo = json(&body);
    assert_eq!(echo["headers"]["x-kept"], "yes");
    for name in ["proxy-authorization", "keep-alive", "upgrade"] {
        assert!(
            echo["headers"].get(name).is_none(),
            "{name} reached the backend: {echo}"
        );
    }

    // Only the backend's hosts are reachable.
    let exec = build(
        &plugin,
        json!({"name": "wasi-passthrough", "allowed_hosts": ["http://127.0.0.1:9"]}),
        &backend.url,
    )
    .expect("build");
    let err = call(
        &exec,
        request("GET", &format!("{}/echo", backend.url)),
        SECOND,
    )
    .await
    .expect_err("refused");
    assert_eq!(err.kind, ErrorKind::HostNotAllowed, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_folder_uses_the_cache_and_rejects_non_components() {
    let dist = dist();
    let scratch = tempdir("load-folder");
    let root = scratch.path();
    let folder = root.join("plugins");
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::copy(
        dist.join("client-example.wasm"),
        folder.join("client-example.wasm"),
    )
    .expect("copy");
    std::fs::copy(
        dist.join("static-answer.wasm"),
        folder.join("static-answer.wasm"),
    )
    .expect("copy");
    std::fs::write(folder.join("notes.wasm.txt"), "hello").expect("write");
    // The smallest valid core module: a module, not a component.
    std::fs::write(folder.join("core.wasm"), b"\0asm\x01\0\0\0").expect("write");
    std::fs::write(folder.join("ignored.so"), "x").expect("write");

    let options = |cache: &std::path::Path| WasmHostOptions {
        pool_instances: 20,
        cache_dir: Some(cache.to_path_buf()),
        ..WasmHostOptions::default()
    };
    let cache = root.join("cache");
    let spec = PluginFolder {
        folder: folder.clone(),
        pattern: ".wasm".into(),
        sha256: Default::default(),
    };

    let first = WasmHost::new(options(&cache)).expect("host");
    let (plugins, errors) = first.load_folder(&spec);
    let names: Vec<&str> = plugins.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["client-example", "static-answer"]);
    let mut reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains("core.wasm")
            && reasons[0].contains("core WebAssembly module, not a component")
    );
    assert!(reasons[1].contains("notes.wasm.txt") && reasons[1].contains("not a WebAssembly file"));
    assert_eq!(first.cache_stats().compiled, 2);
    let cached: Vec<_> = std::fs::read_dir(first.cache_dir().expect("cache dir"))
        .expect("cache dir exists")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
        .collect();
    assert_eq!(cached.len(), 2, "one artefact per component");
    drop(first);

    // A second host (a restart) loads both from the cache.
    let second = WasmHost::new(options(&cache)).expect("host");
    let (plugins, _) = second.load_folder(&spec);
    assert_eq!(plugins.len(), 2);
    assert_eq!(
        second.cache_stats(),
        sluice_wasm::CacheStats {
            hits: 2,
            compiled: 0
        }
    );
    // ...and what it loaded works.
    let (_, plugin) = &plugins[1];
    let exec = build(
        plugin,
        json!({"name": "static-answer", "static-answer": {"body": "cached"}}),
        "http://h",
    )
    .expect("build");
    let (_, _, body) = call(&exec, request("GET", "http://h/"), SECOND)
        .await
        .expect("answer");
    assert_eq!(&body[..], b"cached");

    // A missing folder is one error.
    let (plugins, errors) = second.load_folder(&PluginFolder {
        folder: root.join("nope"),
        pattern: String::new(),
        sha256: Default::default(),
    });
    assert!(plugins.is_empty() && errors.len() == 1, "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_rewrite_uses_both_hooks() {
    let plugin = load("header-rewrite");
    let backend = start_backend().await;
    let exec = build(
        &plugin,
        json!({"name": "header-rewrite", "header-rewrite": {
            "request": {"set": {"X-Api-Key": "k1"}, "remove": ["X-Forwarded-For"]},
            "response": {"set": {"X-Served-By": "sluice"}, "remove": ["Content-Type"]}
        }}),
        &backend.url,
    )
    .expect("build");
    let (status, headers, body) = call(
        &exec,
        request("GET", &format!("{}/echo/h", backend.url)),
        SECOND,
    )
    .await
    .expect("call");
    assert_eq!(status, 200);
    assert_eq!(headers["x-served-by"], "sluice");
    assert!(headers.get("content-type").is_none());
    let echo = json(&body);
    assert_eq!(echo["headers"]["x-api-key"], "k1");
    assert!(echo["headers"].get("x-forwarded-for").is_none());

    // Without response rules only on-request runs; the backend's answer is passed on as is.
    let exec = build(
        &plugin,
        json!({"name": "header-rewrite", "header-rewrite": {"request": {"set": {"X-Api-Key": "k2"}}}}),
        &backend.url,
    )
    .expect("build");
    let (_, headers, body) = call(
        &exec,
        request("GET", &format!("{}/echo/h", backend.url)),
        SECOND,
    )
    .await
    .expect("call");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(json(&body)["headers"]["x-api-key"], "k2");

    // The request hook's request is still held to the allow-list.
    let exec = build(
        &plugin,
        json!({"name": "header-rewrite"}),
        "http://127.0.0.1:9",
    )
    .expect("build");
    let err = call(
        &exec,
        request("GET", &format!("{}/echo/h", backend.url)),
        SECOND,
    )
    .await
    .expect_err("refused");
    assert_eq!(err.kind, ErrorKind::HostNotAllowed);
}

/// An `on-request` that hands the request back as it was (the host then keeps its own parsed
/// method, URL and headers instead of parsing the guest's copy): the backend gets exactly that
/// request, again and again on the same instance; one that changes a header gets that change
/// through and the rest as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_request_unchanged_parts_pass_as_they_were() {
    let plugin = load("header-rewrite");
    let backend = start_backend().await;
    let original = || {
        let mut req = request("POST", &format!("{}/echo/p?q=1&r=two", backend.url));
        req.headers
            .insert("x-custom", http::HeaderValue::from_static("v1"));
        req.headers
            .insert("content-length", http::HeaderValue::from_static("5"));
        req.body = bytes::Bytes::from_static(b"hello");
        req
    };
    let exec = build(
        &plugin,
        json!({"name": "header-rewrite", "header-rewrite": {}}),
        &backend.url,
    )
    .expect("build");
    for _ in 0..3 {
        let (status, _, body) = call(&exec, original(), SECOND).await.expect("call");
        assert_eq!(status, 200);
        let echo = json(&body);
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["path"], "/echo/p");
        assert_eq!(echo["query"], "q=1&r=two");
        assert_eq!(echo["headers"]["user-agent"], "Sluice Version test");
        assert_eq!(echo["headers"]["x-forwarded-for"], "127.0.0.1");
        assert_eq!(echo["headers"]["x-custom"], "v1");
        assert_eq!(echo["headers"]["content-length"], "5");
        assert_eq!(echo["body"], "hello");
    }

    let exec = build(
        &plugin,
        json!({"name": "header-rewrite", "header-rewrite": {"request": {"set": {"X-Custom": "v2"}}}}),
        &backend.url,
    )
    .expect("build");
    let (_, _, body) = call(&exec, original(), SECOND).await.expect("call");
    let echo = json(&body);
    assert_eq!(echo["headers"]["x-custom"], "v2");
    assert_eq!(echo["headers"]["user-agent"], "Sluice Version test");
    assert_eq!(echo["query"], "q=1&r=two");
    assert_eq!(echo["body"], "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_instances_caps_concurrency() {
    let (exec, backend) = fault_executor(json!({"max_instances": 1})).await;
    let busy = {
        let exec = exec.clone();
        let url = format!("{}/loop", backend.url);
        tokio::spawn(
            async move { call(&exec, request("GET", &url), Duration::from_millis(600)).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = call(
        &exec,
        request("GET", &format!("{}/fine", backend.url)),
        Duration::from_millis(100),
    )
    .await
    .expect_err("no free instance");
    assert_eq!(
        (err.source, err.kind),
        (ErrorSource::Plugin, ErrorKind::Overloaded),
        "{err}"
    );
    let looped = busy.await.expect("task").expect_err("loop is cut");
    assert_eq!(looped.kind, ErrorKind::Timeout);
    assert_healthy(&exec, &backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_costs_only_its_instance() {
    let (exec, backend) = fault_executor(json!({"max_instances": 1})).await;
    // The caller gives up (client gone) while the plugin waits on a backend that never answers.
    let ctx = ctx(5 * SECOND);
    let hang = exec.execute(request("GET", &format!("{}/hang", backend.url)), &ctx);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), hang)
            .await
            .is_err()
    );
    // The slot was released and a fresh instance serves the next request.
    assert_healthy(&exec, &backend).await;
}
