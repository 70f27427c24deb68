"""py-hmac-signer: ``hmac-signer`` (plugins/hmac-signer) in Python, on the Sluice SDK.

Signs every backend request with HMAC-SHA256, then lets the gateway send it (hooks mode,
``on_request`` only). Settings::

    {"secret": "s3cr3t", "key_id": "gateway-1",
     "headers": {"timestamp": "X-Signature-Timestamp", "signature": "X-Signature",
                 "key_id": "X-Key-Id"}}

``secret`` is required (a non-empty string); ``key_id`` is optional (no key-id header without
it); ``headers`` renames the three headers (defaults shown). The signature::

    string_to_sign = METHOD "\\n" PATH_AND_QUERY "\\n" TIMESTAMP "\\n" hex(sha256(body))
    signature      = hex(hmac_sha256(secret, string_to_sign))
"""

import hashlib
import hmac
import time

import sluice_plugin as sp

NAME = "hmac-signer"  # the messages name the plugin as the Rust example does
HEADER_DEFAULTS = {
    "timestamp": "X-Signature-Timestamp",
    "signature": "X-Signature",
    "key_id": "X-Key-Id",
}


def string_to_sign(method: str, path_and_query: str, timestamp: int, body: bytes) -> str:
    """The text that is signed (see the module's docstring)."""
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{method}\n{path_and_query}\n{timestamp}\n{body_hash}"


def signature(secret: bytes, text: str) -> str:
    """``hex(hmac_sha256(secret, text))``, lower case."""
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def _check_keys(where: str, value: dict, allowed) -> None:
    for key in value:
        if key not in allowed:
            expected = ", ".join(f"`{k}`" for k in allowed)
            raise ValueError(
                f"{NAME}: invalid settings: unknown field `{key}`{where}, expected one of {expected}"
            )


def _optional_text(where: str, value):
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{NAME}: invalid settings: {where} must be a string")


class HmacSigner(sp.Plugin):
    HOOKS = sp.Hooks.ON_REQUEST

    def __init__(self, settings):
        if not isinstance(settings, dict):
            raise ValueError(f"{NAME}: invalid settings: expected an object")
        _check_keys("", settings, ("secret", "key_id", "headers"))
        secret = _optional_text("secret", settings.get("secret"))
        if not secret:
            raise ValueError(f'{NAME}: settings need a non-empty "secret"')
        self.secret = secret.encode()
        self.key_id = _optional_text("key_id", settings.get("key_id"))
        names = settings.get("headers", {})
        if not isinstance(names, dict):
            raise ValueError(f"{NAME}: invalid settings: headers must be an object")
        _check_keys(" in headers", names, tuple(HEADER_DEFAULTS))
        self.names = {}
        for key, default in HEADER_DEFAULTS.items():
            name = _optional_text(f"headers.{key}", names.get(key))
            self.names[key] = default if name is None else name

    def on_request(self, request):
        timestamp = int(time.time())
        text = string_to_sign(request.method, request.path_and_query, timestamp, request.body)
        request.set_header(self.names["timestamp"], str(timestamp))
        request.set_header(self.names["signature"], signature(self.secret, text))
        if self.key_id is not None:
            request.set_header(self.names["key_id"], self.key_id)
        return request


# componentize-py snapshots the interpreter after importing this module, and a module first
# imported while serving a request is not found then (`hmac` imports `warnings` lazily): sign
# once now so everything signing needs is loaded into the snapshot.
signature(b"warm-up", string_to_sign("GET", "/", 0, b""))

Handler = sp.export(HmacSigner)
