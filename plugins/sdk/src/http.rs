//! Helpers on the request and response records.

use crate::{Request, Response};

/// Header fields as they cross the boundary: name/value pairs in order, names may repeat.
pub type Headers = Vec<(String, Vec<u8>)>;

fn get<'a>(headers: &'a Headers, name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

fn set(headers: &mut Headers, name: &str, value: impl Into<Vec<u8>>) {
    remove(headers, name);
    headers.push((name.to_ascii_lowercase(), value.into()));
}

fn remove(headers: &mut Headers, name: &str) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
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
            self.headers
                .iter()
                .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_slice())
        }

        /// Replaces every value of header `name` with `value`.
        pub fn set_header(&mut self, name: &str, value: impl Into<Vec<u8>>) {
            set(&mut self.headers, name, value);
        }

        /// Adds a value to header `name`, keeping the others.
        pub fn append_header(&mut self, name: &str, value: impl Into<Vec<u8>>) {
            self.headers.push((name.to_ascii_lowercase(), value.into()));
        }

        /// Removes header `name`.
        pub fn remove_header(&mut self, name: &str) {
            remove(&mut self.headers, name);
        }

        /// Sets header `name` and returns `self`, for building.
        pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
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
        let rest = split_url(&self.url).1;
        let rest = rest.split('#').next().unwrap_or(rest);
        if rest.is_empty() { "/" } else { rest }
    }

    /// The path of the URL, without the query (`/` if empty).
    pub fn path(&self) -> &str {
        let pq = self.path_and_query();
        let path = pq.split('?').next().unwrap_or(pq);
        if path.is_empty() { "/" } else { path }
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
}
