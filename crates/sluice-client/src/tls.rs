//! TLS for both ends of the gateway: rustls with the ring provider, configured from the
//! config's `tls` and `client_tls` blocks (already checked by `sluice-config`).
//!
//! Everything here runs once, when a gateway is built: certificates and keys are read and
//! checked then, so a file that does not load stops start-up (and `sluice check`) with the JSON
//! path that names it, and a request never reads a file. The system's roots are read once per
//! process.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, Error, RootCertStore,
    SignatureScheme, SupportedProtocolVersion,
};
use sluice_config::{ClientTls, TlsFile, TlsProtocol, TlsVersion};

/// How long a TLS handshake with a backend may take (Go's `TLSHandshakeTimeout`, so
/// KrakenD's), on top of the dial.
pub const BACKEND_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A TLS setting that cannot be applied: a file that does not load, a key that does not match
/// its certificate. `json_path` names the config value at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    /// JSON path of the value at fault, like `tls.keys[1].private_key`.
    pub json_path: String,
    /// What is wrong, naming the file.
    pub message: String,
}

impl TlsError {
    fn at(file: &TlsFile, message: impl Into<String>) -> Self {
        Self {
            json_path: file.json_path.clone(),
            message: message.into(),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.json_path, self.message)
    }
}

impl std::error::Error for TlsError {}

/// The ring provider narrowed to the suites and groups `protocol` lists (all when it lists
/// none), in the order listed. TLS 1.3 suites are narrowed only when some are listed (Go
/// never narrows them).
pub fn provider(protocol: &TlsProtocol) -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    let suites = &protocol.cipher_suites;
    if !suites.is_empty() {
        let tls13_listed = suites.iter().any(|id| sluice_config::is_tls13_suite(*id));
        let mut ordered: Vec<_> = suites
            .iter()
            .filter_map(|id| {
                provider
                    .cipher_suites
                    .iter()
                    .find(|s| u16::from(s.suite()) == *id)
                    .copied()
            })
            .collect();
        if !tls13_listed {
            ordered.extend(
                provider
                    .cipher_suites
                    .iter()
                    .filter(|s| s.version() == &rustls::version::TLS13)
                    .copied(),
            );
        }
        provider.cipher_suites = ordered;
    }
    if !protocol.curve_preferences.is_empty() {
        provider.kx_groups = protocol
            .curve_preferences
            .iter()
            .filter_map(|id| {
                provider
                    .kx_groups
                    .iter()
                    .find(|g| u16::from(g.name()) == *id)
                    .copied()
            })
            .collect();
    }
    Arc::new(provider)
}

/// The versions from `min_version` to `max_version`.
pub fn versions(protocol: &TlsProtocol) -> Vec<&'static SupportedProtocolVersion> {
    let mut versions = Vec::with_capacity(2);
    if protocol.min_version <= TlsVersion::Tls12 && protocol.max_version >= TlsVersion::Tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if protocol.max_version >= TlsVersion::Tls13 {
        versions.push(&rustls::version::TLS13);
    }
    versions
}

fn read(file: &TlsFile, what: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(&file.path).map_err(|e| {
        TlsError::at(
            file,
            format!("cannot read the {what} {}: {e}", shown(&file.path)),
        )
    })
}

fn shown(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// The certificates of a PEM file (a chain, leaf first; or CAs): at least one.
pub fn load_certs(file: &TlsFile) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(file, "certificate file")?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            TlsError::at(
                file,
                format!("{} is not a valid PEM file: {e}", shown(&file.path)),
            )
        })?;
    if certs.is_empty() {
        return Err(TlsError::at(
            file,
            format!(
                "{} holds no certificate (expected a PEM \"BEGIN CERTIFICATE\" block)",
                shown(&file.path)
            ),
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
pub fn load_key(file: &TlsFile) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(file, "private key file")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => "holds no private key (expected a PEM \
                 \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block)"
                .to_owned(),
            other => format!("is not a valid PEM private key: {other}"),
        };
        TlsError::at(file, format!("{} {why}", shown(&file.path)))
    })
}

/// A certificate chain and its private key, checked to belong together.
pub fn certified_key(
    cert: &TlsFile,
    key: &TlsFile,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = load_certs(cert)?;
    let der = load_key(key)?;
    let signing = provider.key_provider.load_private_key(der).map_err(|e| {
        TlsError::at(
            key,
            format!(
                "the private key in {} cannot be used: {e} (Sluice signs with RSA, ECDSA P-256 \
                 or P-384, and Ed25519 keys)",
                shown(&key.path)
            ),
        )
    })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        // `Unknown`: the provider cannot tell; the handshake will.
        Ok(()) | Err(Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => {
            return Err(TlsError::at(
                key,
                format!(
                    "the private key in {} does not belong to the certificate in {}: {e}",
                    shown(&key.path),
                    shown(&cert.path)
                ),
            ));
        }
    }
    Ok(Arc::new(certified))
}

/// The system's trusted CAs, read once per process. When the system has none (a distroless
/// image without a CA bundle), the Mozilla roots bundled with Sluice (webpki-roots) are used
/// instead, with a warning.
pub fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(target: "sluice::tls", error = %error, "reading the system's CA certificates");
        }
        let mut store = RootCertStore::empty();
        let (_, ignored) = store.add_parsable_certificates(found.certs);
        if ignored > 0 {
            tracing::debug!(target: "sluice::tls", ignored, "system CA certificates that could not be used");
        }
        if store.is_empty() {
            tracing::warn!(
                target: "sluice::tls",
                "no CA certificate found in the system's store: trusting the Mozilla roots \
                 bundled with Sluice instead (install the system's CA bundle, or list CAs in \
                 ca_certs with disable_system_ca_pool)"
            );
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        Arc::new(store)
    }))
}

/// The system's roots (unless disabled) and each certificate of `ca_certs`.
pub fn roots(
    disable_system_ca_pool: bool,
    ca_certs: &[TlsFile],
) -> Result<RootCertStore, TlsError> {
    let mut store = if disable_system_ca_pool {
        RootCertStore::empty()
    } else {
        (*system_roots()).clone()
    };
    for file in ca_certs {
        for cert in load_certs(file)? {
            store.add(cert).map_err(|e| {
                TlsError::at(
                    file,
                    format!(
                        "{} holds a certificate that cannot be a trust anchor: {}",
                        shown(&file.path),
                        describe(&e)
                    ),
                )
            })?;
        }
    }
    Ok(store)
}

/// The client side of https backends: `client_tls` (the service's or a backend's own), or the
/// defaults without one (the system's roots, TLS 1.2 and 1.3, every suite: Go's client).
pub fn client_config(tls: Option<&ClientTls>) -> Result<ClientConfig, TlsError> {
    let defaults = TlsProtocol {
        min_version: TlsVersion::Tls12,
        max_version: TlsVersion::Tls13,
        ..TlsProtocol::default()
    };
    let protocol = tls.map_or(&defaults, |t| &t.protocol);
    let provider = provider(protocol);
    let json_path = tls.map_or_else(String::new, |t| t.json_path.clone());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions(protocol))
        .map_err(|e| TlsError {
            json_path: json_path.clone(),
            message: format!("no TLS version and cipher suite to offer: {e}"),
        })?;
    let builder = match tls {
        Some(t) if t.allow_insecure_connections => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification {
                algorithms: provider.signature_verification_algorithms,
            })),
        Some(t) => {
            let roots = roots(t.disable_system_ca_pool, &t.ca_certs)?;
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| TlsError {
                        json_path: json_path.clone(),
                        message: format!("no CA to verify backends against: {e}"),
                    })?;
            builder.with_webpki_verifier(verifier)
        }
        None => builder.with_root_certificates(system_roots()),
    };
    let certs = tls.map_or(&[][..], |t| &t.client_certs[..]);
    let mut keys = Vec::with_capacity(certs.len());
    for cert in certs {
        let key = certified_key(&cert.certificate, &cert.private_key, &provider)?;
        let issuer = key
            .end_entity_cert()
            .ok()
            .and_then(|der| {
                webpki::EndEntityCert::try_from(der)
                    .ok()
                    .map(|c| c.issuer().to_vec())
            })
            .map(|issuer| DistinguishedName::in_sequence(&issuer));
        keys.push(ClientCert { key, issuer });
    }
    let owner = match tls {
        Some(t) => format!("{}.client_certs", t.json_path),
        None => "client_tls.client_certs (no client_tls is set)".to_owned(),
    };
    Ok(builder.with_client_cert_resolver(Arc::new(ClientCerts { owner, certs: keys })))
}

/// One of `client_certs`, with the name of its issuer.
#[derive(Debug)]
struct ClientCert {
    key: Arc<CertifiedKey>,
    issuer: Option<DistinguishedName>,
}

/// `client_certs`: offered to a backend that asks for a certificate. As Go's client: the first
/// whose issuer is one the backend names and whose key it can verify, else the first whose key
/// it can verify. A backend that asks when there is none to offer is logged: under TLS 1.3 it
/// refuses the connection only after the handshake, where the cause is lost.
#[derive(Debug)]
struct ClientCerts {
    /// Where the certificates would be configured, for the log line.
    owner: String,
    certs: Vec<ClientCert>,
}

impl ResolvesClientCert for ClientCerts {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let usable = |c: &&ClientCert| c.key.key.choose_scheme(sigschemes).is_some();
        let named = |c: &&ClientCert| {
            c.issuer
                .as_ref()
                .is_some_and(|issuer| root_hint_subjects.contains(&issuer.as_ref()))
        };
        let chosen = self
            .certs
            .iter()
            .filter(usable)
            .find(named)
            .or_else(|| self.certs.iter().find(usable))
            .map(|c| Arc::clone(&c.key));
        if chosen.is_none() {
            tracing::warn!(
                target: "sluice::tls",
                "an https backend asks for a client certificate (mTLS) and {} has none it can \
                 use: a backend that requires one refuses the connection",
                self.owner
            );
        }
        chosen
    }

    fn has_certs(&self) -> bool {
        !self.certs.is_empty()
    }
}

/// `allow_insecure_connections`: any certificate is accepted (the handshake's signatures are
/// still checked, so the peer holds the key of the certificate it showed).
#[derive(Debug)]
struct NoVerification {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The rustls error somewhere in `error`'s chain (a failed handshake, wrapped in I/O errors,
/// which hide what they wrap from `source`, as HTTP/2 errors hide their I/O error).
pub fn find_tls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<Error>() {
            return Some(tls);
        }
        let io = e
            .downcast_ref::<std::io::Error>()
            .or_else(|| e.downcast_ref::<h2::Error>().and_then(h2::Error::get_io));
        next = match io {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => None,
            },
            None => e.source(),
        };
    }
    None
}

/// A handshake failure in words an operator can act on.
pub fn describe(error: &Error) -> String {
    use rustls::AlertDescription as Alert;
    match error {
        Error::InvalidCertificate(cert) => {
            let why = match cert {
                CertificateError::UnknownIssuer => {
                    "it is not signed by a trusted CA (unknown issuer)".to_owned()
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "it has expired".to_owned()
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "it is not valid yet".to_owned()
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    "it is not valid for the host name".to_owned()
                }
                CertificateError::Revoked => "it has been revoked".to_owned(),
                CertificateError::BadSignature => "its signature does not verify".to_owned(),
                CertificateError::InvalidPurpose
                | CertificateError::InvalidPurposeContext { .. } => {
                    "it is not meant for this use (extended key usage)".to_owned()
                }
                other => format!("{other:?}"),
            };
            format!("the peer's certificate was refused: {why} ({error})")
        }
        Error::NoCertificatesPresented => {
            "the client sent no certificate, and this listener requires one (enable_mtls)"
                .to_owned()
        }
        Error::AlertReceived(Alert::CertificateRequired) => {
            "the peer requires a client certificate, and none was sent".to_owned()
        }
        Error::AlertReceived(
            alert @ (Alert::UnknownCA
            | Alert::BadCertificate
            | Alert::CertificateExpired
            | Alert::CertificateUnknown
            | Alert::CertificateRevoked
            | Alert::UnsupportedCertificate),
        ) => format!("the peer refused our certificate ({alert:?})"),
        Error::AlertReceived(Alert::ProtocolVersion) => {
            "no TLS version in common with the peer".to_owned()
        }
        Error::AlertReceived(Alert::HandshakeFailure) => {
            "the peer refused the handshake (no cipher suite, curve or version in common, or \
             a certificate it did not accept)"
                .to_owned()
        }
        Error::PeerIncompatible(why) => format!("nothing in common with the peer: {why:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sluice_config::{TLS_CIPHER_SUITES, TLS_GROUPS};

    fn ids(provider: &CryptoProvider) -> Vec<u16> {
        provider
            .cipher_suites
            .iter()
            .map(|s| u16::from(s.suite()))
            .collect()
    }

    #[test]
    fn the_config_lists_exactly_what_the_provider_has() {
        let ring = rustls::crypto::ring::default_provider();
        let mut listed: Vec<u16> = TLS_CIPHER_SUITES.iter().map(|(id, _)| *id).collect();
        let mut have = ids(&ring);
        listed.sort_unstable();
        have.sort_unstable();
        assert_eq!(listed, have);
        for (id, name) in TLS_GROUPS {
            assert!(
                ring.kx_groups.iter().any(|g| u16::from(g.name()) == *id),
                "{name}"
            );
        }
    }

    #[test]
    fn suites_and_groups_are_narrowed_in_the_order_written() {
        let mut protocol = TlsProtocol {
            cipher_suites: vec![0xc030, 0xc02f],
            curve_preferences: vec![24, 23],
            ..TlsProtocol::default()
        };
        // No TLS 1.3 suite listed: all three stay (Go cannot narrow them).
        let narrowed = provider(&protocol);
        assert_eq!(ids(&narrowed), [0xc030, 0xc02f, 0x1302, 0x1301, 0x1303]);
        let groups: Vec<u16> = narrowed
            .kx_groups
            .iter()
            .map(|g| u16::from(g.name()))
            .collect();
        assert_eq!(groups, [24, 23]);
        protocol.cipher_suites = vec![0x1303, 0xc02f];
        assert_eq!(ids(&provider(&protocol)), [0x1303, 0xc02f]);
        assert_eq!(ids(&provider(&TlsProtocol::default())).len(), 9);
    }

    #[test]
    fn version_ranges() {
        let range = |min, max| {
            versions(&TlsProtocol {
                min_version: min,
                max_version: max,
                ..TlsProtocol::default()
            })
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>()
        };
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        assert_eq!(range(TlsVersion::Tls13, TlsVersion::Tls13), [TLSv1_3]);
        assert_eq!(
            range(TlsVersion::Tls12, TlsVersion::Tls13),
            [TLSv1_2, TLSv1_3]
        );
        assert_eq!(range(TlsVersion::Tls12, TlsVersion::Tls12), [TLSv1_2]);
    }

    #[test]
    fn files_that_do_not_load_are_named() {
        let missing = TlsFile {
            path: "/nonexistent/sluice/cert.pem".into(),
            json_path: "tls.public_key".to_owned(),
        };
        let e = load_certs(&missing).unwrap_err();
        assert_eq!(e.json_path, "tls.public_key");
        assert!(
            e.message
                .starts_with("cannot read the certificate file \"/nonexistent/sluice/cert.pem\": "),
            "{e}"
        );
    }
}
