// contact_flows.test.mjs: where Flows and the contact center meet (wired in src/main.c).
// A deployed flow that takes an app's inbound messages keeps them out of the queue (issue
// 6: "unless a flow handles it"); without one they queue. Anonymizing a person also clears
// what flows keep about them (issue 6: "flow context entries keyed by that contact").
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startParley } from './lib/parley.mjs';
import { startWhatsApp, hubSignature } from './lib/fakes.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const WA_PNID = '106540352242977', WA_TOKEN = 'EAAG-wa-flows', WA_SECRET = 'wa-flows-secret';

async function waitFor(fn, what, ms = 8000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(40);
  }
}

describe('flows and the contact center', () => {
  let p, wa, app, pid, base;
  const admin = (method, path, body) => p.api(method, `${base}${path}`, { body });
  const deploy = async (flows) => {
    const r = await p.api('POST', `/v1/projects/${pid}/flows`, { body: { flows } });
    assert.equal(r.status, 200, r.text);
  };
  const inbound = async (from, text) => {
    const body = wa.webhook.message({ from, name: 'Customer', type: 'text', text: { body: text } });
    const r = await p.api('POST', `/channels/${app.id}/whatsapp`, { auth: 'none', body, headers: { 'Content-Type': 'application/json', ...hubSignature(WA_SECRET, body) } });
    assert.equal(r.status, 200, r.text);
  };
  const queued = async () => (await admin('GET', '/conversations')).json.conversations;

  before(async () => {
    wa = await startWhatsApp({ phoneNumberId: WA_PNID, tokens: [WA_TOKEN] });
    p = await startParley({ env: { PARLEY_CHANNELS_WHATSAPP_URL: wa.url } });
    pid = p.init.project_id;
    base = `/v1/projects/${pid}/contact`;
    app = await p.sdk().conversation.app.create({ appCreateRequestBody: { display_name: 'flows+contact', channel_credentials: [
      { channel: 'WHATSAPP', static_bearer: { claimed_identity: WA_PNID, token: WA_TOKEN }, callback_secret: WA_SECRET }] } });
    assert.equal((await admin('POST', '/channels', { app_id: app.id })).status, 200);
  });
  after(async () => { await p?.stop(); await wa?.close(); });

  test('the Hello world flow takes inbound messages; once it is gone they queue', async () => {
    await inbound('46700000101', 'hi there');
    const reply = await wa.waitFor((c) => c.kind === 'send' && c.json?.to === '46700000101');
    assert.match(JSON.stringify(reply.json), /Hello world!/);
    await sleep(300); // the contact consumer has seen the message by now (it runs per commit)
    assert.deepEqual(await queued(), [], 'a message a flow takes is not queued');

    await deploy([]);
    await inbound('46700000102', 'I need help');
    const rows = await waitFor(async () => { const q = await queued(); return q.length ? q : null; }, 'a queued conversation');
    assert.equal(rows.length, 1);
    assert.equal(wa.calls.filter((c) => c.kind === 'send' && c.json?.to === '46700000102').length, 0, 'no flow answered');
  });

  test('a flow bound to another app leaves this app to the queue', async () => {
    await deploy([
      { id: 'cfg', type: 'sinch-convapi-configuration', appId: '01ARZ3NDEKTSV4RRFFQ69G5FAV' },
      { id: 't2', type: 'tab', label: 'other app' },
      { id: 'rx2', type: 'sinch-received-message', z: 't2', name: 'other', convapiConfiguration: 'cfg', wires: [[]] },
    ]);
    const before = (await queued()).length;
    await inbound('46700000104', 'still me');
    await waitFor(async () => (await queued()).length === before + 1, 'the conversation queued');
  });

  test('anonymizing a person clears the flow context kept about them', async () => {
    await deploy([
      { id: 't1', type: 'tab', label: 'remember' },
      { id: 'rx', type: 'sinch-received-message', z: 't1', name: 'in', convapiConfiguration: '', wires: [['keep']] },
      { id: 'keep', type: 'function', z: 't1', name: 'keep', outputs: 1, func: "flow.set('seen_' .. msg.contact.contactId, msg.payload)\nreturn nil", wires: [[]] },
      { id: 'list', type: 'function', z: 't1', name: 'list', outputs: 1, func: 'local keys = flow.keys()\ntable.sort(keys)\nmsg.payload = keys\nreturn msg', wires: [['dbg']] },
      { id: 'dbg', type: 'debug', z: 't1', name: 'keys', active: true, tosidebar: true, complete: 'payload', targetType: 'msg', wires: [] },
    ]);
    await inbound('46700000103', 'my secret');
    await inbound('46700000105', 'someone else');
    const sdk = p.sdk();
    const contactOf = async (identity) => (await sdk.conversation.contact.list({ channel: 'WHATSAPP', identity })).data[0].id;
    const secret = await contactOf('46700000103'), other = await contactOf('46700000105');
    const keys = async () => {
      const seen = (await p.api('GET', `/v1/projects/${pid}/debug`)).json.messages.length;
      assert.equal((await p.api('POST', `/v1/projects/${pid}/inject/list`)).status, 200);
      const all = await waitFor(async () => { const m = (await p.api('GET', `/v1/projects/${pid}/debug`)).json.messages; return m.length > seen ? m : null; }, 'the keys on the debug stream');
      return all.at(-1).msg;
    };
    await waitFor(async () => (await keys()).length === 2, 'both contacts remembered');
    assert.deepEqual(await keys(), [`seen_${other}`, `seen_${secret}`].sort());

    const r = await p.api('POST', `${base}/gdpr/contacts/${secret}:anonymize`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await keys(), [`seen_${other}`], 'the anonymized person is gone from flow context; the other stays');
  });
});
