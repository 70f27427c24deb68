// `js-hmac-signer`: plugins/hmac-signer in JavaScript, on the Sluice JS SDK (plugins/sdk-js).
// Signs every backend request with HMAC-SHA256, then lets the gateway send it.
//
// Settings:
//   {"secret": "s3cr3t", "key_id": "gateway-1",
//    "headers": {"timestamp": "X-Signature-Timestamp", "signature": "X-Signature", "key_id": "X-Key-Id"}}
// `secret` is required; `key_id` is optional (no key-id header without it); `headers` renames
// the three headers (defaults shown); any other key is refused. The string to sign is in
// sign.js. Runs in hooks mode (`onRequest` only): the gateway makes the backend call itself.

import { definePlugin } from './sluice.js'; // plugins/sdk-js/sluice.js, copied beside it by the build
import { signature, stringToSign } from './sign.js';

const NAME = 'js-hmac-signer';
const DEFAULT_HEADERS = { timestamp: 'X-Signature-Timestamp', signature: 'X-Signature', key_id: 'X-Key-Id' };

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Refuses keys outside `known` and values that are not strings. */
function strings(object, known, where) {
  if (!isObject(object)) throw `${NAME}: ${where} must be an object`;
  for (const [key, value] of Object.entries(object)) {
    if (!known.includes(key)) throw `${NAME}: unknown field ${where}.${key}, expected one of ${known.join(', ')}`;
    if (value !== null && typeof value !== 'string' && !(where === 'settings' && key === 'headers')) {
      throw `${NAME}: ${where}.${key} must be a string`;
    }
  }
}

export const handler = definePlugin({
  init(settings) {
    strings(settings, ['secret', 'key_id', 'headers'], 'settings');
    if (!settings.secret) throw `${NAME}: settings need a non-empty "secret"`;
    const headers = { ...DEFAULT_HEADERS };
    if (settings.headers != null) {
      strings(settings.headers, Object.keys(DEFAULT_HEADERS), 'headers');
      Object.assign(headers, settings.headers);
    }
    return { secret: new TextEncoder().encode(settings.secret), keyId: settings.key_id ?? undefined, headers };
  },

  hooks: { onRequest: true },

  onRequest(state, request) {
    const timestamp = Math.floor(Date.now() / 1000);
    const sts = stringToSign(request.method, request.pathAndQuery, timestamp, request.body);
    request.setHeader(state.headers.timestamp, String(timestamp));
    request.setHeader(state.headers.signature, signature(state.secret, sts));
    if (state.keyId !== undefined) request.setHeader(state.headers.key_id, state.keyId);
    return request;
  },
});
