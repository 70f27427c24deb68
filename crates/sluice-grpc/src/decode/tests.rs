//! The decoder against the reference path (`DynamicMessage::decode`, then
//! `OutputOptions::message`): the same JSON, byte for byte, under every output switch.
#![allow(clippy::unwrap_used)]

use prost_reflect::prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};
use serde_json::{Value as Json, json};

use super::Decoder;
use crate::input::InputPlan;
use crate::output::OutputOptions;
use crate::settings::Settings;

fn pool() -> DescriptorPool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut compiler = protox::Compiler::new([dir]).unwrap();
    compiler.include_imports(true);
    compiler.open_files(["rich.proto", "legacy.proto"]).unwrap();
    compiler.descriptor_pool()
}

/// Every combination of the output switches.
fn all_options() -> Vec<OutputOptions> {
    let mut all = Vec::new();
    for bits in 0..32u32 {
        let settings = json!({
            "response_naming_convention": if bits & 1 == 0 { "snake_case" } else { "camelCase" },
            "output_enum_as_string": bits & 2 != 0,
            "output_timestamp_as_string": bits & 4 != 0,
            "output_duration_as_string": bits & 8 != 0,
            "output_remove_unset_values": bits & 16 != 0,
        });
        all.push(OutputOptions::new(
            &Settings::parse(Some(&settings), "s").unwrap(),
        ));
    }
    all
}

/// The reference path's JSON text, or its error.
fn reference(
    desc: &MessageDescriptor,
    options: OutputOptions,
    bytes: &[u8],
) -> Result<String, String> {
    DynamicMessage::decode(desc.clone(), bytes)
        .map(|m| serde_json::to_string(&options.message(&m)).unwrap())
        .map_err(|e| e.to_string())
}

fn decoded(decoder: &Decoder, bytes: &[u8]) -> Result<String, String> {
    decoder
        .decode(bytes)
        .map(|j| serde_json::to_string(&j).unwrap())
        .map_err(|e| e.0)
}

/// The decoder writes exactly the reference path's JSON for `bytes`, under every switch.
fn assert_same(desc: &MessageDescriptor, bytes: &[u8]) -> Vec<String> {
    let mut texts = Vec::new();
    for options in all_options() {
        let decoder = Decoder::new(desc, options);
        let expected = reference(desc, options, bytes).unwrap();
        let got = decoded(&decoder, bytes).unwrap();
        assert_eq!(got, expected, "{options:?}");
        texts.push(got);
    }
    texts
}

/// `bytes` is malformed for both paths, and the decoder says so without panicking.
fn assert_refused(desc: &MessageDescriptor, bytes: &[u8], reason: &str) {
    let options = all_options()[0];
    let e = decoded(&Decoder::new(desc, options), bytes).unwrap_err();
    assert!(e.contains(reason), "{e}");
    assert!(reference(desc, options, bytes).is_err(), "{e}");
}

fn from_json(pool: &DescriptorPool, name: &str, body: &Json) -> DynamicMessage {
    let settings = Settings::parse(Some(&json!({"use_request_body": true})), "s").unwrap();
    let plan = InputPlan::new(pool.get_message_by_name(name).unwrap(), &settings).unwrap();
    plan.build(&[], None, body.to_string().as_bytes()).unwrap()
}

fn rich_json() -> Json {
    // In parts: one json! of it all is past the macro recursion limit.
    let parts = [
        json!({
            "d": 1.5, "f": 1.1, "i32": -7, "i64": "-9007199254740993", "u32": 4_000_000_000u32,
            "u64": "18446744073709551615", "s32": -3, "s64": "-12345678901234", "fx32": 7,
            "fx64": "99", "sfx32": -8, "sfx64": "-99", "b": true, "s": "h\u{e9}llo \"q\"\n",
            "by": "AQID", "color": "GREEN", "aliased": "A_UNO",
        }),
        json!({
            "inner": {"name": "in", "big": "123", "nums": [1, 2, 3],
                      "child": {"name": "deep", "color": "RED", "child": {}}},
            "inners": [{"name": "a"}, {}, {"nums": [-1]}],
            "packed_i32": [1, -2, 300], "unpacked_i64": ["5", "-6"], "packed_d": [0.1, -2.5e10],
            "colors": ["RED", "GREEN", "COLOR_UNSPECIFIED"], "strings": ["x", ""],
            "blobs": ["AA==", ""], "unpacked_s64": [-1, 1], "packed_fx32": [1, 4_294_967_295u32],
            "bools": [true, false], "floats": [1.5, -0.25, 3.4e38],
        }),
        json!({
            "m_str": {"a": "1", "b": ""}, "m_i32": {"-1": {"name": "neg"}, "2": {}},
            "m_i64": {"-5": "RED", "6": "COLOR_UNSPECIFIED"}, "m_u32": {"7": 1.25},
            "m_u64": {"18446744073709551615": "AQ=="}, "m_s32": {"-3": "4"}, "m_s64": {"-4": true},
            "m_fx32": {"8": 2.5}, "m_fx64": {"9": "nine"}, "m_sfx32": {"-10": "11"},
            "m_sfx64": {"-12": "twelve"}, "m_bool": {"true": "yes", "false": "no"},
        }),
        json!({
            "c_inner": {"name": "chosen"}, "opt_i32": 0, "opt_s": "",
            "ts": "2024-05-01T10:00:00.5Z", "dur": "1.5s",
            "st": {"a": 1, "b": [true, null, "x", {"c": 2.5}], "e": {}},
            "val": {"k": [1, "two"]}, "lv": [1, {"a": null}],
            "any": {"@type": "type.googleapis.com/rich.Inner", "name": "in any", "big": "5"},
            "any_wkt": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "2s"},
        }),
        json!({
            "mask": "seatsLeft,route.to", "empty": {}, "w_d": 2.5, "w_f": 0.5, "w_i64": "-7",
            "w_u64": "8", "w_i32": 9, "w_u32": 10, "w_b": false, "w_s": "ws", "w_by": "AQ==",
            "tss": ["1970-01-01T00:00:00Z", "2000-01-01T00:00:00.000001Z"],
            "m_val": {"x": 1, "y": null, "z": {"q": []}}, "durs": ["-0.5s", "3s"], "far_away": 77
        }),
    ];
    let mut all = serde_json::Map::new();
    for part in parts {
        if let Json::Object(fields) = part {
            all.extend(fields);
        }
    }
    Json::Object(all)
}

fn rich(pool: &DescriptorPool) -> DynamicMessage {
    let mut m = from_json(pool, "rich.Rich", &rich_json());
    let mut any = DynamicMessage::new(pool.get_message_by_name("google.protobuf.Any").unwrap());
    any.set_field_by_name(
        "type_url",
        Value::String("type.googleapis.com/x.Unknown".into()),
    );
    any.set_field_by_name("value", Value::Bytes(vec![1, 2].into()));
    m.set_field_by_name("any_unknown", Value::Message(any));
    m.set_field_by_name("color", Value::EnumNumber(9));
    m.set_field_by_name(
        "colors",
        Value::List(vec![Value::EnumNumber(1), Value::EnumNumber(77)]),
    );
    m.set_field_by_name("null", Value::EnumNumber(0));
    m
}

#[test]
fn a_rich_message_is_the_reference_json() {
    let pool = pool();
    let desc = pool.get_message_by_name("rich.Rich").unwrap();
    let m = rich(&pool);
    let bytes = m.encode_to_vec();
    let texts = assert_same(&desc, &bytes);
    // The test covers what it means to: spot checks of two of the 32 renderings.
    let snake: Json = serde_json::from_str(&texts[0]).unwrap();
    assert_eq!(snake["i64"], json!(-9_007_199_254_740_993i64));
    assert_eq!(snake["m_bool"], json!({"true": "yes", "false": "no"}));
    assert_eq!(snake["any"]["name"], "in any");
    assert_eq!(snake["any_unknown"]["value"], "AQI=");
    // camelCase, enums, timestamps and durations as text, unset values written.
    let camel: Json = serde_json::from_str(&texts[15]).unwrap();
    assert_eq!(camel["i64"], "-9007199254740993");
    assert_eq!(camel["color"], 9, "an unknown enum value stays a number");
    assert_eq!(camel["colors"], json!(["RED", 77]));
    assert_eq!(camel["ts"], "2024-05-01T10:00:00.500Z");
    assert_eq!(
        camel["anyWkt"],
        json!({"@type": "type.googleapis.com/google.protobuf.Duration", "value": "2s"})
    );
    assert_eq!(camel["mask"], "seatsLeft,route.to");
    assert_eq!(
        camel["cInner"],
        json!({"name": "chosen", "big": "0", "nums": [], "color": "COLOR_UNSPECIFIED", "child": null})
    );
    assert!(camel.get("cText").is_none());
    assert_eq!(camel["farAway"], 77);

    // Nothing set: every default.
    assert_same(&desc, &[]);
    // Parts of it, so unset fields sit beside set ones.
    for keep in [
        "inner", "st", "ts", "m_i32", "c_inner", "opt_i32", "w_i64", "val",
    ] {
        let mut part = DynamicMessage::new(desc.clone());
        part.set_field_by_name(keep, m.get_field_by_name(keep).unwrap().into_owned());
        assert_same(&desc, &part.encode_to_vec());
    }
}

#[test]
fn repeated_occurrences_merge_as_protobuf_does() {
    let pool = pool();
    let desc = pool.get_message_by_name("rich.Rich").unwrap();
    let first = rich(&pool);
    let second = from_json(
        &pool,
        "rich.Rich",
        &json!({
            "i64": "1", "s": "second", "inner": {"big": "9", "nums": [4], "child": {"big": "2"}},
            "inners": [{"name": "b"}], "packed_i32": [7], "m_str": {"a": "again", "c": "new"},
            "c_text": "text wins", "st": {"a": "replaced", "f": false}, "ts": "1999-12-31T23:59:59Z",
            "val": 2.5, "any": {"@type": "type.googleapis.com/rich.Inner", "nums": [5]}
        }),
    );
    let third = from_json(
        &pool,
        "rich.Rich",
        &json!({"c_inner": {"big": "3"}, "val": {"s": [true]}}),
    );
    // A message repeated on the wire is the merge of its occurrences.
    let mut bytes = first.encode_to_vec();
    bytes.extend(second.encode_to_vec());
    assert_same(&desc, &bytes);
    // A oneof member after another clears it; the same member again merges.
    bytes.extend(third.encode_to_vec());
    bytes.extend(third.encode_to_vec());
    let texts = assert_same(&desc, &bytes);
    let j: Json = serde_json::from_str(&texts[16]).unwrap();
    assert_eq!(j["c_inner"], json!({"big": 3}), "{j}");
    assert_eq!(j["s"], "second");
    assert_eq!(j["inner"]["nums"], json!([1, 2, 3, 4]));
    assert_eq!(
        j["inner"]["child"],
        json!({"name": "deep", "big": 2, "color": 1, "child": {}})
    );
}

#[test]
fn packed_and_unpacked_encodings_are_both_read() {
    let pool = pool();
    let desc = pool.get_message_by_name("rich.Rich").unwrap();
    // packed_i32 (20) unpacked: 1, then 2; unpacked_i64 (21) packed: [3, 4]; floats (29)
    // packed; bools (28) unpacked; an empty packed run.
    let bytes = [
        0xa0, 0x01, 0x01, 0xa0, 0x01, 0x02, // 20: varint 1, varint 2
        0xaa, 0x01, 0x02, 0x03, 0x04, // 21: packed [3, 4]
        0xea, 0x01, 0x04, 0x00, 0x00, 0xc0, 0x3f, // 29: packed [1.5f]
        0xe0, 0x01, 0x01, // 28: true
        0xa2, 0x01, 0x00, // 20: an empty packed run
    ];
    let texts = assert_same(&desc, &bytes);
    let j: Json = serde_json::from_str(&texts[0]).unwrap();
    assert_eq!(j["packed_i32"], json!([1, 2]));
    assert_eq!(j["unpacked_i64"], json!([3, 4]));
    assert_eq!(j["floats"], json!([1.5]));
}

#[test]
fn odd_but_valid_wire_data_is_the_reference_json() {
    let pool = pool();
    let desc = pool.get_message_by_name("rich.Rich").unwrap();
    let cases: Vec<Vec<u8>> = vec![
        // -0.0 in a field without presence: not set, but written as the reference writes it.
        [vec![0x09], (-0.0f64).to_le_bytes().to_vec()].concat(),
        // A default value written explicitly (a proto3 scalar), and a present optional zero.
        vec![0x18, 0x00, 0xa8, 0x03, 0x00],
        // Unknown fields of every wire type, skipped.
        vec![
            0xf8, 0x07, 0x05, 0xf9, 0x07, 1, 2, 3, 4, 5, 6, 7, 8, 0xfa, 0x07, 0x01, 0xff, 0xfd,
            0x07, 1, 2, 3, 4,
        ],
        // A map entry without its key, another without its value, fields out of order.
        vec![0xf2, 0x01, 0x02, 0x12, 0x00, 0xfa, 0x01, 0x02, 0x08, 0x05],
        vec![0x82, 0x02, 0x04, 0x10, 0x01, 0x08, 0x07],
        // A map key given twice in one entry (the last wins) and an entry repeated.
        vec![
            0xf2, 0x01, 0x06, 0x0a, 0x01, b'a', 0x0a, 0x01, b'b', 0xf2, 0x01, 0x03, 0x0a, 0x01,
            b'b',
        ],
        // The Value oneof switching members; a Struct entry without a value.
        vec![0xfa, 0x03, 0x05, 0x20, 0x01, 0x1a, 0x01, b'z'],
        vec![0xf2, 0x03, 0x05, 0x0a, 0x03, 0x0a, 0x01, b'k'],
        // A field number far beyond the dense table, and invalid UTF-8 in bytes (fine).
        vec![0x80, 0xea, 0x30, 0x05, 0x7a, 0x02, 0xff, 0xfe],
        // Timestamps and durations out of the mapping's range, and negative nanos.
        vec![
            0xe2, 0x03, 0x0c, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x10,
            0x01,
        ],
        vec![
            0xea, 0x03, 0x0b, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ],
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let texts = assert_same(&desc, bytes);
        if i == 0 {
            assert!(texts[0].contains("\"d\":-0,"), "{}", texts[0]);
        }
    }
}

#[test]
fn proto2_defaults_and_presence_are_the_reference_json() {
    let pool = pool();
    let desc = pool.get_message_by_name("legacy.Old").unwrap();
    // Nothing set: the declared defaults (an absent required field is not an error here,
    // as for the reference path).
    assert_same(&desc, &[]);
    let mut m = DynamicMessage::new(desc.clone());
    m.set_field_by_name("n", Value::I32(42));
    m.set_field_by_name("level", Value::EnumNumber(2));
    m.set_field_by_name("id", Value::I64(-1));
    m.set_field_by_name("nums", Value::List(vec![Value::I32(1), Value::I32(2)]));
    m.set_field_by_name("packed", Value::List(vec![Value::I32(3)]));
    m.set_field_by_name("f", Value::F32(f32::NEG_INFINITY));
    m.set_field_by_name("child", Value::Message(DynamicMessage::new(desc.clone())));
    let mut levels = std::collections::HashMap::new();
    levels.insert(
        prost_reflect::MapKey::String("k".into()),
        Value::EnumNumber(2),
    );
    m.set_field_by_name("levels", Value::Map(levels));
    assert_same(&desc, &m.encode_to_vec());
    // A map entry without a value: the enum's first value.
    assert_same(&desc, &[0x6a, 0x03, 0x0a, 0x01, b'k']);
}

#[test]
fn groups_and_extensions_are_left_to_the_reference_path() {
    let pool = pool();
    for (name, bytes) in [
        ("legacy.Extended", vec![0x08, 0x01, 0xa0, 0x06, 0x02]),
        ("legacy.WithGroup", vec![0x0b, 0x10, 0x01, 0x0c]),
    ] {
        let desc = pool.get_message_by_name(name).unwrap();
        let e = decoded(&Decoder::new(&desc, all_options()[0]), &bytes).unwrap_err();
        assert!(e.contains("reference path"), "{e}");
        assert!(reference(&desc, all_options()[0], &bytes).is_ok());
    }
    // An unknown group in a message the decoder reads: refused too.
    let desc = pool.get_message_by_name("rich.Inner").unwrap();
    let e = decoded(
        &Decoder::new(&desc, all_options()[0]),
        &[0xfb, 0x07, 0xfc, 0x07],
    )
    .unwrap_err();
    assert!(e.contains("start-group"), "{e}");
}

#[test]
fn malformed_wire_data_is_an_error_not_a_panic() {
    let pool = pool();
    let desc = pool.get_message_by_name("rich.Rich").unwrap();
    // A varint cut short (the key, then a value).
    assert_refused(&desc, &[0x80], "varint runs past the end");
    assert_refused(&desc, &[0x18, 0xff, 0xff], "varint runs past the end");
    // A varint of 11 bytes.
    assert_refused(
        &desc,
        &[
            0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ],
        "varint longer",
    );
    // A length past the end (a string, a message, a packed run).
    assert_refused(&desc, &[0x72, 0x05, b'a'], "5 bytes announced, 1 left");
    assert_refused(&desc, &[0x92, 0x01, 0x7f, 0x08], "127 bytes announced");
    assert_refused(&desc, &[0xa2, 0x01, 0x03, 0x01], "3 bytes announced");
    // A packed run that ends in the middle of a value.
    assert_refused(&desc, &[0xb2, 0x01, 0x03, 0, 0, 0], "8 bytes announced");
    // The wrong wire type for a field: a string written as a varint, an int as a fixed64.
    assert_refused(
        &desc,
        &[0x70, 0x01],
        "rich.Rich.s: wire type varint where length-delimited was expected",
    );
    assert_refused(
        &desc,
        &[0x19, 0, 0, 0, 0, 0, 0, 0, 0],
        "rich.Rich.i32: wire type 64-bit",
    );
    // A nested message with a bad field, a map entry with the wrong key type.
    assert_refused(&desc, &[0x92, 0x01, 0x02, 0x0a, 0x05], "announced");
    assert_refused(&desc, &[0xf2, 0x01, 0x02, 0x08, 0x01], "wire type varint");
    // Invalid UTF-8 in a string; field number 0; wire types 6 and 7.
    assert_refused(&desc, &[0x72, 0x02, 0xff, 0xfe], "not UTF-8");
    assert_refused(&desc, &[0x00, 0x01], "field number 0");
    assert_refused(&desc, &[0x0e], "invalid wire type 6");
    assert_refused(&desc, &[0x0f], "invalid wire type 7");
    // An end-group with no start.
    assert_refused(&desc, &[0x0c], "wire type end-group");
}

#[test]
fn nesting_is_bounded() {
    let pool = pool();
    let desc = pool.get_message_by_name("rich.Inner").unwrap();
    // Inner.child (4) nested `depth` times.
    let nested = |depth: usize| {
        let mut bytes = Vec::new();
        for _ in 0..depth {
            let mut outer = vec![0x22];
            let mut len = bytes.len();
            while len >= 0x80 {
                outer.push(u8::try_from(len & 0x7f).unwrap() | 0x80);
                len >>= 7;
            }
            outer.push(u8::try_from(len).unwrap());
            outer.extend(bytes);
            bytes = outer;
        }
        bytes
    };
    assert_same(&desc, &nested(100));
    assert_refused(&desc, &nested(101), "deeper than 100");
    // Far deeper: still an error, and no stack overflow.
    assert_refused(&desc, &nested(5000), "deeper than 100");
}

#[test]
fn whatever_the_decoder_accepts_the_reference_path_maps_the_same() {
    let pool = pool();
    let desc = pool.get_message_by_name("rich.Rich").unwrap();
    let bytes = rich(&pool).encode_to_vec();
    let options = all_options();
    let decoders: Vec<Decoder> = [0, 31, 21]
        .iter()
        .map(|&i| Decoder::new(&desc, options[i]))
        .collect();
    // Deterministic mutations: bytes changed, cut out, cut short.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut both_ok, mut both_err) = (0, 0);
    for round in 0..3000 {
        let mut m = bytes.clone();
        let at = usize::try_from(next() % m.len() as u64).unwrap();
        match round % 3 {
            0 => m[at] = u8::try_from(next() & 0xff).unwrap(),
            1 => {
                let end = (at + 1 + usize::try_from(next() % 8).unwrap()).min(m.len());
                m.drain(at..end);
            }
            _ => m.truncate(at),
        }
        for (decoder, &i) in decoders.iter().zip(&[0, 31, 21]) {
            let expected = reference(&desc, options[i], &m);
            match (decoded(decoder, &m), expected) {
                (Ok(got), Ok(expected)) => {
                    assert_eq!(got, expected, "round {round}: {m:?}");
                    both_ok += 1;
                }
                (Ok(got), Err(e)) => panic!(
                    "round {round}: accepted ({got}) what the reference refuses ({e}): {m:?}"
                ),
                (Err(_), Err(_)) => both_err += 1,
                // Stricter than the reference: the executor then takes the reference path.
                (Err(_), Ok(_)) => {}
            }
        }
    }
    assert!(both_ok > 100 && both_err > 100, "{both_ok} {both_err}");
}

#[test]
fn answers_the_decoder_refuses_take_the_reference_path() {
    let pool = pool();
    let options = all_options()[0];
    // Malformed: the reference path's error, named after the answer's type.
    let desc = pool.get_message_by_name("rich.Rich").unwrap();
    let e = Decoder::new(&desc, options)
        .answer(bytes::Bytes::from_static(&[0x72, 0x05, b'a']))
        .unwrap_err();
    assert!(e.starts_with("the answer is not a rich.Rich: "), "{e}");
    // A group: the reference path's JSON.
    let desc = pool.get_message_by_name("legacy.WithGroup").unwrap();
    let bytes: &'static [u8] = &[0x0b, 0x10, 0x01, 0x0c];
    let j = Decoder::new(&desc, options)
        .answer(bytes::Bytes::from_static(bytes))
        .unwrap();
    assert_eq!(
        serde_json::to_string(&j).unwrap(),
        reference(&desc, options, bytes).unwrap()
    );
    assert_eq!(j, json!({"g": {"x": 1}}));
    // Valid: the decoder's own JSON.
    let desc = pool.get_message_by_name("rich.Inner").unwrap();
    let j = Decoder::new(&desc, options)
        .answer(bytes::Bytes::from_static(&[0x0a, 0x01, b'n']))
        .unwrap();
    assert_eq!(
        j,
        json!({"name": "n", "big": 0, "nums": [], "child": null, "color": 0})
    );
}
