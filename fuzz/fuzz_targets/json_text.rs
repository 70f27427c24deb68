//! Differential: the JSON text path (`decode::json_text`, an answer kept as the text its render
//! writes) against decoding and rendering values. Whatever the bytes, when the text path takes
//! a body its text is byte for byte what the values path writes, alone, under a group and
//! merged with itself; it never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use sluice_config::Encoding;
use sluice_transform::{decode, merge, render};

fuzz_target!(|body: &[u8]| {
    let Some(text) = decode::json_text(body) else {
        return;
    };
    let data = decode(Encoding::Json, false, body)
        .expect("the text path takes only documents that decode");
    assert_eq!(text, render::to_json(&data), "text against values");
    let mut grouped = Map::new();
    grouped.insert("g<".to_owned(), Value::Object(data.clone()));
    assert_eq!(
        merge::merge_json_texts([(Some("g<"), text.as_slice())]),
        render::to_json(&grouped),
        "under a group"
    );
    let mut twice = data.clone();
    merge::merge_into(&mut twice, data.clone());
    merge::merge_into(&mut twice, grouped.clone());
    assert_eq!(
        merge::merge_json_texts([
            (None, text.as_slice()),
            (None, text.as_slice()),
            (Some("g<"), text.as_slice())
        ]),
        render::to_json(&twice),
        "merged"
    );
    assert_eq!(decode::json_text_data(None, &text), data, "read back");
});
