// Tests of sluice.js and of js-hmac-signer's SHA-256/HMAC under plain Node: `npm test`.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { test } from 'node:test';
import { runInNewContext } from 'node:vm';

import { decodeHeaders, definePlugin, encodeHeaders, ErrorKind, PluginError, Request, Response, send } from '../sluice.js';
import { hex, hmacSha256, sha256, signature, stringToSign } from '../../js-hmac-signer/sign.js';
import { fake } from './host.mjs';

const bytes = (text) => new TextEncoder().encode(text);
const text = (b) => new TextDecoder().decode(b);

test('request helpers', () => {
  const r = new Request('GET', 'http://h:1/a/b?x=1#f', [['X-A', '1']]);
  assert.equal(r.origin, 'http://h:1');
  assert.equal(r.path, '/a/b');
  assert.equal(r.query, 'x=1');
  assert.equal(r.pathAndQuery, '/a/b?x=1');
  assert.equal(new Request('GET', 'http://h').path, '/');
  assert.equal(r.header('x-a'), '1');
  r.appendHeader('X-A', '2').setHeader('x-b', new Uint8Array([104, 105]));
  assert.deepEqual(r.headerAll('X-a'), ['1', '2']);
  assert.equal(r.header('X-B'), 'hi');
  r.removeHeader('X-A');
  assert.equal(r.header('x-a'), undefined);
  assert.deepEqual(r.headers.map(([n]) => n), ['x-b']);
  assert.equal(r.setBody('{"k":"wörld"}').json().k, 'wörld');
  const j = Response.json(201, { a: 1 });
  assert.equal(j.status, 201);
  assert.equal(j.header('content-type'), 'application/json');
  assert.equal(j.text(), '{"a":1}');
});

test('definePlugin maps settings and errors as the WIT says', () => {
  const handler = definePlugin({
    init(settings) {
      if (!settings.ok) throw 'not ok';
      return settings;
    },
    hooks: (state) => ({ onRequest: true, onResponse: state.both }),
    onRequest(state, request) {
      if (request.path === '/answer') return Response.text(200, 'here');
      if (request.path === '/kind') throw new PluginError(ErrorKind.TIMEOUT, 'slow');
      if (request.path === '/bug') throw new TypeError('oops');
      return request.setHeader('x-seen', 'yes');
    },
  });
  const fresh = () => definePlugin({});
  assert.throws(() => handler.onRequest({ method: 'GET', url: 'http://h/', headers: [], body: new Uint8Array() }),
    (e) => e.payload.kind === 'plugin' && /not initialised/.test(e.payload.message));
  assert.throws(() => handler.init('{"ok": false}'), (e) => e.payload === 'not ok');
  assert.throws(() => fresh().init('{'), (e) => /^invalid settings: /.test(e.payload));
  handler.init('{"ok": true, "both": true}');
  assert.deepEqual(handler.hooks(), { onRequest: true, onResponse: true });
  assert.throws(() => handler.init('{"ok": true}'), (e) => /twice/.test(e.payload));
  const req = (path) => ({ method: 'GET', url: `http://h${path}`, headers: [], body: new Uint8Array() });
  const sent = handler.onRequest(req('/x'));
  assert.equal(sent.tag, 'request');
  assert.deepEqual(sent.val.headers, bytes('x-seen:yes\n'));
  const answered = handler.onRequest(req('/answer'));
  assert.equal(answered.tag, 'response');
  assert.equal(answered.val.status, 200);
  assert.throws(() => handler.onRequest(req('/kind')), (e) => e.payload.kind === 'timeout' && e.payload.message === 'slow');
  assert.throws(() => handler.onRequest(req('/bug')), (e) => e.payload.kind === 'plugin' && e.payload.message === 'oops');
  // No onResponse given: the response is passed on unchanged.
  const resp = { status: 204, headers: bytes('a:\x01\n'), body: new Uint8Array() };
  assert.deepEqual(handler.onResponse(resp), resp);
  // No hooks at all: handle mode.
  const none = fresh();
  none.init('{}');
  assert.deepEqual(none.hooks(), { onRequest: false, onResponse: false });
});

test('an encoded header list decodes field by field', () => {
  const fields = decodeHeaders(bytes('a:1\nb:2\na:3\n'));
  assert.deepEqual(fields.map(([n, v]) => [n, text(v)]), [['a', '1'], ['b', '2'], ['a', '3']]);
  assert.ok(fields.every(([, v]) => v instanceof Uint8Array));
  const r = new Request('GET', 'http://h/', bytes('a:1\nb:2\na:3\n'));
  assert.equal(r.header('a'), '1');
  assert.equal(r.header('B'), '2');
  assert.deepEqual(r.headerAll('A'), ['1', '3']);
  assert.equal(r.header('c'), undefined);
  assert.deepEqual(r.headerBytes('b'), bytes('2'));
  assert.deepEqual(decodeHeaders(new Uint8Array()), []);
  // The first colon ends the name; a value may hold colons, spaces or nothing, verbatim.
  assert.deepEqual(decodeHeaders(bytes('x:a:b\ny:\nz: sp \n')).map(([n, v]) => [n, text(v)]), [
    ['x', 'a:b'],
    ['y', ''],
    ['z', ' sp '],
  ]);
  assert.deepEqual(decodeHeaders(new Uint8Array([118, 58, 0, 255, 10]))[0][1], new Uint8Array([0, 255]));
  for (const bad of ['a:1', 'a:1\nb', 'a1\n', 'a:1\nb\nc:3\n']) {
    assert.throws(() => decodeHeaders(bytes(bad)), (e) => e instanceof PluginError && e.kind === 'plugin', bad);
  }
});

test('header get/set/remove/append on a received list', () => {
  const r = new Request('GET', 'http://h/', bytes('a:1\nb:2\na:3\n'));
  // setHeader replaces every value of the name (case-insensitive), lower-cased, at the end.
  r.setHeader('A', 'x');
  assert.equal(text(r.encodedHeaders()), 'b:2\na:x\n');
  assert.deepEqual(r.headerAll('a'), ['x']);
  // appendHeader keeps the others.
  r.appendHeader('B', new Uint8Array([51]));
  assert.equal(text(r.encodedHeaders()), 'b:2\na:x\nb:3\n');
  assert.deepEqual(r.headerAll('b'), ['2', '3']);
  // removeHeader removes every value.
  r.removeHeader('b');
  assert.equal(text(r.encodedHeaders()), 'a:x\n');
  r.removeHeader('a');
  assert.deepEqual(r.encodedHeaders(), new Uint8Array());
  // Names given to the constructor keep their case (the host accepts any); values may be text.
  const given = new Response(200, [['X-A', 'é'], ['x-b', bytes('2')]]);
  assert.deepEqual(given.encodedHeaders(), bytes('X-A:é\nx-b:2\n'));
  assert.equal(given.header('x-a'), 'é');
  // `headers` is the array to change in place; the list follows it.
  const h = new Response(200, bytes('a:1\n'));
  h.headers.push(['b', bytes('2')]);
  assert.equal(text(h.encodedHeaders()), 'a:1\nb:2\n');
  h.headers = [['c', '3']];
  assert.equal(text(h.encodedHeaders()), 'c:3\n');
  assert.deepEqual(encodeHeaders([['a', '1'], ['a', '2']]), bytes('a:1\na:2\n'));
});

test('untouched headers are handed back as the same bytes', () => {
  const handler = definePlugin({
    hooks: { onRequest: true, onResponse: true },
    onRequest(_, request) {
      // Reading a header and removing an absent one change nothing.
      request.header('a');
      request.headerAll('b');
      return request.removeHeader('absent');
    },
    onResponse(_, response) {
      return response.setBody('changed');
    },
  });
  handler.init('{}');
  const headers = bytes('a:1\nb:2\na:3\n');
  const sent = handler.onRequest({ method: 'GET', url: 'http://h/', headers, body: new Uint8Array() });
  assert.equal(sent.tag, 'request');
  assert.equal(sent.val.headers, headers);
  const answered = handler.onResponse({ status: 200, headers, body: new Uint8Array() });
  assert.equal(answered.headers, headers);
  assert.equal(text(answered.body), 'changed');
  assert.deepEqual([...headers], [...bytes('a:1\nb:2\na:3\n')]);
  // Inside the component the bindings' Uint8Arrays come from another realm: still a list.
  const foreign = runInNewContext('new Uint8Array([97, 58, 49, 10, 98, 58, 50, 10])');
  assert.equal(foreign instanceof Uint8Array, false);
  const again = handler.onRequest({ method: 'GET', url: 'http://h/', headers: foreign, body: new Uint8Array() });
  assert.equal(again.val.headers, foreign);
  assert.deepEqual(new Request('GET', 'http://h/', foreign).headerAll('b'), ['2']);
  assert.equal(text(new Request('GET', 'http://h/', foreign).setHeader('c', '3').encodedHeaders()), 'a:1\nb:2\nc:3\n');

  // A pass-through in handle mode: the request goes to `send` and the answer comes back, each
  // with the list it came with.
  const passThrough = definePlugin({});
  passThrough.init('{}');
  const answer = { status: 201, headers: bytes('server:origin\n'), body: bytes('ok') };
  let seen;
  fake.send = (request) => {
    seen = request;
    return answer;
  };
  try {
    const out = passThrough.handle({ method: 'POST', url: 'http://h/p', headers, body: bytes('b') });
    assert.equal(seen.headers, headers);
    assert.equal(out.headers, answer.headers);
    assert.equal(out.status, 201);
  } finally {
    fake.send = undefined;
  }
});

test('a name with : or a newline, or a value with a newline or CR, is refused', () => {
  const refused = (e) => e instanceof PluginError && e.kind === ErrorKind.PLUGIN;
  for (const [name, value] of [
    ['a:b', '1'],
    ['a\nb', '1'],
    ['a\rb', '1'],
    ['a', '1\n'],
    ['a', '1\r'],
    ['a', new Uint8Array([49, 10, 50])],
    ['a', 'x\r\nb:2'],
  ]) {
    const what = JSON.stringify([name, text(typeof value === 'string' ? bytes(value) : value)]);
    assert.throws(() => encodeHeaders([[name, value]]), refused, what);
    assert.throws(() => new Request('GET', 'http://h/').setHeader(name, value).encodedHeaders(), refused, what);
  }
  // Through the handler it is the plugin's error, naming the header.
  const handler = definePlugin({
    hooks: { onRequest: true },
    onRequest: (_, request) => request.setHeader('x-bad', 'a\nb:c'),
  });
  handler.init('{}');
  assert.throws(
    () => handler.onRequest({ method: 'GET', url: 'http://h/', headers: new Uint8Array(), body: new Uint8Array() }),
    (e) => e.payload.kind === 'plugin' && /x-bad/.test(e.payload.message),
  );
  // `send` refuses before reaching the gateway.
  let called = false;
  fake.send = () => {
    called = true;
  };
  try {
    assert.throws(() => send(new Request('GET', 'http://h/', [['bad:name', '1']])), refused);
    assert.equal(called, false);
  } finally {
    fake.send = undefined;
  }
});

test('sha256 and hmac-sha256 agree with node:crypto', () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
    const data = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
    assert.equal(hex(sha256(data)), createHash('sha256').update(data).digest('hex'), `sha256 of ${n} bytes`);
    for (const k of [0, 6, 64, 65, 100]) {
      const key = new Uint8Array(k).map((_, i) => i);
      assert.equal(hex(hmacSha256(key, data)), createHmac('sha256', key).update(data).digest('hex'), `hmac ${k}/${n}`);
    }
  }
  // plugins/hmac-signer/src/sign.rs's known answer.
  const sts = stringToSign('GET', '/a?x=1', 1700000000, new Uint8Array());
  assert.equal(sts, 'GET\n/a?x=1\n1700000000\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(signature(new TextEncoder().encode('secret'), sts), createHmac('sha256', 'secret').update(sts).digest('hex'));
});
