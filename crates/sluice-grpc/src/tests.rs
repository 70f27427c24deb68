//! Input and output mapping against the integration tests' flight finder protos.
#![allow(clippy::unwrap_used)]

use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, ReflectMessage as _, Value};
use serde_json::{Value as Json, json};

use crate::input::{FieldPath, InputPlan};
use crate::output::OutputOptions;
use crate::settings::Settings;

fn pool() -> DescriptorPool {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/integration/protos");
    let mut compiler = protox::Compiler::new([dir]).unwrap();
    compiler.include_imports(true);
    compiler
        .open_files([
            "flights/flight_finder.proto",
            "google/protobuf/field_mask.proto",
        ])
        .unwrap();
    compiler.descriptor_pool()
}

fn plan(pool: &DescriptorPool, message: &str, settings: Json) -> InputPlan {
    let settings = Settings::parse(Some(&settings), "s").unwrap();
    InputPlan::new(pool.get_message_by_name(message).unwrap(), &settings).unwrap()
}

fn out(settings: Json) -> OutputOptions {
    OutputOptions::new(&Settings::parse(Some(&settings), "s").unwrap())
}

#[test]
fn query_values_are_decoded_and_typed() {
    let pool = pool();
    let p = plan(
        &pool,
        "flight_finder.FindFlightRequest",
        json!({"input_mapping": {"origin": "where.from"}}),
    );
    let m = p
        .build(
            &[("origin".into(), "San José".into())],
            Some("where.to=New+York&cabin=2&airlines=A%26B&direct_only=t&tags.k=v&group_code=G1&adults=3"),
            b"",
        )
        .unwrap();
    let j = out(json!({"output_remove_unset_values": true})).message(&m);
    assert_eq!(j["where"], json!({"from": "San José", "to": "New York"}));
    assert_eq!(j["cabin"], 2);
    assert_eq!(j["airlines"], json!(["A&B"]));
    assert_eq!(j["direct_only"], true);
    assert_eq!(j["tags"], json!({"k": "v"}));
    // A oneof keeps the last member set.
    assert_eq!(j["adults"], 3);
    assert!(j.get("group_code").is_none());
}

#[test]
fn values_that_do_not_fit_are_the_clients_error() {
    let pool = pool();
    let p = plan(&pool, "flight_finder.FindFlightRequest", json!({}));
    for (query, wanted) in [
        (
            "cabin=LOUNGE",
            "not a value of flight_finder.Cabin (one of CABIN_UNSPECIFIED, ECONOMY",
        ),
        ("direct_only=maybe", "is not true or false"),
        ("max_price_cents=1.5", "is not a 64-bit integer"),
        ("adults=99999999999", "is not a 32-bit integer"),
        ("token=%%%", "is not base64"),
        ("after=yesterday", "is not an RFC 3339 time"),
    ] {
        let e = p.build(&[], Some(query), b"").unwrap_err();
        assert!(e.0.contains(wanted), "{query}: {}", e.0);
    }
    // Unknown keys are left out.
    assert!(p.build(&[], Some("nope=1&where.nope=2"), b"").is_ok());
    let bytes = plan(
        &pool,
        "flight_finder.FindFlightRequest",
        json!({"input_assume_bytes": true}),
    );
    let m = bytes.build(&[], Some("token=%%%"), b"").unwrap();
    assert_eq!(
        out(json!({"output_remove_unset_values": true})).message(&m)["token"],
        "JSUl"
    );
}

#[test]
fn bodies_read_the_json_mapping() {
    let pool = pool();
    let p = plan(
        &pool,
        "flight_finder.BookRequest",
        json!({"use_request_body": true}),
    );
    let body = json!({
        "flight_id": 7,
        "passengers": [{"name": "A", "cabin": "PREMIUM"}],
        "note": "hi",
        "preferences": [1, "x", true, null, {"a": []}]
    });
    let m = p.build(&[], None, body.to_string().as_bytes()).unwrap();
    let j = out(json!({})).message(&m);
    assert_eq!(j["flight_id"], 7);
    assert_eq!(j["passengers"], json!([{"name": "A", "cabin": 2}]));
    assert_eq!(j["note"], "hi");
    assert_eq!(j["preferences"], json!([1, "x", true, null, {"a": []}]));
    let e = p.build(&[], None, b"[1]").unwrap_err();
    assert!(e.0.contains("must be a JSON object"), "{}", e.0);
    let e = p
        .build(&[], None, br#"{"passengers": [{"cabin": true}]}"#)
        .unwrap_err();
    assert!(
        e.0.contains("passengers: [0]: cabin: expected an enum name or number"),
        "{}",
        e.0
    );

    let f = plan(
        &pool,
        "flight_finder.Flight",
        json!({"use_request_body": true}),
    );
    let body = json!({
        "departure": "2024-05-01T10:00:00Z", "duration": "1.5s", "seatsLeft": 3,
        "extra": {"@type": "type.googleapis.com/flight_finder.Meal", "kind": "soup"},
        "seats_by_cabin": {"FIRST": "2"}, "miles": "18446744073709551615"
    });
    let m = f.build(&[], None, body.to_string().as_bytes()).unwrap();
    let j = out(
        json!({"output_timestamp_as_string": true, "output_duration_as_string": true,
                       "output_remove_unset_values": true}),
    )
    .message(&m);
    assert_eq!(
        j,
        json!({"departure": "2024-05-01T10:00:00Z", "duration": "1.500s", "seats_left": 3,
               "extra": {"@type": "type.googleapis.com/flight_finder.Meal", "kind": "soup"},
               "seats_by_cabin": {"FIRST": 2}, "miles": 18_446_744_073_709_551_615u64})
    );
}

#[test]
fn paths_are_checked_at_start_up() {
    let pool = pool();
    let req = pool
        .get_message_by_name("flight_finder.FindFlightRequest")
        .unwrap();
    assert!(FieldPath::resolve(&req, "where.from").is_ok());
    assert!(
        FieldPath::resolve(&req, "WHERE.From").is_ok(),
        "case-insensitive"
    );
    assert!(
        FieldPath::resolve(&req, "maxPriceCents").is_ok(),
        "JSON names"
    );
    assert!(FieldPath::resolve(&req, "tags.any").is_ok());
    assert!(
        FieldPath::resolve(&req, "after").is_ok(),
        "a Timestamp from its text"
    );
    let err = |p: &str| FieldPath::resolve(&req, p).unwrap_err();
    assert!(
        err("tags").contains("is a map: name an entry"),
        "{}",
        err("tags")
    );
    assert!(
        err("where.from.x").contains("is not a message"),
        "{}",
        err("where.from.x")
    );
    assert!(
        err("where").contains("name one of its fields"),
        "{}",
        err("where")
    );
    let book = pool
        .get_message_by_name("flight_finder.BookRequest")
        .unwrap();
    let e = FieldPath::resolve(&book, "passengers.name").unwrap_err();
    assert!(e.contains("repeated message field"), "{e}");
}

#[test]
fn well_known_and_odd_values_on_output() {
    let pool = pool();
    let flight = pool.get_message_by_name("flight_finder.Flight").unwrap();
    let mut m = DynamicMessage::new(flight.clone());
    m.set_field_by_name("on_time_ratio", Value::F64(f64::NAN));
    let mut any = DynamicMessage::new(pool.get_message_by_name("google.protobuf.Any").unwrap());
    any.set_field_by_name(
        "type_url",
        Value::String("type.googleapis.com/x.Unknown".into()),
    );
    any.set_field_by_name("value", Value::Bytes(vec![1, 2].into()));
    m.set_field_by_name("extra", Value::Message(any));
    let mut ts = DynamicMessage::new(
        pool.get_message_by_name("google.protobuf.Timestamp")
            .unwrap(),
    );
    ts.set_field_by_name("seconds", Value::I64(i64::MAX));
    m.set_field_by_name("departure", Value::Message(ts));
    m.set_field_by_name("cabin", Value::EnumNumber(42));
    let j = out(
        json!({"output_remove_unset_values": true, "output_enum_as_string": true,
                       "output_timestamp_as_string": true}),
    )
    .message(&m);
    assert_eq!(j["on_time_ratio"], "NaN");
    assert_eq!(
        j["extra"],
        json!({"@type": "type.googleapis.com/x.Unknown", "value": "AQI="})
    );
    assert_eq!(j["departure"], Json::Null, "out of the mapping's range");
    assert_eq!(j["cabin"], 42, "an unknown enum value stays a number");

    // Everything written by default, camelCase.
    let empty = DynamicMessage::new(flight);
    let j = out(json!({"response_naming_convention": "camelCase"})).message(&empty);
    assert_eq!(j["id"], "0");
    assert_eq!(j["seatsByCabin"], json!({}));
    assert_eq!(j["stops"], json!([]));
    assert_eq!(j["route"], Json::Null);
    assert!(j.get("gate").is_none() && j.get("cancelledReason").is_none());

    // A map with integer keys and a FieldMask.
    let mut mask = DynamicMessage::new(
        pool.get_message_by_name("google.protobuf.FieldMask")
            .unwrap(),
    );
    mask.set_field_by_name(
        "paths",
        Value::List(vec![
            Value::String("seats_left".into()),
            Value::String("route.to".into()),
        ]),
    );
    assert_eq!(out(json!({})).message(&mask), json!("seatsLeft,route.to"));
    let st = pool.get_message_by_name("google.protobuf.Struct").unwrap();
    let mut s = DynamicMessage::new(st);
    s.set_field_by_name("fields", Value::Map(Default::default()));
    assert_eq!(out(json!({})).message(&s), json!({}));
    let _ = MapKey::I32(1);
    assert_eq!(s.descriptor().full_name(), "google.protobuf.Struct");
}
