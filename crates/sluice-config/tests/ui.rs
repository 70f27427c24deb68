//! Golden tests: every `tests/ui/<name>.json` (or `.yaml`, `.toml`) is an invalid config, and
//! `tests/ui/<name>.err` holds
//! the exact diagnostics it must produce. `SLUICE_BLESS=1 cargo test -p sluice-config --test ui`
//! rewrites the `.err` files from the current output.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

const UI_DIR: &str = "tests/ui";
const EXTENSIONS: [&str; 3] = ["json", "yaml", "toml"];

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(UI_DIR)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| EXTENSIONS.iter().any(|e| ext == *e))
        })
        // Keep the relative path, so the messages (and the goldens) do not depend on the checkout.
        .map(|path| Path::new(UI_DIR).join(path.file_name().unwrap()))
        .collect();
    cases.sort();
    cases
}

fn actual_output(case: &Path) -> String {
    match sluice_config::load(case) {
        Ok(_) => "(the config was accepted; a ui case must be rejected)\n".to_owned(),
        Err(diagnostics) => format!("{diagnostics}\n"),
    }
}

#[test]
fn ui() {
    let bless = std::env::var_os("SLUICE_BLESS").is_some_and(|v| v == "1");
    let cases = cases();
    assert!(!cases.is_empty(), "no cases in {UI_DIR}");

    let mut failures = Vec::new();
    for case in &cases {
        let actual = actual_output(case);
        let golden = case.with_extension("err");
        if bless {
            fs::write(&golden, &actual).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&golden)
            .unwrap_or_default()
            .replace("\r\n", "\n");
        if expected != actual {
            failures.push(format!(
                "--- {}\n--- expected\n{expected}--- actual\n{actual}",
                golden.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} ui cases differ (SLUICE_BLESS=1 rewrites the .err files):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Every `.err` file belongs to a case, so a renamed case does not leave a stale golden behind.
#[test]
fn no_orphan_goldens() {
    for entry in fs::read_dir(UI_DIR).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "err") {
            assert!(
                EXTENSIONS.iter().any(|e| path.with_extension(e).exists()),
                "{} has no .json, .yaml or .toml case",
                path.display()
            );
        }
    }
}
