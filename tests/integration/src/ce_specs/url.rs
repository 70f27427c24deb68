//! The `http://host[:port]/path?query` URLs the specs use, and resolving a `Location` against
//! one.

use std::fmt;

/// A parsed `http` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Host as written (IPv6 without brackets).
    pub host: String,
    /// Port (80 when not written).
    pub port: u16,
    /// `host[:port]` as written: what Go sends as `Host`.
    pub authority: String,
    /// The path, still escaped; `/` when empty.
    pub path: String,
    /// The query without `?`, if there is one.
    pub query: Option<String>,
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.target())
    }
}

impl Url {
    /// Parses an absolute `http` URL (a fragment is dropped, as clients do).
    ///
    /// # Errors
    /// Another scheme, user info, a bad port, or no host.
    pub fn parse(s: &str) -> Result<Url, String> {
        let s = s.split('#').next().unwrap_or(s);
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(format!("{s:?} is not an absolute URL"));
        };
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(format!("{s:?}: only http is supported"));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        if authority.contains('@') {
            return Err(format!("{s:?}: user info is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((h, after)) = v6.split_once(']') else {
                return Err(format!("{s:?}: unterminated IPv6 address"));
            };
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{s:?}: no host"));
        }
        let port = match port {
            None | Some("") => 80,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("{s:?}: bad port {p:?}"))?,
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (target, None),
        };
        Ok(Url {
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path: if path.is_empty() { "/" } else { path }.to_owned(),
            query,
        })
    }

    /// The request target: `path[?query]`.
    pub fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    /// Resolves a `Location` value against this URL.
    ///
    /// # Errors
    /// When the result is not a URL [`Url::parse`] accepts.
    pub fn resolve(&self, location: &str) -> Result<Url, String> {
        if location.contains("://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("http://{rest}"));
        }
        let joined = if location.starts_with('/') {
            location.to_owned()
        } else if location.starts_with('?') {
            format!("{}{location}", self.path)
        } else {
            let dir = &self.path[..=self.path.rfind('/').unwrap_or(0)];
            format!("{dir}{location}")
        };
        Url::parse(&format!("http://{}{joined}", self.authority))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves() {
        let u = Url::parse("http://localhost:8080/a/b?x=1#f").expect("valid");
        assert_eq!(
            (
                u.host.as_str(),
                u.port,
                u.authority.as_str(),
                u.target().as_str()
            ),
            ("localhost", 8080, "localhost:8080", "/a/b?x=1")
        );
        assert_eq!(Url::parse("http://[::1]").expect("valid").target(), "/");
        assert_eq!(
            u.resolve("/static").expect("valid").to_string(),
            "http://localhost:8080/static"
        );
        assert_eq!(
            u.resolve("c").expect("valid").to_string(),
            "http://localhost:8080/a/c"
        );
        assert_eq!(
            u.resolve("http://127.0.0.1:1/z").expect("valid").authority,
            "127.0.0.1:1"
        );
        assert!(Url::parse("https://x").is_err());
        assert!(Url::parse("http://x:99999").is_err());
    }
}
