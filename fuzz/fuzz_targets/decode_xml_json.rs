//! Decodes arbitrary bytes with every backend encoding, then renders whatever decoded: nothing may
//! panic, and the JSON render must read back as the same data.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sluice_config::Encoding;
use sluice_transform::{decode, render};

const ENCODINGS: [Encoding; 5] = [
    Encoding::Json,
    Encoding::SafeJson,
    Encoding::String,
    Encoding::Xml,
    Encoding::NoOp,
];

fuzz_target!(|body: &[u8]| {
    for encoding in ENCODINGS {
        for is_collection in [false, true] {
            let Ok(data) = decode(encoding, is_collection, body) else {
                continue;
            };
            let json = render::to_json(&data);
            let back: Value = serde_json::from_slice(&json).expect("the JSON render is JSON");
            assert_eq!(back, Value::Object(data.clone()), "JSON render round trip");
            let _ = render::to_xml(&data);
            let _ = render::to_yaml(&data);
            let _ = render::to_json_collection(&data);
            let _ = render::to_string_content(&data);
        }
    }
});
