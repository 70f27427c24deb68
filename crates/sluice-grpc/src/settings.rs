//! A gRPC backend's settings, KrakenD Enterprise's `backend/grpc` schema (v2.12), read
//! strictly: every key is applied or refused, never ignored.
//!
//! | key | Sluice |
//! |---|---|
//! | `input_mapping` | applied: renames of params and query keys to dotted field paths |
//! | `use_request_body` | applied: the JSON body fills the message (before params and query) |
//! | `disable_query_params` | applied: neither params nor query fill the message |
//! | `header_mapping` | applied: renames of forwarded headers to metadata keys |
//! | `output_enum_as_string` | applied (default: numbers, as KrakenD) |
//! | `output_timestamp_as_string` | applied (default: `{"seconds", "nanos"}`, as KrakenD) |
//! | `output_duration_as_string` | applied (default: `{"seconds", "nanos"}`, as KrakenD) |
//! | `output_remove_unset_values` | applied (default: unset fields are written with their zero value) |
//! | `request_naming_convention` | applied: `snake_case` (proto names, case-insensitive) or `camelCase` (JSON names); both are always accepted |
//! | `response_naming_convention` | applied: `snake_case` (proto names, 64-bit integers as numbers) or `camelCase` (JSON names, 64-bit integers as strings, as protojson) |
//! | `input_assume_bytes` | applied: a `bytes` input is base64 if it decodes, else the text as is |
//! | `idle_conn_disconnect_time` | applied: idle connections are closed after it (default 10m) |
//! | `use_alternate_host_on_error` | applied: a call that cannot connect (or answers UNAVAILABLE) is tried once on each other host, within the deadline |
//! | `read_buffer_size` | accepted, no effect: hyper sizes its own read buffers |
//! | `client_tls` | applied: read by `sluice-config` as the backend's TLS settings (as `backend/http/client`'s); `https` hosts use TLS with them (the service's `client_tls` otherwise), `http` hosts h2c |

use std::time::Duration;

use http::HeaderName;
use serde_json::{Map, Value};

/// Field names of requests and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// The `.proto` field names (`departure_time`): KrakenD's default.
    SnakeCase,
    /// The JSON names (`departureTime`), as the protobuf JSON mapping writes them.
    CamelCase,
}

/// Parsed settings of one gRPC backend.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `input_mapping`, in the order written: (input key, dotted field path).
    pub input_mapping: Vec<(String, String)>,
    /// `use_request_body`.
    pub use_request_body: bool,
    /// `disable_query_params`.
    pub disable_query_params: bool,
    /// `header_mapping`: (forwarded header, metadata key).
    pub header_mapping: Vec<(HeaderName, HeaderName)>,
    /// `output_enum_as_string`.
    pub output_enum_as_string: bool,
    /// `output_timestamp_as_string`.
    pub output_timestamp_as_string: bool,
    /// `output_duration_as_string`.
    pub output_duration_as_string: bool,
    /// `output_remove_unset_values`.
    pub output_remove_unset_values: bool,
    /// `request_naming_convention`.
    pub request_naming: Naming,
    /// `response_naming_convention`.
    pub response_naming: Naming,
    /// `input_assume_bytes`.
    pub input_assume_bytes: bool,
    /// `idle_conn_disconnect_time`.
    pub idle_timeout: Duration,
    /// `use_alternate_host_on_error`.
    pub use_alternate_host_on_error: bool,
}

const KNOWN: &[&str] = &[
    "input_mapping",
    "use_request_body",
    "disable_query_params",
    "header_mapping",
    "output_enum_as_string",
    "output_timestamp_as_string",
    "output_duration_as_string",
    "output_remove_unset_values",
    "request_naming_convention",
    "response_naming_convention",
    "input_assume_bytes",
    "idle_conn_disconnect_time",
    "use_alternate_host_on_error",
    "read_buffer_size",
    "client_tls",
];

/// KrakenD's default for `idle_conn_disconnect_time`.
const DEFAULT_IDLE: Duration = Duration::from_secs(600);

impl Settings {
    /// Reads the settings object at `path` (absent: every default). Every problem is returned
    /// as (JSON path, message).
    pub fn parse(value: Option<&Value>, path: &str) -> Result<Self, Vec<(String, String)>> {
        let mut settings = Settings {
            input_mapping: Vec::new(),
            use_request_body: false,
            disable_query_params: false,
            header_mapping: Vec::new(),
            output_enum_as_string: false,
            output_timestamp_as_string: false,
            output_duration_as_string: false,
            output_remove_unset_values: false,
            request_naming: Naming::SnakeCase,
            response_naming: Naming::SnakeCase,
            input_assume_bytes: false,
            idle_timeout: DEFAULT_IDLE,
            use_alternate_host_on_error: false,
        };
        let empty = Map::new();
        let map = match value {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(vec![(
                    path.to_owned(),
                    format!("expected an object, found {}", kind(other)),
                )]);
            }
        };
        let mut errors = Vec::new();
        let at = |key: &str| key_path(path, key);
        for key in map.keys() {
            if KNOWN.contains(&key.as_str()) || key.starts_with(['@', '$', '_', '#']) {
                continue;
            }
            let hint = match key.as_str() {
                "idle_timeout" => " (KrakenD's name for it is \"idle_conn_disconnect_time\")",
                _ => "",
            };
            errors.push((
                at(key),
                format!(
                    "field {key:?} is not a gRPC backend setting (it would be ignored){hint}; \
                     expected one of {}",
                    KNOWN.join(", ")
                ),
            ));
        }
        let mut flag = |key: &str, slot: &mut bool| match map.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => *slot = *b,
            Some(other) => errors.push((
                at(key),
                format!("expected true or false, found {}", kind(other)),
            )),
        };
        flag("use_request_body", &mut settings.use_request_body);
        flag("disable_query_params", &mut settings.disable_query_params);
        flag("output_enum_as_string", &mut settings.output_enum_as_string);
        flag(
            "output_timestamp_as_string",
            &mut settings.output_timestamp_as_string,
        );
        flag(
            "output_duration_as_string",
            &mut settings.output_duration_as_string,
        );
        flag(
            "output_remove_unset_values",
            &mut settings.output_remove_unset_values,
        );
        flag("input_assume_bytes", &mut settings.input_assume_bytes);
        flag(
            "use_alternate_host_on_error",
            &mut settings.use_alternate_host_on_error,
        );

        for (key, slot) in [
            ("request_naming_convention", &mut settings.request_naming),
            ("response_naming_convention", &mut settings.response_naming),
        ] {
            match map.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s == "snake_case" => *slot = Naming::SnakeCase,
                Some(Value::String(s)) if s == "camelCase" => *slot = Naming::CamelCase,
                Some(other) => errors.push((
                    at(key),
                    format!("expected \"snake_case\" or \"camelCase\", found {other}"),
                )),
            }
        }

        match map.get("input_mapping") {
            None | Some(Value::Null) => {}
            Some(Value::Object(mapping)) => {
                for (from, to) in mapping {
                    match to {
                        Value::String(to) if !to.is_empty() => {
                            settings.input_mapping.push((from.clone(), to.clone()));
                        }
                        other => errors.push((
                            key_path(&at("input_mapping"), from),
                            format!(
                                "expected the dotted path of a field of the input message, found {}",
                                kind(other)
                            ),
                        )),
                    }
                }
            }
            Some(other) => errors.push((
                at("input_mapping"),
                format!("expected an object, found {}", kind(other)),
            )),
        }

        match map.get("header_mapping") {
            None | Some(Value::Null) => {}
            Some(Value::Object(mapping)) => {
                for (from, to) in mapping {
                    let here = key_path(&at("header_mapping"), from);
                    let Ok(from_name) = HeaderName::from_bytes(from.as_bytes()) else {
                        errors.push((here, format!("{from:?} is not a header name")));
                        continue;
                    };
                    match to {
                        Value::String(to) => match HeaderName::from_bytes(to.as_bytes()) {
                            Ok(to_name) => settings.header_mapping.push((from_name, to_name)),
                            Err(_) => {
                                errors.push((here, format!("{to:?} is not a valid metadata key")))
                            }
                        },
                        other => errors.push((
                            here,
                            format!("expected a metadata key, found {}", kind(other)),
                        )),
                    }
                }
            }
            Some(other) => errors.push((
                at("header_mapping"),
                format!("expected an object, found {}", kind(other)),
            )),
        }

        match map.get("idle_conn_disconnect_time") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => match sluice_config::parse_duration(s) {
                Ok(d) if d.is_zero() => {}
                Ok(d) => settings.idle_timeout = d,
                Err(e) => errors.push((at("idle_conn_disconnect_time"), e)),
            },
            Some(other) => errors.push((
                at("idle_conn_disconnect_time"),
                format!(
                    "expected a duration string like \"10m\", found {}",
                    kind(other)
                ),
            )),
        }

        match map.get("read_buffer_size") {
            None | Some(Value::Null) | Some(Value::Number(_)) => {}
            Some(other) => errors.push((
                at("read_buffer_size"),
                format!("expected a number of bytes, found {}", kind(other)),
            )),
        }

        // `backend/grpc.client_tls` is read by the config as the backend's TLS settings; in
        // the plugin form nothing reads it there, so it is refused rather than ignored.
        if map.get("client_tls").is_some_and(|v| !v.is_null())
            && !path.contains("[\"backend/grpc\"]")
        {
            errors.push((
                at("client_tls"),
                "is read in extra_config[\"backend/grpc\"] only: with the plugin form, set the \
                 backend's TLS in extra_config[\"backend/http/client\"].client_tls"
                    .to_owned(),
            ));
        }

        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }
}

/// What a JSON value is, with its article.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(s) if s.is_empty() => "an empty string",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `parent.key`, or `parent["key"]` for keys that are not identifiers (as sluice-config writes
/// JSON paths).
pub(crate) fn key_path(parent: &str, key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!("{parent}.{key}")
    } else {
        format!("{parent}[{}]", Value::from(key))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_fields() {
        let s = Settings::parse(None, "p").unwrap();
        assert_eq!(s.idle_timeout, DEFAULT_IDLE);
        assert_eq!(s.response_naming, Naming::SnakeCase);
        let v = json!({"input_mapping": {"Origin": "where.from"}, "use_request_body": true,
            "header_mapping": {"X-Tenant": "customerid"}, "response_naming_convention": "camelCase",
            "idle_conn_disconnect_time": "1m", "read_buffer_size": 8192, "@comment": "x"});
        let s = Settings::parse(Some(&v), "p").unwrap();
        assert_eq!(
            s.input_mapping,
            vec![("Origin".into(), "where.from".into())]
        );
        assert!(s.use_request_body);
        assert_eq!(s.header_mapping[0].1, "customerid");
        assert_eq!(s.response_naming, Naming::CamelCase);
        assert_eq!(s.idle_timeout, Duration::from_secs(60));
    }

    #[test]
    fn every_problem_with_its_path() {
        let v = json!({"idle_timeout": "1m", "use_request_body": "yes",
            "input_mapping": {"a b": 3}, "client_tls": {}, "response_naming_convention": "kebab"});
        let errors = Settings::parse(Some(&v), "b").unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "b.idle_timeout",
                "b.use_request_body",
                "b.response_naming_convention",
                "b.input_mapping[\"a b\"]",
                "b.client_tls"
            ]
        );
        assert!(errors[0].1.contains("idle_conn_disconnect_time"));
    }
}
