// flows_http.test.mjs: the io nodes through real HTTP: `http in` (params, query, headers,
// cookies, JSON / form / text bodies), `http response` (status, headers, cookies, JSON
// and text payloads), a request no flow answers (504 after PARLEY_FLOWS_HTTP_TIMEOUT),
// `template` (mustache, env, output json), `http request` against a local server (query
// from payload, JSON result, timeout via msg.requestTimeout), `delay` (rate limit: queue
// and drop) and `trigger`. Order is asserted, never timing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startParley } from './lib/parley.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('flows http and timing nodes', () => {
  let p, base, server, serverUrl;
  const hits = [];

  const deploy = async (flows) => {
    const r = await p.api('POST', `${base}/flows`, { body: { flows } });
    assert.equal(r.status, 200, r.text);
  };
  const flowUrl = (path) => `/flows/${p.init.project_id}${path}`;
  const call = (method, path, opts = {}) => p.api(method, flowUrl(path), { auth: 'none', ...opts });
  const debugOf = async (id) => (await p.api('GET', `${base}/debug`)).json.messages.filter((m) => m.node_id === id);
  const waitDebug = async (id, n) => {
    for (let i = 0; i < 500; i++) {
      const got = await debugOf(id);
      if (got.length >= n) return got;
      await sleep(20);
    }
    throw new Error(`debug ${id}: fewer than ${n} entries: ${JSON.stringify(await debugOf(id))}`);
  };
  const press = async (id) => assert.equal((await p.api('POST', `${base}/inject/${id}`)).status, 200);

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        hits.push({ method: req.method, url: req.url, headers: req.headers, body });
        if (req.url.startsWith('/hang')) return; // never answers
        res.writeHead(200, { 'Content-Type': 'application/json', 'X-Upstream': 'yes' });
        res.end(JSON.stringify({ method: req.method, url: req.url, body }));
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    serverUrl = `http://127.0.0.1:${server.address().port}`;
    p = await startParley({ env: { PARLEY_FLOWS_HTTP_TIMEOUT: '1' } });
    base = `/v1/projects/${p.init.project_id}`;
    const T = 'tab1';
    await deploy([
      { id: T, type: 'tab', label: 'http', env: [{ name: 'GREETING', value: 'Bonjour', type: 'str' }] },
      // echo the request
      { id: 'in1', type: 'http in', z: T, url: '/echo/:id/:name', method: 'get', wires: [['fn1']] },
      { id: 'in2', type: 'http in', z: T, url: '/echo', method: 'post', wires: [['fn1']] },
      { id: 'fn1', type: 'function', z: T, func: 'msg.payload = { req = msg.req, payload = msg.payload }\nreturn msg', outputs: 1, wires: [['out1']] },
      { id: 'out1', type: 'http response', z: T, statusCode: '', headers: {}, wires: [] },
      // status, headers and cookies from the msg; a fixed status on the node
      { id: 'in3', type: 'http in', z: T, url: '/created', method: 'put', wires: [['fn3']] },
      { id: 'fn3', type: 'function', z: T, outputs: 1, wires: [['out1']],
        func: 'msg.statusCode = 201\nmsg.headers = { ["X-Custom"] = "v1" }\nmsg.cookies = { sid = { value = "abc 1", httpOnly = true, path = "/app" }, old = null, plain = "p" }\nmsg.payload = "created"\nreturn msg' },
      { id: 'in4', type: 'http in', z: T, url: '/teapot', method: 'delete', wires: [['out4']] },
      { id: 'out4', type: 'http response', z: T, statusCode: '418', headers: { 'X-Node': 'n' }, wires: [] },
      // nobody answers
      { id: 'in5', type: 'http in', z: T, url: '/void', method: 'get', wires: [['dbg5']] },
      { id: 'dbg5', type: 'debug', z: T, complete: 'payload', wires: [] },
      // templates
      { id: 'in6', type: 'http in', z: T, url: '/hello', method: 'get', wires: [['tpl6']] },
      { id: 'tpl6', type: 'template', z: T, field: 'payload', fieldType: 'msg', syntax: 'mustache', output: 'str',
        template: '{{env.GREETING}} {{req.query.name}} / {{{req.query.name}}}{{#req.query.tags}} [{{.}}]{{/req.query.tags}}{{^req.query.none}} -{{/req.query.none}}', wires: [['out1']] },
      { id: 'in7', type: 'http in', z: T, url: '/tjson', method: 'get', wires: [['tpl7']] },
      { id: 'tpl7', type: 'template', z: T, field: 'payload', fieldType: 'msg', syntax: 'mustache', output: 'json',
        template: '{"name":"{{{req.query.name}}}","n":{{req.query.n}}}', wires: [['out1']] },
      { id: 'in12', type: 'http in', z: T, url: '/ctx', method: 'get', wires: [['chg12']] },
      { id: 'chg12', type: 'change', z: T, rules: [{ t: 'set', p: 'greet', pt: 'flow', to: 'hey', tot: 'str' }], wires: [['tpl12']] },
      { id: 'tpl12', type: 'template', z: T, field: 'payload', fieldType: 'msg', syntax: 'mustache', output: 'str',
        template: '{{flow.greet}} {{global.missing}}!', wires: [['out1']] },
      // http request
      { id: 'in8', type: 'http in', z: T, url: '/proxy', method: 'get', wires: [['req8']] },
      { id: 'req8', type: 'http request', z: T, method: 'GET', ret: 'obj', paytoqs: 'query', url: `${serverUrl}/data/{{{req.query.who}}}`,
        headers: [{ keyType: 'other', keyValue: 'X-From', valueType: 'other', valueValue: 'parley' }], wires: [['fn8']] },
      { id: 'fn8', type: 'function', z: T, outputs: 1, wires: [['out1']],
        func: 'msg.payload = { status = msg.statusCode, upstream = msg.headers["x-upstream"], body = msg.payload }\nmsg.headers = nil\nreturn msg' },
      { id: 'in9', type: 'http in', z: T, url: '/post-through', method: 'post', wires: [['fn9']] },
      { id: 'fn9', type: 'function', z: T, outputs: 1, wires: [['req9']], func: `msg.url = "${serverUrl}/put-here"\nmsg.method = "PUT"\nmsg.headers = nil\nreturn msg` },
      { id: 'req9', type: 'http request', z: T, method: 'use', ret: 'txt', url: '', wires: [['out1']] },
      { id: 'in10', type: 'http in', z: T, url: '/slow', method: 'get', wires: [['fn10']] },
      { id: 'fn10', type: 'function', z: T, outputs: 1, wires: [['req10']], func: 'msg.requestTimeout = 300\nmsg.payload = nil\nreturn msg' },
      { id: 'req10', type: 'http request', z: T, method: 'GET', ret: 'txt', url: `${serverUrl}/hang`, wires: [['fn11']] },
      { id: 'fn11', type: 'function', z: T, outputs: 1, wires: [['out1']], func: 'msg.payload = { code = msg.statusCode }\nmsg.headers = nil\nreturn msg' },
      // delay: rate limit, queued (2 per second) and dropping (1 per minute, extras to output 2)
      { id: 'inj20', type: 'inject', z: T, props: [{ p: 'payload' }], payload: 'tick', payloadType: 'str', wires: [['fn20']] },
      { id: 'fn20', type: 'function', z: T, outputs: 1, wires: [['delay20']], func: 'local n = (context.get("n") or 0) + 1\ncontext.set("n", n)\nmsg.payload = n\nreturn msg' },
      { id: 'delay20', type: 'delay', z: T, pauseType: 'rate', rate: '2', nbRateUnits: '1', rateUnits: 'second', drop: false, outputs: 1, wires: [['dbg20']] },
      { id: 'dbg20', type: 'debug', z: T, complete: 'payload', wires: [] },
      { id: 'inj21', type: 'inject', z: T, props: [{ p: 'payload' }], payload: 'x', payloadType: 'str', wires: [['delay21']] },
      { id: 'delay21', type: 'delay', z: T, pauseType: 'rate', rate: '1', nbRateUnits: '1', rateUnits: 'minute', drop: true, outputs: 2, wires: [['dbg21a'], ['dbg21b']] },
      { id: 'dbg21a', type: 'debug', z: T, complete: 'payload', wires: [] },
      { id: 'dbg21b', type: 'debug', z: T, complete: 'payload', wires: [] },
      // delay: fixed
      { id: 'inj22', type: 'inject', z: T, props: [{ p: 'payload' }], payload: 'late', payloadType: 'str', wires: [['delay22', 'dbg22b']] },
      { id: 'delay22', type: 'delay', z: T, pauseType: 'delay', timeout: '200', timeoutUnits: 'milliseconds', wires: [['dbg22']] },
      { id: 'dbg22', type: 'debug', z: T, complete: 'payload', wires: [] },
      { id: 'dbg22b', type: 'debug', z: T, complete: 'payload', wires: [] },
      // trigger: on, then off after 200 ms
      { id: 'inj30', type: 'inject', z: T, props: [{ p: 'payload' }], payload: 'go', payloadType: 'str', wires: [['trig30']] },
      { id: 'trig30', type: 'trigger', z: T, op1: 'on', op2: 'off', op1type: 'str', op2type: 'str', duration: '200', extend: false, units: 'ms', reset: '', bytopic: 'all', topic: 'topic', outputs: 1, wires: [['dbg30']] },
      { id: 'dbg30', type: 'debug', z: T, complete: 'payload', wires: [] },
    ]);
  });
  after(async () => { await p.stop(); server.closeAllConnections?.(); await new Promise((r) => server.close(r)); });

  test('http in: params, repeated query, headers and cookies', async () => {
    const r = await call('GET', '/echo/42/ada%20l?x=1&x=2&y=z', { headers: { 'X-Test': 'hi', Cookie: 'a=1; b=hello%20w' } });
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('content-type'), /^application\/json/);
    const { req, payload } = r.json;
    assert.deepEqual(req.params, { id: '42', name: 'ada l' });
    assert.deepEqual(req.query, { x: ['1', '2'], y: 'z' });
    assert.deepEqual(payload, req.query, 'GET: payload is the query');
    assert.equal(req.headers['x-test'], 'hi');
    assert.deepEqual(req.cookies, { a: '1', b: 'hello w' });
    assert.equal(req.method, 'GET');
    assert.equal(req.path, '/echo/42/ada%20l');
    // routes match case-insensitively and ignore a trailing slash, as Express does
    assert.equal((await call('GET', '/ECHO/1/b/')).status, 200);
    assert.equal((await call('GET', '/echo/1')).status, 404);
    assert.equal((await call('POST', '/echo/1/b')).status, 404);
  });

  test('http in: JSON, form and text bodies; bad JSON is refused', async () => {
    let r = await call('POST', '/echo', { body: { a: 1, b: [true, null] } });
    assert.deepEqual(r.json.payload, { a: 1, b: [true, null] });
    assert.deepEqual(r.json.req.body, { a: 1, b: [true, null] });
    r = await call('POST', '/echo', { body: 'a=1&b=x+y&c=%26', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.deepEqual(r.json.payload, { a: '1', b: 'x y', c: '&' });
    r = await call('POST', '/echo', { body: 'hello there', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(r.json.payload, 'hello there');
    r = await call('POST', '/echo', { body: '{"a":', headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /invalid JSON body/);
  });

  test('http response: status, headers and cookies from the msg; the node status wins', async () => {
    const r = await call('PUT', '/created');
    assert.equal(r.status, 201);
    assert.equal(r.text, 'created');
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.equal(r.headers.get('x-custom'), 'v1');
    const cookies = r.headers.getSetCookie();
    assert.ok(cookies.includes('sid=abc%201; Path=/app; HttpOnly'), cookies.join(' | '));
    assert.ok(cookies.includes('plain=p; Path=/'), cookies.join(' | '));
    assert.ok(cookies.includes('old=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT'), cookies.join(' | '));
    const t = await call('DELETE', '/teapot');
    assert.equal(t.status, 418);
    assert.equal(t.headers.get('x-node'), 'n');
    assert.match(t.headers.get('content-type'), /^text\/html/);
  });

  test('a request no flow answers gets 504 after the timeout', async () => {
    const r = await call('GET', '/void?q=1');
    assert.equal(r.status, 504);
    assert.equal(r.json.error.status, 'DEADLINE_EXCEEDED');
    const seen = await waitDebug('dbg5', 1);
    assert.deepEqual(seen[0].msg, { q: '1' });
  });

  test('template: mustache with escaping, sections, env; output json', async () => {
    let r = await call('GET', '/hello?name=%3Cb%3EAda&tags=x&tags=y');
    assert.equal(r.text, 'Bonjour &lt;b&gt;Ada / <b>Ada [x] [y] -');
    r = await call('GET', '/tjson?name=Ada&n=7');
    assert.deepEqual(r.json, { name: 'Ada', n: 7 });
    r = await call('GET', '/ctx');
    assert.equal(r.text, 'hey !', 'flow context through {{flow.x}}; a missing global renders nothing');
  });

  test('http request: mustache URL, query from payload, headers, JSON result', async () => {
    const r = await call('GET', '/proxy?who=bob&k=v');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 200);
    assert.equal(r.json.upstream, 'yes');
    assert.equal(r.json.body.method, 'GET');
    assert.equal(r.json.body.url, '/data/bob?who=bob&k=v');
    const hit = hits.find((h) => h.url.startsWith('/data/bob'));
    assert.equal(hit.headers['x-from'], 'parley');
    // method and url from the msg, the body passed through
    const q = await p.api('POST', flowUrl('/post-through'), { auth: 'none', body: 'some text', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(q.status, 200, q.text);
    assert.deepEqual(JSON.parse(q.text), { method: 'PUT', url: '/put-here', body: 'some text' });
  });

  test('http request: msg.requestTimeout ends a hanging request with ETIMEDOUT', async () => {
    const r = await call('GET', '/slow');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { code: 'ETIMEDOUT' });
  });

  test('delay: rate limit queues in order, or drops to output 2', async () => {
    for (let i = 0; i < 4; i++) await press('inj20');
    const first = await waitDebug('dbg20', 1);
    assert.equal(first[0].msg, 1);
    const all = await waitDebug('dbg20', 4);
    assert.deepEqual(all.map((m) => m.msg), [1, 2, 3, 4]);
    for (let i = 0; i < 3; i++) await press('inj21');
    const passed = await waitDebug('dbg21a', 1);
    const dropped = await waitDebug('dbg21b', 2);
    assert.equal(passed.length, 1);
    assert.equal(dropped.length, 2);
    await press('inj22');
    const direct = await waitDebug('dbg22b', 1);
    const delayed = await waitDebug('dbg22', 1);
    assert.ok(delayed[0].id > direct[0].id, 'the delayed copy comes after the direct one');
  });

  test('trigger: sends op1, then op2 after the duration', async () => {
    await press('inj30');
    const got = await waitDebug('dbg30', 2);
    assert.deepEqual(got.map((m) => m.msg), ['on', 'off']);
  });
});
