// flows_runtime.test.mjs: the Flows runtime through the admin API and the debug stream:
// inject -> switch -> change -> debug (GET debug and SSE), catch/status/complete, subflows
// with env, link call across tabs, context surviving a restart, disabled tabs and nodes,
// live redeploy, and isolation between projects (by the order of debug entries, no timing).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startParley, runCli, tempDir, basicAuth } from './lib/parley.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll the debug ring until pred(entries) is true (gives up after ~10 s).
async function waitDebug(p, base, pred, what = 'debug entries', auth = 'basic') {
  let last = [];
  for (let i = 0; i < 500; i++) {
    const r = await p.api('GET', `${base}/debug`, { auth });
    assert.equal(r.status, 200, r.text);
    last = r.json.messages;
    if (pred(last)) return last;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last).slice(0, 2000)}`);
}

async function deploy(p, base, flows) {
  const r = await p.api('POST', `${base}/flows`, { body: { flows } });
  assert.equal(r.status, 200, r.text);
  return r.json.rev;
}

const byNode = (entries, id) => entries.filter((e) => e.node_id === id);

describe('flows runtime', () => {
  let p, base;
  before(async () => {
    p = await startParley();
    base = `/v1/projects/${p.init.project_id}`;
  });
  after(async () => { await p.stop(); });

  test('inject -> switch -> change -> debug, seen by GET debug and by SSE', async () => {
    const ac = new AbortController();
    const sse = await fetch(`${p.url}${base}/debug/stream`, {
      headers: { Authorization: 'Basic ' + Buffer.from(`${p.init.key_id}:${p.init.key_secret}`).toString('base64') },
      signal: ac.signal,
    });
    assert.equal(sse.status, 200);
    assert.match(sse.headers.get('content-type'), /text\/event-stream/);
    await deploy(p, base, [
      { id: 'tA', type: 'tab', label: 'A' },
      { id: 'inj', type: 'inject', z: 'tA', props: [{ p: 'payload', v: '42', vt: 'num' }, { p: 'topic', v: 'answer', vt: 'str' }], wires: [['sw']] },
      { id: 'sw', type: 'switch', z: 'tA', property: 'payload', propertyType: 'msg', checkall: 'true',
        rules: [{ t: 'gt', v: '40', vt: 'num' }, { t: 'lt', v: '10', vt: 'num' }, { t: 'btwn', v: '40', vt: 'num', v2: '50', v2t: 'num' }, { t: 'else' }],
        outputs: 4, wires: [['ch'], ['dLow'], ['dBetween'], ['dElse']] },
      { id: 'ch', type: 'change', z: 'tA', rules: [
        { t: 'set', p: 'big', pt: 'msg', to: 'payload', tot: 'msg' },
        { t: 'change', p: 'topic', pt: 'msg', from: 'ans', fromt: 'str', to: 'ANS', tot: 'str' },
        { t: 'set', p: 'obj.deep[1]', pt: 'msg', to: '{"x":[1,2]}', tot: 'json' },
        { t: 'move', p: 'big', pt: 'msg', to: 'moved', tot: 'msg' },
        { t: 'delete', p: 'obj.deep[0]', pt: 'msg' },
      ], wires: [['dOut']] },
      { id: 'dOut', type: 'debug', z: 'tA', name: 'out', complete: 'true', targetType: 'full', wires: [] },
      { id: 'dLow', type: 'debug', z: 'tA', wires: [] },
      { id: 'dBetween', type: 'debug', z: 'tA', complete: 'payload', wires: [] },
      { id: 'dElse', type: 'debug', z: 'tA', wires: [] },
    ]);
    const r = await p.api('POST', `${base}/inject/inj`, { body: {} });
    assert.equal(r.status, 200, r.text);
    const entries = await waitDebug(p, base, (e) => byNode(e, 'dOut').length && byNode(e, 'dBetween').length);
    const out = byNode(entries, 'dOut')[0];
    assert.equal(out.name, 'out');
    assert.equal(out.format, 'Object');
    assert.equal(out.property, 'msg');
    assert.equal(out.msg.payload, 42);
    assert.equal(out.msg.topic, 'ANSwer');
    assert.equal(out.msg.moved, 42);
    assert.equal(out.msg.big, undefined);
    assert.deepEqual(out.msg.obj, { deep: [{ x: [1, 2] }] });
    assert.match(out.msg._msgid, /^\S+$/);
    assert.equal(byNode(entries, 'dBetween')[0].msg, 42);
    assert.equal(byNode(entries, 'dBetween')[0].format, 'number');
    assert.equal(byNode(entries, 'dLow').length, 0);
    assert.equal(byNode(entries, 'dElse').length, 0);

    // the same entries arrived on the SSE stream, with ids
    const reader = sse.body.getReader();
    let text = '';
    while (!(text.includes('"dOut"') && text.includes('"dBetween"'))) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    ac.abort();
    const events = text.split('\n\n').filter((b) => b.includes('data:'));
    const parsed = events.map((b) => JSON.parse(b.split('\n').find((l) => l.startsWith('data:')).slice(5)));
    assert.ok(parsed.some((e) => e.node_id === 'dOut' && e.msg.topic === 'ANSwer'));
    assert.ok(events.every((b) => /^id: \d+$/m.test(b) && /^event: debug$/m.test(b)));

    // GET debug/stream resumes after Last-Event-ID
    const firstId = parsed[0].id;
    const ac2 = new AbortController();
    const again = await fetch(`${p.url}${base}/debug`, {
      headers: { Accept: 'text/event-stream', 'Last-Event-ID': firstId,
        Authorization: 'Basic ' + Buffer.from(`${p.init.key_id}:${p.init.key_secret}`).toString('base64') },
      signal: ac2.signal,
    });
    const rd = again.body.getReader();
    const { value } = await rd.read();
    ac2.abort();
    const chunk = Buffer.from(value).toString();
    assert.ok(!chunk.includes(`id: ${firstId}\n`), 'resumes after the given id');
    assert.match(chunk, /event: debug/);
  });

  test('debug shows long strings and arrays cut at 1,000 as Node-RED', async () => {
    const long = 'é'.repeat(1500);
    const arr = JSON.stringify(Array.from({ length: 1200 }, (_, i) => i));
    await deploy(p, base, [
      { id: 'tL', type: 'tab', label: 'L' },
      { id: 'iL', type: 'inject', z: 'tL', props: [{ p: 'payload', v: long, vt: 'str' }, { p: 'arr', v: arr, vt: 'json' }], wires: [['dL1', 'dL2']] },
      { id: 'dL1', type: 'debug', z: 'tL', complete: 'payload', wires: [] },
      { id: 'dL2', type: 'debug', z: 'tL', complete: 'arr', wires: [] },
    ]);
    await p.api('POST', `${base}/inject/iL`, { body: {} });
    const e = await waitDebug(p, base, (x) => byNode(x, 'dL1').length && byNode(x, 'dL2').length);
    const s = byNode(e, 'dL1')[0];
    assert.equal(s.format, 'string[1500]');
    assert.equal(s.msg, 'é'.repeat(1000) + '...');
    const a = byNode(e, 'dL2')[0];
    assert.equal(a.format, 'array[1200]');
    assert.equal(a.msg.__enc__, true);
    assert.equal(a.msg.length, 1200);
    assert.equal(a.msg.data.length, 1000);
    // an entry that would exceed 256 KiB is replaced by a note
    const huge = JSON.stringify(Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, 'x'.repeat(1000)])));
    await deploy(p, base, [
      { id: 'tL', type: 'tab', label: 'L' },
      { id: 'iH', type: 'inject', z: 'tL', props: [{ p: 'payload', v: huge, vt: 'json' }], wires: [['dH']] },
      { id: 'dH', type: 'debug', z: 'tL', wires: [] },
    ]);
    await p.api('POST', `${base}/inject/iH`, { body: {} });
    const h = byNode(await waitDebug(p, base, (x) => byNode(x, 'dH').length), 'dH')[0];
    assert.equal(h.format, 'Object');
    assert.match(h.msg, /^\(too large to show: \d+ bytes\)$/);
  });

  test('switch rule types and checkall false', async () => {
    await deploy(p, base, [
      { id: 'tS', type: 'tab', label: 'S' },
      { id: 'in', type: 'link in', z: 'tS', wires: [['sw']] },
      { id: 'sw', type: 'switch', z: 'tS', property: 'payload', checkall: 'false', rules: [
        { t: 'regex', v: '^he(l+)o$', vt: 'str', case: true },
        { t: 'cont', v: 'wor', vt: 'str' },
        { t: 'istype', v: 'array', vt: 'array' },
        { t: 'hask', v: 'k', vt: 'str' },
        { t: 'empty' },
        { t: 'eq', v: '7', vt: 'str' },
        { t: 'null' },
        { t: 'else' },
      ], outputs: 8, wires: [['d0'], ['d1'], ['d2'], ['d3'], ['d4'], ['d5'], ['d6'], ['d7']] },
      ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ id: `d${i}`, type: 'debug', z: 'tS', wires: [] })),
      { id: 'i1', type: 'inject', z: 'tS', props: [{ p: 'payload', v: 'HELLO', vt: 'str' }], wires: [['in']] },
      { id: 'i2', type: 'inject', z: 'tS', props: [{ p: 'payload', v: 'hello world', vt: 'str' }], wires: [['in']] },
      { id: 'i3', type: 'inject', z: 'tS', props: [{ p: 'payload', v: '[1]', vt: 'json' }], wires: [['in']] },
      { id: 'i4', type: 'inject', z: 'tS', props: [{ p: 'payload', v: '{"k":1}', vt: 'json' }], wires: [['in']] },
      { id: 'i5', type: 'inject', z: 'tS', props: [{ p: 'payload', v: '', vt: 'str' }], wires: [['in']] },
      { id: 'i6', type: 'inject', z: 'tS', props: [{ p: 'payload', v: '7', vt: 'num' }], wires: [['in']] },
      { id: 'i7', type: 'inject', z: 'tS', props: [{ p: 'topic', v: 'x', vt: 'str' }], wires: [['in']] },
      { id: 'i8', type: 'inject', z: 'tS', props: [{ p: 'payload', v: 'true', vt: 'bool' }], wires: [['in']] },
    ]);
    for (const i of [1, 2, 3, 4, 5, 6, 7, 8]) await p.api('POST', `${base}/inject/i${i}`, { body: {} });
    const entries = await waitDebug(p, base, (e) => e.filter((x) => /^d\d$/.test(x.node_id) && x.z === 'tS').length >= 8);
    const got = entries.filter((x) => x.z === 'tS').map((x) => [x.node_id, x.msg]);
    assert.deepEqual(got, [
      ['d0', 'HELLO'], ['d1', 'hello world'], ['d2', [1]], ['d3', { k: 1 }], ['d4', ''], ['d5', 7], ['d6', null], ['d7', true],
    ]);
    assert.equal(entries.find((x) => x.node_id === 'd6').format, 'undefined');
  });

  test('catch, status and complete in the same tab', async () => {
    await deploy(p, base, [
      { id: 'tC', type: 'tab', label: 'C' },
      { id: 'inj', type: 'inject', z: 'tC', props: [{ p: 'payload', v: 'go', vt: 'str' }], wires: [['call']] },
      { id: 'call', type: 'link call', z: 'tC', links: ['nowhere'], linkType: 'dynamic', timeout: '1', wires: [[]] },
      { id: 'c1', type: 'catch', z: 'tC', scope: ['call'], uncaught: false, wires: [['dCatch']] },
      { id: 'c2', type: 'catch', z: 'tC', scope: null, uncaught: true, wires: [['dUncaught']] },
      { id: 'dCatch', type: 'debug', z: 'tC', complete: 'error', wires: [] },
      { id: 'dUncaught', type: 'debug', z: 'tC', wires: [] },
      { id: 'dbg', type: 'debug', z: 'tC', tostatus: true, statusType: 'auto', complete: 'payload', wires: [] },
      { id: 'inj2', type: 'inject', z: 'tC', props: [{ p: 'payload', v: 'status text', vt: 'str' }], wires: [['dbg']] },
      { id: 'st', type: 'status', z: 'tC', scope: ['dbg'], wires: [['dStatus']] },
      { id: 'dStatus', type: 'debug', z: 'tC', complete: 'status', wires: [] },
      { id: 'cp', type: 'complete', z: 'tC', scope: ['dbg'], wires: [['dComplete']] },
      { id: 'dComplete', type: 'debug', z: 'tC', complete: 'true', wires: [] },
    ]);
    await p.api('POST', `${base}/inject/inj`, { body: {} });
    await p.api('POST', `${base}/inject/inj2`, { body: {} });
    const e = await waitDebug(p, base, (x) => byNode(x, 'dCatch').length && byNode(x, 'dStatus').length && byNode(x, 'dComplete').length);
    const err = byNode(e, 'dCatch')[0].msg;
    assert.match(err.message, /target link-in node 'undefined'|not found/);
    assert.deepEqual(err.source, { id: 'call', type: 'link call', name: '', count: 1 });
    assert.equal(byNode(e, 'dUncaught').length, 0, 'uncaught catch skips errors another catch took');
    const st = byNode(e, 'dStatus')[0].msg;
    assert.equal(st.text, 'status text');
    assert.equal(st.source.id, 'dbg');
    const done = byNode(e, 'dComplete')[0].msg;
    assert.equal(done.payload, 'status text');
    assert.deepEqual(done.complete.source, { id: 'dbg', type: 'debug', name: '' });
  });

  test('link call times out into a catch node with the msg as it entered', async () => {
    await deploy(p, base, [
      { id: 'tT', type: 'tab', label: 'T' },
      { id: 'iT', type: 'inject', z: 'tT', props: [{ p: 'payload', v: 'waiting', vt: 'str' }], wires: [['lcT']] },
      { id: 'lcT', type: 'link call', z: 'tT', links: ['linT'], linkType: 'static', timeout: '0.2', wires: [['dNever']] },
      { id: 'linT', type: 'link in', z: 'tT', wires: [[]] },
      { id: 'cT', type: 'catch', z: 'tT', scope: ['lcT'], wires: [['dT']] },
      { id: 'dT', type: 'debug', z: 'tT', complete: 'true', wires: [] },
      { id: 'dNever', type: 'debug', z: 'tT', wires: [] },
    ]);
    await p.api('POST', `${base}/inject/iT`, { body: {} });
    const e = await waitDebug(p, base, (x) => byNode(x, 'dT').length);
    const m = byNode(e, 'dT')[0].msg;
    assert.equal(m.error.message, 'timeout');
    assert.equal(m.error.source.id, 'lcT');
    assert.equal(m.payload, 'waiting');
    assert.equal(m._linkSource, undefined, 'the msg as it entered the link call');
    assert.equal(byNode(e, 'dNever').length, 0);
  });

  test('an error with no catch node reaches the debug stream as an error', async () => {
    await deploy(p, base, [
      { id: 'tE', type: 'tab', label: 'E' },
      { id: 'inj', type: 'inject', z: 'tE', props: [{ p: 'payload', v: 'x', vt: 'str' }], wires: [['call']] },
      { id: 'call', type: 'link call', z: 'tE', linkType: 'dynamic', wires: [[]] },
    ]);
    await p.api('POST', `${base}/inject/inj`, { body: {} });
    const e = await waitDebug(p, base, (x) => x.some((y) => y.node_id === 'call' && y.level === 'error'));
    const entry = e.find((y) => y.node_id === 'call' && y.level === 'error');
    assert.match(entry.msg, /not found/);
    assert.equal(entry.type, 'link call');
  });

  test('subflows with env, nested, status output; link call across tabs', async () => {
    await deploy(p, base, [
      { id: 'sfInner', type: 'subflow', name: 'inner', in: [{ wires: [{ id: 'iCh' }] }], out: [{ wires: [{ id: 'iCh', port: 0 }] }],
        env: [{ name: 'SUFFIX', type: 'str', value: '-inner' }] },
      { id: 'iCh', type: 'change', z: 'sfInner', rules: [{ t: 'set', p: 'inner', pt: 'msg', to: 'SUFFIX', tot: 'env' }, { t: 'set', p: 'greet', pt: 'msg', to: 'GREETING', tot: 'env' }], wires: [[]] },
      { id: 'sfOuter', type: 'subflow', name: 'outer', in: [{ wires: [{ id: 'oCh' }] }], out: [{ wires: [{ id: 'nested', port: 0 }] }],
        env: [{ name: 'GREETING', type: 'str', value: 'default' }, { name: 'N', type: 'num', value: '5' }],
        status: { wires: [{ id: 'oStat', port: 0 }] } },
      { id: 'oCh', type: 'change', z: 'sfOuter', rules: [{ t: 'set', p: 'n', pt: 'msg', to: 'N', tot: 'env' }, { t: 'set', p: 'sfname', pt: 'msg', to: 'NR_SUBFLOW_NAME', tot: 'env' }], wires: [['nested', 'oStatMsg']] },
      { id: 'nested', type: 'subflow:sfInner', z: 'sfOuter', wires: [[]] },
      { id: 'oStatMsg', type: 'change', z: 'sfOuter', rules: [{ t: 'set', p: 'payload', pt: 'msg', to: '{"fill":"green","shape":"dot","text":"seen"}', tot: 'json' }], wires: [['oStat']] },
      { id: 'oStat', type: 'junction', z: 'sfOuter', wires: [] },
      { id: 't1', type: 'tab', label: 'one', env: [{ name: 'GREETING', type: 'str', value: 'tab greeting' }] },
      { id: 't2', type: 'tab', label: 'two' },
      { id: 'inj', type: 'inject', z: 't1', props: [{ p: 'payload', v: 'p', vt: 'str' }], wires: [['inst1', 'inst2']] },
      { id: 'inst1', type: 'subflow:sfOuter', z: 't1', env: [{ name: 'GREETING', type: 'str', value: 'hi from instance' }], wires: [['sd1']] },
      { id: 'inst2', type: 'subflow:sfOuter', z: 't1', wires: [['sd2']] },
      { id: 'stInst', type: 'status', z: 't1', scope: ['inst1'], wires: [['dStat']] },
      { id: 'sd1', type: 'debug', z: 't1', complete: 'true', wires: [] },
      { id: 'sd2', type: 'debug', z: 't1', complete: 'true', wires: [] },
      { id: 'dStat', type: 'debug', z: 't1', complete: 'status', wires: [] },
      // link call from tab one to a link in on tab two, returning
      { id: 'inj2', type: 'inject', z: 't1', props: [{ p: 'payload', v: '1', vt: 'num' }], wires: [['lc']] },
      { id: 'lc', type: 'link call', z: 't1', links: ['lin'], timeout: '5', wires: [['dCall']] },
      { id: 'dCall', type: 'debug', z: 't1', complete: 'true', wires: [] },
      { id: 'lin', type: 'link in', z: 't2', links: [], wires: [['add']] },
      { id: 'add', type: 'change', z: 't2', rules: [{ t: 'set', p: 'visited', pt: 'msg', to: 'two', tot: 'str' }], wires: [['lret']] },
      { id: 'lret', type: 'link out', z: 't2', mode: 'return', links: [], wires: [] },
      // link out (link mode) to a link in on another tab
      { id: 'inj3', type: 'inject', z: 't1', props: [{ p: 'payload', v: 'fwd', vt: 'str' }], wires: [['lo']] },
      { id: 'lo', type: 'link out', z: 't1', mode: 'link', links: ['lin2'], wires: [] },
      { id: 'lin2', type: 'link in', z: 't2', wires: [['dLin2']] },
      { id: 'dLin2', type: 'debug', z: 't2', wires: [] },
    ]);
    await p.api('POST', `${base}/inject/inj`, { body: {} });
    await p.api('POST', `${base}/inject/inj2`, { body: {} });
    await p.api('POST', `${base}/inject/inj3`, { body: {} });
    const e = await waitDebug(p, base, (x) => ['sd1', 'sd2', 'dCall', 'dLin2', 'dStat'].every((id) => byNode(x, id).length));
    const m1 = byNode(e, 'sd1')[0].msg, m2 = byNode(e, 'sd2')[0].msg;
    assert.equal(m1.greet, 'hi from instance', 'instance env overrides the definition');
    assert.equal(m2.greet, 'default', 'definition env');
    assert.equal(m1.inner, '-inner', 'nested subflow env');
    assert.equal(m1.n, 5, 'typed env');
    assert.equal(m1.sfname, 'outer');
    assert.equal(byNode(e, 'dStat')[0].msg.text, 'seen');
    assert.equal(byNode(e, 'dStat')[0].msg.source.id, 'inst1');
    const c = byNode(e, 'dCall')[0].msg;
    assert.equal(c.visited, 'two');
    assert.equal(c.payload, 1);
    assert.equal(c._linkSource, undefined);
    assert.equal(byNode(e, 'dLin2')[0].msg, 'fwd');
  });

  test('disabled tab and disabled node do not run; redeploy swaps live', async () => {
    await deploy(p, base, [
      { id: 'tOn', type: 'tab', label: 'on' },
      { id: 'tOff', type: 'tab', label: 'off', disabled: true },
      { id: 'iOff', type: 'inject', z: 'tOff', once: true, onceDelay: 0.01, props: [{ p: 'payload', v: 'off', vt: 'str' }], wires: [['dOff']] },
      { id: 'dOff', type: 'debug', z: 'tOff', wires: [] },
      { id: 'iOn', type: 'inject', z: 'tOn', props: [{ p: 'payload', v: 'v1', vt: 'str' }], wires: [['dDis', 'dOn']] },
      { id: 'dDis', type: 'debug', z: 'tOn', d: true, wires: [] },
      { id: 'dOn', type: 'debug', z: 'tOn', wires: [] },
    ]);
    let r = await p.api('POST', `${base}/inject/iOff`, { body: {} });
    assert.equal(r.status, 404, 'nodes of a disabled tab are not deployed');
    await p.api('POST', `${base}/inject/iOn`, { body: {} });
    let e = await waitDebug(p, base, (x) => x.some((y) => y.node_id === 'dOn' && y.msg === 'v1'));
    assert.equal(byNode(e, 'dDis').length, 0);
    assert.equal(byNode(e, 'dOff').length, 0);
    // redeploy with a different payload: the very next inject uses it
    await deploy(p, base, [
      { id: 'tOn', type: 'tab', label: 'on' },
      { id: 'iOn', type: 'inject', z: 'tOn', props: [{ p: 'payload', v: 'v2', vt: 'str' }], wires: [['dOn']] },
      { id: 'dOn', type: 'debug', z: 'tOn', wires: [] },
    ]);
    await p.api('POST', `${base}/inject/iOn`, { body: {} });
    e = await waitDebug(p, base, (x) => x.some((y) => y.node_id === 'dOn' && y.msg === 'v2'));
    const vs = byNode(e, 'dOn').map((y) => y.msg);
    assert.equal(vs.filter((v) => v === 'v1').length, 1);
    assert.equal(vs.filter((v) => v === 'v2').length, 1);
  });

  test('inject button with the editor\'s own props', async () => {
    await deploy(p, base, [
      { id: 'tU', type: 'tab', label: 'U' },
      { id: 'iU', type: 'inject', z: 'tU', props: [{ p: 'payload', v: 'configured', vt: 'str' }], wires: [['dU']] },
      { id: 'dU', type: 'debug', z: 'tU', complete: 'true', wires: [] },
    ]);
    await p.api('POST', `${base}/inject/iU`, { body: { __user_inject_props__: [{ p: 'payload', v: '7', vt: 'num' }, { p: 'topic', v: 'manual', vt: 'str' }] } });
    const e = await waitDebug(p, base, (x) => byNode(x, 'dU').length === 1);
    const m = byNode(e, 'dU')[0].msg;
    assert.equal(m.payload, 7);
    assert.equal(m.topic, 'manual');
    assert.equal(m.__user_inject_props__, undefined);
  });

  test('repeat interval inject runs until undeployed', async () => {
    await deploy(p, base, [
      { id: 'tR', type: 'tab', label: 'R' },
      { id: 'rep', type: 'inject', z: 'tR', repeat: '0.05', props: [{ p: 'payload', v: 'tick', vt: 'str' }], wires: [['dR']] },
      { id: 'dR', type: 'debug', z: 'tR', wires: [] },
    ]);
    await waitDebug(p, base, (x) => byNode(x, 'dR').length >= 3, 'three ticks');
    await deploy(p, base, [{ id: 'tR', type: 'tab', label: 'R' }]);
    const n1 = byNode((await p.api('GET', `${base}/debug`)).json.messages, 'dR').length;
    await sleep(300);
    const n2 = byNode((await p.api('GET', `${base}/debug`)).json.messages, 'dR').length;
    assert.equal(n2, n1, 'no ticks after undeploy');
  });
});

describe('flows context', () => {
  test('flow, global and node context survive a restart and a redeploy', async () => {
    const dir = tempDir();
    let p = await startParley({ dataDir: dir });
    const base = `/v1/projects/${p.init.project_id}`;
    const init = p.init;
    const flows = [
      { id: 'tX', type: 'tab', label: 'X' },
      { id: 'set', type: 'inject', z: 'tX', props: [{ p: 'payload', v: '{"a":{"b":1}}', vt: 'json' }], wires: [['ch']] },
      { id: 'ch', type: 'change', z: 'tX', rules: [
        { t: 'set', p: 'counter', pt: 'flow', to: 'payload', tot: 'msg' },
        { t: 'set', p: 'counter.a.c', pt: 'flow', to: '2', tot: 'num' },
        { t: 'set', p: 'shared', pt: 'global', to: 'g', tot: 'str' },
      ], wires: [[]] },
      { id: 'get', type: 'inject', z: 'tX', props: [
        { p: 'payload', v: 'counter.a', vt: 'flow' }, { p: 'g', v: 'shared', vt: 'global' }, { p: 'missing', v: 'nope', vt: 'flow' },
      ], wires: [['dX']] },
      { id: 'dX', type: 'debug', z: 'tX', complete: 'true', wires: [] },
    ];
    let r = await p.api('POST', `${base}/flows`, { body: { flows } });
    assert.equal(r.status, 200, r.text);
    await p.api('POST', `${base}/inject/set`, { body: {} });
    await waitDebug(p, base, () => true);
    await p.api('POST', `${base}/inject/get`, { body: {} });
    let e = await waitDebug(p, base, (x) => byNode(x, 'dX').length === 1);
    assert.deepEqual(byNode(e, 'dX')[0].msg.payload, { b: 1, c: 2 });
    await p.stop();
    p = await startParley({ dataDir: dir });
    const auth = basicAuth(init.key_id, init.key_secret);
    // a redeploy (same ids) after the restart still sees the context
    r = await p.api('POST', `${base}/flows`, { auth, body: { flows } });
    assert.equal(r.status, 200, r.text);
    await p.api('POST', `${base}/inject/get`, { auth, body: {} });
    e = await waitDebug(p, base, (x) => byNode(x, 'dX').length === 1, 'context after restart', auth);
    const m = byNode(e, 'dX')[0].msg;
    assert.deepEqual(m.payload, { b: 1, c: 2 });
    assert.equal(m.g, 'g');
    assert.equal('missing' in m, true);
    assert.equal(m.missing, null);
    await p.stop();
  });

  test('deployed flows run again after a restart (once inject)', async () => {
    const dir = tempDir();
    let p = await startParley({ dataDir: dir });
    const init = p.init;
    const base = `/v1/projects/${p.init.project_id}`;
    const r = await p.api('POST', `${base}/flows`, { body: { flows: [
      { id: 'tY', type: 'tab', label: 'Y' },
      { id: 'once', type: 'inject', z: 'tY', once: true, onceDelay: 0.01, props: [{ p: 'payload', v: 'boot', vt: 'str' }], wires: [['dY']] },
      { id: 'dY', type: 'debug', z: 'tY', wires: [] },
    ] } });
    assert.equal(r.status, 200, r.text);
    await waitDebug(p, base, (x) => byNode(x, 'dY').length === 1);
    await p.stop();
    p = await startParley({ dataDir: dir });
    const e = await waitDebug(p, base, (x) => byNode(x, 'dY').length === 1, 'the once inject after restart',
      basicAuth(init.key_id, init.key_secret));
    assert.equal(e[0].msg, 'boot');
    await p.stop();
  });
});

describe('flows deployed by another process', () => {
  test('a revision written to the store by another process goes live', async () => {
    const p = await startParley();
    const base = `/v1/projects/${p.init.project_id}`;
    const flows = JSON.stringify([
      { id: 'tO', type: 'tab', label: 'other' },
      { id: 'iO', type: 'inject', z: 'tO', once: true, onceDelay: 0.01, props: [{ p: 'payload', v: 'from the store', vt: 'str' }], wires: [['dO']] },
      { id: 'dO', type: 'debug', z: 'tO', wires: [] },
    ]).replaceAll("'", "''");
    const rev = '01JZZZZZZZZZZZZZZZZZZZZZZZ';
    const now = Date.now();
    execFileSync('sqlite3', [join(p.dataDir, 'parley.db'),
      `PRAGMA busy_timeout=5000; INSERT INTO flows_revisions (project_id, rev, flows, created_at) VALUES ('${p.init.project_id}', '${rev}', '${flows}', ${now});` +
      ` INSERT INTO flows_deployed (project_id, rev, updated_at) VALUES ('${p.init.project_id}', '${rev}', ${now}) ON CONFLICT (project_id) DO UPDATE SET rev = excluded.rev;`]);
    const e = await waitDebug(p, base, (x) => byNode(x, 'dO').length === 1, 'the set deployed through the store');
    assert.equal(byNode(e, 'dO')[0].msg, 'from the store');
    const ex = await p.api('GET', `${base}/flows`);
    assert.equal(ex.json.rev, rev);
    await sleep(2500); /* another poll: the same revision is not started twice */
    assert.equal(byNode((await p.api('GET', `${base}/debug`)).json.messages, 'dO').length, 1);
    await p.stop();
  });
});

describe('flows isolation', () => {
  test('a project flooding injects does not hold back another project', async () => {
    const p = await startParley();
    const baseA = `/v1/projects/${p.init.project_id}`;
    const out = await runCli(['projects', 'create', '--data-dir', p.dataDir, '--name', 'B']);
    assert.equal(out.code, 0, out.stderr);
    const projB = JSON.parse(out.stdout);
    const keyOut = await runCli(['keys', 'create', '--data-dir', p.dataDir, '--project', projB.id ?? projB.project_id]);
    assert.equal(keyOut.code, 0, keyOut.stderr);
    const keyB = JSON.parse(keyOut.stdout);
    const authB = 'Basic ' + Buffer.from(`${keyB.key_id}:${keyB.key_secret}`).toString('base64');
    const baseB = `/v1/projects/${projB.id ?? projB.project_id}`;
    // A: a message loop that keeps A's executor busy for thousands of steps: each turn
    // deletes payload[0] and goes round again until the array is empty, then says "done".
    // A scheduler that ran A until its queue drained would hold B back until A is done.
    const big = JSON.stringify(Array.from({ length: 6000 }, (_, i) => i));
    let r = await p.api('POST', `${baseA}/flows`, { body: { flows: [
      { id: 'tA', type: 'tab', label: 'busy' },
      { id: 'go', type: 'inject', z: 'tA', props: [{ p: 'payload', v: big, vt: 'json' }], wires: [['loop']] },
      { id: 'loop', type: 'link in', z: 'tA', wires: [['sw']] },
      { id: 'sw', type: 'switch', z: 'tA', property: 'payload', checkall: 'false', rules: [{ t: 'nempty' }, { t: 'else' }], outputs: 2, wires: [['pop'], ['dA']] },
      { id: 'pop', type: 'change', z: 'tA', rules: [{ t: 'delete', p: 'payload[0]', pt: 'msg' }], wires: [['back']] },
      { id: 'back', type: 'link out', z: 'tA', mode: 'link', links: ['loop'], wires: [] },
      { id: 'dA', type: 'debug', z: 'tA', complete: 'payload', wires: [] },
    ] } });
    assert.equal(r.status, 200, r.text);
    r = await p.api('POST', `${baseB}/flows`, { auth: authB, body: { flows: [
      { id: 'tB', type: 'tab', label: 'quiet' },
      { id: 'ping', type: 'inject', z: 'tB', props: [{ p: 'payload', v: 'pong', vt: 'str' }], wires: [['dB']] },
      { id: 'dB', type: 'debug', z: 'tB', wires: [] },
    ] } });
    assert.equal(r.status, 200, r.text);
    // start two busy loops on A, then ping B while A is busy
    r = await p.api('POST', `${baseA}/inject/go`, { body: {} });
    assert.equal(r.status, 200);
    r = await p.api('POST', `${baseA}/inject/go`, { body: {} });
    assert.equal(r.status, 200);
    r = await p.api('POST', `${baseB}/inject/ping`, { auth: authB, body: {} });
    assert.equal(r.status, 200);
    let b = [], a = [];
    for (let i = 0; i < 2000 && !(b.length && a.length >= 2); i++) {
      b = (await p.api('GET', `${baseB}/debug`, { auth: authB })).json.messages.filter((x) => x.node_id === 'dB');
      a = (await p.api('GET', `${baseA}/debug`)).json.messages.filter((x) => x.node_id === 'dA');
      await sleep(10);
    }
    assert.equal(b.length, 1, 'B ran');
    assert.equal(a.length, 2, 'A finished both loops');
    assert.deepEqual(a[0].msg, []);
    assert.ok(BigInt(b[0].id) < BigInt(a[0].id), `B (${b[0].id}) was not held behind A's loop (${a[0].id})`);
    // projects cannot see each other's debug stream
    const cross = await p.api('GET', `${baseA}/debug`, { auth: authB });
    assert.ok(cross.status === 403 || cross.status === 404 || cross.status === 401, `cross-project debug: ${cross.status}`);
    await p.stop();
  });
});
