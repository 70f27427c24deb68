// Sluice plugin SDK for JavaScript: write `sluice:plugin/http-client@0.1.0` components (the fast
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
// The WIT this targets is plugins/sdk/wit/plugin.wit (sluice:plugin@0.1.0, frozen): components
// built on it load on every 0.1.x host.

import { send as hostSend, log as hostLog } from 'sluice:plugin/host@0.1.0';

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

// Header helpers shared by Request and Response: `headers` is an array of [name, Uint8Array],
// in order, a name may repeat; names compare case-insensitively.
class Message {
  /** The first value of header `name` as text, or undefined. */
  header(name) {
    const bytes = this.headerBytes(name);
    return bytes === undefined ? undefined : decoder.decode(bytes);
  }
  /** The first value of header `name` as bytes, or undefined. */
  headerBytes(name) {
    const lower = name.toLowerCase();
    const found = this.headers.find(([n]) => n.toLowerCase() === lower);
    return found === undefined ? undefined : found[1];
  }
  /** Every value of header `name` as text, in order. */
  headerAll(name) {
    const lower = name.toLowerCase();
    return this.headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => decoder.decode(v));
  }
  /** Replaces every value of header `name` (string or bytes); returns this. */
  setHeader(name, value) {
    this.removeHeader(name);
    this.headers.push([name.toLowerCase(), toBytes(value)]);
    return this;
  }
  /** Adds a value to header `name`, keeping the others; returns this. */
  appendHeader(name, value) {
    this.headers.push([name.toLowerCase(), toBytes(value)]);
    return this;
  }
  /** Removes header `name`; returns this. */
  removeHeader(name) {
    const lower = name.toLowerCase();
    this.headers = this.headers.filter(([n]) => n.toLowerCase() !== lower);
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

/** An HTTP request: `method`, absolute `url`, `headers`, `body` (Uint8Array). */
export class Request extends Message {
  constructor(method, url, headers = [], body = new Uint8Array(0)) {
    super();
    this.method = method;
    this.url = url;
    this.headers = headers.map(([n, v]) => [n, toBytes(v)]);
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

/** An HTTP response: `status`, `headers`, `body` (Uint8Array). */
export class Response extends Message {
  constructor(status, headers = [], body = new Uint8Array(0)) {
    super();
    this.status = status;
    this.headers = headers.map(([n, v]) => [n, toBytes(v)]);
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
const toWitRequest = (r) => ({ method: r.method, url: r.url, headers: r.headers.map(([n, v]) => [n, toBytes(v)]), body: toBytes(r.body) });
const toWitResponse = (r) => ({ status: r.status, headers: r.headers.map(([n, v]) => [n, toBytes(v)]), body: toBytes(r.body) });
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
