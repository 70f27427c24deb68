//! A pull reader over quick-xml that reads XML the way gofeed's parser (goxpp over Go's
//! `encoding/xml` in non-strict mode) sees it: end tags that close the wrong element close the
//! open ones up to it, unknown entities stay as written, attributes may lack quotes, and each
//! element carries Go's `Name.Space` and the namespace prefixes declared so far.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::text::unescape_xml;
use crate::decode::{DecodeError, MAX_XML_DEPTH};

/// The namespace the `xml:` prefix is bound to.
const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// A start tag.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tag {
    /// The local name as written.
    pub(crate) name: String,
    /// The local name in lower case (what gofeed compares).
    pub(crate) lname: String,
    /// Go's `Name.Space`: the namespace the prefix is bound to, the prefix itself when it is not
    /// declared, or empty.
    pub(crate) space: String,
    /// Attributes: local name and unescaped value, in document order.
    pub(crate) attrs: Vec<(String, String)>,
}

impl Tag {
    /// goxpp's `Attribute`: the first attribute of that local name, or empty.
    pub(crate) fn attr(&self, name: &str) -> String {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// What the reader found.
#[derive(Debug)]
pub(crate) enum Ev {
    Start(Tag),
    End,
    Text(String),
    Eof,
}

/// An open element: its qualified name and the namespaces in scope inside it.
#[derive(Debug)]
struct Open {
    qname: Vec<u8>,
    /// Prefix -> namespace bindings declared on this element.
    bindings: Vec<(String, String)>,
    /// goxpp's `Spaces` inside this element: namespace -> lower-case prefix.
    spaces: HashMap<String, String>,
}

/// The pull reader.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    reader: Reader<&'a [u8]>,
    open: Vec<Open>,
    /// An end tag that closed a mismatched element and must close the next one too.
    pending_end: Option<Vec<u8>>,
    root_spaces: HashMap<String, String>,
}

impl std::fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("depth", &self.open.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        config.expand_empty_elements = true;
        config.allow_dangling_amp = true;
        config.check_comments = false;
        Self {
            text,
            reader,
            open: Vec::new(),
            pending_end: None,
            root_spaces: HashMap::new(),
        }
    }

    /// goxpp's `Spaces`: namespace -> prefix, as declared in the open elements.
    pub(crate) fn spaces(&self) -> &HashMap<String, String> {
        self.open.last().map_or(&self.root_spaces, |o| &o.spaces)
    }

    fn error(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::InvalidFeed {
            reason: format!(
                "{} (at byte {})",
                reason.into(),
                self.reader.buffer_position()
            ),
        }
    }

    /// The next start tag, end tag, text or the end of the document (comments, processing
    /// instructions and declarations are skipped).
    pub(crate) fn next(&mut self) -> Result<Ev, DecodeError> {
        if let Some(end) = self.pending_end.take() {
            return self.close(end);
        }
        loop {
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(e) => return Err(self.error(e.to_string())),
            };
            match event {
                Event::Start(start) => return self.open(&start).map(Ev::Start),
                Event::End(end) => return self.close(end.name().as_ref().to_vec()),
                Event::Empty(_) => {
                    // `expand_empty_elements` turns these into Start + End.
                    return Err(self.error("unexpected empty element"));
                }
                Event::Text(text) => {
                    let raw = String::from_utf8_lossy(text.as_ref());
                    return Ok(Ev::Text(unescape_xml(&raw)));
                }
                Event::CData(data) => {
                    return Ok(Ev::Text(
                        String::from_utf8_lossy(data.as_ref()).into_owned(),
                    ));
                }
                Event::GeneralRef(reference) => {
                    let raw = format!("&{};", String::from_utf8_lossy(reference.as_ref()));
                    return Ok(Ev::Text(unescape_xml(&raw)));
                }
                Event::Eof => {
                    return match self.open.last() {
                        Some(open) => Err(self.error(format!(
                            "the document ends inside <{}>",
                            String::from_utf8_lossy(&open.qname)
                        ))),
                        None => Ok(Ev::Eof),
                    };
                }
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) | Event::DocType(_) => {}
            }
        }
    }

    fn open(&mut self, start: &BytesStart<'_>) -> Result<Tag, DecodeError> {
        if self.open.len() >= MAX_XML_DEPTH {
            return Err(DecodeError::XmlTooDeep {
                limit: MAX_XML_DEPTH,
            });
        }
        let mut attrs = Vec::new();
        let mut bindings = Vec::new();
        let mut spaces = self.spaces().clone();
        for attribute in start.html_attributes().with_checks(false) {
            let attribute = attribute.map_err(|e| self.error(e.to_string()))?;
            let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
            let raw = String::from_utf8_lossy(&attribute.value);
            let value = unescape_xml(&raw);
            let local = match key.split_once(':') {
                Some(("xmlns", prefix)) => {
                    bindings.push((prefix.to_owned(), value.clone()));
                    spaces.insert(value.trim().to_owned(), prefix.trim().to_lowercase());
                    prefix.to_owned()
                }
                Some((_, local)) => local.to_owned(),
                None => {
                    if key == "xmlns" {
                        bindings.push((String::new(), value.clone()));
                        spaces.insert(value.trim().to_owned(), String::new());
                    }
                    key
                }
            };
            attrs.push((local, value));
        }
        let qname = start.name().as_ref().to_vec();
        let qname_text = String::from_utf8_lossy(&qname).into_owned();
        let (prefix, name) = match qname_text.split_once(':') {
            Some((prefix, local)) => (prefix.to_owned(), local.to_owned()),
            None => (String::new(), qname_text),
        };
        self.open.push(Open {
            qname,
            bindings,
            spaces,
        });
        let space = self.resolve(&prefix);
        Ok(Tag {
            lname: name.to_lowercase(),
            name,
            space,
            attrs,
        })
    }

    /// Go's `translate`: the namespace of a prefix, the prefix itself when undeclared.
    fn resolve(&self, prefix: &str) -> String {
        if prefix == "xml" {
            return XML_NAMESPACE.to_owned();
        }
        if prefix == "xmlns" {
            return prefix.to_owned();
        }
        self.open
            .iter()
            .rev()
            .flat_map(|o| o.bindings.iter().rev())
            .find(|(p, _)| p == prefix)
            .map_or_else(|| prefix.to_owned(), |(_, ns)| ns.clone())
    }

    /// An end tag: it closes the innermost element; when that element has another local name,
    /// the same end tag goes on to close the next one (Go's non-strict decoder).
    fn close(&mut self, qname: Vec<u8>) -> Result<Ev, DecodeError> {
        let Some(top) = self.open.pop() else {
            return Err(self.error(format!(
                "unexpected end tag </{}>",
                String::from_utf8_lossy(&qname)
            )));
        };
        let local = |q: &[u8]| q.rsplit(|&c| c == b':').next().map(<[u8]>::to_vec);
        if local(&top.qname) != local(&qname) {
            self.pending_end = Some(qname);
        } else if top.qname != qname {
            return Err(self.error(format!(
                "<{}> closed by </{}>",
                String::from_utf8_lossy(&top.qname),
                String::from_utf8_lossy(&qname)
            )));
        }
        Ok(Ev::End)
    }

    /// The byte offset reached (for raw inner XML).
    fn position(&self) -> usize {
        usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX)
    }

    /// Reads the current element to its end and returns its raw inner XML, as Go's `,innerxml`
    /// (called just after its start tag).
    pub(crate) fn inner_xml(&mut self) -> Result<&'a str, DecodeError> {
        let start = self.position();
        let mut depth = 0usize;
        loop {
            let before = self.position();
            match self.next()? {
                Ev::Start(_) => depth += 1,
                Ev::End if depth == 0 => {
                    let end = before.max(start).min(self.text.len());
                    return Ok(self.text.get(start..end).unwrap_or(""));
                }
                Ev::End => depth -= 1,
                Ev::Text(_) => {}
                Ev::Eof => return Err(self.error("the document ends inside an element")),
            }
        }
    }

    /// Skips the rest of the current element (goxpp's `Skip`).
    pub(crate) fn skip(&mut self) -> Result<(), DecodeError> {
        self.inner_xml().map(|_| ())
    }

    /// gofeed's `NextTag`: the next start or end tag, text skipped; the end of the document is an
    /// error.
    pub(crate) fn next_tag(&mut self) -> Result<Option<Tag>, DecodeError> {
        loop {
            match self.next()? {
                Ev::Start(tag) => return Ok(Some(tag)),
                Ev::End => return Ok(None),
                Ev::Text(_) => {}
                Ev::Eof => return Err(self.error("the document ends before the feed does")),
            }
        }
    }

    /// The root element (gofeed's `FindRoot`), `None` when the document has none.
    pub(crate) fn root(&mut self) -> Result<Option<Tag>, DecodeError> {
        loop {
            match self.next()? {
                Ev::Start(tag) => return Ok(Some(tag)),
                Ev::Eof => return Ok(None),
                Ev::End | Ev::Text(_) => {}
            }
        }
    }
}
