//! What krakend-jose does with a token's claims once its signature holds: the registered
//! claims (go-jose's rules), roles and scopes, and claims written as text for headers and URLs
//! (its `Claims.Get` and `Claims.List`, Go's formatting included).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::config::ScopesMatcher;

/// Checks `iss`, `aud`, `exp`, `nbf` and `iat` as go-jose does: each of the right type when
/// present; the issuer equal when one is expected; every expected audience present; not expired,
/// not yet valid or issued in the future beyond `leeway`. Returns why not.
pub(crate) fn check_registered(
    claims: &Map<String, Value>,
    issuer: &str,
    audience: &[String],
    leeway: Duration,
    now: SystemTime,
) -> Result<(), String> {
    let string = |name: &str| match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(format!("claim {name:?} is not a string")),
    };
    let iss = string("iss")?;
    string("sub")?;
    string("jti")?;
    let aud: Vec<&str> = match claims.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or("claim \"aud\" holds a non-string"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("claim \"aud\" is neither a string nor a list".to_owned()),
    };
    // go-jose's NumericDate: any JSON number, truncated to whole seconds.
    let date = |name: &str| match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|f| Some(f.trunc() as i64))
            .ok_or_else(|| format!("claim {name:?} is not a date")),
        Some(_) => Err(format!("claim {name:?} is not a number")),
    };
    let (exp, nbf, iat) = (date("exp")?, date("nbf")?, date("iat")?);
    if !issuer.is_empty() && iss != Some(issuer) {
        return Err(format!("issuer {iss:?} is not {issuer:?}"));
    }
    if let Some(missing) = audience.iter().find(|a| !aud.contains(&a.as_str())) {
        return Err(format!("audience {missing:?} is not in {aud:?}"));
    }
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let leeway = leeway.as_nanos() as i128;
    let at = |seconds: i64| i128::from(seconds) * 1_000_000_000;
    if let Some(nbf) = nbf
        && now + leeway < at(nbf)
    {
        return Err("the token is not valid yet (nbf)".to_owned());
    }
    if let Some(exp) = exp
        && now - leeway > at(exp)
    {
        return Err("the token has expired (exp)".to_owned());
    }
    if let Some(iat) = iat
        && now + leeway < at(iat)
    {
        return Err("the token was issued in the future (iat)".to_owned());
    }
    Ok(())
}

/// The object holding the last key of a dotted path, and that key (`a.b.c` -> `a.b`, `c`);
/// `None` when the path does not lead to an object.
fn nested<'a, 'p>(
    claims: &'a Map<String, Value>,
    path: &'p str,
) -> Option<(&'a Map<String, Value>, &'p str)> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop()?;
    let mut current = claims;
    for part in parts {
        current = current.get(part)?.as_object()?;
    }
    Some((current, last))
}

/// Whether the claim holds one of `required` (a list, or a space-separated string).
fn holds_any(value: Option<&Value>, required: &[String]) -> bool {
    given(value).is_some_and(|given| required.iter().any(|r| given.contains(&r.as_str())))
}

fn given(value: Option<&Value>) -> Option<Vec<&str>> {
    match value? {
        Value::Array(items) => Some(items.iter().filter_map(Value::as_str).collect()),
        Value::String(s) => Some(s.split(' ').collect()),
        _ => None,
    }
}

/// krakend-jose's role check: no roles required, or one of them in the roles claim (nested
/// with `roles_key_is_nested`, when the key has dots and is not a URL).
pub(crate) fn has_role(
    claims: &Map<String, Value>,
    key: &str,
    nested_key: bool,
    required: &[String],
) -> bool {
    if required.is_empty() {
        return true;
    }
    if nested_key && key.contains('.') && !key.starts_with("http") {
        return nested(claims, key).is_some_and(|(obj, last)| holds_any(obj.get(last), required));
    }
    holds_any(claims.get(key), required)
}

/// krakend-jose's scope check (`scopes_key` nested whenever it has dots).
pub(crate) fn has_scopes(
    claims: &Map<String, Value>,
    key: &str,
    required: &[String],
    matcher: ScopesMatcher,
) -> bool {
    if required.is_empty() || key.is_empty() {
        return true;
    }
    let value = if key.contains('.') {
        nested(claims, key).and_then(|(obj, last)| obj.get(last))
    } else {
        claims.get(key)
    };
    let Some(given) = given(value).filter(|g| !g.is_empty()) else {
        return false;
    };
    match matcher {
        ScopesMatcher::Any => required.iter().any(|r| given.contains(&r.as_str())),
        ScopesMatcher::All => required.iter().all(|r| given.contains(&r.as_str())),
    }
}

/// The claim a `propagate_claims` entry names: nested by dots unless it is a URL.
pub(crate) fn propagated<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if name.contains('.') && !name.starts_with("http") {
        nested(claims, name).and_then(|(obj, last)| obj.get(last))
    } else {
        claims.get(name)
    }
}

/// A claim as one string (krakend-jose's `Claims.Get`): numbers whole when whole, lists joined
/// with commas, anything else as JSON.
pub(crate) fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => number_text(n),
        Value::Array(items) => items.iter().map(go_v).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A claim as a list of strings (krakend-jose's `Claims.List`).
pub(crate) fn as_list(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().map(go_v).collect(),
        other => vec![as_text(other)],
    }
}

fn number_text(n: &serde_json::Number) -> String {
    let f = n.as_f64().unwrap_or_default();
    let r = f.round();
    if (f - r).abs() <= 1e-6 {
        format!("{}", r as i64)
    } else {
        format!("{f:.6}")
    }
}

/// Go's `%v` of a value decoded into `interface{}`.
fn go_v(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or_default()),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(go_v).collect::<Vec<_>>().join(" "))
        }
        Value::Object(map) => format!(
            "map[{}]",
            map.iter()
                .map(|(k, v)| format!("{k}:{}", go_v(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Go's `%v` of a float64 (`%g` with the shortest digits): an exponent below 1e-4 and from
/// 1e6 up.
fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let text = format!("{f:e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or_default();
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn registered_claims_as_go_jose() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let second = Duration::from_secs(1);
        let ok = |c: Value, iss: &str, aud: &[&str]| {
            let aud: Vec<String> = aud.iter().map(|s| (*s).to_owned()).collect();
            check_registered(&claims(c), iss, &aud, second, now)
        };
        assert!(ok(json!({"exp": 1000}), "", &[]).is_ok());
        assert!(
            ok(json!({"exp": 999}), "", &[]).is_ok(),
            "within the leeway"
        );
        assert!(ok(json!({"exp": 998}), "", &[]).is_err());
        assert!(ok(json!({"nbf": 1002}), "", &[]).is_err());
        assert!(ok(json!({"iat": 1001}), "", &[]).is_ok());
        assert!(ok(json!({"iat": 1002}), "", &[]).is_err());
        assert!(ok(json!({"exp": "2000"}), "", &[]).is_err());
        assert!(ok(json!({"iss": "a"}), "a", &[]).is_ok());
        assert!(ok(json!({}), "a", &[]).is_err());
        assert!(ok(json!({"aud": "x"}), "", &["x"]).is_ok());
        assert!(ok(json!({"aud": ["x", "y"]}), "", &["x", "y"]).is_ok());
        assert!(
            ok(json!({"aud": ["x"]}), "", &["x", "y"]).is_err(),
            "every audience"
        );
        assert!(ok(json!({"aud": 1}), "", &[]).is_err());
    }

    #[test]
    fn roles_and_scopes() {
        let c = claims(json!({
            "roles": ["a", "b"], "scope": "read write",
            "realm": {"access": {"roles": ["admin"]}}, "data": {"scopes": ["s1", "s2"]}
        }));
        let r = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(has_role(&c, "roles", false, &r(&["x", "b"])));
        assert!(!has_role(&c, "roles", false, &r(&["x"])));
        assert!(has_role(&c, "roles", false, &[]));
        assert!(has_role(&c, "realm.access.roles", true, &r(&["admin"])));
        assert!(!has_role(&c, "realm.access.roles", false, &r(&["admin"])));
        assert!(has_role(&c, "scope", false, &r(&["write"])));
        assert!(has_scopes(
            &c,
            "scope",
            &r(&["read", "x"]),
            ScopesMatcher::Any
        ));
        assert!(!has_scopes(
            &c,
            "scope",
            &r(&["read", "x"]),
            ScopesMatcher::All
        ));
        assert!(has_scopes(
            &c,
            "data.scopes",
            &r(&["s1", "s2"]),
            ScopesMatcher::All
        ));
        assert!(!has_scopes(&c, "missing", &r(&["s1"]), ScopesMatcher::Any));
    }

    #[test]
    fn claims_as_text() {
        assert_eq!(as_text(&json!("x")), "x");
        assert_eq!(as_text(&json!(42)), "42");
        assert_eq!(as_text(&json!(42.0000001)), "42");
        assert_eq!(as_text(&json!(1.5)), "1.500000");
        assert_eq!(as_text(&json!(["a", 1, true])), "a,1,true");
        assert_eq!(as_text(&json!(1e6)), "1000000");
        assert_eq!(
            as_text(&json!([1e21, 1e6, 123456, 0.5])),
            "1e+21,1e+06,123456,0.5"
        );
        assert_eq!(as_text(&json!({"a": 1})), "{\"a\":1}");
        assert_eq!(as_list(&json!(["a", "b"])), ["a", "b"]);
        assert_eq!(as_list(&json!("a b")), ["a b"]);
    }
}
