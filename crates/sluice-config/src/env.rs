//! KrakenD's service overrides from the environment: a root value of the config that is a string,
//! a number or a boolean is replaced by `KRAKEND_<KEY>` (the key in upper case: `KRAKEND_PORT`,
//! `KRAKEND_CACHE_TTL`), and by Sluice's own `SLUICE_<KEY>`, which wins when both are set.
//!
//! As KrakenD documents, a variable only overrides a key the config already has: `KRAKEND_PORT`
//! does nothing to a config without `port` (so `KRAKEND_FILE`, `KRAKEND_AUDIT_IGNORE` and the
//! `KRAKEND_SERVICE_HOST`... that Kubernetes sets are no concern). The value must fit the type
//! the config wrote: a whole number for an integer (`KRAKEND_PORT=tcp://10.0.0.1:8080`, which
//! Kubernetes sets for a Service named `krakend`, is an error naming the variable), Go's boolean
//! words for a boolean; a string takes any value.

use std::path::Path;

use serde_json::Value;

use crate::diagnostics::Diagnostic;
use crate::formats::number_from_text;
use crate::model::{EnvOverride, Environment};
use crate::read::{key_path, kind, quote};

/// The prefixes, the first one winning.
const PREFIXES: [&str; 2] = ["SLUICE_", "KRAKEND_"];

/// Applies the overrides to the root of `root`; each variable whose value does not fit is a
/// diagnostic (and the config keeps its own value).
pub(crate) fn apply(
    root: &mut Value,
    env: &Environment,
    source: &Path,
) -> (Vec<EnvOverride>, Vec<Diagnostic>) {
    let mut applied = Vec::new();
    let mut errors = Vec::new();
    let Value::Object(map) = root else {
        return (applied, errors);
    };
    for (key, value) in map.iter_mut() {
        let overridable = matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_));
        let plain_key = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !overridable || !plain_key {
            continue;
        }
        let Some((variable, text)) = PREFIXES.iter().find_map(|prefix| {
            let variable = format!("{prefix}{}", key.to_ascii_uppercase());
            env.get(&variable).map(|text| (variable, text))
        }) else {
            continue;
        };
        match parse_like(value, text) {
            Ok(new) => {
                *value = new;
                applied.push(EnvOverride {
                    key: key.clone(),
                    variable,
                });
            }
            Err(expected) => {
                let hint = if text.starts_with("tcp://") {
                    format!(
                        "; Kubernetes sets {variable} to tcp://HOST:PORT for a Service named \
                         {}: rename the Service, set enableServiceLinks: false on the pod, or \
                         set SLUICE_{} (which wins)",
                        variable
                            .split('_')
                            .next()
                            .unwrap_or_default()
                            .to_ascii_lowercase(),
                        key.to_ascii_uppercase()
                    )
                } else {
                    String::new()
                };
                errors.push(Diagnostic::new(
                    source,
                    key_path("", key),
                    format!(
                        "the environment variable {variable}={} cannot override it: the \
                         config has {} here, so {expected} is expected{hint}",
                        quote(text),
                        kind(value)
                    ),
                ));
            }
        }
    }
    (applied, errors)
}

/// `text` as a value of the type of `like`, or what was expected.
fn parse_like(like: &Value, text: &str) -> Result<Value, &'static str> {
    match like {
        Value::Bool(_) => match text {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
            _ => Err("true or false (or 1, 0, t, f)"),
        },
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                return Err("a whole number");
            }
            let trimmed = digits.trim_start_matches('0');
            let normalized = match (text.starts_with('-'), trimmed.is_empty()) {
                (_, true) => "0".to_owned(),
                (true, false) => format!("-{trimmed}"),
                (false, false) => trimmed.to_owned(),
            };
            number_from_text(&normalized)
                .map(Value::Number)
                .ok_or("a whole number")
        }
        Value::Number(_) => number_from_text(text).map(Value::Number).ok_or("a number"),
        _ => Ok(Value::String(text.to_owned())),
    }
}

/// Says, on each problem with an overridden key, which variable the value came from.
pub(crate) fn annotate(errors: &mut [Diagnostic], overrides: &[EnvOverride]) {
    for error in errors {
        if let Some(o) = overrides
            .iter()
            .find(|o| key_path("", &o.key) == error.path)
        {
            error.message.push_str(&format!(
                " (the value comes from the environment variable {})",
                o.variable
            ));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(mut root: Value, vars: &[(&str, &str)]) -> (Value, Vec<EnvOverride>, Vec<String>) {
        let env: Environment = vars.iter().copied().collect();
        let (applied, errors) = apply(&mut root, &env, Path::new("k.json"));
        (
            root,
            applied,
            errors.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn overrides_root_scalars_that_exist() {
        let (root, applied, errors) = run(
            json!({"port": 8080, "timeout": "2s", "debug_endpoint": false, "name": "a",
                   "host": ["h"], "extra_config": {}}),
            &[
                ("KRAKEND_PORT", "9000"),
                ("KRAKEND_TIMEOUT", "500ms"),
                ("KRAKEND_DEBUG_ENDPOINT", "true"),
                ("KRAKEND_HOST", "x"),
                ("KRAKEND_EXTRA_CONFIG", "{}"),
                ("KRAKEND_CACHE_TTL", "3s"),
                ("KRAKEND_SERVICE_HOST", "10.0.0.1"),
            ],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(root["port"].as_u64(), Some(9000));
        assert_eq!(root["timeout"], json!("500ms"));
        assert_eq!(root["debug_endpoint"], json!(true));
        assert_eq!(root["host"], json!(["h"]), "not a scalar: untouched");
        assert_eq!(root.get("cache_ttl"), None, "absent: not added");
        let keys: Vec<_> = applied.iter().map(|o| o.variable.as_str()).collect();
        assert_eq!(
            keys,
            ["KRAKEND_DEBUG_ENDPOINT", "KRAKEND_PORT", "KRAKEND_TIMEOUT"]
        );
    }

    #[test]
    fn sluice_prefix_wins() {
        let (root, applied, errors) = run(
            json!({"port": 8080}),
            &[
                ("KRAKEND_PORT", "tcp://10.0.0.1:8080"),
                ("SLUICE_PORT", "9001"),
            ],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(root["port"].as_u64(), Some(9001));
        assert_eq!(applied[0].variable, "SLUICE_PORT");
    }

    #[test]
    fn a_value_of_the_wrong_type_names_the_variable() {
        let (root, _, errors) = run(
            json!({"port": 8080, "use_h2c": true}),
            &[
                ("KRAKEND_PORT", "tcp://10.0.0.1:8080"),
                ("SLUICE_USE_H2C", "yes"),
            ],
        );
        assert_eq!(root["port"].as_u64(), Some(8080), "kept");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "k.json: port: the environment variable KRAKEND_PORT=\"tcp://10.0.0.1:8080\" \
                 cannot override it: the config has a number here, so a whole number is expected"
            ),
            "{errors:?}"
        );
        assert!(errors[0].contains("Service named krakend"), "{errors:?}");
        assert!(
            errors[1].contains("SLUICE_USE_H2C=\"yes\"") && errors[1].contains("true or false"),
            "{errors:?}"
        );
    }

    #[test]
    fn numbers_and_booleans_as_go_reads_them() {
        assert_eq!(parse_like(&json!(1), "007"), Ok(json!(7)));
        assert_eq!(parse_like(&json!(1), "-0"), Ok(json!(0)));
        assert!(parse_like(&json!(1), "").is_err());
        assert!(parse_like(&json!(1), "1.5").is_err());
        assert_eq!(parse_like(&json!(1.5), "2.50").unwrap().to_string(), "2.50");
        assert_eq!(parse_like(&json!(false), "T"), Ok(json!(true)));
        assert_eq!(parse_like(&json!(true), "0"), Ok(json!(false)));
        assert!(parse_like(&json!(true), "on").is_err());
        assert_eq!(parse_like(&json!("a"), ""), Ok(json!("")));
    }

    #[test]
    fn annotates_problems_with_the_variable() {
        let mut errors = vec![
            Diagnostic::new(Path::new("k.json"), "port", "too big"),
            Diagnostic::new(Path::new("k.json"), "endpoints[0]", "bad"),
        ];
        annotate(
            &mut errors,
            &[EnvOverride {
                key: "port".into(),
                variable: "KRAKEND_PORT".into(),
            }],
        );
        assert_eq!(
            errors[0].message,
            "too big (the value comes from the environment variable KRAKEND_PORT)"
        );
        assert_eq!(errors[1].message, "bad");
    }
}
