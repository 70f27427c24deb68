//! The input message of a call, built from the request: the JSON body (`use_request_body`),
//! then the endpoint's `{params}` and the forwarded query string on top, each key renamed by
//! `input_mapping` or used as a dotted field path itself.
//!
//! Field names match as the `.proto` writes them, as their JSON names, or (as Go's JSON
//! decoder KrakenD uses does) ignoring case. A key that names no field is left out, as
//! KrakenD's decoder leaves unknown keys out; a value that does not fit its field is the
//! client's error (400, the backend is not called).

use std::collections::HashMap;

use base64::Engine as _;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage as _,
    Value as Proto,
};
use serde_json::Value as Json;

use crate::settings::Settings;

/// Messages nest at most this deep in a request body (prost's own decoding limit is 100).
const MAX_DEPTH: usize = 64;

/// One step of a dotted field path.
#[derive(Debug, Clone)]
enum Step {
    /// A field of the current message.
    Field(FieldDescriptor),
    /// An entry of the map field just named.
    Key(String),
}

/// A dotted path resolved against a message type: `where.from`, `labels.env`.
#[derive(Debug, Clone)]
pub(crate) struct FieldPath {
    steps: Vec<Step>,
}

/// The field of `message` a request key names: its proto name, its JSON name, or either
/// ignoring case.
pub(crate) fn find_field(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_name(name)
        .or_else(|| message.get_field_by_json_name(name))
        .or_else(|| {
            message.fields().find(|f| {
                f.name().eq_ignore_ascii_case(name) || f.json_name().eq_ignore_ascii_case(name)
            })
        })
}

fn field_list(message: &MessageDescriptor) -> String {
    let names: Vec<String> = message.fields().map(|f| f.name().to_owned()).collect();
    if names.is_empty() {
        "it has none".to_owned()
    } else {
        format!("its fields: {}", names.join(", "))
    }
}

/// Well-known message types a single text value can set.
fn from_text(message: &MessageDescriptor) -> bool {
    matches!(
        message.full_name(),
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
            | "google.protobuf.Value"
    )
}

impl FieldPath {
    /// Resolves `path` against `message`: every segment a field, the ones before the last
    /// singular messages (or a map field followed by its key), the last one a value a text
    /// can set (a scalar, an enum, a list of them, or a well-known type such as a Timestamp).
    pub(crate) fn resolve(message: &MessageDescriptor, path: &str) -> Result<Self, String> {
        let mut steps = Vec::new();
        let mut current = message.clone();
        let segments: Vec<&str> = path.split('.').collect();
        let mut i = 0;
        while i < segments.len() {
            let segment = segments[i];
            let last = i + 1 == segments.len();
            let Some(field) = find_field(&current, segment) else {
                return Err(format!(
                    "{path:?}: {} has no field {segment:?} ({})",
                    current.full_name(),
                    field_list(&current)
                ));
            };
            steps.push(Step::Field(field.clone()));
            if field.is_map() {
                let Kind::Message(entry) = field.kind() else {
                    return Err(format!("{path:?}: {} is not a map", field.full_name()));
                };
                let Some(key) = segments.get(i + 1) else {
                    return Err(format!(
                        "{path:?}: {} is a map: name an entry, as in \"{}.<key>\"",
                        field.full_name(),
                        segments[..=i].join(".")
                    ));
                };
                parse_map_key(&entry.map_entry_key_field(), key)
                    .map_err(|e| format!("{path:?}: {e}"))?;
                steps.push(Step::Key((*key).to_owned()));
                let value = entry.map_entry_value_field();
                i += 2;
                match value.kind() {
                    Kind::Message(m) if i < segments.len() => current = m,
                    Kind::Message(m) if !from_text(&m) => {
                        return Err(format!(
                            "{path:?}: the entries of {} are {} messages: name one of their fields",
                            field.full_name(),
                            m.full_name()
                        ));
                    }
                    _ if i < segments.len() => {
                        return Err(format!(
                            "{path:?}: the entries of {} are not messages, so nothing follows the key",
                            field.full_name()
                        ));
                    }
                    _ => {}
                }
                continue;
            }
            match field.kind() {
                Kind::Message(m) if !last => {
                    if field.is_list() {
                        return Err(format!(
                            "{path:?}: {} is a repeated message field, which a single value cannot address",
                            field.full_name()
                        ));
                    }
                    current = m;
                }
                Kind::Message(m) if !from_text(&m) => {
                    return Err(format!(
                        "{path:?}: {} is a {} message: name one of its fields, as in \"{path}.{}\"",
                        field.full_name(),
                        m.full_name(),
                        m.fields()
                            .next()
                            .map_or_else(|| "field".to_owned(), |f| f.name().to_owned())
                    ));
                }
                _ if !last => {
                    return Err(format!(
                        "{path:?}: {} is not a message, so {:?} cannot follow it",
                        field.full_name(),
                        segments[i + 1]
                    ));
                }
                _ => {}
            }
            i += 1;
        }
        Ok(Self { steps })
    }

    /// Sets the field to `values` (a list field takes them all, any other the first).
    fn set(
        &self,
        message: &mut DynamicMessage,
        values: &[&str],
        assume_bytes: bool,
    ) -> Result<(), String> {
        set_steps(message, &self.steps, values, assume_bytes)
    }
}

fn set_steps(
    message: &mut DynamicMessage,
    steps: &[Step],
    values: &[&str],
    assume_bytes: bool,
) -> Result<(), String> {
    let Some(Step::Field(field)) = steps.first() else {
        return Ok(());
    };
    let rest = &steps[1..];
    if field.is_map() {
        let (Some(Step::Key(key)), Kind::Message(entry)) = (rest.first(), field.kind()) else {
            return Ok(());
        };
        let key = parse_map_key(&entry.map_entry_key_field(), key)?;
        let value_field = entry.map_entry_value_field();
        let Proto::Map(map) = message.get_field_mut(field) else {
            return Ok(());
        };
        let slot = map
            .entry(key)
            .or_insert_with(|| Proto::default_value_for_field(&value_field));
        if rest.len() > 1 {
            if let Proto::Message(inner) = slot {
                return set_steps(inner, &rest[1..], values, assume_bytes);
            }
            return Ok(());
        }
        let Some(first) = values.first() else {
            return Ok(());
        };
        *slot = text_value(&value_field.kind(), first, assume_bytes)
            .map_err(|e| format!("{}[{:?}]: {e}", field.name(), rest_key(rest)))?;
        return Ok(());
    }
    if !rest.is_empty() {
        if let Proto::Message(inner) = message.get_field_mut(field) {
            return set_steps(inner, rest, values, assume_bytes);
        }
        return Ok(());
    }
    let kind = field.kind();
    let value = if field.is_list() {
        let mut items = Vec::with_capacity(values.len());
        for v in values {
            items.push(
                text_value(&kind, v, assume_bytes).map_err(|e| format!("{}: {e}", field.name()))?,
            );
        }
        Proto::List(items)
    } else {
        let Some(first) = values.first() else {
            return Ok(());
        };
        text_value(&kind, first, assume_bytes).map_err(|e| format!("{}: {e}", field.name()))?
    };
    message.set_field(field, value);
    Ok(())
}

fn rest_key(rest: &[Step]) -> &str {
    match rest.first() {
        Some(Step::Key(k)) => k,
        _ => "",
    }
}

fn parse_map_key(key_field: &FieldDescriptor, text: &str) -> Result<MapKey, String> {
    let bad = || format!("{text:?} is not a key of type {:?}", key_field.kind());
    Ok(match key_field.kind() {
        Kind::String => MapKey::String(text.to_owned()),
        Kind::Bool => MapKey::Bool(parse_bool(text).ok_or_else(bad)?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            MapKey::I32(text.parse().map_err(|_| bad())?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            MapKey::I64(text.parse().map_err(|_| bad())?)
        }
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(text.parse().map_err(|_| bad())?),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(text.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn parse_int<T: std::str::FromStr + TryFrom<i128>>(text: &str) -> Option<T> {
    if let Ok(n) = text.parse::<T>() {
        return Some(n);
    }
    // 1e3 and 5.0 are whole numbers too (the protobuf JSON mapping accepts them).
    let f: f64 = text.parse().ok()?;
    if f.fract() != 0.0 || !f.is_finite() || f.abs() > 1.9e19 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    T::try_from(f as i128).ok()
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

/// A value of `kind` from its text.
fn text_value(kind: &Kind, text: &str, assume_bytes: bool) -> Result<Proto, String> {
    let bad = |what: &str| format!("{text:?} is not {what}");
    Ok(match kind {
        Kind::Double => Proto::F64(parse_float(text).ok_or_else(|| bad("a number"))?),
        #[allow(clippy::cast_possible_truncation)]
        Kind::Float => Proto::F32(parse_float(text).ok_or_else(|| bad("a number"))? as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Proto::I32(parse_int(text).ok_or_else(|| bad("a 32-bit integer"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Proto::I64(parse_int(text).ok_or_else(|| bad("a 64-bit integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            Proto::U32(parse_int(text).ok_or_else(|| bad("an unsigned 32-bit integer"))?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            Proto::U64(parse_int(text).ok_or_else(|| bad("an unsigned 64-bit integer"))?)
        }
        Kind::Bool => Proto::Bool(parse_bool(text).ok_or_else(|| bad("true or false"))?),
        Kind::String => Proto::String(text.to_owned()),
        Kind::Bytes => Proto::Bytes(match decode_base64(text) {
            Some(bytes) => bytes.into(),
            None if assume_bytes => text.as_bytes().to_vec().into(),
            None => return Err(bad("base64 (set input_assume_bytes to send text as it is)")),
        }),
        Kind::Enum(e) => {
            let number = e.get_value_by_name(text).map(|v| v.number()).or_else(|| {
                text.parse::<i32>()
                    .ok()
                    .filter(|n| e.get_value(*n).is_some())
            });
            match number {
                Some(n) => Proto::EnumNumber(n),
                None => {
                    let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
                    return Err(format!(
                        "{text:?} is not a value of {} (one of {})",
                        e.full_name(),
                        names.join(", ")
                    ));
                }
            }
        }
        Kind::Message(m) => Proto::Message(wkt_from_text(m, text, assume_bytes)?),
    })
}

/// A well-known type from its JSON text form.
fn wkt_from_text(
    m: &MessageDescriptor,
    text: &str,
    assume_bytes: bool,
) -> Result<DynamicMessage, String> {
    let mut message = DynamicMessage::new(m.clone());
    match m.full_name() {
        "google.protobuf.Timestamp" => {
            let (seconds, nanos) = crate::wkt::parse_timestamp(text).ok_or_else(|| {
                format!("{text:?} is not an RFC 3339 time like 2024-05-01T10:00:00Z")
            })?;
            message.set_field_by_name("seconds", Proto::I64(seconds));
            message.set_field_by_name("nanos", Proto::I32(nanos));
        }
        "google.protobuf.Duration" => {
            let (seconds, nanos) = crate::wkt::parse_duration(text)
                .ok_or_else(|| format!("{text:?} is not a duration like \"1.5s\""))?;
            message.set_field_by_name("seconds", Proto::I64(seconds));
            message.set_field_by_name("nanos", Proto::I32(nanos));
        }
        "google.protobuf.FieldMask" => {
            let paths = text
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| Proto::String(snake_case(p)))
                .collect();
            message.set_field_by_name("paths", Proto::List(paths));
        }
        "google.protobuf.Value" => {
            message = json_wkt_value(m, &Json::String(text.to_owned()))?;
        }
        _ => {
            // A wrapper: its `value` field.
            let Some(field) = m.get_field_by_name("value") else {
                return Err(format!("{} cannot be set from a text", m.full_name()));
            };
            let value = text_value(&field.kind(), text, assume_bytes)?;
            message.set_field(&field, value);
        }
    }
    Ok(message)
}

fn snake_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// How a backend's input message is filled, resolved once at start-up.
#[derive(Debug)]
pub(crate) struct InputPlan {
    message: MessageDescriptor,
    /// `input_mapping` by key as written, and by the key with its first letter lower-cased
    /// (KrakenD writes the param `{origin}` as `Origin`; either spelling maps it).
    mapping: HashMap<String, FieldPath>,
    use_body: bool,
    use_params: bool,
    assume_bytes: bool,
}

/// A problem with the client's input: the backend is not called, the client gets 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InputError(pub(crate) String);

impl InputPlan {
    /// Resolves every `input_mapping` target against the method's input message; each problem
    /// is (the mapping key, the message).
    pub(crate) fn new(
        message: MessageDescriptor,
        settings: &Settings,
    ) -> Result<Self, Vec<(String, String)>> {
        let mut mapping = HashMap::new();
        let mut errors = Vec::new();
        for (key, target) in &settings.input_mapping {
            match FieldPath::resolve(&message, target) {
                Ok(path) => {
                    mapping.insert(key.clone(), path);
                }
                Err(e) => errors.push((key.clone(), e)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            message,
            mapping,
            use_body: settings.use_request_body,
            use_params: !settings.disable_query_params,
            assume_bytes: settings.input_assume_bytes,
        })
    }

    /// The message for one request: the body, then the params, then the query.
    pub(crate) fn build(
        &self,
        params: &[(String, String)],
        query: Option<&str>,
        body: &[u8],
    ) -> Result<DynamicMessage, InputError> {
        let mut message = DynamicMessage::new(self.message.clone());
        if self.use_body && !body.iter().all(u8::is_ascii_whitespace) {
            let json: Json = serde_json::from_slice(body)
                .map_err(|e| InputError(format!("the request body is not JSON: {e}")))?;
            let Json::Object(object) = json else {
                return Err(InputError(format!(
                    "the request body must be a JSON object (the fields of {})",
                    self.message.full_name()
                )));
            };
            merge_object(&mut message, &object, self.assume_bytes, 0)
                .map_err(|e| InputError(format!("request body: {e}")))?;
        }
        if !self.use_params {
            return Ok(message);
        }
        for (name, value) in params {
            let capitalised = capitalise(name);
            self.apply(&mut message, &capitalised, name, &[value.as_str()])
                .map_err(|e| InputError(format!("parameter {{{name}}}: {e}")))?;
        }
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let k = decode_component(k);
                let v = decode_component(v);
                match grouped.iter_mut().find(|(name, _)| *name == k) {
                    Some((_, values)) => values.push(v),
                    None => grouped.push((k, vec![v])),
                }
            }
            for (name, values) in &grouped {
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                self.apply(&mut message, name, name, &values)
                    .map_err(|e| InputError(format!("query string {name:?}: {e}")))?;
            }
        }
        Ok(message)
    }

    /// Sets the field `key` maps to (or names itself); a key naming no field is left out.
    fn apply(
        &self,
        message: &mut DynamicMessage,
        key: &str,
        alternative: &str,
        values: &[&str],
    ) -> Result<(), String> {
        let mapped = self
            .mapping
            .get(key)
            .or_else(|| self.mapping.get(alternative))
            .or_else(|| self.mapping.get(&lower_first(key)));
        let path = match mapped {
            Some(path) => path.clone(),
            None => match FieldPath::resolve(&self.message, alternative) {
                Ok(path) => path,
                // Not a field: left out, as an unknown JSON key.
                Err(_) => return Ok(()),
            },
        };
        path.set(message, values, self.assume_bytes)
    }
}

fn decode_component(text: &str) -> String {
    let plus = text.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// Lura keys params with the first letter upper-cased (`{origin}` is `Origin`).
fn capitalise(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Merges a JSON object into `message`, as the protobuf JSON mapping reads it (JSON or proto
/// names, case-insensitive; numbers as numbers or strings; enums by name or number).
fn merge_object(
    message: &mut DynamicMessage,
    object: &serde_json::Map<String, Json>,
    assume_bytes: bool,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} messages"));
    }
    let descriptor = message.descriptor();
    for (key, json) in object {
        let Some(field) = find_field(&descriptor, key) else {
            continue;
        };
        let at = |e: String| format!("{key}: {e}");
        if json.is_null() && !is_value_type(&field.kind()) {
            continue;
        }
        if field.is_map() {
            let Json::Object(entries) = json else {
                return Err(at(format!(
                    "expected an object, found {}",
                    crate::settings::kind(json)
                )));
            };
            let Kind::Message(entry) = field.kind() else {
                continue;
            };
            let key_field = entry.map_entry_key_field();
            let value_field = entry.map_entry_value_field();
            let mut map = HashMap::with_capacity(entries.len());
            for (k, v) in entries {
                let map_key = parse_map_key(&key_field, k).map_err(at)?;
                let value = json_value(&value_field.kind(), v, assume_bytes, depth)
                    .map_err(|e| at(format!("[{k:?}]: {e}")))?;
                map.insert(map_key, value);
            }
            message.set_field(&field, Proto::Map(map));
        } else if field.is_list() {
            let Json::Array(items) = json else {
                return Err(at(format!(
                    "expected an array, found {}",
                    crate::settings::kind(json)
                )));
            };
            let kind = field.kind();
            let mut list = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                list.push(
                    json_value(&kind, item, assume_bytes, depth)
                        .map_err(|e| at(format!("[{i}]: {e}")))?,
                );
            }
            message.set_field(&field, Proto::List(list));
        } else {
            let value = json_value(&field.kind(), json, assume_bytes, depth).map_err(at)?;
            message.set_field(&field, value);
        }
    }
    Ok(())
}

fn is_value_type(kind: &Kind) -> bool {
    matches!(kind, Kind::Message(m) if m.full_name() == "google.protobuf.Value")
}

/// A value of `kind` from JSON.
fn json_value(kind: &Kind, json: &Json, assume_bytes: bool, depth: usize) -> Result<Proto, String> {
    match (kind, json) {
        (Kind::Message(m), _) => json_message(m, json, assume_bytes, depth).map(Proto::Message),
        (Kind::Bool, Json::Bool(b)) => Ok(Proto::Bool(*b)),
        (Kind::Enum(e), Json::Number(n)) => {
            let number: i32 = n
                .to_string()
                .parse()
                .map_err(|_| format!("{n} is not a value of {}", e.full_name()))?;
            Ok(Proto::EnumNumber(number))
        }
        (_, Json::Number(n)) if !matches!(kind, Kind::String | Kind::Bytes | Kind::Bool) => {
            text_value(kind, &n.to_string(), assume_bytes)
        }
        (_, Json::String(s)) if !matches!(kind, Kind::Bool) => text_value(kind, s, assume_bytes),
        (Kind::Bool, Json::String(s)) if s == "true" || s == "false" => {
            Ok(Proto::Bool(s == "true"))
        }
        (kind, other) => Err(format!(
            "expected {}, found {}",
            kind_name(kind),
            crate::settings::kind(other)
        )),
    }
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Bool => "true or false",
        Kind::String => "a string",
        Kind::Bytes => "a base64 string",
        Kind::Enum(_) => "an enum name or number",
        Kind::Message(_) => "an object",
        _ => "a number",
    }
}

/// A message from JSON: an object of its fields, or a well-known type's JSON form.
fn json_message(
    m: &MessageDescriptor,
    json: &Json,
    assume_bytes: bool,
    depth: usize,
) -> Result<DynamicMessage, String> {
    match (m.full_name(), json) {
        ("google.protobuf.Value", _) => json_wkt_value(m, json),
        ("google.protobuf.Struct", Json::Object(_))
        | ("google.protobuf.ListValue", Json::Array(_)) => {
            let value = json_wkt_value(
                &m.parent_pool()
                    .get_message_by_name("google.protobuf.Value")
                    .ok_or("google.protobuf.Value is not in the catalog")?,
                json,
            )?;
            // The Value's own struct_value or list_value is the message wanted.
            let field = if json.is_object() {
                "struct_value"
            } else {
                "list_value"
            };
            match value
                .get_field_by_name(field)
                .map(std::borrow::Cow::into_owned)
            {
                Some(Proto::Message(inner)) => Ok(inner),
                _ => Err("cannot read the value".to_owned()),
            }
        }
        ("google.protobuf.Any", Json::Object(object)) => {
            let Some(Json::String(url)) = object.get("@type") else {
                return Err("an Any needs its \"@type\"".to_owned());
            };
            let name = url.rsplit('/').next().unwrap_or(url);
            let inner_type = m
                .parent_pool()
                .get_message_by_name(name)
                .ok_or_else(|| format!("the type {name:?} of this Any is not in the catalog"))?;
            let inner = if is_wkt_with_json_form(inner_type.full_name()) {
                json_message(
                    &inner_type,
                    object.get("value").unwrap_or(&Json::Null),
                    assume_bytes,
                    depth + 1,
                )?
            } else {
                let mut rest = object.clone();
                rest.remove("@type");
                let mut inner = DynamicMessage::new(inner_type);
                merge_object(&mut inner, &rest, assume_bytes, depth + 1)?;
                inner
            };
            let mut any = DynamicMessage::new(m.clone());
            any.set_field_by_name("type_url", Proto::String(url.clone()));
            any.set_field_by_name(
                "value",
                Proto::Bytes(prost_reflect::prost::Message::encode_to_vec(&inner).into()),
            );
            Ok(any)
        }
        (name, Json::Object(object))
            if !is_wkt_with_json_form(name) || name == "google.protobuf.Empty" =>
        {
            let mut message = DynamicMessage::new(m.clone());
            merge_object(&mut message, object, assume_bytes, depth + 1)?;
            Ok(message)
        }
        (_, Json::String(s)) if from_text(m) => wkt_from_text(m, s, assume_bytes),
        (name, Json::Number(n)) if name.ends_with("Value") && from_text(m) => {
            wkt_from_text(m, &n.to_string(), assume_bytes)
        }
        ("google.protobuf.BoolValue", Json::Bool(b)) => {
            wkt_from_text(m, if *b { "true" } else { "false" }, assume_bytes)
        }
        (name, other) => Err(format!(
            "expected the JSON form of {name}, found {}",
            crate::settings::kind(other)
        )),
    }
}

/// Well-known types the JSON mapping writes as something other than an object of fields.
fn is_wkt_with_json_form(name: &str) -> bool {
    name.starts_with("google.protobuf.")
        && matches!(
            &name["google.protobuf.".len()..],
            "Timestamp"
                | "Duration"
                | "FieldMask"
                | "Struct"
                | "Value"
                | "ListValue"
                | "Any"
                | "Empty"
                | "DoubleValue"
                | "FloatValue"
                | "Int64Value"
                | "UInt64Value"
                | "Int32Value"
                | "UInt32Value"
                | "BoolValue"
                | "StringValue"
                | "BytesValue"
        )
}

/// `google.protobuf.Value` of any JSON.
fn json_wkt_value(value_type: &MessageDescriptor, json: &Json) -> Result<DynamicMessage, String> {
    let mut value = DynamicMessage::new(value_type.clone());
    match json {
        Json::Null => value.set_field_by_name("null_value", Proto::EnumNumber(0)),
        Json::Bool(b) => value.set_field_by_name("bool_value", Proto::Bool(*b)),
        Json::Number(n) => {
            value.set_field_by_name("number_value", Proto::F64(n.as_f64().unwrap_or(f64::NAN)))
        }
        Json::String(s) => value.set_field_by_name("string_value", Proto::String(s.clone())),
        Json::Array(items) => {
            let Some(Kind::Message(list_type)) =
                value_type.get_field_by_name("list_value").map(|f| f.kind())
            else {
                return Err("malformed google.protobuf.Value".to_owned());
            };
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                values.push(Proto::Message(json_wkt_value(value_type, item)?));
            }
            let mut list = DynamicMessage::new(list_type);
            list.set_field_by_name("values", Proto::List(values));
            value.set_field_by_name("list_value", Proto::Message(list));
        }
        Json::Object(object) => {
            let Some(Kind::Message(struct_type)) = value_type
                .get_field_by_name("struct_value")
                .map(|f| f.kind())
            else {
                return Err("malformed google.protobuf.Value".to_owned());
            };
            let mut fields = HashMap::with_capacity(object.len());
            for (k, v) in object {
                fields.insert(
                    MapKey::String(k.clone()),
                    Proto::Message(json_wkt_value(value_type, v)?),
                );
            }
            let mut st = DynamicMessage::new(struct_type);
            st.set_field_by_name("fields", Proto::Map(fields));
            value.set_field_by_name("struct_value", Proto::Message(st));
        }
    }
    Ok(value)
}
