//! Building the backend request (spec §2.3): url_pattern params, the query-string and header
//! allow-lists, X-Forwarded-* and the User-Agent, the host chosen per request.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use serde_json::{Map, Value};

/// The client request as the pipeline sees it, shared by every backend of the endpoint.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    /// The client's method.
    pub method: Method,
    /// Route params by name (as written in the endpoint template), percent-decoded.
    pub params: Vec<(String, String)>,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The client's headers.
    pub headers: HeaderMap,
    /// The client's body, fully read.
    pub body: Bytes,
    /// The client's IP as the router computed it.
    pub client_ip: IpAddr,
    /// The request id and trace context, sent on to the backends.
    pub telemetry: sluice_telemetry::RequestContext,
}

impl ProxyRequest {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// An allow-list of names: everything (`*`), or the listed ones.
#[derive(Debug, Clone)]
pub(crate) enum AllowList<T> {
    All,
    Only(Vec<T>),
}

impl AllowList<HeaderName> {
    pub(crate) fn headers(names: &[String]) -> Self {
        if names.iter().any(|n| n == "*") {
            return AllowList::All;
        }
        AllowList::Only(
            names
                .iter()
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                .collect(),
        )
    }

    fn allows(&self, name: &HeaderName) -> bool {
        match self {
            AllowList::All => true,
            AllowList::Only(names) => names.contains(name),
        }
    }
}

impl AllowList<String> {
    pub(crate) fn query(names: &[String]) -> Self {
        if names.iter().any(|n| n == "*") {
            AllowList::All
        } else {
            AllowList::Only(names.to_vec())
        }
    }

    fn allows(&self, name: &str) -> bool {
        match self {
            AllowList::All => true,
            AllowList::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

/// What an earlier backend of a sequential endpoint answered, as later backends may use it.
#[derive(Debug, Clone, Default)]
pub(crate) enum Earlier {
    /// It failed, or nothing of it is used.
    #[default]
    Nothing,
    /// Its (formatted) data, for `{resp<N>_<path>}`.
    Data(Map<String, Value>),
    /// The raw body of a no-op backend, for `{Resp<N>}`.
    Raw(Bytes),
}

/// One piece of a compiled url_pattern.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    /// An endpoint param, by name.
    Param(String),
    /// A sequential placeholder: backend index, the dotted path into its data, and whether it
    /// sits in the path (before any `?`).
    Response(usize, String, bool),
    /// The raw body of a no-op backend (a propagated `resp<N>`): its index, and whether it sits
    /// in the path.
    RawResponse(usize, bool),
}

/// What a value from a backend answer is escaped with: everything that could end or split a
/// path segment (`/`, `?`, `#`, `%`) or is not allowed in a URL, so the value stays one segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A url_pattern compiled once: text and placeholders.
#[derive(Debug, Clone)]
pub(crate) struct UrlTemplate {
    pieces: Vec<Piece>,
    has_query: bool,
    /// The pattern as KrakenD prints it in status errors: params as `{{.Name}}`.
    pub(crate) display: String,
}

impl UrlTemplate {
    /// Compiles `pattern`; `propagated` is the endpoint's `sequential_propagated_params`
    /// (`{Resp<N>}` is backend N's raw body only when `resp<N>` is listed).
    pub(crate) fn compile(pattern: &str, propagated: &[String]) -> Self {
        let mut pieces = Vec::new();
        let mut display = String::new();
        let mut rest = pattern;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}').map(|c| open + c) else {
                break;
            };
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            display.push_str(&rest[..open]);
            let name = &rest[open + 1..close];
            let in_path = !display.contains('?') && !rest[..open].contains('?');
            let raw = sluice_config::raw_response_index(name)
                .filter(|_| name.starts_with('R'))
                .filter(|i| propagated.iter().any(|p| *p == format!("resp{i}")));
            pieces.push(match raw {
                Some(index) => Piece::RawResponse(index, in_path),
                None => sequential_reference(name, in_path)
                    .unwrap_or_else(|| Piece::Param(name.to_owned())),
            });
            display.push_str("{{.");
            display.push_str(&capitalise(name));
            display.push_str("}}");
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
            display.push_str(rest);
        }
        Self {
            pieces,
            has_query: pattern.contains('?'),
            display,
        }
    }

    /// The pattern as it is, when it has no placeholder (every request renders the same).
    fn fixed(&self) -> Option<String> {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The backends whose raw body this pattern uses (`{Resp<N>}`).
    pub(crate) fn raw_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::RawResponse(index, _) => Some(*index),
            _ => None,
        })
    }

    /// Appends the path (and any query of the pattern itself) with params filled in to `out`.
    /// Route params were checked by the router (no dot segments, no encoded slashes); values
    /// from earlier backends are escaped as one segment, and a bare `.` or `..` in the path is
    /// refused, as no escape stops a server from normalising it.
    fn render_into(
        &self,
        out: &mut String,
        request: &ProxyRequest,
        responses: &[Earlier],
    ) -> Result<(), String> {
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Param(name) => out.push_str(request.param(name).unwrap_or_default()),
                Piece::Response(index, path, in_path) => {
                    if let Some(Earlier::Data(data)) = responses.get(*index)
                        && let Some(value) = sluice_transform::sequential::lookup_path(data, path)
                    {
                        push_segment(out, &value, *in_path, || format!("resp{index}_{path}"))?;
                    }
                }
                Piece::RawResponse(index, in_path) => {
                    // KrakenD sets `Resp<N>` only from a no-op backend's body.
                    if let Some(Earlier::Raw(body)) = responses.get(*index) {
                        let value = String::from_utf8_lossy(body);
                        push_segment(out, &value, *in_path, || format!("resp{index}"))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Appends a value from an earlier backend, escaped as one segment; a bare `.` or `..` in the
/// path is refused.
fn push_segment(
    out: &mut String,
    value: &str,
    in_path: bool,
    name: impl Fn() -> String,
) -> Result<(), String> {
    if in_path && (value == "." || value == "..") {
        return Err(format!(
            "{} is {value:?}, which would change the backend path",
            name()
        ));
    }
    out.extend(percent_encoding::utf8_percent_encode(value, SEGMENT));
    Ok(())
}

/// `resp0_first.random` -> (0, "first.random"); `Resp0_first.random` is the same value as a
/// propagated param (`sequential_propagated_params`, checked by the config).
fn sequential_reference(name: &str, in_path: bool) -> Option<Piece> {
    let rest = name
        .strip_prefix("resp")
        .or_else(|| name.strip_prefix("Resp"))?;
    let (index, path) = rest.split_once('_')?;
    let index = index.parse().ok()?;
    Some(Piece::Response(index, path.to_owned(), in_path))
}

/// Lura keys params with the first letter upper-cased (`{foo}` is `Foo`).
pub(crate) fn capitalise(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Everything needed to build one backend's requests, compiled at start-up.
#[derive(Debug)]
pub(crate) struct RequestBuilder {
    pub(crate) method: Method,
    pub(crate) template: UrlTemplate,
    hosts: Vec<String>,
    endpoint_headers: AllowList<HeaderName>,
    backend_headers: Option<AllowList<HeaderName>>,
    endpoint_query: AllowList<String>,
    backend_query: Option<AllowList<String>>,
    user_agent: HeaderValue,
    /// Each host's backend URL, parsed once, when every request of this backend goes to the
    /// same one (a pattern without placeholders, no query string forwarded); empty otherwise.
    /// A clone shares the parsed bytes, where parsing costs a copy and a scan per call.
    fixed_urls: Vec<Uri>,
}

impl RequestBuilder {
    pub(crate) fn new(
        endpoint: &sluice_config::Endpoint,
        backend: &sluice_config::Backend,
        user_agent: HeaderValue,
    ) -> Self {
        Self {
            method: backend.method.clone(),
            template: UrlTemplate::compile(
                &backend.url_pattern,
                &endpoint.proxy.sequential_propagated_params,
            ),
            hosts: backend.host.clone(),
            endpoint_headers: AllowList::headers(&endpoint.input_headers),
            backend_headers: backend.input_headers.as_deref().map(AllowList::headers),
            endpoint_query: AllowList::query(&endpoint.input_query_strings),
            backend_query: backend.input_query_strings.as_deref().map(AllowList::query),
            user_agent,
            fixed_urls: Vec::new(),
        }
        .with_fixed_urls()
    }

    /// Fills [`Self::fixed_urls`] when the URL cannot vary: every piece of the pattern is text
    /// and the allow-lists let no query parameter through. A host whose URL does not parse
    /// leaves them empty, so each call reports the error as before.
    fn with_fixed_urls(mut self) -> Self {
        let no_query =
            |list: &AllowList<String>| matches!(list, AllowList::Only(names) if names.is_empty());
        let forwards_query =
            !no_query(&self.endpoint_query) && !self.backend_query.as_ref().is_some_and(no_query);
        let Some(path) = self.template.fixed().filter(|_| !forwards_query) else {
            return self;
        };
        let urls: Option<Vec<Uri>> = self
            .hosts
            .iter()
            .map(|host| format!("{host}{path}").parse().ok())
            .collect();
        self.fixed_urls = urls.unwrap_or_default();
        self
    }

    /// Builds the request for one call; `responses` are what the earlier backends answered
    /// (sequential endpoints only); `shared` is [`Self::headers`] as another backend of the
    /// endpoint built it for this request, taken when this backend's are the same.
    pub(crate) fn build(
        &self,
        request: &ProxyRequest,
        responses: &[Earlier],
        shared: Option<&HeaderMap>,
    ) -> Result<sluice_plugin::BackendRequest, String> {
        let host = self.pick_host()?;
        let url = match self.fixed_urls.get(host) {
            Some(url) => url.clone(),
            None => {
                let host = &self.hosts[host];
                let mut url = String::with_capacity(host.len() + 64);
                url.push_str(host);
                self.template.render_into(&mut url, request, responses)?;
                self.append_query(&mut url, request.query.as_deref());
                url.parse()
                    .map_err(|e| format!("invalid backend URL {url:?}: {e}"))?
            }
        };
        Ok(sluice_plugin::BackendRequest {
            method: self.method.clone(),
            url,
            headers: match shared {
                Some(headers) if self.shares_headers() => headers.clone(),
                _ => self.headers(request),
            },
            body: request.body.clone(),
        })
    }

    /// The index of the host this call goes to.
    fn pick_host(&self) -> Result<usize, String> {
        match self.hosts.len() {
            0 => Err("no hosts available".to_owned()),
            1 => Ok(0),
            many => Ok(rand::random_range(0..many)),
        }
    }

    fn append_query(&self, url: &mut String, query: Option<&str>) {
        let Some(query) = query.filter(|q| !q.is_empty()) else {
            return;
        };
        let mut separator = if self.template.has_query { '&' } else { '?' };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let raw_name = pair.split_once('=').map_or(pair, |(name, _)| name);
            let name = percent_encoding::percent_decode_str(raw_name).decode_utf8_lossy();
            let allowed = self.endpoint_query.allows(&name)
                && self
                    .backend_query
                    .as_ref()
                    .is_none_or(|list| list.allows(&name));
            if allowed {
                url.push(separator);
                url.push_str(pair);
                separator = '&';
            }
        }
    }

    /// Whether this backend forwards the endpoint's headers as they are (no `input_headers` of
    /// its own): then every such backend of the endpoint sends the same [`Self::headers`].
    pub(crate) fn shares_headers(&self) -> bool {
        self.backend_headers.is_none()
    }

    /// The headers sent to the backend: the client's the allow-lists let through, less the
    /// hop-by-hop ones, with `X-Forwarded-*`, the `User-Agent` and the request id.
    pub(crate) fn headers(&self, request: &ProxyRequest) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(8);
        // The client's first `Host` (what `get` answers), seen on the way: no lookup after.
        let mut host = None;
        for (name, value) in &request.headers {
            // `Host` is the backend's, set by the client.
            if name == header::HOST {
                host.get_or_insert(value);
                continue;
            }
            // `Connection` is copied whatever the lists say, so the strip below sees the headers
            // it names; the strip then removes it too.
            let allowed = self.endpoint_headers.allows(name)
                && self
                    .backend_headers
                    .as_ref()
                    .is_none_or(|list| list.allows(name));
            if allowed || name == header::CONNECTION {
                headers.append(name.clone(), value.clone());
            }
        }
        crate::hop::strip_hop_by_hop(&mut headers);
        if let Some(ip) = ip_header_value(request.client_ip) {
            headers.insert(X_FORWARDED_FOR, ip);
        }
        if let Some(host) = host {
            headers.insert(X_FORWARDED_HOST, host.clone());
        }
        if headers.contains_key(header::USER_AGENT) {
            headers.insert(X_FORWARDED_VIA, self.user_agent.clone());
        } else {
            headers.insert(header::USER_AGENT, self.user_agent.clone());
        }
        if let Some(id) = &request.telemetry.request_id {
            headers.insert(sluice_telemetry::REQUEST_ID_HEADER, id.clone());
        }
        headers
    }
}

/// The client IP as a header value (IPv4, nearly every request, written by hand).
fn ip_header_value(ip: IpAddr) -> Option<HeaderValue> {
    match ip {
        IpAddr::V4(v4) => HeaderValue::from_str(sluice_telemetry::ipv4_text(v4, &mut [0; 15])).ok(),
        IpAddr::V6(_) => HeaderValue::from_str(&ip.to_string()).ok(),
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_VIA: HeaderName = HeaderName::from_static("x-forwarded-via");

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(query: Option<&str>) -> ProxyRequest {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("bearer 1"));
        headers.insert("x-y-z", HeaderValue::from_static("true"));
        headers.insert("host", HeaderValue::from_static("gw:8080"));
        ProxyRequest {
            method: Method::GET,
            params: vec![("foo".into(), "F".into()), ("bar".into(), "B".into())],
            query: query.map(str::to_owned),
            headers,
            body: Bytes::new(),
            client_ip: "127.0.0.1".parse().unwrap(),
            telemetry: Default::default(),
        }
    }

    fn builder(pattern: &str, input_headers: &[&str], query: &[&str]) -> RequestBuilder {
        RequestBuilder {
            method: Method::GET,
            template: UrlTemplate::compile(pattern, &["resp0".to_owned()]),
            hosts: vec!["http://h:1".into()],
            endpoint_headers: AllowList::headers(
                &input_headers
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            ),
            backend_headers: None,
            endpoint_query: AllowList::query(
                &query.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            ),
            backend_query: None,
            user_agent: HeaderValue::from_static("Sluice Version test"),
            fixed_urls: Vec::new(),
        }
        .with_fixed_urls()
    }

    #[test]
    fn fills_params_and_filters_query() {
        let b = builder("/x/{bar}?foo={foo}", &[], &["a"]);
        let built = b.build(&request(Some("a=1&b=2&a=3")), &[], None).unwrap();
        assert_eq!(built.url, "http://h:1/x/B?foo=F&a=1&a=3");
    }

    #[test]
    fn no_query_by_default() {
        let b = builder("/x", &[], &[]);
        let built = b.build(&request(Some("a=1")), &[], None).unwrap();
        assert_eq!(built.url, "http://h:1/x");
    }

    #[test]
    fn a_url_that_cannot_vary_is_parsed_once_per_host() {
        let mut fixed = builder("/x?v=1", &[], &[]);
        fixed.hosts = vec!["http://h:1".into(), "http://g:2".into()];
        let fixed = fixed.with_fixed_urls();
        assert_eq!(fixed.fixed_urls, ["http://h:1/x?v=1", "http://g:2/x?v=1"]);
        for _ in 0..16 {
            let built = fixed.build(&request(Some("a=1")), &[], None).unwrap();
            assert!(fixed.fixed_urls.contains(&built.url), "{}", built.url);
        }
        // A placeholder, or a query parameter let through, makes each call build its own.
        assert!(builder("/x/{foo}", &[], &[]).fixed_urls.is_empty());
        assert!(builder("/x", &[], &["a"]).fixed_urls.is_empty());
        let mut bad = builder("/x", &[], &[]);
        bad.hosts = vec!["http://h:1 2".into()];
        let bad = bad.with_fixed_urls();
        assert!(bad.fixed_urls.is_empty());
        let error = bad.build(&request(None), &[], None).unwrap_err();
        assert!(error.starts_with("invalid backend URL"), "{error}");
    }

    #[test]
    fn headers_allow_list_and_forwarded() {
        let b = builder("/x", &["Authorization"], &[]);
        let built = b.build(&request(None), &[], None).unwrap();
        let names: Vec<_> = built.headers.keys().map(|k| k.as_str()).collect();
        assert!(names.contains(&"authorization"));
        assert!(!names.contains(&"x-y-z"));
        assert_eq!(built.headers["x-forwarded-for"], "127.0.0.1");
        assert_eq!(built.headers["x-forwarded-host"], "gw:8080");
        assert_eq!(built.headers["user-agent"], "Sluice Version test");
    }

    #[test]
    fn shared_headers_only_where_the_backend_has_no_list_of_its_own() {
        let shared = builder("/x", &["*"], &[]);
        let headers = shared.headers(&request(None));
        assert!(headers.contains_key("x-y-z"));
        let same = builder("/y", &["*"], &[]);
        let built = same.build(&request(None), &[], Some(&headers)).unwrap();
        assert_eq!(built.headers, headers);
        let own = RequestBuilder {
            backend_headers: Some(AllowList::headers(&["Authorization".to_owned()])),
            ..builder("/z", &["*"], &[])
        };
        assert!(!own.shares_headers());
        let built = own.build(&request(None), &[], Some(&headers)).unwrap();
        assert!(built.headers.contains_key("authorization"));
        assert!(!built.headers.contains_key("x-y-z"));
    }

    #[test]
    fn ip_header_value_matches_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.0.100.9",
            "192.168.1.20",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:1.2.3.4",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_header_value(ip).unwrap(), ip.to_string().as_str());
        }
    }

    #[test]
    fn sequential_values_stay_one_segment() {
        let b = builder("/x/{resp0_a}?q={resp0_a}", &[], &[]);
        let mut data = Map::new();
        data.insert("a".into(), Value::String("../admin?x=1#f".into()));
        let built = b
            .build(&request(None), &[Earlier::Data(data.clone())], None)
            .unwrap();
        assert_eq!(
            built.url,
            "http://h:1/x/..%2Fadmin%3Fx=1%23f?q=..%2Fadmin%3Fx=1%23f"
        );
        data.insert("a".into(), Value::String("..".into()));
        assert!(
            b.build(&request(None), &[Earlier::Data(data)], None)
                .is_err()
        );
        let in_query = builder("/x?q={resp0_a}", &[], &[]);
        let mut dots = Map::new();
        dots.insert("a".into(), Value::String("..".into()));
        assert_eq!(
            in_query
                .build(&request(None), &[Earlier::Data(dots)], None)
                .unwrap()
                .url,
            "http://h:1/x?q=.."
        );
    }

    #[test]
    fn raw_body_of_a_no_op_backend() {
        let b = builder("/x/{Resp0}?all={Resp0}", &[], &[]);
        let raw = Earlier::Raw(Bytes::from_static(br#"{"message":"pong"}"#));
        assert_eq!(
            b.build(&request(None), &[raw], None).unwrap().url,
            "http://h:1/x/%7B%22message%22:%22pong%22%7D?all=%7B%22message%22:%22pong%22%7D"
        );
        // A backend that was decoded (or failed) gives no raw body, as in KrakenD.
        let mut data = Map::new();
        data.insert("message".into(), Value::String("pong".into()));
        assert_eq!(
            b.build(&request(None), &[Earlier::Data(data)], None)
                .unwrap()
                .url,
            "http://h:1/x/?all="
        );
        assert!(
            b.build(
                &request(None),
                &[Earlier::Raw(Bytes::from_static(b".."))],
                None
            )
            .is_err()
        );
        // Not listed in sequential_propagated_params: an endpoint param of that name.
        let t = UrlTemplate::compile("/x/{Resp1}", &["resp0".to_owned()]);
        assert_eq!(t.pieces[1], Piece::Param("Resp1".to_owned()));
    }

    #[test]
    fn template_display_uses_go_template_form() {
        let t = UrlTemplate::compile("/a/{id}/b", &[]);
        assert_eq!(t.display, "/a/{{.Id}}/b");
    }
}
