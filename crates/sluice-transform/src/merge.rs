//! Combining the answers of several backends (`proxy/merging.go`) and the static response
//! (`proxy/static.go`).

use serde_json::{Map, Value};
use sluice_config::StaticStrategy;

/// Merges a later answer into the combined data: its top-level keys overwrite those of `base`
/// (shallow; a nested object under the same key is replaced, not merged).
pub fn merge_into(base: &mut Map<String, Value>, other: Map<String, Value>) {
    if base.is_empty() {
        *base = other;
    } else {
        base.extend(other);
    }
}

/// [`merge_into`] for data kept as JSON text ([`crate::decode::json_text`]), each under its
/// group if it has one: the parts in the order they arrived, merged into one text.
pub fn merge_json_texts<'a>(
    parts: impl IntoIterator<Item = (Option<&'a str>, &'a [u8])>,
) -> Vec<u8> {
    crate::decode::merge_canonical(parts)
}

/// Puts the static data on top of the response data, overwriting keys with the same name.
pub fn apply_static(data: &mut Map<String, Value>, static_data: &Map<String, Value>) {
    for (key, value) in static_data {
        data.insert(key.clone(), value.clone());
    }
}

/// Whether the static data applies to a result: `has_error` when the pipe returned an error,
/// `has_response` when it returned a response at all, `complete` when that response is complete.
///
/// `always`: always; `success`: no error; `errored`: an error; `complete`: no error and a complete
/// response; `incomplete`: no response or an incomplete one.
pub fn static_applies(
    strategy: StaticStrategy,
    has_error: bool,
    has_response: bool,
    complete: bool,
) -> bool {
    match strategy {
        StaticStrategy::Always => true,
        StaticStrategy::Success => !has_error,
        StaticStrategy::Errored => has_error,
        StaticStrategy::Complete => !has_error && has_response && complete,
        StaticStrategy::Incomplete => !has_response || !complete,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn merge_is_shallow_last_wins() {
        let mut base = obj(json!({"a": 1, "n": {"x": 1, "y": 2}, "keep": true}));
        merge_into(&mut base, obj(json!({"a": 2, "n": {"z": 3}, "new": null})));
        assert_eq!(
            Value::Object(base),
            json!({"a": 2, "n": {"z": 3}, "keep": true, "new": null})
        );
        let mut empty = Map::new();
        merge_into(&mut empty, obj(json!({"a": 1})));
        assert_eq!(Value::Object(empty), json!({"a": 1}));
    }

    /// Merging JSON texts writes what merging the maps and rendering them writes.
    #[test]
    fn json_texts_merge_as_maps_do() {
        let parts = [
            json!({"a": 1, "n": {"x": 1, "y": 2}, "keep": true, "<": "&"}),
            json!({}),
            json!({"a": 2, "n": {"z": 3}, "new": null, "\"q\"": [1, {"b": 2}]}),
            json!({"a": 3, "\u{2028}": "x"}),
        ];
        let texts: Vec<Vec<u8>> = parts
            .iter()
            .map(|part| crate::render::to_json(&obj(part.clone())))
            .collect();
        for n in 0..=texts.len() {
            let mut merged = Map::new();
            for part in &parts[..n] {
                merge_into(&mut merged, obj(part.clone()));
            }
            assert_eq!(
                String::from_utf8(merge_json_texts(
                    texts[..n].iter().map(|text| (None, text.as_slice()))
                ))
                .unwrap(),
                String::from_utf8(crate::render::to_json(&merged)).unwrap()
            );
        }
        // Under groups (a group is one member), beside and over ungrouped members.
        let grouped = merge_json_texts([
            (Some("z"), texts[1].as_slice()),
            (None, texts[0].as_slice()),
            (Some("<"), texts[3].as_slice()),
            (Some("a"), texts[0].as_slice()),
        ]);
        let mut merged = Map::new();
        merge_into(&mut merged, obj(json!({"z": {}})));
        merge_into(&mut merged, obj(parts[0].clone()));
        merge_into(&mut merged, obj(json!({"<": parts[3].clone()})));
        merge_into(&mut merged, obj(json!({"a": parts[0].clone()})));
        assert_eq!(
            String::from_utf8(grouped).unwrap(),
            String::from_utf8(crate::render::to_json(&merged)).unwrap()
        );
    }

    #[test]
    fn case_56_sequential_grouped_merge() {
        let mut merged = obj(json!({"first": {"path": "/provider/foo", "random": 42}}));
        merge_into(
            &mut merged,
            obj(json!({"second": {"path": "/recipient/42", "random": 42}})),
        );
        assert_eq!(
            String::from_utf8(crate::render::to_json(&merged)).unwrap(),
            r#"{"first":{"path":"/provider/foo","random":42},"second":{"path":"/recipient/42","random":42}}"#
        );
    }

    #[test]
    fn static_overwrites() {
        let mut data = obj(json!({"foo": 1, "other": "x"}));
        apply_static(&mut data, &obj(json!({"foo": 42, "bar": "foobar"})));
        assert_eq!(
            Value::Object(data),
            json!({"foo": 42, "bar": "foobar", "other": "x"})
        );
    }

    #[test]
    fn case_53_static_always_after_deny() {
        // Backend {"message":"pong"} with deny [message], then static always {foo:42, bar:"foobar"}.
        let formatter = crate::format::EntityFormatter::new(
            None,
            &[],
            &["message".to_owned()],
            &Default::default(),
            None,
            &[],
        );
        let mut data = formatter.format(obj(json!({"message": "pong"})));
        assert!(static_applies(StaticStrategy::Always, false, true, true));
        apply_static(&mut data, &obj(json!({"foo": 42, "bar": "foobar"})));
        assert_eq!(
            String::from_utf8(crate::render::to_json(&data)).unwrap(),
            r#"{"bar":"foobar","foo":42}"#
        );
    }

    #[test]
    fn case_54_static_incomplete_on_partial() {
        let mut data = obj(json!({"email": "some@email.com", "name": "a"}));
        assert!(static_applies(
            StaticStrategy::Incomplete,
            true,
            true,
            false
        ));
        apply_static(&mut data, &obj(json!({"foo": 42, "bar": "foobar"})));
        assert_eq!(
            String::from_utf8(crate::render::to_json(&data)).unwrap(),
            r#"{"bar":"foobar","email":"some@email.com","foo":42,"name":"a"}"#
        );
    }

    #[test]
    fn strategies() {
        use StaticStrategy::*;
        // (has_error, has_response, complete)
        let cases = [
            (false, true, true),
            (false, true, false),
            (true, true, false),
            (true, false, false),
            (false, false, false),
        ];
        let expect = |strategy| cases.map(|(e, r, c)| static_applies(strategy, e, r, c));
        assert_eq!(expect(Always), [true, true, true, true, true]);
        assert_eq!(expect(Success), [true, true, false, false, true]);
        assert_eq!(expect(Errored), [false, false, true, true, false]);
        assert_eq!(expect(Complete), [true, false, false, false, false]);
        assert_eq!(expect(Incomplete), [false, true, true, true, true]);
    }
}
