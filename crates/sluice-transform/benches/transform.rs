//! Per-request costs: formatting one backend answer and decoding one JSON body.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value};
use sluice_config::Encoding;
use sluice_transform::{EntityFormatter, decode, to_json};

/// About 200 bytes of JSON, the size of a small API answer.
const BODY: &[u8] = br#"{"id":123456,"name":"Elliot Alderson","email":"elliot@example.com","active":true,"role":"admin","address":{"city":"New York","zip":"10001","street":"5th Avenue"},"tags":["a","b","c"],"score":98.5}"#;

fn sample() -> Map<String, Value> {
    decode(Encoding::Json, false, BODY).unwrap_or_default()
}

fn bench_format(c: &mut Criterion) {
    let allow = ["id", "name", "email", "address.city", "tags"].map(String::from);
    let mapping = BTreeMap::from([("email".to_owned(), "contact".to_owned())]);
    let formatter = EntityFormatter::new(None, &allow, &[], &mapping, Some("user"), &[]);
    let data = sample();
    c.bench_function("format allow+mapping+group (200 B object)", |b| {
        b.iter_batched(
            || data.clone(),
            |data| black_box(formatter.format(data)),
            criterion::BatchSize::SmallInput,
        );
    });
}

/// Baseline for the format numbers: cloning and dropping the same object.
fn bench_clone(c: &mut Criterion) {
    let data = sample();
    c.bench_function("clone+drop (baseline, 200 B object)", |b| {
        b.iter(|| black_box(data.clone()));
    });
}

fn bench_decode(c: &mut Criterion) {
    assert!(
        BODY.len() >= 190 && BODY.len() <= 210,
        "body is {} bytes",
        BODY.len()
    );
    c.bench_function("decode json (200 B body)", |b| {
        b.iter(|| black_box(decode(Encoding::Json, false, black_box(BODY))));
    });
    let data = sample();
    c.bench_function("render json (200 B object)", |b| {
        b.iter(|| black_box(to_json(black_box(&data))));
    });
}

criterion_group!(benches, bench_format, bench_clone, bench_decode);
criterion_main!(benches);
