//! Reading typed values out of the JSON tree while collecting every problem, each at its JSON path.
//! The parser reads the config with it, and a component (JWT, CORS, rate limits...) reads its own
//! `extra_config` block with it, so their errors look alike: file, JSON path, what was expected.
//!
//! Every reader reports a value of the wrong type (or out of range) and returns `None` (or the
//! zero value), so the walk goes on and one run lists all the problems. A `null` reads as absent,
//! as Go's decoder leaves the default in place.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::diagnostics::Diagnostic;
use crate::duration::parse_duration;
use crate::model::{LoadOptions, NamespaceClass, UnknownNamespace};

/// Namespaces that only observe or describe traffic: ignoring them changes no answer, so they
/// are a warning rather than an error.
fn is_observe_only(namespace: &str) -> bool {
    const PREFIXES: &[&str] = &["telemetry/", "documentation/"];
    const LEGACY: &[&str] = &[
        "github_com/devopsfaith/krakend-opencensus",
        "github_com/devopsfaith/krakend-metrics",
        "github_com/devopsfaith/krakend-gologging",
        "github_com/devopsfaith/krakend-logstash",
        "github_com/devopsfaith/krakend-gelf",
        "github_com/letgoapp/krakend-influx",
        "github_com/openrm/krakend-open-telemetry",
    ];
    PREFIXES.iter().any(|p| namespace.starts_with(p)) || LEGACY.contains(&namespace)
}

/// KrakenD namespaces known to restrict or change traffic (for the wording of the error; any
/// namespace that is not observe-only is refused either way).
fn is_traffic_namespace(namespace: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "auth/",
        "security/",
        "validation/",
        "qos/",
        "modifier/",
        "plugin/",
        "backend/",
        "router/",
        "server/",
        "proxy/",
        "grpc",
        "websocket",
        "redis",
        "github_com/",
        "github.com/",
    ];
    PREFIXES.iter().any(|p| namespace.starts_with(p))
}

/// The problems and warnings found so far.
#[derive(Debug)]
pub struct Reader<'f> {
    file: &'f Path,
    options: &'f LoadOptions,
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) unknown_namespaces: Vec<UnknownNamespace>,
}

/// An object of the tree and its JSON path.
#[derive(Debug, Clone)]
pub struct Obj<'v> {
    /// The object.
    pub map: &'v Map<String, Value>,
    /// Its JSON path.
    pub path: String,
}

impl<'v> Obj<'v> {
    /// The value of `key`, `None` when absent or `null`.
    pub fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The JSON path of `key` in this object.
    pub fn path_of(&self, key: &str) -> String {
        key_path(&self.path, key)
    }
}

impl<'f> Reader<'f> {
    pub fn new(file: &'f Path, options: &'f LoadOptions) -> Self {
        Self {
            file,
            options,
            errors: Vec::new(),
            unknown_namespaces: Vec::new(),
        }
    }

    /// Every problem recorded, for a component that read its block with this reader.
    pub fn into_errors(self) -> Vec<Diagnostic> {
        self.errors
    }

    /// The component that reads `namespace`, if one does.
    pub(crate) fn component(&self, namespace: &str) -> Option<&'f crate::model::Component> {
        self.options
            .components
            .iter()
            .find(|c| c.namespace == namespace)
    }

    /// Records a problem at `path`.
    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(self.file, path, message));
    }

    /// Records `expected <expected>, found <the kind of found>` at `path`.
    pub fn type_error(&mut self, path: impl Into<String>, expected: &str, found: &Value) {
        self.error(path, format!("expected {expected}, found {}", kind(found)));
    }

    /// Records an `extra_config` namespace the gateway does not read at this level: a warning
    /// when it only observes or describes traffic, the operator's explicit opt-out when named in
    /// [`LoadOptions::allow_unenforced`], and otherwise an error (fail closed: serving a config
    /// whose `auth/validator` is ignored would be a silent bypass). `misplaced` names the level
    /// a namespace Sluice does read belongs at.
    pub(crate) fn unknown_namespace(
        &mut self,
        path: String,
        namespace: &str,
        misplaced: Option<&str>,
    ) {
        let class = if is_observe_only(namespace) {
            NamespaceClass::ObserveOnly
        } else if self.options.allows_unenforced(namespace) {
            NamespaceClass::OptedOut
        } else {
            let why = match misplaced {
                Some(level) => format!(
                    "namespace {} is read at the {level} level only; here Sluice would ignore it",
                    quote(namespace)
                ),
                None if is_traffic_namespace(namespace) => format!(
                    "namespace {} is not implemented by Sluice: KrakenD would enforce it, and serving without it would bypass it",
                    quote(namespace)
                ),
                None => format!(
                    "namespace {} is not one Sluice knows, so it cannot tell whether it restricts or changes traffic",
                    quote(namespace)
                ),
            };
            self.error(
                path,
                format!(
                    "{why}; remove it, or run with --allow-unenforced {namespace} to serve without it"
                ),
            );
            return;
        };
        self.unknown_namespaces.push(UnknownNamespace {
            path,
            namespace: namespace.to_owned(),
            class,
        });
    }

    /// Refuses every key of `o` that is not in `known`: a field Sluice does not apply is an
    /// error, never silently dropped.
    /// Keys starting with `@`, `$`, `_` or `#` are comments, as in KrakenD's schema.
    pub fn known_keys(&mut self, o: &Obj<'_>, known: &[&str]) {
        for key in o.map.keys() {
            if !known.contains(&key.as_str()) && !is_comment_key(key) {
                self.error(
                    o.path_of(key),
                    format!(
                        "field {} is not supported by Sluice (it would be ignored); expected one of {}",
                        quote(key),
                        known.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
    }

    /// `value` as an object, at `path`.
    pub fn as_object<'v>(&mut self, value: &'v Value, path: String) -> Option<Obj<'v>> {
        match value {
            Value::Object(map) => Some(Obj { map, path }),
            other => {
                self.type_error(path, "an object", other);
                None
            }
        }
    }

    /// The object at `key`.
    pub fn object<'v>(&mut self, parent: &Obj<'v>, key: &str) -> Option<Obj<'v>> {
        let value = parent.get(key)?;
        self.as_object(value, parent.path_of(key))
    }

    /// The array at `key`.
    pub fn array<'v>(&mut self, parent: &Obj<'v>, key: &str) -> Option<&'v [Value]> {
        match parent.get(key)? {
            Value::Array(items) => Some(items),
            other => {
                self.type_error(parent.path_of(key), "an array", other);
                None
            }
        }
    }

    /// The string at `key`.
    pub fn string(&mut self, parent: &Obj<'_>, key: &str) -> Option<String> {
        match parent.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.type_error(parent.path_of(key), "a string", other);
                None
            }
        }
    }

    /// The boolean at `key`, `false` when absent.
    pub fn bool(&mut self, parent: &Obj<'_>, key: &str) -> bool {
        match parent.get(key) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if is_yaml11_bool(s) => {
                self.error(
                    parent.path_of(key),
                    format!(
                        "expected true or false, found the string {} (yes, no, on and off are \
                         strings, in YAML too, as KrakenD reads them: write true or false)",
                        quote(s)
                    ),
                );
                false
            }
            Some(other) => {
                self.type_error(parent.path_of(key), "true or false", other);
                false
            }
        }
    }

    /// The whole, non-negative number at `key` that fits in `T`; `what` describes the number for the
    /// message (`"a port number from 0 to 65535"`).
    pub fn uint<T: TryFrom<u64>>(&mut self, parent: &Obj<'_>, key: &str, what: &str) -> Option<T> {
        let value = parent.get(key)?;
        if let Some(n) = value.as_u64().and_then(|n| T::try_from(n).ok()) {
            return Some(n);
        }
        let found = match value {
            Value::Number(n) => n.to_string(),
            other => kind(other).to_owned(),
        };
        self.error(
            parent.path_of(key),
            format!("expected {what}, found {found}"),
        );
        None
    }

    /// The Go duration string at `key`, zero when absent (or wrong).
    pub fn duration(&mut self, parent: &Obj<'_>, key: &str) -> Duration {
        match parent.get(key) {
            None => Duration::ZERO,
            Some(Value::String(s)) => parse_duration(s).unwrap_or_else(|message| {
                self.error(parent.path_of(key), message);
                Duration::ZERO
            }),
            Some(other) => {
                self.type_error(
                    parent.path_of(key),
                    "a duration string like \"2s\" or \"150ms\"",
                    other,
                );
                Duration::ZERO
            }
        }
    }

    /// The array of strings at `key`; each element that is not a string is reported at its index.
    pub fn strings(&mut self, parent: &Obj<'_>, key: &str) -> Option<Vec<String>> {
        let items = self.array(parent, key)?;
        let path = parent.path_of(key);
        let mut strings = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => strings.push(s.clone()),
                other => self.type_error(index_path(&path, i), "a string", other),
            }
        }
        Some(strings)
    }

    /// The string at `key` that must be one of `choices` (compared ignoring ASCII case).
    pub fn choice<T: Clone>(
        &mut self,
        parent: &Obj<'_>,
        key: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let value = parent.get(key)?;
        if let Some(s) = value.as_str()
            && let Some((_, found)) = choices
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(s))
        {
            return Some(found.clone());
        }
        let expected = choices
            .iter()
            .map(|(name, _)| quote(name))
            .collect::<Vec<_>>()
            .join(", ");
        let found = match value {
            Value::String(s) => quote(s),
            other => kind(other).to_owned(),
        };
        self.error(
            parent.path_of(key),
            format!("expected one of {expected}, found {found}"),
        );
        None
    }
}

/// A key KrakenD's schema allows anywhere as a comment or annotation (`^[@$_#]`).
pub(crate) fn is_comment_key(key: &str) -> bool {
    key.starts_with(['@', '$', '_', '#'])
}

/// A YAML 1.1 boolean word that YAML 1.2 reads as a string.
fn is_yaml11_bool(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "yes" | "no" | "on" | "off" | "y" | "n"
    )
}

/// What a JSON value is, with its article, for messages.
pub fn kind(value: &Value) -> &'static str {
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

/// `s` in double quotes, escaped as in JSON.
pub fn quote(s: &str) -> String {
    Value::from(s).to_string()
}

/// The JSON path of `key` under `parent`: `parent.key` for identifier-like keys, `parent["key"]`
/// otherwise.
pub fn key_path(parent: &str, key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (plain, parent.is_empty()) {
        (true, true) => key.to_owned(),
        (true, false) => format!("{parent}.{key}"),
        (false, _) => format!("{parent}[{}]", quote(key)),
    }
}

/// The JSON path of element `i` of the array at `parent`.
pub fn index_path(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(key_path("", "version"), "version");
        assert_eq!(
            key_path("endpoints[0]", "extra_config"),
            "endpoints[0].extra_config"
        );
        assert_eq!(
            key_path("endpoints[0].extra_config", "plugin/http-client"),
            r#"endpoints[0].extra_config["plugin/http-client"]"#
        );
        assert_eq!(key_path("", "a\"b"), r#"["a\"b"]"#);
        assert_eq!(key_path("x", "404"), r#"x["404"]"#);
        assert_eq!(index_path("endpoints", 3), "endpoints[3]");
    }
}
