//! The `sluice` command as a user runs it: `--version`, `check`, and `run` with a graceful
//! drain on SIGTERM.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("krakend.json");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn version_names_the_crate_version() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim(), format!("sluice {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn check_accepts_the_bundled_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/krakend.json");
    let out = Command::new(BIN)
        .args(["check", "-c", example])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Syntax OK!"), "{stdout}");
    assert!(stdout.contains("6 endpoint(s)"), "{stdout}");
}

#[test]
fn check_lists_every_problem_and_exits_1() {
    let path = write_config(
        "bad",
        r#"{"version": 3, "endpoints": [
            {"endpoint": "/a", "backend": [{"host": ["http://x:8080"], "url_pattern": "/a", "encoding": "jsn"}]},
            {"endpoint": "/b", "backend": []},
            {"endpoint": "/c", "backend": [{"host": ["http://x:8080"], "url_pattern": "/c",
              "extra_config": {"plugin/http-client": {"name": "typo"}}}]}
        ]}"#,
    );
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("endpoints[0].backend[0].encoding"),
        "{stderr}"
    );
    assert!(stderr.contains("endpoints[1]"), "{stderr}");
    // A valid config with an unknown plugin: reported by the pipeline build.
    let path = write_config(
        "typo",
        r#"{"version": 3, "endpoints": [
            {"endpoint": "/c", "backend": [{"host": ["http://x:8080"], "url_pattern": "/c",
              "extra_config": {"plugin/http-client": {"name": "typo"}}}]}
        ]}"#,
    );
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"endpoints[0].backend[0].extra_config["plugin/http-client"].name"#),
        "{stderr}"
    );
    assert!(
        stderr.contains("no client plugin is named \"typo\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("native/static-answer"),
        "lists what is available: {stderr}"
    );
}

#[test]
fn run_refuses_a_config_with_errors() {
    let path = write_config("refuse", r#"{"version": 2, "endpoints": []}"#);
    let out = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported version: 2 (want: 3)"));
}

/// A backend that answers `{"slow":true}` after 300 ms, on its own thread.
fn slow_backend() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                std::thread::sleep(Duration::from_millis(300));
                let body = r#"{"slow":true}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// Starts `command` with its output discarded, ready on `port`.
fn start_quiet(command: &mut Command, port: u16) -> Child {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&mut child, port);
    child
}

/// `sluice run --log info` on `path`, its output kept for the test to read, ready on `port`.
fn run_logged(path: &std::path::Path, port: u16) -> Child {
    let mut child = Command::new(BIN)
        .args(["run", "--log", "info", "-c"])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut child, port);
    child
}

/// Sends SIGTERM, as an orchestrator stopping the gateway would.
fn terminate(child: &Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

fn wait_ready(child: &mut Child, port: u16) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("sluice exited early: {status}");
        }
        if http_get(port, "/__health").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
            return;
        }
        std::thread::yield_now();
    }
    panic!("sluice did not become ready on port {port}");
}

/// `sluice run` (behind `wrapper`, e.g. taskset) serving `/slow` from a [`slow_backend`], ready.
fn run_slow_gateway(name: &str, wrapper: &[&str]) -> (Child, u16) {
    let backend = slow_backend();
    let port = free_port();
    let path = write_config(
        name,
        &format!(
            r#"{{"version": 3, "port": {port}, "listen_ip": "127.0.0.1", "timeout": "5s",
                "endpoints": [{{"endpoint": "/slow", "backend": [{{"host": ["http://{backend}"], "url_pattern": "/"}}]}}]}}"#
        ),
    );
    let (program, prefix) = match wrapper.split_first() {
        Some((program, rest)) => (
            *program,
            rest.iter().copied().chain([BIN]).collect::<Vec<_>>(),
        ),
        None => (BIN, Vec::new()),
    };
    let child = start_quiet(
        Command::new(program)
            .args(prefix)
            .args(["run", "--log", "warn", "-c"])
            .arg(&path),
        port,
    );
    (child, port)
}

#[test]
fn sigterm_drains_in_flight_requests() {
    let (mut child, port) = run_slow_gateway("drain", &[]);

    // Open the request, make sure it reached the gateway, then ask the gateway to stop.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /slow HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    stream.flush().unwrap();
    let sent = Instant::now();
    // The backend holds the answer for 300 ms; signal well inside that window.
    while sent.elapsed() < Duration::from_millis(100) {
        std::thread::yield_now();
    }
    terminate(&child);

    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "in-flight request answered: {response}"
    );
    assert!(response.ends_with(r#"{"slow":true}"#), "{response}");
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit after draining: {status}");
    assert!(http_get(port, "/__health").is_err(), "no longer listening");
}

#[test]
fn serves_on_one_core_with_the_single_threaded_runtime() {
    // On one CPU the gateway runs a current-thread runtime; pin it to exercise that path.
    assert!(
        Command::new("taskset").arg("--version").output().is_ok(),
        "taskset (util-linux) is needed to pin the gateway to one core"
    );
    let (mut child, port) = run_slow_gateway("one-core", &["taskset", "-c", "0"]);
    let response = http_get(port, "/slow").unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(r#"{"slow":true}"#), "{response}");
    terminate(&child);
    assert!(child.wait().unwrap().success());
}

#[test]
fn check_and_run_fail_closed_on_unenforced_namespaces_unless_opted_out() {
    let path = write_config(
        "unenforced",
        r#"{"version": 3, "endpoints": [
            {"endpoint": "/private", "extra_config": {"auth/validator": {"alg": "RS256"}},
             "backend": [{"host": ["http://127.0.0.1:9000"], "url_pattern": "/p"}]}
        ]}"#,
    );
    for command in ["check", "run"] {
        let out = Command::new(BIN)
            .args([command, "-c"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(r#"endpoints[0].extra_config["auth/validator"]: namespace "auth/validator" is not implemented by Sluice"#),
            "{command}: {stderr}"
        );
        assert!(
            stderr.contains("--allow-unenforced auth/validator"),
            "{stderr}"
        );
    }
    let out = Command::new(BIN)
        .args(["check", "--allow-unenforced", "auth/validator", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(r#"namespace "auth/validator" is NOT enforced (--allow-unenforced)"#),
        "{stdout}"
    );
}

/// One access log line per request (KrakenD's default), none with `router.disable_access_log`.
#[test]
fn access_log_has_a_line_per_request_unless_disabled() {
    for disabled in [false, true] {
        let port = free_port();
        let path = write_config(
            &format!("access-{disabled}"),
            &format!(
                r#"{{"version": 3, "port": {port}, "listen_ip": "127.0.0.1",
                    "extra_config": {{"router": {{"disable_access_log": {disabled}}}}},
                    "endpoints": []}}"#
            ),
        );
        let child = run_logged(&path, port);
        let response = http_get(port, "/no/such/route").unwrap();
        assert!(response.starts_with("HTTP/1.1 404"), "{response}");
        terminate(&child);
        let out = child.wait_with_output().unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let line = log.lines().find(|l| l.contains("path=/no/such/route"));
        if disabled {
            assert!(line.is_none(), "disable_access_log: {log}");
        } else {
            let line = line.unwrap_or_else(|| panic!("no access log line: {log}"));
            assert!(
                line.contains("status=404") && line.contains("method=GET"),
                "{line}"
            );
        }
    }
}

/// The gateway's peak resident memory, from /proc.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// 40 clients that each send 15 of 16 MiB and stall: the body budget refuses most at once, the
/// body deadline cuts the rest, other clients are served meanwhile, and the gateway's peak
/// RSS stays under 150 MiB (it grew by 600 MB and kept it without the bounds).
#[test]
fn stalled_uploads_are_bounded_in_memory_and_time() {
    const CLIENTS: usize = 40;
    const DECLARED: usize = 16_000_000;
    const SENT: usize = 15 << 20;
    let port = free_port();
    let path = write_config(
        "stalled-uploads",
        &format!(
            r#"{{"version": 3, "port": {port}, "listen_ip": "127.0.0.1", "read_timeout": "2s",
                "endpoints": [{{"endpoint": "/up", "method": "POST",
                  "backend": [{{"host": ["http://127.0.0.1:19"], "url_pattern": "/"}}]}}]}}"#
        ),
    );
    let mut child = start_quiet(
        Command::new(BIN)
            .args(["run", "--log", "warn", "-c"])
            .arg(&path),
        port,
    );
    let started = Instant::now();
    let uploaders: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || -> String {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(15)))
                    .unwrap();
                stream
                    .set_write_timeout(Some(Duration::from_secs(15)))
                    .unwrap();
                let head =
                    format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {DECLARED}\r\n\r\n");
                if stream.write_all(head.as_bytes()).is_err() {
                    return "closed".to_owned();
                }
                let chunk = vec![b'a'; 64 << 10];
                for _ in 0..SENT / chunk.len() {
                    if stream.write_all(&chunk).is_err() {
                        break;
                    }
                }
                // Then stall: read whatever the gateway answers, or its close.
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
                String::from_utf8_lossy(&answer)
                    .lines()
                    .next()
                    .unwrap_or("closed")
                    .to_owned()
            })
        })
        .collect();
    // Served meanwhile.
    let health = http_get(port, "/__health").unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let answers: Vec<String> = uploaders.into_iter().map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "every stalled upload ends within the 2 s body deadline (and the transfer): {elapsed:?}"
    );
    for answer in &answers {
        assert!(
            answer == "closed" || answer.contains(" 503 ") || answer.contains(" 408 "),
            "{answers:?}"
        );
    }
    assert!(
        answers.iter().any(|a| a.contains(" 408 ")),
        "some uploads fit the budget and were cut by the deadline: {answers:?}"
    );
    let peak = peak_rss_kib(child.id());
    eprintln!(
        "stalled uploads: answers {answers:?}, peak RSS {} MiB, {elapsed:?}",
        peak >> 10
    );
    terminate(&child);
    assert!(child.wait().unwrap().success());
    assert!(peak < 150 << 10, "peak RSS {} MiB", peak >> 10);
}

/// What an operator sees: the start-up lines (version, config, endpoints), one warn line per
/// failed backend call naming the endpoint, the url_pattern and the cause, and `X-Sluice` on
/// the router's own answers.
#[test]
fn the_log_explains_start_up_and_failed_backend_calls() {
    let port = free_port();
    let path = write_config(
        "signals",
        &format!(
            r#"{{"version": 3, "port": {port}, "listen_ip": "127.0.0.1",
                "endpoints": [{{"endpoint": "/down", "backend": [{{"host": ["http://127.0.0.1:19"], "url_pattern": "/gone/away"}}]}}]}}"#
        ),
    );
    let child = run_logged(&path, port);
    let response = http_get(port, "/down").unwrap();
    assert!(response.starts_with("HTTP/1.1 500"), "{response}");
    let not_found = http_get(port, "/nowhere").unwrap();
    assert!(not_found.starts_with("HTTP/1.1 404"), "{not_found}");
    assert!(
        not_found
            .to_ascii_lowercase()
            .contains("x-sluice: version "),
        "{not_found}"
    );
    terminate(&child);
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        log.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && log.contains(&format!("config={}", path.display())),
        "{log}"
    );
    assert!(log.contains("endpoint=GET /down"), "{log}");
    let failure = log
        .lines()
        .find(|l| l.contains("backend call failed"))
        .unwrap_or_else(|| panic!("no failure line: {log}"));
    assert!(
        failure.contains("WARN")
            && failure.contains("endpoint=GET /down")
            && failure.contains("url_pattern=/gone/away")
            && failure.contains("127.0.0.1:19"),
        "{failure}"
    );
}

#[test]
fn run_names_the_address_it_cannot_listen_on() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let path = write_config(
        "taken",
        &format!(r#"{{"version": 3, "port": {port}, "listen_ip": "127.0.0.1", "endpoints": []}}"#),
    );
    let out = Command::new(BIN)
        .args(["run", "--log", "warn", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}: ")),
        "{stderr}"
    );
}

/// `--port` moves the bundled example whole: its backends are the gateway itself.
#[test]
fn the_bundled_example_follows_port() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/krakend.json");
    let port = free_port();
    let mut child = start_quiet(
        Command::new(BIN).args([
            "run",
            "--log",
            "warn",
            "-c",
            example,
            "--port",
            &port.to_string(),
        ]),
        port,
    );
    let response = http_get(port, "/hello").unwrap();
    terminate(&child);
    assert!(child.wait().unwrap().success());
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(r#"{"message":"pong"}"#), "{response}");
}

/// The flags a KrakenD user types by habit: `check -d` prints the parsed config, `check -t` is
/// accepted, `test-plugin` is `plugin test`.
#[test]
fn krakend_habits_work() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/krakend.json");
    let out = Command::new(BIN)
        .args(["check", "-d", "-t", "-c", example])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("endpoint: \"/hello\""), "{stdout}");
    assert!(stdout.contains("Syntax OK!"), "{stdout}");

    let out = Command::new(BIN)
        .args(["test-plugin", "no-such-plugin.wasm"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("Unable to open"), "{stdout}");

    // `run -d` turns `/__debug/` on, as `krakend run -d` does (CE's fixtures call it).
    let port = free_port();
    let config = write_config(
        "habits-debug.json",
        &format!(
            r#"{{"version": 3, "port": {port}, "endpoints": [{{"endpoint": "/a",
                "backend": [{{"host": ["http://127.0.0.1:10"], "url_pattern": "/a"}}]}}]}}"#
        ),
    );
    for (flags, expected) in [(&["-d"][..], "HTTP/1.1 200"), (&[][..], "HTTP/1.1 404")] {
        let mut child = start_quiet(
            Command::new(BIN)
                .arg("run")
                .args(flags)
                .arg("-c")
                .arg(&config),
            port,
        );
        let answer = http_get(port, "/__debug/x").unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(answer.starts_with(expected), "{flags:?}: {answer}");
        if expected.ends_with("200") {
            assert!(answer.ends_with(r#"{"message":"pong"}"#), "{answer}");
        }
    }
}

/// A file in the plugin folder that is not a component is one error that says why it was
/// loaded at all; a backend naming it gets no second, false "no client plugin" error; a
/// `.wasm.bak` file (matched by substring, as KrakenD matches) is named in a warning.
#[test]
fn one_bad_plugin_file_is_one_error() {
    let path = write_config(
        "bad-plugin",
        r#"{"version": 3, "plugin": {"folder": "./plugins", "pattern": ".wasm"},
            "endpoints": [{"endpoint": "/a", "backend": [{"host": ["http://127.0.0.1:9000"], "url_pattern": "/a",
              "extra_config": {"plugin/http-client": {"name": "greeter"}}}]}]}"#,
    );
    let folder = path.parent().unwrap().join("plugins");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("greeter.wasm"), "not a component").unwrap();
    std::fs::write(folder.join("old.wasm.bak"), "a backup").unwrap();
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("greeter.wasm: not a WebAssembly file"),
        "{stderr}"
    );
    assert!(
        stderr.contains("whose name contains \".wasm\" is loaded"),
        "{stderr}"
    );
    assert!(!stderr.contains("no client plugin is named"), "{stderr}");
    // Two problems: greeter.wasm and the backup, each once.
    assert!(stderr.contains("2 problem(s) found"), "{stderr}");
    assert!(
        stdout.contains("old.wasm.bak contains plugin.pattern without ending with it"),
        "{stdout}"
    );
}

/// `telemetry/logging` as krakend-gologging writes it: the logstash format with the prefix as
/// `module`, the level honoured, and the access log (with its request id) still written.
#[test]
fn telemetry_logging_formats_the_application_log() {
    let port = free_port();
    let path = write_config(
        "logging-logstash",
        &format!(
            r#"{{"version": 3, "port": {port}, "listen_ip": "127.0.0.1",
                "extra_config": {{"telemetry/logging": {{"level": "WARNING", "prefix": "[KRAKEND]", "stdout": true, "format": "logstash"}}}},
                "endpoints": [{{"endpoint": "/down", "backend": [{{"host": ["http://127.0.0.1:19"], "url_pattern": "/"}}]}}]}}"#
        ),
    );
    let mut child = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut child, port);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET /down HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: req-42\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 500"), "{response}");
    terminate(&child);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // Every line is one logstash JSON object.
    for line in &lines {
        assert!(
            line.starts_with(r#"{"@timestamp":""#) && line.ends_with(r#","module":"KRAKEND"}"#),
            "{line}\n{stdout}"
        );
    }
    // WARNING: the failed backend call is there, the INFO start-up lines are not...
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""level":"WARNING""#) && l.contains("backend call failed")),
        "{stdout}"
    );
    assert!(!stdout.contains("starting sluice"), "{stdout}");
    // ...but the access log is, with the client's request id.
    assert!(
        lines.iter().any(|l| l.contains("path=/down")
            && l.contains("status=500")
            && l.contains("request_id=req-42")),
        "{stdout}"
    );
}
