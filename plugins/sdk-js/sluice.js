// Sluice plugin SDK for JavaScript: write `sluice:plugin/http-client@0.2.0` components (the fast
// path) with componentize-js. One ES module, no dependencies.
//
//   import { definePlugin, Response, log } from './sluice.js';
//
//   export const handler = definePlugin({
//     init(settings) { return { greeting: settings.greeting ?? 'hello' }; },  // settings: parsed JSON
//     hooks: { onRequest: true },
//     onRequest(state, request) {
//       if (request.path === '/hello') return Response.json(200, { message: state.greeting });
//       return request.setHeader('x-greeted', 'yes');                          // send it on
//     },
//   });
//
// - `init(settings)` gets the settings already parsed (an object, `{}` when absent) and returns
//   the plugin's state, handed to every other function as its first argument. Throwing (any
//   value) refuses the settings: the gateway does not start, with the thrown message.
// - `hooks` ({onRequest, onResponse}, or a function of the state) picks the way requests are
//   served: none (the default) means `handle(state, request)` answers each request, calling
//   hosts itself with `send`; otherwise the gateway calls `onRequest(state, request)` (answer a
//   Request to send it, or a Response to answer right away), makes the backend call itself,
//   then calls `onResponse(state, response)`.
// - Throwing a `PluginError` from handle/onRequest/onResponse answers with its kind (errors
//   `send` threw may be rethrown as they are: the gateway treats them as upstream errors of that
//   kind); anything else thrown becomes a `plugin` error with its message.
//
// Build: componentize-js plugin.js --wit <dir with plugin.wit> --world-name http-client
//        --disable http fetch-event -o NAME.wasm     (what `sluice plugin build` runs)
//
// The WIT this targets is plugins/sdk/wit/0.2/plugin.wit (sluice:plugin@0.2.0): header fields cross
// the boundary as one byte list, `name:value\n` each (see `decodeHeaders`).

import { send as hostSend, log as hostLog } from 'sluice:plugin/host@0.2.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The bytes of a string (UTF-8) or of a Uint8Array/ArrayBuffer/array of bytes. */
export function toBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (Array.isArray(value)) return Uint8Array.from(value);
  if (value === undefined || value === null) return new Uint8Array(0);
  throw new TypeError(`expected a string or bytes, got ${typeof value}`);
}

/** The error kinds of the WIT (`error-kind`). */
export const ErrorKind = Object.freeze({
  CONNECT: 'connect',
  TIMEOUT: 'timeout',
  PROTOCOL: 'protocol',
  BODY_TOO_LARGE: 'body-too-large',
  HOST_NOT_ALLOWED: 'host-not-allowed',
  PLUGIN: 'plugin',
  OTHER: 'other',
});
const KINDS = new Set(Object.values(ErrorKind));

/** An error with a WIT `error-kind`: what `send` throws, and what a plugin may throw. */
export class PluginError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'PluginError';
    this.kind = KINDS.has(kind) ? kind : ErrorKind.OTHER;
  }
  /** The plugin's own failure (answered as a 500 unless status rules say otherwise). */
  static plugin(message) {
    return new PluginError(ErrorKind.PLUGIN, message);
  }
}

const COLON = 0x3a;
const LF = 0x0a;
const CR = 0x0d;
const NAME_REFUSED = /[:\r\n]/;

/**
 * The header fields of the WIT's encoded list (`name:value\n` each, in order) as
 * [name, Uint8Array] pairs; the values are views into the list, not copies. Throws a `plugin`
 * PluginError on a field without `:` or a last field without `\n` (the host never sends those).
 */
export function decodeHeaders(encoded) {
  const bytes = toBytes(encoded);
  const fields = [];
  let at = 0;
  while (at < bytes.length) {
    const end = bytes.indexOf(LF, at);
    if (end < 0) throw PluginError.plugin('malformed header list: the last field does not end in a newline');
    // The first colon ends the name (a value may hold colons); past `end` it is another field's.
    const colon = bytes.indexOf(COLON, at);
    if (colon < 0 || colon > end) throw PluginError.plugin('malformed header list: a field without ":"');
    fields.push([decoder.decode(bytes.subarray(at, colon)), bytes.subarray(colon + 1, end)]);
    at = end + 1;
  }
  return fields;
}

/**
 * [name, value] pairs (values as strings or bytes) as the WIT's encoded list. Throws a `plugin`
 * PluginError for a name with `:`, `\r` or `\n` or a value with `\r` or `\n`: HTTP allows none
 * of them, and the list would be ambiguous (the host would refuse it or read other fields).
 */
export function encodeHeaders(fields) {
  const parts = new Array(fields.length * 2);
  let length = 0;
  for (let i = 0; i < fields.length; i++) {
    const [name, value] = fields[i];
    if (NAME_REFUSED.test(name)) {
      throw PluginError.plugin(`invalid header name ${JSON.stringify(name)}: it contains ':', '\\r' or '\\n'`);
    }
    const bytes = toBytes(value);
    if (bytes.indexOf(LF) >= 0 || bytes.indexOf(CR) >= 0) {
      throw PluginError.plugin(`invalid value of header ${JSON.stringify(name)}: it contains '\\r' or '\\n'`);
    }
    const nameBytes = encoder.encode(name);
    parts[2 * i] = nameBytes;
    parts[2 * i + 1] = bytes;
    length += nameBytes.length + bytes.length + 2;
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (let i = 0; i < parts.length; i += 2) {
    out.set(parts[i], at);
    at += parts[i].length;
    out[at++] = COLON;
    out.set(parts[i + 1], at);
    at += parts[i + 1].length;
    out[at++] = LF;
  }
  return out;
}

// Header helpers shared by Request and Response: `headers` is an array of [name, Uint8Array],
// in order, a name may repeat; names compare case-insensitively. A message from the host keeps
// the encoded list it came with and decodes it only when a header is read or changed, so a
// pass-through hands the very same bytes back without decoding or encoding anything.
class Message {
  // The encoded list while it is known to match the fields, else null.
  #encoded = null;
  // The decoded fields, or null until something needs them.
  #fields = null;

  constructor(headers) {
    // Not `instanceof Uint8Array`: inside the component the bindings' arrays come from another
    // realm, whose Uint8Array is not this one.
    if (ArrayBuffer.isView(headers)) this.#encoded = headers;
    else this.#fields = headers.map(([n, v]) => [n, toBytes(v)]);
  }
  #decoded() {
    if (this.#fields === null) this.#fields = decodeHeaders(this.#encoded);
    return this.#fields;
  }
  // The fields, about to change: the encoded list no longer matches them.
  #changing() {
    const fields = this.#decoded();
    this.#encoded = null;
    return fields;
  }
  /**
   * The header fields as [name, Uint8Array] pairs, to read or change in place. Reading this
   * property counts as a change (the caller may mutate the array): the list is encoded again on
   * the way out. `header()` and the other readers do not.
   */
  get headers() {
    return this.#changing();
  }
  set headers(fields) {
    this.#fields = fields;
    this.#encoded = null;
  }
  /** The fields encoded as the WIT carries them: the bytes received if nothing changed them. */
  encodedHeaders() {
    // Not kept: the array `headers` handed out may still change.
    return this.#encoded ?? encodeHeaders(this.#fields);
  }
  /** The first value of header `name` as text, or undefined. */
  header(name) {
    const bytes = this.headerBytes(name);
    return bytes === undefined ? undefined : decoder.decode(bytes);
  }
  /** The first value of header `name` as bytes, or undefined. */
  headerBytes(name) {
    const lower = name.toLowerCase();
    const found = this.#decoded().find(([n]) => n.toLowerCase() === lower);
    return found === undefined ? undefined : found[1];
  }
  /** Every value of header `name` as text, in order. */
  headerAll(name) {
    const lower = name.toLowerCase();
    return this.#decoded().filter(([n]) => n.toLowerCase() === lower).map(([, v]) => decoder.decode(v));
  }
  /** Replaces every value of header `name` (string or bytes); returns this. */
  setHeader(name, value) {
    this.removeHeader(name);
    this.#changing().push([name.toLowerCase(), toBytes(value)]);
    return this;
  }
  /** Adds a value to header `name`, keeping the others; returns this. */
  appendHeader(name, value) {
    this.#changing().push([name.toLowerCase(), toBytes(value)]);
    return this;
  }
  /** Removes header `name`; returns this. */
  removeHeader(name) {
    const lower = name.toLowerCase();
    const fields = this.#decoded();
    const kept = fields.filter(([n]) => n.toLowerCase() !== lower);
    // Removing an absent header changes nothing: the received list may still be handed back.
    if (kept.length !== fields.length) {
      this.#fields = kept;
      this.#encoded = null;
    }
    return this;
  }
  /** Replaces the body (string or bytes); returns this. */
  setBody(body) {
    this.body = toBytes(body);
    return this;
  }
  /** The body as text (UTF-8). */
  text() {
    return decoder.decode(this.body);
  }
  /** The body parsed as JSON. */
  json() {
    return JSON.parse(this.text());
  }
}

/**
 * An HTTP request: `method`, absolute `url`, `headers`, `body` (Uint8Array). `headers` may be
 * given as [name, value] pairs or as an encoded list (a Uint8Array, see `decodeHeaders`).
 */
export class Request extends Message {
  constructor(method, url, headers = [], body = new Uint8Array(0)) {
    super(headers);
    this.method = method;
    this.url = url;
    this.body = toBytes(body);
  }
  /** `scheme://authority` of the URL ('' if it is not absolute). */
  get origin() {
    return splitUrl(this.url)[0];
  }
  /** The path and query of the URL ('/' if the path is empty). */
  get pathAndQuery() {
    const rest = splitUrl(this.url)[1].split('#')[0];
    return rest === '' ? '/' : rest;
  }
  /** The path, without the query ('/' if empty). */
  get path() {
    const path = this.pathAndQuery.split('?')[0];
    return path === '' ? '/' : path;
  }
  /** The query without '?', or undefined. */
  get query() {
    const pq = this.pathAndQuery;
    const at = pq.indexOf('?');
    return at < 0 ? undefined : pq.slice(at + 1);
  }
}

/** An HTTP response: `status`, `headers` (pairs or an encoded list), `body` (Uint8Array). */
export class Response extends Message {
  constructor(status, headers = [], body = new Uint8Array(0)) {
    super(headers);
    this.status = status;
    this.body = toBytes(body);
  }
  /** A response with a JSON body and `content-type: application/json`. */
  static json(status, value) {
    return new Response(status).setHeader('content-type', 'application/json').setBody(JSON.stringify(value));
  }
  /** A response with a text body and `content-type: text/plain; charset=utf-8`. */
  static text(status, text) {
    return new Response(status).setHeader('content-type', 'text/plain; charset=utf-8').setBody(text);
  }
}

function splitUrl(url) {
  const scheme = url.indexOf('://');
  if (scheme < 0) return ['', url];
  const after = scheme + 3;
  let end = url.length;
  for (const c of ['/', '?', '#']) {
    const i = url.indexOf(c, after);
    if (i >= 0 && i < end) end = i;
  }
  return [url.slice(0, end), url.slice(end)];
}

// The records as they cross the boundary.
const toWitRequest = (r) => ({ method: r.method, url: r.url, headers: r.encodedHeaders(), body: toBytes(r.body) });
const toWitResponse = (r) => ({ status: r.status, headers: r.encodedHeaders(), body: toBytes(r.body) });
const fromWitRequest = (r) => new Request(r.method, r.url, r.headers, r.body);
const fromWitResponse = (r) => new Response(r.status, r.headers, r.body);

/**
 * Makes an HTTP call through the gateway's pooled client and returns its Response. Only hosts
 * in the plugin's `allowed_hosts` (by default the backend's own) are reachable. Throws a
 * PluginError (kind `host-not-allowed`, `connect`, `timeout`...) when the call fails. Only
 * inside the gateway: not during `init`.
 */
export function send(request) {
  let answer;
  try {
    answer = hostSend(toWitRequest(request));
  } catch (e) {
    const payload = e !== null && typeof e === 'object' && 'payload' in e ? e.payload : e;
    if (payload && typeof payload === 'object' && 'kind' in payload) {
      throw new PluginError(payload.kind, String(payload.message));
    }
    throw new PluginError(ErrorKind.OTHER, String(payload));
  }
  return fromWitResponse(answer);
}

/** Writes a log line through the gateway (target `sluice::plugin`): `log.info('...')`. */
export const log = Object.freeze({
  trace: (message) => hostLog('trace', String(message)),
  debug: (message) => hostLog('debug', String(message)),
  info: (message) => hostLog('info', String(message)),
  warn: (message) => hostLog('warn', String(message)),
  error: (message) => hostLog('error', String(message)),
});

// What the component returns for a thrown value: componentize-js turns a thrown object with a
// `payload` property into the `err` case of a `result` (anything else traps).
class Failure extends Error {
  constructor(payload) {
    super(typeof payload === 'string' ? payload : payload.message);
    this.payload = payload;
  }
}

function messageOf(e) {
  if (e instanceof Error) return e.message;
  return typeof e === 'string' ? e : JSON.stringify(e) ?? String(e);
}

function asWitError(e) {
  if (e instanceof PluginError) return { kind: e.kind, message: e.message };
  return { kind: ErrorKind.PLUGIN, message: messageOf(e) };
}

/**
 * Turns a plugin definition into the `handler` export of the world:
 * `export const handler = definePlugin({ init, hooks, handle, onRequest, onResponse })`.
 * Every field is optional; see the top of this file for what each does.
 */
export function definePlugin(plugin) {
  const initialised = { done: false, state: undefined };
  const state = () => {
    if (!initialised.done) throw PluginError.plugin('the plugin was not initialised');
    return initialised.state;
  };
  const onRequest = (request) => {
    if (!plugin.onRequest) return request;
    const out = plugin.onRequest(state(), request);
    return out === undefined ? request : out;
  };
  const onResponse = (response) => {
    if (!plugin.onResponse) return response;
    const out = plugin.onResponse(state(), response);
    return out === undefined ? response : out;
  };
  const expect = (value, Class, what) => {
    if (!(value instanceof Class)) {
      throw PluginError.plugin(`${what} must return a ${Class.name}`);
    }
    return value;
  };
  // Runs `f`, mapping what it throws to the WIT `error` record.
  const guarded = (f) => (arg) => {
    try {
      return f(arg);
    } catch (e) {
      throw new Failure(asWitError(e));
    }
  };
  return {
    init(settings) {
      if (initialised.done) throw new Failure('init was called twice on the same instance');
      let parsed;
      try {
        parsed = JSON.parse(settings);
      } catch (e) {
        throw new Failure(`invalid settings: ${messageOf(e)}`);
      }
      try {
        initialised.state = plugin.init ? plugin.init(parsed) : parsed;
      } catch (e) {
        throw new Failure(messageOf(e));
      }
      initialised.done = true;
    },
    hooks() {
      const h = typeof plugin.hooks === 'function' ? plugin.hooks(initialised.state) : plugin.hooks;
      return { onRequest: Boolean(h && h.onRequest), onResponse: Boolean(h && h.onResponse) };
    },
    handle: guarded((request) => {
      const req = fromWitRequest(request);
      if (plugin.handle) {
        return toWitResponse(expect(plugin.handle(state(), req), Response, 'handle'));
      }
      // A hooks plugin called the other way behaves the same: hooks around `send`.
      const flow = onRequest(req);
      if (flow instanceof Response) return toWitResponse(flow);
      const answer = send(expect(flow, Request, 'onRequest'));
      return toWitResponse(expect(onResponse(answer), Response, 'onResponse'));
    }),
    onRequest: guarded((request) => {
      const flow = onRequest(fromWitRequest(request));
      if (flow instanceof Response) return { tag: 'response', val: toWitResponse(flow) };
      return { tag: 'request', val: toWitRequest(expect(flow, Request, 'onRequest')) };
    }),
    onResponse: guarded((response) =>
      toWitResponse(expect(onResponse(fromWitResponse(response)), Response, 'onResponse')),
    ),
  };
}
