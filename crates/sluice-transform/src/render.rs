//! Rendering response data for the client: JSON (as Go's `json.Marshal` writes it), the `collection`
//! and `content` renders, XML, YAML, and `Accept` negotiation.

mod xml;
mod yaml;

use serde_json::{Map, Value};

pub use xml::to_xml;
pub use yaml::to_yaml;

use crate::decode::{COLLECTION_KEY, CONTENT_KEY};
use crate::swar;

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
    let mut out = Vec::with_capacity(INITIAL_CAPACITY);
    write_object(&mut out, data);
    out
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

fn write_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(INITIAL_CAPACITY);
    write_value(&mut out, value);
    out
}

/// Room for a typical answer (a few hundred bytes) without growing the buffer on the way.
const INITIAL_CAPACITY: usize = 512;

/// Compact JSON written by hand rather than through `serde_json::Serializer` with a formatter:
/// one pass over each string finds both JSON's escapes and Go's HTML-safe ones, where the
/// serializer's pass and a formatter's second pass over every run each cost a call per
/// fragment. The output is the same bytes (a test compares them).
fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // With `arbitrary_precision` a number is the text it was read from (or written as).
        Value::Number(number) => out.extend_from_slice(number.as_str().as_bytes()),
        Value::String(text) => write_str(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(b'{');
    for (i, (key, item)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_value(out, item);
    }
    out.push(b'}');
}

/// Bytes a string cannot carry as they are: `"`, `\`, control characters (JSON), `<`, `>`,
/// `&` (Go's HTML-safe escaping) and 0xE2, the first byte of U+2028 and U+2029 (Go escapes
/// those two line separators too).
static SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'&' as usize] = true;
    table[0xE2] = true;
    table
};

/// [`SPECIAL`] for eight bytes at once. `<` and `>` differ in one bit (0x3C, 0x3E), as do `"`
/// and `&` (0x22, 0x26): each pair is one comparison with that bit ignored.
fn special_marks(word: u64) -> u64 {
    swar::below(word, 0x20)
        | swar::equal_ignoring(word, b'<', 0x02)
        | swar::equal_ignoring(word, b'"', 0x04)
        | swar::equal(word, b'\\')
        | swar::equal(word, 0xE2)
}

/// The index of the first byte from `from` that [`SPECIAL`] marks, or the length.
#[allow(
    unsafe_code,
    reason = "a call of the SSE2 search, which every x86-64 CPU runs"
)]
pub(crate) fn next_special(bytes: &[u8], from: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of the x86-64 baseline: every CPU this code runs on has it.
    let from = match unsafe { special_16(bytes, from) } {
        Ok(at) => return at,
        Err(rest) => rest,
    };
    swar::position_from(bytes, from, special_marks, |b| SPECIAL[usize::from(b)])
}

/// [`SPECIAL`] sixteen bytes at a time with SSE2 (every x86-64 has it): most strings end within
/// the first sixteen bytes, where the word-at-a-time test took ~55 instructions a string. `Ok`:
/// the first marked byte; `Err`: where fewer than sixteen bytes are left, none marked before.
#[cfg(target_arch = "x86_64")]
#[allow(
    unsafe_code,
    reason = "an unaligned 16-byte load of bytes the slice holds"
)]
#[target_feature(enable = "sse2")]
#[inline]
fn special_16(bytes: &[u8], mut from: usize) -> Result<usize, usize> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    #[target_feature(enable = "sse2")]
    fn splat(byte: u8) -> __m128i {
        _mm_set1_epi8(i8::from_ne_bytes([byte]))
    }
    while let Some(chunk) = bytes.get(from..).and_then(<[u8]>::first_chunk::<16>) {
        // SAFETY: `chunk` is sixteen readable bytes, and `_mm_loadu_si128` needs no alignment.
        let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>()) };
        // A byte below 0x20 is one that the unsigned max with 0x1F leaves at 0x1F; `<` and `>`
        // (`"` and `&`) differ in one bit, set in both before one comparison.
        let control = _mm_cmpeq_epi8(_mm_max_epu8(v, splat(0x1F)), splat(0x1F));
        let angle = _mm_cmpeq_epi8(_mm_or_si128(v, splat(0x02)), splat(b'>'));
        let quote = _mm_cmpeq_epi8(_mm_or_si128(v, splat(0x04)), splat(b'&'));
        let backslash = _mm_cmpeq_epi8(v, splat(b'\\'));
        let separator = _mm_cmpeq_epi8(v, splat(0xE2));
        let marks = _mm_or_si128(
            _mm_or_si128(control, angle),
            _mm_or_si128(_mm_or_si128(quote, backslash), separator),
        );
        let mask = _mm_movemask_epi8(marks).cast_unsigned();
        if mask != 0 {
            return Ok(from + mask.trailing_zeros() as usize);
        }
        from += 16;
    }
    Err(from)
}

/// `text` as a JSON string, with Go's escapes (see [`SPECIAL`]).
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    write_escaped(out, text.as_bytes());
}

/// [`write_str`] of UTF-8 held as bytes.
pub(crate) fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = next_special(bytes, 0);
    while i < bytes.len() {
        let (escape, width): (&[u8], usize) = match bytes[i] {
            b'"' => (b"\\\"", 1),
            b'\\' => (b"\\\\", 1),
            b'\n' => (b"\\n", 1),
            b'\r' => (b"\\r", 1),
            b'\t' => (b"\\t", 1),
            0x08 => (b"\\b", 1),
            0x0C => (b"\\f", 1),
            b'<' => (b"\\u003c", 1),
            b'>' => (b"\\u003e", 1),
            b'&' => (b"\\u0026", 1),
            0xE2 => match bytes.get(i + 1..i + 3) {
                Some([0x80, 0xA8]) => (b"\\u2028", 3),
                Some([0x80, 0xA9]) => (b"\\u2029", 3),
                // Any other character starting with 0xE2 (`€`, `…`) is written as it is.
                _ => {
                    i = next_special(bytes, i + 1);
                    continue;
                }
            },
            control => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(control >> 4)]);
                out.push(HEX[usize::from(control & 0xF)]);
                start = i + 1;
                i = next_special(bytes, start);
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + width;
        i = next_special(bytes, start);
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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

    /// What the renders wrote before they wrote JSON by hand: `serde_json`'s serializer with
    /// Go's HTML-safe escaping as a formatter. The hand-written JSON must be the same bytes.
    fn reference_json(value: &Value) -> Vec<u8> {
        use serde::Serialize;
        use std::io;

        struct GoFormatter;
        impl serde_json::ser::Formatter for GoFormatter {
            fn write_string_fragment<W: ?Sized + io::Write>(
                &mut self,
                writer: &mut W,
                fragment: &str,
            ) -> io::Result<()> {
                let fragment = fragment
                    .replace('<', "\\u003c")
                    .replace('>', "\\u003e")
                    .replace('&', "\\u0026")
                    .replace('\u{2028}', "\\u2028")
                    .replace('\u{2029}', "\\u2029");
                writer.write_all(fragment.as_bytes())
            }
        }
        let mut out = Vec::new();
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
        value.serialize(&mut serializer).unwrap();
        out
    }

    #[test]
    fn json_written_by_hand_matches_the_serializer() {
        let mut values = vec![
            json!(null),
            json!([]),
            json!({}),
            json!({"a": [true, false, null, 0, -1.5e300, 12345678901234567890u64, "x"]}),
            json!({"deep": {"er": {"est": [[[{"k": "v"}]]]}}}),
            serde_json::from_str::<Value>(r#"{"n": 1.10, "big": 123456789012345678901234567890}"#)
                .unwrap(),
        ];
        // Every character that is escaped, next to and between others, in keys and values.
        let pieces = [
            "",
            "a",
            "\"",
            "\\",
            "/",
            "\n",
            "\r",
            "\t",
            "\u{8}",
            "\u{c}",
            "\u{0}",
            "\u{1f}",
            "\u{7f}",
            "<",
            ">",
            "&",
            "\u{2028}",
            "\u{2029}",
            "\u{2027}",
            "\u{202a}",
            "€",
            "…",
            "é",
            "😀",
            "\u{e2}",
            "plain",
            "a longer plain run",
        ];
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..2000 {
            let mut text = String::new();
            for _ in 0..(next() % 12) {
                text.push_str(pieces[(next() % pieces.len() as u64) as usize]);
            }
            values.push(json!({ text.clone(): [text] }));
        }
        for value in &values {
            assert_eq!(
                text(to_json_value(value)),
                text(reference_json(value)),
                "{value:?}"
            );
        }
    }

    /// The sixteen- and eight-at-a-time searches find exactly the bytes the table marks, the
    /// first of two, at every offset, from every start before it.
    #[test]
    fn next_special_finds_the_first_marked_byte_of_a_longer_text() {
        for byte in 0..=255u8 {
            for at in 0..40 {
                let mut bytes = vec![b'a'; 41];
                bytes[40] = b'"';
                bytes[at] = byte;
                let expected = if SPECIAL[usize::from(byte)] { at } else { 40 };
                for from in 0..=at {
                    assert_eq!(
                        next_special(&bytes, from),
                        expected,
                        "{byte:#04x} at {at} from {from}"
                    );
                }
            }
        }
    }

    /// The word-at-a-time search finds exactly the bytes the table marks, at every offset.
    #[test]
    fn next_special_agrees_with_the_table() {
        for byte in 0..=255u8 {
            for at in 0..20 {
                let mut bytes = vec![b'a'; 20];
                bytes[at] = byte;
                let expected = if SPECIAL[usize::from(byte)] { at } else { 20 };
                assert_eq!(next_special(&bytes, 0), expected, "{byte:#04x} at {at}");
                assert_eq!(
                    next_special(&bytes, at.min(3)),
                    expected,
                    "{byte:#04x} at {at}"
                );
            }
        }
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
