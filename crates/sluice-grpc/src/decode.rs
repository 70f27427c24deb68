//! A backend's answer straight from the protobuf wire bytes to JSON, without building a
//! `DynamicMessage` first: the same JSON as [`OutputOptions::message`] writes for the decoded
//! message (the mapping and its switches are described in `output.rs`).
//!
//! Everything that depends only on the answer's type and the backend's settings is worked out
//! once, when the executor is built ([`Decoder::new`]): one `MessagePlan` per message type
//! the answer can hold, with its fields indexed by number, their JSON keys, kinds, presence,
//! oneof and default JSON. Decoding walks the bytes once per message, keeps the last value of
//! a singular field (proto3's "last one wins"), appends repeated ones (packed or not), fills
//! maps entry by entry (the last entry of a key wins), and merges repeated occurrences of a
//! singular message field by decoding their concatenation (which is what merging is).
//!
//! The decoder is at least as strict as `DynamicMessage::decode`: whatever it accepts, the
//! reference path accepts and maps to the same JSON. What it refuses (malformed data, and the
//! rare shapes it leaves to the reference path: groups, extended messages) is an [`Error`];
//! [`Decoder::answer`] then runs the reference path, so the answer (or its error) is exactly
//! what the reference path makes of it. `Any` keeps the reference path for its payload: its
//! type is looked up at run time in the whole catalog.

use std::collections::HashMap;

use base64::Engine as _;
use bytes::Bytes;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value as Proto,
};
use serde_json::{Map, Value as Json};

use crate::output::{self, OutputOptions};
use crate::settings::Naming;

/// How deep messages may nest (as prost's recursion limit: 100 below the answer).
const MAX_DEPTH: u32 = 100;
/// Field numbers up to this are looked up in a table; higher ones by binary search.
const DENSE_NUMBERS: u32 = 256;
const NO_FIELD: u16 = u16::MAX;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const FIXED32: u8 = 5;

/// Why bytes could not be decoded (or why the decoder leaves them to the reference path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error(pub(crate) String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T> = std::result::Result<T, Error>;

fn error<T>(message: impl Into<String>) -> Result<T> {
    Err(Error(message.into()))
}

/// The decoder of one answer type under one backend's output settings, built at start-up.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// The answer's type.
    root: MessageDescriptor,
    options: OutputOptions,
    plans: Vec<MessagePlan>,
    enums: Vec<EnumPlan>,
    /// The catalog, for `Any` payloads.
    pool: DescriptorPool,
}

/// How a message type is written once its fields are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Emit {
    Object,
    /// A wrapper (`Int32Value`...): its `value` field alone (the field's index).
    Wrapper(Option<usize>),
    /// `Timestamp` / `Duration` as text: the indices of `seconds` and `nanos`.
    Timestamp(Option<usize>, Option<usize>),
    Duration(Option<usize>, Option<usize>),
    /// `Struct`: its `fields` map.
    Struct(Option<usize>),
    /// `Value`: the member of `kind` that is set.
    Value,
    /// `ListValue`: its `values`.
    ListValue(Option<usize>),
    Empty,
    /// `FieldMask`: its `paths`, camelCase, joined with commas.
    FieldMask(Option<usize>),
    /// `Any`: `type_url` and `value`.
    Any(Option<usize>, Option<usize>),
}

#[derive(Debug)]
struct MessagePlan {
    full_name: String,
    emit: Emit,
    /// In declaration order (the order the reference path writes them).
    fields: Vec<FieldPlan>,
    /// Field number → index in `fields` (`NO_FIELD`: unknown), for numbers below `DENSE_NUMBERS`.
    dense: Vec<u16>,
    /// (number, index) of the higher numbers, sorted.
    sparse: Vec<(u32, usize)>,
    /// Indices in `fields`, by field number.
    number_order: Vec<usize>,
    /// How many oneofs (synthetic ones included) the fields belong to.
    oneofs: usize,
    /// Why the reference path must decode this type (a group field, registered extensions).
    unsupported: Option<String>,
}

#[derive(Debug)]
struct FieldPlan {
    /// The `.proto` name.
    name: String,
    /// The JSON key under the backend's naming.
    key: String,
    ty: Ty,
    shape: Shape,
    /// `FieldDescriptor::supports_presence`.
    presence: bool,
    /// The oneof (index among the message's oneofs), synthetic ones included.
    oneof: Option<usize>,
    /// The value of an unset singular field (`None` for messages): compared to decide whether
    /// a field without presence is set, and written when it is not.
    default: Option<Proto>,
    default_json: Json,
}

#[derive(Debug)]
enum Shape {
    Single,
    List { packable: bool },
    Map(Box<MapPlan>),
}

#[derive(Debug)]
struct MapPlan {
    key: Ty,
    value: Ty,
    /// The JSON of a missing key and of a missing (non-message) value.
    default_key: String,
    default_value: Json,
}

/// A field's type on the wire and in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Bool,
    Int32,
    Sint32,
    Sfixed32,
    Int64,
    Sint64,
    Sfixed64,
    Uint32,
    Fixed32,
    Uint64,
    Fixed64,
    Float,
    Double,
    String,
    Bytes,
    /// Index in `Decoder::enums`.
    Enum(usize),
    /// Index in `Decoder::plans`.
    Message(usize),
}

impl Ty {
    fn wire_type(self) -> u8 {
        match self {
            Ty::Double | Ty::Fixed64 | Ty::Sfixed64 => FIXED64,
            Ty::Float | Ty::Fixed32 | Ty::Sfixed32 => FIXED32,
            Ty::String | Ty::Bytes | Ty::Message(_) => LEN,
            _ => VARINT,
        }
    }
}

#[derive(Debug)]
struct EnumPlan {
    /// `google.protobuf.NullValue`: always `null`.
    null_value: bool,
    /// (number, the name the reference path writes for it), sorted by number.
    names: Vec<(i32, String)>,
}

/// One decoded scalar, strings and bytes borrowed from the answer.
#[derive(Debug, Clone, Copy)]
enum Scalar<'a> {
    Bool(bool),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F32(f32),
    F64(f64),
    Enum(i32),
    Str(&'a str),
    Bytes(&'a [u8]),
}

impl Scalar<'_> {
    /// Whether this is `value` (prost-reflect's `Value` equality: `-0.0` is `0.0`).
    fn is(&self, value: &Proto) -> bool {
        match (self, value) {
            (Scalar::Bool(a), Proto::Bool(b)) => a == b,
            (Scalar::I32(a), Proto::I32(b)) | (Scalar::Enum(a), Proto::EnumNumber(b)) => a == b,
            (Scalar::U32(a), Proto::U32(b)) => a == b,
            (Scalar::I64(a), Proto::I64(b)) => a == b,
            (Scalar::U64(a), Proto::U64(b)) => a == b,
            (Scalar::F32(a), Proto::F32(b)) => a == b,
            (Scalar::F64(a), Proto::F64(b)) => a == b,
            (Scalar::Str(a), Proto::String(b)) => *a == b,
            (Scalar::Bytes(a), Proto::Bytes(b)) => *a == b.as_ref(),
            _ => false,
        }
    }

    fn from_proto(value: &Proto) -> Option<Scalar<'_>> {
        Some(match value {
            Proto::Bool(b) => Scalar::Bool(*b),
            Proto::I32(n) => Scalar::I32(*n),
            Proto::U32(n) => Scalar::U32(*n),
            Proto::I64(n) => Scalar::I64(*n),
            Proto::U64(n) => Scalar::U64(*n),
            Proto::F32(f) => Scalar::F32(*f),
            Proto::F64(f) => Scalar::F64(*f),
            Proto::EnumNumber(n) => Scalar::Enum(*n),
            Proto::String(s) => Scalar::Str(s),
            Proto::Bytes(b) => Scalar::Bytes(b),
            Proto::Message(_) | Proto::List(_) | Proto::Map(_) => return None,
        })
    }

    /// The text of a map key.
    fn key_text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::I32(n) | Scalar::Enum(n) => n.to_string(),
            Scalar::U32(n) => n.to_string(),
            Scalar::I64(n) => n.to_string(),
            Scalar::U64(n) => n.to_string(),
            Scalar::F32(f) => f.to_string(),
            Scalar::F64(f) => f.to_string(),
            Scalar::Str(s) => (*s).to_owned(),
            Scalar::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }
}

/// The occurrences of a singular message field seen so far.
#[derive(Debug)]
enum Parts<'a> {
    One(&'a [u8]),
    /// Several occurrences, concatenated: decoding them merges them.
    Many(Vec<u8>),
}

impl Parts<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Parts::One(b) => b,
            Parts::Many(v) => v,
        }
    }
}

/// A field's state while its message is decoded.
#[derive(Debug)]
enum Slot<'a> {
    Unset,
    Scalar(Scalar<'a>),
    Message(Parts<'a>),
    List(Vec<Json>),
    Map(Map<String, Json>),
}

impl Decoder {
    /// The plans of `root` and of every message type its fields can hold.
    pub(crate) fn new(root: &MessageDescriptor, options: OutputOptions) -> Self {
        let mut builder = Builder {
            options,
            plans: Vec::new(),
            enums: Vec::new(),
            message_index: HashMap::new(),
            enum_index: HashMap::new(),
            queue: Vec::new(),
        };
        builder.message(root);
        while let Some((index, descriptor)) = builder.queue.pop() {
            let plan = builder.plan(&descriptor);
            builder.plans[index] = Some(plan);
        }
        Decoder {
            root: root.clone(),
            options,
            plans: builder.plans.into_iter().flatten().collect(),
            enums: builder.enums,
            pool: root.parent_pool().clone(),
        }
    }

    /// One answer message as JSON. What the decoder refuses (malformed bytes, and the rare
    /// shapes it leaves alone) goes through `DynamicMessage`, whose error (or JSON) is the
    /// answer's, so both are exactly what they were before the decoder.
    pub(crate) fn answer(&self, bytes: Bytes) -> std::result::Result<Json, String> {
        match self.decode(&bytes) {
            Ok(json) => Ok(json),
            Err(reason) => {
                tracing::debug!(%reason, "gRPC answer: decoding through DynamicMessage");
                DynamicMessage::decode(self.root.clone(), bytes)
                    .map(|message| self.options.message(&message))
                    .map_err(|e| format!("the answer is not a {}: {e}", self.root.full_name()))
            }
        }
    }

    /// One message as JSON, or why the decoder does not read it.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<Json> {
        self.message(0, bytes, 0)
    }

    fn message(&self, index: usize, bytes: &[u8], depth: u32) -> Result<Json> {
        let plan = &self.plans[index];
        if let Some(reason) = &plan.unsupported {
            return error(reason.clone());
        }
        if depth > MAX_DEPTH {
            return error(format!(
                "messages nest deeper than {MAX_DEPTH} levels (at a {})",
                plan.full_name
            ));
        }
        let mut slots: Vec<Slot<'_>> = Vec::with_capacity(plan.fields.len());
        slots.resize_with(plan.fields.len(), || Slot::Unset);
        let mut oneofs: Vec<usize> = vec![usize::MAX; plan.oneofs];
        let mut reader = Reader { bytes, pos: 0 };
        while !reader.is_empty() {
            let (number, wire) = reader.key()?;
            match plan.field(number) {
                Some(i) => {
                    let field = &plan.fields[i];
                    if let Some(o) = field.oneof {
                        // Setting one member of a oneof clears the others.
                        let current = oneofs[o];
                        if current != i {
                            if let Some(slot) = slots.get_mut(current) {
                                *slot = Slot::Unset;
                            }
                            oneofs[o] = i;
                        }
                    }
                    self.field(field, wire, &mut reader, &mut slots[i], depth)
                        .map_err(|e| Error(format!("{}.{}: {e}", plan.full_name, field.name)))?;
                }
                None => reader.skip(number, wire)?,
            }
        }
        self.emit(plan, slots, depth)
    }

    /// One occurrence of a known field.
    fn field<'a>(
        &self,
        field: &FieldPlan,
        wire: u8,
        reader: &mut Reader<'a>,
        slot: &mut Slot<'a>,
        depth: u32,
    ) -> Result<()> {
        match &field.shape {
            Shape::Single => {
                if let Ty::Message(_) = field.ty {
                    expect_wire(wire, LEN)?;
                    let bytes = reader.len_delimited()?;
                    *slot = with_part(std::mem::replace(slot, Slot::Unset), bytes);
                } else {
                    *slot = Slot::Scalar(reader.scalar(field.ty, wire)?);
                }
            }
            Shape::List { packable } => {
                if !matches!(slot, Slot::List(_)) {
                    *slot = Slot::List(Vec::new());
                }
                let Slot::List(items) = slot else {
                    return error("internal: a list slot");
                };
                if wire == LEN && *packable {
                    let mut packed = Reader {
                        bytes: reader.len_delimited()?,
                        pos: 0,
                    };
                    let element_wire = field.ty.wire_type();
                    while !packed.is_empty() {
                        let value = packed.scalar(field.ty, element_wire)?;
                        items.push(self.scalar_json(field.ty, value));
                    }
                } else if let Ty::Message(m) = field.ty {
                    expect_wire(wire, LEN)?;
                    let bytes = reader.len_delimited()?;
                    items.push(self.message(m, bytes, depth + 1)?);
                } else {
                    let value = reader.scalar(field.ty, wire)?;
                    items.push(self.scalar_json(field.ty, value));
                }
            }
            Shape::Map(map) => {
                expect_wire(wire, LEN)?;
                let entry = reader.len_delimited()?;
                let (key, value) = self.map_entry(map, entry, depth)?;
                if !matches!(slot, Slot::Map(_)) {
                    *slot = Slot::Map(Map::new());
                }
                if let Slot::Map(object) = slot {
                    object.insert(key, value);
                }
            }
        }
        Ok(())
    }

    fn map_entry(&self, map: &MapPlan, entry: &[u8], depth: u32) -> Result<(String, Json)> {
        let mut reader = Reader {
            bytes: entry,
            pos: 0,
        };
        let mut key = None;
        let mut value = Slot::Unset;
        while !reader.is_empty() {
            let (number, wire) = reader.key()?;
            match number {
                1 => key = Some(reader.scalar(map.key, wire)?),
                2 => match map.value {
                    Ty::Message(_) => {
                        expect_wire(wire, LEN)?;
                        value = with_part(value, reader.len_delimited()?);
                    }
                    ty => value = Slot::Scalar(reader.scalar(ty, wire)?),
                },
                _ => reader.skip(number, wire)?,
            }
        }
        let key = match key {
            Some(k) => k.key_text(),
            None => map.default_key.clone(),
        };
        let value = match (value, map.value) {
            (Slot::Scalar(s), ty) => self.scalar_json(ty, s),
            (Slot::Message(parts), Ty::Message(m)) => self.message(m, parts.bytes(), depth + 1)?,
            (_, Ty::Message(m)) => self.message(m, &[], depth + 1)?,
            _ => map.default_value.clone(),
        };
        Ok((key, value))
    }

    /// The JSON of a decoded message from its fields' slots.
    fn emit(&self, plan: &MessagePlan, mut slots: Vec<Slot<'_>>, depth: u32) -> Result<Json> {
        let options = &self.options;
        match plan.emit {
            Emit::Object => {}
            Emit::Wrapper(value) => {
                return Ok(match value {
                    Some(i) => self.field_json(&plan.fields[i], take(&mut slots, i), depth)?,
                    None => Json::Null,
                });
            }
            Emit::Timestamp(s, n) => {
                let (s, n) = self.seconds_nanos(&slots, s, n);
                return Ok(crate::wkt::format_timestamp(s, n).map_or(Json::Null, Json::String));
            }
            Emit::Duration(s, n) => {
                let (s, n) = self.seconds_nanos(&slots, s, n);
                return Ok(crate::wkt::format_duration(s, n).map_or(Json::Null, Json::String));
            }
            Emit::Struct(fields) => {
                return Ok(match fields.map(|i| take(&mut slots, i)) {
                    Some(Slot::Map(object)) => Json::Object(object),
                    _ => Json::Object(Map::new()),
                });
            }
            Emit::ListValue(values) => {
                return Ok(match values.map(|i| take(&mut slots, i)) {
                    Some(Slot::List(items)) => Json::Array(items),
                    _ => Json::Array(Vec::new()),
                });
            }
            Emit::Value => {
                // The first field set, in field number order (the reference path's order).
                let set = plan
                    .number_order
                    .iter()
                    .find(|&&i| !matches!(slots.get(i), None | Some(Slot::Unset)));
                let Some(&i) = set else {
                    return Ok(Json::Null);
                };
                let field = &plan.fields[i];
                return Ok(match (field.name.as_str(), take(&mut slots, i)) {
                    ("bool_value", Slot::Scalar(s @ Scalar::Bool(_)))
                    | ("number_value", Slot::Scalar(s @ Scalar::F64(_)))
                    | ("string_value", Slot::Scalar(s @ Scalar::Str(_))) => {
                        self.scalar_json(field.ty, s)
                    }
                    ("struct_value" | "list_value", Slot::Message(parts)) => match field.ty {
                        Ty::Message(m)
                            if matches!(
                                (field.name.as_str(), self.plans[m].emit),
                                ("struct_value", Emit::Struct(_))
                                    | ("list_value", Emit::ListValue(_))
                            ) =>
                        {
                            self.message(m, parts.bytes(), depth + 1)?
                        }
                        _ => return error("a google.protobuf.Value of an unexpected shape"),
                    },
                    _ => Json::Null,
                });
            }
            Emit::Empty => return Ok(Json::Object(Map::new())),
            Emit::FieldMask(paths) => {
                let joined = match paths.map(|i| take(&mut slots, i)) {
                    Some(Slot::List(items)) => items
                        .iter()
                        .filter_map(|p| p.as_str().map(output::camel_case))
                        .collect::<Vec<_>>()
                        .join(","),
                    _ => String::new(),
                };
                return Ok(Json::String(joined));
            }
            Emit::Any(url, value) => {
                let url = match url.map(|i| take(&mut slots, i)) {
                    Some(Slot::Scalar(Scalar::Str(s))) => s,
                    _ => "",
                };
                let bytes = match value.map(|i| take(&mut slots, i)) {
                    Some(Slot::Scalar(Scalar::Bytes(b))) => b,
                    _ => &[],
                };
                return Ok(self.options.any(&self.pool, url, bytes));
            }
        }
        let mut object = Map::new();
        for (i, field) in plan.fields.iter().enumerate() {
            let slot = take(&mut slots, i);
            // `DynamicMessage::has_field`: a field without presence is set when it is not its
            // default (`-0.0` is not set, but written as `-0`).
            let set = match &slot {
                Slot::Unset => false,
                Slot::List(items) => !items.is_empty(),
                Slot::Map(entries) => !entries.is_empty(),
                Slot::Scalar(s) if !field.presence => {
                    !field.default.as_ref().is_some_and(|d| s.is(d))
                }
                Slot::Scalar(_) | Slot::Message(_) => true,
            };
            if !set && (options.remove_unset || field.oneof.is_some()) {
                continue;
            }
            let value = self.field_json(field, slot, depth)?;
            object.insert(field.key.clone(), value);
        }
        Ok(Json::Object(object))
    }

    /// A field's JSON from its slot (an unset field: its default).
    fn field_json(&self, field: &FieldPlan, slot: Slot<'_>, depth: u32) -> Result<Json> {
        Ok(match slot {
            Slot::Scalar(s) => self.scalar_json(field.ty, s),
            Slot::Message(parts) => match field.ty {
                Ty::Message(m) => self.message(m, parts.bytes(), depth + 1)?,
                _ => return error("internal: a message slot"),
            },
            Slot::List(items) => Json::Array(items),
            Slot::Map(entries) => Json::Object(entries),
            Slot::Unset => field.default_json.clone(),
        })
    }

    fn seconds_nanos(
        &self,
        slots: &[Slot<'_>],
        seconds: Option<usize>,
        nanos: Option<usize>,
    ) -> (i64, i32) {
        let seconds = match seconds.and_then(|i| slots.get(i)) {
            Some(Slot::Scalar(Scalar::I64(s))) => *s,
            _ => 0,
        };
        let nanos = match nanos.and_then(|i| slots.get(i)) {
            Some(Slot::Scalar(Scalar::I32(n))) => *n,
            _ => 0,
        };
        (seconds, nanos)
    }

    fn scalar_json(&self, ty: Ty, value: Scalar<'_>) -> Json {
        scalar_json(&self.options, &self.enums, ty, value)
    }
}

/// A scalar as JSON (what the reference path's `single` writes for it).
fn scalar_json(options: &OutputOptions, enums: &[EnumPlan], ty: Ty, value: Scalar<'_>) -> Json {
    match value {
        Scalar::Bool(b) => Json::Bool(b),
        Scalar::I32(n) => Json::Number(n.into()),
        Scalar::U32(n) => Json::Number(n.into()),
        Scalar::I64(n) => match options.naming {
            Naming::SnakeCase => Json::Number(n.into()),
            Naming::CamelCase => Json::String(n.to_string()),
        },
        Scalar::U64(n) => match options.naming {
            Naming::SnakeCase => Json::Number(n.into()),
            Naming::CamelCase => Json::String(n.to_string()),
        },
        Scalar::F32(f) => output::float(f64::from(f), || f.to_string()),
        Scalar::F64(f) => output::float(f, || f.to_string()),
        Scalar::Str(s) => Json::String(s.to_owned()),
        Scalar::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Scalar::Enum(n) => {
            if let Ty::Enum(e) = ty
                && let Some(plan) = enums.get(e)
            {
                if plan.null_value {
                    return Json::Null;
                }
                if options.enum_as_string
                    && let Ok(at) = plan.names.binary_search_by_key(&n, |(number, _)| *number)
                {
                    return Json::String(plan.names[at].1.clone());
                }
            }
            Json::Number(n.into())
        }
    }
}

/// A singular message field's slot with one more occurrence: the first is borrowed, more are
/// concatenated (decoding the concatenation merges them, as protobuf merges messages).
fn with_part<'a>(slot: Slot<'a>, bytes: &'a [u8]) -> Slot<'a> {
    match slot {
        Slot::Message(Parts::One(first)) => {
            let mut all = Vec::with_capacity(first.len() + bytes.len());
            all.extend_from_slice(first);
            all.extend_from_slice(bytes);
            Slot::Message(Parts::Many(all))
        }
        Slot::Message(Parts::Many(mut all)) => {
            all.extend_from_slice(bytes);
            Slot::Message(Parts::Many(all))
        }
        _ => Slot::Message(Parts::One(bytes)),
    }
}

fn take<'a>(slots: &mut [Slot<'a>], i: usize) -> Slot<'a> {
    slots
        .get_mut(i)
        .map_or(Slot::Unset, |s| std::mem::replace(s, Slot::Unset))
}

fn expect_wire(wire: u8, expected: u8) -> Result<()> {
    if wire == expected {
        Ok(())
    } else {
        error(format!(
            "wire type {} where {} was expected",
            wire_name(wire),
            wire_name(expected)
        ))
    }
}

fn wire_name(wire: u8) -> &'static str {
    match wire {
        VARINT => "varint",
        FIXED64 => "64-bit",
        LEN => "length-delimited",
        START_GROUP => "start-group",
        4 => "end-group",
        FIXED32 => "32-bit",
        _ => "invalid",
    }
}

impl MessagePlan {
    fn field(&self, number: u32) -> Option<usize> {
        if let Some(&i) = self.dense.get(number as usize) {
            return (i != NO_FIELD).then_some(usize::from(i));
        }
        self.sparse
            .binary_search_by_key(&number, |(n, _)| *n)
            .ok()
            .map(|at| self.sparse[at].1)
    }
}

/// Reads the wire format from a slice; every read checks its bounds.
#[derive(Debug)]
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return error("a varint runs past the end of the data");
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return error("a varint longer than 64 bits");
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        error("a varint longer than 10 bytes")
    }

    fn key(&mut self) -> Result<(u32, u8)> {
        let key = self.varint()?;
        let Ok(key) = u32::try_from(key) else {
            return error(format!("invalid field key {key}"));
        };
        let wire = (key & 7) as u8;
        let number = key >> 3;
        if wire > FIXED32 {
            return error(format!("invalid wire type {wire}"));
        }
        if number == 0 {
            return error("field number 0");
        }
        Ok((number, wire))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        match self.bytes.get(self.pos..).and_then(|rest| rest.get(..len)) {
            Some(taken) => {
                self.pos += len;
                Ok(taken)
            }
            None => error(format!(
                "{len} bytes announced, {} left",
                self.bytes.len().saturating_sub(self.pos)
            )),
        }
    }

    fn len_delimited(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.take(len)
    }

    fn fixed32(&mut self) -> Result<[u8; 4]> {
        let b = self.take(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    fn fixed64(&mut self) -> Result<[u8; 8]> {
        let b = self.take(8)?;
        Ok([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// One scalar of type `ty` written with `wire`.
    fn scalar(&mut self, ty: Ty, wire: u8) -> Result<Scalar<'a>> {
        expect_wire(wire, ty.wire_type())?;
        // The casts truncate as protobuf's own decoders do (an int32 is the low 32 bits).
        Ok(match ty {
            Ty::Bool => Scalar::Bool(self.varint()? != 0),
            Ty::Int32 => Scalar::I32(self.varint()? as i32),
            Ty::Enum(_) => Scalar::Enum(self.varint()? as i32),
            Ty::Sint32 => {
                let v = self.varint()? as u32;
                Scalar::I32(((v >> 1) as i32) ^ -((v & 1) as i32))
            }
            Ty::Int64 => Scalar::I64(self.varint()? as i64),
            Ty::Sint64 => {
                let v = self.varint()?;
                Scalar::I64(((v >> 1) as i64) ^ -((v & 1) as i64))
            }
            Ty::Uint32 => Scalar::U32(self.varint()? as u32),
            Ty::Uint64 => Scalar::U64(self.varint()?),
            Ty::Fixed32 => Scalar::U32(u32::from_le_bytes(self.fixed32()?)),
            Ty::Sfixed32 => Scalar::I32(i32::from_le_bytes(self.fixed32()?)),
            Ty::Float => Scalar::F32(f32::from_le_bytes(self.fixed32()?)),
            Ty::Fixed64 => Scalar::U64(u64::from_le_bytes(self.fixed64()?)),
            Ty::Sfixed64 => Scalar::I64(i64::from_le_bytes(self.fixed64()?)),
            Ty::Double => Scalar::F64(f64::from_le_bytes(self.fixed64()?)),
            Ty::String => match std::str::from_utf8(self.len_delimited()?) {
                Ok(s) => Scalar::Str(s),
                Err(_) => return error("a string that is not UTF-8"),
            },
            Ty::Bytes => Scalar::Bytes(self.len_delimited()?),
            Ty::Message(_) => return error("internal: a message read as a scalar"),
        })
    }

    /// Skips an unknown field (groups are left to the reference path).
    fn skip(&mut self, number: u32, wire: u8) -> Result<()> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.len_delimited().map(drop),
            FIXED32 => self.take(4).map(drop),
            _ => error(format!(
                "unknown field {number} of wire type {}",
                wire_name(wire)
            )),
        }
    }
}

/// Builds the plans, each message type once (recursive types point back by index).
struct Builder {
    options: OutputOptions,
    plans: Vec<Option<MessagePlan>>,
    enums: Vec<EnumPlan>,
    message_index: HashMap<String, usize>,
    enum_index: HashMap<String, usize>,
    queue: Vec<(usize, MessageDescriptor)>,
}

impl Builder {
    /// The index of a message type's plan (queued to be built when new).
    fn message(&mut self, descriptor: &MessageDescriptor) -> usize {
        if let Some(&index) = self.message_index.get(descriptor.full_name()) {
            return index;
        }
        let index = self.plans.len();
        self.plans.push(None);
        self.message_index
            .insert(descriptor.full_name().to_owned(), index);
        self.queue.push((index, descriptor.clone()));
        index
    }

    fn enumeration(&mut self, descriptor: &prost_reflect::EnumDescriptor) -> usize {
        if let Some(&index) = self.enum_index.get(descriptor.full_name()) {
            return index;
        }
        let mut names: Vec<(i32, String)> = descriptor
            .values()
            .filter_map(|v| {
                descriptor
                    .get_value(v.number())
                    .map(|found| (v.number(), found.name().to_owned()))
            })
            .collect();
        names.sort_by_key(|(n, _)| *n);
        names.dedup_by_key(|(n, _)| *n);
        let index = self.enums.len();
        self.enums.push(EnumPlan {
            null_value: descriptor.full_name() == "google.protobuf.NullValue",
            names,
        });
        self.enum_index
            .insert(descriptor.full_name().to_owned(), index);
        index
    }

    fn ty(&mut self, kind: &Kind) -> Ty {
        match kind {
            Kind::Double => Ty::Double,
            Kind::Float => Ty::Float,
            Kind::Int32 => Ty::Int32,
            Kind::Int64 => Ty::Int64,
            Kind::Uint32 => Ty::Uint32,
            Kind::Uint64 => Ty::Uint64,
            Kind::Sint32 => Ty::Sint32,
            Kind::Sint64 => Ty::Sint64,
            Kind::Fixed32 => Ty::Fixed32,
            Kind::Fixed64 => Ty::Fixed64,
            Kind::Sfixed32 => Ty::Sfixed32,
            Kind::Sfixed64 => Ty::Sfixed64,
            Kind::Bool => Ty::Bool,
            Kind::String => Ty::String,
            Kind::Bytes => Ty::Bytes,
            Kind::Enum(e) => Ty::Enum(self.enumeration(e)),
            Kind::Message(m) => Ty::Message(self.message(m)),
        }
    }

    fn plan(&mut self, descriptor: &MessageDescriptor) -> MessagePlan {
        let mut unsupported = None;
        if descriptor.extensions().len() > 0 {
            unsupported = Some(format!(
                "{} has extensions: decoded by the reference path",
                descriptor.full_name()
            ));
        }
        let mut fields = Vec::new();
        let mut numbers = Vec::new();
        for field in descriptor.fields() {
            if field.is_group() {
                unsupported = Some(format!(
                    "{}.{} is a group: decoded by the reference path",
                    descriptor.full_name(),
                    field.name()
                ));
            }
            numbers.push(field.number());
            fields.push(self.field(&field));
        }
        let mut dense = Vec::new();
        let mut sparse = Vec::new();
        for (i, &number) in numbers.iter().enumerate() {
            match u16::try_from(i) {
                Ok(index) if number < DENSE_NUMBERS && index != NO_FIELD => {
                    let at = number as usize;
                    if dense.len() <= at {
                        dense.resize(at + 1, NO_FIELD);
                    }
                    dense[at] = index;
                }
                _ => sparse.push((number, i)),
            }
        }
        sparse.sort_unstable();
        let mut number_order: Vec<usize> = (0..numbers.len()).collect();
        number_order.sort_by_key(|&i| numbers[i]);
        let index_of = |name: &str| fields.iter().position(|f: &FieldPlan| f.name == name);
        let emit = match descriptor.full_name() {
            "google.protobuf.Timestamp" if self.options.timestamp_as_string => {
                Emit::Timestamp(index_of("seconds"), index_of("nanos"))
            }
            "google.protobuf.Duration" if self.options.duration_as_string => {
                Emit::Duration(index_of("seconds"), index_of("nanos"))
            }
            "google.protobuf.Struct" => Emit::Struct(index_of("fields")),
            "google.protobuf.Value" => Emit::Value,
            "google.protobuf.ListValue" => Emit::ListValue(index_of("values")),
            "google.protobuf.Empty" => Emit::Empty,
            "google.protobuf.FieldMask" => Emit::FieldMask(index_of("paths")),
            "google.protobuf.Any" => Emit::Any(index_of("type_url"), index_of("value")),
            name if output::is_wrapper(name) => Emit::Wrapper(index_of("value")),
            _ => Emit::Object,
        };
        let oneofs = descriptor.oneofs().len();
        MessagePlan {
            full_name: descriptor.full_name().to_owned(),
            emit,
            fields,
            dense,
            sparse,
            number_order,
            oneofs,
            unsupported,
        }
    }

    fn field(&mut self, field: &FieldDescriptor) -> FieldPlan {
        let kind = field.kind();
        let shape = if field.is_map() {
            let (key_kind, value_field) = match &kind {
                Kind::Message(entry) => (
                    entry.map_entry_key_field().kind(),
                    entry.map_entry_value_field(),
                ),
                other => (other.clone(), field.clone()),
            };
            let value_default = value_field.default_value();
            let key_default = key_kind.default_value();
            let plan = MapPlan {
                key: self.ty(&key_kind),
                value: self.ty(&value_field.kind()),
                default_key: Scalar::from_proto(&key_default)
                    .map_or_else(String::new, |s| s.key_text()),
                default_value: Json::Null,
            };
            let default_value = Scalar::from_proto(&value_default).map_or(Json::Null, |s| {
                scalar_json(&self.options, &self.enums, plan.value, s)
            });
            Shape::Map(Box::new(MapPlan {
                default_value,
                ..plan
            }))
        } else if field.is_list() {
            Shape::List {
                packable: !matches!(kind, Kind::String | Kind::Bytes | Kind::Message(_)),
            }
        } else {
            Shape::Single
        };
        let ty = match &shape {
            Shape::Map(map) => map.value,
            _ => self.ty(&kind),
        };
        let (default, default_json) = match shape {
            Shape::List { .. } => (None, Json::Array(Vec::new())),
            Shape::Map(_) => (None, Json::Object(Map::new())),
            Shape::Single => match ty {
                Ty::Message(_) => (None, Json::Null),
                _ => {
                    let value = field.default_value();
                    let json = Scalar::from_proto(&value).map_or(Json::Null, |s| {
                        scalar_json(&self.options, &self.enums, ty, s)
                    });
                    (Some(value), json)
                }
            },
        };
        let oneof = field.containing_oneof().and_then(|o| {
            field
                .parent_message()
                .oneofs()
                .position(|other| other.name() == o.name())
        });
        FieldPlan {
            name: field.name().to_owned(),
            key: match self.options.naming {
                Naming::SnakeCase => field.name().to_owned(),
                Naming::CamelCase => field.json_name().to_owned(),
            },
            ty,
            shape,
            presence: field.supports_presence(),
            oneof,
            default,
            default_json,
        }
    }
}

#[cfg(test)]
mod tests;
