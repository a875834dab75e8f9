// flows_lua.test.mjs: the Lua `function` node and the split/join/range/json nodes on a real
// server: deploy-time validation of Lua, the sandbox limits as catchable errors (a looping
// function and a memory bomb never stop the project), outputs and node.* API, context that
// survives a redeploy, and the sequence nodes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startParley } from './lib/parley.mjs';

let parley, project;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  parley = await startParley({ env: { PARLEY_FLOWS_LUA_MEMORY_MB: '16' } });
  project = parley.init.project_id;
});
after(async () => { await parley.stop(); });

const deploy = (flows) => parley.api('POST', `/v1/projects/${project}/flows`, { body: { flows } });
// The deploy answers before the executor swapped sets; until then the node may be unknown.
async function inject(id) {
  let r;
  for (let i = 0; i < 40; i++) {
    r = await parley.api('POST', `/v1/projects/${project}/inject/${id}`, { body: {} });
    if (r.status !== 404) break;
    await sleep(50);
  }
  assert.equal(r.status, 200, `inject ${id}: ${r.text}`);
}
let lastId = 0n;
// debug entries after the previous call, waiting (up to 5 s) until `want` holds: a count of
// entries, or a function of the entries
async function debugEntries(want, { node } = {}) {
  const enough = typeof want === 'function' ? want : (g) => g.length >= want;
  let got = [];
  for (let i = 0; i < 100; i++) {
    const all = (await parley.api('GET', `/v1/projects/${project}/debug`)).json.messages;
    got = all.filter((d) => BigInt(d.id) > lastId && (!node || d.node_id === node));
    if (enough(got)) break;
    if (i === 99) console.log('debug entries so far:', JSON.stringify(all.filter((d) => BigInt(d.id) > lastId)));
    await sleep(50);
  }
  for (const d of got) if (BigInt(d.id) > lastId) lastId = BigInt(d.id);
  return got;
}
const hasAll = (...ids) => (g) => ids.every((id) => g.some((e) => e.node_id === id));

const tab = { id: 't1', type: 'tab', label: 'lua' };
const dbg = (id) => ({ id, type: 'debug', z: 't1', active: true, complete: 'true', wires: [] });
const catcher = { id: 'c1', type: 'catch', z: 't1', scope: null, uncaught: false, wires: [['dc']] };

test('Lua that does not compile is refused at deploy, naming node, field and line', async () => {
  const good = await deploy([tab, { id: 'ok', type: 'function', z: 't1', func: 'return msg', wires: [[]] }]);
  assert.equal(good.status, 200, good.text);
  const r = await deploy([tab,
    { id: 'f1', type: 'function', z: 't1', func: 'local a = 1\nif a then', wires: [[]] },
    { id: 'f2', type: 'function', z: 't1', func: 'return msg', initialize: 'x = = 1', wires: [[]] },
    { id: 'f3', type: 'function', z: 't1', func: 'return msg', libs: [{ var: 'os', module: 'os' }], wires: [[]] },
    { id: 'f4', type: 'function', z: 't1', func: 'return msg', outputs: -1, wires: [] },
    { id: 'j1', type: 'join', z: 't1', mode: 'reduce', reduceExp: '$A+payload', wires: [[]] },
    { id: 's1', type: 'split', z: 't1', spltType: 'len', splt: '0', wires: [[]] },
    { id: 'r1', type: 'range', z: 't1', minin: 'x', maxin: 1, minout: 0, maxout: 1, wires: [[]] },
  ]);
  assert.equal(r.status, 400, r.text);
  const d = r.json.error.details;
  const find = (id, field) => d.find((p) => p.node_id === id && p.field === field);
  assert.match(find('f1', 'func').message, /Lua does not compile: func:2: 'end' expected/);
  assert.match(find('f2', 'initialize').message, /initialize:1:/);
  assert.match(find('f3', 'libs').message, /external modules are not supported/);
  assert.ok(find('f4', 'outputs'));
  assert.match(find('j1', 'mode').message, /JSONata/);
  assert.ok(find('s1', 'splt'));
  assert.ok(find('r1', 'minin'));
  // the running set is unchanged
  const cur = await parley.api('GET', `/v1/projects/${project}/flows`);
  assert.equal(cur.json.rev, good.json.rev);
});

test('outputs: a message, a list per output with several messages, node.send, nil', async () => {
  const r = await deploy([tab,
    { id: 'f', type: 'function', z: 't1', outputs: 3, wires: [['d1'], ['d2'], ['d3']],
      func: 'node.send({payload = "early"})\n' +
            'msg.payload = {n = 1, list = json.array(), none = null}\n' +
            'return {msg, {{payload = "a"}, {payload = "b"}}, nil}' },
    dbg('d1'), dbg('d2'), dbg('d3'),
  ]);
  assert.equal(r.status, 200, r.text);
  await inject('f');
  const got = await debugEntries((g) => g.filter((e) => e.node_id === 'd1').length >= 2 && hasAll('d2')(g) && g.filter((e) => e.node_id === 'd2').length >= 2);
  const d1 = got.filter((e) => e.node_id === 'd1').map((e) => e.msg);
  const d2 = got.filter((e) => e.node_id === 'd2').map((e) => e.msg.payload);
  assert.equal(d1.length, 2);
  assert.equal(d1[0].payload, 'early');
  assert.deepEqual(d1[1].payload, { n: 1, list: [], none: null });
  assert.deepEqual(d2, ['a', 'b']);
  assert.equal(got.filter((e) => e.node_id === 'd3').length, 0);
  // every message of the call carries the input's _msgid (Node-RED's sendResults)
  assert.equal(d1[1]._msgid, got.find((e) => e.node_id === 'd2').msg._msgid);
});

test('a looping function, a memory bomb and a sandbox escape are catchable errors; the project keeps running', async () => {
  const r = await deploy([tab,
    { id: 'loop', type: 'function', z: 't1', func: 'while true do end', wires: [['dx']] },
    { id: 'bomb', type: 'function', z: 't1', func: 'local t = {} for i = 1, 1e9 do t[i] = {i} end', wires: [['dx']] },
    { id: 'esc', type: 'function', z: 't1', func: 'os.execute("touch /tmp/parley-pwned")', wires: [['dx']] },
    { id: 'req', type: 'function', z: 't1', func: 'return require("io")', wires: [['dx']] },
    { id: 'ok', type: 'function', z: 't1', func: 'msg.payload = "still alive" return msg', wires: [['dx']] },
    catcher, dbg('dc'), dbg('dx'),
  ]);
  assert.equal(r.status, 200, r.text);
  for (const id of ['loop', 'bomb', 'esc', 'req', 'ok']) await inject(id);
  const got = await debugEntries((g) => g.filter((e) => e.node_id === 'dc').length >= 4 && hasAll('dx')(g));
  const errs = Object.fromEntries(got.filter((e) => e.node_id === 'dc').map((e) => [e.msg.error.source.id, e.msg.error.message]));
  assert.match(errs.loop, /instruction budget exceeded/);
  assert.match(errs.bomb, /memory limit exceeded/);
  assert.match(errs.esc, /attempt to call a nil value \(field 'execute'\)/);
  assert.match(errs.req, /require is not available in the sandbox/);
  assert.equal(got.find((e) => e.node_id === 'dx').msg.payload, 'still alive');
  // and again: the state recovered after the memory error
  await inject('ok');
  const again = await debugEntries(1, { node: 'dx' });
  assert.equal(again[0].msg.payload, 'still alive');
});

test('node.warn/error/status, On Start and On Stop, env.get', async () => {
  const r = await deploy([tab,
    { id: 'f', type: 'function', z: 't1', name: 'logger', wires: [['d1']],
      initialize: 'started = "yes"', finalize: 'node.warn("bye " .. started)',
      func: 'node.warn({a = 1})\nnode.error("bad " .. node.name)\n' +
            'node.status({fill = "green", shape = "dot", text = "ok"})\n' +
            'msg.payload = {started = started, id = node.id, path = env.get("NR_NODE_ID")}\nreturn msg' },
    { id: 'st', type: 'status', z: 't1', scope: null, wires: [['ds']] },
    dbg('d1'), dbg('ds'),
  ]);
  assert.equal(r.status, 200, r.text);
  await inject('f');
  const got = await debugEntries((g) => hasAll('d1', 'ds')(g) && g.filter((e) => e.node_id === 'f').length >= 2);
  const warn = got.find((e) => e.node_id === 'f' && e.level === 'warn');
  const err = got.find((e) => e.node_id === 'f' && e.level === 'error');
  assert.equal(warn.msg, '{"a":1}'); // a table is logged as its JSON text
  assert.equal(err.msg, 'bad logger');
  assert.deepEqual(got.find((e) => e.node_id === 'd1').msg.payload, { started: 'yes', id: 'f', path: 'f' });
  assert.deepEqual(got.find((e) => e.node_id === 'ds').msg.status.text, 'ok');
  // On Stop runs when the node is undeployed
  assert.equal((await deploy([tab])).status, 200);
  const bye = await debugEntries(1, { node: 'f' });
  assert.equal(bye[0].msg, 'bye yes');
});

test('context, flow and global survive a redeploy', async () => {
  const flows = [tab,
    { id: 'f', type: 'function', z: 't1', wires: [['d1']],
      func: 'local n = (context.get("n") or 0) + 1\ncontext.set("n", n)\n' +
            'flow.set("f", {n = n})\nglobal.set("g", n * 10)\n' +
            'msg.payload = {n, flow.get("f").n, global.get("g")}\nreturn msg' },
    dbg('d1'),
  ];
  assert.equal((await deploy(flows)).status, 200);
  await inject('f');
  await inject('f');
  let got = await debugEntries(2, { node: 'd1' });
  assert.deepEqual(got.map((e) => e.msg.payload), [[1, 1, 10], [2, 2, 20]]);
  flows[1].name = 'changed';
  assert.equal((await deploy(flows)).status, 200);
  await inject('f');
  got = await debugEntries(1, { node: 'd1' });
  assert.deepEqual(got[0].msg.payload, [3, 3, 30]);
});

test('split and join: strings in streams, arrays and objects back together', async () => {
  const r = await deploy([tab,
    { id: 'src', type: 'function', z: 't1', wires: [['sp']],
      func: 'return {{{payload = "a,b"}, {payload = "c,"}, {payload = "d"}}}' },
    { id: 'sp', type: 'split', z: 't1', splt: ',', spltType: 'str', stream: true, wires: [['dstream']] },
    { id: 'arr', type: 'function', z: 't1', wires: [['sa']], func: 'msg.payload = {1, 2, 3, 4, 5} return msg' },
    { id: 'sa', type: 'split', z: 't1', arraySplt: 2, wires: [['ja']] },
    { id: 'ja', type: 'join', z: 't1', mode: 'auto', wires: [['djoin']] },
    { id: 'obj', type: 'function', z: 't1', wires: [['so']], func: 'msg.payload = json.decode(\'{"x":1,"y":"two"}\') return msg' },
    { id: 'so', type: 'split', z: 't1', addname: 'topic', wires: [['jo', 'dparts']] },
    { id: 'jo', type: 'join', z: 't1', mode: 'auto', wires: [['djoin']] },
    { id: 'man', type: 'function', z: 't1', wires: [['jm']],
      func: 'for i = 1, 3 do node.send({payload = "p" .. i, topic = "k" .. i}) end' },
    { id: 'jm', type: 'join', z: 't1', mode: 'custom', build: 'string', joiner: '\\n', count: '3', wires: [['djoin']] },
    dbg('dstream'), dbg('djoin'), dbg('dparts'),
  ]);
  assert.equal(r.status, 200, r.text);
  await inject('src');
  let got = await debugEntries(2, { node: 'dstream' });
  // stream mode keeps the text after the last separator for the next message ("d" waits)
  assert.deepEqual(got.map((e) => e.msg.payload), ['a', 'bc']);
  await inject('arr');
  got = await debugEntries(1, { node: 'djoin' });
  assert.deepEqual(got[0].msg.payload, [1, 2, 3, 4, 5]);
  assert.equal(got[0].msg.parts, undefined);
  await inject('obj');
  got = await debugEntries((g) => hasAll('djoin')(g) && g.filter((e) => e.node_id === 'dparts').length >= 2);
  const parts = got.filter((e) => e.node_id === 'dparts').map((e) => [e.msg.topic, e.msg.payload, e.msg.parts.key, e.msg.parts.type]);
  assert.deepEqual(parts, [['x', 1, 'x', 'object'], ['y', 'two', 'y', 'object']]);
  assert.deepEqual(got.find((e) => e.node_id === 'djoin').msg.payload, { x: 1, y: 'two' });
  await inject('man');
  got = await debugEntries(1, { node: 'djoin' });
  assert.equal(got[0].msg.payload, 'p1\np2\np3');
});

test('range and json', async () => {
  const r = await deploy([tab,
    { id: 'v', type: 'function', z: 't1', wires: [['rs', 'rc', 'rr']], func: 'msg.payload = 15 return msg' },
    { id: 'rs', type: 'range', z: 't1', minin: 0, maxin: 10, minout: 0, maxout: 100, action: 'scale', wires: [['d1']] },
    { id: 'rc', type: 'range', z: 't1', minin: 0, maxin: 10, minout: 0, maxout: 100, action: 'clamp', wires: [['d2']] },
    { id: 'rr', type: 'range', z: 't1', minin: '0', maxin: '10', minout: '0', maxout: '3', action: 'roll', round: true, wires: [['d3']] },
    { id: 'o', type: 'function', z: 't1', wires: [['js']], func: 'msg.payload = {a = 0.1, b = json.array({1, 2})} return msg' },
    { id: 'js', type: 'json', z: 't1', pretty: true, wires: [['d4', 'back']] },
    { id: 'back', type: 'json', z: 't1', action: 'obj', wires: [['d5']] },
    dbg('d1'), dbg('d2'), dbg('d3'), dbg('d4'), dbg('d5'),
  ]);
  assert.equal(r.status, 200, r.text);
  await inject('v');
  await inject('o');
  const got = await debugEntries(hasAll('d1', 'd2', 'd3', 'd4', 'd5'));
  const p = (id) => got.find((e) => e.node_id === id).msg.payload;
  assert.equal(p('d1'), 150);
  assert.equal(p('d2'), 100);
  assert.equal(p('d3'), 2); // 15 rolls to 5, scaled to 1.5, rounded up
  assert.equal(p('d4'), '{\n    "a": 0.1,\n    "b": [\n        1,\n        2\n    ]\n}');
  assert.deepEqual(p('d5'), { a: 0.1, b: [1, 2] });
});

test('/metrics counts flow deploys, messages into nodes and node errors', async () => {
  const metrics = async () => {
    const r = await parley.api('GET', '/metrics', { auth: 'none' });
    assert.equal(r.status, 200);
    const v = {};
    for (const m of r.text.matchAll(/^(parley_flows_[a-z_]+) (\d+)$/gm)) v[m[1]] = Number(m[2]);
    return v;
  };
  const before0 = await metrics();
  for (const k of ['deploys_total', 'messages_total', 'errors_total', 'dropped_total', 'queued'])
    assert.ok(Number.isInteger(before0[`parley_flows_${k}`]), `parley_flows_${k} missing`);
  const r = await deploy([tab,
    { id: 'fine', type: 'function', z: 't1', func: 'return msg', wires: [['dm']] },
    { id: 'boom', type: 'function', z: 't1', func: 'error("boom")', wires: [['dm']] },
    dbg('dm'),
  ]);
  assert.equal(r.status, 200, r.text);
  await inject('fine');
  await debugEntries(1, { node: 'dm' });
  await inject('boom');
  await debugEntries(1, { node: 'boom' });
  const after1 = await metrics();
  assert.ok(after1.parley_flows_deploys_total >= before0.parley_flows_deploys_total + 1, JSON.stringify(after1));
  // the inject into fine, fine's message into dm, the inject into boom
  assert.ok(after1.parley_flows_messages_total >= before0.parley_flows_messages_total + 3, JSON.stringify(after1));
  assert.equal(after1.parley_flows_errors_total, before0.parley_flows_errors_total + 1);
  assert.equal(after1.parley_flows_dropped_total, 0);
});
