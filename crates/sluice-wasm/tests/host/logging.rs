//! The `log` import becomes a tracing event with target `sluice::plugin` and the plugin's name.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::common::*;
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_log_lines_are_tracing_events() {
    let captured = Captured::default();
    let writer = captured.clone();
    // The subscriber is the whole test binary's: only the plugin's target is kept, so the
    // other tests' events (wasmtime, cranelift) are neither captured nor slowed down.
    tracing_subscriber::fmt()
        .with_env_filter("sluice::plugin=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let plugin = load("client-example");
    let backend = start_backend().await;
    let exec = build(
        &plugin,
        json!({"name": "client-example", "client-example": {"path": "/hijack"}}),
        &backend.url,
    )
    .expect("build");
    call(
        &exec,
        request("GET", &format!("{}/hijack", backend.url)),
        std::time::Duration::from_secs(1),
    )
    .await
    .expect("call");

    let text =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("client-example: answering /hijack"))
        .unwrap_or_else(|| panic!("no plugin log line in:\n{text}"));
    assert!(
        line.contains("DEBUG") && line.contains("sluice::plugin"),
        "{line}"
    );
    assert!(line.contains("plugin=\"client-example\""), "{line}");
}
