//! A backend's header fields handed on as the backend wrote them.

use std::ops::Range;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The hop-by-hop field names (RFC 9110 §7.6.1): they describe one connection, so a gateway
/// drops them both ways, whatever `Connection` says (Go's `httputil.ReverseProxy` list),
/// lower-case.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Where the field name `name`, in any case, is in [`HOP_BY_HOP`]: its length picks the one or
/// two names it is compared with (most names have no hop-by-hop name's length).
pub fn hop_by_hop_index(name: &[u8]) -> Option<usize> {
    let candidates: &[usize] = match name.len() {
        2 => &[3],
        7 => &[4, 6],
        10 => &[0, 1],
        16 => &[2],
        17 => &[5],
        18 => &[7],
        19 => &[8],
        _ => return None,
    };
    candidates
        .iter()
        .copied()
        .find(|&i| name.eq_ignore_ascii_case(HOP_BY_HOP[i].as_bytes()))
}

/// The names a `Connection` value lists beside [`HOP_BY_HOP`] (every token but `keep-alive`,
/// in the list already): their fields are hop-by-hop too.
pub fn connection_listed(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty() && !token.eq_ignore_ascii_case(b"keep-alive"))
}

/// The fields of a backend's answer that a `no-op` endpoint hands on to its client without
/// reading them, kept as spans of the answer's head ([`crate::AnswerHeaders::Forward`]), its
/// hop-by-hop fields left out.
/// Parsing each into a `HeaderMap` (a name, a value and an insert each) and writing it back
/// cost more than the rest of such an answer; these are written back as the bytes they were,
/// a run of lines in one copy.
///
/// Carried in the response's extensions, beside its `HeaderMap`, which holds the fields the
/// gateway reads (the content fields) and those it adds. Whatever reads or changes an answer's
/// headers beyond those puts these into the map first ([`ForwardedFields::into_map`]): a
/// writer that does not know them (hyper) would leave them out.
#[derive(Debug, Clone)]
pub struct ForwardedFields {
    head: Bytes,
    fields: Vec<Field>,
    /// A field is named `Date` (a writer adds one only when none came).
    has_date: bool,
    /// Bit `n` set: a field pushed had a name `n` bytes long (31: longer; a removal leaves the
    /// bit, so it means "maybe"), so most names [`ForwardedFields::remove_named`] is asked for
    /// are known absent without a look at the fields.
    lengths: u32,
}

/// A name's length as a bit of [`ForwardedFields::lengths`].
fn length_bit(len: usize) -> u32 {
    1 << len.min(31)
}

/// One field: offsets into the head.
#[derive(Debug, Clone, Copy)]
struct Field {
    start: u32,
    name_end: u32,
    value_start: u32,
    value_end: u32,
    /// Written as `name: value\r\n`, so the line can be copied as it is.
    canonical: bool,
}

impl Field {
    fn name<'h>(&self, head: &'h [u8]) -> &'h [u8] {
        &head[self.start as usize..self.name_end as usize]
    }

    fn value<'h>(&self, head: &'h [u8]) -> &'h [u8] {
        &head[self.value_start as usize..self.value_end as usize]
    }
}

impl ForwardedFields {
    /// No fields yet, with room for `capacity`.
    pub fn new(capacity: usize) -> Self {
        Self {
            head: Bytes::new(),
            fields: Vec::with_capacity(capacity),
            has_date: false,
            lengths: 0,
        }
    }

    /// Adds the field whose name and value are these ranges of `head`, the bytes that
    /// [`ForwardedFields::with_head`] is then given (the parser pushes while it still borrows
    /// them). The caller has checked them as an HTTP/1 parser does (httparse): the name is a
    /// token, the value holds only the bytes a `HeaderValue` allows. A head over 4 GiB is not
    /// kept whole.
    #[inline]
    pub fn push(&mut self, head: &[u8], name: Range<usize>, value: Range<usize>) {
        let canonical = value.start == name.end + 2
            && head.get(name.end..value.start) == Some(b": ")
            && head.get(value.end..value.end + 2) == Some(b"\r\n");
        debug_assert!(HeaderName::from_bytes(&head[name.clone()]).is_ok());
        debug_assert!(HeaderValue::from_bytes(&head[value.clone()]).is_ok());
        let len = name.len();
        self.lengths |= length_bit(len);
        self.has_date |= len == 4 && head[name.clone()].eq_ignore_ascii_case(b"date");
        let offset = |at: usize| u32::try_from(at).unwrap_or(u32::MAX);
        self.fields.push(Field {
            start: offset(name.start),
            name_end: offset(name.end),
            value_start: offset(value.start),
            value_end: offset(value.end),
            canonical,
        });
    }

    /// The fields, with the head their ranges index. Fields outside it are dropped (a caller's
    /// mistake, which would otherwise panic when they are written).
    pub fn with_head(mut self, head: Bytes) -> Self {
        let len = head.len();
        self.fields.retain(|f| {
            let end = if f.canonical {
                f.value_end as usize + 2
            } else {
                f.value_end as usize
            };
            debug_assert!(end <= len, "a field beyond its head");
            end <= len
        });
        self.head = head;
        self
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Each field's name (as the backend cased it) and value, in the order they came.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields
            .iter()
            .map(|f| (f.name(&self.head), f.value(&self.head)))
    }

    /// Whether a field is named `Date`, in any case.
    pub fn has_date(&self) -> bool {
        self.has_date
    }

    /// Removes the fields named any of `names`, in any case: those `Connection` lists, those
    /// the one who hands the answer on sets itself.
    pub fn remove_named(&mut self, names: &[&[u8]]) {
        if !names
            .iter()
            .any(|n| self.lengths & length_bit(n.len()) != 0)
        {
            return;
        }
        let head = &self.head[..];
        // Told by their lengths first (no slicing).
        let named = |field: &Field| {
            let len = (field.name_end - field.start) as usize;
            names
                .iter()
                .any(|n| n.len() == len && field.name(head).eq_ignore_ascii_case(n))
        };
        if self.fields.iter().any(named) {
            self.fields.retain(|field| !named(field));
            let has_date = self
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case(b"date"));
            self.has_date = has_date;
        }
    }

    /// Writes the fields as HTTP/1.1 header lines: lines the backend wrote as `name: value`
    /// and that follow each other in its head are copied together.
    pub fn write(&self, out: &mut Vec<u8>) {
        let head = &self.head[..];
        let mut run = 0..0;
        for field in &self.fields {
            if field.canonical {
                let line = field.start as usize..field.value_end as usize + 2;
                if run.end == line.start && !run.is_empty() {
                    run.end = line.end;
                } else {
                    out.extend_from_slice(&head[run]);
                    run = line;
                }
                continue;
            }
            out.extend_from_slice(&head[run]);
            run = 0..0;
            out.extend_from_slice(field.name(head));
            out.extend_from_slice(b": ");
            out.extend_from_slice(field.value(head));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(&head[run]);
    }

    /// Appends the fields to `headers`, as the parser would have put them there.
    pub fn append_to(self, headers: &mut HeaderMap) {
        headers.reserve(self.fields.len());
        for field in &self.fields {
            let name = HeaderName::from_bytes(field.name(&self.head));
            let value = self
                .head
                .slice(field.value_start as usize..field.value_end as usize);
            // Checked by the parser when pushed; both stand (the push asserts it in tests).
            if let (Ok(name), Ok(value)) = (name, HeaderValue::from_maybe_shared(value)) {
                headers.append(name, value);
            }
        }
    }

    /// Moves the fields a response carries in `extensions`, if any, into its `headers`: for
    /// whatever reads or changes an answer's headers, or writes it without knowing them.
    pub fn into_map(extensions: &mut http::Extensions, headers: &mut HeaderMap) {
        if let Some(fields) = extensions.remove::<Self>() {
            fields.append_to(headers);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of `head` as httparse reads them, all kept.
    fn parsed(head: &'static [u8]) -> ForwardedFields {
        let mut slots = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut slots);
        assert!(response.parse(head).expect("a valid head").is_complete());
        let base = head.as_ptr() as usize;
        let spans: Vec<_> = response
            .headers
            .iter()
            .map(|h| {
                let name = h.name.as_ptr() as usize - base;
                let value = h.value.as_ptr() as usize - base;
                (name..name + h.name.len(), value..value + h.value.len())
            })
            .collect();
        let mut fields = ForwardedFields::new(spans.len());
        for (name, value) in spans {
            fields.push(head, name, value);
        }
        fields.with_head(Bytes::from_static(head))
    }

    fn written(fields: &ForwardedFields) -> String {
        let mut out = Vec::new();
        fields.write(&mut out);
        String::from_utf8(out).expect("text")
    }

    #[test]
    fn lines_are_written_back_as_they_came_and_others_as_lines() {
        let fields = parsed(
            b"HTTP/1.1 200 OK\r\nServer: x\r\nDate: d\r\nX-Odd:\tv \r\nX-Bare: b\nETag: \"e\"\r\nVary: a\r\n\r\n",
        );
        assert_eq!(
            written(&fields),
            "Server: x\r\nDate: d\r\nX-Odd: v\r\nX-Bare: b\r\nETag: \"e\"\r\nVary: a\r\n"
        );
        assert!(fields.has_date());
    }

    #[test]
    fn dropped_fields_break_the_runs_and_are_left_out() {
        let mut fields = parsed(
            b"HTTP/1.1 200 OK\r\nA: 1\r\nConnection: keep-alive\r\nB: 2\r\nC: 3\r\nKeep-Alive: t\r\n\r\n",
        );
        fields.remove_named(&[b"connection", b"Keep-Alive"]);
        assert_eq!(fields.len(), 3);
        assert_eq!(written(&fields), "A: 1\r\nB: 2\r\nC: 3\r\n");
        fields.remove_named(&[b"a", b"b", b"c"]);
        assert!(fields.is_empty());
        assert_eq!(written(&fields), "");
    }

    #[test]
    fn hop_by_hop_names_in_any_case_and_nothing_else() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name.as_bytes()), Some(i), "{name}");
            let upper = name.to_ascii_uppercase();
            assert_eq!(hop_by_hop_index(upper.as_bytes()), Some(i), "{upper}");
        }
        for other in [
            "",
            "t",
            "tf",
            "trailers",
            "user-agent",
            "content-length",
            "x-connection",
        ] {
            assert_eq!(hop_by_hop_index(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn connection_lists_its_tokens_but_keep_alive() {
        let listed: Vec<_> = connection_listed(b" close,, Keep-Alive ,X-A\t, x-b").collect();
        assert_eq!(listed, [&b"close"[..], b"X-A", b"x-b"]);
        assert_eq!(connection_listed(b"keep-alive").count(), 0);
    }

    #[test]
    fn the_named_fields_are_removed_in_any_case() {
        let mut fields =
            parsed(b"HTTP/1.1 200 OK\r\nX-Sluice: a\r\nX-Kept: 1\r\nx-sluice: b\r\n\r\n");
        assert!(!fields.has_date());
        fields.remove_named(&[b"x-other", b"X-SLUICE"]);
        assert_eq!(written(&fields), "X-Kept: 1\r\n");
        fields.remove_named(&[b"x-sluice"]);
        assert_eq!(fields.len(), 1);
    }

    #[test]
    fn into_the_map_as_the_parser_would_have_put_them() {
        let fields = parsed(b"HTTP/1.1 200 OK\r\nSet-Cookie: a\r\nX-A: 1\r\nset-cookie: b\r\n\r\n");
        let mut extensions = http::Extensions::new();
        extensions.insert(fields);
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        ForwardedFields::into_map(&mut extensions, &mut headers);
        assert!(extensions.get::<ForwardedFields>().is_none());
        let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a", "b"]);
        assert_eq!(headers["x-a"], "1");
        assert_eq!(headers.len(), 4);
        // Nothing to move: nothing changes.
        ForwardedFields::into_map(&mut extensions, &mut headers);
        assert_eq!(headers.len(), 4);
    }
}
