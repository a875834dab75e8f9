// retention_modules.test.mjs: the retention of the contact center (issue #7 item 3) and of
// Flows (item 4), driven by `parley retention run --as-of`. Data is made through the real
// APIs: customers write through a fake WhatsApp / Telegram provider (native webhooks), an
// agent logs in, is allocated the conversation, writes a note and closes it with a
// wrap-up; a flow waits for a customer's answer (sinch-send "await response") and hands
// another conversation over to the contact center. Only Flows' inbox rows (conversation
// events between the consumer and the flow, normally gone in milliseconds) are written
// with SQL. Everything is created "now" (the server's real clock), and each sweep runs as
// if it were a day before or a day after each TTL; the checks read the API and, for rows
// the API does not show, the test's SQLite file.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startParley, runCli } from './lib/parley.mjs';
import { startWhatsApp, hubSignature } from './lib/fakes.mjs';
import { startReceiver } from './lib/receiver.mjs';

const DAY = 86400000;
const iso = (ms) => new Date(ms).toISOString();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ANON = '[anonymized]';

function sql(p, stmt) {
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', p.dataDir + '/parley.db', stmt], { encoding: 'utf8' }).trim();
}

async function sweep(p, asOfMs) {
  const r = await runCli(['retention', 'run', '--as-of', iso(asOfMs), '--data-dir', p.dataDir]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).removed;
}

async function waitFor(fn, what, ms = 8000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(40);
  }
}

// ---- a contact center with one agent, on WhatsApp ----

const WA_PNID = '106540352242977', WA_TOKEN = 'EAAG-wa-ret', WA_SECRET = 'wa-ret-secret';

async function contactCenter() {
  const wa = await startWhatsApp({ phoneNumberId: WA_PNID, tokens: [WA_TOKEN] });
  const p = await startParley({ env: { PARLEY_CHANNELS_WHATSAPP_URL: wa.url } });
  const pid = p.init.project_id;
  const base = `/v1/projects/${pid}/contact`;
  // Without flows: the default Hello world flow would take the customers' messages.
  assert.equal((await p.api('POST', `/v1/projects/${pid}/flows`, { body: { flows: [] } })).status, 200);
  const admin = async (method, path, body) => {
    const r = await p.api(method, `${base}${path}`, { body });
    assert.equal(r.status, 200, `${method} ${path}: ${r.text}`);
    return r.json;
  };
  const app = await p.sdk().conversation.app.create({ appCreateRequestBody: { display_name: 'support', channel_credentials: [
    { channel: 'WHATSAPP', static_bearer: { claimed_identity: WA_PNID, token: WA_TOKEN }, callback_secret: WA_SECRET },
  ] } });
  await admin('POST', '/channels', { app_id: app.id });
  // An agent, invited and logged in.
  let r = await p.api('POST', `${base}/invitations`, { body: { email: 'ret-agent@example.com', role: 'agent' } });
  assert.equal(r.status, 201, r.text);
  const token = r.json.link.split('/').pop();
  r = await p.api('POST', `/auth/invitations/${token}`, { auth: 'none', body: { password: 'correct horse battery' } });
  assert.equal(r.status, 201, r.text);
  r = await p.api('POST', '/auth/login', { auth: 'none', body: { email: 'ret-agent@example.com', password: 'correct horse battery' } });
  assert.equal(r.status, 200, r.text);
  const agent = { token: /parley_session=([^;]+)/.exec(r.headers.get('set-cookie'))[1], csrf: r.json.csrf_token, id: r.json.user.id };
  const as = async (method, path, body) => {
    const headers = { Cookie: `parley_session=${agent.token}` };
    if (method !== 'GET') headers['X-CSRF-Token'] = agent.csrf;
    const x = await p.api(method, `${base}${path}`, { auth: 'none', body, headers });
    assert.equal(x.status, 200, `${method} ${path}: ${x.text}`);
    return x.json;
  };
  const all = async () => (await admin('GET', '/conversations')).conversations;
  // A customer writes; returns the new contact-center conversation.
  const writes = async (from, name, text) => {
    const before = new Set((await all()).map((c) => c.id));
    const body = wa.webhook.message({ from, name, type: 'text', text: { body: text } });
    const x = await p.api('POST', `/channels/${app.id}/whatsapp`, { auth: 'none', body, headers: { 'Content-Type': 'application/json', ...hubSignature(WA_SECRET, body) } });
    assert.equal(x.status, 200, x.text);
    return waitFor(async () => (await all()).find((c) => !before.has(c.id)), `the conversation of ${name}`);
  };
  const get = async (id) => p.api('GET', `${base}/conversations/${id}`);
  const close = async () => { await p.stop(); await wa.close(); };
  return { p, pid, base, admin, as, agent, writes, get, close };
}

// Three conversations: `handled` (allocated to the agent, a note, closed with a wrap-up),
// `dropped` (closed by the admin while waiting, no wrap-up) and `open` (still with the
// agent). Returns them with the time span in which they were closed.
async function dayOfWork(cc) {
  await cc.as('PATCH', '/me', { presence: 'online' });
  const t0 = Date.now();
  let handled = await cc.writes('46700000101', 'Hanna', 'my order is late');
  await waitFor(async () => (await cc.get(handled.id)).json.agent_id === cc.agent.id, 'allocation to the agent');
  await cc.as('POST', `/conversations/${handled.id}/notes`, { text: 'Hanna Svensson, order 4711, phone 0701234567' });
  await cc.as('POST', `/conversations/${handled.id}:reply`, { text: 'Sorry Hanna, it ships today' });
  await cc.as('PATCH', '/me', { auto_allocate: false });
  const dropped = await cc.writes('46700000102', 'Dan', 'hello?');
  const open = await cc.writes('46700000103', 'Olga', 'still there?');
  await cc.admin('POST', `/conversations/${open.id}:transfer`, { agent_id: cc.agent.id });
  await cc.as('POST', `/conversations/${handled.id}:close`, { wrap_up: 'Hanna: late delivery, refund promised' });
  await cc.admin('POST', `/conversations/${dropped.id}:close`, {});
  const t1 = Date.now();
  handled = (await cc.get(handled.id)).json;
  // The audit consumer has logged the new contacts and the messages (asynchronously).
  await waitFor(() => Number(sql(cc.p, `SELECT count(*) FROM contact_audit WHERE project_id = '${cc.pid}'`)) >= 6, 'audit rows');
  await sleep(300);
  return { handled, dropped: (await cc.get(dropped.id)).json, open: (await cc.get(open.id)).json, t0, t1 };
}

const personalEvents = (cc, before) => Number(sql(cc.p, `SELECT count(*) FROM contact_events WHERE project_id = '${cc.pid}'
  AND kind <> 'stats' AND created_at <= ${before} AND data NOT LIKE '{"anonymized":true%'`));
const auditRows = (cc) => Number(sql(cc.p, `SELECT count(*) FROM contact_audit WHERE project_id = '${cc.pid}'`));

describe('contact-center retention, default policy (anonymize 90 days, delete 365, audit 365)', () => {
  let cc, w;
  before(async () => { cc = await contactCenter(); w = await dayOfWork(cc); });
  after(async () => { await cc?.close(); });

  test('settings show the defaults', async () => {
    const s = (await cc.p.api('GET', `/v1/projects/${cc.pid}/settings`)).json;
    assert.deepEqual(s.contact_center_retention, { anonymize_after_days: 90, delete_after_days: 365, audit_keep_days: 365 });
  });

  test('a day before 90 days nothing changes; a day after, closed conversations are anonymized and statistics stay', async () => {
    const { handled, dropped, open, t0, t1 } = w;
    assert.equal(handled.status, 'closed');
    assert.ok(personalEvents(cc, t1) > 0, 'events with customer data exist');
    let removed = await sweep(cc.p, t0 + 89 * DAY);
    assert.equal(removed.contact_center_anonymize, 0);
    assert.equal(removed.contact_center_delete, 0);
    assert.equal(removed.contact_audit, 0);
    assert.deepEqual((await cc.get(handled.id)).json, handled, 'untouched at 89 days');

    removed = await sweep(cc.p, t1 + 91 * DAY);
    assert.equal(removed.contact_center_anonymize, 2, 'handled and dropped; open is not closed');
    assert.equal(removed.contact_center_delete, 0);
    assert.ok(removed.contact_center_events > 0);
    const h = (await cc.get(handled.id)).json;
    assert.equal(h.contact_id, ANON);
    assert.equal(h.conversation_id, ANON);
    assert.equal(h.wrap_up, ANON);
    assert.deepEqual(h.notes.map((n) => n.text), [ANON]);
    assert.equal(h.notes[0].author, handled.notes[0].author, 'the note keeps its author');
    // Statistics stay: times, category, channel, agent, who closed it.
    for (const k of ['id', 'status', 'category_id', 'channel', 'app_id', 'agent_id', 'priority', 'source', 'queued_at', 'assigned_at', 'first_assigned_at', 'closed_at', 'closed_by', 'created_at'])
      assert.deepEqual(h[k], handled[k], k);
    assert.equal(h.agent_id, cc.agent.id);
    const d = (await cc.get(dropped.id)).json;
    assert.equal(d.contact_id, ANON);
    assert.equal(d.wrap_up ?? null, dropped.wrap_up ?? null, 'no wrap-up stays none');
    // The transcript link is gone (the Conversation API keeps its own retention).
    const tr = await cc.p.api('GET', `${cc.base}/conversations/${handled.id}/transcript`);
    assert.ok(tr.status !== 200 || tr.json.messages.length === 0, tr.text);
    const msgs = (await cc.p.api('GET', `/v1/projects/${cc.pid}/messages?conversation_id=${handled.conversation_id}`)).json.messages;
    assert.ok(msgs.length >= 2, 'Conversation API messages are not the contact center retention\'s');
    // The open conversation is untouched.
    assert.deepEqual((await cc.get(open.id)).json, open);
    // Real-time events from then carry no customer data any more; stats keep their counts.
    assert.equal(personalEvents(cc, t1), 0);
    assert.equal(sql(cc.p, `SELECT count(*) FROM contact_events WHERE project_id = '${cc.pid}' AND kind = 'stats' AND data LIKE '%anonymized%'`), '0');
    assert.match(sql(cc.p, `SELECT data FROM contact_events WHERE project_id = '${cc.pid}' AND kind = 'closed' LIMIT 1`), /^\{"anonymized":true,"conversation_id":"[0-9A-Z]{26}"\}$/);
    // Idempotent: a second pass changes nothing.
    removed = await sweep(cc.p, t1 + 91 * DAY);
    assert.equal(removed.contact_center_anonymize, 0);
  });

  test('a day before 365 days conversations and audit entries stay; a day after they are deleted, and users stay', async () => {
    const { handled, dropped, open, t0, t1 } = w;
    const audits = auditRows(cc);
    assert.ok(audits >= 6);
    let removed = await sweep(cc.p, t0 + 364 * DAY);
    assert.equal(removed.contact_center_delete, 0);
    assert.equal(removed.contact_audit, 0);
    assert.equal(auditRows(cc), audits);
    assert.equal((await cc.get(handled.id)).status, 200);

    removed = await sweep(cc.p, t1 + 366 * DAY);
    assert.equal(removed.contact_center_delete, 2);
    assert.ok(removed.contact_audit >= audits, `${removed.contact_audit} >= ${audits}`);
    assert.equal((await cc.get(handled.id)).status, 404);
    assert.equal((await cc.get(dropped.id)).status, 404);
    assert.equal(sql(cc.p, `SELECT count(*) FROM contact_notes WHERE conversation_id = '${handled.id}'`), '0');
    assert.equal(sql(cc.p, `SELECT count(*) FROM contact_events WHERE project_id = '${cc.pid}' AND created_at <= ${t1}`), '0');
    assert.equal(sql(cc.p, `SELECT count(*) FROM contact_audit WHERE project_id = '${cc.pid}' AND at <= ${t1}`), '0');
    // Still open: kept whole. Users: kept until deleted.
    assert.deepEqual((await cc.get(open.id)).json, open);
    removed = await sweep(cc.p, t1 + 4000 * DAY);
    assert.equal((await cc.get(open.id)).status, 200);
    const users = (await cc.p.api('GET', `/v1/projects/${cc.pid}/contact/users`)).json;
    assert.ok(JSON.stringify(users).includes(cc.agent.id), 'the agent account stays');
    assert.equal((await cc.p.api('GET', `${cc.base}/agents/${cc.agent.id}`)).status, 200);
  });
});

describe('contact-center retention, per-project settings', () => {
  let cc;
  before(async () => { cc = await contactCenter(); });
  after(async () => { await cc?.close(); });
  const settings = (body) => cc.p.api('PATCH', `/v1/projects/${cc.pid}/settings`, { body });

  test('bad settings answer a precise 400 and change nothing', async () => {
    const bad = [
      [{ contact_center_retention: { anonymize_after_days: 0 } }, /contact_center_retention\.anonymize_after_days must be between 1 and 3650, got 0/],
      [{ contact_center_retention: { delete_after_days: 3651 } }, /contact_center_retention\.delete_after_days must be between 1 and 3650, got 3651/],
      [{ contact_center_retention: { audit_keep_days: 'long' } }, /contact_center_retention\.audit_keep_days/],
      [{ contact_center_retention: { anonymize_after_days: 400 } }, /anonymize_after_days \(400\) must not exceed delete_after_days \(365\)/],
      [{ contact_center_retention: { anonymize_after_days: 30, delete_after_days: 20 } }, /anonymize_after_days \(30\) must not exceed delete_after_days \(20\)/],
      [{ contact_center_retention: { keep: 1 } }, /unknown field "contact_center_retention\.keep"/],
      [{ contact_center_retention: 90 }, /contact_center_retention must be an object/],
      // A valid contact policy beside a bad section: neither is written.
      [{ contact_retention_policy: { retention_type: 'CONTACT_EXPIRE_POLICY', ttl_days: 5 }, contact_center_retention: { delete_after_days: 1 } }, /must not exceed delete_after_days \(1\)/],
      [{ colour: 'red' }, /unknown field "colour": project settings have contact_retention_policy, contact_center_retention/],
    ];
    for (const [body, msg] of bad) {
      const r = await settings(body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
      assert.match(r.json.error.message, msg);
    }
    const s = (await cc.p.api('GET', `/v1/projects/${cc.pid}/settings`)).json;
    assert.deepEqual(s.contact_center_retention, { anonymize_after_days: 90, delete_after_days: 365, audit_keep_days: 365 });
    assert.deepEqual(s.contact_retention_policy, { retention_type: 'PERSIST_RETENTION_POLICY', ttl_days: 0 });
  });

  test('a partial PATCH merges; shorter periods apply on the next sweep, a day either side of each edge', async () => {
    let r = await settings({ contact_center_retention: { anonymize_after_days: 10, delete_after_days: 20 } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.contact_center_retention, { anonymize_after_days: 10, delete_after_days: 20, audit_keep_days: 365 });
    r = await settings({ contact_center_retention: { audit_keep_days: 15 } });
    assert.deepEqual(r.json.contact_center_retention, { anonymize_after_days: 10, delete_after_days: 20, audit_keep_days: 15 });
    assert.deepEqual((await cc.p.api('GET', `/v1/projects/${cc.pid}/settings`)).json.contact_center_retention, r.json.contact_center_retention);

    const { handled, open, t0, t1 } = await dayOfWork(cc);
    const audits = auditRows(cc);
    let removed = await sweep(cc.p, t0 + 9 * DAY);
    assert.deepEqual([removed.contact_center_anonymize, removed.contact_center_delete, removed.contact_audit], [0, 0, 0]);
    removed = await sweep(cc.p, t1 + 11 * DAY);
    assert.deepEqual([removed.contact_center_anonymize, removed.contact_center_delete, removed.contact_audit], [2, 0, 0]);
    assert.equal((await cc.get(handled.id)).json.wrap_up, ANON);
    removed = await sweep(cc.p, t0 + 14 * DAY);
    assert.deepEqual([removed.contact_center_delete, removed.contact_audit], [0, 0]);
    assert.equal(auditRows(cc), audits);
    removed = await sweep(cc.p, t1 + 16 * DAY);
    assert.deepEqual([removed.contact_center_delete, removed.contact_audit >= audits], [0, true]);
    assert.equal(sql(cc.p, `SELECT count(*) FROM contact_audit WHERE project_id = '${cc.pid}' AND at <= ${t1}`), '0');
    assert.equal((await cc.get(handled.id)).status, 200);
    removed = await sweep(cc.p, t0 + 19 * DAY);
    assert.equal(removed.contact_center_delete, 0);
    removed = await sweep(cc.p, t1 + 21 * DAY);
    assert.equal(removed.contact_center_delete, 2);
    assert.equal((await cc.get(handled.id)).status, 404);
    assert.deepEqual((await cc.get(open.id)).json, open, 'the open conversation is untouched');
  });
});

// ---- Flows ----

const TG_TOKEN = '123456:RETENTION', TG_SECRET = 'tg-ret-secret';
let updateId = 9000;
const tgUpdate = (chatId, text) => {
  updateId += 1;
  return { update_id: updateId, message: { message_id: updateId, from: { id: chatId, is_bot: false, first_name: 'Ada' },
    chat: { id: chatId, type: 'private', first_name: 'Ada' }, date: 1700000000 + updateId, text } };
};

// "human" goes to the contact center; anything else gets a question and the flow waits
// (an hour) for the answer, then thanks.
const FLOW = [
  { id: 'tr', type: 'tab', label: 'retention' },
  { id: 'rx', type: 'sinch-received-message', z: 'tr', convapiConfiguration: '', wires: [['sw']] },
  { id: 'sw', type: 'switch', z: 'tr', property: 'payload', propertyType: 'msg', rules: [{ t: 'eq', v: 'human', vt: 'str' }, { t: 'else' }], checkall: 'false', outputs: 2, wires: [['hm'], ['qm']] },
  { id: 'hm', type: 'sinch-message', z: 'tr', message: '{"text_message":{"text":"An agent will answer"}}', wires: [['hs']] },
  { id: 'hs', type: 'sinch-send', z: 'tr', receive: false, wires: [['ho'], []] },
  { id: 'ho', type: 'contact-handover', z: 'tr', category: 'general', wires: [[]] },
  { id: 'qm', type: 'sinch-message', z: 'tr', message: '{"text_message":{"text":"Your order number?"}}', wires: [['qs']] },
  { id: 'qs', type: 'sinch-send', z: 'tr', receive: true, timeout: 3600, wires: [['tm'], []] },
  { id: 'tm', type: 'sinch-message', z: 'tr', message: '{"text_message":{"text":"Thanks"}}', wires: [['ts']] },
  { id: 'ts', type: 'sinch-send', z: 'tr', receive: false, wires: [[], []] },
];

describe('flows retention (anonymize after 30 days, delete after 365)', () => {
  let p, fake, app, pid;
  const sends = [];
  let nextId = 100;
  const inbound = async (chat, text) => {
    const r = await p.api('POST', `/channels/${app.id}/telegram`, { auth: 'none', body: JSON.stringify(tgUpdate(chat, text)),
      headers: { 'Content-Type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': TG_SECRET } });
    assert.equal(r.status, 200, r.text);
  };
  const sentTo = (chat, text) => sends.filter((b) => String(b.chat_id) === String(chat) && b.text === text).length;
  const waits = () => JSON.parse(sql(p, `SELECT json_group_array(json_object('id', id, 'contact_id', contact_id, 'conversation_id', conversation_id, 'msg', msg, 'created_at', created_at)) FROM (SELECT * FROM flows_waits WHERE project_id = '${pid}' ORDER BY id)`));

  before(async () => {
    fake = await startReceiver();
    fake.respond((rec) => {
      const body = rec.body ? JSON.parse(rec.body) : {};
      sends.push(body);
      return { status: 200, body: JSON.stringify({ ok: true, result: { message_id: nextId++, chat: { id: Number(body.chat_id), type: 'private' }, date: 1700000000, text: body.text } }) };
    });
    p = await startParley({ env: { PARLEY_CHANNELS_TELEGRAM_URL: fake.url } });
    pid = p.init.project_id;
    app = await p.sdk().conversation.app.create({ appCreateRequestBody: {
      display_name: 'tg', channel_credentials: [{ channel: 'TELEGRAM', telegram_credentials: { token: TG_TOKEN }, callback_secret: TG_SECRET }] } });
    const r = await p.api('POST', `/v1/projects/${pid}/flows`, { body: { flows: FLOW } });
    assert.equal(r.status, 200, r.text);
  });
  after(async () => { await p?.stop(); await fake?.close(); });

  test('waiting conversations, inbox rows and handovers: anonymized after 30 days, deleted after 365', async () => {
    const t0 = Date.now();
    await inbound(801, 'hi');
    await waitFor(() => sentTo(801, 'Your order number?') === 1 && waits().length === 1, 'the question and its wait');
    await inbound(802, 'human');
    await waitFor(() => sql(p, `SELECT count(*) FROM flows_handovers WHERE project_id = '${pid}'`) === '1', 'the handover');
    const [wait] = waits();
    assert.match(wait.contact_id, /^[0-9A-Z]{26}$/);
    assert.match(wait.conversation_id, /^[0-9A-Z]{26}$/);
    assert.ok(wait.msg.includes(wait.contact_id), 'the saved msg names the contact');
    // An accepted conversation event the flow has not taken yet (normally gone at once).
    const inboxMsg = JSON.stringify({ payload: 'hello', contact: { contactId: wait.contact_id, channelIdentities: [{ channel: 'TELEGRAM', identity: '801' }] },
      lastResponse: { message: { contactId: wait.contact_id, conversationId: wait.conversation_id, channelIdentity: { channel: 'TELEGRAM', identity: '801' } } } });
    sql(p, `INSERT INTO flows_inbox (id, project_id, kind, node_id, msg, created_at) VALUES ('01JRETINBOX000000000000001', '${pid}', 'inbound', '', '${inboxMsg}', ${Date.now()})`);
    const handover = sql(p, `SELECT conversation_id FROM flows_handovers WHERE project_id = '${pid}'`);
    const t1 = Date.now();

    // A day before 30 days: nothing.
    let removed = await sweep(p, t0 + 29 * DAY);
    assert.equal(removed.flows_anonymize, 0);
    assert.equal(removed.flows_delete, 0);
    assert.deepEqual(waits(), [wait]);
    // A day after: the wait and the inbox row lose every contact and conversation id.
    removed = await sweep(p, t1 + 31 * DAY);
    assert.equal(removed.flows_anonymize, 2);
    assert.equal(removed.flows_delete, 0);
    const [w2] = waits();
    assert.equal(w2.id, wait.id);
    assert.equal(w2.contact_id, `[anonymized]:${wait.id}`);
    assert.equal(w2.conversation_id, '');
    assert.equal(w2.created_at, wait.created_at);
    for (const text of [w2.msg, sql(p, `SELECT msg FROM flows_inbox WHERE id = '01JRETINBOX000000000000001'`)]) {
      assert.ok(!text.includes(wait.contact_id), text);
      assert.ok(!text.includes(wait.conversation_id), text);
      assert.doesNotMatch(text, /contactId|conversationId|channelIdentit|"identity"/);
      assert.equal(JSON.parse(text)._anonymized, true);
    }
    assert.equal(JSON.parse(w2.msg).payload, 'hi', 'the rest of the msg stays');
    assert.equal(sql(p, `SELECT conversation_id FROM flows_handovers WHERE project_id = '${pid}'`), handover, 'a handover is routing state, kept');
    assert.equal((await sweep(p, t1 + 31 * DAY)).flows_anonymize, 0, 'idempotent');
    // The contact's next message no longer resumes the anonymized wait: the flow starts anew.
    await inbound(801, '4711');
    await waitFor(() => sentTo(801, 'Your order number?') === 2, 'a new question');
    assert.equal(sentTo(801, 'Thanks'), 0);
    const t2 = Date.now();
    assert.equal(waits().length, 2);

    // A day before a year: nothing deleted (the new wait is anonymized in its turn).
    removed = await sweep(p, t0 + 364 * DAY);
    assert.equal(removed.flows_delete, 0);
    assert.equal(removed.flows_anonymize, 1);
    // A day after: the waits, the inbox row and the handover are gone.
    removed = await sweep(p, t2 + 366 * DAY);
    assert.equal(removed.flows_delete, 4);
    assert.equal(sql(p, `SELECT (SELECT count(*) FROM flows_waits) + (SELECT count(*) FROM flows_inbox) + (SELECT count(*) FROM flows_handovers)`), '0');
    // Deployed flows are not data with a TTL.
    assert.equal((await p.api('GET', `/v1/projects/${pid}/flows`)).json.flows.length, FLOW.length);
  });

  test("a DPO anonymizing a contact anonymizes its waiting conversation at once, no one else's", async () => {
    await inbound(803, 'hi');
    await inbound(804, 'hi');
    await waitFor(() => waits().length === 2, 'two waits');
    const [a, b] = waits();
    const r = await p.api('POST', `/v1/projects/${pid}/contact/gdpr/contacts/${a.contact_id}:anonymize`);
    assert.equal(r.status, 200, r.text);
    const [a2, b2] = waits();
    assert.equal(a2.contact_id, `[anonymized]:${a.id}`);
    assert.equal(a2.conversation_id, '');
    assert.ok(!a2.msg.includes(a.contact_id));
    assert.equal(JSON.parse(a2.msg)._anonymized, true);
    assert.deepEqual(b2, b, 'the other contact\'s wait is untouched');
  });
});
