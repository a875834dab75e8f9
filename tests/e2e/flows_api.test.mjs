// flows_api.test.mjs: the Flows admin API: deploy and export round trip (unknown fields and
// layout kept byte for byte), stale rev -> 409, validation problems with details while the
// running flows stay as they were, revisions and restore, single-tab CRUD, auth.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startParley } from './lib/parley.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitDebug(p, base, pred) {
  let last = [];
  for (let i = 0; i < 500; i++) {
    last = (await p.api('GET', `${base}/debug`)).json.messages;
    if (pred(last)) return last;
    await sleep(20);
  }
  throw new Error(`timed out; last: ${JSON.stringify(last).slice(0, 1000)}`);
}

const good = [
  { id: 't1', type: 'tab', label: 'Main', disabled: false, info: 'notes', env: [], futureField: { a: [1, 2.5, 'x'] } },
  { id: 'inj', type: 'inject', z: 't1', name: 'go', props: [{ p: 'payload', v: 'one', vt: 'str' }], repeat: '', crontab: '', once: false, onceDelay: 0.1, topic: '', x: 110.5, y: 80, wires: [['dbg']], myPluginData: { keep: true } },
  { id: 'dbg', type: 'debug', z: 't1', name: '', active: true, tosidebar: true, console: false, tostatus: false, complete: 'payload', targetType: 'msg', statusVal: '', statusType: 'auto', x: 300, y: 80, wires: [] },
  { id: 'c1', type: 'comment', z: 't1', name: 'hi', info: '', x: 100, y: 20, wires: [] },
];

describe('flows admin API', () => {
  let p, base;
  before(async () => {
    p = await startParley();
    base = `/v1/projects/${p.init.project_id}`;
  });
  after(async () => { await p.stop(); });

  test('auth is required and scoped to the project', async () => {
    let r = await p.api('GET', `${base}/flows`, { auth: 'none' });
    assert.equal(r.status, 401);
    r = await p.api('GET', `/v1/projects/01ARZ3NDEKTSV4RRFFQ69G5FAV/flows`);
    assert.ok([403, 404].includes(r.status), `other project: ${r.status}`);
  });

  test('deploy then export returns exactly the text deployed', async () => {
    // hand-written text with odd spacing and number forms, which a re-serialiser would change
    const text = JSON.stringify(good).replace('"x":110.5', '"x":  110.50').replace('"onceDelay":0.1', '"onceDelay":1e-1');
    const r = await p.api('POST', `${base}/flows`, { body: `{"rev": null, "flows": ${text}}`, headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.rev, /^[0-9A-Z]{26}$/);
    const ex = await p.api('GET', `${base}/flows`);
    assert.equal(ex.status, 200);
    assert.equal(ex.text, `{"rev":"${r.json.rev}","flows":${text}}`);
    assert.deepEqual(ex.json.flows[1].myPluginData, { keep: true });
    assert.equal(ex.json.flows[1].x, 110.5);
    // and it runs
    await p.api('POST', `${base}/inject/inj`, { body: {} });
    await waitDebug(p, base, (e) => e.some((x) => x.node_id === 'dbg' && x.msg === 'one'));
  });

  test('Node-RED v1 shape: a bare array deploys too', async () => {
    const r = await p.api('POST', `${base}/flows`, { body: good });
    assert.equal(r.status, 200, r.text);
    const ex = await p.api('GET', `${base}/flows`);
    assert.deepEqual(ex.json.flows, good);
    assert.equal(ex.json.rev, r.json.rev);
    const v1 = await p.api('GET', `${base}/flows`, { headers: { 'Node-RED-API-Version': 'v1' } });
    assert.deepEqual(v1.json, good);
  });

  test('stale rev is 409 ABORTED and changes nothing; the current rev deploys', async () => {
    const cur = (await p.api('GET', `${base}/flows`)).json.rev;
    const r1 = await p.api('POST', `${base}/flows`, { body: { flows: good, rev: cur } });
    assert.equal(r1.status, 200, r1.text);
    const stale = await p.api('POST', `${base}/flows`, { body: { flows: [{ id: 't9', type: 'tab' }], rev: cur } });
    assert.equal(stale.status, 409, stale.text);
    assert.equal(stale.json.error.status, 'ABORTED');
    assert.match(stale.json.error.message, new RegExp(r1.json.rev));
    const ex = await p.api('GET', `${base}/flows`);
    assert.equal(ex.json.rev, r1.json.rev);
    assert.deepEqual(ex.json.flows, good);
  });

  test('validation: one precise problem per issue, running flows unchanged', async () => {
    const before = (await p.api('GET', `${base}/flows`)).json;
    const bad = [
      { id: 't1', type: 'tab', label: 'x' },
      { id: 'a', type: 'no-such-node', z: 't1', wires: [] },
      { id: 'b', type: 'inject', z: 't1', props: [{ p: 'payload', v: '$now()', vt: 'jsonata' }], wires: [['ghost']] },
      { id: 'c', type: 'switch', z: 't1', property: 'payload', rules: [{ t: 'regex', v: '([a-z', vt: 'str' }], wires: [[]] },
      { id: 'd', type: 'change', z: 't1', rules: [{ t: 'set', p: '', pt: 'msg', to: 'x', tot: 'str' }], wires: [[]] },
      { id: 'e', type: 'link call', z: 't1', links: [], wires: [[]] },
      { id: 'f', type: 'inject', z: 'nowhere', wires: [] },
      { id: 'sf1', type: 'subflow', name: 'one', in: [], out: [] },
      { id: 'sf2', type: 'subflow', name: 'two', in: [], out: [] },
      { id: 'i1', type: 'subflow:sf2', z: 'sf1', wires: [] },
      { id: 'i2', type: 'subflow:sf1', z: 'sf2', wires: [] },
      { id: 'g', type: 'inject', z: 't1', crontab: 'every day', wires: [] },
      { id: 'h', type: 'debug', z: 't1', targetType: 'jsonata', complete: '$x', wires: [] },
      { id: 'a', type: 'debug', z: 't1', wires: [] },
    ];
    const r = await p.api('POST', `${base}/flows`, { body: { flows: bad } });
    assert.equal(r.status, 400, r.text);
    const err = r.json.error;
    assert.equal(err.status, 'INVALID_ARGUMENT');
    const d = err.details;
    const has = (node, field, re) => assert.ok(d.some((x) => x.node_id === node && x.field === field && re.test(x.message)),
      `expected problem ${node} ${field} ${re}; got ${JSON.stringify(d, null, 1)}`);
    has('a', 'type', /unknown node type 'no-such-node'; Parley supports: .*change.*debug.*inject.*switch/);
    has('b', 'props[0].vt', /JSONata/);
    has('b', 'wires[0][0]', /wire to missing node 'ghost'/);
    has('c', 'rules[0].v', /bad regular expression/);
    has('d', 'rules[0].p', /missing property/);
    has('e', 'links', /missing required link in target/);
    has('f', 'z', /'nowhere' does not exist/);
    has('g', 'crontab', /invalid crontab/);
    has('h', 'targetType', /JSONata/);
    has('a', 'id', /duplicate node id/);
    assert.ok(d.some((x) => ['sf1', 'sf2'].includes(x.node_id) && /recursive subflow: sf[12] -> sf[12] -> sf[12]/.test(x.message)), JSON.stringify(d));
    for (const x of d) assert.deepEqual(Object.keys(x).sort(), ['field', 'message', 'node_id']);
    const after = (await p.api('GET', `${base}/flows`)).json;
    assert.deepEqual(after, before);
    // the old set still runs
    const n = (await p.api('GET', `${base}/debug`)).json.messages.filter((x) => x.node_id === 'dbg').length;
    await p.api('POST', `${base}/inject/inj`, { body: {} });
    await waitDebug(p, base, (e) => e.filter((x) => x.node_id === 'dbg').length > n);
  });

  test('malformed bodies', async () => {
    let r = await p.api('POST', `${base}/flows`, { body: { flows: { not: 'an array' } } });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /flows must be an array/);
    r = await p.api('POST', `${base}/flows`, { body: { rev: 'x' } });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /missing required field flows/);
    r = await p.api('POST', `${base}/flows`, { body: '{"flows": [', headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 400);
    r = await p.api('POST', `${base}/flows`, { body: { flows: [1, { type: 'tab' }, { id: 'q' }] } });
    assert.equal(r.status, 400);
    const d = r.json.error.details;
    assert.ok(d.some((x) => x.field === 'flows[0]' && /must be an object/.test(x.message)));
    assert.ok(d.some((x) => x.field === 'flows[1]' && /without a string id/.test(x.message)));
    assert.ok(d.some((x) => x.node_id === 'q' && x.field === 'type'));
  });

  test('revisions list and restore', async () => {
    const v1 = (await p.api('POST', `${base}/flows`, { body: { flows: good } })).json.rev;
    const other = [{ id: 't2', type: 'tab', label: 'Other' }];
    const v2 = (await p.api('POST', `${base}/flows`, { body: { flows: other } })).json.rev;
    let r = await p.api('GET', `${base}/flows/revisions`);
    assert.equal(r.status, 200);
    const revs = r.json.revisions;
    assert.equal(revs[0].rev, v2);
    assert.equal(revs[0].live, true);
    assert.equal(revs[0].nodes, 1);
    assert.equal(revs[1].rev, v1);
    assert.equal(revs[1].live, false);
    assert.match(revs[0].created_at, /Z$/);
    assert.match(revs[0].actor, /^key:/);
    r = await p.api('POST', `${base}/flows/revisions/${v1}:restore`, { body: {} });
    assert.equal(r.status, 200, r.text);
    assert.notEqual(r.json.rev, v1);
    const ex = (await p.api('GET', `${base}/flows`)).json;
    assert.deepEqual(ex.flows, good);
    assert.equal(ex.rev, r.json.rev);
    r = await p.api('GET', `${base}/flows/revisions`);
    assert.match(r.json.revisions[0].note, new RegExp(`restore ${v1}`));
    r = await p.api('POST', `${base}/flows/revisions/01ARZ3NDEKTSV4RRFFQ69G5FAV:restore`, { body: {} });
    assert.equal(r.status, 404);
  });

  test('single tab: GET, PUT, POST flow, DELETE', async () => {
    const cfgNode = { id: 'gc', type: 'global-config', z: 't1', env: [] };
    await p.api('POST', `${base}/flows`, { body: { flows: [...good, cfgNode, { id: 'tOther', type: 'tab', label: 'O' }, { id: 'o1', type: 'comment', z: 'tOther', wires: [] }] } });
    let r = await p.api('GET', `${base}/flows/t1`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.id, 't1');
    assert.equal(r.json.label, 'Main');
    assert.deepEqual(r.json.futureField, good[0].futureField);
    assert.deepEqual(r.json.nodes.map((n) => n.id).sort(), ['c1', 'dbg', 'inj']);
    assert.deepEqual(r.json.configs.map((n) => n.id), ['gc']);
    assert.equal((await p.api('GET', `${base}/flows/nope`)).status, 404);

    // PUT replaces the tab's nodes, other tabs untouched
    r = await p.api('PUT', `${base}/flows/t1`, { body: { id: 't1', label: 'Renamed', nodes: [
      { id: 'inj', type: 'inject', props: [{ p: 'payload', v: 'two', vt: 'str' }], wires: [['dbg']] },
      { id: 'dbg', type: 'debug', wires: [] },
    ] } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.id, 't1');
    let all = (await p.api('GET', `${base}/flows`)).json.flows;
    assert.deepEqual(all.filter((n) => n.z === 't1').map((n) => n.id).sort(), ['dbg', 'inj']);
    assert.equal(all.find((n) => n.id === 't1').label, 'Renamed');
    assert.ok(all.some((n) => n.id === 'o1'));
    await p.api('POST', `${base}/inject/inj`, { body: {} });
    await waitDebug(p, base, (e) => e.some((x) => x.node_id === 'dbg' && x.msg === 'two'));

    // a bad PUT is refused with details and changes nothing
    r = await p.api('PUT', `${base}/flows/t1`, { body: { id: 't1', nodes: [{ id: 'zz', type: 'bogus', wires: [] }] } });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.details[0].node_id, 'zz');
    r = await p.api('PUT', `${base}/flows/t1`, { body: { id: 'other', nodes: [] } });
    assert.equal(r.status, 400);
    assert.deepEqual((await p.api('GET', `${base}/flows`)).json.flows, all);

    // POST flow adds a tab (id generated when absent)
    r = await p.api('POST', `${base}/flow`, { body: { label: 'New', nodes: [{ id: 'n1', type: 'comment', wires: [] }] } });
    assert.equal(r.status, 200, r.text);
    const newId = r.json.id;
    r = await p.api('GET', `${base}/flows/${newId}`);
    assert.equal(r.json.label, 'New');
    assert.equal(r.json.nodes[0].z, newId);
    r = await p.api('POST', `${base}/flow`, { body: { id: 't1', label: 'dup' } });
    assert.equal(r.status, 409);

    // DELETE removes the tab and its nodes
    r = await p.api('DELETE', `${base}/flows/${newId}`);
    assert.equal(r.status, 204);
    all = (await p.api('GET', `${base}/flows`)).json.flows;
    assert.ok(!all.some((n) => n.id === newId || n.z === newId));
    assert.equal((await p.api('DELETE', `${base}/flows/${newId}`)).status, 404);

    // GET flows/global: config nodes outside tabs and subflow definitions
    await p.api('POST', `${base}/flows`, { body: { flows: [{ id: 'sfx', type: 'subflow', name: 's', in: [], out: [] }, { id: 'g0', type: 'global-config', env: [] }] } });
    r = await p.api('GET', `${base}/flows/global`);
    assert.deepEqual(r.json.subflows.map((n) => n.id), ['sfx']);
    assert.deepEqual(r.json.configs.map((n) => n.id), ['g0']);
  });
});
