//! `sluice plugin new --lang python` and `sluice plugin build` of a Python plugin: a folder with
//! `app.py` (the plugin), `sluice_plugin.py` (the SDK, `plugins/sdk-python`), `wit/plugin.wit`
//! (the 0.2.0 contract) and `pyproject.toml` (`[project] name` is the plugin's name), built
//! with componentize-py into `NAME.wasm`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const TEMPLATE_APP: &str = include_str!("../../templates/python/app.py.tmpl");
const TEMPLATE_APP_HOOKS: &str = include_str!("../../templates/python/app_hooks.py.tmpl");
const TEMPLATE_PYPROJECT: &str = include_str!("../../templates/python/pyproject.toml.tmpl");
const TEMPLATE_README: &str = include_str!("../../templates/python/README.md.tmpl");
const TEMPLATE_GITIGNORE: &str = include_str!("../../templates/python/gitignore.tmpl");
const SDK: &str = include_str!("../../../../plugins/sdk-python/sluice_plugin.py");

/// The componentize-py the SDK is built and tested with (as `plugins/sdk-python/build.sh`).
const COMPONENTIZE_PY: &str = "0.25.1";
/// The WIT world of the SDK's contract.
const WORLD: &str = "http-client";

/// The files of a new Python plugin named `name` (handle mode, or hooks mode with `hooks`).
pub(super) fn files(name: &str, hooks: bool) -> Vec<(&'static str, String)> {
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{componentize_py}}", COMPONENTIZE_PY)
    };
    vec![
        ("pyproject.toml", fill(TEMPLATE_PYPROJECT)),
        (
            "app.py",
            fill(if hooks {
                TEMPLATE_APP_HOOKS
            } else {
                TEMPLATE_APP
            }),
        ),
        ("README.md", fill(TEMPLATE_README)),
        (".gitignore", TEMPLATE_GITIGNORE.to_owned()),
        ("sluice_plugin.py", SDK.to_owned()),
        ("wit/plugin.wit", super::WIT_0_2.to_owned()),
    ]
}

/// Whether `dir` holds a Python plugin (its `pyproject.toml` or `app.py`).
pub(super) fn is_project(dir: &Path) -> bool {
    dir.join("pyproject.toml").is_file() || dir.join("app.py").is_file()
}

/// `sluice plugin build DIR` for a Python plugin: componentize-py, then `DIR/NAME.wasm`
/// written atomically.
pub(super) fn build(dir: &Path) -> ExitCode {
    match try_build(dir) {
        Ok(out) => {
            println!(
                "Built {} (plugin name {:?}): copy it into plugin.folder",
                out.display(),
                out.file_stem().unwrap_or_default().to_string_lossy()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn try_build(dir: &Path) -> Result<PathBuf, String> {
    let app = dir.join("app.py");
    if !app.is_file() {
        return Err(format!(
            "no app.py in {}: a Python plugin (made by `sluice plugin new NAME --lang python`) defines its Handler there",
            dir.display()
        ));
    }
    let name = plugin_name(dir)?;
    let wit = dir.join("wit");
    if !wit.join("plugin.wit").is_file() {
        return Err(format!(
            "no wit/plugin.wit in {}: `sluice plugin new NAME --lang python` writes the contract there",
            dir.display()
        ));
    }
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let shown = PathBuf::from(&python).display().to_string();
    ensure_componentize_py(&python, &shown)?;

    // Built from a copy of the sources: the bundled interpreter writes __pycache__ beside them.
    let stage = Stage::new()?;
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "py") && path.is_file() {
            let to = stage.0.join(entry.file_name());
            std::fs::copy(&path, &to)
                .map_err(|e| format!("cannot copy {} to {}: {e}", path.display(), to.display()))?;
        }
    }
    // Beside the output so the rename is atomic; no ".wasm" in the name, so a plugin folder
    // holding it would not try to load a half-written file.
    let part = dir.join(format!(".{name}.part"));
    let out = dir.join(format!("{name}.wasm"));
    let status = Command::new(&python)
        .arg("-c")
        .arg(
            "import sys\nfrom componentize_py import script\nsys.argv[0] = 'componentize-py'\nsys.exit(script())",
        )
        .arg("-q")
        .arg("-d")
        .arg(&wit)
        .arg("-w")
        .arg(WORLD)
        .arg("componentize")
        .arg("app")
        .arg("-p")
        .arg(&stage.0)
        .arg("-o")
        .arg(&part)
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !status.success() {
        let _ = std::fs::remove_file(&part);
        return Err(format!(
            "componentize-py failed ({status}): see its errors above ({})",
            app.display()
        ));
    }
    std::fs::rename(&part, &out).map_err(|e| {
        let _ = std::fs::remove_file(&part);
        format!("cannot move {} to {}: {e}", part.display(), out.display())
    })?;
    Ok(out)
}

/// `[project] name` of `DIR/pyproject.toml`, which must be a valid plugin name.
fn plugin_name(dir: &Path) -> Result<String, String> {
    let manifest = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        format!(
            "cannot read {}: {e} (its [project] name is the plugin's name)",
            manifest.display()
        )
    })?;
    let mut in_project = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_project = line == "[project]";
        } else if in_project
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
        {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            if !super::valid_name(value) {
                return Err(format!(
                    "{}: [project] name {value:?} is not a plugin name (lower-case letters, digits and '-', starting with a letter)",
                    manifest.display()
                ));
            }
            return Ok(value.to_owned());
        }
    }
    Err(format!(
        "{}: no [project] name found (it is the plugin's name)",
        manifest.display()
    ))
}

/// Makes sure `python` can run componentize-py: installs the pinned version with pip when it is
/// missing, and says what to install when Python or pip is.
fn ensure_componentize_py(python: &std::ffi::OsStr, shown: &str) -> Result<(), String> {
    let probe = Command::new(python)
        .args([
            "-c",
            "from importlib.metadata import version; print(version('componentize-py'))",
        ])
        .stderr(Stdio::null())
        .output();
    let out = match probe {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{shown} not found: a Python plugin is built with Python 3 (3.9 or later) and pip; install them (Debian/Ubuntu: apt-get install python3 python3-pip), or set PYTHON to an interpreter"
            ));
        }
        Err(e) => return Err(format!("cannot run {shown}: {e}")),
    };
    if out.status.success() {
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if version != COMPONENTIZE_PY {
            eprintln!(
                "note: using componentize-py {version}; the SDK is tested with {COMPONENTIZE_PY}"
            );
        }
        return Ok(());
    }
    let pip = Command::new(python)
        .args(["-m", "pip", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !pip.is_ok_and(|s| s.success()) {
        return Err(format!(
            "componentize-py is not installed for {shown}, and pip is missing to install it: install pip (Debian/Ubuntu: apt-get install python3-pip; or {shown} -m ensurepip), or run `pip install componentize-py=={COMPONENTIZE_PY}` for that interpreter"
        ));
    }
    eprintln!("installing componentize-py=={COMPONENTIZE_PY} with {shown} -m pip");
    let installed = Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(format!("componentize-py=={COMPONENTIZE_PY}"))
        .status();
    if installed.is_ok_and(|s| s.success()) {
        Ok(())
    } else {
        Err(format!(
            "cannot install componentize-py=={COMPONENTIZE_PY} with {shown} -m pip (no network to PyPI? an externally managed Python? make a virtualenv, `pip install componentize-py=={COMPONENTIZE_PY}` in it and set PYTHON to its python)"
        ))
    }
}

/// A temporary folder, removed when dropped.
struct Stage(PathBuf);

impl Stage {
    fn new() -> Result<Self, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "sluice-plugin-build-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(Stage(path))
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaffold_names_the_plugin_everywhere() {
        for hooks in [false, true] {
            let files = files("py-demo", hooks);
            let text = |name: &str| {
                files
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default()
            };
            assert!(text("pyproject.toml").contains("name = \"py-demo\""));
            assert!(text("app.py").contains("Handler = sp.export(MyPlugin)"));
            assert_eq!(text("app.py").contains("sp.Hooks.ON_REQUEST"), hooks);
            assert!(
                !files.iter().any(|(_, t)| t.contains("{{")),
                "a placeholder is left"
            );
        }
    }

    #[test]
    fn the_name_comes_from_pyproject() {
        let folder = tempfile::Builder::new()
            .prefix("sluice-py-name-")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        let dir = folder.path();
        let manifest = dir.join("pyproject.toml");
        std::fs::write(
            &manifest,
            "[tool.x]\nname = \"no\"\n[project]\nname = \"py-ok\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plugin_name(dir), Ok("py-ok".to_owned()));
        std::fs::write(&manifest, "[project]\nname = \"Bad_Name\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(plugin_name(dir).is_err_and(|e| e.contains("not a plugin name")));
        std::fs::write(&manifest, "[project]\nversion = \"1\"\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(plugin_name(dir).is_err_and(|e| e.contains("no [project] name")));
    }
}
