//! Response data as the JSON text its render writes, straight from a backend's body: for a
//! pipeline that changes nothing in the data, where building values only to write them again
//! costs a `String` per key and string, a tree node per few keys, and their drop.
//!
//! The body is read with the same [`Reader`] grammar as [`super::read`], into spans of the body
//! (no value is built); each object's members are then sorted by key, as a map keeps them, and
//! written with the render's string escapes. What the span reader does not take (a key with
//! an escape, a top level that is not an object, anything `read` leaves to serde_json) is left
//! to the values path, which decides it.

use std::borrow::Cow;

use super::{Reader, SERDE_PRIVATE_KEY};
use crate::render::{next_special, write_escaped, write_str};
use crate::swar;

/// The JSON text [`crate::render::to_json`] writes for the object [`super::read`] reads from
/// `text`: keys sorted (of a repeated key the last kept, as a map keeps it), strings with Go's
/// escapes, numbers as serde_json keeps them, no whitespace. `None` where `read` would answer `None`, for a top level that is not an
/// object, and for a key written with an escape.
pub(crate) fn canonical(text: &str) -> Option<Vec<u8>> {
    // Spans are kept as `u32` pairs: a member is 20 bytes, moved and sorted as such.
    u32::try_from(text.len()).ok()?;
    let mut reader = Reader::new(text);
    reader.skip_whitespace();
    if reader.peek()? != b'{' {
        return None;
    }
    let mut tree = Tree {
        text: text.as_bytes(),
        open: Vec::with_capacity(16),
        closed: Vec::with_capacity(64),
    };
    let root = tree.node(&mut reader)?;
    let mut out = Vec::with_capacity(text.len());
    tree.write(&mut out, root);
    Some(out)
}

/// Shallow merge of objects in the text [`canonical`] writes, as
/// [`crate::merge::merge_into`] merges maps: every top-level member of each, the later part's
/// where two have the same key, keys sorted. A part with a group is the one member
/// `group: text`; members are copied as they are written.
pub(crate) fn merge_canonical<'a>(
    parts: impl IntoIterator<Item = (Option<&'a str>, &'a [u8])>,
) -> Vec<u8> {
    let mut members: Vec<TopMember<'a>> = Vec::with_capacity(8);
    let mut len = 2;
    for (group, part) in parts {
        len += part.len();
        if let Some(group) = group {
            len += group.len() + 4;
            members.push((Cow::Borrowed(group), None, part));
            continue;
        }
        top_level_members(part, |quoted, value| {
            let key = &quoted[1..quoted.len() - 1];
            // Our own text, so UTF-8; a key written with an escape compares by its text.
            let text = std::str::from_utf8(quoted).unwrap_or_default();
            let compared = if key.contains(&b'\\') {
                Reader::new(text).string().unwrap_or_default()
            } else {
                Cow::Borrowed(&text[1..text.len() - 1])
            };
            members.push((compared, Some(key), value));
        });
    }
    // Stable: of the members with one key, the last part's is the last.
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(len);
    out.push(b'{');
    let mut first = true;
    for (i, (compared, written, value)) in members.iter().enumerate() {
        if members.get(i + 1).is_some_and(|next| next.0 == *compared) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        match written {
            Some(key) => {
                out.push(b'"');
                out.extend_from_slice(key);
                out.push(b'"');
            }
            None => write_str(&mut out, compared),
        }
        out.push(b':');
        out.extend_from_slice(value);
    }
    out.push(b'}');
    out
}

/// A member for [`merge_canonical`]: the key as it compares, the key as written if it was,
/// the value as written.
type TopMember<'a> = (Cow<'a, str>, Option<&'a [u8]>, &'a [u8]);

/// Calls `member` with each top-level member of an object [`canonical`] wrote: its key as
/// written (quotes included) and its value as written.
fn top_level_members<'a>(text: &'a [u8], mut member: impl FnMut(&'a [u8], &'a [u8])) {
    let mut at = 1;
    while text.get(at) == Some(&b'"') {
        let key_end = string_end(text, at);
        let value_start = key_end + 1;
        let value_end = value_end(text, value_start);
        member(&text[at..key_end], &text[value_start..value_end]);
        // At `,` or the object's `}`.
        at = value_end + 1;
    }
}

/// Just past the string whose `"` is at `at`.
fn string_end(text: &[u8], at: usize) -> usize {
    let mut at = at + 1;
    loop {
        at = swar::position_from(
            text,
            at,
            |word| swar::equal(word, b'"') | swar::equal(word, b'\\'),
            |b| b == b'"' || b == b'\\',
        );
        match text.get(at) {
            Some(b'\\') => at += 2,
            Some(_) => return at + 1,
            None => return text.len(),
        }
    }
}

/// The end of the value at `at` (where the `,` or `}` after it is).
fn value_end(text: &[u8], mut at: usize) -> usize {
    let mut depth = 0usize;
    while let Some(&byte) = text.get(at) {
        match byte {
            b'"' => {
                at = string_end(text, at);
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return at,
            b'}' | b']' => depth -= 1,
            b',' if depth == 0 => return at,
            _ => {}
        }
        at += 1;
    }
    text.len()
}

/// A value read by [`Tree::node`]: spans of the text, or of [`Tree::closed`] for containers.
#[derive(Debug, Clone, Copy)]
enum Node {
    /// An integer or a literal, written as it was read.
    Verbatim(u32, u32),
    /// A number with a fraction or an exponent.
    Number(u32, u32),
    /// A string: its text between the quotes, or with its quotes when it has escapes.
    Str(u32, u32, Kind),
    Array(u32, u32),
    Object(u32, u32),
}

/// A member of a container: its key between the quotes (empty for an array's items), and the
/// key's first eight bytes as a number that orders as they do (zeros after a shorter key, which
/// holds no zero byte: a key with an escape is not taken), so most comparisons of a sort are one.
#[derive(Debug, Clone, Copy)]
struct Member {
    prefix: u64,
    key: (u32, u32),
    /// `Plain` or `Special` (a key with an escape is not taken).
    key_kind: Kind,
    node: Node,
}

/// What a string holds, as its render sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Nothing the render escapes: written as read.
    Plain,
    /// No escape, but a character the render escapes.
    Special,
    /// An escape: read again when written.
    Escaped,
}

/// Steps over the string at `"` (the reader's grammar) in one scan for the bytes both the
/// reader and the render look at: where its text is (between the quotes, or from the opening
/// quote to past the closing one when it has escapes) and what it holds.
fn scan_string(reader: &mut Reader<'_>) -> Option<(usize, usize, Kind)> {
    let start = reader.pos + 1;
    let bytes = reader.bytes;
    let mut at = start;
    let mut kind = Kind::Plain;
    loop {
        at = next_special(bytes, at);
        match *bytes.get(at)? {
            b'"' => {
                reader.pos = at + 1;
                return Some((start, at, kind));
            }
            b'\\' => {
                reader.pos = start - 1;
                reader.string()?;
                return Some((start - 1, reader.pos, Kind::Escaped));
            }
            // JSON forbids control characters in a string.
            byte if byte < 0x20 => return None,
            _ => {
                kind = Kind::Special;
                at += 1;
            }
        }
    }
}

fn prefix(key: &[u8]) -> u64 {
    let mut bytes = [0; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

/// The members of the containers read so far: those of open containers on `open` (a nested
/// container's above its parent's, so each container's are contiguous), moved to `closed` in
/// their final order when the container ends.
#[derive(Debug)]
struct Tree<'a> {
    /// The body, valid UTF-8: every span starts and ends at an ASCII byte, so its slices are
    /// too (and are sliced as bytes, without the boundary checks of `str`).
    text: &'a [u8],
    open: Vec<Member>,
    closed: Vec<Member>,
}

/// `a..b` as the `u32` pair the tree keeps (the text's length was checked to fit).
fn span(a: usize, b: usize) -> (u32, u32) {
    (a as u32, b as u32)
}

impl<'a> Tree<'a> {
    fn slice(&self, (a, b): (u32, u32)) -> &'a [u8] {
        &self.text[a as usize..b as usize]
    }

    /// [`Reader::value`]'s grammar, into spans.
    fn node(&mut self, reader: &mut Reader<'a>) -> Option<Node> {
        reader.skip_whitespace();
        let start = reader.pos;
        match reader.peek()? {
            b'{' => {
                let base = self.open.len();
                reader.items(b'}', |reader| {
                    if reader.peek()? != b'"' {
                        return None;
                    }
                    let (key, key_kind) = match scan_string(reader)? {
                        (_, _, Kind::Escaped) => return None,
                        (a, b, kind) => (span(a, b), kind),
                    };
                    if self.slice(key).starts_with(SERDE_PRIVATE_KEY.as_bytes()) {
                        return None;
                    }
                    reader.eat(b':')?;
                    let node = self.node(reader)?;
                    let prefix = prefix(self.slice(key));
                    self.open.push(Member {
                        prefix,
                        key,
                        key_kind,
                        node,
                    });
                    Some(())
                })?;
                let text = self.text;
                let key = |member: &Member| &text[member.key.0 as usize..member.key.1 as usize];
                // Stable, so of a repeated key the last is kept (as a map's `insert` keeps it).
                self.open[base..]
                    .sort_by(|a, b| a.prefix.cmp(&b.prefix).then_with(|| key(a).cmp(key(b))));
                let first = self.closed.len();
                for i in base..self.open.len() {
                    let member = self.open[i];
                    if self
                        .open
                        .get(i + 1)
                        .is_none_or(|next| key(next) != key(&member))
                    {
                        self.closed.push(member);
                    }
                }
                self.open.truncate(base);
                Some(Node::Object(first as u32, self.closed.len() as u32))
            }
            b'[' => {
                let base = self.open.len();
                reader.items(b']', |reader| {
                    let node = self.node(reader)?;
                    self.open.push(Member {
                        prefix: 0,
                        key: (0, 0),
                        key_kind: Kind::Plain,
                        node,
                    });
                    Some(())
                })?;
                let first = self.closed.len();
                self.closed.extend(self.open.drain(base..));
                Some(Node::Array(first as u32, self.closed.len() as u32))
            }
            b'"' => {
                let (a, b, kind) = scan_string(reader)?;
                let (a, b) = span(a, b);
                Some(Node::Str(a, b, kind))
            }
            b't' => reader
                .literal(b"true")
                .map(|()| self.verbatim(start, reader.pos)),
            b'f' => reader
                .literal(b"false")
                .map(|()| self.verbatim(start, reader.pos)),
            b'n' => reader
                .literal(b"null")
                .map(|()| self.verbatim(start, reader.pos)),
            b'-' | b'0'..=b'9' => {
                let integer = reader.skip_number()?;
                let (a, b) = span(start, reader.pos);
                Some(match integer {
                    Some(_) => Node::Verbatim(a, b),
                    None => Node::Number(a, b),
                })
            }
            _ => None,
        }
    }

    fn verbatim(&self, a: usize, b: usize) -> Node {
        let (a, b) = span(a, b);
        Node::Verbatim(a, b)
    }

    fn write(&self, out: &mut Vec<u8>, node: Node) {
        match node {
            Node::Verbatim(a, b) => out.extend_from_slice(self.slice((a, b))),
            Node::Number(a, b) => write_number(out, self.slice((a, b))),
            Node::Str(a, b, kind) => write_string(out, self.slice((a, b)), kind),
            Node::Array(a, b) => {
                out.push(b'[');
                for (i, member) in self.closed[a as usize..b as usize].iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write(out, member.node);
                }
                out.push(b']');
            }
            Node::Object(a, b) => {
                out.push(b'{');
                for (i, member) in self.closed[a as usize..b as usize].iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_string(out, self.slice(member.key), member.key_kind);
                    out.push(b':');
                    self.write(out, member.node);
                }
                out.push(b'}');
            }
        }
    }
}

/// A string [`scan_string`] read, as the render writes it.
fn write_string(out: &mut Vec<u8>, text: &[u8], kind: Kind) {
    match kind {
        Kind::Plain => {
            out.push(b'"');
            out.extend_from_slice(text);
            out.push(b'"');
        }
        Kind::Special => write_escaped(out, text),
        // Read before, so it reads again (and a slice of UTF-8 at ASCII bytes is UTF-8).
        Kind::Escaped => {
            if let Some(text) = std::str::from_utf8(text)
                .ok()
                .and_then(|text| Reader::new(text).string())
            {
                write_str(out, &text);
            }
        }
    }
}

/// A number with a fraction or an exponent as serde_json keeps it: as written, but for the
/// exponent, which it writes as `e` and a sign (`1E5` becomes `1e+5`).
fn write_number(out: &mut Vec<u8>, number: &[u8]) {
    let Some(at) = number.iter().position(|&b| b == b'e' || b == b'E') else {
        out.extend_from_slice(number);
        return;
    };
    out.extend_from_slice(&number[..at]);
    out.push(b'e');
    let exponent = &number[at + 1..];
    if !matches!(exponent.first(), Some(b'+' | b'-')) {
        out.push(b'+');
    }
    out.extend_from_slice(exponent);
}
