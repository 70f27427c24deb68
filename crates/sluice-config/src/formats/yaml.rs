//! YAML 1.2 into the JSON tree, from the parser's events, so that nothing is lost or guessed:
//!
//! - plain scalars resolve with YAML 1.2's core schema, as KrakenD's YAML parser (go-yaml v3)
//!   does: `yes`, `no`, `on` and `off` are strings (a boolean field then says what it expected),
//!   `true`/`false` are booleans, `~`/`null`/empty are null, and numbers keep their text (`1.10`
//!   stays `1.10`); hexadecimal (`0x1F`) and octal (`0o17`) integers become decimal; `.inf` and
//!   `.nan` have no JSON form and a leading-zero integer (`0808`, octal in YAML 1.1) is ambiguous:
//!   both are errors;
//! - keys are scalars and read as written (`200:` is the key `"200"`); a null, mapping or list key
//!   is an error, and so is a key written twice in one mapping;
//! - anchors, aliases and merge keys (`<<: *defaults`) work, bounded: at most [`MAX_NODES`] values
//!   in all once aliases are expanded (a "billion laughs" file is an error, not an exhausted
//!   machine) and at most [`MAX_DEPTH`] levels of nesting;
//! - one document per file; tags other than the core schema's (`!!str`, `!!int`...) are refused.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

use super::{SyntaxError, number_from_text};
use crate::diagnostics::Position;

/// Values in the whole tree, aliases expanded.
pub(crate) const MAX_NODES: usize = 1_000_000;
/// Levels of nesting.
pub(crate) const MAX_DEPTH: usize = 128;

pub(super) fn parse(text: &str) -> Result<Value, SyntaxError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| SyntaxError {
            position: position(e.marker()),
            message: format!("malformed YAML: {}", e.info()),
        })?;
        builder.event(event, span.start)?;
    }
    Ok(builder.root.unwrap_or(Value::Null))
}

fn position(marker: &Marker) -> Position {
    Position {
        line: marker.line().max(1),
        column: marker.col() + 1,
    }
}

fn error(at: Marker, message: impl Into<String>) -> SyntaxError {
    SyntaxError {
        position: position(&at),
        message: message.into(),
    }
}

/// A mapping key waiting for its value.
#[derive(Debug)]
enum Key {
    /// `<<`: the value is merged in.
    Merge,
    Plain(String, Marker),
}

#[derive(Debug)]
enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        nodes: usize,
    },
    Map {
        map: Map<String, Value>,
        key: Option<Key>,
        merges: Vec<(Value, Marker)>,
        /// The line each key was first written at.
        lines: HashMap<String, usize>,
        anchor: usize,
        nodes: usize,
    },
}

#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Each anchored value and how many values it holds.
    anchors: HashMap<usize, (Value, usize)>,
    /// Values built so far, aliases expanded.
    nodes: usize,
    documents: usize,
    root: Option<Value>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, at: Marker) -> Result<(), SyntaxError> {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(error(
                        at,
                        "a config file holds one YAML document, found a second one",
                    ));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                if self.expects_key() {
                    return self.key(&text, style, tag.as_deref(), anchor, at);
                }
                let value = resolve(&text, style, tag.as_deref(), at)?;
                self.count(1, at)?;
                self.complete(value, 1, anchor, at)?;
            }
            Event::Alias(id) => {
                let Some((value, nodes)) = self.anchors.get(&id).cloned() else {
                    return Err(error(at, "alias to an unknown anchor"));
                };
                if self.expects_key() {
                    let key = match value {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return Err(error(at, "a mapping key must be a string or a number")),
                    };
                    return self.set_key(Key::Plain(key, at));
                }
                // An alias copies its values again: they count again.
                self.count(nodes, at)?;
                self.complete(value, nodes, 0, at)?;
            }
            Event::SequenceStart(anchor, tag) => {
                self.open(at, tag.as_deref(), "seq")?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    nodes: 1,
                });
            }
            Event::MappingStart(anchor, tag) => {
                self.open(at, tag.as_deref(), "map")?;
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    key: None,
                    merges: Vec::new(),
                    lines: HashMap::new(),
                    anchor,
                    nodes: 1,
                });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq {
                    items,
                    anchor,
                    nodes,
                }) = self.stack.pop()
                {
                    self.complete(Value::Array(items), nodes, anchor, at)?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    mut map,
                    merges,
                    anchor,
                    nodes,
                    ..
                }) = self.stack.pop()
                {
                    for (merged, at) in merges {
                        merge_into(&mut map, merged, at)?;
                    }
                    self.complete(Value::Object(map), nodes, anchor, at)?;
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn expects_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    /// A mapping or sequence starts: not as a key, not too deep, with no foreign tag.
    fn open(&mut self, at: Marker, tag: Option<&Tag>, core: &str) -> Result<(), SyntaxError> {
        if self.expects_key() {
            return Err(error(at, "a mapping key must be a string or a number"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(error(
                at,
                format!("the YAML is nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        if let Some(tag) = tag
            && !(tag.is_yaml_core_schema() && tag.suffix == core)
        {
            return Err(unsupported_tag(at, tag));
        }
        self.count(1, at)
    }

    fn count(&mut self, nodes: usize, at: Marker) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            return Err(error(
                at,
                format!(
                    "the YAML holds more than {MAX_NODES} values once its aliases are expanded"
                ),
            ));
        }
        Ok(())
    }

    fn key(
        &mut self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        anchor: usize,
        at: Marker,
    ) -> Result<(), SyntaxError> {
        let plain = style == ScalarStyle::Plain && tag.is_none();
        if plain && text == "<<" {
            return self.set_key(Key::Merge);
        }
        let resolved = resolve(text, style, tag, at)?;
        if resolved.is_null() {
            return Err(error(at, "a mapping key cannot be null"));
        }
        if anchor != 0 {
            self.anchors.insert(anchor, (resolved, 1));
        }
        self.set_key(Key::Plain(text.to_owned(), at))
    }

    fn set_key(&mut self, key: Key) -> Result<(), SyntaxError> {
        if let Some(Frame::Map {
            key: slot, lines, ..
        }) = self.stack.last_mut()
        {
            if let Key::Plain(name, at) = &key
                && let Some(first) = lines.get(name)
            {
                return Err(error(
                    *at,
                    format!(
                        "the key {} is written twice in this mapping (first at line {first})",
                        Value::from(name.as_str())
                    ),
                ));
            }
            if let Key::Plain(name, at) = &key {
                lines.insert(name.clone(), at.line());
            }
            *slot = Some(key);
        }
        Ok(())
    }

    /// A value is complete: remember it under its anchor and hand it to its parent.
    fn complete(
        &mut self,
        value: Value,
        nodes: usize,
        anchor: usize,
        at: Marker,
    ) -> Result<(), SyntaxError> {
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), nodes));
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq {
                items,
                nodes: count,
                ..
            }) => {
                *count += nodes;
                items.push(value);
            }
            Some(Frame::Map {
                map,
                key,
                merges,
                nodes: count,
                ..
            }) => {
                *count += nodes;
                match key.take() {
                    Some(Key::Merge) => merges.push((value, at)),
                    Some(Key::Plain(name, _)) => {
                        map.insert(name, value);
                    }
                    None => {}
                }
            }
        }
        Ok(())
    }
}

/// `<<: value`: the keys of a mapping (or of each mapping of a list, the first one winning) that
/// the mapping does not write itself.
fn merge_into(map: &mut Map<String, Value>, merged: Value, at: Marker) -> Result<(), SyntaxError> {
    let sources = match merged {
        Value::Object(source) => vec![source],
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(source) => Ok(source),
                _ => Err(()),
            })
            .collect::<Result<_, _>>()
            .map_err(|()| merge_error(at))?,
        _ => return Err(merge_error(at)),
    };
    for source in sources {
        for (key, value) in source {
            map.entry(key).or_insert(value);
        }
    }
    Ok(())
}

fn merge_error(at: Marker) -> SyntaxError {
    error(
        at,
        "the merge key << takes a mapping or a list of mappings (usually aliases like *defaults)",
    )
}

fn unsupported_tag(at: Marker, tag: &Tag) -> SyntaxError {
    let name = if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else {
        tag.to_string()
    };
    error(
        at,
        format!(
            "the YAML tag {name} is not supported here: a config is plain data (strings, \
             numbers, booleans, null, lists and mappings)"
        ),
    )
}

/// A scalar's value: tagged, quoted (always a string) or plain (YAML 1.2 core schema).
fn resolve(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    at: Marker,
) -> Result<Value, SyntaxError> {
    if let Some(tag) = tag {
        let non_specific = (tag.handle.is_empty() && tag.suffix == "!")
            || (tag.handle == "!" && tag.suffix.is_empty());
        if non_specific {
            // `! value`: the non-specific tag, a string.
            return Ok(Value::String(text.to_owned()));
        }
        if !tag.is_yaml_core_schema() {
            return Err(unsupported_tag(at, tag));
        }
        let wrong = |what: &str| {
            error(
                at,
                format!("!!{} {}: expected {what}", tag.suffix, Value::from(text)),
            )
        };
        return match tag.suffix.as_str() {
            "str" => Ok(Value::String(text.to_owned())),
            "null" => Ok(Value::Null),
            "bool" => boolean(text)
                .map(Value::Bool)
                .ok_or_else(|| wrong("true or false")),
            "int" => match integer(text) {
                Some(Ok(n)) => Ok(Value::Number(n)),
                Some(Err(message)) => Err(error(at, message)),
                None => Err(wrong("an integer")),
            },
            "float" => match integer(text) {
                Some(Ok(n)) => Ok(Value::Number(n)),
                Some(Err(message)) => Err(error(at, message)),
                None => float(text, at)?
                    .map(Value::Number)
                    .ok_or_else(|| wrong("a number")),
            },
            _ => Err(unsupported_tag(at, tag)),
        };
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.to_owned()));
    }
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Ok(Value::Null);
    }
    if let Some(b) = boolean(text) {
        return Ok(Value::Bool(b));
    }
    match integer(text) {
        Some(Ok(n)) => return Ok(Value::Number(n)),
        Some(Err(message)) => return Err(error(at, message)),
        None => {}
    }
    Ok(float(text, at)?.map_or_else(|| Value::String(text.to_owned()), Value::Number))
}

fn boolean(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// A core-schema integer: `None` when `text` is not one, an error when it is one JSON cannot
/// hold or that is ambiguous.
fn integer(text: &str) -> Option<Result<Number, String>> {
    let radix = |digits: &str, radix: u32| {
        Some(
            u64::from_str_radix(digits, radix)
                .map(Number::from)
                .map_err(|_| format!("the integer {text} is too large")),
        )
    };
    if let Some(hex) = text.strip_prefix("0x")
        && !hex.is_empty()
        && hex.chars().all(|c| c.is_ascii_hexdigit())
    {
        return radix(hex, 16);
    }
    if let Some(octal) = text.strip_prefix("0o")
        && !octal.is_empty()
        && octal.chars().all(|c| ('0'..='7').contains(&c))
    {
        return radix(octal, 8);
    }
    let (sign, digits) = match text.as_bytes().first() {
        Some(b'-') => ("-", &text[1..]),
        Some(b'+') => ("", &text[1..]),
        _ => ("", text),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Some(Err(format!(
            "the number {text} is ambiguous (YAML 1.1 reads a leading 0 as octal): write it \
             without leading zeros, as 0o{} for octal, or quote it for a string",
            digits.trim_start_matches('0')
        )));
    }
    number_from_text(&format!("{sign}{digits}"))
        .map(Ok)
        .or_else(|| Some(Err(format!("the number {text} cannot be read"))))
}

/// A core-schema float, as JSON number text; `.inf` and `.nan` are errors.
fn float(text: &str, at: Marker) -> Result<Option<Number>, SyntaxError> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Err(error(
            at,
            format!("{text} has no JSON form: write a number, or quote it for a string"),
        ));
    }
    let negative = text.starts_with('-');
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let has_digit = !whole.is_empty() || fraction.is_some_and(|f| !f.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !has_digit || !digits(whole) || !fraction.is_none_or(digits) || !exponent_ok {
        return Ok(None);
    }
    // JSON spelling: no `+`, one leading zero at most, digits on both sides of the point.
    let whole = whole.trim_start_matches('0');
    let mut json = String::with_capacity(text.len() + 2);
    if negative {
        json.push('-');
    }
    json.push_str(if whole.is_empty() { "0" } else { whole });
    if let Some(fraction) = fraction {
        json.push('.');
        json.push_str(if fraction.is_empty() { "0" } else { fraction });
    }
    if let Some(exponent) = exponent {
        json.push('e');
        json.push_str(exponent);
    }
    Ok(number_from_text(&json).or_else(|| json.parse::<f64>().ok().and_then(Number::from_f64)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn yaml(text: &str) -> Value {
        parse(text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn yaml_error(text: &str) -> SyntaxError {
        match parse(text) {
            Ok(value) => panic!("accepted: {value}"),
            Err(e) => e,
        }
    }

    #[test]
    fn core_schema_scalars() {
        let value = yaml(
            "a: yes\nb: No\nc: on\nd: true\ne: FALSE\nf: ~\ng:\nh: null\ni: 8080\nj: -3\n\
             k: +4\nl: 1.10\nm: .5\nn: 5.\no: 1e3\np: 0x1F\nq: 0o17\nr: 2001-12-14\n\
             s: '8080'\nt: \"true\"\nu: 1_000\nv: 9007199254740993\nw: -0.0\n",
        );
        assert_eq!(value["a"], json!("yes"));
        assert_eq!(value["b"], json!("No"));
        assert_eq!(value["c"], json!("on"));
        assert_eq!(value["d"], json!(true));
        assert_eq!(value["e"], json!(false));
        assert_eq!(value["f"], Value::Null);
        assert_eq!(value["g"], Value::Null);
        assert_eq!(value["h"], Value::Null);
        assert_eq!(value["i"].to_string(), "8080");
        assert_eq!(value["j"].to_string(), "-3");
        assert_eq!(value["k"].to_string(), "4");
        assert_eq!(value["l"].to_string(), "1.10");
        assert_eq!(value["m"].to_string(), "0.5");
        assert_eq!(value["n"].to_string(), "5.0");
        assert_eq!(value["o"].to_string(), "1e+3");
        assert_eq!(value["p"].to_string(), "31");
        assert_eq!(value["q"].to_string(), "15");
        assert_eq!(value["r"], json!("2001-12-14"));
        assert_eq!(value["s"], json!("8080"));
        assert_eq!(value["t"], json!("true"));
        assert_eq!(value["u"], json!("1_000"));
        assert_eq!(value["v"].to_string(), "9007199254740993");
        assert_eq!(value["w"].to_string(), "-0.0");
        assert_eq!(value["i"].as_u64(), Some(8080));
    }

    #[test]
    fn tags() {
        let value = yaml("a: !!str 123\nb: !!int \"7\"\nc: !!float 2\nd: ! 5\ne: !!bool true\n");
        assert_eq!(
            value,
            json!({"a": "123", "b": 7, "c": 2, "d": "5", "e": true})
        );
        let e = yaml_error("a: !Ref x\n");
        assert!(e.message.contains("tag !Ref is not supported"), "{e:?}");
        let e = yaml_error("a: !!binary aGk=\n");
        assert!(e.message.contains("!!binary"), "{e:?}");
        let e = yaml_error("a: !!int x\n");
        assert!(e.message.contains("expected an integer"), "{e:?}");
    }

    #[test]
    fn numbers_without_a_json_form_are_errors() {
        for text in ["a: .inf", "a: -.Inf", "a: .nan"] {
            let e = yaml_error(text);
            assert!(e.message.contains("has no JSON form"), "{e:?}");
            assert_eq!(e.position, Position { line: 1, column: 4 });
        }
        let e = yaml_error("port: 0808");
        assert!(e.message.contains("ambiguous"), "{e:?}");
    }

    #[test]
    fn keys_are_read_as_written() {
        let value = yaml("200: ok\n1.10: x\ntrue: y\n'quoted': z\n");
        assert_eq!(
            value,
            json!({"200": "ok", "1.10": "x", "true": "y", "quoted": "z"})
        );
        let e = yaml_error("~: x\n");
        assert!(e.message.contains("cannot be null"), "{e:?}");
        let e = yaml_error("? [a, b]\n: x\n");
        assert!(e.message.contains("must be a string or a number"), "{e:?}");
        let e = yaml_error("a: 1\nb: 2\na: 3\n");
        assert!(
            e.message.contains("\"a\" is written twice") && e.message.contains("line 1"),
            "{e:?}"
        );
        assert_eq!(e.position.line, 3);
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let value = yaml(
            "defaults: &d\n  timeout: 1s\n  host: [a]\nextra: &e {x: 1}\n\
             one:\n  <<: *d\n  timeout: 2s\ntwo:\n  <<: [*e, *d]\n  y: 2\nthree: *d\n",
        );
        assert_eq!(value["one"], json!({"timeout": "2s", "host": ["a"]}));
        assert_eq!(
            value["two"],
            json!({"x": 1, "timeout": "1s", "host": ["a"], "y": 2})
        );
        assert_eq!(value["three"], value["defaults"]);
        let e = yaml_error("a: &s x\nb:\n  <<: *s\n");
        assert!(e.message.contains("merge key"), "{e:?}");
        let e = yaml_error("a: *nowhere\n");
        assert!(e.message.contains("malformed YAML") || e.message.contains("unknown anchor"));
    }

    #[test]
    fn billion_laughs_is_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = yaml_error(&text);
        assert!(e.message.contains("aliases are expanded"), "{e:?}");
    }

    #[test]
    fn nesting_is_bounded() {
        let text = format!(
            "a: {}{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        let e = yaml_error(&text);
        assert!(e.message.contains("nested more than"), "{e:?}");
    }

    #[test]
    fn one_document_only_and_syntax_errors_have_a_position() {
        let e = yaml_error("a: 1\n---\nb: 2\n");
        assert!(e.message.contains("one YAML document"), "{e:?}");
        let e = yaml_error("a: 1\nb: [2\n");
        assert!(e.message.starts_with("malformed YAML"), "{e:?}");
        assert!(e.position.line >= 2, "{e:?}");
        assert_eq!(yaml(""), Value::Null);
    }
}
