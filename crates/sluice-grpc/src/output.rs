//! A backend's answer as JSON: the protobuf JSON mapping, with KrakenD Enterprise's switches.
//!
//! - Field names: the `.proto` names (`snake_case`, KrakenD's default) or the JSON names
//!   (`camelCase`).
//! - 64-bit integers: numbers under `snake_case` (as KrakenD's Go `encoding/json` writes
//!   them), strings under `camelCase` (as the protobuf JSON mapping does). Numbers keep every
//!   digit either way.
//! - Enums: numbers, or names with `output_enum_as_string`.
//! - `Timestamp` and `Duration`: `{"seconds", "nanos"}`, or RFC 3339 and `"1.5s"` with
//!   `output_timestamp_as_string` / `output_duration_as_string`.
//! - Unset fields: written with their zero value (`null` for a message, `[]`, `{}`), unless
//!   `output_remove_unset_values`; an unset member of a `oneof` is never written.
//! - `Struct`, `Value`, `ListValue`, the wrappers, `Any`, `FieldMask` and `Empty`: always
//!   their protobuf JSON form (an `Any` whose type is not in the catalog is
//!   `{"@type", "value": base64}`).
//! - `bytes`: base64; non-finite floats: `"NaN"`, `"Infinity"`, `"-Infinity"`.

use base64::Engine as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage as _,
    Value as Proto,
};
use serde_json::{Map, Number, Value as Json};

use crate::settings::{Naming, Settings};

/// How answers are written, from the backend's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutputOptions {
    pub(crate) naming: Naming,
    pub(crate) enum_as_string: bool,
    pub(crate) timestamp_as_string: bool,
    pub(crate) duration_as_string: bool,
    pub(crate) remove_unset: bool,
}

impl OutputOptions {
    pub(crate) fn new(settings: &Settings) -> Self {
        Self {
            naming: settings.response_naming,
            enum_as_string: settings.output_enum_as_string,
            timestamp_as_string: settings.output_timestamp_as_string,
            duration_as_string: settings.output_duration_as_string,
            remove_unset: settings.output_remove_unset_values,
        }
    }

    /// A message as JSON.
    pub(crate) fn message(&self, message: &DynamicMessage) -> Json {
        let descriptor = message.descriptor();
        match descriptor.full_name() {
            "google.protobuf.Timestamp" if self.timestamp_as_string => {
                let (s, n) = seconds_nanos(message);
                return crate::wkt::format_timestamp(s, n).map_or(Json::Null, Json::String);
            }
            "google.protobuf.Duration" if self.duration_as_string => {
                let (s, n) = seconds_nanos(message);
                return crate::wkt::format_duration(s, n).map_or(Json::Null, Json::String);
            }
            "google.protobuf.Struct" => return self.struct_json(message),
            "google.protobuf.Value" => return self.value_json(message),
            "google.protobuf.ListValue" => return self.list_json(message),
            "google.protobuf.Empty" => return Json::Object(Map::new()),
            "google.protobuf.FieldMask" => {
                let paths = match message.get_field_by_name("paths").as_deref() {
                    Some(Proto::List(items)) => items
                        .iter()
                        .filter_map(|p| p.as_str().map(camel_case))
                        .collect::<Vec<_>>()
                        .join(","),
                    _ => String::new(),
                };
                return Json::String(paths);
            }
            "google.protobuf.Any" => return self.any_json(message),
            name if is_wrapper(name) => {
                return match descriptor.get_field_by_name("value") {
                    Some(field) => self.single(&field.kind(), &message.get_field(&field)),
                    None => Json::Null,
                };
            }
            _ => {}
        }
        let mut object = Map::new();
        for field in descriptor.fields() {
            let set = message.has_field(&field);
            if !set && (self.remove_unset || field.containing_oneof().is_some()) {
                continue;
            }
            let key = match self.naming {
                Naming::SnakeCase => field.name(),
                Naming::CamelCase => field.json_name(),
            };
            let value = if !set
                && matches!(field.kind(), Kind::Message(_))
                && !field.is_list()
                && !field.is_map()
            {
                Json::Null
            } else {
                self.field(&field, &message.get_field(&field))
            };
            object.insert(key.to_owned(), value);
        }
        Json::Object(object)
    }

    fn field(&self, field: &FieldDescriptor, value: &Proto) -> Json {
        match value {
            Proto::List(items) => {
                let kind = field.kind();
                Json::Array(items.iter().map(|item| self.single(&kind, item)).collect())
            }
            Proto::Map(entries) => {
                let value_kind = match field.kind() {
                    Kind::Message(entry) => entry.map_entry_value_field().kind(),
                    other => other,
                };
                let mut object = Map::new();
                for (key, value) in entries {
                    object.insert(map_key(key), self.single(&value_kind, value));
                }
                Json::Object(object)
            }
            single => self.single(&field.kind(), single),
        }
    }

    fn single(&self, kind: &Kind, value: &Proto) -> Json {
        match value {
            Proto::Bool(b) => Json::Bool(*b),
            Proto::I32(n) => Json::Number((*n).into()),
            Proto::U32(n) => Json::Number((*n).into()),
            Proto::I64(n) => self.int64(n.to_string(), Number::from(*n)),
            Proto::U64(n) => self.int64(n.to_string(), Number::from(*n)),
            Proto::F32(f) => float(f64::from(*f), || f.to_string()),
            Proto::F64(f) => float(*f, || f.to_string()),
            Proto::String(s) => Json::String(s.clone()),
            Proto::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Proto::EnumNumber(n) => {
                if let Kind::Enum(e) = kind {
                    if e.full_name() == "google.protobuf.NullValue" {
                        return Json::Null;
                    }
                    if self.enum_as_string
                        && let Some(v) = e.get_value(*n)
                    {
                        return Json::String(v.name().to_owned());
                    }
                }
                Json::Number((*n).into())
            }
            Proto::Message(m) => self.message(m),
            Proto::List(items) => Json::Array(items.iter().map(|i| self.single(kind, i)).collect()),
            Proto::Map(entries) => Json::Object(
                entries
                    .iter()
                    .map(|(k, v)| (map_key(k), self.single(kind, v)))
                    .collect(),
            ),
        }
    }

    fn int64(&self, text: String, number: Number) -> Json {
        match self.naming {
            Naming::SnakeCase => Json::Number(number),
            Naming::CamelCase => Json::String(text),
        }
    }

    fn struct_json(&self, message: &DynamicMessage) -> Json {
        let mut object = Map::new();
        if let Some(Proto::Map(fields)) = message.get_field_by_name("fields").as_deref() {
            for (k, v) in fields {
                if let Proto::Message(value) = v {
                    object.insert(map_key(k), self.value_json(value));
                }
            }
        }
        Json::Object(object)
    }

    fn list_json(&self, message: &DynamicMessage) -> Json {
        match message.get_field_by_name("values").as_deref() {
            Some(Proto::List(items)) => Json::Array(
                items
                    .iter()
                    .map(|item| match item {
                        Proto::Message(value) => self.value_json(value),
                        _ => Json::Null,
                    })
                    .collect(),
            ),
            _ => Json::Array(Vec::new()),
        }
    }

    fn value_json(&self, message: &DynamicMessage) -> Json {
        // A Value holds one member of its oneof `kind` (none: null).
        match message.fields().next() {
            Some((field, value)) => match (field.name(), value) {
                ("bool_value", Proto::Bool(b)) => Json::Bool(*b),
                ("number_value", Proto::F64(f)) => float(*f, || f.to_string()),
                ("string_value", Proto::String(s)) => Json::String(s.clone()),
                ("struct_value", Proto::Message(m)) => self.struct_json(m),
                ("list_value", Proto::Message(m)) => self.list_json(m),
                _ => Json::Null,
            },
            None => Json::Null,
        }
    }

    fn any_json(&self, message: &DynamicMessage) -> Json {
        let url = message
            .get_field_by_name("type_url")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let bytes = message
            .get_field_by_name("value")
            .and_then(|v| v.as_bytes().cloned())
            .unwrap_or_default();
        self.any(message.descriptor().parent_pool(), &url, &bytes)
    }

    /// An `Any` of `type_url` `url` holding `bytes`: the payload's fields beside `@type` (its
    /// JSON under `value` for a type whose JSON is not an object of its fields), or the bytes
    /// in base64 under `value` when the catalog does not know the type or they do not decode.
    pub(crate) fn any(&self, pool: &DescriptorPool, url: &str, bytes: &[u8]) -> Json {
        let name = url.rsplit('/').next().unwrap_or(url);
        let mut object = Map::new();
        object.insert("@type".to_owned(), Json::String(url.to_owned()));
        let inner = pool
            .get_message_by_name(name)
            .and_then(|d| DynamicMessage::decode(d, bytes).ok());
        match inner {
            Some(inner) => match self.message(&inner) {
                Json::Object(fields) if !special_json(inner.descriptor().full_name()) => {
                    object.extend(fields);
                }
                other => {
                    object.insert("value".to_owned(), other);
                }
            },
            None => {
                object.insert(
                    "value".to_owned(),
                    Json::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
                );
            }
        }
        Json::Object(object)
    }
}

fn seconds_nanos(message: &DynamicMessage) -> (i64, i32) {
    let seconds = message
        .get_field_by_name("seconds")
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    let nanos = message
        .get_field_by_name("nanos")
        .and_then(|v| v.as_i32())
        .unwrap_or(0);
    (seconds, nanos)
}

pub(crate) fn is_wrapper(name: &str) -> bool {
    matches!(
        name,
        "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

/// Types whose JSON form is not an object of their fields (an `Any` of one nests it under
/// `value`).
fn special_json(name: &str) -> bool {
    is_wrapper(name)
        || matches!(
            name,
            "google.protobuf.Timestamp"
                | "google.protobuf.Duration"
                | "google.protobuf.Struct"
                | "google.protobuf.Value"
                | "google.protobuf.ListValue"
                | "google.protobuf.FieldMask"
                | "google.protobuf.Empty"
                | "google.protobuf.Any"
        )
}

pub(crate) fn float(f: f64, text: impl FnOnce() -> String) -> Json {
    if f.is_nan() {
        Json::String("NaN".to_owned())
    } else if f.is_infinite() {
        Json::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned())
    } else {
        // The shortest text that reads back as the same value (`1.1` for a float32 1.1).
        text().parse::<Number>().map_or_else(
            |_| Number::from_f64(f).map_or(Json::Null, Json::Number),
            Json::Number,
        )
    }
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

pub(crate) fn camel_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}
