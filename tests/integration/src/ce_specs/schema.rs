//! The part of JSON Schema CE's specs use: `type` (one name or a list; `integer` is a number
//! without a fraction), `enum`, `const`, `required`, `properties`, `additionalProperties`
//! (boolean or schema), `items` (one schema), and `true`/`false` schemas. Annotations
//! (`$schema`, `$id`, `$comment`, `title`, `description`, `default`, `examples`) are ignored.
//! Any other keyword is reported as unsupported rather than silently ignored, so a spec that
//! needs more is skipped, not passed.

use serde_json::{Map, Value};

const ANNOTATIONS: [&str; 7] = [
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
];
const SUPPORTED: [&str; 7] = [
    "type",
    "enum",
    "const",
    "required",
    "properties",
    "additionalProperties",
    "items",
];

/// The first keyword of `schema` (searched depth-first) this validator does not implement.
pub fn unsupported_keyword(schema: &Value) -> Option<String> {
    let Value::Object(obj) = schema else {
        return None;
    };
    for (k, v) in obj {
        if ANNOTATIONS.contains(&k.as_str()) {
            continue;
        }
        if !SUPPORTED.contains(&k.as_str()) {
            return Some(k.clone());
        }
        let nested = match (k.as_str(), v) {
            ("properties", Value::Object(props)) => props.values().find_map(unsupported_keyword),
            ("additionalProperties" | "items", sub) => unsupported_keyword(sub),
            _ => None,
        };
        if nested.is_some() {
            return nested;
        }
    }
    None
}

/// Every violation of `schema` by `value`, as `<path>: <what>` (empty when valid). Call
/// [`unsupported_keyword`] first: unknown keywords are ignored here.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "$", &mut errors);
    errors
}

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

fn check(schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let obj: &Map<String, Value> = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            errors.push(format!("{at}: no value is allowed here"));
            return;
        }
        Value::Object(obj) => obj,
        _ => {
            errors.push(format!("{at}: the schema is not an object or a boolean"));
            return;
        }
    };
    if let Some(t) = obj.get("type") {
        let names: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.iter().any(|n| type_matches(n, v)) {
            errors.push(format!("{at}: expected type {t}, found {v}"));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = obj.get("enum")
        && !allowed.iter().any(|a| super::check::json_equal(a, v))
    {
        errors.push(format!(
            "{at}: {v} is not one of {}",
            Value::Array(allowed.clone())
        ));
    }
    if let Some(c) = obj.get("const")
        && !super::check::json_equal(c, v)
    {
        errors.push(format!("{at}: expected {c}, found {v}"));
    }
    if let Value::Object(fields) = v {
        if let Some(Value::Array(required)) = obj.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !fields.contains_key(name) {
                    errors.push(format!("{at}: missing property {name:?}"));
                }
            }
        }
        let props = obj.get("properties").and_then(Value::as_object);
        // Sorted, so the report does not depend on serde_json's map order.
        let sorted: std::collections::BTreeMap<&String, &Value> = fields.iter().collect();
        for (name, fv) in sorted {
            let here = format!("{at}.{name}");
            match props.and_then(|p| p.get(name)) {
                Some(sub) => check(sub, fv, &here, errors),
                None => {
                    if let Some(extra) = obj.get("additionalProperties") {
                        check(extra, fv, &here, errors);
                    }
                }
            }
        }
    }
    if let (Value::Array(items), Some(sub)) = (v, obj.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(sub, item, &format!("{at}[{i}]"), errors);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn health_schema() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "required": ["agents", "now", "status"],
            "properties": {
                "agents": {"type": "object"},
                "now": {"type": "string"},
                "status": {"type": "string", "enum": ["ok"]}
            }
        });
        assert_eq!(unsupported_keyword(&schema), None);
        let ok = json!({"agents": {}, "now": "2024", "status": "ok"});
        assert!(validate(&schema, &ok).is_empty());
        let bad = json!({"agents": [], "status": "ko"});
        assert_eq!(
            validate(&schema, &bad),
            [
                "$: missing property \"now\"",
                "$.agents: expected type \"object\", found []",
                "$.status: \"ko\" is not one of [\"ok\"]",
            ]
        );
    }

    #[test]
    fn integers_items_additional() {
        let schema = json!({"type": "object", "additionalProperties": false,
            "properties": {"n": {"type": "integer"}, "l": {"type": "array", "items": {"type": ["string", "null"]}}}});
        assert!(validate(&schema, &json!({"n": 42.0, "l": ["a", null]})).is_empty());
        assert_eq!(
            validate(&schema, &json!({"n": 4.5, "l": [1], "x": 1})),
            [
                "$.l[0]: expected type [\"string\",\"null\"], found 1",
                "$.n: expected type \"integer\", found 4.5",
                "$.x: no value is allowed here",
            ]
        );
    }

    #[test]
    fn names_what_it_cannot_check() {
        let schema = json!({"properties": {"a": {"pattern": "^x"}}});
        assert_eq!(unsupported_keyword(&schema).as_deref(), Some("pattern"));
    }
}
