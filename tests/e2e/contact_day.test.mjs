// contact_day.test.mjs: a day in a contact center, over real HTTP against the built binary.
// An admin (the project access key) links apps, sets up skills, capacities, categories and
// rules, and invites agents, who log in. Customers write on WhatsApp and Messenger through
// fake providers (native inbound payloads); conversations land in the right categories;
// automatic allocation follows the rule exactly (who gets which conversation, in which
// order); a manual pick race has one winner; agents reply and the provider receives it;
// transfers, closes, a customer writing after close, the grace-period requeue; each agent's
// Server-Sent Events stream shows every step and resumes exactly with Last-Event-ID.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startParley } from './lib/parley.mjs';
import { startWhatsApp, startMessenger, hubSignature } from './lib/fakes.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const WA_PNID = '106540352242922', WA_TOKEN = 'EAAG-wa-day', WA_SECRET = 'wa-day-secret';
const MS_TOKEN = 'EAAB-page-day', MS_SECRET = 'ms-day-secret';
const NO_SUCH = '01ARZ3NDEKTSV4RRFFQ69G5FAV';

async function waitFor(fn, what, ms = 8000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(40);
  }
}

// ---- sessions (people's login API) ----

async function login(p, email, password) {
  const r = await p.api('POST', '/auth/login', { auth: 'none', body: { email, password } });
  assert.equal(r.status, 200, r.text);
  const token = /parley_session=([^;]+)/.exec(r.headers.get('set-cookie'))[1];
  return { token, csrf: r.json.csrf_token, id: r.json.user.id, email };
}

function as(p, s, method, path, body) {
  const headers = { Cookie: `parley_session=${s.token}` };
  if (method !== 'GET') headers['X-CSRF-Token'] = s.csrf;
  return p.api(method, path, { auth: 'none', body, headers });
}

async function invite(p, email, role) {
  const r = await p.api('POST', `/v1/projects/${p.init.project_id}/contact/invitations`, { body: { email, role } });
  assert.equal(r.status, 201, r.text);
  const token = r.json.link.split('/').pop();
  const a = await p.api('POST', `/auth/invitations/${token}`, { auth: 'none', body: { password: 'correct horse battery' } });
  assert.equal(a.status, 201, a.text);
  return login(p, email, 'correct horse battery');
}

// ---- an SSE client over fetch ----

function sse(url, headers, lastEventId) {
  const ctl = new AbortController();
  const h = { Accept: 'text/event-stream', ...headers };
  if (lastEventId !== undefined) h['Last-Event-ID'] = String(lastEventId);
  const stream = { events: [], status: 0, closed: false };
  stream.ready = (async () => {
    const res = await fetch(url, { headers: h, signal: ctl.signal });
    stream.status = res.status;
    if (res.status !== 200) return;
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const ev = { id: null, event: 'message', data: '' };
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              const [k, ...rest] = line.split(':');
              const v = rest.join(':').replace(/^ /, '');
              if (k === 'id') ev.id = Number(v);
              else if (k === 'event') ev.event = v;
              else if (k === 'data') ev.data += v;
            }
            if (ev.id !== null) stream.events.push({ ...ev, data: JSON.parse(ev.data) });
          }
        }
      } catch { /* aborted */ }
      stream.closed = true;
    })();
  })();
  stream.close = () => ctl.abort();
  stream.find = (pred) => stream.events.find(pred);
  stream.wait = (pred, what) => waitFor(() => stream.find(pred), `${what} on the event stream`);
  return stream;
}

describe('a day in a contact center', () => {
  let p, pid, wa, ms, app, base;
  let alice, bob, carol, sam;
  const streams = {};
  const conv = {}; // customer key -> contact conversation row (as first seen)

  const admin = (method, path, body) => p.api(method, `${base}${path}`, { body });
  const inboundWa = async (from, name, text) => {
    const body = wa.webhook.message({ from, name, type: 'text', text: { body: text } });
    const r = await p.api('POST', `/channels/${app.id}/whatsapp`, { auth: 'none', body, headers: { 'Content-Type': 'application/json', ...hubSignature(WA_SECRET, body) } });
    assert.equal(r.status, 200, r.text);
  };
  const inboundMs = async (sender, text) => {
    const body = ms.webhook.message({ sender, text });
    const r = await p.api('POST', `/channels/${app.id}/messenger`, { auth: 'none', body, headers: { 'Content-Type': 'application/json', ...hubSignature(MS_SECRET, body) } });
    assert.equal(r.status, 200, r.text);
  };
  // All contact conversations (supervisor view), newest first.
  const all = async (status) => (await admin('GET', `/conversations${status ? `?status=${status}` : ''}`)).json.conversations;
  const byIdentity = {}; // customer key -> Conversation API contact id
  // A customer writes and its contact conversation appears; returns the row.
  const customerWrites = async (key, send, expectNew = true) => {
    const before = new Set((await all()).map((c) => c.id));
    await send();
    if (!expectNew) return null;
    const row = await waitFor(async () => (await all()).find((c) => !before.has(c.id)), `the conversation of ${key}`);
    conv[key] = row;
    return row;
  };
  const statusOf = async (key) => (await admin('GET', `/conversations/${conv[key].id}`)).json;
  const categories = {};

  before(async () => {
    wa = await startWhatsApp({ phoneNumberId: WA_PNID, tokens: [WA_TOKEN] });
    ms = await startMessenger({ tokens: [MS_TOKEN] });
    p = await startParley({ env: {
      PARLEY_CHANNELS_WHATSAPP_URL: wa.url, PARLEY_CHANNELS_MESSENGER_URL: ms.url,
      PARLEY_CONTACT_OFFLINE_GRACE_S: '1', PARLEY_CONTACT_STATS_INTERVAL_S: '1',
    } });
    pid = p.init.project_id;
    base = `/v1/projects/${pid}/contact`;
    // New projects start with the Hello world flow, which takes every inbound message (and
    // so keeps it out of the queue): this contact center runs without flows.
    const noFlows = await p.api('POST', `/v1/projects/${pid}/flows`, { body: { flows: [] } });
    assert.equal(noFlows.status, 200, noFlows.text);
    const sinch = p.sdk();
    app = await sinch.conversation.app.create({ appCreateRequestBody: { display_name: 'support', channel_credentials: [
      { channel: 'WHATSAPP', static_bearer: { claimed_identity: WA_PNID, token: WA_TOKEN }, callback_secret: WA_SECRET },
      { channel: 'MESSENGER', static_token: { token: MS_TOKEN }, callback_secret: MS_SECRET },
    ] } });
    // A known customer with metadata (the metadata rule routes her).
    const c = await sinch.conversation.contact.create({ contactCreateRequestBody: {
      channel_identities: [{ channel: 'WHATSAPP', identity: '46700000005' }], language: 'FR', display_name: 'Amélie',
      metadata: JSON.stringify({ lang: 'fr-CA', tier: 'gold' }) } });
    byIdentity.F1 = c.id;
  });

  after(async () => {
    for (const s of Object.values(streams)) s.close();
    await sleep(50);
    await p?.stop();
    await wa?.close();
    await ms?.close();
  });

  test('morning: the admin configures the contact center, with precise errors for bad input', async () => {
    // Linked apps.
    let r = await admin('POST', '/channels', { app_id: NO_SUCH });
    assert.equal(r.status, 404, r.text);
    r = await admin('POST', '/channels', { app_id: app.id });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual((await admin('GET', '/channels')).json.channels.map((c) => c.app_id), [app.id]);
    // Skills: create, rename, unknown -> 404, duplicate -> 409.
    const skill = async (name) => { const s = await admin('POST', '/skills', { name }); assert.equal(s.status, 200, s.text); return s.json; };
    const english = await skill('english'), french = await skill('francais'), billing = await skill('billing');
    r = await admin('PATCH', `/skills/${french.id}`, { name: 'french' });
    assert.equal(r.status, 200);
    assert.equal(r.json.name, 'french');
    assert.equal((await admin('PATCH', `/skills/${NO_SUCH}`, { name: 'x' })).status, 404);
    assert.equal((await admin('DELETE', `/skills/${NO_SUCH}`)).status, 404);
    r = await admin('POST', '/skills', { name: 'billing' });
    assert.equal(r.status, 409);
    const tmp = await skill('temporary');
    assert.equal((await admin('DELETE', `/skills/${tmp.id}`)).status, 200);
    assert.deepEqual((await admin('GET', '/skills')).json.skills.map((s) => s.name), ['billing', 'english', 'french']);

    // People: three agents and a supervisor, invited by the admin, logged in.
    alice = await invite(p, 'alice@example.com', 'agent');
    bob = await invite(p, 'bob@example.com', 'agent');
    carol = await invite(p, 'carol@example.com', 'agent');
    sam = await invite(p, 'sam@example.com', 'supervisor');

    // Agents' skills and capacities (default 5; below 0 refused, nothing changed).
    const assign = async (u, s, active = true) => { const x = await admin('PUT', `/agents/${u.id}/skills/${s.id}`, { active }); assert.equal(x.status, 200, x.text); return x.json; };
    await assign(alice, english); await assign(alice, billing);
    await assign(bob, english); await assign(bob, billing, false); // inactive
    await assign(carol, french);
    assert.equal((await admin('PUT', `/agents/${alice.id}/skills/${NO_SUCH}`, {})).status, 404);
    r = await admin('GET', `/agents/${alice.id}`);
    assert.equal(r.json.capacity, 5);
    r = await admin('PATCH', `/agents/${alice.id}`, { capacity: -1 });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /capacity/);
    assert.equal((await admin('GET', `/agents/${alice.id}`)).json.capacity, 5);
    for (const [u, cap] of [[alice, 2], [bob, 1], [carol, 1]]) {
      r = await admin('PATCH', `/agents/${u.id}`, { capacity: cap });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.capacity, cap);
    }
    // An agent may toggle its own skill, not assign one nor change capacity.
    r = await as(p, bob, 'PATCH', `${base}/me/skills/${billing.id}`, { active: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.skills.find((s) => s.name === 'billing').active, true);
    r = await as(p, bob, 'PATCH', `${base}/me/skills/${billing.id}`, { active: false });
    assert.equal(r.json.skills.find((s) => s.name === 'billing').active, false);
    assert.equal((await as(p, bob, 'PUT', `${base}/agents/${bob.id}/skills/${french.id}`, {})).status, 403);
    assert.equal((await as(p, bob, 'PATCH', `${base}/agents/${bob.id}`, { capacity: 9 })).status, 403);
    assert.equal((await as(p, bob, 'PATCH', `${base}/agents/${alice.id}`, { presence: 'online' })).status, 403);
    assert.equal((await as(p, bob, 'POST', `${base}/skills`, { name: 'x' })).status, 403);
    assert.equal((await as(p, sam, 'POST', `${base}/categories`, { name: 'x' })).status, 403);

    // Categories and rules.
    const category = async (body) => { const c = await admin('POST', '/categories', body); assert.equal(c.status, 200, c.text); categories[body.name] = c.json; return c.json; };
    await category({ name: 'billing', skills: [english.id, billing.id], priority: 5, target_answer_s: 60 });
    await category({ name: 'french', skills: [french.id], priority: 0, target_answer_s: 120 });
    await category({ name: 'general', skills: [english.id], default: true });
    r = await admin('POST', '/categories', { name: 'bad', skills: [NO_SUCH] });
    assert.equal(r.status, 404);
    assert.match(r.json.error.message, /skill/);
    const rule = async (body) => { const x = await admin('POST', '/rules', body); assert.equal(x.status, 200, x.text); return x.json; };
    await rule({ category_id: categories.billing.id, keywords: ['invoice', 'refund'] });
    await rule({ category_id: categories.french.id, channel: 'MESSENGER', keywords: ['bonjour'] });
    await rule({ category_id: categories.french.id, metadata_key: 'lang', metadata_value: '^fr(-[A-Z]{2})?$' });
    r = await admin('POST', '/rules', { category_id: categories.french.id, metadata_key: 'lang', metadata_value: '(fr' });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /bad pattern "\(fr"/);
    r = await admin('POST', '/rules', { category_id: NO_SUCH });
    assert.equal(r.status, 404);
    assert.equal((await admin('GET', '/rules')).json.rules.length, 3);
    assert.equal((await admin('GET', '/categories')).json.categories.length, 3);

    // Everyone opens the workspace's event stream.
    for (const [k, s] of Object.entries({ alice, bob, carol, sam }))
      streams[k] = sse(`${p.url}${base}/events`, { Cookie: `parley_session=${s.token}` });
    await Promise.all(Object.values(streams).map((s) => s.ready));
    for (const s of Object.values(streams)) assert.equal(s.status, 200);
  });

  test('customers write on several channels: each conversation lands in the right category', async () => {
    await customerWrites('W1', () => inboundWa('46700000001', 'Walt', 'I need a REFUND, please'));
    await customerWrites('M1', () => inboundMs('5510000000000001', 'Bonjour, une question'));
    await customerWrites('W2', () => inboundWa('46700000002', 'Wendy', 'hello there'));
    await customerWrites('W3', () => inboundWa('46700000003', 'Will', 'where is my invoice?'));
    await customerWrites('F1', () => inboundWa('46700000005', 'Amélie', 'hello'));
    const cat = (k) => Object.keys(categories).find((n) => categories[n].id === conv[k].category_id);
    assert.deepEqual(['W1', 'M1', 'W2', 'W3', 'F1'].map(cat), ['billing', 'french', 'general', 'billing', 'french']);
    assert.equal(conv.M1.channel, 'MESSENGER');
    assert.equal(conv.F1.contact_id, byIdentity.F1);
    for (const k of Object.keys(conv)) assert.equal(conv[k].status, 'waiting');
    // Every stream saw the queue grow, in order.
    const added = await waitFor(() => {
      const a = streams.sam.events.filter((e) => e.event === 'queue' && e.data.action === 'added');
      return a.length === 5 && a;
    }, 'five queue events');
    assert.deepEqual(added.map((e) => e.data.conversation_id), ['W1', 'M1', 'W2', 'W3', 'F1'].map((k) => conv[k].id));
    // The supervisor sees all five waiting, higher priority first, then by waiting time.
    const q = (await as(p, sam, 'GET', `${base}/queue`)).json.conversations.map((c) => c.id);
    assert.deepEqual(q, ['W1', 'W3', 'M1', 'W2', 'F1'].map((k) => conv[k].id));
    // An agent sees only what they are qualified for: carol (french) sees M1 and F1.
    const cq = (await as(p, carol, 'GET', `${base}/queue`)).json.conversations.map((c) => c.id);
    assert.deepEqual(cq, ['M1', 'F1'].map((k) => conv[k].id));
  });

  test('automatic allocation follows the rule exactly', async () => {
    const online = async (s) => { const r = await as(p, s, 'PATCH', `${base}/me`, { presence: 'online' }); assert.equal(r.status, 200, r.text); };
    const assignments = (k) => streams[k].events.filter((e) => e.event === 'assignment').map((e) => e.data.conversation.id);
    // Bob (english; billing inactive) can only take general: W2.
    await online(bob);
    await waitFor(async () => (await statusOf('W2')).agent_id === bob.id, 'W2 to bob');
    assert.equal((await statusOf('W1')).status, 'waiting');
    // Alice (english + billing, capacity 2): billing has priority 5: W1 then W3.
    await sleep(20);
    await online(alice);
    await streams.alice.wait((e) => e.event === 'assignment' && e.data.conversation.id === conv.W3.id, 'W3 for alice');
    assert.deepEqual(assignments('alice'), [conv.W1.id, conv.W3.id]);
    // Carol (french, capacity 1): M1 (waited longest); F1 keeps waiting.
    await online(carol);
    await streams.carol.wait((e) => e.event === 'assignment', 'carol assignment');
    assert.deepEqual(assignments('carol'), [conv.M1.id]);
    assert.equal((await statusOf('F1')).status, 'waiting');
    await streams.bob.wait((e) => e.event === 'assignment', 'bob assignment');
    assert.deepEqual(assignments('bob'), [conv.W2.id]);

    // Capacity raised: nothing general waits; then new general conversations arrive.
    for (const u of [alice, bob]) assert.equal((await admin('PATCH', `/agents/${u.id}`, { capacity: 3 })).status, 200);
    // W4: bob has 1 active, alice 2 -> fewest active: bob.
    await customerWrites('W4', () => inboundWa('46700000004', 'Wes', 'hi'));
    await waitFor(async () => (await statusOf('W4')).agent_id === bob.id, 'W4 to bob');
    // W5: both have 2 -> idle longest: bob (online before alice, nothing ended yet).
    await customerWrites('W5', () => inboundWa('46700000006', 'Wim', 'hi'));
    await waitFor(async () => (await statusOf('W5')).agent_id === bob.id, 'W5 to bob');
    // Bob closes W2 (3 -> 2, and he is now the most recently idle); W6: alice (2, idle longer).
    let r = await as(p, bob, 'POST', `${base}/conversations/${conv.W2.id}:close`, { wrap_up: 'greeted' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'closed');
    assert.equal(r.json.wrap_up, 'greeted');
    await customerWrites('W6', () => inboundWa('46700000007', 'Wyn', 'hi'));
    await waitFor(async () => (await statusOf('W6')).agent_id === alice.id, 'W6 to alice');
    // The streams show the same, in the same order (events arrive asynchronously).
    await streams.alice.wait((e) => e.event === 'assignment' && e.data.conversation.id === conv.W6.id, 'W6 for alice');
    await streams.bob.wait((e) => e.event === 'assignment' && e.data.conversation.id === conv.W5.id, 'W5 for bob');
    assert.deepEqual(assignments('bob'), [conv.W2.id, conv.W4.id, conv.W5.id]);
    assert.deepEqual(assignments('alice'), [conv.W1.id, conv.W3.id, conv.W6.id]);
    // My conversations.
    const mine = (await as(p, alice, 'GET', `${base}/me/conversations`)).json.conversations.map((c) => c.id).sort();
    assert.deepEqual(mine, [conv.W1.id, conv.W3.id, conv.W6.id].sort());
  });

  test('manual pick: the queue view, and a race with exactly one winner', async () => {
    for (const s of [alice, bob]) assert.equal((await as(p, s, 'PATCH', `${base}/me`, { auto_allocate: false })).status, 200);
    await customerWrites('W7', () => inboundWa('46700000008', 'Xena', 'hello, anyone?'));
    await sleep(100);
    assert.equal((await statusOf('W7')).status, 'waiting'); // auto-allocate is off for both
    assert.ok((await as(p, bob, 'GET', `${base}/queue`)).json.conversations.some((c) => c.id === conv.W7.id));
    assert.ok(!(await as(p, carol, 'GET', `${base}/queue`)).json.conversations.some((c) => c.id === conv.W7.id));
    // Carol lacks english: she may not pick it.
    assert.equal((await as(p, carol, 'POST', `${base}/queue/${conv.W7.id}:pick`)).status, 403);
    const [ra, rb] = await Promise.all([alice, bob].map((s) => as(p, s, 'POST', `${base}/queue/${conv.W7.id}:pick`)));
    assert.deepEqual([ra.status, rb.status].sort(), [200, 409]);
    const loser = ra.status === 409 ? ra : rb;
    assert.equal(loser.json.error.status, 'ABORTED');
    const winner = ra.status === 200 ? alice : bob;
    conv.W7.winner = winner;
    assert.equal((await statusOf('W7')).agent_id, winner.id);
    const key = winner === alice ? 'alice' : 'bob';
    await streams[key].wait((e) => e.event === 'assignment' && e.data.reason === 'picked' && e.data.conversation.id === conv.W7.id, 'picked assignment');
    // A pick of a taken conversation is 409 as well.
    assert.equal((await as(p, carol, 'POST', `${base}/queue/${conv.W1.id}:pick`)).status, 409);
  });

  test('agents reply (text, choices, media), write internal notes, and see customer messages and delivery', async () => {
    const w = conv.W7.winner;
    const key = w === alice ? 'alice' : 'bob';
    let r = await as(p, w, 'POST', `${base}/conversations/${conv.W7.id}:reply`, { text: 'Hello Xena, how can I help?' });
    assert.equal(r.status, 200, r.text);
    const sent = await wa.waitFor((c) => c.kind === 'send' && c.json?.to === '46700000008' && c.json?.text?.body === 'Hello Xena, how can I help?');
    r = await as(p, w, 'POST', `${base}/conversations/${conv.W7.id}:reply`, { choices: { text: 'Pick one', options: ['Billing', 'Other'] } });
    assert.equal(r.status, 200, r.text);
    await wa.waitFor((c) => c.kind === 'send' && c.json?.to === '46700000008' && c.json?.type === 'interactive');
    r = await as(p, w, 'POST', `${base}/conversations/${conv.W7.id}:reply`, { media: { url: 'https://example.com/guide.pdf' } });
    assert.equal(r.status, 200, r.text);
    await wa.waitFor((c) => c.kind === 'send' && c.json?.to === '46700000008' && c.json?.type === 'document');
    assert.equal((await as(p, w, 'POST', `${base}/conversations/${conv.W7.id}:reply`, { text: 'a', media: { url: 'x' } })).status, 400);
    // Someone else's conversation: 403.
    const other = w === alice ? bob : alice;
    assert.equal((await as(p, other, 'POST', `${base}/conversations/${conv.W7.id}:reply`, { text: 'hi' })).status, 403);
    // An internal note is stored, never sent.
    const sends = wa.calls.filter((c) => c.kind === 'send').length;
    r = await as(p, w, 'POST', `${base}/conversations/${conv.W7.id}/notes`, { text: 'VIP; be nice' });
    assert.equal(r.status, 200, r.text);
    await sleep(200);
    assert.equal(wa.calls.filter((c) => c.kind === 'send').length, sends);
    r = await as(p, w, 'GET', `${base}/conversations/${conv.W7.id}`);
    assert.deepEqual(r.json.notes.map((n) => n.text), ['VIP; be nice']);
    // The transcript comes from the Conversation API store.
    r = await as(p, w, 'GET', `${base}/conversations/${conv.W7.id}/transcript`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.messages[0].contact_message.text_message.text, 'hello, anyone?');
    assert.equal(r.json.messages[1].app_message.text_message.text, 'Hello Xena, how can I help?');
    assert.equal(r.json.messages.length, 4);
    // The provider reports delivery: the agent's stream shows it.
    const receipt = wa.webhook.status({ id: sent.id, status: 'delivered', recipient: '46700000008' });
    r = await p.api('POST', `/channels/${app.id}/whatsapp`, { auth: 'none', body: receipt, headers: { 'Content-Type': 'application/json', ...hubSignature(WA_SECRET, receipt) } });
    assert.equal(r.status, 200);
    await streams[key].wait((e) => e.event === 'delivery' && e.data.conversation_id === conv.W7.id && e.data.status === 'DELIVERED', 'delivery status');
    // The customer writes again: a message event for the agent, no new conversation.
    await customerWrites('W7b', () => inboundWa('46700000008', 'Xena', 'Billing, please'), false);
    const m = await streams[key].wait((e) => e.event === 'message' && e.data.conversation_id === conv.W7.id, 'customer message');
    assert.equal(m.data.message.contact_message.text_message.text, 'Billing, please');
  });

  test('transfers to an agent and to a category, closes, and a customer writing after close', async () => {
    // Alice hands W1 to carol (an agent) and W3 to the french category.
    let r = await as(p, alice, 'POST', `${base}/conversations/${conv.W1.id}:transfer`, { agent_id: carol.id });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.agent_id, carol.id);
    await streams.carol.wait((e) => e.event === 'assignment' && e.data.reason === 'transferred' && e.data.conversation.id === conv.W1.id, 'transfer to carol');
    await streams.alice.wait((e) => e.event === 'unassigned' && e.data.conversation_id === conv.W1.id, 'alice loses W1');
    assert.equal((await as(p, alice, 'POST', `${base}/conversations/${conv.W3.id}:transfer`, { category_id: NO_SUCH })).status, 404);
    assert.equal((await as(p, alice, 'POST', `${base}/conversations/${conv.W3.id}:transfer`, {})).status, 400);
    r = await as(p, alice, 'POST', `${base}/conversations/${conv.W3.id}:transfer`, { category_id: categories.french.id });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'waiting'); // carol is full (M1 + W1)
    assert.equal(r.json.queued_at, conv.W3.queued_at); // keeps its place
    // Carol closes M1: still at capacity (W1), so nothing is allocated; then W1: W3 comes
    // to her before F1, because W3 has waited longer.
    r = await as(p, carol, 'POST', `${base}/conversations/${conv.M1.id}:close`, { wrap_up: 'answered in French' });
    assert.equal(r.status, 200, r.text);
    await sleep(100);
    assert.equal((await statusOf('W3')).status, 'waiting');
    r = await as(p, carol, 'POST', `${base}/conversations/${conv.M1.id}:reply`, { text: 'encore?' });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.status, 'FAILED_PRECONDITION');
    assert.equal((await as(p, carol, 'POST', `${base}/conversations/${conv.M1.id}:close`, {})).status, 400);
    r = await as(p, carol, 'POST', `${base}/conversations/${conv.W1.id}:close`, {});
    assert.equal(r.status, 200, r.text);
    await waitFor(async () => (await statusOf('W3')).agent_id === carol.id, 'W3 to carol');
    assert.equal((await statusOf('F1')).status, 'waiting');
    // The Messenger customer writes again after close: a new conversation, in both APIs.
    const again = await customerWrites('M1b', () => inboundMs('5510000000000001', 'Bonjour, encore moi'));
    assert.notEqual(again.id, conv.M1.id);
    assert.notEqual(again.conversation_id, conv.M1.conversation_id);
    assert.equal(again.category_id, categories.french.id);
    const old = await p.api('GET', `/v1/projects/${pid}/conversations/${conv.M1.conversation_id}`);
    assert.equal(old.json.active, false);
  });

  test('an agent going offline keeps conversations for the grace period, then they requeue in place', async () => {
    const row = await statusOf('W3');
    let r = await as(p, carol, 'PATCH', `${base}/me`, { presence: 'offline' });
    assert.equal(r.status, 200, r.text);
    assert.equal((await statusOf('W3')).agent_id, carol.id); // within the 1 s grace
    await streams.carol.wait((e) => e.event === 'unassigned' && e.data.conversation_id === conv.W3.id && e.data.reason === 'offline', 'grace requeue');
    const back = await statusOf('W3');
    assert.equal(back.status, 'waiting');
    assert.equal(back.queued_at, row.queued_at);
    // Original position: ahead of F1 and M1b in the french queue.
    const q = (await as(p, sam, 'GET', `${base}/queue`)).json.conversations.filter((c) => c.category_id === categories.french.id).map((c) => c.id);
    assert.deepEqual(q, [conv.W3.id, conv.F1.id, conv.M1b.id]);
    // The dashboard shows it.
    r = await as(p, sam, 'GET', `${base}/dashboard`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.categories.find((c) => c.name === 'french').waiting, 3);
    assert.equal(r.json.agents_online, 2);
    assert.ok(r.json.longest_wait_s >= 0);
    assert.ok(r.json.answered_within_target > 0 && r.json.answered_within_target <= 1);
    r = await as(p, bob, 'GET', `${base}/dashboard`);
    assert.equal(r.json.my_handled_today, 1);
    // Carol comes back: W3 first.
    assert.equal((await as(p, carol, 'PATCH', `${base}/me`, { presence: 'online' })).status, 200);
    await waitFor(async () => (await statusOf('W3')).agent_id === carol.id, 'W3 back to carol');
    assert.equal((await statusOf('F1')).status, 'waiting');
    // Stats ticks arrive on every stream.
    await streams.sam.wait((e) => e.event === 'stats' && e.data.waiting === 2, 'a stats tick');
  });

  test('the event stream resumes exactly with Last-Event-ID; events have increasing ids', async () => {
    const seen = streams.alice.events;
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].id > seen[i - 1].id);
    const from = seen.find((e) => e.event === 'assignment');
    const want = seen.filter((e) => e.id > from.id).slice(0, 5);
    const again = sse(`${p.url}${base}/events`, { Cookie: `parley_session=${alice.token}` }, from.id);
    streams.alice2 = again;
    await again.ready;
    await waitFor(() => again.events.length >= want.length, 'replayed events');
    assert.deepEqual(again.events.slice(0, want.length).map((e) => [e.id, e.event]), want.map((e) => [e.id, e.event]));
    // A bad Last-Event-ID is refused; no session is refused.
    const bad = sse(`${p.url}${base}/events`, { Cookie: `parley_session=${alice.token}` }, 'abc');
    await bad.ready;
    assert.equal(bad.status, 400);
    const anon = await p.api('GET', `${base}/events`, { auth: 'none' });
    assert.equal(anon.status, 401);
  });

  test('anonymizing a customer blanks their notes, wrap-ups and message copies in the event log', async () => {
    const w = conv.W7.winner;
    let r = await as(p, w, 'POST', `${base}/conversations/${conv.W7.id}:close`, { wrap_up: 'Xena wants billing help' });
    assert.equal(r.status, 200, r.text);
    r = await p.api('POST', `${base}/gdpr/contacts/${conv.W7.contact_id}:anonymize`);
    assert.equal(r.status, 200, r.text);
    r = await admin('GET', `/conversations/${conv.W7.id}`);
    assert.equal(r.json.wrap_up, '[anonymized]');
    assert.deepEqual(r.json.notes.map((n) => n.text), ['[anonymized]']);
    assert.equal(r.json.status, 'closed'); // the row and its times stay
    const replay = sse(`${p.url}${base}/events`, { Cookie: `parley_session=${w.token}` }, 0);
    streams.replay = replay;
    await replay.ready;
    await waitFor(() => replay.events.some((e) => e.event === 'closed' && e.data.conversation.id === conv.W7.id), 'the replay');
    const copies = replay.events.filter((e) => e.event === 'message' && e.data.conversation_id === conv.W7.id);
    assert.ok(copies.length >= 1);
    for (const e of copies) assert.deepEqual(e.data, { conversation_id: conv.W7.id, anonymized: true, event_time: e.data.event_time });
    assert.ok(!JSON.stringify(replay.events).includes('Billing, please'));
  });
});

describe('contact routing: the role matrix of every endpoint', () => {
  let p, base, users;
  before(async () => {
    p = await startParley();
    base = `/v1/projects/${p.init.project_id}/contact`;
    users = {
      admin: await login(p, p.init.admin_email, p.init.admin_password),
      supervisor: await invite(p, 'sup@example.com', 'supervisor'),
      agent: await invite(p, 'agent@example.com', 'agent'),
      dpo: await invite(p, 'dpo@example.com', 'dpo'),
    };
  });
  after(async () => { await p.stop(); });

  test('each role gets 403 exactly where it should, and no session gets 401', async () => {
    const X = NO_SUCH;
    // [method, path (SELF = the caller), body, roles allowed]
    const matrix = [
      ['GET', '/settings', null, 'AS'], ['PATCH', '/settings', { offline_grace_s: 120 }, 'A'],
      ['GET', '/channels', null, 'AS'], ['POST', '/channels', { app_id: X }, 'A'], ['DELETE', `/channels/${X}`, null, 'A'],
      ['GET', '/skills', null, 'ASG'], ['POST', '/skills', { name: '' }, 'A'], ['PATCH', `/skills/${X}`, { name: 'n' }, 'A'], ['DELETE', `/skills/${X}`, null, 'A'],
      ['GET', '/agents', null, 'AS'], ['GET', '/agents/SELF', null, 'ASG'], ['PATCH', '/agents/SELF', { presence: 'away' }, 'ASG'],
      ['PUT', `/agents/SELF/skills/${X}`, {}, 'A'], ['PATCH', `/agents/SELF/skills/${X}`, { active: true }, 'ASG'], ['DELETE', `/agents/SELF/skills/${X}`, null, 'A'],
      ['GET', '/me', null, 'ASG'], ['PATCH', '/me', { presence: 'away' }, 'ASG'], ['PATCH', `/me/skills/${X}`, { active: true }, 'ASG'],
      ['GET', '/categories', null, 'ASG'], ['GET', `/categories/${X}`, null, 'ASG'], ['POST', '/categories', { name: '' }, 'A'],
      ['PATCH', `/categories/${X}`, { name: 'n' }, 'A'], ['DELETE', `/categories/${X}`, null, 'A'],
      ['GET', '/rules', null, 'AS'], ['POST', '/rules', { category_id: X }, 'A'], ['PATCH', `/rules/${X}`, {}, 'A'], ['DELETE', `/rules/${X}`, null, 'A'],
      ['GET', '/queue', null, 'ASG'], ['POST', `/queue/${X}:pick`, null, 'ASG'], ['GET', '/dashboard', null, 'ASG'],
      ['GET', '/conversations', null, 'AS'], ['GET', '/me/conversations', null, 'ASG'],
      ['GET', `/conversations/${X}`, null, 'ASG'], ['GET', `/conversations/${X}/transcript`, null, 'ASG'],
      ['POST', `/conversations/${X}:reply`, { text: 'x' }, 'ASG'], ['POST', `/conversations/${X}/notes`, { text: 'x' }, 'ASG'],
      ['POST', `/conversations/${X}:transfer`, { category_id: X }, 'ASG'], ['POST', `/conversations/${X}:close`, {}, 'ASG'],
    ];
    const letter = { admin: 'A', supervisor: 'S', agent: 'G', dpo: 'D' };
    const wrong = [];
    for (const [method, path, body, roles] of matrix) {
      for (const [role, s] of Object.entries(users)) {
        const r = await as(p, s, method, base + path.replace('SELF', s.id), body ?? undefined);
        const allowed = roles.includes(letter[role]);
        if ((r.status === 403) === allowed || r.status === 401 || r.status >= 500) wrong.push(`${role} ${method} ${path}: ${r.status} ${r.text.slice(0, 120)}`);
      }
      const anon = await p.api(method, base + path.replace('SELF', users.agent.id), { auth: 'none', body: body ?? undefined });
      if (anon.status !== 401) wrong.push(`anonymous ${method} ${path}: ${anon.status}`);
    }
    assert.deepEqual(wrong, []);
    // The access key passes everywhere (no 401/403).
    const k = await p.api('GET', `${base}/rules`);
    assert.equal(k.status, 200);
  });
});
