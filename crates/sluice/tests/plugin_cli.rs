//! `sluice plugin test | new | build` as a plugin author runs them (spec §1.9, cases 15-17:
//! KrakenD's `test-plugin`, which Sluice turns into `sluice plugin test`).
//!
//! The example components are built once for this binary with `plugins/build.sh` (or taken
//! from `SLUICE_PLUGINS_DIST`). Compiled components are cached in a temp folder
//! (`SLUICE_CACHE_DIR`), never in the user's cache.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

mod support;
use support::{Running, TempFolder};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the example plugins once (`plugins/build.sh`) and returns the folder holding them.
fn dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        if let Some(dir) = std::env::var_os("SLUICE_PLUGINS_DIST").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let plugins = repo().join("plugins");
        let mut cmd = Command::new("bash");
        cmd.arg(plugins.join("build.sh")).current_dir(&plugins);
        // The host's target dir is not meant for the guest build (build.sh defaults to the
        // repository's target/).
        cmd.env_remove("CARGO_TARGET_DIR");
        if let Some(target) = std::env::var_os("SLUICE_GUEST_TARGET_DIR") {
            cmd.env("CARGO_TARGET_DIR", target);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "plugins/build.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        plugins.join("dist")
    })
}

/// A fresh folder for one test (`sluice-plugin-cli-<name>-…`), removed when dropped.
fn tempdir(name: &str) -> TempFolder {
    TempFolder::new(&format!("sluice-plugin-cli-{name}-"))
}

/// `sluice <args>` with the component cache in a temp folder.
fn sluice(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env(
            "SLUICE_CACHE_DIR",
            std::env::temp_dir().join("sluice-plugin-cli-cache"),
        )
        .env_remove("RUST_LOG");
    cmd
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
    fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or_default()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `plugin test -c CONFIG --url URL` passed: `[OK]`, init ran for the config's backend, and the
/// sample GET answered the debug backend's pong.
#[track_caller]
fn assert_sample_answered(out: &Run, url: &str) {
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.lines()[0].starts_with("[OK]"), "{out}");
    assert!(
        out.lines()
            .iter()
            .any(|l| l.contains("init OK for GET /test/{id} -> /__debug/{id}")),
        "{out}"
    );
    assert!(
        out.lines()
            .iter()
            .any(|l| l.trim() == format!(r#"GET {url} -> 200 {{"message":"pong"}}"#)),
        "{out}"
    );
}

fn run(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A minimal HTTP/1.1 backend on 127.0.0.1 (one thread, `Connection: close`): `/__debug/*`
/// answers `{"message":"pong"}`, anything else 404. Records the paths it was asked for, and
/// each request's head (request line and headers).
struct DebugBackend {
    url: String,
    paths: Arc<Mutex<Vec<String>>>,
    heads: Arc<Mutex<Vec<String>>>,
}

fn debug_backend() -> DebugBackend {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let paths = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&paths);
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen_heads = Arc::clone(&heads);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut buf = [0_u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
            let (status, body) = if path.starts_with("/__debug/") {
                ("200 OK", r#"{"message":"pong"}"#)
            } else {
                ("404 Not Found", "404 page not found\n")
            };
            seen.lock().unwrap().push(path);
            seen_heads.lock().unwrap().push(head.into_owned());
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    DebugBackend { url, paths, heads }
}

/// Case 15: a good component -> `[OK]` per file, then `[OK] 1 tested plugin(s) in <d>`, exit 0.
#[test]
fn case_15_plugin_test_accepts_a_component() {
    dist();
    let out =
        run(sluice(&["plugin", "test", "plugins/dist/client-example.wasm"]).current_dir(repo()));

    assert_eq!(out.code, Some(0), "{out}");
    let lines = out.lines();
    assert!(lines[0].starts_with("[OK]"), "{out}");
    assert!(
        lines[0].contains("client-example.wasm") && lines[0].contains("client-example"),
        "{out}"
    );
    assert!(
        out.last_line().starts_with("[OK] 1 tested plugin(s) in"),
        "{out}"
    );
    assert!(!out.stdout.contains("[KO]"), "{out}");
}

/// Every example component in one call.
#[test]
fn plugin_test_accepts_every_example() {
    let files: Vec<PathBuf> = [
        "client-example",
        "fan-out",
        "fault",
        "hmac-signer",
        "static-answer",
        "wasi-passthrough",
        "wasi-lean-passthrough",
    ]
    .iter()
    .map(|name| dist().join(format!("{name}.wasm")))
    .collect();
    let mut cmd = sluice(&["plugin", "test"]);
    cmd.args(&files);

    let out = run(&mut cmd);

    assert_eq!(out.code, Some(0), "{out}");
    let ok_lines = out
        .lines()
        .iter()
        .filter(|l| l.starts_with("[OK] /"))
        .count();
    assert_eq!(ok_lines, 7, "{out}");
    assert!(
        out.last_line().starts_with("[OK] 7 tested plugin(s) in"),
        "{out}"
    );
}

/// Case 16: files that are not components -> `[KO]` with the reason, `[KO] <n> tested
/// plugin(s) in <d>.` and `<m> plugin(s) failed.`, exit 1.
#[test]
fn case_16_plugin_test_rejects_what_is_not_a_component() {
    let dir = tempdir("not-components");
    let garbage = dir.join("garbage.wasm");
    std::fs::write(&garbage, "this is not wasm").unwrap();
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();

    for (file, reason) in [
        (&garbage, "not a WebAssembly file"),
        (&core, "core WebAssembly module, not a component"),
    ] {
        let out = run(sluice(&["plugin", "test"]).arg(file));

        assert_eq!(out.code, Some(1), "{out}");
        let ko = format!("[KO] {}", file.display());
        assert!(
            out.lines()
                .iter()
                .any(|l| l.starts_with(&ko) && l.contains(reason)),
            "{out}"
        );
        let lines = out.lines();
        let n = lines.len();
        assert!(n >= 2, "{out}");
        assert!(
            lines[n - 2].starts_with("[KO] 1 tested plugin(s) in") && lines[n - 2].ends_with('.'),
            "{out}"
        );
        assert_eq!(lines[n - 1], "1 plugin(s) failed.", "{out}");
    }

    // One good and one bad: both reported, one failure counted.
    let out = run(sluice(&["plugin", "test"])
        .arg(dist().join("static-answer.wasm"))
        .arg(&core));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.lines()[0].starts_with("[OK]"), "{out}");
    assert!(out.stdout.contains("[KO] 2 tested plugin(s) in"), "{out}");
    assert_eq!(out.last_line(), "1 plugin(s) failed.", "{out}");
}

/// Case 17: no file -> `At least one plugin is required.`, exit 1; a missing file ->
/// `[KO] Unable to open the plugin <path>.`, counted as failed.
#[test]
fn case_17_plugin_test_argument_errors() {
    let out = run(&mut sluice(&["plugin", "test"]));
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(
        out.stdout.trim(),
        "At least one plugin is required.",
        "{out}"
    );

    let dir = tempdir("missing");
    let missing = dir.join("nope.wasm");
    let out = run(sluice(&["plugin", "test"]).arg(&missing));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.lines()
            .iter()
            .any(|l| *l == format!("[KO] Unable to open the plugin {}.", missing.display())),
        "spec §1.9: the line is exactly `[KO] Unable to open the plugin <path>.`\n{out}"
    );
    assert_eq!(out.last_line(), "1 plugin(s) failed.", "{out}");
}

/// The config the `-c` tests use: client-example behind `/test/{id}` -> `/__debug/{id}`.
fn client_example_config(dir: &Path, backend_url: &str, settings: &str) -> PathBuf {
    let path = dir.join("krakend.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"version": 3, "endpoints": [{{"endpoint": "/test/{{id}}", "backend": [{{
                "host": ["{backend_url}"], "url_pattern": "/__debug/{{id}}",
                "extra_config": {{"plugin/http-client": {{"name": "client-example", "client-example": {settings}}}}}
            }}]}}]}}"#
        ),
    )
    .unwrap();
    path
}

/// `-c CONFIG --url URL`: init runs with the config's settings, then one GET goes through the
/// plugin to a real backend (or is answered by it).
#[test]
fn plugin_test_with_a_config_sends_a_sample_request() {
    let backend = debug_backend();
    let dir = tempdir("sample");
    let config = client_example_config(&dir, &backend.url, r#"{"path": "/__debug/hijack-me"}"#);
    let file = dist().join("client-example.wasm");

    let url = format!("{}/__debug/normal", backend.url);
    let out = run(sluice(&["plugin", "test"])
        .arg(&file)
        .arg("-c")
        .arg(&config)
        .args(["--url", &url]));

    assert_sample_answered(&out, &url);
    assert!(
        out.last_line().starts_with("[OK] 1 tested plugin(s) in"),
        "{out}"
    );
    assert_eq!(*backend.paths.lock().unwrap(), ["/__debug/normal"]);

    // The hijacked path is answered by the plugin: the backend sees nothing more.
    let url = format!("{}/__debug/hijack-me", backend.url);
    let out = run(sluice(&["plugin", "test"])
        .arg(&file)
        .arg("-c")
        .arg(&config)
        .args(["--url", &url]));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.lines()
            .iter()
            .any(|l| l.trim() == format!(r#"GET {url} -> 200 {{"message":"/__debug/hijack-me"}}"#)),
        "{out}"
    );
    assert_eq!(backend.paths.lock().unwrap().len(), 1);
}

/// `-c CONFIG` whose settings the plugin rejects: `[KO]` with the JSON path and the plugin's
/// message, exit 1.
#[test]
fn plugin_test_reports_rejected_settings() {
    let dir = tempdir("rejected");
    let config = client_example_config(&dir, "http://127.0.0.1:19", r#"{"path": 3}"#);

    let out = run(sluice(&["plugin", "test"])
        .arg(dist().join("client-example.wasm"))
        .arg("-c")
        .arg(&config));

    assert_eq!(out.code, Some(1), "{out}");
    let ko = out
        .lines()
        .into_iter()
        .find(|l| l.starts_with("[KO] /"))
        .unwrap_or_else(|| panic!("no [KO] line\n{out}"))
        .to_owned();
    assert!(ko.contains("endpoints[0].backend[0]"), "{out}");
    assert!(ko.contains("non-empty string"), "{out}");
    assert_eq!(out.last_line(), "1 plugin(s) failed.", "{out}");
}

/// `sluice plugin new NAME --dir ROOT/NAME [extra]`, then the scaffold's own `cargo test`
/// (expecting `passed` tests) and `sluice plugin build`: the crate folder and its `.wasm`.
fn scaffold_and_build(
    root: &Path,
    name: &str,
    extra: &[&str],
    passed: usize,
) -> (PathBuf, PathBuf) {
    let crate_dir = root.join(name);
    // Shared between runs so the scaffold's dependencies are compiled once; one scaffold at a
    // time, since each vendors its own `sluice-plugin-sdk` and two builds into one target
    // folder replace each other's artefacts.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let target = repo().join("target/scaffold-test");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    let out = run(sluice(&["plugin", "new", name, "--dir"])
        .arg(&crate_dir)
        .args(extra));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(crate_dir.join("Cargo.toml").is_file(), "{out}");
    assert!(crate_dir.join("src/lib.rs").is_file(), "{out}");

    let out = run(Command::new(&cargo)
        .arg("test")
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target));
    assert_eq!(out.code, Some(0), "cargo test of the scaffold\n{out}");
    assert!(
        out.stdout
            .contains(&format!("test result: ok. {passed} passed")),
        "{out}"
    );

    let out = run(sluice(&["plugin", "build"])
        .arg(&crate_dir)
        .env("CARGO_TARGET_DIR", &target));
    assert_eq!(out.code, Some(0), "sluice plugin build\n{out}");
    let wasm = crate_dir.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "{out}");
    (crate_dir, wasm)
}

/// `sluice plugin new` scaffolds a crate whose own tests pass; `sluice plugin build` turns it
/// into `<name>.wasm`, which `sluice plugin test` accepts.
#[test]
fn plugin_new_build_and_test_round_trip() {
    let root = tempdir("scaffold");
    let (crate_dir, wasm) = scaffold_and_build(&root, "demo", &[], 2);

    // A second `new` into the same place refuses to overwrite it.
    let again = run(sluice(&["plugin", "new", "demo", "--dir"]).arg(&crate_dir));
    assert_eq!(again.code, Some(1), "{again}");

    let out = run(sluice(&["plugin", "test"]).arg(&wasm));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.lines()[0].starts_with("[OK]"), "{out}");
    assert!(out.lines()[0].contains("demo"), "{out}");
    assert!(
        out.last_line().starts_with("[OK] 1 tested plugin(s) in"),
        "{out}"
    );
}

/// `sluice plugin new --hooks` scaffolds a hooks-mode plugin (on_request + on_response) whose
/// own tests pass, that builds, and that `sluice plugin test` runs: init with the config's
/// settings, then a sample GET through both hooks to a real backend.
#[test]
fn plugin_new_hooks_build_and_test_round_trip() {
    let root = tempdir("scaffold-hooks");
    let (crate_dir, wasm) = scaffold_and_build(&root, "hooks-demo", &["--hooks"], 3);
    let lib = std::fs::read_to_string(crate_dir.join("src/lib.rs")).unwrap();
    assert!(
        lib.contains("const HOOKS: Hooks = Hooks::ON_REQUEST.union(Hooks::ON_RESPONSE);"),
        "{lib}"
    );

    let backend = debug_backend();
    let config = root.join("krakend.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"version": 3, "endpoints": [{{"endpoint": "/test/{{id}}", "backend": [{{
                "host": ["{}"], "url_pattern": "/__debug/{{id}}",
                "extra_config": {{"plugin/http-client": {{"name": "hooks-demo",
                    "hooks-demo": {{"header": "X-Hello", "value": "world"}}}}}}
            }}]}}]}}"#,
            backend.url
        ),
    )
    .unwrap();
    let url = format!("{}/__debug/x", backend.url);
    let out = run(sluice(&["plugin", "test"])
        .arg(&wasm)
        .arg("-c")
        .arg(&config)
        .args(["--url", &url]));

    assert_sample_answered(&out, &url);
    assert!(out.lines()[0].contains("hooks-demo"), "{out}");
    assert_eq!(*backend.paths.lock().unwrap(), ["/__debug/x"]);
    // `on_request` changed a copy of the request, which the SDK handed back whole.
    let heads = backend.heads.lock().unwrap();
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("\r\nx-hello: world\r\n"),
        "{heads:?}"
    );
}

/// A config with one backend on `backend_url` naming `name` with `{"header": "X-Hello",
/// "value": "world"}`, the settings the scaffolds ask for.
fn scaffold_config(dir: &Path, name: &str, backend_url: &str) -> PathBuf {
    let config = dir.join("krakend.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"version": 3, "endpoints": [{{"endpoint": "/test/{{id}}", "backend": [{{
                "host": ["{backend_url}"], "url_pattern": "/__debug/{{id}}",
                "extra_config": {{"plugin/http-client": {{"name": "{name}",
                    "{name}": {{"header": "X-Hello", "value": "world"}}}}}}
            }}]}}]}}"#
        ),
    )
    .unwrap();
    config
}

/// `sluice plugin new --lang js` (handle mode, then `--hooks`) scaffolds a JavaScript plugin
/// whose own tests pass (`npm test`), that `sluice plugin build` turns into `<name>.wasm` (npm ci of the pinned componentize-js,
/// then componentize-js) and that `sluice plugin test` runs: init with the config's settings,
/// then a sample GET through the plugin to a real backend; settings it refuses are a `[KO]`.
#[test]
fn plugin_new_lang_js_build_and_test_round_trip() {
    let root = tempdir("scaffold-js");
    for (name, extra, kind, passed) in [
        ("js-demo", &[][..], "handle-mode", 2),
        ("js-hooks-demo", &["--hooks"][..], "hooks-mode", 3),
    ] {
        let dir = root.join(name);
        let out = run(sluice(&["plugin", "new", name, "--lang", "js", "--dir"])
            .arg(&dir)
            .args(extra));
        assert_eq!(out.code, Some(0), "{out}");
        assert!(
            out.stdout
                .contains(&format!("Created {kind} JavaScript plugin {name:?}")),
            "{out}"
        );
        for file in [
            "package.json",
            "package-lock.json",
            "plugin.js",
            "sluice.js",
            "wit/plugin.wit",
        ] {
            assert!(dir.join(file).is_file(), "{file}\n{out}");
        }
        assert!(!dir.join("Cargo.toml").exists());

        let out = run(sluice(&["plugin", "build"]).arg(&dir));
        assert_eq!(out.code, Some(0), "sluice plugin build\n{out}");
        let wasm = dir.join(format!("{name}.wasm"));
        assert!(wasm.is_file(), "{out}");
        assert!(out.stdout.contains("Built "), "{out}");

        // The scaffold's own tests (plain Node, on the packages `plugin build` installed).
        let out = run(Command::new("npm").arg("test").current_dir(&dir));
        assert_eq!(out.code, Some(0), "npm test of the scaffold\n{out}");
        assert!(out.stdout.contains(&format!("# pass {passed}")), "{out}");
        assert!(out.stdout.contains("# fail 0"), "{out}");

        // As it stands: loaded, a Sluice-world component.
        let out = run(sluice(&["plugin", "test"]).arg(&wasm));
        assert_eq!(out.code, Some(0), "{out}");
        assert!(out.lines()[0].starts_with("[OK]"), "{out}");
        assert!(out.lines()[0].contains(name), "{out}");
        assert!(
            out.lines()[0].contains("sluice:plugin/http-client"),
            "{out}"
        );

        // With settings and a sample request through it.
        let backend = debug_backend();
        let config = scaffold_config(&root, name, &backend.url);
        let url = format!("{}/__debug/x", backend.url);
        let out = run(sluice(&["plugin", "test"])
            .arg(&wasm)
            .arg("-c")
            .arg(&config)
            .args(["--url", &url]));
        assert_sample_answered(&out, &url);
        assert_eq!(*backend.paths.lock().unwrap(), ["/__debug/x"]);

        // Settings the scaffold refuses: a [KO] with its message.
        std::fs::write(
            &config,
            std::fs::read_to_string(&config)
                .unwrap()
                .replace(r#""value": "world""#, r#""value": """#),
        )
        .unwrap();
        let out = run(sluice(&["plugin", "test"])
            .arg(&wasm)
            .arg("-c")
            .arg(&config));
        assert_eq!(out.code, Some(1), "{out}");
        assert!(
            out.stdout.contains(&format!(
                "{name}: settings.value must be a non-empty string"
            )),
            "{out}"
        );
    }
}

/// Without node on PATH, `plugin build` of a JavaScript plugin says what to install; an unknown
/// `--lang` is refused.
#[test]
fn plugin_build_js_without_node_says_what_to_install() {
    let root = tempdir("js-no-node");
    let dir = root.join("no-node");
    let out = run(sluice(&["plugin", "new", "no-node", "--lang", "js", "--dir"]).arg(&dir));
    assert_eq!(out.code, Some(0), "{out}");
    let empty = root.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();

    let out = run(sluice(&["plugin", "build"]).arg(&dir).env("PATH", &empty));

    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("node is not installed (not on PATH)")
            && out.stderr.contains("install Node.js 20 or later with npm"),
        "{out}"
    );
    assert!(!dir.join("no-node.wasm").exists());
}

/// `sluice plugin new NAME --lang python [--hooks]`, `sluice plugin build` (componentize-py,
/// installed by the build when missing), then `sluice plugin test` with a config: init with the
/// settings, and a sample GET through the Python plugin to a real backend, which receives the
/// header the plugin adds.
fn python_round_trip(name: &str, extra: &[&str], marker: &str) {
    let root = tempdir(name);
    let dir = root.join(name);
    let out = run(
        sluice(&["plugin", "new", name, "--lang", "python", "--dir"])
            .arg(&dir)
            .args(extra),
    );
    assert_eq!(out.code, Some(0), "{out}");
    for file in [
        "app.py",
        "sluice_plugin.py",
        "pyproject.toml",
        "wit/plugin.wit",
    ] {
        assert!(dir.join(file).is_file(), "no {file}\n{out}");
    }
    let app = std::fs::read_to_string(dir.join("app.py")).unwrap();
    assert!(app.contains(marker), "{app}");
    assert!(!dir.join("Cargo.toml").exists(), "{out}");

    let out = run(sluice(&["plugin", "build"]).arg(&dir));
    assert_eq!(out.code, Some(0), "sluice plugin build\n{out}");
    let wasm = dir.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "{out}");
    assert!(
        out.stdout.contains(&format!("(plugin name {name:?})")),
        "{out}"
    );
    // Nothing half-written is left beside it.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part") || n == "__pycache__")
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let backend = debug_backend();
    let config = scaffold_config(&root, name, &backend.url);
    let url = format!("{}/__debug/x", backend.url);
    let out = run(sluice(&["plugin", "test"])
        .arg(&wasm)
        .arg("-c")
        .arg(&config)
        .args(["--url", &url]));
    assert_sample_answered(&out, &url);
    assert!(out.lines()[0].contains(name), "{out}");
    assert!(
        out.lines()[0].contains("sluice:plugin/http-client"),
        "{out}"
    );
    assert_eq!(*backend.paths.lock().unwrap(), ["/__debug/x"]);
    let heads = backend.heads.lock().unwrap();
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("\r\nx-hello: world\r\n"),
        "{heads:?}"
    );
    drop(heads);

    // A host the backend does not name: refused by the gateway (for `send` in handle mode, for
    // the gateway's own call in hooks mode), a [KO] naming the allow-list, nothing sent.
    let other = debug_backend();
    let url = format!("{}/__debug/y", other.url);
    let out = run(sluice(&["plugin", "test"])
        .arg(&wasm)
        .arg("-c")
        .arg(&config)
        .args(["--url", &url]));
    assert_eq!(out.code, Some(1), "{out}");
    let refused = format!(
        "sample request to {url}: plugin {name}: {} is not in the plugin's allowed_hosts",
        other.url
    );
    assert!(
        out.lines()
            .iter()
            .any(|l| l.starts_with("[KO] ") && l.ends_with(&refused)),
        "{out}"
    );
    assert!(other.paths.lock().unwrap().is_empty());
}

/// The default (handle-mode) Python scaffold: `handle` adds the header and calls `send`.
#[test]
fn plugin_new_python_build_and_test_round_trip() {
    python_round_trip("py-demo", &[], "def handle(self, request):");
}

/// The hooks-mode Python scaffold: `on_request` adds the header, the gateway sends it.
#[test]
fn plugin_new_python_hooks_build_and_test_round_trip() {
    python_round_trip(
        "py-hooks-demo",
        &["--hooks"],
        "HOOKS = sp.Hooks.ON_REQUEST | sp.Hooks.ON_RESPONSE",
    );
}

/// `plugin build` of a Python plugin without Python says what to install; a folder with an
/// `app.py` but no `pyproject.toml` says where the name comes from.
#[test]
fn plugin_build_python_without_python_says_what_to_install() {
    let root = tempdir("py-no-python");
    let dir = root.join("py-nopy");
    let out = run(sluice(&["plugin", "new", "py-nopy", "--lang", "python", "--dir"]).arg(&dir));
    assert_eq!(out.code, Some(0), "{out}");

    let missing = root.join("no-such-python3");
    let out = run(sluice(&["plugin", "build"])
        .arg(&dir)
        .env("PYTHON", &missing));
    assert_eq!(out.code, Some(1), "{out}");
    let expected = format!(
        "{} not found: a Python plugin is built with Python 3 (3.9 or later) and pip; install them (Debian/Ubuntu: apt-get install python3 python3-pip), or set PYTHON to an interpreter",
        missing.display()
    );
    assert_eq!(out.stderr.trim(), expected, "{out}");
    assert!(!dir.join("py-nopy.wasm").exists(), "{out}");

    std::fs::remove_file(dir.join("pyproject.toml")).unwrap();
    let out = run(sluice(&["plugin", "build"]).arg(&dir));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("pyproject.toml") && out.stderr.contains("[project] name"),
        "{out}"
    );

    let out = run(&mut sluice(&["plugin", "new", "py-x", "--lang", "cobol"]));
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains("possible values: rust, python, js"),
        "{out}"
    );
}

/// A config serving client-example from `plugin.folder` = the built examples.
fn folder_config(dir: &Path, port: u16, backend_url: &str, settings: &str) -> PathBuf {
    let path = dir.join("krakend.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"version": 3, "port": {port}, "listen_ip": "127.0.0.1",
                "plugin": {{"folder": "{folder}", "pattern": ".wasm"}},
                "extra_config": {{"router": {{"return_error_msg": true}}}},
                "endpoints": [{{"endpoint": "/test/{{id}}", "backend": [{{
                    "host": ["{backend_url}"], "url_pattern": "/__debug/{{id}}",
                    "extra_config": {{"plugin/http-client": {{"name": "client-example", "client-example": {settings}}}}}
                }}]}}]}}"#,
            folder = dist().display()
        ),
    )
    .unwrap();
    path
}

/// `sluice check` loads `plugin.folder` and builds every plugin backend: good settings pass,
/// rejected ones are reported with the backend's JSON path (spec departure: plugins fail loudly).
#[test]
fn check_loads_the_plugin_folder_and_checks_settings() {
    let dir = tempdir("check");
    let config = folder_config(&dir, 8080, "http://127.0.0.1:19", r#"{"path": "/x"}"#);

    let out = run(sluice(&["check", "-c"]).arg(&config));

    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("Syntax OK!"), "{out}");
    // 6 example components (at least) + 4 compiled-in twins.
    let available: usize = out
        .stdout
        .split(" plugin(s) available")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no plugin count\n{out}"));
    assert!(available >= 10, "{out}");

    let config = folder_config(&dir, 8080, "http://127.0.0.1:19", r#"{"path": ""}"#);
    let out = run(sluice(&["check", "-c"]).arg(&config));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .contains(r#"endpoints[0].backend[0].extra_config["plugin/http-client"]"#),
        "{out}"
    );
    assert!(out.stderr.contains("non-empty string"), "{out}");
}

/// `sluice run` with `plugin.folder`: the component answers through the real server.
#[test]
fn run_serves_a_component_from_the_plugin_folder() {
    let backend = debug_backend();
    let dir = tempdir("run");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = folder_config(
        &dir,
        port,
        &backend.url,
        r#"{"path": "/__debug/hijack-me"}"#,
    );
    let mut child = Running::spawn(
        sluice(&["run", "--log", "warn", "-c"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );

    // Bounded readiness poll (the components may need compiling on a cold cache).
    let started = std::time::Instant::now();
    let ready = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("sluice exited early: {status}");
        }
        if http_get(port, "/__health").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
            break true;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let hijacked = ready.then(|| http_get(port, "/test/hijack-me"));
    let normal = ready.then(|| http_get(port, "/test/normal"));
    let _ = child.kill();
    let _ = child.wait();

    assert!(ready, "sluice did not become ready on port {port}");
    let hijacked = hijacked.unwrap().unwrap();
    assert!(hijacked.starts_with("HTTP/1.1 200"), "{hijacked}");
    assert!(
        hijacked.ends_with(r#"{"message":"/__debug/hijack-me"}"#),
        "{hijacked}"
    );
    let normal = normal.unwrap().unwrap();
    assert!(normal.starts_with("HTTP/1.1 200"), "{normal}");
    assert!(normal.ends_with(r#"{"message":"pong"}"#), "{normal}");
    assert_eq!(*backend.paths.lock().unwrap(), ["/__debug/normal"]);
}

/// `GET path` on the gateway with `Connection: close`; the whole raw response.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// A sample request the backend answers 404 is not an `[OK]`: `[KO]` with the status, exit 1.
#[test]
fn plugin_test_reports_a_non_2xx_sample_answer_as_ko() {
    let backend = debug_backend();
    let dir = tempdir("sample-404");
    let config = client_example_config(&dir, &backend.url, r#"{"path": "/__debug/hijack-me"}"#);
    let url = format!("{}/nowhere", backend.url);

    let out = run(sluice(&["plugin", "test"])
        .arg(dist().join("client-example.wasm"))
        .arg("-c")
        .arg(&config)
        .args(["--url", &url]));

    assert_eq!(out.code, Some(1), "{out}");
    assert!(!out.stdout.contains("[OK]"), "{out}");
    let ko = out
        .lines()
        .into_iter()
        .find(|l| l.starts_with("[KO] /"))
        .unwrap_or_else(|| panic!("no [KO] line\n{out}"))
        .to_owned();
    assert!(ko.contains("404 Not Found") && ko.contains(&url), "{out}");
    assert!(
        out.lines()
            .iter()
            .any(|l| l.trim().starts_with(&format!("GET {url} -> 404"))),
        "{out}"
    );
    assert_eq!(out.last_line(), "1 plugin(s) failed.", "{out}");
    assert_eq!(*backend.paths.lock().unwrap(), ["/nowhere"]);
}

/// Without `-c` (and `--url`) nothing runs `init`: the `[OK]` line says so and how to run it.
#[test]
fn plugin_test_without_a_config_says_init_was_not_run() {
    let out = run(sluice(&["plugin", "test"]).arg(dist().join("client-example.wasm")));

    assert_eq!(out.code, Some(0), "{out}");
    let first = out.lines()[0];
    assert!(first.starts_with("[OK] /"), "{out}");
    assert!(
        first.contains("loaded; init not run: pass -c CONFIG with a backend naming it"),
        "{out}"
    );

    // A config that does not name it: also not run, and the line says why.
    let dir = tempdir("unnamed");
    let config = dir.join("krakend.json");
    std::fs::write(&config, r#"{"version": 3, "endpoints": []}"#).unwrap();
    let out = run(sluice(&["plugin", "test"])
        .arg(dist().join("client-example.wasm"))
        .arg("-c")
        .arg(&config));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.lines()[0].contains("init not run: no backend of")
            && out.lines()[0].contains(r#"names "client-example""#),
        "{out}"
    );
}

/// A file that cannot be opened: KrakenD's line, then the path as given and the OS's reason.
#[test]
fn plugin_test_says_why_a_file_cannot_be_opened() {
    let dir = tempdir("unopenable");
    std::fs::create_dir(dir.join("folder.wasm")).unwrap();

    let out = run(sluice(&["plugin", "test", "nope.wasm", "folder.wasm"]).current_dir(&dir));

    assert_eq!(out.code, Some(1), "{out}");
    let lines = out.lines();
    assert!(
        lines.contains(&"[KO] Unable to open the plugin nope.wasm."),
        "{out}"
    );
    assert!(
        lines.contains(&"     nope.wasm: No such file or directory (os error 2)"),
        "{out}"
    );
    assert!(
        lines.contains(&"     folder.wasm: not a regular file"),
        "{out}"
    );
    assert_eq!(out.last_line(), "2 plugin(s) failed.", "{out}");
}

/// `plugin build` where there is no Cargo.toml says so, and where to run it.
#[test]
fn plugin_build_without_a_cargo_toml_says_so() {
    let dir = tempdir("no-manifest");

    let out = run(sluice(&["plugin", "build"]).arg(&dir));

    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(
        out.stderr.trim(),
        format!(
            "no Cargo.toml (Rust), package.json (JavaScript), pyproject.toml or app.py (Python) in {}: run it in a plugin folder made by `sluice plugin new`",
            dir.display()
        ),
        "{out}"
    );
}

/// A crate that does not compile: cargo's own error is shown, and no guess about the target
/// (installed here).
#[test]
fn plugin_build_shows_cargos_error_not_a_target_guess() {
    let dir = tempdir("broken");
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::create_dir(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        "pub fn f() -> u32 { \"not a number\" }\n",
    )
    .unwrap();

    let out = run(sluice(&["plugin", "build"])
        .arg(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target")));

    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("mismatched types"), "{out}");
    assert!(out.stderr.contains("see cargo's errors above"), "{out}");
    assert!(!out.stderr.contains("rustup target add"), "{out}");
    assert!(!out.stderr.contains("is the target installed"), "{out}");
}

/// When rustup says wasm32-wasip2 is not installed (a stand-in `rustup` on PATH), the failure
/// says so and how to add it.
#[cfg(unix)]
#[test]
fn plugin_build_suggests_the_target_only_when_rustup_lacks_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("no-target");
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let rustup = bin.join("rustup");
    std::fs::write(&rustup, "#!/bin/sh\necho x86_64-unknown-linux-gnu\n").unwrap();
    std::fs::set_permissions(&rustup, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A manifest cargo rejects, so the build fails without compiling anything.
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"broken\"\n[workspace]\n",
    )
    .unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();

    let out = run(sluice(&["plugin", "build"]).arg(&dir).env("PATH", path));

    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .contains("the wasm32-wasip2 target is not installed: rustup target add wasm32-wasip2"),
        "{out}"
    );
}

/// Integrity pins: `plugin hash` prints `plugin.sha256`; a pinned file that matches loads, one
/// that differs or is missing stops `check` (and `run`) with the file and the pin named.
#[test]
fn pinned_plugins_load_only_as_pinned() {
    let dir = tempdir("pins");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        dist().join("static-answer.wasm"),
        plugins.join("static-answer.wasm"),
    )
    .unwrap();

    let out = run(sluice(&["plugin", "hash"]).arg(plugins.join("static-answer.wasm")));
    assert_eq!(out.code, Some(0), "{out}");
    let printed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let pin = printed["sha256"]["static-answer"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(pin.len(), 64, "{out}");

    let config = |pins: serde_json::Value| {
        let path = dir.join("krakend.json");
        let text = serde_json::json!({
            "version": 3,
            "plugin": {"folder": "plugins", "pattern": ".wasm", "sha256": pins},
            "endpoints": [{"endpoint": "/a", "backend": [{
                "host": ["http://127.0.0.1:10"], "url_pattern": "/a",
                "extra_config": {"plugin/http-client": {"name": "static-answer"}}}]}]
        });
        std::fs::write(&path, text.to_string()).unwrap();
        path
    };
    let check = |path: PathBuf| run(sluice(&["check", "-c"]).arg(path));

    let out = check(config(serde_json::json!({"static-answer": pin})));
    assert_eq!(out.code, Some(0), "{out}");

    // One digit off: the file is not the one pinned.
    let mut other = pin.clone();
    let flipped = if other.starts_with('0') { "1" } else { "0" };
    other.replace_range(0..1, flipped);
    let out = check(config(serde_json::json!({"static-answer": other})));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("static-answer.wasm")
            && out.stderr.contains(&format!("pins {other}"))
            && out.stderr.contains(&pin),
        "{out}"
    );

    // A pinned plugin with no file; a pin that is not a SHA-256 (a config error, found first).
    let out = check(config(
        serde_json::json!({"static-answer": pin, "ghost": pin}),
    ));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("no file named ghost.wasm"), "{out}");
    let out = check(config(
        serde_json::json!({"static-answer": pin, "short": "abc"}),
    ));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("plugin.sha256.short") && out.stderr.contains("\"abc\""),
        "{out}"
    );
}

/// `GET path` on `127.0.0.1:port`: the body, if it answered 200.
fn get_ok(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// A plugin's new file takes effect on a reload, without a restart: the gateway rebuilds the
/// registry from the plugin folder (compiling the new component off the request path).
#[test]
fn a_changed_plugin_file_is_swapped_in_by_a_reload() {
    let dir = tempdir("swap");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(dist().join("static-answer.wasm"), plugins.join("p.wasm")).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("krakend.json");
    let text = serde_json::json!({
        "version": 3, "port": port, "listen_ip": "127.0.0.1", "debug_endpoint": true,
        "plugin": {"folder": "plugins", "pattern": ".wasm"},
        "endpoints": [{"endpoint": "/a", "backend": [{
            "host": [format!("http://127.0.0.1:{port}")], "url_pattern": "/__debug/a",
            "extra_config": {"plugin/http-client": {"name": "p", "p": {"body": {"v": 1}}}}}]}]
    });
    std::fs::write(&config, text.to_string()).unwrap();
    let mut child = Running::spawn(
        sluice(&["run", "-c"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let answer = |child: &mut std::process::Child, want: &str| {
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(30) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("sluice exited: {status}");
            }
            if get_ok(port, "/a").is_some_and(|b| b == want) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("/a never answered {want}");
    };
    answer(&mut child, r#"{"v":1}"#);

    // The same name, another component: a pass-through to the backend (the debug endpoint).
    std::fs::copy(dist().join("wasi-passthrough.wasm"), plugins.join("p.wasm")).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    answer(&mut child, r#"{"message":"pong"}"#);
    let _ = child.kill();
    let _ = child.wait();
}
