//! `hmac-signer`: signs every backend request with HMAC-SHA256, then lets the gateway send it.
//!
//! Settings:
//! ```json
//! {"secret": "s3cr3t", "key_id": "gateway-1",
//!  "headers": {"timestamp": "X-Signature-Timestamp", "signature": "X-Signature", "key_id": "X-Key-Id"}}
//! ```
//! `secret` is required; `key_id` is optional (no key-id header without it); `headers` renames
//! the three headers (defaults shown). The string to sign is documented in [`sign`].
//! Runs in hooks mode (`on-request` only): the gateway makes the backend call itself.

pub mod sign;

use serde::Deserialize;
use sluice_plugin_sdk::{Error, Hooks, OutgoingRequest, Plugin, Response, export_plugin};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    secret: Option<String>,
    key_id: Option<String>,
    #[serde(default)]
    headers: HeaderNames,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct HeaderNames {
    timestamp: String,
    signature: String,
    key_id: String,
}

impl Default for HeaderNames {
    fn default() -> Self {
        HeaderNames {
            timestamp: "X-Signature-Timestamp".into(),
            signature: "X-Signature".into(),
            key_id: "X-Key-Id".into(),
        }
    }
}

/// The plugin.
#[derive(Debug)]
pub struct HmacSigner {
    secret: Vec<u8>,
    key_id: Option<String>,
    headers: HeaderNames,
}

impl Plugin for HmacSigner {
    const HOOKS: Hooks = Hooks::ON_REQUEST;

    fn init(settings: &str) -> Result<Self, String> {
        let s: Settings =
            sluice_plugin_sdk::parse_settings(settings).map_err(|e| format!("hmac-signer: {e}"))?;
        let secret = match s.secret {
            Some(secret) if !secret.is_empty() => secret,
            _ => return Err("hmac-signer: settings need a non-empty \"secret\"".into()),
        };
        Ok(HmacSigner {
            secret: secret.into_bytes(),
            key_id: s.key_id,
            headers: s.headers,
        })
    }

    // In place: only the method, URL and body cross in, and the signature's headers out.
    fn edit_request(&self, request: &OutgoingRequest) -> Result<Option<Response>, Error> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| Error::plugin("hmac-signer: the clock is before 1970"))?
            .as_secs();
        let url = request.url();
        let sts = sign::string_to_sign(
            &request.method(),
            sluice_plugin_sdk::path_and_query(&url),
            timestamp,
            &request.body(),
        );
        let signature = sign::signature(&self.secret, &sts);
        request.set_header(&self.headers.timestamp, timestamp.to_string().as_bytes())?;
        request.set_header(&self.headers.signature, signature.as_bytes())?;
        if let Some(key_id) = &self.key_id {
            request.set_header(&self.headers.key_id, key_id.as_bytes())?;
        }
        Ok(None)
    }
}

export_plugin!(HmacSigner);
