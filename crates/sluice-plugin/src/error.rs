use std::fmt;

/// Where a failure came from, which decides logging, metrics and retry policy
/// (after pingora's `ErrorSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The backend (connect, timeout, protocol, body).
    Upstream,
    /// A client plugin (trap, fuel or memory exhausted, refused host, bad answer).
    Plugin,
    /// The gateway itself.
    Internal,
}

/// What went wrong, as finely as callers need to tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Could not connect (refused, DNS, TLS).
    Connect,
    /// The deadline passed before the answer was complete.
    Timeout,
    /// The peer spoke broken HTTP or reset the connection.
    Protocol,
    /// The body exceeded the configured limit.
    BodyTooLarge,
    /// A plugin trapped, ran out of memory or was interrupted.
    PluginFault,
    /// A plugin tried to reach a host it is not allowed to.
    HostNotAllowed,
    /// No instance was free within the deadline.
    Overloaded,
    /// Anything else.
    Other,
}

/// An executor failure, classified by source and kind.
#[derive(Debug, Clone)]
pub struct ExecError {
    /// Where it came from.
    pub source: ErrorSource,
    /// What happened.
    pub kind: ErrorKind,
    /// Human-readable detail, shown to clients only with `router.return_error_msg`.
    pub message: String,
}

impl ExecError {
    /// A new error.
    pub fn new(source: ErrorSource, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            source,
            kind,
            message: message.into(),
        }
    }
    /// An upstream error.
    pub fn upstream(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(ErrorSource::Upstream, kind, message)
    }
    /// A plugin error.
    pub fn plugin(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(ErrorSource::Plugin, kind, message)
    }
    /// The deadline passed (KrakenD's `context deadline exceeded`).
    pub fn timeout() -> Self {
        Self::new(
            ErrorSource::Upstream,
            ErrorKind::Timeout,
            "context deadline exceeded",
        )
    }
    /// Whether sending the same request again could succeed (connect failures only:
    /// the request never reached the backend).
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Connect
    }
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExecError {}
