//! The spec file format of KrakenD CE's integration harness (`tests/fixtures/specs/*.json`):
//! `{"in": {method, url, header, body}, "out": {status_code, body, header, schema},
//! "error": "...", "next": [case, ...]}`. Field names match case-insensitively and unknown
//! fields (`@comment`) are ignored, as Go's `encoding/json` does.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// One request and what its answer must be.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// `in`.
    pub input: Input,
    /// `out`.
    pub output: Output,
    /// `error`: the transport error the request is expected to end with (Go's error text,
    /// so only its presence is honoured).
    pub error: Option<String>,
    /// `next`: cases run after this one, in order.
    pub next: Vec<Case>,
}

/// `in`.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// `method`; empty means GET, as with Go's `http.NewRequest`.
    pub method: String,
    /// `url`.
    pub url: String,
    /// `header`: name -> one value, names as written.
    pub header: Vec<(String, String)>,
    /// `body`: a string is sent as is, anything else as `json.Marshal` writes it.
    pub body: Option<Value>,
}

/// `out`.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// `status_code`.
    pub status_code: u16,
    /// `body`: a string is compared as text, anything else as JSON.
    pub body: Option<Value>,
    /// `header`: name -> values; `[""]` means absent or empty.
    pub header: Vec<(String, Vec<String>)>,
    /// `schema`: a JSON schema the body must satisfy (used instead of `body`).
    pub schema: Option<Map<String, Value>>,
}

/// A spec file that does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong, with a JSON path.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

impl std::error::Error for SpecError {}

/// A spec: its name (the file name without `.json`) and its case, or why it could not be read.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The file name without `.json`.
    pub name: String,
    /// The file.
    pub file: PathBuf,
    /// The case, or the problem with the file.
    pub case: Result<Case, SpecError>,
}

/// Reads every `*.json` in `dir`, sorted by name (Go's harness runs them in map order, which
/// is random; a fixed order makes two runs comparable).
///
/// # Errors
/// When the directory cannot be listed. A file that cannot be read or parsed is returned as a
/// [`Spec`] holding the error, so one bad file does not hide the others.
pub fn read_dir(dir: &Path) -> Result<Vec<Spec>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|file| {
            let name = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let case = std::fs::read(&file)
                .map_err(|e| SpecError {
                    file: file.clone(),
                    message: format!("cannot read: {e}"),
                })
                .and_then(|bytes| parse(&file, &bytes));
            Spec { name, file, case }
        })
        .collect())
}

/// Parses one spec file's bytes.
///
/// # Errors
/// Invalid JSON, or a field of the wrong type, naming `file` and the field's path.
pub fn parse(file: &Path, bytes: &[u8]) -> Result<Case, SpecError> {
    let err = |message: String| SpecError {
        file: file.to_owned(),
        message,
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| err(format!("not JSON: {e}")))?;
    parse_case(&value, "$").map_err(err)
}

/// Go's field lookup: an exact name first, else a case-insensitive match.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name)
        .or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        // `null` decodes to the zero value in Go, the same as a missing field.
        .filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{at}: expected an object, found {}", kind(v)))
}

fn string(v: &Value, at: &str) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{at}: expected a string, found {}", kind(v)))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_case(v: &Value, at: &str) -> Result<Case, String> {
    let obj = object(v, at)?;
    let input = match field(obj, "in") {
        Some(v) => parse_input(v, &format!("{at}.in"))?,
        None => return Err(format!("{at}.in: missing")),
    };
    let output = match field(obj, "out") {
        Some(v) => parse_output(v, &format!("{at}.out"))?,
        None => return Err(format!("{at}.out: missing")),
    };
    let error = field(obj, "error")
        .map(|v| string(v, &format!("{at}.error")))
        .transpose()?
        .filter(|e| !e.is_empty());
    let next = match field(obj, "next") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_case(item, &format!("{at}.next[{i}]")))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "{at}.next: expected an array, found {}",
                kind(other)
            ));
        }
    };
    Ok(Case {
        input,
        output,
        error,
        next,
    })
}

fn parse_input(v: &Value, at: &str) -> Result<Input, String> {
    let obj = object(v, at)?;
    let method = field(obj, "method")
        .map(|v| string(v, &format!("{at}.method")))
        .transpose()?
        .unwrap_or_default();
    let url = match field(obj, "url") {
        Some(v) => string(v, &format!("{at}.url"))?,
        None => return Err(format!("{at}.url: missing")),
    };
    let mut header = Vec::new();
    if let Some(h) = field(obj, "header") {
        for (name, value) in object(h, &format!("{at}.header"))? {
            header.push((
                name.clone(),
                string(value, &format!("{at}.header[{name:?}]"))?,
            ));
        }
    }
    Ok(Input {
        method,
        url,
        header,
        body: field(obj, "body").cloned(),
    })
}

fn parse_output(v: &Value, at: &str) -> Result<Output, String> {
    let obj = object(v, at)?;
    let status_code = match field(obj, "status_code") {
        Some(v) => v
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| format!("{at}.status_code: expected a status code, found {v}"))?,
        None => return Err(format!("{at}.status_code: missing")),
    };
    let mut header = Vec::new();
    if let Some(h) = field(obj, "header") {
        for (name, values) in object(h, &format!("{at}.header"))? {
            let here = format!("{at}.header[{name:?}]");
            let Value::Array(items) = values else {
                return Err(format!(
                    "{here}: expected an array of strings, found {}",
                    kind(values)
                ));
            };
            let values = items
                .iter()
                .enumerate()
                .map(|(i, item)| string(item, &format!("{here}[{i}]")))
                .collect::<Result<_, _>>()?;
            header.push((name.clone(), values));
        }
    }
    let schema = field(obj, "schema")
        .map(|v| object(v, &format!("{at}.schema")).cloned())
        .transpose()?
        .filter(|s| !s.is_empty());
    Ok(Output {
        status_code,
        body: field(obj, "body").cloned(),
        header,
        schema,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_spec() {
        let case = parse(
            Path::new("x.json"),
            br#"{"in": {"url": "http://localhost:8080/a", "header": {"X-A": "1"}},
                 "out": {"status_code": 200, "@comment": "c", "body": {"a": 1},
                         "header": {"content-type": ["text/plain"]}, "schema": {}},
                 "next": [{"in": {"method": "POST", "url": "http://localhost:8080/b"},
                           "out": {"Status_Code": 404, "body": null}}]}"#,
        )
        .expect("valid spec");
        assert_eq!(case.input.method, "");
        assert_eq!(case.input.header, [("X-A".to_owned(), "1".to_owned())]);
        assert_eq!(case.output.schema, None);
        assert_eq!(case.next.len(), 1);
        assert_eq!(case.next[0].output.status_code, 404);
        assert_eq!(case.next[0].output.body, None);
    }

    #[test]
    fn names_the_bad_field() {
        let e = parse(
            Path::new("bad.json"),
            br#"{"in": {"url": "u"}, "out": {"status_code": 200, "header": {"a": "x"}}}"#,
        )
        .expect_err("bad header");
        assert_eq!(
            e.to_string(),
            r#"bad.json: $.out.header["a"]: expected an array of strings, found a string"#
        );
        let e = parse(Path::new("bad.json"), b"{").expect_err("not JSON");
        assert!(e.to_string().starts_with("bad.json: not JSON"));
        let e = parse(Path::new("bad.json"), br#"{"out": {}}"#).expect_err("no in");
        assert_eq!(e.message, "$.in: missing");
    }
}
