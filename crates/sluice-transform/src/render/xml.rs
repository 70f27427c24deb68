//! The XML render: KrakenD CE's `xml` output encoding (krakend-xml's `Render`, which writes the
//! data with clbanning/mxj's `Map.Xml()`, `XMLEscapeChars(true)`, no root tag given), under the
//! `Content-Type` it sets: `application/xml`, without a charset.

use serde_json::{Map, Value};

use crate::decode::{XML_ATTR_PREFIX, XML_TEXT_KEY};

/// Root element of data that has no single key to use as the root (mxj's `DefaultRootTag`).
const DEFAULT_ROOT: &str = "doc";

/// The data as XML, as mxj writes it: no `<?xml ...?>` declaration, no indentation, no newline.
///
/// - Root: data with exactly one key is written with that key as the root element (so data
///   decoded from XML re-serialises as it came: `<user type="admin"><name>Elliot</name>…</user>`),
///   unless its value is an array holding something other than objects; any other data (none,
///   several keys) is wrapped in `<doc>…</doc>`. A single key holding an array of objects gives
///   one root per object, as mxj does.
/// - Elements: keys in sorted (byte) order; an array repeats its key once per item, nested arrays
///   flattened; `{}`, `[]`, `""` and `null` give `<key/>`; numbers as their JSON text, booleans
///   as `true`/`false`.
/// - Attributes: keys starting with `-` (and longer than it) become attributes, sorted, written
///   before the children; an object holding only attributes is `<key a="1"/>`.
/// - Text: `#text` is the element's text, written right after the start tag and before any child
///   (`<e a="1">text</e>`, `<e>text<c>d</c></e>`); an element with `#text` is never self-closed.
/// - Escaping: text and attribute values escape `& < > " '` as `&amp; &lt; &gt; &quot; &apos;`;
///   keys are written as they are, whether or not they are valid XML names, as mxj does.
///
/// Deliberate differences, where mxj's output is a Go artefact rather than XML anyone reads:
/// - an attribute whose value is `null`, an object or an array: mxj fails the whole render and
///   KrakenD answers 200 with an empty body; here `null` is `a=""` and the others their JSON text;
/// - `#text` holding `null`, an object or an array: mxj prints Go's `%v` (`<nil>`,
///   `map[k:v]`, `[a b]`); here `null` is no text and the others their JSON text.
pub fn to_xml(data: &Map<String, Value>) -> Vec<u8> {
    let mut out = String::with_capacity(128);
    let mut entries = data.iter();
    match (entries.next(), entries.next()) {
        (Some((key, value)), None) if !is_list_of_non_objects(value) => {
            write_element(&mut out, key, value);
        }
        _ => write_object(&mut out, DEFAULT_ROOT, data),
    }
    out.into_bytes()
}

fn is_list_of_non_objects(value: &Value) -> bool {
    matches!(value, Value::Array(items) if items.iter().any(|item| !item.is_object()))
}

fn is_attribute(key: &str) -> bool {
    key.len() > XML_ATTR_PREFIX.len_utf8() && key.starts_with(XML_ATTR_PREFIX)
}

fn write_element(out: &mut String, key: &str, value: &Value) {
    match value {
        Value::Object(map) => write_object(out, key, map),
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                write_element(out, key, item);
            }
        }
        Value::String(s) if !s.is_empty() => {
            open(out, key);
            out.push('>');
            escape_into(out, s);
            close(out, key);
        }
        Value::Number(n) => {
            open(out, key);
            out.push('>');
            out.push_str(&n.to_string());
            close(out, key);
        }
        Value::Bool(b) => {
            open(out, key);
            out.push('>');
            out.push_str(if *b { "true" } else { "false" });
            close(out, key);
        }
        // Empty string, empty array, null.
        _ => {
            open(out, key);
            out.push_str("/>");
        }
    }
}

fn write_object(out: &mut String, key: &str, map: &Map<String, Value>) {
    open(out, key);
    let mut attributes = 0;
    for (name, value) in map.iter().filter(|(name, _)| is_attribute(name)) {
        attributes += 1;
        out.push(' ');
        out.push_str(&name[XML_ATTR_PREFIX.len_utf8()..]);
        out.push_str("=\"");
        write_text(out, value);
        out.push('"');
    }
    if attributes == map.len() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    if let Some(text) = map.get(XML_TEXT_KEY) {
        write_text(out, text);
    }
    for (name, value) in map {
        if name != XML_TEXT_KEY && !is_attribute(name) {
            write_element(out, name, value);
        }
    }
    close(out, key);
}

/// A value as escaped text: scalars as they read, `null` as nothing, objects and arrays as JSON.
fn write_text(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => escape_into(out, s),
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Array(_) | Value::Object(_) => escape_into(out, &value.to_string()),
    }
}

fn open(out: &mut String, key: &str) {
    out.push('<');
    out.push_str(key);
}

fn close(out: &mut String, key: &str) {
    out.push_str("</");
    out.push_str(key);
    out.push('>');
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn xml(value: Value) -> String {
        let Value::Object(map) = value else {
            panic!("not an object")
        };
        String::from_utf8(to_xml(&map)).unwrap()
    }

    #[test]
    fn case_37_json_in_xml_out() {
        let echo = json!({
            "foo": 42,
            "headers": {
                "Accept-Encoding": ["gzip"],
                "Referer": ["http://127.0.0.1:8081/param_forwarding"],
                "User-Agent": ["KrakenD Version 2.13.8"],
                "X-Forwarded-Host": ["localhost:8080"]
            },
            "path": "/param_forwarding/",
            "query": {}
        });
        assert_eq!(
            xml(echo),
            "<doc><foo>42</foo><headers><Accept-Encoding>gzip</Accept-Encoding><Referer>http://127.0.0.1:8081/param_forwarding</Referer><User-Agent>KrakenD Version 2.13.8</User-Agent><X-Forwarded-Host>localhost:8080</X-Forwarded-Host></headers><path>/param_forwarding/</path><query/></doc>"
        );
    }

    #[test]
    fn krakend_render_test_body() {
        assert_eq!(
            xml(json!({"a": {"content": "supu & tupu"}, "content": "tupu", "foo": 42})),
            "<doc><a><content>supu &amp; tupu</content></a><content>tupu</content><foo>42</foo></doc>"
        );
    }

    #[test]
    fn root_choice() {
        assert_eq!(xml(json!({})), "<doc/>");
        assert_eq!(xml(json!({"k": "v"})), "<k>v</k>");
        assert_eq!(xml(json!({"g": {"a": 1}})), "<g><a>1</a></g>");
        assert_eq!(xml(json!({"k": ["a", "b"]})), "<doc><k>a</k><k>b</k></doc>");
        // A single key holding only objects repeats as roots, as mxj writes it.
        assert_eq!(
            xml(json!({"k": [{"a": 1}, {"a": 2}]})),
            "<k><a>1</a></k><k><a>2</a></k>"
        );
    }

    #[test]
    fn values() {
        assert_eq!(
            xml(
                json!({"a": "", "b": null, "c": [], "d": {}, "e": true, "f": 1.5, "g": [1, [2, 3]], "h": "<&'\">"})
            ),
            "<doc><a/><b/><c/><d/><e>true</e><f>1.5</f><g>1</g><g>2</g><g>3</g><h>&lt;&amp;&apos;&quot;&gt;</h></doc>"
        );
    }

    #[test]
    fn attributes_and_text() {
        assert_eq!(
            xml(json!({"e": {"-b": "2", "-a": "x&y", "#text": "t<"}})),
            r#"<e a="x&amp;y" b="2">t&lt;</e>"#
        );
        assert_eq!(
            xml(json!({"e": {"-a": 1, "-n": null}})),
            r#"<e a="1" n=""/>"#
        );
        assert_eq!(
            xml(json!({"e": {"-a": "1", "#text": "mixed", "c": "d"}})),
            r#"<e a="1">mixed<c>d</c></e>"#
        );
        assert_eq!(xml(json!({"e": {"-": 1}})), "<e><->1</-></e>");
        assert_eq!(
            xml(json!({"e": {"-o": {"k": [1]}}})),
            r#"<e o="{&quot;k&quot;:[1]}"/>"#
        );
    }

    #[test]
    fn text_as_mxj_writes_it() {
        // Only text, or empty text: never self-closed.
        assert_eq!(xml(json!({"e": {"#text": "t"}})), "<e>t</e>");
        assert_eq!(xml(json!({"e": {"#text": ""}})), "<e></e>");
        assert_eq!(
            xml(json!({"e": {"-a": "1", "#text": ""}})),
            r#"<e a="1"></e>"#
        );
        assert_eq!(xml(json!({"e": {"#text": 5}})), "<e>5</e>");
        // Deliberate differences: mxj prints Go's `%v` here.
        assert_eq!(
            xml(json!({"e": {"#text": null, "c": 1}})),
            "<e><c>1</c></e>"
        );
        assert_eq!(
            xml(json!({"e": {"#text": [1, "a"]}})),
            r#"<e>[1,&quot;a&quot;]</e>"#
        );
    }

    #[test]
    fn several_keys_with_attributes_and_text_at_the_root() {
        assert_eq!(
            xml(json!({
                "order": 7, "-id": "o7", "#text": "t", "ok": true, "none": null, "meta": {},
                "flags": [], "tags": ["x", "y"], "note": "<hi>",
                "items": [{"sku": "a&b", "qty": 2}, {"sku": "c", "qty": 1}]
            })),
            concat!(
                r#"<doc id="o7">t<flags/><items><qty>2</qty><sku>a&amp;b</sku></items>"#,
                "<items><qty>1</qty><sku>c</sku></items><meta/><none/><note>&lt;hi&gt;</note>",
                "<ok>true</ok><order>7</order><tags>x</tags><tags>y</tags></doc>"
            )
        );
        // An attribute-like or text key alone is an element, as mxj writes it.
        assert_eq!(xml(json!({"-a": "x"})), "<-a>x</-a>");
        assert_eq!(xml(json!({"#text": "x"})), "<#text>x</#text>");
    }

    #[test]
    fn arrays_inside_arrays() {
        assert_eq!(
            xml(json!({"a": 1, "g": [1, [], null, [2, {"k": ""}]]})),
            "<doc><a>1</a><g>1</g><g/><g/><g>2</g><g><k/></g></doc>"
        );
        // A single key holding an empty array is that element.
        assert_eq!(xml(json!({"k": []})), "<k/>");
        // ... and one holding anything but objects is wrapped.
        assert_eq!(
            xml(json!({"k": [{"a": 1}, 2]})),
            "<doc><k><a>1</a></k><k>2</k></doc>"
        );
    }

    #[test]
    fn round_trip_from_xml() {
        let body = r#"<Person id="1"><Email where="home"><Addr>a@x</Addr></Email><Email where="work"><Addr>b@x</Addr></Email><Name>Al &amp; Co</Name></Person>"#;
        let data =
            crate::decode::decode(sluice_config::Encoding::Xml, false, body.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(to_xml(&data)).unwrap(), body);
    }
}
