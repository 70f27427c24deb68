//! Outbound rules for client plugins: which hosts a plugin may call, and the one client that
//! enforces them.
//!
//! Every kind of plugin (compiled-in, both WebAssembly worlds) is handed the same
//! [`OutboundClient`], so one config means the same thing whichever twin a backend names:
//! `allowed_hosts` beside `name` in the backend's `plugin/http-client` object lists the origins
//! a plugin may reach (`"*"` = any); without it, only the backend's own hosts. The check is made
//! on every hop: the client's redirect loop checks each `Location` against the same list.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ErrorKind, ExecError, Executor,
    SharedExecutor,
};

/// `scheme://host:port`, normalised (lower case, explicit port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or address, lower case (IPv6 in brackets).
    pub host: String,
    /// Port (80/443 when not given).
    pub port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port][/...]`; a missing scheme means `http` (as KrakenD's hosts).
    pub fn parse(s: &str) -> Option<Origin> {
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_owned(), s),
        };
        let default_port = default_port(&scheme)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        if authority.is_empty() {
            return None;
        }
        let (host, port) = if let Some(end) = authority.strip_prefix('[').and_then(|a| a.find(']'))
        {
            // [v6]:port
            let host = &authority[..end + 2];
            let port = &authority[end + 2..];
            (host, port.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().ok()?,
            None => default_port,
        };
        if host.is_empty() {
            return None;
        }
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The origin of a request URI (`None` if it is not absolute http(s)).
    pub fn of_uri(uri: &http::Uri) -> Option<Origin> {
        let (scheme, host, port) = uri_parts(uri)?;
        Some(Origin {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether an authority written exactly as this origin's `host[:port]` (the port may be
    /// left out when it is the scheme's default) is on this origin: a comparison of the text,
    /// without parsing the authority. `false` says nothing (userinfo, an empty port...): the
    /// caller then parses.
    fn matches_text(&self, scheme: &str, authority: &str) -> bool {
        // The origin is stored lower-case, as URLs almost always write it: an exact comparison
        // (a memcmp) first; the byte-by-byte case-folding one only when that fails.
        let same = |text: &str, ours: &str| text == ours || text.eq_ignore_ascii_case(ours);
        if !same(scheme, &self.scheme) {
            return false;
        }
        let Some(rest) = authority
            .get(..self.host.len())
            .filter(|host| same(host, &self.host))
            .map(|_| &authority[self.host.len()..])
        else {
            return false;
        };
        match rest.strip_prefix(':') {
            None => rest.is_empty() && default_port(&self.scheme) == Some(self.port),
            // Read by hand: `str::parse::<u16>` cost more than the rest of the check (this
            // runs on every plugin call). More than five digits says nothing (leading zeros):
            // the caller parses then.
            Some(digits) => {
                (1..=5).contains(&digits.len())
                    && digits.bytes().try_fold(0u32, |n, b| {
                        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
                    }) == Some(u32::from(self.port))
            }
        }
    }

    /// Whether `uri` is on this origin, without allocating (checked on every plugin call).
    fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.port == port
            && self.scheme.eq_ignore_ascii_case(scheme)
            && self.host.eq_ignore_ascii_case(host)
    }
}

/// A URI's scheme, host and port (the scheme's default when not given); `None` unless it is
/// absolute http(s).
fn uri_parts(uri: &http::Uri) -> Option<(&str, &str, u16)> {
    let scheme = uri.scheme_str()?;
    let default_port = default_port(scheme)?;
    Some((scheme, uri.host()?, uri.port_u16().unwrap_or(default_port)))
}

/// The port of `http` and `https` (in any case) when a URL names none; other schemes have none.
fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else {
        None
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The origins a plugin may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHosts {
    /// Any host (`"*"`).
    Any,
    /// Only these origins.
    Only(Vec<Origin>),
}

impl AllowedHosts {
    /// Reads `allowed_hosts` from the `plugin/http-client` object; absent means the backend's
    /// own hosts. Errors name the key.
    pub fn from_extra(
        extra: &Map<String, Value>,
        backend_hosts: &[String],
    ) -> Result<Self, String> {
        match extra.get("allowed_hosts") {
            None | Some(Value::Null) => backend_hosts
                .iter()
                .map(|h| {
                    Origin::parse(h)
                        .ok_or_else(|| format!("backend host {h:?} is not an http(s) origin"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(AllowedHosts::Only),
            Some(Value::Array(items)) => {
                let mut origins = Vec::with_capacity(items.len());
                for item in items {
                    let Some(s) = item.as_str() else {
                        return Err(format!("allowed_hosts: expected strings, found {item}"));
                    };
                    if s == "*" {
                        return Ok(AllowedHosts::Any);
                    }
                    origins.push(Origin::parse(s).ok_or_else(|| {
                        format!("allowed_hosts: {s:?} is not of the form scheme://host[:port]")
                    })?);
                }
                Ok(AllowedHosts::Only(origins))
            }
            Some(other) => Err(format!(
                "allowed_hosts: expected a list of origins, found {other}"
            )),
        }
    }

    /// Whether a call to `uri` is allowed.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        match self {
            AllowedHosts::Any => true,
            AllowedHosts::Only(list) => {
                // The URL's authority is almost always written as the allowed origin is: then
                // a text comparison says yes; anything else is parsed.
                if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority())
                    && list
                        .iter()
                        .any(|o| o.matches_text(scheme, authority.as_str()))
                {
                    return true;
                }
                uri_parts(uri).is_some_and(|(scheme, host, port)| {
                    list.iter().any(|o| o.matches(scheme, host, port))
                })
            }
        }
    }

    /// `Ok` when a call to `uri` is allowed, else the plugin error that refuses it.
    pub fn check(&self, uri: &http::Uri) -> Result<(), ExecError> {
        if self.allows(uri) {
            return Ok(());
        }
        let origin = Origin::of_uri(uri).map_or_else(|| uri.to_string(), |o| o.to_string());
        Err(ExecError::plugin(
            ErrorKind::HostNotAllowed,
            format!("{origin} is not in the plugin's allowed_hosts"),
        ))
    }
}

/// The one client every plugin is handed: the gateway's pooled client, restricted to the
/// origins the config grants the plugin, on every hop.
///
/// It refuses a request to any other origin, makes the client check every redirect against
/// the same list, and owns the `Host` header (a plugin cannot choose the virtual host: the
/// header always follows the URL's authority).
#[derive(Debug, Clone)]
pub struct OutboundClient {
    inner: SharedExecutor,
    allowed: Arc<AllowedHosts>,
    plugin: Arc<str>,
    metrics: Option<Arc<sluice_telemetry::OutboundMetrics>>,
}

impl OutboundClient {
    /// A client for `plugin` that reaches only `allowed` through `inner` (the default client).
    pub fn new(inner: SharedExecutor, allowed: AllowedHosts, plugin: impl Into<Arc<str>>) -> Self {
        Self {
            inner,
            allowed: Arc::new(allowed),
            plugin: plugin.into(),
            metrics: None,
        }
    }

    /// Counts every call (`sluice.plugin.outbound.calls`) by allowed origin and outcome.
    pub fn with_metrics(mut self, metrics: Option<Arc<sluice_telemetry::OutboundMetrics>>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The index of `uri`'s origin in the allow-list (`None` for any host, or none listed).
    fn origin_index(&self, uri: &http::Uri) -> Option<usize> {
        let AllowedHosts::Only(list) = &*self.allowed else {
            return None;
        };
        let (scheme, host, port) = uri_parts(uri)?;
        list.iter().position(|o| o.matches(scheme, host, port))
    }

    /// The client for the plugin a backend's `plugin/http-client` object names: `allowed_hosts`
    /// from `extra`, defaulting to `backend_hosts`. Errors name the key.
    pub fn for_backend(
        inner: SharedExecutor,
        plugin: &str,
        extra: &Map<String, Value>,
        backend_hosts: &[String],
    ) -> Result<Self, String> {
        let allowed = AllowedHosts::from_extra(extra, backend_hosts)?;
        Ok(Self::new(inner, allowed, plugin))
    }

    /// The origins this client reaches.
    pub fn allowed_hosts(&self) -> &AllowedHosts {
        &self.allowed
    }

    /// The plugin it serves.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// `Ok` when the plugin may call `uri`; a refusal is logged with the plugin's name.
    pub fn check(&self, uri: &http::Uri) -> Result<(), ExecError> {
        self.allowed.check(uri).map_err(|e| self.refused(e))
    }

    fn refused(&self, error: ExecError) -> ExecError {
        tracing::warn!(plugin = %self.plugin, error = %error.message, "plugin call refused");
        ExecError {
            message: format!("plugin {}: {}", self.plugin, error.message),
            ..error
        }
    }
}

impl Executor for OutboundClient {
    /// A call the plugin makes: it reads the answer, so every header is asked for whatever
    /// its own caller reads.
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        self.execute_reading(request, ctx, crate::AnswerHeaders::All)
    }
}

impl OutboundClient {
    /// A call whose answer's headers are read as `reads` says: [`crate::AnswerHeaders::All`]
    /// when the plugin reads the answer, the caller's own `ctx.answer_headers` when the host
    /// hands the answer on to the caller unread (a hooks-mode plugin without `on-response`),
    /// which spares building headers nobody reads.
    pub fn execute_reading<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
        reads: crate::AnswerHeaders,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(async move {
            let started = self.metrics.as_ref().map(|_| crate::Instant::now());
            let origin = self
                .metrics
                .as_ref()
                .and_then(|_| self.origin_index(&request.url));
            let result = self.call(request, ctx, reads).await;
            if let (Some(metrics), Some(started)) = (&self.metrics, started) {
                let outcome = match &result {
                    Ok(_) => 0,
                    Err(e) => error_outcome(e.kind),
                };
                metrics.record(origin, outcome, started.elapsed());
            }
            result
        })
    }
}

/// The `outcome` index ([`sluice_telemetry::PLUGIN_OUTCOMES`]) of an error kind.
pub fn error_outcome(kind: ErrorKind) -> usize {
    match kind {
        ErrorKind::Connect => 1,
        ErrorKind::Timeout => 2,
        ErrorKind::Protocol => 3,
        ErrorKind::BodyTooLarge => 4,
        ErrorKind::PluginFault => 5,
        ErrorKind::HostNotAllowed => 6,
        ErrorKind::Overloaded => 7,
        ErrorKind::Other => 8,
    }
}

impl OutboundClient {
    async fn call(
        &self,
        mut request: BackendRequest,
        ctx: &CallContext,
        reads: crate::AnswerHeaders,
    ) -> Result<BackendResponse, ExecError> {
        self.check(&request.url)?;
        // The URL's authority is the virtual host; a plugin's own `Host` never goes out.
        request.headers.remove(http::header::HOST);
        // A child of the plugin's span, whose context the called service receives.
        // The name and attributes are written only for a sampled trace.
        let mut span = ctx.trace.as_ref().map(|parent| {
            let origin = parent
                .context()
                .sampled
                .then(|| Origin::of_uri(&request.url).map_or_else(String::new, |o| o.to_string()));
            let name = origin
                .as_ref()
                .map(|origin| format!("{} {origin}", request.method))
                .unwrap_or_default();
            let mut span = parent.child(name, sluice_telemetry::SpanKind::Client);
            if span.is_recording() {
                span.set_uri("url.full", &request.url);
                span.set(
                    "http.request.method",
                    sluice_telemetry::AttrValue::method(&request.method),
                );
                span.set("server.address", origin.as_deref().unwrap_or_default());
                span.set("sluice.plugin", &self.plugin);
                span.set("krakend.stage", "plugin-request");
            }
            span.as_parent().inject(&mut request.headers);
            span
        });
        let ctx = CallContext {
            allowed_hosts: Some(Arc::clone(&self.allowed)),
            trace: None,
            answer_headers: reads,
            ..ctx.clone()
        };
        let result = self.inner.execute(request, &ctx).await.map_err(|e| {
            if e.kind == ErrorKind::HostNotAllowed {
                self.refused(e)
            } else {
                e
            }
        });
        if let Some(span) = &mut span {
            match &result {
                Ok(response) => {
                    span.set(
                        "http.response.status_code",
                        i64::from(response.status().as_u16()),
                    );
                    span.set_status(sluice_telemetry::Status::Ok);
                }
                Err(e) => span.set_status(sluice_telemetry::Status::Error(e.message.clone())),
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn origins() {
        let o = Origin::parse("HTTP://Example.com").expect("origin");
        assert_eq!(o.to_string(), "http://example.com:80");
        assert_eq!(Origin::parse("localhost:8080").map(|o| o.port), Some(8080));
        assert_eq!(
            Origin::parse("https://[::1]:9/x").map(|o| o.host),
            Some("[::1]".to_owned())
        );
        assert!(Origin::parse("ftp://x").is_none());
    }

    #[test]
    fn allowed_hosts_default_to_the_backend_and_normalise_ports() {
        let hosts = vec!["http://b".to_owned()];
        let none = json!({});
        let allowed = AllowedHosts::from_extra(none.as_object().unwrap(), &hosts).unwrap();
        assert!(allowed.allows(&"http://b:80/x".parse().unwrap()));
        assert!(!allowed.allows(&"http://c/x".parse().unwrap()));
        let listed = json!({"allowed_hosts": ["http://c"]});
        let allowed = AllowedHosts::from_extra(listed.as_object().unwrap(), &hosts).unwrap();
        assert!(
            !allowed.allows(&"http://b/x".parse().unwrap()),
            "the list replaces the backend's hosts"
        );
        assert!(allowed.allows(&"http://c/x".parse().unwrap()));
        // The text comparison and the parse agree, whatever the authority looks like.
        let listed = json!({"allowed_hosts": ["http://b:8080", "https://[::1]", "http://c"]});
        let allowed = AllowedHosts::from_extra(listed.as_object().unwrap(), &hosts).unwrap();
        for (url, ok) in [
            ("http://b:8080/x", true),
            ("HTTP://B:8080/x", true),
            ("http://b:08080/x", true),
            ("http://b:0008080/x", true),
            ("http://b:18080/x", false),
            ("http://b:65536/x", false),
            ("http://user@b:8080/x", true),
            ("http://b/x", false),
            ("http://b:80/x", false),
            ("http://b:8081/x", false),
            ("http://b:8080@d:8080/x", false),
            ("http://bb:8080/x", false),
            ("https://b:8080/x", false),
            ("https://[::1]/x", true),
            ("https://[::1]:443/x", true),
            ("http://[::1]/x", false),
            ("http://c/x", true),
            ("http://c:/x", true),
            ("http://c:80/x", true),
            ("http://c.d/x", false),
            ("http://d@c/x", true),
            ("http://c@d/x", false),
        ] {
            assert_eq!(allowed.allows(&url.parse().unwrap()), ok, "{url}");
        }
        let any = json!({"allowed_hosts": ["*"]});
        assert_eq!(
            AllowedHosts::from_extra(any.as_object().unwrap(), &hosts).unwrap(),
            AllowedHosts::Any
        );
        let bad = json!({"allowed_hosts": [1]});
        assert!(
            AllowedHosts::from_extra(bad.as_object().unwrap(), &hosts)
                .unwrap_err()
                .starts_with("allowed_hosts")
        );
    }
}
