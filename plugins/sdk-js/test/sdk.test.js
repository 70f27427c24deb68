// Tests of sluice.js and of js-hmac-signer's SHA-256/HMAC under plain Node: `npm test`.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { test } from 'node:test';

import { definePlugin, ErrorKind, PluginError, Request, Response } from '../sluice.js';
import { hex, hmacSha256, sha256, signature, stringToSign } from '../../js-hmac-signer/sign.js';

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
  assert.deepEqual(sent.val.headers, [['x-seen', new TextEncoder().encode('yes')]]);
  const answered = handler.onRequest(req('/answer'));
  assert.equal(answered.tag, 'response');
  assert.equal(answered.val.status, 200);
  assert.throws(() => handler.onRequest(req('/kind')), (e) => e.payload.kind === 'timeout' && e.payload.message === 'slow');
  assert.throws(() => handler.onRequest(req('/bug')), (e) => e.payload.kind === 'plugin' && e.payload.message === 'oops');
  // No onResponse given: the response is passed on unchanged.
  const resp = { status: 204, headers: [['a', new Uint8Array([1])]], body: new Uint8Array() };
  assert.deepEqual(handler.onResponse(resp), resp);
  // No hooks at all: handle mode.
  const none = fresh();
  none.init('{}');
  assert.deepEqual(none.hooks(), { onRequest: false, onResponse: false });
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
