//! The `sluice` command as a user runs it: `--version`, `check`, and `run` with a graceful
//! drain on SIGTERM.
#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{Running, TempFolder};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// A file in a temporary folder of its own (`sluice-cli-<name>-…`), read as the file's path;
/// the folder goes when this is dropped. A test keeps it until the gateway that reads it has
/// stopped: declared before the [`Running`], it is dropped after it.
struct TempFile {
    path: PathBuf,
    _folder: TempFolder,
}

impl Deref for TempFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempFile {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<OsStr> for TempFile {
    fn as_ref(&self) -> &OsStr {
        self.path.as_os_str()
    }
}

/// `text` as `krakend.json` in a folder of its own.
fn write_config(name: &str, text: &str) -> TempFile {
    write_file(name, "krakend.json", text)
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

/// A TLS certificate or key that does not load is found by `check`, with the JSON path that
/// names it and the file, as `run` would refuse it.
#[test]
fn check_names_tls_files_that_do_not_load() {
    let path = write_config(
        "tls",
        r#"{"version": 3,
            "tls": {"public_key": "/nonexistent/sluice/cert.pem", "private_key": "/nonexistent/sluice/key.pem"},
            "client_tls": {"ca_certs": ["/nonexistent/sluice/ca.pem"], "min_version": "TLS12"},
            "endpoints": [{"endpoint": "/a", "backend": [{"host": ["https://x:8443"], "url_pattern": "/a"}]}]}"#,
    );
    for command in ["check", "run"] {
        let out = Command::new(BIN)
            .args([command, "-c"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for expected in [
            "tls.public_key: cannot read the certificate file \"/nonexistent/sluice/cert.pem\"",
            "client_tls.ca_certs[0]: cannot read the certificate file \"/nonexistent/sluice/ca.pem\"",
        ] {
            assert!(
                stderr.contains(&format!("{}: {expected}", path.display())),
                "{command}: {expected}\n{stderr}"
            );
        }
    }
}

#[test]
fn check_compiles_the_grpc_catalog_and_checks_each_grpc_backend() {
    // The catalog is the integration tests' protos folder, copied beside the config: a
    // relative catalog entry is read from the config's folder.
    let protos = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/integration/protos/flights"
    );
    let config = |mapping: &str| {
        format!(
            r#"{{"version": 3, "extra_config": {{"grpc": {{"catalog": ["protos/"]}}}},
              "endpoints": [{{"endpoint": "/flights/{{origin}}", "input_query_strings": ["*"],
                "backend": [{{"host": ["localhost:4242"], "url_pattern": "/flight_finder.Flights/FindFlight",
                  "extra_config": {{"backend/grpc": {{"input_mapping": {{"Origin": "{mapping}"}}}}}}}}]}}]}}"#
        )
    };
    let path = write_config("grpc", &config("where.from"));
    let dir = path.parent().unwrap().join("protos/flights");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["flight_finder.proto", "common.proto"] {
        std::fs::copy(format!("{protos}/{file}"), dir.join(file)).unwrap();
    }
    let check = || {
        Command::new(BIN)
            .args(["check", "-c"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = check();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    std::fs::write(&path, config("where.frm")).unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"krakend.json: endpoints[0].backend[0].extra_config["backend/grpc"].input_mapping.Origin: "where.frm": flight_finder.Where has no field "frm""#),
        "{stderr}"
    );

    // A catalog that does not compile is one error, named by its entry and place.
    std::fs::write(
        dir.join("broken.proto"),
        "syntax = \"proto3\"; message X { int32 a = 1 }",
    )
    .unwrap();
    let out = check();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("krakend.json: extra_config.grpc.catalog[0]: flights/broken.proto:1:"),
        "{stderr}"
    );
    assert!(stderr.contains("1 problem(s) found"), "{stderr}");
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
fn start_quiet(command: &mut Command, port: u16) -> Running {
    let mut child = Running::spawn(command.stdout(Stdio::null()).stderr(Stdio::null()));
    wait_ready(&mut child, port);
    child
}

/// `sluice run --log info` on `path`, its output kept for the test to read, ready on `port`.
fn run_logged(path: &std::path::Path, port: u16) -> Running {
    let mut child = Running::spawn(
        Command::new(BIN)
            .args(["run", "--log", "info", "-c"])
            .arg(path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
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

/// `sluice run` (behind `wrapper`, e.g. taskset) serving `/slow` from a [`slow_backend`], ready;
/// its config first, to be dropped after the gateway.
fn run_slow_gateway(name: &str, wrapper: &[&str]) -> (TempFile, Running, u16) {
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
    (path, child, port)
}

#[test]
fn sigterm_drains_in_flight_requests() {
    let (_config, mut child, port) = run_slow_gateway("drain", &[]);

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
    let (_config, mut child, port) = run_slow_gateway("one-core", &["taskset", "-c", "0"]);
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
            {"endpoint": "/private", "extra_config": {"auth/signer": {"alg": "RS256"}},
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
            stderr.contains(r#"endpoints[0].extra_config["auth/signer"]: namespace "auth/signer" is not implemented by Sluice"#),
            "{command}: {stderr}"
        );
        assert!(
            stderr.contains("--allow-unenforced auth/signer"),
            "{stderr}"
        );
    }
    let out = Command::new(BIN)
        .args(["check", "--allow-unenforced", "auth/signer", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(r#"namespace "auth/signer" is NOT enforced (--allow-unenforced)"#),
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

/// Access lines are batched per burst of work, not held: each shows up on stdout while the
/// gateway runs (the runtime writes a burst's lines when it parks), in the order of the
/// requests, with the default log and with `telemetry/logging`.
#[test]
fn access_lines_reach_stdout_while_the_gateway_runs() {
    for logging in [
        "",
        r#", "telemetry/logging": {"level": "INFO", "stdout": true}"#,
    ] {
        let port = free_port();
        let path = write_config(
            &format!("access-live-{}", logging.len()),
            &format!(
                r#"{{"version": 3, "port": {port}, "listen_ip": "127.0.0.1",
                    "extra_config": {{"router": {{}}{logging}}},
                    "endpoints": []}}"#
            ),
        );
        let mut child = run_logged(&path, port);
        let lines = log_lines(&mut child);
        for n in 0..3 {
            let response = http_get(port, &format!("/live/{n}")).unwrap();
            assert!(response.starts_with("HTTP/1.1 404"), "{response}");
            let line = wait_for_line(&lines, &format!("/live/{n}"));
            assert!(line.contains("404"), "{logging}: {line}");
        }
        terminate(&child);
        child.wait().unwrap();
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

/// `SLUICE_WASM_POOLING=off` starts the plugin host without the pooling allocator (the
/// folder's plugins are then loaded and checked as ever); any value but `on` or `off` is an
/// error that names the variable.
#[test]
fn the_plugin_host_runs_without_its_pool_and_refuses_an_unknown_setting() {
    let path = write_config(
        "pooling-off",
        r#"{"version": 3, "plugin": {"folder": "./plugins", "pattern": ".wasm"},
            "endpoints": [{"endpoint": "/a", "backend": [{"host": ["http://127.0.0.1:9000"], "url_pattern": "/a"}]}]}"#,
    );
    let folder = path.parent().unwrap().join("plugins");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("greeter.wasm"), "not a component").unwrap();
    let (code, _, stderr) = check_with_env(&path, &[("SLUICE_WASM_POOLING", "off")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("greeter.wasm: not a WebAssembly file"),
        "the host started and loaded the folder: {stderr}"
    );
    let (code, _, stderr) = check_with_env(&path, &[("SLUICE_WASM_POOLING", "no")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(r#"SLUICE_WASM_POOLING is "no": expected "on" or "off""#),
        "{stderr}"
    );
}

/// `text` written as `file` in a folder of its own, named after `name`.
fn write_file(name: &str, file: &str, text: &str) -> TempFile {
    let folder = TempFolder::new(&format!("sluice-cli-{name}-"));
    let path = folder.join(file);
    std::fs::write(&path, text).unwrap();
    TempFile {
        path,
        _folder: folder,
    }
}

/// `sluice check` on `path` with `vars` set: the exit code, stdout and stderr.
fn check_with_env(path: &std::path::Path, vars: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(path)
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `sluice run` on `path` with `vars` set, ready on `port`; answers `GET path`, then stops.
fn run_and_get(path: &std::path::Path, vars: &[(&str, &str)], port: u16, get: &str) -> String {
    let child = start_quiet(
        Command::new(BIN)
            .args(["run", "--log", "warn", "-c"])
            .arg(path)
            .envs(vars.iter().copied()),
        port,
    );
    let response = http_get(port, get).unwrap();
    terminate(&child);
    assert!(child.wait_with_output().unwrap().status.success());
    response
}

/// YAML and TOML configs, chosen by extension, check and serve like JSON ones; their problems
/// keep the line (syntax) or the JSON path (meaning).
#[test]
fn yaml_and_toml_configs_check_and_run() {
    let port = free_port();
    // An anchor and a merge key, as YAML configs share backend settings.
    let yaml = write_file(
        "yaml",
        "krakend.yaml",
        &format!(
            "version: 3\nport: {port}\nlisten_ip: 127.0.0.1\ndebug_endpoint: true\n\
             x-backend: &backend\n  host: [\"http://127.0.0.1:{port}\"]\n\
             endpoints:\n  - endpoint: /yaml\n    backend:\n      - <<: *backend\n\
             \x20       url_pattern: /__debug/yaml\n"
        ),
    );
    let (code, stdout, stderr) = check_with_env(&yaml, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("Syntax OK!"), "{stdout}");
    let response = run_and_get(&yaml, &[], port, "/yaml");
    assert!(response.ends_with(r#"{"message":"pong"}"#), "{response}");

    let port = free_port();
    let toml = write_file(
        "toml",
        "krakend.toml",
        &format!(
            "version = 3\nport = {port}\nlisten_ip = \"127.0.0.1\"\necho_endpoint = true\n\
             host = [\"http://127.0.0.1:{port}\"]\n\n[[endpoints]]\nendpoint = \"/toml\"\n\n\
             [[endpoints.backend]]\nurl_pattern = \"/__echo/toml\"\nallow = [\"req_uri\"]\n"
        ),
    );
    let (code, _, stderr) = check_with_env(&toml, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let response = run_and_get(&toml, &[], port, "/toml");
    assert!(
        response.ends_with(r#"{"req_uri":"/__echo/toml"}"#),
        "{response}"
    );

    // Syntax errors name the line; meaning errors the JSON path.
    let bad = write_file(
        "yaml-bad",
        "krakend.yml",
        "version: 3\nendpoints: [\n  {endpoint: /a\n",
    );
    let (code, _, stderr) = check_with_env(&bad, &[]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("krakend.yml:4:1: malformed YAML"),
        "{stderr}"
    );
    let bad = write_file(
        "toml-bad",
        "krakend.toml",
        "version = 3\n[[endpoints]]\nendpoint = 7\n",
    );
    let (code, _, stderr) = check_with_env(&bad, &[]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("krakend.toml: endpoints[0].endpoint: expected a string, found a number"),
        "{stderr}"
    );
}

/// KRAKEND_PORT and the rest override root values the file has; SLUICE_ wins over KRAKEND_; a
/// value of the wrong type stops `check` and `run`, naming the variable.
#[test]
fn environment_overrides_both_prefixes() {
    let file_port = free_port();
    let path = write_config(
        "env",
        &format!(
            r#"{{"version": 3, "port": {file_port}, "listen_ip": "127.0.0.1", "timeout": "2s", "debug_endpoint": false,
                "endpoints": [{{"endpoint": "/d", "backend": [{{"host": ["http://127.0.0.1:{file_port}"], "url_pattern": "/__debug/d"}}]}}]}}"#
        ),
    );
    let port = free_port();
    let port_text = port.to_string();
    let vars = [
        ("KRAKEND_PORT", port_text.as_str()),
        ("KRAKEND_DEBUG_ENDPOINT", "true"),
        ("KRAKEND_TIMEOUT", "1s"),
        ("SLUICE_TIMEOUT", "3s"),
        ("KRAKEND_CACHE_TTL", "1h"),
    ];
    let (code, stdout, stderr) = check_with_env(&path, &vars);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("note: ")
            && stdout.contains("port is set by the environment variable KRAKEND_PORT"),
        "{stdout}"
    );
    assert!(
        stdout.contains("timeout is set by the environment variable SLUICE_TIMEOUT"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("cache_ttl"),
        "not in the file, not applied: {stdout}"
    );
    let response = run_and_get(&path, &vars, port, "/__debug/x");
    assert!(
        response.ends_with(r#"{"message":"pong"}"#),
        "debug_endpoint from the env: {response}"
    );

    // SLUICE_PORT wins, so a Kubernetes-style KRAKEND_PORT is then harmless.
    let sluice_port = free_port();
    let sluice_text = sluice_port.to_string();
    let vars = [
        ("KRAKEND_PORT", "tcp://10.0.0.1:8080"),
        ("SLUICE_PORT", sluice_text.as_str()),
    ];
    let response = run_and_get(&path, &vars, sluice_port, "/__health");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // The wrong type, alone: both commands refuse, naming the variable.
    let vars = [("KRAKEND_PORT", "tcp://10.0.0.1:8080")];
    let (code, _, stderr) = check_with_env(&path, &vars);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(
            "port: the environment variable KRAKEND_PORT=\"tcp://10.0.0.1:8080\" cannot override it"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("Service named krakend"), "{stderr}");
    let out = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&path)
        .env("SLUICE_DEBUG_ENDPOINT", "maybe")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SLUICE_DEBUG_ENDPOINT=\"maybe\""),
        "{stderr}"
    );
}

/// The bundled flexible configuration example: `check` accepts it (and `-d` prints the final
/// config), `run` serves it.
#[test]
fn the_flexible_configuration_example_checks_and_runs() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/flexible");
    let out_folder = TempFolder::new("sluice-cli-fc-example-");
    let out_file = out_folder.join("rendered.json");
    let settings = format!("{dir}/settings/dev");
    let partials = format!("{dir}/partials");
    let templates = format!("{dir}/templates");
    let out_text = out_file.display().to_string();
    let vars = [
        ("FC_ENABLE", "1"),
        ("FC_SETTINGS", settings.as_str()),
        ("FC_PARTIALS", partials.as_str()),
        ("FC_TEMPLATES", templates.as_str()),
        ("FC_OUT", out_text.as_str()),
    ];
    let template = std::path::Path::new(dir).join("krakend.tmpl");
    let out = Command::new(BIN)
        .args(["check", "-d", "-c"])
        .arg(&template)
        .envs(vars)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Syntax OK!") && stdout.contains("3 endpoint(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("endpoint: \"/orders\"") && stdout.contains("method: POST"),
        "{stdout}"
    );
    let rendered = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        rendered.contains("\"name\": \"Sluice flexible configuration example (dev)\""),
        "{rendered}"
    );

    let port = free_port();
    let port_text = port.to_string();
    let mut child = start_quiet(
        Command::new(BIN)
            .args(["run", "--log", "warn", "--port", &port_text, "-c"])
            .arg(&template)
            .envs(vars),
        port,
    );
    let response = http_get(port, "/hello").unwrap();
    terminate(&child);
    assert!(child.wait().unwrap().success());
    assert!(response.ends_with(r#"{"message":"pong"}"#), "{response}");
}

/// A template that does not render stops `check` and `run` with its file and line.
#[test]
fn a_broken_template_names_its_file_and_line() {
    let main = write_file(
        "fc-broken",
        "krakend.tmpl",
        "{\n  \"version\": 3,\n  \"endpoints\": [{{ template \"ep.tmpl\" .ep }}]\n}\n",
    );
    let dir = main.parent().unwrap();
    std::fs::create_dir_all(dir.join("settings")).unwrap();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join("settings/ep.json"), r#"{"path": "/a"}"#).unwrap();
    std::fs::write(
        dir.join("templates/ep.tmpl"),
        "{\"endpoint\": {{ quote .path }},\n \"backend\": [{\"host\": [\"http://127.0.0.1:9000\"], \"url_pattern\": {{ .backend }}}]}",
    )
    .unwrap();
    let settings = dir.join("settings").display().to_string();
    let templates = dir.join("templates").display().to_string();
    let vars = [
        ("FC_ENABLE", "1"),
        ("FC_SETTINGS", settings.as_str()),
        ("FC_TEMPLATES", templates.as_str()),
    ];
    let (code, _, stderr) = check_with_env(&main, &vars);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("templates/ep.tmpl:2:68: template: the action has no value"),
        "{stderr}"
    );
    // A syntax error in the template itself.
    std::fs::write(dir.join("templates/ep.tmpl"), "{{ range .list }}\n{{ end").unwrap();
    let out = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&main)
        .envs(vars)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("templates/ep.tmpl:2:1: template: unclosed action"),
        "{stderr}"
    );
}

/// A config whose one endpoint `path` answers from the gateway's own `/__debug/`.
fn self_config(port: u16, path: &str) -> String {
    format!(
        r#"{{"version": 3, "port": {port}, "listen_ip": "127.0.0.1", "debug_endpoint": true,
            "endpoints": [{{"endpoint": "{path}",
              "backend": [{{"host": ["http://127.0.0.1:{port}"], "url_pattern": "/__debug{path}"}}]}}]}}"#
    )
}

/// The `"config"` digest `/__health` reports on `port`, if it answers.
fn served_digest(port: u16) -> Option<String> {
    let response = http_get(port, "/__health").ok()?;
    let body = response.split("\r\n\r\n").nth(1)?;
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value["config"].as_str().map(str::to_owned)
}

/// Waits (bounded) until `port` serves a digest other than `old`.
fn wait_for_new_digest(port: u16, old: &str) -> String {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Some(digest) = served_digest(port).filter(|d| d != old) {
            return digest;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("port {port} still serves {old}");
}

/// The lines the child writes to stdout, as they come.
fn log_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line containing `needle` within 20 s.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no log line with {needle:?}");
}

fn hangup(child: &Child) {
    let sent = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[test]
fn sighup_reloads_and_a_broken_config_keeps_the_old_one() {
    let port = free_port();
    let path = write_config("reload-hup", &self_config(port, "/a"));
    let mut child = run_logged(&path, port);
    let lines = log_lines(&mut child);
    let first = served_digest(port).unwrap();
    assert!(http_get(port, "/a").unwrap().starts_with("HTTP/1.1 200"));

    std::fs::write(&path, self_config(port, "/b")).unwrap();
    hangup(&child);
    let second = wait_for_new_digest(port, &first);
    assert!(http_get(port, "/b").unwrap().starts_with("HTTP/1.1 200"));
    assert!(http_get(port, "/a").unwrap().starts_with("HTTP/1.1 404"));
    let line = wait_for_line(&lines, "reloaded");
    assert!(line.contains(&first) && line.contains(&second), "{line}");

    // A broken config: every problem logged as `check` prints it, and /b keeps being served.
    std::fs::write(
        &path,
        self_config(port, "/c").replace("\"/__debug/c\"", "\"/__debug/c\", \"encoding\": \"jsn\""),
    )
    .unwrap();
    hangup(&child);
    let problem = wait_for_line(&lines, "encoding");
    assert!(
        problem.contains("ERROR") && problem.contains("jsn"),
        "{problem}"
    );
    let refused = wait_for_line(&lines, "reload refused");
    assert!(refused.contains(&second), "{refused}");
    assert_eq!(served_digest(port).as_deref(), Some(second.as_str()));
    assert!(http_get(port, "/b").unwrap().starts_with("HTTP/1.1 200"));

    // A new port: the new listener serves, the old one stops.
    let new_port = free_port();
    std::fs::write(&path, self_config(new_port, "/d")).unwrap();
    hangup(&child);
    wait_for_line(&lines, "listening on a new address");
    assert!(
        http_get(new_port, "/d")
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
    let started = Instant::now();
    while http_get(port, "/__health").is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the old port still serves"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    terminate(&child);
    assert!(child.wait().unwrap().success());
}

/// With telemetry on, reloads are metrics: done and refused ones counted, the digest served now
/// reported (the one `/__health` shows).
#[test]
fn reloads_are_counted_on_the_prometheus_endpoint() {
    let port = free_port();
    let metrics_port = free_port();
    let config = |path: &str| {
        self_config(port, path).replacen(
            r#""debug_endpoint": true,"#,
            &format!(
                r#""debug_endpoint": true, "extra_config": {{"telemetry/opentelemetry": {{
                    "exporters": {{"prometheus": [{{"name": "p", "port": {metrics_port}, "listen_ip": "127.0.0.1"}}]}}}}}},"#
            ),
            1,
        )
    };
    let path = write_config("reload-metrics", &config("/a"));
    let mut child = run_logged(&path, port);
    let lines = log_lines(&mut child);
    let first = served_digest(port).unwrap();
    let scrape = || http_get(metrics_port, "/metrics").unwrap();
    let before = scrape();
    assert!(
        before.contains(&format!(r#"sluice_config_info{{digest="{first}"}} 1"#)),
        "{before}"
    );

    std::fs::write(&path, config("/b")).unwrap();
    hangup(&child);
    let second = wait_for_new_digest(port, &first);
    std::fs::write(
        &path,
        config("/c").replace("/__debug/c\"", "/__debug/c\", \"encoding\": \"jsn\""),
    )
    .unwrap();
    hangup(&child);
    wait_for_line(&lines, "reload refused");
    // Telemetry settings apply to the process: a reload that changes them is refused, not
    // half applied.
    std::fs::write(
        &path,
        config("/d").replace(r#""name": "p""#, r#""name": "q""#),
    )
    .unwrap();
    hangup(&child);
    let changed = wait_for_line(&lines, "changed since start-up");
    assert!(changed.contains("telemetry/opentelemetry"), "{changed}");
    wait_for_line(&lines, "reload refused");
    assert_eq!(served_digest(port).as_deref(), Some(second.as_str()));

    let after = scrape();
    for expected in [
        r#"sluice_config_reloads_total{result="ok"} 1"#.to_owned(),
        r#"sluice_config_reloads_total{result="failed"} 2"#.to_owned(),
        format!(r#"sluice_config_info{{digest="{second}"}} 1"#),
    ] {
        assert!(after.contains(&expected), "{expected}\n{after}");
    }
    assert!(!after.contains(&format!(r#"digest="{first}""#)), "{after}");
    terminate(&child);
    assert!(child.wait().unwrap().success());
}

#[test]
fn watch_reloads_when_the_folder_changes_as_a_configmap_does() {
    let port = free_port();
    // A Kubernetes ConfigMap: the file is a symlink into a data folder that is swapped whole.
    let dir = TempFolder::new("sluice-cli-watch-");
    std::fs::create_dir_all(dir.join("v1")).unwrap();
    std::fs::write(dir.join("v1/krakend.json"), self_config(port, "/a")).unwrap();
    std::os::unix::fs::symlink("v1", dir.join("data")).unwrap();
    std::os::unix::fs::symlink("data/krakend.json", dir.join("krakend.json")).unwrap();
    let mut child = Running::spawn(
        Command::new(BIN)
            .args(["run", "--watch", "--log", "info", "-c"])
            .arg(dir.join("krakend.json"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    wait_ready(&mut child, port);
    let first = served_digest(port).unwrap();

    std::fs::create_dir_all(dir.join("v2")).unwrap();
    std::fs::write(dir.join("v2/krakend.json"), self_config(port, "/b")).unwrap();
    std::os::unix::fs::symlink("v2", dir.join("data.new")).unwrap();
    std::fs::rename(dir.join("data.new"), dir.join("data")).unwrap();

    wait_for_new_digest(port, &first);
    assert!(http_get(port, "/b").unwrap().starts_with("HTTP/1.1 200"));
    let _ = child.kill();
    let _ = child.wait();
}

/// `telemetry/logging` as krakend-gologging writes it: the logstash format with the prefix as
/// `module`, the level honoured, and the access log (with its request id) still written.
#[test]
fn telemetry_logging_formats_the_application_log() {
    let port = free_port();
    let path = write_config(
        "logging-logstash",
        &format!(
            r#"{{"version": 3, "port": {port}, "listen_ip": "127.0.0.1", "echo_endpoint": true,
                "extra_config": {{"telemetry/logging": {{"level": "WARNING", "prefix": "[KRAKEND]", "stdout": true, "format": "logstash"}}}},
                "endpoints": [{{"endpoint": "/down", "backend": [{{"host": ["http://127.0.0.1:19"], "url_pattern": "/"}}]}},
                              {{"endpoint": "/echo", "backend": [{{"host": ["http://127.0.0.1:{port}"], "url_pattern": "/__echo/"}}]}}]}}"#
        ),
    );
    let mut child = Running::spawn(
        Command::new(BIN)
            .args(["run", "-c"])
            .arg(&path)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
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
    // Logging alone does not add X-Request-Id to what backends receive: with no
    // `telemetry/opentelemetry`, they see exactly KrakenD CE's headers.
    let echoed = http_get(port, "/echo").unwrap();
    assert!(echoed.starts_with("HTTP/1.1 200"), "{echoed}");
    assert!(echoed.contains("User-Agent"), "{echoed}");
    assert!(!echoed.contains("X-Request-Id"), "{echoed}");
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
