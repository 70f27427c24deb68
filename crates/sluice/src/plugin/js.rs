//! `sluice plugin new --lang js` and `sluice plugin build` of a JavaScript plugin: a folder with
//! `package.json`, `plugin.js` on the Sluice JS SDK (`sluice.js`, from `plugins/sdk-js`), and
//! the WIT the SDK targets, built into a component with componentize-js (pinned in the
//! scaffold's `package.json` and `package-lock.json`, installed with `npm ci`).

use std::path::Path;
use std::process::{Command, ExitCode};

const TEMPLATE_PLUGIN: &str = include_str!("../../templates/js/plugin.js.tmpl");
const TEMPLATE_PLUGIN_HOOKS: &str = include_str!("../../templates/js/plugin_hooks.js.tmpl");
const TEMPLATE_PACKAGE: &str = include_str!("../../templates/js/package.json.tmpl");
const TEMPLATE_TEST: &str = include_str!("../../templates/js/plugin.test.js.tmpl");
const TEMPLATE_TEST_HOOKS: &str = include_str!("../../templates/js/plugin_hooks.test.js.tmpl");
const TEMPLATE_README: &str = include_str!("../../templates/js/README.md.tmpl");
const TEMPLATE_GITIGNORE: &str = include_str!("../../templates/js/gitignore.tmpl");
const SDK: &str = include_str!("../../../../plugins/sdk-js/sluice.js");
const SDK_TYPES: &str = include_str!("../../../../plugins/sdk-js/sluice.d.ts");
// What `import ... from 'sluice:plugin/host@0.2.0'` is under plain Node (`npm test`).
const SDK_TEST_HOST: &str = include_str!("../../../../plugins/sdk-js/test/host.mjs");
const SDK_TEST_REGISTER: &str = include_str!("../../../../plugins/sdk-js/test/register.mjs");
// The SDK's own package files: the scaffold pins exactly the npm packages the examples build with.
const SDK_PACKAGE: &str = include_str!("../../../../plugins/sdk-js/package.json");
const SDK_LOCK: &str = include_str!("../../../../plugins/sdk-js/package-lock.json");
const SDK_NAME: &str = "sluice-plugin-sdk-js";
const WIT: &str = include_str!("../../../../plugins/sdk/wit/0.2/plugin.wit");

/// The lowest Node.js major version componentize-js runs on.
const NODE_MAJOR: u32 = 20;
const INSTALL_NODE: &str = "install Node.js 20 or later with npm (https://nodejs.org, or Debian: apt-get install nodejs npm)";

/// Whether `dir` holds a JavaScript plugin (a `package.json`, and no `Cargo.toml`).
pub(super) fn is_project(dir: &Path) -> bool {
    dir.join("package.json").is_file() && !dir.join("Cargo.toml").exists()
}

/// The `devDependencies` object of the SDK's `package.json`, as JSON text.
fn dev_dependencies() -> Result<String, String> {
    let package: serde_json::Value = serde_json::from_str(SDK_PACKAGE)
        .map_err(|e| format!("plugins/sdk-js/package.json: {e}"))?;
    let deps = package
        .get("devDependencies")
        .ok_or("plugins/sdk-js/package.json has no devDependencies")?;
    serde_json::to_string_pretty(deps)
        .map(|text| text.replace('\n', "\n  "))
        .map_err(|e| e.to_string())
}

/// The files of a new JavaScript plugin (the SDK and its lock vendored beside it).
pub(super) fn files(name: &str, hooks: bool) -> Result<Vec<(&'static str, String)>, String> {
    let deps = dev_dependencies()?;
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{dev_dependencies}}", &deps)
    };
    // The lock names the package: the root entry and `packages[""]`.
    let lock = SDK_LOCK.replacen(
        &format!("\"name\": \"{SDK_NAME}\""),
        &format!("\"name\": \"{name}\""),
        2,
    );
    let (plugin, test) = if hooks {
        (TEMPLATE_PLUGIN_HOOKS, TEMPLATE_TEST_HOOKS)
    } else {
        (TEMPLATE_PLUGIN, TEMPLATE_TEST)
    };
    Ok(vec![
        ("package.json", fill(TEMPLATE_PACKAGE)),
        ("package-lock.json", lock),
        ("plugin.js", fill(plugin)),
        ("plugin.test.js", fill(test)),
        ("test/host.mjs", SDK_TEST_HOST.to_owned()),
        ("test/register.mjs", SDK_TEST_REGISTER.to_owned()),
        ("sluice.js", SDK.to_owned()),
        ("sluice.d.ts", SDK_TYPES.to_owned()),
        ("wit/plugin.wit", WIT.to_owned()),
        ("README.md", fill(TEMPLATE_README)),
        (".gitignore", TEMPLATE_GITIGNORE.to_owned()),
    ])
}

/// The `name` and entry file (`main`, default `plugin.js`) of `package.json`.
fn read_package(dir: &Path) -> Result<(String, String), String> {
    let path = dir.join("package.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let package: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = match package.get("name") {
        Some(serde_json::Value::String(name)) if super::valid_name(name) => name.clone(),
        Some(serde_json::Value::String(name)) => {
            return Err(format!(
                "{}: \"name\" {name:?} is not a plugin name (lower-case letters, digits and '-', starting with a letter)",
                path.display()
            ));
        }
        _ => {
            return Err(format!(
                "{}: no \"name\" (is this a plugin made by `sluice plugin new --lang js`?)",
                path.display()
            ));
        }
    };
    let main = match package.get("main") {
        None => "plugin.js".to_owned(),
        Some(serde_json::Value::String(main)) => main.clone(),
        Some(other) => {
            return Err(format!(
                "{}: \"main\" must be a file name, found {other}",
                path.display()
            ));
        }
    };
    Ok((name, main))
}

/// Runs `program --version`: its output, or why it cannot run.
fn version(program: &str) -> Result<String, String> {
    match Command::new(program).arg("--version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Ok(out) => Err(format!("`{program} --version` failed ({})", out.status)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{program} is not installed (not on PATH)"))
        }
        Err(e) => Err(format!("cannot run {program}: {e}")),
    }
}

/// Checks node (and its version); `Err` is the message for the user.
fn check_node() -> Result<(), String> {
    let node = version("node").map_err(|e| format!("{e}: {INSTALL_NODE}"))?;
    let major = node
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(major) if major >= NODE_MAJOR => Ok(()),
        _ => Err(format!(
            "node {node} is too old for componentize-js: {INSTALL_NODE}"
        )),
    }
}

/// `sluice plugin build` in a JavaScript plugin folder: `npm ci` when componentize-js is not
/// installed there, then componentize-js into `NAME.wasm` (written whole, then renamed).
pub(super) fn build(dir: &Path) -> ExitCode {
    match try_build(dir) {
        Ok(out) => {
            println!("Built {out}: copy it into plugin.folder");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn try_build(dir: &Path) -> Result<String, String> {
    let (name, main) = read_package(dir)?;
    if !dir.join(&main).is_file() {
        return Err(format!(
            "no {main} in {}: the plugin's entry file (package.json \"main\", default plugin.js)",
            dir.display()
        ));
    }
    if !dir.join("wit").is_dir() {
        return Err(format!(
            "no wit folder in {}: it holds the plugin.wit the component targets (`sluice plugin new --lang js` writes it)",
            dir.display()
        ));
    }
    check_node()?;
    let componentize = dir.join("node_modules/@bytecodealliance/componentize-js/src/cli.js");
    if !componentize.is_file() {
        version("npm").map_err(|e| format!("{e}: {INSTALL_NODE}"))?;
        // `npm ci` installs exactly the lock file's versions; without a lock, `npm install`.
        let install = if dir.join("package-lock.json").is_file() {
            "ci"
        } else {
            "install"
        };
        println!(
            "Installing the npm packages (npm {install}) in {}",
            dir.display()
        );
        let status = Command::new("npm")
            .args([install, "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .map_err(|e| format!("cannot run npm: {e}"))?;
        if !status.success() {
            return Err(format!(
                "npm {install} failed ({status}) in {}: see npm's errors above",
                dir.display()
            ));
        }
        if !componentize.is_file() {
            return Err(format!(
                "npm {install} did not install @bytecodealliance/componentize-js in {}: add it to package.json's devDependencies",
                dir.display()
            ));
        }
    }
    let staging = dir.join(".build");
    std::fs::create_dir_all(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let built = staging.join(format!("{name}.wasm"));
    let _ = std::fs::remove_file(&built);
    // componentize-js's own output (its errors included) goes straight to the user's terminal.
    let status = Command::new("node")
        .arg(&componentize)
        .arg(&main)
        .args(["--wit", "wit", "--world-name", "http-client"])
        .args(["--disable", "http", "fetch-event"])
        .arg("-o")
        .arg(&built)
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run node: {e}"))?;
    if !status.success() || !built.is_file() {
        return Err(format!(
            "componentize-js failed ({status}): see its errors above ({})",
            dir.join(&main).display()
        ));
    }
    let out = dir.join(format!("{name}.wasm"));
    std::fs::rename(&built, &out)
        .map_err(|e| format!("cannot move {} to {}: {e}", built.display(), out.display()))?;
    Ok(format!("{} (plugin name {name:?})", out.display()))
}
