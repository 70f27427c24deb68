//! Decoding a backend's body into response data (KrakenD's `encoding` of a backend).
//!
//! | encoding   | result |
//! |------------|--------|
//! | `json`     | the object; with `is_collection` the array under `collection` |
//! | `safejson` | an object as is, an array under `collection`, anything else under `content` |
//! | `string`   | the body (UTF-8, invalid sequences replaced) under `content` |
//! | `xml`      | the document as a map (see [`decode`]); with `is_collection` under `collection` |
//! | `rss`      | an RSS or Atom feed as the map KrakenD's krakend-rss builds (see [`decode`]) |
//! | `no-op`    | nothing is decoded: an empty map (the caller keeps the raw body) |

mod json;

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::{Map, Value};
use sluice_config::Encoding;

/// How deep an XML document may nest elements, the same bound `serde_json` puts on JSON.
pub const MAX_XML_DEPTH: usize = 128;

/// Key of an array answered by an `is_collection` backend (and of arrays under `safejson`).
pub const COLLECTION_KEY: &str = "collection";
/// Key of the body under the `string` encoding (and of `safejson` scalars).
pub const CONTENT_KEY: &str = "content";
/// Key of an XML element's text when the element also has attributes or children.
pub const XML_TEXT_KEY: &str = "#text";
/// Prefix of the keys that hold XML attributes.
pub const XML_ATTR_PREFIX: char = '-';

/// Why a backend's body could not be decoded. Becomes a backend error (500 when nothing else answered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body was empty (or only whitespace) where a document was expected.
    #[error("backend answered an empty body where {expected} was expected")]
    Empty {
        /// `JSON` or `XML`.
        expected: &'static str,
    },
    /// The body is not JSON.
    #[error("backend answered invalid JSON at line {line} column {column}: {reason}")]
    InvalidJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser expected.
        reason: String,
    },
    /// `encoding: json` without `is_collection`, and the body is valid JSON but not an object.
    #[error(
        "backend answered a JSON {found} where an object was expected{}",
        if *found == "array" { " (set is_collection: true, or use encoding safejson)" } else { "" }
    )]
    NotAnObject {
        /// The JSON type found: `array`, `string`, `number` or `boolean`.
        found: &'static str,
    },
    /// `encoding: json` with `is_collection`, and the body is valid JSON but not an array.
    #[error(
        "backend answered a JSON {found} where an array was expected (the backend sets is_collection)"
    )]
    NotAnArray {
        /// The JSON type found: `object`, `string`, `number` or `boolean`.
        found: &'static str,
    },
    /// The body is not well-formed XML.
    #[error("backend answered invalid XML at byte {position}: {reason}")]
    InvalidXml {
        /// Byte offset of the error in the body.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// The body is not an RSS or Atom feed the `rss` encoding can read.
    #[error("backend answered an invalid feed: {reason}")]
    InvalidFeed {
        /// What is wrong.
        reason: String,
    },
    /// The XML document has no root element.
    #[error("backend answered XML without a root element")]
    NoXmlRoot,
    /// The XML document nests elements deeper than [`MAX_XML_DEPTH`].
    #[error("backend answered XML nested deeper than {limit} elements")]
    XmlTooDeep {
        /// The limit, [`MAX_XML_DEPTH`].
        limit: usize,
    },
}

/// Decodes a backend's body by its `encoding`; `is_collection` applies to `json` and `xml`.
///
/// JSON is read like Go's `json.Decoder` (what KrakenD uses): the first value counts and anything after
/// it is ignored, and invalid UTF-8 inside strings becomes U+FFFD instead of an error. A JSON `null`
/// decodes to `{}` (or `{"collection": null}` with `is_collection`), as in KrakenD.
///
/// XML becomes a map the way KrakenD's `xml` encoding (mxj) builds it: the root element is the single
/// key; an element with only text becomes that text (trimmed), an empty one `""`; attributes become
/// keys prefixed with `-`; an element's own text, when it also has attributes or children, goes under
/// `#text`; repeated child elements become an array; names lose their namespace prefix. Example:
/// `<user type="admin"><name>Elliot</name></user>` -> `{"user":{"-type":"admin","name":"Elliot"}}`.
/// Whatever follows the root element is ignored.
///
/// A feed (`rss`) becomes the map KrakenD CE's krakend-rss builds from gofeed's universal feed:
/// `title`, `description`, `language`, `copyright`, `published`, `updated`, `type` (`rss` or
/// `atom`), `author`, `categories`, `custom`, `img_url` (when the feed has an image) and `items`,
/// each item shaped as gofeed marshals it (`title`, `link`, `publishedParsed`, `authors`, ...).
/// `is_collection` does not apply to it, as in KrakenD.
pub fn decode(
    encoding: Encoding,
    is_collection: bool,
    body: &[u8],
) -> Result<Map<String, Value>, DecodeError> {
    match encoding {
        Encoding::Json => decode_json(is_collection, body),
        Encoding::SafeJson => decode_safe_json(body),
        Encoding::String => Ok(single(
            CONTENT_KEY,
            Value::String(String::from_utf8_lossy(body).into_owned()),
        )),
        Encoding::Xml => {
            let (root, value) = decode_xml(body)?;
            let document = single(&root, value);
            if is_collection {
                Ok(single(COLLECTION_KEY, Value::Object(document)))
            } else {
                Ok(document)
            }
        }
        Encoding::Rss => crate::feed::decode_feed(body),
        Encoding::NoOp => Ok(Map::new()),
    }
}

/// Like [`decode`], for a body an executor already decoded to a JSON value (a gRPC answer):
/// `json` and `safejson` take it as they would take its text; any other encoding decodes its
/// JSON text.
pub fn decode_value(
    encoding: Encoding,
    is_collection: bool,
    value: Value,
) -> Result<Map<String, Value>, DecodeError> {
    match encoding {
        Encoding::Json => json_value(is_collection, value),
        Encoding::SafeJson => Ok(safe_json_value(value)),
        other => {
            let text = serde_json::to_vec(&value).unwrap_or_default();
            decode(other, is_collection, &text)
        }
    }
}

/// The JSON text that [`decode`] of `body` as `json` (without `is_collection`), then
/// [`crate::render::to_json`], would write, written straight from the body without building
/// values: for a pipeline that changes nothing in the data, the answer's bytes. `None` when the
/// body needs the full decode (not an object at the top, invalid JSON or UTF-8, a key written
/// with an escape, anything the one-pass reader leaves to serde_json): [`decode`] decides it,
/// with its errors.
pub fn json_text(body: &[u8]) -> Option<Vec<u8>> {
    json::canonical(std::str::from_utf8(body).ok()?)
}

/// The data of a [`json_text`] (or [`crate::merge::merge_json_texts`]) text, under `group` if
/// there is one, for a stage that needs it as values.
pub fn json_text_data(group: Option<&str>, text: &[u8]) -> Map<String, Value> {
    // The text is an object this crate wrote: it always reads.
    let data = decode_json(false, text).unwrap_or_default();
    match group {
        Some(group) => single(group, Value::Object(data)),
        None => data,
    }
}

pub(crate) use json::merge_canonical;

fn single(key: &str, value: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    map
}

fn decode_json(is_collection: bool, body: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    json_value(is_collection, parse_json(body)?)
}

fn json_value(is_collection: bool, value: Value) -> Result<Map<String, Value>, DecodeError> {
    match (value, is_collection) {
        (Value::Object(map), false) => Ok(map),
        (Value::Null, false) => Ok(Map::new()),
        (other, false) => Err(DecodeError::NotAnObject {
            found: json_type(&other),
        }),
        (value @ (Value::Array(_) | Value::Null), true) => Ok(single(COLLECTION_KEY, value)),
        (other, true) => Err(DecodeError::NotAnArray {
            found: json_type(&other),
        }),
    }
}

fn decode_safe_json(body: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    Ok(safe_json_value(parse_json(body)?))
}

fn safe_json_value(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        array @ Value::Array(_) => single(COLLECTION_KEY, array),
        scalar => single(CONTENT_KEY, scalar),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses the first JSON value of the body, as Go's `json.Decoder.Decode` does.
fn parse_json(body: &[u8]) -> Result<Value, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty { expected: "JSON" });
    }
    // Go replaces invalid UTF-8 with U+FFFD; serde_json would refuse it. Valid text (nearly
    // every body) takes `from_utf8`'s word-at-a-time check, not the lossy walk.
    let text = match std::str::from_utf8(body) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(body),
    };
    if let Some(value) = json::read(&text) {
        return Ok(value);
    }
    let mut values = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    match values.next() {
        Some(Ok(value)) => Ok(value),
        Some(Err(error)) => Err(json_error(&error)),
        None => Err(DecodeError::Empty { expected: "JSON" }),
    }
}

fn json_error(error: &serde_json::Error) -> DecodeError {
    let (line, column) = (error.line(), error.column());
    let full = error.to_string();
    let suffix = format!(" at line {line} column {column}");
    let reason = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    DecodeError::InvalidJson {
        line,
        column,
        reason,
    }
}

/// An element being read: its attributes and children so far, and its text runs.
#[derive(Debug)]
struct Element {
    name: String,
    fields: Map<String, Value>,
    text: String,
    /// The text run being read (text, references and CDATA between two pieces of markup).
    run: String,
}

impl Element {
    fn new(start: &BytesStart<'_>, reader: &Reader<&[u8]>) -> Result<Self, DecodeError> {
        let mut fields = Map::new();
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|e| xml_error(reader, &e))?;
            let value = attribute
                .decode_and_unescape_value(reader.decoder())
                .map_err(|e| xml_error(reader, &e))?;
            let key = format!(
                "{XML_ATTR_PREFIX}{}",
                String::from_utf8_lossy(attribute.key.local_name().as_ref())
            );
            fields.insert(key, Value::String(value.into_owned()));
        }
        Ok(Self {
            name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
            fields,
            text: String::new(),
            run: String::new(),
        })
    }

    /// Ends the current text run: its trimmed text joins the element's text.
    fn end_run(&mut self) {
        let trimmed = trim_xml_text(&self.run);
        if !trimmed.is_empty() {
            if !self.text.is_empty() {
                self.text.push(' ');
            }
            self.text.push_str(trimmed);
        }
        self.run.clear();
    }

    fn add_child(&mut self, name: String, value: Value) {
        match self.fields.get_mut(&name) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                self.fields.insert(name, value);
            }
        }
    }

    fn finish(mut self) -> (String, Value) {
        self.end_run();
        let value = if self.fields.is_empty() {
            Value::String(self.text)
        } else {
            if !self.text.is_empty() {
                self.fields
                    .insert(XML_TEXT_KEY.to_owned(), Value::String(self.text));
            }
            Value::Object(self.fields)
        };
        (self.name, value)
    }
}

/// The characters mxj trims from text (Go's `"\t\r\b\n "`).
fn trim_xml_text(text: &str) -> &str {
    text.trim_matches(|c| matches!(c, '\t' | '\r' | '\u{8}' | '\n' | ' '))
}

fn xml_error(reader: &Reader<&[u8]>, error: &dyn std::fmt::Display) -> DecodeError {
    DecodeError::InvalidXml {
        position: reader.error_position().max(reader.buffer_position()),
        reason: error.to_string(),
    }
}

/// Reads the root element of an XML document: its local name and its value.
fn decode_xml(body: &[u8]) -> Result<(String, Value), DecodeError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty { expected: "XML" });
    }
    let mut reader = Reader::from_reader(body);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();

    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(error) => {
                return Err(DecodeError::InvalidXml {
                    position: reader.error_position(),
                    reason: error.to_string(),
                });
            }
        };
        match event {
            Event::Start(start) => {
                if stack.len() >= MAX_XML_DEPTH {
                    return Err(DecodeError::XmlTooDeep {
                        limit: MAX_XML_DEPTH,
                    });
                }
                if let Some(parent) = stack.last_mut() {
                    parent.end_run();
                }
                stack.push(Element::new(&start, &reader)?);
            }
            Event::Empty(start) => {
                let element = Element::new(&start, &reader)?;
                let (name, value) = element.finish();
                match stack.last_mut() {
                    Some(parent) => {
                        parent.end_run();
                        parent.add_child(name, value);
                    }
                    None => return Ok((name, value)),
                }
            }
            Event::End(_) => {
                let Some(element) = stack.pop() else {
                    // quick-xml reports unmatched end tags itself; be safe anyway.
                    return Err(DecodeError::InvalidXml {
                        position: reader.buffer_position(),
                        reason: "closing tag without an opening one".to_owned(),
                    });
                };
                let (name, value) = element.finish();
                match stack.last_mut() {
                    Some(parent) => parent.add_child(name, value),
                    None => return Ok((name, value)),
                }
            }
            Event::Text(text) => {
                if let Some(element) = stack.last_mut() {
                    let content = text.xml10_content().map_err(|e| xml_error(&reader, &e))?;
                    element.run.push_str(&content);
                }
            }
            Event::CData(data) => {
                if let Some(element) = stack.last_mut() {
                    let content = data.xml10_content().map_err(|e| xml_error(&reader, &e))?;
                    element.run.push_str(&content);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved =
                    resolve_reference(&reference).map_err(|reason| DecodeError::InvalidXml {
                        position: reader.buffer_position(),
                        reason,
                    })?;
                if let Some(element) = stack.last_mut() {
                    element.run.push_str(&resolved);
                }
            }
            Event::Comment(_) | Event::PI(_) => {
                if let Some(element) = stack.last_mut() {
                    element.end_run();
                }
            }
            Event::Decl(_) | Event::DocType(_) => {}
            Event::Eof => {
                return Err(match stack.last() {
                    Some(open) => DecodeError::InvalidXml {
                        position: reader.buffer_position(),
                        reason: format!("document ends inside <{}>", open.name),
                    },
                    None => DecodeError::NoXmlRoot,
                });
            }
        }
    }
}

/// Resolves `&name;` (the five predefined entities) or `&#N;` / `&#xH;`.
fn resolve_reference(
    reference: &quick_xml::events::BytesRef<'_>,
) -> Result<Cow<'static, str>, String> {
    match reference.resolve_char_ref() {
        Ok(Some(c)) => return Ok(Cow::Owned(c.to_string())),
        Ok(None) => {}
        Err(error) => return Err(error.to_string()),
    }
    let name = reference.decode().map_err(|e| e.to_string())?;
    quick_xml::escape::resolve_predefined_entity(&name)
        .map(Cow::Borrowed)
        .ok_or_else(|| format!("unknown entity &{name};"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn ok(encoding: Encoding, is_collection: bool, body: &str) -> Value {
        Value::Object(decode(encoding, is_collection, body.as_bytes()).unwrap())
    }

    fn err(encoding: Encoding, is_collection: bool, body: &str) -> DecodeError {
        decode(encoding, is_collection, body.as_bytes()).unwrap_err()
    }

    #[test]
    fn json_object() {
        assert_eq!(
            ok(
                Encoding::Json,
                false,
                r#"{"b":1,"a":{"c":[true,null,"x"]}}"#
            ),
            json!({"a":{"c":[true,null,"x"]},"b":1})
        );
    }

    #[test]
    fn json_keeps_numbers() {
        let data = ok(
            Encoding::Json,
            false,
            r#"{"i":42,"n":-7,"f":1.5,"big":18446744073709551615}"#,
        );
        assert_eq!(
            serde_json::to_string(&data).unwrap(),
            r#"{"big":18446744073709551615,"f":1.5,"i":42,"n":-7}"#
        );
    }

    #[test]
    fn json_collection() {
        assert_eq!(
            ok(Encoding::Json, true, r#"[{"a":1},2]"#),
            json!({"collection":[{"a":1},2]})
        );
    }

    #[test]
    fn json_null_is_empty() {
        assert_eq!(ok(Encoding::Json, false, "null"), json!({}));
        assert_eq!(
            ok(Encoding::Json, true, "null"),
            json!({"collection": null})
        );
    }

    #[test]
    fn json_ignores_trailing_data_like_go() {
        assert_eq!(
            ok(Encoding::Json, false, "{\"a\":1}\n{\"b\":2}"),
            json!({"a":1})
        );
        assert_eq!(ok(Encoding::Json, false, "  {\"a\":1}  \n"), json!({"a":1}));
    }

    #[test]
    fn json_invalid_utf8_is_replaced() {
        let data = decode(Encoding::Json, false, b"{\"a\":\"x\xFFy\"}").unwrap();
        assert_eq!(Value::Object(data), json!({"a":"x\u{FFFD}y"}));
    }

    #[test]
    fn json_errors() {
        assert_eq!(
            err(Encoding::Json, false, "Hello, \"/path\"").to_string(),
            "backend answered invalid JSON at line 1 column 1: expected value"
        );
        assert_eq!(
            err(Encoding::Json, false, "").to_string(),
            "backend answered an empty body where JSON was expected"
        );
        assert_eq!(
            err(Encoding::Json, false, " \n ").to_string(),
            "backend answered an empty body where JSON was expected"
        );
        assert_eq!(
            err(Encoding::Json, false, "[1]").to_string(),
            "backend answered a JSON array where an object was expected \
             (set is_collection: true, or use encoding safejson)"
        );
        assert_eq!(
            err(Encoding::Json, false, "\"s\""),
            DecodeError::NotAnObject { found: "string" }
        );
        assert_eq!(
            err(Encoding::Json, true, "{}").to_string(),
            "backend answered a JSON object where an array was expected (the backend sets is_collection)"
        );
        assert!(matches!(
            err(Encoding::Json, false, "{\"a\":"),
            DecodeError::InvalidJson { line: 1, .. }
        ));
        assert!(matches!(
            err(Encoding::Json, false, "{\n\"a\" 1}"),
            DecodeError::InvalidJson {
                line: 2,
                column: 5,
                ..
            }
        ));
    }

    #[test]
    fn json_depth_is_bounded() {
        let deep = "[".repeat(10_000);
        assert!(matches!(
            err(Encoding::SafeJson, false, &deep),
            DecodeError::InvalidJson { .. }
        ));
    }

    #[test]
    fn safejson() {
        assert_eq!(ok(Encoding::SafeJson, false, r#"{"a":1}"#), json!({"a":1}));
        assert_eq!(
            ok(Encoding::SafeJson, false, "[1,2]"),
            json!({"collection":[1,2]})
        );
        assert_eq!(
            ok(Encoding::SafeJson, true, "[1,2]"),
            json!({"collection":[1,2]})
        );
        assert_eq!(
            ok(Encoding::SafeJson, false, "\"hi\""),
            json!({"content":"hi"})
        );
        assert_eq!(ok(Encoding::SafeJson, false, "42"), json!({"content":42}));
        assert_eq!(
            ok(Encoding::SafeJson, false, "true"),
            json!({"content":true})
        );
        assert_eq!(
            ok(Encoding::SafeJson, false, "null"),
            json!({"content":null})
        );
        assert!(matches!(
            err(Encoding::SafeJson, false, "nope"),
            DecodeError::InvalidJson { .. }
        ));
    }

    #[test]
    fn string() {
        // Case 5: a plain-text plugin answer with encoding string.
        assert_eq!(
            ok(Encoding::String, false, "Hello, \"/path\""),
            json!({"content":"Hello, \"/path\""})
        );
        assert_eq!(ok(Encoding::String, true, ""), json!({"content":""}));
        let data = decode(Encoding::String, false, b"a\xFFb").unwrap();
        assert_eq!(Value::Object(data), json!({"content":"a\u{FFFD}b"}));
    }

    #[test]
    fn no_op_decodes_nothing() {
        assert_eq!(ok(Encoding::NoOp, false, "whatever <>"), json!({}));
    }

    const USER_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<user type="admin">
  <name>Elliot</name>
  <social>
    <facebook>https://facebook.com</facebook>
    <twitter>https://twitter.com</twitter>
    <youtube>https://youtube.com</youtube>
  </social>
</user>
"#;

    #[test]
    fn xml_user() {
        // The backend of cases 36 and 38.
        assert_eq!(
            ok(Encoding::Xml, false, USER_XML),
            json!({"user":{"-type":"admin","name":"Elliot","social":{
                "facebook":"https://facebook.com","twitter":"https://twitter.com",
                "youtube":"https://youtube.com"}}})
        );
    }

    #[test]
    fn xml_repeated_elements_become_arrays() {
        let xml = r#"
            <Person id="1">
                <FullName>Alice</FullName>
                <Email where="home"><Addr>gre@example.com</Addr></Email>
                <Company>Acme</Company>
                <Email where='work'><Addr>gre@work.com</Addr></Email>
                <Group><Value>Friends</Value><Value>Squash</Value><Value>Chess</Value></Group>
            </Person>"#;
        assert_eq!(
            ok(Encoding::Xml, false, xml),
            json!({"Person":{
                "-id":"1","FullName":"Alice","Company":"Acme",
                "Email":[{"-where":"home","Addr":"gre@example.com"},{"-where":"work","Addr":"gre@work.com"}],
                "Group":{"Value":["Friends","Squash","Chess"]}}})
        );
    }

    #[test]
    fn xml_collection() {
        assert_eq!(
            ok(Encoding::Xml, true, "<People><P>a</P><P>b</P></People>"),
            json!({"collection":{"People":{"P":["a","b"]}}})
        );
    }

    #[test]
    fn xml_text_attributes_and_empties() {
        assert_eq!(
            ok(
                Encoding::Xml,
                false,
                r#"<a><b x="1">text</b><c/><d></d><e y="2"/><f>  </f></a>"#
            ),
            json!({"a":{"b":{"-x":"1","#text":"text"},"c":"","d":"","e":{"-y":"2"},"f":""}})
        );
        assert_eq!(
            ok(Encoding::Xml, false, "<root>hello</root>"),
            json!({"root":"hello"})
        );
        assert_eq!(ok(Encoding::Xml, false, "<root/>"), json!({"root":""}));
    }

    #[test]
    fn xml_mixed_content_keeps_all_text() {
        assert_eq!(
            ok(Encoding::Xml, false, "<p>Hello <b>big</b> world</p>"),
            json!({"p":{"b":"big","#text":"Hello world"}})
        );
    }

    #[test]
    fn xml_entities_cdata_and_namespaces() {
        let xml = r#"<ns:r xmlns:ns="urn:x" ns:k="a&amp;b"><ns:t>1 &lt; 2 &#x41;&#66;</ns:t><c><![CDATA[<raw>]]></c><!-- note --></ns:r>"#;
        assert_eq!(
            ok(Encoding::Xml, false, xml),
            json!({"r":{"-ns":"urn:x","-k":"a&b","t":"1 < 2 AB","c":"<raw>"}})
        );
    }

    #[test]
    fn xml_ignores_what_follows_the_root() {
        assert_eq!(
            ok(Encoding::Xml, false, "<a>1</a><b>2</b>"),
            json!({"a":"1"})
        );
        assert_eq!(ok(Encoding::Xml, false, "stray<a>1</a>"), json!({"a":"1"}));
    }

    #[test]
    fn xml_errors() {
        assert_eq!(
            err(Encoding::Xml, false, ""),
            DecodeError::Empty { expected: "XML" }
        );
        assert_eq!(err(Encoding::Xml, false, "3"), DecodeError::NoXmlRoot);
        assert_eq!(err(Encoding::Xml, true, "3"), DecodeError::NoXmlRoot);
        assert!(matches!(
            err(Encoding::Xml, false, "<a><b></a>"),
            DecodeError::InvalidXml { .. }
        ));
        assert!(matches!(
            err(Encoding::Xml, false, "<a>"),
            DecodeError::InvalidXml { .. }
        ));
        assert!(matches!(
            err(Encoding::Xml, false, "<a>&nbsp;</a>"),
            DecodeError::InvalidXml { .. }
        ));
        assert!(matches!(
            err(Encoding::Xml, false, r#"<a x="1" x="2"/>"#),
            DecodeError::InvalidXml { .. }
        ));
        let message = err(Encoding::Xml, false, "<a><b></a>").to_string();
        assert!(
            message.starts_with("backend answered invalid XML at byte "),
            "{message}"
        );
    }

    #[test]
    fn xml_depth_is_bounded() {
        let deep = "<a>".repeat(MAX_XML_DEPTH + 1);
        assert_eq!(
            err(Encoding::Xml, false, &deep),
            DecodeError::XmlTooDeep {
                limit: MAX_XML_DEPTH
            }
        );
        let fine = format!(
            "{}{}",
            "<a>".repeat(MAX_XML_DEPTH),
            "</a>".repeat(MAX_XML_DEPTH)
        );
        assert!(decode(Encoding::Xml, false, fine.as_bytes()).is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let samples: [&[u8]; 8] = [
            b"\xFF\xFE<\x00a>",
            b"<<<>>>",
            b"<a b=>",
            b"<?xml?><!DOCTYPE x [<!ENTITY e 'v'>]><a>&e;</a>",
            b"<a>&#0;</a>",
            b"<a>&#xFFFFFFFF;</a>",
            b"{\"a\":1e999}",
            b"\xEF\xBB\xBF<a/>",
        ];
        for body in samples {
            for encoding in [
                Encoding::Json,
                Encoding::SafeJson,
                Encoding::String,
                Encoding::Xml,
                Encoding::Rss,
                Encoding::NoOp,
            ] {
                for collection in [false, true] {
                    let _ = decode(encoding, collection, body);
                }
            }
        }
    }
}
