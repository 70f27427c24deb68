//! Plugin chains (`"name": [..]` in `plugin/http-client`), end to end through the real gateway:
//! the example components of `plugins/` (`header-rewrite`, `hmac-signer`, `static-answer`,
//! `fault`, `client-example`) built from source, compiled-in plugins beside them, and a real
//! backend on 127.0.0.1.
//!
//! `tag-a`/`tag-b` are a compiled-in hooks-mode plugin defined here: `on_request` appends its
//! tag to `x-trail` and records whether `x-rw` (set by `header-rewrite`) was already there;
//! `on_response` does the same with `x-back-trail` and `x-rw-back`. So the headers the backend
//! and the client see tell the order each plugin ran in.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method};
use serde_json::{Value, json};
use sluice_integration::backend::{Backend, Received, Reply};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::plugins::registry;
use sluice_integration::*;
use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ClientPlugin, ExecError, Executor,
    Flow, Hooks, OutboundClient, PluginContext, Registry, SharedExecutor,
};

use super::plugins::{HMAC_SECRET, verify_signature};

// ---------------------------------------------------------------------------------------------
// A compiled-in hooks-mode plugin: `{"tag": "a"}`.

#[derive(Debug)]
struct TagPlugin;

impl ClientPlugin for TagPlugin {
    fn build(&self, ctx: PluginContext<'_>) -> Result<SharedExecutor, String> {
        let tag = ctx
            .settings
            .and_then(|s| s.get("tag"))
            .and_then(Value::as_str)
            .ok_or("settings need a \"tag\" string")?;
        Ok(Arc::new(Tag {
            tag: tag.to_owned(),
            client: ctx.client,
        }))
    }
}

#[derive(Debug)]
struct Tag {
    tag: String,
    client: Arc<OutboundClient>,
}

/// Appends `tag` to the comma-separated `trail` header and records in `x-<tag>-<saw>` whether
/// `marker` was already set.
fn mark(headers: &mut HeaderMap, trail: &'static str, tag: &str, marker: &str, saw: &str) {
    let value = match headers.get(trail).and_then(|v| v.to_str().ok()) {
        Some(before) => format!("{before},{tag}"),
        None => tag.to_owned(),
    };
    headers.insert(trail, HeaderValue::from_str(&value).unwrap());
    let seen = if headers.contains_key(marker) {
        "yes"
    } else {
        "no"
    };
    headers.insert(
        http::HeaderName::from_bytes(format!("x-{tag}-{saw}").as_bytes()).unwrap(),
        HeaderValue::from_static(seen),
    );
}

impl Tag {
    fn request(&self, mut request: BackendRequest) -> BackendRequest {
        mark(&mut request.headers, "x-trail", &self.tag, "x-rw", "saw-rw");
        request
    }

    fn response(&self, mut response: BackendResponse) -> BackendResponse {
        mark(
            response.headers_mut(),
            "x-back-trail",
            &self.tag,
            "x-rw-back",
            "back-saw-rw",
        );
        response
    }
}

impl Executor for Tag {
    /// Last in a chain (or alone): its hooks around its own client.
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(async move {
            let response = self.client.execute(self.request(request), ctx).await?;
            Ok(self.response(response))
        })
    }

    fn hooks(&self) -> Option<&dyn Hooks> {
        Some(self)
    }
}

impl Hooks for Tag {
    fn on_request<'a>(
        &'a self,
        request: BackendRequest,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Flow, ExecError>> {
        Box::pin(async move { Ok(Flow::Request(self.request(request))) })
    }

    fn on_response<'a>(
        &'a self,
        response: BackendResponse,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(async move { Ok(self.response(response)) })
    }
}

/// The example plugins plus `tag-a` and `tag-b`.
fn chain_registry() -> Registry {
    let mut plugins = registry();
    for name in ["tag-a", "tag-b"] {
        plugins.register(name, Arc::new(TagPlugin)).unwrap();
    }
    plugins
}

async fn gateway(config: Value) -> Gateway {
    start_gateway_with_registry(config, chain_registry()).await
}

async fn start_error(config: Value) -> String {
    match try_start_gateway(config, chain_registry()).await {
        Ok(gw) => panic!("the gateway started on {} but must not", gw.addr),
        Err(StartFailure::Start(e)) => e.to_string(),
        Err(e @ StartFailure::Config(_)) => panic!("expected a start-up error, got {e}"),
    }
}

/// The backend block: `name` as given, and the settings of each plugin it names (from
/// `settings`) under its name; `no-op`, so the client sees the answer's headers.
fn chain_backend(host: &str, url_pattern: &str, names: Value, settings: Value) -> Value {
    let mut block = json!({ "name": names.clone() });
    for name in names
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Some(value) = settings.get(name) {
            block[name] = value.clone();
        }
    }
    backend(
        host,
        url_pattern,
        json!({"encoding": "no-op", "extra_config": {"plugin/http-client": block}}),
    )
}

fn no_op_endpoint(path: &str, backend: Value) -> Value {
    endpoint(
        path,
        json!([backend]),
        json!({"output_encoding": "no-op", "input_headers": ["X-Drop"]}),
    )
}

/// The settings every test uses: tags, and `header-rewrite` setting `x-rw` on the way out,
/// `x-rw-back` on the way back, and removing `X-Drop` and the origin's `x-origin-secret`.
fn settings() -> Value {
    json!({
        "tag-a": {"tag": "a"},
        "tag-b": {"tag": "b"},
        "header-rewrite": {
            "request": {"set": {"x-rw": "1"}, "remove": ["x-drop"]},
            "response": {"set": {"x-rw-back": "1"}, "remove": ["x-origin-secret"]}
        },
        "hmac-signer": {"secret": HMAC_SECRET, "key_id": "gw-chain"},
        "native/hmac-signer": {"secret": HMAC_SECRET, "key_id": "gw-native"},
        "static-answer": {"status": 200, "headers": {"x-static": "1"}, "body": {"static": true}},
        "fault": {}
    })
}

/// A backend on 127.0.0.1: `/signed/*` checks the `hmac-signer` signature; every answer is
/// `{"verified": ..}` with an `x-origin-secret` header the chain is meant to remove.
async fn origin() -> Backend {
    Backend::start(|req: Received| async move {
        let verified = verify_signature(&req);
        Reply::json(
            200,
            &json!({"verified": verified.is_ok(), "reason": verified.err()}),
        )
        .header("x-origin-secret", "s")
    })
    .await
}

// ---------------------------------------------------------------------------------------------

/// `on_request` in list order (tag-a, header-rewrite, tag-b, then hmac-signer's own hook around
/// the client), `on_response` in reverse order (tag-b, header-rewrite, tag-a): a compiled-in
/// plugin and components mixed in one chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_runs_requests_in_order_and_answers_in_reverse() {
    let real = origin().await;
    let gw = gateway(service(json!([no_op_endpoint(
        "/chain/{id}",
        chain_backend(
            &real.url(),
            "/signed/{id}",
            json!(["tag-a", "header-rewrite", "tag-b", "hmac-signer"]),
            settings()
        )
    )])))
    .await;

    let resp = request(Method::GET, &gw.url("/chain/7"), &[("X-Drop", "x")], "").await;

    assert_status(&resp, 200);
    assert_eq!(
        resp.json(),
        json!({"verified": true, "reason": null}),
        "hmac-signer signed what the backend got"
    );
    let got = real.last();
    assert_eq!(got.path, "/signed/7");
    assert_eq!(got.header("x-trail"), Some("a,b"), "tag-a then tag-b");
    assert_eq!(
        got.header("x-a-saw-rw"),
        Some("no"),
        "tag-a ran before header-rewrite"
    );
    assert_eq!(
        got.header("x-b-saw-rw"),
        Some("yes"),
        "tag-b ran after header-rewrite"
    );
    assert_eq!(got.header("x-rw"), Some("1"));
    assert_eq!(got.header("x-drop"), None, "header-rewrite removed it");
    assert_eq!(got.header("x-key-id"), Some("gw-chain"));
    assert_eq!(real.count(), 1);

    assert_eq!(resp.header("x-back-trail"), Some("b,a"), "tag-b then tag-a");
    assert_eq!(
        resp.header("x-b-back-saw-rw"),
        Some("no"),
        "tag-b ran before header-rewrite"
    );
    assert_eq!(
        resp.header("x-a-back-saw-rw"),
        Some("yes"),
        "tag-a ran after header-rewrite"
    );
    assert_eq!(resp.header("x-rw-back"), Some("1"));
    assert_eq!(
        resp.header("x-origin-secret"),
        None,
        "header-rewrite removed it"
    );
}

/// A 0.3 `handle` last in a chain, on the request the gateway holds: the answer it `forward()`s
/// and passes on, and the one the gateway gets for its answer `forward`, reach the hooks
/// before it with every header (the fields a plugin backend leaves unparsed are put in the map
/// for a chain, which reads them all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_ends_with_a_handle_on_the_held_request() {
    let real = origin().await;
    let with = |edits: Value| {
        let mut settings = settings();
        settings["message-edits"] = edits;
        settings
    };
    let names = json!(["header-rewrite", "message-edits"]);
    let gw = gateway(service(json!([
        no_op_endpoint(
            "/held",
            chain_backend(
                &real.url(),
                "/plain",
                names.clone(),
                with(json!({"handle": true, "response": ["echo=x-origin-secret"]}))
            )
        ),
        no_op_endpoint(
            "/tail",
            chain_backend(
                &real.url(),
                "/plain",
                names,
                with(json!({"handle": true, "request": ["set=x-tail:1", "pass"]}))
            )
        ),
    ])))
    .await;

    for path in ["/held", "/tail"] {
        let resp = get(&gw.url(path)).await;
        assert_status(&resp, 200);
        assert_eq!(resp.header("x-rw-back"), Some("1"), "{path}");
        assert_eq!(
            resp.header("x-origin-secret"),
            None,
            "{path}: header-rewrite removed it"
        );
        assert_eq!(real.last().header("x-rw"), Some("1"), "{path}");
    }
    assert_eq!(real.last().header("x-tail"), Some("1"));
    let resp = get(&gw.url("/held")).await;
    assert_eq!(
        resp.header("x-echo"),
        Some("s"),
        "message-edits read the forwarded answer's header"
    );
}

/// The last plugin may be in handle mode, a compiled-in one after components: `native/hmac-signer`
/// signs what `header-rewrite` and `tag-a` changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_ends_with_a_compiled_in_handle_mode_plugin() {
    let real = origin().await;
    let gw = gateway(service(json!([no_op_endpoint(
        "/native/{id}",
        chain_backend(
            &real.url(),
            "/signed/{id}",
            json!(["header-rewrite", "tag-a", "native/hmac-signer"]),
            settings()
        )
    )])))
    .await;

    let resp = request(Method::GET, &gw.url("/native/8"), &[("X-Drop", "x")], "").await;

    assert_status(&resp, 200);
    assert_eq!(resp.json(), json!({"verified": true, "reason": null}));
    let got = real.last();
    assert_eq!(got.header("x-key-id"), Some("gw-native"));
    assert_eq!(got.header("x-rw"), Some("1"));
    assert_eq!(got.header("x-a-saw-rw"), Some("yes"));
    assert_eq!(got.header("x-drop"), None);
    assert_eq!(resp.header("x-back-trail"), Some("a"));
    assert_eq!(
        resp.header("x-a-back-saw-rw"),
        Some("no"),
        "tag-a answers first"
    );
    assert_eq!(resp.header("x-rw-back"), Some("1"));
    assert_eq!(resp.header("x-origin-secret"), None);
}

/// Compiled-in plugins offering hooks stand before the last one too: `native/hmac-signer` signs,
/// then `tag-a` and `header-rewrite` (hooks around the client) run; `native/static-answer`
/// short-circuits a chain ending in a handle-mode component.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_in_hooks_stand_before_the_last_plugin() {
    let real = origin().await;
    let mut settings = settings();
    settings["native/static-answer"] = json!({"body": {"native": true}});
    settings["client-example"] = json!({"path": "/never"});
    let gw = gateway(service(json!([
        no_op_endpoint(
            "/signed/{id}",
            chain_backend(
                &real.url(),
                "/signed/{id}",
                json!(["native/hmac-signer", "tag-a", "header-rewrite"]),
                settings.clone()
            )
        ),
        no_op_endpoint(
            "/native-static",
            chain_backend(
                &real.url(),
                "/signed/static",
                json!(["tag-a", "native/static-answer", "client-example"]),
                settings
            )
        )
    ])))
    .await;

    let resp = get(&gw.url("/signed/9")).await;
    assert_status(&resp, 200);
    assert_eq!(resp.json(), json!({"verified": true, "reason": null}));
    let got = real.last();
    assert_eq!(got.header("x-key-id"), Some("gw-native"));
    assert_eq!(
        got.header("x-a-saw-rw"),
        Some("no"),
        "tag-a before header-rewrite"
    );
    assert_eq!(got.header("x-rw"), Some("1"));
    assert_eq!(
        resp.header("x-a-back-saw-rw"),
        Some("yes"),
        "header-rewrite answers first"
    );
    assert_eq!(real.count(), 1);

    let resp = get(&gw.url("/native-static")).await;
    assert_status(&resp, 200);
    assert_eq!(resp.json(), json!({"native": true}));
    assert_eq!(resp.header("x-back-trail"), Some("a"));
    assert_eq!(
        real.count(),
        1,
        "neither client-example nor the backend was called"
    );
}

/// `static-answer` answers in its `on_request`: tag-b and the backend are never called, and the
/// plugins before it still see the answer on its way back (innermost first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_request_answer_short_circuits_the_rest_of_the_chain() {
    let real = origin().await;
    let gw = gateway(service(json!([no_op_endpoint(
        "/short",
        chain_backend(
            &real.url(),
            "/signed/short",
            json!(["tag-a", "header-rewrite", "static-answer", "tag-b"]),
            settings()
        )
    )])))
    .await;

    for _ in 0..2 {
        let resp = get(&gw.url("/short")).await;
        assert_status(&resp, 200);
        assert_eq!(resp.json(), json!({"static": true}));
        assert_eq!(resp.header("x-static"), Some("1"));
        assert_eq!(
            resp.header("x-back-trail"),
            Some("a"),
            "tag-b never ran; tag-a saw the answer"
        );
        assert_eq!(resp.header("x-b-back-saw-rw"), None);
        assert_eq!(
            resp.header("x-rw-back"),
            Some("1"),
            "header-rewrite saw it too"
        );
        assert_eq!(
            resp.header("x-a-back-saw-rw"),
            Some("yes"),
            "after header-rewrite"
        );
    }
    assert_eq!(real.count(), 0, "the backend was not called");
}

/// A faulty plugin fails only its request, and the error names it: `fault` trapping at the end
/// of the chain, `header-rewrite` producing an invalid header in the middle. The next request
/// through the same chain is fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_plugin_in_a_chain_fails_only_that_request_and_is_named() {
    let real = origin().await;
    let mut config = settings();
    config["header-rewrite"] = json!({"request": {"set": {"x-rw": "1"}}});
    let mut bad = settings();
    bad["header-rewrite"] = json!({"request": {"set": {"bad header": "1"}}});
    let gw = gateway(service(json!([
        no_op_endpoint(
            "/fault/{what}",
            chain_backend(
                &real.url(),
                "/f/{what}",
                json!(["tag-a", "header-rewrite", "fault"]),
                config
            )
        ),
        no_op_endpoint(
            "/bad",
            chain_backend(
                &real.url(),
                "/signed/bad",
                json!(["tag-a", "header-rewrite", "tag-b"]),
                bad
            )
        )
    ])))
    .await;

    let resp = get(&gw.url("/fault/trap")).await;
    assert_status(&resp, 500);
    assert!(
        resp.text().contains("plugin fault") && resp.text().contains("trap, as asked"),
        "names the plugin: {:?}",
        resp.text()
    );
    assert_eq!(
        resp.header("x-back-trail"),
        None,
        "no on_response on an error"
    );

    let resp = get(&gw.url("/fault/fine")).await;
    assert_status(&resp, 200);
    let body = resp.json();
    assert_eq!(body["ok"], json!(true), "{body}");
    assert_eq!(body["path"], json!("/f/fine"), "{body}");
    assert_eq!(resp.header("x-back-trail"), Some("a"));

    let resp = get(&gw.url("/bad")).await;
    assert_status(&resp, 500);
    assert!(
        resp.text().contains("plugin header-rewrite") && resp.text().contains("bad header"),
        "names the plugin: {:?}",
        resp.text()
    );
    assert_eq!(real.count(), 0, "neither chain reached the backend");
}

/// Start-up refuses a handle-mode plugin before the last one, and a name no plugin has, each
/// with the file and the JSON path of the item in `name`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_start_up_errors_name_the_item() {
    let mut settings = settings();
    settings["client-example"] = json!({"path": "/x"});
    let config = service(json!([
        no_op_endpoint(
            "/handle-first",
            chain_backend(
                NOWHERE,
                "/x",
                json!(["header-rewrite", "client-example", "hmac-signer"]),
                settings.clone()
            )
        ),
        no_op_endpoint(
            "/unknown",
            chain_backend(
                NOWHERE,
                "/x",
                json!(["header-rewrite", "nope"]),
                settings.clone()
            )
        )
    ]));
    parse_config(&config).expect("the config itself is valid");

    let error = start_error(config).await;

    assert!(error.contains("test.json"), "{error}");
    assert!(
        error.contains(
            r#"endpoints[0].backend[0].extra_config["plugin/http-client"].name[1]: plugin "client-example" answers the call itself (handle mode)"#
        ),
        "{error}"
    );
    assert!(
        error.contains(
            r#"endpoints[1].backend[0].extra_config["plugin/http-client"].name[1]: no client plugin is named "nope""#
        ),
        "{error}"
    );
    assert!(
        !error.contains("name[0]"),
        "header-rewrite is fine: {error}"
    );

    // A limit key no plugin of the chain reads is refused; one that some plugin reads is not.
    let mut with_key = chain_backend(
        NOWHERE,
        "/x",
        json!(["tag-a", "native/static-answer"]),
        settings,
    );
    with_key["extra_config"]["plugin/http-client"]["max_instances"] = json!(2);
    let error = start_error(service(json!([no_op_endpoint("/k", with_key)]))).await;
    assert!(
        error.contains(
            r#"extra_config["plugin/http-client"].max_instances: not a key any plugin of the chain reads"#
        ),
        "{error}"
    );
}

/// Each plugin has its own limits under `limits.<name>`, overriding the shared keys for it
/// only: an allow-list that leaves out the backend refuses the request that plugin passes on
/// (before the next plugin or the backend sees it) and names it; a `memory_limit` too small
/// for one component stops start-up naming that one; a key the plugin does not read is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_plugin_has_its_own_limits() {
    let real = origin().await;
    let elsewhere = ["http://127.0.0.1:1"];
    let with_limits = |names: Value, limits: Value| {
        let mut b = chain_backend(&real.url(), "/signed/1", names, settings());
        b["extra_config"]["plugin/http-client"]["limits"] = limits;
        b
    };
    let gw = gateway(service(json!([
        no_op_endpoint(
            "/first-refused",
            with_limits(
                json!(["header-rewrite", "tag-b", "hmac-signer"]),
                json!({"header-rewrite": {"allowed_hosts": elsewhere}})
            )
        ),
        no_op_endpoint(
            "/last-refused",
            with_limits(
                json!(["header-rewrite", "hmac-signer"]),
                json!({"hmac-signer": {"allowed_hosts": elsewhere, "timeout": "1s"}})
            )
        ),
        no_op_endpoint(
            "/fine",
            with_limits(
                json!(["header-rewrite", "hmac-signer"]),
                json!({"hmac-signer": {"allowed_hosts": [real.url()], "max_instances": 1}})
            )
        )
    ])))
    .await;

    let resp = get(&gw.url("/first-refused")).await;
    assert_status(&resp, 500);
    assert!(
        resp.text().contains("plugin header-rewrite") && resp.text().contains("allowed_hosts"),
        "{:?}",
        resp.text()
    );
    let resp = get(&gw.url("/last-refused")).await;
    assert_status(&resp, 500);
    assert!(
        resp.text().contains("plugin hmac-signer") && resp.text().contains("allowed_hosts"),
        "{:?}",
        resp.text()
    );
    assert_eq!(real.count(), 0, "nothing reached the backend");
    let resp = get(&gw.url("/fine")).await;
    assert_status(&resp, 200);
    assert_eq!(resp.json(), json!({"verified": true, "reason": null}));
    assert_eq!(real.count(), 1);

    let error = start_error(service(json!([
        no_op_endpoint(
            "/small",
            with_limits(
                json!(["header-rewrite", "hmac-signer"]),
                json!({"header-rewrite": {"memory_limit": 1024}})
            )
        ),
        no_op_endpoint(
            "/native",
            with_limits(
                json!(["tag-a", "hmac-signer"]),
                json!({"tag-a": {"timeout": "1s"}})
            )
        )
    ])))
    .await;
    assert!(
        error.contains(
            r#"endpoints[0].backend[0].extra_config["plugin/http-client"]: plugin "header-rewrite""#
        ),
        "{error}"
    );
    assert!(!error.contains(r#"plugin "hmac-signer""#), "{error}");
    assert!(
        error.contains(
            r#"endpoints[1].backend[0].extra_config["plugin/http-client"].limits["tag-a"].timeout: not a limit plugin "tag-a" reads"#
        ),
        "{error}"
    );
}

/// Config errors: an empty list, a duplicate, a non-string item, each naming its path, at
/// parse time (so `sluice check` reports them too) and at start-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_config_errors_name_the_path() {
    let config = service(json!([
        no_op_endpoint(
            "/empty",
            chain_backend(NOWHERE, "/x", json!([]), settings())
        ),
        no_op_endpoint(
            "/dup",
            chain_backend(
                NOWHERE,
                "/x",
                json!(["hmac-signer", "tag-a", "hmac-signer"]),
                settings()
            )
        ),
        no_op_endpoint(
            "/number",
            chain_backend(NOWHERE, "/x", json!(["tag-a", 7]), settings())
        )
    ]));

    let error = parse_config(&config).expect_err("rejected").to_string();

    let p = r#"extra_config["plugin/http-client"].name"#;
    for expected in [
        format!("test.json: endpoints[0].backend[0].{p}: an empty list names no plugin"),
        format!(
            "test.json: endpoints[1].backend[0].{p}[2]: \"hmac-signer\" is already endpoints[1].backend[0].{p}[0]"
        ),
        format!(
            "test.json: endpoints[2].backend[0].{p}[1]: expected a plugin name (a non-empty string), found"
        ),
    ] {
        assert!(error.contains(&expected), "{expected}\nin\n{error}");
    }
    let failure = try_start_gateway(config, chain_registry()).await.err();
    assert!(
        matches!(failure, Some(StartFailure::Config(_))),
        "{failure:?}"
    );
}

/// A list of one is the plain name: the same plugin, the same settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_of_one_is_the_plain_name() {
    let real = origin().await;
    let gw = gateway(service(json!([no_op_endpoint(
        "/one/{id}",
        chain_backend(
            &real.url(),
            "/signed/{id}",
            json!(["hmac-signer"]),
            json!({"hmac-signer": {"secret": HMAC_SECRET, "key_id": "one"}})
        )
    )])))
    .await;

    let resp = get(&gw.url("/one/1")).await;

    assert_status(&resp, 200);
    assert_eq!(resp.json(), json!({"verified": true, "reason": null}));
    assert_eq!(real.last().header("x-key-id"), Some("one"));
}

/// Nothing listens there.
const NOWHERE: &str = "http://127.0.0.1:19";
