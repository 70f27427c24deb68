//! `krakend-ce-specs`: runs KrakenD CE's integration specs against a Sluice binary.
//!
//! It serves CE's mock backend on 127.0.0.1:8081 (`mocks::ce_exact`), starts
//! `sluice run -d -c fixtures/krakend.json` from the checkout's `tests` directory with the config
//! unchanged (only `--allow-unenforced` for the non-proxy namespaces it names), waits for
//! `/__health`, sends every spec's request as Go's client would, and prints one line per spec
//! and a summary. See tests/integration/README.md.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_integration::ce_specs::{self, Outcome, check, classify, client, spec};
use sluice_integration::mocks::ce_exact;

const USAGE: &str = "\
usage: krakend-ce-specs [KRAKEND_CE_TESTS_DIR] [--config-override FILE] [--spec NAME]...

  KRAKEND_CE_TESTS_DIR   the `tests` directory of a krakend-ce checkout (or env KRAKEND_CE_TESTS)
  --config-override FILE serve FILE instead of fixtures/krakend.json (a locally patched copy;
                         specs are still classified by the unchanged fixture)
  --spec NAME            run only this spec (file name without .json); repeatable

env SLUICE_BIN: the sluice binary (default: <workspace>/target/debug/sluice)";

/// Every request, redirects included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// From spawning the gateway to its first healthy answer.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The whole run; past it the gateway is killed and the run fails.
const RUN_DEADLINE: Duration = Duration::from_secs(600);
/// Where CE's fixture is, relative to the tests directory (passed to sluice as written).
const FIXTURE: &str = "fixtures/krakend.json";

struct Args {
    tests_dir: PathBuf,
    config_override: Option<PathBuf>,
    only: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut tests_dir = None;
    let mut config_override = None;
    let mut only = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Err(USAGE.to_owned()),
            "--config-override" => {
                let v = args.next().ok_or("--config-override needs a FILE")?;
                config_override = Some(PathBuf::from(v));
            }
            "--spec" => only.push(args.next().ok_or("--spec needs a NAME")?),
            a if a.starts_with('-') => return Err(format!("unknown option {a}\n\n{USAGE}")),
            a if tests_dir.is_none() => tests_dir = Some(PathBuf::from(a)),
            a => return Err(format!("unexpected argument {a}\n\n{USAGE}")),
        }
    }
    let tests_dir = tests_dir
        .or_else(|| std::env::var_os("KRAKEND_CE_TESTS").map(PathBuf::from))
        .ok_or_else(|| format!("no krakend-ce tests directory given\n\n{USAGE}"))?;
    Ok(Args {
        tests_dir,
        config_override,
        only,
    })
}

fn absolute(p: &Path, what: &str) -> Result<PathBuf, String> {
    p.canonicalize()
        .map_err(|e| format!("{what} {}: {e}", p.display()))
}

fn read_json(p: &Path) -> Result<Value, String> {
    let bytes = std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not JSON: {e}", p.display()))
}

/// The gateway process; killed when dropped, so every way out of the run stops it.
struct Gateway {
    child: Child,
    log: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // It may have exited already; there is nothing to do about a failed kill.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("sluice exited ({status})")),
            Ok(None) => None,
            Err(e) => Some(format!("cannot check on sluice: {e}")),
        }
    }

    /// The end of its log, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("--- last lines of {} ---\n{tail}", self.log.display())
    }
}

/// `sluice --version` -> the version it writes where KrakenD writes its own.
fn sluice_version(bin: &Path) -> Result<String, String> {
    let mut child = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run {}: {e} (build it: cargo build -p sluice)",
                bin.display()
            )
        })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} --version did not finish", bin.display()));
            }
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{} --version: {e}", bin.display()))?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()
        .map(str::to_owned)
        .ok_or_else(|| format!("{} --version printed no version", bin.display()))
}

fn start_gateway(
    bin: &Path,
    tests_dir: &Path,
    config_arg: &Path,
    namespaces: &[String],
) -> Result<Gateway, String> {
    let log = std::env::temp_dir().join(format!("krakend-ce-specs-{}.log", std::process::id()));
    let file = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let file2 = file
        .try_clone()
        .map_err(|e| format!("cannot share {}: {e}", log.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("run").arg("-d").arg("-c").arg(config_arg);
    for ns in namespaces {
        cmd.arg("--allow-unenforced").arg(ns);
    }
    // As CE's harness does, the gateway gets a clean environment, so nothing set in the
    // caller's shell changes what it serves.
    cmd.current_dir(tests_dir)
        .env_clear()
        .env("USAGE_DISABLE", "1");
    for keep in ["PATH", "HOME", "TMPDIR"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(file2)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    Ok(Gateway { child, log })
}

/// Polls `/__health` until it answers 200, the gateway exits, or [`READY_TIMEOUT`] passes.
async fn wait_ready(gateway: &mut Gateway, port: u16) -> Result<(), String> {
    let health = spec::Input {
        method: "GET".to_owned(),
        url: format!("http://127.0.0.1:{port}/__health"),
        header: Vec::new(),
        body: None,
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(why) = gateway.exited() {
            return Err(format!("{why} before it was ready\n{}", gateway.log_tail()));
        }
        if let Ok(a) = client::send(&health, Duration::from_secs(1)).await
            && a.status == 200
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "sluice was not healthy within {READY_TIMEOUT:?}\n{}",
                gateway.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// When a patched config serves the spec's endpoint differently: a skip reason when it is
/// gone, a note when it changed.
fn override_effect(fixture: &Value, served: &Value, input: &spec::Input) -> (Option<String>, bool) {
    let Ok(url) = ce_specs::url::Url::parse(&input.url) else {
        return (None, false);
    };
    let original = classify::find_endpoint(fixture, &input.method, &url.path);
    let patched = classify::find_endpoint(served, &input.method, &url.path);
    match (original, patched) {
        (Some(e), None) => (
            Some(format!(
                "its endpoint `{}` is not in the --config-override config",
                e.get("endpoint").and_then(Value::as_str).unwrap_or("")
            )),
            false,
        ),
        (Some(a), Some(b)) => (None, a != b),
        _ => (None, false),
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let tests_dir = absolute(&args.tests_dir, "krakend-ce tests directory")?;
    let fixture_path = tests_dir.join(FIXTURE);
    let specs_dir = tests_dir.join("fixtures/specs");
    let fixture = read_json(&fixture_path)?;
    let (config_arg, served) = match &args.config_override {
        Some(p) => {
            let p = absolute(p, "--config-override")?;
            let served = read_json(&p)?;
            (p, served)
        }
        None => (PathBuf::from(FIXTURE), fixture.clone()),
    };
    let bin = match std::env::var_os("SLUICE_BIN") {
        Some(b) => PathBuf::from(b),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/sluice"),
    };
    let bin = absolute(
        &bin,
        "sluice binary (set SLUICE_BIN or run `cargo build -p sluice`)",
    )?;
    let version = sluice_version(&bin)?;

    let mut specs = spec::read_dir(&specs_dir)?;
    if !args.only.is_empty() {
        for name in &args.only {
            if !specs.iter().any(|s| &s.name == name) {
                return Err(format!("no spec {name}.json in {}", specs_dir.display()));
            }
        }
        specs.retain(|s| args.only.contains(&s.name));
    }
    for s in &mut specs {
        if let Ok(case) = &mut s.case {
            check::normalise(case, &version);
        }
    }

    let port = served
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(8080);
    // Someone else's server on the port would answer in the gateway's place.
    std::net::TcpListener::bind(("0.0.0.0", port))
        .map_err(|e| format!("port {port} is not free ({e}); the specs need it for the gateway"))?;
    if let Some(keys) = std::fs::read_to_string(tests_dir.join("integration.go"))
        .ok()
        .and_then(|go| ce_exact::jwk_set_from_harness(&go))
    {
        ce_exact::serve_jwk_set(keys);
    }
    let _mock = ce_exact::serve(ce_exact::ADDR)
        .await
        .map_err(|e| format!("cannot serve CE's mock backend on {}: {e}", ce_exact::ADDR))?;

    let namespaces = classify::unenforced_namespaces(&served);
    let mut gateway = start_gateway(&bin, &tests_dir, &config_arg, &namespaces)?;
    println!(
        "sluice {version} ({}) serving {} from {}",
        bin.display(),
        config_arg.display(),
        tests_dir.display()
    );
    println!("  --allow-unenforced {}", namespaces.join(" "));
    println!("  gateway log: {}", gateway.log.display());
    wait_ready(&mut gateway, port).await?;

    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for s in &specs {
        let case = match &s.case {
            Ok(case) => case,
            Err(e) => {
                failed += 1;
                println!("FAIL  {}\n        bad spec file: {e}", s.name);
                continue;
            }
        };
        // What the spec exercises is read from the unchanged fixture; a patched copy can only
        // take an endpoint away.
        let fixture_skip = ce_specs::skip_reason(case, &fixture);
        let (gone, patched) = if args.config_override.is_some() {
            override_effect(&fixture, &served, &case.input)
        } else {
            (None, false)
        };
        let outcome = match fixture_skip.or(gone) {
            Some(reason) => Outcome::Skip(reason),
            None => ce_specs::run(case, &fixture, REQUEST_TIMEOUT).await,
        };
        let note = if patched {
            "  [endpoint patched by --config-override]"
        } else {
            ""
        };
        match outcome {
            Outcome::Pass => {
                passed += 1;
                println!("PASS  {}{note}", s.name);
            }
            Outcome::Fail(diffs) => {
                failed += 1;
                println!("FAIL  {}{note}", s.name);
                for d in diffs {
                    println!("        {d}");
                }
            }
            Outcome::Skip(reason) => {
                skipped += 1;
                println!("SKIP  {}: {reason}", s.name);
            }
        }
        if let Some(why) = gateway.exited() {
            return Err(format!(
                "{why} while running {}\n{}",
                s.name,
                gateway.log_tail()
            ));
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    Ok(failed == 0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Dropping `run` (deadline, Ctrl-C) drops the gateway, which kills it.
    let result = tokio::select! {
        r = tokio::time::timeout(RUN_DEADLINE, run(args)) => {
            r.unwrap_or_else(|_| Err(format!("the run took longer than {RUN_DEADLINE:?}")))
        }
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("krakend-ce-specs: {e}");
            ExitCode::from(2)
        }
    }
}
