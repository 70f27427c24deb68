//! Values for sequential placeholders (`{resp0_first.random}` in a later backend's `url_pattern`) and
//! for `sequential_propagated_params`.

use serde_json::{Map, Number, Value};

/// The text of the value at a dotted path of a previous backend's (already formatted) data:
/// strings as they are, numbers as decimal text (`42`, `1.5`; an integral float without `.0`),
/// booleans `true` / `false`, arrays their elements joined with `,` (`[]` -> empty text; nested
/// objects and arrays as compact JSON, `null` as empty text). `None` when the path is missing or
/// leads to an object or `null`.
///
/// Unlike KrakenD, a missing intermediate key is a miss (KrakenD then looks the last segment up at
/// the level it reached), and `null` is a miss rather than the text `<nil>`.
pub fn lookup_path(data: &Map<String, Value>, path: &str) -> Option<String> {
    let mut segments = path.split('.');
    let mut current = data.get(segments.next()?)?;
    for segment in segments {
        current = current.as_object()?.get(segment)?;
    }
    match current {
        Value::Object(_) | Value::Null => None,
        Value::Array(items) => Some(join(items)),
        scalar => Some(scalar_text(scalar)),
    }
}

fn join(items: &[Value]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Value::Null => {}
            Value::Object(_) | Value::Array(_) => out.push_str(&item.to_string()),
            scalar => out.push_str(&scalar_text(scalar)),
        }
    }
    out
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => number_text(n),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// The number's text as the backend wrote it: KrakenD decodes with `UseNumber`, and a
/// `json.Number` becomes a param by its text (`1.10` stays `1.10`, `1e3` stays `1e3`).
fn number_text(n: &Number) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parsed from text, as a backend's body is: numbers keep the digits written here.
    fn data() -> Map<String, Value> {
        serde_json::from_str(
            r#"{
            "first": {"path": "/provider/foo", "random": 42, "nested": {"deep": "x"}},
            "s": "text", "i": -7, "u": 18446744073709551615, "f": 1.5, "fi": 42.0, "tiny": 0.0000001,
            "big": 123456789012345678901234567890, "price": 1.10, "e": 1E3,
            "t": true, "b": false, "n": null,
            "arr": [1, "two", true, 3.50, null, {"k": 1}, [2, 3]], "empty": [], "o": {}
        }"#,
        )
        .expect("valid JSON")
    }

    #[test]
    fn case_56_group_path() {
        assert_eq!(lookup_path(&data(), "first.random").as_deref(), Some("42"));
        assert_eq!(
            lookup_path(&data(), "first.path").as_deref(),
            Some("/provider/foo")
        );
        assert_eq!(
            lookup_path(&data(), "first.nested.deep").as_deref(),
            Some("x")
        );
    }

    #[test]
    fn scalars() {
        let d = data();
        assert_eq!(lookup_path(&d, "s").as_deref(), Some("text"));
        assert_eq!(lookup_path(&d, "i").as_deref(), Some("-7"));
        assert_eq!(
            lookup_path(&d, "u").as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(lookup_path(&d, "f").as_deref(), Some("1.5"));
        // KrakenD passes a json.Number on by its text: nothing is reformatted.
        assert_eq!(lookup_path(&d, "fi").as_deref(), Some("42.0"));
        assert_eq!(lookup_path(&d, "tiny").as_deref(), Some("0.0000001"));
        assert_eq!(
            lookup_path(&d, "big").as_deref(),
            Some("123456789012345678901234567890")
        );
        assert_eq!(lookup_path(&d, "price").as_deref(), Some("1.10"));
        // The one rewrite: serde_json spells an exponent `e` with its sign (Go keeps `1E3`).
        assert_eq!(lookup_path(&d, "e").as_deref(), Some("1e+3"));
        assert_eq!(lookup_path(&d, "t").as_deref(), Some("true"));
        assert_eq!(lookup_path(&d, "b").as_deref(), Some("false"));
    }

    #[test]
    fn arrays() {
        let d = data();
        assert_eq!(
            lookup_path(&d, "arr").as_deref(),
            Some("1,two,true,3.50,,{\"k\":1},[2,3]")
        );
        assert_eq!(lookup_path(&d, "empty").as_deref(), Some(""));
    }

    #[test]
    fn misses() {
        let d = data();
        for path in [
            "o",
            "first",
            "n",
            "missing",
            "s.x",
            "first.missing",
            "missing.random",
            "",
            "arr.0",
        ] {
            assert_eq!(lookup_path(&d, path), None, "{path}");
        }
    }
}
