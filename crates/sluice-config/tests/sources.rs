//! The config as it reaches the reader: YAML and TOML files, the environment overrides and the
//! flexible configuration, each with the file, line and JSON path of its problems.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use sluice_config::{Config, EnvOverride, Environment, LoadOptions, load_with, parse_str_with};

/// A fresh folder for one test (`sluice-sources-<name>-…`), removed when dropped.
fn folder(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("sluice-sources-{name}-"))
        .tempdir()
        .unwrap()
}

fn options(vars: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        allow_unenforced: vec!["plugin/http-client".to_owned(), "qos/*".to_owned()],
        environment: vars.iter().copied().collect::<Environment>(),
        ..LoadOptions::default()
    }
}

fn load(path: &Path, vars: &[(&str, &str)]) -> Result<Config, String> {
    load_with(path, &options(vars)).map_err(|e| e.to_string())
}

/// Debug text of a config, its source path left out.
fn shape(mut config: Config) -> String {
    config.source = PathBuf::new();
    format!("{config:?}")
}

#[test]
fn yaml_and_toml_read_the_same_as_json() {
    let json = shape(load(Path::new("tests/fixtures/full.json"), &[]).unwrap());
    for other in ["tests/fixtures/full.yaml", "tests/fixtures/full.toml"] {
        let config = load(Path::new(other), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(shape(config), json, "{other}");
    }
}

#[test]
fn yaml_static_data_keeps_number_text() {
    let text = "version: 3\nhost: [\"http://127.0.0.1:9000\"]\nendpoints:\n  - endpoint: /p\n    \
                extra_config:\n      proxy:\n        static:\n          strategy: always\n          \
                data: {price: 120.50, big: 9007199254740993}\n    backend:\n      - url_pattern: /p\n";
    let config = parse_str_with(text, Path::new("k.yaml"), &LoadOptions::default()).unwrap();
    let data = &config.endpoints[0]
        .proxy
        .static_response
        .as_ref()
        .unwrap()
        .data;
    assert_eq!(
        serde_json::to_string(data).unwrap(),
        r#"{"big":9007199254740993,"price":120.50}"#
    );
}

#[test]
fn hcl_and_properties_are_refused_by_name() {
    let e = parse_str_with("x", Path::new("krakend.hcl"), &LoadOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "krakend.hcl: a .hcl config is not supported: Sluice reads JSON, YAML (.yaml, .yml) and \
         TOML (.toml), as KrakenD v2.6 and later do; convert the file to one of them"
    );
}

#[test]
fn env_overrides_root_values_that_exist() {
    let temp = folder("env");
    let dir = temp.path();
    let path = dir.join("krakend.yaml");
    std::fs::write(
        &path,
        "version: 3\nport: 8080\ntimeout: 2s\nname: base\necho_endpoint: false\n",
    )
    .unwrap();
    let config = load(
        &path,
        &[
            ("KRAKEND_PORT", "9000"),
            ("KRAKEND_TIMEOUT", "500ms"),
            ("SLUICE_TIMEOUT", "750ms"),
            ("KRAKEND_ECHO_ENDPOINT", "true"),
            ("KRAKEND_CACHE_TTL", "1h"),
        ],
    )
    .unwrap();
    assert_eq!(config.port, 9000);
    assert_eq!(
        config.timeout,
        std::time::Duration::from_millis(750),
        "SLUICE_ wins"
    );
    assert!(config.echo_endpoint);
    assert!(
        config.cache_ttl.is_zero(),
        "cache_ttl is not in the file: not added"
    );
    assert_eq!(
        config.env_overrides,
        [
            EnvOverride {
                key: "echo_endpoint".into(),
                variable: "KRAKEND_ECHO_ENDPOINT".into()
            },
            EnvOverride {
                key: "port".into(),
                variable: "KRAKEND_PORT".into()
            },
            EnvOverride {
                key: "timeout".into(),
                variable: "SLUICE_TIMEOUT".into()
            },
        ]
    );

    // A value of the wrong type names the variable; a value the reader refuses says where it
    // came from; both are listed with the file's own problems.
    let e = load(
        &path,
        &[
            ("KRAKEND_PORT", "70000"),
            ("KRAKEND_ECHO_ENDPOINT", "maybe"),
            ("SLUICE_TIMEOUT", "soon"),
        ],
    )
    .unwrap_err();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(
        lines[0].ends_with(
            "krakend.yaml: echo_endpoint: the environment variable KRAKEND_ECHO_ENDPOINT=\"maybe\" \
             cannot override it: the config has a boolean here, so true or false (or 1, 0, t, f) \
             is expected"
        ),
        "{e}"
    );
    assert!(
        lines[1].ends_with(
            "krakend.yaml: port: expected a port number from 0 to 65535, found 70000 (the value \
             comes from the environment variable KRAKEND_PORT)"
        ),
        "{e}"
    );
    assert!(
        lines[2].contains("timeout: ") && lines[2].contains("SLUICE_TIMEOUT"),
        "{e}"
    );
}

/// A flexible configuration: settings, a partial, a template; FC_OUT written in its format.
#[test]
fn flexible_configuration() {
    let temp = folder("fc");
    let dir = temp.path();
    for sub in ["settings", "partials", "templates"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(
        dir.join("settings/service.json"),
        r#"{"port": 8091, "hosts": ["http://127.0.0.1:9000"], "endpoints": ["/a", "/b"]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("partials/backend_extra.json"),
        r#"{"backend/http": {"return_error_code": true}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("templates/endpoint.tmpl"),
        "{\"endpoint\": {{ quote . }}, \"backend\": [{\"url_pattern\": {{ quote . }}, \
         \"extra_config\": {{ include \"backend_extra.json\" }}}]}",
    )
    .unwrap();
    let main = dir.join("krakend.tmpl");
    std::fs::write(
        &main,
        "{\n  \"version\": 3,\n  \"name\": \"{{ env \"STAGE\" | default \"dev\" }}\",\n  \
         \"port\": {{ .service.port }},\n  \"host\": {{ marshal .service.hosts }},\n  \
         \"endpoints\": [\n{{- range $i, $e := .service.endpoints }}{{ if $i }},{{ end }}\n    \
         {{ template \"endpoint.tmpl\" $e }}\n{{- end }}\n  ]\n}\n",
    )
    .unwrap();
    let out = dir.join("out.json");
    let (settings, partials, templates) = (
        dir.join("settings").display().to_string(),
        dir.join("partials").display().to_string(),
        dir.join("templates").display().to_string(),
    );
    let out_text = out.display().to_string();
    let fc = [
        ("FC_ENABLE", "1"),
        ("FC_SETTINGS", settings.as_str()),
        ("FC_PARTIALS", partials.as_str()),
        ("FC_TEMPLATES", templates.as_str()),
        ("FC_OUT", out_text.as_str()),
        ("STAGE", "prod"),
    ];
    let config = load(&main, &fc).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.name, "prod");
    assert_eq!(config.port, 8091);
    assert_eq!(config.endpoints.len(), 2);
    assert_eq!(config.endpoints[1].backends[0].url_pattern, "/b");
    assert!(config.endpoints[0].backends[0].http.return_error_code);
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.contains("\"endpoint\": \"/b\""), "{written}");

    // Without FC_ENABLE the template is read as it is, and is no JSON.
    let e = load(&main, &fc[1..]).unwrap_err();
    assert!(
        e.contains("malformed JSON") && e.contains("read as JSON"),
        "{e}"
    );

    // A rendered config that does not parse: the line is FC_OUT's.
    std::fs::write(
        dir.join("templates/endpoint.tmpl"),
        "{\"endpoint\": {{ . }}}",
    )
    .unwrap();
    let e = load(&main, &fc).unwrap_err();
    assert!(
        e.starts_with(&format!("{}:7:18: malformed JSON", out.display())),
        "{e}"
    );
    // ... and without FC_OUT, the message says how to see it.
    let e = load(&main, &fc[..4]).unwrap_err();
    assert!(e.contains("set FC_OUT=<file> to write it out"), "{e}");

    // A template that does not parse names its file and line.
    std::fs::write(dir.join("templates/endpoint.tmpl"), "{\n  {{ if . }}\n}").unwrap();
    let e = load(&main, &fc).unwrap_err();
    assert!(
        e.contains("templates/endpoint.tmpl:2:6: template: unexpected end of template in {{if}}"),
        "{e}"
    );
}
