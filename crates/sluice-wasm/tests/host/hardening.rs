//! Adversarial plugins: a faulty plugin fails only its own request, at once, and leaves
//! nothing behind; one backend cannot starve another; the compiled cache is trusted only when
//! private. Real components built from `plugins/`, real backends on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant as StdInstant};

use crate::common::*;
use bytes::Bytes;
use serde_json::json;
use sluice_plugin::{CallContext, ClientPlugin, ErrorKind, ErrorSource, Instant, SharedExecutor};
use sluice_wasm::{WasmHost, WasmHostOptions};

const SECOND: Duration = Duration::from_secs(1);

/// Loads a built plugin under another name, so this test's counters are its own.
fn load_as(host: &WasmHost, plugin: &str, alias: &str) -> Arc<dyn ClientPlugin> {
    // The file is read whole when it loads: its folder goes when this returns.
    let dir = tempdir(alias);
    let file = dir.path().join(format!("{alias}.wasm"));
    std::fs::copy(plugin_file(plugin), &file).expect("copy plugin");
    let (name, loaded) = host.load_file(&file).expect("plugin loads");
    assert_eq!(name, alias);
    loaded
}

fn stats(host: &WasmHost, name: &str) -> sluice_wasm::StatsSnapshot {
    host.stats()[name]
}

/// Waits (bounded) until `cond` holds, checking on every reaper-sized step.
async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let started = StdInstant::now();
    while !cond() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wasi_fault(alias: &str, extra: serde_json::Value) -> (SharedExecutor, Backend) {
    let plugin = load_as(host(), "wasi-fault", alias);
    let backend = start_backend().await;
    let mut extra = extra;
    extra["name"] = json!(alias);
    let exec = build(&plugin, extra, &backend.url).expect("build");
    (exec, backend)
}

async fn assert_wasi_healthy(exec: &SharedExecutor, backend: &Backend) -> u64 {
    let (status, headers, body) = call(
        exec,
        request("GET", &format!("{}/fine", backend.url)),
        SECOND,
    )
    .await
    .expect("healthy request");
    assert_eq!((status.as_u16(), &body[..]), (200, &b"ok"[..]));
    headers["x-served"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("a count")
}

/// 1. A wasi:http component that traps or runs out of memory fails its request at once, not
/// at the deadline, and the next request is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_http_trap_and_oom_fail_at_once() {
    let (exec, backend) = wasi_fault(
        "wasi-fault-fast",
        json!({"max_instances": 1, "memory_limit": "16MiB"}),
    )
    .await;
    assert_wasi_healthy(&exec, &backend).await;
    for (path, expect) in [("trap", "trap, as asked"), ("oom", "out of memory")] {
        let started = StdInstant::now();
        let err = call(
            &exec,
            request("GET", &format!("{}/{path}", backend.url)),
            10 * SECOND,
        )
        .await
        .expect_err(path);
        let took = started.elapsed();
        assert!(
            took < 2 * SECOND,
            "{path}: the error took {took:?} (deadline 10 s)"
        );
        assert_eq!(
            (err.source, err.kind),
            (ErrorSource::Plugin, ErrorKind::PluginFault),
            "{path}: {err}"
        );
        assert!(err.message.contains(expect), "{path}: {err}");
        // One instance allowed: this needs the faulty one replaced.
        assert_wasi_healthy(&exec, &backend).await;
    }
    let s = stats(host(), "wasi-fault-fast");
    assert!(s.traps >= 1 && s.out_of_memory >= 1, "{s:?}");
    assert_eq!(s.timeouts, 0, "{s:?}");
}

/// 2. 30,000 headers, returned or sent, in both worlds: a plugin error, no panic, and the
/// next request works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_header_lists_are_a_plugin_error() {
    // The Sluice world.
    let plugin = load_as(host(), "fault", "fault-headers");
    let backend = start_backend().await;
    let exec = build(
        &plugin,
        json!({"name": "fault-headers", "max_instances": 1}),
        &backend.url,
    )
    .expect("build");
    for path in ["headers", "send-headers"] {
        let started = StdInstant::now();
        let err = call(
            &exec,
            request("GET", &format!("{}/{path}", backend.url)),
            10 * SECOND,
        )
        .await
        .expect_err(path);
        assert!(started.elapsed() < 2 * SECOND, "{path}: {err}");
        assert_eq!(err.source, ErrorSource::Plugin, "{path}: {err}");
        assert!(
            err.message
                .contains("30000 headers, more than the 1000 allowed"),
            "{path}: {err}"
        );
        let (status, _, body) = call(
            &exec,
            request("GET", &format!("{}/fine", backend.url)),
            SECOND,
        )
        .await
        .expect("healthy");
        assert_eq!(
            (status.as_u16(), json(&body)["ok"].clone()),
            (200, json!(true))
        );
    }

    // The wasi:http world: the guest builds `fields` on the host, which traps it past the
    // size bound (wasmtime's rule); within the size bound, the count bound refuses the answer
    // or the call.
    let (exec, backend) = wasi_fault("wasi-fault-headers", json!({"max_instances": 1})).await;
    for (path, expect) in [
        ("headers", "total size of fields exceeds limit"),
        ("send-headers", "total size of fields exceeds limit"),
        ("many-headers", "1200 headers, more than the 1000 allowed"),
        ("send-many-headers", "HttpRequestHeaderSectionSize"),
    ] {
        let started = StdInstant::now();
        let err = call(
            &exec,
            request("GET", &format!("{}/{path}", backend.url)),
            10 * SECOND,
        )
        .await
        .expect_err(path);
        assert!(started.elapsed() < 2 * SECOND, "{path}: {err}");
        assert_eq!(err.source, ErrorSource::Plugin, "{path}: {err}");
        assert!(err.message.contains(expect), "{path}: {err}");
        assert_wasi_healthy(&exec, &backend).await;
    }
}

/// Bodies whose bytes count themselves while alive.
#[derive(Clone, Default)]
struct Tracker(Arc<AtomicUsize>);

struct Tracked {
    data: Vec<u8>,
    alive: Arc<AtomicUsize>,
}

impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Tracker {
    fn body(&self, len: usize) -> Bytes {
        self.0.fetch_add(1, Ordering::SeqCst);
        Bytes::from_owner(Tracked {
            data: vec![b'x'; len],
            alive: Arc::clone(&self.0),
        })
    }
    fn alive(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// 3. What a request leaves in an instance's store does not outlive it: a component that
/// leaks its incoming request (and body) gets a fresh instance, and the bodies are freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaked_requests_do_not_outlive_the_request() {
    let (exec, backend) = wasi_fault("wasi-fault-leak", json!({"max_instances": 1})).await;
    let tracker = Tracker::default();
    for i in 0..20 {
        let mut post = request("POST", &format!("{}/leak", backend.url));
        post.body = tracker.body(4 << 20);
        let (status, _, body) = call(&exec, post, 5 * SECOND).await.expect("leak answers");
        assert_eq!((status.as_u16(), &body[..]), (200, &b"leaked"[..]));
        assert_eq!(
            tracker.alive(),
            0,
            "request {i}: a leaked 4 MiB body is still held by the instance"
        );
    }
    let s = stats(host(), "wasi-fault-leak");
    assert!(s.instances_recycled >= 20, "{s:?}");
    assert!(s.instances_live <= 1, "{s:?}");

    // A clean request leaves nothing: its instance is reused.
    let first = assert_wasi_healthy(&exec, &backend).await;
    assert_eq!(assert_wasi_healthy(&exec, &backend).await, first + 1);
}

/// 3. Instances serve at most `max_requests_per_instance` requests and idle ones expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_recycled_and_idle_ones_expire() {
    let plugin = load_as(host(), "fault", "fault-recycle");
    let backend = start_backend().await;
    let exec = build(
        &plugin,
        json!({"name": "fault-recycle", "max_instances": 1, "max_requests_per_instance": 3,
               "instance_idle_timeout": "300ms"}),
        &backend.url,
    )
    .expect("build");
    let served = async || {
        let (_, _, body) = call(
            &exec,
            request("GET", &format!("{}/fine", backend.url)),
            SECOND,
        )
        .await
        .expect("ok");
        json(&body)["served"].as_u64().expect("served")
    };
    let mut seen = Vec::new();
    for _ in 0..7 {
        seen.push(served().await);
    }
    assert_eq!(seen, [1, 2, 3, 1, 2, 3, 1], "three requests per instance");
    assert!(stats(host(), "fault-recycle").instances_recycled >= 2);

    // Idle: the pool empties by itself.
    wait_until("the idle instance to expire", 5 * SECOND, || {
        stats(host(), "fault-recycle").instances_live == 0
    })
    .await;
    assert!(stats(host(), "fault-recycle").instances_expired >= 1);
    assert_eq!(served().await, 1, "a fresh instance after expiry");

    for (extra, key) in [
        (
            json!({"name": "fault-recycle", "max_requests_per_instance": 0}),
            "max_requests_per_instance",
        ),
        (
            json!({"name": "fault-recycle", "instance_idle_timeout": "later"}),
            "instance_idle_timeout",
        ),
    ] {
        let err = build(&plugin, extra, &backend.url).expect_err("invalid");
        assert!(err.starts_with(key), "{err}");
    }
}

/// 4. Each backend reserves its `max_instances` of the pool: a backend that does not fit is
/// refused at build time, and a loaded backend cannot take another's instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_cannot_starve_each_other() {
    let host = WasmHost::new(WasmHostOptions {
        pool_instances: 12,
        cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("sluice-wasm-cache-shared")),
        ..WasmHostOptions::default()
    })
    .expect("host");
    let fault = load_as(&host, "fault", "fault-greedy");
    let answer = load_as(&host, "static-answer", "static-modest");
    let backend = start_backend().await;
    let greedy = |n: u32| {
        build(
            &fault,
            json!({"name": "fault-greedy", "max_instances": n,
                   "fault-greedy": {"hang_url": format!("{}/hang", backend.url)}}),
            &backend.url,
        )
    };
    let modest = |n: u32| {
        build(
            &answer,
            json!({"name": "static-modest", "max_instances": n,
                   "static-modest": {"body": "still here"}}),
            &backend.url,
        )
    };

    let err = greedy(1000).expect_err("more than the pool");
    assert!(
        err.contains("max_instances: 1000 instances of plugin \"fault-greedy\"")
            && err.contains("the WebAssembly instance pool holds 12 instances"),
        "{err}"
    );
    let a = greedy(8).expect("8 of 12");
    let b = modest(4).expect("4 more: 12 of 12");
    let err = modest(1).expect_err("13 of 12");
    assert!(
        err.contains("static-modest") && err.contains("reserved 12 instances"),
        "{err}"
    );

    // Load the greedy backend past its share: every instance busy on a backend that never
    // answers, more requests queued behind them.
    let mut load = Vec::new();
    for _ in 0..12 {
        let a = a.clone();
        let url = format!("{}/hang", backend.url);
        load.push(tokio::spawn(async move {
            call(&a, request("GET", &url), 3 * SECOND).await
        }));
    }
    wait_until(
        "the greedy backend to use all its instances",
        5 * SECOND,
        || host.stats()["fault-greedy"].instances_live == 8,
    )
    .await;
    for _ in 0..3 {
        let (status, _, body) = call(&b, request("GET", &format!("{}/x", backend.url)), SECOND)
            .await
            .expect("the other backend still serves");
        assert_eq!((status.as_u16(), &body[..]), (200, &b"still here"[..]));
    }
    for task in load {
        let err = task.await.expect("task").expect_err("hangs or overloads");
        assert!(
            matches!(err.kind, ErrorKind::Timeout | ErrorKind::Overloaded),
            "{err}"
        );
    }

    // A backend's share comes back when it is gone.
    drop(a);
    wait_until("the greedy backend's instances to go", 5 * SECOND, || {
        host.stats()["fault-greedy"].instances_live == 0
    })
    .await;
    greedy(8).expect("the share was given back");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// The cached artefact of `wasm` in `dir`.
fn artefact(dir: &Path, wasm: &Path) -> PathBuf {
    let digest = sha256_hex(&std::fs::read(wasm).expect("read wasm"));
    std::fs::read_dir(dir)
        .expect("cache dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&digest) && n.ends_with(".cwasm"))
        })
        .expect("artefact cached")
}

/// 5. A planted artefact in a cache directory others can write is not loaded.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_cache_directory_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = tempdir("cache-trust");
    let root = scratch.path().join("cache");
    let options = || WasmHostOptions {
        pool_instances: 20,
        cache_dir: Some(root.clone()),
        ..WasmHostOptions::default()
    };
    let victim = plugin_file("static-answer");
    let intruder = plugin_file("client-example");

    let first = WasmHost::new(options()).expect("host");
    let dir = first
        .cache_dir()
        .expect("a private cache is used")
        .to_path_buf();
    for p in [&root, &dir] {
        let mode = std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} created private", p.display());
    }
    first.load_file(&victim).expect("victim");
    first.load_file(&intruder).expect("intruder");
    assert_eq!(first.cache_stats().compiled, 2);
    drop(first);

    // Plant the intruder's native code under the victim's name.
    std::fs::copy(artefact(&dir, &intruder), artefact(&dir, &victim)).expect("plant");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).expect("chmod");

    let second = WasmHost::new(options()).expect("host starts anyway");
    assert_eq!(second.cache_dir(), None, "an untrusted cache is not used");
    let (_, plugin) = second.load_file(&victim).expect("victim loads");
    assert_eq!(
        second.cache_stats(),
        sluice_wasm::CacheStats {
            hits: 0,
            compiled: 1
        },
        "compiled from the .wasm, not loaded from the cache"
    );
    // And it is the victim's code that runs.
    let exec = build(
        &plugin,
        json!({"name": "static-answer", "static-answer": {"body": "genuine"}}),
        "http://h",
    )
    .expect("static-answer's own init accepts its settings");
    let (_, _, body) = call(&exec, request("GET", "http://h/"), SECOND)
        .await
        .expect("answer");
    assert_eq!(&body[..], b"genuine");
}

/// A caller that races the call's own deadline (as the backend stage does) makes the plugin
/// arm no timer of its own; dropped there, the call still counts as cut (a timeout and an
/// error, its instance discarded) and the next call gets a fresh instance. Given up before
/// its deadline (the client went away), it counts as nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_its_caller_drops_at_the_deadline_counts_as_cut() {
    let plugin = load_as(host(), "fault", "fault-raced");
    let backend = start_backend().await;
    let hang_url = format!("{}/hang", backend.url);
    let exec = build(
        &plugin,
        json!({"name": "fault-raced", "max_instances": 1, "fault-raced": {"hang_url": hang_url}}),
        &backend.url,
    )
    .expect("build");
    let raced = |deadline| CallContext {
        caller_enforces_deadline: true,
        ..CallContext::new(deadline, 1 << 20)
    };
    let hang = || request("GET", &format!("{}/f/hang", backend.url));

    let ctx = raced(Instant::now() + 10 * SECOND);
    let early = tokio::time::timeout(Duration::from_millis(200), exec.execute(hang(), &ctx)).await;
    assert!(
        early.is_err(),
        "the plugin answered a call to a backend that hangs: {early:?}"
    );
    let s = stats(host(), "fault-raced");
    assert_eq!((s.timeouts, s.errors), (0, 0), "{s:?}");

    let deadline = Instant::now() + Duration::from_millis(300);
    let ctx = raced(deadline);
    let cut = tokio::time::timeout_at(deadline, exec.execute(hang(), &ctx)).await;
    assert!(
        cut.is_err(),
        "the plugin answered a call to a backend that hangs: {cut:?}"
    );
    let s = stats(host(), "fault-raced");
    assert_eq!((s.timeouts, s.errors), (1, 1), "{s:?}");
    assert_eq!(s.instances_discarded, 1, "{s:?}");

    let (status, _, body) = call(
        &exec,
        request("GET", &format!("{}/f/fine", backend.url)),
        SECOND,
    )
    .await
    .expect("a healthy call");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["served"], json!(1), "a fresh instance");
}
