//! Config builders.

use serde_json::{Value, json};

/// A service as the CE and Lura fixtures configure it: version 3, timeout 3s, cache_ttl 3600s,
/// `router.return_error_msg: true`, with these endpoints.
pub fn service(endpoints: Value) -> Value {
    json!({
        "version": 3,
        "name": "sluice-integration",
        "timeout": "3s",
        "cache_ttl": "3600s",
        "extra_config": {"router": {"return_error_msg": true}},
        "endpoints": endpoints
    })
}

/// One backend entry: `host` = `[host_url]`, `url_pattern` = `url_pattern`, merged with `extra`
/// (an object whose keys override or add to the backend's).
///
/// # Panics
/// If `extra` is neither null nor an object.
pub fn backend(host_url: &str, url_pattern: &str, extra: Value) -> Value {
    let mut b = json!({"host": [host_url], "url_pattern": url_pattern});
    merge(&mut b, extra);
    b
}

/// One endpoint entry with these backends, merged with `extra`.
///
/// # Panics
/// If `extra` is neither null nor an object.
pub fn endpoint(path: &str, backends: Value, extra: Value) -> Value {
    let mut e = json!({"endpoint": path, "backend": backends});
    merge(&mut e, extra);
    e
}

fn merge(target: &mut Value, extra: Value) {
    match extra {
        Value::Null => {}
        Value::Object(map) => {
            let obj = target.as_object_mut().expect("target is an object");
            for (k, v) in map {
                obj.insert(k, v);
            }
        }
        other => panic!("extra must be an object, got {other}"),
    }
}
