//! Response data as the JSON text its render writes, straight from a backend's body: for a
//! pipeline that changes nothing in the data, where building values only to write them again
//! costs a `String` per key and string, a tree node per few keys, and their drop.
//!
//! The body is read in one loop over its bytes with the grammar of [`Reader`] (as
//! [`super::read`] reads it), into spans of the body (no value is built). A value or container
//! whose text is already what the render writes (a plain string, an integer, an object with
//! its keys in order and no whitespace) stays one span, copied as it is; the other objects'
//! members are sorted by key, as a map keeps them, and written with the render's string
//! escapes. What the span reader does not take (a key with an escape, a top level that is not
//! an object, anything `read` leaves to serde_json) is left to the values path, which decides
//! it.

use std::borrow::Cow;
use std::cell::RefCell;

use super::{MAX_DEPTH, Reader, SERDE_PRIVATE_KEY, literal, skip_whitespace};
use crate::render::{next_special, write_escaped, write_str};
use crate::swar;

/// The JSON text [`crate::render::to_json`] writes for the object [`super::read`] reads from
/// `text`: keys sorted (of a repeated key the last kept, as a map keeps it), strings with Go's
/// escapes, numbers as serde_json keeps them, no whitespace. `None` where `read` would answer `None`, for a top level that is not an
/// object, and for a key written with an escape.
pub(crate) fn canonical(text: &str) -> Option<Vec<u8>> {
    // Spans are kept as `u32` pairs: a member is 40 bytes, moved and sorted as such.
    u32::try_from(text.len()).ok()?;
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            let out = canonical_in(&mut scratch, text);
            scratch.clear();
            out
        }
        Err(_) => canonical_in(&mut Scratch::default(), text),
    })
}

/// The vectors a text is read with, kept from one answer to the next on each thread (three
/// allocations and frees an answer fewer), up to a bound.
#[derive(Default)]
struct Scratch {
    open: Vec<Member>,
    closed: Vec<Member>,
    stack: Vec<Frame>,
}

/// The members each of a thread's [`Scratch`] vectors keeps room for (40 KiB); a larger
/// document's room is freed.
const SCRATCH_MEMBERS: usize = 1024;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

impl Scratch {
    fn clear(&mut self) {
        for members in [&mut self.open, &mut self.closed] {
            members.clear();
            members.shrink_to(SCRATCH_MEMBERS);
        }
        self.stack.clear();
    }
}

fn canonical_in(scratch: &mut Scratch, text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut tree = Tree {
        text: bytes,
        open: &mut scratch.open,
        closed: &mut scratch.closed,
    };
    // The containers being read, innermost last: one loop over the text, no call per value.
    let stack = &mut scratch.stack;
    let mut pos = skip_whitespace(bytes, 0);
    if bytes.get(pos) != Some(&b'{') {
        return None;
    }
    let root = 'value: loop {
        // At a value, whitespace skipped.
        let start = pos;
        let mut node = match *bytes.get(pos)? {
            opening @ (b'{' | b'[') => {
                // The reader's limit: the containers open, this one included.
                if stack.len() >= MAX_DEPTH {
                    return None;
                }
                let mut frame = Frame {
                    start: start as u32,
                    base: tree.open.len() as u32,
                    object: opening == b'{',
                    key: Key::NONE,
                };
                pos = skip_whitespace(bytes, pos + 1);
                let closing = if frame.object { b'}' } else { b']' };
                if *bytes.get(pos)? == closing {
                    pos += 1;
                    tree.close(&frame, pos)
                } else {
                    if frame.object {
                        (frame.key, pos) = read_key(text, pos)?;
                    }
                    stack.push(frame);
                    continue 'value;
                }
            }
            b'"' => {
                let (a, b, kind, next) = scan_string(text, pos)?;
                pos = next;
                match kind {
                    // With its quotes, as it is written.
                    Kind::Plain => verbatim(a - 1, b + 1),
                    kind => {
                        let (a, b) = span(a, b);
                        Node::Str(a, b, kind)
                    }
                }
            }
            b't' => {
                pos = literal(bytes, pos, b"true")?;
                verbatim(start, pos)
            }
            b'f' => {
                pos = literal(bytes, pos, b"false")?;
                verbatim(start, pos)
            }
            b'n' => {
                pos = literal(bytes, pos, b"null")?;
                verbatim(start, pos)
            }
            b'-' | b'0'..=b'9' => {
                let mut reader = Reader::at(text, pos);
                let integer = reader.skip_number()?;
                pos = reader.pos;
                if integer.is_some() || number_as_written(&bytes[start..pos]) {
                    verbatim(start, pos)
                } else {
                    let (a, b) = span(start, pos);
                    Node::Number(a, b)
                }
            }
            _ => return None,
        };
        // A value read: a member of the innermost container, which may end with it (and its
        // parent with that, and so on).
        loop {
            let Some(frame) = stack.last_mut() else {
                break 'value node;
            };
            tree.open.push(Member {
                key: frame.key,
                node,
            });
            pos = skip_whitespace(bytes, pos);
            let separator = *bytes.get(pos)?;
            pos += 1;
            match (separator, frame.object) {
                (b',', object) => {
                    pos = skip_whitespace(bytes, pos);
                    if object {
                        (frame.key, pos) = read_key(text, pos)?;
                    }
                    continue 'value;
                }
                (b'}', true) | (b']', false) => {
                    let frame = stack.pop()?;
                    node = tree.close(&frame, pos);
                }
                _ => return None,
            }
        }
    };
    let mut out = Vec::with_capacity(text.len());
    tree.write(&mut out, root);
    Some(out)
}

/// A container being read: where it starts, where its members start on [`Tree::open`], and
/// for an object the key of the member being read.
struct Frame {
    start: u32,
    base: u32,
    object: bool,
    key: Key,
}

/// An object's key at `"` (whitespace skipped), and the `:` after it: the key, and where its
/// value is (whitespace skipped). A key with an escape is not taken, nor serde_json's private
/// one.
#[inline(always)]
fn read_key(text: &str, pos: usize) -> Option<(Key, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(pos) != Some(&b'"') {
        return None;
    }
    let (a, b, kind, pos) = match scan_string(text, pos)? {
        (_, _, Kind::Escaped, _) => return None,
        found => found,
    };
    if bytes[a..b].starts_with(SERDE_PRIVATE_KEY.as_bytes()) {
        return None;
    }
    let pos = skip_whitespace(bytes, pos);
    if bytes.get(pos) != Some(&b':') {
        return None;
    }
    let key = Key {
        prefix: prefix(bytes, a, b),
        span: span(a, b),
        kind,
    };
    Some((key, skip_whitespace(bytes, pos + 1)))
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
    /// Written as it was read: an integer, a literal, a number or string that needs no
    /// change (a string with its quotes), a container whose text is already what is written.
    Verbatim(u32, u32),
    /// A number with a fraction or an exponent.
    Number(u32, u32),
    /// A string the render changes: its text between the quotes when the render only escapes
    /// some of its characters, with its quotes when it has escapes (read again).
    Str(u32, u32, Kind),
    Array(u32, u32),
    Object(u32, u32),
}

/// A member of a container: its key (none for an array's items) and its value.
#[derive(Debug, Clone, Copy)]
struct Member {
    key: Key,
    node: Node,
}

/// An object's key: its text between the quotes, and its first eight bytes as a number that
/// orders as they do (zeros after a shorter key, which holds no zero byte: a key with an escape
/// is not taken), so most comparisons of a sort are one.
#[derive(Debug, Clone, Copy)]
struct Key {
    prefix: u64,
    span: (u32, u32),
    /// `Plain` or `Special` (a key with an escape is not taken).
    kind: Kind,
}

impl Key {
    /// An array item's.
    const NONE: Key = Key {
        prefix: 0,
        span: (0, 0),
        kind: Kind::Plain,
    };
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

/// Steps over the string at `"` at `pos` (the reader's grammar) in one scan for the bytes
/// both the reader and the render look at: where its text is (between the quotes, or from the
/// opening quote to past the closing one when it has escapes), what it holds, and where it
/// ends.
#[inline(always)]
fn scan_string(text: &str, pos: usize) -> Option<(usize, usize, Kind, usize)> {
    let bytes = text.as_bytes();
    let start = pos + 1;
    let mut at = start;
    let mut kind = Kind::Plain;
    loop {
        at = next_special(bytes, at);
        match *bytes.get(at)? {
            b'"' => return Some((start, at, kind, at + 1)),
            b'\\' => {
                let mut reader = Reader::at(text, pos);
                reader.string()?;
                return Some((pos, reader.pos, Kind::Escaped, reader.pos));
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

/// The first eight bytes of the key `bytes[a..b]` as a big-endian number, zeros after its end.
fn prefix(bytes: &[u8], a: usize, b: usize) -> u64 {
    let len = b - a;
    // A key is followed by at least `":` and a value, so its first eight bytes are most often
    // one load; what is past the key is masked off.
    if let Some(word) = swar::word_at(bytes, a) {
        let word = if len < 8 {
            word & ((1 << (8 * len)) - 1)
        } else {
            word
        };
        return word.swap_bytes();
    }
    let mut first = [0; 8];
    let n = len.min(8);
    first[..n].copy_from_slice(&bytes[a..a + n]);
    u64::from_be_bytes(first)
}

/// `a..b` as the node written as it was read.
fn verbatim(a: usize, b: usize) -> Node {
    let (a, b) = span(a, b);
    Node::Verbatim(a, b)
}

/// The members of the containers read so far: those of open containers on `open` (a nested
/// container's above its parent's, so each container's are contiguous), moved to `closed` in
/// their final order when the container ends.
#[derive(Debug)]
struct Tree<'a> {
    /// The body, valid UTF-8: every span starts and ends at an ASCII byte, so its slices are
    /// too (and are sliced as bytes, without the boundary checks of `str`).
    text: &'a [u8],
    open: &'a mut Vec<Member>,
    closed: &'a mut Vec<Member>,
}

/// `a..b` as the `u32` pair the tree keeps (the text's length was checked to fit).
fn span(a: usize, b: usize) -> (u32, u32) {
    (a as u32, b as u32)
}

impl<'a> Tree<'a> {
    fn slice(&self, (a, b): (u32, u32)) -> &'a [u8] {
        &self.text[a as usize..b as usize]
    }

    /// The node of the container `frame` that ends before `end`, its members (on `open`)
    /// taken off: one [`Node::Verbatim`] when it is written as read, else an object's members
    /// sorted by key (of a repeated key the last kept, as a map keeps it) or an array's items,
    /// moved to `closed`.
    fn close(&mut self, frame: &Frame, end: usize) -> Node {
        let (start, base) = (frame.start as usize, frame.base as usize);
        if self.written_as_read(start, end, base, frame.object) {
            self.open.truncate(base);
            return verbatim(start, end);
        }
        let first = self.closed.len();
        if frame.object {
            let text = self.text;
            let key =
                |member: &Member| &text[member.key.span.0 as usize..member.key.span.1 as usize];
            // Stable, so of a repeated key the last is the last.
            self.open[base..].sort_by(|a, b| {
                a.key
                    .prefix
                    .cmp(&b.key.prefix)
                    .then_with(|| key(a).cmp(key(b)))
            });
            for i in base..self.open.len() {
                let member = self.open[i];
                // Sorted, so a repeated key is next to its twin: most neighbours differ in
                // their first eight bytes already, and their texts are not compared.
                if self.open.get(i + 1).is_none_or(|next| {
                    next.key.prefix != member.key.prefix || key(next) != key(&member)
                }) {
                    self.closed.push(member);
                }
            }
            self.open.truncate(base);
            Node::Object(first as u32, self.closed.len() as u32)
        } else {
            self.closed.extend(self.open.drain(base..));
            Node::Array(first as u32, self.closed.len() as u32)
        }
    }

    /// Whether the container `text[start..end]`, whose members are `open[base..]` in the
    /// order read, is written as it was read: every member written as read, nothing between
    /// them but their separators, and an object's keys in order, each once. Then it is one
    /// [`Node::Verbatim`], and its members are not kept: most of a backend's nested objects
    /// and arrays of scalars are written by a single copy.
    fn written_as_read(&self, start: usize, end: usize, base: usize, object: bool) -> bool {
        let members = &self.open[base..];
        if members.is_empty() {
            return end == start + 2;
        }
        // Where the next member must start: just past the opening bracket or a separator.
        let mut at = start + 1;
        let mut previous: Option<&Member> = None;
        for member in members {
            let Node::Verbatim(a, b) = member.node else {
                return false;
            };
            if object {
                // `"key":value`, with the key's text between the quotes.
                let key = member.key;
                if key.kind != Kind::Plain || key.span.0 as usize != at + 1 || a != key.span.1 + 2 {
                    return false;
                }
                if let Some(previous) = previous
                    && (previous.key.prefix, self.slice(previous.key.span))
                        >= (key.prefix, self.slice(key.span))
                {
                    return false;
                }
                previous = Some(member);
            } else if a as usize != at {
                return false;
            }
            at = b as usize + 1;
        }
        // The last member's separator is the closing bracket.
        at == end
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
                    match member.node {
                        // `"key":value` as read, in one copy.
                        Node::Verbatim(a, b)
                            if member.key.kind == Kind::Plain && a == member.key.span.1 + 2 =>
                        {
                            out.extend_from_slice(self.slice((member.key.span.0 - 1, b)));
                        }
                        node => {
                            write_string(out, self.slice(member.key.span), member.key.kind);
                            out.push(b':');
                            self.write(out, node);
                        }
                    }
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

/// Whether [`write_number`] writes `number` as it is: no exponent, or one written `e` and a
/// sign.
fn number_as_written(number: &[u8]) -> bool {
    match number.iter().position(|&b| b == b'e' || b == b'E') {
        None => true,
        Some(at) => number[at] == b'e' && matches!(number.get(at + 1), Some(b'+' | b'-')),
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
