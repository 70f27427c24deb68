//! Helpers on the request and response records.

use crate::{Request, Response};

/// Header fields as they cross the boundary: one byte list, each field `name:value\n`, in
/// order; names may repeat (`sluice:plugin@0.2` and later). The helpers below read and change
/// it in place, so a plugin that leaves headers alone hands back the very bytes it was given.
pub type Headers = Vec<u8>;

/// The `(name, value)` fields of an encoded list.
pub(crate) fn fields(headers: &[u8]) -> impl Iterator<Item = (&str, &[u8])> {
    headers.split(|&b| b == b'\n').filter_map(|field| {
        let colon = field.iter().position(|&b| b == b':')?;
        let name = std::str::from_utf8(&field[..colon]).ok()?;
        Some((name, &field[colon + 1..]))
    })
}

fn get<'a>(headers: &'a [u8], name: &str) -> Option<&'a [u8]> {
    fields(headers)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Appends one field. A name or value HTTP forbids is written so that the gateway refuses it
/// (as it refuses any invalid header) instead of splitting it into other fields: `:` or a
/// newline in a name becomes a space, a newline in a value a NUL byte.
pub(crate) fn append(headers: &mut Vec<u8>, name: &str, value: &[u8]) {
    headers.extend(name.bytes().map(|b| match b {
        b':' | b'\n' => b' ',
        b => b.to_ascii_lowercase(),
    }));
    headers.push(b':');
    headers.extend(value.iter().map(|&b| if b == b'\n' { 0 } else { b }));
    headers.push(b'\n');
}

fn set(headers: &mut Vec<u8>, name: &str, value: &[u8]) {
    remove(headers, name);
    append(headers, name, value);
}

fn remove(headers: &mut Vec<u8>, name: &str) {
    if get(headers, name).is_none() {
        return;
    }
    let mut kept = Vec::with_capacity(headers.len());
    for field in headers.split_inclusive(|&b| b == b'\n') {
        let field_name = field.split(|&b| b == b':').next().unwrap_or_default();
        if !field_name.eq_ignore_ascii_case(name.as_bytes()) {
            kept.extend_from_slice(field);
        }
    }
    *headers = kept;
}

macro_rules! header_methods {
    () => {
        /// The first value of header `name` (case-insensitive).
        pub fn header(&self, name: &str) -> Option<&[u8]> {
            get(&self.headers, name)
        }

        /// The first value of header `name` as text, if it is valid UTF-8.
        pub fn header_str(&self, name: &str) -> Option<&str> {
            self.header(name).and_then(|v| std::str::from_utf8(v).ok())
        }

        /// All values of header `name`, in order.
        pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
            fields(&self.headers)
                .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        }

        /// Every header field, `(name, value)`, in order.
        pub fn header_fields(&self) -> impl Iterator<Item = (&str, &[u8])> {
            fields(&self.headers)
        }

        /// Replaces every value of header `name` with `value`.
        pub fn set_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
            set(&mut self.headers, name, value.as_ref());
        }

        /// Adds a value to header `name`, keeping the others.
        pub fn append_header(&mut self, name: &str, value: impl AsRef<[u8]>) {
            append(&mut self.headers, name, value.as_ref());
        }

        /// Removes header `name`.
        pub fn remove_header(&mut self, name: &str) {
            remove(&mut self.headers, name);
        }

        /// Sets header `name` and returns `self`, for building.
        pub fn with_header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
            self.set_header(name, value);
            self
        }

        /// Replaces the body and returns `self`, for building.
        pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
            self.body = body.into();
            self
        }
    };
}

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Request {
            method: method.to_owned(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    header_methods!();

    /// `scheme://authority` of the URL (empty if the URL is not absolute).
    pub fn origin(&self) -> &str {
        split_url(&self.url).0
    }

    /// The path and query of the URL (`/` if the path is empty).
    pub fn path_and_query(&self) -> &str {
        path_and_query(&self.url)
    }

    /// The path of the URL, without the query (`/` if empty).
    pub fn path(&self) -> &str {
        url_path(&self.url)
    }

    /// The query of the URL, without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.path_and_query().split_once('?').map(|(_, q)| q)
    }
}

impl Response {
    /// A response with the given status, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response with a JSON body and `content-type: application/json`.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response::new(status)
            .with_header("content-type", "application/json")
            .with_body(value.to_string())
    }

    header_methods!();
}

/// The path and query of an absolute URL (`/` if the path is empty), as
/// [`Request::path_and_query`] reads it: for a hook that reads `OutgoingRequest::url`.
pub fn path_and_query(url: &str) -> &str {
    let rest = split_url(url).1;
    let rest = rest.split('#').next().unwrap_or(rest);
    if rest.is_empty() { "/" } else { rest }
}

/// The path of an absolute URL, without the query (`/` if empty), as [`Request::path`] reads
/// it: for a plugin that reads `OutgoingRequest::url`.
pub fn url_path(url: &str) -> &str {
    let pq = path_and_query(url);
    let path = pq.split('?').next().unwrap_or(pq);
    if path.is_empty() { "/" } else { path }
}

/// Splits an absolute URL into (`scheme://authority`, rest starting at the path).
fn split_url(url: &str) -> (&str, &str) {
    let Some(scheme_end) = url.find("://") else {
        return ("", url);
    };
    let after = scheme_end + 3;
    let rest = &url[after..];
    let end = rest.find(['/', '?', '#']).map_or(url.len(), |i| after + i);
    (&url[..end], &url[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts() {
        let r = Request::new("GET", "http://h:1/a/b?x=1#f");
        assert_eq!(r.origin(), "http://h:1");
        assert_eq!(r.path(), "/a/b");
        assert_eq!(r.query(), Some("x=1"));
        assert_eq!(r.path_and_query(), "/a/b?x=1");
        let r = Request::new("GET", "http://h");
        assert_eq!(r.path(), "/");
        assert_eq!(r.query(), None);
    }

    #[test]
    fn headers() {
        let mut r = Response::new(200).with_header("X-A", "1");
        r.append_header("x-a", "2");
        assert_eq!(r.header_all("X-a").count(), 2);
        r.set_header("x-A", "3");
        assert_eq!(r.header_str("x-a"), Some("3"));
        r.remove_header("X-A");
        assert!(r.header("x-a").is_none());
    }

    #[test]
    fn the_encoded_list() {
        let mut r = Response::new(200);
        r.headers = b"a:1\nb:2\na:3\n".to_vec();
        let fields: Vec<_> = r.header_fields().collect();
        assert_eq!(fields, [("a", &b"1"[..]), ("b", b"2"), ("a", b"3")]);
        assert_eq!(r.header_all("A").collect::<Vec<_>>(), [&b"1"[..], b"3"]);
        // Removing a header that is not there leaves the bytes as they were.
        r.remove_header("c");
        assert_eq!(r.headers, b"a:1\nb:2\na:3\n");
        r.set_header("A", "4");
        assert_eq!(r.headers, b"b:2\na:4\n");
        // A value may hold `:`; names are written lower-case.
        r.append_header("X-Url", "http://h:1/");
        assert_eq!(r.header_str("x-url"), Some("http://h:1/"));
        assert_eq!(r.headers, b"b:2\na:4\nx-url:http://h:1/\n");
        // What HTTP forbids cannot split into other fields: the gateway refuses it instead.
        let mut r = Response::new(200);
        r.append_header("x-a:b", "1\nx-evil:2");
        assert_eq!(r.headers, b"x-a b:1\0x-evil:2\n");
        assert_eq!(r.header_fields().count(), 1);
    }
}
