//! A JSON reader for the common case: a valid document whose top level is an object or an
//! array, read in one pass straight into `serde_json::Value` (numbers keep their text, as
//! `arbitrary_precision` keeps it).
//!
//! `serde_json` builds a `Value` through serde's visitors: each key is checked against its
//! private number token, and each number is scanned, handed over as a one-entry map and parsed
//! again. This reader does neither. It reads only what it is sure of: on anything else (an
//! error of any kind, a scalar at the top, nesting near serde_json's limit, a string
//! serde_json would judge) it answers `None`, and the caller reads the body with serde_json,
//! whose values, errors and edge cases stay the reference. A test compares the two on
//! generated documents.

mod text;

use std::borrow::Cow;
use std::str::FromStr;

use serde_json::{Map, Number, Value};

use crate::swar;

pub(crate) use text::{canonical, merge_canonical};

/// serde_json reads an object whose first key starts so as its private number token, a number:
/// such a document is left to it.
const SERDE_PRIVATE_KEY: &str = "$serde_json::private::";

/// Deeper than this, serde_json decides (it refuses nesting at 128).
const MAX_DEPTH: usize = 100;

/// The value of the first JSON document in `text` when it is an object or an array that this
/// reader reads exactly as serde_json would; what follows it is not looked at (as Go's
/// `json.Decoder.Decode` and serde_json's stream reader leave it).
pub(super) fn read(text: &str) -> Option<Value> {
    let mut reader = Reader::new(text);
    reader.skip_whitespace();
    match reader.peek()? {
        b'{' | b'[' => reader.value(),
        _ => None,
    }
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

/// Past JSON's whitespace from `at` (the reader's, and the text path's in its own loop).
#[inline(always)]
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(at) {
        at += 1;
    }
    at
}

/// Past `word` at `at`, if it is there.
fn literal(bytes: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    let end = at + word.len();
    (bytes.get(at..end)? == word).then_some(end)
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    /// A reader of `text` from `pos`, at nesting depth zero.
    fn at(text: &'a str, pos: usize) -> Self {
        Reader {
            pos,
            ..Reader::new(text)
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        self.pos = skip_whitespace(self.bytes, self.pos);
    }

    /// Consumes `byte` after any whitespace.
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    fn value(&mut self) -> Option<Value> {
        self.skip_whitespace();
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string().map(|text| Value::String(text.into_owned())),
            b't' => self.literal(b"true").map(|()| Value::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Value::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn object(&mut self) -> Option<Value> {
        let mut map = Map::new();
        self.items(b'}', |reader| {
            let key = reader.key()?.into_owned();
            let value = reader.value()?;
            map.insert(key, value);
            Some(())
        })?;
        Some(Value::Object(map))
    }

    /// An object's key (at it, whitespace skipped) and the `:` after it.
    fn key(&mut self) -> Option<Cow<'a, str>> {
        if self.peek()? != b'"' {
            return None;
        }
        let key = self.string()?;
        if key.starts_with(SERDE_PRIVATE_KEY) {
            return None;
        }
        self.eat(b':')?;
        Some(key)
    }

    fn array(&mut self) -> Option<Value> {
        let mut items = Vec::new();
        self.items(b']', |reader| {
            items.push(reader.value()?);
            Some(())
        })?;
        Some(Value::Array(items))
    }

    /// A container at `{` or `[`, one level of nesting deeper, up to its `close`: `item` reads
    /// each of its items (at the item, whitespace skipped), which `,` separates.
    fn items(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.depth += 1;
        self.pos += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.skip_whitespace();
        if self.peek()? == close {
            self.pos += 1;
        } else {
            loop {
                self.skip_whitespace();
                item(self)?;
                self.skip_whitespace();
                let separator = self.peek()?;
                self.pos += 1;
                match separator {
                    b',' => {}
                    byte if byte == close => break,
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.pos = literal(self.bytes, self.pos, word)?;
        Some(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, kept as written.
    fn number(&mut self) -> Option<Value> {
        let start = self.pos;
        let integer = self.skip_number()?;
        // Most numbers are short integers: their value, which `From` writes back as the same
        // text (18 digits cannot overflow; `-0` stays text in serde_json, so it goes below).
        if let Some(integer) = integer
            && self.pos - integer <= 18
        {
            let magnitude = self.bytes[integer..self.pos]
                .iter()
                .fold(0u64, |n, digit| n * 10 + u64::from(digit - b'0'));
            match (integer > start, i64::try_from(magnitude)) {
                (false, _) => return Some(Value::Number(magnitude.into())),
                (true, Ok(magnitude)) if magnitude != 0 => {
                    return Some(Value::Number((-magnitude).into()));
                }
                _ => {}
            }
        }
        // The text is a JSON number, so this cannot fail; `FromStr` keeps it as written.
        Number::from_str(&self.text[start..self.pos])
            .ok()
            .map(Value::Number)
    }

    /// Steps over a number; for an integer (no fraction, no exponent), where its digits start.
    fn skip_number(&mut self) -> Option<Option<usize>> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let integer = self.pos;
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if !matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Some(Some(integer));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.at_least_one_digit()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.at_least_one_digit()?;
        }
        Some(None)
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn at_least_one_digit(&mut self) -> Option<()> {
        let start = self.pos;
        self.digits();
        (self.pos > start).then_some(())
    }

    /// A string at `"`. Escapes other than `\uXXXX` surrogate pairs are read here; a surrogate
    /// alone (which serde_json refuses) ends the fast path.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.pos += 1;
        let start = self.pos;
        // The common case: no escape, the text as it is.
        self.skip_plain();
        match self.peek()? {
            b'"' => {
                let text = &self.text[start..self.pos];
                self.pos += 1;
                return Some(Cow::Borrowed(text));
            }
            b'\\' => {}
            _ => return None,
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            // At `\`: the escape, then the plain run after it.
            self.pos += 1;
            let escaped = self.peek()?;
            self.pos += 1;
            match escaped {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => out.push(self.unicode_escape()?),
                _ => return None,
            }
            let run = self.pos;
            self.skip_plain();
            out.push_str(&self.text[run..self.pos]);
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {}
                _ => return None,
            }
        }
    }

    /// Steps over string bytes that need no attention: up to `"`, `\`, a control character
    /// (which JSON forbids unescaped) or the end.
    fn skip_plain(&mut self) {
        self.pos = swar::position_from(
            self.bytes,
            self.pos,
            |word| swar::below(word, 0x20) | swar::equal(word, b'"') | swar::equal(word, b'\\'),
            |b| b == b'"' || b == b'\\' || b < 0x20,
        );
    }

    /// The character of `\uXXXX` (the `\u` read), with its low surrogate when it is a high one.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2)? != b"\\u" {
                    return None;
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return None;
                }
                char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
            }
            0xDC00..=0xDFFF => None,
            _ => char::from_u32(first),
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.pos..self.pos + 4)?;
        let mut value = 0;
        for &digit in digits {
            value = value * 16 + char::from(digit).to_digit(16)?;
        }
        self.pos += 4;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// What serde_json reads from `text` the way `parse_json` asks it: the first value.
    fn reference(text: &str) -> Option<Value> {
        serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .next()
            .and_then(Result::ok)
    }

    /// The fast reader never disagrees with serde_json: what it reads, serde_json reads the
    /// same; what it leaves, serde_json decides.
    fn agrees(text: &str) -> bool {
        writes_what_decoding_and_rendering_write(text);
        match read(text) {
            Some(value) => {
                assert_eq!(Some(&value), reference(text).as_ref(), "{text:?}");
                true
            }
            None => false,
        }
    }

    /// `canonical` writes what `read` then the JSON render write, and leaves what `read`
    /// leaves (and any top level but an object, and keys with escapes).
    fn writes_what_decoding_and_rendering_write(text: &str) {
        let data = match read(text) {
            Some(Value::Object(map)) => Some(map),
            _ => None,
        };
        if canonical(text).is_none() && data.is_some() {
            assert!(escaped_key(text), "{text:?} left to values");
            return;
        }
        let rendered = data.as_ref().map(crate::render::to_json);
        assert_eq!(
            canonical(text).map(String::from_utf8),
            rendered.map(String::from_utf8),
            "{text:?}"
        );
    }

    /// Whether some object key in `text` (valid JSON) is written with an escape.
    fn escaped_key(text: &str) -> bool {
        fn any(value: &Value) -> bool {
            match value {
                Value::Object(map) => map.iter().any(|(key, value)| {
                    key.chars().any(|c| c.is_control() || c == '"' || c == '\\') || any(value)
                }),
                Value::Array(items) => items.iter().any(any),
                _ => false,
            }
        }
        // Escapes that do not show in the decoded key (`\u0061`) need the text itself.
        text.contains("\\") && (text.contains("\\u") || read(text).is_some_and(|v| any(&v)))
    }

    #[test]
    fn writes_repeated_keys_and_nested_objects_as_a_map_would() {
        for text in [
            r#"{"b":{"y":1,"x":2},"a":[{"k":1,"k":2},{}],"b":{"z":3,"a":[]}}"#,
            r#"{"z":1,"y":2,"x":3,"w":4,"v":5,"u":6,"t":7,"s":8,"r":9,"q":10,"p":11,"o":12}"#,
            r#"{"é":1,"e":2,"€":3,"😀":4,"\u2028":"\u2028<>&"}"#,
            "{}",
            "{\"a\":{}}",
        ] {
            assert!(agrees(text), "fast path not taken for {text:?}");
        }
        // What the top level must be, and keys with escapes: left to values.
        for text in [
            "[1]",
            "null",
            "1",
            "\"s\"",
            r#"{"\u0062":1,"a":2}"#,
            r#"{"a":{"\n":1}}"#,
        ] {
            assert_eq!(canonical(text), None, "{text:?}");
        }
    }

    /// What is already written as the render writes it is copied as one span; anything else
    /// in or around it (a repeated key, whitespace, an escape the render writes otherwise, an
    /// exponent it rewrites) is not.
    #[test]
    fn copies_only_what_is_already_written_as_the_render_writes_it() {
        for text in [
            r#"{"a":{"b":[1,"x",true,null,{"c":-0.5e+3}],"d":{}},"e":[]}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":{"k":1,"k":2},"b":[{"k":1,"k":2}]}"#,
            r#"{"a": 1,"b":2}"#,
            r#"{"a":1 ,"b":2}"#,
            r#"{"a":[1, 2],"b":{ },"c":[ ]}"#,
            r#"{"a":"<b>","b":"\u0041","c":"\/"}"#,
            r#"{"a":[1E5,1e5,1e-5,1.5E+2]}"#,
            r#"{"b":1,"a":{"d":1,"c":2}}"#,
            r#"{"a<":1,"a":{"<":"&"}}"#,
        ] {
            assert!(agrees(text), "fast path not taken for {text:?}");
        }
        // The written text of the first, copied whole.
        let text = r#"{"a":{"b":[1,"x",true,null,{"c":-0.5e+3}],"d":{}},"e":[]}"#;
        assert_eq!(canonical(text).as_deref(), Some(text.as_bytes()));
    }

    #[test]
    fn reads_what_backends_answer() {
        for text in [
            r#"{"id":123456,"name":"Elliot","active":true,"score":98.5,"tags":["a","b"]}"#,
            " \n\t{ \"a\" : [ 1 , -0 , 0.5 , 1E5 , 1e+5 , 2.50e-3 , -12345678901234567890123 ] } ",
            r#"[{"a":null},{"b":false},[],{}]"#,
            r#"{"esc":"\"\\\/\b\f\n\r\t\u00e9\u20ac\ud83d\ude00<&>","":""}"#,
            r#"{"dup":1,"dup":2}"#,
            r#"{"a":1} trailing text"#,
            r#"[1]]"#,
            "[0,-0,7,-7,123456789012345678,-123456789012345678,1234567890123456789,-1234567890123456789]",
            "[18446744073709551615,18446744073709551616,-9223372036854775808,-9223372036854775809]",
            "{\"é€😀\":\"\u{2028}\"}",
        ] {
            assert!(agrees(text), "fast path not taken for {text:?}");
        }
    }

    #[test]
    fn leaves_the_rest_to_serde_json() {
        for text in [
            "",
            "   ",
            "1",
            "\"s\"",
            "true",
            "null",
            "{",
            "[",
            "{\"a\"}",
            "{\"a\":}",
            "{,}",
            "[1,]",
            "{\"a\":1,}",
            "[01]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[-]",
            "[+1]",
            "[1x]",
            "[tru]",
            "[nul]",
            "{\"a\" 1}",
            "{1:2}",
            "[\"\\x\"]",
            "[\"\\u12\"]",
            "[\"\\ud800\"]",
            "[\"\\udc00\"]",
            "[\"\\ud800\\u0041\"]",
            "[\"a\u{1}\"]",
            "[\"unterminated",
            "{\"$serde_json::private::Number\":\"1\"}",
            "[NaN]",
            "[Infinity]",
            "\u{feff}{}",
        ] {
            assert!(!agrees(text), "read {text:?}, which serde_json decides");
        }
        // Nesting: the fast path stops well before serde_json's limit.
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(agrees(&deep));
        let deeper = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(!agrees(&deeper));
    }

    #[test]
    fn generated_documents_agree_with_serde_json() {
        // A fixed pseudo-random walk (xorshift) over pieces of JSON, valid or not, so a
        // failure reproduces.
        let pieces = [
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            " ",
            "\n",
            "\"k\"",
            "\"\"",
            "\"\\u00e9\"",
            "\"\\\"\"",
            "\"\\ud83d\\ude00\"",
            "\"\\ud83d\"",
            "1",
            "-0",
            "0.5",
            "1e3",
            "-2E-2",
            "01",
            "1.",
            "true",
            "false",
            "null",
            "x",
            "\"a\u{1}\"",
            "\"\\n\"",
            "\"é\"",
            // Longer strings, read a word at a time, with an escape or a control character at
            // different offsets.
            "\"a plain string longer than a word\"",
            "\"seven\\\"then more than a word\"",
            "\"sixteen bytes ok\\n\"",
            "\"nine byte\u{1f}s and a control\"",
        ];
        let mut next = crate::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut read_fast = 0;
        for _ in 0..20_000 {
            let mut text = String::from(if next().is_multiple_of(2) { "{" } else { "[" });
            for _ in 0..(next() % 12) {
                text.push_str(pieces[(next() % pieces.len() as u64) as usize]);
            }
            if agrees(&text) {
                read_fast += 1;
            }
        }
        // Some of them are valid, and those the fast path reads.
        assert!(read_fast > 100, "only {read_fast} read");
        // Valid documents built from the same pieces: every one read, every one the same.
        for _ in 0..2_000 {
            let value = generate(&mut next, 0);
            let text = serde_json::to_string(&Value::Array(vec![value.clone()])).unwrap();
            assert!(agrees(&text), "fast path not taken for {text:?}");
            // And at the top of an object, beside itself in an array, for `canonical`.
            let text = format!(
                r#"{{"v": {text}, "k": {}}}"#,
                serde_json::to_string(&value).unwrap()
            );
            assert!(agrees(&text), "fast path not taken for {text:?}");
        }
    }

    fn generate(next: &mut impl FnMut() -> u64, depth: usize) -> Value {
        let numbers = [
            "0",
            "-1",
            "3.25",
            "1e-7",
            "1E7",
            "2.5E-3",
            "-1e+0",
            "12345678901234567890123",
            "-0.0",
            "-0",
            "42",
        ];
        let strings = [
            "", "k", "é", "\"q\"", "\\", "\u{1}", "😀", "</a>", "\u{2028}",
        ];
        match next() % if depth > 4 { 4 } else { 6 } {
            0 => Value::Null,
            1 => Value::Bool(next().is_multiple_of(2)),
            2 => Value::Number(
                Number::from_str(numbers[(next() % numbers.len() as u64) as usize]).unwrap(),
            ),
            3 => Value::String(strings[(next() % 9) as usize].to_owned()),
            4 => Value::Array((0..next() % 4).map(|_| generate(next, depth + 1)).collect()),
            _ => Value::Object(
                (0..next() % 4)
                    .map(|_| {
                        let key = strings[(next() % 9) as usize].to_owned();
                        (key, generate(next, depth + 1))
                    })
                    .collect(),
            ),
        }
    }
}
