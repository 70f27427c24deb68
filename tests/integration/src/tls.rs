//! TLS for the tests: certificates made in the test (rcgen) and written to a temporary folder,
//! an https backend and an https client, all real rustls on `127.0.0.1`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

/// A folder of its own under the system's temporary folder, removed when dropped.
#[derive(Debug)]
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    /// A new, empty folder named `sluice-<tag>-` and a random tail.
    ///
    /// # Panics
    /// If it cannot be created.
    pub fn new(tag: &str) -> TempDir {
        TempDir(
            tempfile::Builder::new()
                .prefix(&format!("sluice-{tag}-"))
                .tempdir()
                .expect("create the temporary folder"),
        )
    }

    /// The path of `name` in it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    /// Writes `contents` to `name` in it; returns the path as a string, for configs.
    ///
    /// # Panics
    /// If the file cannot be written.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write a test file");
        path_str(&path)
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().expect("UTF-8 temporary path").to_owned()
}

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A server (`serverAuth`).
    Server,
    /// A client (`clientAuth`).
    Client,
}

/// A certificate authority made for the test.
#[derive(Debug)]
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, PEM.
    pub cert_pem: String,
    /// Its certificate, DER.
    pub der: CertificateDer<'static>,
}

impl Ca {
    /// A self-signed CA named `name`.
    ///
    /// # Panics
    /// If rcgen fails (it does not).
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("a CA certificate");
        Ca {
            cert_pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (DNS names or IP addresses), valid now.
    pub fn issue(&self, names: &[&str], usage: Usage) -> Leaf {
        self.issue_valid(names, usage, false)
    }

    /// A certificate for `names` that expired in 2001.
    pub fn issue_expired(&self, names: &[&str], usage: Usage) -> Leaf {
        self.issue_valid(names, usage, true)
    }

    fn issue_valid(&self, names: &[&str], usage: Usage, expired: bool) -> Leaf {
        let key = KeyPair::generate().expect("a leaf key");
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("leaf params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("client"),
        );
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a leaf certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A root store holding this CA only.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).expect("a usable CA");
        roots
    }
}

/// A leaf certificate and its key.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Leaf {
    /// The private key, DER.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// Writes `<stem>.pem` and `<stem>.key` into `dir`; returns their paths.
    pub fn write(&self, dir: &TempDir, stem: &str) -> (String, String) {
        (
            dir.write(&format!("{stem}.pem"), &self.cert_pem),
            dir.write(&format!("{stem}.key"), &self.key_pem),
        )
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS versions a test client or backend speaks.
pub const TLS12_AND_13: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS12, &rustls::version::TLS13];
/// TLS 1.2 only.
pub const TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// A TLS acceptor serving `cert`, speaking `versions` and offering `alpn`, asking for a client
/// certificate issued by `client_ca` when given (and refusing clients without one).
///
/// # Panics
/// If the certificate is unusable.
pub fn acceptor(
    cert: &Leaf,
    client_ca: Option<&Ca>,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> tokio_rustls::TlsAcceptor {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("versions");
    let builder = match client_ca {
        Some(ca) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider())
                .build()
                .expect("a client verifier"),
        ),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(vec![cert.der.clone()], cert.key())
        .expect("a usable certificate");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// An https backend: answers every request with
/// `{"tls": true, "path": <path>, "client_cert": <whether the client showed one>}`.
#[derive(Debug)]
pub struct TlsBackend {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsBackend {
    /// Serves with `cert` (HTTP/1.1 and HTTP/2 by ALPN, TLS 1.2 and 1.3), asking for a client
    /// certificate issued by `client_ca` when given (and refusing clients without one).
    ///
    /// # Panics
    /// If the certificate is unusable or no port can be bound.
    pub async fn start(cert: &Leaf, client_ca: Option<&Ca>) -> TlsBackend {
        Self::start_with(cert, client_ca, TLS12_AND_13).await
    }

    /// [`TlsBackend::start`] speaking only `versions`.
    ///
    /// # Panics
    /// If the certificate is unusable or no port can be bound.
    pub async fn start_with(
        cert: &Leaf,
        client_ca: Option<&Ca>,
        versions: &[&'static SupportedProtocolVersion],
    ) -> TlsBackend {
        let acceptor = acceptor(cert, client_ca, versions, &[b"h2", b"http/1.1"]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the backend");
        let addr = listener.local_addr().expect("a local address");
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let client_cert = tls.get_ref().1.peer_certificates().is_some();
                    let service = hyper::service::service_fn(move |req: http::Request<_>| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let body = serde_json::json!({
                            "tls": true,
                            "path": req.uri().path(),
                            "client_cert": client_cert,
                        });
                        async move {
                            let response = http::Response::builder()
                                .header("Content-Type", "application/json")
                                .body(Full::new(Bytes::from(body.to_string())))
                                .expect("a response");
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsBackend {
            addr,
            requests,
            task,
        }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `127.0.0.1:<port>`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A client configuration trusting `roots`, showing `cert` when given, offering `alpn`.
///
/// # Panics
/// If the versions or the certificate are unusable.
pub fn client_config(
    roots: &[&Ca],
    cert: Option<&Leaf>,
    alpn: &[&str],
    versions: &[&'static SupportedProtocolVersion],
) -> ClientConfig {
    let mut store = RootCertStore::empty();
    for ca in roots {
        store.add(ca.der.clone()).expect("a usable CA");
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(store);
    let mut config = match cert {
        Some(cert) => builder
            .with_client_auth_cert(vec![cert.der.clone()], cert.key())
            .expect("a usable client certificate"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    config
}

/// What an https request got.
#[derive(Debug)]
pub struct HttpsResponse {
    /// The status.
    pub status: u16,
    /// HTTP/1.1 or HTTP/2, as agreed by ALPN.
    pub version: http::Version,
    /// The body, as text.
    pub body: String,
    /// The server's certificate.
    pub server_cert: Option<CertificateDer<'static>>,
}

/// Opens a TLS connection to `addr` as `server_name` (sent as SNI unless it is an IP address).
///
/// # Errors
/// The connection or the handshake failed.
pub async fn connect(
    config: ClientConfig,
    addr: SocketAddr,
    server_name: &str,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))
}

/// `GET path` over TLS, HTTP/2 when ALPN agreed it, HTTP/1.1 otherwise.
///
/// # Errors
/// The connection, the handshake or the exchange failed (a server that refuses the client's
/// certificate fails it here under TLS 1.3, after the client's handshake is done).
pub async fn https_get(
    config: ClientConfig,
    addr: SocketAddr,
    server_name: &str,
    path: &str,
) -> Result<HttpsResponse, String> {
    let tls = connect(config, addr, server_name).await?;
    let (_, session) = tls.get_ref();
    let h2 = session.alpn_protocol() == Some(b"h2");
    let server_cert = session
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|c| c.clone().into_owned());
    let io = TokioIo::new(tls);
    let response = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("h2 handshake: {e}"))?;
        tokio::spawn(conn);
        let request = http::Request::get(format!("https://{server_name}{path}"))
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}: {:?}", std::error::Error::source(&e)))?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("h1 handshake: {e}"))?;
        tokio::spawn(conn);
        let request = http::Request::get(path)
            .header("Host", server_name)
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}: {:?}", std::error::Error::source(&e)))?
    };
    let status = response.status().as_u16();
    let version = response.version();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok(HttpsResponse {
        status,
        version,
        body: String::from_utf8_lossy(&body).into_owned(),
        server_cert,
    })
}
