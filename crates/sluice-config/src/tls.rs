//! `tls` (the listener) and `client_tls` (https backends), read with KrakenD's spellings and
//! defaults. What Sluice's TLS library (rustls, with the ring provider) cannot do is refused by
//! name here: TLS 1.0 and 1.1 (and SSL 3.0), cipher suites without forward secrecy or AEAD, the
//! P-521 curve. The files are only named here; they are loaded (and refused when they do not
//! load) where the listener and the clients are built.

use std::path::PathBuf;

use serde_json::Value;

use crate::model::{
    ClientTls, ServerTls, TlsClientCert, TlsFile, TlsKeyPair, TlsProtocol, TlsVersion,
};
use crate::read::{Obj, Reader, index_path, kind, quote};

/// The cipher suites Sluice implements, by IANA id, with their IANA names: the three TLS 1.3
/// suites and the six TLS 1.2 ECDHE AEAD suites (Go's, and so KrakenD's, TLS 1.2 defaults).
pub const TLS_CIPHER_SUITES: &[(u16, &str)] = &[
    (0x1301, "TLS_AES_128_GCM_SHA256"),
    (0x1302, "TLS_AES_256_GCM_SHA384"),
    (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
    (0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
];

/// Suites Go (and so KrakenD) can be configured with and rustls does not implement: RC4, 3DES,
/// CBC, and RSA key exchange without forward secrecy.
const UNSUPPORTED_CIPHER_SUITES: &[(u16, &str)] = &[
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    (0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    (0xc007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"),
    (0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
    (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    (0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
];

/// The key-exchange groups (`curve_preferences`) Sluice implements, by IANA id (Go's
/// `CurveID` values).
pub const TLS_GROUPS: &[(u16, &str)] = &[(23, "P-256"), (24, "P-384"), (29, "X25519")];

/// Groups Go knows and Sluice's provider does not.
const UNSUPPORTED_GROUPS: &[(u16, &str)] = &[(25, "P-521"), (4588, "X25519MLKEM768")];

/// Whether `id` is a TLS 1.3 cipher suite.
pub fn is_tls13_suite(id: u16) -> bool {
    (0x1301..=0x1303).contains(&id)
}

const LISTENER_KEYS: &[&str] = &[
    "disabled",
    "public_key",
    "private_key",
    "keys",
    "min_version",
    "max_version",
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
    "enable_mtls",
    "ca_certs",
    "disable_system_ca_pool",
];

const CLIENT_KEYS: &[&str] = &[
    "allow_insecure_connections",
    "ca_certs",
    "disable_system_ca_pool",
    "client_certs",
    "min_version",
    "max_version",
    "cipher_suites",
    "curve_preferences",
];

/// The service's `tls`: `None` when absent, `null` or `disabled` (checked all the same).
pub(crate) fn server_tls(r: &mut Reader<'_>, svc: &Obj<'_>) -> Option<ServerTls> {
    let value = svc.get("tls")?;
    let o = r.as_object(value, svc.path_of("tls"))?;
    r.known_keys(&o, LISTENER_KEYS);
    let disabled = r.bool(&o, "disabled");
    let errors_before = r.errors.len();
    let mut keys = Vec::new();
    if let Some(pair) = key_pair(r, &o, "public_key", "private_key", true) {
        keys.push(pair);
    }
    if let Some(items) = r.array(&o, "keys") {
        let list = o.path_of("keys");
        for (i, item) in items.iter().enumerate() {
            let Some(k) = r.as_object(item, index_path(&list, i)) else {
                continue;
            };
            r.known_keys(&k, &["public_key", "private_key"]);
            keys.extend(key_pair(r, &k, "public_key", "private_key", false));
        }
    }
    let protocol = protocol(r, &o);
    let enable_mtls = r.bool(&o, "enable_mtls");
    let ca_certs = files(r, &o, "ca_certs");
    let disable_system_ca_pool = r.bool(&o, "disable_system_ca_pool");
    let prefer_server_cipher_suites = r.bool(&o, "prefer_server_cipher_suites");
    if disabled {
        return None;
    }
    if keys.is_empty() && r.errors.len() == errors_before {
        r.error(
            o.path.clone(),
            "missing: the certificate and its key, as \"public_key\" and \"private_key\" or as \
             \"keys\": [{\"public_key\": ..., \"private_key\": ...}] (or set \"disabled\": true \
             to serve plain HTTP)",
        );
    }
    if enable_mtls && disable_system_ca_pool && ca_certs.is_empty() {
        r.error(
            o.path_of("ca_certs"),
            "enable_mtls with disable_system_ca_pool trusts only ca_certs, and it lists no CA: \
             no client certificate could be verified; list the CAs that issue them",
        );
    }
    Some(ServerTls {
        json_path: o.path.clone(),
        keys,
        protocol,
        enable_mtls,
        ca_certs,
        disable_system_ca_pool,
        prefer_server_cipher_suites,
    })
}

/// A `client_tls` block at `key` of `parent` (the service, or a backend's
/// `backend/http/client`).
pub(crate) fn client_tls(r: &mut Reader<'_>, parent: &Obj<'_>, key: &str) -> Option<ClientTls> {
    let value = parent.get(key)?;
    let o = r.as_object(value, parent.path_of(key))?;
    r.known_keys(&o, CLIENT_KEYS);
    let allow_insecure_connections = r.bool(&o, "allow_insecure_connections");
    let ca_certs = files(r, &o, "ca_certs");
    let disable_system_ca_pool = r.bool(&o, "disable_system_ca_pool");
    let mut client_certs = Vec::new();
    if let Some(items) = r.array(&o, "client_certs") {
        let list = o.path_of("client_certs");
        for (i, item) in items.iter().enumerate() {
            let Some(c) = r.as_object(item, index_path(&list, i)) else {
                continue;
            };
            r.known_keys(&c, &["certificate", "private_key"]);
            if let Some(pair) = key_pair(r, &c, "certificate", "private_key", false) {
                client_certs.push(TlsClientCert {
                    certificate: pair.public_key,
                    private_key: pair.private_key,
                });
            }
        }
    }
    let protocol = protocol(r, &o);
    if disable_system_ca_pool && ca_certs.is_empty() && !allow_insecure_connections {
        r.error(
            o.path_of("disable_system_ca_pool"),
            "with the system's CAs disabled and no ca_certs, no https backend could be \
             verified: list the CAs that issue the backends' certificates in ca_certs",
        );
    }
    Some(ClientTls {
        json_path: o.path.clone(),
        allow_insecure_connections,
        ca_certs,
        disable_system_ca_pool,
        client_certs,
        protocol,
    })
}

/// The service's `client_tls`, with the legacy top-level `allow_insecure_connections` folded
/// in as lura does (it makes a `client_tls` when there is none, with KrakenD's defaults).
pub(crate) fn service_client_tls(r: &mut Reader<'_>, svc: &Obj<'_>) -> Option<ClientTls> {
    let mut client_tls = client_tls(r, svc, "client_tls");
    if r.bool(svc, "allow_insecure_connections") {
        match &mut client_tls {
            Some(tls) => tls.allow_insecure_connections = true,
            None => {
                client_tls = Some(ClientTls {
                    json_path: svc.path_of("allow_insecure_connections"),
                    allow_insecure_connections: true,
                    ca_certs: Vec::new(),
                    disable_system_ca_pool: false,
                    client_certs: Vec::new(),
                    protocol: TlsProtocol::default(),
                });
            }
        }
    }
    client_tls
}

/// A certificate and its key at `cert_key` and `key_key` of `o`; both or neither when
/// `optional`, both always otherwise.
fn key_pair(
    r: &mut Reader<'_>,
    o: &Obj<'_>,
    cert_key: &str,
    key_key: &str,
    optional: bool,
) -> Option<TlsKeyPair> {
    let cert = file(r, o, cert_key);
    let key = file(r, o, key_key);
    let written = |k: &str| o.get(k).is_some();
    if !optional || written(cert_key) || written(key_key) {
        for (k, other) in [(cert_key, key_key), (key_key, cert_key)] {
            if !written(k) {
                r.error(
                    o.path_of(k),
                    format!(
                        "missing: expected the path of a PEM file (it goes with {})",
                        quote(other)
                    ),
                );
            }
        }
    }
    Some(TlsKeyPair {
        public_key: cert?,
        private_key: key?,
    })
}

/// The path of a file at `key`.
fn file(r: &mut Reader<'_>, o: &Obj<'_>, key: &str) -> Option<TlsFile> {
    let path = r.string(o, key)?;
    if path.is_empty() {
        r.error(
            o.path_of(key),
            "expected the path of a PEM file, found an empty string",
        );
        return None;
    }
    Some(TlsFile {
        path: PathBuf::from(path),
        json_path: o.path_of(key),
    })
}

/// The paths of the files at `key` (an array of strings).
fn files(r: &mut Reader<'_>, o: &Obj<'_>, key: &str) -> Vec<TlsFile> {
    let Some(paths) = r.strings(o, key) else {
        return Vec::new();
    };
    let list = o.path_of(key);
    let mut files = Vec::with_capacity(paths.len());
    for (i, path) in paths.into_iter().enumerate() {
        let json_path = index_path(&list, i);
        if path.is_empty() {
            r.error(
                json_path,
                "expected the path of a PEM file, found an empty string",
            );
        } else {
            files.push(TlsFile {
                path: PathBuf::from(path),
                json_path,
            });
        }
    }
    files
}

/// `min_version`, `max_version`, `cipher_suites` and `curve_preferences` of a TLS block.
fn protocol(r: &mut Reader<'_>, o: &Obj<'_>) -> TlsProtocol {
    let defaults = TlsProtocol::default();
    let min = version(r, o, "min_version");
    let max = version(r, o, "max_version");
    let min_version = min.unwrap_or(defaults.min_version);
    let max_version = max.unwrap_or(defaults.max_version);
    if min_version > max_version {
        let (at, note) = if min.is_some() {
            ("min_version", "")
        } else {
            ("max_version", " (the default)")
        };
        r.error(
            o.path_of(at),
            format!(
                "min_version {}{note} is above max_version {}: no version could be negotiated",
                min_version.as_str(),
                max_version.as_str()
            ),
        );
    }
    let cipher_suites = listed_ids(
        r,
        o,
        "cipher_suites",
        "cipher suite",
        TLS_CIPHER_SUITES,
        UNSUPPORTED_CIPHER_SUITES,
        "rustls implements only AEAD suites with forward secrecy",
    );
    if min_version == TlsVersion::Tls12
        && !cipher_suites.is_empty()
        && cipher_suites.iter().all(|id| is_tls13_suite(*id))
    {
        r.error(
            o.path_of("cipher_suites"),
            format!(
                "min_version TLS12 allows TLS 1.2, but cipher_suites lists no TLS 1.2 suite, so \
                 no TLS 1.2 connection could be made: add one of {}, or set min_version to TLS13",
                listing(
                    TLS_CIPHER_SUITES
                        .iter()
                        .filter(|(id, _)| !is_tls13_suite(*id))
                )
            ),
        );
    }
    let curve_preferences = listed_ids(
        r,
        o,
        "curve_preferences",
        "curve",
        TLS_GROUPS,
        UNSUPPORTED_GROUPS,
        "Sluice's TLS library (rustls with the ring provider) does not implement it",
    );
    TlsProtocol {
        min_version,
        max_version,
        cipher_suites,
        curve_preferences,
    }
}

/// A TLS version in KrakenD's spelling (exactly: KrakenD reads any other spelling as TLS13).
fn version(r: &mut Reader<'_>, o: &Obj<'_>, key: &str) -> Option<TlsVersion> {
    let value = o.get(key)?;
    let found = match value.as_str() {
        Some("TLS12") => return Some(TlsVersion::Tls12),
        Some("TLS13") => return Some(TlsVersion::Tls13),
        Some(old @ ("SSL3.0" | "TLS10" | "TLS11")) => {
            let name = match old {
                "SSL3.0" => "SSL 3.0",
                "TLS10" => "TLS 1.0",
                _ => "TLS 1.1",
            };
            r.error(
                o.path_of(key),
                format!(
                    "{} ({name}) is not supported by Sluice: its TLS library (rustls) speaks \
                     TLS 1.2 and 1.3 only; set \"TLS12\" or \"TLS13\"",
                    quote(old)
                ),
            );
            return None;
        }
        Some(other) => quote(other),
        None => kind(value).to_owned(),
    };
    r.error(
        o.path_of(key),
        format!("expected \"TLS12\" or \"TLS13\", found {found}"),
    );
    None
}

/// An array of IANA ids at `key`, each one of `supported` (in the order written, each once);
/// one of `unsupported` is refused by name, any other number as unknown.
fn listed_ids(
    r: &mut Reader<'_>,
    o: &Obj<'_>,
    key: &str,
    what: &str,
    supported: &[(u16, &str)],
    unsupported: &[(u16, &str)],
    why: &str,
) -> Vec<u16> {
    let Some(items) = r.array(o, key) else {
        return Vec::new();
    };
    let list = o.path_of(key);
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = index_path(&list, i);
        let Some(id) = item.as_u64() else {
            let found = match item {
                Value::Number(n) => n.to_string(),
                other => kind(other).to_owned(),
            };
            r.error(
                at,
                format!("expected a {what} id (a number), found {found}"),
            );
            continue;
        };
        if let Some((id, _)) = supported.iter().find(|(known, _)| u64::from(*known) == id) {
            if ids.contains(id) {
                r.error(at, format!("{what} {id} is listed twice"));
            } else {
                ids.push(*id);
            }
        } else if let Some((_, name)) = unsupported
            .iter()
            .find(|(known, _)| u64::from(*known) == id)
        {
            r.error(
                at,
                format!(
                    "{what} {id} ({name}) is not supported by Sluice: {why}; use {}",
                    listing(supported.iter())
                ),
            );
        } else {
            r.error(
                at,
                format!(
                    "unknown {what} {id}: expected one of {}",
                    listing(supported.iter())
                ),
            );
        }
    }
    ids
}

fn listing<'a>(ids: impl Iterator<Item = &'a (u16, &'a str)>) -> String {
    ids.map(|(id, name)| format!("{id} ({name})"))
        .collect::<Vec<_>>()
        .join(", ")
}
