//! Host sanitisation, as KrakenD does it unless `disable_host_sanitize` is set.
//!
//! KrakenD looks for every non-overlapping match of `(https?://)?([A-Za-z0-9._-]+)(:[0-9]{2,6})?/?`
//! in the host and accepts it only when there is exactly one; the host then becomes the scheme
//! (`http://` when missing), the name and the port. So `localhost:8080` becomes
//! `http://localhost:8080`, `http://showrss.info/` becomes `http://showrss.info`, while a path
//! (`http://a/b`), another scheme (`ftp://a`), credentials or an IPv6 literal make the host invalid.

/// Sanitises one backend host: `name[:port]` or `http(s)://name[:port]`, with an optional trailing
/// `/`, becomes `http(s)://name[:port]`. Anything else is an error (the message names the host).
pub fn sanitize_host(h: &str) -> Result<String, String> {
    let bytes = h.as_bytes();
    let mut first = None;
    let mut matches = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        match match_at(bytes, at) {
            Some(found) => {
                matches += 1;
                at = found.end;
                first.get_or_insert(found);
            }
            None => at += 1,
        }
    }
    match first {
        Some(found) if matches == 1 => Ok(format!(
            "{}{}{}",
            found.scheme.map_or("http://", |r| &h[r.0..r.1]),
            &h[found.name.0..found.name.1],
            found.port.map_or("", |r| &h[r.0..r.1]),
        )),
        _ => Err(format!(
            "invalid host {}: expected [http:// or https://]name[:port], without a path, \
             credentials or another scheme",
            crate::read::quote(h)
        )),
    }
}

/// One match of the host pattern: byte ranges into the host.
#[derive(Debug, Clone, Copy)]
struct HostMatch {
    scheme: Option<(usize, usize)>,
    name: (usize, usize),
    port: Option<(usize, usize)>,
    end: usize,
}

/// The host pattern matched at `start`, preferring the longest scheme as the regex does.
fn match_at(s: &[u8], start: usize) -> Option<HostMatch> {
    for scheme in [b"https://".as_slice(), b"http://".as_slice()] {
        if s[start..].starts_with(scheme) {
            let after = start + scheme.len();
            if let Some(found) = match_after_scheme(s, after, Some((start, after))) {
                return Some(found);
            }
        }
    }
    match_after_scheme(s, start, None)
}

fn match_after_scheme(s: &[u8], start: usize, scheme: Option<(usize, usize)>) -> Option<HostMatch> {
    let name_len = s[start..]
        .iter()
        .take_while(|&&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        .count();
    if name_len == 0 {
        return None;
    }
    let name = (start, start + name_len);
    let mut end = name.1;
    let mut port = None;
    if s.get(end) == Some(&b':') {
        let digits = s[end + 1..]
            .iter()
            .take(6)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits >= 2 {
            port = Some((end, end + 1 + digits));
            end += 1 + digits;
        }
    }
    if s.get(end) == Some(&b'/') {
        end += 1;
    }
    Some(HostMatch {
        scheme,
        name,
        port,
        end,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok(h: &str) -> String {
        match sanitize_host(h) {
            Ok(s) => s,
            Err(e) => panic!("{h}: {e}"),
        }
    }

    #[test]
    fn sanitises() {
        assert_eq!(ok("localhost"), "http://localhost");
        assert_eq!(ok("localhost:8080"), "http://localhost:8080");
        assert_eq!(ok("http://showrss.info/"), "http://showrss.info");
        assert_eq!(ok("https://api.example.com"), "https://api.example.com");
        assert_eq!(
            ok("https://api.example.com:8443/"),
            "https://api.example.com:8443"
        );
        assert_eq!(ok("127.0.0.1:8081"), "http://127.0.0.1:8081");
        assert_eq!(ok("my_host-1.internal"), "http://my_host-1.internal");
        // Characters outside the pattern are dropped when they match nothing, as in KrakenD.
        assert_eq!(ok("http://a.com/?"), "http://a.com");
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "   ",
            "http://a.com/path",
            "ftp://files.example.com",
            "HTTP://a.com",
            "http://user:pass@host",
            "[::1]:8080",
            "http://a.com:1234567",
            "a b",
            // A one-digit port is not a port: the digit is a second match.
            "http://a:8",
        ] {
            let err = sanitize_host(bad);
            assert!(err.is_err(), "{bad:?} accepted as {err:?}");
        }
        // A lone scheme matches once, as the name "http", as KrakenD's regex does.
        assert_eq!(sanitize_host("http://").as_deref(), Ok("http://http"));
        assert_eq!(
            sanitize_host("ftp://x").unwrap_err(),
            "invalid host \"ftp://x\": expected [http:// or https://]name[:port], without a path, \
             credentials or another scheme"
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for odd in [
            "µ",
            "http://µ",
            "é:80",
            "a:",
            "a:/",
            ":",
            "/",
            "https://",
            "a:99999999/",
        ] {
            let _ = sanitize_host(odd);
        }
    }
}
