//! Comparing an answer with a spec's `out`, the way CE's `assertResponse` does, and saying
//! what differed.
//!
//! - status: equal.
//! - each expected header (name canonicalised): the answer's values, in order, equal the list;
//!   a header the answer lacks is fine only when the list is `[""]` (or empty).
//! - `schema`, when present and not empty, replaces the body check; an empty body fails.
//! - `body`: a string is compared with the body's text byte for byte; anything else with the
//!   body decoded as JSON (numbers compared as Go's `float64`, a body that is not JSON decodes
//!   to `null`); a missing or `null` body is not checked.
//!
//! The only rewriting is [`normalise`]: Sluice's documented name in place of KrakenD's.

use serde_json::Value;

use super::schema;
use super::spec::{Case, Output};
use crate::go;

/// An answer as the client saw it.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Header (name, value) pairs in arrival order, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body, already decompressed if it was gzip-encoded.
    pub body: Vec<u8>,
}

impl Answer {
    /// Every value of `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The outcome of one comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Everything matched.
    Pass,
    /// What differed, one line each.
    Fail(Vec<String>),
    /// The spec asks for something this runner cannot check (a schema keyword).
    Unsupported(String),
}

/// Sluice's departure from KrakenD's name, documented in the README ("Differences from
/// KrakenD") and in the spec's "How Sluice reads this document": `KrakenD Version <v>` is
/// `Sluice Version <sluice_version>` (User-Agent, `X-Forwarded-Via`, in bodies that echo them)
/// and the response header `X-KrakenD: Version <v>` is `X-Sluice: Version <sluice_version>`.
/// `X-KrakenD-Completed` keeps its name. Applied to the case and its `next` cases.
pub fn normalise(case: &mut Case, sluice_version: &str) {
    let out = &mut case.output;
    for (name, values) in &mut out.header {
        if name.eq_ignore_ascii_case("x-krakend") {
            "X-Sluice".clone_into(name);
            for v in values.iter_mut() {
                if v.starts_with("Version ") {
                    *v = format!("Version {sluice_version}");
                }
            }
        }
        for v in values.iter_mut() {
            *v = rename_version(v, sluice_version);
        }
    }
    if let Some(body) = &mut out.body {
        rename_in_json(body, sluice_version);
    }
    expect_body_length(case);
    for next in &mut case.next {
        normalise(next, sluice_version);
    }
}

/// Sluice's second departure a CE spec can see (README, "Differences from KrakenD"): a request
/// body reaches the backend with its `Content-Length`, where KrakenD streams it chunked unless
/// the client's `Content-Length` header is forwarded (backends that do not read chunked bodies
/// get them empty: lura#213, lura#234). So where a spec sends a body and expects CE's echo to
/// list the backend's headers without a length, the echo is expected to carry the body's.
fn expect_body_length(case: &mut Case) {
    let Some(sent) = &case.input.body else {
        return;
    };
    let length = match sent {
        Value::String(s) => s.len(),
        other => crate::go::json_marshal(other).len(),
    };
    let Some(Value::Object(echo)) = &mut case.output.body else {
        return;
    };
    let Some(Value::Object(headers)) = echo.get_mut("headers") else {
        return;
    };
    let framed = headers.keys().any(|k| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    if length > 0 && !framed {
        headers.insert(
            "Content-Length".to_owned(),
            Value::Array(vec![Value::String(length.to_string())]),
        );
    }
}

const KRAKEND_VERSION: &str = "KrakenD Version ";

/// `KrakenD Version <token>` -> `Sluice Version <sluice_version>`, where the token is the run
/// of version characters that follows (`2.13.8`, `undefined`).
pub fn rename_version(s: &str, sluice_version: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(KRAKEND_VERSION) {
        out.push_str(&rest[..i]);
        let after = &rest[i + KRAKEND_VERSION.len()..];
        let token_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_')))
            .unwrap_or(after.len());
        out.push_str("Sluice Version ");
        out.push_str(sluice_version);
        rest = &after[token_len..];
    }
    out.push_str(rest);
    out
}

fn rename_in_json(v: &mut Value, sluice_version: &str) {
    match v {
        Value::String(s) => *s = rename_version(s, sluice_version),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| rename_in_json(i, sluice_version)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|i| rename_in_json(i, sluice_version)),
        _ => {}
    }
}

/// Go's `reflect.DeepEqual` on two values `json.Unmarshal` produced (numbers are `float64`).
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Compares `answer` with `out`.
pub fn compare(out: &Output, answer: &Answer) -> Verdict {
    let mut diffs = Vec::new();
    if answer.status != out.status_code {
        diffs.push(format!(
            "status: have {}, want {}",
            answer.status, out.status_code
        ));
    }
    for (name, want) in &out.header {
        let name = go::canonical_header_key(name);
        let have = answer.header_all(&name);
        if have.is_empty() {
            if want.first().is_some_and(|w| !w.is_empty()) {
                diffs.push(format!("header {name}: missing, want {want:?}"));
            }
        } else if have != *want {
            diffs.push(format!("header {name}: have {have:?}, want {want:?}"));
        }
    }
    if let Some(schema) = &out.schema {
        let schema = Value::Object(schema.clone());
        if let Some(k) = schema::unsupported_keyword(&schema) {
            let why = format!("its schema uses `{k}`, which this runner does not implement");
            if diffs.is_empty() {
                return Verdict::Unsupported(why);
            }
            diffs.push(format!("body: not checked, {why}"));
            return Verdict::Fail(diffs);
        }
        if answer.body.is_empty() {
            diffs.push("body: empty, cannot validate it against the schema".to_owned());
        } else {
            match serde_json::from_slice::<Value>(&answer.body) {
                Err(e) => diffs.push(format!(
                    "body: not JSON ({e}), cannot validate it: {}",
                    shown(&String::from_utf8_lossy(&answer.body))
                )),
                Ok(have) => diffs.extend(
                    schema::validate(&schema, &have)
                        .into_iter()
                        .map(|e| format!("body schema: {e}")),
                ),
            }
        }
    } else if let Some(want) = &out.body {
        match want {
            Value::String(want) => diff_text(want, &answer.body, &mut diffs),
            want => {
                // Go's harness ignores the decoding error: the body is then `nil`.
                let have: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
                if !json_equal(&have, want) {
                    if have.is_null() {
                        diffs.push(format!(
                            "body: not JSON: {}",
                            shown(&String::from_utf8_lossy(&answer.body))
                        ));
                    } else {
                        json_diff(&have, want, "body", &mut diffs);
                    }
                }
            }
        }
    }
    if diffs.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(diffs)
    }
}

/// At most this many characters of a value in a diff line.
const SHOWN: usize = 400;
/// At most this many lines of a JSON diff.
const MAX_JSON_DIFFS: usize = 30;

/// A value as a diff line shows it: quoted and escaped, cut at [`SHOWN`] characters.
fn shown(s: &str) -> String {
    let cut: String = s.chars().take(SHOWN).collect();
    if cut.len() < s.len() {
        format!("{cut:?}... ({} bytes)", s.len())
    } else {
        format!("{cut:?}")
    }
}

fn shown_json(v: &Value) -> String {
    let s = v.to_string();
    let cut: String = s.chars().take(SHOWN).collect();
    if cut.len() < s.len() {
        format!("{cut}...")
    } else {
        cut
    }
}

fn diff_text(want: &str, have: &[u8], diffs: &mut Vec<String>) {
    if have == want.as_bytes() {
        return;
    }
    let have_text = String::from_utf8_lossy(have);
    let at = have
        .iter()
        .zip(want.as_bytes())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| have.len().min(want.len()));
    diffs.push(format!(
        "body: text differs at byte {at}: have {}, want {}",
        shown(&have_text),
        shown(want)
    ));
    // Most bodies are JSON: say whether only the spelling differs, and where the data does.
    if let (Ok(h), Ok(w)) = (
        serde_json::from_slice::<Value>(have),
        serde_json::from_str::<Value>(want),
    ) {
        if json_equal(&h, &w) {
            diffs.push("body: the same JSON, written differently (order or spacing)".to_owned());
        } else {
            json_diff(&h, &w, "body", diffs);
        }
    }
}

/// Where two JSON values differ, one line per leaf.
pub fn json_diff(have: &Value, want: &Value, at: &str, diffs: &mut Vec<String>) {
    if diffs.len() >= MAX_JSON_DIFFS {
        return;
    }
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => {
            let mut keys: Vec<&String> = h.keys().chain(w.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let here = format!("{at}.{k}");
                match (h.get(k), w.get(k)) {
                    (Some(hv), Some(wv)) => json_diff(hv, wv, &here, diffs),
                    (Some(hv), None) => {
                        diffs.push(format!("{here}: unexpected, have {}", shown_json(hv)));
                    }
                    (None, Some(wv)) => {
                        diffs.push(format!("{here}: missing, want {}", shown_json(wv)));
                    }
                    (None, None) => {}
                }
            }
        }
        (Value::Array(h), Value::Array(w)) if h.len() == w.len() => {
            for (i, (hv, wv)) in h.iter().zip(w).enumerate() {
                json_diff(hv, wv, &format!("{at}[{i}]"), diffs);
            }
        }
        (h, w) if !json_equal(h, w) => diffs.push(format!(
            "{at}: have {}, want {}",
            shown_json(h),
            shown_json(w)
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ce_specs::spec::{Input, Output};

    fn case(out: Output) -> Case {
        Case {
            input: Input {
                method: String::new(),
                url: String::new(),
                header: Vec::new(),
                body: None,
            },
            output: out,
            error: None,
            next: Vec::new(),
        }
    }

    fn out(body: Option<Value>, header: &[(&str, &[&str])]) -> Output {
        Output {
            status_code: 200,
            body,
            header: header
                .iter()
                .map(|(k, vs)| {
                    (
                        (*k).to_owned(),
                        vs.iter().map(|v| (*v).to_owned()).collect(),
                    )
                })
                .collect(),
            schema: None,
        }
    }

    fn answer(headers: &[(&str, &str)], body: &str) -> Answer {
        Answer {
            status: 200,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_sent_body_is_expected_with_its_length() {
        let mut c = case(out(Some(json!({"headers": {"X-A": ["1"]}})), &[]));
        c.input.body = Some(json!({"foo": "bar"}));
        normalise(&mut c, "1");
        assert_eq!(
            c.output.body,
            Some(json!({"headers": {"X-A": ["1"], "Content-Length": ["13"]}}))
        );
        // No body sent, or a length already expected: unchanged.
        let mut c = case(out(
            Some(json!({"headers": {"Content-Length": ["0"]}})),
            &[],
        ));
        c.input.body = Some(json!(""));
        normalise(&mut c, "1");
        assert_eq!(
            c.output.body,
            Some(json!({"headers": {"Content-Length": ["0"]}}))
        );
    }

    #[test]
    fn renames_only_the_documented_departure() {
        let mut c = case(out(
            Some(json!("{\"User-Agent\":[\"KrakenD Version 2.13.8\"]}")),
            &[
                ("X-Krakend", &["Version 2.13.8"]),
                ("X-Krakend-Completed", &["true"]),
            ],
        ));
        normalise(&mut c, "0.1.0");
        assert_eq!(
            c.output.body,
            Some(json!("{\"User-Agent\":[\"Sluice Version 0.1.0\"]}"))
        );
        assert_eq!(
            c.output.header[0],
            ("X-Sluice".to_owned(), vec!["Version 0.1.0".to_owned()])
        );
        assert_eq!(c.output.header[1].0, "X-Krakend-Completed");
        assert_eq!(
            rename_version("<UA>KrakenD Version 2.13.8</UA>", "1"),
            "<UA>Sluice Version 1</UA>"
        );
    }

    #[test]
    fn headers_as_go_checks_them() {
        let o = out(
            None,
            &[
                ("content-type", &["application/json"]),
                ("Cache-Control", &[""]),
                ("Set-Cookie", &["a", "b"]),
            ],
        );
        let a = answer(
            &[
                ("content-type", "application/json"),
                ("set-cookie", "a"),
                ("set-cookie", "b"),
            ],
            "",
        );
        assert_eq!(compare(&o, &a), Verdict::Pass);
        let a = answer(&[("cache-control", "public")], "");
        assert_eq!(
            compare(&o, &a),
            Verdict::Fail(vec![
                "header Content-Type: missing, want [\"application/json\"]".to_owned(),
                "header Cache-Control: have [\"public\"], want [\"\"]".to_owned(),
                "header Set-Cookie: missing, want [\"a\", \"b\"]".to_owned(),
            ])
        );
    }

    #[test]
    fn bodies_as_go_checks_them() {
        let o = out(Some(json!({"a": 1, "b": [true]})), &[]);
        assert_eq!(
            compare(&o, &answer(&[], r#"{"b":[true],"a":1.0}"#)),
            Verdict::Pass
        );
        assert_eq!(
            compare(&o, &answer(&[], r#"{"a":2,"c":null}"#)),
            Verdict::Fail(vec![
                "body.a: have 2, want 1".to_owned(),
                "body.b: missing, want [true]".to_owned(),
                "body.c: unexpected, have null".to_owned(),
            ])
        );
        let o = out(Some(json!("{\"a\":1}")), &[]);
        assert_eq!(compare(&o, &answer(&[], "{\"a\":1}")), Verdict::Pass);
        let Verdict::Fail(d) = compare(&o, &answer(&[], "{\"a\": 1}")) else {
            panic!("must differ");
        };
        assert_eq!(
            d[1],
            "body: the same JSON, written differently (order or spacing)"
        );
        let o = out(Some(json!("")), &[]);
        assert!(matches!(compare(&o, &answer(&[], "x")), Verdict::Fail(_)));
        assert_eq!(compare(&out(None, &[]), &answer(&[], "x")), Verdict::Pass);
    }

    #[test]
    fn schema_replaces_the_body() {
        let mut o = out(Some(json!("not this")), &[]);
        o.schema = json!({"type": "object", "required": ["a"]})
            .as_object()
            .cloned();
        assert_eq!(compare(&o, &answer(&[], r#"{"a":1}"#)), Verdict::Pass);
        assert!(matches!(compare(&o, &answer(&[], "")), Verdict::Fail(_)));
        o.schema = json!({"minProperties": 1}).as_object().cloned();
        assert!(matches!(
            compare(&o, &answer(&[], "{}")),
            Verdict::Unsupported(_)
        ));
    }
}
