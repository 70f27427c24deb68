//! The template functions: Go's built-ins, the Sprig functions configs use, and KrakenD's
//! `include` and `marshal`. A function not listed in [`NAMES`] is a parse error naming it (as Go
//! reports an undefined function), never a silent empty string.
//!
//! Where Sprig silently turns a bad value into `0` or `""` (`atoi "x"`, `fromJson "{"`,
//! `add 1.5 1`), these functions are errors: the config would be wrong without saying so.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

use super::exec::{MAX_OUTPUT, truth};

/// What the functions may ask of the rendering: environment variables and partial files.
pub(crate) trait Host {
    /// The variable `name`, if set.
    fn env(&self, name: &str) -> Option<String>;
    /// The text of the partial `name` (in FC_PARTIALS).
    fn include(&self, name: &str) -> Result<String, String>;
}

/// The most elements a function builds a list of (`until`, `untilStep`).
const MAX_LIST: i64 = 100_000;

/// Every function name.
pub(crate) const NAMES: &[&str] = &[
    // Go's built-ins
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "println",
    "printf",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge", // Sprig: defaults and flow
    "default",
    "empty",
    "coalesce",
    "ternary",
    "fail", // strings
    "quote",
    "squote",
    "upper",
    "lower",
    "title",
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "repeat",
    "substr",
    "nospace",
    "trunc",
    "indent",
    "nindent",
    "cat",
    "split",
    "splitList",
    "join",
    "toString", // encodings
    "toJson",
    "toRawJson",
    "toPrettyJson",
    "fromJson",
    "b64enc",
    "b64dec", // lists
    "list",
    "first",
    "last",
    "rest",
    "initial",
    "append",
    "push",
    "prepend",
    "concat",
    "has",
    "uniq",
    "compact",
    "reverse",
    "sortAlpha",
    "without",
    "until",
    "untilStep", // dicts
    "dict",
    "get",
    "set",
    "unset",
    "hasKey",
    "keys",
    "values",
    "pluck",
    "pick",
    "omit",
    "merge",
    "mergeOverwrite",
    "dig", // numbers
    "add",
    "add1",
    "sub",
    "mul",
    "div",
    "mod",
    "max",
    "min",
    "int",
    "int64",
    "float64",
    "atoi",
    // types, environment
    "kindOf",
    "kindIs",
    "env",
    "expandenv", // KrakenD
    "include",
    "marshal",
];

pub(crate) fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

/// What a value is, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    crate::read::kind(value)
}

type R = Result<Value, String>;

fn want(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!("wrong number of args: want {n} got {}", args.len()))
    }
}

fn at_least(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() >= n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args: want at least {n} got {}",
            args.len()
        ))
    }
}

fn string(value: &Value) -> Result<&str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("expected a string, found {}", kind(value)))
}

fn list(value: &Value) -> Result<&Vec<Value>, String> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(format!("expected a list, found {}", kind(other))),
    }
}

fn dict(value: &Value) -> Result<&Map<String, Value>, String> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(format!("expected a dict, found {}", kind(other))),
    }
}

fn bounded(s: String) -> R {
    if s.len() > MAX_OUTPUT {
        return Err(format!(
            "the result is larger than {} MiB",
            MAX_OUTPUT >> 20
        ));
    }
    Ok(Value::String(s))
}

/// A whole number (Sprig's cast.ToInt64, minus its silent zeros).
pub(crate) fn int(value: &Value) -> Result<i64, String> {
    match value {
        Value::Null => Ok(0),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| format!("expected a whole number, found {n}")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("expected a whole number, found {}", go_quote(s))),
        other => Err(format!("expected a whole number, found {}", kind(other))),
    }
}

fn float(value: &Value) -> Result<f64, String> {
    match value {
        Value::Null => Ok(0.0),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("expected a number, found {n}")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("expected a number, found {}", go_quote(s))),
        other => Err(format!("expected a number, found {}", kind(other))),
    }
}

fn float_value(f: f64) -> R {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| "the result is not a finite number".to_owned())
}

/// Go's `%v` of a JSON value: strings bare, `[a b]` for lists, `map[k:v]` for maps.
pub(crate) fn to_text(value: &Value) -> String {
    let mut out = String::new();
    write_text(&mut out, value);
    out
}

fn write_text(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_text(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_text(out, v);
            }
            out.push(']');
        }
    }
}

/// Go's `%q` of a string.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json(value: &Value, pretty: bool) -> R {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .map_err(|e| e.to_string())?;
    bounded(text)
}

/// Compares two values as Go's `eq` does (numbers by value whatever their spelling).
fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Ok(match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        }),
        (Value::String(x), Value::String(y)) => Ok(x == y),
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        (Value::Null, Value::Null) => Ok(true),
        (Value::Null, _) | (_, Value::Null) => Ok(false),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            Err("non-comparable type (a list or a dict)".to_owned())
        }
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            kind(a),
            kind(b)
        )),
    }
}

fn order(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Ok(x.cmp(&y)),
            _ => x
                .as_f64()
                .zip(y.as_f64())
                .and_then(|(x, y)| x.partial_cmp(&y))
                .ok_or_else(|| "cannot compare these numbers".to_owned()),
        },
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            kind(a),
            kind(b)
        )),
    }
}

/// Calls the function `name`.
pub(crate) fn call(name: &str, args: &[Value], host: &dyn Host) -> R {
    use std::cmp::Ordering;
    let a = args;
    match name {
        "not" => {
            want(a, 1)?;
            Ok(Value::Bool(!truth(&a[0])))
        }
        "len" => {
            want(a, 1)?;
            Ok(Value::from(match &a[0] {
                Value::String(s) => s.len(),
                Value::Array(items) => items.len(),
                Value::Object(map) => map.len(),
                other => return Err(format!("len of {}", kind(other))),
            }))
        }
        "index" => {
            at_least(a, 1)?;
            let mut current = a[0].clone();
            for key in &a[1..] {
                current = match (&current, key) {
                    (Value::Array(items), _) => {
                        let i = int(key)?;
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| items.get(i))
                            .cloned()
                            .ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    (Value::Object(map), Value::String(k)) => {
                        map.get(k).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Null, _) => return Err("index of a missing or null value".to_owned()),
                    (other, _) => {
                        return Err(format!("can't index {} with {}", kind(other), kind(key)));
                    }
                };
            }
            Ok(current)
        }
        "slice" => {
            at_least(a, 1)?;
            let bounds: Vec<i64> = a[1..].iter().map(int).collect::<Result<_, _>>()?;
            let len = match &a[0] {
                Value::String(s) => s.len(),
                Value::Array(items) => items.len(),
                other => return Err(format!("can't slice {}", kind(other))),
            };
            let at = |i: usize| -> Result<usize, String> {
                bounds
                    .get(i)
                    .map_or(Ok(if i == 0 { 0 } else { len }), |&b| {
                        usize::try_from(b)
                            .ok()
                            .filter(|&b| b <= len)
                            .ok_or_else(|| format!("index out of range: {b}"))
                    })
            };
            let (from, to) = (at(0)?, at(1)?);
            if from > to {
                return Err(format!("invalid slice index: {from} > {to}"));
            }
            match &a[0] {
                Value::String(s) => s
                    .get(from..to)
                    .map(Value::from)
                    .ok_or_else(|| "slice inside a character".to_owned()),
                Value::Array(items) => Ok(Value::Array(items[from..to].to_vec())),
                _ => Ok(Value::Null),
            }
        }
        "print" => {
            let mut out = String::new();
            for (i, v) in a.iter().enumerate() {
                if i > 0 && !a[i - 1].is_string() && !v.is_string() {
                    out.push(' ');
                }
                write_text(&mut out, v);
            }
            bounded(out)
        }
        "println" => {
            let mut out = a.iter().map(to_text).collect::<Vec<_>>().join(" ");
            out.push('\n');
            bounded(out)
        }
        "printf" => {
            at_least(a, 1)?;
            bounded(printf(string(&a[0])?, &a[1..])?)
        }
        "eq" => {
            at_least(a, 2)?;
            for other in &a[1..] {
                if equal(&a[0], other)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            want(a, 2)?;
            Ok(Value::Bool(!equal(&a[0], &a[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(a, 2)?;
            let o = order(&a[0], &a[1])?;
            Ok(Value::Bool(match name {
                "lt" => o == Ordering::Less,
                "le" => o != Ordering::Greater,
                "gt" => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }))
        }
        "default" => {
            at_least(a, 1)?;
            Ok(match a.get(1) {
                Some(given) if truth(given) => given.clone(),
                _ => a[0].clone(),
            })
        }
        "empty" => {
            want(a, 1)?;
            Ok(Value::Bool(!truth(&a[0])))
        }
        "coalesce" => Ok(a.iter().find(|v| truth(v)).cloned().unwrap_or(Value::Null)),
        "ternary" => {
            want(a, 3)?;
            Ok(if truth(&a[2]) {
                a[0].clone()
            } else {
                a[1].clone()
            })
        }
        "fail" => {
            want(a, 1)?;
            Err(to_text(&a[0]))
        }
        "quote" | "squote" => {
            let quoted: Vec<String> = a
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| {
                    let s = to_text(v);
                    if name == "quote" {
                        go_quote(&s)
                    } else {
                        format!("'{s}'")
                    }
                })
                .collect();
            bounded(quoted.join(" "))
        }
        "upper" | "lower" | "title" | "trim" | "nospace" => {
            want(a, 1)?;
            let s = string(&a[0])?;
            Ok(Value::String(match name {
                "upper" => s.to_uppercase(),
                "lower" => s.to_lowercase(),
                "trim" => s.trim().to_owned(),
                "nospace" => s.chars().filter(|c| !c.is_whitespace()).collect(),
                _ => title(s),
            }))
        }
        "trimAll" | "trimPrefix" | "trimSuffix" | "contains" | "hasPrefix" | "hasSuffix" => {
            want(a, 2)?;
            let (arg, s) = (string(&a[0])?, string(&a[1])?);
            Ok(match name {
                "trimAll" => Value::from(s.trim_matches(|c| arg.contains(c))),
                "trimPrefix" => Value::from(s.strip_prefix(arg).unwrap_or(s)),
                "trimSuffix" => Value::from(s.strip_suffix(arg).unwrap_or(s)),
                "contains" => Value::Bool(s.contains(arg)),
                "hasPrefix" => Value::Bool(s.starts_with(arg)),
                _ => Value::Bool(s.ends_with(arg)),
            })
        }
        "replace" => {
            want(a, 3)?;
            let (old, new, s) = (string(&a[0])?, string(&a[1])?, string(&a[2])?);
            if old.is_empty() {
                return Err("replace of an empty string".to_owned());
            }
            let count = s.matches(old).count();
            if s.len() + count.saturating_mul(new.len()) > MAX_OUTPUT {
                return Err(format!(
                    "the result is larger than {} MiB",
                    MAX_OUTPUT >> 20
                ));
            }
            Ok(Value::String(s.replace(old, new)))
        }
        "repeat" => {
            want(a, 2)?;
            let (n, s) = (int(&a[0])?, string(&a[1])?);
            let n = usize::try_from(n).map_err(|_| "negative repeat count".to_owned())?;
            if n.saturating_mul(s.len()) > MAX_OUTPUT {
                return Err(format!(
                    "the result is larger than {} MiB",
                    MAX_OUTPUT >> 20
                ));
            }
            Ok(Value::String(s.repeat(n)))
        }
        "substr" => {
            want(a, 3)?;
            let (start, end) = (int(&a[0])?, int(&a[1])?);
            let chars: Vec<char> = string(&a[2])?.chars().collect();
            let len = i64::try_from(chars.len()).unwrap_or(i64::MAX);
            let start = start.clamp(0, len);
            let end = if end < 0 || end > len {
                len
            } else {
                end.max(start)
            };
            Ok(Value::String(
                chars[usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0)]
                    .iter()
                    .collect(),
            ))
        }
        "trunc" => {
            want(a, 2)?;
            let n = int(&a[0])?;
            let chars: Vec<char> = string(&a[1])?.chars().collect();
            let keep = usize::try_from(n.unsigned_abs())
                .unwrap_or(usize::MAX)
                .min(chars.len());
            Ok(Value::String(if n >= 0 {
                chars[..keep].iter().collect()
            } else {
                chars[chars.len() - keep..].iter().collect()
            }))
        }
        "indent" | "nindent" => {
            want(a, 2)?;
            let n = usize::try_from(int(&a[0])?).map_err(|_| "negative indent".to_owned())?;
            let s = string(&a[1])?;
            let lines = s.matches('\n').count() + 1;
            if n.saturating_mul(lines).saturating_add(s.len()) > MAX_OUTPUT {
                return Err(format!(
                    "the result is larger than {} MiB",
                    MAX_OUTPUT >> 20
                ));
            }
            let pad = " ".repeat(n);
            let indented = format!("{pad}{}", s.replace('\n', &format!("\n{pad}")));
            Ok(Value::String(if name == "nindent" {
                format!("\n{indented}")
            } else {
                indented
            }))
        }
        "cat" => bounded(
            a.iter()
                .filter(|v| !v.is_null())
                .map(to_text)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "split" | "splitList" => {
            want(a, 2)?;
            let (sep, s) = (string(&a[0])?, string(&a[1])?);
            let parts: Vec<&str> = if sep.is_empty() {
                s.split_terminator("").skip(1).collect()
            } else {
                s.split(sep).collect()
            };
            Ok(if name == "splitList" {
                Value::Array(parts.into_iter().map(Value::from).collect())
            } else {
                Value::Object(
                    parts
                        .into_iter()
                        .enumerate()
                        .map(|(i, p)| (format!("_{i}"), Value::from(p)))
                        .collect(),
                )
            })
        }
        "join" => {
            want(a, 2)?;
            let sep = string(&a[0])?;
            let items: Vec<String> = match &a[1] {
                Value::Array(items) => items.iter().filter(|v| !v.is_null()).map(to_text).collect(),
                Value::String(s) => vec![s.clone()],
                other => return Err(format!("expected a list, found {}", kind(other))),
            };
            bounded(items.join(sep))
        }
        "toString" => {
            want(a, 1)?;
            Ok(Value::String(to_text(&a[0])))
        }
        "toJson" | "toRawJson" | "marshal" => {
            want(a, 1)?;
            json(&a[0], false)
        }
        "toPrettyJson" => {
            want(a, 1)?;
            json(&a[0], true)
        }
        "fromJson" => {
            want(a, 1)?;
            serde_json::from_str(string(&a[0])?).map_err(|e| format!("malformed JSON: {e}"))
        }
        "b64enc" => {
            want(a, 1)?;
            bounded(base64_encode(string(&a[0])?.as_bytes()))
        }
        "b64dec" => {
            want(a, 1)?;
            let bytes = base64_decode(string(&a[0])?).ok_or("malformed base64")?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| "the decoded base64 is not UTF-8 text".to_owned())
        }
        "list" => Ok(Value::Array(a.to_vec())),
        "first" | "last" | "rest" | "initial" | "uniq" | "compact" | "reverse" | "sortAlpha" => {
            want(a, 1)?;
            let items = list(&a[0])?;
            Ok(match name {
                "first" => items.first().cloned().unwrap_or(Value::Null),
                "last" => items.last().cloned().unwrap_or(Value::Null),
                "rest" => Value::Array(items.iter().skip(1).cloned().collect()),
                "initial" => Value::Array(items[..items.len().saturating_sub(1)].to_vec()),
                "uniq" => {
                    let mut out: Vec<Value> = Vec::new();
                    for item in items {
                        if !out.contains(item) {
                            out.push(item.clone());
                        }
                    }
                    Value::Array(out)
                }
                "compact" => Value::Array(items.iter().filter(|v| truth(v)).cloned().collect()),
                "reverse" => Value::Array(items.iter().rev().cloned().collect()),
                _ => {
                    let mut out: Vec<String> = items.iter().map(to_text).collect();
                    out.sort();
                    Value::Array(out.into_iter().map(Value::String).collect())
                }
            })
        }
        "append" | "push" | "prepend" => {
            want(a, 2)?;
            let mut items = list(&a[0])?.clone();
            if name == "prepend" {
                items.insert(0, a[1].clone());
            } else {
                items.push(a[1].clone());
            }
            Ok(Value::Array(items))
        }
        "concat" => {
            let mut out = Vec::new();
            for item in a {
                out.extend(list(item)?.iter().cloned());
            }
            Ok(Value::Array(out))
        }
        "has" => {
            want(a, 2)?;
            Ok(Value::Bool(match &a[1] {
                Value::Null => false,
                haystack => list(haystack)?.contains(&a[0]),
            }))
        }
        "without" => {
            at_least(a, 1)?;
            let items = list(&a[0])?;
            Ok(Value::Array(
                items
                    .iter()
                    .filter(|v| !a[1..].contains(v))
                    .cloned()
                    .collect(),
            ))
        }
        "until" | "untilStep" => {
            let (start, stop, step) = if name == "until" {
                want(a, 1)?;
                let n = int(&a[0])?;
                (0, n, if n < 0 { -1 } else { 1 })
            } else {
                want(a, 3)?;
                (int(&a[0])?, int(&a[1])?, int(&a[2])?)
            };
            if step == 0 {
                return Ok(Value::Array(Vec::new()));
            }
            let count = (stop.saturating_sub(start) / step).max(0);
            if count > MAX_LIST {
                return Err(format!("a list of more than {MAX_LIST} numbers"));
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i < stop) || (step < 0 && i > stop) {
                out.push(Value::from(i));
                i += step;
            }
            Ok(Value::Array(out))
        }
        "dict" => {
            if !a.len().is_multiple_of(2) {
                return Err("dict takes pairs of key and value".to_owned());
            }
            Ok(Value::Object(
                a.chunks(2)
                    .map(|kv| (to_text(&kv[0]), kv[1].clone()))
                    .collect(),
            ))
        }
        "get" => {
            want(a, 2)?;
            Ok(dict(&a[0])?
                .get(string(&a[1])?)
                .cloned()
                .unwrap_or_else(|| Value::from("")))
        }
        "set" => {
            want(a, 3)?;
            let mut map = dict(&a[0])?.clone();
            map.insert(string(&a[1])?.to_owned(), a[2].clone());
            Ok(Value::Object(map))
        }
        "unset" => {
            want(a, 2)?;
            let mut map = dict(&a[0])?.clone();
            map.remove(string(&a[1])?);
            Ok(Value::Object(map))
        }
        "hasKey" => {
            want(a, 2)?;
            Ok(Value::Bool(match &a[0] {
                Value::Null => false,
                d => dict(d)?.contains_key(string(&a[1])?),
            }))
        }
        "keys" => {
            let mut out = Vec::new();
            for d in a {
                out.extend(dict(d)?.keys().cloned().map(Value::String));
            }
            Ok(Value::Array(out))
        }
        "values" => {
            want(a, 1)?;
            Ok(Value::Array(dict(&a[0])?.values().cloned().collect()))
        }
        "pluck" => {
            at_least(a, 1)?;
            let key = string(&a[0])?;
            let mut out = Vec::new();
            for d in &a[1..] {
                out.extend(dict(d)?.get(key).cloned());
            }
            Ok(Value::Array(out))
        }
        "pick" | "omit" => {
            at_least(a, 1)?;
            let names: Vec<&str> = a[1..].iter().map(string).collect::<Result<_, _>>()?;
            Ok(Value::Object(
                dict(&a[0])?
                    .iter()
                    .filter(|(k, _)| names.contains(&k.as_str()) == (name == "pick"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
        }
        "merge" | "mergeOverwrite" => {
            at_least(a, 1)?;
            let mut out = dict(&a[0])?.clone();
            for source in &a[1..] {
                merge(&mut out, dict(source)?, name == "mergeOverwrite");
            }
            Ok(Value::Object(out))
        }
        "dig" => {
            at_least(a, 3)?;
            let (keys, rest) = a.split_at(a.len() - 2);
            let mut current = &rest[1];
            for key in keys {
                match dict(current)?.get(string(key)?) {
                    Some(next) => current = next,
                    None => return Ok(rest[0].clone()),
                }
            }
            Ok(current.clone())
        }
        "add" | "mul" => {
            let mut acc: i64 = if name == "add" { 0 } else { 1 };
            for v in a {
                let n = int(v)?;
                acc = if name == "add" {
                    acc.checked_add(n)
                } else {
                    acc.checked_mul(n)
                }
                .ok_or("integer overflow")?;
            }
            Ok(Value::from(acc))
        }
        "add1" => {
            want(a, 1)?;
            Ok(Value::from(
                int(&a[0])?.checked_add(1).ok_or("integer overflow")?,
            ))
        }
        "sub" | "div" | "mod" => {
            want(a, 2)?;
            let (x, y) = (int(&a[0])?, int(&a[1])?);
            let result = match name {
                "sub" => x.checked_sub(y),
                "div" => x.checked_div(y),
                _ => x.checked_rem(y),
            };
            Ok(Value::from(result.ok_or("division by zero or overflow")?))
        }
        "max" | "min" => {
            at_least(a, 1)?;
            let numbers: Vec<i64> = a.iter().map(int).collect::<Result<_, _>>()?;
            Ok(Value::from(
                if name == "max" {
                    numbers.iter().max()
                } else {
                    numbers.iter().min()
                }
                .copied()
                .unwrap_or_default(),
            ))
        }
        "int" | "int64" | "atoi" => {
            want(a, 1)?;
            if name == "atoi" {
                string(&a[0])?;
            }
            Ok(Value::from(int(&a[0])?))
        }
        "float64" => {
            want(a, 1)?;
            float_value(float(&a[0])?)
        }
        "kindOf" => {
            want(a, 1)?;
            Ok(Value::from(go_kind(&a[0])))
        }
        "kindIs" => {
            want(a, 2)?;
            Ok(Value::Bool(string(&a[0])? == go_kind(&a[1])))
        }
        "env" => {
            want(a, 1)?;
            Ok(Value::String(host.env(string(&a[0])?).unwrap_or_default()))
        }
        "expandenv" => {
            want(a, 1)?;
            bounded(expand_env(string(&a[0])?, host))
        }
        "include" => {
            want(a, 1)?;
            host.include(string(&a[0])?).map(Value::String)
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

/// The kind Go's reflection gives a value decoded from JSON.
fn go_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "invalid",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

/// Mergo's merge: keys the destination lacks (or holds empty) come from the source, dicts
/// merge deeply; with `overwrite`, the source wins.
fn merge(dst: &mut Map<String, Value>, src: &Map<String, Value>, overwrite: bool) {
    for (key, value) in src {
        match (dst.get_mut(key), value) {
            (Some(Value::Object(d)), Value::Object(s)) => merge(d, s, overwrite),
            (Some(existing), _) if truth(existing) && !overwrite => {}
            _ => {
                dst.insert(key.clone(), value.clone());
            }
        }
    }
}

/// `$VAR` and `${VAR}` replaced by their values (unset: empty), as Go's `os.ExpandEnv`.
fn expand_env(s: &str, host: &dyn Host) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, skip) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if skip == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(&host.env(name).unwrap_or_default());
        rest = &after[skip..];
    }
    out.push_str(rest);
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// Go's `fmt.Sprintf` for the verbs configs use: `%s %v %d %q %t %f %g %x %X %%`, with width
/// (`%5d`, `%-5s`, `%05d`) and precision (`%.2f`).
fn printf(format: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut left = false;
        let mut zero = false;
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => left = true,
                '0' => zero = true,
                '+' | ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse::<usize>().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            return Err(format!("printf: missing argument for %{verb}"));
        };
        let text = match verb {
            's' | 'v' => to_text(arg),
            'q' => go_quote(&to_text(arg)),
            'd' => int(arg)?.to_string(),
            't' => match arg {
                Value::Bool(b) => b.to_string(),
                other => return Err(format!("printf: %t of {}", kind(other))),
            },
            'f' | 'F' => format!("{:.*}", precision.unwrap_or(6), float(arg)?),
            'g' => float(arg)?.to_string(),
            'x' | 'X' => {
                let hex = match arg {
                    Value::String(s) => s.bytes().map(|b| format!("{b:02x}")).collect(),
                    other => format!("{:x}", int(other)?),
                };
                if verb == 'X' { hex.to_uppercase() } else { hex }
            }
            other => return Err(format!("printf: the verb %{other} is not supported")),
        };
        let width: usize = width.parse().unwrap_or(0);
        let pad = width.saturating_sub(text.chars().count());
        if pad > MAX_OUTPUT {
            return Err("printf: width too large".to_owned());
        }
        if left {
            out.push_str(&text);
            out.push_str(&" ".repeat(pad));
        } else if zero && matches!(verb, 'd' | 'f' | 'F' | 'x' | 'X') {
            let (sign, digits) = text
                .strip_prefix('-')
                .map_or(("", text.as_str()), |d| ("-", d));
            out.push_str(sign);
            out.push_str(&"0".repeat(pad));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&text);
        }
    }
    if args.next().is_some() {
        return Err("printf: more arguments than verbs".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    struct NoHost;
    impl Host for NoHost {
        fn env(&self, name: &str) -> Option<String> {
            (name == "HOME_DIR").then(|| "/home/x".to_owned())
        }
        fn include(&self, _: &str) -> Result<String, String> {
            Err("no partials".to_owned())
        }
    }

    fn f(name: &str, args: &[Value]) -> R {
        call(name, args, &NoHost)
    }

    #[test]
    fn every_name_is_callable() {
        for name in NAMES {
            if matches!(*name, "and" | "or") {
                continue;
            }
            let result = f(name, &[]);
            assert!(
                !matches!(&result, Err(m) if m.contains("not defined")),
                "{name}: {result:?}"
            );
        }
    }

    #[test]
    fn strings() {
        assert_eq!(
            f("quote", &[json!("a\"b"), json!(1)]),
            Ok(json!("\"a\\\"b\" \"1\""))
        );
        assert_eq!(f("upper", &[json!("ab")]), Ok(json!("AB")));
        assert_eq!(
            f("title", &[json!("hello wide world")]),
            Ok(json!("Hello Wide World"))
        );
        assert_eq!(f("trimSuffix", &[json!("/"), json!("a/")]), Ok(json!("a")));
        assert_eq!(
            f("replace", &[json!("a"), json!("b"), json!("aXa")]),
            Ok(json!("bXb"))
        );
        assert_eq!(
            f("substr", &[json!(1), json!(3), json!("hello")]),
            Ok(json!("el"))
        );
        assert_eq!(f("trunc", &[json!(-2), json!("hello")]), Ok(json!("lo")));
        assert_eq!(
            f("nindent", &[json!(2), json!("a\nb")]),
            Ok(json!("\n  a\n  b"))
        );
        assert_eq!(
            f("split", &[json!(","), json!("a,b")]),
            Ok(json!({"_0": "a", "_1": "b"}))
        );
        assert_eq!(
            f("splitList", &[json!(","), json!("a,b")]),
            Ok(json!(["a", "b"]))
        );
        assert_eq!(
            f("join", &[json!(", "), json!(["a", 1, null])]),
            Ok(json!("a, 1"))
        );
        assert_eq!(
            f("upper", &[json!(1)]),
            Err("expected a string, found a number".into())
        );
        assert!(f("repeat", &[json!(1 << 30), json!("abc")]).is_err());
        assert_eq!(f("b64enc", &[json!("hello!?")]), Ok(json!("aGVsbG8hPw==")));
        assert_eq!(f("b64dec", &[json!("aGVsbG8hPw==")]), Ok(json!("hello!?")));
        assert_eq!(
            f("expandenv", &[json!("$HOME_DIR/${HOME_DIR}/$NOPE$")]),
            Ok(json!("/home/x//home/x/$"))
        );
    }

    #[test]
    fn defaults_lists_and_dicts() {
        assert_eq!(f("default", &[json!("d"), Value::Null]), Ok(json!("d")));
        assert_eq!(f("default", &[json!("d"), json!("")]), Ok(json!("d")));
        assert_eq!(f("default", &[json!("d"), json!("x")]), Ok(json!("x")));
        assert_eq!(
            f("ternary", &[json!(1), json!(2), json!(false)]),
            Ok(json!(2))
        );
        assert_eq!(f("until", &[json!(3)]), Ok(json!([0, 1, 2])));
        assert!(f("until", &[json!(1_000_000_000)]).is_err());
        assert_eq!(f("has", &[json!(2), json!([1, 2])]), Ok(json!(true)));
        assert_eq!(f("uniq", &[json!([1, 1, 2])]), Ok(json!([1, 2])));
        assert_eq!(f("sortAlpha", &[json!(["b", "a"])]), Ok(json!(["a", "b"])));
        assert_eq!(f("dict", &[json!("a"), json!(1)]), Ok(json!({"a": 1})));
        assert_eq!(f("hasKey", &[json!({"a": 1}), json!("a")]), Ok(json!(true)));
        assert_eq!(f("hasKey", &[Value::Null, json!("a")]), Ok(json!(false)));
        assert_eq!(f("keys", &[json!({"b": 1, "a": 2})]), Ok(json!(["a", "b"])));
        assert_eq!(
            f(
                "dig",
                &[json!("a"), json!("b"), json!("d"), json!({"a": {"b": 3}})]
            ),
            Ok(json!(3))
        );
        assert_eq!(
            f("dig", &[json!("x"), json!("d"), json!({"a": 1})]),
            Ok(json!("d"))
        );
        assert_eq!(
            f(
                "merge",
                &[
                    json!({"a": {"x": 1}, "b": 1}),
                    json!({"a": {"y": 2}, "b": 2, "c": 3})
                ]
            ),
            Ok(json!({"a": {"x": 1, "y": 2}, "b": 1, "c": 3}))
        );
        assert_eq!(
            f("mergeOverwrite", &[json!({"b": 1}), json!({"b": 2})]),
            Ok(json!({"b": 2}))
        );
    }

    #[test]
    fn numbers_and_comparisons() {
        assert_eq!(f("add", &[json!(1), json!(2), json!("3")]), Ok(json!(6)));
        assert_eq!(
            f("add", &[json!(1.5), json!(1)]),
            Err("expected a whole number, found 1.5".into())
        );
        assert!(f("div", &[json!(1), json!(0)]).is_err());
        assert_eq!(f("atoi", &[json!("42")]), Ok(json!(42)));
        assert!(f("atoi", &[json!("x")]).is_err());
        assert_eq!(f("eq", &[json!(8080), json!(8080.0)]), Ok(json!(true)));
        assert_eq!(
            f("eq", &[json!("a"), json!("b"), json!("a")]),
            Ok(json!(true))
        );
        assert!(f("eq", &[json!("1"), json!(1)]).is_err());
        assert_eq!(f("lt", &[json!(1), json!(2)]), Ok(json!(true)));
        assert_eq!(f("ge", &[json!("b"), json!("a")]), Ok(json!(true)));
    }

    #[test]
    fn printing() {
        assert_eq!(
            to_text(&json!({"b": [1, "x"], "a": null})),
            "map[a:<nil> b:[1 x]]"
        );
        assert_eq!(
            f("print", &[json!(1), json!(2), json!("a"), json!(3)]),
            Ok(json!("1 2a3"))
        );
        assert_eq!(
            f(
                "printf",
                &[
                    json!("%s:%d|%5s|%-3d|%03d|%.2f|%q|%v|%x|%%"),
                    json!("a"),
                    json!(7),
                    json!("b"),
                    json!(4),
                    json!(5),
                    json!(1.5),
                    json!("q"),
                    json!(true),
                    json!(255)
                ]
            ),
            Ok(json!("a:7|    b|4  |005|1.50|\"q\"|true|ff|%"))
        );
        assert!(f("printf", &[json!("%d"), json!("x")]).is_err());
        let value: Value = serde_json::from_str(r#"{"a": [1.10, "<"]}"#).unwrap();
        assert_eq!(f("toJson", &[value]), Ok(json!(r#"{"a":[1.10,"<"]}"#)));
        assert_eq!(
            f("toPrettyJson", &[json!({"a": 1})]),
            Ok(json!("{\n  \"a\": 1\n}"))
        );
        assert_eq!(f("fromJson", &[json!("{\"a\": 1}")]), Ok(json!({"a": 1})));
        assert!(f("fromJson", &[json!("{")]).is_err());
    }
}
