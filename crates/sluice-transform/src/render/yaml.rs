//! The YAML render: a small block-style emitter (two-space indentation, sequences not indented under
//! their key, as Go's YAML libraries write them).

use serde_json::{Map, Number, Value};

/// Longest key written as an implicit key; YAML limits those to 1024 characters.
const MAX_IMPLICIT_KEY: usize = 1000;

/// The data as a YAML document (no `---` marker), ending with a newline; `{}` for empty data.
///
/// Strings are written plain when a YAML 1.1 or 1.2 reader takes them back as the same string, and
/// double-quoted otherwise (`"true"`, `"42"`, `""`, `"a: b"`, control characters escaped).
pub fn to_yaml(data: &Map<String, Value>) -> Vec<u8> {
    let mut out = String::with_capacity(128);
    if data.is_empty() {
        out.push_str("{}\n");
    } else {
        write_map(&mut out, data, 0, true);
    }
    out.into_bytes()
}

/// Writes the entries of a non-empty map at `indent`; the first line's indentation is already
/// written when `first_indented` is false (the map starts after `- `).
fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize, first_indented: bool) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || first_indented {
            push_indent(out, indent);
        }
        write_entry(out, key, value, indent);
    }
}

fn write_entry(out: &mut String, key: &str, value: &Value, indent: usize) {
    let mut rendered = String::new();
    write_string(&mut rendered, key);
    if rendered.chars().count() > MAX_IMPLICIT_KEY {
        // Explicit key: `? key` then `: value` on the next line.
        out.push_str("? ");
        out.push_str(&rendered);
        out.push('\n');
        push_indent(out, indent);
        out.push(':');
        write_value(out, value, indent + 2, indent + 2);
        return;
    }
    out.push_str(&rendered);
    out.push(':');
    write_value(out, value, indent + 2, indent);
}

/// Writes what follows a `:`: a scalar on the same line, or a block on the next lines (a map at
/// `map_indent`, a sequence at `seq_indent`).
fn write_value(out: &mut String, value: &Value, map_indent: usize, seq_indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, map_indent, true);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_sequence(out, items, seq_indent);
        }
        scalar => {
            out.push(' ');
            write_scalar(out, scalar);
            out.push('\n');
        }
    }
}

fn write_sequence(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        push_indent(out, indent);
        write_item(out, item, indent + 2);
    }
}

/// Writes `- item`; `- ` is not written yet, and the content column is `indent`.
fn write_item(out: &mut String, item: &Value, indent: usize) {
    out.push_str("- ");
    match item {
        Value::Object(map) if !map.is_empty() => write_map(out, map, indent, false),
        Value::Array(items) if !items.is_empty() => {
            for (i, inner) in items.iter().enumerate() {
                if i > 0 {
                    push_indent(out, indent);
                }
                write_item(out, inner, indent + 2);
            }
        }
        scalar => {
            write_scalar(out, scalar);
            out.push('\n');
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn write_scalar(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

/// Integers as they are; floats always with a `.` and a signed exponent (`1.0e+300`), which both
/// YAML 1.1 and 1.2 read as floats.
fn write_number(out: &mut String, n: &Number) {
    let text = n.to_string();
    if !n.is_f64() {
        out.push_str(&text);
        return;
    }
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text.as_str(), None),
    };
    out.push_str(mantissa);
    if !mantissa.contains('.') {
        out.push_str(".0");
    }
    if let Some(exponent) = exponent {
        out.push('e');
        if !exponent.starts_with(['+', '-']) {
            out.push('+');
        }
        out.push_str(exponent);
    }
}

fn write_string(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Characters a YAML stream may not hold as they are, or that readers treat as line breaks or BOMs.
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}')
}

/// Words YAML 1.1 or 1.2 reads as booleans, nulls or special floats.
const RESERVED: [&str; 15] = [
    "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", "+.inf",
    ".nan", "=",
];

/// Whether the string can be written plain and read back as the same string.
fn is_plain_safe(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let second = chars.next();
    let last = s.chars().next_back().unwrap_or(first);
    if first.is_whitespace() || last.is_whitespace() || last == ':' {
        return false;
    }
    if matches!(
        first,
        ',' | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    ) {
        return false;
    }
    if matches!(first, '-' | '?' | ':') && second.is_none_or(|c| c == ' ' || c == '\t') {
        return false;
    }
    // Numbers, dates, times and other things that might not read back as a string.
    if first.is_ascii_digit()
        || (matches!(first, '-' | '+' | '.')
            && second.is_some_and(|c| c.is_ascii_digit() || c == '.'))
    {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") || s.starts_with("<<") {
        return false;
    }
    if RESERVED.iter().any(|word| word.eq_ignore_ascii_case(s)) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.contains(":\t") || s.contains("\t#") {
        return false;
    }
    !s.chars().any(|c| c == '\t' || needs_escape(c))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn yaml(value: &Value) -> String {
        let Value::Object(map) = value else {
            panic!("not an object")
        };
        String::from_utf8(to_yaml(map)).unwrap()
    }

    /// The YAML must read back (with a real YAML parser) as the same data.
    fn assert_round_trip(value: &Value) {
        let text = yaml(value);
        let back: Value = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| panic!("invalid YAML ({e}):\n{text}"));
        assert_eq!(&back, value, "YAML was:\n{text}");
    }

    #[test]
    fn layout() {
        let value = json!({
            "a": 1,
            "m": {"x": "y", "inner": {"z": true}},
            "l": ["s", 2, {"k": "v", "k2": [1, 2]}, [3, [4, 5]], {}, []],
            "e": {},
            "el": [],
            "n": null
        });
        assert_eq!(
            yaml(&value),
            // `y` and `n` are YAML 1.1 booleans, hence quoted.
            "a: 1\ne: {}\nel: []\nl:\n- s\n- 2\n- k: v\n  k2:\n  - 1\n  - 2\n- - 3\n  - - 4\n    - 5\n- {}\n- []\nm:\n  inner:\n    z: true\n  x: \"y\"\n\"n\": null\n"
        );
        assert_round_trip(&value);
    }

    #[test]
    fn empty() {
        assert_eq!(yaml(&json!({})), "{}\n");
        assert_round_trip(&json!({}));
    }

    #[test]
    fn case_38_plain_text_body() {
        let value = json!({"user": {"-type": "admin", "name": "Elliot", "social": {
            "facebook": "https://facebook.com", "twitter": "https://twitter.com", "youtube": "https://youtube.com"}}});
        assert_eq!(
            yaml(&value),
            "user:\n  -type: admin\n  name: Elliot\n  social:\n    facebook: https://facebook.com\n    twitter: https://twitter.com\n    youtube: https://youtube.com\n"
        );
        assert_round_trip(&value);
    }

    #[test]
    fn quoting() {
        let tricky = [
            "",
            " lead",
            "trail ",
            "true",
            "False",
            "YES",
            "no",
            "on",
            "Off",
            "y",
            "N",
            "null",
            "Null",
            "~",
            "=",
            "42",
            "-1",
            "+1",
            "1.5",
            ".5",
            "-.5",
            "1e3",
            "0x1F",
            "0o17",
            "012",
            "1_000",
            "2001-12-14",
            "12:30:00",
            ".inf",
            "-.Inf",
            ".NaN",
            "-",
            "?",
            ":",
            "- x",
            "? x",
            ": x",
            "-x",
            "?x",
            ":x",
            "a: b",
            "a:b",
            "a #b",
            "a#b",
            "end:",
            "#c",
            "&a",
            "*a",
            "!t",
            "|",
            ">",
            "'q'",
            "\"q\"",
            "%p",
            "@a",
            "`b",
            "[1]",
            "{a}",
            ",",
            "---",
            "--- x",
            "...",
            "<<",
            "line\nbreak",
            "tab\there",
            "cr\rhere",
            "nul\0",
            "bell\u{7}",
            "del\u{7f}",
            "c1\u{85}",
            "ls\u{2028}",
            "bom\u{feff}",
            "back\\slash",
            "quote\"inside",
            "it's",
            "é€😀",
            "https://x.y/z?a=1&b=2",
            "a\u{8}b",
            "  ",
            "\t",
            "a, b",
            "key: [1]",
        ];
        let mut map = Map::new();
        for (i, s) in tricky.iter().enumerate() {
            map.insert(format!("v{i:03}"), json!(s));
            map.insert((*s).to_owned(), json!(i));
        }
        map.insert(
            "list".to_owned(),
            Value::Array(tricky.iter().map(|s| json!(s)).collect()),
        );
        assert_round_trip(&Value::Object(map));
        assert_eq!(
            yaml(&json!({"a": "true", "b": "x: y", "c": ""})),
            "a: \"true\"\nb: \"x: y\"\nc: \"\"\n"
        );
    }

    #[test]
    fn numbers() {
        let value = json!({"i": -7, "u": 18446744073709551615u64, "f": 1.5, "big": 1e300, "small": 1.5e-7, "whole": 3.0, "neg": -2.5e-300});
        assert_eq!(
            yaml(&value),
            "big: 1.0e+300\nf: 1.5\ni: -7\nneg: -2.5e-300\nsmall: 1.5e-7\nu: 18446744073709551615\nwhole: 3.0\n"
        );
        assert_round_trip(&value);
    }

    #[test]
    fn long_keys_are_explicit() {
        let long = "k".repeat(2000);
        let value =
            json!({ long.clone(): {"a": [1, {"b": 2}]}, "short": [long.clone()], "x": {long: 1} });
        assert!(yaml(&value).starts_with("? kkk"));
        assert_round_trip(&value);
    }

    #[test]
    fn deep_nesting() {
        let mut value = json!("leaf");
        for i in 0..60 {
            value = if i % 2 == 0 {
                json!([value, 1])
            } else {
                json!({"k": value, "z": {}})
            };
        }
        assert_round_trip(&json!({ "root": value }));
    }
}
