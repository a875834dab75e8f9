// callbacks.test.mjs: Conversation API callbacks from the durable outbox. Bodies are parsed
// by the SDK's ConversationCallbackWebhooks.parseEvent and signatures checked by its
// validateWebhookSignature; retries with backoff, DISMISS targets, OAuth2 client
// credentials, fairness against a hanging target, and delivery after kill -9.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ConversationCallbackWebhooks, validateWebhookSignature } from '@sinch/sdk-core';
import { startParley, tempDir } from './lib/parley.mjs';
import { startReceiver } from './lib/receiver.mjs';

const SECRET = 'whsec-parley-test-0123456789';
const ALL = ['CONTACT_CREATE', 'CONTACT_UPDATE', 'CONTACT_DELETE', 'CONTACT_MERGE', 'CONVERSATION_START', 'CONVERSATION_STOP', 'CONVERSATION_DELETE'];
const FAST = { PARLEY_DISPATCH_RETRY_BASE_MS: '100', PARLEY_DISPATCH_RETRY_MAX_MS: '400', PARLEY_DISPATCH_TIMEOUT_MS: '1500' };

function parsed(rec) {
  assert.equal(validateWebhookSignature(SECRET, rec.headers, rec.body), true, 'signature validates with the SDK');
  assert.equal(rec.headers['x-sinch-webhook-signature-algorithm'], 'HmacSHA256');
  assert.match(rec.headers['content-type'], /^application\/json/);
  return ConversationCallbackWebhooks.parseEvent(rec.body);
}

async function appWithWebhook(sinch, target, extra = {}) {
  const app = await sinch.conversation.app.create({ appCreateRequestBody: { display_name: 'cb', channel_credentials: [] } });
  const wh = await sinch.conversation.webhooks.create({
    webhookCreateRequestBody: { app_id: app.id, target, target_type: 'HTTP', secret: SECRET, triggers: ALL, ...extra },
  });
  return { app, wh };
}

describe('callbacks', () => {
  let p, rx, sinch;
  before(async () => {
    rx = await startReceiver();
    p = await startParley({ env: FAST });
    sinch = p.sdk();
  });
  after(async () => { await p.stop(); await rx.close(); });

  test('contact and conversation events reach the webhook, signed and parseable', async () => {
    const { app } = await appWithWebhook(sinch, `${rx.url}/hook-a`);
    const c = await sinch.conversation.contact.create({ contactCreateRequestBody: { language: 'EN', display_name: 'Ada', channel_identities: [{ channel: 'SMS', identity: '+46700000101' }] } });
    const created = parsed(await rx.waitFor((r) => r.url === '/hook-a' && r.body.includes('contact_create_notification')));
    assert.equal(created.trigger, 'CONTACT_CREATE');
    assert.equal(created.app_id, app.id);
    assert.equal(created.project_id, p.init.project_id);
    assert.equal(created.contact_create_notification.contact.id, c.id);
    assert.equal(created.contact_create_notification.contact.display_name, 'Ada');
    assert.match(created.accepted_time, /^\d{4}-\d\d-\d\dT/);

    await sinch.conversation.contact.update({ contact_id: c.id, updateContactRequestBody: { display_name: 'Ada L.' } });
    const updated = parsed(await rx.waitFor((r) => r.url === '/hook-a' && r.body.includes('contact_update_notification')));
    assert.equal(updated.trigger, 'CONTACT_UPDATE');
    assert.equal(updated.contact_update_notification.contact.display_name, 'Ada L.');

    const conv = await sinch.conversation.conversation.create({ createConversationRequestBody: { app_id: app.id, contact_id: c.id } });
    const started = parsed(await rx.waitFor((r) => r.url === '/hook-a' && r.body.includes('conversation_start_notification')));
    assert.equal(started.trigger, 'CONVERSATION_START');
    assert.equal(started.conversation_start_notification.conversation.id, conv.id);
    await sinch.conversation.conversation.stopActive({ conversation_id: conv.id });
    const stopped = parsed(await rx.waitFor((r) => r.url === '/hook-a' && r.body.includes('conversation_stop_notification')));
    assert.equal(stopped.trigger, 'CONVERSATION_STOP');
    assert.equal(stopped.conversation_stop_notification.conversation.active, false);
    await sinch.conversation.conversation.delete({ conversation_id: conv.id });
    const deletedConv = parsed(await rx.waitFor((r) => r.url === '/hook-a' && r.body.includes('conversation_delete_notification')));
    assert.equal(deletedConv.trigger, 'CONVERSATION_DELETE');

    const other = await sinch.conversation.contact.create({ contactCreateRequestBody: { language: 'EN', channel_identities: [{ channel: 'SMS', identity: '+46700000102' }] } });
    await sinch.conversation.contact.mergeContact({ destination_id: c.id, mergeContactRequestBody: { source_id: other.id } });
    const merged = parsed(await rx.waitFor((r) => r.url === '/hook-a' && r.body.includes('contact_merge_notification')));
    assert.equal(merged.trigger, 'CONTACT_MERGE');
    assert.equal(merged.contact_merge_notification.preserved_contact.id, c.id);
    assert.equal(merged.contact_merge_notification.deleted_contact.id, other.id);
    assert.equal(merged.contact_merge_notification.preserved_contact.channel_identities.length, 2);

    await sinch.conversation.contact.delete({ contact_id: c.id });
    const deleted = parsed(await rx.waitFor((r) => r.url === '/hook-a' && r.body.includes('contact_delete_notification')));
    assert.equal(deleted.trigger, 'CONTACT_DELETE');
    assert.equal(deleted.contact_delete_notification.contact.id, c.id);
  });

  test('only the triggers a webhook asked for; DISMISS targets get nothing; failed writes emit nothing', async () => {
    const app = await sinch.conversation.app.create({ appCreateRequestBody: { display_name: 'cb2', channel_credentials: [] } });
    await sinch.conversation.webhooks.create({ webhookCreateRequestBody: { app_id: app.id, target: `${rx.url}/only-delete`, secret: SECRET, triggers: ['CONTACT_DELETE'] } });
    await sinch.conversation.webhooks.create({ webhookCreateRequestBody: { app_id: app.id, target: `${rx.url}/dismissed`, target_type: 'DISMISS', triggers: ['CONTACT_CREATE', 'CONTACT_DELETE'] } });
    const c = await sinch.conversation.contact.create({ contactCreateRequestBody: { language: 'EN', channel_identities: [{ channel: 'SMS', identity: '+46700000201' }] } });
    // A rejected create (duplicate identity) must not emit anything.
    await assert.rejects(sinch.conversation.contact.create({ contactCreateRequestBody: { language: 'EN', channel_identities: [{ channel: 'SMS', identity: '+46700000201' }] } }));
    await sinch.conversation.contact.delete({ contact_id: c.id });
    const del = parsed(await rx.waitFor((r) => r.url === '/only-delete'));
    assert.equal(del.trigger, 'CONTACT_DELETE');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(rx.requests.filter((r) => r.url === '/only-delete').length, 1);
    assert.equal(rx.requests.filter((r) => r.url === '/dismissed').length, 0);
  });

  test('a failing target is retried with backoff until it answers 2xx', async () => {
    let calls = 0;
    rx.respond((rec) => (rec.url === '/flaky' && ++calls <= 3 ? { status: 503, body: 'busy' } : { status: 200 }));
    await appWithWebhook(sinch, `${rx.url}/flaky`);
    const t0 = Date.now();
    await sinch.conversation.contact.create({ contactCreateRequestBody: { language: 'EN', channel_identities: [{ channel: 'SMS', identity: '+46700000301' }] } });
    await rx.waitFor(() => rx.requests.filter((r) => r.url === '/flaky').length >= 4);
    const hits = rx.requests.filter((r) => r.url === '/flaky');
    assert.equal(hits.length, 4);
    assert.ok(hits.every((h) => h.body === hits[0].body), 'the same body every time');
    const gaps = hits.slice(1).map((h, i) => h.at - hits[i].at);
    assert.ok(gaps.every((g) => g >= 40), `backoff between attempts: ${gaps}`);
    assert.ok(Date.now() - t0 < 8000);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(rx.requests.filter((r) => r.url === '/flaky').length, 4, 'no more attempts after a 2xx');
    const m = await p.api('GET', '/metrics', { auth: 'none' });
    assert.ok(Number(m.text.match(/parley_callbacks_failed_total (\d+)/)[1]) >= 3);
    assert.ok(Number(m.text.match(/parley_callbacks_delivered_total (\d+)/)[1]) >= 1);
    rx.respond(() => ({ status: 200 }));
  });

  test('a hanging target does not delay another webhook', async () => {
    rx.respond((rec) => (rec.url === '/hang' ? 'hang' : { status: 200 }));
    const { app } = await appWithWebhook(sinch, `${rx.url}/hang`);
    await sinch.conversation.webhooks.create({ webhookCreateRequestBody: { app_id: app.id, target: `${rx.url}/prompt`, secret: SECRET, triggers: ['CONTACT_CREATE'] } });
    // Flood the hanging target first, then check the prompt one is served at once.
    for (let i = 0; i < 10; i++)
      await sinch.conversation.contact.create({ contactCreateRequestBody: { language: 'EN', channel_identities: [{ channel: 'SMS', identity: `+4670000040${i}` }] } });
    const t0 = Date.now();
    await rx.waitFor((r) => r.url === '/prompt' && r.body.includes('+46700000409'), 3000);
    assert.ok(Date.now() - t0 < 1500, `prompt target waited ${Date.now() - t0} ms`);
    assert.ok(rx.requests.filter((r) => r.url === '/hang').length <= 4 + 1, 'at most per_target in flight to one webhook');
    rx.respond(() => ({ status: 200 }));
  });

  test('OAuth2 client credentials: a token is fetched, cached and sent as a bearer', async () => {
    let tokens = 0;
    rx.respond((rec) => {
      if (rec.url === '/token') {
        tokens++;
        const ok = rec.headers.authorization === 'Basic ' + Buffer.from('cid:csecret').toString('base64') && rec.body.includes('grant_type=client_credentials');
        return ok ? { status: 200, body: JSON.stringify({ access_token: `tok-${tokens}`, expires_in: 3600 }) } : { status: 401 };
      }
      return { status: 200 };
    });
    await appWithWebhook(sinch, `${rx.url}/oauth-hook`, { triggers: ['CONTACT_CREATE'], client_credentials: { client_id: 'cid', client_secret: 'csecret', endpoint: `${rx.url}/token` } });
    for (let i = 0; i < 2; i++)
      await sinch.conversation.contact.create({ contactCreateRequestBody: { language: 'EN', channel_identities: [{ channel: 'SMS', identity: `+4670000050${i}` }] } });
    await rx.waitFor(() => rx.requests.filter((r) => r.url === '/oauth-hook').length >= 2);
    const hooks = rx.requests.filter((r) => r.url === '/oauth-hook');
    assert.ok(hooks.every((h) => h.headers.authorization === 'Bearer tok-1'), hooks.map((h) => h.headers.authorization).join());
    assert.equal(tokens, 1, 'the token is cached');
    rx.respond(() => ({ status: 200 }));
  });
});

test('callbacks pending at kill -9 are delivered after restart', async () => {
  const rx = await startReceiver();
  rx.respond(() => ({ status: 503 }));
  const dir = tempDir();
  const p = await startParley({ dataDir: dir, env: { ...FAST, PARLEY_DISPATCH_RETRY_BASE_MS: '50' } });
  const sinch = p.sdk();
  const { app } = await appWithWebhook(sinch, `${rx.url}/durable`);
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const c = await sinch.conversation.contact.create({ contactCreateRequestBody: { language: 'EN', channel_identities: [{ channel: 'SMS', identity: `+4670000060${i}` }] } });
    ids.push(c.id);
  }
  await rx.waitFor((r) => r.url === '/durable');
  await p.stop({ signal: 'SIGKILL', expectClean: false });
  rx.respond(() => ({ status: 200 }));
  const p2 = await startParley({ dataDir: dir, env: FAST });
  for (const id of ids) {
    const rec = await rx.waitFor((r) => r.url === '/durable' && r.body.includes(id) && r.body.includes('contact_create'), 10000);
    const ev = parsed(rec);
    assert.equal(ev.app_id, app.id);
  }
  await p2.stop();
  await rx.close();
});
