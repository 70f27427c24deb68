//! Calls a plugin makes (or the host makes for it): through the plugin's outbound client,
//! only to allowed hosts (every hop), within the remaining deadline, bodies bounded.

use bytes::Bytes;
use http_body_util::BodyExt;
use sluice_plugin::{
    AnswerHeaders, BackendRequest, BackendResponse, BodyBuffer, CallContext, ErrorKind, ExecError,
    Instant,
};

use crate::plugin::Backend;
use crate::sandbox::{self, Race};
use crate::stats::Counter;

/// Refuses hosts outside the allow-list (logged by the outbound client, counted here).
pub(crate) fn check_allowed(backend: &Backend, uri: &http::Uri) -> Result<(), ExecError> {
    backend.client.check(uri).inspect_err(|_| {
        backend.stats.bump(Counter::HostsRefused);
    })
}

/// Executes `request` through the plugin's outbound client (the allow-list holds on every hop);
/// the response body may still stream. `reads`: the answer's headers that are read, all of
/// them when the plugin reads the answer, the caller's choice when it goes back unread.
pub(crate) async fn execute(
    backend: &Backend,
    request: BackendRequest,
    deadline: Instant,
    race: Race,
    max_body_bytes: usize,
    trace: Option<&sluice_telemetry::TraceParent>,
    reads: AnswerHeaders,
) -> Result<BackendResponse, ExecError> {
    let ctx = CallContext {
        trace: trace.cloned(),
        caller_enforces_deadline: true,
        ..CallContext::new(deadline, max_body_bytes)
    };
    let call = backend.client.execute_reading(request, &ctx, reads);
    let result = within(deadline, race, call).await;
    if let Err(e) = &result
        && e.kind == ErrorKind::HostNotAllowed
    {
        backend.stats.bump(Counter::HostsRefused);
    }
    result
}

/// Executes `request` and reads the whole body (at most `max_body_bytes`) before the deadline.
/// `reads` as for [`execute`]: with [`AnswerHeaders::Forward`], the fields beyond the content
/// ones stay unparsed in the parts' extensions until something reads them
/// ([`sluice_plugin::ForwardedFields::into_map`]).
pub(crate) async fn send_buffered(
    backend: &Backend,
    request: BackendRequest,
    deadline: Instant,
    race: Race,
    max_body_bytes: usize,
    trace: Option<&sluice_telemetry::TraceParent>,
    reads: AnswerHeaders,
) -> Result<(http::response::Parts, Bytes), ExecError> {
    let response = execute(
        backend,
        request,
        deadline,
        race,
        max_body_bytes,
        trace,
        reads,
    )
    .await?;
    let (parts, body) = response.into_parts();
    let body = collect_body(body, deadline, race, max_body_bytes).await?;
    Ok((parts, body))
}

/// An HTTP/2 call (`host.send-http2`): allow-listed like every plugin call (no redirect is
/// followed, so the one hop is the one checked), the `Host` header left to the URL, the
/// answer read whole with its trailers, bounded in size and time.
pub(crate) async fn send_http2(
    backend: &Backend,
    request: BackendRequest,
    deadline: Instant,
    race: Race,
    max_body_bytes: usize,
) -> Result<(http::response::Parts, Bytes, http::HeaderMap), ExecError> {
    check_allowed(backend, &request.url)?;
    let mut outgoing = http::Request::new(http_body_util::Full::new(request.body));
    *outgoing.method_mut() = request.method;
    *outgoing.uri_mut() = request.url;
    *outgoing.version_mut() = http::Version::HTTP_2;
    *outgoing.headers_mut() = request.headers;
    outgoing.headers_mut().remove(http::header::HOST);
    let call = async {
        let response = backend.engine.http2.send(outgoing).await?;
        let (parts, mut body) = response.into_parts();
        let mut data = BodyBuffer::default();
        let mut trailers = http::HeaderMap::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ExecError::upstream(ErrorKind::Protocol, format!("reading the response: {e}"))
            })?;
            match frame.into_data() {
                Ok(chunk) => {
                    if data.len() + chunk.len() > max_body_bytes {
                        return Err(ExecError::upstream(
                            ErrorKind::BodyTooLarge,
                            format!("response body larger than {max_body_bytes} bytes"),
                        ));
                    }
                    data.push_hinted(chunk, http_body::Body::size_hint(&body), max_body_bytes);
                }
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        trailers.extend(t);
                    }
                }
            }
        }
        Ok((parts, data.finish(), trailers))
    };
    within(deadline, race, call).await
}

/// Reads a body to the end, bounded in size and time.
pub(crate) async fn collect_body<B>(
    body: B,
    deadline: Instant,
    race: Race,
    max_body_bytes: usize,
) -> Result<Bytes, ExecError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let read = async {
        let mut body = std::pin::pin!(body);
        let mut whole = BodyBuffer::default();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ExecError::upstream(
                    ErrorKind::Protocol,
                    format!("reading the response body: {e}"),
                )
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if whole.len() + data.len() > max_body_bytes {
                return Err(ExecError::upstream(
                    ErrorKind::BodyTooLarge,
                    format!("response body larger than {max_body_bytes} bytes"),
                ));
            }
            whole.push_hinted(data, body.size_hint(), max_body_bytes);
        }
        Ok(whole.finish())
    };
    within(deadline, race, read).await
}

/// `call`, cut with a timeout error at `deadline` when the race is run [`Race::Here`] (by the
/// guest calls' own [`sandbox::within`]); with [`Race::Caller`], as it is.
async fn within<T>(
    deadline: Instant,
    race: Race,
    call: impl Future<Output = Result<T, ExecError>>,
) -> Result<T, ExecError> {
    match race {
        Race::Here => sandbox::within(deadline, call)
            .await
            .unwrap_or_else(|| Err(ExecError::timeout())),
        Race::Caller => call.await,
    }
}
