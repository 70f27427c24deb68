//! Raw TCP requests, for what a well-behaved client cannot send (smuggling attempts, oversized
//! heads, bad escapes).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::CLIENT_TIMEOUT;

/// The first response read back from a raw request.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code from the status line.
    pub status: u16,
    /// Header lines as (name, value).
    pub headers: Vec<(String, String)>,
    /// The body (by `Content-Length`, or up to EOF).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes `bytes` to `addr` (in a task of its own, so a server that answers before reading
/// everything cannot deadlock the test) and reads the first response.
///
/// # Errors
/// When the connection fails or closes before a complete response head arrived, or after
/// the client timeout.
pub async fn raw_request(addr: SocketAddr, bytes: &[u8]) -> Result<RawResponse, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut rd, mut wr) = stream.into_split();
    let to_send = bytes.to_vec();
    let writer = tokio::spawn(async move {
        // The server may answer and close before reading everything; that is not our error.
        let _ = wr.write_all(&to_send).await;
        wr
    });
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0_u8; 8192];
        let mut parsed: Option<Head> = None;
        loop {
            if let Some((head_len, status, headers)) = &parsed {
                let len = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok());
                if let Some(len) = len
                    && buf.len() >= head_len + len
                {
                    return Ok(RawResponse {
                        status: *status,
                        headers: headers.clone(),
                        body: buf[*head_len..head_len + len].to_vec(),
                    });
                }
            }
            let n = match rd.read(&mut chunk).await {
                Ok(n) => n,
                // A reset after the answer still leaves the answer.
                Err(e) if parsed.is_none() => return Err(format!("read: {e}")),
                Err(_) => 0,
            };
            if n == 0 {
                return match parsed {
                    Some((head_len, status, headers)) => Ok(RawResponse {
                        status,
                        headers,
                        body: buf[head_len..].to_vec(),
                    }),
                    None => Err(format!(
                        "connection closed before a response head; got {:?}",
                        String::from_utf8_lossy(&buf)
                    )),
                };
            }
            buf.extend_from_slice(&chunk[..n]);
            if parsed.is_none() {
                parsed = parse_head(&buf)?;
            }
        }
    };
    let result = match tokio::time::timeout(CLIENT_TIMEOUT, read).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {CLIENT_TIMEOUT:?}")),
    };
    writer.abort();
    result
}

/// Writes `bytes` to `addr` and reads everything the server sends until it closes the
/// connection (a reset after some data ends the read too).
///
/// # Errors
/// When the connection fails before any byte arrives, or the server keeps it open past the
/// client timeout.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut rd, mut wr) = stream.into_split();
    let to_send = bytes.to_vec();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&to_send).await;
        wr
    });
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0_u8; 8192];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) => return Ok(buf),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(_) if !buf.is_empty() => return Ok(buf),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    };
    let result = match tokio::time::timeout(CLIENT_TIMEOUT, read).await {
        Ok(r) => r,
        Err(_) => Err(format!("connection still open after {CLIENT_TIMEOUT:?}")),
    };
    writer.abort();
    result
}

type Head = (usize, u16, Vec<(String, String)>);

fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Some((end + 4, status, headers)))
}
