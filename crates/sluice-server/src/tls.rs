//! HTTPS on the listener (the service's `tls`): an acceptor built once from the config and held
//! by the gateway, so a reload builds a new one and swaps it with the rest.
//!
//! HTTP/1.1 and HTTP/2 are offered by ALPN; the certificate is chosen by the name the client
//! asks for (SNI) among `public_key`/`private_key` and `keys`; with `enable_mtls` every client
//! must present a certificate that verifies against `ca_certs` (and the system's CAs unless
//! `disable_system_ca_pool`). A handshake has a deadline: a client that never finishes it
//! cannot hold a connection slot. A failed handshake is one log line (target `sluice::tls`)
//! saying why.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::ServerName;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use sluice_client::tls::{self as client_tls, TlsError};
use sluice_config::{Config, ServerTls};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// How long a handshake may take when none of `read_header_timeout`, `read_timeout` and
/// `write_timeout` is set (Go's server would wait forever).
pub(crate) const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The listener's TLS: one rustls configuration, and the handshake deadline.
#[derive(Clone)]
pub(crate) struct Acceptor {
    inner: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("config", self.inner.config())
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl Acceptor {
    /// The acceptor for `config.tls`, `None` without one. Every certificate and key is loaded
    /// and checked here; each one that does not load is an error naming the config file, the
    /// JSON path and the certificate or key file.
    pub(crate) fn from_config(config: &Config) -> Result<Option<Self>, Vec<String>> {
        let Some(tls) = &config.tls else {
            return Ok(None);
        };
        let file = config.source.display();
        let server_config = server_config(tls).map_err(|errors| {
            errors
                .into_iter()
                .map(|e| format!("{file}: {e}"))
                .collect::<Vec<_>>()
        })?;
        // Go's server bounds the handshake by the smallest of these; Sluice always bounds it.
        let server = &config.server;
        let handshake_timeout = [
            server.read_header_timeout,
            server.read_timeout,
            server.write_timeout,
        ]
        .into_iter()
        .filter(|d| !d.is_zero())
        .min()
        .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        Ok(Some(Self {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(server_config)),
            handshake_timeout,
        }))
    }

    /// Runs the handshake on an accepted connection, by the handshake deadline. Returns the
    /// stream and whether HTTP/2 was agreed by ALPN.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, bool), HandshakeError> {
        match tokio::time::timeout(self.handshake_timeout, self.inner.accept(stream)).await {
            Err(_) => Err(HandshakeError::TimedOut(self.handshake_timeout)),
            Ok(Err(e)) => Err(HandshakeError::Failed(e)),
            Ok(Ok(tls)) => {
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                Ok((tls, h2))
            }
        }
    }
}

/// Wraps an accepted connection: the TLS handshake when `acceptor` is set, plain otherwise.
/// `None` when the handshake failed (logged here, with the peer's address and why).
pub(crate) async fn wrap(
    acceptor: Option<&Acceptor>,
    stream: TcpStream,
    peer: std::net::SocketAddr,
) -> Option<(MaybeTls, bool)> {
    let Some(acceptor) = acceptor else {
        return Some((MaybeTls::Plain(stream), false));
    };
    match acceptor.accept(stream).await {
        Ok((tls, h2)) => Some((MaybeTls::Tls(Box::new(tls)), h2)),
        Err(e) if e.is_quiet() => {
            tracing::debug!(target: "sluice::tls", peer = %peer, error = %e, "TLS handshake failed");
            None
        }
        Err(e) => {
            tracing::warn!(target: "sluice::tls", peer = %peer, error = %e, "TLS handshake failed");
            None
        }
    }
}

/// Why a client's handshake did not complete.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// Not finished by the deadline.
    TimedOut(Duration),
    /// Refused (by either side) or cut.
    Failed(io::Error),
}

impl HandshakeError {
    /// A connection closed before saying anything TLS (a port probe, a TCP health check): not
    /// worth a warning.
    fn is_quiet(&self) -> bool {
        match self {
            HandshakeError::TimedOut(_) => false,
            HandshakeError::Failed(e) => {
                client_tls::find_tls_error(e).is_none()
                    && matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::BrokenPipe
                    )
            }
        }
    }
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::TimedOut(limit) => {
                write!(
                    f,
                    "the client did not finish the handshake within {limit:?}"
                )
            }
            HandshakeError::Failed(e) => match client_tls::find_tls_error(e) {
                Some(tls) => f.write_str(&client_tls::describe(tls)),
                None => write!(f, "{e}"),
            },
        }
    }
}

/// The rustls configuration of the listener; every problem, not just the first.
fn server_config(tls: &ServerTls) -> Result<ServerConfig, Vec<TlsError>> {
    let provider = client_tls::provider(&tls.protocol);
    let mut errors = Vec::new();
    let mut keys = Vec::with_capacity(tls.keys.len());
    for pair in &tls.keys {
        match client_tls::certified_key(&pair.public_key, &pair.private_key, &provider) {
            Ok(key) => keys.push(key),
            Err(e) => errors.push(e),
        }
    }
    let verifier = if tls.enable_mtls {
        match client_tls::roots(tls.disable_system_ca_pool, &tls.ca_certs) {
            Ok(roots) => {
                match WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .build()
                {
                    Ok(verifier) => Some(verifier),
                    Err(e) => {
                        errors.push(TlsError {
                            json_path: format!("{}.ca_certs", tls.json_path),
                            message: format!("no CA to verify client certificates against: {e}"),
                        });
                        None
                    }
                }
            }
            Err(e) => {
                errors.push(e);
                None
            }
        }
    } else {
        None
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&client_tls::versions(&tls.protocol))
        .map_err(|e| {
            vec![TlsError {
                json_path: tls.json_path.clone(),
                message: format!("no TLS version and cipher suite to offer: {e}"),
            }]
        })?;
    let builder = match verifier {
        Some(verifier) => {
            if !tls.disable_system_ca_pool {
                tracing::warn!(
                    target: "sluice::tls",
                    "tls.enable_mtls trusts the system's CAs besides ca_certs (KrakenD's \
                     default): a client certificate from any of them is accepted; set \
                     disable_system_ca_pool to trust ca_certs only"
                );
            }
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(ByServerName(keys)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ignore_client_order = tls.prefer_server_cipher_suites;
    Ok(config)
}

/// The certificates of the listener, chosen as Go's server does: the first valid for the name
/// the client asks for (SNI) whose key the client can verify, else the first whose key it can
/// verify, else the first.
#[derive(Debug)]
struct ByServerName(Vec<Arc<CertifiedKey>>);

impl ResolvesServerCert for ByServerName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let schemes = hello.signature_schemes();
        let name = hello
            .server_name()
            .and_then(|name| ServerName::try_from(name).ok());
        let usable = |key: &&Arc<CertifiedKey>| key.key.choose_scheme(schemes).is_some();
        let serves = |key: &&Arc<CertifiedKey>| {
            name.as_ref().is_some_and(|name| {
                key.end_entity_cert()
                    .ok()
                    .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
                    .is_some_and(|cert| cert.verify_is_valid_for_subject_name(name).is_ok())
            })
        };
        self.0
            .iter()
            .filter(usable)
            .find(serves)
            .or_else(|| self.0.iter().find(usable))
            .or_else(|| self.0.first())
            .cloned()
    }
}

/// An accepted connection, in plain text or TLS.
#[derive(Debug)]
pub(crate) enum MaybeTls {
    /// Plain HTTP.
    Plain(TcpStream),
    /// After the handshake.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(s) => s.is_write_vectored(),
        }
    }
}
