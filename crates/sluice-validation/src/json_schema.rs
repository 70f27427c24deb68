//! `validation/json-schema` on endpoints, as krakend-jsonschema does: the namespace's value *is*
//! the schema; the request body (read within the server's body limits) must be a JSON document
//! valid against it, or the client gets a 400 and no backend is called.
//!
//! As KrakenD (a proxy-level error carrying status 400, rendered by the endpoint handler): 400,
//! `X-KrakenD-Completed: false`, and the error text as `text/plain; charset=utf-8` only with
//! `router.return_error_msg` (else an empty body). An empty body is refused with KrakenD's
//! `could not validate an empty body`, whatever the method.
//!
//! Bounded: the schema is compiled once, when the gateway is built (a schema that does not
//! compile is a start-up error, where KrakenD logs it and serves the endpoint unvalidated);
//! `pattern`s run on the linear-time `regex` engine (as Go's RE2-based engine does: no
//! look-around, no back-references, no catastrophic backtracking); `$ref`s must resolve inside
//! the schema (nothing is fetched, from the network or from files); JSON nesting is limited by
//! the parser (128 levels); the error text lists at most [`MAX_LISTED_ERRORS`] errors.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use http::header::{HeaderName, HeaderValue};
use jsonschema::{PatternOptions, Validator};
use serde_json::Value;
use sluice_config::read::key_path;
use sluice_config::{Component, Config, Diagnostic, Endpoint, Level};
use sluice_stage::{
    EarlyAnswer, Phases, RequestHead, SharedStage, Stage, StageFactory, StageFuture, decided,
};

/// The namespace (alias `github.com/devopsfaith/krakend-jsonschema`, normalised by the parser).
pub const NAMESPACE: &str = "validation/json-schema";

/// At most this many validation errors are listed in the error text.
pub const MAX_LISTED_ERRORS: usize = 10;

/// KrakenD's answer to an empty body.
const EMPTY_BODY: &str = "could not validate an empty body";

static COMPLETED: HeaderName = HeaderName::from_static("x-krakend-completed");

/// The `validation/json-schema` component.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonSchema;

impl StageFactory for JsonSchema {
    fn components(&self) -> Vec<Component> {
        vec![Component {
            namespace: NAMESPACE.to_owned(),
            levels: vec![Level::Endpoint],
        }]
    }

    fn endpoint_stages(
        &self,
        config: &Config,
        endpoint: &Endpoint,
    ) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        let Some(schema) = endpoint.extra_config.get(NAMESPACE) else {
            return Ok(Vec::new());
        };
        let path = key_path(&format!("{}.extra_config", endpoint.json_path), NAMESPACE);
        let validator = compile(schema).map_err(|message| {
            vec![Diagnostic::new(
                &config.source,
                path,
                format!("the JSON schema does not compile: {message}"),
            )]
        })?;
        Ok(vec![Arc::new(SchemaStage {
            validator: Arc::new(validator),
            return_error_msg: config.router.return_error_msg,
        })])
    }
}

/// Compiles `schema` (an object or a boolean schema) as KrakenD's validator would: the draft its
/// `$schema` names, 2020-12 without one.
fn compile(schema: &Value) -> Result<Validator, String> {
    if !matches!(schema, Value::Object(_) | Value::Bool(_)) {
        return Err(format!(
            "expected a JSON schema (an object, or true or false), found {}",
            sluice_config::read::kind(schema)
        ));
    }
    jsonschema::options()
        // Nothing outside the schema is fetched: a remote `$ref` is refused at start-up.
        .offline()
        .with_pattern_options(PatternOptions::regex())
        .build(schema)
        .map_err(|e| e.to_string())
}

/// One endpoint's validator.
struct SchemaStage {
    validator: Arc<Validator>,
    return_error_msg: bool,
}

impl fmt::Debug for SchemaStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaStage")
            .field("return_error_msg", &self.return_error_msg)
            .finish_non_exhaustive()
    }
}

impl SchemaStage {
    /// Why `body` is refused, if it is.
    fn check(&self, body: &[u8]) -> Result<(), String> {
        if body.is_empty() {
            return Err(EMPTY_BODY.to_owned());
        }
        let document: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let mut errors = self.validator.iter_errors(&document).peekable();
        if errors.peek().is_none() {
            return Ok(());
        }
        // santhosh-tekuri/jsonschema's layout (KrakenD's validator): a head line, then one line
        // per error at its instance location (a JSON pointer).
        let mut text = String::from("jsonschema validation failed with 'schema#'");
        for (i, error) in errors.enumerate() {
            if i == MAX_LISTED_ERRORS {
                text.push_str("\n- ...");
                break;
            }
            text.push_str(&format!("\n- at '{}': {error}", error.instance_path()));
        }
        Err(text)
    }

    fn refuse(&self, message: String) -> EarlyAnswer {
        let answer = if self.return_error_msg {
            EarlyAnswer::text(StatusCode::BAD_REQUEST, message)
        } else {
            EarlyAnswer::empty(StatusCode::BAD_REQUEST)
        };
        // The refusal comes from KrakenD's proxy, inside the endpoint handler, which marks it.
        answer.with_header(COMPLETED.clone(), HeaderValue::from_static("false"))
    }
}

impl Stage for SchemaStage {
    fn name(&self) -> &'static str {
        NAMESPACE
    }

    fn phases(&self) -> Phases {
        Phases::BODY
    }

    fn on_body<'a>(&'a self, _head: &'a RequestHead<'_>, body: &'a Bytes) -> StageFuture<'a> {
        decided(self.check(body).map_err(|message| self.refuse(message)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn stage(schema: Value) -> SchemaStage {
        SchemaStage {
            validator: Arc::new(compile(&schema).unwrap()),
            return_error_msg: true,
        }
    }

    #[test]
    fn valid_invalid_empty_and_not_json() {
        let s = stage(json!({"type": "object", "required": ["id"],
            "properties": {"id": {"type": "integer"}, "n": {"pattern": "^[a-z]+$"}}}));
        assert_eq!(s.check(br#"{"id": 1}"#), Ok(()));
        assert_eq!(s.check(br#"{"id": 1.0}"#), Ok(()));
        let e = s.check(br#"{"id": "x"}"#).unwrap_err();
        assert!(
            e.starts_with("jsonschema validation failed with 'schema#'\n- at '/id': "),
            "{e}"
        );
        assert!(s.check(br#"{"id": 1, "n": "A"}"#).is_err());
        assert_eq!(s.check(b"").unwrap_err(), EMPTY_BODY);
        assert!(s.check(b"{").is_err());
        assert!(s.check(br#"{"id": 1} x"#).is_err());
        // Numbers keep their text (arbitrary_precision) and still validate.
        assert!(s.check(br#"{"id": 9007199254740993}"#).is_ok());
        assert!(s.check(br#"{"id": 1.5}"#).is_err());
    }

    #[test]
    fn the_ce_schema_and_boolean_schemas() {
        let s = stage(json!({"type": "number"}));
        assert!(s.check(br#"{"foo": 42}"#).is_err());
        assert!(s.check(b"42").is_ok());
        assert!(stage(json!(true)).check(b"[]").is_ok());
        assert!(stage(json!(false)).check(b"[]").is_err());
    }

    #[test]
    fn errors_are_bounded() {
        let s = stage(json!({"items": {"type": "string"}}));
        let body = serde_json::to_vec(&(0..100).collect::<Vec<_>>()).unwrap();
        let e = s.check(&body).unwrap_err();
        assert_eq!(e.lines().count(), 1 + MAX_LISTED_ERRORS + 1, "{e}");
    }

    #[test]
    fn schemas_that_do_not_compile() {
        assert!(compile(&json!("string")).is_err());
        assert!(compile(&json!({"type": "nope"})).is_err());
        // Nothing is fetched.
        assert!(compile(&json!({"$ref": "https://example.com/s.json"})).is_err());
        assert!(compile(&json!({"$ref": "file:///etc/passwd"})).is_err());
        // Look-around needs a backtracking engine: refused rather than risked.
        assert!(compile(&json!({"pattern": "^(?=a)"})).is_err());
        // A local $ref resolves.
        assert!(compile(&json!({"$defs": {"a": {"type": "string"}}, "$ref": "#/$defs/a"})).is_ok());
    }

    #[test]
    fn refusals_follow_return_error_msg() {
        let mut s = stage(json!({"type": "number"}));
        let answer = s.refuse("x".into());
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.body, "x");
        assert_eq!(answer.headers["x-krakend-completed"], "false");
        assert_eq!(answer.headers["content-type"], "text/plain; charset=utf-8");
        s.return_error_msg = false;
        let answer = s.refuse("x".into());
        assert!(answer.body.is_empty());
        assert!(!answer.headers.contains_key("content-type"));
    }
}
