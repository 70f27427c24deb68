//! Pipeline errors, classified so that one place ([`crate::respond`]) can map them to statuses.

use std::fmt;

use bytes::Bytes;
use http::StatusCode;
use sluice_plugin::ExecError;

/// Why a backend (or the whole endpoint) has no answer.
#[derive(Debug, Clone)]
pub enum ProxyError {
    /// The executor failed (connect, timeout, protocol, plugin fault).
    Exec(ExecError),
    /// The backend answered a status other than 200/201.
    Status {
        /// The backend's status.
        status: StatusCode,
        /// `METHOD url_pattern-template` as KrakenD prints it.
        what: String,
        /// The URL called (empty for plugin answers, which carry no request).
        url: String,
    },
    /// `backend/http.return_error_code`: the backend's status and body go to the client.
    StatusPassThrough {
        /// The backend's status.
        status: StatusCode,
        /// The backend's body.
        body: Bytes,
        /// The backend's Content-Type.
        content_type: Option<http::HeaderValue>,
    },
    /// The body could not be decoded with the backend's encoding.
    Decode(String),
    /// The endpoint's deadline passed.
    Timeout,
    /// Building the request failed (no hosts, bad URL).
    Request(String),
    /// Several backends failed.
    Multiple(Vec<ProxyError>),
}

impl ProxyError {
    /// The status the client gets when there is no data to render: the backend's own for
    /// `return_error_code`, 500 otherwise (KrakenD's contract, whatever the cause).
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::StatusPassThrough { status, .. } => *status,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body shown with `router.return_error_msg`, and its content type if it has one.
    pub fn body(&self) -> (Bytes, Option<http::HeaderValue>) {
        match self {
            ProxyError::StatusPassThrough {
                body, content_type, ..
            } => (body.clone(), content_type.clone()),
            other => (Bytes::from(other.to_string()), None),
        }
    }
}

impl From<ExecError> for ProxyError {
    fn from(error: ExecError) -> Self {
        match error.kind {
            sluice_plugin::ErrorKind::Timeout => ProxyError::Timeout,
            _ => ProxyError::Exec(error),
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::Exec(e) => write!(f, "{e}"),
            ProxyError::Status { status, what, url } => {
                write!(f, "invalid status code {} [{what}]: {url}", status.as_u16())
            }
            ProxyError::StatusPassThrough { body, .. } => {
                f.write_str(&String::from_utf8_lossy(body))
            }
            ProxyError::Decode(message) => f.write_str(message),
            ProxyError::Timeout => f.write_str("context deadline exceeded"),
            ProxyError::Request(message) => f.write_str(message),
            ProxyError::Multiple(errors) => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ProxyError {}
