//! Calls a plugin makes (or the host makes for it): through the plugin's outbound client,
//! only to allowed hosts (every hop), within the remaining deadline, bodies bounded.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use sluice_plugin::{
    BackendRequest, BackendResponse, CallContext, ErrorKind, ExecError, Executor, Instant,
};

use crate::engine::Backend;
use crate::stats::Counter;

/// Refuses hosts outside the allow-list (logged by the outbound client, counted here).
pub(crate) fn check_allowed(backend: &Backend, uri: &http::Uri) -> Result<(), ExecError> {
    backend.client.check(uri).inspect_err(|_| {
        backend.stats.bump(Counter::HostsRefused);
    })
}

/// Executes `request` through the plugin's outbound client (the allow-list holds on every hop);
/// the response body may still stream.
pub(crate) async fn execute(
    backend: &Backend,
    request: BackendRequest,
    deadline: Instant,
    max_body_bytes: usize,
    trace: Option<&sluice_telemetry::TraceParent>,
) -> Result<BackendResponse, ExecError> {
    let ctx = CallContext {
        trace: trace.cloned(),
        ..CallContext::new(deadline, max_body_bytes)
    };
    let result =
        match tokio::time::timeout_at(deadline, backend.client.execute(request, &ctx)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(ExecError::timeout()),
        };
    if let Err(e) = &result
        && e.kind == ErrorKind::HostNotAllowed
    {
        backend.stats.bump(Counter::HostsRefused);
    }
    result
}

/// Executes `request` and reads the whole body (at most `max_body_bytes`) before the deadline.
pub(crate) async fn send_buffered(
    backend: &Backend,
    request: BackendRequest,
    deadline: Instant,
    max_body_bytes: usize,
    trace: Option<&sluice_telemetry::TraceParent>,
) -> Result<(http::response::Parts, Bytes), ExecError> {
    let response = execute(backend, request, deadline, max_body_bytes, trace).await?;
    let (parts, body) = response.into_parts();
    let body = collect_body(body, deadline, max_body_bytes).await?;
    Ok((parts, body))
}

/// Reads a body to the end, bounded in size and time.
pub(crate) async fn collect_body<B>(
    body: B,
    deadline: Instant,
    max_body_bytes: usize,
) -> Result<Bytes, ExecError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let read = async {
        let mut body = std::pin::pin!(body);
        let mut first: Option<Bytes> = None;
        let mut rest: Option<BytesMut> = None;
        let mut len = 0usize;
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
            len += data.len();
            if len > max_body_bytes {
                return Err(ExecError::upstream(
                    ErrorKind::BodyTooLarge,
                    format!("response body larger than {max_body_bytes} bytes"),
                ));
            }
            match (&mut first, &mut rest) {
                (None, _) => first = Some(data),
                (Some(f), None) => {
                    let mut buf = BytesMut::with_capacity(f.len() + data.len());
                    buf.extend_from_slice(f);
                    buf.extend_from_slice(&data);
                    rest = Some(buf);
                }
                (Some(_), Some(buf)) => buf.extend_from_slice(&data),
            }
        }
        Ok(match (first, rest) {
            (_, Some(buf)) => buf.freeze(),
            (Some(f), None) => f,
            (None, None) => Bytes::new(),
        })
    };
    match tokio::time::timeout_at(deadline, read).await {
        Ok(result) => result,
        Err(_elapsed) => Err(ExecError::timeout()),
    }
}
