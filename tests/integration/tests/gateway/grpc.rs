//! gRPC backends end to end: a real gRPC server on 127.0.0.1 (h2c, `sluice_integration::grpc`),
//! the gateway composed as `sluice run` composes it (catalog loaded, plugin `grpc` registered),
//! and a REST client. The service is the flight finder of `tests/integration/protos`.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use sluice_integration::grpc::{GrpcCall, GrpcReply, GrpcServer, message, pool, protos_dir};
use sluice_integration::*;

const FIND: &str = "/flight_finder.Flights/FindFlight";
const GET: &str = "/flight_finder.Flights/GetFlight";
const STREAM: &str = "/flight_finder.Flights/StreamDepartures";
const BOOK: &str = "/flight_finder.Flights/Book";

/// 2^53 + 1: a JSON number that a float would round.
const BIG_ID: i64 = 9_007_199_254_740_993;

/// The service config with the catalog (the protos folder, compiled at start-up).
fn config(endpoints: Value) -> Value {
    let mut cfg = service(endpoints);
    cfg["extra_config"]["grpc"] =
        json!({"catalog": [protos_dir().join("flights").parent().unwrap()]});
    cfg
}

fn grpc_backend(server: &GrpcServer, method: &str, settings: Value) -> Value {
    json!({"host": [server.url()], "url_pattern": method,
           "extra_config": {"backend/grpc": settings}})
}

async fn gateway(config: Value) -> Gateway {
    match try_start_gateway_with_grpc(config, sluice_plugin::Registry::new()).await {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// A flight with every kind of field set.
fn flight(pool: &prost_reflect::DescriptorPool) -> prost_reflect::DynamicMessage {
    let meal = message(
        pool,
        "flight_finder.Meal",
        &json!({"kind": "pasta", "vegetarian": true}),
    );
    let extra = message(
        pool,
        "google.protobuf.Any",
        &json!({"type_url": "type.googleapis.com/flight_finder.Meal"}),
    );
    let mut extra = extra;
    extra.set_field_by_name(
        "value",
        prost_reflect::Value::Bytes(prost_reflect::prost::Message::encode_to_vec(&meal).into()),
    );
    let mut f = message(
        pool,
        "flight_finder.Flight",
        &json!({
            "id": BIG_ID,
            "code": "BA117",
            "route": {"from": "MAD", "to": "LHR"},
            "cabin": "BUSINESS",
            "departure": {"seconds": 1_714_557_600, "nanos": 500_000_000},
            "duration": {"seconds": 8100},
            "price": {"currency": "EUR", "amount_cents": 12_345},
            "stops": [{"airport": "BIO", "layover": {"seconds": 2700}}],
            "seats_by_cabin": {"ECONOMY": 12, "FIRST": 0},
            "seats_left": {"value": 7},
            "gate": "T4-12",
            "miles": 18_446_744_073_709_551_615u64,
            "on_time_ratio": 0.92
        }),
    );
    f.set_field_by_name("extra", prost_reflect::Value::Message(extra));
    f
}

#[tokio::test]
async fn unary_call_from_params_and_query_to_json() {
    let pool = pool();
    let answer_pool = pool.clone();
    let server = GrpcServer::start(pool.clone(), move |_call| {
        let pool = answer_pool.clone();
        async move {
            let mut response = message(
                &pool,
                "flight_finder.FindFlightResponse",
                &json!({"total": 1}),
            );
            response.set_field_by_name(
                "flights",
                prost_reflect::Value::List(vec![prost_reflect::Value::Message(flight(&pool))]),
            );
            let debug = message(&pool, "google.protobuf.Struct", &json!({}));
            response.set_field_by_name("debug", prost_reflect::Value::Message(debug));
            GrpcReply::ok(response)
        }
    })
    .await;
    let gw = gateway(config(json!([{
        "endpoint": "/flights/{origin}",
        "input_query_strings": ["*"],
        "input_headers": ["X-Tenant", "X-Trace"],
        "backend": [grpc_backend(&server, FIND, json!({
            "input_mapping": {"Origin": "where.from", "dest": "where.to"},
            "header_mapping": {"X-Tenant": "customerid"}
        }))]
    }])))
    .await;

    let r = request(
        Method::GET,
        &gw.url(
            "/flights/MAD?dest=LHR&cabin=BUSINESS&max_price_cents=9007199254740993\
             &airlines=BA&airlines=IB&tags.season=summer&after=2024-05-01T10:00:00Z\
             &adults=2&direct_only=true&token=aGk%3D&not_a_field=1",
        ),
        &[("X-Tenant", "acme"), ("X-Trace", "t-1")],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-krakend-completed"), Some("true"));

    // What the server received: the message and the metadata.
    let calls = server.calls();
    assert_eq!(calls.len(), 1);
    let call: &GrpcCall = &calls[0];
    assert_eq!(call.path, FIND);
    assert_eq!(call.version, http::Version::HTTP_2);
    assert_eq!(call.header("content-type"), Some("application/grpc"));
    assert_eq!(call.header("te"), Some("trailers"));
    assert_eq!(
        call.header("customerid"),
        Some("acme"),
        "header_mapping renames"
    );
    assert_eq!(call.header("x-trace"), Some("t-1"));
    assert!(call.header("x-tenant").is_none());
    let timeout = call.header("grpc-timeout").unwrap();
    let micros: u64 = timeout.trim_end_matches('u').parse().unwrap();
    assert!(micros > 0 && micros <= 3_000_000, "grpc-timeout {timeout}");
    let sent = sluice_integration::grpc::to_json(&call.request);
    assert_eq!(
        sent,
        json!({
            "where": {"from": "MAD", "to": "LHR"},
            "cabin": 3,
            "max_price_cents": BIG_ID,
            "airlines": ["BA", "IB"],
            "after": {"seconds": 1_714_557_600},
            "tags": {"season": "summer"},
            "direct_only": true,
            "adults": 2,
            "token": "aGk="
        })
    );

    // The answer, by KrakenD's defaults: proto names, enums as numbers, timestamps and
    // durations as {seconds, nanos}, int64 as numbers with every digit, unset fields zero.
    let body = r.text();
    assert!(body.contains("\"id\":9007199254740993"), "{body}");
    assert!(body.contains("\"miles\":18446744073709551615"), "{body}");
    let json = r.json();
    assert_eq!(json["total"], 1);
    assert_eq!(json["debug"], json!({}));
    let f = &json["flights"][0];
    assert_eq!(f["code"], "BA117");
    assert_eq!(f["route"], json!({"from": "MAD", "to": "LHR"}));
    assert_eq!(f["cabin"], 3);
    assert_eq!(
        f["departure"],
        json!({"seconds": 1_714_557_600, "nanos": 500_000_000})
    );
    assert_eq!(f["duration"], json!({"seconds": 8100, "nanos": 0}));
    assert_eq!(
        f["price"],
        json!({"currency": "EUR", "amount_cents": 12_345})
    );
    assert_eq!(
        f["stops"],
        json!([{"airport": "BIO", "layover": {"seconds": 2700, "nanos": 0}}])
    );
    assert_eq!(f["seats_by_cabin"], json!({"ECONOMY": 12, "FIRST": 0}));
    assert_eq!(f["seats_left"], 7, "a wrapper is its value");
    assert_eq!(
        f["extra"],
        json!({"@type": "type.googleapis.com/flight_finder.Meal", "kind": "pasta", "vegetarian": true})
    );
    assert_eq!(f["gate"], "T4-12");
    assert!(
        f.get("cancelled_reason").is_none(),
        "an unset oneof member is left out"
    );
    assert_eq!(f["on_time_ratio"], 0.92);
}

#[tokio::test]
async fn output_switches_and_naming() {
    let pool = pool();
    let answer_pool = pool.clone();
    let server = GrpcServer::start(pool.clone(), move |_call| {
        let pool = answer_pool.clone();
        async move {
            let mut f = flight(&pool);
            f.clear_field_by_name("price");
            f.clear_field_by_name("code");
            GrpcReply::ok(f)
        }
    })
    .await;
    let gw = gateway(config(json!([
        {"endpoint": "/defaults/{id}", "backend": [grpc_backend(&server, GET, json!({}))]},
        {"endpoint": "/switched/{id}", "backend": [grpc_backend(&server, GET, json!({
            "output_enum_as_string": true,
            "output_timestamp_as_string": true,
            "output_duration_as_string": true,
            "output_remove_unset_values": true,
            "response_naming_convention": "camelCase"
        }))]}
    ])))
    .await;

    let plain = get(&gw.url("/defaults/7")).await.json();
    assert_eq!(
        plain["code"], "",
        "an unset string is written as its zero value"
    );
    assert_eq!(plain["price"], Value::Null, "an unset message is null");
    assert_eq!(plain["seats_by_cabin"]["ECONOMY"], 12);

    let r = get(&gw.url("/switched/7")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["cabin"], "BUSINESS");
    assert_eq!(j["departure"], "2024-05-01T10:00:00.500Z");
    assert_eq!(j["duration"], "8100s");
    assert_eq!(j["stops"][0]["layover"], "2700s");
    assert_eq!(j["seatsByCabin"]["FIRST"], 0);
    assert_eq!(j["seatsLeft"], 7);
    assert_eq!(
        j["id"], "9007199254740993",
        "camelCase writes 64-bit integers as strings"
    );
    assert_eq!(j["onTimeRatio"], 0.92);
    assert!(
        j.get("code").is_none() && j.get("price").is_none(),
        "unset fields removed: {j}"
    );
    // The param `{id}` filled GetFlightRequest.id (no mapping needed: its name).
    let sent = sluice_integration::grpc::to_json(&server.calls()[0].request);
    assert_eq!(sent, json!({"id": 7}));
}

#[tokio::test]
async fn request_body_fills_the_message_and_params_win() {
    let pool = pool();
    let answer_pool = pool.clone();
    let server = GrpcServer::start(pool.clone(), move |call| {
        let pool = answer_pool.clone();
        async move {
            let names: Vec<Value> = sluice_integration::grpc::to_json(&call.request)["passengers"]
                .as_array()
                .map(|p| p.iter().map(|p| p["name"].clone()).collect())
                .unwrap_or_default();
            let flight_id = sluice_integration::grpc::to_json(&call.request)["flight_id"].clone();
            GrpcReply::ok(message(
                &pool,
                "flight_finder.Booking",
                &json!({"reference": "ABC123", "flight_id": flight_id, "names": names,
                        "created": {"seconds": 0}}),
            ))
        }
    })
    .await;
    let gw = gateway(config(json!([{
        "endpoint": "/flights/{flight_id}/bookings",
        "method": "POST",
        "backend": [grpc_backend(&server, BOOK, json!({"use_request_body": true}))]
    }])))
    .await;
    let body = json!({
        "flightId": "1",
        "passengers": [{"name": "Ada", "cabin": "FIRST"}, {"name": "Alan", "cabin": 1}],
        "note": "window",
        "preferences": {"meal": "veg", "seats": [1, 2], "late": null},
        "unknown": "ignored"
    });
    let r = request(
        Method::POST,
        &gw.url(&format!("/flights/{BIG_ID}/bookings")),
        &[("Content-Type", "application/json")],
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"reference": "ABC123", "flight_id": BIG_ID, "names": ["Ada", "Alan"],
               "created": {"seconds": 0, "nanos": 0}})
    );
    let sent = sluice_integration::grpc::to_json(&server.calls()[0].request);
    assert_eq!(
        sent["flight_id"], BIG_ID,
        "the param {{flight_id}} wins over the body"
    );
    assert_eq!(sent["passengers"][0], json!({"name": "Ada", "cabin": 4}));
    assert_eq!(sent["passengers"][1]["cabin"], 1);
    assert_eq!(sent["note"], json!({"value": "window"}));
    assert_eq!(
        sent["preferences"],
        sluice_integration::grpc::to_json(&sluice_integration::grpc::value_message(
            &pool,
            &json!({"meal": "veg", "seats": [1, 2], "late": null})
        ))
    );

    // A body that does not fit the message is the client's error: 400, nothing sent.
    let calls_before = server.calls().len();
    let gw2 = gateway(config(json!([{
        "endpoint": "/book",
        "method": "POST",
        "backend": [{
            "host": [server.url()], "url_pattern": BOOK,
            "extra_config": {"backend/grpc": {"use_request_body": true},
                             "backend/http": {"return_error_code": true}}
        }]
    }])))
    .await;
    let r = request(
        Method::POST,
        &gw2.url("/book"),
        &[],
        r#"{"flight_id": "abc"}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("flight_id"), "{}", r.text());
    assert_eq!(server.calls().len(), calls_before);
}

#[tokio::test]
async fn grpc_status_maps_to_http_and_the_status_rules() {
    let server = GrpcServer::start(pool(), |call| async move {
        let id = sluice_integration::grpc::to_json(&call.request)["id"]
            .as_i64()
            .unwrap_or(0);
        match id {
            1 => GrpcReply::status(5, "no flight 1 (ñ%)"),
            2 => GrpcReply {
                trailers_only: true,
                ..GrpcReply::status(14, "backend down")
            },
            3 => GrpcReply::status(3, ""),
            _ => GrpcReply::status(16, "who are you"),
        }
    })
    .await;
    let backend = |extra: Value| {
        let mut b = grpc_backend(&server, GET, json!({}));
        for (k, v) in extra.as_object().unwrap() {
            b["extra_config"][k] = v.clone();
        }
        b
    };
    let mut cfg = config(json!([
        {"endpoint": "/plain/{id}", "backend": [backend(json!({}))]},
        {"endpoint": "/code/{id}", "backend": [backend(json!({"backend/http": {"return_error_code": true}}))]},
        {"endpoint": "/details/{id}", "backend": [backend(json!({"backend/http": {"return_error_details": "flight"}}))]}
    ]));
    cfg["extra_config"]["router"]["return_error_msg"] = json!(false);
    let gw = gateway(cfg).await;

    assert_eq!(get(&gw.url("/plain/1")).await.status, 500);
    for (id, status, text) in [
        (1, 404, "no flight 1 (ñ%)"),
        (2, 503, "backend down"),
        (3, 400, "INVALID_ARGUMENT"),
        (4, 401, "who are you"),
    ] {
        let r = get(&gw.url(&format!("/code/{id}"))).await;
        assert_eq!(r.status, status, "id {id}: {}", r.text());
        // Without router.return_error_msg the body is not shown (KrakenD's obfuscation).
        assert!(
            r.text().is_empty() || r.text() == text,
            "id {id}: {}",
            r.text()
        );
    }
    let r = get(&gw.url("/details/1")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-krakend-completed"), Some("false"));
    assert_eq!(
        r.json(),
        json!({"error_flight": {"http_status_code": 404, "http_body": "no flight 1 (ñ%)",
                                "http_body_encoding": "text/plain; charset=utf-8"}})
    );
}

#[tokio::test]
async fn return_error_msg_shows_the_grpc_message() {
    let server = GrpcServer::start(pool(), |_| async { GrpcReply::status(9, "seat taken") }).await;
    let mut b = grpc_backend(&server, GET, json!({}));
    b["extra_config"]["backend/http"] = json!({"return_error_code": true});
    let gw = gateway(config(json!([{"endpoint": "/f", "backend": [b]}]))).await;
    let r = get(&gw.url("/f")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "seat taken");
}

#[tokio::test]
async fn the_deadline_is_sent_and_kept() {
    let server = GrpcServer::start(pool(), |_| async {
        GrpcReply::status(0, "").delay(Duration::from_secs(3))
    })
    .await;
    let gw = gateway(config(json!([{
        "endpoint": "/slow", "timeout": "300ms",
        "backend": [grpc_backend(&server, GET, json!({}))]
    }])))
    .await;
    let started = Instant::now();
    let r = get(&gw.url("/slow")).await;
    assert_eq!(r.status, 500);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let timeout = server.calls()[0].header("grpc-timeout").unwrap().to_owned();
    let micros: u64 = timeout.trim_end_matches('u').parse().unwrap();
    assert!(
        micros <= 300_000 && micros > 100_000,
        "grpc-timeout {timeout}"
    );
}

#[tokio::test]
async fn metadata_comes_back_as_headers_of_a_no_op_endpoint() {
    let pool = pool();
    let answer_pool = pool.clone();
    let server = GrpcServer::start(pool.clone(), move |_| {
        let pool = answer_pool.clone();
        async move {
            GrpcReply::ok(message(
                &pool,
                "flight_finder.Flight",
                &json!({"code": "IB1"}),
            ))
            .header("x-served-by", "node-7")
            .trailer("x-cost", "12")
        }
    })
    .await;
    let gw = gateway(config(json!([{
        "endpoint": "/raw", "output_encoding": "no-op",
        "backend": [grpc_backend(&server, GET, json!({"output_remove_unset_values": true}))]
    }])))
    .await;
    let r = get(&gw.url("/raw")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-served-by"), Some("node-7"));
    assert_eq!(r.header("x-cost"), Some("12"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), json!({"code": "IB1"}));
}

#[tokio::test]
async fn server_streaming_answers_an_array() {
    let pool = pool();
    let answer_pool = pool.clone();
    let server = GrpcServer::start(pool.clone(), move |call| {
        let pool = answer_pool.clone();
        async move {
            let limit = sluice_integration::grpc::to_json(&call.request)["limit"]
                .as_i64()
                .unwrap_or(0);
            GrpcReply::stream(
                (0..limit)
                    .map(|i| {
                        message(
                            &pool,
                            "flight_finder.Flight",
                            &json!({"code": format!("F{i}")}),
                        )
                    })
                    .collect(),
            )
        }
    })
    .await;
    let settings = json!({"output_remove_unset_values": true});
    let gw = gateway(config(json!([
        {"endpoint": "/departures/{airport}", "input_query_strings": ["limit"],
         "output_encoding": "json-collection",
         "backend": [{"host": [server.url()], "url_pattern": STREAM, "is_collection": true,
                      "extra_config": {"backend/grpc": settings}}]},
        {"endpoint": "/wrapped/{airport}", "input_query_strings": ["limit"],
         "backend": [{"host": [server.url()], "url_pattern": STREAM, "is_collection": true,
                      "extra_config": {"backend/grpc": settings}}]}
    ])))
    .await;
    let r = get(&gw.url("/departures/MAD?limit=3")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!([{"code": "F0"}, {"code": "F1"}, {"code": "F2"}])
    );
    let r = get(&gw.url("/wrapped/MAD?limit=0")).await;
    assert_eq!(r.json(), json!({"collection": []}));
    assert_eq!(
        sluice_integration::grpc::to_json(&server.calls()[0].request),
        json!({"airport": "MAD", "limit": 3})
    );
}

#[tokio::test]
async fn the_normal_pipeline_applies_and_merges_with_http_backends() {
    let pool = pool();
    let answer_pool = pool.clone();
    let server = GrpcServer::start(pool.clone(), move |_| {
        let pool = answer_pool.clone();
        async move { GrpcReply::ok(flight(&pool)) }
    })
    .await;
    let http = Backend::start(|_| async { Reply::json(200, &json!({"weather": "sunny"})) }).await;
    let mut grpc = grpc_backend(&server, GET, json!({"output_enum_as_string": true}));
    grpc["allow"] = json!(["code", "cabin", "route.to"]);
    grpc["mapping"] = json!({"code": "flight"});
    grpc["group"] = json!("flight");
    let gw = gateway(config(json!([{
        "endpoint": "/trip",
        "backend": [grpc, {"host": [http.url()], "url_pattern": "/weather"}]
    }])))
    .await;
    let r = get(&gw.url("/trip")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"flight": {"flight": "BA117", "cabin": "BUSINESS", "route": {"to": "LHR"}},
               "weather": "sunny"})
    );
}

#[tokio::test]
async fn alternate_hosts_take_over_when_one_cannot_be_reached() {
    let pool = pool();
    let answer_pool = pool.clone();
    let server = GrpcServer::start(pool.clone(), move |_| {
        let pool = answer_pool.clone();
        async move {
            GrpcReply::ok(message(
                &pool,
                "flight_finder.Flight",
                &json!({"code": "OK"}),
            ))
        }
    })
    .await;
    // Bound then closed: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = gateway(config(json!([{
        "endpoint": "/f",
        "backend": [{"host": [format!("http://{dead}"), server.url()], "url_pattern": GET,
                     "extra_config": {"backend/grpc": {"use_alternate_host_on_error": true}}}]
    }])))
    .await;
    for _ in 0..6 {
        let r = get(&gw.url("/f")).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

#[tokio::test]
async fn a_descriptor_set_serves_the_same_as_the_sources() {
    // The catalog as KrakenD reads it: a .pb written by protoc --include_imports (here by
    // protox, which writes the same bytes).
    let dir = tempfile::Builder::new()
        .prefix("sluice-grpc-pb-")
        .tempdir()
        .unwrap();
    let mut compiler = protox::Compiler::new([protos_dir()]).unwrap();
    compiler.include_imports(true);
    compiler
        .open_files(["flights/flight_finder.proto"])
        .unwrap();
    let pb = dir.path().join("flights.pb");
    std::fs::write(&pb, compiler.encode_file_descriptor_set()).unwrap();

    let pool = pool();
    let answer_pool = pool.clone();
    let server = GrpcServer::start(pool.clone(), move |_| {
        let pool = answer_pool.clone();
        async move {
            GrpcReply::ok(message(
                &pool,
                "flight_finder.Flight",
                &json!({"code": "PB"}),
            ))
        }
    })
    .await;
    let mut cfg = service(json!([{
        "endpoint": "/f", "backend": [grpc_backend(&server, GET, json!({"output_remove_unset_values": true}))]
    }]));
    cfg["extra_config"]["grpc"] = json!({"catalog": [pb]});
    let gw = gateway(cfg).await;
    assert_eq!(get(&gw.url("/f")).await.json(), json!({"code": "PB"}));
}

#[tokio::test]
async fn check_names_the_file_the_json_path_and_the_proto() {
    let catalog = protos_dir();
    let cfg = json!({
        "version": 3,
        "extra_config": {"grpc": {"catalog": [catalog, "missing/folder"]}},
        "endpoints": [{"endpoint": "/a", "backend": [{"host": ["localhost:4242"], "url_pattern": "/x"}]}]
    });
    let errors = check_with_grpc(&cfg).await;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0]
            .starts_with("test.json: extra_config.grpc.catalog[1]: cannot read \"missing/folder\""),
        "{errors:#?}"
    );

    let backend = |pattern: &str, settings: Value| {
        json!({"host": ["localhost:4242"], "url_pattern": pattern,
               "extra_config": {"backend/grpc": settings}})
    };
    let cfg = json!({
        "version": 3,
        "extra_config": {"grpc": {"catalog": [catalog]}},
        "endpoints": [
            {"endpoint": "/a", "backend": [backend("/flight_finder.Flights/FindFlights", json!({}))]},
            {"endpoint": "/b", "backend": [backend("/flight_finder.Planes/Find", json!({}))]},
            {"endpoint": "/c", "backend": [backend(FIND, json!({
                "input_mapping": {"Origin": "where.frm", "lat": "where", "x": "flights"},
                "idle_timeout": "1m"
            }))]},
            {"endpoint": "/d", "backend": [backend("/flight_finder.Flights/BookSeats", json!({}))]},
            {"endpoint": "/e", "backend": [{"host": ["localhost:4242"], "url_pattern": GET,
                "extra_config": {"plugin/http-client": {"name": "grpc", "grpc": {
                    "input_mapping": {"Id": "ident"}}}}}]},
            {"endpoint": "/f", "backend": [{"host": ["localhost:4242"], "url_pattern": GET,
                "extra_config": {"plugin/http-client": {"name": "grpc", "allowed_hosts": ["*"]}}}]}
        ]
    });
    let errors = check_with_grpc(&cfg).await;
    let expected = [
        "test.json: endpoints[0].backend[0].url_pattern: \"/flight_finder.Flights/FindFlights\": the service flight_finder.Flights has no method \"FindFlights\" (its methods: FindFlight, GetFlight, StreamDepartures, BookSeats, Book)",
        "test.json: endpoints[1].backend[0].url_pattern: \"/flight_finder.Planes/Find\": the catalog has no service \"flight_finder.Planes\" (its services: bench.Users, flight_finder.Flights)",
        "test.json: endpoints[2].backend[0].extra_config[\"backend/grpc\"].idle_timeout: field \"idle_timeout\" is not a gRPC backend setting",
        "test.json: endpoints[3].backend[0].url_pattern: flight_finder.Flights.BookSeats is a client-streaming method",
        "test.json: endpoints[4].backend[0].extra_config[\"plugin/http-client\"].grpc.input_mapping.Id: \"ident\": flight_finder.GetFlightRequest has no field \"ident\" (its fields: id)",
        "test.json: endpoints[5].backend[0].extra_config[\"plugin/http-client\"].allowed_hosts: does not apply to the gRPC client",
    ];
    for e in expected {
        assert!(
            errors.iter().any(|got| got.starts_with(e)),
            "missing {e:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");

    // With the settings fixed, the mapping targets are checked.
    let cfg = json!({
        "version": 3,
        "extra_config": {"grpc": {"catalog": [catalog]}},
        "endpoints": [{"endpoint": "/c", "backend": [backend(FIND, json!({
            "input_mapping": {"Origin": "where.frm", "lat": "where", "x": "flights", "t": "tags.k", "ok": "where.from"}
        }))]}]
    });
    let errors = check_with_grpc(&cfg).await;
    let mapping = "test.json: endpoints[0].backend[0].extra_config[\"backend/grpc\"].input_mapping";
    for e in [
        format!(
            "{mapping}.Origin: \"where.frm\": flight_finder.Where has no field \"frm\" (its fields: from, to)"
        ),
        format!(
            "{mapping}.lat: \"where\": flight_finder.FindFlightRequest.where is a flight_finder.Where message: name one of its fields"
        ),
        format!(
            "{mapping}.x: \"flights\": flight_finder.FindFlightRequest has no field \"flights\""
        ),
    ] {
        assert!(
            errors.iter().any(|got| got.starts_with(&e)),
            "missing {e:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[tokio::test]
async fn a_gateway_without_a_catalog_refuses_grpc_backends() {
    let err = try_start_gateway_with_grpc(
        service(
            json!([{"endpoint": "/a", "backend": [{"host": ["localhost:4242"], "url_pattern": GET,
            "extra_config": {"backend/grpc": {}}}]}]),
        ),
        sluice_plugin::Registry::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("endpoints[0].backend[0].extra_config[\"backend/grpc\"]: a gRPC backend needs the service's protobuf catalog"),
        "{err}"
    );
}

#[tokio::test]
async fn a_wasm_plugin_calls_a_grpc_method_with_send_http2() {
    // plugins/grpc-caller targets sluice:plugin@0.1.1 (header pairs, host.send-http2) and
    // runs through the host's 0.1 adapter; the other example plugins are built on the SDK's
    // 0.3.0 contract and load beside it on the same host.
    let grpc_caller =
        std::fs::read(sluice_integration::plugins::plugin_file("grpc-caller")).unwrap();
    let contains = |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(contains(&grpc_caller, b"sluice:plugin/host@0.1.1"));
    let static_answer =
        std::fs::read(sluice_integration::plugins::plugin_file("static-answer")).unwrap();
    assert!(contains(&static_answer, b"sluice:plugin/handler@0.3.0"));

    let pool = pool();
    let answer_pool = pool.clone();
    let server = GrpcServer::start(pool.clone(), move |call| {
        let pool = answer_pool.clone();
        async move {
            let id = sluice_integration::grpc::to_json(&call.request)["id"]
                .as_i64()
                .unwrap_or(0);
            if id == 404 {
                return GrpcReply::status(5, "no such flight");
            }
            GrpcReply::ok(message(
                &pool,
                "flight_finder.Flight",
                &json!({"id": id, "code": "WASM"}),
            ))
        }
    })
    .await;
    let plugin = json!({"name": "grpc-caller", "grpc-caller": {
        "method": GET, "input": {"id": 1}, "output": {"1": "id", "2": "code"}}});
    let gw = try_start_gateway_with_grpc(
        service(json!([
            {"endpoint": "/wasm-grpc", "input_query_strings": ["id"],
             "backend": [{"host": [server.url()], "url_pattern": "/",
                          "extra_config": {"plugin/http-client": plugin}}]},
            {"endpoint": "/wasm-grpc-code", "input_query_strings": ["id"],
             "backend": [{"host": [server.url()], "url_pattern": "/",
                          "extra_config": {"plugin/http-client": plugin,
                                           "backend/http": {"return_error_code": true}}}]}
        ])),
        sluice_integration::plugins::registry(),
    )
    .await
    .unwrap();
    let r = get(&gw.url("/wasm-grpc?id=7")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"id": 7, "code": "WASM"}));
    let call = &server.calls()[0];
    assert_eq!(call.version, http::Version::HTTP_2);
    assert_eq!(call.path, GET);
    let r = get(&gw.url("/wasm-grpc-code?id=404")).await;
    assert_eq!(r.status, 502);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"grpc_status": 5, "grpc_message": "no such flight"})
    );
}

/// An https gRPC backend (HTTP/2 by ALPN) asking for a client certificate: the backend's own
/// `client_tls` in `backend/grpc` trusts the test CA and shows a client certificate, so the
/// call goes through; the service's `client_tls` applies to a backend without its own; with no
/// settings the unknown CA is refused; a bad file stops start-up naming its JSON path.
#[tokio::test]
async fn https_backends_use_the_backends_client_tls_or_the_services() {
    use sluice_integration::tls::{Ca, TLS12_AND_13, TempDir, Usage, acceptor};
    let dir = TempDir::new("grpc-tls");
    let ca = Ca::new("grpc test CA");
    let server_cert = ca.issue(&["127.0.0.1"], Usage::Server);
    let ca_file = dir.write("ca.pem", &ca.cert_pem);
    let (cert, key) = ca.issue(&["sluice"], Usage::Client).write(&dir, "client");
    let answer_pool = pool();
    let server = GrpcServer::start_tls(
        pool(),
        acceptor(&server_cert, Some(&ca), TLS12_AND_13, &[b"h2"]),
        move |_call| {
            let pool = answer_pool.clone();
            async move { GrpcReply::ok(flight(&pool)) }
        },
    )
    .await;
    let mtls =
        json!({"ca_certs": [ca_file], "client_certs": [{"certificate": cert, "private_key": key}]});
    let backend = |settings: Value| {
        json!({"host": [server.tls_url()], "url_pattern": GET,
               "extra_config": {"backend/grpc": settings}})
    };
    // The backend's own settings.
    let own = config(json!([
        {"endpoint": "/own/{id}", "backend": [backend(json!({"client_tls": mtls}))]},
        {"endpoint": "/none/{id}", "backend": [backend(json!({}))]}
    ]));
    let gw = gateway(own).await;
    let r = get(&gw.url("/own/7")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["code"], "BA117");
    // No settings: the system's roots do not know the test CA.
    let r = get(&gw.url("/none/7")).await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(server.calls().len(), 1);

    // The service's `client_tls` for a backend without its own.
    let mut service = config(json!([{"endpoint": "/svc/{id}", "backend": [backend(json!({}))]}]));
    service["client_tls"] = mtls.clone();
    let gw = gateway(service).await;
    let r = get(&gw.url("/svc/7")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(server.calls().len(), 2);

    // A certificate that does not load, and two spellings of the backend's TLS.
    let bad = config(json!([{"endpoint": "/bad/{id}", "backend": [backend(json!({
        "client_tls": {"ca_certs": [dir.path("missing.pem")]}}))]}]));
    let problems = check_with_grpc(&bad).await.join("\n");
    assert!(
        problems.contains(
            "endpoints[0].backend[0].extra_config[\"backend/grpc\"].client_tls.ca_certs[0]"
        ),
        "{problems}"
    );
    let mut twice = backend(json!({"client_tls": {"ca_certs": [ca_file]}}));
    twice["extra_config"]["backend/http/client"] = json!({"client_tls": {"ca_certs": [ca_file]}});
    let problems = check_with_grpc(&config(
        json!([{"endpoint": "/twice/{id}", "backend": [twice]}]),
    ))
    .await
    .join("\n");
    assert!(problems.contains("keep one of them"), "{problems}");
}
