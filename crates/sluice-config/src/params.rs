//! Path parameters: the ones an endpoint path declares and the placeholders a backend `url_pattern`
//! uses.

use std::ops::Range;

/// The parameters an endpoint path declares, in order (duplicates kept).
///
/// By default (strict REST) a parameter is `/{name}` with a name of ASCII letters, digits, `_` and
/// `-`; with `disable_rest` any `{name}` counts, the name also taking `.`, `:` and `/`.
pub fn endpoint_params(path: &str, disable_rest: bool) -> Vec<String> {
    param_spans(path, disable_rest)
        .into_iter()
        .map(|(_, name)| name.to_owned())
        .collect()
}

/// The `{placeholder}` names of a backend `url_pattern`, in order (duplicates kept): any `{name}`
/// whose name is ASCII letters, digits, `_`, `-`, `.`, `:` or `/`.
pub fn url_placeholders(pattern: &str) -> Vec<String> {
    spans(pattern, false, is_placeholder_char)
        .into_iter()
        .map(|(_, name)| name.to_owned())
        .collect()
}

/// True for the placeholders a backend may use without the endpoint declaring them: the values of
/// earlier backends in a sequential endpoint (`resp0_user.id`) and JWT claims (`JWT.sub`).
pub fn is_implicit_placeholder(name: &str) -> bool {
    if let Some(claim) = name.strip_prefix("JWT.") {
        return !claim.is_empty();
    }
    name.strip_prefix("resp").is_some_and(|rest| {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0
            && rest[digits..]
                .strip_prefix('_')
                .is_some_and(|p| !p.is_empty())
    })
}

/// A `sequential_propagated_params` entry as KrakenD reads it: `resp<N>_<path>` or `resp<N>`
/// (`Resp` also accepted), returned with the `resp` prefix; `None` for anything else.
pub fn propagated_param(param: &str) -> Option<String> {
    let rest = param
        .strip_prefix("resp")
        .or_else(|| param.strip_prefix("Resp"))?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    match &rest[digits..] {
        "" => {}
        path if path.strip_prefix('_').is_some_and(|p| !p.is_empty()) => {}
        _ => return None,
    }
    Some(format!("resp{rest}"))
}

/// The index of a whole-body propagated param `Resp<N>` / `resp<N>`.
pub fn raw_response_index(name: &str) -> Option<usize> {
    let digits = name
        .strip_prefix("Resp")
        .or_else(|| name.strip_prefix("resp"))?;
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The parameter spans (`{name}`, braces included) of an endpoint path, with their names.
pub(crate) fn param_spans(path: &str, disable_rest: bool) -> Vec<(Range<usize>, &str)> {
    if disable_rest {
        spans(path, false, is_placeholder_char)
    } else {
        spans(path, true, is_strict_param_char)
    }
}

/// The path with every parameter written as `{}`: two endpoints with the same shape are the same
/// route, whatever their parameters are called.
pub(crate) fn route_shape(path: &str, disable_rest: bool) -> String {
    let mut shape = String::with_capacity(path.len());
    let mut last = 0;
    for (span, _) in param_spans(path, disable_rest) {
        shape.push_str(&path[last..span.start]);
        shape.push_str("{}");
        last = span.end;
    }
    shape.push_str(&path[last..]);
    shape
}

fn is_strict_param_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-')
}

fn is_placeholder_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':' | b'/')
}

/// Every non-overlapping `{name}` (after a `/` when `after_slash`), scanning left to right as a
/// regex would.
fn spans(s: &str, after_slash: bool, name_char: fn(u8) -> bool) -> Vec<(Range<usize>, &str)> {
    let bytes = s.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = s[at..].find('{') {
        let open = at + offset;
        at = open + 1;
        if after_slash && (open == 0 || bytes[open - 1] != b'/') {
            continue;
        }
        let name_len = bytes[open + 1..]
            .iter()
            .take_while(|&&c| name_char(c))
            .count();
        let close = open + 1 + name_len;
        if name_len > 0 && bytes.get(close) == Some(&b'}') {
            found.push((open..close + 1, &s[open + 1..close]));
            at = close + 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_params() {
        assert_eq!(
            endpoint_params("/users/{id}/posts/{post-id}", false),
            ["id", "post-id"]
        );
        assert_eq!(endpoint_params("/a/{id}.json", false), ["id"]);
        assert!(endpoint_params("/a/x{id}", false).is_empty());
        assert!(endpoint_params("/a/{a.b}", false).is_empty());
        assert!(endpoint_params("/a/{}", false).is_empty());
        assert!(endpoint_params("/a/{x", false).is_empty());
    }

    #[test]
    fn relaxed_params() {
        assert_eq!(endpoint_params("/a/x{id}/{a.b}", true), ["id", "a.b"]);
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            url_placeholders("/{first}/{second}?p={param}&q={resp0_a.b}"),
            ["first", "second", "param", "resp0_a.b"]
        );
        assert_eq!(url_placeholders("/{{x}}"), ["x"]);
        assert!(url_placeholders("/{ x }").is_empty());
        assert!(url_placeholders("/{µ}").is_empty());
    }

    #[test]
    fn implicit() {
        assert!(is_implicit_placeholder("resp0_foo"));
        assert!(is_implicit_placeholder("resp12_a.b"));
        assert!(is_implicit_placeholder("JWT.sub"));
        assert!(!is_implicit_placeholder("resp0"));
        assert!(!is_implicit_placeholder("resp_x"));
        assert!(!is_implicit_placeholder("resp0_"));
        assert!(!is_implicit_placeholder("JWT."));
        assert!(!is_implicit_placeholder("jwt.sub"));
    }

    #[test]
    fn propagated() {
        assert_eq!(propagated_param("resp0").as_deref(), Some("resp0"));
        assert_eq!(propagated_param("Resp12").as_deref(), Some("resp12"));
        assert_eq!(propagated_param("Resp0_a.b").as_deref(), Some("resp0_a.b"));
        for bad in ["resp", "resp_", "resp0_", "resp0x", "RESP0", "foo"] {
            assert_eq!(propagated_param(bad), None, "{bad}");
        }
        assert_eq!(raw_response_index("Resp3"), Some(3));
        assert_eq!(raw_response_index("Resp3_a"), None);
        assert_eq!(raw_response_index("Response"), None);
    }

    #[test]
    fn shapes() {
        assert_eq!(route_shape("/users/{id}", false), "/users/{}");
        assert_eq!(route_shape("/users/{name}", false), "/users/{}");
        assert_eq!(route_shape("/a/x{id}", false), "/a/x{id}");
        assert_eq!(route_shape("/a/x{id}", true), "/a/x{}");
    }
}
