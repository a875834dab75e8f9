// webhooks.test.mjs: the Conversation API's webhooks, driven through the official SDK:
// create, get, list, update (with and without a mask), delete; the limit of 5 per app (also
// under concurrency and when moving a webhook between apps); secrets never returned in
// full; bad input writing nothing; another project's webhooks and apps are invisible.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startParley, runCli, sdkRejects } from './lib/parley.mjs';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
function ulid() {
  let t = Date.now(), time = '';
  for (let i = 0; i < 10; i++) { time = CROCKFORD[t % 32] + time; t = Math.floor(t / 32); }
  let rnd = '';
  for (let i = 0; i < 16; i++) rnd += CROCKFORD[Math.floor(Math.random() * 32)];
  return time + rnd;
}

let p, sinch, wh, db;

function sql(q) {
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', db, q], { encoding: 'utf8' });
}

// The apps API is written elsewhere: insert app rows directly (WAL allows it while the server runs).
function newApp(projectId = p.init.project_id) {
  const id = ulid();
  const now = Date.now();
  sql(`INSERT INTO apps (id, project_id, display_name, created_at, updated_at) VALUES ('${id}', '${projectId}', 'app ${id}', ${now}, ${now})`);
  return id;
}

async function count(appId) {
  const res = await wh.list({ app_id: appId });
  return res.webhooks.length;
}

const SECRET = 'my-very-secret-webhook-key-123';
const CLIENT_SECRET = 'oauth-client-secret-0123456789';

function create(body) {
  return wh.create({ webhookCreateRequestBody: body });
}

function assertMasked(masked, full) {
  assert.equal(typeof masked, 'string');
  assert.notEqual(masked, full);
  assert.equal(masked.length, full.length);
  assert.ok(masked.includes('*'), masked);
  assert.ok(!masked.includes(full.slice(3, -2)), masked);
}

// The hooks live in a suite: a top-level after() runs only once the event loop drains,
// which the SDK's idle keep-alive sockets would delay until the server times them out.
describe('webhooks', () => {
  before(async () => {
    // Several workers, so that concurrent creates really run in parallel.
    p = await startParley({ env: { PARLEY_THREADS: '8' } });
    sinch = p.sdk();
    wh = sinch.conversation.webhooks;
    db = p.dataDir + '/parley.db';
  });

  after(async () => {
    await p.stop();
  });

  test('create, get and list: defaults, typed fields, masked secrets, sealed at rest', async () => {
    const app = newApp();
    const created = await create({
      app_id: app,
      target: 'https://hooks.example.com/sinch?x=1',
      triggers: ['MESSAGE_INBOUND', 'MESSAGE_DELIVERY'],
      secret: SECRET,
      client_credentials: {
        client_id: 'cid-1',
        client_secret: CLIENT_SECRET,
        endpoint: 'https://auth.example.com/oauth2/token',
        scope: 'callbacks',
      },
    });
    assert.match(created.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(created.app_id, app);
    assert.equal(created.target, 'https://hooks.example.com/sinch?x=1');
    assert.equal(created.target_type, 'HTTP');
    assert.deepEqual(created.triggers, ['MESSAGE_INBOUND', 'MESSAGE_DELIVERY']);
    assertMasked(created.secret, SECRET);
    assert.equal(created.client_credentials.client_id, 'cid-1');
    assert.equal(created.client_credentials.endpoint, 'https://auth.example.com/oauth2/token');
    assert.equal(created.client_credentials.scope, 'callbacks');
    assert.equal(created.client_credentials.token_request_type, 'BASIC');
    assertMasked(created.client_credentials.client_secret, CLIENT_SECRET);

    const got = await wh.get({ webhook_id: created.id });
    assert.deepEqual(got, created);

    const plain = await create({ app_id: app, target: 'http://10.0.0.1:8080/cb', target_type: 'DISMISS', triggers: ['CONTACT_CREATE'] });
    assert.equal(plain.target_type, 'DISMISS');
    assert.equal(plain.secret, undefined);
    assert.equal(plain.client_credentials, undefined);
    assert.ok(!('secret' in plain) && !('client_credentials' in plain));

    const list = await wh.list({ app_id: app });
    assert.deepEqual(Object.keys(list), ['webhooks']);
    assert.deepEqual(list.webhooks.map((w) => w.id), [created.id, plain.id]);
    assert.deepEqual(list.webhooks[0], created);

    // Nothing in the database holds the secrets in clear.
    const dump = sql(`SELECT * FROM webhooks WHERE app_id = '${app}'`);
    assert.ok(dump.includes(created.id));
    assert.ok(!dump.includes(SECRET) && !dump.includes(CLIENT_SECRET), dump);
    assert.equal(sql(`SELECT secret_sealed IS NULL, client_credentials_sealed IS NULL FROM webhooks WHERE id = '${plain.id}'`).trim(), '1|1');
  });

  test('update with a mask, without one, and changing triggers', async () => {
    const app = newApp();
    const w = await create({ app_id: app, target: 'https://a.example/1', triggers: ['MESSAGE_INBOUND'], secret: SECRET });

    // Mask: only triggers change, although the body (as the SDK requires) carries a target.
    const t = await wh.update({
      webhook_id: w.id,
      update_mask: ['triggers'],
      webhookUpdateRequestBody: { target: 'https://ignored.example/', triggers: ['EVENT_INBOUND', 'CONVERSATION_START'] },
    });
    assert.equal(t.target, 'https://a.example/1');
    assert.deepEqual(t.triggers, ['EVENT_INBOUND', 'CONVERSATION_START']);
    assert.equal(t.secret, w.secret);

    // No mask: every field present in the body changes, the others stay.
    const u = await wh.update({
      webhook_id: w.id,
      webhookUpdateRequestBody: { target: 'https://b.example/2', target_type: 'DISMISS' },
    });
    assert.equal(u.target, 'https://b.example/2');
    assert.equal(u.target_type, 'DISMISS');
    assert.deepEqual(u.triggers, ['EVENT_INBOUND', 'CONVERSATION_START']);
    assert.equal(u.secret, w.secret);

    // A masked field absent from the body is cleared to its default.
    const c = await wh.update({
      webhook_id: w.id,
      update_mask: ['secret', 'target_type'],
      webhookUpdateRequestBody: { target: 'https://b.example/2' },
    });
    assert.equal(c.secret, undefined);
    assert.equal(c.target_type, 'HTTP');

    // New secret and client credentials: masked in the answer.
    const s = await wh.update({
      webhook_id: w.id,
      update_mask: ['secret', 'client_credentials'],
      webhookUpdateRequestBody: {
        target: 'https://b.example/2', secret: 'another-secret-value',
        client_credentials: { client_id: 'c', client_secret: CLIENT_SECRET, endpoint: 'http://auth.example/t', token_request_type: 'FORM' },
      },
    });
    assertMasked(s.secret, 'another-secret-value');
    assertMasked(s.client_credentials.client_secret, CLIENT_SECRET);
    assert.equal(s.client_credentials.token_request_type, 'FORM');
    const got = await wh.get({ webhook_id: w.id });
    assert.deepEqual(got, s);
    assert.deepEqual(got.triggers, ['EVENT_INBOUND', 'CONVERSATION_START']);
    assert.equal(got.target, 'https://b.example/2');
  });

  test('at most 5 webhooks per app; the 6th is FAILED_PRECONDITION; deleting makes room', async () => {
    const app = newApp();
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await create({ app_id: app, target: `https://h.example/${i}`, triggers: ['MESSAGE_INBOUND'] })).id);
    const err = await sdkRejects(create({ app_id: app, target: 'https://h.example/6', triggers: ['MESSAGE_INBOUND'] }), 400, 'FAILED_PRECONDITION');
    assert.match(err.message, new RegExp(`app ${app} already has 5 webhooks, the maximum; delete one first`));
    assert.equal(await count(app), 5);
    assert.deepEqual(await wh.delete({ webhook_id: ids[0] }), {});
    await create({ app_id: app, target: 'https://h.example/6', triggers: ['MESSAGE_INBOUND'] });
    assert.equal(await count(app), 5);
  });

  // Fire n creates at once on app; check that exactly `room` succeed and the rest are refused.
  async function concurrentCreates(app, n, room) {
    const results = await Promise.allSettled(Array.from({ length: n }, (_, i) =>
      create({ app_id: app, target: `https://c.example/${i}`, triggers: ['MESSAGE_DELIVERY'] })));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const bad = results.filter((r) => r.status === 'rejected');
    assert.equal(ok.length, room);
    for (const r of bad) {
      assert.equal(r.reason.statusCode, 400, r.reason.message);
      assert.equal(JSON.parse(r.reason.data).error.status, 'FAILED_PRECONDITION');
    }
    return ok.map((r) => r.value.id);
  }

  test('8 concurrent creates on one app: exactly 5 succeed', async () => {
    const app = newApp();
    const ids = await concurrentCreates(app, 8, 5);
    const list = await wh.list({ app_id: app });
    assert.deepEqual(list.webhooks.map((w) => w.id).sort(), ids.sort());

    // Again at the edge, where a count outside the write transaction would let several in:
    // apps that already have 4 webhooks take exactly one more.
    for (let round = 0; round < 3; round++) {
      const edge = newApp();
      for (let i = 0; i < 4; i++) await create({ app_id: edge, target: `https://e.example/${i}`, triggers: ['OPT_IN'] });
      await concurrentCreates(edge, 8, 1);
      assert.equal(await count(edge), 5);
    }
  });

  test('moving a webhook to another app: the app must exist and have room', async () => {
    const full = newApp(), from = newApp(), to = newApp();
    for (let i = 0; i < 5; i++) await create({ app_id: full, target: `https://f.example/${i}`, triggers: ['OPT_IN'] });
    const w = await create({ app_id: from, target: 'https://m.example/', triggers: ['OPT_OUT'] });
    await sdkRejects(wh.update({ webhook_id: w.id, update_mask: ['app_id'], webhookUpdateRequestBody: { target: w.target, app_id: full } }), 400, 'FAILED_PRECONDITION');
    await sdkRejects(wh.update({ webhook_id: w.id, update_mask: ['app_id'], webhookUpdateRequestBody: { target: w.target, app_id: ulid() } }), 404, 'NOT_FOUND');
    assert.equal((await wh.get({ webhook_id: w.id })).app_id, from);
    assert.equal(await count(full), 5);
    const moved = await wh.update({ webhook_id: w.id, webhookUpdateRequestBody: { target: w.target, app_id: to } });
    assert.equal(moved.app_id, to);
    assert.equal(await count(from), 0);
    assert.deepEqual((await wh.list({ app_id: to })).webhooks.map((x) => x.id), [w.id]);
  });

  test('bad input is refused and writes nothing', async () => {
    const app = newApp();
    const good = { app_id: app, target: 'https://ok.example/', triggers: ['MESSAGE_INBOUND'] };
    const w = await create(good);
    const cases = [
      [{ ...good, triggers: ['MESSAGE_INBOUND', 'NOT_A_TRIGGER'] }, /triggers\[1\].*unknown trigger "NOT_A_TRIGGER"/],
      [{ ...good, triggers: ['UNSPECIFIED_TRIGGER'] }, /UNSPECIFIED_TRIGGER is not a trigger/],
      [{ ...good, triggers: [] }, /triggers must list at least one/],
      [{ ...good, triggers: ['OPT_IN', 'OPT_IN'] }, /duplicate trigger OPT_IN/],
      [{ app_id: app, target: 'https://ok.example/' }, /missing required field triggers/],
      [{ ...good, target: 'ftp://x' }, /field target must be an absolute http/],
      [{ ...good, target: 'not a url' }, /field target must be an absolute http/],
      [{ ...good, target: 'https://' }, /field target/],
      [{ ...good, target: 'https://e.example/' + 'a'.repeat(742) }, /longer than 742/],
      [{ ...good, target_type: 'WEBSOCKET' }, /target_type has unknown value "WEBSOCKET"/],
      [{ ...good, secret: 's'.repeat(257) }, /secret is longer than 256/],
      [{ ...good, app_id: 'not-an-id' }, /app_id "not-an-id" is not a valid id/],
      [{ ...good, client_credentials: { client_id: 'a', client_secret: 'b' } }, /client_credentials.endpoint/],
      [{ ...good, client_credentials: { client_id: 'a', client_secret: 'b', endpoint: 'mailto:x' } }, /client_credentials.endpoint must be/],
      [{ ...good, client_credentials: { client_id: 'a', client_secret: 'b', endpoint: 'https://a.example', token_request_type: 'JWT' } }, /token_request_type/],
    ];
    for (const [body, re] of cases) {
      const err = await sdkRejects(create(body), 400, 'INVALID_ARGUMENT');
      assert.match(err.message, re, JSON.stringify(body));
    }
    const nf = await sdkRejects(create({ ...good, app_id: ulid() }), 404, 'NOT_FOUND');
    assert.match(nf.message, /^app [0-9A-Z]{26} not found$/);
    assert.equal(await count(app), 1);

    // Bad updates change nothing.
    const upd = (data) => wh.update({ webhook_id: w.id, ...data });
    await sdkRejects(upd({ update_mask: ['target', 'bogus'], webhookUpdateRequestBody: { target: 'https://new.example/' } }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(upd({ webhookUpdateRequestBody: { target: 'https://new.example/', triggers: ['NOPE'] } }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(upd({ webhookUpdateRequestBody: { target: 'https://new.example/', triggers: [] } }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(upd({ webhookUpdateRequestBody: { target: 'ftp://x' } }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(upd({ update_mask: ['triggers'], webhookUpdateRequestBody: { target: 'https://new.example/' } }), 400, 'INVALID_ARGUMENT');
    await sdkRejects(upd({ webhookUpdateRequestBody: { target: 'https://new.example/', target_type: 'NONE' } }), 400, 'INVALID_ARGUMENT');
    assert.deepEqual(await wh.get({ webhook_id: w.id }), w);
    assert.equal(await count(app), 1);

    // Malformed and unknown ids.
    for (const call of [
      () => wh.get({ webhook_id: 'nope' }),
      () => wh.delete({ webhook_id: 'nope' }),
      () => wh.update({ webhook_id: 'nope', webhookUpdateRequestBody: { target: 'https://x.example/' } }),
      () => wh.list({ app_id: 'nope' }),
    ]) {
      const err = await sdkRejects(call(), 400, 'INVALID_ARGUMENT');
      assert.match(err.message, /not a valid id/);
    }
    const unknown = ulid();
    const e404 = await sdkRejects(wh.get({ webhook_id: unknown }), 404, 'NOT_FOUND');
    assert.equal(e404.message, `webhook ${unknown} not found`);
    await sdkRejects(wh.update({ webhook_id: unknown, webhookUpdateRequestBody: { target: 'https://x.example/' } }), 404, 'NOT_FOUND');
    await sdkRejects(wh.delete({ webhook_id: unknown }), 404, 'NOT_FOUND');
    await sdkRejects(wh.list({ app_id: unknown }), 404, 'NOT_FOUND');
    assert.equal(await count(app), 1);
  });

  test('delete answers {} and the webhook is gone', async () => {
    const app = newApp();
    const w = await create({ app_id: app, target: 'https://d.example/', triggers: ['CAPABILITY'] });
    assert.deepEqual(await wh.delete({ webhook_id: w.id }), {});
    await sdkRejects(wh.get({ webhook_id: w.id }), 404, 'NOT_FOUND');
    await sdkRejects(wh.delete({ webhook_id: w.id }), 404, 'NOT_FOUND');
    assert.deepEqual(await wh.list({ app_id: app }), { webhooks: [] });
  });

  test("another project's webhooks and apps are NOT_FOUND", async () => {
    const app = newApp();
    const w = await create({ app_id: app, target: 'https://x.example/', triggers: ['MESSAGE_INBOUND'], secret: SECRET });
    const proj = await runCli(['projects', 'create', '--name', 'B', '--data-dir', p.dataDir]);
    assert.equal(proj.code, 0, proj.stderr);
    const projectId = JSON.parse(proj.stdout).project_id;
    const key = await runCli(['keys', 'create', '--project', projectId, '--data-dir', p.dataDir]);
    assert.equal(key.code, 0, key.stderr);
    const { key_id: keyId, key_secret: keySecret } = JSON.parse(key.stdout);
    const whB = p.sdk({ projectId, keyId, keySecret }).conversation.webhooks;

    await sdkRejects(whB.get({ webhook_id: w.id }), 404, 'NOT_FOUND');
    await sdkRejects(whB.update({ webhook_id: w.id, webhookUpdateRequestBody: { target: 'https://evil.example/' } }), 404, 'NOT_FOUND');
    await sdkRejects(whB.delete({ webhook_id: w.id }), 404, 'NOT_FOUND');
    await sdkRejects(whB.list({ app_id: app }), 404, 'NOT_FOUND');
    await sdkRejects(whB.create({ webhookCreateRequestBody: { app_id: app, target: 'https://evil.example/', triggers: ['MESSAGE_INBOUND'] } }), 404, 'NOT_FOUND');

    // B's own app works for B, and A cannot see it.
    const appB = newApp(projectId);
    const wB = await whB.create({ webhookCreateRequestBody: { app_id: appB, target: 'https://b.example/', triggers: ['OPT_IN'] } });
    assert.equal(wB.app_id, appB);
    await sdkRejects(wh.get({ webhook_id: wB.id }), 404, 'NOT_FOUND');
    await sdkRejects(wh.update({ webhook_id: w.id, webhookUpdateRequestBody: { target: w.target, app_id: appB } }), 404, 'NOT_FOUND');

    assert.deepEqual(await wh.get({ webhook_id: w.id }), w);
    assert.deepEqual((await wh.list({ app_id: app })).webhooks, [w]);
  });
});
