// retention.test.mjs: the data lifecycle's retention policies, driven by
// `parley retention run --as-of`. Data is created at known times (injected messages with
// an accept_time in 2030, far after the server's real clock so the background sweeper
// never touches it; contacts created now), and each sweep is checked to remove exactly
// what its policy says, including the edge of the TTL (a day before and a day after),
// with consistent cascades (no orphans, no pending callback or delivery left behind).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { startParley, runCli, tempDir, basicAuth } from './lib/parley.mjs';

const DAY = 86400000;
const SMS_CRED = [{ channel: 'SMS', static_bearer: { claimed_identity: 'plan-1', token: 'sms-token-0123456789' } }];
const iso = (ms) => new Date(ms).toISOString();
const T = (s) => Date.parse(s);

function sql(p, stmt) {
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', p.dataDir + '/parley.db', stmt], { encoding: 'utf8' }).trim();
}

async function sweep(p, asOf) {
  const r = await runCli(['retention', 'run', '--as-of', asOf, '--data-dir', p.dataDir]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.as_of, new Date(asOf).toISOString());
  return out.removed;
}

// A project fixture: helpers over one running server.
function fixture(p, init = p.init) {
  const base = `/v1/projects/${init.project_id}`;
  const auth = basicAuth(init.key_id, init.key_secret);
  const ok = async (method, path, body) => {
    const r = await p.api(method, base + path, { body, auth });
    assert.equal(r.status, 200, `${method} ${path}: ${r.text}`);
    return r.json;
  };
  return {
    base,
    ok,
    app: (retention_policy, extra = {}) => ok('POST', '/apps', { display_name: 'app', retention_policy, channel_credentials: SMS_CRED, ...extra }),
    contact: (name) => ok('POST', '/contacts', { display_name: name, language: 'EN_US', channel_identities: [{ channel: 'SMS', identity: `+467${Math.floor(Math.random() * 1e8)}` }] }),
    conversation: (app_id, contact_id) => ok('POST', '/conversations', { app_id, contact_id }),
    async inject(conv, contact_id, when, text) {
      await ok('POST', `/conversations/${conv.id}:inject-message`, {
        accept_time: when, channel_identity: { channel: 'SMS', identity: '+46700000001' }, contact_id,
        direction: 'TO_APP', contact_message: { text_message: { text } },
      });
      const all = (await ok('GET', `/messages?conversation_id=${conv.id}&page_size=1000`)).messages;
      return all.find((m) => m.contact_message?.text_message?.text === text);
    },
    async texts(q) {
      return (await ok('GET', `/messages?page_size=1000&${q}`)).messages.map((m) => m.contact_message.text_message.text).sort();
    },
    status: async (path) => (await p.api('GET', base + path, { auth })).status,
  };
}

// No orphans anywhere: every message has its conversation and contact, every
// conversation its contact and app, refs and inbound_seen point at stored messages.
function assertNoOrphans(p) {
  const n = sql(p, `SELECT
      (SELECT count(*) FROM messages m WHERE m.conversation_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = m.conversation_id)) +
      (SELECT count(*) FROM messages m WHERE m.contact_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = m.contact_id)) +
      (SELECT count(*) FROM conversations v WHERE NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = v.contact_id)) +
      (SELECT count(*) FROM message_refs r WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = r.message_id)) +
      (SELECT count(*) FROM inbound_seen s WHERE s.message_id <> '' AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = s.message_id)) +
      (SELECT count(*) FROM outbox o WHERE o.kind = 'deliver' AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = o.target_id))`);
  assert.equal(n, '0', 'orphan rows after a sweep');
}

describe('retention', () => {
  let p, f;
  before(async () => { p = await startParley(); f = fixture(p); });
  after(async () => { await p.stop(); });

  test('MESSAGE_EXPIRE_POLICY removes messages older than ttl_days, a day either side of the edge', async () => {
    const a = await f.app({ retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 10 });
    const keep = await f.app({ retention_type: 'PERSIST_RETENTION_POLICY', ttl_days: 10 });
    const c = await f.contact('m');
    const conv = await f.conversation(a.id, c.id);
    const convKeep = await f.conversation(keep.id, c.id);
    const m1 = await f.inject(conv, c.id, '2030-01-01T00:00:00Z', 'a-old');
    await f.inject(conv, c.id, '2030-01-15T00:00:00Z', 'a-new');
    await f.inject(convKeep, c.id, '2030-01-01T00:00:00Z', 'p-old');
    // Outbox rows that name m1 (a delivery and a callback), and provider bookkeeping.
    sql(p, `INSERT INTO outbox (id, project_id, app_id, kind, target_id, payload, due_at, expires_at, created_at) VALUES
      ('01JOBX00000000000000000001', '${p.init.project_id}', '${a.id}', 'deliver', '${m1.id}', '{}', 9e15, 9e15, 0),
      ('01JOBX00000000000000000002', '${p.init.project_id}', '${a.id}', 'callback', 'hook', '{"message":{"id":"${m1.id}"}}', 9e15, 9e15, 0),
      ('01JOBX00000000000000000003', '${p.init.project_id}', '${a.id}', 'callback', 'hook', '{"message":{"id":"other"}}', 9e15, 9e15, 0);
      INSERT INTO message_refs (app_id, channel, provider_id, message_id) VALUES ('${a.id}', 'SMS', 'prov-1', '${m1.id}');
      INSERT INTO inbound_seen (app_id, channel, provider_id, message_id, created_at) VALUES ('${a.id}', 'SMS', 'prov-2', '${m1.id}', 0);`);

    // One day before the edge: nothing goes.
    let removed = await sweep(p, '2030-01-10T00:00:00Z');
    assert.equal(removed.messages, 0);
    assert.deepEqual(await f.texts(`app_id=${a.id}`), ['a-new', 'a-old']);
    // One day after: only a-old.
    removed = await sweep(p, '2030-01-12T00:00:00Z');
    assert.equal(removed.messages, 1);
    assert.deepEqual(await f.texts(`app_id=${a.id}`), ['a-new']);
    assert.deepEqual(await f.texts(`app_id=${keep.id}`), ['p-old']);
    assert.equal(await f.status(`/messages/${m1.id}`), 404);
    assert.equal(await f.status(`/conversations/${conv.id}`), 200, 'the conversation stays');
    assert.equal(sql(p, `SELECT group_concat(id) FROM outbox WHERE id LIKE '01JOBX%'`), '01JOBX00000000000000000003');
    assert.equal(sql(p, `SELECT count(*) FROM message_refs WHERE message_id = '${m1.id}'`), '0');
    assert.equal(sql(p, `SELECT count(*) FROM inbound_seen WHERE message_id = '${m1.id}'`), '0');
    sql(p, `DELETE FROM outbox WHERE id LIKE '01JOBX%'`);
    // And a-new a day after its own edge; PERSIST keeps everything forever.
    assert.equal((await sweep(p, '2030-01-24T00:00:00Z')).messages, 0);
    assert.equal((await sweep(p, '2030-01-26T00:00:00Z')).messages, 1);
    assert.equal((await sweep(p, '2039-01-01T00:00:00Z')).messages, 0);
    assert.deepEqual(await f.texts(`app_id=${keep.id}`), ['p-old']);
    assertNoOrphans(p);
  });

  test('CONVERSATION_EXPIRE_POLICY removes a conversation whole once its last message is past the TTL, and keeps it whole otherwise', async () => {
    const a = await f.app({ retention_type: 'CONVERSATION_EXPIRE_POLICY', ttl_days: 10 });
    const c1 = await f.contact('x'), c2 = await f.contact('y');
    const x = await f.conversation(a.id, c1.id), y = await f.conversation(a.id, c2.id);
    await f.inject(x, c1.id, '2031-01-01T00:00:00Z', 'x1');
    await f.inject(x, c1.id, '2031-01-05T00:00:00Z', 'x2');
    await f.inject(y, c2.id, '2031-01-01T00:00:00Z', 'y1');
    let removed = await sweep(p, '2031-01-10T00:00:00Z');
    assert.equal(removed.conversations, 0);
    removed = await sweep(p, '2031-01-12T00:00:00Z');
    assert.equal(removed.conversations, 2, 'y and its one message');
    assert.equal(removed.messages, 0, 'the message policy does not apply');
    assert.equal(await f.status(`/conversations/${y.id}`), 404);
    assert.deepEqual(await f.texts(`conversation_id=${x.id}`), ['x1', 'x2'], 'x is kept whole although x1 is old');
    assert.equal(await f.status(`/contacts/${c2.id}`), 200, 'the contact stays');
    assert.equal((await sweep(p, '2031-01-14T00:00:00Z')).conversations, 0);
    assert.equal((await sweep(p, '2031-01-16T00:00:00Z')).conversations, 3);
    assert.equal(await f.status(`/conversations/${x.id}`), 404);
    assert.deepEqual(await f.texts(`app_id=${a.id}`), []);
    assertNoOrphans(p);
  });

  test('a policy change applies on the next sweep', async () => {
    const a = await f.app({ retention_type: 'PERSIST_RETENTION_POLICY', ttl_days: 1 });
    const c = await f.contact('z');
    const conv = await f.conversation(a.id, c.id);
    await f.inject(conv, c.id, '2032-01-01T00:00:00Z', 'z1');
    assert.equal((await sweep(p, '2032-06-01T00:00:00Z')).messages, 0);
    await f.ok('PATCH', `/apps/${a.id}`, { retention_policy: { retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 30 } });
    assert.equal((await sweep(p, '2032-06-01T00:00:00Z')).messages, 1);
    assert.deepEqual(await f.texts(`app_id=${a.id}`), []);
  });

  test('dispatch-mode messages follow dispatch_retention_policy (0 = not kept past delivery)', async () => {
    const pid = p.init.project_id;
    const d3 = await f.app({ retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 365 }, { processing_mode: 'DISPATCH', dispatch_retention_policy: { retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 3 } });
    const d0 = await f.app({ retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 365 }, { processing_mode: 'DISPATCH' });
    const c = await f.contact('d');
    const at = T('2033-01-01T00:00:00Z');
    const row = (id, app, t) => `('${id}', '${pid}', '${app}', NULL, '${c.id}', 'TO_CONTACT', 'SMS', '+1', ${t}, 'app_message', '{"text_message":{"text":"${id}"}}', 'DISPATCH')`;
    sql(p, `INSERT INTO messages (id, project_id, app_id, conversation_id, contact_id, direction, channel, identity, accept_time, kind, content, processing_mode) VALUES
      ${row('01JDSP00000000000000000001', d3.id, at)}, ${row('01JDSP00000000000000000002', d0.id, at)}, ${row('01JDSP00000000000000000003', d0.id, at)};
      INSERT INTO outbox (id, project_id, app_id, kind, target_id, payload, due_at, expires_at, created_at) VALUES
      ('01JOBD00000000000000000001', '${pid}', '${d0.id}', 'deliver', '01JDSP00000000000000000003', '{}', 9e15, 9e15, 0);`);
    const left = () => sql(p, `SELECT group_concat(id) FROM (SELECT id FROM messages WHERE id LIKE '01JDSP%' ORDER BY id)`);
    // Two hours later: the ttl-0 message that was delivered is gone; the one still
    // waiting for delivery stays; the ttl-3 one stays.
    assert.equal((await sweep(p, iso(at + 2 * 3600000))).messages, 1);
    assert.equal(left(), '01JDSP00000000000000000001,01JDSP00000000000000000003');
    assert.equal((await sweep(p, iso(at + 2 * DAY))).messages, 0);
    assert.equal((await sweep(p, iso(at + 4 * DAY))).messages, 1);
    assert.equal(left(), '01JDSP00000000000000000003');
    sql(p, `DELETE FROM outbox WHERE id = '01JOBD00000000000000000001'`);
    assert.equal((await sweep(p, iso(at + 4 * DAY))).messages, 1);
    assert.equal(left(), '');
  });

  test('bad retention input: precise 400s and nothing changed', async () => {
    const a = await f.app({ retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 10 });
    const bad = [
      [{ processing_mode: 'DISPATCH', retention_policy: { retention_type: 'CONVERSATION_EXPIRE_POLICY', ttl_days: 5 } }, /CONVERSATION_EXPIRE_POLICY cannot be used with processing_mode DISPATCH/],
      [{ dispatch_retention_policy: { retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 8 } }, /dispatch_retention_policy\.ttl_days must be between 0 and 7, got 8/],
      [{ dispatch_retention_policy: { retention_type: 'PERSIST_RETENTION_POLICY', ttl_days: 1 } }, /dispatch_retention_policy\.retention_type/],
      [{ retention_policy: { retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 3651 } }, /retention_policy\.ttl_days must be between 1 and 3650/],
    ];
    for (const [body, msg] of bad) {
      const r = await p.api('PATCH', `${f.base}/apps/${a.id}`, { body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
      assert.match(r.json.error.message, msg);
    }
    const now = await f.ok('GET', `/apps/${a.id}`);
    assert.deepEqual(now.retention_policy, { retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 10 });
    assert.equal(now.processing_mode, 'CONVERSATION');
    assert.deepEqual(now.dispatch_retention_policy, { retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 0 });
  });
});

describe('contact retention (project settings)', () => {
  let p, f;
  before(async () => { p = await startParley(); f = fixture(p); });
  after(async () => { await p.stop(); });

  test('settings default to persist; bad input answers a precise 400 and changes nothing', async () => {
    assert.deepEqual(await f.ok('GET', '/settings'), { project_id: p.init.project_id, contact_retention_policy: { retention_type: 'PERSIST_RETENTION_POLICY', ttl_days: 0 },
      contact_center_retention: { anonymize_after_days: 90, delete_after_days: 365, audit_keep_days: 365 } });
    const bad = [
      [{ contact_retention_policy: { retention_type: 'CONTACT_EXPIRE_POLICY' } }, /ttl_days is required with CONTACT_EXPIRE_POLICY/],
      [{ contact_retention_policy: { retention_type: 'CONTACT_EXPIRE_POLICY', ttl_days: 0 } }, /contact_retention_policy\.ttl_days must be between 1 and 3650, got 0/],
      [{ contact_retention_policy: { retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 5 } }, /contact_retention_policy\.retention_type/],
      [{ contact_retention_policy: { retention_type: 'CONTACT_EXPIRE_POLICY', ttl_days: 5, x: 1 } }, /unknown field "contact_retention_policy\.x"/],
      [{ colour: 'red' }, /unknown field "colour"/],
    ];
    for (const [body, msg] of bad) {
      const r = await p.api('PATCH', `${f.base}/settings`, { body });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.json.error.message, msg);
    }
    assert.equal((await f.ok('GET', '/settings')).contact_retention_policy.retention_type, 'PERSIST_RETENTION_POLICY');
  });

  test('CONTACT_EXPIRE_POLICY removes contacts inactive for ttl_days with their conversations and messages', async () => {
    const now = Date.now();
    const a = await f.app({ retention_type: 'PERSIST_RETENTION_POLICY', ttl_days: 1 });
    const idle = await f.contact('idle');        // no activity after its creation (now)
    const talks = await f.contact('talks');      // a message 40 days from now
    const conv = await f.conversation(a.id, talks.id);
    await f.inject(conv, talks.id, iso(now + 40 * DAY), 'later');
    const conv2 = await f.conversation(a.id, idle.id);
    assert.equal((await sweep(p, iso(now + 400 * DAY))).contacts, 0, 'persist by default');
    const set = await f.ok('PATCH', '/settings', { contact_retention_policy: { retention_type: 'CONTACT_EXPIRE_POLICY', ttl_days: 30 } });
    assert.deepEqual(set.contact_retention_policy, { retention_type: 'CONTACT_EXPIRE_POLICY', ttl_days: 30 });
    assert.equal((await sweep(p, iso(now + 29 * DAY))).contacts, 0);
    const removed = await sweep(p, iso(now + 31 * DAY));
    assert.equal(removed.contacts, 1);
    assert.equal(await f.status(`/contacts/${idle.id}`), 404);
    assert.equal(await f.status(`/conversations/${conv2.id}`), 404, 'its conversation went with it');
    assert.equal(await f.status(`/contacts/${talks.id}`), 200);
    // The removed contact's identity is free again.
    assert.equal(sql(p, `SELECT count(*) FROM contact_identities WHERE contact_id = '${idle.id}'`), '0');
    // talks: last activity is its message at now+40d.
    assert.equal((await sweep(p, iso(now + 69 * DAY))).contacts, 0);
    assert.equal((await sweep(p, iso(now + 71 * DAY))).contacts, 2, 'the contact and its one message');
    assert.equal(await f.status(`/contacts/${talks.id}`), 404);
    assert.equal(await f.status(`/conversations/${conv.id}`), 404);
    assert.deepEqual(await f.texts(`app_id=${a.id}`), []);
    assertNoOrphans(p);
  });
});

describe('data created in the past (PARLEY_CLOCK_OFFSET_MS)', () => {
  test('a contact last active 40 days ago goes under a 30-day policy at the next sweep; one from 20 days ago stays', async () => {
    const dir = tempDir();
    let p = await startParley({ dataDir: dir, env: { PARLEY_CLOCK_OFFSET_MS: String(-40 * DAY) } });
    const init = p.init;
    const f40 = fixture(p);
    const old = await f40.contact('forty');
    const stamp = Number(sql(p, `SELECT created_at FROM contacts WHERE id = '${old.id}'`));
    assert.ok(Math.abs(stamp - (Date.now() - 40 * DAY)) < 3600000, `created 40 days ago: ${iso(stamp)}`);
    await p.stop();
    p = await startParley({ dataDir: dir, env: { PARLEY_CLOCK_OFFSET_MS: String(-20 * DAY) } });
    const f = fixture(p, init);
    const younger = await f.contact('twenty');
    await f.ok('PATCH', '/settings', { contact_retention_policy: { retention_type: 'CONTACT_EXPIRE_POLICY', ttl_days: 30 } });
    await p.stop();
    // Now (no offset): one sweep removes the contact 40 days idle, not the 20-day one.
    const r = await runCli(['retention', 'run', '--data-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).removed.contacts, 1);
    p = await startParley({ dataDir: dir });
    try {
      const now = fixture(p, init);
      assert.equal(await now.status(`/contacts/${old.id}`), 404);
      assert.equal(await now.status(`/contacts/${younger.id}`), 200);
    } finally {
      await p.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the background sweeper', () => {
  test('runs by itself and counts what it removed in /metrics', async () => {
    const p = await startParley({ env: { PARLEY_PRIVACY_INTERVAL_S: '1' } });
    try {
      const f = fixture(p);
      const a = await f.app({ retention_type: 'MESSAGE_EXPIRE_POLICY', ttl_days: 1 });
      const c = await f.contact('bg');
      const conv = await f.conversation(a.id, c.id);
      await f.inject(conv, c.id, '2020-01-01T00:00:00Z', 'ancient');
      await f.inject(conv, c.id, iso(Date.now() + 3600000), 'fresh');
      let metrics = '';
      for (let i = 0; i < 100; i++) {
        metrics = (await p.api('GET', '/metrics', { auth: 'none' })).text;
        if (/parley_retention_removed_total\{kind="messages"\} 1\b/.test(metrics) && /parley_retention_passes_total [1-9]/.test(metrics)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(metrics, /parley_retention_removed_total\{kind="messages"\} 1\b/);
      assert.match(metrics, /parley_retention_removed_total\{kind="contacts"\} 0\b/);
      assert.match(metrics, /parley_retention_passes_total [1-9]/);
      assert.deepEqual(await f.texts(`app_id=${a.id}`), ['fresh']);
    } finally {
      await p.stop();
    }
  });
});
