//! Query strings as Go's `url.ParseQuery` reads them: `&`-separated pairs, `+` is a space,
//! percent-decoding applied to names and values.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

fn decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// Decoded pairs, in order; empty segments are skipped, a name without `=` has an empty value.
pub fn parse(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// Decoded name -> values.
pub fn to_map(query: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in parse(query) {
        map.entry(k).or_default().push(v);
    }
    map
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_like_go() {
        let m = super::to_map("a=1&b=2&b=3&c%5B%5D=x+y&d=%2F&e");
        assert_eq!(m["a"], ["1"]);
        assert_eq!(m["b"], ["2", "3"]);
        assert_eq!(m["c[]"], ["x y"]);
        assert_eq!(m["d"], ["/"]);
        assert_eq!(m["e"], [""]);
    }
}
