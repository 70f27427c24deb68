#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::json;

use super::*;

/// A fresh folder for one test (`sluice-fc-<name>-…`), removed when dropped.
fn folder(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("sluice-fc-{name}-"))
        .tempdir()
        .unwrap()
}

fn env(vars: &[(&str, &str)]) -> Environment {
    vars.iter().copied().collect()
}

/// Renders `text` with `data` as settings (no folders).
fn render_with(text: &str, data: Value) -> Result<String, String> {
    let parsed =
        parse::parse(text).map_err(|e| format!("{}:{}: {}", e.pos.line, e.pos.col, e.message))?;
    let mut set = Set::default();
    set.templates.insert(
        "t".into(),
        Template {
            file: 0,
            pos: Pos::default(),
            body: parsed.body,
        },
    );
    for (name, pos, body, _) in parsed.defines {
        set.templates.insert(name, Template { file: 0, pos, body });
    }
    let environment = env(&[("STAGE", "prod")]);
    let host = FcHost {
        env: &environment,
        partials: None,
    };
    exec::execute(&set, &host, "t", &data)
        .map_err(|e| format!("{}:{}: {}", e.pos.line, e.pos.col, e.message))
}

fn render(text: &str) -> String {
    render_with(
        text,
        json!({"svc": {"port": 8090, "hosts": ["http://a", "http://b"], "on": true,
                       "name": "x", "empty": "", "price": 1.5},
               "list": [{"path": "/a"}, {"path": "/b"}, {"path": "/c"}]}),
    )
    .unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn render_error(text: &str) -> String {
    match render_with(text, json!({"svc": {"port": 1}})) {
        Ok(out) => panic!("{text} rendered: {out}"),
        Err(e) => e,
    }
}

#[test]
fn fields_variables_and_pipelines() {
    assert_eq!(render("{{ .svc.port }}"), "8090");
    assert_eq!(render("{{ .svc.name | upper | quote }}"), "\"X\"");
    assert_eq!(render("{{ $p := .svc.port }}{{ $p }}"), "8090");
    assert_eq!(render("{{ $p := 1 }}{{ $p = 2 }}{{ $p }}"), "2");
    assert_eq!(render("{{ (index .list 1).path }}"), "/b");
    assert_eq!(
        render("{{ with .svc }}{{ .name }}{{ $.svc.port }}{{ end }}"),
        "x8090"
    );
    assert_eq!(
        render("{{ marshal .svc.hosts }}"),
        r#"["http://a","http://b"]"#
    );
    assert_eq!(render("{{ env \"STAGE\" }}{{ env \"NOPE\" }}"), "prod");
    assert_eq!(render("{{ default \"d\" .svc.missing }}"), "d");
    assert_eq!(render("{{ .svc.price }}"), "1.5");
    assert_eq!(render("{{ 'a' }} {{ -3 }} {{ 0x10 }}"), "97 -3 16");
    assert_eq!(render(r#"{{ "a\tb" }}{{ `raw\n` }}"#), "a\tbraw\\n");
}

#[test]
fn control_structures() {
    assert_eq!(
        render("{{ range $i, $e := .list }}{{ if $i }},{{ end }}\"{{ $e.path }}\"{{ end }}"),
        r#""/a","/b","/c""#
    );
    assert_eq!(render("{{ range .list }}{{ .path }}{{ end }}"), "/a/b/c");
    assert_eq!(
        render("{{ range $e := .list }}{{ $e.path }}{{ end }}"),
        "/a/b/c"
    );
    assert_eq!(
        render("{{ range $k, $v := .svc }}{{ $k }};{{ end }}"),
        "empty;hosts;name;on;port;price;"
    );
    assert_eq!(
        render("{{ range .nothing }}x{{ else }}none{{ end }}"),
        "none"
    );
    assert_eq!(
        render(
            "{{ range .list }}{{ if eq .path \"/b\" }}{{ continue }}{{ end }}{{ .path }}{{ end }}"
        ),
        "/a/c"
    );
    assert_eq!(
        render("{{ range .list }}{{ if eq .path \"/b\" }}{{ break }}{{ end }}{{ .path }}{{ end }}"),
        "/a"
    );
    assert_eq!(render("{{ range 3 }}{{ . }}{{ end }}"), "012");
    assert_eq!(
        render("{{ if .svc.empty }}a{{ else if .svc.on }}b{{ else }}c{{ end }}"),
        "b"
    );
    assert_eq!(render("{{ with .svc.missing }}a{{ else }}b{{ end }}"), "b");
    assert_eq!(
        render("{{ with .svc.missing }}a{{ else with .svc.name }}{{ . }}{{ end }}"),
        "x"
    );
    assert_eq!(
        render("{{ if and .svc.on .svc.empty }}y{{ else }}n{{ end }}"),
        "n"
    );
    assert_eq!(render("{{ or .svc.empty \"z\" }}"), "z");
    assert_eq!(render("{{ if not .svc.on }}y{{ else }}n{{ end }}"), "n");
    // Variables declared in a block end with it.
    assert!(
        render_error("{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}").contains("undefined variable: $x")
    );
}

#[test]
fn trim_markers_keep_yaml_tidy() {
    assert_eq!(
        render("hosts:\n{{- range .svc.hosts }}\n  - {{ . }}\n{{- end }}\n"),
        "hosts:\n  - http://a\n  - http://b\n"
    );
}

#[test]
fn templates_and_defines() {
    assert_eq!(
        render(
            "{{ define \"ep\" }}[{{ .path }}]{{ end }}{{ range .list }}{{ template \"ep\" . }}{{ end }}"
        ),
        "[/a][/b][/c]"
    );
    assert_eq!(render("{{ block \"b\" .svc }}{{ .name }}{{ end }}"), "x");
    assert_eq!(
        render("{{ $d := dict \"a\" 1 }}{{ $_ := set $d \"b\" 2 }}{{ marshal $d }}"),
        r#"{"a":1,"b":2}"#
    );
}

#[test]
fn errors_name_the_place() {
    assert_eq!(
        render_error("{\n  \"port\": {{ .svc.nope }}\n}"),
        "2:14: the action has no value (a missing setting or null): KrakenD would write \"<no value>\" into the config; use default, or test it with if or with"
    );
    assert!(render_error("{{ .a.b }}").contains("nil pointer evaluating .a.b"));
    assert!(render_error("{{ .svc.port.x }}").contains("can't evaluate field x in a number"));
    assert!(render_error("{{ template \"none\" }}").contains("no template \"none\""));
    assert!(render_error("{{ fail \"stop here\" }}").contains("error calling fail: stop here"));
    assert!(
        render_error("{{ range \"s\" }}{{ end }}").contains("range can't iterate over a string")
    );
    assert!(render_error("{{ include \"x.json\" }}").contains("FC_PARTIALS is not set"));
}

#[test]
fn work_output_and_depth_are_bounded() {
    let e = render_error("{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}");
    assert!(e.contains("more than 64 deep"), "{e}");
    let nested = format!(
        "{{{{ define \"n\" }}}}{}{{{{ template \"n\" . }}}}{}{{{{ end }}}}{{{{ template \"n\" . }}}}",
        "{{ if 1 }}".repeat(20),
        "{{ end }}".repeat(20)
    );
    let e = render_error(&nested);
    assert!(
        e.contains("control structures and template calls open at once"),
        "{e}"
    );
    let e = render_error("{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}");
    assert!(e.contains("steps of work"), "{e}");
    let e = render_error("{{ $s := repeat 1000000 \"x\" }}{{ range until 100 }}{{ $s }}{{ end }}");
    assert!(e.contains("larger than 16 MiB"), "{e}");
}

#[test]
fn renders_with_settings_partials_and_templates() {
    let temp = folder("full");
    let dir = temp.path();
    std::fs::create_dir_all(dir.join("settings")).unwrap();
    std::fs::create_dir_all(dir.join("partials")).unwrap();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("settings/service.json"),
        r#"{"port": 8090, "price": 1.10}"#,
    )
    .unwrap();
    std::fs::write(dir.join("settings/notes.txt"), "ignored").unwrap();
    std::fs::write(
        dir.join("partials/extra.json"),
        r#"{"k": "{{ not rendered }}"}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("templates/endpoint.tmpl"),
        "{{ define \"inner\" }}\"{{ . }}\"{{ end }}{\"endpoint\": {{ template \"inner\" .path }}}",
    )
    .unwrap();
    let main = dir.join("krakend.tmpl");
    let text = "{\"port\": {{ .service.port }}, \"price\": {{ .service.price }},\n\
                \"extra\": {{ include \"extra.json\" }},\n\
                \"ep\": {{ template \"endpoint.tmpl\" (dict \"path\" \"/a\") }}}";
    let fc = Settings {
        settings: Some(dir.join("settings")),
        partials: Some(dir.join("partials")),
        templates: Some(dir.join("templates")),
        out: None,
    };
    let out = super::render(&main, text, &fc, &env(&[])).unwrap();
    assert_eq!(
        out,
        "{\"port\": 8090, \"price\": 1.10,\n\"extra\": {\"k\": \"{{ not rendered }}\"},\n\"ep\": {\"endpoint\": \"/a\"}}"
    );

    // A broken template names its own file and line.
    std::fs::write(dir.join("templates/broken.tmpl"), "ok\n{{ if }}").unwrap();
    let errors = super::render(&main, text, &fc, &env(&[])).unwrap_err();
    let message = errors.to_string();
    assert!(
        message.contains("templates/broken.tmpl:2:4: template: missing value for command"),
        "{message}"
    );
    std::fs::remove_file(dir.join("templates/broken.tmpl")).unwrap();

    // An execution error in a sub-template names the sub-template's file.
    std::fs::write(dir.join("templates/endpoint.tmpl"), "\n{{ .nope.x }}").unwrap();
    let message = super::render(&main, text, &fc, &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("templates/endpoint.tmpl:2:4: template: nil pointer"),
        "{message}"
    );

    // A missing partial, and a settings file that is not an object.
    std::fs::write(dir.join("templates/endpoint.tmpl"), "x").unwrap();
    std::fs::remove_file(dir.join("partials/extra.json")).unwrap();
    let message = super::render(&main, text, &fc, &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("krakend.tmpl:2:13: template: error calling include: the partial")
            && message.contains("extra.json: cannot read the file"),
        "{message}"
    );
    std::fs::write(dir.join("settings/bad.json"), "[1]").unwrap();
    let message = super::render(&main, text, &fc, &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("bad.json: a settings file holds a JSON object, found an array"),
        "{message}"
    );
}

#[test]
fn duplicate_definitions() {
    let temp = folder("dup");
    let dir = temp.path();
    std::fs::write(dir.join("a.tmpl"), "{{ define \"x\" }}1{{ end }}").unwrap();
    std::fs::write(dir.join("b.tmpl"), "{{ define \"x\" }}2{{ end }}").unwrap();
    let fc = Settings {
        settings: None,
        partials: None,
        templates: Some(dir.to_path_buf()),
        out: None,
    };
    let main = dir.join("main.tmpl");
    let message = super::render(&main, "{{ template \"x\" }}", &fc, &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("the template \"x\" is defined twice"),
        "{message}"
    );
    // A define replaces a block's default.
    std::fs::remove_file(dir.join("b.tmpl")).unwrap();
    let out = super::render(&main, "{{ block \"x\" . }}default{{ end }}", &fc, &env(&[])).unwrap();
    assert_eq!(out, "1");
}

#[test]
fn settings_from_the_environment() {
    assert_eq!(Settings::from_env(&env(&[])), None);
    assert_eq!(Settings::from_env(&env(&[("FC_ENABLE", "")])), None);
    let fc = Settings::from_env(&env(&[("FC_ENABLE", "0"), ("FC_OUT", "out.json")])).unwrap();
    assert_eq!(fc.out, Some(PathBuf::from("out.json")));
    assert_eq!(fc.settings, None);
}
