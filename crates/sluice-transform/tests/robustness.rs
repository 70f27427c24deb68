//! Deterministic, stable-toolchain stand-in for the fuzz target: mutated documents must never make
//! decoding or rendering panic, the JSON render must read back as the same data, and the YAML render
//! must read back as the same data with a real YAML parser.

#![allow(clippy::unwrap_used)]

use serde_json::{Map, Value, json};
use sluice_config::{Encoding, FlatmapOp};
use sluice_transform::{EntityFormatter, decode, flatmap, lookup_path, render};

/// xorshift64*: small, deterministic, good enough to shuffle bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

const SEEDS: [&str; 6] = [
    r#"<?xml version="1.0"?><user type="admin"><name>Elliot &amp; co</name><social><a>1</a><a>2</a></social><![CDATA[x]]><!-- c --></user>"#,
    r#"<ns:r xmlns:ns="urn:x" k='v'><e/><t>&#x41;&lt;</t>text</ns:r>"#,
    r#"{"a":{"b":[1,2.5,"x\u00e9",true,null,{"c":{}}]},"d":"<&>","e":-12345678901234567890}"#,
    r#"[{"path":"/collection/2","i":0},{"path":"/c","i":1e3}]"#,
    r#""just a string""#,
    "plain text\nwith lines",
];

const PIECES: [&[u8]; 16] = [
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b";",
    b"\"",
    b"'",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\xFF",
    b"\xE2\x80\xA8",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut body = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(body.len() + 1);
        match rng.below(4) {
            0 if !body.is_empty() => {
                let end = (at + rng.below(8)).min(body.len());
                body.drain(at.min(end)..end);
            }
            1 => {
                let piece = PIECES[rng.below(PIECES.len())];
                body.splice(at..at, piece.iter().copied());
            }
            2 if at < body.len() => body[at] = u8::try_from(rng.below(256)).unwrap_or(b'x'),
            _ => {
                let from = rng.below(body.len());
                let end = (from + rng.below(16)).min(body.len());
                let copy = body[from..end].to_vec();
                body.splice(at..at, copy);
            }
        }
    }
    body
}

const ENCODINGS: [Encoding; 5] = [
    Encoding::Json,
    Encoding::SafeJson,
    Encoding::String,
    Encoding::Xml,
    Encoding::NoOp,
];

#[test]
fn mutated_documents_decode_and_render_safely() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let formatter = EntityFormatter::new(
        Some("user"),
        &[],
        &["social.a".to_owned()],
        &Default::default(),
        Some("g"),
        &[],
    );
    let ops = [
        FlatmapOp::Move("collection".to_owned(), "paths".to_owned()),
        FlatmapOp::Del("paths.*.i".to_owned()),
        FlatmapOp::Move("paths.*.path".to_owned(), "paths.*.url".to_owned()),
        FlatmapOp::Append("a.b".to_owned(), "paths".to_owned()),
    ];
    let mut decoded = 0;
    for round in 0..4000 {
        let seed = SEEDS[round % SEEDS.len()].as_bytes();
        let body = if round < SEEDS.len() {
            seed.to_vec()
        } else {
            mutate(&mut rng, seed)
        };
        for encoding in ENCODINGS {
            for is_collection in [false, true] {
                let Ok(data) = decode(encoding, is_collection, &body) else {
                    continue;
                };
                decoded += 1;
                let json = render::to_json(&data);
                let back: Value = serde_json::from_slice(&json).unwrap();
                assert_eq!(back, Value::Object(data.clone()));
                let _ = render::to_xml(&data);
                let yaml = render::to_yaml(&data);
                let back: Value = serde_yaml_ng::from_slice(&yaml)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&yaml)));
                assert!(
                    same_value(&back, &Value::Object(data.clone())),
                    "YAML read back differs: {back} vs {data:?}"
                );
                let _ = formatter.format(data.clone());
                let _ = lookup_path(&data, "user.name");
                let mut flat = data;
                flatmap::apply(&ops, &mut flat);
            }
        }
    }
    assert!(decoded > 4000, "only {decoded} bodies decoded");
}

/// Feeds for the `rss` encoding, mutated the same way.
const FEED_SEEDS: [&str; 2] = [
    r#"<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>T &amp; co</title><image><url>u</url></image><item><title><![CDATA[<b>x</b>]]></title><pubDate>Mon, 02 Jan 2006 15:04:05 -0700</pubDate><dc:creator>a@b.c (A)</dc:creator><enclosure url="e" length="1"/><x>y</x></item></channel></rss>"#,
    r#"<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><title type="html">&lt;i&gt;A&lt;/i&gt;</title><entry><id>1</id><link href="h"/><updated>2006-01-02T15:04:05Z</updated><content type="xhtml"><div><p>p</p></div></content></entry></feed>"#,
];

#[test]
fn mutated_feeds_decode_and_render_safely() {
    let mut rng = Rng(0x5EED_1234_ABCD_0002);
    let mut decoded = 0;
    for round in 0..3000 {
        let seed = FEED_SEEDS[round % FEED_SEEDS.len()].as_bytes();
        let body = if round < FEED_SEEDS.len() {
            seed.to_vec()
        } else {
            mutate(&mut rng, seed)
        };
        let Ok(data) = decode(Encoding::Rss, false, &body) else {
            continue;
        };
        decoded += 1;
        let json = render::to_json(&data);
        let back: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, Value::Object(data.clone()));
        let _ = render::to_xml(&data);
        let _ = render::to_yaml(&data);
    }
    assert!(decoded > 300, "only {decoded} feeds decoded");
}

fn random_string(rng: &mut Rng) -> String {
    const ALPHABET: [&str; 24] = [
        "a", "Z", "0", "7", " ", "-", ":", "#", "?", "'", "\"", "\\", "\n", "\t", "&", "*", "!",
        ".", "é", "\u{2028}", "\u{85}", "\u{1}", "true", "null",
    ];
    (0..rng.below(6))
        .map(|_| ALPHABET[rng.below(ALPHABET.len())])
        .collect()
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 4 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(i64::try_from(rng.next() >> 1).unwrap_or(0) - (1 << 62)),
        3 => json!(f64::from(u32::try_from(rng.below(1 << 20)).unwrap_or(0)) / 64.0 - 1000.0),
        4 => Value::String(random_string(rng)),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(random_map(rng, depth + 1)),
    }
}

fn random_map(rng: &mut Rng, depth: usize) -> Map<String, Value> {
    (0..rng.below(4))
        .map(|_| (random_string(rng), random_value(rng, depth)))
        .collect()
}

#[test]
fn random_data_round_trips_through_yaml_and_json() {
    let mut rng = Rng(0xDA7A_0000_0000_0042);
    for _ in 0..3000 {
        let data = random_map(&mut rng, 0);
        let yaml = render::to_yaml(&data);
        let back: Value = serde_yaml_ng::from_slice(&yaml)
            .unwrap_or_else(|e| panic!("{e}:\n{}", String::from_utf8_lossy(&yaml)));
        assert_eq!(
            back,
            Value::Object(data.clone()),
            "{}",
            String::from_utf8_lossy(&yaml)
        );
        let back: Value = serde_json::from_slice(&render::to_json(&data)).unwrap();
        assert_eq!(back, Value::Object(data.clone()));
        let _ = render::to_xml(&data);
    }
}

/// Equal as YAML readers see it: numbers by value (the JSON side keeps the backend's digits,
/// `1e+3`, which a YAML reader gives back as the float `1000.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || (x.as_i64().is_some() && x.as_i64() == y.as_i64())
                || (x.as_u64().is_some() && x.as_u64() == y.as_u64())
                || x.as_f64().is_some_and(|f| Some(f) == y.as_f64())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}
