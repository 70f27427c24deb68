//! Rendering response data for the client: JSON (as Go's `json.Marshal` writes it), the `collection`
//! and `content` renders, XML, YAML, and `Accept` negotiation.

mod xml;
mod yaml;

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;
use serde_json::{Map, Value};

pub use xml::to_xml;
pub use yaml::to_yaml;

use crate::decode::{COLLECTION_KEY, CONTENT_KEY};

/// `Content-Type` of the JSON renders.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// `Content-Type` of the XML render (KrakenD writes no charset).
pub const XML_CONTENT_TYPE: &str = "application/xml";
/// `Content-Type` of the YAML render.
pub const YAML_CONTENT_TYPE: &str = "application/yaml; charset=utf-8";
/// `Content-Type` of the `string` render.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// The data as compact JSON, byte for byte what KrakenD writes: keys sorted, and `<`, `>`, `&`,
/// U+2028 and U+2029 inside strings escaped as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`.
pub fn to_json(data: &Map<String, Value>) -> Vec<u8> {
    write_json(data)
}

/// Any JSON value as [`to_json`] writes data (the `router.error_body` answers).
pub fn to_json_value(value: &Value) -> Vec<u8> {
    write_json(value)
}

/// The `json-collection` render: the `collection` value as JSON, `[]` when there is none.
pub fn to_json_collection(data: &Map<String, Value>) -> Vec<u8> {
    match data.get(COLLECTION_KEY) {
        Some(collection) => write_json(collection),
        None => b"[]".to_vec(),
    }
}

/// The `string` render: the `content` string, empty when it is missing or not a string.
pub fn to_string_content(data: &Map<String, Value>) -> Vec<u8> {
    match data.get(CONTENT_KEY) {
        Some(Value::String(content)) => content.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

fn write_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // Writing JSON values into a Vec cannot fail (string keys, no I/O); keep what was written if so.
    let _ = value.serialize(&mut serializer);
    out
}

/// Compact JSON (the trait's defaults) with Go's HTML-safe string escaping.
#[derive(Debug, Clone, Copy)]
struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        if !bytes.iter().any(|b| matches!(b, b'<' | b'>' | b'&' | 0xE2)) {
            return writer.write_all(bytes);
        }
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let escape: Option<(&[u8], usize)> = match bytes[i] {
                b'<' => Some((b"\\u003c", 1)),
                b'>' => Some((b"\\u003e", 1)),
                b'&' => Some((b"\\u0026", 1)),
                0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA8) => {
                    Some((b"\\u2028", 3))
                }
                0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA9) => {
                    Some((b"\\u2029", 3))
                }
                _ => None,
            };
            match escape {
                Some((replacement, width)) => {
                    writer.write_all(&bytes[start..i])?;
                    writer.write_all(replacement)?;
                    i += width;
                    start = i;
                }
                None => i += 1,
            }
        }
        writer.write_all(&bytes[start..])
    }
}

/// The render `negotiate` picked from `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// `application/json` (also the default).
    Json,
    /// `application/xml`, `text/xml`.
    Xml,
    /// `text/plain`, `application/yaml`, `application/x-yaml`, `text/yaml`, `text/x-yaml`.
    Yaml,
}

impl Negotiated {
    /// The `Content-Type` of the render.
    pub fn content_type(self) -> &'static str {
        match self {
            Negotiated::Json => JSON_CONTENT_TYPE,
            Negotiated::Xml => XML_CONTENT_TYPE,
            Negotiated::Yaml => YAML_CONTENT_TYPE,
        }
    }

    /// Renders the data.
    pub fn render(self, data: &Map<String, Value>) -> Vec<u8> {
        match self {
            Negotiated::Json => to_json(data),
            Negotiated::Xml => to_xml(data),
            Negotiated::Yaml => to_yaml(data),
        }
    }
}

/// Picks JSON, XML or YAML from an `Accept` header, as KrakenD's `negotiate` output encoding:
/// `application/json` -> JSON; `application/xml`, `text/xml` -> XML; `text/plain` and the YAML types
/// -> YAML; `*/*`, `application/*` -> JSON; `text/*` -> YAML; no header or no match -> JSON.
/// Media ranges are tried by descending `q` (ranges with `q=0` are refused), then in header order.
pub fn negotiate(accept: Option<&str>) -> Negotiated {
    let Some(accept) = accept else {
        return Negotiated::Json;
    };
    let mut ranges: Vec<(f32, &str)> = Vec::new();
    for part in accept.split(',') {
        let mut pieces = part.split(';');
        let media = pieces.next().unwrap_or_default().trim();
        if media.is_empty() {
            continue;
        }
        let quality = pieces
            .filter_map(|param| param.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, value)| value.trim().parse::<f32>().unwrap_or(1.0));
        if quality > 0.0 {
            ranges.push((quality, media));
        }
    }
    // Stable: equal qualities keep the header's order.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges
        .into_iter()
        .find_map(|(_, media)| match_media(media))
        .unwrap_or(Negotiated::Json)
}

fn match_media(media: &str) -> Option<Negotiated> {
    const TYPES: [(&str, Negotiated); 11] = [
        ("application/json", Negotiated::Json),
        ("text/plain", Negotiated::Yaml),
        ("application/xml", Negotiated::Xml),
        ("text/xml", Negotiated::Xml),
        ("application/yaml", Negotiated::Yaml),
        ("application/x-yaml", Negotiated::Yaml),
        ("text/yaml", Negotiated::Yaml),
        ("text/x-yaml", Negotiated::Yaml),
        ("*/*", Negotiated::Json),
        ("application/*", Negotiated::Json),
        ("text/*", Negotiated::Yaml),
    ];
    TYPES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(media))
        .map(|(_, negotiated)| *negotiated)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn json_sorted_compact() {
        assert_eq!(
            text(to_json(&obj(
                json!({"supu": "tupu", "a": [1, {"z": null, "b": true}], "n": 1.5})
            ))),
            r#"{"a":[1,{"b":true,"z":null}],"n":1.5,"supu":"tupu"}"#
        );
        assert_eq!(text(to_json(&Map::new())), "{}");
    }

    #[test]
    fn json_escapes_like_go() {
        let data = obj(json!({"h<t>ml": "<a href=\"x?a=1&b=2\">\u{2028}\u{2029}\n\t\u{1}é€</a>"}));
        assert_eq!(
            text(to_json(&data)),
            "{\"h\\u003ct\\u003eml\":\"\\u003ca href=\\\"x?a=1\\u0026b=2\\\"\\u003e\\u2028\\u2029\\n\\t\\u0001é€\\u003c/a\\u003e\"}"
        );
        // Still the same JSON.
        let back: Value = serde_json::from_slice(&to_json(&data)).unwrap();
        assert_eq!(back, Value::Object(data));
    }

    #[test]
    fn json_collection_and_string_renders() {
        assert_eq!(
            text(to_json_collection(&obj(json!({"collection": [1, "a"]})))),
            r#"[1,"a"]"#
        );
        assert_eq!(text(to_json_collection(&obj(json!({"other": 1})))), "[]");
        assert_eq!(
            text(to_string_content(&obj(
                json!({"content": "Hello, \"/path\""})
            ))),
            "Hello, \"/path\""
        );
        assert_eq!(text(to_string_content(&obj(json!({"content": 1})))), "");
        assert_eq!(text(to_string_content(&Map::new())), "");
    }

    #[test]
    fn negotiation() {
        use Negotiated::*;
        let cases: &[(Option<&str>, Negotiated)] = &[
            (None, Json),
            (Some(""), Json),
            (Some("application/json"), Json),
            (Some("application/json; charset=utf-8"), Json),
            (Some("application/xml"), Xml),
            (Some("text/xml"), Xml),
            (Some("TEXT/XML"), Xml),
            (Some("text/plain"), Yaml),
            (Some("application/yaml"), Yaml),
            (Some("application/x-yaml"), Yaml),
            (Some("text/yaml"), Yaml),
            (Some("*/*"), Json),
            (Some("text/*"), Yaml),
            (Some("application/*"), Json),
            (Some("image/png"), Json),
            (Some("image/png, text/xml"), Xml),
            (
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                Xml,
            ),
            (Some("application/json;q=0.5, application/xml"), Xml),
            (Some("application/xml;q=0, application/json;q=0.1"), Json),
            (Some("application/xml;q=0"), Json),
            (Some("text/plain;q=0.9, application/xml;q=0.9"), Yaml),
            (Some("application/xml;q=bogus"), Xml),
            (Some(" , ;q=1, application/x-yaml ; q=0.3"), Yaml),
        ];
        for (accept, expected) in cases {
            assert_eq!(negotiate(*accept), *expected, "{accept:?}");
        }
        assert_eq!(Json.content_type(), "application/json; charset=utf-8");
        assert_eq!(Xml.content_type(), "application/xml");
        assert_eq!(Yaml.content_type(), "application/yaml; charset=utf-8");
    }

    fn user() -> Map<String, Value> {
        crate::decode::decode(
            sluice_config::Encoding::Xml,
            false,
            br#"<user type="admin"><name>Elliot</name><social><facebook>https://facebook.com</facebook><twitter>https://twitter.com</twitter><youtube>https://youtube.com</youtube></social></user>"#,
        )
        .unwrap()
    }

    #[test]
    fn case_38_negotiated_bodies() {
        let data = user();
        assert_eq!(
            text(negotiate(Some("application/json; charset=utf-8")).render(&data)),
            r#"{"user":{"-type":"admin","name":"Elliot","social":{"facebook":"https://facebook.com","twitter":"https://twitter.com","youtube":"https://youtube.com"}}}"#
        );
        assert_eq!(
            text(negotiate(Some("text/plain")).render(&data)),
            "user:\n  -type: admin\n  name: Elliot\n  social:\n    facebook: https://facebook.com\n    twitter: https://twitter.com\n    youtube: https://youtube.com\n"
        );
    }

    #[test]
    fn case_36_xml_in_xml_out() {
        assert_eq!(
            text(negotiate(Some("application/xml")).render(&user())),
            r#"<user type="admin"><name>Elliot</name><social><facebook>https://facebook.com</facebook><twitter>https://twitter.com</twitter><youtube>https://youtube.com</youtube></social></user>"#
        );
    }
}
