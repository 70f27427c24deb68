//! What Go's standard library does, where a byte-exact imitation of a Go program (KrakenD CE's
//! integration harness and its mock backend) depends on it: `encoding/json` output, `net/url`
//! query parsing and path unescaping, `net/textproto` header canonicalisation, `path.Clean`
//! and `net/http`'s `Redirect`.

use std::collections::BTreeMap;

use serde_json::Value;

/// `json.Marshal` of a value decoded into `interface{}`: compact, object keys sorted, `<`, `>`,
/// `&`, U+2028 and U+2029 escaped (Go's HTML-safe default). `json.Encoder.Encode` adds `\n`.
pub fn json_marshal(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Go sorts map keys by bytes; a BTreeMap of &str sorts the same way.
            let sorted: BTreeMap<&str, &Value> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k);
                out.push(':');
                write_json(out, v);
            }
            out.push('}');
        }
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `textproto.CanonicalMIMEHeaderKey`: `x-y-z` -> `X-Y-Z`. A name holding a byte that is not
/// a token character is returned unchanged, as Go does.
pub fn canonical_header_key(name: &str) -> String {
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_token) {
        return name.to_owned();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

fn unhex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `%XX` decoding that fails on a bad escape (Go's `url.unescape`); `plus_is_space` for query
/// components. The result may not be UTF-8; Go keeps the bytes, JSON output replaces them.
fn unescape(s: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(unhex)?;
                let lo = bytes.get(i + 2).copied().and_then(unhex)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// `url.PathUnescape`, as a Go server fills `r.URL.Path`; `None` on a bad escape (Go's server
/// then answers 400 before any handler runs).
pub fn path_unescape(raw: &str) -> Option<String> {
    unescape(raw, false).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// `url.ParseQuery` with its error ignored, as `r.URL.Query()` does: a pair holding `;` or a
/// bad escape is dropped, `+` is a space, a name without `=` has an empty value.
pub fn parse_query(raw: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in raw.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (unescape(k, true), unescape(v, true)) else {
            continue;
        };
        map.entry(String::from_utf8_lossy(&k).into_owned())
            .or_default()
            .push(String::from_utf8_lossy(&v).into_owned());
    }
    map
}

/// `path.Clean` for a rooted path.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `ServeMux`'s `cleanPath`: rooted, `.`/`..`/`//` resolved, a trailing slash kept.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return "/".to_owned();
    }
    let rooted = if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("/{p}")
    };
    let mut cleaned = clean(&rooted);
    if rooted.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

/// `http.StatusText`; empty for codes Go does not name.
pub fn status_text(code: u16) -> &'static str {
    match code {
        // Go keeps the older names where the IANA registry renamed them.
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        416 => "Requested Range Not Satisfiable",
        418 => "I'm a teapot",
        _ => http::StatusCode::from_u16(code)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(""),
    }
}

/// `html.EscapeString` as `http.Redirect` applies it to the link in its body.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            c => out.push(c),
        }
    }
    out
}

/// `hexEscapeNonASCII`, applied to the `Location` value.
fn hex_escape_non_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What `http.Redirect(w, r, url, code)` writes for a local (scheme-less, rooted) `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The `Location` value.
    pub location: String,
    /// `text/html; charset=utf-8` for GET and HEAD.
    pub content_type: Option<&'static str>,
    /// The short HTML body, for GET only.
    pub body: String,
}

/// `http.Redirect` for a rooted `url` answering a request with `method`: the path part is
/// cleaned (a trailing slash kept), the query kept as it is.
pub fn redirect(method: &str, url: &str, code: u16) -> Redirect {
    let (path, query) = match url.find('?') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let mut cleaned = clean(path);
    if path.ends_with('/') && !cleaned.ends_with('/') {
        cleaned.push('/');
    }
    let url = format!("{cleaned}{query}");
    let body = if method == "GET" {
        // Go writes the link with Fprintln, hence the second newline.
        format!(
            "<a href=\"{}\">{}</a>.\n\n",
            html_escape(&url),
            status_text(code)
        )
    } else {
        String::new()
    };
    Redirect {
        location: hex_escape_non_ascii(&url),
        content_type: matches!(method, "GET" | "HEAD").then_some("text/html; charset=utf-8"),
        body,
    }
}

/// `strconv.Quote` for the texts this harness quotes (error messages).
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `strconv.Atoi` on a 64-bit platform, with Go's error text.
///
/// # Errors
/// `strconv.Atoi: parsing "<s>": invalid syntax` or `... value out of range`.
pub fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            quote(s)
        ));
    }
    s.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", quote(s)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_like_go() {
        let v = json!({"b": [1, 2.5, "x<y&z>"], "a": {"d": null, "c": true}, "e": "\u{2028}\n"});
        assert_eq!(
            json_marshal(&v),
            r#"{"a":{"c":true,"d":null},"b":[1,2.5,"x\u003cy\u0026z\u003e"],"e":"\u2028\n"}"#
        );
    }

    #[test]
    fn headers_like_go() {
        assert_eq!(canonical_header_key("x-y-Z"), "X-Y-Z");
        assert_eq!(canonical_header_key("autHoriZatiOn"), "Authorization");
        assert_eq!(canonical_header_key("x_y"), "X_y");
        assert_eq!(canonical_header_key("bad name"), "bad name");
    }

    #[test]
    fn query_like_go() {
        let q = parse_query("a=1&b=2&b=3&c%5B%5D=x+y&bad=%zz&semi=1;2&e");
        assert_eq!(q["a"], ["1"]);
        assert_eq!(q["b"], ["2", "3"]);
        assert_eq!(q["c[]"], ["x y"]);
        assert_eq!(q["e"], [""]);
        assert!(!q.contains_key("bad") && !q.contains_key("semi"));
    }

    #[test]
    fn paths_like_go() {
        assert_eq!(clean_path("/a//b/./c/../"), "/a/b/");
        assert_eq!(clean_path("/a/.."), "/");
        assert_eq!(clean_path(""), "/");
        assert_eq!(path_unescape("/a%2Fb%20c").as_deref(), Some("/a/b c"));
        assert_eq!(path_unescape("/a%zz"), None);
    }

    #[test]
    fn redirect_like_go() {
        let r = redirect("GET", "/param_forwarding/?status=301&a=<", 301);
        assert_eq!(r.location, "/param_forwarding/?status=301&a=<");
        assert_eq!(r.content_type, Some("text/html; charset=utf-8"));
        assert_eq!(
            r.body,
            "<a href=\"/param_forwarding/?status=301&amp;a=&lt;\">Moved Permanently</a>.\n\n"
        );
        let r = redirect("POST", "/x/", 307);
        assert_eq!((r.content_type, r.body.as_str()), (None, ""));
    }

    #[test]
    fn atoi_like_go() {
        assert_eq!(atoi("302"), Ok(302));
        assert_eq!(atoi("-1"), Ok(-1));
        assert_eq!(
            atoi("3a"),
            Err(r#"strconv.Atoi: parsing "3a": invalid syntax"#.to_owned())
        );
        assert_eq!(
            atoi(""),
            Err(r#"strconv.Atoi: parsing "": invalid syntax"#.to_owned())
        );
        assert!(atoi("99999999999999999999").is_err_and(|e| e.ends_with("value out of range")));
    }
}
