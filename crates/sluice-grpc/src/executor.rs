//! The executor of one gRPC backend: the input message built from the request, the call over
//! HTTP/2, the answer read and mapped to JSON (or to an error status).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use prost_reflect::prost::Message as _;
use sluice_client::Http2Client;
use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, Decoded, ErrorKind, ExecError,
    Executor,
};

use crate::decode::Decoder;
use crate::input::{InputError, InputPlan};
use crate::wire::{self, Deframer, Frame, Status};

/// Headers never forwarded as metadata: HTTP/2 and gRPC own them.
const NOT_METADATA: [HeaderName; 9] = [
    header::HOST,
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::TE,
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::ACCEPT_ENCODING,
    header::HeaderName::from_static("keep-alive"),
];

const APPLICATION_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");

/// One gRPC backend, built at start-up.
#[derive(Debug)]
pub(crate) struct GrpcExecutor {
    /// `/package.Service/Method`.
    pub(crate) path: String,
    pub(crate) input: InputPlan,
    /// The answer's messages to JSON.
    pub(crate) decoder: Decoder,
    pub(crate) server_streaming: bool,
    pub(crate) header_mapping: Vec<(HeaderName, HeaderName)>,
    pub(crate) client: Arc<Http2Client>,
    /// The method's URL on every host of the backend, built once.
    pub(crate) targets: Vec<Uri>,
    /// `use_alternate_host_on_error`.
    pub(crate) alternate_hosts: bool,
}

/// What a call came to, before it becomes a response.
enum Outcome {
    /// The messages of an OK answer as JSON, and the metadata.
    Messages(Vec<serde_json::Value>, HeaderMap),
    /// A gRPC status other than OK, and the metadata.
    Failed(Status, HeaderMap),
}

impl Executor for GrpcExecutor {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(async move {
            tokio::time::timeout_at(ctx.deadline, self.call(request, ctx))
                .await
                .unwrap_or_else(|_| Err(ExecError::timeout()))
        })
    }

    fn needs_route_params(&self) -> bool {
        true
    }
}

impl GrpcExecutor {
    async fn call(
        &self,
        request: BackendRequest,
        ctx: &CallContext,
    ) -> Result<BackendResponse, ExecError> {
        let message = match self
            .input
            .build(&ctx.params, request.url.query(), &request.body)
        {
            Ok(message) => message,
            Err(InputError(reason)) => {
                return Ok(text_response(
                    StatusCode::BAD_REQUEST,
                    format!("invalid input: {reason}"),
                    HeaderMap::new(),
                ));
            }
        };
        let body = wire::frame(&message.encode_to_vec())
            .map_err(|e| ExecError::upstream(ErrorKind::Other, e))?;
        let mut metadata = Some(self.metadata(&request.headers));
        let mut target = self.target(&request.url)?;
        let mut tried: Vec<usize> = Vec::new();
        loop {
            let index = self.targets.iter().position(|t| *t == target);
            // The metadata moves into the first call; a retry (alternate hosts) clones it.
            let headers = match (self.alternate_hosts, metadata.take()) {
                (true, Some(m)) => {
                    let copy = m.clone();
                    metadata = Some(m);
                    copy
                }
                (_, Some(m)) => m,
                (_, None) => HeaderMap::new(),
            };
            let outcome = self.call_once(target, &body, headers, ctx).await;
            tried.extend(index);
            let retry = self.alternate_hosts
                && match &outcome {
                    Err(e) => e.kind == ErrorKind::Connect,
                    Ok(Outcome::Failed(status, _)) => status.code == wire::UNAVAILABLE,
                    Ok(Outcome::Messages(..)) => false,
                };
            let next = (0..self.targets.len())
                .find(|i| !tried.contains(i))
                .filter(|_| retry && !ctx.remaining().is_zero());
            match next {
                Some(i) => {
                    tracing::debug!(next = %self.targets[i], "gRPC call: trying another host");
                    target = self.targets[i].clone();
                }
                None => return self.respond(outcome?),
            }
        }
    }

    /// The method's URL on the host the request builder chose (built at start-up; built here
    /// only for a host the backend does not list).
    fn target(&self, url: &Uri) -> Result<Uri, ExecError> {
        let found = self.targets.iter().find(|t| {
            t.authority() == url.authority()
                && t.scheme_str().unwrap_or("http") == url.scheme_str().unwrap_or("http")
        });
        match found {
            Some(target) => Ok(target.clone()),
            None => format!("{}{}", origin(url), self.path)
                .parse()
                .map_err(|e| ExecError::upstream(ErrorKind::Other, format!("invalid URL: {e}"))),
        }
    }

    /// The forwarded headers as metadata: `header_mapping` renames applied, names starting
    /// with `grpc-` (reserved) sent as `in-grpc-...`.
    fn metadata(&self, headers: &HeaderMap) -> HeaderMap {
        let mut metadata = HeaderMap::with_capacity(headers.len() + 4);
        for (name, value) in headers {
            if NOT_METADATA.contains(name) {
                continue;
            }
            let name = self
                .header_mapping
                .iter()
                .find(|(from, _)| from == name)
                .map_or(name, |(_, to)| to);
            let name = if name.as_str().starts_with("grpc-") {
                match HeaderName::from_bytes(format!("in-{}", name.as_str()).as_bytes()) {
                    Ok(renamed) => renamed,
                    Err(_) => continue,
                }
            } else {
                name.clone()
            };
            metadata.append(name, value.clone());
        }
        metadata.insert(header::CONTENT_TYPE, APPLICATION_GRPC);
        metadata.insert(header::TE, HeaderValue::from_static("trailers"));
        metadata
    }

    async fn call_once(
        &self,
        uri: Uri,
        body: &Bytes,
        mut metadata: HeaderMap,
        ctx: &CallContext,
    ) -> Result<Outcome, ExecError> {
        let left = ctx.remaining();
        if left.is_zero() {
            return Err(ExecError::timeout());
        }
        metadata.insert("grpc-timeout", wire::timeout_header(left));
        let mut request = http::Request::new(Full::new(body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.version_mut() = http::Version::HTTP_2;
        *request.headers_mut() = metadata;
        let response = self.client.send(request).await?;
        let (parts, mut incoming) = response.into_parts();
        let mut metadata = answer_metadata(&parts.headers);
        if parts.status != StatusCode::OK {
            return Ok(Outcome::Failed(Status::from_http(parts.status), metadata));
        }
        // A trailers-only answer: the status is in the headers.
        if let Some(status) = Status::from_headers(&parts.headers) {
            return Ok(if status.code == wire::OK {
                Outcome::Messages(Vec::new(), metadata)
            } else {
                Outcome::Failed(status, metadata)
            });
        }
        let is_grpc = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        if !is_grpc {
            return Err(ExecError::upstream(
                ErrorKind::Protocol,
                format!(
                    "{}: the answer is not gRPC (content-type {:?})",
                    self.path,
                    parts.headers.get(header::CONTENT_TYPE)
                ),
            ));
        }
        let gzip = match parts
            .headers
            .get("grpc-encoding")
            .map(HeaderValue::as_bytes)
        {
            None | Some(b"identity") => false,
            Some(b"gzip") => true,
            Some(other) => {
                return Err(protocol(format!(
                    "the answer is compressed with {:?}, which Sluice does not read",
                    String::from_utf8_lossy(other)
                )));
            }
        };
        let mut deframer = Deframer::new(ctx.max_body_bytes);
        let mut frames: Vec<Frame> = Vec::new();
        let mut trailers = None;
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| protocol(format!("reading the answer: {e}")))?;
            match frame.into_data() {
                Ok(data) => deframer.push(&data, &mut frames).map_err(protocol)?,
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        trailers = Some(t);
                    }
                }
            }
            if !self.server_streaming && frames.len() > 1 {
                return Err(protocol(
                    "a unary method answered more than one message".to_owned(),
                ));
            }
        }
        let Some(trailers) = trailers else {
            return Err(protocol(
                "the answer ended without a grpc-status".to_owned(),
            ));
        };
        if deframer.has_partial() {
            return Err(protocol(
                "the answer ended in the middle of a message".to_owned(),
            ));
        }
        let Some(status) = Status::from_headers(&trailers) else {
            return Err(protocol(
                "the answer ended without a grpc-status".to_owned(),
            ));
        };
        metadata.extend(answer_metadata(&trailers));
        if status.code != wire::OK {
            return Ok(Outcome::Failed(status, metadata));
        }
        let mut messages = Vec::with_capacity(frames.len());
        for frame in frames {
            let data = match (frame.compressed, gzip) {
                (false, _) => frame.data,
                (true, true) => sluice_plugin::gunzip(&frame.data, ctx.max_body_bytes)
                    .map_err(|e| protocol(format!("a compressed message: {e}")))?,
                (true, false) => {
                    return Err(protocol(
                        "a message is marked compressed but the answer names no grpc-encoding"
                            .to_owned(),
                    ));
                }
            };
            messages.push(self.decoder.answer(data).map_err(protocol)?);
        }
        Ok(Outcome::Messages(messages, metadata))
    }

    fn respond(&self, outcome: Outcome) -> Result<BackendResponse, ExecError> {
        match outcome {
            Outcome::Failed(status, metadata) => {
                let body = if status.message.is_empty() {
                    status.name().to_owned()
                } else {
                    status.message.clone()
                };
                Ok(text_response(status.http_status(), body, metadata))
            }
            Outcome::Messages(messages, metadata) => {
                let data = if self.server_streaming {
                    serde_json::Value::Array(messages)
                } else {
                    match messages.into_iter().next() {
                        Some(message) => message,
                        None => {
                            return Err(protocol(
                                "the answer is OK but holds no message".to_owned(),
                            ));
                        }
                    }
                };
                let mut response = BackendResponse::new(sluice_plugin::empty());
                *response.headers_mut() = metadata;
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response.extensions_mut().insert(Decoded(data));
                Ok(response)
            }
        }
    }
}

fn protocol(message: String) -> ExecError {
    ExecError::upstream(ErrorKind::Protocol, message)
}

/// `scheme://authority` of a URL.
fn origin(url: &Uri) -> String {
    format!(
        "{}://{}",
        url.scheme_str().unwrap_or("http"),
        url.authority().map_or("", |a| a.as_str())
    )
}

/// The metadata of an answer, as response headers (gRPC's own headers left out).
fn answer_metadata(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        let n = name.as_str();
        if n.starts_with("grpc-")
            || *name == header::CONTENT_TYPE
            || *name == header::CONTENT_LENGTH
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

fn text_response(status: StatusCode, body: String, mut headers: HeaderMap) -> BackendResponse {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let mut response = BackendResponse::new(sluice_plugin::full(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
