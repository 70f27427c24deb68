//! Text as gofeed reads it: entity decoding (`DecodeEntities`, Go's `html.UnescapeString` on each
//! `&...;`), CDATA stripping (`StripCDATA`) and `"Name (email)"` authors (`ParseNameAddress`).

use std::sync::LazyLock;

use regex::Regex;

const CDATA_START: &str = "<![CDATA[";
const CDATA_END: &str = "]]>";

/// gofeed's `ParseText` on an element's raw inner XML: trimmed, then CDATA stripped when there is
/// any, else entities decoded.
pub(crate) fn parse_text(inner: &str) -> String {
    let trimmed = inner.trim();
    if trimmed.contains(CDATA_START) {
        strip_cdata(trimmed)
    } else {
        decode_entities(trimmed)
    }
}

/// gofeed's `StripCDATA`, including its way of moving on after a section (the text before a
/// section, and between two sections, is dropped), so that values match KrakenD's.
pub(crate) fn strip_cdata(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut curr = 0;
    while curr < s.len() {
        let Some(start) = s[curr..].find(CDATA_START).map(|i| i + curr) else {
            out.push_str(&decode_entities(&s[curr..]));
            return out;
        };
        let Some(end) = s[start..].find(CDATA_END).map(|i| i + start) else {
            out.push_str(&decode_entities(&s[curr..]));
            return out;
        };
        out.push_str(&s[start + CDATA_START.len()..end]);
        curr = curr + end + CDATA_END.len();
    }
    out
}

/// gofeed's `DecodeEntities`: each `&...;` is unescaped as HTML; a `&` with no `;` after it, or
/// a space before the `;`, ends the decoding (the rest is kept as written).
pub(crate) fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut data = s;
    while !data.is_empty() {
        let Some(amp) = data.find('&') else {
            out.push_str(data);
            break;
        };
        out.push_str(&data[..amp]);
        data = &data[amp..];
        if data.len() == 1 {
            out.push_str(data);
            return out;
        }
        let Some(semi) = data.find(';') else {
            out.push_str(data);
            return out;
        };
        if data[1..semi].contains(' ') {
            out.push_str(data);
            return out;
        }
        out.push_str(&unescape_html(&data[..=semi]));
        data = &data[semi + 1..];
    }
    out
}

/// Go's `html.UnescapeString` for the entities feeds use: numeric references (with Windows-1252
/// for 0x80-0x9F and U+FFFD for what is not a character) and the named entities of HTML 4; an
/// unknown name is kept as written.
pub(crate) fn unescape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp + 1..];
        if let Some(after_hash) = rest.strip_prefix('#') {
            let (hex, digits_at) = match after_hash.as_bytes().first() {
                Some(b'x' | b'X') => (true, 1),
                _ => (false, 0),
            };
            let body = &after_hash[digits_at..];
            let len = body
                .bytes()
                .take_while(|c| {
                    if hex {
                        c.is_ascii_hexdigit()
                    } else {
                        c.is_ascii_digit()
                    }
                })
                .count();
            if len == 0 {
                out.push('&');
                continue;
            }
            let radix = if hex { 16 } else { 10 };
            let code = u32::from_str_radix(&body[..len], radix).unwrap_or(u32::MAX);
            out.push(numeric_char(code));
            rest = &body[len..];
            rest = rest.strip_prefix(';').unwrap_or(rest);
            continue;
        }
        let len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        let name = &rest[..len];
        match named_entity(name) {
            Some(c) => {
                out.push(c);
                rest = &rest[len..];
                rest = rest.strip_prefix(';').unwrap_or(rest);
            }
            None => out.push('&'),
        }
    }
    out.push_str(rest);
    out
}

/// What Go's HTML unescaper writes for `&#code;`.
fn numeric_char(code: u32) -> char {
    const WINDOWS_1252: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}',
        '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}',
        '\u{2014}', '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}',
        '\u{178}',
    ];
    match code {
        0x80..=0x9F => WINDOWS_1252[(code - 0x80) as usize],
        0 => '\u{FFFD}',
        _ => char::from_u32(code).unwrap_or('\u{FFFD}'),
    }
}

/// The named character entities of HTML 4 (what feeds use; HTML5's longer list is not kept).
fn named_entity(name: &str) -> Option<char> {
    const LATIN1: [&str; 96] = [
        "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
        "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
        "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
        "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave",
        "Eacute", "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve",
        "Oacute", "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc",
        "Uuml", "Yacute", "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring",
        "aelig", "ccedil", "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc",
        "iuml", "eth", "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash",
        "ugrave", "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml",
    ];
    const OTHERS: &[(&str, u32)] = &[
        ("quot", 34),
        ("amp", 38),
        ("apos", 39),
        ("lt", 60),
        ("gt", 62),
        ("OElig", 338),
        ("oelig", 339),
        ("Scaron", 352),
        ("scaron", 353),
        ("Yuml", 376),
        ("fnof", 402),
        ("circ", 710),
        ("tilde", 732),
        ("Alpha", 913),
        ("Beta", 914),
        ("Gamma", 915),
        ("Delta", 916),
        ("Epsilon", 917),
        ("Zeta", 918),
        ("Eta", 919),
        ("Theta", 920),
        ("Iota", 921),
        ("Kappa", 922),
        ("Lambda", 923),
        ("Mu", 924),
        ("Nu", 925),
        ("Xi", 926),
        ("Omicron", 927),
        ("Pi", 928),
        ("Rho", 929),
        ("Sigma", 931),
        ("Tau", 932),
        ("Upsilon", 933),
        ("Phi", 934),
        ("Chi", 935),
        ("Psi", 936),
        ("Omega", 937),
        ("alpha", 945),
        ("beta", 946),
        ("gamma", 947),
        ("delta", 948),
        ("epsilon", 949),
        ("zeta", 950),
        ("eta", 951),
        ("theta", 952),
        ("iota", 953),
        ("kappa", 954),
        ("lambda", 955),
        ("mu", 956),
        ("nu", 957),
        ("xi", 958),
        ("omicron", 959),
        ("pi", 960),
        ("rho", 961),
        ("sigmaf", 962),
        ("sigma", 963),
        ("tau", 964),
        ("upsilon", 965),
        ("phi", 966),
        ("chi", 967),
        ("psi", 968),
        ("omega", 969),
        ("thetasym", 977),
        ("upsih", 978),
        ("piv", 982),
        ("ensp", 8194),
        ("emsp", 8195),
        ("thinsp", 8201),
        ("zwnj", 8204),
        ("zwj", 8205),
        ("lrm", 8206),
        ("rlm", 8207),
        ("ndash", 8211),
        ("mdash", 8212),
        ("lsquo", 8216),
        ("rsquo", 8217),
        ("sbquo", 8218),
        ("ldquo", 8220),
        ("rdquo", 8221),
        ("bdquo", 8222),
        ("dagger", 8224),
        ("Dagger", 8225),
        ("bull", 8226),
        ("hellip", 8230),
        ("permil", 8240),
        ("prime", 8242),
        ("Prime", 8243),
        ("lsaquo", 8249),
        ("rsaquo", 8250),
        ("oline", 8254),
        ("frasl", 8260),
        ("euro", 8364),
        ("image", 8465),
        ("weierp", 8472),
        ("real", 8476),
        ("trade", 8482),
        ("alefsym", 8501),
        ("larr", 8592),
        ("uarr", 8593),
        ("rarr", 8594),
        ("darr", 8595),
        ("harr", 8596),
        ("crarr", 8629),
        ("lArr", 8656),
        ("uArr", 8657),
        ("rArr", 8658),
        ("dArr", 8659),
        ("hArr", 8660),
        ("forall", 8704),
        ("part", 8706),
        ("exist", 8707),
        ("empty", 8709),
        ("nabla", 8711),
        ("isin", 8712),
        ("notin", 8713),
        ("ni", 8715),
        ("prod", 8719),
        ("sum", 8721),
        ("minus", 8722),
        ("lowast", 8727),
        ("radic", 8730),
        ("prop", 8733),
        ("infin", 8734),
        ("ang", 8736),
        ("and", 8743),
        ("or", 8744),
        ("cap", 8745),
        ("cup", 8746),
        ("int", 8747),
        ("there4", 8756),
        ("sim", 8764),
        ("cong", 8773),
        ("asymp", 8776),
        ("ne", 8800),
        ("equiv", 8801),
        ("le", 8804),
        ("ge", 8805),
        ("sub", 8834),
        ("sup", 8835),
        ("nsub", 8836),
        ("sube", 8838),
        ("supe", 8839),
        ("oplus", 8853),
        ("otimes", 8855),
        ("perp", 8869),
        ("sdot", 8901),
        ("lceil", 8968),
        ("rceil", 8969),
        ("lfloor", 8970),
        ("rfloor", 8971),
        ("lang", 9001),
        ("rang", 9002),
        ("loz", 9674),
        ("spades", 9824),
        ("clubs", 9827),
        ("hearts", 9829),
        ("diams", 9830),
    ];
    if let Some(i) = LATIN1.iter().position(|n| *n == name) {
        return char::from_u32(0xA0 + i as u32);
    }
    OTHERS
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, code)| char::from_u32(*code))
}

/// XML-level unescaping as Go's lenient decoder does it for text and attribute values: the five
/// predefined entities and character references; anything else is kept as written.
pub(crate) fn unescape_xml(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let resolved = after.find(';').and_then(|semi| {
            let name = &after[..semi];
            let c = match name {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "apos" => Some('\''),
                "quot" => Some('"'),
                _ => {
                    let code = if let Some(hex) =
                        name.strip_prefix("#x").or_else(|| name.strip_prefix("#X"))
                    {
                        u32::from_str_radix(hex, 16).ok()
                    } else if let Some(dec) = name.strip_prefix('#') {
                        dec.parse().ok()
                    } else {
                        None
                    };
                    code.and_then(char::from_u32)
                }
            }?;
            Some((c, semi))
        });
        match resolved {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

static EMAIL_NAME: LazyLock<Regex> = LazyLock::new(|| regex(r"^([^@]+@[^\s]+)\s+\(([^@]+)\)$"));
static NAME_EMAIL: LazyLock<Regex> = LazyLock::new(|| regex(r"^([^@]+)\s+\(([^@]+@[^)]+)\)$"));
static NAME_ONLY: LazyLock<Regex> = LazyLock::new(|| regex(r"^([^@()]+)$"));
static EMAIL_ONLY: LazyLock<Regex> = LazyLock::new(|| regex(r"^([^@()]+@[^@()]+)$"));

fn regex(pattern: &str) -> Regex {
    // The patterns are constants; a typo fails every feed test at once.
    Regex::new(pattern).unwrap_or_else(|e| unreachable!("feed author pattern: {e}"))
}

/// gofeed's `ParseNameAddress`: `(name, email)` of `"a@b.c (Name)"`, `"Name (a@b.c)"`, `"Name"`
/// or `"a@b.c"`; both empty for anything else.
pub(crate) fn parse_name_address(text: &str) -> (String, String) {
    let group = |re: &Regex, i: usize| {
        re.captures(text)
            .and_then(|c| c.get(i).map(|m| m.as_str().to_owned()))
    };
    if EMAIL_NAME.is_match(text) {
        (
            group(&EMAIL_NAME, 2).unwrap_or_default(),
            group(&EMAIL_NAME, 1).unwrap_or_default(),
        )
    } else if NAME_EMAIL.is_match(text) {
        (
            group(&NAME_EMAIL, 1).unwrap_or_default(),
            group(&NAME_EMAIL, 2).unwrap_or_default(),
        )
    } else if NAME_ONLY.is_match(text) {
        (group(&NAME_ONLY, 1).unwrap_or_default(), String::new())
    } else if EMAIL_ONLY.is_match(text) {
        (String::new(), group(&EMAIL_ONLY, 1).unwrap_or_default())
    } else {
        (String::new(), String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_as_gofeed_decodes_them() {
        assert_eq!(decode_entities("a &amp; b &lt;i&gt;"), "a & b <i>");
        assert_eq!(decode_entities("caf&eacute; &#233;&#xE9;"), "café éé");
        assert_eq!(decode_entities("&nbsp;x&unknown;"), "\u{a0}x&unknown;");
        assert_eq!(decode_entities("AT&T"), "AT&T");
        assert_eq!(decode_entities("a &b c; &amp;"), "a &b c; &amp;");
        assert_eq!(decode_entities("&#150;"), "\u{2013}");
        assert_eq!(decode_entities("x&"), "x&");
    }

    #[test]
    fn cdata_as_gofeed_strips_it() {
        assert_eq!(parse_text("  <![CDATA[<b>hi</b>]]>  "), "<b>hi</b>");
        assert_eq!(strip_cdata("<![CDATA[a]]> &amp; b"), "a & b");
        // gofeed drops the text before a section.
        assert_eq!(strip_cdata("lead <![CDATA[x]]>"), "x");
        assert_eq!(strip_cdata("<![CDATA[open"), "<![CDATA[open");
    }

    #[test]
    fn xml_unescaping_keeps_unknown_entities() {
        assert_eq!(unescape_xml("a&amp;b&#65;&nbsp;&"), "a&bA&nbsp;&");
    }

    #[test]
    fn name_and_address() {
        let pair = |n: &str, e: &str| (n.to_owned(), e.to_owned());
        assert_eq!(
            parse_name_address("jo@example.com (Jo Doe)"),
            pair("Jo Doe", "jo@example.com")
        );
        assert_eq!(
            parse_name_address("Jo Doe (jo@example.com)"),
            pair("Jo Doe", "jo@example.com")
        );
        assert_eq!(parse_name_address("Jo Doe"), pair("Jo Doe", ""));
        assert_eq!(
            parse_name_address("jo@example.com"),
            pair("", "jo@example.com")
        );
        assert_eq!(parse_name_address("a@b@c"), pair("", ""));
    }
}
